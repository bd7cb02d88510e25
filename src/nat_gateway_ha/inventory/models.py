"""Stage 1, the input models: what one pair group and one gateway may say in the inventory.

Each field has the strictest type its rendered form allows (see `nat_gateway_ha.fields`); checks that need
more than one field, one pair or the facts are the named rules of `rules.py`.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, TypeAdapter

from nat_gateway_ha.config import (
    AgentTunables,
    EipRef,
    FlowSync,
    HealthConfig,
    RouteTableSelection,
    StrictModel,
)
from nat_gateway_ha.fields import Command, IfName, Region, ScriptPath, Url, check_secret

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

    auth_type: Literal["PASS", "AH"] = "PASS"
    auth_pass: Annotated[str, Field(min_length=1), AfterValidator(_auth_pass)]


class TrackScript(StrictModel):
    """Optional data-path health check run by keepalived as the script user (2.2.7: whole seconds).

    `script` is an argument list (a string is split on spaces): an absolute executable under a system tree,
    then plain arguments. keepalived runs it without a shell.
    """

    script: Annotated[Command, AfterValidator(_script_first)]
    interval: Annotated[int, Field(ge=1, le=4294)] = 1
    timeout: Annotated[int, Field(ge=1, le=4294)] = 1
    fall: Annotated[int, Field(ge=1, le=1000)] = 2
    rise: Annotated[int, Field(ge=1, le=1000)] = 2
    weight: Annotated[int, Field(ge=-253, le=253)] = 0


class PairSpec(StrictModel):
    """`nat_gateway_ha_pair`: what both (or all) gateways of one pair share."""

    vrid: Annotated[int, Field(ge=1, le=255)]
    vrrp_version: Literal[2, 3] = 3
    # VRRPv3 carries centiseconds in 12 bits (max 40.95 s); VRRPv2 whole seconds up to 255.
    advert_int: Annotated[float, Field(ge=0.01, le=255)] = 0.1
    vips: list[IPv4Interface] = Field(min_length=1, max_length=MAX_ADDRESSES)
    eips: list[EipRef] = Field(min_length=1, max_length=MAX_ADDRESSES)
    route_tables: RouteTableSelection
    destinations: list[IPv4Network] = Field(
        default_factory=lambda: [IPv4Network("0.0.0.0/0")], max_length=MAX_ADDRESSES
    )
    vip_routes: bool = False
    nopreempt: bool = True
    authentication: Authentication | None = None
    track_script: TrackScript | None = None
    region: Region | None = None
    endpoint_url: Url | None = None
    insecure_endpoints: bool = False  # plain-http endpoint_url, an IMDS elsewhere: the lab's emulators
    vpc_cidrs: list[IPv4Network] = Field(
        default_factory=lambda: list(RFC1918), min_length=1, max_length=MAX_ADDRESSES
    )
    agent: AgentTunables = Field(default_factory=AgentTunables)
    health: HealthConfig = Field(default_factory=HealthConfig)
    flow_sync: FlowSync = Field(default_factory=FlowSync)


class HostSpec(StrictModel):
    """`nat_gateway_ha_host`: one gateway's own settings; addresses and MACs default to what facts report."""

    priority: Annotated[int, Field(ge=1, le=254)] | None = None
    lan_interface: IfName = "eth1"
    lan_address: IPv4Interface | None = None
    lan_mac: str | None = None
    wan_interface: IfName = "eth0"
    wan_address: IPv4Interface | None = None
    wan_mac: str | None = None
    unicast_src_ip: IPv4Address | None = None
    lan_router: IPv4Address | None = None  # default: the LAN subnet's first address, the VPC router
    # One per pair EIP, same order.
    eip_private_ips: list[IPv4Address] = Field(min_length=1, max_length=MAX_ADDRESSES)
