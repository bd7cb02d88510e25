"""Faults on the network around the pair rather than in a gateway: drop rules at the VPC router or in front
of IMDS (a security group, an endpoint outage, an AZ's path), and a stranger speaking VRRP. Part of the
one fault list, `faults.FAULTS`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nat_gateway_ha.inventory.provisioning import api_eip_name
from nat_gateway_ha_lab import network, state
from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.fault_tools import Fault, FaultError, drop_rules, drop_table, in_ns


@dataclass
class Firewalled(Fault):
    """A fault that is a set of drop rules, at the VPC router (`router`) or in front of IMDS (the root
    namespace); `restore` removes them."""

    router: bool = True

    def rules(self, host: str) -> list[str]:
        raise NotImplementedError

    def inject(self, host: str) -> float:
        at = time.time()
        if self.router:
            drop_rules(network.VPC_NS, "forward", self.rules(host))
        else:
            drop_rules(None, "input", self.rules(host))
        return at

    def restore(self, host: str) -> None:
        drop_table(network.VPC_NS if self.router else None)


@dataclass
class VrrpPartition(Firewalled):
    """VRRP (IP protocol 112) dropped between the gateways at the VPC router, both otherwise healthy: a
    security group without protocol 112 does this."""

    name: str = "vrrp-partition"
    label: str = "VRRP dropped between the gateways"

    def rules(self, host: str) -> list[str]:
        return ["ip protocol vrrp"]


@dataclass
class ApiUnreachable(Firewalled):
    """EC2's endpoint unreachable from every gateway (an endpoint or DNS outage), at the VPC router on the
    gateways' one path to it."""

    name: str = "api-unreachable"
    label: str = "EC2 API unreachable"

    def rules(self, host: str) -> list[str]:
        return [f"ip daddr {topo.EC2_API} tcp dport {topo.EC2_API_PORT}"]


@dataclass
class ApiPathLost(Fault):
    """One gateway's primary WAN address loses its public address (disassociated through the API): its own
    traffic, the agent's EC2 calls included, no longer leaves the VPC, as on AWS. `restore` associates it
    again. The missing path shows only at failover time, when this gateway must take over."""

    name: str = "api-path-lost"
    label: str = "a gateway's public address (its path to EC2) removed"

    def inject(self, host: str) -> float:
        ec2, _, address = _api_address(host)
        at = time.time()
        ec2.disassociate_address(AssociationId=address["AssociationId"])
        return at

    def restore(self, host: str) -> None:
        ec2, nic, address = _api_address(host)
        eni = ec2.describe_network_interfaces(
            Filters=[{"Name": "addresses.private-ip-address", "Values": [str(nic.address)]}]
        )["NetworkInterfaces"][0]["NetworkInterfaceId"]
        ec2.associate_address(
            AllocationId=address["AllocationId"], NetworkInterfaceId=eni, PrivateIpAddress=str(nic.address)
        )


def _api_address(host: str) -> tuple[Any, topo.Nic, dict[str, Any]]:
    """The controller's EC2 client, the host's WAN NIC and the EC2 record of its primary's public address
    (the one provisioning allocated for it, found by its Name tag)."""
    ec2, nic = state.ec2_client(), topo.host(host).nic("eth0")
    name = api_eip_name(topo.PAIR, host)
    (address,) = ec2.describe_addresses(Filters=[{"Name": "tag:Name", "Values": [name]}])["Addresses"]
    return ec2, nic, dict(address)


def reaches_ec2(host: str, timeout: float = 2.0) -> bool:
    """Whether a TCP connection from `host`'s namespace to EC2's endpoint opens (the agent's own path)."""
    probe = f"import socket; socket.create_connection(('{topo.EC2_API}', {topo.EC2_API_PORT}), {timeout})"
    try:
        in_ns(host, "python3", "-c", probe)
    except FaultError:
        return False
    return True


@dataclass
class ImdsUnreachable(Firewalled):
    """IMDS unreachable from one gateway (hop limit, a firewall)."""

    name: str = "imds-unreachable"
    label: str = "IMDS unreachable"
    router: bool = False

    def rules(self, host: str) -> list[str]:
        return [f"ip saddr {topo.host(host).mgmt} ip daddr {topo.IMDS_ADDR}"]


@dataclass
class UpstreamDown(Firewalled):
    """The internet unreachable from one gateway's WAN addresses (its AZ's path), or from all (`both`)."""

    name: str = "upstream-down"
    label: str = "upstream unreachable from the master"
    both: bool = False

    def rules(self, host: str) -> list[str]:
        hosts = topo.gateways() if self.both else (topo.host(host),)
        addrs = ", ".join(str(a) for h in hosts for a in (h.nic("eth0").address, *h.nic("eth0").secondary))
        targets = ", ".join(str(t) for t in topo.UPSTREAM_TARGETS)
        rules = [f"ip saddr {{ {addrs} }} ip daddr {{ {targets} }}"]
        if self.both:
            rules.append(f"ip daddr {{ {targets} }}")  # the outage hits everyone, forwarded clients too
        return rules


@dataclass
class RogueVrrp(Fault):
    """A stranger in the VPC (the client) sends VRRPv3 adverts with the pair's VRID and priority 254 to
    the master for `seconds`: without filtering, the master yields to it, the peer (which hears no
    stranger) is elected, and the pair moves (seen in the lab before the role filtered VRRP)."""

    name: str = "rogue-vrrp"
    label: str = "rogue VRRP speaker, priority 254"
    vrid: int = 77
    seconds: float = 6.0

    def inject(self, host: str) -> float:
        at = time.time()
        target = str(topo.host(host).nic("eth1").address)
        args = [str(self.vrid), "254", str(self.seconds), str(topo.VIP.ip), target]
        in_ns("client", "python3", str(Path(__file__).with_name("rogue_vrrp.py")), *args)
        return at

    def restore(self, host: str) -> None:
        pass  # the speaker stops by itself
