"""The IAM policy: scoped to the pair's own tables, EIPs and ENIs, probed with a resource-level evaluator.

The sample pair: two managed route tables selected by tag, one EIP, two gateways (a WAN and a LAN ENI each)
in one VPC. Probes are requests as EC2 authorises them; `iam_evaluator` says what the policy alone allows.
"""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace
from typing import Any

import parliament
import pytest

from iam_evaluator import Request, Resource, allowed
from nat_gateway_ha import iam, startup
from nat_gateway_ha.cli import main
from nat_gateway_ha_lab import moto_model, topology
from support import agent_config, peers_of

ACCOUNT, OTHER_ACCOUNT, REGION = "123456789012", "210987654321", topology.REGION
VPC, OTHER_VPC = "vpc-0a1", "vpc-0f9"
TABLES = ["rtb-0a1", "rtb-0a2"]
ALLOCATION = "eipalloc-0e1"
WAN = ["eni-0a10", "eni-0b10"]
LAN = ["eni-0a11", "eni-0b11"]
DESCRIBE = [
    "ec2:DescribeAddresses",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
]


def arn(kind: str, rid: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:ec2:{REGION}:{account}:{kind}/{rid}"


def table(rid: str, vpc: str = VPC, account: str = ACCOUNT) -> Resource:
    """A route table as CreateRoute/ReplaceRoute/DeleteRoute see it: its VPC and its tag."""
    keys = {"ec2:Vpc": arn("vpc", vpc, account), "aws:ResourceTag/Network": "private"}
    return Resource(arn("route-table", rid, account), keys)


def eni(rid: str, vpc: str = VPC) -> Resource:
    return Resource(arn("network-interface", rid), {"ec2:Vpc": arn("vpc", vpc)})


def eip(alloc: str) -> Resource:
    return Resource(arn("elastic-ip", alloc), {"ec2:AllocationId": alloc})


ANYWHERE = Resource("*")


def _cfg(tmp_path: Any, **overrides: Any) -> Any:
    world = SimpleNamespace(endpoint_url=None)
    base: dict[str, Any] = {
        "eips": [{"eip": {"allocation_id": ALLOCATION}, "private_ip": "10.77.0.234"}],
        "route_tables": {"tags": {"Network": "private"}},
    }
    return agent_config(world, "gw1", "http://127.0.0.1:1", tmp_path, **{**base, **overrides})


def _policy(tmp_path: Any, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "account": ACCOUNT,
        "vpc_id": VPC,
        "route_table_ids": TABLES,
        "eni_ids": WAN,
    }
    return iam.policy(_cfg(tmp_path), **{**args, **overrides})


# --- what the generated policy allows, and nothing else ------------------------------------------------

TAKEOVER = [
    *(Request(a, [ANYWHERE]) for a in DESCRIBE),
    *(Request(a, [table(t)]) for a in ("ec2:CreateRoute", "ec2:ReplaceRoute") for t in TABLES),
    *(Request("ec2:AssociateAddress", [eip(ALLOCATION), eni(w)]) for w in WAN),
]
REFUSED = {
    "table in another VPC": Request("ec2:ReplaceRoute", [table("rtb-0f1", OTHER_VPC)]),
    "managed table id, other VPC": Request("ec2:ReplaceRoute", [table(TABLES[0], OTHER_VPC)]),
    "managed table id, other account": Request("ec2:CreateRoute", [table(TABLES[0], account=OTHER_ACCOUNT)]),
    "unmanaged tagged table, same VPC": Request("ec2:ReplaceRoute", [table("rtb-0a9")]),
    "unmanaged EIP to own ENI": Request("ec2:AssociateAddress", [eip("eipalloc-0f1"), eni(WAN[0])]),
    "own EIP to foreign ENI": Request("ec2:AssociateAddress", [eip(ALLOCATION), eni("eni-0f10")]),
    "own EIP to own LAN ENI": Request("ec2:AssociateAddress", [eip(ALLOCATION), eni(LAN[0])]),
    "own EIP to ENI of other VPC": Request(
        "ec2:AssociateAddress", [eip(ALLOCATION), eni("eni-0f20", OTHER_VPC)]
    ),
    "ReleaseAddress": Request("ec2:ReleaseAddress", [eip(ALLOCATION)]),
    "DisassociateAddress": Request("ec2:DisassociateAddress", [eip(ALLOCATION), eni(WAN[0])]),
    "DeleteRoute": Request("ec2:DeleteRoute", [table(TABLES[0])]),
    "ModifyNetworkInterfaceAttribute": Request("ec2:ModifyNetworkInterfaceAttribute", [eni(WAN[0])]),
}


def test_policy_allows_every_takeover_call(tmp_path) -> None:
    doc = _policy(tmp_path)
    assert [r for r in TAKEOVER if not allowed(doc, r)] == []


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_policy_refuses(tmp_path, name: str) -> None:
    assert not allowed(_policy(tmp_path), REFUSED[name])


def test_policy_allows_exactly_the_takeover(tmp_path) -> None:
    """Every action on every candidate resource (own and foreign): the allowed set is the takeover's."""
    doc = _policy(tmp_path)
    tables = [table(t) for t in [*TABLES, "rtb-0a9"]] + [table("rtb-0f1", OTHER_VPC)]
    eips = [eip(ALLOCATION), eip("eipalloc-0f1")]
    enis = [eni(e) for e in [*WAN, *LAN, "eni-0f10"]] + [eni("eni-0f20", OTHER_VPC)]
    shapes: dict[str, list[list[Resource]]] = {
        **{a: [[ANYWHERE]] for a in DESCRIBE},
        "ec2:CreateRoute": [[t] for t in tables],
        "ec2:ReplaceRoute": [[t] for t in tables],
        "ec2:DeleteRoute": [[t] for t in tables],
        "ec2:AssociateAddress": [list(p) for p in itertools.product(eips, enis)],
        "ec2:DisassociateAddress": [list(p) for p in itertools.product(eips, enis)],
        "ec2:ReleaseAddress": [[e] for e in eips],
        "ec2:ModifyNetworkInterfaceAttribute": [[e] for e in enis],
    }
    probes = [Request(a, rs) for a, many in shapes.items() for rs in many]
    assert len(probes) == len(DESCRIBE) + 3 * 4 + 2 * (2 * 6) + 2 + 6
    assert [p for p in probes if allowed(doc, p)] == TAKEOVER


def test_statements_name_the_pair_by_arn(tmp_path) -> None:
    by_sid = {s["Sid"]: s for s in _policy(tmp_path)["Statement"]}
    vpc = {"ArnEquals": {"ec2:Vpc": arn("vpc", VPC)}}
    assert by_sid == {
        "Discover": {"Sid": "Discover", "Effect": "Allow", "Action": DESCRIBE, "Resource": "*"},
        "ManagedRouteTables": {
            "Sid": "ManagedRouteTables",
            "Effect": "Allow",
            "Action": ["ec2:CreateRoute", "ec2:ReplaceRoute"],
            "Resource": [arn("route-table", t) for t in TABLES],
            "Condition": vpc,
        },
        # An elastic-ip carries no ec2:Vpc key: a VPC condition here would refuse every AssociateAddress.
        "OwnElasticIps": {
            "Sid": "OwnElasticIps",
            "Effect": "Allow",
            "Action": ["ec2:AssociateAddress"],
            "Resource": [arn("elastic-ip", ALLOCATION)],
        },
        "OwnWanInterfaces": {
            "Sid": "OwnWanInterfaces",
            "Effect": "Allow",
            "Action": ["ec2:AssociateAddress"],
            "Resource": [arn("network-interface", w) for w in WAN],
            "Condition": vpc,
        },
    }


def test_without_vpc_the_arns_alone_scope_it(tmp_path) -> None:
    doc = _policy(tmp_path, vpc_id=None)
    assert all("Condition" not in s for s in doc["Statement"])
    assert [r for r in TAKEOVER if not allowed(doc, r)] == []
    # Without the condition a managed table id seen in another VPC passes; every other refusal stands.
    assert {n for n, r in REFUSED.items() if allowed(doc, r)} == {"managed table id, other VPC"}


def test_explicit_ids_and_public_ip_eips(tmp_path) -> None:
    cfg = _cfg(
        tmp_path,
        route_tables={"ids": TABLES},
        eips=[{"eip": {"public_ip": "203.0.113.10"}, "private_ip": "10.77.0.234"}],
    )
    doc = iam.policy(cfg, account=ACCOUNT, vpc_id=VPC, eni_ids=WAN, allocation_ids=[ALLOCATION])
    assert [r for r in TAKEOVER if not allowed(doc, r)] == []
    assert not any(allowed(doc, r) for r in REFUSED.values())


def test_partition_follows_the_region(tmp_path) -> None:
    doc = _policy(tmp_path, region="cn-north-1")
    assert doc["Statement"][1]["Resource"][0] == "arn:aws-cn:ec2:cn-north-1:123456789012:route-table/rtb-0a1"


def test_provisioning_policy_only_the_pairs_enis() -> None:
    doc = iam.provisioning_policy(account=ACCOUNT, region=REGION, vpc_id=VPC, eni_ids=[*WAN, *LAN])
    modify = "ec2:ModifyNetworkInterfaceAttribute"
    assert all(allowed(doc, Request(modify, [eni(e)])) for e in [*WAN, *LAN])
    assert not allowed(doc, Request(modify, [eni("eni-0f10")]))
    assert not allowed(doc, Request(modify, [eni(WAN[0], OTHER_VPC)]))
    assert not allowed(doc, Request("ec2:AssociateAddress", [eip(ALLOCATION), eni(WAN[0])]))
    with pytest.raises(iam.PolicyError, match="ENI"):
        iam.provisioning_policy(account=ACCOUNT, region=REGION, eni_ids=[])


def _put_metrics(namespace: str) -> Request:
    return Request("cloudwatch:PutMetricData", [Resource("*", {"cloudwatch:namespace": namespace})])


def test_cloudwatch_rights_only_when_enabled_and_only_for_its_namespace(tmp_path) -> None:
    assert not allowed(_policy(tmp_path), _put_metrics("NatGatewayHA"))
    doc = iam.policy(
        _cfg(tmp_path, cloudwatch={"enabled": True, "namespace": "Net/NatGW"}),
        account=ACCOUNT,
        vpc_id=VPC,
        route_table_ids=TABLES,
        eni_ids=WAN,
    )
    assert allowed(doc, _put_metrics("Net/NatGW"))
    assert not allowed(doc, _put_metrics("NatGatewayHA"))
    assert not allowed(doc, _put_metrics("AWS/EC2"))
    assert [r for r in TAKEOVER if not allowed(doc, r)] == []  # nothing else changed
    assert not allowed(doc, Request("cloudwatch:PutMetricAlarm", [ANYWHERE]))


@pytest.mark.parametrize("which", ["policy", "policy_cloudwatch", "provisioning_policy"])
def test_parliament_finds_nothing(tmp_path, which: str) -> None:
    """Duo Labs' linter, community auditors included. Describe* on "*" draws no RESOURCE_STAR: parliament
    knows those actions have no resource type, so nothing is filtered out."""
    if which == "policy":
        doc = _policy(tmp_path)
    elif which == "policy_cloudwatch":
        cfg = _cfg(tmp_path, cloudwatch={"enabled": True})
        doc = iam.policy(cfg, account=ACCOUNT, vpc_id=VPC, route_table_ids=TABLES, eni_ids=WAN)
    else:
        doc = iam.provisioning_policy(account=ACCOUNT, region=REGION, vpc_id=VPC, eni_ids=[*WAN, *LAN])
    found = parliament.analyze_policy_string(json.dumps(doc), include_community_auditors=True).findings
    assert [(f.issue, f.detail) for f in found] == []


def test_parliament_does_flag_the_old_mistakes() -> None:
    """So its silence above means something: a wildcard route resource and a StringEquals on an ARN key."""
    old = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["ec2:ReplaceRoute"],
                "Resource": "*",
                "Condition": {"StringEquals": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:*:vpc/{VPC}"}},
            }
        ],
    }
    found = parliament.analyze_policy_string(json.dumps(old), include_community_auditors=True).findings
    assert {f.issue for f in found} >= {"RESOURCE_STAR", "MISMATCHED_TYPE_BUT_USABLE"}


