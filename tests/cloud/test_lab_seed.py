"""The seed turns topology.py into EC2 state the hosts agree with: addresses, MACs, tags, tables, the EIP."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import boto3
import pytest

from nat_gateway_ha_lab import moto_model, seed
from nat_gateway_ha_lab import topology as topo


@pytest.fixture
def ec2(aws_fixes: None) -> Iterator[Any]:
    with moto_model.mock():
        yield boto3.client("ec2", region_name=topo.REGION)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_subnets_match_the_topology(ec2: Any) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock")
    subnets = {
        s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=list(state.subnets.values()))["Subnets"]
    }
    for sn in topo.SUBNETS:
        got = subnets[state.subnets[sn.name]]
        assert (got["CidrBlock"], got["AvailabilityZone"], got["VpcId"]) == (
            str(sn.cidr),
            sn.az,
            state.vpc_id,
        )
        assert (_tags(got).get("Network") == "private") == sn.private


def test_instances_and_enis_carry_the_hosts_addresses_and_macs(ec2: Any) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock")
    enis = {e["NetworkInterfaceId"]: e for e in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    reservations = ec2.describe_instances(InstanceIds=[i.instance_id for i in state.instances.values()])
    instances = {i["InstanceId"]: i for r in reservations["Reservations"] for i in r["Instances"]}
    for host in topo.HOSTS:
        inst = instances[state.instances[host.name].instance_id]
        assert _tags(inst) == {"Name": host.name, seed.MGMT_TAG: str(host.mgmt), seed.HOST_TAG: host.name}
        assert inst["Placement"]["AvailabilityZone"] == topo.subnet(host.nics[0].subnet).az
        assert inst["PrivateIpAddress"] == str(host.nics[0].address)
        for index, nic in enumerate(host.nics):
            eni = enis[state.instances[host.name].nics[nic.name].eni_id]
            assert eni["MacAddress"] == nic.mac
            assert eni["SubnetId"] == state.subnets[nic.subnet]
            assert eni["Attachment"]["InstanceId"] == inst["InstanceId"]
            assert eni["Attachment"]["DeviceIndex"] == index
            ips = [(p["PrivateIpAddress"], p["Primary"]) for p in eni["PrivateIpAddresses"]]
            assert ips == [(str(nic.address), True)] + [(str(a), False) for a in nic.secondary]


def test_route_tables_start_as_after_a_previous_owner(ec2: Any) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock")
    gw1_lan = state.instances[topo.gateways()[0].name].nics["eth1"].eni_id
    tables = {t["RouteTableId"]: t for t in ec2.describe_route_tables()["RouteTables"]}
    tagged = ec2.describe_route_tables(Filters=[{"Name": "tag:Network", "Values": ["private"]}])[
        "RouteTables"
    ]
    assert sorted(t["RouteTableId"] for t in tagged) == sorted(state.private_route_tables.values())
    for name, rtb in state.private_route_tables.items():
        table = tables[rtb]
        assert [a["SubnetId"] for a in table["Associations"]] == [state.subnets[name]]
        default = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        assert [r.get("NetworkInterfaceId") for r in default] == [gw1_lan]
    public = tables[state.public_route_table]
    assert sorted(a["SubnetId"] for a in public["Associations"]) == sorted(
        state.subnets[s.name] for s in topo.SUBNETS if not s.private
    )
    assert [r.get("GatewayId") for r in public["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == [
        state.igw_id
    ]
    main = tables[state.main_route_table]
    assert "Network" not in _tags(main) and main["Associations"][0]["Main"] is True
    assert [r["GatewayId"] for r in main["Routes"]] == ["local"]


def test_the_eip_is_allocated_and_free(ec2: Any) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock")
    (address,) = ec2.describe_addresses(PublicIps=[str(seed.LAB_EIP)])["Addresses"]
    assert address["AllocationId"] == state.eip_allocation_id
    assert not address.get("NetworkInterfaceId") and not address.get("AssociationId")
    assert IPv4Address(address["PublicIp"]) in topo.EIP_POOL


def test_extra_route_tables_for_benchmarks(ec2: Any) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock", extra_route_tables=3)
    assert len(state.extra_route_tables) == 3
    tagged = ec2.describe_route_tables(Filters=[{"Name": "tag:Network", "Values": ["private"]}])[
        "RouteTables"
    ]
    assert len(tagged) == len(state.private_route_tables) + 3
    private_subnets = ec2.describe_subnets(Filters=[{"Name": "tag:Network", "Values": ["private"]}])[
        "Subnets"
    ]
    cidrs = [IPv4Network(s["CidrBlock"]) for s in private_subnets]
    assert len(cidrs) == len(state.private_route_tables) + 3
    assert all(a == b or not a.overlaps(b) for a in cidrs for b in cidrs)
    # Re-point the pair at gw2, grow to 5: the new tables follow the current owner; shrink to 1.
    gw2_lan = state.instances["gw2"].nics["eth1"].eni_id
    for rtb in state.private_route_tables.values():
        ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=gw2_lan)
    seed.resize_extra_route_tables(ec2, state, 5)
    added = ec2.describe_route_tables(RouteTableIds=state.extra_route_tables[3:])["RouteTables"]
    targets = [
        r.get("NetworkInterfaceId")
        for t in added
        for r in t["Routes"]
        if r["DestinationCidrBlock"] == "0.0.0.0/0"
    ]
    assert targets == [gw2_lan, gw2_lan]
    seed.resize_extra_route_tables(ec2, state, 1)
    assert len(state.extra_route_tables) == 1
    tagged = ec2.describe_route_tables(Filters=[{"Name": "tag:Network", "Values": ["private"]}])[
        "RouteTables"
    ]
    assert len(tagged) == len(state.private_route_tables) + 1


def test_extra_route_tables_refuse_what_does_not_fit() -> None:
    with pytest.raises(ValueError, match="room for"):
        seed.extra_subnets(10_000)


def test_cloud_json_round_trips(ec2: Any, tmp_path: Path) -> None:
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="http://10.254.77.1:5077")
    state.write(tmp_path / "cloud.json")
    assert seed.CloudState.read(tmp_path / "cloud.json") == state


def test_the_labs_seed_leaves_the_gateways_to_provisioning_and_adopts_them(ec2: Any) -> None:
    """The lab seeds what a user brings; gateways launched afterwards at the topology's addresses take
    their containers' MACs (pin_macs) and cloud.json learns them (adopt)."""
    state = seed.seed(ec2, moto_model.eni_mac_setter(), endpoint_url="mock", gateways=False)
    assert set(state.instances) == {h.name for h in topo.HOSTS if h.role != "gateway"}
    for rtb in state.private_route_tables.values():
        routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
        assert [r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == []
    with pytest.raises(LookupError, match="0 running instances named gw1"):
        seed.adopt(ec2, state)

    for host in topo.gateways():  # as provisioning would: EC2 picks the MACs
        seed.launch(ec2, lambda eni, mac: None, host, state.subnets)
    assert moto_model.pin_macs() == sum(len(h.nics) for h in topo.gateways())
    assert moto_model.pin_macs() == 0  # idempotent
    adopted = seed.adopt(ec2, state)
    for host in topo.gateways():
        got = adopted.instances[host.name]
        assert moto_model.running_instance(host.name) == got.instance_id
        for nic in host.nics:
            assert (got.nics[nic.name].mac, got.nics[nic.name].private_ips[0]) == (nic.mac, str(nic.address))
        assert got.nics["eth0"].private_ips[1:] == [str(a) for a in host.nic("eth0").secondary]
