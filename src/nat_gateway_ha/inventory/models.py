"""Stage 1, the input models: what one pair group and one gateway may say in the inventory.

Each field has the strictest type its rendered form allows (see `nat_gateway_ha.fields`); checks that need
more than one field, one pair or the facts are the named rules of `rules.py`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, TypeAdapter

from nat_gateway_ha.cloud_refs import EipRef, RouteTableSelection
from nat_gateway_ha.config import AgentTunables, FlowSync, HealthConfig
from nat_gateway_ha.fields import Command, IfName, Region, ScriptPath, StrictModel, Url, check_secret

PAIR_VAR = "nat_gateway_ha_pair"
HOST_VAR = "nat_gateway_ha_host"
SCRIPT_USER_VAR = "nat_gateway_ha_script_user"
DEFAULT_SCRIPT_USER = "keepalived_script"  # the role's default (defaults/main.yml)
RFC1918 = [IPv4Network("10.0.0.0/8"), IPv4Network("172.16.0.0/12"), IPv4Network("192.168.0.0/16")]
VRRPV2_MAX_AUTH_PASS = 8  # bytes: keepalived truncates longer PASS secrets with only a warning
MAX_ADDRESSES = 32  # VIPs, EIPs, CIDRs: bounds every rendered line and block


def _auth_pass(secret: str) -> str:
    return check_secret(secret, VRRPV2_MAX_AUTH_PASS)


_SCRIPT_PATH: TypeAdapter[str] = TypeAdapter(ScriptPath)


def _script_first(command: list[str]) -> list[str]:
    _SCRIPT_PATH.validate_python(command[0])
    return command


class Authentication(StrictModel):
    """VRRPv2 only: keepalived 2.2.7 ignores authentication with VRRPv3."""

    auth_type: Literal["PASS", "AH"] = Field("PASS", description="How VRRPv2 authenticates adverts.")
    auth_pass: Annotated[str, Field(min_length=1), AfterValidator(_auth_pass)] = Field(
        description="Secret of 1-8 bytes of printable ASCII without space, `#`, `!`, quotes or `\\`: "
        "keepalived silently truncates or cuts anything else.",
        json_schema_extra={"no_log": True},
    )


class TrackScript(StrictModel):
    """Optional data-path health check run by keepalived as the script user (2.2.7: whole seconds).

    `script` is an argument list (a string is split on spaces): an absolute executable under a system tree,
    then plain arguments. keepalived runs it without a shell.
    """

    script: Annotated[Command, AfterValidator(_script_first)] = Field(
        description="Command as an argument list, or one string split on spaces: an absolute normalised path "
        "under /usr, /opt, /bin, /sbin or /etc/keepalived, then arguments of `A-Za-z0-9_./:=@%+,-`; at most "
        "512 bytes, run without a shell.",
        json_schema_extra={"ansible_type": "raw"},
    )
    interval: Annotated[int, Field(ge=1, le=4294)] = Field(
        1, description="Whole seconds between runs (keepalived 2.2.7 takes integers only)."
    )
    timeout: Annotated[int, Field(ge=1, le=4294)] = Field(
        1, description="Whole seconds before a run counts as failed."
    )
    fall: Annotated[int, Field(ge=1, le=1000)] = Field(2, description="Failures before the check is down.")
    rise: Annotated[int, Field(ge=1, le=1000)] = Field(2, description="Successes before the check is up.")
    weight: Annotated[int, Field(ge=-253, le=253)] = Field(
        0,
        description="Priority change while down: 0 means fault state, a negative value lowers the priority.",
    )


class PairSpec(StrictModel):
    """`nat_gateway_ha_pair`: what both (or all) gateways of one pair share."""

    vrid: Annotated[int, Field(ge=1, le=255)] = Field(
        description="VRRP virtual router id, 1-255; distinct among pairs whose LAN subnets overlap."
    )
    vrrp_version: Literal[2, 3] = Field(3, description="The VRRP version; VRRPv3 allows sub-second adverts.")
    # VRRPv3 carries centiseconds in 12 bits (max 40.95 s); VRRPv2 whole seconds up to 255.
    advert_int: Annotated[float, Field(ge=0.01, le=255)] = Field(
        0.1,
        description="Seconds. VRRPv3: 0.01-40.95 in 10 ms steps (master-down about 3 x advert_int). VRRPv2: "
        "whole seconds, 1-255.",
    )
    vips: list[IPv4Interface] = Field(
        min_length=1,
        max_length=MAX_ADDRESSES,
        description="CIDRs added to the master's LAN interface. keepalived 2.2.7 needs at least one for "
        "VRRPv3.",
    )
    eips: list[EipRef] = Field(
        min_length=1,
        max_length=MAX_ADDRESSES,
        description="The pair's Elastic IPs, each `{allocation_id: eipalloc-...}` (preferred), "
        "`{public_ip: ...}` or `{name: ...}` (its Name tag, which `playbooks/provision.yml` allocates).",
    )
    route_tables: RouteTableSelection = Field(
        description="Route tables repointed at the master's LAN ENI: the union of tag matches, ids and the "
        "subnets' tables."
    )
    destinations: list[IPv4Network] = Field(
        default_factory=lambda: [IPv4Network("0.0.0.0/0")],
        max_length=MAX_ADDRESSES,
        description="Destination CIDRs repointed in each table.",
    )
    vip_routes: bool = Field(
        False, description="Also route each VIP (/32) to the master, for clients that address the VIP itself."
    )
    nopreempt: bool = Field(
        True, description="A recovered gateway does not take mastership back (every peer starts as BACKUP)."
    )
    authentication: Authentication | None = Field(
        None, description="VRRPv2 authentication. An error with VRRPv3, which ignores it."
    )
    track_script: TrackScript | None = Field(
        None, description="Data-path health check keepalived runs as the script user."
    )
    region: Region | None = Field(
        None, description="AWS region for the agent.", json_schema_extra={"shown": "from IMDS"}
    )
    endpoint_url: Url | None = Field(
        None,
        description="EC2 endpoint override (an interface endpoint, or the lab's moto); https only unless "
        "`insecure_endpoints`.",
        json_schema_extra={"shown": "AWS"},
    )
    insecure_endpoints: bool = Field(
        False,
        description="Allow a plain-http `endpoint_url` and an `agent.imds_url` other than "
        "`http://169.254.169.254`: for a lab's emulators only.",
    )
    vpc_cidrs: list[IPv4Network] = Field(
        default_factory=lambda: list(RFC1918),
        min_length=1,
        max_length=MAX_ADDRESSES,
        description="Source ranges the gateway NATs (traffic to them is not NATed); RFC 1918 by default.",
    )
    agent: AgentTunables = Field(
        default_factory=AgentTunables,
        description="Failover agent tunables, checked against the agent's own model.",
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig,
        description="Data-path health tracking, see [Health tracking](#health-tracking): local faults "
        "(a link down, the NAT ruleset gone, forwarding off, conntrack past its high-water mark) put the "
        "gateway in FAULT; an upstream failure seen by the master makes it step down only when a peer says "
        "it is eligible.",
        json_schema_extra={"shown": "on"},
    )
    flow_sync: FlowSync = Field(
        default_factory=FlowSync,
        description="Connection-state sync between the peers (conntrackd, FT-FW over unicast UDP on the "
        "LAN), so established flows survive a failover; see [Flow sync](#flow-sync). Both gateways SNAT "
        "to shared addresses that each translates statelessly to its own EIP private IPs at the WAN edge.",
        json_schema_extra={"shown": "on"},
    )


class HostSpec(StrictModel):
    """`nat_gateway_ha_host`: one gateway's own settings; addresses and MACs default to what facts report."""

    priority: Annotated[int, Field(ge=1, le=254)] | None = Field(
        None,
        description="1-254. Unset: 150, 140, 130, ... in inventory order, skipping values set explicitly. "
        "Equal priorities in a pair are an error.",
        json_schema_extra={"shown": "derived"},
    )
    lan_interface: IfName = Field(
        "eth1", description="Interface facing the private subnets: VRRP, VIPs. At most 15 of `A-Za-z0-9_.-`."
    )
    lan_address: IPv4Interface | None = Field(
        None,
        description="LAN address with prefix, e.g. `10.77.3.220/24`. Required in render mode.",
        json_schema_extra={"shown": "from facts"},
    )
    lan_mac: str | None = Field(
        None,
        description="MAC of the LAN ENI; the agent finds the ENI by it through IMDS.",
        json_schema_extra={"shown": "from facts"},
    )
    wan_interface: IfName = Field(
        "eth0", description="Interface facing the internet gateway: SNAT. At most 15 of `A-Za-z0-9_.-`."
    )
    wan_address: IPv4Interface | None = Field(
        None, description="WAN primary address with prefix.", json_schema_extra={"shown": "from facts"}
    )
    wan_mac: str | None = Field(
        None, description="MAC of the WAN ENI.", json_schema_extra={"shown": "from facts"}
    )
    unicast_src_ip: IPv4Address | None = Field(
        None,
        description="VRRP source address; must lie in the LAN interface's subnet. Peers' `unicast_peer` "
        "lists are built from it.",
        json_schema_extra={"shown": "the LAN address"},
    )
    lan_router: IPv4Address | None = Field(
        None,
        description="Router of the LAN subnet (AWS: the VPC router, network + 1). Peers in other subnets get "
        "a /32 through it in keepalived's `static_routes`.",
        json_schema_extra={"shown": "the subnet's first address"},
    )
    eip_private_ips: list[IPv4Address] = Field(
        min_length=1,
        max_length=MAX_ADDRESSES,
        description="One WAN secondary private IP per pair EIP, in the order of `eips`: the EIP maps to it "
        "while this host is master, and the NAT rules SNAT to it. Must be in the WAN subnet and not the "
        "primary address.",
    )
