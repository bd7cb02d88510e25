"""`natgw-ha-agent`: run the agent, print its status, claim ownership by hand, print the IAM policy."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nat_gateway_ha import iam, log, status
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent, make_health
from nat_gateway_ha.imds import ImdsError
from nat_gateway_ha.keepalived import initial_state
from nat_gateway_ha.resolve import ResolveError
from nat_gateway_ha.startup import connect, connect_until_ready

DEFAULT_CONFIG = Path("/etc/nat-gateway-ha/agent.json")


def _run(cfg: AgentConfig, dry_run: bool) -> int:
    agents: list[Agent] = []
    # Health first: keepalived gets a verdict even while IMDS or EC2 are still out of reach.
    health = make_health(cfg, lambda: bool(agents) and agents[0].state == "MASTER")
    health.start()
    cloud = connect_until_ready(cfg)
    agent = Agent(cfg, cloud, dry_run=dry_run, state=initial_state(cfg), health=health)
    agents.append(agent)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    agent.run()
    cloud.close()
    return 0


def _claim(cfg: AgentConfig, dry_run: bool) -> int:
    cloud = connect(cfg)
    result = cloud.takeover(dry_run=dry_run)
    cloud.close()
    print(json.dumps(result.summary(), indent=2))
    return 0 if result.converged or dry_run else 2


def _status(cfg_path: Path) -> int:
    state_dir = AgentConfig.load(cfg_path).state_dir if cfg_path.exists() else Path("/var/lib/nat-gateway-ha")
    data: dict[str, Any] = status.read(state_dir) or {
        "state": "UNKNOWN",
        "error": f"no status in {state_dir}",
    }
    print(json.dumps(data, indent=2, sort_keys=True))
    return 0 if "error" not in data else 1


def main(argv: list[str] | None = None) -> int:
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
    p = sub.add_parser("status", help="print the agent's state as JSON")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p = sub.add_parser(
        "iam-policy", help="print the least-privilege IAM policy and VRRP security-group rules"
    )
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--account", default="*")
    p.add_argument("--vpc-id")
    p.add_argument("--peer", action="append", default=[], help="a peer's VRRP source address (repeat)")
    args = parser.parse_args(argv)
    log.setup()
    try:
        if args.command == "status":
            return _status(args.config)
        cfg = AgentConfig.load(args.config)
        if args.command == "iam-policy":
            out = {
                "policy": iam.policy(cfg, account=args.account, vpc_id=args.vpc_id),
                "security_group_ingress": iam.security_group_rules(args.peer),
                # Only if the gateways disable their own source/dest check (nat_gateway_ha_cloud run by the
                # role); leave it out when provisioning (Terraform, CloudFormation) already did.
                "provisioning_policy": iam.provisioning_policy(
                    account=args.account, region=cfg.region or "*", vpc_id=args.vpc_id
                ),
            }
            print(json.dumps(out, indent=2))
            return 0
        if args.command == "claim":
            return _claim(cfg, args.dry_run)
        return _run(cfg, args.dry_run)
    except (ValidationError, ResolveError, ImdsError, OSError) as err:
        log.error("agent_failed", command=args.command, error=str(err).replace("\n", "; "))
        return 1


if __name__ == "__main__":
    sys.exit(main())
