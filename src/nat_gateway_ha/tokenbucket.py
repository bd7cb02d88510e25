"""A token bucket with continuous refill: EC2's throttling model, for the side that enforces it and the side
that paces to it.

The enforcing side asks `try_take()` (a token now, or refuse). The pacing side asks `reserve()`: it takes the
next token whether or not it is there yet and says how long to wait for it, so the bucket may run into debt.
Reservations are served in the order they were made, so callers that reserve in priority order are sent in
that order, and a burst of N calls costs max(0, N - capacity) / refill seconds, the physical limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EPSILON = 1e-9  # float rounding of refill * elapsed must not refuse the token a caller waited exactly for


class TokenBucket:
    """`capacity` tokens at most, `refill` more per second; starts full. Thread-safe."""

    def __init__(self, capacity: float, refill: float, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or refill <= 0:
            raise ValueError(f"a bucket needs capacity >= 1 and refill > 0, not {capacity}/{refill}")
        self.capacity = float(capacity)
        self.refill = float(refill)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._stamp = clock()

    def _fill(self) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.refill)
        self._stamp = now
        return self._tokens

    def available(self) -> float:
        """Tokens there now (negative: owed to reservations still waiting)."""
        with self._lock:
            return self._fill()

    def try_take(self) -> bool:
        """Take one token if there is one; never waits."""
        with self._lock:
            if self._fill() + EPSILON < 1:
                return False
            self._tokens -= 1
            return True

    def reserve(self) -> float:
        """Take the next token, now or in the future: the seconds until it is there (0: now)."""
        with self._lock:
            self._tokens = self._fill() - 1
            return max(0.0, -self._tokens / self.refill)

    def take(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """`reserve()` and wait for the token; the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)
        return wait

    def drain(self) -> None:
        """The other side says the bucket is empty (it refused a call): stop counting on what we thought was
        left. Debts already reserved stay; the next token comes after one refill interval."""
        with self._lock:
            self._tokens = min(self._fill(), 0.0)

    def fill(self) -> None:
        """Back to full, as after capacity / refill seconds of quiet."""
        with self._lock:
            self._tokens = self.capacity
            self._stamp = self._clock()
