"""Inventories for the pure tier: a valid two-pair inventory, changes to it, templates without Ansible.

Shared by the table of hostile inventories and the controller-check tests.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from nat_gateway_ha.inventory import Plan, plan

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "roles/nat_gateway_ha/templates/etc"
Inv = dict[str, Any]


def _pair(n: int) -> dict[str, Any]:
    return {
        "vrid": 50 + n,
        "vips": [f"10.24{n}.0.1/32"],
        "eips": [{"allocation_id": f"eipalloc-0{n}"}],
        "route_tables": {"ids": [f"rtb-0{n}"]},
    }


def host_spec(pair: int, i: int) -> dict[str, Any]:
    return {
        "wan_address": f"10.{pair}0.{i}.10/24",
        "wan_mac": f"02:00:00:00:{pair}{i}:00",
        "lan_address": f"10.{pair}0.{i + 4}.10/24",
        "lan_mac": f"02:00:00:00:{pair}{i}:01",
        "eip_private_ips": [f"10.{pair}0.{i}.11"],
    }


def base() -> Inv:
    """Pairs natgw_a (gw-a1, gw-a2) and natgw_b (gw-b1, gw-b2), sharing nothing."""
    return {
        "pairs": {
            f"natgw_{p}": {"spec": _pair(n), "hosts": {f"gw-{p}{i}": host_spec(n, i) for i in (1, 2)}}
            for n, p in ((1, "a"), (2, "b"))
        },
        "vars": {},
    }


def run(inv: Inv) -> Plan:
    pairs: dict[str, list[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for name, group in inv["pairs"].items():
        pairs[name] = list(group["hosts"])
        for host, spec in group["hosts"].items():
            hostvars[host] = {"nat_gateway_ha_pair": group["spec"], "nat_gateway_ha_host": spec}
            hostvars[host] |= inv["vars"].get(host, {})
    return plan(pairs, hostvars, use_facts=False)


def pair(name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][name]["spec"].update(over)

    return change


def host(pair_name: str, name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][pair_name]["hosts"][name].update(over)

    return change


def hvar(name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["vars"].setdefault(name, {}).update(over)

    return change


def rename_host(pair_name: str, old: str, new: str) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        hosts = inv["pairs"][pair_name]["hosts"]
        hosts[new] = hosts.pop(old)

    return change


def rename_pair(old: str, new: str) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][new] = inv["pairs"].pop(old)

    return change


def both(*changes: Callable[[Inv], None]) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        for c in changes:
            c(inv)

    return change


def _word_filter() -> Callable[..., str]:
    spec = importlib.util.spec_from_file_location(
        "word", ROOT / "roles/nat_gateway_ha/filter_plugins/nat_gateway_ha_word.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    word: Callable[..., str] = module.nat_gateway_ha_word
    return word


def render(name: str, host_vars: dict[str, Any]) -> str:
    """The role's template rendered as Ansible would (its second-wall filter included), without Ansible."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    env.filters["nat_gateway_ha_word"] = _word_filter()
    return env.get_template(name).render(nat_gateway_ha_this=host_vars, ansible_managed="Ansible managed")


def plain_agent_config(**overrides: Any) -> dict[str, Any]:
    """The least an AgentConfig needs (ENIs by device index, one EIP by allocation), as the JSON dict."""
    return {
        "pair": "p",
        "host": "gw1",
        "vrrp_instance": "VI_p",
        "wan_eni": {"device_index": 0},
        "lan_eni": {"device_index": 1},
        "eips": [{"eip": {"allocation_id": "eipalloc-1"}, "private_ip": "10.0.0.10"}],
        "route_tables": {"tags": {"Network": "private"}},
    } | overrides
