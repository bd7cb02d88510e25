"""Benchmark: takeovers against EC2's request throttling, cloud only (the lab's moto server, no containers).

EC2 gives ReplaceRoute and AssociateAddress a bucket each per account and region: 50 calls at once, then 5 a
second (nat_gateway_ha.ec2_limits). The lab's EC2 server throttles the same way (nat_gateway_ha_lab.throttle),
so a takeover measured here cannot beat the physical limit: from full buckets, max(0, calls - 50) / 5 s per
action. The cloud process is bench/agent_takeover.py's (moto + IMDS in a child process, as EC2 is not in the
agent's process); both buckets, EC2's and the agent's, start full for every run, as after 10 s of quiet.

One pair, N route tables: gw2 takes over from gw1 (`Cloud.takeover`, again every second until converged, as
the daemon does); the clock stops when a takeover's verification says everything is gw2's. The agent is
configured as the role deploys it (flow sync on, the EIP after the first wave of routes, a watching backup's
view: `view_max_age` 60). Columns: the agent paced (the default), unpaced (the calls fired at once, botocore
retrying), and against an unthrottled cloud, each as switched (the last change acknowledged) / verified:
looking first (`view_max_age` 0), acting on the view (the default), and the floor: the same calls with bare
boto3 in parallel, no observe and no verification. "throttled" counts EC2's RequestLimitExceeded answers,
"errors" the calls that failed after botocore's retries (repaired by a later round or pass).

P pairs of T tables fail over together (one thread, client, pacer and Cloud per pair; one account, so one
set of EC2 buckets): the time until every pair has converged next to the limit for P*T routes and P EIPs, and
the latest first route among the pairs (how long the unluckiest pair's first subnet waited). Rows: paced
with the whole bucket each (`api_share` 1), paced with a 1/P share each, unpaced.

    python bench/throttled_takeover.py [--tables 1,5,50,200,500] [--pairs 20] [--pair-tables 5]

About 12 minutes on 2 cores, most of it the N=500 rows (their limit alone is 90 s a row): leave 500 out of
--tables for a 5-minute run. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from agent_takeover import CloudProcess, config
from nat_gateway_ha import ec2_limits, log
from nat_gateway_ha.aws import ec2_client, pacer
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import RETRY_UNCONVERGED
from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.ownership import Result
from nat_gateway_ha.resolve import EipTarget, Target
from nat_gateway_ha.startup import connect
from nat_gateway_ha.takeover import Cloud
from nat_gateway_ha_lab import topology

ROUTE = ec2_limits.limit("ReplaceRoute")
EIP = ec2_limits.limit("AssociateAddress")
GIVE_UP = 300.0  # seconds: a run still not converged by then is reported as such


def _drain(calls: int, lim: Limit) -> float:
    return max(0.0, (calls - lim.capacity) / lim.refill)


def physical_limit(routes: int, eips: int) -> float:
    """Seconds EC2 needs, from full buckets, for `routes` ReplaceRoute and `eips` AssociateAddress calls:
    each bucket's burst at once, the rest at its refill rate; the two buckets drain side by side."""
    return max(_drain(routes, ROUTE), _drain(eips, EIP))


@dataclass
class Run:
    """One cloud side's way to converged: when, at what cost."""

    seconds: float = float("nan")
    first_route: float = float("nan")  # since the start: the first route of this side moved
    switched: float = float("nan")  # since the start: the last change EC2 acknowledged (data path moved)
    passes: int = 0
    errors: int = 0
    converged: bool = False
    results: list[Result] = field(default_factory=list)


def converge(cloud: Cloud, t0: float, give_up: float = GIVE_UP) -> Run:
    """Take over, and again every RETRY_UNCONVERGED s (the daemon's pace) until verified converged."""
    run = Run()

    done = 0

    def progress(result: Result) -> None:
        nonlocal done
        if run.first_route != run.first_route and any(a.kind != "associate" for a in result.done):
            run.first_route = time.perf_counter() - t0
        if len(result.done) > done:
            done = len(result.done)
            run.switched = time.perf_counter() - t0

    while True:
        done = 0
        result = cloud.takeover(on_progress=progress)
        run.passes += 1
        run.errors += result.errors
        run.results.append(result)
        if result.converged or time.perf_counter() - t0 > give_up:
            run.converged = result.converged
            run.seconds = time.perf_counter() - t0
            return run
        time.sleep(RETRY_UNCONVERGED)


