"""Seed the lab's EC2 API with the VPC that topology.py describes, so the cloud and the hosts agree.

Everything goes through the EC2 API except the ENIs' MAC addresses: EC2 picks those itself and the API has
no call to set them, while the containers' NICs carry fixed MACs; so the caller passes `set_mac`, which
writes them into the cloud (for the lab, `moto_model.eni_mac_setter()`).

Initial state, chosen so that the first converge has something to do:
- every private route table's 0.0.0.0/0 points at gw1's LAN ENI, as if gw1 had owned the pair before;
- the EIP is allocated and NOT associated: whichever gateway wins the first election must claim it, so the
  client's egress proves that the agent associated it (traffic from an address without an EIP is dropped).

The lab seeds with `gateways=False`: only what a user brings (the VPC, its subnets and route tables, the
pair's EIP, the client), and `playbooks/provision.yml` creates the gateways, as on AWS; `adopt` then reads
them back for cloud.json. The tests' and benchmarks' worlds launch the gateways here (no Ansible, fast).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nat_gateway_ha import atomic
from nat_gateway_ha_lab import topology as topo

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagSpecificationTypeDef

LAB_EIP = topo.EIP_POOL.network_address + 10  # 203.0.113.10: the pair's EIP
MGMT_TAG = "natlab:mgmt-ip"  # instances carry their management address: the IMDS emulator maps callers by it
HOST_TAG = "natlab:host"
PRIVATE_TAG = ("Network", "private")  # the seed's selection tag, on private subnets and their route tables
IMAGE_ID = "ami-0b1e0d0c0a0d0e0f0"  # any id: moto does not validate it, the containers are the real OS
EXTRA_PREFIX = 28  # benchmark subnets: /28, the smallest AWS allows, carved from the VPC's upper half

SetMac = Callable[[str, str], None]


@dataclass
class NicState:
    eni_id: str
    mac: str
    subnet: str
    device_index: int
    private_ips: list[str]


@dataclass
class InstanceState:
    instance_id: str
    mgmt_ip: str
    nics: dict[str, NicState] = field(default_factory=dict)


@dataclass
class CloudState:
    """The IDs moto assigned, written to cloud.json for the CLI, the data plane and the benchmarks."""

    endpoint_url: str
    region: str
    vpc_id: str
    igw_id: str
    subnets: dict[str, str]
    main_route_table: str
    public_route_table: str
    private_route_tables: dict[str, str]  # subnet name -> rtb
    extra_route_tables: list[str]
    instances: dict[str, InstanceState]
    eip_public_ip: str
    eip_allocation_id: str

    def write(self, path: Path) -> None:
        atomic.write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> CloudState:
        raw: dict[str, Any] = json.loads(path.read_text())
        instances = {
            name: InstanceState(
                instance_id=inst["instance_id"],
                mgmt_ip=inst["mgmt_ip"],
                nics={n: NicState(**nic) for n, nic in inst["nics"].items()},
            )
            for name, inst in raw.pop("instances").items()
        }
        return cls(instances=instances, **raw)


def _tags(kind: str, name: str, *extra: tuple[str, str]) -> list[TagSpecificationTypeDef]:
    tags = [{"Key": "Name", "Value": name}, *({"Key": k, "Value": v} for k, v in extra)]
    return [{"ResourceType": kind, "Tags": tags}]  # type: ignore[typeddict-item]


def extra_subnets(count: int) -> list[IPv4Network]:
    """CIDRs for benchmark subnets: the VPC's upper half, clear of every subnet the topology names."""
    upper = list(topo.VPC_CIDR.subnets(prefixlen_diff=1))[1]
    taken = [s.cidr for s in topo.SUBNETS]
    free = (c for c in upper.subnets(new_prefix=EXTRA_PREFIX) if not any(c.overlaps(t) for t in taken))
    cidrs = [c for _, c in zip(range(count), free, strict=False)]
    if len(cidrs) < count:
        raise ValueError(f"extra_route_tables={count}: the VPC has room for {len(cidrs)} benchmark subnets")
    return cidrs


