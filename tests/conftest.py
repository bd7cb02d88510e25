"""Shared fixtures: the lab's cloud (moto in-process or as a server, AWS fixes applied) seeded with the lab's
VPC from topology.py, and the IMDS emulator answering for one gateway. Generic on purpose: any test that
needs "a VPC with a gateway pair" can use `cloud_world`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from nat_gateway_ha_lab import cloud, imds, moto_model, seed, topology

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", topology.REGION)


@dataclass
class World:
    """The lab's seeded VPC (seed.py) by name, with the client and endpoint the test reaches it through."""

    ec2: Any
    endpoint_url: str | None
    state: seed.CloudState

    @property
    def vpc_id(self) -> str:
        return self.state.vpc_id

    @property
    def subnets(self) -> dict[str, str]:
        return self.state.subnets

    @property
    def instances(self) -> dict[str, str]:  # host -> instance id
        return {h: i.instance_id for h, i in self.state.instances.items()}

    @property
    def main_table(self) -> str:
        return self.state.main_route_table

    @property
    def public_table(self) -> str:
        return self.state.public_route_table

    @property
    def private_tables(self) -> list[str]:  # the private subnets' tables, then the extra ones
        return [*self.state.private_route_tables.values(), *self.state.extra_route_tables]

    @property
    def eips(self) -> dict[str, str]:  # the pair's EIP: public ip -> allocation id
        return {self.state.eip_public_ip: self.state.eip_allocation_id}

    def eni(self, host: str, nic: str) -> str:
        return self.state.instances[host].nics[nic].eni_id


PRIVATE_SUBNETS = sum(1 for s in topology.SUBNETS if s.private)


def seed_world(ec2: Any, endpoint_url: str | None, private_tables: int = 5) -> World:
    """The lab's VPC, seeded by the lab's own seeder into this process's moto, with `private_tables` route
    tables tagged Network=private (at least one per private subnet) pointing at gw1's LAN ENI and the EIP on
    gw1's WAN secondary IP, as after a first election."""
    if private_tables < PRIVATE_SUBNETS:
        raise ValueError(f"private_tables={private_tables}: the lab VPC has {PRIVATE_SUBNETS} private tables")
    state = seed.seed(
        ec2,
        moto_model.eni_mac_setter(),
        endpoint_url=endpoint_url or "in-process",
        extra_route_tables=max(0, private_tables - PRIVATE_SUBNETS),
        eip_owner="gw1",
    )
    return World(ec2=ec2, endpoint_url=endpoint_url, state=state)


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
def aws_fixes() -> None:
    """moto patched to behave like AWS (cloud.apply_aws_fixes), once, by the fixtures that start moto: a
    fixture rather than an import-time call, so that tests without a cloud never import moto."""
    cloud.apply_aws_fixes()


@pytest.fixture(scope="session")
def moto_server(aws_fixes: None) -> Iterator[cloud.ServerHandle]:
    """One moto server for the session (the lab's cloud in server mode, on a free local port)."""
    handle = cloud.serve("127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture(params=["inprocess", "server"])
def cloud_mode(request: pytest.FixtureRequest, aws_fixes: None) -> Iterator[str | None]:
    """Yield the endpoint URL to use: None for moto in-process (mock_aws), the server's URL otherwise.

    Both modes start from an empty cloud and leave no faults armed.
    """
    cloud.clear_faults()
    if request.param == "inprocess":
        with moto_model.mock():
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
def _imds_session(aws_fixes: None) -> Iterator[imds.ImdsHandle]:
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
def inprocess_cloud(aws_fixes: None) -> Iterator[None]:
    """moto in-process only, for tests about the agent rather than about the two ways of reaching moto."""
    cloud.clear_faults()
    with moto_model.mock():
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
# they also need root), and any test that starts moto (through `aws_fixes`) is `cloud` wherever it is.
# `make check` runs what is in no tier: pure Python, in seconds, without root and without moto.
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
        if "aws_fixes" in getattr(item, "fixturenames", ()):  # it starts moto, wherever its file is
            item.add_marker("cloud")
        for tier, files in TIERS.items():
            if item.path.name in files:
                item.add_marker(tier)