class Bench:
    """The cloud process, the lab's VPC with the largest N's tables, and gw1's (unpaced) side to reset."""

    def __init__(self, proc: CloudProcess, max_tables: int, tmp: Path) -> None:
        self.proc = proc
        self.tmp = tmp
        self.raw = proc.ask(f"seed {max_tables}")
        self.state = SimpleNamespace(eip_allocation_id=self.raw["eip_allocation_id"])
        self.all_tables = [*self.raw["private_route_tables"].values(), *self.raw["extra_route_tables"]]
        self.gw1: dict[int, Cloud] = {}

    def cfg(self, host: str, n: int, **overrides: Any) -> AgentConfig:
        """As the role deploys an agent by default (flow sync on)."""
        tables = self.all_tables[:n]
        overrides.setdefault("flow_sync", True)
        return config(host, self.state, tables, self.proc.url, self.proc.imds_url, self.tmp, **overrides)

    def connect(self, host: str, n: int, **overrides: Any) -> Cloud:
        self.proc.ask(f"imds {self.raw['instances'][host]['instance_id']}")
        return connect(self.cfg(host, n, **overrides))

    def reset(self, n: int) -> None:
        """gw1 owns the first n tables and the EIP again, unthrottled (not what is measured)."""
        self.proc.ask("throttle off")
        if n not in self.gw1:
            self.gw1[n] = self.connect("gw1", n, api_pacing=False)
        if not converge(self.gw1[n], time.perf_counter()).converged:
            raise SystemExit(f"could not give the {n} tables back to gw1")

    def refused(self) -> int:
        return sum(self.proc.ask("stats")["refused"].values())

    def takeover(
        self, n: int, paced: bool, throttled: bool, view: bool = True, **overrides: Any
    ) -> tuple[Run, int]:
        """gw2 takes the first n tables over; (its run, EC2's RequestLimitExceeded answers). `view`: the
        claim acts on gw2's last look (a watching backup's, `view_max_age`) instead of looking first."""
        self.reset(n)
        gw2 = self.connect("gw2", n, api_pacing=paced, view_max_age=60 if view else 0, **overrides)
        try:
            gw2.observe()  # warm connections, as a running agent's are (and, with `view`, its view)
            self.proc.ask("throttle on" if throttled else "throttle off")  # buckets full
            if gw2.pacer is not None:
                gw2.pacer.fill()
            run = converge(gw2, time.perf_counter())
            return run, self.refused()
        finally:
            gw2.close()

    def floor(self, n: int) -> float:
        """The same N route changes and EIP move with bare boto3 in parallel, unthrottled: moto's floor."""
        self.reset(n)
        cfg = self.cfg("gw2", n)
        ids = self.raw["instances"]["gw2"]["nics"]
        lan, wan = ids["eth1"]["eni_id"], ids["eth0"]["eni_id"]
        private = str(topology.host("gw2").nic("eth0").secondary[0])
        ec2 = ec2_client(cfg, topology.REGION)
        pool = ThreadPoolExecutor(max_workers=cfg.max_concurrency)
        warm = functools.partial(ec2.describe_addresses, AllocationIds=[self.state.eip_allocation_id])
        list(
            pool.map(lambda _: warm(), range(cfg.max_concurrency))
        )  # threads and connections, as the agent's
        route = functools.partial(ec2.replace_route, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=lan)
        calls: list[Callable[[], Any]] = [
            functools.partial(route, RouteTableId=t) for t in self.all_tables[:n]
        ]
        calls.append(
            functools.partial(
                ec2.associate_address,
                AllocationId=self.state.eip_allocation_id,
                NetworkInterfaceId=wan,
                PrivateIpAddress=private,
                AllowReassociation=True,
            )
        )
        with pool:
            t0 = time.perf_counter()
            list(pool.map(lambda call: call(), calls))
            return time.perf_counter() - t0


def _s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds == seconds else "-"


@dataclass
class Unthrottled:
    """Medians of the unthrottled runs: (switched, verified) looking first and on a view, and the floor."""

    looked: tuple[float, float]
    on_view: tuple[float, float]
    with_routes: tuple[float, float]  # on view, and the EIP with the routes (eip_timing: with_routes)
    floor: float


