"""The lab's cloud side as background processes: EC2 (moto, fixed) + IMDS + the data plane, and the internet.

`start()` launches, unless already running:
- the control plane process (`python -m nat_gateway_ha_lab.controlplane run`): the EC2 API on
  MGMT_NET.ip:MOTO_PORT with the data plane as its mutation hook and EC2's request throttling (off with
  NATLAB_THROTTLE=0; the seed is not throttled), the seed, the IMDS emulator on
  169.254.169.254:80 (callers told apart by their management address), and a slow periodic data plane sync;
- the internet host's HTTP server inside natlab-inet.
Each writes a pid file and a log under the state directory (/run/natlab); `start()` returns once both
answer. `stop()` ends them by pid and removes the data plane's rules and every file `start()` wrote.
The network must exist (`network.build()`): the control plane binds to addresses on the lab's bridges.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nat_gateway_ha_lab import topology as topo

log = logging.getLogger(__name__)

STATE_DIR = Path("/run/natlab")
INET_NETNS = f"{topo.PREFIX}-inet"
ENDPOINT_URL = f"http://{topo.MGMT_NET.ip}:{topo.MOTO_PORT}"
SYNC_INTERVAL = 5.0  # the safety net under the mutation hook


class ControlPlaneError(RuntimeError):
    pass


def _files(state_dir: Path, name: str) -> tuple[Path, Path]:
    return state_dir / f"{name}.pid", state_dir / f"{name}.log"


def cloud_json(state_dir: Path = STATE_DIR) -> Path:
    return state_dir / "cloud.json"


def dataplane_log(state_dir: Path = STATE_DIR) -> Path:
    return state_dir / "dataplane.log"


def _ready_file(state_dir: Path) -> Path:
    return state_dir / "controlplane.ready"


def _pid(pid_file: Path, marker: str) -> int | None:
    """The live process of a pid file, if its command line is ours (a stale pid may be reused)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if marker in cmdline else None


def running(state_dir: Path = STATE_DIR) -> dict[str, int | None]:
    return {
        "controlplane": _pid(_files(state_dir, "controlplane")[0], "nat_gateway_ha_lab.controlplane"),
        "internet": _pid(_files(state_dir, "internet")[0], "nat_gateway_ha_lab.internet"),
    }


def _spawn(cmd: list[str], pid_file: Path, log_file: Path) -> int:
    with log_file.open("a") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    pid_file.write_text(f"{proc.pid}\n")
    # Right after the exec, /proc/PID/cmdline can still read empty: wait for it, or `_wait` takes the
    # starting process for a dead one.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and proc.poll() is None:
        if Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            break
        time.sleep(0.01)
    return proc.pid


def _wait(
    what: str, ready: Callable[[], bool], pid_file: Path, marker: str, log_file: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if _pid(pid_file, marker) is None:
            tail = "".join(log_file.read_text().splitlines(keepends=True)[-20:]) if log_file.exists() else ""
            raise ControlPlaneError(f"{what} exited before it was ready; {log_file}:\n{tail}")
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"{what} not ready after {timeout:.0f} s; see {log_file}")
        time.sleep(0.1)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _inet_listening() -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", INET_NETNS, "ss", "-Hltn", f"sport = :{80}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return bool(out.strip())


def start(state_dir: Path = STATE_DIR, extra_route_tables: int = 0, timeout: float = 60.0) -> None:
    """Start the control plane and the internet server unless they run; return when both answer."""
    state_dir.mkdir(parents=True, exist_ok=True)
    pids = running(state_dir)
    cp_pid, cp_log = _files(state_dir, "controlplane")
    if pids["controlplane"] is None:
        _ready_file(state_dir).unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "nat_gateway_ha_lab.controlplane", "run", "--state-dir", str(state_dir)]
        _spawn([*cmd, "--extra-route-tables", str(extra_route_tables)], cp_pid, cp_log)
    _wait(
        "the control plane (moto, IMDS, data plane)",
        lambda: _ready_file(state_dir).exists() and _listening(str(topo.IMDS_ADDR), 80),
        cp_pid,
        "nat_gateway_ha_lab.controlplane",
        cp_log,
        timeout,
    )
    inet_pid, inet_log = _files(state_dir, "internet")
    if pids["internet"] is None:
        cmd = ["ip", "netns", "exec", INET_NETNS, sys.executable, "-m", "nat_gateway_ha_lab.internet"]
        _spawn(cmd, inet_pid, inet_log)
    _wait(
        "the internet host's server",
        _inet_listening,
        inet_pid,
        "nat_gateway_ha_lab.internet",
        inet_log,
        timeout,
    )


