"""The lab's networks: built as topology.py says, and packets flow where (and only where) a VPC sends them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from nat_gateway_ha_lab import network
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

pytestmark = pytest.mark.netns

SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); print("ready", flush=True)
while True:
    c, peer = s.accept(); c.sendall(peer[0].encode()); c.close()
"""

CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
    print(c.recv(64).decode())
"""


def _in_ns(ns: str | None, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


@pytest.fixture(scope="module")
def built() -> Iterator[None]:
    with exclusive_lab():
        try:
            network.build()
            network.build()  # idempotent: a second run completes nothing and breaks nothing
            yield
        finally:
            network.teardown()


class Servers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, ns: str | None, addr: IPv4Address, port: int) -> None:
        cmd = _in_ns(ns, sys.executable, "-c", SERVER, str(addr), str(port))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.stop()


def _connect(ns: str | None, addr: IPv4Address, port: int) -> str:
    """The source address the server saw, or '' if the connection failed."""
    cmd = _in_ns(ns, sys.executable, "-c", CLIENT, str(addr), str(port))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


@pytest.mark.usefixtures("built")
@pytest.mark.parametrize("host", topo.HOSTS, ids=lambda h: h.name)
def test_host_nics_carry_the_topology_macs_and_addresses(host: topo.Host) -> None:
    for nic in host.nics:
        out = network.ip("-o", "addr", "show", "dev", nic.name, ns=host.netns).stdout
        for addr in (nic.address, *nic.secondary):
            assert f" {addr}/{topo.subnet(nic.subnet).cidr.prefixlen} " in out
        assert (
            f"link/ether {nic.mac} "
            in network.ip("-o", "link", "show", "dev", nic.name, ns=host.netns).stdout
        )
    routes = network.ip("route", "show", ns=host.netns).stdout
    assert f"default via {topo.subnet(host.nic('eth0').subnet).router} dev eth0" in routes
    assert f"{topo.IMDS_ADDR} via {topo.MGMT_NET.ip} dev mgmt0" in routes


@pytest.mark.usefixtures("built")
def test_vpc_routes_between_subnets(servers: Servers) -> None:
    gw1, gw2 = topo.host("gw1"), topo.host("gw2")
    lan2 = gw2.nic("eth1").address
    servers.start(gw2.netns, lan2, 7001)
    # gw1 leaves through its eth0 subnet's router; natlab-vpc forwards to gw2's LAN subnet, untranslated.
    assert _connect(gw1.netns, lan2, 7001) == str(gw1.nic("eth0").address)


@pytest.mark.usefixtures("built")
def test_controller_reaches_hosts_and_hosts_reach_imds_address(servers: Servers) -> None:
    client = topo.host("client")
    servers.start(client.netns, client.mgmt, 7002)
    assert _connect(None, client.mgmt, 7002) == str(topo.MGMT_NET.ip)
    servers.start(None, topo.IMDS_ADDR, 7003)
    assert _connect(client.netns, topo.IMDS_ADDR, 7003) == str(client.mgmt)


@pytest.mark.usefixtures("built")
def test_private_addresses_do_not_reach_the_internet_host_without_the_data_plane(servers: Servers) -> None:
    servers.start(network.INET_NS, topo.INTERNET_HOST.ip, 7004)
    # natlab-inet only routes the EIP pool back: without an EIP mapping there is no way home, as at AWS.
    assert _connect(topo.host("client").netns, topo.INTERNET_HOST.ip, 7004) == ""


def _mac(ns: str | None, link: str) -> str:
    out = subprocess.run(_in_ns(ns, "cat", f"/sys/class/net/{link}/address"), capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.usefixtures("built")
def test_a_host_powered_off_changes_no_address_the_others_have_learned() -> None:
    """A bridge takes its lowest port MAC unless set: a vanished host would leave stale ARP entries."""
    gw1 = topo.host("gw1")
    bridges = [(None, network.MGMT_BRIDGE)] + [(network.VPC_NS, s.bridge) for s in topo.SUBNETS]
    before = {b: _mac(ns, b) for ns, b in bridges}
    network.delete_host(gw1)
    try:
        assert {b: _mac(ns, b) for ns, b in bridges} == before
        assert before[network.MGMT_BRIDGE] == network.MGMT_MAC
    finally:
        network.build()