def unthrottled(bench: Bench, n: int, runs: int) -> Unthrottled:
    """The three kinds of run interleaved, one of each per round, so drift (the cloud process's growing
    state, the other core's load) weighs on each alike; measured in blocks they differ by up to 30 %."""
    times: dict[str, list[float]] = {k: [] for k in ("ls", "lv", "vs", "vv", "ws", "wv", "floor")}
    kinds = (
        (False, "after_first_wave", ("ls", "lv")),
        (True, "after_first_wave", ("vs", "vv")),
        (True, "with_routes", ("ws", "wv")),
    )
    for _ in range(runs):
        for view, timing, keys in kinds:
            run, _ = bench.takeover(n, paced=False, throttled=False, view=view, eip_timing=timing)
            times[keys[0]].append(run.switched if run.converged else float("nan"))
            times[keys[1]].append(run.seconds if run.converged else float("nan"))
        times["floor"].append(bench.floor(n))
    m = {k: statistics.median(v) for k, v in times.items()}
    return Unthrottled((m["ls"], m["lv"]), (m["vs"], m["vv"]), (m["ws"], m["wv"]), m["floor"])


def single_pair(bench: Bench, sizes: list[int], runs: int) -> None:
    print("one pair, N route tables + 1 EIP: seconds to verified convergence (throttled: EC2's 503s)")
    print(
        f"unthrottled columns: median of {runs}, 'switched' (the last change acknowledged: the data path has "
        "moved) / 'verified' (converged, seen by a Describe); 'looked': the claim looks first, 'on view': it "
        "acts on a watching backup's fresh view (view_max_age, the default); 'EIP w/ routes': on view, and "
        "eip_timing with_routes; x floor: switched / boto3 floor, on view and with routes"
    )
    head = (
        f"{'N':>4} {'limit s':>8} {'paced s':>8} {'thr':>4} {'err':>4} {'unpaced s':>9} {'thr':>5} "
        f"{'err':>4} {'looked s':>13} {'on view s':>13} {'EIP w/ routes':>13} {'boto3 floor s':>13} "
        f"{'x floor':>13}"
    )
    print(head)
    for n in sizes:
        paced, paced_thr = bench.takeover(n, paced=True, throttled=True)
        unpaced, unpaced_thr = bench.takeover(n, paced=False, throttled=True)
        free = unthrottled(bench, n, runs)
        flag = {id(r): ("" if r.converged else "!") for r in (paced, unpaced)}
        print(
            f"{n:>4} {_s(physical_limit(n, 1)):>8} {_s(paced.seconds) + flag[id(paced)]:>8} {paced_thr:>4} "
            f"{paced.errors:>4} {_s(unpaced.seconds) + flag[id(unpaced)]:>9} {unpaced_thr:>5} "
            f"{unpaced.errors:>4} {_pair(free.looked):>13} {_pair(free.on_view):>13} "
            f"{_pair(free.with_routes):>13} {_s(free.floor):>13} "
            f"{f'{free.on_view[0] / free.floor:.2f}/{free.with_routes[0] / free.floor:.2f}':>13}"
        )
        sys.stdout.flush()


def _pair(seconds: tuple[float, float]) -> str:
    return f"{_s(seconds[0])}/{_s(seconds[1])}"


# -- P pairs at once -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairWorld:
    """One more pair in its own VPC: side A owns it; B takes over."""

    a: Target
    b: Target


def seed_pairs(ec2: Any, pairs: int, tables: int) -> list[PairWorld]:
    """P pairs of ENIs (unattached: a takeover only needs their ids), one EIP and T route tables each."""
    vpc = ec2.create_vpc(CidrBlock="10.200.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.200.0.0/20")["Subnet"]["SubnetId"]
    out = []
    for p in range(pairs):
        sides = []
        for _side in "ab":
            wan = ec2.create_network_interface(SubnetId=subnet, SecondaryPrivateIpAddressCount=1)
            lan = ec2.create_network_interface(SubnetId=subnet)
            addrs = [x["PrivateIpAddress"] for x in wan["NetworkInterface"]["PrivateIpAddresses"]]
            sides.append((wan["NetworkInterface"]["NetworkInterfaceId"], lan["NetworkInterface"], addrs[-1]))
        eip = ec2.allocate_address(Domain="vpc")
        ids = []
        for _ in range(tables):
            rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.create_route(
                RouteTableId=rtb,
                DestinationCidrBlock="0.0.0.0/0",
                NetworkInterfaceId=sides[0][1]["NetworkInterfaceId"],
            )
            ids.append(rtb)
        ec2.associate_address(
            AllocationId=eip["AllocationId"], NetworkInterfaceId=sides[0][0], PrivateIpAddress=sides[0][2]
        )
        targets = []
        for me, peer in ((0, 1), (1, 0)):
            wan_id, lan_nic, private = sides[me]
            targets.append(
                Target(
                    pair=f"pair{p}",
                    host="ab"[me],
                    instance_id="i-bench",
                    region=topology.REGION,
                    vpc_id=vpc,
                    wan_eni_id=wan_id,
                    lan_eni_id=lan_nic["NetworkInterfaceId"],
                    eips=(EipTarget(eip["AllocationId"], eip["PublicIp"], private),),
                    route_tables=tuple(ids),
                    destinations=("0.0.0.0/0",),
                    peer_enis=frozenset({sides[peer][0], sides[peer][1]["NetworkInterfaceId"]}),
                )
            )
        out.append(PairWorld(targets[0], targets[1]))
    return out


