"""inventory.plan(): peers and priorities computed once; every bad input refused naming pair, host, field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.inventory import PlanError, plan


def _pair(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "vrid": 69,
        "vips": ["10.240.240.240/32"],
        "eips": [{"allocation_id": "eipalloc-0a1b2c3d"}],
        "route_tables": {"tags": {"Network": "private"}},
    }
    spec.update(over)
    return spec


def _host(n: int, **over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "wan_address": f"10.77.{n - 1}.10/24",
        "wan_mac": f"02:77:00:00:0{n}:00",
        "lan_address": f"10.77.{n + 2}.10/24",
        "lan_mac": f"02:77:00:00:0{n}:01",
        "eip_private_ips": [f"10.77.{n - 1}.11"],
    }
    spec.update(over)
    return {k: v for k, v in spec.items() if v is not None}


def _inventory(
    n: int = 2, pair: dict[str, Any] | None = None, hosts: dict[int, dict[str, Any]] | None = None
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    names = [f"gw{i}" for i in range(1, n + 1)]
    hv = {
        name: {
            "nat_gateway_ha_pair": pair or _pair(),
            "nat_gateway_ha_host": _host(i, **(hosts or {}).get(i, {})),
        }
        for i, name in enumerate(names, 1)
    }
    return {"natgw_a": names}, hv


def _errors(pairs: dict[str, list[str]], hv: dict[str, dict[str, Any]], use_facts: bool = False) -> list[str]:
    with pytest.raises(PlanError) as info:
        plan(pairs, hv, use_facts=use_facts)
    return info.value.errors


def test_two_gateways_peer_each_other_with_distinct_derived_priorities() -> None:
    p = plan(*_inventory(), use_facts=False)
    gw1, gw2 = p.hosts["gw1"].keepalived, p.hosts["gw2"].keepalived
    assert [str(a) for a in gw1.unicast_peers] == ["10.77.4.10"]
    assert [str(a) for a in gw2.unicast_peers] == ["10.77.3.10"]
    assert (gw1.priority, gw2.priority) == (150, 140)
    assert gw1.virtual_router_id == gw2.virtual_router_id == 69
    assert gw1.state == "BACKUP" and gw1.nopreempt
    assert p.pairs["natgw_a"].priorities == {"gw1": 150, "gw2": 140}


def test_peers_in_other_subnets_are_routed_through_the_lan_router() -> None:
    p = plan(
        *_inventory(3, hosts={3: {"lan_address": "10.77.3.11/24", "lan_router": "10.77.3.254"}}),
        use_facts=False,
    )
    routes = {
        h: [(str(r.to), str(r.via), r.dev) for r in hp.keepalived.peer_routes] for h, hp in p.hosts.items()
    }
    # gw1 and gw3 share 10.77.3.0/24: no route between them; gw2 (10.77.4.0/24) is routed.
    assert routes["gw1"] == [("10.77.4.10", "10.77.3.1", "eth1")]
    assert routes["gw2"] == [("10.77.3.10", "10.77.4.1", "eth1"), ("10.77.3.11", "10.77.4.1", "eth1")]
    assert routes["gw3"] == [("10.77.4.10", "10.77.3.254", "eth1")]


def test_three_gateways_each_peer_with_the_two_others() -> None:
    p = plan(*_inventory(3, hosts={2: {"priority": 150}}), use_facts=False)
    srcs = {h: hp.keepalived.unicast_src_ip for h, hp in p.hosts.items()}
    for h, hp in p.hosts.items():
        assert sorted(hp.keepalived.unicast_peers) == sorted(v for o, v in srcs.items() if o != h)
    prios = [hp.keepalived.priority for hp in p.hosts.values()]
    assert len(set(prios)) == 3 and p.hosts["gw2"].keepalived.priority == 150


def test_agent_config_binds_each_eip_to_the_hosts_private_ip_and_adds_vip_routes() -> None:
    p = plan(*_inventory(pair=_pair(vip_routes=True, region="eu-west-1")), use_facts=False)
    agent = p.hosts["gw2"].agent
    assert isinstance(agent, AgentConfig)
    assert str(agent.eips[0].private_ip) == "10.77.1.11"
    assert agent.wan_eni.mac == "02:77:00:00:02:00" and agent.lan_eni.mac == "02:77:00:00:02:01"
    assert [str(d) for d in agent.destinations] == ["0.0.0.0/0", "10.240.240.240/32"]
    assert agent.vrrp_instance == p.hosts["gw2"].keepalived.name
    assert agent.region == "eu-west-1"
    # The rendered JSON is what the agent loads.
    AgentConfig.model_validate(p.to_vars()["hosts"]["gw2"]["agent"])


def test_facts_fill_in_addresses_and_macs() -> None:
    pairs, hv = _inventory(hosts={1: {"lan_address": None, "lan_mac": None}})
    hv["gw1"]["ansible_facts"] = {
        "eth1": {
            "ipv4": {"address": "10.77.3.10", "netmask": "255.255.255.0"},
            "macaddress": "02:AA:00:00:01:01",
        },
        "eth0": {
            "ipv4": {"address": "10.77.0.10", "netmask": "255.255.255.0"},
            "macaddress": "02:77:00:00:01:00",
        },
    }
    hv["gw2"]["ansible_facts"] = {
        "eth1": {
            "ipv4": {"address": "10.77.4.10", "netmask": "255.255.255.0"},
            "macaddress": "02:77:00:00:02:01",
        },
        "eth0": {
            "ipv4": {"address": "10.77.1.10", "netmask": "255.255.255.0"},
            "macaddress": "02:77:00:00:02:00",
        },
    }
    p = plan(pairs, hv, use_facts=True)
    assert str(p.hosts["gw1"].keepalived.unicast_src_ip) == "10.77.3.10"
    assert p.hosts["gw1"].agent.lan_eni.mac == "02:aa:00:00:01:01"


def test_facts_contradicting_the_inventory_are_an_error() -> None:
    pairs, hv = _inventory()
    for h in hv:
        hv[h]["ansible_facts"] = {"eth0": {"ipv4": {"address": "10.9.9.9", "netmask": "255.255.255.0"}}}
    errors = _errors(pairs, hv, use_facts=True)
    assert any("host gw1, field nat_gateway_ha_host.wan_address: inventory says" in e for e in errors)
    assert any(
        "host gw1, field nat_gateway_ha_host.lan_interface: facts show no interface 'eth1'" in e
        for e in errors
    )


# One case per bad input of issue 2: (inventory changes, expected "pair ..., host ..., field ...: " prefix).
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "fewer than two hosts": ({"n": 1}, "pair natgw_a, host gw1, field members"),
    "equal priorities": (
        {"hosts": {1: {"priority": 100}, 2: {"priority": 100}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.priority",
    ),
    "vrid out of range": (
        {"pair": {"vrid": 0}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.vrid",
    ),
    "priority out of range": (
        {"hosts": {2: {"priority": 255}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.priority",
    ),
    "vrrpv2 fractional advert_int": (
        {"pair": {"vrrp_version": 2, "advert_int": 0.5}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.advert_int",
    ),
    "vrrpv3 advert_int off the 10 ms grid": (
        {"pair": {"advert_int": 0.125}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.advert_int",
    ),
    "vrrpv2 auth_pass longer than 8": (
        {"pair": {"vrrp_version": 2, "advert_int": 1, "authentication": {"auth_pass": "123456789"}}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.authentication.auth_pass",
    ),
    "authentication with vrrpv3": (
        {"pair": {"authentication": {"auth_pass": "secret"}}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.authentication",
    ),
    "invalid ip": (
        {"hosts": {1: {"eip_private_ips": ["10.77.0.256"]}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.eip_private_ips[0]",
    ),
    "invalid cidr": (
        {"pair": {"vips": ["10.240.240.240/33"]}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.vips[0]",
    ),
    "unicast address outside the lan subnet": (
        {"hosts": {2: {"unicast_src_ip": "10.77.3.99"}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.unicast_src_ip",
    ),
    "eip private ip outside the wan subnet": (
        {"hosts": {2: {"eip_private_ips": ["10.77.9.11"]}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.eip_private_ips[0]",
    ),
    "vip equal to a host address": (
        {"pair": {"vips": ["10.77.4.10/32"]}},
        "pair natgw_a, host gw2, field nat_gateway_ha_pair.vips[0]",
    ),
    "missing eip": ({"pair": {"eips": None}}, "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.eips"),
    "empty eip list": ({"pair": {"eips": []}}, "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.eips"),
    "fewer eip private ips than eips": (
        {"pair": {"eips": [{"allocation_id": "eipalloc-01"}, {"allocation_id": "eipalloc-02"}]}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.eip_private_ips",
    ),
    "missing vip": ({"pair": {"vips": []}}, "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.vips"),
    "unknown pair key": (
        {"pair": {"advert_interval": 1}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.advert_interval: unknown key",
    ),
    "unknown host key": (
        {"hosts": {1: {"lan_adress": "10.77.3.10/24"}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.lan_adress: unknown key",
    ),
    "unknown agent option": (
        {"pair": {"agent": {"api_timeout": 1}}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.agent.api_timeout: unknown key",
    ),
    "bad agent option value": (
        {"pair": {"agent": {"api_connect_timeout": 0}}},
        "pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.agent.api_connect_timeout",
    ),
    "missing address without facts": (
        {"hosts": {2: {"lan_address": None}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.lan_address: not set, and no facts give it",
    ),
    "missing mac without facts": (
        {"hosts": {1: {"wan_mac": None}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.wan_mac: not set",
    ),
    "lan router outside the lan subnet": (
        {"hosts": {1: {"lan_router": "10.77.4.1"}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.lan_router",
    ),
    "bad mac": (
        {"hosts": {1: {"wan_mac": "02:77"}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.wan_mac",
    ),
    "same address on two members": (
        {"hosts": {2: {"wan_address": "10.77.0.10/24", "eip_private_ips": ["10.77.0.12"]}}},
        "pair natgw_a, host gw2, field nat_gateway_ha_host.wan_address: 10.77.0.10 is also an address of gw1",
    ),
    "eip private ip equal to the wan primary address": (
        {"hosts": {1: {"eip_private_ips": ["10.77.0.10"]}}},
        "pair natgw_a, host gw1, field nat_gateway_ha_host.eip_private_ips[0]: 10.77.0.10 is the primary",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_pair_host_and_field(case: str) -> None:
    change, expected = BAD[case]
    pair = _pair(**change.get("pair", {}))
    pair = {k: v for k, v in pair.items() if v is not None}
    pairs, hv = _inventory(change.get("n", 2), pair=pair, hosts=change.get("hosts"))
    errors = _errors(pairs, hv)
    assert any(e.startswith(expected) for e in errors), errors


def test_a_host_in_two_pairs_is_refused() -> None:
    _, hv = _inventory(3)
    errors = _errors({"natgw_a": ["gw1", "gw2"], "natgw_b": ["gw2", "gw3"]}, hv)
    assert (
        "pair natgw_a,natgw_b, host gw2, field group membership: gw2 is in 2 pairs; a gateway serves one"
        in errors
    )


def test_duplicate_vrid_on_a_shared_lan_is_refused_and_allowed_on_separate_lans() -> None:
    _, hv = _inventory(4)
    two = {"natgw_a": ["gw1", "gw2"], "natgw_b": ["gw3", "gw4"]}
    other_pair = _pair(
        vips=["10.240.240.241/32"],
        eips=[{"allocation_id": "eipalloc-0b"}],
        route_tables={"tags": {"Network": "private-b"}},
    )
    for h in ("gw3", "gw4"):
        hv[h]["nat_gateway_ha_pair"] = other_pair
    hv["gw4"]["nat_gateway_ha_host"] |= {"wan_address": "10.77.9.10/24", "eip_private_ips": ["10.77.9.11"]}
    plan(two, hv, use_facts=False)  # same VRID, LANs 10.77.3-6.0/24 do not overlap
    hv["gw3"] = copy.deepcopy(hv["gw3"])
    hv["gw3"]["nat_gateway_ha_host"]["lan_address"] = "10.77.3.11/24"  # now on gw1's LAN
    errors = _errors(two, hv)
    assert any(
        e.startswith("pair natgw_a, host gw1,gw2, field nat_gateway_ha_pair.vrid: VRID 69") for e in errors
    )
    assert any(
        e.startswith("pair natgw_b, host gw3,gw4, field nat_gateway_ha_pair.vrid: VRID 69") for e in errors
    )


def test_every_error_is_collected_not_just_the_first() -> None:
    pairs, hv = _inventory(pair=_pair(vrid=300, typo=1), hosts={1: {"priority": 0}, 2: {"lan_adress": "x"}})
    errors = _errors(pairs, hv)
    assert len(errors) >= 4
    assert {e.split(":")[0].rsplit("field ", 1)[1] for e in errors} >= {
        "nat_gateway_ha_pair.vrid",
        "nat_gateway_ha_pair.typo",
        "nat_gateway_ha_host.priority",
        "nat_gateway_ha_host.lan_adress",
    }
