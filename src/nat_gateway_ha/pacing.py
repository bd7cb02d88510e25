"""Client-side pacing matched to EC2's request token buckets, so a large takeover never trips them.

EC2 gives each API action a bucket per account and region (`ec2_limits`): ReplaceRoute bursts 50 calls and
then allows 5 a second. Fired all at once, 200 route changes get 150 RequestLimitExceeded answers, and the
retries that follow (each also spending a token when it lands) keep the bucket empty: an error storm that
ends when botocore gives up. Paced, the same takeover spends the burst at once and then goes at the refill
rate, the fastest EC2 allows, with no error.

`Pacer.attach(client)` hooks botocore's `before-send`: every HTTP attempt, retries included, first takes a
token from its action's bucket (waiting for it, in the order the attempts asked). When EC2 refuses a call
anyway (another caller in the account spent the tokens) the bucket is drained, so what follows waits for the
refill instead of failing again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from nat_gateway_ha import ec2_limits
from nat_gateway_ha.ec2_limits import Limit
from nat_gateway_ha.tokenbucket import TokenBucket

THROTTLED = "RequestLimitExceeded"
# A call that waited for its token leaves this much later than the token is due: EC2's bucket started
# counting when our first call of the burst reached it, one network delay after we sent it, so a later
# call that happens to travel faster must not land before EC2 has refilled its token.
LAG = 0.05


def _param_names(body: Any) -> list[str]:
    """The query parameter names of a request body (EC2 speaks the query protocol: a form or a dict)."""
    if isinstance(body, dict):
        return list(body)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        return list(parse_qs(body, keep_blank_values=True))
    return []


class Pacer:
    """One token bucket per EC2 action, sized by the documented table (or `limits` overrides) times `share`:
    the fraction of the account's buckets this caller may count on (1/N when N callers act at once)."""

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        share: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], not {share}")
        self.limits = dict(limits or {})
        self.share = share
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self.waited = 0.0  # seconds spent waiting for tokens, all threads together
        self.throttled = 0  # RequestLimitExceeded answers seen despite pacing

    def limit(self, action: str, narrow: bool = True) -> Limit:
        full = ec2_limits.limit(action, narrow, self.limits)
        return Limit(max(1.0, full.capacity * self.share), full.refill * self.share)

    def bucket(self, action: str, narrow: bool = True) -> TokenBucket:
        key = ec2_limits.bucket_key(action, narrow)
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                lim = self.limit(action, narrow)
                found = self._buckets[key] = TokenBucket(lim.capacity, lim.refill, self._clock)
            return found

    def available(self, action: str) -> float:
        """Calls of `action` that would go without waiting now."""
        return max(0.0, self.bucket(action).available())

    def take(self, action: str, narrow: bool = True) -> float:
        """Wait for a token of `action`'s bucket (plus LAG if it was not there); the seconds waited."""
        wait = self.bucket(action, narrow).reserve()
        if wait <= 0:
            return 0.0
        wait += LAG
        self._sleep(wait)
        with self._lock:
            self.waited += wait
        return wait

    def fill(self) -> None:
        """Every bucket full, as after a quiet while (benchmarks start each run from there)."""
        with self._lock:
            buckets = list(self._buckets.values())
        for b in buckets:
            b.fill()

    # -- botocore hooks -------------------------------------------------------------------------------
    def attach(self, client: Any) -> None:
        """Pace every EC2 request `client` sends (each attempt), and learn from EC2's throttling answers."""
        client.meta.events.register("before-send.ec2", self._before_send)
        client.meta.events.register("needs-retry.ec2", self._needs_retry)

    def _before_send(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        action = event_name.rsplit(".", 1)[-1]
        self.take(action, ec2_limits.narrowed(_param_names(getattr(request, "body", None))))
        # None: botocore sends the request itself

    def _needs_retry(
        self, response: Any = None, event_name: str = "", request_dict: Any = None, **_: Any
    ) -> None:
        if response is None:
            return
        code = (response[1] or {}).get("Error", {}).get("Code")
        if code == THROTTLED:
            action = event_name.rsplit(".", 1)[-1]
            body = request_dict.get("body") if isinstance(request_dict, dict) else None
            self.bucket(action, ec2_limits.narrowed(_param_names(body))).drain()
            with self._lock:
                self.throttled += 1
