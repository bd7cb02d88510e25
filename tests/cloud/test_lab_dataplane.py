"""The lab's data plane follows the EC2 API, and only the API: routes steer the client, EIPs let replies back.

The netns tests build the lab's own network (`network.build`, never on top of a running lab): the VPC router
with one bridge per subnet, two "gateways" that forward and SNAT like the role's hosts, a client, and the
internet host running the lab's HTTP server. moto runs as the lab runs it
(`cloud.serve` with the data plane as its mutation hook), seeded by `seed.seed`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import boto3
import pytest

from nat_gateway_ha_lab import cloud, dataplane, internet, moto_model, network, seed
from nat_gateway_ha_lab import topology as topo
from support import exclusive_lab

VPC = network.VPC_NS
EIP = str(seed.LAB_EIP)
WHOAMI = f"http://{topo.INTERNET_HOST.ip}/whoami"
GW1, GW2 = topo.gateways()


def _ns(host: str) -> str:
    return {"vpc": network.VPC_NS, "inet": network.INET_NS}.get(host) or topo.host(host).netns


# ---------------------------------------------------------------------------------------------------------
# Without root: what the data plane reads from the cloud and what it would log and program.


@pytest.fixture
def seeded(aws_fixes: None) -> Iterator[tuple[Any, seed.CloudState]]:
    with moto_model.mock():
        ec2 = boto3.client("ec2", region_name=topo.REGION)
        yield ec2, seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock")


def test_view_resolves_routes_to_next_hops(seeded: tuple[Any, seed.CloudState]) -> None:
    _ec2, state = seeded
    view = moto_model.cloud_view()
    lan_a = state.private_route_tables["lan-a"]
    assert view.subnet_tables["lan-a"] == lan_a
    assert view.subnet_tables["pub-a"] == state.public_route_table
    target = view.routes[lan_a]["0.0.0.0/0"]
    gw1_lan = GW1.nic("eth1")
    assert target.next_hop == gw1_lan.address
    assert target.dev == topo.subnet(gw1_lan.subnet).bridge
    assert target.label == f"{state.instances['gw1'].nics['eth1'].eni_id} (gw1)"
    igw = view.routes[state.public_route_table]["0.0.0.0/0"]
    assert (igw.next_hop, igw.dev) == (topo.INTERNET_HOST.ip, dataplane.IGW_LINK)
    public = {IPv4Address(EIP): None}  # the pair's EIP, allocated and not associated; each gateway's own:
    for gw in (GW1, GW2):
        wan = gw.nic("eth0")
        assert wan.public is not None
        public[wan.public] = dataplane.Eip(wan.address, gw.name)
    assert view.eips == public


def test_view_follows_eip_to_the_requested_private_ip(seeded: tuple[Any, seed.CloudState]) -> None:
    ec2, state = seeded
    wan = state.instances["gw2"].nics["eth0"]
    ec2.associate_address(
        AllocationId=state.eip_allocation_id,
        NetworkInterfaceId=wan.eni_id,
        PrivateIpAddress=wan.private_ips[1],
    )
    view = moto_model.cloud_view()
    assert view.eips[IPv4Address(EIP)] == dataplane.Eip(IPv4Address(wan.private_ips[1]), "gw2")


def test_changes_are_logged_once_with_owner_names(seeded: tuple[Any, seed.CloudState]) -> None:
    ec2, state = seeded
    before = moto_model.cloud_view()
    lan_b = state.private_route_tables["lan-b"]
    gw2_lan = state.instances["gw2"].nics["eth1"].eni_id
    ec2.replace_route(RouteTableId=lan_b, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=gw2_lan)
    ec2.delete_route(RouteTableId=state.private_route_tables["lan-a"], DestinationCidrBlock="0.0.0.0/0")
    after = moto_model.cloud_view()
    lines = dataplane._changes(before, after, 12.5)
    assert sorted(lines) == sorted(
        [
            f"12.500000 route {state.private_route_tables['lan-a']} 0.0.0.0/0 -> none",
            f"12.500000 route {lan_b} 0.0.0.0/0 -> {gw2_lan} (gw2)",
        ]
    )
    assert dataplane._changes(after, after, 13.0) == []


def test_nat_maps_are_swapped_in_one_transaction() -> None:
    script = dataplane._table_script({IPv4Address(EIP): dataplane.Eip(IPv4Address("10.77.1.54"), "gw2")})
    lines = script.splitlines()
    assert lines[:2] == [
        f"flush map ip {dataplane.NFT_TABLE} eip_in",
        f"flush map ip {dataplane.NFT_TABLE} eip_out",
    ]
    assert f"eip_in {{ {EIP} : 10.77.1.54 }}" in lines[2]
    assert f"eip_out {{ 10.77.1.54 : {EIP} }}" in lines[3]
    assert dataplane._table_script({IPv4Address(EIP): None}).count("add element") == 0


# ---------------------------------------------------------------------------------------------------------
# With root: a small VPC in network namespaces, forwarding for real.


def sh(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done


def in_ns(host: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", _ns(host), *cmd, check=check)


def _gateway_rules(host: topo.Host) -> str:
    """What the role does to a gateway, in short: SNAT to the EIP's private IP, drop mid-stream strangers."""
    wan = host.nic("eth0")
    return f"""
table ip gw {{
    chain forwarded {{
        type filter hook forward priority 0;
        iifname "eth1" counter
    }}
    chain inbound {{
        type filter hook input priority 0;
        iifname "eth0" ct state new tcp flags & (fin|syn|rst|ack) != syn drop
    }}
    chain post {{
        type nat hook postrouting priority srcnat;
        oifname "eth0" snat to {wan.secondary[0]}
    }}
}}
"""


