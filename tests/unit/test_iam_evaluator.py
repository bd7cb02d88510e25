"""The evaluator itself: it must say yes where IAM says yes, or its refusals in test_iam prove nothing."""

from __future__ import annotations

from typing import Any

import pytest

from iam_evaluator import Request, Resource, allowed

RTB = "arn:aws:ec2:eu-west-1:123456789012:route-table/rtb-0a1"
EIP = "arn:aws:ec2:eu-west-1:123456789012:elastic-ip/eipalloc-0e1"
ENI = "arn:aws:ec2:eu-west-1:123456789012:network-interface/eni-0a10"
VPC = "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-0a1"


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}


def test_action_wildcards_are_case_insensitive_resource_ones_are_not() -> None:
    doc = _doc({"Action": "EC2:Describe*", "Resource": "*"}, {"Action": "ec2:ReplaceRo?te", "Resource": RTB})
    assert allowed(doc, Request("ec2:DescribeRouteTables", [Resource("*")]))
    assert allowed(doc, Request("ec2:ReplaceRoute", [Resource(RTB)]))
    assert not allowed(doc, Request("ec2:ReplaceRoute", [Resource(RTB.upper())]))
    assert not allowed(doc, Request("ec2:CreateRoute", [Resource(RTB)]))


def test_resource_star_crosses_colons_and_slashes() -> None:
    doc = _doc({"Action": "ec2:CreateRoute", "Resource": "arn:aws:ec2:*"})
    assert allowed(doc, Request("ec2:CreateRoute", [Resource(RTB)]))
    assert not allowed(doc, Request("ec2:CreateRoute", [Resource(RTB.replace("arn:aws:", "arn:aws-cn:"))]))


def test_every_resource_of_the_request_must_be_allowed() -> None:
    doc = _doc({"Action": "ec2:AssociateAddress", "Resource": EIP})
    assert allowed(doc, Request("ec2:AssociateAddress", [Resource(EIP)]))
    assert not allowed(doc, Request("ec2:AssociateAddress", [Resource(EIP), Resource(ENI)]))
    doc["Statement"].append({"Effect": "Allow", "Action": "ec2:AssociateAddress", "Resource": ENI})
    assert allowed(doc, Request("ec2:AssociateAddress", [Resource(EIP), Resource(ENI)]))


def test_conditions_see_the_resources_own_keys_and_fail_on_a_missing_key() -> None:
    """The old policy's bug: an ec2:Vpc condition on an elastic-ip, which carries no such key."""
    doc = _doc(
        {
            "Action": "ec2:AssociateAddress",
            "Resource": [EIP, ENI],
            "Condition": {"ArnEquals": {"ec2:Vpc": VPC}},
        }
    )
    eni = Resource(ENI, {"ec2:Vpc": VPC})
    assert allowed(doc, Request("ec2:AssociateAddress", [eni]))
    assert not allowed(doc, Request("ec2:AssociateAddress", [Resource(EIP), eni]))
    # A request-wide key counts for every resource.
    assert allowed(doc, Request("ec2:AssociateAddress", [Resource(EIP), eni], {"ec2:Vpc": VPC}))


@pytest.mark.parametrize(
    ("operator", "wanted", "actual", "result"),
    [
        ("StringEquals", "private", "private", True),
        ("StringEquals", "private", "Private", False),
        ("StringEquals", "priv*", "private", False),
        ("StringLike", "priv*", "private", True),
        ("StringLike", "pri?ate", "private", True),
        ("StringLike", "pri?ate", "priate", False),
        ("ArnEquals", VPC, VPC, True),
        ("ArnEquals", "arn:aws:ec2:eu-west-1:*:vpc/vpc-0a1", VPC, True),
        ("ArnLike", "arn:aws:ec2:*:*:vpc/*", VPC, True),
        ("ArnLike", "arn:aws:ec2:*:*:vpc/*", RTB, False),
        ("ArnLike", "arn:aws:ec2:*", VPC, False),  # six parts, each matched on its own
        ("StringEquals", ["public", "private"], "private", True),
        # The old generator's `--vpc-id` without `--account`: a literal '*' under StringEquals.
        ("StringEquals", "arn:aws:ec2:eu-west-1:*:vpc/vpc-0a1", VPC, False),
    ],
)
def test_condition_operators(operator: str, wanted: Any, actual: str, result: bool) -> None:
    doc = _doc({"Action": "ec2:ReplaceRoute", "Resource": RTB, "Condition": {operator: {"ec2:Vpc": wanted}}})
    assert allowed(doc, Request("ec2:ReplaceRoute", [Resource(RTB, {"ec2:Vpc": actual})])) is result


def test_keys_and_operators_are_anded() -> None:
    condition = {"ArnEquals": {"ec2:Vpc": VPC}, "StringEquals": {"aws:ResourceTag/Network": "private"}}
    doc = _doc({"Action": "ec2:ReplaceRoute", "Resource": RTB, "Condition": condition})
    both = {"ec2:Vpc": VPC, "aws:ResourceTag/Network": "private"}
    assert allowed(doc, Request("ec2:ReplaceRoute", [Resource(RTB, both)]))
    assert not allowed(doc, Request("ec2:ReplaceRoute", [Resource(RTB, {"ec2:Vpc": VPC})]))


def test_old_wildcard_policy_allows_what_the_new_one_refuses() -> None:
    """The pre-issue-10 shape: route-table/* by tag and elastic-ip/* let any tagged table and EIP through."""
    old = _doc(
        {
            "Action": ["ec2:CreateRoute", "ec2:ReplaceRoute"],
            "Resource": "arn:aws:ec2:eu-west-1:123456789012:route-table/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/Network": "private"}},
        },
        {"Action": "ec2:AssociateAddress", "Resource": "arn:aws:ec2:eu-west-1:123456789012:elastic-ip/*"},
        {
            "Action": "ec2:AssociateAddress",
            "Resource": "arn:aws:ec2:eu-west-1:123456789012:network-interface/*",
        },
    )
    unmanaged = Resource(RTB.replace("rtb-0a1", "rtb-0a9"), {"aws:ResourceTag/Network": "private"})
    assert allowed(old, Request("ec2:ReplaceRoute", [unmanaged]))
    foreign_eip = Resource(EIP.replace("eipalloc-0e1", "eipalloc-0f1"))
    assert allowed(old, Request("ec2:AssociateAddress", [foreign_eip, Resource(ENI)]))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Deny", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "ec2:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "ec2:*", "NotResource": "*"},
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"StringEqualsIfExists": {}}},
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {}}},
    ],
)
def test_what_it_does_not_model_is_refused_not_misjudged(statement: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not modelled"):
        allowed({"Statement": [statement]}, Request("ec2:ReplaceRoute", [Resource(RTB)]))