def _vpc(ec2: EC2Client) -> tuple[str, str, str, str]:
    """The VPC with its internet gateway, its main table (named) and a public table routed to the IGW."""
    vpc_id = ec2.create_vpc(
        CidrBlock=str(topo.VPC_CIDR), TagSpecifications=_tags("vpc", f"{topo.PREFIX}-vpc")
    )["Vpc"]["VpcId"]
    igw_id = ec2.create_internet_gateway(TagSpecifications=_tags("internet-gateway", f"{topo.PREFIX}-igw"))[
        "InternetGateway"
    ]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    main_rtb = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_tags(Resources=[main_rtb], Tags=[{"Key": "Name", "Value": f"{topo.PREFIX}-main"}])
    public_rtb = ec2.create_route_table(
        VpcId=vpc_id, TagSpecifications=_tags("route-table", f"{topo.PREFIX}-public")
    )["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    return vpc_id, igw_id, main_rtb, public_rtb


def seed(
    ec2: EC2Client,
    set_mac: SetMac,
    *,
    endpoint_url: str,
    extra_route_tables: int = 0,
    eip_owner: str | None = None,
    gateways: bool = True,
) -> CloudState:
    """Create the topology's VPC in an empty EC2 API and return what was created.

    `eip_owner` (a gateway's name) starts the EIP on that gateway's WAN secondary IP, as after an election:
    the tests' starting point; the lab leaves it unassociated so the first election must claim it.
    `gateways=False` leaves the gateways out (provisioning makes them): the private tables start without a
    default route, as in a VPC that has no NAT yet.
    """
    if extra_route_tables < 0:
        raise ValueError(f"extra_route_tables must be >= 0, not {extra_route_tables}")
    if eip_owner is not None and not gateways:
        raise ValueError("eip_owner needs the gateways")
    vpc_id, igw_id, main_rtb, public_rtb = _vpc(ec2)
    subnets: dict[str, str] = {}
    for sn in topo.SUBNETS:
        extra = (PRIVATE_TAG,) if sn.private else ()
        subnets[sn.name] = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=str(sn.cidr),
            AvailabilityZone=sn.az,
            TagSpecifications=_tags("subnet", f"{topo.PREFIX}-{sn.name}", *extra),
        )["Subnet"]["SubnetId"]

    hosts = [h for h in topo.HOSTS if gateways or h.role != "gateway"]
    instances = {h.name: launch(ec2, set_mac, h, subnets) for h in hosts}
    previous_owner = instances[topo.gateways()[0].name].nics["eth1"].eni_id if gateways else None

    private_rtbs: dict[str, str] = {}
    for sn in topo.SUBNETS:
        if sn.private:
            private_rtbs[sn.name] = _private_table(
                ec2, vpc_id, f"{topo.PREFIX}-{sn.name}", subnets[sn.name], previous_owner
            )
        else:
            ec2.associate_route_table(RouteTableId=public_rtb, SubnetId=subnets[sn.name])

    extra_rtbs = add_extra_route_tables(ec2, vpc_id, previous_owner, extra_route_tables)

    eip = ec2.allocate_address(
        Domain="vpc", Address=str(LAB_EIP), TagSpecifications=_tags("elastic-ip", f"{topo.PREFIX}-eip")
    )
    if eip_owner is not None:
        _claim(ec2, eip["AllocationId"], instances[eip_owner])
    if gateways:
        api_path(ec2, instances)
    return CloudState(
        endpoint_url=endpoint_url,
        region=topo.REGION,
        vpc_id=vpc_id,
        igw_id=igw_id,
        subnets=subnets,
        main_route_table=main_rtb,
        public_route_table=public_rtb,
        private_route_tables=private_rtbs,
        extra_route_tables=extra_rtbs,
        instances=instances,
        eip_public_ip=eip["PublicIp"],
        eip_allocation_id=eip["AllocationId"],
    )


def add_extra_route_tables(
    ec2: EC2Client, vpc_id: str, target_eni: str | None, count: int, first: int = 0
) -> list[str]:
    """Benchmark tables: each with a subnet of its own (the seed's script finds tables through subnets),
    tagged Network=private, 0.0.0.0/0 -> `target_eni` (if any). `first` numbers them after existing ones."""
    rtbs = []
    for i, cidr in enumerate(extra_subnets(first + count)[first:], start=first):
        name = f"{topo.PREFIX}-bench-{i:03d}"
        sub = ec2.create_subnet(
            VpcId=vpc_id,
            CidrBlock=str(cidr),
            AvailabilityZone=topo.SUBNETS[i % 2].az,
            TagSpecifications=_tags("subnet", name, PRIVATE_TAG),
        )["Subnet"]["SubnetId"]
        rtbs.append(_private_table(ec2, vpc_id, name, sub, target_eni))
    return rtbs


