"""The one door to moto's private model: every read or write of moto's backends and model objects goes here.

moto's public surface (`mock_aws`, the HTTP server) covers what the agent does through the EC2 API; the lab
also needs what the API cannot give: writing an ENI's MAC (EC2 picks MACs, the containers' NICs have fixed
ones), reading the VPC's state on every mutation for the data plane (without an API round trip inside the
request that caused it), each instance's facts for the IMDS emulator, the account moto serves an access key
in (for the throttle's buckets), and emptying every backend between tests. Those reach into moto's internals
(`ec2_backends`, model attributes such as `Route.interface` or `Instance._placement`), which change between
moto releases: a moto upgrade should touch this module, `moto_fixes.py` (the AWS-behaviour fixes, which
patch moto's classes by nature) and `cloud.py`'s server start and instrumentation, nothing else. Callers get
plain typed values, never moto objects. moto is imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from nat_gateway_ha_lab import topology as topo
from nat_gateway_ha_lab.dataplane import BLACKHOLE, IGW_LINK, CloudView, Eip, Target

DEFAULT_ACCOUNT = "123456789012"  # moto's default account id


@dataclass(frozen=True)
class NicFacts:
    """An instance's ENI as IMDS describes it."""

    device_index: int
    eni_id: str
    mac: str
    private_ips: tuple[str, ...]  # primary first
    subnet_id: str
    subnet_cidr: str
    vpc_id: str


@dataclass(frozen=True)
class InstanceFacts:
    """What the IMDS emulator answers from: one instance, read from moto's EC2 state."""

    instance_id: str
    instance_type: str
    image_id: str
    region: str
    az: str
    http_tokens: str  # "required" or "optional"
    nics: tuple[NicFacts, ...]  # primary (device index 0) first


@contextlib.contextmanager
def mock() -> Iterator[None]:
    """moto in-process (`mock_aws`): every boto3 client created inside talks to an empty, private cloud."""
    from moto import mock_aws

    with mock_aws():
        yield


