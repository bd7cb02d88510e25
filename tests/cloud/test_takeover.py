"""Takeover against the lab's cloud (moto in-process and as a server, with AWS's behaviour restored)."""

from __future__ import annotations

import pytest

from nat_gateway_ha_lab import cloud
from support import eip_target, route_targets, seed_world, test_client


def _assert_owner(world, host: str) -> None:
    ec2 = world.ec2
    assert set(route_targets(ec2, world.private_tables).values()) == {world.eni(host, "eth1")}
    secondary = {"gw1": "10.77.0.234", "gw2": "10.77.1.54"}[host]
    assert eip_target(ec2) == (world.eni(host, "eth0"), secondary)


def test_takeover_moves_eip_and_every_route_then_is_idempotent(cloud_world, connect_as) -> None:
    gw2 = connect_as(cloud_world, "gw2")
    cloud.reset_calls()
    result = gw2.takeover()
    assert result.converged, result.summary()
    assert len(result.done) == 1 + len(cloud_world.private_tables)
    _assert_owner(cloud_world, "gw2")
    # The main and public tables are not ours: untouched.
    assert route_targets(cloud_world.ec2, [cloud_world.main_table]) == {cloud_world.main_table: None}
    cloud.reset_calls()
    again = gw2.takeover()
    assert again.converged and again.done == [] and again.planned == []
    assert cloud.mutating_calls() == []


def test_takeover_back_and_forth(cloud_world, connect_as) -> None:
    gw1, gw2 = connect_as(cloud_world, "gw1"), connect_as(cloud_world, "gw2")
    for side, host in ((gw2, "gw2"), (gw1, "gw1"), (gw2, "gw2")):
        assert side.takeover().converged
        _assert_owner(cloud_world, host)


def test_dry_run_changes_nothing(cloud_world, connect_as) -> None:
    gw2 = connect_as(cloud_world, "gw2")
    cloud.reset_calls()
    result = gw2.takeover(dry_run=True)
    assert result.dry_run and not result.converged and len(result.planned) == 1 + 5
    assert cloud.mutating_calls() == []
    _assert_owner(cloud_world, "gw1")


def test_missing_route_is_created_and_vip_overlay_added(cloud_world, connect_as) -> None:
    ec2 = cloud_world.ec2
    ec2.delete_route(RouteTableId=cloud_world.private_tables[0], DestinationCidrBlock="0.0.0.0/0")
    gw2 = connect_as(cloud_world, "gw2", destinations=["0.0.0.0/0", "10.240.240.240/32"])
    result = gw2.takeover()
    assert result.converged
    kinds = sorted(a.kind for a in result.done)
    assert kinds.count("create") == 1 + 5 and kinds.count("replace") == 4
    assert set(route_targets(ec2, cloud_world.private_tables, "10.240.240.240/32").values()) == {
        cloud_world.eni("gw2", "eth1")
    }


def test_route_races_switch_between_replace_and_create(cloud_world, connect_as) -> None:
    """The route vanished (or appeared) between our look and our call: AWS's error picks the other call."""
    ec2 = cloud_world.ec2
    gw2 = connect_as(cloud_world, "gw2")
    rtb = cloud_world.private_tables[0]
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
    assert gw2._route(rtb, "0.0.0.0/0", exists=True) == "create"
    assert gw2._route(cloud_world.private_tables[1], "0.0.0.0/0", exists=False) == "replace"
    assert set(route_targets(ec2, cloud_world.private_tables[:2]).values()) == {
        cloud_world.eni("gw2", "eth1")
    }


def test_throttling_and_5xx_are_retried_and_converge(cloud_world, connect_as) -> None:
    gw2 = connect_as(cloud_world, "gw2")
    with cloud.faults(
        cloud.Fault("ReplaceRoute", "RequestLimitExceeded", 503, times=3),
        cloud.Fault("AssociateAddress", "InternalError", 500, times=1),
        cloud.Fault("DescribeRouteTables", "Unavailable", 503, times=1),
    ) as armed:
        result = gw2.takeover()
    assert result.converged, result.summary()
    assert [f.hits for f in armed] == [3, 1, 1]
    _assert_owner(cloud_world, "gw2")


