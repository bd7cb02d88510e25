"""The agent paces to EC2's buckets: against the lab's throttled EC2, a paced takeover larger than the burst
meets no RequestLimitExceeded, an unpaced one does; the EIP moves after the first wave; order is kept.

Buckets here are the documented ones scaled down (10 at once, 20 a second), so the tests stay short; the
agent is told the same figures, as an operator would after an AWS Support increase.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.resolve import ResolveError
from nat_gateway_ha_lab import cloud
from nat_gateway_ha_lab.throttle import Throttle
from support import World, eip_target, route_targets, seed_world, test_client

TABLES = 30
SMALL = {api: Limit(10, 20) for api in ("ReplaceRoute", "CreateRoute", "AssociateAddress")}


def _limits(limits: dict[str, Limit]) -> dict[str, dict[str, float]]:
    return {api: {"capacity": lim.capacity, "refill": lim.refill} for api, lim in limits.items()}


@pytest.fixture
def throttled(inprocess_cloud: None) -> Iterator[cloud.ServerHandle]:
    handle = cloud.serve("127.0.0.1", 0, throttle=Throttle(SMALL))
    yield handle
    handle.stop()


def _world(server: cloud.ServerHandle, tables: int) -> World:
    with server.throttle.paused():
        return seed_world(test_client(server.url), server.url, private_tables=tables)


def _throttles_seen(c: Any) -> list[str]:
    """RequestLimitExceeded answers that reach the agent's client (before botocore retries them)."""
    seen: list[str] = []

    def count(response: Any = None, event_name: str = "", **_: Any) -> None:
        code = (response[1] or {}).get("Error", {}).get("Code") if response is not None else None
        if code == "RequestLimitExceeded":
            seen.append(event_name.rsplit(".", 1)[-1])

    c.ec2.meta.events.register("needs-retry.ec2", count)
    return seen


def _owner(world: World, host: str) -> bool:
    routes = set(route_targets(world.ec2, world.private_tables).values())
    return routes == {world.eni(host, "eth1")} and eip_target(world.ec2)[0] == world.eni(host, "eth0")


def test_paced_takeover_over_the_burst_meets_no_throttling(throttled, connect_as) -> None:
    world = _world(throttled, TABLES)
    gw2 = connect_as(world, "gw2", api_limits=_limits(SMALL))
    seen = _throttles_seen(gw2)
    result = gw2.takeover()
    assert result.converged, result.summary()
    assert len(result.done) == TABLES + 1 and _owner(world, "gw2")
    assert seen == [] and result.throttled == 0 and sum(throttled.throttle.refused.values()) == 0
    assert result.paced > 0  # it did wait for tokens: 30 routes do not fit a burst of 10
    assert throttled.throttle.admitted["ReplaceRoute"] == TABLES


def test_unpaced_burst_over_the_bucket_is_throttled(throttled, connect_as) -> None:
    world = _world(throttled, TABLES)
    gw2 = connect_as(world, "gw2", api_pacing=False)
    seen = _throttles_seen(gw2)
    gw2.takeover()
    assert "ReplaceRoute" in seen
    assert throttled.throttle.refused["ReplaceRoute"] == seen.count("ReplaceRoute") > 0


def test_a_throttle_despite_pacing_drains_the_bucket_and_is_retried(throttled, connect_as) -> None:
    """Another caller of the account spent the tokens: the agent's bucket learns it and waits for refill."""
    world = _world(throttled, 3)
    slow = {"ReplaceRoute": {"capacity": 10, "refill": 2}}
    gw2 = connect_as(world, "gw2", api_limits=slow, max_concurrency=1)
    with cloud.faults(cloud.Fault("ReplaceRoute", "RequestLimitExceeded", 503, times=1)):
        result = gw2.takeover()
    assert result.converged and result.throttled == 1
    # 3 routes and a retry fit a burst of 10; drained, the bucket has refilled at most 2 tokens during
    # botocore's first backoff (under 1 s), so the calls after it had to wait.
    assert result.paced > 0


@pytest.mark.parametrize(("timing", "eip_at"), [("after_first_wave", 3), ("after_all_routes", 6)])
def test_eip_moves_once_the_first_wave_answered(throttled, connect_as, timing: str, eip_at: int) -> None:
    """Bucket of 3, one worker: the EIP goes after 3 routes, not after all 6 (or after all, if told so)."""
    world = _world(throttled, 6)
    three = {api: {"capacity": 3, "refill": 4} for api in ("ReplaceRoute", "CreateRoute")}
    gw2 = connect_as(world, "gw2", api_limits=three, max_concurrency=1, eip_timing=timing)
    cloud.reset_calls()
    assert gw2.takeover().converged
    served = cloud.mutating_calls()
    assert served.index("AssociateAddress") == eip_at and served.count("ReplaceRoute") == 6


def test_with_routes_the_eip_goes_while_the_first_route_is_unanswered(throttled, connect_as) -> None:
    """`with_routes` (the default with flow sync): routes and EIP in one round trip, no wave to wait for."""
    world = _world(throttled, 2)
    gw2 = connect_as(world, "gw2", max_concurrency=1, eip_timing="with_routes")
    eip_sent = threading.Event()
    route_saw_eip: list[bool] = []
    gw2.ec2.meta.events.register("before-call.ec2.AssociateAddress", lambda **_: eip_sent.set())
    gw2.ec2.meta.events.register(
        "before-call.ec2.ReplaceRoute", lambda **_: route_saw_eip.append(eip_sent.wait(5))
    )
    result = gw2.takeover()
    assert result.converged and route_saw_eip[0] is True
    assert 0 < result.moved < result.duration  # switched when EC2 acknowledged, verified after


def test_routes_move_in_the_configured_order(throttled, connect_as) -> None:
    world = _world(throttled, 5)
    first = [world.private_tables[3], world.private_tables[1]]
    selection = {"tags": {"Network": "private"}, "first": first}
    gw2 = connect_as(world, "gw2", route_tables=selection, max_concurrency=1)
    assert list(gw2.target.route_tables[:2]) == first
    order: list[str] = []
    gw2.ec2.meta.events.register(
        "before-call.ec2.ReplaceRoute", lambda params, **_: order.append(params["body"]["RouteTableId"])
    )
    assert gw2.takeover().converged
    assert order[:2] == first and sorted(order[2:]) == order[2:]


def test_a_first_table_outside_the_selection_is_refused(throttled, connect_as) -> None:
    world = _world(throttled, 2)
    selection = {"tags": {"Network": "private"}, "first": [world.public_table]}
    with pytest.raises(ResolveError, match=r"route_tables\.first"):
        connect_as(world, "gw2", route_tables=selection)


def test_progress_counts_up_to_everything_moved(throttled, connect_as) -> None:
    world = _world(throttled, 12)
    gw2 = connect_as(world, "gw2", api_limits=_limits(SMALL))
    seen: list[dict[str, int]] = []
    result = gw2.takeover(on_progress=lambda r: seen.append(r.progress()))
    moved = [p["moved"] for p in seen]
    assert moved == sorted(moved) and moved[-1] == 13 and {p["of"] for p in seen} == {13}
    assert result.progress() == {"moved": 13, "of": 13, "failed": 0}
