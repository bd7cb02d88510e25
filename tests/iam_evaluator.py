"""A small IAM evaluator for identity policies made only of Allow statements, to probe the generated policy.

A request is one action and the resources EC2 authorises it against (AssociateAddress: the elastic-ip and
the network-interface; CreateRoute/ReplaceRoute/DeleteRoute: the route-table; Describe*: "*"), each with
the condition keys that resource carries (ec2:Vpc, aws:ResourceTag/K, ...), plus request-wide keys. It is
allowed only when every resource is allowed by some statement whose Action, Resource and Condition all match
that resource (conditions see the request-wide keys and that resource's own).

Modelled: Action and Resource lists or strings with `*`/`?` wildcards (actions case-insensitive, resources
case-sensitive, `*` crossing `:` and `/`); Condition operators StringEquals, StringLike, ArnEquals and
ArnLike (ARNs compared per colon-separated part, wildcards allowed in each), a key's value list is an OR,
keys and operators are ANDed, a key absent from the context fails its test.

Not modelled, and refused with ValueError when a policy uses it: Deny statements, NotAction, NotResource,
Principal, any other condition operator, ...IfExists, ForAllValues/ForAnyValue (multi-valued keys). Never
modelled at all: policy variables (${aws:username}), SCPs, resource control policies, permission boundaries,
session policies, resource-based policies, and which condition keys EC2 really sends for a call (the
caller of `allowed` says which).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike"})
STATEMENT_KEYS = frozenset({"Sid", "Effect", "Action", "Resource", "Condition"})


@dataclass(frozen=True)
class Resource:
    """One resource the action is authorised against, with the condition keys it carries."""

    arn: str
    keys: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    action: str
    resources: Sequence[Resource]
    keys: Mapping[str, str] = field(default_factory=dict)  # request-wide: ec2:Region, aws:SourceIp, ...


def _glob(pattern: str, value: str, *, fold: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (`:` and `/` too), `?` one character; nothing else."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: the six colon-separated parts match one by one (the resource part keeps its `:`)."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(_glob(a, b) for a, b in zip(p, v, strict=True))


def _test(op: str, wanted: str, actual: str) -> bool:
    if op == "StringEquals":
        return wanted == actual
    if op == "StringLike":
        return _glob(wanted, actual)
    return _arn_like(wanted, actual)  # ArnEquals and ArnLike behave alike in IAM


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _conditions_hold(condition: Mapping[str, Mapping[str, Any]], keys: Mapping[str, str]) -> bool:
    for op, tests in condition.items():
        for key, wanted in tests.items():
            if key not in keys or not any(_test(op, w, keys[key]) for w in _as_list(wanted)):
                return False
    return True


def _check_modelled(statement: Mapping[str, Any]) -> None:
    unknown = set(statement) - STATEMENT_KEYS
    if statement.get("Effect") != "Allow" or unknown:
        raise ValueError(f"not modelled: {statement.get('Effect')} statement with {sorted(unknown)}")
    ops = set(statement.get("Condition", {})) - OPERATORS
    if ops:
        raise ValueError(f"not modelled: condition operators {sorted(ops)}")


def _allows(statement: Mapping[str, Any], action: str, resource: Resource, keys: Mapping[str, str]) -> bool:
    return (
        any(_glob(a, action, fold=True) for a in _as_list(statement["Action"]))
        and any(_glob(r, resource.arn) for r in _as_list(statement["Resource"]))
        and _conditions_hold(statement.get("Condition", {}), {**keys, **resource.keys})
    )


def allowed(policy: Mapping[str, Any], request: Request) -> bool:
    """Whether the policy alone allows the request: every resource allowed by some Allow statement."""
    statements = _as_list(policy["Statement"])
    for s in statements:
        _check_modelled(s)
    if not request.resources:
        raise ValueError("a request is authorised against at least one resource ('*' if none)")
    return all(
        any(_allows(s, request.action, r, request.keys) for s in statements) for r in request.resources
    )
