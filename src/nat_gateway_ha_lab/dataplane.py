"""The VPC's data plane: the kernel in natlab-vpc forwards as the EC2 API says, and only as it says.

- Each subnet's traffic (arriving on its bridge) is routed by its route table, copied into a kernel table of
  its own; VPC-local destinations always stay local, as AWS's `local` route does. A route to an ENI becomes
  "via that ENI's primary IP on its subnet's bridge", to the IGW "via the internet host", anything else (or
  an ENI without an instance) a blackhole.
- The internet gateway realises EIP associations as stateless 1:1 NAT on the IGW link (nftables, notrack,
  address maps swapped in one transaction): no ports and no connection state, so a flow survives an EIP
  moving between gateways, as at AWS. A private address without an EIP never reaches the internet.
- Source/destination check: an ENI that has it enabled (EC2's default) neither sends a packet whose
  source is not one of its addresses nor receives one whose destination is not; so a gateway forwards
  only once its ENIs' check is disabled through the API (a bridge-family nftables table on the subnets).

`DataPlane.sync()` reads the cloud (a `CloudView`), applies only what changed and appends one line per
change to the log the benchmarks read: `<epoch> route rtb-.. 0.0.0.0/0 -> eni-.. (gw2)` and
`<epoch> eip 203.0.113.10 -> 10.77.1.54 (gw2)`, with `none` when a route or association disappears.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from nat_gateway_ha_lab import proc
from nat_gateway_ha_lab import topology as topo

log = logging.getLogger(__name__)

VPC_NETNS = f"{topo.PREFIX}-vpc"
IGW_LINK = f"{topo.PREFIX}-igw"
NFT_TABLE = "natlab_igw"
SDC_TABLE = "natlab_sdc"  # bridge family: source/destination check of ENIs that have it enabled
TABLE_BASE = 100  # kernel table of topology subnet i: TABLE_BASE + i
RULE_LOCAL = 100  # `to VPC lookup main`
RULE_SUBNET = 200  # + i: `iif <bridge> lookup <its table>`
RULE_DROP = 300  # + i: `iif <bridge> blackhole` (no route in the table: dropped, as at AWS)


@dataclass(frozen=True)
class Target:
    """Where a route sends traffic, resolved to what the kernel needs."""

    label: str  # what the log shows: eni-.. (gw2), igw-.. (internet), blackhole
    next_hop: IPv4Address | None = None
    dev: str | None = None

    def kernel(self, dest: str) -> str:
        if self.next_hop is None or self.dev is None:
            return f"blackhole {dest}"
        return f"{dest} via {self.next_hop} dev {self.dev} onlink"


BLACKHOLE = Target("blackhole")


@dataclass(frozen=True)
class Eip:
    private_ip: IPv4Address
    host: str


@dataclass
class CloudView:
    """What the data plane follows: every route table's routes, each subnet's table, each EIP's mapping."""

    routes: dict[str, dict[str, Target]] = field(default_factory=dict)  # rtb -> destination -> target
    subnet_tables: dict[str, str] = field(default_factory=dict)  # topology subnet name -> rtb
    eips: dict[IPv4Address, Eip | None] = field(default_factory=dict)  # public -> mapping
    checked: dict[str, tuple[IPv4Address, ...]] = field(default_factory=dict)  # MAC -> addresses (SDC on)


def _run(cmd: list[str], stdin: str | None = None) -> None:
    proc.run(cmd, stdin=stdin)


def _ip_batch(netns: str, commands: list[str]) -> None:
    if commands:
        _run(["ip", "-n", netns, "-batch", "-"], "\n".join(commands) + "\n")


def _nft(netns: str, script: str) -> None:
    _run(["ip", "netns", "exec", netns, "nft", "-f", "-"], script)


def _table_script(eips: dict[IPv4Address, Eip | None]) -> str:
    """One nft transaction: both address maps replaced at once, so no packet sees half a move."""
    inbound = [f"{pub} : {m.private_ip}" for pub, m in sorted(eips.items()) if m is not None]
    outbound = [f"{m.private_ip} : {pub}" for pub, m in sorted(eips.items()) if m is not None]
    lines = [f"flush map ip {NFT_TABLE} eip_in", f"flush map ip {NFT_TABLE} eip_out"]
    if inbound:
        lines.append(f"add element ip {NFT_TABLE} eip_in {{ {', '.join(inbound)} }}")
        lines.append(f"add element ip {NFT_TABLE} eip_out {{ {', '.join(sorted(outbound))} }}")
    return "\n".join(lines) + "\n"


