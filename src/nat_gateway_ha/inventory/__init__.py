"""The inventory, planned in three stages: `plan()` turns it into every gateway's settings.

Inventory layout: group `nat_gateways`; each HA pair is a child group of it. The pair group's vars hold
`nat_gateway_ha_pair` (a `PairSpec`), each gateway's host vars hold `nat_gateway_ha_host` (a `HostSpec`) and
may hold `nat_gateway_ha_script_user`.

1. `models`: the input models parse every value with a strict type (`nat_gateway_ha.fields`);
2. `rules`: `RULES`, the one ordered list of what the inventory refuses beyond types;
3. `build`: the builder computes peers, priorities, NAT rules and agent configs, without validating.

Every error of stages 1 and 2 is collected (not just the first), each naming pair, host and field, and the
builder runs only on an inventory without any.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from nat_gateway_ha.fields import HostName, PairName, ScriptUser
from nat_gateway_ha.inventory.build import build_pair
from nat_gateway_ha.inventory.errors import Errors, PlanError
from nat_gateway_ha.inventory.facts import Resolved, resolve
from nat_gateway_ha.inventory.models import (
    DEFAULT_SCRIPT_USER,
    HOST_VAR,
    PAIR_VAR,
    SCRIPT_USER_VAR,
    HostSpec,
    PairSpec,
)
from nat_gateway_ha.inventory.output import HostPlan, PairPlan, Plan
from nat_gateway_ha.inventory.parsed import Inventory
from nat_gateway_ha.inventory.rules import RULES

__all__ = ["HOST_VAR", "PAIR_VAR", "SCRIPT_USER_VAR", "HostSpec", "PairSpec", "Plan", "PlanError", "plan"]

_PAIR_NAME: TypeAdapter[str] = TypeAdapter(PairName)
_HOST_NAME: TypeAdapter[str] = TypeAdapter(HostName)
_SCRIPT_USER: TypeAdapter[str] = TypeAdapter(ScriptUser)


def _bad(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return True
    return False


def _check_names(err: Errors, pairs: Mapping[str, Sequence[str]]) -> None:
    """Pair and host names reach keepalived.conf and render's paths: refuse any other spelling up front."""
    for pair, members in pairs.items():
        shown = pair if len(pair) <= 40 and pair.isprintable() else repr(pair[:40])
        if _bad(_PAIR_NAME, pair):
            err.add(shown, members and "-", "group name", "a pair group name is 1-32 letters, digits or _")
        for h in members:
            if _bad(_HOST_NAME, h):
                err.add(
                    shown,
                    repr(h[:70]),
                    "inventory_hostname",
                    "a gateway's name is 1-63 letters, digits, . _ -",
                )


def _parse_pair(err: Errors, pair: str, members: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]],
                member_of: Mapping[str, Sequence[str]]) -> PairSpec | None:  # fmt: skip
    # A host in two pairs sees only one pair's merged value: compare the others (it is reported by a rule).
    own = [h for h in members if len(member_of[h]) == 1] or list(members)
    raw = [hostvars.get(h, {}).get(PAIR_VAR) for h in own]
    missing = [h for h, v in zip(own, raw, strict=True) if v is None]
    if missing:
        err.add(pair, missing, PAIR_VAR, "required, not set (put it in the pair group's vars)")
    elif any(v != raw[0] for v in raw[1:]):
        err.add(pair, members, PAIR_VAR, "members see different values (set it on the pair group only)")
    elif not isinstance(raw[0], Mapping):
        err.add(pair, members, PAIR_VAR, f"must be a mapping, got {type(raw[0]).__name__}")
    else:
        try:
            return PairSpec.model_validate(dict(raw[0]))
        except ValidationError as exc:
            err.pydantic(pair, members, PAIR_VAR, exc)
    return None


def _parse_host(err: Errors, pair: str, h: str, hv: Mapping[str, Any], use_facts: bool) -> Resolved | None:
    raw = hv.get(HOST_VAR)
    if raw is None:
        err.add(pair, h, HOST_VAR, "required, not set (put it in the host's vars)")
        return None
    if not isinstance(raw, Mapping):
        err.add(pair, h, HOST_VAR, f"must be a mapping, got {type(raw).__name__}")
        return None
    try:
        spec = HostSpec.model_validate(dict(raw))
    except ValidationError as exc:
        err.pydantic(pair, h, HOST_VAR, exc)
        return None
    facts = hv.get("ansible_facts") if use_facts else None
    if use_facts and not isinstance(facts, Mapping):
        facts = {}
    before = len(err.items)
    r = resolve(err, pair, h, spec, facts)
    return r if len(err.items) == before else None  # a host without its addresses cannot be planned


def _script_user(err: Errors, pair: str, h: str, hv: Mapping[str, Any], default: str) -> str:
    user = hv.get(SCRIPT_USER_VAR, default)
    try:
        return _SCRIPT_USER.validate_python(user)
    except ValidationError as exc:
        err.add(pair, h, SCRIPT_USER_VAR, exc.errors(include_url=False)[0]["msg"][:200])
        return DEFAULT_SCRIPT_USER


def plan(
    pairs: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    *,
    use_facts: bool = True,
    script_user: str = DEFAULT_SCRIPT_USER,
) -> Plan:
    """Validate every pair and host of the inventory and compute each gateway's settings.

    `pairs` maps each pair group (a child of `nat_gateways`) to its member hosts in inventory order;
    `hostvars` maps each host to its merged variables (`nat_gateway_ha_pair`, `nat_gateway_ha_host`,
    optionally `nat_gateway_ha_script_user` (else `script_user`) and, when `use_facts`, `ansible_facts`).
    Raises `PlanError` listing every problem found.
    """
    err = Errors()
    if not pairs:
        raise PlanError(["pair -, host -, field members: the inventory has no pair group"], ["names"])
    err.stage = "names"
    _check_names(err, pairs)
    if err.items:  # names are in every other message: stop before echoing them
        raise PlanError(err.items, err.by)
    err.stage = "models"
    member_of: dict[str, list[str]] = {}
    for pair, members in pairs.items():
        for h in members:
            member_of.setdefault(h, []).append(pair)
    specs = {}
    for pair, members in pairs.items():
        spec = _parse_pair(err, pair, members, hostvars, member_of) if members else None
        if spec is not None:
            specs[pair] = spec
    hosts: dict[str, Resolved] = {}
    users: dict[str, str] = {}
    for h, in_pairs in member_of.items():
        pair, hv = ",".join(in_pairs), hostvars.get(h, {})
        users[h] = _script_user(err, pair, h, hv, script_user)
        r = _parse_host(err, pair, h, hv, use_facts)
        if r is not None:
            hosts[h] = r
    inventory = Inventory(pairs=pairs, member_of=member_of, specs=specs, hosts=hosts)
    for rule in RULES:
        err.stage = rule.__name__
        rule(inventory, err)
    if err.items:
        raise PlanError(err.items, err.by)
    pair_plans: dict[str, PairPlan] = {}
    host_plans: dict[str, HostPlan] = {}
    for pair, members, spec, resolved in inventory.complete():
        pair_plans[pair], built = build_pair(pair, members, spec, resolved, users)
        host_plans.update(built)
    return Plan(pairs=pair_plans, hosts=host_plans)
