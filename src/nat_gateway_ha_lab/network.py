"""The lab's networks, built from topology.py: one namespace per host, the VPC router, the internet host.

Layout (all names from topology.py):
- `natlab-vpc` stands for the VPC router and the internet gateway: one bridge per subnet carrying the
  subnet's router address, and the veth `natlab-igw` towards the internet host. The data plane (C2's
  dataplane.py) adds policy routing and NAT here; this module only gives it plain L3 between subnets.
- `natlab-<host>` per host: eth0/eth1 are veths whose peers sit on their subnet's bridge, with the ENI's
  MAC and addresses, and `mgmt0` on the root namespace bridge `natlab-mgmt` (the controller's side,
  where moto and the IMDS emulator listen).
- `natlab-inet` is the internet host; it routes the EIP pool back to the VPC, and answers for EC2's public
  endpoint (topology.EC2_API) by forwarding it to moto over a leg of its own on the management bridge.

Every step is idempotent (`build` twice is safe), and `teardown` removes everything whatever state a
previous build was left in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from ipaddress import IPv4Interface

from nat_gateway_ha_lab import proc
from nat_gateway_ha_lab import topology as topo

VPC_NS = f"{topo.PREFIX}-vpc"
INET_NS = f"{topo.PREFIX}-inet"
MGMT_BRIDGE = f"{topo.PREFIX}-mgmt"
IGW_LINK = f"{topo.PREFIX}-igw"
INET_LINK = "eth0"
MGMT_IFACE = "mgmt0"
# nftables table in the root namespace that keeps lab hosts from being forwarded anywhere through it.
ROOT_NFT_TABLE = f"{topo.PREFIX}_isolate"
INET_MGMT_PORT = f"{topo.PREFIX}-m-inet"  # root end of the internet host's management veth
API_NFT_TABLE = f"{topo.PREFIX}_ec2_api"  # in natlab-inet: EC2's public endpoint -> moto


class NetworkError(RuntimeError):
    pass


def _run(
    cmd: Sequence[str], check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return proc.run(cmd, stdin=stdin, check=check, error=NetworkError)


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    return _run(cmd, check=check)


def sysctl(ns: str, key: str, value: str) -> None:
    _run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"])


def namespaces() -> list[str]:
    """The lab's namespaces that exist now."""
    out = _run(["ip", "netns", "list"]).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{topo.PREFIX}-")]


def link_exists(name: str, ns: str | None = None) -> bool:
    return ip("link", "show", "dev", name, ns=ns, check=False).returncode == 0


def root_links() -> list[str]:
    """The lab's links in the root namespace (bridge and the management veths' host ends)."""
    out = ip("-o", "link", "show").stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]
    return [n for n in names if n.startswith(topo.PREFIX)]


def mgmt_port(host: topo.Host) -> str:
    """Root namespace end of a host's management veth."""
    return _ifname(f"{topo.PREFIX}-{host.name}-m")


def vpc_port(host: topo.Host, nic: topo.Nic) -> str:
    """natlab-vpc end of a host NIC's veth (a port of the subnet's bridge)."""
    return _ifname(f"{host.name}-{nic.name}")


def _ifname(name: str) -> str:
    if len(name) > 15:
        raise NetworkError(f"interface name {name!r} is longer than 15 characters; shorten the host name")
    return name


def router_mac(index: int) -> str:
    """A fixed MAC per subnet router, so ARP caches never see it change as ports join the bridge."""
    return f"02:77:ff:00:00:{index:02x}"


# A bridge without a set address takes its ports' lowest MAC: a host powered off would change it and leave
# every other host's ARP entry for the controller (EC2 API, IMDS) stale for half a minute.
MGMT_MAC = "02:77:fe:00:00:01"


def _ensure_ns(name: str) -> None:
    if name not in namespaces():
        _run(["ip", "netns", "add", name])
    ip("link", "set", "lo", "up", ns=name)


def _ensure_addr(ns: str | None, dev: str, addr: IPv4Interface | str) -> None:
    ip("addr", "replace", str(addr), "dev", dev, ns=ns)


def _ensure_veth(name: str, ns: str | None, peer: str, peer_ns: str) -> None:
    """A veth pair made directly in its two namespaces (never passing through the root one by name)."""
    if link_exists(name, ns) and link_exists(peer, peer_ns):
        return
    if link_exists(name, ns):  # half of a pair left by an interrupted build
        ip("link", "del", name, ns=ns)
    if link_exists(peer, peer_ns):
        ip("link", "del", peer, ns=peer_ns)
    ip("link", "add", name, "type", "veth", "peer", "name", peer, "netns", peer_ns, ns=ns)


