"""An IMDSv2 emulator: each caller gets its own instance's metadata, read live from moto's EC2 state.

moto's own metadata endpoint is static; the agent needs per-instance answers (instance id, region, AZ, its
ENIs by MAC with their private IPs) and IMDSv2's token handshake. Who is calling is decided by a resolver
the user gives (`caller_ip -> instance_id`): the lab maps management addresses, tests map 127.0.0.1.
Instances whose metadata options say HttpTokens=optional also answer IMDSv1 (token-less) GETs, which the
seed's script needs. Tests can make it fail (`fail_next`) or stall (`delay`) to exercise the client.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from nat_gateway_ha_lab import cloud, moto_model
from nat_gateway_ha_lab.moto_model import InstanceFacts, NicFacts

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600  # AWS's limit: six hours
DEFAULT_ROLE = "natlab-gateway"

Resolver = Callable[[str], str | None]


@dataclass
class Emulator:
    """The WSGI application and its knobs; `serve()` wraps it in a server thread."""

    resolver: Resolver
    lookup: Callable[[str], InstanceFacts | None] = moto_model.instance_facts
    role: str = DEFAULT_ROLE
    delay: float = 0.0  # seconds to stall each request (timeouts)
    _fail: list[int] = field(default_factory=list)  # HTTP statuses for the next requests
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail.extend([status] * count)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            failing = self._fail.pop(0) if self._fail else None
        if failing is not None:
            return Response("injected failure\n", status=failing)
        instance_id = self.resolver(request.remote_addr or "")
        if instance_id is None:
            return Response("unknown caller\n", status=403)
        if request.path == "/latest/api/token":
            return self._token(request, instance_id)
        if request.method != "GET":
            return Response("", status=405)
        instance = self.lookup(instance_id)
        if instance is None:
            return Response("instance not found\n", status=404)
        if not self._authorised(request, instance):
            return Response("", status=401)
        body = self._lookup(instance, request.path)
        if body is None:
            return Response("Not Found\n", status=404)
        return Response(body, content_type="text/plain")

    def _token(self, request: Request, instance_id: str) -> Response:
        if request.method != "PUT":
            return Response("", status=405)
        if request.headers.get("X-Forwarded-For"):
            return Response("", status=403)  # AWS refuses token requests that went through a proxy
        try:
            ttl = int(request.headers.get(TTL_HEADER, ""))
        except ValueError:
            return Response("missing or invalid TTL header\n", status=400)
        if not 1 <= ttl <= MAX_TTL:
            return Response("TTL out of range\n", status=400)
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (instance_id, now + ttl)
        return Response(token, content_type="text/plain", headers={TTL_HEADER: str(ttl)})

    def _authorised(self, request: Request, instance: InstanceFacts) -> bool:
        token = request.headers.get(TOKEN_HEADER)
        if token is None:
            return instance.http_tokens == "optional"
        with self._lock:
            owner = self._tokens.get(token)
        return owner is not None and owner[0] == instance.instance_id and owner[1] > time.monotonic()

    def _lookup(self, instance: InstanceFacts, path: str) -> str | None:
        nics = {nic.mac: nic for nic in instance.nics}
        primary = instance.nics[0]
        az, region = instance.az, instance.region
        tree: dict[str, Any] = {
            "instance-id": instance.instance_id,
            "instance-type": instance.instance_type,
            "ami-id": instance.image_id,
            "local-ipv4": primary.private_ips[0],
            "mac": primary.mac,
            "placement": {"region": region, "availability-zone": az},
            "network": {"interfaces": {"macs": {mac: _nic_tree(nic) for mac, nic in nics.items()}}},
            "iam": {"security-credentials": {self.role: _credentials()}},
        }
        if path.startswith("/latest/dynamic/instance-identity/document"):
            return json.dumps(
                {
                    "accountId": moto_model.DEFAULT_ACCOUNT,
                    "architecture": "x86_64",
                    "availabilityZone": az,
                    "imageId": instance.image_id,
                    "instanceId": instance.instance_id,
                    "instanceType": instance.instance_type,
                    "privateIp": primary.private_ips[0],
                    "region": region,
                    "version": "2017-09-30",
                },
                indent=2,
            )
        prefix = "/latest/meta-data"
        if not path.startswith(prefix):
            return None
        node: Any = tree
        for part in [p for p in path[len(prefix) :].split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        if isinstance(node, dict):
            return "\n".join(f"{k}/" if isinstance(v, dict) else k for k, v in node.items())
        return str(node)


def _nic_tree(nic: NicFacts) -> dict[str, Any]:
    return {
        "device-number": str(nic.device_index),
        "interface-id": nic.eni_id,
        "local-ipv4s": "\n".join(nic.private_ips),
        "mac": nic.mac,
        "subnet-id": nic.subnet_id,
        "subnet-ipv4-cidr-block": nic.subnet_cidr,
        "vpc-id": nic.vpc_id,
    }


def _credentials() -> str:
    """Fake role credentials in IMDS's format; boto3 accepts them, moto ignores them."""
    now = datetime.now(UTC)
    return json.dumps(
        {
            "Code": "Success",
            "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": "ASIANATLABFAKEKEY000",
            "SecretAccessKey": "natlab-fake-secret-access-key-not-real-00",
            "Token": "natlab-fake-session-token",
            "Expiration": (now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


@dataclass
class ImdsHandle:
    host: str
    port: int
    emulator: Emulator
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(
    host: str,
    port: int,
    resolver: Resolver,
    lookup: Callable[[str], InstanceFacts | None] = moto_model.instance_facts,
    role: str = DEFAULT_ROLE,
) -> ImdsHandle:
    """Answer IMDS on host:port in a daemon thread (`port=0` picks a free port)."""
    cloud.apply_aws_fixes()

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    emulator = Emulator(resolver=resolver, lookup=lookup, role=role)
    server = make_server(host, port, emulator, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.1,), name=f"imds-{host}:{port}", daemon=True
    )
    thread.start()
    return ImdsHandle(host, int(server.server_port), emulator, server, thread)