def test_half_moved_cloud_is_reported_then_repaired(cloud_world, connect_as, monkeypatch) -> None:
    """One route keeps failing: the takeover says which, the rest moved; once it recovers, a pass repairs."""
    from nat_gateway_ha import takeover

    monkeypatch.setattr(takeover, "REPAIR_BACKOFF", (0.01,))
    gw2 = connect_as(cloud_world, "gw2", api_max_attempts=1)
    stuck = cloud_world.private_tables[2]
    broken = cloud.inject(
        cloud.Fault(
            "ReplaceRoute", "InternalError", 500, times=None, when=lambda q: q.get("RouteTableId") == [stuck]
        )
    )
    result = gw2.takeover()
    assert not result.converged
    assert [str(a) for a in result.pending] == [f"replace:{stuck}:0.0.0.0/0"]
    assert f"replace:{stuck}:0.0.0.0/0" in result.failed
    targets = route_targets(cloud_world.ec2, cloud_world.private_tables)
    assert targets.pop(stuck) == cloud_world.eni("gw1", "eth1")
    assert set(targets.values()) == {cloud_world.eni("gw2", "eth1")}
    cloud.clear_faults()
    repaired = gw2.takeover()
    assert (
        broken.hits >= 2
        and repaired.converged
        and [str(a) for a in repaired.done] == [f"replace:{stuck}:0.0.0.0/0"]
    )
    _assert_owner(cloud_world, "gw2")


@pytest.mark.parametrize("tables", [2, 5, 50, 200])  # 2: the lab VPC has one table per private subnet
def test_takeover_scales(tables: int, connect_as, inprocess_cloud) -> None:
    """The takeover's own logic at scale (moto in-process does not throttle: pacing is tested apart)."""
    world = seed_world(test_client(None), None, private_tables=tables)
    gw2 = connect_as(world, "gw2", api_pacing=False)
    result = gw2.takeover()
    assert result.converged and len(result.done) == tables + 1
    assert set(route_targets(world.ec2, world.private_tables).values()) == {world.eni("gw2", "eth1")}


def test_routes_answered_before_the_eip_moves(cloud_world, connect_as) -> None:
    """Established flows survive only if the clients' packets reach the new master before the server's do."""
    gw2 = connect_as(cloud_world, "gw2")
    cloud.reset_calls()
    assert gw2.takeover().converged
    served = cloud.mutating_calls()
    assert served.count("ReplaceRoute") == len(cloud_world.private_tables)
    assert served[-1] == "AssociateAddress" and served.count("AssociateAddress") == 1


def test_a_claim_acts_on_a_fresh_view_without_looking_first(cloud_world, connect_as) -> None:
    gw2 = connect_as(cloud_world, "gw2", view_max_age=30)
    gw2.observe()  # what a watching backup holds
    cloud.reset_calls()
    assert gw2.takeover().converged
    served = cloud.calls()
    assert served[0] == "ReplaceRoute"
    assert served.index("DescribeRouteTables") > served.index("AssociateAddress")  # the verification
    _assert_owner(cloud_world, "gw2")


def test_without_a_fresh_view_a_claim_looks_first(cloud_world, connect_as) -> None:
    gw2 = connect_as(cloud_world, "gw2", view_max_age=0)  # never act on a view
    gw2.observe()
    cloud.reset_calls()
    assert gw2.takeover().converged
    assert cloud.calls()[0].startswith("Describe")


def test_a_view_saying_nothing_to_do_is_checked_before_it_is_believed(cloud_world, connect_as) -> None:
    """gw2's last view says it owns everything; gw1 has taken it all back since: the claim looks again."""
    gw1, gw2 = connect_as(cloud_world, "gw1"), connect_as(cloud_world, "gw2", view_max_age=30)
    assert gw2.takeover().converged  # gw2's view: everything is gw2's
    assert gw1.takeover().converged
    result = gw2.takeover()
    assert result.converged and len(result.done) == 1 + len(cloud_world.private_tables)
    _assert_owner(cloud_world, "gw2")


def test_what_changed_since_the_view_is_caught_by_the_verification(cloud_world, connect_as) -> None:
    ec2, first = cloud_world.ec2, cloud_world.private_tables[0]
    gw2 = connect_as(cloud_world, "gw2", view_max_age=30)

    def point_first_at(host: str) -> None:
        eni = cloud_world.eni(host, "eth1")
        ec2.replace_route(RouteTableId=first, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)

    point_first_at("gw2")
    gw2.observe()  # the view: the first table is already gw2's
    point_first_at("gw1")  # and then an operator points it back
    result = gw2.takeover()
    assert result.converged and result.rounds == 2
    assert f"replace:{first}:0.0.0.0/0" in [str(a) for a in result.done]
    _assert_owner(cloud_world, "gw2")
