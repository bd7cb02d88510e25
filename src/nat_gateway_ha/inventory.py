"""The inventory's model, and `plan()`: the one place that turns an inventory into every gateway's settings.

Inventory layout: group `nat_gateways`; each HA pair is a child group of it. The pair group's vars hold
`nat_gateway_ha_pair` (a `PairSpec`), each gateway's host vars hold `nat_gateway_ha_host` (a `HostSpec`).

`plan()` validates the whole inventory before any host is touched, collects every error (not just the first)
with the pair, host and field it concerns, and computes each gateway's keepalived instance, NAT rules and
failover-agent config. Peers and priorities are computed here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nat_gateway_ha.config import (
    AgentConfig,
    EipBinding,
    EipRef,
    EniRef,
    HealthConfig,
    PeerRef,
    RouteTableSelection,
    StrictModel,
)

PAIR_VAR = "nat_gateway_ha_pair"
HOST_VAR = "nat_gateway_ha_host"
RFC1918 = [IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")]
PRIORITY_START = 150  # derived priorities: first listed member 150, next 140, ... (explicit ones are skipped)
PRIORITY_STEP = 10
VRRPV2_MAX_AUTH_PASS = 8  # keepalived truncates longer PASS secrets with only a warning
KEEPALIVED_PIDFILE = Path("/run/keepalived.pid")  # Debian's unit; the agent acts only while it lives
HEALTH_FILE = Path("/run/nat-gateway-ha/health")  # keepalived's track_file; the agent writes it
# AgentConfig fields a pair may tune under `agent`; the rest are computed from the inventory.
AGENT_TUNABLES = frozenset(
    {
        "imds_url",
        "api_connect_timeout",
        "api_read_timeout",
        "api_max_attempts",
        "max_concurrency",
        "reconcile_interval",
        "debounce",
        "metrics_textfile",
    }
)


class Authentication(StrictModel):
    """VRRPv2 only: keepalived 2.2.7 ignores authentication with VRRPv3."""

    auth_type: Literal["PASS", "AH"] = "PASS"
    auth_pass: Annotated[str, Field(min_length=1)]


class TrackScript(StrictModel):
    """Optional data-path health check run by keepalived as the script user (2.2.7: whole seconds)."""

    script: Annotated[str, Field(min_length=1)]
    interval: Annotated[int, Field(ge=1, le=4294)] = 1
    timeout: Annotated[int, Field(ge=1, le=4294)] = 1
    fall: Annotated[int, Field(ge=1)] = 2
    rise: Annotated[int, Field(ge=1)] = 2
    weight: Annotated[int, Field(ge=-253, le=253)] = 0


class PairSpec(StrictModel):
    """`nat_gateway_ha_pair`: what both (or all) gateways of one pair share."""

    vrid: Annotated[int, Field(ge=1, le=255)]
    vrrp_version: Literal[2, 3] = 3
    advert_int: Annotated[float, Field(ge=0.01, le=255)] = 0.1
    vips: list[IPv4Interface] = Field(min_length=1)
    eips: list[EipRef] = Field(min_length=1)
    route_tables: RouteTableSelection
    destinations: list[IPv4Network] = Field(default_factory=lambda: [IPv4Network("0.0.0.0/0")])
    vip_routes: bool = False
    nopreempt: bool = True
    authentication: Authentication | None = None
    track_script: TrackScript | None = None
    region: str | None = None
    endpoint_url: str | None = None
    vpc_cidrs: list[IPv4Network] = Field(default_factory=lambda: list(RFC1918), min_length=1)
    agent: dict[str, Any] = Field(default_factory=dict)
    health: HealthConfig = Field(default_factory=HealthConfig)


class HostSpec(StrictModel):
    """`nat_gateway_ha_host`: one gateway's own settings; addresses and MACs default to what facts report."""

    priority: Annotated[int, Field(ge=1, le=254)] | None = None
    lan_interface: str = "eth1"
    lan_address: IPv4Interface | None = None
    lan_mac: str | None = None
    wan_interface: str = "eth0"
    wan_address: IPv4Interface | None = None
    wan_mac: str | None = None
    unicast_src_ip: IPv4Address | None = None
    lan_router: IPv4Address | None = None  # default: the LAN subnet's first address, the VPC router
    eip_private_ips: list[IPv4Address] = Field(min_length=1)  # one per pair EIP, same order


