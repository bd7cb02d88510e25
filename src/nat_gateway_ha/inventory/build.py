"""Stage 3, the builder: turn a checked inventory into every gateway's plan. No validation here.

Peers and priorities are computed here and nowhere else. Everything it reads has passed the input models
and every rule; the output models type the result once more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from ipaddress import IPv4Address
from pathlib import Path

from nat_gateway_ha.cloud_refs import EipBinding, EniRef
from nat_gateway_ha.config import AgentConfig, PeerRef
from nat_gateway_ha.inventory.facts import Resolved
from nat_gateway_ha.inventory.models import HostSpec, PairSpec
from nat_gateway_ha.inventory.output import (
    FlowSyncPlan,
    HostPlan,
    KeepalivedInstance,
    KeepalivedTrackScript,
    NatRules,
    PairPlan,
    PeerRoute,
)

PRIORITY_START = 150  # derived priorities: first listed member 150, next 140, ... (explicit ones are skipped)
PRIORITY_STEP = 10
KEEPALIVED_PIDFILE = Path("/run/keepalived.pid")  # Debian's unit; the agent acts only while it lives
HEALTH_FILE = Path("/run/nat-gateway-ha/health")  # keepalived's track_file; the agent writes it
# The pair's shared SNAT addresses when the inventory names none: link-local, never on the wire (the WAN
# edge translates them to the gateway's own EIP private IPs), clear of IMDS, DNS and NTP at 169.254.169.x.
SHARED_SNAT_BASE = IPv4Address("169.254.252.1")


def shared_snat(spec: PairSpec) -> list[IPv4Address]:
    """One shared SNAT address per EIP, the same on every member of the pair."""
    given = spec.flow_sync.snat_addresses
    return list(given) if given else [SHARED_SNAT_BASE + i for i in range(len(spec.eips))]


def derive_priorities(members: Sequence[str], specs: Mapping[str, HostSpec]) -> dict[str, int]:
    """Explicit priorities stay; the others count down from 150 in inventory order, skipping taken ones."""
    taken = {s.priority for s in specs.values() if s.priority is not None}
    out: dict[str, int] = {}
    candidate = PRIORITY_START
    for host in members:
        explicit = specs[host].priority
        if explicit is not None:
            out[host] = explicit
            continue
        while candidate in taken:
            candidate -= PRIORITY_STEP if candidate > PRIORITY_STEP else 1
        out[host] = candidate
        taken.add(candidate)
    return out


def fmt_interval(value: float) -> str:
    """keepalived's spelling of an interval: `1`, `0.1`, never `1.0` or `1E+1`."""
    return format(Decimal(str(value)).normalize(), "f")


def _peers(
    host: str, members: Sequence[str], hosts: Mapping[str, Resolved], prio: Mapping[str, int]
) -> list[PeerRef]:
    out = []
    for o in members:
        r = hosts[o]
        if o != host and r.src_ip is not None and r.lan.mac is not None and r.wan.mac is not None:
            out.append(
                PeerRef(host=o, address=r.src_ip, priority=prio[o], lan_mac=r.lan.mac, wan_mac=r.wan.mac)
            )
    return out


def _agent(
    pair: str, host: str, spec: PairSpec, r: Resolved, instance: str, priority: int, peers: list[PeerRef]
) -> AgentConfig:
    assert r.lan.mac is not None and r.wan.mac is not None
    destinations = list(spec.destinations)
    if spec.vip_routes:
        destinations += [v.network for v in spec.vips if v.network not in destinations]
    return AgentConfig(
        **dict(spec.agent),
        pair=pair,
        host=host,
        vrrp_instance=instance,
        region=spec.region,
        endpoint_url=spec.endpoint_url,
        insecure_endpoints=spec.insecure_endpoints,
        wan_eni=EniRef(mac=r.wan.mac),
        lan_eni=EniRef(mac=r.lan.mac),
        eips=[
            EipBinding(eip=e, private_ip=ip) for e, ip in zip(spec.eips, r.spec.eip_private_ips, strict=True)
        ],
        route_tables=spec.route_tables,
        destinations=destinations,
        # The agent tells master from backup by the VIPs keepalived adds.
        vips=[v.ip for v in spec.vips],
        keepalived_pidfile=KEEPALIVED_PIDFILE,
        health=spec.health,
        health_file=HEALTH_FILE if spec.health.enabled else None,
        flow_sync=spec.flow_sync.enabled,
        probe_source=shared_snat(spec)[0],
        wan_interface=r.wan.interface,
        lan_interface=r.lan.interface,
        priority=priority,
        listen_address=r.src_ip,
        peers=peers,
    )