def _build_netns() -> None:
    """The lab's own network (`network.build`), plus what the role does to the gateways, in short."""
    network.build()
    for host in topo.gateways():
        in_ns(
            host.name,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=2",
            "net.netfilter.nf_conntrack_tcp_be_liberal=1",
        )
        sh("ip", "netns", "exec", _ns(host.name), "nft", "-f", "-", stdin=_gateway_rules(host))


@dataclass
class Lab:
    ec2: Any
    state: seed.CloudState
    plane: dataplane.DataPlane
    log: Path

    def eni(self, host: str, nic: str) -> str:
        return self.state.instances[host].nics[nic].eni_id

    def point_routes(self, host: str) -> None:
        for rtb in self.state.private_route_tables.values():
            self.ec2.replace_route(
                RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=self.eni(host, "eth1")
            )

    def move_eip(self, host: str) -> None:
        wan = self.state.instances[host].nics["eth0"]
        self.ec2.associate_address(
            AllocationId=self.state.eip_allocation_id,
            NetworkInterfaceId=wan.eni_id,
            PrivateIpAddress=wan.private_ips[1],
            AllowReassociation=True,
        )

    def source_dest_check(self, host: str, enabled: bool) -> None:
        for nic in self.state.instances[host].nics.values():
            self.ec2.modify_network_interface_attribute(
                NetworkInterfaceId=nic.eni_id, SourceDestCheck={"Value": enabled}
            )

    def forwarded(self, host: str) -> int:
        out = in_ns(host, "nft", "list", "chain", "ip", "gw", "forwarded").stdout
        return int(out.split("packets")[1].split()[0])