def resize_extra_route_tables(ec2: EC2Client, state: CloudState, count: int) -> CloudState:
    """Grow or shrink the benchmark tables to `count` through the API; new ones point where the pair's
    first private table points now, so they start owned by the current owner."""
    if count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    have = len(state.extra_route_tables)
    if count > have:
        first = next(iter(state.private_route_tables.values()))
        routes = ec2.describe_route_tables(RouteTableIds=[first])["RouteTables"][0]["Routes"]
        owner = next(
            (r.get("NetworkInterfaceId") for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"),
            None,
        )
        state.extra_route_tables += add_extra_route_tables(ec2, state.vpc_id, owner, count - have, first=have)
    while len(state.extra_route_tables) > count:
        rtb = state.extra_route_tables.pop()
        table = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
        for assoc in table["Associations"]:
            ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
            ec2.delete_subnet(SubnetId=assoc["SubnetId"])
        ec2.delete_route_table(RouteTableId=rtb)
    return state


def api_path(ec2: EC2Client, instances: dict[str, InstanceState]) -> None:
    """A public address on each primary WAN address that the topology gives one: the agents' way to EC2's
    public endpoint (a gateway's own traffic leaves from its primary address, which has no public mapping
    otherwise, as on AWS)."""
    for host in topo.HOSTS:
        for nic in host.nics:
            if nic.public is None:
                continue
            alloc = ec2.allocate_address(
                Domain="vpc",
                Address=str(nic.public),
                TagSpecifications=_tags("elastic-ip", f"{topo.PREFIX}-{host.name}-api"),
            )["AllocationId"]
            ec2.associate_address(
                AllocationId=alloc,
                NetworkInterfaceId=instances[host.name].nics[nic.name].eni_id,
                PrivateIpAddress=str(nic.address),
            )


def _claim(ec2: EC2Client, allocation_id: str, owner: InstanceState) -> None:
    """The pair's EIP on `owner`'s WAN secondary IP (eth0's first), where its agent puts it."""
    wan = owner.nics["eth0"]
    ec2.associate_address(
        AllocationId=allocation_id, NetworkInterfaceId=wan.eni_id, PrivateIpAddress=wan.private_ips[1]
    )


def _private_table(ec2: EC2Client, vpc_id: str, name: str, subnet_id: str, target_eni: str | None) -> str:
    rtb = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_tags("route-table", name, PRIVATE_TAG))[
        "RouteTable"
    ]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet_id)
    if target_eni is not None:
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=target_eni)
    return rtb


def launch(ec2: EC2Client, set_mac: SetMac, host: topo.Host, subnets: dict[str, str]) -> InstanceState:
    """ENIs first (fixed addresses, then fixed MACs), then an instance that takes them at their indexes."""
    nics: dict[str, NicState] = {}
    for index, nic in enumerate(host.nics):
        addrs = [nic.address, *nic.secondary]
        eni = ec2.create_network_interface(
            SubnetId=subnets[nic.subnet],
            PrivateIpAddresses=[{"PrivateIpAddress": str(a), "Primary": i == 0} for i, a in enumerate(addrs)],
            Description=f"{host.name} {nic.name}",
            TagSpecifications=_tags("network-interface", f"{host.name}-{nic.name}"),
        )["NetworkInterface"]
        set_mac(eni["NetworkInterfaceId"], nic.mac)
        nics[nic.name] = NicState(
            eni["NetworkInterfaceId"], nic.mac, nic.subnet, index, [str(a) for a in addrs]
        )
    az = topo.subnet(host.nics[0].subnet).az
    instance = ec2.run_instances(
        ImageId=IMAGE_ID,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        Placement={"AvailabilityZone": az},
        # What provisioning sets and the cloud module checks: IMDSv2 only, tokens never beyond the instance.
        MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
        NetworkInterfaces=[
            {"DeviceIndex": n.device_index, "NetworkInterfaceId": n.eni_id} for n in nics.values()
        ],
        TagSpecifications=_tags("instance", host.name, (MGMT_TAG, str(host.mgmt)), (HOST_TAG, host.name)),
    )["Instances"][0]
    return InstanceState(instance["InstanceId"], str(host.mgmt), nics)


def adopt(ec2: EC2Client, state: CloudState) -> CloudState:
    """`state` with the topology's gateways as EC2 knows them now (launched by provisioning, found by
    their Name tag), for cloud.json; raises LookupError naming a gateway that is not running."""
    for host in topo.gateways():
        found = ec2.describe_instances(
            Filters=[
                {"Name": "tag:Name", "Values": [host.name]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        instances = [i for r in found for i in r["Instances"]]
        if len(instances) != 1:
            raise LookupError(f"{len(instances)} running instances named {host.name}, not one")
        nics: dict[str, NicState] = {}
        for eni in instances[0]["NetworkInterfaces"]:
            index = eni["Attachment"]["DeviceIndex"]
            ips = sorted(eni["PrivateIpAddresses"], key=lambda a: not a.get("Primary"))
            subnet = next(s.name for s in topo.SUBNETS if IPv4Address(eni["PrivateIpAddress"]) in s.cidr)
            nics[host.nics[index].name] = NicState(
                eni["NetworkInterfaceId"],
                eni["MacAddress"],
                subnet,
                index,
                [a["PrivateIpAddress"] for a in ips],
            )
        state.instances[host.name] = InstanceState(instances[0]["InstanceId"], str(host.mgmt), nics)
    return state
