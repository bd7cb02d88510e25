"""The rules across pairs: what two pairs of one inventory may not share (addresses, a VRID on one LAN,
a route table, tag selection or EIP). Pairs in other regions or disjoint VPC ranges share nothing."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address

from nat_gateway_ha.inventory.errors import Errors
from nat_gateway_ha.inventory.models import PAIR_VAR, PairSpec
from nat_gateway_ha.inventory.parsed import Inventory


def _owners(inv: Inventory, err: Errors) -> dict[str, dict[IPv4Address, str]]:
    """Each complete pair's addresses and the gateway holding each; one address on two members is an error."""
    out: dict[str, dict[IPv4Address, str]] = {}
    for pair, members, _spec, hosts in inv.complete():
        owner = out.setdefault(pair, {})
        for h in members:
            seen: set[IPv4Address] = set()
            for field, addr in hosts[h].addresses():
                if addr in seen:
                    continue
                seen.add(addr)
                if addr in owner:
                    err.add(pair, h, field, f"{addr} is also an address of {owner[addr]}")
                else:
                    owner[addr] = h
    return out


def addresses_are_unique(inv: Inventory, err: Errors) -> None:
    """No address held twice in a VPC: by two gateways (of any pair), a gateway and a VIP, two pairs' VIPs."""
    owners = _owners(inv, err)
    names = list(owners)
    near = {p: [o for o in names if o != p and _may_share_a_vpc(inv.specs[p], inv.specs[o])] for p in names}
    for i, pair in enumerate(names):
        for addr, h in owners[pair].items():
            other = next((owners[o][addr] for o in near[pair] if o in names[:i] and addr in owners[o]), None)
            if other is not None:
                field = next(f for f, a in inv.hosts[h].addresses() if a == addr)
                err.add(pair, h, field, f"{addr} is also an address of {other}")
    for i, pair in enumerate(names):
        members = inv.pairs[pair]
        for j, vip in enumerate(inv.specs[pair].vips):
            field = f"{PAIR_VAR}.vips[{j}]"
            holder = owners[pair].get(vip.ip) or next(
                (owners[o][vip.ip] for o in near[pair] if vip.ip in owners[o]), None
            )
            twin = next(
                (o for o in near[pair] if o in names[:i] and any(v.ip == vip.ip for v in inv.specs[o].vips)),
                None,
            )
            if holder is not None:
                hosts = holder if holder in members else members
                err.add(pair, hosts, field, f"VIP {vip.ip} equals an address of {holder}")
            elif twin is not None:
                err.add(pair, members, field, f"VIP {vip.ip} is also a VIP of pair {twin}")


def vrid_unique_on_shared_lan(inv: Inventory, err: Errors) -> None:
    """Two pairs whose LAN subnets overlap (one VPC) must not use the same VRID: their adverts would mix."""
    lans = {
        pair: [r.lan.address.network for r in hosts.values() if r.lan.address is not None]
        for pair, _members, _spec, hosts in inv.complete()
    }
    names = list(lans)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if inv.specs[a].vrid != inv.specs[b].vrid or not _may_share_a_vpc(inv.specs[a], inv.specs[b]):
                continue
            if any(x.overlaps(y) for x in lans[a] for y in lans[b]):
                for p, other in ((a, b), (b, a)):
                    msg = f"VRID {inv.specs[p].vrid} is also used by pair {other}, which shares a LAN"
                    err.add(p, inv.pairs[p], f"{PAIR_VAR}.vrid", msg)


def _may_share_a_vpc(a: PairSpec, b: PairSpec) -> bool:
    """Tags and the main table are VPC-scoped: pairs in other regions or with disjoint VPC CIDRs are apart."""
    return a.region == b.region and any(x.overlaps(y) for x in a.vpc_cidrs for y in b.vpc_cidrs)


def _claims(spec: PairSpec) -> Iterator[tuple[str, str, bool]]:
    """(field, resource, VPC-scoped) for every cloud resource the pair's agents repoint or move."""
    rt = spec.route_tables
    yield from (
        (f"{PAIR_VAR}.route_tables.ids[{i}]", f"route table {v}", False) for i, v in enumerate(rt.ids)
    )
    for i, v in enumerate(rt.subnet_ids):
        yield f"{PAIR_VAR}.route_tables.subnet_ids[{i}]", f"the route table of {v}", False
    for k, v in rt.tags.items():
        yield f"{PAIR_VAR}.route_tables.tags.{k}", f"route tables tagged {k}={v}", True
    if rt.include_main:
        yield f"{PAIR_VAR}.route_tables.include_main", "the VPC's main route table", True
    for i, eip in enumerate(spec.eips):
        yield f"{PAIR_VAR}.eips[{i}]", f"EIP {eip.label}", False


def pairs_share_no_cloud_resources(inv: Inventory, err: Errors) -> None:
    """Two pairs may not manage the same route table, tag selection or EIP: their masters would fight."""
    first: dict[str, list[str]] = {}
    for pair, spec in inv.specs.items():
        mine: set[str] = set()
        for field, key, scoped in _claims(spec):
            if key in mine:
                err.add(pair, inv.pairs[pair], field, f"{key} is listed twice")
                continue
            mine.add(key)
            for other in first.get(key, []):
                if not scoped or _may_share_a_vpc(spec, inv.specs[other]):
                    err.add(pair, inv.pairs[pair], field, f"{key} is also managed by pair {other}")
                    break
            first.setdefault(key, []).append(pair)
