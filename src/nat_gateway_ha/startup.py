"""The agent's start-up, as library code: IMDS once, EC2 resolution once, then a warm `Cloud`.

Used by the agent's daemon, by `natgw-ha-agent claim`, by the Ansible module and by the benchmarks, so they
all see the gateway the same way.
"""

from __future__ import annotations

import time

from botocore.exceptions import BotoCoreError, ClientError

from nat_gateway_ha import log
from nat_gateway_ha.aws import ec2_client, pacer
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.imds import ImdsClient, ImdsError
from nat_gateway_ha.resolve import ResolveError, resolve, source_dest_check
from nat_gateway_ha.takeover import Cloud

RETRY_MAX = 5.0  # seconds between start-up attempts, at most


def connect(cfg: AgentConfig) -> Cloud:
    """IMDS once, EC2 resolution once; then a warm Cloud ready for takeovers."""
    identity = ImdsClient(cfg.imds_url, timeout=cfg.api_connect_timeout).identity()
    paced_by = pacer(cfg)
    ec2 = ec2_client(cfg, cfg.region or identity.region, paced_by)
    target = resolve(cfg, identity, ec2)
    checks = source_dest_check(ec2, target)
    for eni, on in sorted(checks.items()):
        if on:
            log.error(
                "source_dest_check_enabled",
                eni=eni,
                hint="forwarded traffic is dropped; run nat_gateway_ha_cloud with source_dest_check=false",
            )
    log.info(
        "resolved",
        instance=target.instance_id,
        wan_eni=target.wan_eni_id,
        lan_eni=target.lan_eni_id,
        eips=",".join(e.allocation_id for e in target.eips),
        route_tables=len(target.route_tables),
    )
    return Cloud(
        ec2, target, cfg.max_concurrency, paced_by, cfg.eip_timing, cfg.view_max_age, cfg.claim_settle
    )


def connect_until_ready(cfg: AgentConfig) -> Cloud:
    """`connect`, retried with backoff: at boot IMDS or the EC2 API may answer only a little later."""
    delay = 0.5
    while True:
        try:
            cloud = connect(cfg)
            cloud.observe()  # warms the connection pool, so the first takeover pays no TCP set-up
            return cloud
        except (ImdsError, ResolveError, ClientError, BotoCoreError, OSError) as err:
            log.error("start_failed", error=str(err).replace("\n", "; "), retry_in=delay)
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX)
