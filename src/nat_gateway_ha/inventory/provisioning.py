"""What `playbooks/provision.yml` creates for each pair, computed from the inventory before any AWS call.

The pair group's `nat_gateway_ha_provision` says where (VPC, AMI, instance type, the agent's path to EC2);
the pair and host specs the role uses say the rest: each gateway's ENIs sit at its `wan_address` and
`lan_address` (which pick the subnets), with `eip_private_ips` as the WAN ENI's secondary addresses. Every
error names the pair, the host and the field, and nothing in AWS is touched until the whole inventory passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Interface, IPv4Network
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from nat_gateway_ha.fields import StrictModel, TagKey, TagValue
from nat_gateway_ha.inventory import _check_names, _parse_pair
from nat_gateway_ha.inventory.errors import Errors, PlanError
from nat_gateway_ha.inventory.models import HOST_VAR, PAIR_VAR, HostSpec, PairSpec

PROVISION_VAR = "nat_gateway_ha_provision"
PAIR_TAG = "nat-gateway-ha:pair"  # on everything provisioning creates; the dynamic inventory groups by it
HOST_TAG = "nat-gateway-ha:host"
CREATED_TAG = "nat-gateway-ha:created"  # only what carries it is released by teardown (never a user's EIP)
EPHEMERAL = (1024, 65535)


class ProvisionSpec(StrictModel):
    """`nat_gateway_ha_provision`, in the pair group's vars: where and how provisioning builds the pair."""

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{1,32}$")] | None = Field(
        None, description="The VPC the pair serves; its subnets hold the gateways' addresses."
    )
    vpc_name: Annotated[TagValue, Field(min_length=1)] | None = Field(
        None, description="The VPC by its Name tag instead (exactly one VPC may carry it)."
    )
    image_id: Annotated[
        str, Field(pattern=r"^(ami-[0-9a-f]{8,17}|resolve:ssm:/[A-Za-z0-9_./-]{1,1000})$")
    ] = Field(
        description="The AMI, or `resolve:ssm:` and a public parameter, e.g. "
        "`resolve:ssm:/aws/service/debian/release/12/latest/amd64`."
    )
    instance_type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = Field(
        "t3.micro", description="Instance type of both gateways (match the AMI's architecture)."
    )
    key_name: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        None, description="EC2 key pair for SSH; none when logins come another way (SSM, baked keys)."
    )
    admin_cidrs: list[IPv4Network] = Field(
        default_factory=list, max_length=32, description="Sources allowed to SSH to the gateways' LAN ENIs."
    )
    api_path: Literal["public_ip", "vpc_endpoint"] = Field(
        "public_ip",
        description="How each agent reaches EC2 at failover time: an EIP on each gateway's primary WAN "
        "address (`public_ip`), or an EC2 interface endpoint in the gateways' WAN subnets (`vpc_endpoint`).",
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=40, description="Extra tags on everything provisioning creates."
    )

    @model_validator(mode="after")
    def _one_vpc(self) -> ProvisionSpec:
        if (self.vpc_id is None) == (self.vpc_name is None):
            raise ValueError("give exactly one of vpc_id or vpc_name")
        return self


def api_eip_name(pair: str, host: str) -> str:
    """The Name tag of a gateway's own public address (api_path public_ip), which the lab's faults find."""
    return f"nat-gateway-ha-{pair}-{host}-api"


def _rule(proto: str, ports: tuple[int, int] | None, cidr: str, why: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"proto": proto, "cidr_ip": cidr, "rule_desc": why}
    if ports is not None:
        rule.update(from_port=ports[0], to_port=ports[1])
    return rule


def security_groups(
    pair: str, spec: PairSpec, prov: ProvisionSpec, hosts: Sequence[HostSpec]
) -> dict[str, Any]:
    """The pair's groups in amazon.aws.ec2_security_group form: who may send what to which ENI."""
    lan: list[dict[str, Any]] = []
    for cidr in map(str, spec.vpc_cidrs):
        for proto, ports in (("tcp", (0, 65535)), ("udp", (0, 65535)), ("icmp", (-1, -1))):
            lan.append(_rule(proto, ports, cidr, "Traffic of the VPC's clients, forwarded to the internet"))
    for h in hosts:
        assert h.lan_address is not None
        lan.append(_rule("112", None, f"{h.lan_address.ip}/32", "VRRP between the pair's gateways only"))
    for cidr in map(str, prov.admin_cidrs):
        lan.append(_rule("tcp", (22, 22), cidr, "SSH from the administrators"))
    # A flow that fails over mid-stream reaches the new master's WAN ENI with no outbound record in EC2's
    # security-group tracking: its replies must be allowed as new inbound traffic. The host's own ports are
    # below 1024 or closed; the ephemeral range is what SNAT hands out.
    wan = [
        _rule("tcp", EPHEMERAL, "0.0.0.0/0", "Replies to NATed flows, also after a failover"),
        _rule("udp", EPHEMERAL, "0.0.0.0/0", "Replies to NATed flows, also after a failover"),
        _rule("icmp", (-1, -1), "0.0.0.0/0", "ICMP errors and path MTU discovery"),
    ]
    groups: dict[str, Any] = {
        "lan": {
            "name": f"nat-gateway-ha-{pair}-lan",
            "description": f"NAT pair {pair}: LAN ENIs",
            "rules": lan,
        },
        "wan": {
            "name": f"nat-gateway-ha-{pair}-wan",
            "description": f"NAT pair {pair}: WAN ENIs",
            "rules": wan,
        },
    }
    if prov.api_path == "vpc_endpoint":
        https = [
            _rule("tcp", (443, 443), f"{h.wan_address.ip}/32", "The agent's EC2 calls")
            for h in hosts
            if h.wan_address is not None
        ]
        groups["endpoint"] = {
            "name": f"nat-gateway-ha-{pair}-ec2-endpoint",
            "description": f"NAT pair {pair}: the EC2 interface endpoint",
            "rules": https,
        }
    return groups


