"""Benchmark: a MASTER line written to a warm agent's FIFO -> its last successful EC2 API response.

The lab's cloud runs as a moto server (HTTP on localhost, AWS fixes applied) in a process of its own, as
EC2 is not in the agent's process either; IMDS is the emulator, next to it. EC2's request throttling is off
here: this measures the agent's own latency (bench/throttled_takeover.py measures it against the buckets,
with this module's cloud process). For each route-table count,
gw1 owns the pair, then gw2's agent (warm: resolved, connections open) gets `INSTANCE "VI_1" MASTER 150`
on its FIFO; the clock stops at the last successful API response of that takeover (its verification
Describe). Prints median and spread; asserts nothing about time.

    python bench/agent_takeover.py [--runs 7] [--tables 1,5,50,100,200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

from nat_gateway_ha import log
from nat_gateway_ha.config import AgentConfig
from nat_gateway_ha.daemon import Agent
from nat_gateway_ha.startup import connect
from nat_gateway_ha_lab import cloud, imds, topology
from nat_gateway_ha_lab.moto_model import eni_mac_setter
from nat_gateway_ha_lab.seed import seed


def serve_cloud(throttle: bool) -> None:
    """The child process: moto and IMDS on free ports. One JSON line answers each command line:
    "seed N" (reset, then the lab's VPC with N private tables, unthrottled), "imds <instance-id>" (who
    127.0.0.1 is), "throttle on|off" (on: every bucket full again), "stats" (throttled and served calls)."""
    import json
    from dataclasses import asdict

    import boto3

    server = cloud.serve("127.0.0.1", 0, throttle=throttle)
    who: dict[str, str | None] = {"id": None}
    emulator = imds.serve("127.0.0.1", 0, resolver=lambda ip: who["id"])
    print(json.dumps({"cloud": server.url, "imds": emulator.url}), flush=True)
    ec2 = boto3.client("ec2", region_name=topology.REGION, endpoint_url=server.url)
    for line in sys.stdin:
        cmd, arg = [*line.split(), ""][:2]
        answer: Any = {}
        if cmd == "imds":
            who["id"] = arg
        elif cmd == "throttle":
            server.throttle.refill()
            server.throttle.enabled = arg == "on"
        elif cmd == "stats":
            answer = {"refused": server.throttle.refused, "admitted": server.throttle.admitted}
        else:
            server.reset()
            with server.throttle.paused():
                answer = asdict(seed_provisioned(ec2, server.url, int(arg)))
        print(json.dumps(answer), flush=True)


def seed_provisioned(ec2: Any, url: str, tables: int) -> Any:
    """The lab's VPC with `tables` private route tables, as provisioning leaves it (nat_gateway_ha_cloud)."""
    state = seed(ec2, eni_mac_setter(), endpoint_url=url, extra_route_tables=max(0, tables - 2))
    for inst in state.instances.values():
        for nic in inst.nics.values():
            ec2.modify_network_interface_attribute(
                NetworkInterfaceId=nic.eni_id, SourceDestCheck={"Value": False}
            )
    return state


class CloudProcess:
    """The cloud in a child process (`serve_cloud`), asked one line at a time."""

    def __init__(self, throttle: bool = False) -> None:
        import json
        import subprocess

        self._json = json
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-cloud", *(["--throttle"] if throttle else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        urls = self.ask(None)
        self.url, self.imds_url = urls["cloud"], urls["imds"]

    def ask(self, line: str | None) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        return self._json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def config(
    host: str, state: Any, tables: list[str], url: str, imds_url: str, tmp: Path, **overrides: Any
) -> AgentConfig:
    h = topology.host(host)
    base = {
        "pair": "bench",
        "host": host,
        "vrrp_instance": "VI_1",
        "region": topology.REGION,
        "endpoint_url": url,
        "imds_url": imds_url,
        "insecure_endpoints": True,  # the lab's plain-http emulators
        "wan_eni": {"mac": h.nic("eth0").mac},
        "lan_eni": {"mac": h.nic("eth1").mac},
        "eips": [
            {
                "eip": {"allocation_id": state.eip_allocation_id},
                "private_ip": str(h.nic("eth0").secondary[0]),
            }
        ],
        "route_tables": {"ids": tables},
        "fifo_path": str(tmp / host / "notify.fifo"),
        "state_dir": str(tmp / host / "state"),
        "reconcile_interval": 3600,
    }
    return AgentConfig.model_validate(base | overrides)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PROBE_EVERY = 0.02  # seconds between the probe's requests: 50 a second, far above any real scraper


def probe(port: int) -> None:
    """The probe process (a monitoring system is not in the agent's process): /healthz and /metrics in
    turn every PROBE_EVERY s until stdin closes; prints "start-monotonic seconds" per answer."""
    import select
    import urllib.error
    import urllib.request

    while not select.select([sys.stdin], [], [], PROBE_EVERY)[0]:
        for path in ("/healthz", "/metrics"):
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    r.read()
            except urllib.error.HTTPError as err:  # /healthz is 503 here: no keepalived, no data path
                err.read()
            print(f"{t0:.6f} {time.monotonic() - t0:.6f}", flush=True)


