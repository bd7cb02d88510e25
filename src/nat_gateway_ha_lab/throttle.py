"""EC2's request throttling, which moto does not have: per-action token buckets per account and region, in
front of the lab's moto server as WSGI middleware.

Without it the lab answers 500 ReplaceRoute calls in a blink, and a takeover that would spend a minute and a
half in a real account looks instant. Every EC2 request served by one `Throttle` draws a token from its
action's bucket (sizes: `nat_gateway_ha.ec2_limits.TABLE`) in its caller's account and region, whoever the
caller is; an empty bucket answers what EC2 answers: HTTP 503 with the XML error `RequestLimitExceeded`
("Request limit exceeded."), which botocore counts as throttling and retries. Refused calls are not served
(no call log, no mutation hook).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from nat_gateway_ha import ec2_limits
from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.tokenbucket import TokenBucket
from nat_gateway_ha_lab import moto_model

ENV = "NATLAB_THROTTLE"  # "0", "off", "false" or "no": serve without throttling
CODE = "RequestLimitExceeded"
MESSAGE = "Request limit exceeded."
# The access key id of the lab's own set-up and inspection (benchmarks resizing the VPC, for one): calls
# signed with it are never throttled, as they are not what the throttling is there to measure.
SETUP_KEY = "NATLABSETUP"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def enabled_by_env(default: bool = True) -> bool:
    value = os.environ.get(ENV)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "off", "false", "no")


def error_xml(code: str, message: str) -> str:
    """An EC2 error document, as EC2 writes one (a request id per answer)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )


class Throttle:
    """The bucket sets of one EC2 endpoint: one bucket per (account, region, action), made on first use."""

    def __init__(
        self,
        overrides: Mapping[str, Limit] | None = None,
        enabled: bool = True,
        exempt: frozenset[str] = frozenset({SETUP_KEY}),
    ) -> None:
        self.overrides = dict(overrides or {})
        self.enabled = enabled
        self.exempt = exempt  # access key ids never throttled
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self.refused: Counter[str] = Counter()  # action -> calls answered RequestLimitExceeded
        self.admitted: Counter[str] = Counter()

    def admit(self, account: str, region: str, action: str, params: Iterable[str]) -> bool:
        """Whether this request may be served now (it spends a token if so)."""
        if not self.enabled:
            return True
        narrow = ec2_limits.narrowed(params)
        key = (account, region, ec2_limits.bucket_key(action, narrow))
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                lim = ec2_limits.limit(action, narrow, self.overrides)
                bucket = self._buckets[key] = TokenBucket(lim.capacity, lim.refill)
        ok = bucket.try_take()
        with self._lock:
            (self.admitted if ok else self.refused)[action] += 1
        return ok

    def refill(self) -> None:
        """Every bucket full again and the counters zeroed, as for an account left alone for a while."""
        with self._lock:
            for b in self._buckets.values():
                b.fill()
            self.refused.clear()
            self.admitted.clear()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Serve without throttling for the block (the lab's own seeding is not what is being measured)."""
        before, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = before
            self.refill()


def _account(headers_access_key: str | None, moto_header: str | None) -> str:
    """The account moto itself would serve the request in (its own precedence)."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if moto_header:
        return moto_header
    if headers_access_key:
        return moto_model.account_for_access_key(headers_access_key)
    return moto_model.DEFAULT_ACCOUNT


def _scope(authorization: str) -> tuple[str | None, str | None, str | None]:
    """(access key, region, service) from a SigV4 Authorization header."""
    marker = "Credential="
    if marker not in authorization:
        return None, None, None
    parts = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
    if len(parts) < 5:
        return None, None, None
    return parts[0], parts[2], parts[3]


class ThrottleMiddleware:
    """WSGI middleware: EC2 query requests (SigV4 scope `.../ec2/aws4_request`) pass only with a token."""

    def __init__(self, app: WsgiApp, throttle: Throttle) -> None:
        self.app = app
        self.throttle = throttle

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.throttle.enabled:
            key, region, service = _scope(environ.get("HTTP_AUTHORIZATION", ""))
            if service == "ec2" and key not in self.throttle.exempt:
                params = self._params(environ)
                action = (params.get("Action") or [""])[0]
                account = _account(key, environ.get("HTTP_X_MOTO_ACCOUNT_ID"))
                if action and not self.throttle.admit(account, region or "", action, params):
                    body = error_xml(CODE, MESSAGE).encode()
                    start_response(
                        "503 Service Unavailable",
                        [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))],
                    )
                    return [body]
        return self.app(environ, start_response)

    @staticmethod
    def _params(environ: dict[str, Any]) -> dict[str, list[str]]:
        """The query parameters, from the URL and a form body; the body is put back for moto to read."""
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
                for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
                    params.setdefault(k, []).extend(v)
        return params
