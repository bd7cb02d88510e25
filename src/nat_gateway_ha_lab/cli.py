"""`natgw-lab`: bring the lab up and down, show its state, and reach its hosts.

`up` is idempotent: it builds only what is missing (base root, networks, cloud, containers, wheelhouse).
`down` removes every container, namespace, bridge, veth, rule and process the lab made, and the hosts'
disks, so the next `up` boots fresh instances. Both hold one lock, so two of them never interleave.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nat_gateway_ha import status as agent_status
from nat_gateway_ha_lab import (
    baseroot,
    containers,
    controlplane,
    faults,
    network,
    paths,
    provisioning,
    ssh,
    state,
    wheelhouse,
)
from nat_gateway_ha_lab import topology as topo

LOCK_FILE = Path("/run/lock/natgw-lab.lock")


def _say(msg: str) -> None:
    print(f"natgw-lab: {msg}", flush=True)


_lock_depth = 0  # the lock is re-entrant within one process (tests hold it around cli calls)


@contextmanager
def _locked() -> Iterator[None]:
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say("another natgw-lab up/down is running; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0


def _need_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit("natgw-lab: needs root (network namespaces, containers)")


def _host(name: str) -> topo.Host:
    try:
        return topo.host(name)
    except StopIteration:
        names = ", ".join(h.name for h in topo.HOSTS)
        raise SystemExit(f"natgw-lab: no lab host {name!r} (hosts: {names})") from None


def up() -> None:
    """Build whatever of the lab is missing and wait until every host accepts SSH."""
    _need_root()
    started = time.monotonic()
    with _locked():
        pubkey = ssh.ensure_key()
        base = baseroot.ensure_base()
        network.build()
        _say(f"network ready: namespaces {', '.join(sorted(network.namespaces()))}")
        controlplane.start()  # moto seeded with this VPC, IMDS, the data plane, the internet host's server
        _say(f"cloud ready: EC2 API {controlplane.ENDPOINT_URL}, IMDS http://{topo.IMDS_ADDR}")
        took = provisioning.ensure()
        _say(
            "gateways: "
            + (f"provisioned by playbooks/provision.yml in {took:.1f} s" if took else "provisioned")
        )
        for host in topo.HOSTS:
            was = containers.running_pid(host)
            pid = containers.start(host, base, pubkey)
            _say(f"{host.name}: {'running' if was else 'booting'} (pid {pid})")
        for host in topo.HOSTS:
            ssh.wait(host)
        _say(f"hosts answer SSH: {', '.join(f'{h.name} {h.mgmt}' for h in topo.HOSTS)}")
        house, fetched = wheelhouse.ensure(python=baseroot.PYTHON)
        _say(f"agent wheelhouse {'downloaded to' if fetched else 'cached in'} {house}")
    _say(f"up in {time.monotonic() - started:.1f} s")


def down() -> None:
    """Stop every host, remove the networks, wipe the hosts' disks; safe on a half-built lab."""
    _need_root()
    started = time.monotonic()
    with _locked():
        for host in containers.stop(topo.HOSTS):
            _say(f"{host.name}: stopped")
        for host in topo.HOSTS:
            containers.wipe(host)
        for item in controlplane.stop():
            _say(f"stopped {item}")
        for item in faults.clear():
            _say(f"undid fault {item}")
        for ns in (network.VPC_NS, network.INET_NS):  # e.g. a `natgw-lab exec vpc ...` still running
            for pid in network.kill_processes(ns):
                _say(f"killed pid {pid} left in {ns}")
        for item in network.teardown():
            _say(f"removed {item}")
        for host in topo.HOSTS:
            containers.console_log(host).unlink(missing_ok=True)
        provisioning.log_file().unlink(missing_ok=True)
        if paths.RUN_DIR.exists() and not any(paths.RUN_DIR.iterdir()):
            paths.RUN_DIR.rmdir()
        if paths.HOSTS_DIR.exists() and not any(paths.HOSTS_DIR.iterdir()):
            paths.HOSTS_DIR.rmdir()
        left = network.leftovers()
    if left:
        raise SystemExit(f"natgw-lab: left behind: {', '.join(left)}")
    _say(f"down in {time.monotonic() - started:.1f} s; nothing left")


