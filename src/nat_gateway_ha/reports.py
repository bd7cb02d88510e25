"""What the agent tells the outside, from its memory: the `/healthz` verdict and the endpoint's other routes,
the Prometheus metrics (endpoint and textfile) and, when the pair asks for it, CloudWatch.

The daemon's loop only feeds it (`published` after every status change, the metrics' event counters), so
nothing here can slow a takeover: the endpoint and CloudWatch have threads of their own.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from nat_gateway_ha import cloudwatch, log
from nat_gateway_ha.checks import conntrack_table, vrrp_foreign_dropped
from nat_gateway_ha.endpoint import Endpoint, Route
from nat_gateway_ha.keepalived import keepalived_alive
from nat_gateway_ha.metrics import Metrics

if TYPE_CHECKING:
    from nat_gateway_ha.daemon import Agent

BIND_RETRY = 1.0  # seconds between attempts to bind the endpoint


class Reports:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.cfg = agent.cfg
        table = agent.cfg.health.nat_table
        self.metrics = Metrics(
            agent.cfg.pair, agent.cfg.host, conntrack_table, lambda: vrrp_foreign_dropped(table)
        )
        self.metrics.attach(agent.cloud.ec2)
        region = agent.cloud.ec2.meta.region_name
        self.cloudwatch = cloudwatch.publisher(agent.cfg, region, self._cloudwatch_view)
        self._endpoint: Endpoint | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def status(self) -> dict[str, Any]:
        return {**self.agent.status, "health": self.agent.health.snapshot()}

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """200 when this gateway can do its job (keepalived alive, data path healthy, EC2 serving it); the
        body says why not otherwise."""
        problems = []
        if not keepalived_alive(self.cfg.keepalived_pidfile):
            problems.append("keepalived is not running")
        snap = self.agent.health.snapshot()
        problems += [f"{c['name']}: {c['detail']}" for c in snap["checks"] if not c["ok"]]
        if snap["fault"] and not problems:
            problems.append(f"held down after an upstream failure ({snap['upstream_detail']})")
        if cloud := self.metrics.cloud_problem():
            problems.append(cloud)
        status = self.agent.status
        if status["split_brain"]:
            problems.append("split brain: a peer holds " + ", ".join(status["contested"][:5]))
        body = {"ok": not problems, "problems": problems, "state": self.agent.state, "owner": status["owner"]}
        return (200 if not problems else 503), body

    def peer_view(self) -> tuple[int, dict[str, Any]]:
        """What a peer asks before it steps down for an upstream failure: could this gateway take over?"""
        eligible = self.agent.health.eligible() and keepalived_alive(self.cfg.keepalived_pidfile)
        return 200, {"host": self.cfg.host, "state": self.agent.state, "eligible": eligible}

    def _sync_metrics(self) -> None:
        code, _ = self.healthz()
        self.metrics.sync(self.status(), code == 200, keepalived_alive(self.cfg.keepalived_pidfile))

    def metrics_text(self) -> tuple[int, str]:
        self._sync_metrics()
        return 200, self.metrics.text()

    def _cloudwatch_view(self) -> tuple[dict[str, Any], bool]:
        return self.status(), self.healthz()[0] == 200

    def published(self) -> None:
        """The status changed: the textfile now, CloudWatch soon. OSError is the caller's to log."""
        if self.cfg.metrics_textfile is not None:
            self._sync_metrics()
            self.metrics.write(self.cfg.metrics_textfile)
        if self.cloudwatch is not None:
            self.cloudwatch.poke()

    def start(self) -> None:
        if self.cloudwatch is not None:
            self.cloudwatch.start()
        if self.cfg.listen_address is None or not self.cfg.listen_port:
            return
        threading.Thread(target=self._listen, name="endpoint-bind", daemon=True).start()

    def _listen(self) -> None:
        """Bind the endpoint, again every BIND_RETRY s until it works: right after a restart the port may
        still be held (the old process going away) or the LAN address not yet up, and a gateway without
        its endpoint is invisible to its peer and to monitoring for good."""
        routes: dict[str, Route] = {
            "/healthz": self.healthz,
            "/status": lambda: (200, self.status()),
            "/peer": self.peer_view,
            "/metrics": self.metrics_text,
        }
        address, failed = str(self.cfg.listen_address), False
        while not self._stopped.is_set():
            try:
                endpoint = Endpoint(address, self.cfg.listen_port, routes)
            except OSError as err:
                if not failed:
                    log.error("endpoint_failed", address=address, error=str(err), retry_every=BIND_RETRY)
                failed = True
                self._stopped.wait(BIND_RETRY)
                continue
            with self._lock:
                if self._stopped.is_set():
                    endpoint.server_close()
                    return
                self._endpoint = endpoint
            endpoint.serve_in_background()
            return

    def stop(self) -> None:
        if self.cloudwatch is not None:
            self.cloudwatch.stop()
        with self._lock:
            self._stopped.set()
            endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.shutdown()
            endpoint.server_close()
