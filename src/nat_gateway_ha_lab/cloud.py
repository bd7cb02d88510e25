"""The lab's cloud: moto's EC2, corrected where it differs from AWS, in-process or as an HTTP server.

Tests and the lab must see AWS's behaviour, not moto's shortcuts, so `apply_aws_fixes()` patches moto's EC2
backend once per process. Each fix cites the AWS behaviour it restores. The same patches add two lab tools
that work in both modes (moto's `mock_aws` and `serve()`): fault injection (fail the next N calls of an
action with a given error, as a throttled or broken API would) and a call log (which actions were served),
and `serve()` calls `on_mutation()` after every successful mutating request so the data plane can follow.
`serve()` also throttles as EC2 does (`throttle.py`), which moto does not; in-process moto is not throttled.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from nat_gateway_ha_lab import topology
from nat_gateway_ha_lab.throttle import Throttle, ThrottleMiddleware, enabled_by_env, error_xml

DEFAULT_ACCOUNT = "123456789012"  # moto's default account id

# Every EC2 action that changes state the data plane or the agent cares about.
MUTATING_ACTIONS = frozenset(
    {
        "AssociateAddress",
        "DisassociateAddress",
        "AllocateAddress",
        "ReleaseAddress",
        "CreateRoute",
        "ReplaceRoute",
        "DeleteRoute",
        "CreateRouteTable",
        "DeleteRouteTable",
        "AssociateRouteTable",
        "DisassociateRouteTable",
        "ReplaceRouteTableAssociation",
        "AssignPrivateIpAddresses",
        "UnassignPrivateIpAddresses",
        "ModifyNetworkInterfaceAttribute",
        "ModifyInstanceAttribute",
        "RunInstances",
        "TerminateInstances",
        "StopInstances",
        "StartInstances",
        "AttachNetworkInterface",
        "DetachNetworkInterface",
        "CreateNetworkInterface",
        "DeleteNetworkInterface",
    }
)


@dataclass
class Fault:
    """Fail the next `times` calls of `action` (matching `when`, if given) with `code` and HTTP `status`.

    `times=None` fails until removed. RequestLimitExceeded is what EC2 answers when a token bucket is
    empty (HTTP 503); InternalError (500) and Unavailable (503) are its server-side failures.
    """

    action: str
    code: str = "RequestLimitExceeded"
    status: int = 503
    times: int | None = 1
    when: Callable[[Mapping[str, Any]], bool] | None = None
    message: str = "injected by the lab's cloud"
    hits: int = 0


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: list[Fault] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    hooks: list[Callable[[], None]] = field(default_factory=list)
    applied: bool = False


_STATE = _State()


def inject(fault: Fault) -> Fault:
    """Arm a fault; it applies to in-process moto and to every `serve()` server of this process."""
    with _STATE.lock:
        _STATE.faults.append(fault)
    return fault


def clear_faults() -> None:
    with _STATE.lock:
        _STATE.faults.clear()


@contextlib.contextmanager
def faults(*armed: Fault) -> Iterator[list[Fault]]:
    """Arm faults for the duration of a `with` block."""
    for f in armed:
        inject(f)
    try:
        yield list(armed)
    finally:
        with _STATE.lock:
            for f in armed:
                if f in _STATE.faults:
                    _STATE.faults.remove(f)


def calls() -> list[str]:
    """The EC2 actions served since the last `reset_calls()`, in order (faulted calls included)."""
    with _STATE.lock:
        return list(_STATE.calls)


def reset_calls() -> None:
    with _STATE.lock:
        _STATE.calls.clear()


def mutating_calls() -> list[str]:
    return [c for c in calls() if c in MUTATING_ACTIONS]


def backend(region: str = topology.REGION, account: str = DEFAULT_ACCOUNT) -> Any:
    """moto's EC2 backend for a region: the state both modes share (the IMDS emulator reads it)."""
    from moto.ec2.models import ec2_backends

    return ec2_backends[account][region]


def _take_fault(action: str, params: Mapping[str, Any]) -> Fault | None:
    with _STATE.lock:
        _STATE.calls.append(action)
        for f in _STATE.faults:
            if f.action != action or (f.when is not None and not f.when(params)):
                continue
            f.hits += 1
            if f.times is not None:
                f.times -= 1
                if f.times <= 0:
                    _STATE.faults.remove(f)
            return f
    return None


def _patch(owner: Any, name: str, value: Any) -> None:
    setattr(owner, name, value)