class PlanModel(BaseModel):
    """Base of the plan's output models: plain data for templates."""

    model_config = ConfigDict(frozen=True)


class KeepalivedTrackScript(PlanModel):
    name: str
    script: str
    interval: int
    timeout: int
    fall: int
    rise: int
    weight: int


class PeerRoute(PlanModel):
    """A /32 to a peer in another subnet, through the LAN subnet's router.

    keepalived sends unicast VRRP bound to the LAN interface, where only the own subnet is on-link; without
    this route the adverts to a peer in another AZ's subnet never leave and every gateway becomes master.
    """

    to: IPv4Address
    via: IPv4Address
    dev: str


class KeepalivedInstance(PlanModel):
    """One gateway's vrrp_instance, exactly as keepalived.conf spells it."""

    name: str
    interface: str
    state: Literal["BACKUP"] = "BACKUP"
    vrrp_version: int
    virtual_router_id: int
    priority: int
    advert_int: str
    nopreempt: bool
    unicast_src_ip: IPv4Address
    unicast_peers: list[IPv4Address]
    peer_routes: list[PeerRoute]
    vips: list[IPv4Interface]
    authentication: Authentication | None
    track_script: KeepalivedTrackScript | None
    # Data-path health (empty when disabled): keepalived tracks these links and the agent's verdict file.
    track_interfaces: list[str]
    track_file: Path | None


class NatRules(PlanModel):
    """SNAT of VPC traffic leaving the WAN interface to the private IP(s) the EIP(s) map to."""

    wan_interface: str
    sources: list[IPv4Network]
    to_addresses: list[IPv4Address]
    local_addresses: list[IPv4Address]


class HostPlan(PlanModel):
    pair: str
    host: str
    keepalived: KeepalivedInstance
    nat: NatRules
    agent: AgentConfig


class PairPlan(PlanModel):
    name: str
    hosts: list[str]
    vrid: int
    vrrp_version: int
    priorities: dict[str, int]


class Plan(PlanModel):
    pairs: dict[str, PairPlan]
    hosts: dict[str, HostPlan]

    def to_vars(self) -> dict[str, Any]:
        """Plain JSON data for Ansible; the agent config leaves out unset options to stay short."""
        out = self.model_dump(mode="json")
        for name, host in self.hosts.items():
            out["hosts"][name]["agent"] = host.agent.model_dump(mode="json", exclude_none=True)
        return out


class PlanError(ValueError):
    """The inventory is wrong; `errors` holds every message, each naming pair, host and field."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _Errors:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, pair: str, hosts: str | Sequence[str], field: str, msg: str) -> None:
        host = hosts if isinstance(hosts, str) else ",".join(hosts)
        self.items.append(f"pair {pair}, host {host}, field {field}: {msg}")

    def pydantic(self, pair: str, hosts: str | Sequence[str], var: str, exc: ValidationError) -> None:
        for err in exc.errors(include_url=False):
            if err["type"] == "extra_forbidden":
                msg = "unknown key (a typo?)"
            elif err["type"] == "missing":
                msg = "required, not set"
            else:
                msg = err["msg"]
            self.add(pair, hosts, f"{var}{_loc(tuple(err['loc']))}", msg)


def _facts_iface(facts: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    iface = facts.get(name.replace("-", "_").replace(".", "_"))
    return iface if isinstance(iface, Mapping) else None


def _fact_address(iface: Mapping[str, Any]) -> IPv4Interface | None:
    ipv4 = iface.get("ipv4")
    if not isinstance(ipv4, Mapping) or "address" not in ipv4:
        return None
    return IPv4Interface(f"{ipv4['address']}/{ipv4.get('netmask', '255.255.255.255')}")


class _Resolved:
    """A host's spec with addresses and MACs filled in from facts, or None where neither gives them."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.lan_address = spec.lan_address
        self.lan_mac = spec.lan_mac.lower() if spec.lan_mac else None
        self.wan_address = spec.wan_address
        self.wan_mac = spec.wan_mac.lower() if spec.wan_mac else None

    @property
    def src_ip(self) -> IPv4Address | None:
        if self.spec.unicast_src_ip is not None:
            return self.spec.unicast_src_ip
        return self.lan_address.ip if self.lan_address else None


