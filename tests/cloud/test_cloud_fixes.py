"""The lab's cloud behaves like AWS where moto does not (each fix in nat_gateway_ha_lab/cloud.py)."""

from __future__ import annotations

import threading
from ipaddress import IPv4Address

import pytest
from botocore.exceptions import ClientError

from nat_gateway_ha_lab import cloud, topology
from support import eip_target, test_client


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_associate_address_honours_private_ip(cloud_world) -> None:
    ec2, alloc = cloud_world.ec2, cloud_world.eips["203.0.113.10"]
    gw2_wan = cloud_world.eni("gw2", "eth0")
    ec2.associate_address(
        AllocationId=alloc, NetworkInterfaceId=gw2_wan, PrivateIpAddress="10.77.1.54", AllowReassociation=True
    )
    assert eip_target(ec2) == (gw2_wan, "10.77.1.54")
    # The primary IP's own association is untouched, and the old ENI lost the EIP.
    nics = {n["NetworkInterfaceId"]: n for n in ec2.describe_network_interfaces()["NetworkInterfaces"]}
    assert nics[cloud_world.eni("gw1", "eth0")].get("Association", {}).get("PublicIp") != "203.0.113.10"
    with pytest.raises(ClientError) as err:
        ec2.associate_address(
            AllocationId=alloc,
            NetworkInterfaceId=gw2_wan,
            PrivateIpAddress="10.77.1.99",
            AllowReassociation=True,
        )
    assert _code(err) == "InvalidParameterValue"
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=gw2_wan, AllowReassociation=True)
    assert eip_target(ec2) == (gw2_wan, "10.77.1.53")  # no PrivateIpAddress: the primary, as in AWS


def test_create_route_refuses_an_existing_destination(cloud_world) -> None:
    with pytest.raises(ClientError) as err:
        cloud_world.ec2.create_route(
            RouteTableId=cloud_world.private_tables[0],
            DestinationCidrBlock="0.0.0.0/0",
            NetworkInterfaceId=cloud_world.eni("gw2", "eth1"),
        )
    assert _code(err) == "RouteAlreadyExists"


def test_replace_of_a_missing_route_is_refused(cloud_world) -> None:
    with pytest.raises(ClientError) as err:
        cloud_world.ec2.replace_route(
            RouteTableId=cloud_world.private_tables[0],
            DestinationCidrBlock="10.99.0.0/16",
            NetworkInterfaceId=cloud_world.eni("gw2", "eth1"),
        )
    assert _code(err) == "InvalidParameterValue"


def test_addresses_come_from_the_lab_pool(cloud_world) -> None:
    ec2 = cloud_world.ec2
    drawn = [ec2.allocate_address(Domain="vpc")["PublicIp"] for _ in range(3)]
    assert all(IPv4Address(ip) in topology.EIP_POOL for ip in drawn) and len(set(drawn)) == 3
    assert "203.0.113.10" not in drawn
    with pytest.raises(ClientError) as err:
        ec2.allocate_address(Domain="vpc", Address="203.0.113.10")
    assert _code(err) == "InvalidParameterValue"


def test_instance_source_dest_check_is_the_primary_enis(cloud_world) -> None:
    ec2, gw1 = cloud_world.ec2, cloud_world.instances["gw1"]
    ec2.modify_instance_attribute(InstanceId=gw1, SourceDestCheck={"Value": False})
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[cloud_world.eni("gw1", "eth0")])[
        "NetworkInterfaces"
    ][0]
    assert eni["SourceDestCheck"] is False
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=cloud_world.eni("gw1", "eth0"), SourceDestCheck={"Value": True}
    )
    attr = ec2.describe_instance_attribute(InstanceId=gw1, Attribute="sourceDestCheck")
    assert attr["SourceDestCheck"]["Value"] is True


def test_instances_require_imdsv2_unless_told_otherwise(cloud_world) -> None:
    opts = cloud_world.ec2.describe_instances(InstanceIds=[cloud_world.instances["gw1"]])["Reservations"][0][
        "Instances"
    ][0]
    assert opts["MetadataOptions"]["HttpTokens"] == "required"


def test_server_calls_on_mutation_after_each_successful_change(inprocess_world) -> None:
    hits: list[str] = []
    handle = cloud.serve("127.0.0.1", 0, on_mutation=lambda: hits.append(threading.current_thread().name))
    try:
        ec2 = test_client(handle.url)
        rtb = inprocess_world.private_tables[0]
        ec2.describe_route_tables(RouteTableIds=[rtb])
        assert hits == []
        ec2.replace_route(
            RouteTableId=rtb,
            DestinationCidrBlock="0.0.0.0/0",
            NetworkInterfaceId=inprocess_world.eni("gw2", "eth1"),
        )
        assert len(hits) == 1
        with pytest.raises(ClientError):
            ec2.create_route(
                RouteTableId=rtb,
                DestinationCidrBlock="0.0.0.0/0",
                NetworkInterfaceId=inprocess_world.eni("gw2", "eth1"),
            )
        assert len(hits) == 1  # a refused change moves nothing
    finally:
        handle.stop()


def test_faults_fail_the_next_calls_then_stop(cloud_world) -> None:
    ec2 = cloud_world.ec2
    with cloud.faults(cloud.Fault("DescribeAddresses", "RequestLimitExceeded", 503, times=2)) as (fault,):
        for _ in range(2):
            with pytest.raises(ClientError) as err:
                ec2.describe_addresses()
            assert _code(err) == "RequestLimitExceeded"
        ec2.describe_addresses()
    assert fault.hits == 2