def _sdc_ruleset(checked: dict[str, tuple[IPv4Address, ...]]) -> str:
    """The source/destination check as one bridge table, replaced whole (atomically) when ENIs change.

    Frames between ports (forward), to the VPC router (input) and from it (output): an ENI in `checked`
    may only send from, and receive to, its own addresses. ARP and other non-IPv4 frames pass.
    """
    macs = ", ".join(sorted(checked))
    owns = ", ".join(f"{mac} . {ip}" for mac, ips in sorted(checked.items()) for ip in ips)
    sets = ""
    if checked:
        sets = f"""
    set checked {{ type ether_addr; elements = {{ {macs} }} }}
    set owns {{ type ether_addr . ipv4_addr; elements = {{ {owns} }} }}"""
    src = "ether type ip ether saddr @checked ether saddr . ip saddr != @owns counter drop" if checked else ""
    dst = "ether type ip ether daddr @checked ether daddr . ip daddr != @owns counter drop" if checked else ""
    return f"""
table bridge {SDC_TABLE}
delete table bridge {SDC_TABLE}
table bridge {SDC_TABLE} {{{sets}
    chain forward {{
        type filter hook forward priority 0; policy accept;
        {src}
        {dst}
    }}
    chain input {{
        type filter hook input priority 0; policy accept;
        {src}
    }}
    chain output {{
        type filter hook output priority 0; policy accept;
        {dst}
    }}
}}
"""


def _base_ruleset() -> str:
    return f"""
table ip {NFT_TABLE}
delete table ip {NFT_TABLE}
table ip {NFT_TABLE} {{
    map eip_in {{ type ipv4_addr : ipv4_addr; }}
    map eip_out {{ type ipv4_addr : ipv4_addr; }}
    chain pre {{
        type filter hook prerouting priority raw; policy accept;
        notrack
        iifname "{IGW_LINK}" ip daddr set ip daddr map @eip_in
        iifname "{IGW_LINK}" ip daddr {topo.EIP_POOL} counter drop comment "no EIP association"
    }}
    chain post {{
        type filter hook postrouting priority raw; policy accept;
        oifname "{IGW_LINK}" ip saddr set ip saddr map @eip_out
        oifname "{IGW_LINK}" ip saddr {topo.VPC_CIDR} counter drop comment "private source without an EIP"
    }}
}}
"""


def setup(netns: str = VPC_NETNS) -> None:
    """Forwarding, the policy rules and the empty NAT table in the VPC router's namespace. Idempotent."""
    sysctls = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
    # The router forwards a client's packet back out of the bridge it came in on (gateway on the same
    # subnet): without this it would tell the client to bypass it with an ICMP redirect.
    for dev in ("all", "default", *(s.bridge for s in topo.SUBNETS)):
        sysctls.append(f"net.ipv4.conf.{dev}.send_redirects=0")
    _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *sysctls])
    _remove_rules(netns)
    rules = [f"rule add pref {RULE_LOCAL} to {topo.VPC_CIDR} lookup main"]
    for i, sn in enumerate(topo.SUBNETS):
        rules.append(f"rule add pref {RULE_SUBNET + i} iif {sn.bridge} lookup {TABLE_BASE + i}")
        rules.append(f"rule add pref {RULE_DROP + i} iif {sn.bridge} blackhole")
        rules.append(f"route flush table {TABLE_BASE + i}")
    _ip_batch(netns, rules)
    _nft(netns, _base_ruleset())
    _nft(netns, _sdc_ruleset({}))


def teardown(netns: str = VPC_NETNS) -> None:
    """Remove what `setup` and `sync` added, if the namespace still exists."""
    if not Path("/run/netns", netns).exists():
        return
    _remove_rules(netns)
    for i in range(len(topo.SUBNETS)):
        subprocess.run(
            ["ip", "-n", netns, "route", "flush", "table", str(TABLE_BASE + i)], capture_output=True
        )
    _nft(netns, f"table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n")
    _nft(netns, f"table bridge {SDC_TABLE}\ndelete table bridge {SDC_TABLE}\n")