def _host_errors(err: Errors, pair: str, h: str, spec: HostSpec, eips: int) -> None:
    where = f"{HOST_VAR}."
    if spec.wan_address is None:
        err.add(pair, h, where + "wan_address", "provisioning needs it: the WAN ENI is created at it")
    if spec.lan_address is None:
        err.add(pair, h, where + "lan_address", "provisioning needs it: the LAN ENI is created at it")
    if len(spec.eip_private_ips) != eips:
        err.add(pair, h, where + "eip_private_ips", f"one per pair EIP: {eips} expected")
    if spec.wan_address is not None:
        net = spec.wan_address.network
        for i, ip in enumerate(spec.eip_private_ips):
            if ip not in net or ip == spec.wan_address.ip:
                err.add(pair, h, f"{where}eip_private_ips[{i}]", f"must be another address of {net}")


def _host(pair: str, h: str, spec: HostSpec, tags: Mapping[str, str]) -> dict[str, Any]:
    wan, lan = spec.wan_address, spec.lan_address
    assert isinstance(wan, IPv4Interface) and isinstance(lan, IPv4Interface)
    return {
        "name": h,
        "wan_ip": str(wan.ip),
        "wan_network": str(wan.network),
        "wan_secondary_ips": [str(i) for i in spec.eip_private_ips],
        "lan_ip": str(lan.ip),
        "lan_network": str(lan.network),
        "tags": {**tags, HOST_TAG: h},
        "api_eip_name": api_eip_name(pair, h),
    }


def _provision_spec(err: Errors, pair: str, members: Sequence[str], raw: Any) -> ProvisionSpec | None:
    if raw is None:
        err.add(
            pair,
            members,
            PROVISION_VAR,
            "required for provisioning, not set (put it in the pair group's vars)",
        )
        return None
    if not isinstance(raw, Mapping):
        err.add(pair, members, PROVISION_VAR, f"must be a mapping, got {type(raw).__name__}")
        return None
    try:
        return ProvisionSpec.model_validate(dict(raw))
    except ValidationError as exc:
        err.pydantic(pair, members, PROVISION_VAR, exc)
    return None


def plan_provisioning(
    pairs: Mapping[str, Sequence[str]], hostvars: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Every pair's resources to create, by pair group; raises PlanError listing every problem."""
    err = Errors()
    if not pairs:
        raise PlanError(["pair -, host -, field members: the inventory has no pair group"])
    _check_names(err, pairs)
    if err.items:
        raise PlanError(err.items)
    member_of = {h: [p] for p, members in pairs.items() for h in members}
    out: dict[str, dict[str, Any]] = {}
    for pair, members in pairs.items():
        if len(members) < 2:
            err.add(pair, members or "-", "members", "a pair needs at least two gateways")
            continue
        spec = _parse_pair(err, pair, members, hostvars, member_of)
        prov = _provision_spec(err, pair, members, hostvars[members[0]].get(PROVISION_VAR))
        hosts: dict[str, HostSpec] = {}
        for h in members:
            raw = hostvars[h].get(HOST_VAR)
            if not isinstance(raw, Mapping):
                err.add(pair, h, HOST_VAR, "required, a mapping (put it in the host's vars)")
                continue
            try:
                hosts[h] = HostSpec.model_validate(dict(raw))
            except ValidationError as exc:
                err.pydantic(pair, h, HOST_VAR, exc)
                continue
            _host_errors(err, pair, h, hosts[h], len(spec.eips) if spec else len(hosts[h].eip_private_ips))
        if spec is not None and spec.region is None:
            err.add(pair, members, f"{PAIR_VAR}.region", "provisioning needs the region, not set")
        if spec is None or prov is None or len(hosts) != len(members) or err.items:
            continue
        tags = {**prov.tags, PAIR_TAG: pair}
        out[pair] = {
            "pair": pair,
            "region": spec.region,
            **prov.model_dump(mode="json", exclude={"tags"}),
            "tags": tags,
            "role_name": f"nat-gateway-ha-{pair}",
            "eips": [e.model_dump(mode="json", exclude_none=True) for e in spec.eips],
            "route_tables": spec.route_tables.model_dump(mode="json"),
            "metrics_namespace": spec.agent.cloudwatch.namespace if spec.agent.cloudwatch.enabled else None,
            "security_groups": security_groups(pair, spec, prov, list(hosts.values())),
            "hosts": [_host(pair, h, hosts[h], tags) for h in members],
        }
    if err.items:
        raise PlanError(err.items)
    return out