def together(clouds: list[Cloud]) -> list[Run]:
    """Every cloud side takes over at the same moment, each on its own thread, until all converged."""
    runs = [Run() for _ in clouds]
    barrier = threading.Barrier(len(clouds) + 1)
    t0 = [0.0]

    def one(i: int) -> None:
        barrier.wait()
        runs[i] = converge(clouds[i], t0[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clouds))]
    for t in threads:
        t.start()
    t0[0] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    return runs


def many_pairs(bench: Bench, pairs: int, tables: int) -> None:
    bench.proc.ask("throttle off")
    base = bench.cfg("gw2", 1)
    setup = ec2_client(bench.cfg("gw2", 1, api_pacing=False), topology.REGION)
    worlds = seed_pairs(setup, pairs, tables)
    back = [Cloud(setup, w.a, base.max_concurrency) for w in worlds]
    limit = physical_limit(pairs * tables, pairs)
    print(
        f"\n{pairs} pairs x {tables} tables failing over at once: seconds until all converged "
        f"(limit for {pairs * tables} routes + {pairs} EIPs: {limit:.2f} s)"
    )
    print(f"{'agent':<22} {'all converged s':>15} {'last 1st route s':>16} {'throttled':>9} {'errors':>6}")
    rows: list[tuple[str, dict[str, Any]]] = [
        ("paced, api_share 1", {"api_pacing": True}),
        (f"paced, api_share 1/{pairs}", {"api_pacing": True, "api_share": 1 / pairs}),
        ("unpaced", {"api_pacing": False}),
    ]
    for name, overrides in rows:
        bench.proc.ask("throttle off")
        for c in back:
            if not converge(c, time.perf_counter()).converged:
                raise SystemExit("could not give the pairs back to their A side")
        cfg = bench.cfg("gw2", 1, **overrides)
        clouds = []
        for w in worlds:
            paced_by = pacer(cfg)
            ec2 = ec2_client(cfg, topology.REGION, paced_by)
            clouds.append(Cloud(ec2, w.b, cfg.max_concurrency, paced_by, cfg.eip_timing, cfg.view_max_age))
        for c in clouds:
            c.observe()  # warm, and each B side's view, as a watching backup's
        bench.proc.ask("throttle on")
        runs = together(clouds)
        refused = bench.refused()
        for c in clouds:
            c.close()
        done = "" if all(r.converged for r in runs) else "!"
        print(
            f"{name:<22} {_s(max(r.seconds for r in runs)) + done:>15} "
            f"{_s(max(r.first_route for r in runs)):>16} {refused:>9} {sum(r.errors for r in runs):>6}"
        )
        sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tables", default="1,5,50,200,500", help="route table counts of the one-pair rows")
    parser.add_argument("--pairs", type=int, default=20, help="pairs failing over at once (0: skip)")
    parser.add_argument("--pair-tables", type=int, default=5)
    parser.add_argument("--runs", type=int, default=9, help="runs of the (fast) unthrottled columns")
    args = parser.parse_args()
    log.setup(level=40)  # errors only
    sizes = [int(x) for x in args.tables.split(",") if x]
    proc = CloudProcess(throttle=True)
    print(
        f"EC2 buckets (Request throttling for the Amazon EC2 API): ReplaceRoute {ROUTE.capacity:g} then "
        f"{ROUTE.refill:g}/s, AssociateAddress {EIP.capacity:g} then {EIP.refill:g}/s; "
        "'!' = not converged by the give-up time"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="natgw-bench-") as tmp:
            bench = Bench(proc, max([*sizes, 1]), Path(tmp))
            if sizes:
                single_pair(bench, sizes, args.runs)
            if args.pairs > 0:
                many_pairs(bench, args.pairs, args.pair_tables)
    finally:
        proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
