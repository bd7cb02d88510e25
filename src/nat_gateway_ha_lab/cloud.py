"""The lab's cloud: moto's EC2, corrected where it differs from AWS, in-process or as an HTTP server.

Tests and the lab must see AWS's behaviour, not moto's shortcuts, so `apply_aws_fixes()` patches moto's EC2
backend once per process with the fixes of `moto_fixes.py` (each cites the AWS behaviour it restores) and
the lab's instrumentation, defined here: two lab tools
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

from nat_gateway_ha_lab import moto_fixes, moto_model
from nat_gateway_ha_lab.throttle import Throttle, ThrottleMiddleware, enabled_by_env, error_xml

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


def apply_aws_fixes() -> None:
    """Patch moto's EC2 so it behaves like AWS where the agent depends on it. Idempotent."""
    with _STATE.lock:
        if _STATE.applied:
            return
        _STATE.applied = True
    _patch_dispatch()
    moto_fixes.apply()
    _speed_up_dispatch()


def _speed_up_dispatch() -> None:
    """Not an AWS fix, a lab one: moto lists the response class's methods (inspect.getmembers over a class
    of hundreds) on every request, about half its CPU per ReplaceRoute; the list never changes: cache it."""
    import functools

    from moto.core import responses

    listing = getattr(responses, "method_names_from_class")  # noqa: B009  (not re-exported: mypy)
    if not hasattr(listing, "cache_info"):
        moto_fixes.patch(responses, "method_names_from_class", functools.cache(listing))


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

    moto_fixes.patch(EC2Response, "call_action", call_action)


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
        moto_model.reset_all()
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
