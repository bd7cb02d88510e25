"""What a takeover reasons about, without calling EC2: who holds each EIP and route now (`Ownership`), the
calls that would make a gateway the owner (`plan`), which of them a peer holds (`held_by_peer`), and what a
takeover did (`Result`). `takeover.Cloud` observes, acts and verifies around these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from nat_gateway_ha.resolve import Target


@dataclass(frozen=True)
class Action:
    """One mutating call to make: associate an EIP, or point one destination of one table at the LAN ENI."""

    kind: str  # "associate" | "replace" | "create"
    resource: str  # allocation id or route table id
    detail: str  # private IP or destination CIDR

    def __str__(self) -> str:
        return f"{self.kind}:{self.resource}:{self.detail}"


@dataclass
class Ownership:
    """What EC2 says now: where each EIP and each managed route points."""

    eips: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # alloc -> (eni, private ip)
    routes: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (rtb, dest) -> eni/target/None

    def owner_summary(self, target: Target) -> dict[str, Any]:
        return {
            "eips": {a: (f"{v[0]}/{v[1]}" if v else None) for a, v in sorted(self.eips.items())},
            "routes": {f"{t}:{d}": v for (t, d), v in sorted(self.routes.items())},
            "owner": not plan(target, self),
        }


@dataclass
class Result:
    planned: list[Action] = field(default_factory=list)
    done: list[Action] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # action -> last error
    pending: list[Action] = field(default_factory=list)  # what still differs after the last verification
    contested: list[Action] = field(default_factory=list)  # left alone: a peer holds them (not claiming)
    conflict: bool = False  # during a claim, a peer took back what we had moved: two claimants
    rounds: int = 0
    duration: float = 0.0  # start to verified (or given up)
    moved: float = 0.0  # start to the last change EC2 acknowledged: when the data path switched
    dry_run: bool = False
    throttled: int = 0  # RequestLimitExceeded answers during this takeover (retried by botocore)
    errors: int = 0  # calls that failed for good (botocore's retries spent), later repaired or not
    paced: float = 0.0  # seconds calls waited for EC2 request tokens, all threads together
    settle_checks: int = 0  # looks taken after convergence to catch a second claimant's late calls

    @property
    def converged(self) -> bool:
        return not self.pending and not self.contested and "verify" not in self.failed

    def progress(self) -> dict[str, int]:
        """How many of the planned changes are made so far (a change redone after a race counts once)."""
        planned = set(self.planned)
        return {"moved": len(planned.intersection(self.done)), "of": len(planned), "failed": len(self.failed)}

    def summary(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "dry_run": self.dry_run,
            "changed": len(self.done),
            "throttled": self.throttled,
            "errors": self.errors,
            "paced_seconds": round(self.paced, 3),
            "planned": [str(a) for a in self.planned],
            "pending": [str(a) for a in self.pending],
            "contested": [str(a) for a in self.contested],
            "conflict": self.conflict,
            "settle_checks": self.settle_checks,
            "failed": dict(self.failed),
            "rounds": self.rounds,
            "duration": round(self.duration, 4),
            "moved_seconds": round(self.moved, 4),
        }


def error_of(err: Exception) -> tuple[str, str]:
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return str(e.get("Code", "")), str(e.get("Message", ""))
    return type(err).__name__, str(err)


def plan(target: Target, now: Ownership) -> list[Action]:
    """The calls that would make `target` the owner, given what EC2 says now. Empty: already owner."""
    actions = [
        Action("associate", e.allocation_id, e.private_ip)
        for e in target.eips
        if now.eips.get(e.allocation_id) != (target.wan_eni_id, e.private_ip)
    ]
    for rtb in target.route_tables:
        for dest in target.destinations:
            key = (rtb, dest)
            if key not in now.routes:
                actions.append(Action("create", rtb, dest))
            elif now.routes[key] != target.lan_eni_id:
                actions.append(Action("replace", rtb, dest))
    return actions


def held_by_peer(target: Target, now: Ownership, action: Action) -> bool:
    """Whether the resource `action` would change points at another member of the pair right now."""
    if action.kind == "associate":
        holder = now.eips.get(action.resource)
        return holder is not None and holder[0] in target.peer_enis
    return now.routes.get((action.resource, action.detail)) in target.peer_enis
