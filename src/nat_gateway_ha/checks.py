"""The data-path checks: each answers "could this gateway carry egress right now?" for one part of it.

They read the kernel's own view (sysfs, procfs, nftables), never a config file, because a fault that breaks
egress is a change of live state: a link that went down, a flushed ruleset, forwarding switched off, a
conntrack table that is full. Each returns a `Check` whose detail says what was seen, for the status.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nat_gateway_ha.config import UpstreamTarget

SYS_NET = Path("/sys/class/net")
PROC_SYS = Path("/proc/sys/net")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def link(interface: str) -> Check:
    """Administratively up with a carrier: keepalived tracks this too, the agent damps its return."""
    name = f"link_{interface}"
    oper = _read(SYS_NET / interface / "operstate")
    carrier = _read(SYS_NET / interface / "carrier")
    if oper is None:
        return Check(name, False, f"no interface {interface}")
    return Check(name, oper in ("up", "unknown") and carrier == "1", f"operstate {oper}, carrier {carrier}")


def forwarding(*interfaces: str) -> Check:
    """IPv4 forwarding on globally and on every interface the NATed traffic crosses."""
    off = []
    if _read(PROC_SYS / "ipv4/ip_forward") != "1":
        off.append("net.ipv4.ip_forward")
    for iface in interfaces:
        if _read(PROC_SYS / f"ipv4/conf/{iface}/forwarding") != "1":
            off.append(f"net.ipv4.conf.{iface}.forwarding")
    return Check("forwarding", not off, f"off: {', '.join(off)}" if off else "on")


def conntrack_table() -> tuple[int, int] | None:
    """(entries, size) of the kernel's connection-tracking table; None when nf_conntrack is not loaded."""
    count, limit = (
        _read(PROC_SYS / "netfilter/nf_conntrack_count"),
        _read(PROC_SYS / "netfilter/nf_conntrack_max"),
    )
    if count is None or limit is None:
        return None
    return int(count), int(limit)


def conntrack(high_water: float) -> Check:
    """The connection-tracking table below its high-water mark: past it new flows are dropped."""
    table = conntrack_table()
    if table is None:
        return Check("conntrack", False, "nf_conntrack not loaded")
    used, cap = table
    ok = cap == 0 or used < high_water * cap
    return Check("conntrack", ok, f"{used} of {cap} entries")


def nat_ruleset(table: str) -> Check:
    """The role's nftables table is loaded and still holds its SNAT rule."""
    try:
        proc = subprocess.run(
            ["nft", "list", "table", "ip", table], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        return Check("nat_ruleset", False, f"nft failed: {err}")
    if proc.returncode != 0:
        return Check("nat_ruleset", False, f"table ip {table} missing")
    if " snat " not in proc.stdout:
        return Check("nat_ruleset", False, f"table ip {table} has no snat rule")
    return Check("nat_ruleset", True, f"table ip {table} loaded")


def vrrp_foreign_dropped(table: str) -> int | None:
    """VRRP packets the role's nftables table dropped as not from the pair's peers (its `vrrp_foreign`
    counter); None when the table or the counter is missing."""
    try:
        proc = subprocess.run(
            ["nft", "-j", "list", "counter", "ip", table, "vrrp_foreign"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
        items = json.loads(proc.stdout)["nftables"] if proc.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None
    counters = [i["counter"] for i in items if isinstance(i, dict) and "counter" in i]
    return int(counters[0]["packets"]) if counters else None


def wan_route(wan: str, source: str, probe: str) -> Check:
    """The kernel would send NATed traffic out of the WAN interface: a lost default route breaks egress
    as surely as a dead link, and nothing else notices it."""
    try:
        proc = subprocess.run(
            ["ip", "-4", "-o", "route", "get", probe, "from", source],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        return Check("wan_route", False, f"ip route get failed: {err}")
    words = proc.stdout.split()
    dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    if proc.returncode != 0 or dev != wan:
        why = proc.stderr.strip() or f"leaves by {dev}"
        return Check("wan_route", False, f"no route to {probe} from {source} on {wan}: {why}")
    return Check("wan_route", True, f"to {probe} via {wan}")


def local(wan: str, lan: str, nat_table: str, high_water: float, source: str, probe: str) -> list[Check]:
    """Every check that needs nothing beyond this host."""
    return [
        link(wan),
        link(lan),
        wan_route(wan, source, probe),
        forwarding(wan, lan),
        nat_ruleset(nat_table),
        conntrack(high_water),
    ]


# -- upstream ---------------------------------------------------------------------------------------------
def _tcp(source: str, target: UpstreamTarget, timeout: float) -> bool:
    """A TCP handshake from `source`: any answer (even a refusal) proves the path works both ways."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.bind((source, 0))
            s.connect((str(target.host), target.port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
    return True


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return int(~(total + (total >> 16)) & 0xFFFF)


def _icmp(source: str, target: UpstreamTarget, timeout: float) -> bool:
    """One ICMP echo from `source` (a raw socket: CAP_NET_RAW)."""
    ident, seq = os.getpid() & 0xFFFF, int(time.monotonic() * 1000) & 0xFFFF
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + b"natgwha!"), ident, seq) + b"natgwha!"
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        try:
            s.bind((source, 0))
            s.sendto(packet, (str(target.host), 0))
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                data, (addr, _) = s.recvfrom(1024)
                ihl = (data[0] & 0x0F) * 4
                kind, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if addr == str(target.host) and kind == 0 and (rid, rseq) == (ident, seq):
                    return True
        except OSError:
            return False
    return False


def upstream(source: str, targets: list[UpstreamTarget], method: str, timeout: float) -> Check:
    """All targets probed in parallel from the EIP's private address; a majority must answer."""
    if not targets:
        return Check("upstream", True, "no targets configured")
    probe = _icmp if method == "icmp" else _tcp
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        answers = list(pool.map(lambda t: probe(source, t, timeout), targets))
    good = sum(answers)
    failed = [str(t.host) for t, ok in zip(targets, answers, strict=True) if not ok]
    detail = f"{good} of {len(targets)} answered" + (f" (no answer: {', '.join(failed)})" if failed else "")
    return Check("upstream", good * 2 > len(targets), detail)
