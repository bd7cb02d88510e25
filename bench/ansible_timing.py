"""Ansible wall times: a first converge of the lab's pair on fresh hosts, the second run, and four pairs.

The first converge needs hosts that have never been converged, so this phase recreates the lab
(`natgw-lab down` then `up`); it runs first. The lab hosts one pair only (topology.py has two gateways), so
"four pairs at once" is measured as what can be measured honestly here: the controller side of four pairs
(validation and templating of eight gateways with playbooks/render.yml), reported as such.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def timed(cmd: list[str], log_file: Path, timeout: float = 1800) -> tuple[float, int, str]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.monotonic() - started
    log_file.write_text(proc.stdout + proc.stderr)
    return wall, proc.returncode, proc.stdout


def recap(stdout: str) -> dict[str, dict[str, int]]:
    return {
        m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "failed": int(m.group(5))}
        for m in RECAP_RE.finditer(stdout)
    }


def recap_text(rc: int, rec: dict[str, dict[str, int]]) -> str:
    hosts = ", ".join(f"{h} changed={r['changed']} failed={r['failed']}" for h, r in sorted(rec.items()))
    return f"rc={rc}; {hosts}"


def four_pair_inventory(dest: Path, pairs: int = 4) -> Path:
    """inventories/example with its pair copied `pairs` times: distinct VRIDs, subnets, addresses and MACs."""
    src = REPO / "inventories" / "example"
    pair_vars = yaml.safe_load((src / "group_vars" / "natgw_prod.yml").read_text())
    host_vars = yaml.safe_load((src / "host_vars" / "gw1.yml").read_text())
    shutil.copytree(src / "group_vars", dest / "group_vars")
    (dest / "group_vars" / "natgw_prod.yml").unlink()
    (dest / "host_vars").mkdir()
    children: dict[str, Any] = {}
    for p in range(1, pairs + 1):
        group = f"natgw_pair{p}"
        pv = dict(pair_vars["nat_gateway_ha_pair"], vrid=60 + p, vips=[f"10.240.240.{p}/32"])
        (dest / "group_vars" / f"{group}.yml").write_text(yaml.safe_dump({"nat_gateway_ha_pair": pv}))
        hosts: dict[str, Any] = {}
        for side in (1, 2):
            name = f"gw{p}{'ab'[side - 1]}"
            wan, lan = 10 + 10 * side + p, 40 + 10 * side + p
            hv = dict(
                host_vars["nat_gateway_ha_host"],
                wan_address=f"10.77.{wan}.10/24",
                wan_mac=f"0a:1f:40:00:{p:02x}:{side}0",
                eip_private_ips=[f"10.77.{wan}.11"],
                lan_address=f"10.77.{lan}.10/24",
                lan_mac=f"0a:1f:40:00:{p:02x}:{side}1",
            )
            vars_ = {"ansible_host": f"10.77.{wan}.10", "nat_gateway_ha_host": hv}
            (dest / "host_vars" / f"{name}.yml").write_text(yaml.safe_dump(vars_))
            hosts[name] = None
        children[group] = {"hosts": hosts}
    inv = {"all": {"children": {"nat_gateways": {"children": children}}}}
    (dest / "hosts.yml").write_text(yaml.safe_dump(inv))
    return dest


def measure(log_dir: Path, fresh: bool = True, on_up: Callable[[], object] = lambda: None) -> dict[str, Any]:
    """Rows for the report: lab (re)build, first converge, second converge, render of one and four pairs.

    `on_up` runs once the lab is up, before the converges: the bench takes the lab's lock there (holding
    it earlier would block our own `natgw-lab down/up`).
    """
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    playbook = ["ansible-playbook", "-i", "inventories/lab", "site.yml"]
    if fresh:
        wall, rc, _ = timed(["natgw-lab", "down"], log_dir / "lab-down.log")
        wall, rc, _ = timed(["natgw-lab", "up"], log_dir / "lab-up.log")
        rows.append(
            {
                "name": "natgw-lab up (fresh hosts, cached base; not Ansible)",
                "wall": wall,
                "recap": f"rc={rc}",
            }
        )
        if rc != 0:
            notes.append("natgw-lab up failed: see the lab-up log; no converge was timed")
            return {"rows": rows, "notes": notes}
    on_up()
    for name in ("first converge of one pair (site.yml, fresh hosts)", "second run (must report changed=0)"):
        wall, rc, out = timed(playbook, log_dir / f"site-{len(rows)}.log")
        rec = recap(out)
        rows.append({"name": name, "wall": wall, "recap": recap_text(rc, rec), "rc": rc, "hosts": rec})
    second = rows[-1]
    if second["rc"] != 0 or any(r["changed"] for r in second["hosts"].values()):
        notes.append(f"the second run was NOT idempotent: {second['recap']}")
    if not fresh:
        notes.append(
            "the lab was not recreated: the first run converged hosts that had been converged before"
        )
    with tempfile.TemporaryDirectory(prefix="natgw-bench-") as tmp:
        for pairs in (1, 4):
            inv = four_pair_inventory(Path(tmp) / f"inv{pairs}", pairs)
            out_dir = Path(tmp) / f"render{pairs}"
            cmd = [
                "ansible-playbook",
                "-i",
                str(inv),
                "playbooks/render.yml",
                "-e",
                f"nat_gateway_ha_render_dir={out_dir}",
            ]
            wall, rc, out = timed(cmd, log_dir / f"render-{pairs}.log")
            rendered = len(list(out_dir.glob("*/keepalived.conf"))) if out_dir.exists() else 0
            rows.append(
                {
                    "name": f"render only, {pairs} pair(s) ({2 * pairs} gateways, controller side)",
                    "wall": wall,
                    "recap": f"rc={rc}; {rendered} keepalived.conf rendered",
                }
            )
    notes.append(
        "four pairs at once were not converged on hosts: the lab has one pair (two gateways, topology.py); "
        "the render-only rows time validation and templating of four pairs on the controller, no host reached"
    )
    return {"rows": rows, "notes": notes}
