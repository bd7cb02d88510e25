"""provision.yml and teardown.yml from an empty account (the lab's cloud, moto in server mode), with the
agents' EC2 path through an interface endpoint (the lab provisions the public-address path on every up).

The account holds only what a user brings: a VPC with an internet gateway, two public and two private
subnets in two AZs and the private subnets' route tables tagged Network=private. Provisioning must create
the pair's whole AWS side at the inventory's addresses, find everything in place in check mode
(changed=0), refuse a bad inventory before any call, and teardown must leave nothing behind.
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
import yaml

from nat_gateway_ha_lab import cloud, topology

ROOT = Path(__file__).resolve().parents[2]
PAIR = "natgw_t"
PAIR_TAG = "nat-gateway-ha:pair"
HOSTS = {  # host -> (WAN address, EIP private IP, LAN address), in subnets pub-a/lan-a and pub-b/lan-b
    "gwa": ("10.88.0.10/24", "10.88.0.11", "10.88.3.10/24"),
    "gwb": ("10.88.1.10/24", "10.88.1.11", "10.88.4.10/24"),
}
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": topology.REGION}


@pytest.fixture
def empty_cloud(moto_server: cloud.ServerHandle) -> Iterator[cloud.ServerHandle]:
    moto_server.reset()
    yield moto_server
    moto_server.reset()


def _users_vpc(ec2: Any) -> tuple[str, list[str]]:
    """What a user has before provisioning: the VPC, its subnets, the private route tables."""
    named = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "users-vpc"}]}]
    vpc = ec2.create_vpc(CidrBlock="10.88.0.0/16", TagSpecifications=named)["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    tables = []
    for third, az, private in ((0, "a", False), (1, "b", False), (3, "a", True), (4, "b", True)):
        sub = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.88.{third}.0/24", AvailabilityZone=f"{topology.REGION}{az}"
        )
        if private:
            rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.create_tags(Resources=[rtb], Tags=[{"Key": "Network", "Value": "private"}])
            ec2.associate_route_table(RouteTableId=rtb, SubnetId=sub["Subnet"]["SubnetId"])
            tables.append(rtb)
    return vpc, tables


def _inventory(tmp: Path, url: str, vpc: str, api_path: str = "public_ip", **over: Any) -> Path:
    inv = tmp / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    hosts = {"all": {"children": {"nat_gateways": {"children": {PAIR: {"hosts": dict.fromkeys(HOSTS)}}}}}}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    group: dict[str, Any] = {
        "nat_gateway_ha_pair": {
            "vrid": 51,
            "vips": ["10.240.240.240/32"],
            "eips": [{"name": "natgw-t-eip"}],
            "route_tables": {"tags": {"Network": "private"}},
            "region": topology.REGION,
            "vpc_cidrs": ["10.88.0.0/16"],
        },
        "nat_gateway_ha_provision": {
            "vpc_id": vpc,
            "image_id": "ami-0123456789abcdef0",
            "instance_type": "t3.micro",
            "admin_cidrs": ["192.0.2.0/24"],
            "api_path": api_path,
        },
        "nat_gateway_ha_controller_endpoint_url": url,
        "nat_gateway_ha_controller_environment": {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
    }
    for key, value in over.items():
        group[key] = {**group[key], **value} if isinstance(value, dict) else value
    (inv / "group_vars" / f"{PAIR}.yml").write_text(yaml.safe_dump(group))
    for h, (wan, eip_ip, lan) in HOSTS.items():
        spec = {"nat_gateway_ha_host": {"wan_address": wan, "lan_address": lan, "eip_private_ips": [eip_ip]}}
        (inv / "host_vars" / f"{h}.yml").write_text(yaml.safe_dump(spec))
    return inv


def _play(inv: Path, playbook: str, *extra: str) -> tuple[int, str, dict[str, int]]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    bindir = Path(sys.executable).parent
    cmd = [str(bindir / "ansible-playbook"), "-i", str(inv), str(ROOT / "playbooks" / playbook), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    recap = {}
    for line in out.splitlines():
        if line.startswith("localhost") and "ok=" in line:
            recap = {k: int(v) for k, v in (f.split("=") for f in line.split(":", 1)[1].split())}
    return proc.returncode, out, recap


def _tagged(ec2: Any, iam: Any) -> dict[str, list[str]]:
    """Everything in the account that carries the pair's tag, by kind: what teardown must remove."""
    f = [{"Name": f"tag:{PAIR_TAG}", "Values": [PAIR]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    return {
        "instances": [
            i["InstanceId"]
            for r in ec2.describe_instances(Filters=f + live)["Reservations"]
            for i in r["Instances"]
        ],
        "enis": [
            e["NetworkInterfaceId"] for e in ec2.describe_network_interfaces(Filters=f)["NetworkInterfaces"]
        ],
        "eips": [a["AllocationId"] for a in ec2.describe_addresses(Filters=f)["Addresses"]],
        "groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]],
        "endpoints": [
            e["VpcEndpointId"]
            for e in ec2.describe_vpc_endpoints(Filters=f)["VpcEndpoints"]
            if e["State"] not in ("deleted", "deleting")
        ],
        "roles": [
            r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("nat-gateway-ha-")
        ],
        "profiles": [
            p["InstanceProfileName"]
            for p in iam.list_instance_profiles()["InstanceProfiles"]
            if p["InstanceProfileName"].startswith("nat-gateway-ha-")
        ],
    }


def test_provision_builds_the_pair_finds_it_again_and_teardown_removes_it(
    empty_cloud: cloud.ServerHandle, tmp_path: Path
) -> None:
    """The interface-endpoint path, with the VPC named by its tag. The public-address path is what the lab
    runs on every `natgw-lab up`, asserted by tests/lab/test_provisioned.py (second run included)."""

    ec2 = boto3.client("ec2", endpoint_url=empty_cloud.url, **KEYS)
    iam = boto3.client("iam", endpoint_url=empty_cloud.url, **KEYS)
    vpc, tables = _users_vpc(ec2)
    inv = _inventory(tmp_path, empty_cloud.url, vpc, api_path="vpc_endpoint")
    group = inv / "group_vars" / f"{PAIR}.yml"
    data = yaml.safe_load(group.read_text())
    data["nat_gateway_ha_provision"] = {**data["nat_gateway_ha_provision"], "vpc_name": "users-vpc"}
    del data["nat_gateway_ha_provision"]["vpc_id"]
    group.write_text(yaml.safe_dump(data))

    rc, out, recap = _play(inv, "provision.yml")
    assert rc == 0, out[-6000:]
    made = _tagged(ec2, iam)
    assert len(made["instances"]) == 2 and len(made["enis"]) == 4, made
    # The pair's EIP and its EC2 endpoint in both WAN subnets, no public address for the agents.
    assert len(made["eips"]) == 1 and len(made["endpoints"]) == 1, made
    endpoint = ec2.describe_vpc_endpoints(VpcEndpointIds=made["endpoints"])["VpcEndpoints"][0]
    assert endpoint["ServiceName"] == f"com.amazonaws.{topology.REGION}.ec2"
    assert endpoint["VpcEndpointType"] == "Interface" and len(endpoint["SubnetIds"]) == 2, endpoint

    reservations = ec2.describe_instances(InstanceIds=made["instances"])["Reservations"]
    instances = {
        next(t["Value"] for t in i["Tags"] if t["Key"] == "nat-gateway-ha:host"): i
        for r in reservations
        for i in r["Instances"]
    }
    assert sorted(instances) == sorted(HOSTS)
    for host, inst in instances.items():
        wan_cidr, eip_ip, lan_cidr = HOSTS[host]
        opts = inst["MetadataOptions"]
        assert (opts["HttpTokens"], opts["HttpPutResponseHopLimit"]) == ("required", 1), host
        assert inst["IamInstanceProfile"]["Arn"].endswith(f"/nat-gateway-ha-{PAIR}"), host
        by_index = {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}
        wan_id, lan_id = by_index[0]["NetworkInterfaceId"], by_index[1]["NetworkInterfaceId"]
        wan = ec2.describe_network_interfaces(NetworkInterfaceIds=[wan_id])["NetworkInterfaces"][0]
        lan = ec2.describe_network_interfaces(NetworkInterfaceIds=[lan_id])["NetworkInterfaces"][0]
        assert sorted(a["PrivateIpAddress"] for a in wan["PrivateIpAddresses"]) == sorted(
            [wan_cidr.split("/")[0], eip_ip]
        )
        assert lan["PrivateIpAddress"] == lan_cidr.split("/")[0]
        assert wan["SourceDestCheck"] is False and lan["SourceDestCheck"] is False, host
        # No public address on the WAN ENI before an election: the agents reach EC2 through the endpoint.
        on_wan = [{"Name": "network-interface-id", "Values": [wan_id]}]
        assert ec2.describe_addresses(Filters=on_wan)["Addresses"] == [], host
        # VRRP is allowed from the peers' LAN addresses only.
        group = ec2.describe_security_groups(GroupIds=[g["GroupId"] for g in lan["Groups"]])[
            "SecurityGroups"
        ][0]
        vrrp = [r for r in group["IpPermissions"] if r["IpProtocol"] == "112"]
        assert sorted(c["CidrIp"] for r in vrrp for c in r["IpRanges"]) == sorted(
            f"{lan.split('/')[0]}/32" for _, _, lan in HOSTS.values()
        )

    pair_eip = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["natgw-t-eip"]}])["Addresses"]
    assert len(pair_eip) == 1 and "AssociationId" not in pair_eip[0]  # the first election claims it
    policy = iam.get_role_policy(RoleName=f"nat-gateway-ha-{PAIR}", PolicyName="nat-gateway-ha")[
        "PolicyDocument"
    ]
    text = json.dumps(policy)
    assert pair_eip[0]["AllocationId"] in text and all(t in text for t in tables), text
    wan_enis = [i["NetworkInterfaces"][0]["NetworkInterfaceId"] for i in instances.values()]
    assert all(e in text for e in wan_enis) and '"Resource": "*"' in text  # Describe only
    assert "ec2:*" not in text and "route-table/*" not in text

    # Found again: check mode changes nothing (a real second run is the lab's test).
    rc, out, recap = _play(inv, "provision.yml", "--check", "--diff")
    assert rc == 0 and recap.get("changed") == 0, out[-6000:]
    assert _tagged(ec2, iam) == made

    # As after an election: the pair's EIP on gwa's WAN secondary address; teardown must free it to release.
    gwa = instances["gwa"]["NetworkInterfaces"]
    wan_a = next(n for n in gwa if n["Attachment"]["DeviceIndex"] == 0)["NetworkInterfaceId"]
    ec2.associate_address(
        AllocationId=pair_eip[0]["AllocationId"], NetworkInterfaceId=wan_a, PrivateIpAddress=HOSTS["gwa"][1]
    )

    rc, out, recap = _play(inv, "teardown.yml")
    assert rc == 0, out[-6000:]
    assert _tagged(ec2, iam) == {kind: [] for kind in made}
    # What the user brought stays.
    assert {t["RouteTableId"] for t in ec2.describe_route_tables(RouteTableIds=tables)["RouteTables"]} == set(
        tables
    )


