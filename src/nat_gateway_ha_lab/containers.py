"""Lab hosts as systemd-nspawn containers: systemd as PID 1, sshd, each in its host's network namespace.

All hosts share the read-only base root; each writes to its own overlay upper directory, which is
seeded here with what makes an instance itself (machine-id, hostname, SSH host keys, the lab's
authorized key) and wiped by `down`, so every `up` boots fresh instances as EC2 would.
The flags are the ones lab-facts.md found necessary: the writable /proc/sys/net for sysctl, and
CAP_NET_ADMIN/CAP_NET_RAW for keepalived to add its VIP.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from nat_gateway_ha_lab import network, paths
from nat_gateway_ha_lab import topology as topo

STOP_GRACE = 5.0  # seconds a container gets to power off before it is killed
# The cgroup hierarchies systemd-nspawn places a container in: the unified one (a pure v2 host mounts it at
# /sys/fs/cgroup, a hybrid one at .../unified) and the v1 named one of a hybrid host.
CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))


def upper_dir(host: topo.Host) -> Path:
    return paths.HOSTS_DIR / host.name / "upper"


def pid_file(host: topo.Host) -> Path:
    return paths.RUN_DIR / f"{host.name}.pid"


def console_log(host: topo.Host) -> Path:
    return paths.RUN_DIR / f"{host.name}.console.log"


def cgroups(host: topo.Host) -> list[Path]:
    """The host's own cgroup in each hierarchy this machine mounts.

    Without a systemd of its own to ask for a scope, every container would otherwise be started in the
    caller's cgroup and share one "payload" subtree: each container's units would hold the others' processes
    (seen as pid 0 inside), a unit's cgroup would never empty (Debian 13's systemd then waited 90 s to
    restart a SIGKILLed keepalived), and killing a unit by its cgroup could hit the other instance.
    """
    return [root / f"{topo.PREFIX}-{host.name}" for root in CGROUP_ROOTS if (root / "cgroup.procs").exists()]


def _enter_own_cgroup(host: topo.Host) -> None:
    """In the child, before systemd-nspawn runs: move into the host's own cgroups (made here if missing)."""
    for group in cgroups(host):
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(f"{os.getpid()}\n")


def remove_cgroups(host: topo.Host) -> None:
    """Remove the host's cgroups, deepest first; one still holding a process stays (reused next start)."""
    for group in cgroups(host):
        if not group.is_dir():
            continue
        for path in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            group.rmdir()


def _read_pid(host: topo.Host) -> int | None:
    try:
        return int(pid_file(host).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_nspawn(pid: int, host: topo.Host) -> bool:
    """True if `pid` is still the systemd-nspawn we started for this host (not a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"systemd-nspawn") and f"-M{host.name}".encode() in argv


def running_pid(host: topo.Host) -> int | None:
    pid = _read_pid(host)
    return pid if pid is not None and _is_our_nspawn(pid, host) else None


def _mkdirs_like(base: Path, upper: Path, rel: str) -> Path:
    """Create upper/rel with each component's mode copied from the base, so the overlay shows base modes."""
    target = upper
    source = base
    for part in Path(rel).parts:
        target, source = target / part, source / part
        if not target.exists():
            target.mkdir()
            os.chmod(target, source.stat().st_mode & 0o7777 if source.exists() else 0o755)
    return target


def _seed_upper(host: topo.Host, base: Path, authorized_key: str) -> None:
    """Write what makes this instance itself into its fresh overlay upper directory."""
    upper = upper_dir(host)
    upper.mkdir(parents=True, exist_ok=True)
    etc = _mkdirs_like(base, upper, "etc")
    (etc / "machine-id").write_text(secrets.token_hex(16) + "\n")
    (etc / "hostname").write_text(host.name + "\n")
    hosts = (base / "etc/hosts").read_text() if (base / "etc/hosts").exists() else ""
    (etc / "hosts").write_text(hosts + f"127.0.1.1\t{host.name}\n")
    _mkdirs_like(base, upper, "etc/ssh")
    subprocess.run(["ssh-keygen", "-q", "-A", "-f", str(upper)], check=True, capture_output=True)
    ssh_dir = _mkdirs_like(base, upper, "root/.ssh")
    os.chmod(ssh_dir, 0o700)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(authorized_key + "\n")
    os.chmod(keys, 0o600)


def start(host: topo.Host, base: Path, authorized_key: str, fresh: bool = True) -> int:
    """Boot the host's container in the background unless it is already running; returns its pid.

    `fresh` gives a new instance (an empty disk); without it the disk is kept, as a reboot keeps it.
    """
    pid = running_pid(host)
    if pid is not None:
        return pid
    netns = Path("/run/netns") / host.netns
    if not netns.exists():
        raise RuntimeError(f"{host.name}: network namespace {host.netns} is missing (network not built)")
    network.kill_processes(host.netns)  # whatever a crashed earlier run left in the namespace
    if fresh or not upper_dir(host).exists():
        wipe(host)
        _seed_upper(host, base, authorized_key)
    paths.RUN_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [
        "systemd-nspawn",
        "--register=no",
        "--keep-unit",
        "--quiet",
        "--console=read-only",
        f"-M{host.name}",
        f"--directory={base}",
        f"--overlay={base}:{upper_dir(host)}:/",
        f"--network-namespace-path={netns}",
        "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
        "--boot",
    ]
    # The unified cgroup hierarchy (v2), as Debian 12 and 13 use on EC2, whatever this machine mounts: under a
    # hybrid one, Debian 13's systemd never sees a SIGKILLed unit's cgroup empty and waits 90 s to restart it.
    env = {
        **os.environ,
        "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network",
        "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1",
    }
    with console_log(host).open("wb") as log:
        # A session of its own: a Ctrl-C on the CLI must not reach the containers.
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: _enter_own_cgroup(host),
        )
    pid_file(host).write_text(f"{proc.pid}\n")
    return proc.pid


def stop(hosts: Sequence[topo.Host]) -> list[topo.Host]:
    """Power the containers off together (killing any still up after a grace period), then end anything
    left in their namespaces. Returns the hosts whose container was running."""
    pids = {host: pid for host in hosts if (pid := running_pid(host)) is not None}
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)  # systemd-nspawn turns this into a clean poweroff of the container
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(_is_our_nspawn(pid, host) for host, pid in pids.items()):
        time.sleep(0.1)
        for pid in pids.values():
            network.reap(pid)
    for host, pid in pids.items():
        if _is_our_nspawn(pid, host):
            os.kill(pid, signal.SIGKILL)
            network.reap(pid)
    for host in hosts:
        network.kill_processes(host.netns)
        pid_file(host).unlink(missing_ok=True)
        remove_cgroups(host)
    return list(pids)


def kill(host: topo.Host) -> None:
    """Pull the plug: SIGKILL the container and everything in its namespace, no shutdown at all."""
    pid = running_pid(host)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        network.reap(pid)
    network.kill_processes(host.netns)
    pid_file(host).unlink(missing_ok=True)
    remove_cgroups(host)


def netns_pids(host: topo.Host) -> list[int]:
    return network.pids(host.netns)


def wipe(host: topo.Host) -> None:
    """Forget the instance: its overlay upper dir and the overlay's work dir next to it."""
    shutil.rmtree(paths.HOSTS_DIR / host.name, ignore_errors=True)