# --- what the generator refuses to write ---------------------------------------------------------------


PUBLIC_IP_EIP = {"eips": [{"eip": {"public_ip": "203.0.113.10"}, "private_ip": "10.77.0.234"}]}
CLI_DEFAULTS = {"--account": [ACCOUNT], "--vpc-id": [VPC], "--route-table-id": TABLES, "--eni-id": WAN}


@pytest.mark.parametrize(
    ("config", "options", "says"),
    [
        ({}, {"--account": []}, "--vpc-id vpc-0a1 needs --account"),
        ({}, {"--account": [], "--vpc-id": []}, "the account is part of every ARN"),
        ({}, {"--account": ["*"]}, "not a 12-digit AWS account id"),
        ({}, {"--account": ["12345"]}, "not a 12-digit AWS account id"),
        ({}, {"--region": ["*"]}, "the region is part of every ARN"),
        ({"region": None}, {}, "the region is part of every ARN"),
        ({}, {"--route-table-id": ["rtb-*"]}, "rtb-*: not rtb- ids"),
        ({}, {"--eni-id": ["eni-*"]}, "eni-*: not eni- ids"),
        ({}, {"--vpc-id": ["vpc-*"]}, "vpc-*: not vpc- ids"),
        ({}, {"--route-table-id": []}, "selects route tables by tags"),
        ({"route_tables": {"subnet_ids": ["subnet-0a1"]}}, {"--route-table-id": []}, "by subnet_ids"),
        ({"route_tables": {"ids": ["rtb-0a1"]}}, {}, "rtb-0a2: the config selects tables by ids only"),
        ({}, {"--eni-id": []}, "authorised against the target ENI too"),
        (PUBLIC_IP_EIP, {}, "EIP 203.0.113.10 is not named by allocation_id"),
        ({}, {"--allocation-id": ["eipalloc-0f1"]}, "1 allocation(s) given beyond the config's"),
    ],
)
def test_cli_refuses(
    tmp_path, capsys, config: dict[str, Any], options: dict[str, list[str]], says: str
) -> None:
    """Each refusal: exit 2, one sentence on stderr, nothing on stdout. `options` override CLI_DEFAULTS."""
    path = tmp_path / "agent.json"
    path.write_text(_cfg(tmp_path, **config).model_dump_json())
    args = [a for opt, values in {**CLI_DEFAULTS, **options}.items() for v in values for a in (opt, v)]
    assert main(["iam-policy", "--config", str(path), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("natgw-ha-agent iam-policy: ") and says in err, err


def test_cli_prints_policy_rules_and_provisioning(tmp_path, capsys) -> None:
    path = tmp_path / "agent.json"
    path.write_text(_cfg(tmp_path).model_dump_json())
    ids = [a for t in TABLES for a in ("--route-table-id", t)]
    ids += [a for e in WAN for a in ("--eni-id", e)] + [a for e in LAN for a in ("--lan-eni-id", e)]
    argv = ["iam-policy", "--config", str(path), "--account", ACCOUNT, "--vpc-id", VPC, *ids]
    assert main([*argv, "--peer", "10.77.1.53"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == _policy(tmp_path)
    assert out["security_group_ingress"][0]["IpRanges"][0]["CidrIp"] == "10.77.1.53/32"
    (extra,) = out["provisioning_policy"]["Statement"]
    assert extra["Resource"] == [arn("network-interface", e) for e in sorted([*WAN, *LAN])]


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


# --- against the lab's cloud: the policy --resolve writes covers every call the agent really makes --------


def _resolved(world: Any, tmp_path: Any, capsys: Any, *options: str) -> tuple[int, Any, str]:
    path = tmp_path / "agent.json"
    cfg = agent_config(world, "gw1", "http://127.0.0.1:1", tmp_path, **peers_of("gw1"))
    path.write_text(cfg.model_dump_json())
    code = main(["iam-policy", "--config", str(path), "--resolve", *options])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def _as_request(world: Any, operation: str, params: dict[str, Any]) -> Request:
    """An agent call as EC2 authorises it (resources from the Service Authorization Reference)."""
    vpc = {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{moto_model.DEFAULT_ACCOUNT}:vpc/{world.vpc_id}"}
    here = f"arn:aws:ec2:{REGION}:{moto_model.DEFAULT_ACCOUNT}"
    if operation.startswith("Describe"):
        return Request(f"ec2:{operation}", [ANYWHERE])
    if operation in ("CreateRoute", "ReplaceRoute"):
        return Request(f"ec2:{operation}", [Resource(f"{here}:route-table/{params['RouteTableId']}", vpc)])
    if operation == "AssociateAddress":
        return Request(
            "ec2:AssociateAddress",
            [
                Resource(f"{here}:elastic-ip/{params['AllocationId']}"),
                Resource(f"{here}:network-interface/{params['NetworkInterfaceId']}", vpc),
            ],
        )
    raise AssertionError(f"the agent called {operation}, which this test cannot map to resources")


def test_resolved_policy_allows_every_call_of_both_takeovers(
    inprocess_world, connect_as, tmp_path, capsys, monkeypatch
) -> None:
    world = inprocess_world
    code, out, err = _resolved(world, tmp_path, capsys)
    assert code == 0, err
    doc = out["policy"]
    by_sid = {s["Sid"]: s["Resource"] for s in doc["Statement"]}
    here = f"arn:aws:ec2:{REGION}:{moto_model.DEFAULT_ACCOUNT}"
    # The five tagged private tables, not the main or public one; the lab's EIP; both WAN ENIs.
    assert by_sid["ManagedRouteTables"] == [f"{here}:route-table/{t}" for t in sorted(world.private_tables)]
    assert by_sid["OwnElasticIps"] == [f"{here}:elastic-ip/{a}" for a in world.eips.values()]
    wan = sorted(world.eni(h, "eth0") for h in ("gw1", "gw2"))
    assert by_sid["OwnWanInterfaces"] == [f"{here}:network-interface/{e}" for e in wan]
    lan = sorted(world.eni(h, "eth1") for h in ("gw1", "gw2"))
    (prov,) = out["provisioning_policy"]["Statement"]
    assert prov["Resource"] == [f"{here}:network-interface/{e}" for e in sorted(wan + lan)]

    seen: list[tuple[str, dict[str, Any]]] = []
    real_client = startup.ec2_client

    def recording_client(*args: Any) -> Any:
        client = real_client(*args)
        client.meta.events.register(
            "before-parameter-build.ec2",
            lambda params, model, **_: seen.append((model.name, dict(params))),
        )
        return client

    monkeypatch.setattr(startup, "ec2_client", recording_client)
    world.ec2.delete_route(RouteTableId=world.private_tables[0], DestinationCidrBlock="0.0.0.0/0")
    for host in ("gw2", "gw1"):  # start-up (resolve) and a takeover by each gateway
        assert connect_as(world, host, **peers_of(host)).takeover().converged
    requests = [_as_request(world, op, params) for op, params in seen]
    assert {r.action for r in requests} >= {"ec2:AssociateAddress", "ec2:CreateRoute", "ec2:ReplaceRoute"}
    assert [r for r in requests if not allowed(doc, r)] == []
    # (Here rather than in its own test, to seed the cloud once.) An --account the ENIs disown is refused.
    code, _, err = _resolved(world, tmp_path, capsys, "--account", OTHER_ACCOUNT)
    assert code == 2 and "but the gateways' ENIs are 123456789012's" in err, err


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"wan_eni": {"device_index": 0}, **peers_of("gw1")},
            "by device_index, which only its IMDS can resolve",
        ),
        ({}, "the config names no peers, so the other gateway's ENIs cannot be found"),
    ],
)
def test_resolve_refuses_what_ec2_cannot_tell(tmp_path, capsys, config: dict[str, Any], says: str) -> None:
    """Refused before any EC2 call: only the gateway's IMDS knows a device index, only the config peers."""
    path = tmp_path / "agent.json"
    path.write_text(_cfg(tmp_path, **config).model_dump_json())
    assert main(["iam-policy", "--config", str(path), "--resolve"]) == 2
    assert says in capsys.readouterr().err
