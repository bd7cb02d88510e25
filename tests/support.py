"""What the tests share besides fixtures, in one module: the lab's seeded VPC as a `World` and the agent
config for one of its gateways; routes and EIP as EC2 says; valid inventories and their rendering for the
pure tier; the guard for tests that build lab parts. Fixtures stay in conftest.py.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import jinja2
import pytest
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from nat_gateway_ha.inventory import Plan, plan
from nat_gateway_ha_lab import cli, moto_model, network, seed, topology


@dataclass
class World:
    """The lab's seeded VPC (seed.py) by name, with the client and endpoint the test reaches it through."""

    ec2: Any
    endpoint_url: str | None
    state: seed.CloudState

    @property
    def vpc_id(self) -> str:
        return self.state.vpc_id

    @property
    def subnets(self) -> dict[str, str]:
        return self.state.subnets

    @property
    def instances(self) -> dict[str, str]:  # host -> instance id
        return {h: i.instance_id for h, i in self.state.instances.items()}

    @property
    def main_table(self) -> str:
        return self.state.main_route_table

    @property
    def public_table(self) -> str:
        return self.state.public_route_table

    @property
    def private_tables(self) -> list[str]:  # the private subnets' tables, then the extra ones
        return [*self.state.private_route_tables.values(), *self.state.extra_route_tables]

    @property
    def eips(self) -> dict[str, str]:  # the pair's EIP: public ip -> allocation id
        return {self.state.eip_public_ip: self.state.eip_allocation_id}

    def eni(self, host: str, nic: str) -> str:
        return self.state.instances[host].nics[nic].eni_id


PRIVATE_SUBNETS = sum(1 for s in topology.SUBNETS if s.private)


def seed_world(ec2: Any, endpoint_url: str | None, private_tables: int = 5) -> World:
    """The lab's VPC, seeded by the lab's own seeder into this process's moto, with `private_tables` route
    tables tagged Network=private (at least one per private subnet) pointing at gw1's LAN ENI and the EIP on
    gw1's WAN secondary IP, as after a first election."""
    if private_tables < PRIVATE_SUBNETS:
        raise ValueError(f"private_tables={private_tables}: the lab VPC has {PRIVATE_SUBNETS} private tables")
    state = seed.seed(
        ec2,
        moto_model.eni_mac_setter(),
        endpoint_url=endpoint_url or "in-process",
        extra_route_tables=max(0, private_tables - PRIVATE_SUBNETS),
        eip_owner="gw1",
    )
    return World(ec2=ec2, endpoint_url=endpoint_url, state=state)


