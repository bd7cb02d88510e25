"""`natgw-ha-agent`: run the agent, print its status or history, claim ownership by hand, print the IAM
policy."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from nat_gateway_ha import history, iam, log, status
from nat_gateway_ha.aws import ec2_client
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent
from nat_gateway_ha.health import make_health
from nat_gateway_ha.imds import ImdsError
from nat_gateway_ha.keepalived import initial_state, open_fifo
from nat_gateway_ha.resolve import ResolveError
from nat_gateway_ha.startup import connect, connect_until_ready
from nat_gateway_ha.states import VrrpState

DEFAULT_CONFIG = Path("/etc/nat-gateway-ha/agent.json")


def _run(cfg: AgentConfig, dry_run: bool) -> int:
    agents: list[Agent] = []
    # Health first: keepalived gets a verdict even while IMDS or EC2 are still out of reach.
    health = make_health(cfg, lambda: bool(agents) and agents[0].serves_pair())
    health.start()
    # The FIFO before EC2: keepalived starts right after us and would otherwise make it first, as its
    # script user, which this sandboxed root cannot open (a failed start and a restart at every boot).
    # Lines keepalived writes meanwhile wait in the pipe.
    fifo = open_fifo(cfg.fifo_path)
    cloud = connect_until_ready(cfg)
    agent = Agent(cfg, cloud, dry_run=dry_run, state=initial_state(cfg), health=health)
    agents.append(agent)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    try:
        agent.run(fifo)
    finally:
        cloud.close()
        os.close(fifo)
    return 0


def _claim(cfg: AgentConfig, dry_run: bool) -> int:
    cloud = connect(cfg)
    result = cloud.takeover(dry_run=dry_run)
    cloud.close()
    print(json.dumps(result.summary(), indent=2))
    return 0 if result.converged or dry_run else 2


def _state_dir(cfg_path: Path) -> Path:
    return AgentConfig.load(cfg_path).state_dir if cfg_path.exists() else Path("/var/lib/nat-gateway-ha")


def _history(cfg_path: Path, as_json: bool, last: int) -> int:
    events = history.read(_state_dir(cfg_path), last=last)
    print(json.dumps(events, indent=2) if as_json else history.table(events))
    return 0


def _status(cfg_path: Path, as_json: bool) -> int:
    """What the live endpoint serves (`/status`, `/healthz`); status.json when the agent does not answer."""
    cfg = AgentConfig.load(cfg_path) if cfg_path.exists() else None
    live = healthz = None
    if cfg is not None and cfg.listen_address is not None and cfg.listen_port:
        live = status.fetch(str(cfg.listen_address), cfg.listen_port, "/status")
        healthz = status.fetch(str(cfg.listen_address), cfg.listen_port, "/healthz")
    state_dir = cfg.state_dir if cfg is not None else _state_dir(cfg_path)
    data: dict[str, Any] = (
        live
        or status.read(state_dir)
        or {
            "state": VrrpState.UNKNOWN,
            "error": f"no status in {state_dir}",
        }
    )
    if as_json:
        print(json.dumps(data | ({"healthz": healthz} if healthz else {}), indent=2, sort_keys=True))
    elif "error" in data:
        print(f"natgw-ha-agent status: {data['error']}", file=sys.stderr)
    else:
        print(status.render(data, healthz))
        if live is None:
            written = data.get("updated_at_unix")
            when = f", written {time.time() - written:.0f} s ago" if written else ""
            print(f"(the agent does not answer: this is {state_dir / status.FILE}{when})")
    return 0 if "error" not in data else 1


def _iam_policy(cfg: AgentConfig, args: argparse.Namespace) -> int:
    """Print the pair's policies; ids come from the options, and from EC2 as well with --resolve."""
    account, vpc_id = args.account, args.vpc_id
    tables, wan, lan, allocations = args.route_table_id, args.eni_id, args.lan_eni_id, args.allocation_id
    region = args.region or cfg.region
    try:
        if args.resolve:
            found = iam.discover(cfg, ec2_client(cfg, iam.check_region(region)), vpc_id)
            if account and account != found.account:
                raise iam.PolicyError(f"--account {account}, but the gateways' ENIs are {found.account}'s")
            account, vpc_id = found.account, found.vpc_id
            tables = [*tables, *found.route_table_ids]
            wan, lan = [*wan, *found.wan_eni_ids], [*lan, *found.lan_eni_ids]
            known = {b.eip.allocation_id for b in cfg.eips}
            allocations = [*allocations, *(a for a in found.allocation_ids if a not in known)]
        out: dict[str, Any] = {
            "policy": iam.policy(
                cfg,
                account=account,
                region=region,
                vpc_id=vpc_id,
                route_table_ids=sorted(set(tables)),
                eni_ids=sorted(set(wan)),
                allocation_ids=sorted(set(allocations)),
            ),
            "security_group_ingress": iam.security_group_rules(args.peer),
        }
        # Only if the gateways disable their own source/dest check (nat_gateway_ha_cloud run by the role);
        # leave it out when provisioning (Terraform, CloudFormation) already did.
        if lan:
            out["provisioning_policy"] = iam.provisioning_policy(
                account=account, region=region, vpc_id=vpc_id, eni_ids=sorted({*wan, *lan})
            )
        else:
            log.warning("provisioning_policy_skipped", reason="no LAN ENI: give --lan-eni-id or --resolve")
    except iam.PolicyError as err:
        print(f"natgw-ha-agent iam-policy: {err}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as err:
        log.error("agent_failed", command=args.command, error=str(err).replace("\n", "; "))
        return 1
    print(json.dumps(out, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="natgw-ha-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "serve keepalived's notify FIFO"),
        ("claim", "make this gateway the owner now"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
        p.add_argument(
            "--dry-run", action="store_true", help="observe and log what would change; change nothing"
        )
    p = sub.add_parser("status", help="print what the agent's endpoint serves (/status, /healthz)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--json", action="store_true", help="the status (and /healthz) as JSON")
    p = sub.add_parser("history", help="print the transitions, takeovers and repairs, oldest first")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--json", action="store_true", help="the events as JSON instead of a table")
    p.add_argument("--last", type=int, default=20, help="how many of the latest events (0: all)")
    p = sub.add_parser(
        "iam-policy", help="print the least-privilege IAM policy and VRRP security-group rules"
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--account", help="the pair's 12-digit AWS account (with --resolve: its ENIs' owner)")
    p.add_argument("--region", help="default: the config's region")
    p.add_argument("--vpc-id", help="adds an ec2:Vpc condition (needs --account)")
    p.add_argument("--route-table-id", action="append", default=[], help="a managed route table (repeat)")
    p.add_argument(
        "--eni-id",
        "--wan-eni-id",
        dest="eni_id",
        action="append",
        default=[],
        help="each gateway's WAN ENI, where the EIPs go (repeat)",
    )
    p.add_argument(
        "--lan-eni-id",
        action="append",
        default=[],
        help="each gateway's LAN ENI, for the provisioning policy (repeat)",
    )
    p.add_argument(
        "--allocation-id",
        action="append",
        default=[],
        help="the allocation of an EIP the config names by public_ip or name (repeat)",
    )
    p.add_argument(
        "--resolve",
        action="store_true",
        help="find the ids with EC2 Describe calls (the caller's credentials, the config's region/endpoint)",
    )
    p.add_argument("--peer", action="append", default=[], help="a peer's VRRP source address (repeat)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    log.setup()
    try:
        if args.command == "status":
            return _status(args.config, args.json)
        if args.command == "history":
            return _history(args.config, args.json, args.last)
        cfg = AgentConfig.load(args.config)
        if args.command == "iam-policy":
            return _iam_policy(cfg, args)
        if args.command == "claim":
            return _claim(cfg, args.dry_run)
        return _run(cfg, args.dry_run)
    except (ValidationError, ResolveError, ImdsError, OSError) as err:
        log.error("agent_failed", command=args.command, error=str(err).replace("\n", "; "))
        return 1


if __name__ == "__main__":
    sys.exit(main())
