"""Stage 2, the named rules: what the inventory refuses beyond the input models' types.

`RULES` is the one ordered list; each rule reads the whole parsed inventory and adds an error naming pair,
host and field for every violation. A rule skips what an earlier stage could not parse (that is already an
error). The tests' table of bad inventories names the rule each case is refused by.
"""

from __future__ import annotations

from decimal import Decimal
from ipaddress import IPv4Address, IPv4Network

from pydantic import TypeAdapter, ValidationError

from nat_gateway_ha.fields import MetricsPath, insecure_endpoint
from nat_gateway_ha.inventory.cross_pair import (
    addresses_are_unique,
    pairs_share_no_cloud_resources,
    vrid_unique_on_shared_lan,
)
from nat_gateway_ha.inventory.errors import Errors
from nat_gateway_ha.inventory.models import HOST_VAR, PAIR_VAR
from nat_gateway_ha.inventory.parsed import Inventory, Rule

VRRPV2_MAX_ADVERT = Decimal(255)  # 8-bit seconds
VRRPV3_MAX_ADVERT = Decimal("40.95")  # 12-bit centiseconds
IMDS = IPv4Address("169.254.169.254")


def pair_has_two_members(inv: Inventory, err: Errors) -> None:
    """A pair group with fewer than two gateways (an empty or misspelt group) has no one to fail over to."""
    for pair, members in inv.pairs.items():
        if len(members) < 2:
            err.add(
                pair, members or "-", "members", f"a pair needs at least two gateways, found {len(members)}"
            )


def host_serves_one_pair(inv: Inventory, err: Errors) -> None:
    """A gateway in two pair groups would see only one pair's merged variables."""
    for h, in_pairs in inv.member_of.items():
        if len(in_pairs) > 1:
            err.add(
                ",".join(in_pairs),
                h,
                "group membership",
                f"{h} is in {len(in_pairs)} pairs; a gateway serves one",
            )


def vrrp_version_limits(inv: Inventory, err: Errors) -> None:
    """keepalived's limits per VRRP version: advert_int grid and maximum, authentication only with VRRPv2."""
    for pair, spec in inv.specs.items():
        members, field = inv.pairs[pair], f"{PAIR_VAR}.advert_int"
        adv = Decimal(str(spec.advert_int))
        if spec.vrrp_version == 2:
            if adv != adv.to_integral_value():
                err.add(pair, members, field, f"VRRPv2 takes whole seconds only, got {spec.advert_int}")
        else:
            if adv % Decimal("0.01") != 0:
                err.add(pair, members, field, f"VRRPv3 takes 10 ms steps, got {spec.advert_int}")
            if adv > VRRPV3_MAX_ADVERT:
                err.add(
                    pair,
                    members,
                    field,
                    f"VRRPv3 allows at most {VRRPV3_MAX_ADVERT} s, got {spec.advert_int}",
                )
            if spec.authentication is not None:
                err.add(
                    pair,
                    members,
                    f"{PAIR_VAR}.authentication",
                    "VRRPv3 has no authentication (keepalived ignores it)",
                )


def vip_routes_need_host_routes(inv: Inventory, err: Errors) -> None:
    """vip_routes points the route tables at /32 VIPs; a wider VIP would route a whole subnet to a gateway."""
    for pair, spec in inv.specs.items():
        if spec.vip_routes:
            for i, vip in enumerate(spec.vips):
                if vip.network.prefixlen != 32:
                    err.add(pair, inv.pairs[pair], f"{PAIR_VAR}.vips[{i}]", "vip_routes needs /32 VIPs")


def vpc_cidrs_are_ranges(inv: Inventory, err: Errors) -> None:
    """vpc_cidrs wider than /8 (0.0.0.0/0) would exempt every destination from NAT: nothing would be NATed."""
    for pair, spec in inv.specs.items():
        for i, cidr in enumerate(spec.vpc_cidrs):
            if cidr.prefixlen < 8:
                msg = f"{cidr} is wider than any VPC (/8): traffic to it is never NATed"
                err.add(pair, inv.pairs[pair], f"{PAIR_VAR}.vpc_cidrs[{i}]", msg)


_METRICS_PATH: TypeAdapter[str] = TypeAdapter(MetricsPath)


