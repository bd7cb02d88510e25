"""Least-privilege IAM policy and security-group rules for one pair, from its agent config.

Only the actions the agent and the module call. Every mutating action names the pair's own resources by
ARN: the route tables it manages, its EIP allocations, its gateways' ENIs; a VPC condition is added when
the VPC is known. Describe* calls cannot be scoped by resource in EC2, so they alone use "*".

Tables selected by tags or subnets, and EIPs named by public address, are resolved to ids before the policy
is written (by the caller, or by `discover` through EC2): a wildcard would also grant the tables and EIPs
the pair does not own. Whatever cannot be resolved is refused with a `PolicyError`, never widened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.resolve import select_route_tables

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef

DESCRIBE_ACTIONS = [
    "ec2:DescribeAddresses",
    "ec2:DescribeInstances",  # the cloud module checks the instance's IMDS options
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
]
ROUTE_ACTIONS = ["ec2:CreateRoute", "ec2:ReplaceRoute"]

ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
ID_RES = {prefix: re.compile(rf"^{prefix}-[0-9a-f]{{1,32}}$") for prefix in ("rtb", "eni", "eipalloc", "vpc")}
# Regions outside the `aws` partition, by name prefix (no prefix is another's).
PARTITIONS = {
    "cn-": "aws-cn",
    "us-gov-": "aws-us-gov",
    "us-iso-": "aws-iso",
    "us-isob-": "aws-iso-b",
    "eu-isoe-": "aws-iso-e",
    "us-isof-": "aws-iso-f",
}


class PolicyError(ValueError):
    """The inputs do not pin the pair's resources down; no policy is written rather than a wider one."""


@dataclass(frozen=True)
class Scope:
    """Where the pair lives, checked: every ARN of the policy starts with `prefix`."""

    partition: str
    region: str
    account: str
    vpc_id: str | None

    @property
    def prefix(self) -> str:
        return f"arn:{self.partition}:ec2:{self.region}:{self.account}"

    def arns(self, kind: str, ids: Iterable[str]) -> list[str]:
        return [f"{self.prefix}:{kind}/{i}" for i in sorted(set(ids))]

    def vpc_condition(self) -> dict[str, Any]:
        """EC2 gives route tables and ENIs (not EIPs) the key ec2:Vpc, the VPC's ARN."""
        if self.vpc_id is None:
            return {}
        return {"Condition": {"ArnEquals": {"ec2:Vpc": f"{self.prefix}:vpc/{self.vpc_id}"}}}


def scope(account: str | None, region: str | None, vpc_id: str | None = None) -> Scope:
    """Check the account, region and VPC that go into every ARN; refuse what would never match."""
    if not account:
        if vpc_id:
            raise PolicyError(
                f"--vpc-id {vpc_id} needs --account: the ec2:Vpc condition names the VPC by its ARN, which "
                "includes the account; with '*' in its place the condition would match no request"
            )
        raise PolicyError("the account is part of every ARN in the policy: give --account (12 digits)")
    if not ACCOUNT_RE.match(account):
        raise PolicyError(f"account {account!r} is not a 12-digit AWS account id")
    region = check_region(region)
    if vpc_id is not None:
        _check_ids("vpc", [vpc_id])
    partition = next((p for pre, p in PARTITIONS.items() if region.startswith(pre)), "aws")
    return Scope(partition, region, account, vpc_id)


def check_region(region: str | None) -> str:
    """The region, which every ARN names: a real region name, never '*' (or unknown)."""
    if not region or region == "*":
        raise PolicyError(
            "the region is part of every ARN in the policy: set region in the config or give --region"
        )
    if not REGION_RE.match(region):
        raise PolicyError(f"region {region!r} is not an AWS region name such as eu-west-1")
    return region


def _check_ids(prefix: str, ids: Iterable[str]) -> None:
    bad = [i for i in ids if not ID_RES[prefix].match(i)]
    if bad:
        raise PolicyError(f"{', '.join(bad)}: not {prefix}- ids")


