"""Cloud convergence against the number of managed route tables, for the agent and for the seed's script.

Extra private subnets, each with its own route table tagged Network=private (as the lab's seed option makes
them, in the VPC's upper half), are added to the running cloud through the EC2 API and removed afterwards,
so one lab serves every size. The agents are restarted after each change: they resolve tables at start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from faults import StopKeepalived
from lab import Lab, LabError
from nat_gateway_ha_lab import seed as lab_seed
from nat_gateway_ha_lab import topology
from runner import Observer, Profile, Transition
from seed import AGENT_UNIT, Baseline


@dataclass
class ExtraTables:
    """Benchmark subnets and their tables, added on top of the lab's own; `remove` deletes what it made."""

    lab: Lab
    made: list[tuple[str, str, str]] = field(default_factory=list)  # (subnet, rtb, association)

    def total(self) -> int:
        return len(self.lab.private_route_tables())

    def grow_to(self, total: int, target_eni: str, vip: str | None) -> None:
        """Add tables until `total` private tables exist, each routing 0.0.0.0/0 (and the VIP) to the ENI."""
        ec2 = self.lab.ec2()
        missing = total - self.total()
        if missing <= 0:
            return
        vpc = ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [str(topology.VPC_CIDR)]}])["Vpcs"][0]
        taken = [IPv4Network(s["CidrBlock"]) for s in ec2.describe_subnets()["Subnets"]]
        cidrs = [c for c in lab_seed.extra_subnets(total + 8) if not any(c.overlaps(t) for t in taken)]
        for i, cidr in enumerate(cidrs[:missing]):
            tags = [{"Key": "Network", "Value": "private"}, {"Key": "Name", "Value": f"natgw-bench-{i}"}]
            sub = ec2.create_subnet(
                VpcId=vpc["VpcId"],
                CidrBlock=str(cidr),
                AvailabilityZone=topology.SUBNETS[i % 2].az,
                TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
            )["Subnet"]["SubnetId"]
            rtb = ec2.create_route_table(
                VpcId=vpc["VpcId"], TagSpecifications=[{"ResourceType": "route-table", "Tags": tags}]
            )["RouteTable"]["RouteTableId"]
            assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=sub)["AssociationId"]
            ec2.create_route(
                RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=target_eni
            )
            if vip:
                ec2.create_route(
                    RouteTableId=rtb, DestinationCidrBlock=f"{vip}/32", NetworkInterfaceId=target_eni
                )
            self.made.append((sub, rtb, assoc))

    def remove(self) -> None:
        ec2 = self.lab.ec2()
        for sub, rtb, assoc in reversed(self.made):
            ec2.disassociate_route_table(AssociationId=assoc)
            ec2.delete_route_table(RouteTableId=rtb)
            ec2.delete_subnet(SubnetId=sub)
        self.made.clear()


def lan_eni(lab: Lab, host: str) -> str:
    addr = str(topology.host(host).nic("eth1").address)
    enis = lab.ec2().describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": [addr]}]
    )["NetworkInterfaces"]
    return str(enis[0]["NetworkInterfaceId"])


def agent_convergence(lab: Lab, sizes: list[int], runs: int, log: Any) -> dict[str, list[float | None]]:
    """Per size: `runs` stop-failovers after one warm-up, new master to the agent's last API call."""
    extra = ExtraTables(lab)
    fault = StopKeepalived()
    out: dict[str, list[float | None]] = {}
    try:
        for size in sizes:
            owner = lab.wait("a settled owner", lab.owner, 60, interval=0.5)
            extra.grow_to(size, lan_eni(lab, owner), None)
            for g in lab.gateways:
                lab.sh(g, f"systemctl restart {AGENT_UNIT}")
            time.sleep(1.0)
            observer = Observer(lab, Profile("project", converge_timeout=60), None)
            figures: list[float | None] = []
            for i in range(runs + 1):
                master = lab.wait("a single VRRP master", lab.vrrp_master, 30)
                new = next(g for g in lab.gateways if g != master)
                tr = Transition(master, new, fault.inject(lab, master))
                try:
                    observer.takeover(tr)
                except LabError as exc:
                    log(f"sweep agent {size} tables run {i}: {exc}")
                finally:
                    restored = time.time()
                    fault.restore(lab, master)
                    observer.wait_backup(master, restored)
                if i > 0:  # the first takeover after a restart warms the agent up
                    figures.append(tr.convergence)
                log(f"sweep agent {size} tables run {i}: convergence {tr.convergence}")
                time.sleep(1.0)
            out[str(size)] = figures
    finally:
        extra.remove()
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
    per_table = 1.6  # seconds per table measured here (lab-facts), used only to decide what fits
    try:
        for size, runs in sorted(plan.items()):
            if time.time() + runs * (4 + per_table * size) > budget_end:
                skipped.append(f"seed's script at {size} tables ({runs} runs): does not fit the time budget")
                continue
            owner = lab.ownership()["eips"].get(baseline.eip) or lab.gateways[0]
            extra.grow_to(size, lan_eni(lab, owner), baseline.vip)
            figures: list[float | None] = []
            host = next(g for g in lab.gateways if g != owner)
            for i in range(runs):
                start, end = baseline.run_script(host)
                figures.append(end - start)
                log(f"sweep seed {size} tables run {i} on {host}: {end - start:.2f} s")
                host = next(g for g in lab.gateways if g != host)
            out[str(size)] = figures
    finally:
        extra.remove()
    return out, skipped