def _resolve(
    err: _Errors, pair: str, host: str, spec: HostSpec, facts: Mapping[str, Any] | None
) -> _Resolved:
    r = _Resolved(spec)
    for side in ("lan", "wan"):
        ifname: str = getattr(spec, f"{side}_interface")
        field = f"{HOST_VAR}.{side}"
        if facts is not None:
            iface = _facts_iface(facts, ifname)
            if iface is None:
                err.add(pair, host, f"{HOST_VAR}.{side}_interface", f"facts show no interface {ifname!r}")
                continue
            fact_addr = _fact_address(iface)
            given: IPv4Interface | None = getattr(r, f"{side}_address")
            if given is None:
                setattr(r, f"{side}_address", fact_addr)
            elif fact_addr is not None and given != fact_addr:
                err.add(
                    pair,
                    host,
                    f"{field}_address",
                    f"inventory says {given}, facts of {ifname} say {fact_addr}",
                )
            mac = iface.get("macaddress")
            if getattr(r, f"{side}_mac") is None and isinstance(mac, str):
                setattr(r, f"{side}_mac", mac.lower())
        if getattr(r, f"{side}_address") is None:
            err.add(pair, host, f"{field}_address", "not set, and no facts give it")
        if getattr(r, f"{side}_mac") is None:
            err.add(pair, host, f"{field}_mac", "not set, and no facts give it")
        else:
            try:
                EniRef(mac=getattr(r, f"{side}_mac"))
            except ValidationError as exc:
                err.add(pair, host, f"{field}_mac", exc.errors(include_url=False)[0]["msg"])
    return r


def _check_pair_spec(err: _Errors, pair: str, members: Sequence[str], spec: PairSpec) -> None:
    var = PAIR_VAR
    adv = Decimal(str(spec.advert_int))
    if spec.vrrp_version == 2:
        if adv != adv.to_integral_value():
            err.add(
                pair, members, f"{var}.advert_int", f"VRRPv2 takes whole seconds only, got {spec.advert_int}"
            )
        if spec.authentication is not None and len(spec.authentication.auth_pass) > VRRPV2_MAX_AUTH_PASS:
            err.add(
                pair,
                members,
                f"{var}.authentication.auth_pass",
                f"longer than {VRRPV2_MAX_AUTH_PASS} characters: keepalived would silently truncate it",
            )
    else:
        if adv % Decimal("0.01") != 0:
            err.add(pair, members, f"{var}.advert_int", f"VRRPv3 takes 10 ms steps, got {spec.advert_int}")
        if spec.authentication is not None:
            err.add(
                pair, members, f"{var}.authentication", "VRRPv3 has no authentication (keepalived ignores it)"
            )
    if spec.vip_routes:
        for i, vip in enumerate(spec.vips):
            if vip.network.prefixlen != 32:
                err.add(pair, members, f"{var}.vips[{i}]", "vip_routes needs /32 VIPs")
    unknown = sorted(set(spec.agent) - AGENT_TUNABLES)
    for key in unknown:
        err.add(
            pair, members, f"{var}.agent.{key}", f"unknown key (one of {', '.join(sorted(AGENT_TUNABLES))})"
        )


def _derive_priorities(members: Sequence[str], specs: Mapping[str, HostSpec]) -> dict[str, int]:
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


