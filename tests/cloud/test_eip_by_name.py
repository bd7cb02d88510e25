"""An EIP named by its Name tag (what provisioning allocates): the agent resolves it once, or refuses."""

from __future__ import annotations

from typing import Any

import pytest

from nat_gateway_ha.resolve import ResolveError
from nat_gateway_ha_lab import topology
from support import eip_target


def _by(host: str = "gw1", **eip: str) -> dict[str, Any]:
    secondary = topology.host(host).nic("eth0").secondary[0]
    return {"eips": [{"eip": eip, "private_ip": str(secondary)}]}


def test_an_eip_named_by_its_tag_resolves_to_its_allocation(inprocess_world, connect_as) -> None:
    cloud = connect_as(inprocess_world, "gw2", **_by("gw2", name="natlab-eip"))
    assert [e.allocation_id for e in cloud.target.eips] == [inprocess_world.state.eip_allocation_id]
    assert cloud.takeover().converged
    assert eip_target(inprocess_world.ec2)[0] == inprocess_world.eni("gw2", "eth0")


def test_a_name_no_eip_carries_is_refused(inprocess_world, connect_as) -> None:
    with pytest.raises(ResolveError, match=r"eips\[0\]\.eip: 0 VPC Elastic IPs match"):
        connect_as(inprocess_world, "gw1", **_by(name="nobody"))


def test_a_name_two_eips_carry_is_refused(inprocess_world, connect_as) -> None:
    inprocess_world.ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "natlab-eip"}]}],
    )
    with pytest.raises(ResolveError, match=r"eips\[0\]\.eip: 2 VPC Elastic IPs match"):
        connect_as(inprocess_world, "gw1", **_by(name="natlab-eip"))


def test_a_name_and_an_address_that_disagree_are_refused(inprocess_world, connect_as) -> None:
    with pytest.raises(ResolveError, match=r"named 'natlab-eip', not 'other'"):
        connect_as(inprocess_world, "gw1", **_by(public_ip="203.0.113.10", name="other"))
