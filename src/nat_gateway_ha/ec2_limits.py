"""EC2's request token buckets, as AWS documents them: the one table the agent paces by and the lab enforces.

Figures from "Request throttling for the Amazon EC2 API" (Amazon EC2 Developer Guide,
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html), section "Request token bucket sizes
and refill rates". Each API action has a bucket of its own (per account and region); the category only gives
its size. AWS Support raises them per action on request, so both users of this table take overrides (the
agent's `api_limits`, the lab's `Throttle(overrides=...)`).

Not modelled: the resource token buckets (RunInstances, StartInstances, StopInstances, TerminateInstances
count instances as well as requests) and the separate console bucket; neither concerns the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """One bucket: `capacity` tokens at most (the burst), `refill` more per second (the sustained rate)."""

    capacity: float
    refill: float


NON_MUTATING = "non-mutating"
UNFILTERED = "unfiltered-non-mutating"
MUTATING = "mutating"
RESOURCE_INTENSIVE = "resource-intensive"

# The table: the four categories, then the "uncategorized" actions the lab or the agent call.
TABLE: dict[str, Limit] = {
    NON_MUTATING: Limit(100, 20),  # Describe*, List*, Search*, Get* not listed elsewhere
    UNFILTERED: Limit(50, 10),  # UNFILTERED_ACTIONS without a filter or pagination
    MUTATING: Limit(50, 5),  # every other action: ReplaceRoute, CreateRoute, AssociateAddress, ...
    RESOURCE_INTENSIVE: Limit(50, 5),  # RESOURCE_INTENSIVE_ACTIONS
    "AssignPrivateIpAddresses": Limit(100, 5),
    "UnassignPrivateIpAddresses": Limit(100, 5),
    "CreateNetworkInterface": Limit(100, 5),
    "DeleteNetworkInterface": Limit(100, 5),
    "ModifyNetworkInterfaceAttribute": Limit(100, 5),
    "ModifyInstanceMetadataOptions": Limit(100, 5),
    "AssociateIamInstanceProfile": Limit(100, 5),
    "DisassociateIamInstanceProfile": Limit(100, 5),
    "CreateTags": Limit(100, 10),
    "DeleteTags": Limit(100, 10),
    "RunInstances": Limit(5, 2),
    "StartInstances": Limit(5, 2),
    "TerminateInstances": Limit(100, 5),
}

UNFILTERED_ACTIONS = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
RESOURCE_INTENSIVE_ACTIONS = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)
NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")


def narrowed(params: Iterable[str]) -> bool:
    """Whether a request's query parameters filter or paginate (then it draws from the larger bucket)."""
    return any(p.startswith("Filter.") or p in ("MaxResults", "NextToken") for p in params)


def category(action: str, narrow: bool = True) -> str:
    """The table row that sizes `action`'s bucket: its own name when uncategorized, else its category."""
    if action in TABLE:
        return action
    if action in UNFILTERED_ACTIONS and not narrow:
        return UNFILTERED
    if action.startswith(NON_MUTATING_PREFIXES):
        return NON_MUTATING
    if action in RESOURCE_INTENSIVE_ACTIONS:
        return RESOURCE_INTENSIVE
    return MUTATING


def bucket_key(action: str, narrow: bool = True) -> str:
    """The bucket a request draws from: one per action, the unfiltered variant of an action apart."""
    return f"{action}:{UNFILTERED}" if category(action, narrow) == UNFILTERED else action


def limit(action: str, narrow: bool = True, overrides: Mapping[str, Limit] | None = None) -> Limit:
    """The size of the bucket `bucket_key(action, narrow)`: an override by that key first, then the table."""
    key = bucket_key(action, narrow)
    if overrides and key in overrides:
        return overrides[key]
    return TABLE[category(action, narrow)]