def host_lines(vip_holders: list[str]) -> list[str]:
    """One line per host: container, SSH, and for gateways keepalived's state and whether it has the VIP."""
    lines = []
    alive = set(network.namespaces())
    for host in topo.HOSTS:
        pid = containers.running_pid(host)
        if host.netns not in alive:
            lines.append(f"{host.name:7} DEAD: powered off (no instance, no NICs)")
            continue
        if pid is None:
            lines.append(f"{host.name:7} down")
            continue
        parts = [f"{host.name:7} up (pid {pid})", f"mgmt {host.mgmt}"]
        parts.append("ssh ok" if ssh.banner(host) else "NO SSH")
        if host.role == "gateway":
            proc = ssh.run(host, "systemctl is-active keepalived", timeout=10)
            parts.append(f"keepalived {proc.stdout.strip() or 'unknown'}")
            parts.append(f"VIP {topo.VIP.ip} {'held' if host.name in vip_holders else 'not held'}")
        lines.append(", ".join(parts))
    return lines


def status(wait: float = 0.0) -> int:
    """The hosts, then the cloud's view; exit 0 only when the lab is up and healthy.

    `wait` polls up to that many seconds for healthy first: right after a converge the agent may still
    be claiming the EIP and routes.
    """
    _need_root()
    if not network.is_built():
        _say("the lab is down (run `natgw-lab up` or `make lab`)")
        return 1
    if None in controlplane.running().values():
        for line in host_lines(state.vip_holders()):
            print(line)
        _say("the cloud (control plane / internet host) is not running: run `natgw-lab up`")
        return 1
    deadline = time.monotonic() + wait
    lab = state.describe()
    while not lab.healthy and time.monotonic() < deadline:
        time.sleep(0.5)
        lab = state.describe()
    for line in host_lines(lab.vip_holders):
        print(line)
    print(lab.render())
    for gw in topo.gateways():  # what each agent's endpoint serves, as `natgw-ha-agent status` prints it
        live = state.agent_status(gw.name)
        print(
            "\n"
            + (
                agent_status.render(live, state.agent_status(gw.name, "/healthz"))
                if live
                else f"{gw.name}: the agent's endpoint does not answer"
            )
        )
    return 0 if lab.healthy else 1


def fault(kind: str, name: str, restore: bool) -> None:
    """Inject one of the fault matrix's faults into a host (or undo it), e.g. `fault power-off gw1`."""
    _need_root()
    _host(name)
    f = faults.FAULTS[kind]
    if restore:
        f.restore(name)
        _say(f"{name}: {f.label}: restored")
    else:
        at = f.inject(name)
        _say(f"{name}: {f.label} at {at:.3f} (undo: natgw-lab fault --restore {kind} {name})")


def ssh_cmd(name: str, command: list[str]) -> None:
    host = _host(name)
    argv = ssh.command(host, command, tty=not command and sys.stdin.isatty())
    os.execvp(argv[0], argv)


def exec_cmd(name: str, command: list[str]) -> None:
    """Run a command in a lab namespace from the outside: a host's, or vpc/inet."""
    _need_root()
    extra = {"vpc": network.VPC_NS, "inet": network.INET_NS}
    ns = extra.get(name) or _host(name).netns
    if not command:
        command = [os.environ.get("SHELL", "/bin/sh")]
    argv = ["ip", "netns", "exec", ns, *command]
    os.execvp(argv[0], argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="natgw-lab", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build what is missing and boot the hosts (idempotent)")
    sub.add_parser("down", help="remove everything the lab made")
    p_status = sub.add_parser("status", help="hosts, VRRP master, EIP and route owners, client egress")
    p_status.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="poll for healthy first")
    p_ssh = sub.add_parser("ssh", help="ssh to a host as root (a login shell without a command)")
    p_ssh.add_argument("host")
    p_ssh.add_argument("command", nargs=argparse.REMAINDER)
    p_exec = sub.add_parser("exec", help="run a command in a lab namespace (a host, vpc or inet)")
    p_exec.add_argument("host")
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("prune", help="delete cached base roots built from an older package list")
    p_fault = sub.add_parser("fault", help="inject a fault into a host, or undo it (--restore)")
    p_fault.add_argument("kind", choices=sorted(faults.FAULTS))
    p_fault.add_argument("host")
    p_fault.add_argument("--restore", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            up()
        elif args.cmd == "down":
            down()
        elif args.cmd == "status":
            return status(args.wait)
        elif args.cmd == "ssh":
            ssh_cmd(args.host, args.command)
        elif args.cmd == "exec":
            exec_cmd(args.host, args.command)
        elif args.cmd == "fault":
            fault(args.kind, args.host, args.restore)
        elif args.cmd == "prune":
            for path in baseroot.prune_old_bases():
                _say(f"removed {path}")
    except (network.NetworkError, faults.FaultError, RuntimeError, TimeoutError) as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
