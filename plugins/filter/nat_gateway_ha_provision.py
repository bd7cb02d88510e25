"""Filters of playbooks/provision.yml: place gateways in subnets, merge what was found with what was made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from ansible.errors import AnsibleFilterError


def _subnet_of(
    pair: str, host: str, field: str, ip: str, network: str, subnets: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any]:
    hits = [s for s in subnets if IPv4Address(ip) in IPv4Network(s["cidr_block"])]
    where = f"pair {pair}, host {host}, field nat_gateway_ha_host.{field}"
    if not hits:
        vpc = ", ".join(f"{s['subnet_id']} {s['cidr_block']}" for s in subnets) or "none"
        raise AnsibleFilterError(f"{where}: {ip} lies in no subnet of the VPC (subnets: {vpc})")
    subnet = hits[0]
    if subnet["cidr_block"] != network:
        raise AnsibleFilterError(
            f"{where}: its prefix says {network}, but {ip} lies in {subnet['subnet_id']} "
            f"{subnet['cidr_block']}"
        )
    return subnet


def place(pair: Mapping[str, Any], subnets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each planned host with `wan_subnet_id`, `lan_subnet_id` and `az`; both ENIs of an instance must
    share its availability zone, which the error says when they do not."""
    out = []
    for host in pair["hosts"]:
        name = host["name"]
        wan = _subnet_of(pair["pair"], name, "wan_address", host["wan_ip"], host["wan_network"], subnets)
        lan = _subnet_of(pair["pair"], name, "lan_address", host["lan_ip"], host["lan_network"], subnets)
        if wan["availability_zone"] != lan["availability_zone"]:
            raise AnsibleFilterError(
                f"pair {pair['pair']}, host {name}, field nat_gateway_ha_host.lan_address: its subnet is in "
                f"{lan['availability_zone']}, the WAN subnet in {wan['availability_zone']}; an instance's "
                "ENIs share one availability zone"
            )
        out.append(
            {
                **host,
                "wan_subnet_id": wan["subnet_id"],
                "lan_subnet_id": lan["subnet_id"],
                "az": wan["availability_zone"],
            }
        )
    return out


def found_or_new(
    found: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], key: str = "allocation_id"
) -> list[str]:
    """Per looked-up EIP (ec2_eip_info results), its `key`, from the lookup or from the allocation that
    followed (ec2_eip results, skipped where the lookup found one); '' where neither has it (check mode)."""
    out = []
    for looked, made in zip(found, new, strict=True):
        addresses = looked.get("addresses") or []
        out.append(str(addresses[0].get(key, "")) if addresses else str(made.get(key, "")))
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"nat_gateway_ha_place": place, "nat_gateway_ha_found_or_new": found_or_new}
