"""moto's EC2, corrected where it differs from AWS and the agent depends on it: each fix cites the AWS
behaviour it restores. Applied once per process by `cloud.apply_aws_fixes()`, with the lab's instrumentation.
"""

from __future__ import annotations

from typing import Any

from nat_gateway_ha_lab import topology


def apply() -> None:
    """Every fix below; not idempotent by itself (cloud.apply_aws_fixes guards it)."""
    _patch_associate_address()
    _patch_create_route()
    _patch_allocate_address()
    _patch_source_dest_check()
    _patch_metadata_defaults()
    _patch_rule_without_ports()


def patch(owner: Any, name: str, value: Any) -> None:
    setattr(owner, name, value)


def _patch_associate_address() -> None:
    """AssociateAddress honours PrivateIpAddress.

    AWS maps the EIP to the given private IP of the ENI (the primary one when omitted) and rejects an
    address the ENI does not hold (InvalidParameterValue). moto ignores the parameter and always reports
    the primary IP. When an EIP moves, AWS removes it from its previous ENI.
    """
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    original_backend = ElasticAddressBackend.associate_address

    def associate_address(
        self: Any,
        instance: Any = None,
        eni: Any = None,
        address: str | None = None,
        allocation_id: str | None = None,
        reassociate: bool = False,
        private_ip_address: str | None = None,
    ) -> Any:
        target = eni if eni is not None else (instance.nics[0] if instance is not None else None)
        if target is not None and private_ip_address is not None:
            held = {p["PrivateIpAddress"] for p in target.private_ip_addresses} | {target.private_ip_address}
            if private_ip_address not in held:
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"The private IP address {private_ip_address} is not assigned to network interface "
                    f"{target.id}",
                )
        before = (
            self.address_by_allocation([allocation_id]) if allocation_id else self.address_by_ip([address])
        )
        old_eni = before[0].eni
        old_public = target.public_ip if target is not None else None
        eip = original_backend(self, instance, eni, address, allocation_id, reassociate)
        chosen = private_ip_address or (target.private_ip_address if target is not None else None)
        eip.__dict__["_natlab_private_ip"] = chosen
        if old_eni is not None and old_eni is not eip.eni and old_eni.public_ip == eip.public_ip:
            old_eni.public_ip = None
        if target is not None and chosen != target.private_ip_address:
            target.public_ip = old_public  # the primary IP's association is unchanged
        # AWS maps one EIP per private IP: another EIP on the same private IP is disassociated.
        for other in self.addresses:
            if other is not eip and other.eni is eip.eni and other.private_ip_address == chosen:
                self.disassociate_address(address=other.public_ip)
        return eip

    patch(ElasticAddressBackend, "associate_address", associate_address)
    _patch_eip_private_ip()
    _patch_associate_request()


def _patch_eip_private_ip() -> None:
    """An EIP reports the private IP it was associated with, not always the ENI's primary one."""
    from moto.ec2.models.elastic_ip_addresses import ElasticAddress

    def private_ip(self: Any) -> str | None:
        if self.eni is None:
            return None
        chosen = self.__dict__.get("_natlab_private_ip") or self.eni.private_ip_address
        return str(chosen)

    patch(ElasticAddress, "private_ip_address", property(private_ip))