def _plan_pair(
    err: _Errors,
    pair: str,
    members: Sequence[str],
    spec: PairSpec,
    hosts: Mapping[str, _Resolved],
) -> tuple[PairPlan, dict[str, HostPlan]] | None:
    specs = {h: hosts[h].spec for h in members}
    before = len(err.items)

    by_priority: dict[int, list[str]] = {}
    for h in members:
        if specs[h].priority is not None:
            by_priority.setdefault(specs[h].priority, []).append(h)  # type: ignore[arg-type]
    for prio, same in by_priority.items():
        if len(same) > 1:
            for h in same:
                others = ", ".join(o for o in same if o != h)
                err.add(pair, h, f"{HOST_VAR}.priority", f"priority {prio} equals that of {others}")

    own: dict[IPv4Address, str] = {}
    for h in members:
        r = hosts[h]
        src = r.src_ip
        if src is not None and r.lan_address is not None and src not in r.lan_address.network:
            err.add(
                pair,
                h,
                f"{HOST_VAR}.unicast_src_ip",
                f"{src} is outside {r.spec.lan_interface}'s subnet {r.lan_address.network}",
            )
        if (
            r.spec.lan_router is not None
            and r.lan_address is not None
            and r.spec.lan_router not in r.lan_address.network
        ):
            err.add(
                pair,
                h,
                f"{HOST_VAR}.lan_router",
                f"{r.spec.lan_router} is outside {r.spec.lan_interface}'s subnet {r.lan_address.network}",
            )
        if len(r.spec.eip_private_ips) != len(spec.eips):
            err.add(
                pair,
                h,
                f"{HOST_VAR}.eip_private_ips",
                f"{len(r.spec.eip_private_ips)} address(es) for {len(spec.eips)} EIP(s): give one per EIP",
            )
        for i, ip in enumerate(r.spec.eip_private_ips):
            if r.wan_address is not None and ip == r.wan_address.ip:
                err.add(
                    pair,
                    h,
                    f"{HOST_VAR}.eip_private_ips[{i}]",
                    f"{ip} is the primary address of {r.spec.wan_interface}: give its secondary IP",
                )
            elif r.wan_address is not None and ip not in r.wan_address.network:
                err.add(
                    pair,
                    h,
                    f"{HOST_VAR}.eip_private_ips[{i}]",
                    f"{ip} is outside {r.spec.wan_interface}'s subnet {r.wan_address.network}",
                )
        addrs: list[tuple[str, IPv4Address | None]] = [
            (f"{HOST_VAR}.lan_address", r.lan_address.ip if r.lan_address else None),
            (f"{HOST_VAR}.wan_address", r.wan_address.ip if r.wan_address else None),
            (f"{HOST_VAR}.unicast_src_ip", r.spec.unicast_src_ip),
            *((f"{HOST_VAR}.eip_private_ips[{i}]", ip) for i, ip in enumerate(r.spec.eip_private_ips)),
        ]
        seen_here: set[IPv4Address] = set()
        for field, addr in addrs:
            if addr is None or addr in seen_here:
                continue
            seen_here.add(addr)
            if addr in own:
                err.add(pair, h, field, f"{addr} is also an address of {own[addr]}")
            else:
                own[addr] = h
    for i, vip in enumerate(spec.vips):
        if vip.ip in own:
            err.add(
                pair, own[vip.ip], f"{PAIR_VAR}.vips[{i}]", f"VIP {vip.ip} equals an address of {own[vip.ip]}"
            )

    if len(err.items) > before:
        return None

    priorities = _derive_priorities(members, specs)
    track = None
    if spec.track_script is not None:
        track = KeepalivedTrackScript(name=f"chk_{pair}", **spec.track_script.model_dump())
    instance = f"VI_{pair}"
    destinations = list(spec.destinations)
    if spec.vip_routes:
        destinations += [v.network for v in spec.vips if v.network not in destinations]
    # The agent tells master from backup by the VIPs keepalived adds (when its config has the field).
    vips = {"vips": [v.ip for v in spec.vips]} if "vips" in AgentConfig.model_fields else {}
    host_plans: dict[str, HostPlan] = {}
    for h in members:
        r = hosts[h]
        assert r.lan_address is not None and r.wan_address is not None and r.src_ip is not None
        assert r.lan_mac is not None and r.wan_mac is not None
        peers = [p for p in (hosts[o].src_ip for o in members if o != h) if p is not None]
        router = r.spec.lan_router or r.lan_address.network.network_address + 1
        peer_routes = [
            PeerRoute(to=p, via=router, dev=r.spec.lan_interface)
            for p in peers
            if p not in r.lan_address.network
        ]
        keepalived = KeepalivedInstance(
            name=instance,
            interface=r.spec.lan_interface,
            vrrp_version=spec.vrrp_version,
            virtual_router_id=spec.vrid,
            priority=priorities[h],
            advert_int=_fmt_interval(spec.advert_int),
            nopreempt=spec.nopreempt,
            unicast_src_ip=r.src_ip,
            unicast_peers=peers,
            peer_routes=peer_routes,
            vips=list(spec.vips),
            authentication=spec.authentication,
            track_script=track,
            track_interfaces=[r.spec.wan_interface] if spec.health.enabled else [],
            track_file=HEALTH_FILE if spec.health.enabled else None,
        )
        nat = NatRules(
            wan_interface=r.spec.wan_interface,
            sources=list(spec.vpc_cidrs),
            to_addresses=list(r.spec.eip_private_ips),
            local_addresses=sorted({r.lan_address.ip, r.wan_address.ip, *r.spec.eip_private_ips}),
        )
        try:
            agent = AgentConfig(
                pair=pair,
                host=h,
                vrrp_instance=instance,
                region=spec.region,
                endpoint_url=spec.endpoint_url,
                wan_eni=EniRef(mac=r.wan_mac),
                lan_eni=EniRef(mac=r.lan_mac),
                eips=[
                    EipBinding(eip=e, private_ip=ip)
                    for e, ip in zip(spec.eips, r.spec.eip_private_ips, strict=True)
                ],
                route_tables=spec.route_tables,
                destinations=destinations,
                health=spec.health,
                health_file=HEALTH_FILE if spec.health.enabled else None,
                wan_interface=r.spec.wan_interface,
                lan_interface=r.spec.lan_interface,
                priority=priorities[h],
                listen_address=r.src_ip,
                peers=[
                    PeerRef(
                        host=o,
                        address=hosts[o].src_ip,
                        priority=priorities[o],
                        lan_mac=hosts[o].lan_mac,
                        wan_mac=hosts[o].wan_mac,
                    )
                    for o in members
                    if o != h
                ],
                **vips,
                **({"keepalived_pidfile": KEEPALIVED_PIDFILE} | spec.agent),
            )
        except ValidationError as exc:
            err.pydantic(pair, h, f"{PAIR_VAR}.agent", exc)
            continue
        host_plans[h] = HostPlan(pair=pair, host=h, keepalived=keepalived, nat=nat, agent=agent)
    if len(err.items) > before:
        return None
    pair_plan = PairPlan(
        name=pair, hosts=list(members), vrid=spec.vrid, vrrp_version=spec.vrrp_version, priorities=priorities
    )
    return pair_plan, host_plans