def _remove_rules(netns: str) -> None:
    prefs = [RULE_LOCAL] + [base + i for base in (RULE_SUBNET, RULE_DROP) for i in range(len(topo.SUBNETS))]
    for pref in prefs:
        while (
            subprocess.run(
                ["ip", "-n", netns, "rule", "del", "pref", str(pref)], capture_output=True
            ).returncode
            == 0
        ):
            pass


class DataPlane:
    """Follows a `CloudView` source; `sync()` is safe to call from any thread, as often as wanted."""

    def __init__(self, read_view: Callable[[], CloudView], log_path: Path, netns: str = VPC_NETNS) -> None:
        self._read_view = read_view
        self._netns = netns
        self._log_path = log_path
        self._lock = threading.Lock()
        self._seen = CloudView()
        self._kernel: dict[str, dict[str, str]] = {}  # subnet -> destination -> kernel route applied
        self._sdc_applied = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def sync(self) -> int:
        """Apply what changed since the last sync; returns the number of changes logged."""
        with self._lock:
            view = self._read_view()
            self._apply_routes(view)
            if view.eips != self._seen.eips:
                _nft(self._netns, _table_script(view.eips))
            if view.checked != self._seen.checked or not self._sdc_applied:
                _nft(self._netns, _sdc_ruleset(view.checked))
                self._sdc_applied = True
            lines = _changes(self._seen, view, time.time())
            self._seen = view
            self._write(lines)
            return len(lines)

    def _apply_routes(self, view: CloudView) -> None:
        commands: list[str] = []
        applied: dict[str, dict[str, str]] = {}
        for i, sn in enumerate(topo.SUBNETS):
            rtb = view.subnet_tables.get(sn.name)
            want = {d: t.kernel(d) for d, t in (view.routes.get(rtb, {}) if rtb else {}).items()}
            have = self._kernel.get(sn.name, {})
            table = TABLE_BASE + i
            commands += [
                f"route replace {r} table {table}" for d, r in sorted(want.items()) if have.get(d) != r
            ]
            commands += [f"route del {d} table {table}" for d in sorted(have) if d not in want]
            applied[sn.name] = want
        _ip_batch(self._netns, commands)
        self._kernel = applied

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        with self._log_path.open("a") as f:
            f.write("".join(line + "\n" for line in lines))
        for line in lines:
            log.info("%s", line)

    def on_mutation(self) -> None:
        """The cloud's hook: follow every successful mutation before the API answers."""
        try:
            self.sync()
        except Exception:
            self.errors += 1
            log.exception("data plane sync after a mutation failed")

    def start(self, interval: float = 5.0) -> None:
        """A slow safety net under the hook: resync every `interval` seconds."""

        def loop() -> None:
            while not self._stop.wait(interval):
                self.on_mutation()

        self._thread = threading.Thread(target=loop, name="dataplane-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _changes(before: CloudView, after: CloudView, now: float) -> list[str]:
    """The log lines for what differs between two views (`none` for what disappeared)."""
    lines = []
    for rtb in sorted(set(before.routes) | set(after.routes)):
        old, new = before.routes.get(rtb, {}), after.routes.get(rtb, {})
        for dest in sorted(set(old) | set(new)):
            if old.get(dest) != new.get(dest):
                label = new[dest].label if dest in new else "none"
                lines.append(f"{now:.6f} route {rtb} {dest} -> {label}")
    for public in sorted(set(before.eips) | set(after.eips)):
        old_eip, new_eip = before.eips.get(public), after.eips.get(public)
        if old_eip != new_eip or (public in before.eips) != (public in after.eips):
            where = f"{new_eip.private_ip} ({new_eip.host})" if new_eip else "none"
            lines.append(f"{now:.6f} eip {public} -> {where}")
    for mac in sorted(set(before.checked) ^ set(after.checked)):
        state = "on" if mac in after.checked else "off"
        lines.append(f"{now:.6f} source-dest-check {mac} {state}")
    return lines
