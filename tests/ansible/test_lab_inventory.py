"""inventories/lab must describe the lab topology.py builds, and validate as the role validates it."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
import yaml

from nat_gateway_ha.inventory import HostSpec, PairSpec
from nat_gateway_ha_lab import paths
from nat_gateway_ha_lab import topology as topo

INV = Path(__file__).resolve().parents[2] / "inventories" / "lab"


def _load(rel: str) -> dict[str, Any]:
    data = yaml.safe_load((INV / rel).read_text())
    assert isinstance(data, dict)
    return data


def test_groups_hold_the_topology_hosts() -> None:
    groups = _load("hosts.yml")["all"]["children"]
    assert set(groups["nat_gateways"]["children"]["natgw_lab"]["hosts"]) == {h.name for h in topo.gateways()}
    clients = {h.name for h in topo.HOSTS if h.role == "client"}
    assert set(groups["lab_clients"]["hosts"]) == clients


@pytest.mark.parametrize("host", topo.HOSTS, ids=lambda h: h.name)
def test_hosts_are_reached_on_their_management_address(host: topo.Host) -> None:
    assert IPv4Address(_load(f"host_vars/{host.name}.yml")["ansible_host"]) == host.mgmt


def test_connection_uses_the_lab_key() -> None:
    assert Path(_load("group_vars/all.yml")["ansible_ssh_private_key_file"]) == paths.SSH_KEY


def test_pair_vars_match_the_topology() -> None:
    pair = PairSpec.model_validate(_load("group_vars/natgw_lab.yml")["nat_gateway_ha_pair"])
    assert pair.vips == [topo.VIP]
    assert pair.region == topo.REGION
    # The gateways call EC2's public endpoint through the VPC; the controller calls moto directly.
    assert str(pair.endpoint_url).rstrip("/") == f"http://{topo.EC2_API}" and topo.EC2_API_PORT == 80
    controller = _load("group_vars/natgw_lab.yml")["nat_gateway_ha_controller_endpoint_url"]
    assert controller == f"http://{topo.MGMT_NET.ip}:{topo.MOTO_PORT}"
    assert pair.vpc_cidrs == [topo.VPC_CIDR]
    assert all(e.public_ip in topo.EIP_POOL for e in pair.eips if e.public_ip)


@pytest.mark.parametrize("host", topo.gateways(), ids=lambda h: h.name)
def test_gateway_vars_match_the_topology(host: topo.Host) -> None:
    spec = HostSpec.model_validate(_load(f"host_vars/{host.name}.yml")["nat_gateway_ha_host"])
    wan, lan = host.nic(spec.wan_interface), host.nic(spec.lan_interface)
    assert spec.wan_address == IPv4Interface(f"{wan.address}/{topo.subnet(wan.subnet).cidr.prefixlen}")
    assert spec.lan_address == IPv4Interface(f"{lan.address}/{topo.subnet(lan.subnet).cidr.prefixlen}")
    assert (spec.wan_mac, spec.lan_mac) == (wan.mac, lan.mac)
    assert spec.eip_private_ips == list(wan.secondary)
