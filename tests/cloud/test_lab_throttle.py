"""The lab's EC2 throttles as EC2 does: buckets per action, account and region; 503 RequestLimitExceeded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.metrics import Metrics
from nat_gateway_ha_lab import cloud, topology
from nat_gateway_ha_lab.throttle import SETUP_KEY, Throttle
from support import sample, scrape, test_client

TIGHT = {
    "DescribeVpcs": Limit(3, 0.01),
    "DescribeInstances:unfiltered-non-mutating": Limit(2, 0.01),
    "CreateRouteTable": Limit(1, 0.01),
}


@pytest.fixture
def tight(inprocess_cloud: None) -> Iterator[cloud.ServerHandle]:
    """A server whose DescribeVpcs bucket holds 3 tokens and barely refills (one per 100 s)."""
    handle = cloud.serve("127.0.0.1", 0, throttle=Throttle(TIGHT))
    yield handle
    handle.stop()


def _client(url: str, region: str = topology.REGION, attempts: int = 1, key: str = "testing") -> Any:
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def _refused(call: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call()
    return err.value.response


def test_past_the_burst_ec2_answers_request_limit_exceeded_503(tight: cloud.ServerHandle) -> None:
    ec2 = _client(tight.url)
    for _ in range(3):
        ec2.describe_vpcs()
    answer = _refused(ec2.describe_vpcs)
    assert answer["Error"] == {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."}
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert tight.throttle.refused["DescribeVpcs"] == 1 and tight.throttle.admitted["DescribeVpcs"] == 3
    # Other actions have buckets of their own.
    ec2.describe_subnets()


def test_botocore_counts_it_as_throttling_and_retries(tight: cloud.ServerHandle) -> None:
    ec2 = _client(tight.url, attempts=3)
    for _ in range(3):
        ec2.describe_vpcs()
    answer = _refused(ec2.describe_vpcs)
    assert answer["Error"]["Code"] == "RequestLimitExceeded"
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2
    assert tight.throttle.refused["DescribeVpcs"] == 3


def test_one_bucket_set_per_account_and_region_shared_by_every_caller(tight: cloud.ServerHandle) -> None:
    first, second = _client(tight.url, key="AKIAFIRST"), _client(tight.url, key="AKIASECOND")
    first.describe_vpcs()
    second.describe_vpcs()  # another caller of the same (moto's default) account
    first.describe_vpcs()
    _refused(second.describe_vpcs)
    elsewhere = _client(tight.url, region="eu-central-1")
    elsewhere.describe_vpcs()  # another region: buckets of its own


def test_unfiltered_calls_draw_from_the_smaller_bucket(tight: cloud.ServerHandle) -> None:
    ec2 = _client(tight.url)
    ec2.describe_instances()
    ec2.describe_instances()
    _refused(ec2.describe_instances)
    ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    ec2.describe_instances(MaxResults=5)


def test_refused_calls_are_not_served(tight: cloud.ServerHandle) -> None:
    ec2 = _client(tight.url)
    rtb_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_route_table(VpcId=rtb_vpc)
    cloud.reset_calls()
    _refused(lambda: ec2.create_route_table(VpcId=rtb_vpc))
    assert cloud.calls() == []  # moto never saw it
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [rtb_vpc]}])["RouteTables"]
    assert len(tables) == 2  # the main table and the one admitted


def test_the_labs_own_setup_key_is_never_throttled(tight: cloud.ServerHandle) -> None:
    setup, caller = _client(tight.url, key=SETUP_KEY), _client(tight.url)
    for _ in range(10):
        setup.describe_vpcs()
    for _ in range(3):
        caller.describe_vpcs()  # the set-up calls spent nothing
    _refused(caller.describe_vpcs)


def test_pause_and_refill(tight: cloud.ServerHandle) -> None:
    ec2 = _client(tight.url)
    with tight.throttle.paused():
        for _ in range(10):
            ec2.describe_vpcs()
    for _ in range(3):
        ec2.describe_vpcs()  # full again after the pause
    _refused(ec2.describe_vpcs)
    tight.reset()
    ec2.describe_vpcs()


def test_on_by_default_and_off_by_env(monkeypatch: pytest.MonkeyPatch, inprocess_cloud: None) -> None:
    monkeypatch.delenv("NATLAB_THROTTLE", raising=False)
    on = cloud.serve("127.0.0.1", 0)
    monkeypatch.setenv("NATLAB_THROTTLE", "0")
    off = cloud.serve("127.0.0.1", 0)
    try:
        assert on.throttle.enabled and not off.throttle.enabled
        ec2 = test_client(off.url)
        vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        for _ in range(60):  # past the 50-token mutating burst
            ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k", "Value": "v"}])
            ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "k"}])
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    finally:
        on.stop()
        off.stop()


def test_the_agents_metrics_count_every_throttled_attempt(tight: cloud.ServerHandle) -> None:
    m = Metrics("p", "gw1", lambda: None)
    ec2 = _client(tight.url, attempts=3)
    m.attach(ec2)
    for _ in range(3):
        ec2.describe_vpcs()
    _refused(ec2.describe_vpcs)  # three attempts, each refused
    got = scrape(m.text())
    assert sample(got, "natgw_ha_cloud_calls_total", api="DescribeVpcs", code="ok") == 3
    assert sample(got, "natgw_ha_cloud_calls_total", api="DescribeVpcs", code="RequestLimitExceeded") == 3
