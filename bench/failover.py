"""`make bench`: failover as users feel it, the project's defaults and the seed side by side, in the lab.

Phases, in this order (each can be left out with --skip): `ansible` recreates the lab and times the first
and second converge; `project` runs every failure kind under a download with the project's defaults;
`sweep` times the agent against 2-200 route tables; `seed` installs the blog post's keepalived settings and
script, runs the same failures, times its script against the same table counts, and removes it again.
A time budget keeps the whole bounded: a phase that would not fit is skipped and listed as not run.
Results go to bench/results/ (results.md, summary.json, timeline-<kind>.png); raw samples to its raw/.
"""

from __future__ import annotations

import argparse
import fcntl
import platform
import shlex
import signal
import sys
import time
from datetime import UTC, datetime
from types import FrameType
from typing import IO, Any

import ansible_timing
import report
import sweep
from lab import Lab, LabError
from metrics import stats
from nat_gateway_ha_lab.cli import LOCK_FILE
from nat_gateway_ha_lab.faults import FAULTS
from runner import Observer, Profile, run_once
from seed import AGENT_UNIT, Baseline

# The failures this bench compares with the seed (every fault: bench/fault_matrix.py).
KINDS = ("stop", "sigkill", "lan-down")
PROFILES = {
    "project": Profile("project", duration=30.0, stall_timeout=20.0, converge_timeout=30.0),
    "seed": Profile("seed", duration=40.0, stall_timeout=40.0, converge_timeout=90.0),
}
SIZES = [2, 5, 50, 200]  # the lab's two LAN tables are the minimum; the "1" becomes 2


