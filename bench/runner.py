"""One measured run: a download through the pair while the master fails, then fails back.

A run starts from a settled pair (one VRRP master that owns the EIP and the routes), starts the client's
sampler, breaks the master, waits until the peer has taken over, restores the old master (it rejoins as
BACKUP: nopreempt), breaks the new master, waits for the takeover back, restores it, and lets the download
finish. Event times come from the hosts' journals and the data plane's log; all clocks are the host's.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab import Lab, LabError, PlaneEvent
from metrics import longest_gap
from nat_gateway_ha_lab.faults import Fault
from seed import Baseline

SAMPLER = Path(__file__).resolve().parent / "sampler.py"
MASTER_RE = re.compile(r"Entering MASTER STATE")
BACKUP_RE = re.compile(r"Entering (BACKUP|FAULT) STATE")


@dataclass
class Profile:
    """How a variant's runs are paced. The seed needs longer streams: its takeovers take seconds."""

    variant: str  # "project" or "seed"
    rate: int = 1_000_000  # bytes per second the internet host sends
    duration: float = 30.0  # seconds the stream lasts at that rate
    lead: float = 3.0  # steady download before the first fault
    settle: float = 2.0  # pause between the old master rejoining and the failback fault
    hold: float = 6.0  # the broken master stays broken at least this long (> the agent's 5 s reconcile)
    stall_timeout: float = 25.0
    converge_timeout: float = 30.0


@dataclass
class Transition:
    old: str
    new: str
    fault_at: float
    master_at: float | None = None  # new master's keepalived entered MASTER
    api_done_at: float | None = None  # last EIP/route API call of the takeover answered
    verified_at: float | None = None  # the agent logged its takeover verified (Describe calls after)
    plane_done_at: float | None = None  # data plane applied the last EIP/route change to the new master
    outage: float | None = None  # longest gap with no byte, from this fault to the next event
    outage_at: float | None = None
    owner_after: str | None = None  # who the EC2 API says owns everything once converged
    moved_away: int | None = None  # EIP/route changes away from the new master before the next fault
    notes: list[str] = field(default_factory=list)

    @property
    def detection(self) -> float | None:
        return None if self.master_at is None else self.master_at - self.fault_at

    @property
    def convergence(self) -> float | None:
        if self.master_at is None or self.api_done_at is None:
            return None
        return self.api_done_at - self.master_at

    def figures(self) -> dict[str, Any]:
        return asdict(self) | {"detection": self.detection, "convergence": self.convergence}


class Observer:
    """Waits for and times a takeover, per variant: the agent's way or the seed script's way."""

    def __init__(self, lab: Lab, profile: Profile, baseline: Baseline | None) -> None:
        self.lab = lab
        self.profile = profile
        self.baseline = baseline
        self.tables = lab.private_route_tables()

    def master_at(self, host: str, since: float) -> float:
        def seen() -> float | None:
            hits = [e.ts for e in self.lab.journal(host, since) if MASTER_RE.search(e.message)]
            return min(hits) if hits else None

        return float(self.lab.wait(f"{host} to become VRRP master", seen, 30, interval=0.2))

    def wait_backup(self, host: str, since: float, timeout: float = 20) -> float | None:
        def seen() -> float | None:
            hits = [e.ts for e in self.lab.journal(host, since) if BACKUP_RE.search(e.message)]
            return max(hits) if hits else None

        try:
            return float(self.lab.wait(f"{host} to rejoin as BACKUP", seen, timeout, interval=0.3))
        except LabError:
            return None

    def plane_done(self, new: str, since: float, routes: bool) -> float | None:
        """When the data plane shows the EIP (and, for the agent, every private default route) on `new`."""
        events = [e for e in self.lab.dataplane(since) if e.host == new]
        eip = [e.ts for e in events if e.kind == "eip"]
        if not eip:
            return None
        if not routes:
            return max(eip)
        last: dict[str, float] = {}
        for e in events:
            if e.kind == "route" and e.subject.endswith("0.0.0.0/0"):
                last[e.subject.split()[0]] = e.ts
        if not all(t in last for t in self.tables):
            return None
        return max([*eip, *last.values()])

    def takeover(self, tr: Transition) -> None:
        tr.master_at = self.master_at(tr.new, tr.fault_at)
        if self.baseline is not None:
            tr.api_done_at = self.baseline.wait_finished(tr.new, tr.fault_at, self.profile.converge_timeout)
            tr.plane_done_at = self.plane_done(tr.new, tr.fault_at, routes=False)
        else:
            tr.plane_done_at = float(
                self.lab.wait(
                    f"EIP and routes on {tr.new}",
                    lambda: self.plane_done(tr.new, tr.fault_at, routes=True),
                    self.profile.converge_timeout,
                )
            )
            agent = agent_api_done(self.lab, tr.new, tr.fault_at)
            if agent is None:
                tr.notes.append("the agent logged no takeover: convergence taken from the data plane log")
                tr.api_done_at = tr.plane_done_at
            else:
                tr.api_done_at, tr.verified_at = agent
        tr.owner_after = self.lab.owner()