def ec2_backend(region: str = topo.REGION, account: str = DEFAULT_ACCOUNT) -> Any:
    """moto's EC2 backend for a region: the state both modes (mock_aws and the server) share."""
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def reset_all() -> None:
    """Empty every backend of every service, as `POST /moto-api/reset` does."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def account_for_access_key(access_key: str) -> str:
    """The account moto serves a request signed with `access_key` in (its IAM users' keys map to theirs)."""
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


def eni_mac_setter(region: str = topo.REGION, account: str = DEFAULT_ACCOUNT) -> Callable[[str, str], None]:
    """A `set_mac(eni_id, mac)` for a moto running in this process: EC2 has no API call that sets a MAC."""
    backend = ec2_backend(region, account)

    def set_mac(eni_id: str, mac: str) -> None:
        backend.get_network_interface(eni_id).mac_address = mac

    return set_mac


def pin_macs(region: str = topo.REGION, account: str = DEFAULT_ACCOUNT) -> int:
    """Give every ENI at an address the topology gives a host's NIC that NIC's MAC; returns how many changed.

    EC2 picks an ENI's MAC and the instance's NIC carries it; the lab's containers have their NICs (fixed
    MACs) before provisioning creates the ENIs, so the cloud takes the hardware's instead. Called after
    every mutation of the lab's cloud, so an ENI has its MAC before anyone can read it.
    """
    wanted = {(str(n.address), str(topo.subnet(n.subnet).cidr)): n.mac for h in topo.HOSTS for n in h.nics}
    changed = 0
    for eni in list(ec2_backend(region, account).enis.values()):
        mac = wanted.get((str(eni.private_ip_address), eni.subnet.cidr_block))
        if mac is not None and eni.mac_address != mac:
            eni.mac_address = mac
            changed += 1
    return changed


def running_instance(name: str, region: str = topo.REGION, account: str = DEFAULT_ACCOUNT) -> str | None:
    """The id of the running (or pending) instance whose Name tag is `name`, as IMDS needs it per caller."""
    backend = ec2_backend(region, account)
    for reservation in list(backend.reservations.values()):
        for instance in reservation.instances:
            live = instance._state.name in ("pending", "running", "stopping", "stopped")
            if live and backend.tags.get(instance.id, {}).get("Name") == name:
                return str(instance.id)
    return None


def instance_facts(
    instance_id: str, region: str = topo.REGION, account: str = DEFAULT_ACCOUNT
) -> InstanceFacts | None:
    """One instance's facts for IMDS, or None when moto does not know the id."""
    backend = ec2_backend(region, account)
    found = [i for r in list(backend.reservations.values()) for i in r.instances if i.id == instance_id]
    if not found:
        return None
    instance = found[0]
    nics = [instance.nics[k] for k in sorted(instance.nics)]
    return InstanceFacts(
        instance_id=instance.id,
        instance_type=instance.instance_type,
        image_id=instance.image_id,
        region=backend.region_name,
        az=instance._placement.zone,
        http_tokens=str(instance.metadata_options.http_tokens),
        nics=tuple(_nic_facts(nic) for nic in nics),
    )


def _nic_facts(nic: Any) -> NicFacts:
    ips = [p["PrivateIpAddress"] for p in nic.private_ip_addresses] or [nic.private_ip_address]
    return NicFacts(
        device_index=nic.device_index if nic.device_index is not None else 0,
        eni_id=nic.id,
        mac=nic.mac_address,
        private_ips=tuple(ips),
        subnet_id=nic.subnet.id,
        subnet_cidr=nic.subnet.cidr_block,
        vpc_id=nic.subnet.vpc_id,
    )


def cloud_view(region: str = topo.REGION, account: str = DEFAULT_ACCOUNT) -> CloudView:
    """The lab VPC's state as the data plane follows it, read from this process's moto (server or mock)."""
    backend = ec2_backend(region, account)
    for attempt in range(5):  # other request threads may mutate dicts while we iterate them
        try:
            return _read_view(backend)
        except RuntimeError:
            if attempt == 4:
                raise
            time.sleep(0.001)
    raise AssertionError("unreachable")


def _route_target(route: Any, eni_target: Callable[[Any], Target]) -> Target:
    """A route's target as the kernel sees it: an ENI's address, the internet host, or a blackhole."""
    if route.interface is not None:
        return eni_target(route.interface)
    if route.instance is not None:
        return eni_target(route.instance.nics[0])
    if route.gateway is not None and str(route.gateway.id).startswith("igw-"):
        return Target(f"{route.gateway.id} (internet)", topo.INTERNET_HOST.ip, IGW_LINK)
    return BLACKHOLE


def _read_view(backend: Any) -> CloudView:
    """moto's route tables, ENIs and EIPs in the lab VPC, resolved to what the kernel needs."""
    view = CloudView()
    vpc = next((v for v in list(backend.vpcs.values()) if v.cidr_block == str(topo.VPC_CIDR)), None)
    if vpc is None:
        return view
    bridge_of = {str(s.cidr): s.bridge for s in topo.SUBNETS}
    name_of = {str(s.cidr): s.name for s in topo.SUBNETS}

    def host(instance: Any) -> str:
        return str(backend.tags.get(instance.id, {}).get("Name", instance.id)) if instance else "-"

    def eni_target(eni: Any) -> Target:
        label = f"{eni.id} ({host(eni.instance)})"
        bridge = bridge_of.get(eni.subnet.cidr_block)
        if eni.instance is None or bridge is None:
            return Target(label)
        return Target(label, IPv4Address(eni.private_ip_address), bridge)

    main_rtb = None
    for rtb in list(backend.route_tables.values()):
        if rtb.vpc_id != vpc.id:
            continue
        if rtb.main_association_id is not None:
            main_rtb = rtb.id
        table: dict[str, Target] = {}
        for route in list(rtb._routes.values()):
            if not route.local and route.destination_cidr_block:
                table[route.destination_cidr_block] = _route_target(route, eni_target)
        view.routes[rtb.id] = table
        for subnet_id in list(rtb._associations.values()):
            if subnet_id.startswith("subnet-"):
                cidr = backend.get_subnet(subnet_id).cidr_block
                if cidr in name_of:
                    view.subnet_tables[name_of[cidr]] = rtb.id
    for sn in topo.SUBNETS:
        if sn.name not in view.subnet_tables and main_rtb is not None:
            view.subnet_tables[sn.name] = main_rtb

    for eni in list(backend.enis.values()):
        if eni.subnet.vpc_id == vpc.id and eni.source_dest_check in (True, "true"):
            addrs = {eni.private_ip_address, *(p["PrivateIpAddress"] for p in eni.private_ip_addresses)}
            view.checked[eni.mac_address] = tuple(sorted(IPv4Address(a) for a in addrs))

    for eip in list(backend.addresses):
        public = IPv4Address(eip.public_ip)
        eni = eip.eni
        if eni is None or eni.subnet.vpc_id != vpc.id:
            view.eips[public] = None
        else:
            view.eips[public] = Eip(IPv4Address(eip.private_ip_address), host(eni.instance))
    return view
