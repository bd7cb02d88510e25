"""Shared fixtures: the lab's cloud (moto in-process or as a server, AWS fixes applied) seeded with the lab's
VPC from topology.py, and the IMDS emulator answering for one gateway. Generic on purpose: any test that
needs "a VPC with a gateway pair" can use `cloud_world`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from nat_gateway_ha_lab import cloud, imds, seed, topology

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", topology.REGION)
cloud.apply_aws_fixes()


@dataclass
class World:
    """What `seed_world` created, by name."""

    ec2: Any
    endpoint_url: str | None
    vpc_id: str
    subnets: dict[str, str]
    instances: dict[str, str]  # host -> instance id
    enis: dict[tuple[str, str], str]  # (host, nic name) -> eni id
    main_table: str
    private_tables: list[str]
    public_table: str
    igw: str
    eips: dict[str, str] = field(default_factory=dict)  # public ip -> allocation id

    def eni(self, host: str, nic: str) -> str:
        return self.enis[(host, nic)]


def seed_world(ec2: Any, endpoint_url: str | None, private_tables: int = 5) -> World:
    """Create the lab VPC (topology.py) in moto: two gateways, a client, the EIP, N private route tables.

    Private tables are tagged Network=private and start pointing 0.0.0.0/0 at gw1's LAN ENI and the EIP sits
    on gw1's WAN secondary IP, as after a first election; the first tables are associated with the private
    subnets.
    """
    vpc = ec2.create_vpc(CidrBlock=str(topology.VPC_CIDR))["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    subnets = {
        s.name: ec2.create_subnet(VpcId=vpc, CidrBlock=str(s.cidr), AvailabilityZone=s.az)["Subnet"][
            "SubnetId"
        ]
        for s in topology.SUBNETS
    }
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    public = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for s in topology.SUBNETS:
        if not s.private:
            ec2.associate_route_table(RouteTableId=public, SubnetId=subnets[s.name])
    instances: dict[str, str] = {}
    enis: dict[tuple[str, str], str] = {}
    set_mac = seed.moto_mac_setter()
    for h in topology.HOSTS:  # the lab's own launcher: the same ENIs, addresses, MACs and indexes
        inst = seed.launch(ec2, set_mac, h, subnets)
        instances[h.name] = inst.instance_id
        enis.update({(h.name, name): nic.eni_id for name, nic in inst.nics.items()})
    tables = []
    private_subnets = [s.name for s in topology.SUBNETS if s.private]
    for i in range(private_tables):
        rt = ec2.create_route_table(
            VpcId=vpc,
            TagSpecifications=[
                {"ResourceType": "route-table", "Tags": [{"Key": "Network", "Value": "private"}]},
            ],
        )["RouteTable"]["RouteTableId"]
        ec2.create_route(
            RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=enis[("gw1", "eth1")]
        )
        if i < len(private_subnets):
            ec2.associate_route_table(RouteTableId=rt, SubnetId=subnets[private_subnets[i]])
        tables.append(rt)
    eip = ec2.allocate_address(Domain="vpc", Address="203.0.113.10")
    ec2.associate_address(
        AllocationId=eip["AllocationId"],
        NetworkInterfaceId=enis[("gw1", "eth0")],
        PrivateIpAddress=str(topology.host("gw1").nic("eth0").secondary[0]),
    )
    return World(
        ec2=ec2,
        endpoint_url=endpoint_url,
        vpc_id=vpc,
        subnets=subnets,
        instances=instances,
        enis=enis,
        main_table=main,
        private_tables=tables,
        public_table=public,
        igw=igw,
        eips={eip["PublicIp"]: eip["AllocationId"]},
    )


def test_client(endpoint_url: str | None) -> Any:
    """A boto3 EC2 client for test set-up and assertions (no retries, so faults are visible)."""
    return boto3.client(
        "ec2",
        region_name=topology.REGION,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


test_client.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def moto_server() -> Iterator[cloud.ServerHandle]:
    """One moto server for the session (the lab's cloud in server mode, on a free local port)."""
    handle = cloud.serve("127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture(params=["inprocess", "server"])
def cloud_mode(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Yield the endpoint URL to use: None for moto in-process (mock_aws), the server's URL otherwise.

    Both modes start from an empty cloud and leave no faults armed.
    """
    from moto import mock_aws

    cloud.clear_faults()
    if request.param == "inprocess":
        with mock_aws():
            cloud.apply_aws_fixes()
            yield None
    else:
        server: cloud.ServerHandle = request.getfixturevalue("moto_server")
        server.reset()
        yield server.url
        server.reset()
    cloud.clear_faults()
    cloud.reset_calls()


@pytest.fixture
def cloud_world(cloud_mode: str | None) -> World:
    """The lab VPC with 5 private route tables, in either mode."""
    return seed_world(test_client(cloud_mode), cloud_mode, private_tables=5)


@pytest.fixture(scope="session")
def _imds_session() -> Iterator[imds.ImdsHandle]:
    target: dict[str, str | None] = {"id": None}
    handle = imds.serve("127.0.0.1", 0, resolver=lambda ip: target["id"] if ip == "127.0.0.1" else None)
    handle.target = target  # type: ignore[attr-defined]
    yield handle
    handle.stop()


@pytest.fixture
def imds_server(_imds_session: imds.ImdsHandle) -> Iterator[imds.ImdsHandle]:
    """The IMDS emulator (one per session); `handle.target["id"] = instance_id` says who 127.0.0.1 is."""
    yield _imds_session
    _imds_session.target["id"] = None  # type: ignore[attr-defined]
    _imds_session.emulator.delay = 0.0
    _imds_session.emulator._fail.clear()


@pytest.fixture
def inprocess_cloud() -> Iterator[None]:
    """moto in-process only, for tests about the agent rather than about the two ways of reaching moto."""
    from moto import mock_aws

    cloud.clear_faults()
    with mock_aws():
        yield None
    cloud.clear_faults()
    cloud.reset_calls()


@pytest.fixture
def inprocess_world(inprocess_cloud: None) -> World:
    return seed_world(test_client(None), None, private_tables=5)


def agent_config(world: World, host: str, imds_url: str, tmp: Any, **overrides: Any) -> Any:
    """An AgentConfig for `host` of the lab pair, as the role would render it (EIP on eth0's secondary IP)."""
    from nat_gateway_ha.config import AgentConfig

    h = topology.host(host)
    base: dict[str, Any] = {
        "pair": "lab",
        "host": host,
        "vrrp_instance": "VI_1",
        "region": topology.REGION,
        "endpoint_url": world.endpoint_url,
        "imds_url": imds_url,
        "insecure_endpoints": True,
        "wan_eni": {"mac": h.nic("eth0").mac},
        "lan_eni": {"mac": h.nic("eth1").mac},
        "eips": [{"eip": {"public_ip": "203.0.113.10"}, "private_ip": str(h.nic("eth0").secondary[0])}],
        "route_tables": {"tags": {"Network": "private"}},
        "fifo_path": str(tmp / "notify.fifo"),
        "state_dir": str(tmp / "state"),
        "reconcile_interval": 5.0,
    }
    base.update(overrides)
    return AgentConfig.model_validate(base)


PRIORITIES = {"gw1": 150, "gw2": 140}  # what the inventory derives for the lab pair


def peers_of(host: str) -> dict[str, Any]:
    """The agent config keys that make `host` aware of its peer, as the role renders them."""
    return {
        "priority": PRIORITIES[host],
        "peers": [
            {
                "host": g.name,
                "address": str(g.nic("eth1").address),
                "priority": PRIORITIES[g.name],
                "lan_mac": g.nic("eth1").mac,
                "wan_mac": g.nic("eth0").mac,
            }
            for g in topology.gateways()
            if g.name != host
        ],
    }


@pytest.fixture
def connect_as(imds_server: imds.ImdsHandle, tmp_path: Any) -> Iterator[Any]:
    """`connect_as(world, host, **config_overrides) -> Cloud`: the agent's start-up (IMDS, resolve)."""
    from nat_gateway_ha.startup import connect

    made: list[Any] = []

    def make(world: World, host: str, **overrides: Any) -> Any:
        imds_server.target["id"] = world.instances[host]  # type: ignore[attr-defined]
        cfg = agent_config(world, host, imds_server.url, tmp_path / host, **overrides)
        c = connect(cfg)
        c.cfg = cfg
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def route_targets(ec2: Any, tables: list[str], dest: str = "0.0.0.0/0") -> dict[str, str | None]:
    """Route table id -> the ENI its `dest` route points at (None when missing)."""
    out: dict[str, str | None] = {t: None for t in tables}
    for i in range(0, len(tables), 100):
        for t in ec2.describe_route_tables(RouteTableIds=tables[i : i + 100])["RouteTables"]:
            for r in t["Routes"]:
                if r.get("DestinationCidrBlock") == dest:
                    out[t["RouteTableId"]] = r.get("NetworkInterfaceId")
    return out


def eip_target(ec2: Any, public_ip: str = "203.0.113.10") -> tuple[str | None, str | None]:
    a = ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]
    return a.get("NetworkInterfaceId"), a.get("PrivateIpAddress")


# The tiers, one table: a test file's tier marks all its tests (netns and lab files mark themselves, as
# they also need root). `make check` runs what is in no tier: pure Python, in seconds, without root.
TIERS = {
    "cloud": {
        "test_agent.py",
        "test_takeover.py",
        "test_cloud_module.py",
        "test_cloud_fixes.py",
        "test_imds_client.py",
        "test_imds_emulator.py",
        "test_lab_seed.py",
        "test_lab_dataplane.py",
        "test_lab_throttle.py",
        "test_pacing.py",
    },
    "ansible": {
        "test_render.py",
        "test_inventory_site.py",
        "test_lab_inventory.py",
        "test_agent_wheel.py",
        "test_agent_install.py",
        "test_docs_ansible.py",
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for tier, files in TIERS.items():
            if item.path.name in files:
                item.add_marker(tier)
