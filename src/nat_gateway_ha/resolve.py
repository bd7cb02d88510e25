"""Resolve the config against EC2 once, at start: ENI ids, allocation ids, the route tables to manage.

Every error names the pair, the host and the config field, and is raised before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from nat_gateway_ha.cloud_refs import EniRef, RouteTableSelection
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.imds import EniInfo, Identity

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef


class ResolveError(ValueError):
    """The config does not match what EC2 or IMDS says; nothing was changed."""


@dataclass(frozen=True)
class EipTarget:
    allocation_id: str
    public_ip: str
    private_ip: str


@dataclass(frozen=True)
class Target:
    """Everything a takeover needs, as ids: what "this gateway owns the pair" means in EC2 terms."""

    pair: str
    host: str
    instance_id: str
    region: str
    vpc_id: str
    wan_eni_id: str
    lan_eni_id: str
    eips: tuple[EipTarget, ...]
    route_tables: tuple[str, ...]  # in the order a takeover moves them
    destinations: tuple[str, ...]
    # The other members' ENIs: what they hold was claimed by them, not drift (see Cloud.takeover).
    peer_enis: frozenset[str] = frozenset()
    # Whether this gateway keeps claiming when a peer claims at the same time (highest priority wins).
    wins_conflicts: bool = True


def _where(cfg: AgentConfig, field: str) -> str:
    return f"pair {cfg.pair} host {cfg.host} field {field}"


def find_eni(cfg: AgentConfig, identity: Identity, ref: EniRef, field: str) -> EniInfo:
    eni = identity.eni(mac=ref.mac, device_index=ref.device_index)
    if eni is None:
        have = ", ".join(f"{e.mac} (device {e.device_index})" for e in identity.enis)
        raise ResolveError(
            f"{_where(cfg, field)}: no ENI {ref.mac or ref.device_index} on {identity.instance_id}; "
            f"has {have}"
        )
    return eni


def _eips(cfg: AgentConfig, ec2: EC2Client, wan: EniInfo) -> tuple[EipTarget, ...]:
    out = []
    for i, binding in enumerate(cfg.eips):
        private = str(binding.private_ip)
        if private not in wan.private_ips:
            raise ResolveError(
                f"{_where(cfg, f'eips[{i}].private_ip')}: {private} is not an address of the WAN ENI "
                f"{wan.eni_id} ({', '.join(wan.private_ips)})"
            )
        query = binding.eip.query()
        try:
            found = ec2.describe_addresses(**query)["Addresses"]
        except ClientError as err:
            raise ResolveError(f"{_where(cfg, f'eips[{i}].eip')}: {err}") from err
        if len(found) != 1 or "AllocationId" not in found[0]:
            raise ResolveError(
                f"{_where(cfg, f'eips[{i}].eip')}: {len(found)} VPC Elastic IPs match {query}, not one"
            )
        addr = found[0]
        wrong = binding.eip.mismatch(addr)
        if wrong:
            raise ResolveError(f"{_where(cfg, f'eips[{i}].eip')}: {wrong}")
        out.append(EipTarget(addr["AllocationId"], addr["PublicIp"], private))
    if len({e.private_ip for e in out}) != len(out):
        raise ResolveError(
            f"{_where(cfg, 'eips')}: AWS maps one EIP per private IP; private_ip values repeat"
        )
    return tuple(out)


def _is_main(table: Any) -> bool:
    return any(a.get("Main") for a in table.get("Associations", []))


def select_route_tables(cfg: AgentConfig, ec2: EC2Client, vpc_id: str) -> tuple[str, ...]:
    """The union of the selection's tag matches, ids and subnets' tables, in this VPC, main one excluded."""
    return select_tables(cfg.route_tables, ec2, vpc_id, f"pair {cfg.pair} host {cfg.host}")


def select_tables(sel: RouteTableSelection, ec2: EC2Client, vpc_id: str, who: str) -> tuple[str, ...]:
    """`select_route_tables` for any selection; `who` starts the errors (provisioning names the pair)."""
    vpc: FilterTypeDef = {"Name": "vpc-id", "Values": [vpc_id]}
    chosen: dict[str, Any] = {}
    if sel.tags:
        filters: list[FilterTypeDef] = [vpc]
        filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(sel.tags.items())]
        for page in ec2.get_paginator("describe_route_tables").paginate(Filters=filters):
            for t in page["RouteTables"]:
                if _is_main(t) and not sel.include_main:
                    continue
                chosen[t["RouteTableId"]] = t
    if sel.ids:
        try:
            tables = ec2.describe_route_tables(RouteTableIds=list(sel.ids))["RouteTables"]
        except ClientError as err:
            raise ResolveError(f"{who} field route_tables.ids: {err}") from err
        for t in tables:
            if t["VpcId"] != vpc_id:
                raise ResolveError(
                    f"{who} field route_tables.ids: {t['RouteTableId']} is in {t['VpcId']}, not {vpc_id}"
                )
            if _is_main(t) and not sel.include_main:
                raise ResolveError(
                    f"{who} field route_tables.ids: {t['RouteTableId']} is the VPC's main route table; "
                    "set include_main to manage it"
                )
            chosen[t["RouteTableId"]] = t
    for subnet in sel.subnet_ids:
        tables = ec2.describe_route_tables(
            Filters=[vpc, {"Name": "association.subnet-id", "Values": [subnet]}]
        )["RouteTables"]
        if not tables:
            if not sel.include_main:
                raise ResolveError(
                    f"{who} field route_tables.subnet_ids: {subnet} has no route table of its own "
                    "(it uses the main one); associate one, or set include_main"
                )
            tables = ec2.describe_route_tables(
                Filters=[vpc, {"Name": "association.main", "Values": ["true"]}]
            )["RouteTables"]
        chosen.update({t["RouteTableId"]: t for t in tables})
    if not chosen:
        raise ResolveError(f"{who} field route_tables: the selection matches no route table in {vpc_id}")
    return tuple(sorted(chosen))


def move_order(cfg: AgentConfig, tables: tuple[str, ...]) -> tuple[str, ...]:
    """The selected tables in the order a takeover moves them: `route_tables.first`, then the rest."""
    first = cfg.route_tables.first
    unknown = [t for t in first if t not in tables]
    if unknown:
        raise ResolveError(
            f"{_where(cfg, 'route_tables.first')}: {', '.join(unknown)} not among the selected route tables"
        )
    return (*first, *(t for t in tables if t not in first))


def resolve(cfg: AgentConfig, identity: Identity, ec2: EC2Client) -> Target:
    wan = find_eni(cfg, identity, cfg.wan_eni, "wan_eni")
    lan = find_eni(cfg, identity, cfg.lan_eni, "lan_eni")
    if wan.eni_id == lan.eni_id:
        raise ResolveError(f"{_where(cfg, 'lan_eni')}: the LAN and WAN ENI are the same ({wan.eni_id})")
    return Target(
        pair=cfg.pair,
        host=cfg.host,
        instance_id=identity.instance_id,
        region=cfg.region or identity.region,
        vpc_id=lan.vpc_id,
        wan_eni_id=wan.eni_id,
        lan_eni_id=lan.eni_id,
        eips=_eips(cfg, ec2, wan),
        route_tables=move_order(cfg, select_route_tables(cfg, ec2, lan.vpc_id)),
        destinations=tuple(str(d) for d in cfg.destinations),
        peer_enis=peer_enis(cfg, ec2, lan.vpc_id),
        wins_conflicts=all(cfg.priority > p.priority for p in cfg.peers),
    )


def peer_enis(cfg: AgentConfig, ec2: EC2Client, vpc_id: str) -> frozenset[str]:
    """The peers' LAN and WAN ENI ids, found by their MACs in this VPC (a missing one is an error)."""
    macs = {m: p.host for p in cfg.peers for m in (p.lan_mac, p.wan_mac)}
    if not macs:
        return frozenset()
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "mac-address", "Values": sorted(macs)}]
    )["NetworkInterfaces"]
    by_mac = {e["MacAddress"]: e["NetworkInterfaceId"] for e in found}
    missing = sorted(set(macs) - set(by_mac))
    if missing:
        raise ResolveError(
            f"{_where(cfg, 'peers')}: no ENI with MAC {', '.join(missing)} in {vpc_id} "
            f"(peer {', '.join(sorted({macs[m] for m in missing}))})"
        )
    return frozenset(by_mac.values())


def source_dest_check(ec2: EC2Client, target: Target) -> dict[str, bool]:
    """ENI id -> whether source/destination checking is still on (it must be off for NAT to forward)."""
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=[target.wan_eni_id, target.lan_eni_id])
    return {e["NetworkInterfaceId"]: bool(e.get("SourceDestCheck", True)) for e in enis["NetworkInterfaces"]}
