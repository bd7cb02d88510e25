"""The IAM policy: least privilege, no wildcard resource on a mutating action, VRRP between peers only."""

from __future__ import annotations

import json
import re

from conftest import agent_config
from nat_gateway_ha import iam
from nat_gateway_ha.cli import main

AGENT_CALLS = {
    "AssociateAddress",
    "CreateRoute",
    "ReplaceRoute",
    "DescribeAddresses",
    "DescribeRouteTables",
    "DescribeNetworkInterfaces",
}


def _cfg(tmp_path, **overrides):
    from types import SimpleNamespace

    world = SimpleNamespace(endpoint_url=None)
    return agent_config(world, "gw1", "http://127.0.0.1:1", tmp_path, **overrides)


def test_only_called_actions_and_no_star_on_mutations(tmp_path) -> None:
    cfg = _cfg(tmp_path, eips=[{"eip": {"allocation_id": "eipalloc-0abc"}, "private_ip": "10.77.0.234"}])
    doc = iam.policy(cfg, account="123456789012", region="eu-west-1", vpc_id="vpc-0123")
    actions = {a.split(":")[1] for s in doc["Statement"] for a in s["Action"]}
    assert actions == AGENT_CALLS
    for s in doc["Statement"]:
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        if any(not a.startswith("ec2:Describe") for a in s["Action"]):
            assert "*" not in resources, s
            assert all(re.match(r"^arn:aws:ec2:eu-west-1:123456789012:", r) for r in resources), s
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ElasticIps"]["Resource"] == ["arn:aws:ec2:eu-west-1:123456789012:elastic-ip/eipalloc-0abc"]
    assert by_sid["RouteTablesByTag"]["Condition"] == {"StringEquals": {"aws:ResourceTag/Network": "private"}}
    assert by_sid["OwnNetworkInterfaces"]["Condition"]["StringEquals"]["ec2:Vpc"].endswith(":vpc/vpc-0123")


def test_explicit_ids_are_scoped_by_arn(tmp_path) -> None:
    cfg = _cfg(tmp_path, route_tables={"ids": ["rtb-0aa", "rtb-0bb"]})
    doc = iam.policy(cfg, account="123456789012", region="eu-west-1")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["RouteTablesById"]["Resource"] == [
        "arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0aa",
        "arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0bb",
    ]
    assert "RouteTablesByTag" not in by_sid


def test_vrrp_rule_between_peers_only() -> None:
    rules = iam.security_group_rules(["10.77.0.233", "10.77.1.53"])
    assert rules == [
        {
            "IpProtocol": "112",
            "IpRanges": [
                {"CidrIp": "10.77.0.233/32", "Description": "VRRP from the NAT gateway peer"},
                {"CidrIp": "10.77.1.53/32", "Description": "VRRP from the NAT gateway peer"},
            ],
        }
    ]


def test_cli_prints_policy_and_rules(tmp_path, capsys) -> None:
    path = tmp_path / "agent.json"
    path.write_text(_cfg(tmp_path).model_dump_json())
    assert main(["iam-policy", "--config", str(path), "--peer", "10.77.1.53"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"]["Version"] == "2012-10-17"
    assert out["security_group_ingress"][0]["IpRanges"][0]["CidrIp"] == "10.77.1.53/32"
    (extra,) = out["provisioning_policy"]["Statement"]
    assert extra["Action"] == ["ec2:ModifyNetworkInterfaceAttribute"] and extra["Resource"] != "*"
