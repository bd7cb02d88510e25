"""The aws_ec2 dynamic inventory example forms the pairs from tags, against the lab's cloud (moto server).

Two tagged gateways of one pair and an untagged instance in a VPC: `ansible-inventory` must list exactly the
two under nat_gateways -> the pair's group, reached at their primary private IPs, each with its WAN ENI's
secondary address as the EIP private IP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from nat_gateway_ha_lab import cloud, topology

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "aws" / "natgw.aws_ec2.yml"


def _instance(ec2: Any, subnet: str, primary: str, secondary: str | None, tags: dict[str, str]) -> str:
    spec = [{"DeviceIndex": 0, "SubnetId": subnet, "PrivateIpAddress": primary}]
    made = ec2.run_instances(
        ImageId="ami-0b1e0d0c0a0d0e0f0",
        MinCount=1,
        MaxCount=1,
        InstanceType="t4g.small",
        NetworkInterfaces=spec,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ],
    )
    instance = made["Instances"][0]
    if secondary:  # the EIP's private IP, added as provisioning adds it (moto drops it from RunInstances)
        eni = instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[secondary])
    return str(instance["InstanceId"])


def _plain(value: Any) -> Any:
    """ansible-inventory marks values that came from the cloud as unsafe (not to be templated): unwrap."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.fixture
def empty_cloud(moto_server: cloud.ServerHandle) -> Iterator[cloud.ServerHandle]:
    moto_server.reset()
    yield moto_server
    moto_server.reset()  # the session's server: leave no instance to other tests


def test_the_pairs_come_from_the_tags(empty_cloud: cloud.ServerHandle, tmp_path: Path) -> None:
    moto_server = empty_cloud
    ec2 = boto3.client(
        "ec2",
        region_name=topology.REGION,
        endpoint_url=moto_server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.91.0.0/24")["Subnet"]["SubnetId"]
    pair = {"nat-gateway-ha:pair": "natgw_dyn"}
    _instance(ec2, subnet, "10.91.0.11", "10.91.0.12", {"Name": "dyn-gw1", **pair})
    _instance(ec2, subnet, "10.91.0.21", "10.91.0.22", {"Name": "dyn-gw2", **pair})
    _instance(ec2, subnet, "10.91.0.31", None, {"Name": "not-a-gateway"})
    # The example as a user runs it, pointed at the lab's cloud.
    inventory = tmp_path / "natgw.aws_ec2.yml"
    inventory.write_text(EXAMPLE.read_text() + f"endpoint_url: {moto_server.url}\n")
    env = os.environ | {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    ansible_inventory = Path(sys.executable).parent / "ansible-inventory"
    done = subprocess.run(
        [str(ansible_inventory), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = _plain(json.loads(done.stdout))
    assert listed["nat_gateways"]["children"] == ["natgw_dyn"]
    assert sorted(listed["natgw_dyn"]["hosts"]) == ["dyn-gw1", "dyn-gw2"]
    hostvars = listed["_meta"]["hostvars"]
    assert "not-a-gateway" not in hostvars
    for host, primary, secondary in (
        ("dyn-gw1", "10.91.0.11", "10.91.0.12"),
        ("dyn-gw2", "10.91.0.21", "10.91.0.22"),
    ):
        assert hostvars[host]["ansible_host"] == primary
        assert hostvars[host]["nat_gateway_ha_host"] == {"eip_private_ips": [secondary]}