def _during(answers: str, windows: list[tuple[float, float]]) -> list[float]:
    """The probe's answer times whose request started and ended inside a takeover."""
    out = []
    for line in answers.splitlines():
        t0, dt = (float(x) for x in line.split())
        if any(a <= t0 and t0 + dt <= b for a, b in windows):
            out.append(dt)
    return out


def measure(
    n_tables: int, runs: int, proc: CloudProcess, tmp: Path, endpoint: bool = False
) -> tuple[list[float], list[float]]:
    """Takeover times; with `endpoint`, the agent serves its endpoint and a probe hammers it throughout,
    and the endpoint's answer times during takeovers come back too."""
    from types import SimpleNamespace

    raw = proc.ask(f"seed {n_tables}")
    state = SimpleNamespace(eip_allocation_id=raw["eip_allocation_id"])
    tables = [*raw["private_route_tables"].values(), *raw["extra_route_tables"]][:n_tables]
    clouds = {}
    unpaced: dict[str, Any] = {"api_pacing": False}  # unthrottled: the agent's own latency, not EC2's buckets
    port = _free_port()
    if endpoint:
        unpaced |= {"listen_address": "127.0.0.1", "listen_port": port}
    for host in ("gw1", "gw2"):
        proc.ask(f"imds {raw['instances'][host]['instance_id']}")
        clouds[host] = connect(config(host, state, tables, proc.url, proc.imds_url, tmp, **unpaced))
    gw2 = clouds["gw2"]
    agent = Agent(config("gw2", state, tables, proc.url, proc.imds_url, tmp, **unpaced), gw2, state="BACKUP")
    last_ok = [0.0]

    def on_response(http_response: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            last_ok[0] = max(last_ok[0], time.perf_counter())

    gw2.ec2.meta.events.register("after-call.ec2", on_response)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    while not agent.cfg.fifo_path.exists():
        time.sleep(0.01)
    fd = os.open(agent.cfg.fifo_path, os.O_WRONLY)
    samples: list[float] = []
    windows: list[tuple[float, float]] = []
    prober = None
    if endpoint:
        import subprocess

        cmd = [sys.executable, __file__, "--probe", str(port)]
        prober = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(runs):
            assert clouds["gw1"].takeover().converged  # gw1 owns everything again
            gw2.observe()  # keep the agent's connections as warm as a reconciling agent's
            before = agent.takeovers
            last_ok[0] = 0.0
            start, began = time.perf_counter(), time.monotonic()
            os.write(fd, b'INSTANCE "VI_1" MASTER 150\n')
            while agent.takeovers == before:
                time.sleep(0.001)
            windows.append((began, time.monotonic()))
            result = agent.status["last_takeover"]
            if result is None or not result["converged"] or result["changed"] != n_tables + 1:
                raise SystemExit(f"takeover with {n_tables} tables did not converge: {result}")
            samples.append(last_ok[0] - start)
            os.write(fd, b'INSTANCE "VI_1" BACKUP 100\n')
            while agent.state != "BACKUP":
                time.sleep(0.001)
    finally:
        answers = prober.communicate(timeout=30)[0] if prober is not None else ""
        agent.stop()
        thread.join(timeout=5)
        os.close(fd)
        for c in clouds.values():
            c.close()
    return samples, _during(answers, windows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tables", default="1,5,50,100,200")
    parser.add_argument("--serve-cloud", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--throttle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe)
        return 0
    if args.serve_cloud:
        serve_cloud(args.throttle)
        return 0
    log.setup(level=40)  # errors only: the per-call log lines would time the terminal, not the agent
    proc = CloudProcess()
    goals = {5: 0.25, 100: 1.5}
    print(
        f"agent takeover: MASTER line -> last successful API response (moto server process, {args.runs} runs)"
    )
    print("endpoint off / on: on, a probe process asks /healthz and /metrics 50 times a second each; the")
    print("answers that a takeover spanned, and how long they took (goal < 10 ms; the takeover no slower)")
    head = f"{'tables':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'IQR s':>7} {'goal s':>7}"
    print(f"{head} {'on: median s':>12} {'answers':>7} {'p50 ms':>6} {'p99 ms':>6} {'max ms':>6}")
    try:
        with tempfile.TemporaryDirectory(prefix="natgw-bench-") as tmp:
            for n in (int(x) for x in args.tables.split(",")):
                s = sorted(measure(n, args.runs, proc, Path(tmp) / f"{n}-off")[0])
                on, during = measure(n, args.runs, proc, Path(tmp) / f"{n}-on", endpoint=True)
                q = statistics.quantiles(s, n=4) if len(s) >= 2 else [s[0], s[0], s[0]]
                goal = f"{goals[n]:.2f}" if n in goals else "-"
                med, iqr = statistics.median(s), q[2] - q[0]
                ms = sorted(1000 * d for d in during) or [float("nan")]
                p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
                print(
                    f"{n:>6} {med:>9.3f} {s[0]:>7.3f} {s[-1]:>7.3f} {iqr:>7.3f} {goal:>7} "
                    f"{statistics.median(on):>12.3f} {len(during):>7} {statistics.median(ms):>6.1f} "
                    f"{p99:>6.1f} {ms[-1]:>6.1f}"
                )
                sys.stdout.flush()
    finally:
        proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
