"""The lab's gateways as `playbooks/provision.yml` made them (`natgw-lab up` runs it with inventories/lab):
what EC2 holds for the pair, and a second run that finds everything in place.

It needs the lab, so it runs from the Molecule scenario `faults` (NATLAB_FAULT_MATRIX=1); anywhere else it
skips. tests/ansible/test_provision.py covers the interface-endpoint path and teardown from an empty account.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from nat_gateway_ha.inventory.provisioning import api_eip_name
from nat_gateway_ha_lab import controlplane, state
from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.seed import LAB_EIP

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(
        os.environ.get("NATLAB_FAULT_MATRIX") != "1",
        reason="needs the lab (molecule scenario faults)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
ROLE = f"nat-gateway-ha-{topo.PAIR}"


def _instances(ec2: Any) -> dict[str, dict[str, Any]]:
    live = [{"Name": "instance-state-name", "Values": ["running"]}]
    by_name = {}
    for r in ec2.describe_instances(Filters=live)["Reservations"]:
        for i in r["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            if tags.get("nat-gateway-ha:pair") == topo.PAIR:
                by_name[tags["Name"]] = i
    return by_name


def test_the_gateways_are_what_provisioning_promises() -> None:
    ec2 = state.ec2_client()
    iam = boto3.client(
        "iam",
        endpoint_url=controlplane.ENDPOINT_URL,
        aws_access_key_id="natlab",
        aws_secret_access_key="natlab",
    )
    instances = _instances(ec2)
    assert sorted(instances) == sorted(h.name for h in topo.gateways())
    wan_enis = []
    for gw in topo.gateways():
        inst = instances[gw.name]
        opts = inst["MetadataOptions"]
        assert (opts["HttpTokens"], opts["HttpPutResponseHopLimit"]) == ("required", 1), gw.name
        assert inst["IamInstanceProfile"]["Arn"].endswith(f"/{ROLE}"), gw.name
        by_index = {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}
        for index, nic in enumerate(gw.nics):
            eni = by_index[index]
            addresses = sorted(a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"])
            # At the topology's addresses, with the container's MAC (pin_macs), the check off.
            assert addresses == sorted(str(a) for a in (nic.address, *nic.secondary)), (gw.name, nic.name)
            assert (eni["MacAddress"], eni["SourceDestCheck"]) == (nic.mac, False), (gw.name, nic.name)
        wan = by_index[0]["NetworkInterfaceId"]
        wan_enis.append(wan)
        api = ec2.describe_addresses(
            Filters=[{"Name": "tag:Name", "Values": [api_eip_name(topo.PAIR, gw.name)]}]
        )
        (address,) = api["Addresses"]
        assert (address["NetworkInterfaceId"], address["PrivateIpAddress"]) == (
            wan,
            str(gw.nic("eth0").address),
        )
        lan_groups = [g["GroupId"] for g in by_index[1]["Groups"]]
        (group,) = ec2.describe_security_groups(GroupIds=lan_groups)["SecurityGroups"]
        vrrp = sorted(
            c["CidrIp"] for p in group["IpPermissions"] if p["IpProtocol"] == "112" for c in p["IpRanges"]
        )
        assert vrrp == sorted(f"{g.nic('eth1').address}/32" for g in topo.gateways())

    policy = json.dumps(iam.get_role_policy(RoleName=ROLE, PolicyName="nat-gateway-ha")["PolicyDocument"])
    (pair_eip,) = ec2.describe_addresses(PublicIps=[str(LAB_EIP)])["Addresses"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "tag:Network", "Values": ["private"]}])[
        "RouteTables"
    ]
    named = [pair_eip["AllocationId"], *wan_enis, *(t["RouteTableId"] for t in tables)]
    assert all(n in policy for n in named), policy
    assert "route-table/*" not in policy and "elastic-ip/*" not in policy and "ec2:*" not in policy


def test_provisioning_again_changes_nothing() -> None:
    # Plain recap lines whatever the caller's environment says (Molecule forces colour and its own callback).
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    cmd = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "inventories/lab",
        "playbooks/provision.yml",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    recap = next(line for line in proc.stdout.splitlines() if line.startswith("localhost") and "ok=" in line)
    assert proc.returncode == 0 and " changed=0 " in recap, proc.stdout[-4000:]