def test_client(endpoint_url: str | None) -> Any:
    """A boto3 EC2 client for test set-up and assertions (no retries, so faults are visible)."""
    return boto3.client(
        "ec2",
        region_name=topology.REGION,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


test_client.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def agent_config(world: World, host: str, imds_url: str, tmp: Any, **overrides: Any) -> Any:
    """An AgentConfig for `host` of the lab pair, as the role would render it (EIP on eth0's secondary IP)."""
    from nat_gateway_ha.config import AgentConfig

    h = topology.host(host)
    base: dict[str, Any] = {
        "pair": "lab",
        "host": host,
        "vrrp_instance": "VI_1",
        "region": topology.REGION,
        "endpoint_url": world.endpoint_url,
        "imds_url": imds_url,
        "insecure_endpoints": True,
        "wan_eni": {"mac": h.nic("eth0").mac},
        "lan_eni": {"mac": h.nic("eth1").mac},
        "eips": [{"eip": {"public_ip": "203.0.113.10"}, "private_ip": str(h.nic("eth0").secondary[0])}],
        "route_tables": {"tags": {"Network": "private"}},
        "fifo_path": str(tmp / "notify.fifo"),
        "state_dir": str(tmp / "state"),
        "reconcile_interval": 5.0,
    }
    base.update(overrides)
    return AgentConfig.model_validate(base)


PRIORITIES = {"gw1": 150, "gw2": 140}  # what the inventory derives for the lab pair


def peers_of(host: str) -> dict[str, Any]:
    """The agent config keys that make `host` aware of its peer, as the role renders them."""
    return {
        "priority": PRIORITIES[host],
        "peers": [
            {
                "host": g.name,
                "address": str(g.nic("eth1").address),
                "priority": PRIORITIES[g.name],
                "lan_mac": g.nic("eth1").mac,
                "wan_mac": g.nic("eth0").mac,
            }
            for g in topology.gateways()
            if g.name != host
        ],
    }


def route_targets(ec2: Any, tables: list[str], dest: str = "0.0.0.0/0") -> dict[str, str | None]:
    """Route table id -> the ENI its `dest` route points at (None when missing)."""
    out: dict[str, str | None] = {t: None for t in tables}
    for i in range(0, len(tables), 100):
        for t in ec2.describe_route_tables(RouteTableIds=tables[i : i + 100])["RouteTables"]:
            for r in t["Routes"]:
                if r.get("DestinationCidrBlock") == dest:
                    out[t["RouteTableId"]] = r.get("NetworkInterfaceId")
    return out


def eip_target(ec2: Any, public_ip: str = "203.0.113.10") -> tuple[str | None, str | None]:
    a = ec2.describe_addresses(PublicIps=[public_ip])["Addresses"][0]
    return a.get("NetworkInterfaceId"), a.get("PrivateIpAddress")


# -- inventories for the pure tier ----------------------------------------

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "roles/nat_gateway_ha/templates/etc"
Inv = dict[str, Any]


def _pair(n: int) -> dict[str, Any]:
    return {
        "vrid": 50 + n,
        "vips": [f"10.24{n}.0.1/32"],
        "eips": [{"allocation_id": f"eipalloc-0{n}"}],
        "route_tables": {"ids": [f"rtb-0{n}"]},
    }


def host_spec(pair: int, i: int) -> dict[str, Any]:
    return {
        "wan_address": f"10.{pair}0.{i}.10/24",
        "wan_mac": f"02:00:00:00:{pair}{i}:00",
        "lan_address": f"10.{pair}0.{i + 4}.10/24",
        "lan_mac": f"02:00:00:00:{pair}{i}:01",
        "eip_private_ips": [f"10.{pair}0.{i}.11"],
    }


def base() -> Inv:
    """Pairs natgw_a (gw-a1, gw-a2) and natgw_b (gw-b1, gw-b2), sharing nothing."""
    return {
        "pairs": {
            f"natgw_{p}": {"spec": _pair(n), "hosts": {f"gw-{p}{i}": host_spec(n, i) for i in (1, 2)}}
            for n, p in ((1, "a"), (2, "b"))
        },
        "vars": {},
    }


def run(inv: Inv) -> Plan:
    pairs: dict[str, list[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for name, group in inv["pairs"].items():
        pairs[name] = list(group["hosts"])
        for host, spec in group["hosts"].items():
            hostvars[host] = {"nat_gateway_ha_pair": group["spec"], "nat_gateway_ha_host": spec}
            hostvars[host] |= inv["vars"].get(host, {})
    return plan(pairs, hostvars, use_facts=False)


def pair(name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][name]["spec"].update(over)

    return change


def host(pair_name: str, name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][pair_name]["hosts"][name].update(over)

    return change


def hvar(name: str, **over: Any) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["vars"].setdefault(name, {}).update(over)

    return change


def rename_host(pair_name: str, old: str, new: str) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        hosts = inv["pairs"][pair_name]["hosts"]
        hosts[new] = hosts.pop(old)

    return change


def rename_pair(old: str, new: str) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        inv["pairs"][new] = inv["pairs"].pop(old)

    return change


def both(*changes: Callable[[Inv], None]) -> Callable[[Inv], None]:
    def change(inv: Inv) -> None:
        for c in changes:
            c(inv)

    return change


def _word_filter() -> Callable[..., str]:
    spec = importlib.util.spec_from_file_location(
        "word", ROOT / "roles/nat_gateway_ha/filter_plugins/nat_gateway_ha_word.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    word: Callable[..., str] = module.nat_gateway_ha_word
    return word


def render(name: str, host_vars: dict[str, Any]) -> str:
    """The role's template rendered as Ansible would (its second-wall filter included), without Ansible."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined)
    env.filters["nat_gateway_ha_word"] = _word_filter()
    return env.get_template(name).render(nat_gateway_ha_this=host_vars, ansible_managed="Ansible managed")


def plain_agent_config(**overrides: Any) -> dict[str, Any]:
    """The least an AgentConfig needs (ENIs by device index, one EIP by allocation), as the JSON dict."""
    return {
        "pair": "p",
        "host": "gw1",
        "vrrp_instance": "VI_p",
        "wan_eni": {"device_index": 0},
        "lan_eni": {"device_index": 1},
        "eips": [{"eip": {"allocation_id": "eipalloc-1"}, "private_ip": "10.0.0.10"}],
        "route_tables": {"tags": {"Network": "private"}},
    } | overrides


# -- tests that build lab parts ----------------------------------------


@contextmanager
def exclusive_lab() -> Iterator[None]:
    """Hold the natgw-lab lock; skip if not root or if a lab is already up (it belongs to someone)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    cli.LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with cli.LOCK_FILE.open("w") as probe:  # a lab run (make lab, the bench) holds it: never wait on it
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.skip("another natgw-lab run holds the lab lock; not touching its lab")
        fcntl.flock(probe, fcntl.LOCK_UN)
    with cli._locked():
        if network.namespaces():
            pytest.skip(f"a lab is up ({', '.join(network.namespaces())}); not touching it")
        yield


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus' text parsed the way Prometheus parses it: {(sample name, labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels` (KeyError if none or several)."""
    found = [v for (n, lb), v in samples.items() if n == name and set(labels.items()) <= lb]
    if len(found) != 1:
        raise KeyError(f"{len(found)} samples of {name} with {labels}")
    return found[0]


def cloudwatch_stat(
    cw: Any, metric: str, stat: str, since: datetime | None = None, **dims: str
) -> float | None:
    """The `stat` of a NatGatewayHA metric with exactly these dimensions since `since` (10 minutes ago)."""
    now = datetime.now(UTC)
    points = cw.get_metric_statistics(
        Namespace="NatGatewayHA",
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=since or now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
        Period=600,
        Statistics=[stat],
    )["Datapoints"]
    return max((p[stat] for p in points), default=None)
