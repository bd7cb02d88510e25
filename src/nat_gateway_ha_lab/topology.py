"""The lab's VPC, written down once: subnets, hosts, interfaces, addresses and MACs.

Everything else in the lab reads this: the network builder wires it, the cloud seeds moto with it, the IMDS
emulator answers from it (through moto), and inventories/lab mirrors its addresses. The layout is the seed's:
two gateways in two AZs, eth0 on a public subnet with a secondary IP for the EIP, eth1 on a private subnet.
Documentation ranges stand for the internet (TEST-NET-2 for the internet host, TEST-NET-3 for EIPs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

PREFIX = "natlab"  # every namespace, bridge, veth and container the lab makes starts with this

VPC_CIDR = IPv4Network("10.77.0.0/16")
REGION = "eu-west-1"

MGMT_NET = IPv4Interface("10.254.77.1/24")  # controller side of the management bridge (root namespace)
MOTO_PORT = 5077  # moto listens on MGMT_NET.ip:MOTO_PORT
IMDS_ADDR = IPv4Address("169.254.169.254")  # reached by every host through its management interface

INTERNET_HOST = IPv4Interface("198.51.100.10/24")  # TEST-NET-2; the VPC's IGW side is .1
# More addresses of the internet host: the gateways' upstream probes need several targets for a majority.
UPSTREAM_TARGETS = (INTERNET_HOST.ip, IPv4Address("198.51.100.11"), IPv4Address("198.51.100.12"))
IGW_OUTSIDE = IPv4Interface("198.51.100.1/24")
EIP_POOL = IPv4Network("203.0.113.0/24")  # TEST-NET-3: moto's public IPs are drawn from here in the lab
# EC2's regional endpoint as the gateways see it: a public address on the internet side, so an agent reaches
# it only through its WAN, the VPC router and the IGW, with a public address of its own (as on AWS). The
# internet host forwards it to moto; the controller keeps calling moto directly over the management bridge.
EC2_API = IPv4Address("198.51.100.20")
EC2_API_PORT = 80
INET_MGMT = IPv4Interface("10.254.77.2/24")  # the internet host's leg on the management bridge, towards moto


@dataclass(frozen=True)
class Subnet:
    name: str
    cidr: IPv4Network
    az: str
    private: bool  # private subnets get their own route table tagged Network=private

    @property
    def router(self) -> IPv4Address:
        """AWS puts the VPC router at the subnet's first host address."""
        return self.cidr.network_address + 1

    @property
    def bridge(self) -> str:
        return f"{PREFIX}-{self.name}"[:15]


@dataclass(frozen=True)
class Nic:
    name: str  # name inside the host: eth0, eth1
    subnet: str
    address: IPv4Address
    mac: str
    secondary: tuple[IPv4Address, ...] = ()
    # An EIP on the primary address: the gateways' own path to EC2's public endpoint, in the tests' worlds
    # (seed.py). The lab's gateways get theirs from playbooks/provision.yml (api_path public_ip, drawn from
    # the EIP pool). Without one the agent cannot call EC2, as on AWS.
    public: IPv4Address | None = None


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # "gateway" or "client"
    mgmt: IPv4Address
    nics: tuple[Nic, ...] = field(default_factory=tuple)

    @property
    def netns(self) -> str:
        return f"{PREFIX}-{self.name}"

    def nic(self, name: str) -> Nic:
        return next(n for n in self.nics if n.name == name)


SUBNETS: tuple[Subnet, ...] = (
    Subnet("pub-a", IPv4Network("10.77.0.0/24"), f"{REGION}a", private=False),
    Subnet("pub-b", IPv4Network("10.77.1.0/24"), f"{REGION}b", private=False),
    Subnet("lan-a", IPv4Network("10.77.3.0/24"), f"{REGION}a", private=True),
    Subnet("lan-b", IPv4Network("10.77.4.0/24"), f"{REGION}b", private=True),
)

HOSTS: tuple[Host, ...] = (
    Host(
        "gw1",
        "gateway",
        IPv4Address("10.254.77.11"),
        (
            Nic(
                "eth0",
                "pub-a",
                IPv4Address("10.77.0.233"),
                "02:77:00:00:01:00",
                (IPv4Address("10.77.0.234"),),
                IPv4Address("203.0.113.21"),
            ),
            Nic("eth1", "lan-a", IPv4Address("10.77.3.220"), "02:77:00:00:01:01"),
        ),
    ),
    Host(
        "gw2",
        "gateway",
        IPv4Address("10.254.77.12"),
        (
            Nic(
                "eth0",
                "pub-b",
                IPv4Address("10.77.1.53"),
                "02:77:00:00:02:00",
                (IPv4Address("10.77.1.54"),),
                IPv4Address("203.0.113.22"),
            ),
            Nic("eth1", "lan-b", IPv4Address("10.77.4.53"), "02:77:00:00:02:01"),
        ),
    ),
    Host(
        "client",
        "client",
        IPv4Address("10.254.77.20"),
        (Nic("eth0", "lan-a", IPv4Address("10.77.3.92"), "02:77:00:00:03:00"),),
    ),
)

VIP = IPv4Interface("10.240.240.240/32")
PAIR = "natgw_lab"  # the pair's group in inventories/lab (names what provisioning creates for it)


def subnet(name: str) -> Subnet:
    return next(s for s in SUBNETS if s.name == name)


def host(name: str) -> Host:
    return next(h for h in HOSTS if h.name == name)


def gateways() -> tuple[Host, ...]:
    return tuple(h for h in HOSTS if h.role == "gateway")