def agent_paths_are_allowed(inv: Inventory, err: Errors) -> None:
    """The agent writes its metrics file as root: only under /var/lib, /run or /var/run, normalised."""
    for pair, spec in inv.specs.items():
        path = spec.agent.metrics_textfile
        if path is None:
            continue
        try:
            _METRICS_PATH.validate_python(str(path))
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"][:200]
            err.add(pair, inv.pairs[pair], f"{PAIR_VAR}.agent.metrics_textfile", msg)


def endpoints_are_secure(inv: Inventory, err: Errors) -> None:
    """https to EC2 and IMDS at its own address, unless the pair is a lab's (`insecure_endpoints`)."""
    for pair, spec in inv.specs.items():
        if spec.insecure_endpoints:
            continue
        for field, url in (("endpoint_url", spec.endpoint_url), ("agent.imds_url", spec.agent.imds_url)):
            if why := insecure_endpoint(field.removeprefix("agent."), url):
                err.add(pair, inv.pairs[pair], f"{PAIR_VAR}.{field}", why)


def shared_snat_addresses_fit(inv: Inventory, err: Errors) -> None:
    """One shared SNAT address per EIP, none inside the VPC (a client there would be shadowed)."""
    for pair, spec in inv.specs.items():
        given = spec.flow_sync.snat_addresses
        field = f"{PAIR_VAR}.flow_sync.snat_addresses"
        if given and len(given) != len(spec.eips):
            err.add(pair, inv.pairs[pair], field, f"{len(given)} address(es) for {len(spec.eips)} EIP(s)")
        for i, addr in enumerate(given):
            if any(addr in cidr for cidr in spec.vpc_cidrs) or len(set(given)) != len(given):
                err.add(pair, inv.pairs[pair], f"{field}[{i}]", f"{addr} is in vpc_cidrs or listed twice")


def priorities_are_distinct(inv: Inventory, err: Errors) -> None:
    """Two members with the same explicit priority leave the election to their addresses."""
    for pair, members, _spec, hosts in inv.complete():
        by_priority: dict[int, list[str]] = {}
        for h in members:
            prio = hosts[h].spec.priority
            if prio is not None:
                by_priority.setdefault(prio, []).append(h)
        for prio, same in by_priority.items():
            for h in same if len(same) > 1 else []:
                others = ", ".join(o for o in same if o != h)
                err.add(pair, h, f"{HOST_VAR}.priority", f"priority {prio} equals that of {others}")


def host_addresses_in_own_subnets(inv: Inventory, err: Errors) -> None:
    """unicast_src_ip, lan_router in the LAN subnet; one secondary WAN IP per EIP, in the WAN subnet."""
    for pair, h, spec, r, lan, wan in inv.gateways():
        for field, addr in (("unicast_src_ip", r.spec.unicast_src_ip), ("lan_router", r.spec.lan_router)):
            if addr is not None and addr not in lan.network:
                err.add(
                    pair,
                    h,
                    f"{HOST_VAR}.{field}",
                    f"{addr} is outside {r.lan.interface}'s subnet {lan.network}",
                )
        ips = r.spec.eip_private_ips
        if len(ips) != len(spec.eips):
            err.add(
                pair, h, f"{HOST_VAR}.eip_private_ips",
                f"{len(ips)} address(es) for {len(spec.eips)} EIP(s): give one per EIP",
            )  # fmt: skip
        for i, ip in enumerate(ips):
            field = f"{HOST_VAR}.eip_private_ips[{i}]"
            if ip == wan.ip:
                err.add(
                    pair,
                    h,
                    field,
                    f"{ip} is the primary address of {r.wan.interface}: give its secondary IP",
                )
            elif ip not in wan.network:
                err.add(pair, h, field, f"{ip} is outside {r.wan.interface}'s subnet {wan.network}")


def host_interfaces_are_usable(inv: Inventory, err: Errors) -> None:
    """LAN and WAN are two interfaces, neither loopback (keepalived will not run VRRP on lo)."""
    for h, r in inv.hosts.items():
        pair = ",".join(inv.member_of[h])
        for side, name in (("lan", r.lan.interface), ("wan", r.wan.interface)):
            if name == "lo":
                err.add(pair, h, f"{HOST_VAR}.{side}_interface", "lo is loopback: give the ENI's interface")
        if r.lan.interface == r.wan.interface:
            err.add(pair, h, f"{HOST_VAR}.wan_interface", f"{r.wan.interface} is also the LAN interface")


