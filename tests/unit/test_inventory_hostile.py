"""The table of hostile and mistaken inventories: each is refused, naming pair, host and field, by one stage.

Pure tier: `plan()` only, no Ansible, no lab. Each case changes one thing in a valid two-pair inventory and
names the exact refusal (message prefix) and what refuses it: `names` (pair and host names), `models` (the
strict field types) or a rule of `nat_gateway_ha.inventory.rules.RULES`. The valid unusual inventories at
the end must still plan, and their keepalived.conf and nat.nft keep every line under keepalived's limit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from nat_gateway_ha.inventory import PlanError, plan
from nat_gateway_ha.inventory.rules import RULES
from nat_gateway_ha.rendercheck import MAX_LINE
from support import (
    ROOT,
    Inv,
    base,
    both,
    host,
    host_spec,
    hvar,
    pair,
    plain_agent_config,
    rename_host,
    rename_pair,
    render,
    run,
)

A = "pair natgw_a, host gw-a1,gw-a2, field nat_gateway_ha_pair."
B = "pair natgw_b, host gw-b1,gw-b2, field nat_gateway_ha_pair."
A1 = "pair natgw_a, host gw-a1, field "
TRACK = {"script": "/usr/bin/true"}
V2 = {"vrrp_version": 2, "advert_int": 1}

# (class, change, expected message prefix, refused by)
CASES: dict[str, tuple[str, Callable[[Inv], None], str, str]] = {
    # --- injection: text that would leave its place in a rendered file ---
    "script with a newline and a user line": (
        "injection",
        pair("natgw_a", track_script={"script": '/usr/bin/true"\n    user root\n    # x'}),
        A + "track_script.script[0]",
        "models",
    ),
    "script with a shell payload": (
        "injection",
        pair("natgw_a", track_script={"script": ["/usr/bin/true", "$(reboot)"]}),
        A + "track_script.script[1]",
        "models",
    ),
    "script with a quote in one argument": (
        "injection",
        pair("natgw_a", track_script={"script": ["/usr/bin/true", 'a"b']}),
        A + "track_script.script[1]",
        "models",
    ),
    "script outside the system trees": (
        "injection",
        pair("natgw_a", track_script={"script": "/tmp/check.sh"}),
        A + "track_script.script",
        "models",
    ),
    "script path with ..": (
        "injection",
        pair("natgw_a", track_script={"script": "/usr/../tmp/x"}),
        A + "track_script.script",
        "models",
    ),
    "script relative": (
        "injection",
        pair("natgw_a", track_script={"script": "true"}),
        A + "track_script.script",
        "models",
    ),
    "host name padded to split a keepalived line": (
        "injection",
        rename_host("natgw_a", "gw-a1", "gw" + " " * 1020 + 'notify_fifo_script "/bin/sh" root'),
        "pair natgw_a, host 'gw",
        "names",
    ),
    "host name with a newline": (
        "injection",
        rename_host("natgw_a", "gw-a1", "gw\n}\nglobal_defs {"),
        "pair natgw_a, host 'gw\\n}",
        "names",
    ),
    "host named ../x": (
        "injection",
        rename_host("natgw_a", "gw-a1", "../x"),
        "pair natgw_a, host '../x'",
        "names",
    ),
    "host named ..": ("injection", rename_host("natgw_a", "gw-a1", ".."), "pair natgw_a, host '..'", "names"),
    "host name over 63 bytes": (
        "injection",
        rename_host("natgw_a", "gw-a1", "g" * 64),
        "pair natgw_a, host 'ggg",
        "names",
    ),
    "pair name with a brace": (
        "injection",
        rename_pair("natgw_a", "natgw_a}"),
        "pair natgw_a}, host -, field group name",
        "names",
    ),
    "pair name with a dash (not an Ansible group)": (
        "injection",
        rename_pair("natgw_a", "nat-gw"),
        "pair nat-gw, host -, field group name",
        "names",
    ),
    "interface with a quote (nft rewrite)": (
        "injection",
        host("natgw_a", "gw-a1", wan_interface='eth0" accept #'),
        A1 + "nat_gateway_ha_host.wan_interface",
        "models",
    ),
    "interface with a space": (
        "injection",
        host("natgw_a", "gw-a1", lan_interface="eth1 dev"),
        A1 + "nat_gateway_ha_host.lan_interface",
        "models",
    ),
    "interface over IFNAMSIZ": (
        "injection",
        host("natgw_a", "gw-a1", lan_interface="e" * 16),
        A1 + "nat_gateway_ha_host.lan_interface",
        "models",
    ),
    "script user payload": (
        "injection",
        hvar("gw-a1", nat_gateway_ha_script_user='x\n    notify_fifo_script "/bin/sh" root'),
        A1 + "nat_gateway_ha_script_user",
        "models",
    ),
    "script user root": (
        "injection",
        hvar("gw-a1", nat_gateway_ha_script_user="root"),
        A1 + "nat_gateway_ha_script_user",
        "models",
    ),
    "script user admin": (
        "injection",
        hvar("gw-a1", nat_gateway_ha_script_user="admin"),
        A1 + "nat_gateway_ha_script_user",
        "models",
    ),
    "script user nobody": (
        "injection",
        hvar("gw-a1", nat_gateway_ha_script_user="nobody"),
        A1 + "nat_gateway_ha_script_user",
        "models",
    ),
    "script user a systemd account": (
        "injection",
        hvar("gw-a1", nat_gateway_ha_script_user="systemd-network"),
        A1 + "nat_gateway_ha_script_user",
        "models",
    ),
    "auth_pass with #": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": "ab#cd"}),
        A + "authentication.auth_pass",
        "models",
    ),
    "auth_pass with a space": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": "ab cd"}),
        A + "authentication.auth_pass",
        "models",
    ),
    "auth_pass with a quote": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": 'ab"cd'}),
        A + "authentication.auth_pass",
        "models",
    ),
    "auth_pass with a newline": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": "ab\n}"}),
        A + "authentication.auth_pass",
        "models",
    ),
    "auth_pass of 8 characters but 10 bytes": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": "pässwört"}),
        A + "authentication.auth_pass",
        "models",
    ),
    "auth_pass of 9 bytes": (
        "secret",
        pair("natgw_a", **V2, authentication={"auth_pass": "123456789"}),
        A + "authentication.auth_pass",
        "models",
    ),
    "route table tag with a newline": (
        "injection",
        pair("natgw_a", route_tables={"tags": {"Network": "private\n"}}),
        A + "route_tables.tags.Network",
        "models",
    ),
    "region payload": ("injection", pair("natgw_a", region="eu-west-1\nx"), A + "region", "models"),
    "endpoint with a quote": (
        "injection",
        pair("natgw_a", endpoint_url='http://x"y'),
        A + "endpoint_url",
        "models",
    ),
    "imds_url with credentials": (
        "injection",
        pair("natgw_a", agent={"imds_url": "http://user:pw@169.254.169.254"}),
        A + "agent.imds_url",
        "models",
    ),
    "shared SNAT address inside the VPC": (
        "address",
        pair("natgw_a", flow_sync={"snat_addresses": ["10.10.9.9"]}),
        A + "flow_sync.snat_addresses[0]: 10.10.9.9 is in vpc_cidrs",
        "shared_snat_addresses_fit",
    ),
    "plain-http EC2 endpoint outside a lab": (
        "transport",
        pair("natgw_a", endpoint_url="http://ec2.eu-west-1.amazonaws.com"),
        A + "endpoint_url: http://ec2.eu-west-1.amazonaws.com is not https",
        "endpoints_are_secure",
    ),
    "imds_url elsewhere than the instance's metadata service": (
        "transport",
        pair("natgw_a", agent={"imds_url": "http://10.0.0.5"}),
        A + "agent.imds_url: http://10.0.0.5 is not the instance metadata service",
        "endpoints_are_secure",
    ),
    "metrics file over /etc/passwd": (
        "path",
        pair("natgw_a", agent={"metrics_textfile": "/etc/passwd"}),
        A + "agent.metrics_textfile",
        "agent_paths_are_allowed",
    ),
    "metrics file via ..": (
        "path",
        pair("natgw_a", agent={"metrics_textfile": "/var/lib/../../etc/shadow"}),
        A + "agent.metrics_textfile",
        "agent_paths_are_allowed",
    ),
    "metrics file relative": (
        "path",
        pair("natgw_a", agent={"metrics_textfile": "x.prom"}),
        A + "agent.metrics_textfile",
        "agent_paths_are_allowed",
    ),
    "mac with text after it": (
        "injection",
        host("natgw_a", "gw-a1", lan_mac="02:00:00:00:11:01\nx"),
        A1 + "nat_gateway_ha_host.lan_mac",
        "models",
    ),
    "rtb id with a payload": (
        "injection",
        pair("natgw_a", route_tables={"ids": ["rtb-01\n"]}),
        A + "route_tables.ids[0]",
        "models",
    ),
    "a list where a mapping goes": (
        "type",
        pair("natgw_a", track_script=["/usr/bin/true"]),
        A + "track_script",
        "models",
    ),
    # --- addresses that must not be a VIP ---
    "VIP is the VPC router": (
        "address",
        pair("natgw_a", vips=["10.10.5.1/32"]),
        A + "vips[0]: VIP 10.10.5.1 is the subnet's VPC router",
        "vips_are_usable",
    ),
    "VIP is the VPC DNS": (
        "address",
        pair("natgw_a", vips=["10.10.5.2/32"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is a subnet's network address": (
        "address",
        pair("natgw_a", vips=["10.10.1.0/32"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is a subnet's broadcast": (
        "address",
        pair("natgw_a", vips=["10.10.6.255/32"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is IMDS": (
        "address",
        pair("natgw_a", vips=["169.254.169.254/32"]),
        A + "vips[0]: VIP 169.254.169.254 is the instance",
        "vips_are_usable",
    ),
    "VIP is link-local": (
        "address",
        pair("natgw_a", vips=["169.254.1.1/32"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is 0.0.0.0/0": (
        "address",
        pair("natgw_a", vips=["0.0.0.0/0"]),
        A + "vips[0]: VIP 0.0.0.0 is the unspecified",
        "vips_are_usable",
    ),
    "VIP is loopback": ("address", pair("natgw_a", vips=["127.0.0.1/32"]), A + "vips[0]", "vips_are_usable"),
    "VIP is multicast": (
        "address",
        pair("natgw_a", vips=["224.0.0.18/32"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is its own network's address": (
        "address",
        pair("natgw_a", vips=["10.241.0.0/24"]),
        A + "vips[0]",
        "vips_are_usable",
    ),
    "VIP is a member's address": (
        "address",
        pair("natgw_a", vips=["10.10.5.10/32"]),
        "pair natgw_a, host gw-a1, field nat_gateway_ha_pair.vips[0]: VIP 10.10.5.10 equals",
        "addresses_are_unique",
    ),
    "VIP is another pair's gateway address": (
        "address",
        pair("natgw_a", vips=["10.20.5.10/32"]),
        A + "vips[0]: VIP 10.20.5.10 equals an address of gw-b1",
        "addresses_are_unique",
    ),
    "VIP is another pair's VIP": (
        "address",
        pair("natgw_b", vips=["10.241.0.1/32"]),
        B + "vips[0]: VIP 10.241.0.1 is also a VIP of pair natgw_a",
        "addresses_are_unique",
    ),
    # --- resources two pairs must not share ---
    "two pairs repoint the same route table": (
        "shared",
        pair("natgw_b", route_tables={"ids": ["rtb-01"]}),
        B + "route_tables.ids[0]: route table rtb-01 is also managed by pair natgw_a",
        "pairs_share_no_cloud_resources",
    ),
    "two pairs select the same tag": (
        "shared",
        both(
            pair("natgw_a", route_tables={"tags": {"Network": "private"}}),
            pair("natgw_b", route_tables={"tags": {"Network": "private"}}),
        ),
        B + "route_tables.tags.Network",
        "pairs_share_no_cloud_resources",
    ),
    "two pairs select the same subnet's table": (
        "shared",
        both(
            pair("natgw_a", route_tables={"subnet_ids": ["subnet-0a"]}),
            pair("natgw_b", route_tables={"subnet_ids": ["subnet-0a"]}),
        ),
        B + "route_tables.subnet_ids[0]",
        "pairs_share_no_cloud_resources",
    ),
    "two pairs move the same EIP": (
        "shared",
        pair("natgw_b", eips=[{"allocation_id": "eipalloc-01"}]),
        B + "eips[0]: EIP eipalloc-01 is also managed",
        "pairs_share_no_cloud_resources",
    ),
    "one pair lists an EIP twice": (
        "shared",
        both(
            pair("natgw_a", eips=[{"public_ip": "198.51.100.1"}, {"public_ip": "198.51.100.1"}]),
            host("natgw_a", "gw-a1", eip_private_ips=["10.10.1.11", "10.10.1.12"]),
            host("natgw_a", "gw-a2", eip_private_ips=["10.10.2.11", "10.10.2.12"]),
        ),
        A + "eips[1]: EIP 198.51.100.1 is listed twice",
        "pairs_share_no_cloud_resources",
    ),
    "two pairs' gateways share a private address": (
        "shared",
        host("natgw_b", "gw-b1", lan_address="10.10.5.10/24"),
        "pair natgw_b, host gw-b1, field nat_gateway_ha_host.lan_address: 10.10.5.10 is also an address of",
        "addresses_are_unique",
    ),
    "two pairs share a VRID on one LAN": (
        "shared",
        both(pair("natgw_b", vrid=51), host("natgw_b", "gw-b1", lan_address="10.10.5.20/24")),
        B + "vrid: VRID 51 is also used by pair natgw_a",
        "vrid_unique_on_shared_lan",
    ),
    # --- keepalived's own limits ---
    "VRRPv3 advert_int over 40.95 s": (
        "limits",
        pair("natgw_a", advert_int=41),
        A + "advert_int: VRRPv3 allows at most 40.95",
        "vrrp_version_limits",
    ),
    "VRRPv3 advert_int off the grid": (
        "limits",
        pair("natgw_a", advert_int=0.015),
        A + "advert_int",
        "vrrp_version_limits",
    ),
    "VRRPv2 fractional advert_int": (
        "limits",
        pair("natgw_a", vrrp_version=2, advert_int=1.5),
        A + "advert_int",
        "vrrp_version_limits",
    ),
    "VRRPv2 advert_int over 255": (
        "limits",
        pair("natgw_a", vrrp_version=2, advert_int=256),
        A + "advert_int",
        "models",
    ),
    "authentication with VRRPv3": (
        "limits",
        pair("natgw_a", authentication={"auth_pass": "x"}),
        A + "authentication",
        "vrrp_version_limits",
    ),
    "VRID 256": ("limits", pair("natgw_a", vrid=256), A + "vrid", "models"),
    "too many VIPs for one line budget": (
        "limits",
        pair("natgw_a", vips=[f"10.241.1.{i}/32" for i in range(1, 40)]),
        A + "vips",
        "models",
    ),
    "vip_routes with a /24 VIP": (
        "limits",
        pair("natgw_a", vip_routes=True, vips=["10.241.0.1/24"]),
        A + "vips[0]",
        "vip_routes_need_host_routes",
    ),
    "vpc_cidrs of 0.0.0.0/0 (nothing NATed)": (
        "limits",
        pair("natgw_a", vpc_cidrs=["0.0.0.0/0"]),
        A + "vpc_cidrs[0]: 0.0.0.0/0 is wider",
        "vpc_cidrs_are_ranges",
    ),
    "LAN interface lo": (
        "structure",
        host("natgw_a", "gw-a1", lan_interface="lo"),
        A1 + "nat_gateway_ha_host.lan_interface: lo",
        "host_interfaces_are_usable",
    ),
    "LAN and WAN the same interface": (
        "structure",
        host("natgw_a", "gw-a1", wan_interface="eth1"),
        A1 + "nat_gateway_ha_host.wan_interface: eth1 is also",
        "host_interfaces_are_usable",
    ),
    "WAN address is the subnet's VPC router": (
        "address",
        host("natgw_a", "gw-a1", wan_address="10.10.1.1/24"),
        A1 + "nat_gateway_ha_host.wan_address: 10.10.1.1 is the subnet's VPC router",
        "host_addresses_are_plain",
    ),
    "EIP private IP is the subnet's broadcast": (
        "address",
        host("natgw_a", "gw-a1", eip_private_ips=["10.10.1.255"]),
        A1 + "nat_gateway_ha_host.eip_private_ips[0]: 10.10.1.255 is the subnet's broadcast",
        "host_addresses_are_plain",
    ),
    "lan_router is the gateway itself": (
        "address",
        host("natgw_a", "gw-a1", lan_router="10.10.5.10"),
        A1 + "nat_gateway_ha_host.lan_router: 10.10.5.10 is an address of gw-a1",
        "host_addresses_are_plain",
    ),
    "one private IP for two EIPs": (
        "shared",
        both(
            pair("natgw_a", eips=[{"allocation_id": "eipalloc-0a1"}, {"allocation_id": "eipalloc-0a2"}]),
            host("natgw_a", "gw-a1", eip_private_ips=["10.10.1.11", "10.10.1.11"]),
            host("natgw_a", "gw-a2", eip_private_ips=["10.10.2.11", "10.10.2.12"]),
        ),
        A1 + "nat_gateway_ha_host.eip_private_ips[1]: 10.10.1.11 is listed twice",
        "host_addresses_are_plain",
    ),
    "subnets outside vpc_cidrs (another VPC's CIDR)": (
        "structure",
        pair("natgw_a", vpc_cidrs=["10.99.0.0/16"]),
        A + "vpc_cidrs: 10.10.5.0/24 of eth1 is outside vpc_cidrs (gw-a1)",
        "subnets_inside_vpc_cidrs",
    ),
    # --- structure ---
    "pair with one gateway": (
        "structure",
        lambda inv: inv["pairs"]["natgw_a"]["hosts"].pop("gw-a2"),
        "pair natgw_a, host gw-a1, field members",
        "pair_has_two_members",
    ),
    "empty pair group": (
        "structure",
        lambda inv: inv["pairs"]["natgw_a"]["hosts"].clear(),
        "pair natgw_a, host -, field members",
        "pair_has_two_members",
    ),
    "script line over 512 bytes": (
        "limits",
        pair("natgw_a", track_script={"script": ["/usr/bin/true", *["a" * 128] * 4]}),
        A + "track_script.script",
        "models",
    ),
    "a gateway in two pairs": (
        "structure",
        lambda inv: inv["pairs"]["natgw_b"]["hosts"].update({"gw-a1": host_spec(1, 1)}),
        "pair natgw_a,natgw_b, host gw-a1, field group membership",
        "host_serves_one_pair",
    ),
    "unknown agent option": (
        "structure",
        pair("natgw_a", agent={"api_timeout": 1}),
        A + "agent.api_timeout: unknown key",
        "models",
    ),
    "equal priorities": (
        "structure",
        both(host("natgw_a", "gw-a1", priority=100), host("natgw_a", "gw-a2", priority=100)),
        A1 + "nat_gateway_ha_host.priority",
        "priorities_are_distinct",
    ),
    "EIP private IP is the WAN primary": (
        "structure",
        host("natgw_a", "gw-a1", eip_private_ips=["10.10.1.10"]),
        A1 + "nat_gateway_ha_host.eip_private_ips[0]: 10.10.1.10 is the primary",
        "host_addresses_in_own_subnets",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_or_mistaken_inventory_is_refused_by_its_rule(case: str) -> None:
    _cls, change, expected, by = CASES[case]
    inv = base()
    change(inv)
    with pytest.raises(PlanError) as info:
        run(inv)
    found = [(b, e) for b, e in zip(info.value.by, info.value.errors, strict=True) if e.startswith(expected)]
    assert found, info.value.errors
    assert by in {b for b, _ in found}, (by, found)


def test_every_rule_refuses_some_case_of_the_table() -> None:
    assert {rule.__name__ for rule in RULES} <= {by for _c, _ch, _e, by in CASES.values()}


def test_no_pair_at_all_is_an_error_not_a_silent_success() -> None:
    with pytest.raises(PlanError) as info:
        plan({}, {}, use_facts=False)
    assert info.value.errors == ["pair -, host -, field members: the inventory has no pair group"]


def test_a_refused_payload_is_never_echoed_whole() -> None:
    inv = base()
    rename_host("natgw_a", "gw-a1", "gw" + " " * 1020 + 'notify_fifo_script "/bin/sh" root')(inv)
    with pytest.raises(PlanError) as info:
        run(inv)
    assert "notify_fifo_script" not in str(info.value)


def _lines_fit(p: Any) -> None:
    for host_vars in p.to_vars()["hosts"].values():
        for name in ("keepalived/keepalived.conf.j2", "nat-gateway-ha/nat.nft.j2"):
            text = render(name, host_vars)
            assert max(len(line.encode()) for line in text.splitlines()) <= MAX_LINE


LONGEST = "g" * 63


VALID: dict[str, Callable[[Inv], None]] = {
    "two pairs as given": lambda inv: None,
    "three gateways in a pair": lambda inv: inv["pairs"]["natgw_a"]["hosts"].update(
        {"gw-a3": host_spec(1, 3)}
    ),
    "VRRPv2 with an 8-byte PASS of symbols": pair("natgw_a", **V2, authentication={"auth_pass": "a$b%c&d*"}),
    "VRRPv2 with AH and the longest advert": pair(
        "natgw_a", vrrp_version=2, advert_int=255, authentication={"auth_type": "AH", "auth_pass": "k"}
    ),
    "VRRPv3 at 40.95 s and 10 ms": both(pair("natgw_a", advert_int=40.95), pair("natgw_b", advert_int=0.01)),
    "track script as an argument list": pair(
        "natgw_a", track_script={"script": ["/usr/local/bin/check", "--to=10.0.0.1:80", "-q"], "weight": -20}
    ),
    "metrics under node-exporter's textfile directory": pair(
        "natgw_a", agent={"metrics_textfile": "/var/lib/prometheus/node-exporter/natgw.prom"}
    ),
    "VLAN and 15-byte interface names": both(
        host("natgw_a", "gw-a1", lan_interface="eth1.100", wan_interface="enp0s31f6abcdef")
    ),
    "the longest names": both(rename_pair("natgw_a", "p" * 32), rename_host("p" * 32, "gw-a1", LONGEST)),
    "same tags in two regions": both(
        pair("natgw_a", route_tables={"tags": {"Network": "private"}}, region="eu-west-1"),
        pair("natgw_b", route_tables={"tags": {"Network": "private"}}, region="us-east-1"),
    ),
    "two VPCs reuse a VIP, addresses and tags": both(
        pair("natgw_a", region="eu-west-1", route_tables={"tags": {"Network": "private"}}),
        pair("natgw_b", region="us-east-1", route_tables={"tags": {"Network": "private"}}),
        pair("natgw_b", vips=["10.241.0.1/32"], vrid=51),
        host("natgw_b", "gw-b1", lan_address="10.10.5.10/24"),
    ),
    "a lab's plain-http emulators": pair(
        "natgw_a",
        endpoint_url="http://10.254.77.1:5077",
        insecure_endpoints=True,
        agent={"imds_url": "http://10.0.0.5"},
    ),
    "an https interface endpoint": pair(
        "natgw_a", endpoint_url="https://vpce-0abc.ec2.eu-west-1.vpce.amazonaws.com"
    ),
    "a dedicated script user": hvar("gw-a1", nat_gateway_ha_script_user="natgw_checks"),
    "the most VIPs and EIPs a pair may have": both(
        pair(
            "natgw_a",
            vips=[f"10.241.1.{i}/32" for i in range(1, 33)],
            eips=[{"allocation_id": f"eipalloc-{i:017x}"} for i in range(32)],
            track_script={"script": ["/opt/" + "c" * 120, *["a" * 128] * 3]},
        ),
        host("natgw_a", "gw-a1", eip_private_ips=[f"10.10.1.{i}" for i in range(100, 132)]),
        host("natgw_a", "gw-a2", eip_private_ips=[f"10.10.2.{i}" for i in range(100, 132)]),
    ),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_unusual_inventory_plans_and_fits_keepalived_lines(case: str) -> None:
    inv = copy.deepcopy(base())
    VALID[case](inv)
    p = run(inv)
    assert len(p.hosts) == sum(len(g["hosts"]) for g in inv["pairs"].values())
    _lines_fit(p)


def test_script_user_reaches_the_plan_and_the_template() -> None:
    inv = base()
    hvar("gw-a1", nat_gateway_ha_script_user="natgw_checks")(inv)
    p = run(inv)
    assert (
        p.hosts["gw-a1"].script_user == "natgw_checks" and p.hosts["gw-a2"].script_user == "keepalived_script"
    )
    assert "    script_user natgw_checks\n" in render(
        "keepalived/keepalived.conf.j2", p.to_vars()["hosts"]["gw-a1"]
    )


def test_role_readme_names_every_rule() -> None:
    readme = (ROOT / "roles/nat_gateway_ha/README.md").read_text()
    assert all(f"| `{rule.__name__}` |" in readme for rule in RULES)


@pytest.mark.parametrize(
    ("field", "value"),
    [("interface", 'eth1"\n accept'), ("name", "VI_a }\nglobal_defs {"), ("priority", "150\n}")],
)
def test_templates_refuse_a_value_that_got_past_the_models(field: str, value: str) -> None:
    """The second wall: even a plan built wrong cannot put a second statement into keepalived.conf."""
    host_vars = run(base()).to_vars()["hosts"]["gw-a1"]
    host_vars["keepalived"][field] = value
    with pytest.raises(Exception, match="not a plain word"):
        render("keepalived/keepalived.conf.j2", host_vars)
    if field == "interface":
        host_vars["nat"]["wan_interface"] = value
        with pytest.raises(Exception, match="not a plain word"):
            render("nat-gateway-ha/nat.nft.j2", host_vars)


def test_the_agent_refuses_a_hand_written_plain_http_endpoint() -> None:
    """The agent's own model holds the same line, for configs that never went through the inventory."""
    from pydantic import ValidationError

    from nat_gateway_ha.config import AgentConfig

    cfg = plain_agent_config(endpoint_url="http://ec2.eu-west-1.amazonaws.com")
    with pytest.raises(ValidationError, match=r"endpoint_url: .* is not https"):
        AgentConfig.model_validate(cfg)
    assert AgentConfig.model_validate({**cfg, "insecure_endpoints": True}).endpoint_url == cfg["endpoint_url"]
