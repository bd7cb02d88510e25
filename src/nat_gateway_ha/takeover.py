"""The one place a takeover happens: observe, change what differs in parallel, verify, repair.

A takeover is idempotent (what is already right is skipped, so a second one makes no mutating call) and
convergent: every destination of every selected route table ends on this gateway's LAN ENI and every EIP on
its WAN private IP, or the result says which did not. Races with the peer or an operator are handled per
call (ReplaceRoute on a vanished route becomes CreateRoute and vice versa). With a `Pacer` on the client,
calls go as fast as EC2's token buckets allow and no faster (see `pacing`); progress is reported as it goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import BotoCoreError, ClientError

from nat_gateway_ha import log
from nat_gateway_ha.ownership import Action, Ownership, Result, error_of, held_by_peer, plan
from nat_gateway_ha.pacing import Pacer
from nat_gateway_ha.resolve import EipTarget, Target

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

DESCRIBE_CHUNK = 100  # route table ids per DescribeRouteTables call
REPAIR_BACKOFF = (0.2, 0.5, 1.0)  # seconds between verification rounds
SETTLE_CHECKS = 3  # looks after a winning claim converged, each `settle` seconds after the last change


Progress = Callable[[Result], None]
EipTiming = Literal["with_routes", "after_first_wave", "after_all_routes"]


class Cloud:
    """A warm connection to EC2 for one target: a client and bounded worker pools, made once.

    `pacer` is the one attached to `ec2` (None: calls are not paced). The EIPs have a pool of their own, so
    an EIP never queues behind route calls that wait for their tokens. `settle`: seconds after a winning
    claim converged before it looks once more (0: it does not; see `Cloud.takeover`).
    """

    def __init__(
        self,
        ec2: EC2Client,
        target: Target,
        max_concurrency: int = 16,
        pacer: Pacer | None = None,
        eip_timing: EipTiming = "after_first_wave",
        view_max_age: float = 0.0,
        settle: float = 0.0,
    ) -> None:
        self.ec2 = ec2
        self.settle = settle
        self.target = target
        self.pacer = pacer
        self.eip_timing = eip_timing
        self.view_max_age = view_max_age
        self.view: tuple[float, Ownership] | None = None  # the last observation and when (monotonic)
        self.started = time.monotonic()  # the current (or last) takeover's start
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="ec2")
        self.eip_pool = ThreadPoolExecutor(
            max_workers=max(1, min(len(target.eips), max_concurrency)), thread_name_prefix="ec2-eip"
        )

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.eip_pool.shutdown(wait=False, cancel_futures=True)

    # -- observing ------------------------------------------------------------------------------------
    def observe(self) -> Ownership:
        """Two kinds of Describe call, in parallel: the EIPs, and the route tables in chunks."""
        t = self.target
        addr_f = self.pool.submit(
            self.ec2.describe_addresses, AllocationIds=[e.allocation_id for e in t.eips]
        )
        ids = list(t.route_tables)
        chunks = [ids[i : i + DESCRIBE_CHUNK] for i in range(0, len(ids), DESCRIBE_CHUNK)]
        table_fs = [self.pool.submit(self.ec2.describe_route_tables, RouteTableIds=c) for c in chunks]
        now = Ownership()
        for a in addr_f.result()["Addresses"]:
            eni = a.get("NetworkInterfaceId")
            now.eips[a["AllocationId"]] = (eni, a.get("PrivateIpAddress", "")) if eni else None
        wanted = set(t.destinations)
        for f in table_fs:
            for table in f.result()["RouteTables"]:
                for r in table.get("Routes", []):
                    dest = r.get("DestinationCidrBlock")
                    if dest not in wanted:
                        continue
                    hop = (
                        r.get("NetworkInterfaceId")
                        or r.get("InstanceId")
                        or r.get("GatewayId")
                        or r.get("NatGatewayId")
                    )
                    now.routes[(table["RouteTableId"], dest)] = None if r.get("State") == "blackhole" else hop
        self.view = (time.monotonic(), now)
        return now

    def fresh_view(self) -> Ownership | None:
        """The last observation if it is at most `view_max_age` seconds old (0: never)."""
        if self.view is None or self.view_max_age <= 0:
            return None
        at, seen = self.view
        return seen if time.monotonic() - at <= self.view_max_age else None

    # -- changing -------------------------------------------------------------------------------------
    def _associate(self, eip: EipTarget) -> None:
        self.ec2.associate_address(
            AllocationId=eip.allocation_id,
            NetworkInterfaceId=self.target.wan_eni_id,
            PrivateIpAddress=eip.private_ip,
            AllowReassociation=True,
        )

    def _route(self, rtb: str, dest: str, exists: bool) -> str:
        """Point `dest` in `rtb` at the LAN ENI, switching between replace and create if the route came or
        went since we looked (the peer or an operator racing us)."""
        eni = self.target.lan_eni_id
        for _ in range(3):
            try:
                if exists:
                    self.ec2.replace_route(
                        RouteTableId=rtb, DestinationCidrBlock=dest, NetworkInterfaceId=eni
                    )
                    return "replace"
                self.ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=dest, NetworkInterfaceId=eni)
                return "create"
            except ClientError as err:
                code, message = error_of(err)
                vanished = code == "InvalidRoute.NotFound" or (
                    code == "InvalidParameterValue" and "no route" in message.lower()
                )
                if exists and vanished:
                    exists = False
                elif not exists and code == "RouteAlreadyExists":
                    exists = True
                else:
                    raise
        raise RuntimeError(f"route {dest} in {rtb} kept changing under us")

    def _run(self, action: Action) -> str:
        if action.kind == "associate":
            eip = next(e for e in self.target.eips if e.allocation_id == action.resource)
            self._associate(eip)
            return "associate"
        return self._route(action.resource, action.detail, exists=action.kind == "replace")

    def apply(self, actions: list[Action], result: Result, on_progress: Progress | None = None) -> None:
        """Routes in order, in parallel (paced); the EIPs with them or once the first wave has answered.

        Why routes before the EIP, without flow sync: it keeps established flows alive. While the EIP still
        maps to the old master, the server's segments still reach the clients, whose ACKs now cross this
        gateway and create its conntrack (SNAT) entries. Moving the EIP first sends the server's segments
        here before any entry exists; they are dropped, the receiving client stays silent, and the flow
        stalls (measured in the lab: 3 of 3 stalled with the EIP first, none with routes first). With flow
        sync the peer's entries are committed before the takeover starts, so `with_routes` (the EIP in the
        same round trip) should lose nothing; yet in the lab a download through a power-off stalled in 2 of
        about 20 runs with it (logs lost with the powered-off hosts), never in the default order, so it
        stays an option until that is understood.

        Why not after every route: paced, routes beyond EC2's burst go at the refill rate (5 a second), so
        with 200 tables the EIP would wait 30 s and no subnet would have egress until then. The first wave
        is the routes the bucket lets go at once (every route, unpaced or with `after_all_routes`); once it
        has answered the EIP moves, on its own bucket and pool, and each later subnet has egress as soon as
        its own route moves. Up to the burst (50 tables) that is the same order as routes-then-EIP.
        """
        routes = [a for a in actions if a.kind != "associate"]
        eips = [a for a in actions if a.kind == "associate"]
        wave_size = self._first_wave(routes)  # before any route takes a token
        running: dict[Future[str], Action] = {}
        if wave_size == 0:  # with the routes: on the wire first, not behind N route submissions
            running.update((self.eip_pool.submit(self._run, a), a) for a in eips)
            eips = []
        route_futures = [self.pool.submit(self._run, a) for a in routes]
        running.update(zip(route_futures, routes, strict=True))
        wave = set(route_futures[:wave_size])
        pending = set(running)
        while True:
            if eips and not wave:
                for action in eips:
                    fut = self.eip_pool.submit(self._run, action)
                    running[fut] = action
                    pending.add(fut)
                eips = []
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                self._record(running[fut], fut, result)
                wave.discard(fut)
            if on_progress is not None:
                on_progress(result)

    def _first_wave(self, routes: list[Action]) -> int:
        """How many of `routes` (in order) the EIP waits for: those EC2's buckets take without waiting."""
        if self.eip_timing == "with_routes":
            return 0
        if self.pacer is None or self.eip_timing == "after_all_routes":
            return len(routes)
        free = 0
        for kind, api in (("replace", "ReplaceRoute"), ("create", "CreateRoute")):
            free += min(sum(1 for a in routes if a.kind == kind), int(self.pacer.available(api)))
        return min(len(routes), max(1, free))

    def _record(self, action: Action, fut: Future[str], result: Result) -> None:
        try:
            how = fut.result()
        except (ClientError, BotoCoreError, RuntimeError) as err:
            code, message = error_of(err)
            result.failed[str(action)] = f"{code}: {message}"
            result.errors += 1
            log.warning("cloud_call_failed", action=str(action), code=code, message=message)
            return
        result.done.append(action)
        result.failed.pop(str(action), None)
        result.moved = time.monotonic() - self.started
        log.info("cloud_changed", call=how, resource=action.resource, detail=action.detail)

    # -- the takeover ---------------------------------------------------------------------------------
    def takeover(
        self,
        dry_run: bool = False,
        claim: bool = True,
        rounds: int = len(REPAIR_BACKOFF) + 1,
        on_progress: Progress | None = None,
        elected: Callable[[], bool] | None = None,
    ) -> Result:
        """Make this gateway the owner; verify; repair what did not take, a few rounds, then report.

        A claim (keepalived has just elected us) moves everything, wherever it points. A reconcile
        (`claim=False`) repairs drift but leaves alone what a peer holds: that peer was elected after us, so
        VRRP is split, and taking it back would start a fight; the result lists it as contested. Two
        claimants at once are told apart from failed calls: a resource we moved that is back at a peer when
        we verify is a conflict, and only the gateway that `wins_conflicts` (highest priority) keeps
        claiming, and it looks once more `settle` seconds after converging to take back what the loser
        moved last, so the cloud ends whole on one gateway (only while `elected()` says VRRP still has it
        master: a peer elected meanwhile is no rival). `on_progress(result)` is called on this thread each
        time calls have answered.
        """
        started = self.started = time.monotonic()
        result = Result(dry_run=dry_run)
        paced_before = (self.pacer.waited, self.pacer.throttled) if self.pacer else (0.0, 0)
        try:
            return self._takeover(result, dry_run, claim, rounds, on_progress, elected)
        finally:
            result.duration = time.monotonic() - started
            if self.pacer is not None:
                result.paced = self.pacer.waited - paced_before[0]
                result.throttled = self.pacer.throttled - paced_before[1]

    def _takeover(
        self,
        result: Result,
        dry_run: bool,
        claim: bool,
        rounds: int,
        on_progress: Progress | None,
        elected: Callable[[], bool] | None,
    ) -> Result:
        # A claim may act on a fresh view and save the round trip of looking first: the verification after
        # the changes catches whatever changed since. Not when that view says there is nothing to do: an
        # empty plan is reported converged without verification, so it must come from a new look.
        now = self.fresh_view() if claim and not dry_run else None
        if now is not None and plan(self.target, now):
            log.info("claim_on_view", age=f"{time.monotonic() - self.view[0]:.3f}" if self.view else "-")
        else:
            now = self._look_first(result, claim)
            if now is None:
                return result
        pending = self._split(plan(self.target, now), now, claim, result)
        result.planned = list(pending)
        if dry_run or not pending:
            result.pending = pending
            return result
        pending = self._converge(result, pending, claim, rounds, on_progress)
        if claim and not pending and self._settles():
            pending = self._settle(result, rounds, on_progress, elected or (lambda: True))
        result.pending = pending
        return result

    def _converge(
        self, result: Result, pending: list[Action], claim: bool, rounds: int, on_progress: Progress | None
    ) -> list[Action]:
        """Apply, verify, repair, up to `rounds` times. Returns what still differs (and is not contested)."""
        for round_no in range(rounds):
            result.rounds += 1
            if pending:
                self.apply(pending, result, on_progress)
            try:
                now = self.observe()
            except (ClientError, BotoCoreError) as err:
                code, message = error_of(err)
                result.failed["verify"] = f"{code}: {message}"  # unknown: redo all (replace is idempotent)
            else:
                result.failed.pop("verify", None)
                everything = plan(self.target, now)
                if claim and any(a in result.done and held_by_peer(self.target, now, a) for a in everything):
                    result.conflict = True
                    claim = self.target.wins_conflicts
                    log.error("claim_conflict", peer_took_back=len(everything), keep_claiming=claim)
                pending = self._split(everything, now, claim, result)
            if not pending or round_no == rounds - 1:
                break
            log.warning("cloud_not_converged", round=round_no + 1, pending=len(pending))
            time.sleep(REPAIR_BACKOFF[min(round_no, len(REPAIR_BACKOFF) - 1)])
        return pending

    def _settles(self) -> bool:
        """Whether a converged claim looks again: only the gateway that wins conflicts, and only in a pair."""
        return self.settle > 0 and self.target.wins_conflicts and bool(self.target.peer_enis)

    def _settle(
        self, result: Result, rounds: int, on_progress: Progress | None, elected: Callable[[], bool]
    ) -> list[Action]:
        """Look again `settle` seconds after converging; take back what a second claimant moved since.

        EC2 has no compare-and-swap, so a peer claiming at the same moment can land calls after our
        verification: the loser yields once it sees us take back what it moved, but what it moved last stays
        with it unless the winner looks once more. The loser never settles (it yields), so this ends.
        """
        pending: list[Action] = []
        for _ in range(SETTLE_CHECKS):
            time.sleep(self.settle)
            if not elected():  # VRRP moved on: what the new master moves is its claim, not a late call
                return pending
            result.settle_checks += 1
            try:
                now = self.observe()
            except (ClientError, BotoCoreError) as err:
                code, message = error_of(err)
                log.warning("cloud_settle_failed", code=code, message=message)
                return pending  # verified converged a moment ago; the reconcile loop looks again
            late = plan(self.target, now)
            if not late:
                return []
            result.conflict = True
            log.error("claim_conflict", peer_took_back=len(late), keep_claiming=True, after="settle")
            pending = self._converge(result, late, True, rounds, on_progress)
            if pending:
                return pending
        return pending

    def _look_first(self, result: Result, claim: bool) -> Ownership | None:
        """Observe before acting. None: no view, and not claiming (the result says so)."""
        try:
            return self.observe()
        except (ClientError, BotoCoreError) as err:
            code, message = error_of(err)
            log.warning("cloud_observe_failed", code=code, message=message)
            if not claim:  # without a view we cannot tell a peer's claim from drift: wait for one
                result.failed["verify"] = f"{code}: {message}"
                result.pending = plan(self.target, Ownership())
                return None
            return Ownership()  # a claim acts on everything; verification follows

    def _split(self, actions: list[Action], now: Ownership, claim: bool, result: Result) -> list[Action]:
        """The actions to make; when not claiming, those on resources a peer holds go to `contested`."""
        result.contested = [] if claim else [a for a in actions if held_by_peer(self.target, now, a)]
        return [a for a in actions if a not in result.contested]