def agent_api_done(lab: Lab, host: str, since: float, timeout: float = 10) -> tuple[float, float] | None:
    """(last mutating call answered, takeover logged) from the agent's journal on `host` after `since`.

    The agent logs `event=cloud_changed` as each EIP/route call returns and `event=takeover` once the
    takeover is verified; the first takeover after the fault is the one that counts (later reconciles may
    repair drift and are not part of it).
    """

    def seen() -> tuple[float, float] | None:
        changed: list[float] = []
        for e in lab.journal(host, since):
            if "event=cloud_changed" in e.message:
                changed.append(e.ts)
            elif "event=takeover " in e.message and "reason=" in e.message:
                return (max(changed) if changed else e.ts), e.ts
        return None

    try:
        return tuple(lab.wait(f"the agent on {host} to log its takeover", seen, timeout, interval=0.3))
    except LabError:
        return None


def run_once(
    lab: Lab, profile: Profile, fault: Fault, observer: Observer, raw_dir: Path, index: int
) -> dict[str, Any]:
    """One failover and failback under a running download; returns the run's figures and raw file."""
    first = lab.wait("a single VRRP master", lab.vrrp_master, 30)
    if profile.variant == "project":
        lab.wait(f"{first} to own the EIP and routes", lambda: lab.owner() == first, 30, interval=0.5)
    else:
        point_routes_at(lab, first)
    second = next(g for g in lab.gateways if g != first)
    raw = raw_dir / f"{profile.variant}-{fault.name}-{index}.json"
    size = int(profile.rate * profile.duration)
    cmd = [
        "ip", "netns", "exec", lab.netns("client"), sys.executable, str(SAMPLER),
        "--size", str(size), "--rate", str(profile.rate), "--out", str(raw),
        "--stall-timeout", str(profile.stall_timeout),
    ]  # fmt: skip
    expect = expected_digest(size)
    if expect:
        cmd += ["--expect-sha256", expect]
    sampler = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert sampler.stdout is not None
    line = sampler.stdout.readline().strip()
    if line != "ready":
        sampler.wait(timeout=10)
        raise LabError(f"the client's download did not start: {line or 'no output'}")
    time.sleep(profile.lead)
    result: dict[str, Any] = {"variant": profile.variant, "kind": fault.name, "run": index, "raw": raw.name}
    transitions = []
    try:
        for old, new in ((first, second), (second, first)):
            try:
                tr = Transition(old, new, fault.inject(old))
                transitions.append(tr)
                observer.takeover(tr)
                time.sleep(max(0.0, tr.fault_at + profile.hold - time.time()))
            finally:
                restored = time.time()
                fault.restore(old)
            if observer.wait_backup(old, restored) is None:
                tr.notes.append(f"{old} did not log BACKUP within 20 s of its restore")
            time.sleep(profile.settle)
    except LabError as exc:
        result["error"] = str(exc)
    finally:
        try:
            sampler.wait(timeout=profile.duration + profile.stall_timeout + 30)
        except subprocess.TimeoutExpired:
            sampler.kill()
            sampler.wait()
    data: dict[str, Any] = (
        json.loads(raw.read_text()) if raw.exists() else {"ticks": [], "error": "no sampler output"}
    )
    ticks: list[list[float]] = data["ticks"]
    end = ticks[-1][0] if ticks else time.time()
    bounds = [tr.fault_at for tr in transitions] + [end]
    plane = lab.dataplane(ticks[0][0] if ticks else time.time() - 120)
    for tr, stop in zip(transitions, bounds[1:], strict=False):
        tr.outage, tr.outage_at = longest_gap(ticks, tr.fault_at - 0.5, stop)
        if tr.api_done_at is not None:
            # Ownership must stay put once taken: anything moving away is two gateways fighting.
            tr.moved_away = sum(1 for e in plane if tr.api_done_at < e.ts < stop and moves_away(e, tr.new))
    result |= {
        "intact": data.get("intact", False),
        "download_error": data.get("error"),
        "bytes": data.get("total"),
        "transitions": [tr.figures() for tr in transitions],
        "dataplane": [asdict(e) for e in plane],
    }
    return result


def moves_away(event: PlaneEvent, owner: str) -> bool:
    """An EIP leaving `owner` (to a peer or to nobody), or a private route to another gateway."""
    if event.kind == "eip":
        return event.host != owner
    return event.host is not None and event.host.startswith("gw") and event.host != owner


def point_routes_at(lab: Lab, host: str) -> None:
    """Seed runs start as a seed pair would: 0.0.0.0/0 at the master (the seed itself never moves it)."""
    ec2 = lab.ec2()
    eni = lab.lan_eni(host)
    for rtb, owner in lab.ownership()["routes"].items():
        if owner != host:
            ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=eni)


def expected_digest(size: int) -> str | None:
    """SHA-256 of the internet host's deterministic stream, from the lab's own generator if it has one."""
    try:
        from nat_gateway_ha_lab import internet
    except ImportError:
        return None
    fn = getattr(internet, "sha256", None)
    return str(fn(size)) if callable(fn) else None