def _build_vpc() -> None:
    _ensure_ns(VPC_NS)
    sysctl(VPC_NS, "net.ipv4.ip_forward", "1")
    for key in ("all", "default"):
        sysctl(VPC_NS, f"net.ipv4.conf.{key}.send_redirects", "0")
        sysctl(VPC_NS, f"net.ipv4.conf.{key}.rp_filter", "0")
    for index, sub in enumerate(topo.SUBNETS, start=1):
        if not link_exists(sub.bridge, VPC_NS):
            ip("link", "add", sub.bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", ns=VPC_NS)
        ip("link", "set", sub.bridge, "address", router_mac(index), ns=VPC_NS)
        sysctl(VPC_NS, f"net.ipv4.conf.{sub.bridge}.send_redirects", "0")
        sysctl(VPC_NS, f"net.ipv4.conf.{sub.bridge}.rp_filter", "0")
        _ensure_addr(VPC_NS, sub.bridge, IPv4Interface(f"{sub.router}/{sub.cidr.prefixlen}"))
        ip("link", "set", sub.bridge, "up", ns=VPC_NS)


def _build_host(host: topo.Host) -> None:
    ns = host.netns
    _ensure_ns(ns)
    for nic in host.nics:
        sub = topo.subnet(nic.subnet)
        _ensure_veth(vpc_port(host, nic), VPC_NS, nic.name, ns)
        ip("link", "set", nic.name, "address", nic.mac, ns=ns)
        for addr in (nic.address, *nic.secondary):
            _ensure_addr(ns, nic.name, IPv4Interface(f"{addr}/{sub.cidr.prefixlen}"))
        ip("link", "set", nic.name, "up", ns=ns)
        port = vpc_port(host, nic)
        ip("link", "set", port, "master", sub.bridge, ns=VPC_NS)
        ip("link", "set", port, "up", ns=VPC_NS)
    _ensure_veth(mgmt_port(host), None, MGMT_IFACE, ns)
    _ensure_addr(ns, MGMT_IFACE, IPv4Interface(f"{host.mgmt}/{topo.MGMT_NET.network.prefixlen}"))
    ip("link", "set", MGMT_IFACE, "up", ns=ns)
    ip("link", "set", mgmt_port(host), "master", MGMT_BRIDGE)
    ip("link", "set", mgmt_port(host), "up")
    primary = host.nic("eth0")
    ip("route", "replace", "default", "via", str(topo.subnet(primary.subnet).router), "dev", "eth0", ns=ns)
    ip("route", "replace", f"{topo.IMDS_ADDR}/32", "via", str(topo.MGMT_NET.ip), "dev", MGMT_IFACE, ns=ns)


def _build_mgmt() -> None:
    if not link_exists(MGMT_BRIDGE):
        ip("link", "add", MGMT_BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    ip("link", "set", MGMT_BRIDGE, "address", MGMT_MAC)
    _ensure_addr(None, MGMT_BRIDGE, topo.MGMT_NET)
    _ensure_addr(None, MGMT_BRIDGE, IPv4Interface(f"{topo.IMDS_ADDR}/32"))
    ip("link", "set", MGMT_BRIDGE, "up")
    # The root namespace may forward (Docker-like setups turn it on): lab hosts must never reach beyond it.
    rules = f"""
table inet {ROOT_NFT_TABLE}
delete table inet {ROOT_NFT_TABLE}
table inet {ROOT_NFT_TABLE} {{
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname "{MGMT_BRIDGE}" drop
        oifname "{MGMT_BRIDGE}" drop
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        # EC2 is reached the AWS way (topology.EC2_API, through the VPC): moto itself only by the controller
        # and the internet host's forward of that endpoint, never straight over the management bridge.
        iifname "{MGMT_BRIDGE}" tcp dport {topo.MOTO_PORT} ip saddr != {topo.INET_MGMT.ip} drop
    }}
}}
"""
    _run(["nft", "-f", "-"], stdin=rules)


def _build_inet() -> None:
    _ensure_ns(INET_NS)
    _ensure_veth(IGW_LINK, VPC_NS, INET_LINK, INET_NS)
    _ensure_addr(VPC_NS, IGW_LINK, topo.IGW_OUTSIDE)
    _ensure_addr(INET_NS, INET_LINK, topo.INTERNET_HOST)
    for extra in topo.UPSTREAM_TARGETS[1:]:
        _ensure_addr(INET_NS, INET_LINK, IPv4Interface(f"{extra}/{topo.INTERNET_HOST.network.prefixlen}"))
    ip("link", "set", IGW_LINK, "up", ns=VPC_NS)
    ip("link", "set", INET_LINK, "up", ns=INET_NS)
    ip("route", "replace", str(topo.EIP_POOL), "via", str(topo.IGW_OUTSIDE.ip), ns=INET_NS)
    _build_api_front()


def _build_api_front() -> None:
    """EC2's public endpoint on the internet host, forwarded (DNAT, then masquerade) to moto on the
    management bridge. Only connections to that endpoint are forwarded: the internet host is no way into the
    management network, and the gateways' own management legs have no route to it."""
    _ensure_addr(INET_NS, INET_LINK, IPv4Interface(f"{topo.EC2_API}/{topo.INTERNET_HOST.network.prefixlen}"))
    _ensure_veth(INET_MGMT_PORT, None, MGMT_IFACE, INET_NS)
    _ensure_addr(INET_NS, MGMT_IFACE, topo.INET_MGMT)
    ip("link", "set", MGMT_IFACE, "up", ns=INET_NS)
    ip("link", "set", INET_MGMT_PORT, "master", MGMT_BRIDGE)
    ip("link", "set", INET_MGMT_PORT, "up")
    sysctl(INET_NS, "net.ipv4.ip_forward", "1")
    moto = f"{topo.MGMT_NET.ip}:{topo.MOTO_PORT}"
    rules = f"""
table ip {API_NFT_TABLE}
delete table ip {API_NFT_TABLE}
table ip {API_NFT_TABLE} {{
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname "{INET_LINK}" ip daddr {topo.EC2_API} tcp dport {topo.EC2_API_PORT} dnat to {moto}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{MGMT_IFACE}" masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct status dnat accept
    }}
}}
"""
    _run(["ip", "netns", "exec", INET_NS, "nft", "-f", "-"], stdin=rules)


def build() -> None:
    """Create (or complete) every namespace, bridge, veth, address and route of the topology."""
    _build_mgmt()
    _build_vpc()
    _build_inet()
    for host in topo.HOSTS:
        _build_host(host)


def pids(ns: str) -> list[int]:
    """Processes living in a namespace (none if it does not exist)."""
    done = _run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


def reap(pid: int) -> None:
    """Collect a child's exit status (when `up` and `down` run in one process, e.g. tests)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_processes(ns: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process in a lab namespace (all were started by the lab); returns their pids."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while (found := pids(ns)) and time.monotonic() < deadline:
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            reap(pid)
        killed += [p for p in found if p not in killed]
        time.sleep(0.05)
    if pids(ns):
        raise NetworkError(f"processes {pids(ns)} survive SIGKILL in {ns}")
    return killed


def delete_host(host: topo.Host) -> None:
    """Delete a host's namespace (its processes must be gone): its NICs vanish from the VPC's bridges and
    the management bridge with it, and its kernel state (addresses, routes, rules, conntrack) with them."""
    if host.netns in namespaces():
        _run(["ip", "netns", "del", host.netns])


def teardown() -> list[str]:
    """Remove everything `build` makes; safe on a half-built or already removed lab. Returns what went."""
    removed: list[str] = []
    for ns in namespaces():
        if found := pids(ns):
            raise NetworkError(f"namespace {ns} still has processes {found}: stop the hosts first")
        # Deleting a namespace deletes its veths and, with them, their peers in other namespaces.
        _run(["ip", "netns", "del", ns])
        removed.append(f"netns {ns}")
    for link in root_links():
        if ip("link", "del", link, check=False).returncode == 0:
            removed.append(f"link {link}")
    if _run(["nft", "list", "table", "inet", ROOT_NFT_TABLE], check=False).returncode == 0:
        _run(["nft", "delete", "table", "inet", ROOT_NFT_TABLE])
        removed.append(f"nft table inet {ROOT_NFT_TABLE}")
    return removed


def leftovers() -> list[str]:
    """Whatever of the lab's network still exists (empty after a complete teardown)."""
    found = [f"netns {ns}" for ns in namespaces()]
    found += [f"link {link}" for link in root_links()]
    if _run(["nft", "list", "table", "inet", ROOT_NFT_TABLE], check=False).returncode == 0:
        found.append(f"nft table inet {ROOT_NFT_TABLE}")
    return sorted(set(found))


def is_built() -> bool:
    return VPC_NS in namespaces() and link_exists(MGMT_BRIDGE)
