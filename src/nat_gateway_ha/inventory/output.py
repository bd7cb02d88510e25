"""The plan: plain, frozen data for the templates, typed again so a builder bug cannot render a bad value."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.fields import HostName, IfName, InstanceName, PairName, ScriptArg, ScriptUser
from nat_gateway_ha.inventory.models import Authentication


class PlanModel(BaseModel):
    """Base of the plan's output models: plain data for templates."""

    model_config = ConfigDict(frozen=True)


class KeepalivedTrackScript(PlanModel):
    name: InstanceName
    script: list[ScriptArg]
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
    dev: IfName


class KeepalivedInstance(PlanModel):
    """One gateway's vrrp_instance, exactly as keepalived.conf spells it."""

    name: InstanceName
    interface: IfName
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
    track_interfaces: list[IfName]
    track_file: Path | None


class NatRules(PlanModel):
    """SNAT of VPC traffic to the pair's shared addresses, translated at the WAN edge, one to one, to the
    private IP(s) the EIP(s) map to on this gateway (`shared[i]` <-> `to_addresses[i]`)."""

    wan_interface: IfName
    sources: list[IPv4Network]
    shared: list[IPv4Address]
    to_addresses: list[IPv4Address]
    local_addresses: list[IPv4Address]


class FlowSyncPlan(PlanModel):
    """conntrackd on this gateway: FT-FW over unicast UDP with its peer(s) on the LAN."""

    interface: IfName
    address: IPv4Address
    peers: list[IPv4Address]
    port: int
    ignore: list[IPv4Address]  # this gateway's own addresses: its own traffic is never synced


class HostPlan(PlanModel):
    pair: PairName
    host: HostName
    script_user: ScriptUser
    keepalived: KeepalivedInstance
    nat: NatRules
    flow_sync: FlowSyncPlan | None
    agent: AgentConfig


class PairPlan(PlanModel):
    name: PairName
    hosts: list[HostName]
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
