"""The Debian root every lab host boots from, built once with debootstrap and reused.

Debian 12 (bookworm: keepalived 2.2, Python 3.11) by default; `NATLAB_SUITE=trixie` gives Debian 13
(keepalived 2.3, Python 3.13), so the role and the agent are proven on both.

The containers have no internet, so everything the role, the agent and the bench need is baked in here.
The cache key covers the package list and the customisation steps: change either and a new base is built.
A build goes into a temporary directory and is renamed when complete, so an interrupted build is never used.
Per-host things (machine-id, hostname, SSH host keys, authorized_keys) live in each container's overlay,
not here, so one base serves every host and every key pair.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nat_gateway_ha_lab import paths

CACHE_DIR = paths.CACHE_DIR
SUITES = {"bookworm": "3.11", "trixie": "3.13"}  # Debian suite -> its python3, the agent venv's Python
SUITE = os.environ.get("NATLAB_SUITE", "bookworm")
if SUITE not in SUITES:
    raise SystemExit(f"NATLAB_SUITE={SUITE}: the lab builds {' or '.join(SUITES)} roots")
PYTHON = SUITES[SUITE]
MIRROR = os.environ.get("NATLAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")

PACKAGES: tuple[str, ...] = (
    # a systemd host reached over SSH, as an EC2 instance is
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "ca-certificates",
    # the gateway's data path and VRRP
    "iproute2",
    "keepalived",
    "iptables",
    "nftables",
    "conntrack",
    "conntrackd",
    # Ansible's modules (python3-apt for apt/package_facts) and the agent's venv (installed from a wheelhouse)
    "python3",
    "python3-venv",
    "python3-apt",
    # the client's download, the bench's baseline (the seed's script uses aws-cli and pidof), debugging
    "curl",
    "procps",
    "awscli",
    "python3-cffi-backend",  # provides a virtual package awscli's python3-cryptography needs; debootstrap
    # does not resolve virtual packages by itself
    "sysvinit-utils",
    "iputils-ping",
)

# Units that either wait for things a lab host never has or only slow the boot down.
MASKED_UNITS: tuple[str, ...] = (
    "console-getty.service",
    "getty@.service",
    "serial-getty@.service",
    "container-getty@.service",
    "getty.target",
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
)

SSHD_DROPIN = """\
# natgw-lab: root logs in with the lab key only, as on an EC2 instance; no DNS lookups on login.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

# Bump when the customisation below changes, so cached bases built the old way are not reused.
CUSTOMISATION_VERSION = 1


def cache_key() -> str:
    text = "\n".join([SUITE, MIRROR, str(CUSTOMISATION_VERSION), *sorted(PACKAGES), *sorted(MASKED_UNITS)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_path() -> Path:
    return CACHE_DIR / f"base-{SUITE}-{cache_key()}"


def _customise(root: Path) -> None:
    """Make the fresh root boot fast as a container and accept root key logins."""
    systemd = root / "etc/systemd/system"
    for unit in MASKED_UNITS:
        link = systemd / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    dropin = root / "etc/ssh/sshd_config.d/natgw-lab.conf"
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(SSHD_DROPIN)
    # Host keys are per instance: each container gets its own in its overlay (see containers.py).
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # An empty machine-id in the base; each container's overlay carries its own.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    # No mirror is reachable from inside: leave no sources that apt would try and time out on.
    (root / "etc/apt/sources.list").write_text("# natgw-lab: no package mirror is reachable from lab hosts\n")
    # Keep the image small: apt's downloaded .debs are not needed once installed.
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def ensure_base(log: bool = True) -> Path:
    """Return the cached base root, building it first if there is none for the current key."""
    final = base_path()
    if (final / "etc/os-release").exists():
        return final
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Leftovers of interrupted builds are never complete: remove them.
    for stale in CACHE_DIR.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = CACHE_DIR / f".build-{final.name}-{os.getpid()}"
    if shutil.which("debootstrap") is None:
        raise SystemExit("natgw-lab: debootstrap is not installed (run scripts/bootstrap)")
    if log:
        print(f"natgw-lab: building the Debian {SUITE} base root in {final} (minutes, once)", flush=True)
    started = time.monotonic()
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(tmp),
        MIRROR,
    ]
    logfile = CACHE_DIR / "debootstrap.log"
    with logfile.open("w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        inner = tmp / "debootstrap/debootstrap.log"
        if inner.exists():  # the detailed log dies with the temp dir: keep it next to the summary
            with logfile.open("a") as out:
                out.write("\n--- debootstrap/debootstrap.log ---\n" + inner.read_text(errors="replace"))
        shutil.rmtree(tmp, ignore_errors=True)
        raise SystemExit(f"natgw-lab: debootstrap failed (exit {rc}); see {logfile}")
    _customise(tmp)
    tmp.rename(final)
    if log:
        print(f"natgw-lab: base root built in {time.monotonic() - started:.0f} s", flush=True)
    return final


def prune_old_bases() -> list[Path]:
    """Remove cached bases of this suite with another key (an older package list); returns what was
    removed. The other suite's base stays: the lab switches suites with NATLAB_SUITE."""
    keep = base_path()
    removed = []
    for path in CACHE_DIR.glob(f"base-{SUITE}-*"):
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


if __name__ == "__main__":  # pragma: no cover - manual use: python -m nat_gateway_ha_lab.baseroot
    print(ensure_base())
    sys.exit(0)