def _patch_associate_request() -> None:
    """The AssociateAddress request handler passes PrivateIpAddress on (moto's drops it)."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.elastic_ip_addresses import ElasticIPAddresses

    def associate_response(self: Any) -> Any:
        params = self._get_params()
        instance = eni = None
        if "InstanceId" in params:
            instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        elif "NetworkInterfaceId" in params:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        else:
            self.ec2_backend.raise_error(
                "MissingParameter", "Invalid request, expect InstanceId/NetworkId parameter."
            )
        if "PublicIp" in params:
            which = {"address": self._get_param("PublicIp")}
        elif "AllocationId" in params:
            which = {"allocation_id": self._get_param("AllocationId")}
        else:
            self.ec2_backend.raise_error(
                "MissingParameter", "Invalid request, expect PublicIp/AllocationId parameter."
            )
        self.error_on_dryrun()
        eip = self.ec2_backend.associate_address(
            instance=instance,
            eni=eni,
            reassociate=self._get_param("AllowReassociation", False),
            private_ip_address=self._get_param("PrivateIpAddress"),
            **which,
        )
        return ActionResult({"AssociationId": eip.association_id})

    patch(ElasticIPAddresses, "associate_address", associate_response)


def _patch_create_route() -> None:
    """CreateRoute refuses an existing destination.

    AWS answers RouteAlreadyExists whatever the target; moto silently overwrites the route when the target
    is a network interface, which would hide the create/replace race the agent must handle.
    """
    from moto.ec2.exceptions import RouteAlreadyExistsError
    from moto.ec2.models.route_tables import RouteBackend
    from moto.ec2.utils import generate_route_id

    original = RouteBackend.create_route

    def create_route(
        self: Any, route_table_id: str, destination_cidr_block: str | None, *a: Any, **kw: Any
    ) -> Any:
        table = self.get_route_table(route_table_id)
        ipv6 = kw.get("destination_ipv6_cidr_block") or (a[0] if a else None)
        if destination_cidr_block or ipv6:
            rid = generate_route_id(table.id, destination_cidr_block, ipv6)
            if rid in table._routes:
                raise RouteAlreadyExistsError(str(destination_cidr_block or ipv6))
        return original(self, route_table_id, destination_cidr_block, *a, **kw)

    patch(RouteBackend, "create_route", create_route)


def _patch_allocate_address() -> None:
    """AllocateAddress draws public IPs from the lab's EIP pool; `Address=` asks for a given one.

    AWS hands out addresses from its pools and allocates a requested address (a BYOIP pool or a recovered
    EIP) only once. moto draws from anywhere in IPv4 and would allocate one address twice. The lab needs
    addresses its internet host routes back (topology.EIP_POOL); draws start at .100 so the addresses the
    lab asks for by name (203.0.113.10) stay free.
    """
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    original = ElasticAddressBackend.allocate_address

    def allocate_address(self: Any, domain: str, address: str | None = None, tags: Any = None) -> Any:
        used = {a.public_ip for a in self.addresses}
        if address is not None:
            if address in used:
                raise EC2ClientError("InvalidParameterValue", f"Address {address} is already allocated")
        else:
            hosts = list(topology.EIP_POOL.hosts())
            candidates = [str(h) for h in hosts if int(h) - int(topology.EIP_POOL.network_address) >= 100]
            candidates += [str(h) for h in hosts if str(h) not in candidates]
            free = next((ip for ip in candidates if ip not in used), None)
            if free is None:
                raise EC2ClientError(
                    "AddressLimitExceeded", "The maximum number of addresses has been reached."
                )
            address = free
        return original(self, domain, address=address, tags=tags)

    patch(ElasticAddressBackend, "allocate_address", allocate_address)


def _patch_source_dest_check() -> None:
    """An instance's SourceDestCheck is its primary ENI's.

    In AWS, ModifyInstanceAttribute SourceDestCheck changes the primary network interface's attribute and
    DescribeNetworkInterfaces shows it (and the other way round). moto keeps two unrelated flags.
    """
    from moto.ec2.models.instances import Instance

    def get(self: Any) -> bool:
        nics = self.__dict__.get("nics") or {}
        if 0 in nics:
            return bool(nics[0].source_dest_check)
        return bool(self.__dict__.get("_natlab_sdc", True))

    def put(self: Any, value: Any) -> None:
        flag = value if isinstance(value, bool) else str(value).lower() == "true"
        nics = self.__dict__.get("nics") or {}
        if 0 in nics:
            nics[0].source_dest_check = flag
        self.__dict__["_natlab_sdc"] = flag

    patch(Instance, "source_dest_check", property(get, put))


def _patch_metadata_defaults() -> None:
    """Instances launched without MetadataOptions require IMDSv2 tokens.

    AWS launches with HttpTokens=required when the AMI says ImdsSupport v2.0 (Amazon Linux 2023, recent
    Debian images) or the account's IMDS defaults say so, the setting this project recommends; moto
    defaults to optional. `ModifyInstanceMetadataOptions HttpTokens=optional` still allows IMDSv1.
    """
    from moto.ec2.models.instances import MetadataOptions

    original = MetadataOptions.__init__

    def init(self: Any, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        if options.get("HttpTokens") is None:
            options["HttpTokens"] = "required"
        original(self, options)

    patch(MetadataOptions, "__init__", init)


PORTED_PROTOCOLS = {"tcp", "6", "udp", "17", "icmp", "1", "icmpv6", "58", "-1", "all"}


def _patch_rule_without_ports() -> None:
    """A security-group rule for a protocol without ports (VRRP is IP protocol 112) needs none.

    AWS: for a protocol other than tcp, udp, icmp or icmpv6, traffic on all ports is allowed whatever ports
    the rule gives, and FromPort/ToPort may be left out (DescribeSecurityGroups then shows none). moto
    calls int(None) on the missing ports and answers 500.
    """
    from moto.ec2.models.security_groups import SecurityGroupRule

    original = SecurityGroupRule.__init__

    def init(self: Any, ec2_backend: Any, ip_protocol: str, group_id: str, from_port: Any, to_port: Any,
             *args: Any, **kwargs: Any) -> None:  # fmt: skip
        portless = str(ip_protocol).lower() not in PORTED_PROTOCOLS
        if portless and from_port is None and to_port is None:
            original(self, ec2_backend, ip_protocol, group_id, "-1", "-1", *args, **kwargs)
            self.from_port = self.to_port = None
            return
        original(self, ec2_backend, ip_protocol, group_id, from_port, to_port, *args, **kwargs)

    patch(SecurityGroupRule, "__init__", init)
