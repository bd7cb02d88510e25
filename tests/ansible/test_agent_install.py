"""The role's agent install (tasks/agent_install.yml) for real, on this machine, with /opt its own.

The tasks run against localhost in a private mount namespace where a scratch directory is bind-mounted on
/opt (nothing else of the machine is touched; no network namespace): the first run installs the agent's
wheel and its dependencies from a wheelhouse with --no-index, as on the lab's gateways; a second run and a
check change nothing; a changed source is reinstalled (and only predicted in check mode), with the restart
handler notified each time the agent changed. Needs root (mount) and the network once for the wheelhouse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nat_gateway_ha_lab import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare (a private /opt)"
)


class Host:
    """This machine with a scratch /opt, and the play that runs the role's agent install on it."""

    def __init__(self, tmp: Path, house: Path) -> None:
        self.opt = tmp / "opt"
        self.opt.mkdir()
        self.tmp = tmp
        self.house = house
        play = {
            "hosts": "localhost",
            "gather_facts": False,
            "vars_files": [str(ROOT / "roles/nat_gateway_ha/vars/main.yml")],
            "tasks": [
                {"ansible.builtin.import_tasks": str(ROOT / "roles/nat_gateway_ha/tasks/agent_install.yml")}
            ],
            "handlers": [
                {"name": "Restart the failover agent", "ansible.builtin.debug": {"msg": "RESTARTED"}}
            ],
        }
        (tmp / "play.yml").write_text(json.dumps([play]))

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """A command in a mount namespace of its own, with the scratch directory as /opt."""
        mount = f"mount --bind {self.opt} /opt && exec " + " ".join(f"'{a}'" for a in argv)
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        env.pop("PYTHONPATH", None)  # a gateway has none; the checkout's src/ would shadow the venv's agent
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        return proc

    def converge(self, source: Path, *extra: str) -> tuple[int, bool]:
        """Run the install; returns the recap's changed count and whether the restart handler ran."""
        play = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(self.tmp / "play.yml"), *extra]
        play += [
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"nat_gateway_ha_agent_source={source}",
        ]
        play += ["-e", f"nat_gateway_ha_agent_build_dir={self.tmp / 'build'}"]
        play += ["-e", f"nat_gateway_ha_agent_wheelhouse={self.house}"]
        out = self.run(*play).stdout
        recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", out)
        assert recap, out[-2000:]
        return int(recap.group(1)), "RESTARTED" in out


@pytest.fixture(scope="module")
def house(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wheelhouse.ensure(tmp_path_factory.mktemp("wheelhouse"))[0]


def test_the_agent_installs_from_its_wheel_once_and_again_only_when_it_changed(
    house: Path, tmp_path: Path
) -> None:
    host = Host(tmp_path, house)
    changed, restarted = host.converge(ROOT)
    assert changed > 0 and restarted
    assert "iam-policy" in host.run("/opt/nat-gateway-ha/venv/bin/natgw-ha-agent", "--help").stdout
    assert not (host.opt / "nat-gateway-ha/venv/bin/natgw-lab").exists()
    assert host.converge(ROOT) == (0, False)
    assert host.converge(ROOT, "--check") == (0, False)

    source = tmp_path / "source"
    (source / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src/nat_gateway_ha", source / "src/nat_gateway_ha")
    with (source / "src/nat_gateway_ha/states.py").open("a") as f:
        f.write("\n# a change\n")
    [installed] = (host.opt / "nat-gateway-ha/venv/lib").glob(
        "python3*/site-packages/nat_gateway_ha/states.py"
    )
    changed, _ = host.converge(source, "--check")
    assert changed > 0 and "# a change" not in installed.read_text()
    changed, restarted = host.converge(source)
    assert changed > 0 and restarted and "# a change" in installed.read_text()
    assert host.converge(source) == (0, False)
