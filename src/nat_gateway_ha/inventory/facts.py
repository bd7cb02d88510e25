"""Fill in each gateway's addresses and MACs from its gathered facts where the inventory leaves them out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from pydantic import ValidationError

from nat_gateway_ha.cloud_refs import EniRef
from nat_gateway_ha.inventory.errors import Errors
from nat_gateway_ha.inventory.models import HOST_VAR, HostSpec


@dataclass(frozen=True)
class Side:
    """One interface (LAN or WAN) of a gateway: name, address and MAC, None where nothing gives them."""

    interface: str
    address: IPv4Interface | None
    mac: str | None


@dataclass(frozen=True)
class Resolved:
    """A host's spec with both sides filled in."""

    spec: HostSpec
    lan: Side
    wan: Side

    @property
    def src_ip(self) -> IPv4Address | None:
        if self.spec.unicast_src_ip is not None:
            return self.spec.unicast_src_ip
        return self.lan.address.ip if self.lan.address else None

    def addresses(self) -> list[tuple[str, IPv4Address]]:
        """Every address this gateway owns, with the field that gives it."""
        out = [
            (f"{HOST_VAR}.lan_address", self.lan.address.ip if self.lan.address else None),
            (f"{HOST_VAR}.wan_address", self.wan.address.ip if self.wan.address else None),
            (f"{HOST_VAR}.unicast_src_ip", self.spec.unicast_src_ip),
            *((f"{HOST_VAR}.eip_private_ips[{i}]", ip) for i, ip in enumerate(self.spec.eip_private_ips)),
        ]
        return [(field, addr) for field, addr in out if addr is not None]


def _facts_iface(facts: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    iface = facts.get(name.replace("-", "_").replace(".", "_"))
    return iface if isinstance(iface, Mapping) else None


def _fact_address(iface: Mapping[str, Any]) -> IPv4Interface | None:
    ipv4 = iface.get("ipv4")
    if not isinstance(ipv4, Mapping) or "address" not in ipv4:
        return None
    try:
        return IPv4Interface(f"{ipv4['address']}/{ipv4.get('netmask', '255.255.255.255')}")
    except ValueError:
        return None


def _side(
    err: Errors,
    where: tuple[str, str],
    name: str,
    given: tuple[str, IPv4Interface | None, str | None],
    facts: Mapping[str, Any] | None,
) -> Side:
    pair, host = where
    ifname, address, mac = given
    mac = mac.lower() if mac else None
    field = f"{HOST_VAR}.{name}"
    if facts is not None:
        iface = _facts_iface(facts, ifname)
        if iface is None:
            err.add(pair, host, f"{field}_interface", f"facts show no interface {ifname!r}")
            return Side(ifname, address, mac)
        fact_addr = _fact_address(iface)
        if address is None:
            address = fact_addr
        elif fact_addr is not None and address != fact_addr:
            err.add(
                pair, host, f"{field}_address", f"inventory says {address}, facts of {ifname} say {fact_addr}"
            )
        fact_mac = iface.get("macaddress")
        if mac is None and isinstance(fact_mac, str):
            mac = fact_mac.lower()
    if address is None:
        err.add(pair, host, f"{field}_address", "not set, and no facts give it")
    if mac is None:
        err.add(pair, host, f"{field}_mac", "not set, and no facts give it")
    else:
        try:
            EniRef(mac=mac)
        except ValidationError as exc:
            err.add(pair, host, f"{field}_mac", exc.errors(include_url=False)[0]["msg"][:200])
    return Side(ifname, address, mac)


def resolve(err: Errors, pair: str, host: str, spec: HostSpec, facts: Mapping[str, Any] | None) -> Resolved:
    """The host's addresses and MACs: the inventory's, else the facts'; a contradiction is an error."""
    where = (pair, host)
    lan = _side(err, where, "lan", (spec.lan_interface, spec.lan_address, spec.lan_mac), facts)
    wan = _side(err, where, "wan", (spec.wan_interface, spec.wan_address, spec.wan_mac), facts)
    return Resolved(spec, lan, wan)