def _flow_sync(
    spec: PairSpec, r: Resolved, src: IPv4Address, peers: list[IPv4Address]
) -> FlowSyncPlan | None:
    """conntrackd between the peers' VRRP addresses on the LAN; never syncing the gateways' own flows."""
    if not spec.flow_sync.enabled:
        return None
    assert r.lan.address is not None and r.wan.address is not None
    return FlowSyncPlan(
        interface=r.lan.interface,
        address=src,
        peers=peers,
        port=spec.flow_sync.port,
        ignore=sorted({r.lan.address.ip, r.wan.address.ip, src, *peers}),
    )


def build_pair(
    pair: str,
    members: Sequence[str],
    spec: PairSpec,
    hosts: Mapping[str, Resolved],
    script_users: Mapping[str, str],
) -> tuple[PairPlan, dict[str, HostPlan]]:
    """One pair's plan and each member's: keepalived instance, NAT rules and agent config."""
    priorities = derive_priorities(members, {h: hosts[h].spec for h in members})
    instance = f"VI_{pair}"
    script = spec.track_script
    track = script and KeepalivedTrackScript(name=f"chk_{pair}", **script.model_dump())
    out: dict[str, HostPlan] = {}
    for h in members:
        r = hosts[h]
        lan, wan, src = r.lan.address, r.wan.address, r.src_ip
        assert lan is not None and wan is not None and src is not None
        peers = [p for p in (hosts[o].src_ip for o in members if o != h) if p is not None]
        router = r.spec.lan_router or lan.network.network_address + 1
        keepalived = KeepalivedInstance(
            name=instance,
            interface=r.lan.interface,
            vrrp_version=spec.vrrp_version,
            virtual_router_id=spec.vrid,
            priority=priorities[h],
            advert_int=fmt_interval(spec.advert_int),
            nopreempt=spec.nopreempt,
            unicast_src_ip=src,
            unicast_peers=peers,
            peer_routes=[
                PeerRoute(to=p, via=router, dev=r.lan.interface) for p in peers if p not in lan.network
            ],
            vips=list(spec.vips),
            authentication=spec.authentication,
            track_script=track,
            track_interfaces=[r.wan.interface] if spec.health.enabled else [],
            track_file=HEALTH_FILE if spec.health.enabled else None,
        )
        nat = NatRules(
            wan_interface=r.wan.interface,
            sources=list(spec.vpc_cidrs),
            shared=shared_snat(spec),
            to_addresses=list(r.spec.eip_private_ips),
            local_addresses=sorted({lan.ip, wan.ip, *r.spec.eip_private_ips}),
        )
        sync = _flow_sync(spec, r, src, peers)
        agent = _agent(pair, h, spec, r, instance, priorities[h], _peers(h, members, hosts, priorities))
        out[h] = HostPlan(
            pair=pair,
            host=h,
            script_user=script_users[h],
            keepalived=keepalived,
            nat=nat,
            flow_sync=sync,
            agent=agent,
        )
    pair_plan = PairPlan(
        name=pair, hosts=list(members), vrid=spec.vrid, vrrp_version=spec.vrrp_version, priorities=priorities
    )
    return pair_plan, out