def _fmt_interval(value: float) -> str:
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def plan(
    pairs: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    *,
    use_facts: bool = True,
) -> Plan:
    """Validate every pair and host of the inventory and compute each gateway's settings.

    `pairs` maps each pair group (a child of `nat_gateways`) to its member hosts in inventory order;
    `hostvars` maps each host to its merged variables (`nat_gateway_ha_pair`, `nat_gateway_ha_host` and,
    when `use_facts`, `ansible_facts`). Raises `PlanError` listing every problem found.
    """
    err = _Errors()
    member_of: dict[str, list[str]] = {}
    for pair, members in pairs.items():
        for h in members:
            member_of.setdefault(h, []).append(pair)
        if len(members) < 2:
            err.add(
                pair, members or "-", "members", f"a pair needs at least two gateways, found {len(members)}"
            )
    for h, in_pairs in member_of.items():
        if len(in_pairs) > 1:
            err.add(
                ",".join(in_pairs),
                h,
                "group membership",
                f"{h} is in {len(in_pairs)} pairs; a gateway serves one",
            )

    pair_specs: dict[str, PairSpec] = {}
    for pair, members in pairs.items():
        if not members:
            continue
        # A host in two pairs sees only one pair's merged value: compare the others (it is reported above).
        own = [h for h in members if len(member_of[h]) == 1] or list(members)
        raw = [hostvars.get(h, {}).get(PAIR_VAR) for h in own]
        missing = [h for h, v in zip(own, raw, strict=True) if v is None]
        if missing:
            err.add(pair, missing, PAIR_VAR, "required, not set (put it in the pair group's vars)")
            continue
        if any(v != raw[0] for v in raw[1:]):
            err.add(pair, members, PAIR_VAR, "members see different values (set it on the pair group only)")
            continue
        if not isinstance(raw[0], Mapping):
            err.add(pair, members, PAIR_VAR, f"must be a mapping, got {type(raw[0]).__name__}")
            continue
        try:
            pair_specs[pair] = PairSpec.model_validate(dict(raw[0]))
        except ValidationError as exc:
            err.pydantic(pair, members, PAIR_VAR, exc)

    resolved: dict[str, _Resolved] = {}
    for h, in_pairs in member_of.items():
        pair = ",".join(in_pairs)
        hv = hostvars.get(h, {})
        raw_host = hv.get(HOST_VAR)
        if raw_host is None:
            err.add(pair, h, HOST_VAR, "required, not set (put it in the host's vars)")
            continue
        if not isinstance(raw_host, Mapping):
            err.add(pair, h, HOST_VAR, f"must be a mapping, got {type(raw_host).__name__}")
            continue
        try:
            spec = HostSpec.model_validate(dict(raw_host))
        except ValidationError as exc:
            err.pydantic(pair, h, HOST_VAR, exc)
            continue
        facts = hv.get("ansible_facts") if use_facts else None
        if use_facts and not isinstance(facts, Mapping):
            facts = {}
        before = len(err.items)
        r = _resolve(err, pair, h, spec, facts)
        if len(err.items) == before:  # a host without its addresses cannot be planned
            resolved[h] = r

    for pair, checked in pair_specs.items():
        _check_pair_spec(err, pair, pairs[pair], checked)
    _check_vrid_clash(err, pairs, pair_specs, resolved)

    plans: dict[str, PairPlan] = {}
    host_plans: dict[str, HostPlan] = {}
    for pair, members in pairs.items():
        pair_spec = pair_specs.get(pair)
        if (
            pair_spec is None
            or len(members) < 2
            or any(h not in resolved or len(member_of[h]) > 1 for h in members)
        ):
            continue
        out = _plan_pair(err, pair, members, pair_spec, resolved)
        if out is not None:
            plans[pair], hp = out
            host_plans.update(hp)
    if err.items:
        raise PlanError(err.items)
    return Plan(pairs=plans, hosts=host_plans)


def _check_vrid_clash(
    err: _Errors,
    pairs: Mapping[str, Sequence[str]],
    specs: Mapping[str, PairSpec],
    hosts: Mapping[str, _Resolved],
) -> None:
    """Two pairs whose LAN subnets overlap must not use the same VRID."""
    lans: dict[str, list[IPv4Network]] = {}
    for pair, members in pairs.items():
        lans[pair] = [
            r.lan_address.network
            for h in members
            if (r := hosts.get(h)) is not None and r.lan_address is not None
        ]
    names = [p for p in pairs if p in specs]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if specs[a].vrid != specs[b].vrid:
                continue
            if any(x.overlaps(y) for x in lans[a] for y in lans[b]):
                for p, other in ((a, b), (b, a)):
                    err.add(
                        p,
                        pairs[p],
                        f"{PAIR_VAR}.vrid",
                        f"VRID {specs[p].vrid} is also used by pair {other}, which shares a LAN",
                    )