def test_a_bad_inventory_is_refused_before_any_call(empty_cloud: cloud.ServerHandle, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", endpoint_url=empty_cloud.url, **KEYS)
    vpc, _ = _users_vpc(ec2)
    inv = _inventory(
        tmp_path, empty_cloud.url, vpc, nat_gateway_ha_provision={"vpc_id": "vpc-nope", "api_path": "x"}
    )
    (inv / "host_vars" / "gwb.yml").write_text(
        yaml.safe_dump(
            {"nat_gateway_ha_host": {"wan_address": "10.88.1.10/24", "eip_private_ips": ["10.88.9.9"]}}
        )
    )
    cloud.reset_calls()
    rc, out, _ = _play(inv, "provision.yml")
    assert rc != 0
    for says in (
        f"pair {PAIR}, host gwa,gwb, field nat_gateway_ha_provision.vpc_id",
        f"pair {PAIR}, host gwa,gwb, field nat_gateway_ha_provision.api_path",
        f"pair {PAIR}, host gwb, field nat_gateway_ha_host.lan_address: provisioning needs it",
        f"pair {PAIR}, host gwb, field nat_gateway_ha_host.eip_private_ips[0]: must be another address of "
        "10.88.1.0/24",
    ):
        assert says in out, out[-4000:]
    assert cloud.calls() == []  # nothing reached EC2


def test_an_address_outside_the_vpc_is_named(empty_cloud: cloud.ServerHandle, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", endpoint_url=empty_cloud.url, **KEYS)
    vpc, _ = _users_vpc(ec2)
    inv = _inventory(tmp_path, empty_cloud.url, vpc)
    (inv / "host_vars" / "gwb.yml").write_text(
        yaml.safe_dump(
            {
                "nat_gateway_ha_host": {
                    "wan_address": "10.99.1.10/24",
                    "lan_address": "10.88.4.10/24",
                    "eip_private_ips": ["10.99.1.11"],
                }
            }
        )
    )
    rc, out, _ = _play(inv, "provision.yml")
    assert rc != 0
    assert (
        f"pair {PAIR}, host gwb, field nat_gateway_ha_host.wan_address: 10.99.1.10 lies in no subnet" in out
    )
    iam = boto3.client("iam", endpoint_url=empty_cloud.url, **KEYS)
    assert not any(_tagged(ec2, iam).values())  # nothing was created
