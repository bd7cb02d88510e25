"""A real Prometheus server in the lab: the project's alert rules evaluated on both agents' live metrics.

It runs on the client's host, in a private subnet, where a VPC's monitoring host would be: it scrapes each
gateway's endpoint on the gateway's LAN address across the VPC (no management shortcut), every second, and
evaluates `monitoring/prometheus/alerts.yml` every second. It listens on the client's management address so
that the tests ask it directly. The binary and its data directory are the lab machine's (Debian's
`prometheus` package), the network is the client's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nat_gateway_ha_lab import paths
from nat_gateway_ha_lab import topology as topo

PORT = 9090
AGENT_PORT = 9587
JOB = "nat-gateway-ha"  # the job name the shipped rules expect (NatGatewayHAAgentDown)
RULES = paths.REPO / "monitoring" / "prometheus" / "alerts.yml"
DASHBOARD = paths.REPO / "monitoring" / "grafana" / "nat-gateway-ha.json"


def config() -> dict[str, Any]:
    targets = [f"{g.nic('eth1').address}:{AGENT_PORT}" for g in topo.gateways()]
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
    }


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> dict[str, float]:
        """An instant vector as {host (or the series' labels): value}."""
        data = self.api("query", query=expr)
        out = {}
        for r in data["result"]:
            labels = r["metric"]
            key = labels.get("host") or json.dumps(labels, sort_keys=True)
            out[key] = float(r["value"][1])
        return out

    def alerts(self, state: str = "firing") -> list[dict[str, str]]:
        """The alerts in `state` ("firing" or "pending"), each as its labels."""
        return [a["labels"] for a in self.api("alerts")["alerts"] if a["state"] == state]

    def targets_up(self) -> int:
        return sum(t["health"] == "up" for t in self.api("targets")["activeTargets"])

    def target_errors(self) -> list[str]:
        """Each target as Prometheus sees it: URL, health and the last scrape's error."""
        try:
            targets = self.api("targets")["activeTargets"]
        except OSError as err:
            return [f"no answer from Prometheus: {err}"]
        return [f"{t['scrapeUrl']} {t['health']} {t.get('lastError') or ''}".strip() for t in targets]

    def wait(self, what: str, cond: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if cond():
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus: {what} not seen within {timeout} s")
            time.sleep(0.25)


@contextmanager
def running(binary: str = "prometheus") -> Iterator[Prometheus]:
    """Prometheus on the client's host for the duration of the block, its data in a scratch directory."""
    exe = shutil.which(binary)
    if exe is None:
        raise RuntimeError("prometheus is not installed (scripts/bootstrap installs Debian's package)")
    client = topo.host("client")
    with tempfile.TemporaryDirectory(prefix="natlab-prometheus-") as scratch:
        cfg = Path(scratch) / "prometheus.yml"
        cfg.write_text(json.dumps(config()))  # JSON is YAML
        listen = f"{client.mgmt}:{PORT}"
        log = (Path(scratch) / "prometheus.log").open("w")
        cmd = [
            "ip",
            "netns",
            "exec",
            client.netns,
            exe,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={scratch}/data",
            f"--web.listen-address={listen}",
        ]
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        prom = Prometheus(f"http://{listen}")
        try:
            try:
                prom.wait("its targets", lambda: prom.targets_up() == len(topo.gateways()), timeout=60)
            except AssertionError as err:
                log.flush()
                tail = (Path(scratch) / "prometheus.log").read_text()[-800:]
                raise AssertionError(f"{err}: {prom.target_errors()}; its log ends:\n{tail}") from None
            yield prom
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