def apply_aws_fixes() -> None:
    """Patch moto's EC2 so it behaves like AWS where the agent depends on it. Idempotent."""
    with _STATE.lock:
        if _STATE.applied:
            return
        _STATE.applied = True
    _patch_dispatch()
    _patch_associate_address()
    _patch_create_route()
    _patch_allocate_address()
    _patch_source_dest_check()
    _patch_metadata_defaults()
    _speed_up_dispatch()


def _speed_up_dispatch() -> None:
    """Not an AWS fix, a lab one: moto lists the response class's methods (inspect.getmembers over a class
    of hundreds) on every request, about half its CPU per ReplaceRoute; the list never changes: cache it."""
    import functools

    from moto.core import responses

    listing = getattr(responses, "method_names_from_class")  # noqa: B009  (not re-exported: mypy)
    if not hasattr(listing, "cache_info"):
        _patch(responses, "method_names_from_class", functools.cache(listing))


def _patch_dispatch() -> None:
    """Fault injection, call log and mutation hooks around every EC2 action (both modes)."""
    from moto.ec2.responses import EC2Response

    original = EC2Response.call_action

    def call_action(self: Any) -> Any:
        action = self._get_action()
        fault = _take_fault(action, self.querystring)
        if fault is not None:
            return fault.status, {"status": fault.status}, error_xml(fault.code, fault.message)
        status, headers, body = original(self)
        if action in MUTATING_ACTIONS and int(status) < 400:
            with _STATE.lock:
                hooks = list(_STATE.hooks)
            for hook in hooks:
                hook()
        return status, headers, body

    _patch(EC2Response, "call_action", call_action)


def _patch_associate_address() -> None:
    """AssociateAddress honours PrivateIpAddress.

    AWS maps the EIP to the given private IP of the ENI (the primary one when omitted) and rejects an
    address the ENI does not hold (InvalidParameterValue). moto ignores the parameter and always reports
    the primary IP. When an EIP moves, AWS removes it from its previous ENI.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddress, ElasticAddressBackend
    from moto.ec2.responses.elastic_ip_addresses import ElasticIPAddresses

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

    _patch(ElasticAddressBackend, "associate_address", associate_address)

    def private_ip(self: Any) -> str | None:
        if self.eni is None:
            return None
        chosen = self.__dict__.get("_natlab_private_ip") or self.eni.private_ip_address
        return str(chosen)

    _patch(ElasticAddress, "private_ip_address", property(private_ip))

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

    _patch(ElasticIPAddresses, "associate_address", associate_response)


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

    _patch(RouteBackend, "create_route", create_route)


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

    _patch(ElasticAddressBackend, "allocate_address", allocate_address)


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

    _patch(Instance, "source_dest_check", property(get, put))


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

    _patch(MetadataOptions, "__init__", init)


@dataclass
class ServerHandle:
    """A running moto server: its URL, and `stop()`."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread
    _hook: Callable[[], None] | None
    throttle: Throttle  # EC2's request throttling at this endpoint (`throttle.enabled` False: off)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Empty every backend, as `POST /moto-api/reset` does, and refill the throttle's buckets."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        self.throttle.refill()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self._hook is not None:
            with _STATE.lock:
                if self._hook in _STATE.hooks:
                    _STATE.hooks.remove(self._hook)


def serve(
    host: str,
    port: int,
    on_mutation: Callable[[], None] | None = None,
    throttle: Throttle | bool | None = None,
) -> ServerHandle:
    """Run moto's server (every service, EC2 fixed) in a daemon thread; `port=0` picks a free port.

    `on_mutation()` runs in the request's thread after a mutating EC2 action succeeded and before the
    response is sent, so a caller that sees success can rely on the data plane having followed.
    EC2's request throttling (`throttle.py`) is on unless `throttle` is False, or None and the environment
    says NATLAB_THROTTLE=0; a `Throttle` given is used as is (its own limits, shared with other servers).
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    apply_aws_fixes()

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    if not isinstance(throttle, Throttle):
        throttle = Throttle(enabled=enabled_by_env() if throttle is None else throttle)
    app = ThrottleMiddleware(DomainDispatcherApplication(create_backend_app), throttle)
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    if on_mutation is not None:
        with _STATE.lock:
            _STATE.hooks.append(on_mutation)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.1,), name=f"moto-{host}:{port}", daemon=True
    )
    thread.start()
    return ServerHandle(host, int(server.server_port), server, thread, on_mutation, throttle)