def whoami(timeout: float = 2.0) -> str | None:
    done = in_ns("client", "curl", "-sS", "-m", str(timeout), WHOAMI, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="needs root and nftables for network namespaces"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        pytest.skip("needs root and nftables for network namespaces")
    with exclusive_lab():
        yield from _lab(tmp_path_factory)


def _lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _build_netns()
    log = tmp_path_factory.mktemp("dataplane") / "dataplane.log"
    inet = subprocess.Popen(
        ["ip", "netns", "exec", _ns("inet"), sys.executable, "-m", "nat_gateway_ha_lab.internet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    plane = dataplane.DataPlane(moto_model.cloud_view, log, netns=VPC)
    server = cloud.serve("127.0.0.1", 0, plane.on_mutation)
    try:
        server.reset()
        dataplane.setup(VPC)
        ec2 = boto3.client("ec2", region_name=topo.REGION, endpoint_url=server.url)
        state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url=server.url)
        lab = Lab(ec2, state, plane, log)
        for gw in (GW1, GW2):  # what the role's provisioning does: gateways forward
            lab.source_dest_check(gw.name, False)
        plane.sync()
        deadline = time.monotonic() + 10
        while sh("ip", "netns", "exec", _ns("inet"), "ss", "-Hltn", "sport = :80").stdout.strip() == "":
            assert time.monotonic() < deadline, "internet server did not start"
            time.sleep(0.1)
        yield lab
    finally:
        server.stop()
        server.reset()
        inet.terminate()
        inet.wait(timeout=5)
        dataplane.teardown(VPC)
        network.teardown()


@pytest.mark.netns
@needs_root
def test_no_eip_no_egress_then_egress_through_the_eip(lab: Lab) -> None:
    lab.point_routes("gw1")
    assert whoami(timeout=1) is None  # seeded: EIP allocated, not associated: the IGW drops the traffic
    lab.move_eip("gw1")
    assert whoami() == EIP
    assert f"eip {EIP} -> {GW1.nic('eth0').secondary[0]} (gw1)" in lab.log.read_text()


@pytest.mark.netns
@needs_root
def test_client_traffic_follows_the_route_table_only(lab: Lab) -> None:
    lab.point_routes("gw1")
    lab.move_eip("gw1")
    assert whoami() == EIP
    # The EIP moves, the route does not: traffic still goes to gw1, whose SNAT address has no EIP any more.
    lab.move_eip("gw2")
    before = lab.forwarded("gw1"), lab.forwarded("gw2")
    assert whoami(timeout=1) is None
    assert lab.forwarded("gw1") > before[0] and lab.forwarded("gw2") == before[1]
    # Now the route moves too: gw2 forwards and the reply comes back through the EIP.
    lab.point_routes("gw2")
    before = lab.forwarded("gw1"), lab.forwarded("gw2")
    assert whoami() == EIP
    assert lab.forwarded("gw2") > before[1] and lab.forwarded("gw1") == before[0]
    # The route moves back, the EIP does not: gw1 forwards, but replies have nowhere to come back to.
    lab.point_routes("gw1")
    assert whoami(timeout=1) is None
    lines = lab.log.read_text().splitlines()
    rtb = lab.state.private_route_tables["lan-a"]
    assert any(line.endswith(f"route {rtb} 0.0.0.0/0 -> {lab.eni('gw2', 'eth1')} (gw2)") for line in lines)
    assert float(lines[-1].split()[0]) > 0


@pytest.mark.netns
@needs_root
def test_a_tcp_flow_survives_the_eip_and_routes_moving(lab: Lab) -> None:
    """The IGW's NAT is stateless: after the move the server still talks to the same EIP and port."""
    lab.point_routes("gw1")
    lab.move_eip("gw1")
    size, rate = 3_000_000, 1_000_000  # about 3 s
    out = Path(lab.log.parent, "download")
    curl = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            _ns("client"),
            "curl",
            "-sS",
            "-m",
            "30",
            "-o",
            str(out),
            f"http://{topo.INTERNET_HOST.ip}/bytes?size={size}&rate={rate}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    assert 0 < out.stat().st_size < size, "the download should be under way when the gateway changes"
    # Routes first, as a takeover should: the client's ACKs then reach gw2 and give it the flow's state
    # before the EIP brings the server's segments there (gw2 cannot forward those without that state).
    lab.point_routes("gw2")
    lab.move_eip("gw2")
    forwarded = lab.forwarded("gw2")
    _, err = curl.communicate(timeout=30)
    assert curl.returncode == 0, err
    assert hashlib.sha256(out.read_bytes()).hexdigest() == internet.sha256(size)
    assert lab.forwarded("gw2") > forwarded  # the rest of the flow went through gw2


@pytest.mark.netns
@needs_root
def test_a_gateway_forwards_only_without_source_dest_check(lab: Lab) -> None:
    lab.point_routes("gw1")
    lab.move_eip("gw1")
    assert whoami() == EIP
    lab.source_dest_check("gw1", True)
    try:
        assert whoami(timeout=1) is None  # EC2 drops what gw1 forwards: neither source nor destination is its
        assert f"source-dest-check {GW1.nic('eth1').mac} on" in lab.log.read_text()
        # The client's own traffic to gw1's addresses is still delivered.
        done = in_ns(
            "client",
            "curl",
            "-sS",
            "-m",
            "2",
            "-o",
            "/dev/null",
            f"telnet://{GW1.nic('eth1').address}:1",
            check=False,
        )
        assert done.returncode == 7, done.stderr  # refused at once: it reached gw1 (a drop would time out)
    finally:
        lab.source_dest_check("gw1", False)
    assert whoami() == EIP
