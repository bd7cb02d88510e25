"""Faults a production pair meets, injected into the running lab, and how each one is undone.

One place for the fault matrix (tests), the bench and `natgw-lab fault` (`FAULTS`; the faults on the
network around the pair are in `network_faults.py`, what faults are made of in `fault_tools.py`): each
fault breaks what it names and nothing else, the way it breaks on EC2. `inject` returns the epoch of the
fault (containers share this machine's clock); `restore` brings the host back so that it rejoins the pair
as a BACKUP. Commands that only touch kernel state run from the outside (`ip netns exec`), so they work
whatever the container does; commands about services run inside it over SSH, as an operator's would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nat_gateway_ha_lab import baseroot, containers, network, paths, ssh
from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.fault_tools import (
    FAULT_TABLE,
    Fault,
    FaultError,
    drop_table,
    in_ns,
    recall,
    remember,
    sh,
)
from nat_gateway_ha_lab.network_faults import (
    ApiPathLost,
    ApiUnreachable,
    ImdsUnreachable,
    RogueVrrp,
    UpstreamDown,
    VrrpPartition,
)

CT_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")  # global: only the initial namespace sets it

__all__ = ["FAULTS", "Fault", "FaultError", "clear", "in_ns", "sh"]


@dataclass
class StopKeepalived(Fault):
    """A clean stop: keepalived sends priority 0 and the peer takes over at once (the seed's test)."""

    name: str = "stop"
    label: str = "systemctl stop keepalived"

    def inject(self, host: str) -> float:
        return float(sh(host, "date +%s.%N; systemctl stop keepalived").split()[0])

    def restore(self, host: str) -> None:
        sh(host, "systemctl start keepalived")


def _kill_unit(unit: str) -> str:
    """SIGKILL every process of a unit, read from its cgroup (`systemctl kill` fails in the containers)."""
    return (
        f"f=/sys/fs/cgroup/systemd/system.slice/{unit}/cgroup.procs;"
        f" [ -e $f ] || f=/sys/fs/cgroup/system.slice/{unit}/cgroup.procs;"
        # Never pid 0 (a process of another pid namespace): `kill 0` would end this very shell.
        ' pids=$(grep -vx 0 $f); [ -n "$pids" ] || exit 3; date +%s.%N; kill -KILL $pids'
    )


@dataclass
class KillKeepalived(Fault):
    """A crash: no goodbye advert, the peer must notice three missing adverts."""

    name: str = "sigkill"
    label: str = "SIGKILL every keepalived process"

    def inject(self, host: str) -> float:
        return float(sh(host, _kill_unit("keepalived.service")).split()[0])

    def restore(self, host: str) -> None:
        sh(host, "systemctl reset-failed keepalived.service; systemctl start keepalived.service")


@dataclass
class KillAgent(Fault):
    """The failover agent crashes on the master: systemd restarts it; VRRP and the data path go on."""

    name: str = "agent-sigkill"
    label: str = "SIGKILL the failover agent"

    def inject(self, host: str) -> float:
        return float(sh(host, _kill_unit("nat-gateway-ha-agent.service")).split()[0])

    def restore(self, host: str) -> None:
        sh(
            host,
            "for i in $(seq 50); do systemctl is-active -q nat-gateway-ha-agent && exit 0; sleep 0.2; done",
        )


@dataclass
class RestartStorm(Fault):
    """keepalived restarted 10 times in 15 s on the master, as a broken config-management loop would."""

    name: str = "restart-storm"
    label: str = "10 keepalived restarts in 15 s"
    restarts: int = 10

    def inject(self, host: str) -> float:
        at = time.time()
        sh(
            host,
            f"for i in $(seq {self.restarts}); do systemctl restart keepalived; sleep 1.4; done",
            timeout=90,
        )
        return at

    def restore(self, host: str) -> None:
        sh(host, "systemctl is-active -q keepalived || systemctl start keepalived")


@dataclass
class LinkDown(Fault):
    """A NIC loses its link. Setting it down makes the kernel drop the routes through it, so the routes
    seen before are put back after the link returns, as the host's network manager would."""

    name: str = "lan-down"
    label: str = "LAN link (eth1) down"
    interface: str = "eth1"

    def inject(self, host: str) -> float:
        ns = topo.host(host).netns
        remember(self.name, host, network.ip("-4", "route", "show", ns=ns).stdout.splitlines())
        at = time.time()
        network.ip("link", "set", self.interface, "down", ns=ns)
        return at

    def restore(self, host: str) -> None:
        ns = topo.host(host).netns
        network.ip("link", "set", self.interface, "up", ns=ns)
        time.sleep(0.2)
        now = set(network.ip("-4", "route", "show", ns=ns).stdout.splitlines())
        saved = recall(self.name, host, [])
        for line in saved if isinstance(saved, list) else []:
            clean = line.replace(" linkdown", "").strip()
            if clean in now or " proto kernel " in f" {clean} ":
                continue
            network.ip("route", "replace", *clean.split(), ns=ns, check=False)


@dataclass
class NatFlushed(Fault):
    """The NAT ruleset disappears (an `nft flush ruleset` by another tool): egress stops, VRRP goes on."""

    name: str = "nat-flushed"
    label: str = "NAT ruleset deleted"

    def inject(self, host: str) -> float:
        at = time.time()
        # The host's own nft: the controller's may be older than the ruleset it would have to parse.
        sh(host, "nft delete table ip nat_gateway_ha")
        return at

    def restore(self, host: str) -> None:
        sh(host, "systemctl restart nat-gateway-ha-nat.service")


@dataclass
class ForwardingOff(Fault):
    """IP forwarding switched off (a sysctl reset by another package): nothing is routed any more."""

    name: str = "forwarding-off"
    label: str = "net.ipv4.ip_forward=0"

    def inject(self, host: str) -> float:
        at = time.time()
        in_ns(host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        return at

    def restore(self, host: str) -> None:
        in_ns(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")


@dataclass
class ConntrackFull(Fault):
    """The connection-tracking table fills up: new flows are dropped, established ones go on.

    nf_conntrack_max is global (only the initial namespace may set it) while each namespace counts its own
    entries, so the limit is lowered for the whole machine and only the master's table is filled, by
    unanswered UDP flows from the client through it.
    """

    name: str = "conntrack-full"
    label: str = "conntrack table full"
    limit: int = 4096

    def inject(self, host: str) -> float:
        remember(self.name, host, CT_MAX.read_text().strip())
        CT_MAX.write_text(f"{self.limit}\n")
        at = time.time()
        flood = (
            "import socket\n"
            f"for i in range({self.limit * 2}):\n"  # some are lost on the way: send plenty
            "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"    s.sendto(b'x', ('{topo.INTERNET_HOST.ip}', 9))\n"
            "    s.close()\n"
        )
        # Until the master's table is really full (a flood alone sometimes left it short of the mark).
        deadline = time.monotonic() + 15
        while True:
            in_ns("client", "python3", "-c", flood)
            count = int(in_ns(host, "cat", "/proc/sys/net/netfilter/nf_conntrack_count"))
            if count >= 0.95 * self.limit or time.monotonic() > deadline:
                return at

    def restore(self, host: str) -> None:
        CT_MAX.write_text(f"{recall(self.name, host, 262144)}\n")
        in_ns(host, "conntrack", "-F")


@dataclass
class PowerOff(Fault):
    """The instance dies with its NICs: the container is killed and its namespace deleted, so the kernel
    state that forwards and NATs (addresses, rules, conntrack) goes too. `restore` boots it again on the
    same disk, as an EC2 stop/start would."""

    name: str = "power-off"
    label: str = "host power-off (instance and NICs gone)"

    def inject(self, host: str) -> float:
        h = topo.host(host)
        at = time.time()
        containers.kill(h)
        network.delete_host(h)
        return at

    def restore(self, host: str) -> None:
        h = topo.host(host)
        network.build()
        containers.start(h, baseroot.ensure_base(), ssh.ensure_key(), fresh=False)
        ssh.wait(h)
        sh(host, "systemctl is-system-running --wait >/dev/null || true", timeout=120)


@dataclass
class PlannedSwitchover(Fault):
    """Not a fault: the operator's planned switchover to the peer, `playbooks/failover.yml` (make before
    break), for the bench to time beside the faults."""

    name: str = "planned-switchover"
    label: str = "planned switchover (playbooks/failover.yml)"

    def inject(self, host: str) -> float:
        peer = next(g.name for g in topo.gateways() if g.name != host)
        playbook = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(paths.REPO / "inventories/lab"),
        ]
        at = time.time()
        proc = subprocess.run(
            [*playbook, str(paths.REPO / "playbooks/failover.yml"), "-e", f"target={peer}"],
            cwd=paths.REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            raise FaultError(f"failover.yml to {peer} failed: {proc.stdout[-500:]}")
        return at

    def restore(self, host: str) -> None:
        pass  # the old master stays BACKUP (nopreempt)


def clear() -> list[str]:
    """Undo what faults left outside the hosts (rules at the VPC router and on the management bridge, the
    global conntrack limit); `natgw-lab down` and the fault matrix call it. Returns what it undid."""
    undone = []
    for ns in (None, network.VPC_NS):
        where = [] if ns is None else ["ip", "netns", "exec", ns]
        listed = subprocess.run([*where, "nft", "list", "table", "inet", FAULT_TABLE], capture_output=True)
        if listed.returncode == 0:
            drop_table(ns)
            undone.append(f"nft table inet {FAULT_TABLE} in {ns or 'the root namespace'}")
    for memo in sorted((paths.RUN_DIR / "faults").glob("*.json")):
        if memo.name.startswith(f"{ConntrackFull.name}-"):
            CT_MAX.write_text(f"{json.loads(memo.read_text())}\n")
            undone.append("nf_conntrack_max")
        memo.unlink()
    with contextlib.suppress(OSError):
        (paths.RUN_DIR / "faults").rmdir()
    return undone


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        StopKeepalived(),
        KillKeepalived(),
        KillAgent(),
        PowerOff(),
        LinkDown(),
        LinkDown(name="wan-down", label="WAN link (eth0) down", interface="eth0"),
        NatFlushed(),
        ForwardingOff(),
        ConntrackFull(),
        VrrpPartition(),
        ApiUnreachable(),
        ApiPathLost(),
        ImdsUnreachable(),
        RestartStorm(),
        UpstreamDown(),
        UpstreamDown(name="upstream-down-both", label="upstream unreachable from both", both=True),
        RogueVrrp(),
        PlannedSwitchover(),
    )
}
