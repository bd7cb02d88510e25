"""The inventory's model: one pair's vars and one gateway's vars, as the user writes them.

STUB written to fix the contract between the role, the lab inventory and the agent. The owner of issue 2
completes it: cross-field and cross-pair validation, priority derivation, peers, and `plan()` which turns an
inventory into each gateway's keepalived parameters and its `AgentConfig`.

Inventory layout: group `nat_gateways`; each HA pair is a child group of it. The pair group's vars hold
`nat_gateway_ha_pair` (a `PairSpec`), each gateway's host vars hold `nat_gateway_ha_host` (a `HostSpec`).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Annotated, Literal

from pydantic import Field

from nat_gateway_ha.config import EipRef, RouteTableSelection, StrictModel


class Authentication(StrictModel):
    auth_type: Literal["PASS", "AH"] = "PASS"
    auth_pass: str


class TrackScript(StrictModel):
    """Optional data-path health check run by keepalived as the script user."""

    script: str
    interval: Annotated[float, Field(gt=0)] = 1.0
    timeout: Annotated[float, Field(gt=0)] = 1.0
    fall: Annotated[int, Field(ge=1)] = 2
    rise: Annotated[int, Field(ge=1)] = 2
    weight: int = 0


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


class HostSpec(StrictModel):
    """`nat_gateway_ha_host`: one gateway's own settings; addresses default to what facts report."""

    priority: Annotated[int, Field(ge=1, le=254)] | None = None
    lan_interface: str = "eth1"
    lan_address: IPv4Interface | None = None
    wan_interface: str = "eth0"
    wan_address: IPv4Interface | None = None
    eip_private_ips: list[IPv4Address] = Field(min_length=1)  # one per pair EIP, same order
