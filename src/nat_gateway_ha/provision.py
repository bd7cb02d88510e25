"""What the Ansible module does, in the package: discover a gateway's AWS side, fix src/dst check, claim.

Claiming goes through the same `Cloud.takeover` as the agent, so a planned switchover and a failover
cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from botocore.exceptions import BotoCoreError

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.resolve import Target, source_dest_check
from nat_gateway_ha.startup import connect
from nat_gateway_ha.takeover import Cloud


def predicted_ownership(t: Target) -> dict[str, Any]:
    """What `Ownership.owner_summary` will say once `t` owns the pair (check mode's "after")."""
    return {
        "eips": {
            e.allocation_id: f"{t.wan_eni_id}/{e.private_ip}"
            for e in sorted(t.eips, key=lambda e: e.allocation_id)
        },
        "routes": {f"{rtb}:{d}": t.lan_eni_id for rtb in sorted(t.route_tables) for d in t.destinations},
        "owner": True,
    }


class ApiUnreachable(RuntimeError):
    """This gateway cannot call EC2 over its own path: at failover it could move nothing."""


def connect_or_explain(cfg: AgentConfig) -> Cloud:
    """`connect` from the gateway itself, so a converge proves the path a takeover will use: a backup's own
    traffic leaves from its primary WAN address, which reaches EC2 only through an interface endpoint or a
    public address of its own (the master's EIP sits on another address)."""
    try:
        return connect(cfg)
    except BotoCoreError as err:
        where = cfg.endpoint_url or f"EC2's regional endpoint in {cfg.region or 'this region'}"
        raise ApiUnreachable(
            f"pair {cfg.pair} host {cfg.host}: the EC2 API ({where}) does not answer from this gateway "
            f"({err}); it could not take the pair over. Give every gateway a path of its own: an EC2 "
            "interface VPC endpoint with private DNS in the gateways' VPC, or a public IPv4 address on each "
            "gateway's primary WAN address (provision.yml: api_path), and allow HTTPS out in its security "
            "group"
        ) from err


class InsecureMetadata(RuntimeError):
    """The instance answers IMDSv1 or hands tokens beyond itself: its role's credentials can leak."""


def metadata_options(ec2: Any, instance_id: str) -> dict[str, Any]:
    """The instance's IMDS options: IMDSv2 required and hop limit 1 keep its credentials on the instance
    (IMDSv1 answers any SSRF; a higher hop limit answers containers and forwarded packets)."""
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    opts = instance.get("MetadataOptions", {})
    return {"http_tokens": opts.get("HttpTokens"), "hop_limit": opts.get("HttpPutResponseHopLimit")}


def check_metadata(cfg: AgentConfig, instance_id: str, opts: dict[str, Any]) -> None:
    if opts["http_tokens"] != "required" or opts["hop_limit"] != 1:
        raise InsecureMetadata(
            f"pair {cfg.pair} host {cfg.host}: instance {instance_id} has IMDS tokens {opts['http_tokens']} "
            f"and hop limit {opts['hop_limit']}, want required and 1: "
            f"aws ec2 modify-instance-metadata-options --instance-id {instance_id} "
            "--http-tokens required --http-put-response-hop-limit 1"
        )


def ensure(
    cfg: AgentConfig,
    owner: bool = False,
    want_source_dest_check: bool | None = None,
    check_mode: bool = False,
    require_imdsv2: bool = True,
) -> dict[str, Any]:
    """Discover; make src/dst check and ownership as asked (unless check_mode); report before and after."""
    cloud = connect_or_explain(cfg)
    try:
        t = cloud.target
        imds = metadata_options(cloud.ec2, t.instance_id)
        if require_imdsv2:
            check_metadata(cfg, t.instance_id, imds)
        before = cloud.observe().owner_summary(t)
        checks = source_dest_check(cloud.ec2, t)
        changed = False
        sdc_changes = []
        if want_source_dest_check is not None:
            for eni, on in sorted(checks.items()):
                if on != want_source_dest_check:
                    sdc_changes.append(eni)
                    changed = True
                    if not check_mode:
                        cloud.ec2.modify_network_interface_attribute(
                            NetworkInterfaceId=eni, SourceDestCheck={"Value": want_source_dest_check}
                        )
        takeover = None
        if owner:
            result = cloud.takeover(dry_run=check_mode)
            takeover = result.summary()
            changed = changed or bool(result.planned)
            if not check_mode and not result.converged:
                raise RuntimeError(
                    f"pair {cfg.pair} host {cfg.host}: takeover did not converge: "
                    f"pending {[str(a) for a in result.pending]} failed {result.failed}"
                )
        after = before if check_mode or not changed else cloud.observe().owner_summary(t)
        if check_mode and owner:
            after = predicted_ownership(cloud.target)
        return {
            "changed": changed,
            "target": asdict(t),
            "source_dest_check": source_dest_check(cloud.ec2, t)
            if sdc_changes and not check_mode
            else checks,
            "source_dest_check_changed": sdc_changes,
            "owner": bool(after["owner"]),
            "ownership_before": before,
            "ownership_after": after,
            "takeover": takeover,
            "metadata_options": imds,
            "region": cloud.ec2.meta.region_name,
        }
    finally:
        cloud.close()
