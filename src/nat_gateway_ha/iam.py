"""Least-privilege IAM policy and security-group rules for one pair, from its agent config.

Only the actions the agent and the module call. Mutating actions are scoped: route tables by ARN (explicit
ids) or by the selection's tags, EIP allocations by ARN, ENIs by the pair's VPC. Describe* calls cannot be
scoped by resource in EC2, so they alone use "*".
"""

from __future__ import annotations

from typing import Any

from nat_gateway_ha.config import AgentConfig

DESCRIBE_ACTIONS = [
    "ec2:DescribeAddresses",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
]


def policy(
    cfg: AgentConfig, account: str = "*", region: str | None = None, vpc_id: str | None = None
) -> dict[str, Any]:
    """The IAM policy document for a pair's instance role (both gateways use the same one)."""
    reg = region or cfg.region or "*"
    arn = f"arn:aws:ec2:{reg}:{account}"
    statements: list[dict[str, Any]] = [
        {"Sid": "Discover", "Effect": "Allow", "Action": DESCRIBE_ACTIONS, "Resource": "*"},
    ]
    sel = cfg.route_tables
    route_actions = ["ec2:CreateRoute", "ec2:ReplaceRoute"]
    if sel.ids:
        statements.append(
            {
                "Sid": "RouteTablesById",
                "Effect": "Allow",
                "Action": route_actions,
                "Resource": [f"{arn}:route-table/{i}" for i in sel.ids],
            }
        )
    if sel.tags or sel.subnet_ids:
        stmt: dict[str, Any] = {
            "Sid": "RouteTablesByTag" if sel.tags else "RouteTablesInVpc",
            "Effect": "Allow",
            "Action": route_actions,
            "Resource": f"{arn}:route-table/*",
        }
        if sel.tags:
            stmt["Condition"] = {
                "StringEquals": {f"aws:ResourceTag/{k}": v for k, v in sorted(sel.tags.items())},
            }
        else:
            # Tables found through subnets have no tag to match: scope them by the pair's VPC.
            stmt["Condition"] = {"StringEquals": {"ec2:Vpc": f"{arn}:vpc/{vpc_id or '*'}"}}
        statements.append(stmt)
    allocations = [b.eip.allocation_id for b in cfg.eips if b.eip.allocation_id]
    statements.append(
        {
            "Sid": "ElasticIps",
            "Effect": "Allow",
            "Action": ["ec2:AssociateAddress"],
            "Resource": [f"{arn}:elastic-ip/{a}" for a in allocations] or f"{arn}:elastic-ip/*",
        }
    )
    # AssociateAddress is also authorised against the target ENI; keep it to the pair's VPC.
    statements.append(_vpc_eni_statement("OwnNetworkInterfaces", "ec2:AssociateAddress", arn, vpc_id))
    return {"Version": "2012-10-17", "Statement": statements}


def provisioning_policy(account: str = "*", region: str = "*", vpc_id: str | None = None) -> dict[str, Any]:
    """Extra right for whoever provisions (the module with source_dest_check: false), not for the agent."""
    arn = f"arn:aws:ec2:{region}:{account}"
    stmt = _vpc_eni_statement("DisableSourceDestCheck", "ec2:ModifyNetworkInterfaceAttribute", arn, vpc_id)
    return {"Version": "2012-10-17", "Statement": [stmt]}


def _vpc_eni_statement(sid: str, action: str, arn: str, vpc_id: str | None) -> dict[str, Any]:
    """One action on network interfaces, kept to the pair's VPC when its id is known."""
    stmt: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": [action],
        "Resource": f"{arn}:network-interface/*",
    }
    if vpc_id:
        stmt["Condition"] = {"StringEquals": {"ec2:Vpc": f"{arn}:vpc/{vpc_id}"}}
    return stmt


def security_group_rules(peers: list[str]) -> list[dict[str, Any]]:
    """VRRP (IP protocol 112) between the peers only, both ways, in EC2 IpPermissions form."""
    return [
        {
            "IpProtocol": "112",
            "IpRanges": [
                {"CidrIp": f"{p}/32", "Description": "VRRP from the NAT gateway peer"} for p in peers
            ],
        }
    ]
