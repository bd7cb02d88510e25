"""The token bucket both sides of EC2's throttling use (on a clock the test moves); the documented table."""

from __future__ import annotations

import pytest

from nat_gateway_ha import ec2_limits
from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.tokenbucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_burst_then_refill_is_refused_past_the_capacity() -> None:
    clock = Clock()
    b = TokenBucket(3, 2, clock)
    assert [b.try_take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.49
    assert not b.try_take()
    clock.now += 0.01  # one token after 1/refill seconds
    assert b.try_take() and not b.try_take()
    clock.now += 60
    assert b.available() == 3  # never more than the capacity


def test_reservations_wait_their_turn_in_order() -> None:
    """A burst of N costs (N - capacity) / refill: the first `capacity` go now, the rest one per 1/refill."""
    clock = Clock()
    b = TokenBucket(50, 5, clock)
    waits = [b.reserve() for _ in range(53)]
    assert waits[:50] == [0.0] * 50
    assert waits[50:] == pytest.approx([0.2, 0.4, 0.6])
    assert b.available() == pytest.approx(-3)


def test_paced_taker_is_never_refused_by_an_enforcer_with_the_same_bucket() -> None:
    clock = Clock()
    server, client = TokenBucket(50, 5, clock), TokenBucket(50, 5, clock)
    refused = 0
    for _ in range(200):
        client.take(clock.sleep)
        refused += not server.try_take()
    assert refused == 0
    assert clock.now - 100.0 == pytest.approx((200 - 50) / 5)


def test_drain_forgets_the_tokens_we_thought_were_left() -> None:
    clock = Clock()
    b = TokenBucket(10, 5, clock)
    b.drain()
    assert b.reserve() == pytest.approx(0.2)
    b.fill()
    assert b.available() == 10


@pytest.mark.parametrize("bad", [(0, 1), (5, 0)])
def test_a_bucket_that_never_gives_a_token_is_refused(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(*bad)


def test_documented_buckets() -> None:
    """The figures of "Request throttling for the Amazon EC2 API" for the calls the agent makes."""
    for action in ("ReplaceRoute", "CreateRoute", "AssociateAddress", "DisassociateAddress"):
        assert ec2_limits.limit(action) == Limit(50, 5), action
    for action in ("DescribeRouteTables", "DescribeAddresses"):
        assert ec2_limits.limit(action) == Limit(100, 20), action
    assert ec2_limits.limit("DescribeNetworkInterfaces", narrow=False) == Limit(50, 10)
    assert ec2_limits.limit("DescribeNetworkInterfaces", narrow=True) == Limit(100, 20)
    assert ec2_limits.limit("ModifyNetworkInterfaceAttribute") == Limit(100, 5)
    assert ec2_limits.limit("RunInstances") == Limit(5, 2)
    assert ec2_limits.limit("AuthorizeSecurityGroupIngress") == Limit(50, 5)


def test_buckets_are_per_action_and_unfiltered_calls_have_their_own() -> None:
    assert ec2_limits.bucket_key("ReplaceRoute") != ec2_limits.bucket_key("CreateRoute")
    plain = ec2_limits.bucket_key("DescribeInstances", ec2_limits.narrowed(["Action", "Version"]))
    filtered = ec2_limits.bucket_key("DescribeInstances", ec2_limits.narrowed(["Filter.1.Name"]))
    paginated = ec2_limits.bucket_key("DescribeInstances", ec2_limits.narrowed(["MaxResults"]))
    assert plain != filtered == paginated == "DescribeInstances"
    raised = {"ReplaceRoute": Limit(150, 15)}
    assert ec2_limits.limit("ReplaceRoute", overrides=raised) == Limit(150, 15)
    assert ec2_limits.limit("CreateRoute", overrides=raised) == Limit(50, 5)
