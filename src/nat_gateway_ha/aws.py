"""The one place boto3 clients are made: short timeouts and standard retries, as a failover path needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.pacing import Pacer

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def pacer(cfg: AgentConfig) -> Pacer | None:
    """The agent's EC2 request pacing (None when `api_pacing` is off)."""
    if not cfg.api_pacing:
        return None
    limits = {action: Limit(lim.capacity, lim.refill) for action, lim in cfg.api_limits.items()}
    return Pacer(limits, cfg.api_share)


def ec2_client(cfg: AgentConfig, region: str, paced_by: Pacer | None = None) -> EC2Client:
    """An EC2 client for the agent; botocore's standard mode retries throttling and 5xx with jitter, and
    `paced_by` (if given) makes every attempt wait for its EC2 request token first."""
    config = Config(
        region_name=region,
        connect_timeout=cfg.api_connect_timeout,
        read_timeout=cfg.api_read_timeout,
        retries={"mode": "standard", "total_max_attempts": cfg.api_max_attempts},
        max_pool_connections=max(10, cfg.max_concurrency + 4),
        tcp_keepalive=True,
    )
    # boto3's default session caches the loaded service model, so a second client costs milliseconds.
    client = boto3.client("ec2", endpoint_url=cfg.endpoint_url, config=config)
    if paced_by is not None:
        paced_by.attach(client)
    return client
