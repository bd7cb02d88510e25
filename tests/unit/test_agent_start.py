"""The agent owns its notify FIFO before it waits for IMDS and EC2.

keepalived starts right after the agent (systemd orders only the starts) and makes the FIFO itself, as its
script user, when it finds none; the sandboxed agent (root without CAP_DAC_OVERRIDE) could not open that one
and failed its first start at every boot. So the FIFO must exist as soon as the agent runs, however long
IMDS or EC2 take to answer, and keepalived's lines written meanwhile must wait in it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from support import plain_agent_config


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_fifo_is_made_before_imds_answers(tmp_path: Path) -> None:
    port = _closed_port()  # nobody listens: IMDS "not up yet", the agent keeps retrying
    fifo = tmp_path / "run" / "notify.fifo"
    cfg = plain_agent_config(
        state_dir=str(tmp_path / "state"),
        fifo_path=str(fifo),
        imds_url=f"http://127.0.0.1:{port}",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="eu-west-1",
        insecure_endpoints=True,
        listen_port=0,
        health={"interval": 1},
    )
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(cfg))
    agent = subprocess.Popen(
        [sys.executable, "-m", "nat_gateway_ha.cli", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not fifo.exists() and time.monotonic() < deadline and agent.poll() is None:
            time.sleep(0.05)
        assert fifo.exists(), "no FIFO while the agent waits for IMDS"
        assert stat.S_ISFIFO(fifo.stat().st_mode) and fifo.stat().st_uid == os.geteuid()
        # keepalived's first line: accepted now (the agent holds the read end), read once EC2 answers.
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b'INSTANCE "VI_p" BACKUP 100\n')
        os.close(fd)
        assert agent.poll() is None, "the agent gave up instead of waiting for IMDS"
    finally:
        agent.terminate()
        agent.communicate(timeout=10)