def stop(state_dir: Path = STATE_DIR, timeout: float = 10.0) -> list[str]:
    """End both processes by pid (TERM, then KILL) and remove the data plane's rules. Returns what stopped."""
    from nat_gateway_ha_lab import dataplane

    stopped = []
    for name, pid in running(state_dir).items():
        if pid is not None:
            _terminate(pid, timeout)
            stopped.append(f"{name} (pid {pid})")
        for path in _files(state_dir, name):
            path.unlink(missing_ok=True)
    for path in (_ready_file(state_dir), cloud_json(state_dir), dataplane_log(state_dir)):
        path.unlink(missing_ok=True)
    dataplane.teardown()
    return stopped


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def run(state_dir: Path, extra_route_tables: int = 0) -> None:
    """The control plane process itself: serve until SIGTERM."""
    import boto3

    from nat_gateway_ha_lab import cloud, dataplane, imds, moto_model, seed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "natlab")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "natlab")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    dataplane_log(state_dir).unlink(missing_ok=True)
    dataplane.setup()
    plane = dataplane.DataPlane(moto_model.cloud_view, dataplane_log(state_dir))

    def on_mutation() -> None:
        moto_model.pin_macs()  # ENIs provisioning creates take their container NIC's MAC first
        plane.on_mutation()

    ec2_server = cloud.serve(str(topo.MGMT_NET.ip), topo.MOTO_PORT, on_mutation)
    log.info("EC2 API on %s (throttled: %s)", ec2_server.url, ec2_server.throttle.enabled)
    ec2 = boto3.client("ec2", region_name=topo.REGION, endpoint_url=ec2_server.url)
    with ec2_server.throttle.paused():  # the lab's own set-up is not what the throttling is for
        state = seed.seed(
            ec2,
            moto_model.eni_mac_setter(),
            endpoint_url=ENDPOINT_URL,
            extra_route_tables=extra_route_tables,
            gateways=False,  # `natgw-lab up` provisions them with playbooks/provision.yml
        )
    state.write(cloud_json(state_dir))
    plane.sync()
    host_of = {str(h.mgmt): h.name for h in topo.HOSTS}

    def instance_of(caller: str) -> str | None:
        """A caller's instance: the live one named after the topology host at that management address."""
        name = host_of.get(caller)
        return moto_model.running_instance(name) if name else None

    imds_server = imds.serve(str(topo.IMDS_ADDR), 80, instance_of)
    log.info(
        "IMDS on %s:80 for %s", topo.IMDS_ADDR, ", ".join(f"{ip} {h}" for ip, h in sorted(host_of.items()))
    )
    plane.start(SYNC_INTERVAL)
    _ready_file(state_dir).write_text(f"{os.getpid()}\n")
    log.info("ready; seeded %s", cloud_json(state_dir))
    try:
        done.wait()
    finally:
        log.info("stopping")
        plane.stop()
        imds_server.stop()
        ec2_server.stop()
        dataplane.teardown()
        _ready_file(state_dir).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nat_gateway_ha_lab.controlplane", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("run", "start"):
        p = sub.add_parser(
            name, help="serve in the foreground" if name == "run" else "start in the background"
        )
        p.add_argument("--state-dir", type=Path, default=STATE_DIR)
        p.add_argument("--extra-route-tables", type=int, default=0)
    p_stop = sub.add_parser("stop", help="stop the background processes")
    p_stop.add_argument("--state-dir", type=Path, default=STATE_DIR)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        run(args.state_dir, args.extra_route_tables)
    elif args.cmd == "start":
        start(args.state_dir, args.extra_route_tables)
    else:
        for item in stop(args.state_dir):
            print(f"stopped {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