def route_tables(cfg: AgentConfig, route_table_ids: Sequence[str] | None) -> list[str]:
    """The tables to name: the config's explicit ids plus the resolved ones (required for tags/subnets)."""
    sel = cfg.route_tables
    given = list(route_table_ids or [])
    _check_ids("rtb", given)
    if (sel.tags or sel.subnet_ids) and not given:
        how = "tags" if sel.tags else "subnet_ids"
        raise PolicyError(
            f"the config selects route tables by {how}, which only EC2 can turn into table ids: give each "
            "managed table with --route-table-id (or use --resolve); the policy never grants route-table/*"
        )
    unmanaged = sorted(set(given) - set(sel.ids))
    if unmanaged and not (sel.tags or sel.subnet_ids):
        raise PolicyError(
            f"{', '.join(unmanaged)}: the config selects tables by ids only, and these are not among them"
        )
    return sorted({*sel.ids, *given})


def allocations(cfg: AgentConfig, allocation_ids: Sequence[str]) -> list[str]:
    """The EIP allocations to name: the config's, plus one given per EIP the config names by address."""
    _check_ids("eipalloc", allocation_ids)
    known = {b.eip.allocation_id for b in cfg.eips if b.eip.allocation_id}
    by_address = [b.eip.label for b in cfg.eips if not b.eip.allocation_id]
    extra = set(allocation_ids) - known
    if len(extra) < len(by_address):
        raise PolicyError(
            f"EIP {', '.join(by_address)} is not named by allocation_id: give its allocation with "
            "--allocation-id (or use --resolve); the policy never grants elastic-ip/*"
        )
    if len(extra) > len(by_address):
        raise PolicyError(
            f"{len(extra)} allocation(s) given beyond the config's, which names {len(by_address)} EIP(s) "
            "without an allocation_id: the policy grants no EIP the pair does not use"
        )
    return sorted(known | extra)