def host_addresses_are_plain(inv: Inventory, err: Errors) -> None:
    """No gateway address is reserved in its subnet; lan_router is no own address; EIP private IPs differ."""
    for pair, h, _spec, r, lan, wan in inv.gateways():
        checks = [
            (f"{HOST_VAR}.lan_address", lan.ip, lan.network),
            (f"{HOST_VAR}.wan_address", wan.ip, wan.network),
            *(
                (f"{HOST_VAR}.eip_private_ips[{i}]", ip, wan.network)
                for i, ip in enumerate(r.spec.eip_private_ips)
            ),
        ]
        if r.spec.unicast_src_ip is not None:
            checks.append((f"{HOST_VAR}.unicast_src_ip", r.spec.unicast_src_ip, lan.network))
        for field, ip, net in checks:
            why = _special(ip) or _reserved_in(net).get(ip)
            if why is not None:
                err.add(pair, h, field, f"{ip} is {why}")
        if r.spec.lan_router is not None and r.spec.lan_router in {a for _f, a in r.addresses()}:
            err.add(pair, h, f"{HOST_VAR}.lan_router", f"{r.spec.lan_router} is an address of {h} itself")
        ips = r.spec.eip_private_ips
        for i, ip in enumerate(ips):
            if ip in ips[:i]:
                err.add(pair, h, f"{HOST_VAR}.eip_private_ips[{i}]", f"{ip} is listed twice: one per EIP")


def subnets_inside_vpc_cidrs(inv: Inventory, err: Errors) -> None:
    """Each gateway's LAN and WAN subnets lie in the pair's vpc_cidrs: otherwise they name another VPC."""
    for pair, members, spec, hosts in inv.complete():
        for h in members:
            for side in (hosts[h].lan, hosts[h].wan):
                assert side.address is not None
                if not any(side.address.network.subnet_of(c) for c in spec.vpc_cidrs if c.prefixlen <= 32):
                    msg = f"{side.address.network} of {side.interface} is outside vpc_cidrs"
                    err.add(pair, members, f"{PAIR_VAR}.vpc_cidrs", f"{msg} ({h})")


def _reserved_in(net: IPv4Network) -> dict[IPv4Address, str]:
    """The addresses of a VPC subnet no host may hold: network, router, DNS, reserved, broadcast."""
    if net.prefixlen > 28:
        return {}
    base = net.network_address
    return {
        base: "the subnet's network address",
        base + 1: "the subnet's VPC router",
        base + 2: "the VPC's DNS address in that subnet",
        base + 3: "reserved by AWS in that subnet",
        net.broadcast_address: "the subnet's broadcast address",
    }


def _special(ip: IPv4Address) -> str | None:
    if ip == IMDS:
        return "the instance metadata service (IMDS)"
    for test, why in (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "link-local (169.254.0.0/16)"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip == IPv4Address("255.255.255.255"), "the broadcast address"),
    ):
        if test:
            return why
    return None


def vips_are_usable(inv: Inventory, err: Errors) -> None:
    """A VIP is no special address (0.0.0.0, IMDS, link-local...) nor a reserved one of a member's subnet."""
    for pair, members, spec, hosts in inv.complete():
        reserved: dict[IPv4Address, str] = {}
        for r in hosts.values():
            for side in (r.lan, r.wan):
                if side.address is not None:
                    reserved |= _reserved_in(side.address.network)
        for i, vip in enumerate(spec.vips):
            why = _special(vip.ip) or reserved.get(vip.ip)
            if (
                why is None
                and vip.network.prefixlen < 32
                and vip.ip in (vip.network.network_address, vip.network.broadcast_address)
            ):
                why = f"the network or broadcast address of {vip.network}"
            if why is not None:
                err.add(pair, members, f"{PAIR_VAR}.vips[{i}]", f"VIP {vip.ip} is {why}")


# The order is the order of the messages: membership first, then each pair alone, then across pairs.
RULES: tuple[Rule, ...] = (
    pair_has_two_members,
    host_serves_one_pair,
    vrrp_version_limits,
    vip_routes_need_host_routes,
    vpc_cidrs_are_ranges,
    agent_paths_are_allowed,
    endpoints_are_secure,
    shared_snat_addresses_fit,
    priorities_are_distinct,
    host_interfaces_are_usable,
    host_addresses_in_own_subnets,
    host_addresses_are_plain,
    subnets_inside_vpc_cidrs,
    vips_are_usable,
    addresses_are_unique,
    vrid_unique_on_shared_lan,
    pairs_share_no_cloud_resources,
)
