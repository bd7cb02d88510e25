"""Cloud convergence against the number of managed route tables, for the agent and for the seed's script.

The lab seed's benchmark tables (each with a private subnet of its own, tagged Network=private, so the
seed's script finds them through subnets as it does at AWS) are resized in the running cloud and put back
afterwards, so one lab serves every size. Agents are restarted after each change: they resolve at start.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lab import CLOUD_JSON, Lab, LabError
from nat_gateway_ha_lab import seed as lab_seed
from nat_gateway_ha_lab.faults import StopKeepalived
from nat_gateway_ha_lab.seed import CloudState
from runner import Observer, Profile, Transition
from seed import AGENT_UNIT, Baseline


@dataclass
class ExtraTables:
    """The lab seed's benchmark tables, resized through the EC2 API; `restore` puts the count back."""

    lab: Lab
    original: int | None = None

    def total(self) -> int:
        return len(self.lab.private_route_tables())

    def grow_to(self, total: int, vip: str | None) -> None:
        """Make `total` private tables exist; with `vip`, each has the VIP/32 a seed takeover leaves."""
        state = CloudState.read(CLOUD_JSON)
        if self.original is None:
            self.original = len(state.extra_route_tables)
        own = len(state.private_route_tables)
        state = lab_seed.resize_extra_route_tables(self.lab.ec2(), state, max(0, total - own))
        state.write(CLOUD_JSON)
        if vip:
            ec2 = self.lab.ec2()
            for rtb in [*state.private_route_tables.values(), *state.extra_route_tables]:
                routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
                target = next(
                    r["NetworkInterfaceId"] for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"
                )
                with contextlib.suppress(ClientError):  # already there: what an earlier takeover leaves
                    ec2.create_route(
                        RouteTableId=rtb, DestinationCidrBlock=f"{vip}/32", NetworkInterfaceId=target
                    )

    def restore(self) -> None:
        if self.original is not None:
            state = lab_seed.resize_extra_route_tables(
                self.lab.ec2(), CloudState.read(CLOUD_JSON), self.original
            )
            state.write(CLOUD_JSON)


def agent_convergence(lab: Lab, sizes: list[int], runs: int, log: Any) -> dict[str, list[float | None]]:
    """Per size: `runs` stop-failovers after one warm-up, new master to the agent's last API call."""
    extra = ExtraTables(lab)
    fault = StopKeepalived()
    out: dict[str, list[float | None]] = {}
    try:
        for size in sizes:
            lab.wait("a settled owner", lab.owner, 60, interval=0.5)
            extra.grow_to(size, None)
            for g in lab.gateways:
                lab.sh(g, f"systemctl restart {AGENT_UNIT}")
            time.sleep(1.0)
            observer = Observer(lab, Profile("project", converge_timeout=60), None)
            figures: list[float | None] = []
            for i in range(runs + 1):
                master = lab.wait("a single VRRP master", lab.vrrp_master, 30)
                new = next(g for g in lab.gateways if g != master)
                tr = Transition(master, new, fault.inject(master))
                try:
                    observer.takeover(tr)
                except LabError as exc:
                    log(f"sweep agent {size} tables run {i}: {exc}")
                finally:
                    restored = time.time()
                    fault.restore(master)
                    observer.wait_backup(master, restored)
                if i > 0:  # the first takeover after a restart warms the agent up
                    figures.append(tr.convergence)
                log(f"sweep agent {size} tables run {i}: convergence {tr.convergence}")
                time.sleep(1.0)
            out[str(size)] = figures
    finally:
        extra.restore()
        for g in lab.gateways:
            lab.sh(g, f"systemctl restart {AGENT_UNIT}", check=False)
    return out


def seed_convergence(
    lab: Lab, baseline: Baseline, plan: dict[int, int], log: Any, budget_end: float
) -> tuple[dict[str, list[float | None]], list[str]]:
    """Per size: the seed's script run by hand on alternate gateways; sizes that can't fit are skipped."""
    extra = ExtraTables(lab)
    out: dict[str, list[float | None]] = {}
    skipped: list[str] = []
    per_table = 4.5  # seconds per table measured by this bench on the shared machine; decides what fits
    try:
        for size, runs in sorted(plan.items()):
            if time.time() + runs * (4 + per_table * size) > budget_end:
                skipped.append(f"seed's script at {size} tables ({runs} runs): does not fit the time budget")
                continue
            owner = lab.ownership()["eips"].get(baseline.eip) or lab.gateways[0]
            extra.grow_to(size, baseline.vip)
            figures: list[float | None] = []
            host = next(g for g in lab.gateways if g != owner)
            for i in range(runs):
                start, end = baseline.run_script(host)
                figures.append(end - start)
                log(f"sweep seed {size} tables run {i} on {host}: {end - start:.2f} s")
                host = next(g for g in lab.gateways if g != host)
            out[str(size)] = figures
    finally:
        extra.restore()
    return out, skipped