class OutOfTime(Exception):
    pass


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.time()
        self.deadline: float = self.started + float(args.budget) * 60
        report.RAW.mkdir(parents=True, exist_ok=True)
        self.log_file = (report.RAW / "bench.log").open("a")
        self.runs: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {"notes": [], "not_run": [], "sweep": {}}
        self.lock: IO[str] | None = None

    def log(self, msg: str) -> None:
        line = f"{datetime.now(UTC):%H:%M:%S} {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def left(self) -> float:
        return self.deadline - time.time()

    def failovers(self, lab: Lab, variant: str, baseline: Baseline | None) -> None:
        profile = PROFILES[variant]
        per_run = profile.duration + (40 if variant == "seed" else 8)
        observer = Observer(lab, profile, baseline)
        for i in range(self.args.runs):  # kinds inside: a budget cut costs every kind the same runs
            for name in self.args.kinds:
                fault = FAULTS[name]
                if self.left() < per_run + self.reserve(variant):
                    self.summary["not_run"].append(f"{variant} {name}: run {i + 1} (time budget)")
                    continue
                self.log(f"{variant} {name} run {i + 1}/{self.args.runs}")
                try:
                    result = run_once(lab, profile, fault, observer, report.RAW, i + 1)
                except LabError as exc:
                    self.log(f"  run failed before it started: {exc}")
                    self.summary["notes"].append(f"{variant} {name} run {i + 1} did not start: {exc}")
                    continue
                self.runs.append(result)
                trs = result["transitions"]
                self.log(
                    "  "
                    + "; ".join(
                        f"{t['old']}->{t['new']} detect {_s(t['detection'])} converge {_s(t['convergence'])}"
                        f" outage {_s(t['outage'])}"
                        for t in trs
                    )
                    + f"; intact {result['intact']}"
                    + (f"; error {result['error']}" if result.get("error") else "")
                )

    def reserve(self, variant: str) -> float:
        """Time kept back for what must still happen after this phase (removing the seed, the report)."""
        return 60.0 if variant == "seed" else 30.0

    def run(self) -> int:
        skip = set(self.args.skip)
        if "ansible" not in skip:
            self.log("ansible: recreating the lab and timing converges")
            self.summary["ansible"] = ansible_timing.measure(
                report.RAW, fresh=not self.args.no_fresh, on_up=self.take_lock
            )
            for row in self.summary["ansible"]["rows"]:
                self.log(f"  {row['name']}: {row['wall']:.1f} s ({row.get('recap', '')})")
        lab = Lab()
        try:
            for g in lab.gateways:
                lab.sh(g, f"systemctl is-active keepalived {AGENT_UNIT}", timeout=20)
        except (LabError, OSError) as exc:
            self.log(f"the lab is not up and converged (`make lab`): {exc}")
            return 1
        self.take_lock()
        try:
            if "project" not in skip:
                self.failovers(lab, "project", None)
            if "sweep" not in skip:
                if self.left() > 240:
                    self.log(f"sweep: agent at {SIZES} route tables")
                    res = sweep.agent_convergence(lab, SIZES, self.args.sweep_runs, self.log)
                    self.summary["sweep"]["project"] = {k: stats(v) for k, v in res.items()}
                    self.summary["sweep_raw"] = {"project": res}
                else:
                    self.summary["not_run"].append("agent route-table sweep (time budget)")
            if "seed" not in skip:
                self.seed_phase(lab)
        except OutOfTime:
            self.summary["not_run"].append("the run hit its hard time limit; later phases did not run")
        finally:
            self.finish()
            if self.lock is not None:
                self.lock.close()
        return 0

    def take_lock(self) -> None:
        """Take the lab's lock for the measured phases: a `natgw-lab up/down` elsewhere waits for us."""
        if self.lock is not None:
            return
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = LOCK_FILE.open("w")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.log(f"waiting for the lab lock {LOCK_FILE} (a natgw-lab up/down is running)")
            fcntl.flock(fd, fcntl.LOCK_EX)
        self.log(f"holding {LOCK_FILE} until the bench ends: natgw-lab up/down elsewhere will wait")
        self.lock = fd

    def seed_phase(self, lab: Lab) -> None:
        baseline = Baseline(lab)
        master = lab.vrrp_master() or lab.gateways[0]
        self.log(f"seed: installing the blog post's keepalived.conf and primary-backup.sh ({master} first)")
        try:
            baseline.install(master)
            self.summary["notes"] += baseline.notes
            self.failovers(lab, "seed", baseline)
            plan = {n: (self.args.sweep_runs if n <= 5 else self.args.seed_large_runs) for n in SIZES}
            self.log(f"sweep: seed's script, runs per size {plan}")
            budget_end = self.deadline - 90
            res, skipped = sweep.seed_convergence(lab, baseline, plan, self.log, budget_end)
            self.summary["sweep"]["seed"] = {k: stats(v) for k, v in res.items()}
            self.summary.setdefault("sweep_raw", {})["seed"] = res
            self.summary["not_run"] += skipped
        finally:
            self.log("seed: removing it, restoring the project's keepalived.conf and agent")
            baseline.remove()

    def finish(self) -> None:
        self.summary["meta"] = {
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} ({platform.machine()}, {_cpus()} CPUs, {platform.platform()})",
            "argv": shlex.join(["bench/failover.py", *sys.argv[1:]]),
            "profiles": {k: vars(v) for k, v in PROFILES.items()},
        }
        report.write(self.summary, self.runs)
        self.log(f"results in {report.RESULTS} ({(time.time() - self.started) / 60:.1f} min)")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs per failure kind and variant")
    parser.add_argument("--sweep-runs", type=int, default=5, help="runs per table count (agent; seed <= 5)")
    parser.add_argument(
        "--seed-large-runs", type=int, default=1, help="seed's script runs at 50 and 200 tables"
    )
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(FAULTS))
    parser.add_argument("--skip", nargs="*", default=[], choices=["ansible", "project", "sweep", "seed"])
    parser.add_argument("--no-fresh", action="store_true", help="time converges without recreating the lab")
    parser.add_argument("--budget", type=float, default=45.0, help="minutes; later phases are skipped to fit")
    args = parser.parse_args(argv)
    bench = Bench(args)

    def hard_stop(signum: int, frame: FrameType | None) -> None:
        raise OutOfTime

    signal.signal(signal.SIGALRM, hard_stop)
    signal.alarm(int(args.budget * 60 + 600))  # the budget is soft; this is the backstop
    return bench.run()


if __name__ == "__main__":
    sys.exit(main())
