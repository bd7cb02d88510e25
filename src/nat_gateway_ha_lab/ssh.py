"""The controller's SSH to lab hosts: one lab key pair, and the options an ephemeral host needs.

Lab hosts get fresh host keys on every `up` (as a new EC2 instance does), so host keys are not recorded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence

from nat_gateway_ha_lab import paths
from nat_gateway_ha_lab import topology as topo

SSH_OPTIONS: tuple[str, ...] = (
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=5",
)


def ensure_key() -> str:
    """Create the lab key pair once; returns the public key line."""
    key = paths.SSH_KEY
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key.parent, 0o700)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "natgw-lab", "-f", str(key)],
            check=True,
        )
    return key.with_suffix(".pub").read_text().strip()


def command(host: topo.Host, remote: Sequence[str] = (), tty: bool = False) -> list[str]:
    """The ssh command line that runs `remote` on `host` as root (an interactive login if empty)."""
    return [
        "ssh",
        *(["-t"] if tty else []),
        "-i",
        str(paths.SSH_KEY),
        *SSH_OPTIONS,
        f"root@{host.mgmt}",
        *remote,
    ]


def run(host: topo.Host, remote: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(host, [remote]), capture_output=True, text=True, timeout=timeout, check=False
    )


def banner(host: topo.Host, timeout: float = 1.0) -> bool:
    """True once sshd on the host's management address answers with its protocol banner."""
    try:
        with socket.create_connection((str(host.mgmt), 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def wait(host: topo.Host, timeout: float = 90) -> None:
    """Wait until the host accepts the lab key (the banner alone comes before sshd reads keys)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if banner(host) and run(host, "true", timeout=10).returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{host.name}: no SSH login on {host.mgmt} within {timeout:.0f} s")