def policy(
    cfg: AgentConfig,
    *,
    account: str | None,
    region: str | None = None,
    vpc_id: str | None = None,
    route_table_ids: Sequence[str] | None = None,
    eni_ids: Sequence[str] = (),
    allocation_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """The IAM policy document for a pair's instance role (both gateways use the same one).

    `eni_ids` are the WAN ENIs of every gateway of the pair: AssociateAddress is authorised against the
    ENI as well as the EIP, so each gateway needs its own WAN ENI named.
    """
    where = scope(account, region or cfg.region, vpc_id)
    tables = route_tables(cfg, route_table_ids)
    eips = allocations(cfg, allocation_ids)
    _check_ids("eni", eni_ids)
    if not eni_ids:
        raise PolicyError(
            "AssociateAddress is authorised against the target ENI too: give each gateway's WAN ENI with "
            "--eni-id (or use --resolve); the policy never grants network-interface/*"
        )
    namespace = cfg.cloudwatch.namespace if cfg.cloudwatch.enabled else None
    return document(where, tables=tables, allocation_ids=eips, eni_ids=eni_ids, metrics_namespace=namespace)


def document(
    where: Scope,
    *,
    tables: Sequence[str],
    allocation_ids: Sequence[str],
    eni_ids: Sequence[str],
    metrics_namespace: str | None,
) -> dict[str, Any]:
    """The policy from checked ids: what `policy` writes for an agent config and provisioning for a pair."""
    for prefix, ids in (("rtb", tables), ("eipalloc", allocation_ids), ("eni", eni_ids)):
        _check_ids(prefix, ids)
        if not ids:
            raise PolicyError(f"the policy names every {prefix}- resource it grants: none given")
    statements: list[dict[str, Any]] = [
        {"Sid": "Discover", "Effect": "Allow", "Action": DESCRIBE_ACTIONS, "Resource": "*"},
        {
            "Sid": "ManagedRouteTables",
            "Effect": "Allow",
            "Action": ROUTE_ACTIONS,
            "Resource": where.arns("route-table", tables),
            **where.vpc_condition(),
        },
        # Two statements, because an elastic-ip has no ec2:Vpc key: a VPC condition on it never matches.
        {
            "Sid": "OwnElasticIps",
            "Effect": "Allow",
            "Action": ["ec2:AssociateAddress"],
            "Resource": where.arns("elastic-ip", allocation_ids),
        },
        {
            "Sid": "OwnWanInterfaces",
            "Effect": "Allow",
            "Action": ["ec2:AssociateAddress"],
            "Resource": where.arns("network-interface", eni_ids),
            **where.vpc_condition(),
        },
    ]
    if metrics_namespace is not None:
        # PutMetricData has no resource type: the namespace condition is what keeps it to this pair's.
        statements.append(
            {
                "Sid": "PublishMetrics",
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def provisioning_policy(
    *, account: str | None, region: str | None, vpc_id: str | None = None, eni_ids: Sequence[str]
) -> dict[str, Any]:
    """Extra right for whoever provisions (the module with source_dest_check: false), not for the agent.

    `eni_ids` are every gateway's WAN and LAN ENIs: the module turns the check off on both.
    """
    where = scope(account, region, vpc_id)
    _check_ids("eni", eni_ids)
    if not eni_ids:
        raise PolicyError("the provisioning policy names the gateways' ENIs: give their WAN and LAN ENI ids")
    stmt = {
        "Sid": "DisableSourceDestCheck",
        "Effect": "Allow",
        "Action": ["ec2:ModifyNetworkInterfaceAttribute"],
        "Resource": where.arns("network-interface", eni_ids),
        **where.vpc_condition(),
    }
    return {"Version": "2012-10-17", "Statement": [stmt]}


@dataclass(frozen=True)
class PairIds:
    """What `discover` found in EC2: the ids the policy names."""

    account: str
    vpc_id: str
    route_table_ids: tuple[str, ...]
    allocation_ids: tuple[str, ...]
    wan_eni_ids: tuple[str, ...]
    lan_eni_ids: tuple[str, ...]


def discover(cfg: AgentConfig, ec2: EC2Client, vpc_id: str | None = None) -> PairIds:
    """The pair's ids, as the agent would resolve them, from one gateway's config (its peers' MACs included).

    Uses the Describe calls the agent uses, with the caller's credentials; the account and VPC are those of
    the gateways' ENIs. Raises PolicyError (or resolve.ResolveError) when something is not found.
    """
    if cfg.wan_eni.mac is None or cfg.lan_eni.mac is None:
        raise PolicyError(
            "the config names this gateway's ENIs by device_index, which only its IMDS can resolve; "
            "give the ids with --eni-id and --lan-eni-id instead of --resolve"
        )
    if not cfg.peers:
        raise PolicyError(
            "the config names no peers, so the other gateway's ENIs cannot be found: use the config the "
            "role rendered, or give every id without --resolve"
        )
    wan_macs = [cfg.wan_eni.mac, *(p.wan_mac for p in cfg.peers)]
    lan_macs = [cfg.lan_eni.mac, *(p.lan_mac for p in cfg.peers)]
    filters: list[FilterTypeDef] = [{"Name": "mac-address", "Values": sorted({*wan_macs, *lan_macs})}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    found = ec2.describe_network_interfaces(Filters=filters)["NetworkInterfaces"]
    by_mac = {e["MacAddress"]: e for e in found}
    missing = sorted({*wan_macs, *lan_macs} - set(by_mac))
    if missing:
        raise PolicyError(f"no ENI with MAC {', '.join(missing)}{f' in {vpc_id}' if vpc_id else ''}")
    vpcs = {e["VpcId"] for e in found}
    owners = {e["OwnerId"] for e in found}
    if len(vpcs) != 1 or len(owners) != 1:
        raise PolicyError(f"the gateways' ENIs are in more than one VPC or account: {sorted(vpcs | owners)}")
    vpc = vpcs.pop()
    eips = []
    for b in cfg.eips:
        if b.eip.allocation_id:
            eips.append(b.eip.allocation_id)
            continue
        addrs = ec2.describe_addresses(**b.eip.query())["Addresses"]
        if len(addrs) != 1 or "AllocationId" not in addrs[0] or b.eip.mismatch(addrs[0]):
            raise PolicyError(f"no single VPC Elastic IP {b.eip.label}")
        eips.append(addrs[0]["AllocationId"])
    return PairIds(
        account=owners.pop(),
        vpc_id=vpc,
        route_table_ids=select_route_tables(cfg, ec2, vpc),
        allocation_ids=tuple(sorted(set(eips))),
        wan_eni_ids=tuple(sorted(by_mac[m]["NetworkInterfaceId"] for m in set(wan_macs))),
        lan_eni_ids=tuple(sorted(by_mac[m]["NetworkInterfaceId"] for m in set(lan_macs))),
    )


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
