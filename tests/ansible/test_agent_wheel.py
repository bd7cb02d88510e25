"""The agent's wheel the role builds on the controller (library/nat_gateway_ha_agent_wheel.py).

Real builds with the controller's pip: the wheel holds the agent and none of the lab, the same source gives
the same bytes (the gateways reinstall on a hash change, so a drifting wheel would restart every agent on
every run), a changed source gives a new hash, and the module reports a change only then.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nat_gateway_ha_agent_wheel", ROOT / "library" / "nat_gateway_ha_agent_wheel.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


wheel = _module()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], bool]:
    build_dir = tmp_path_factory.mktemp("agent-wheel")
    facts, changed = wheel.build(ROOT, build_dir)
    return build_dir, facts, changed


def test_the_wheel_holds_the_agent_and_not_the_lab(built: tuple[Path, dict[str, str], bool]) -> None:
    _, facts, changed = built
    assert changed
    with zipfile.ZipFile(facts["path"]) as zf:
        names = zf.namelist()
        dist_info = f"nat_gateway_ha-{facts['version']}.dist-info"
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    packages = {n.split("/")[0] for n in names}
    assert packages == {"nat_gateway_ha", dist_info}
    assert {"nat_gateway_ha/cli.py", "nat_gateway_ha/py.typed", "nat_gateway_ha/inventory/models.py"} <= set(
        names
    )
    assert not [n for n in names if "nat_gateway_ha_lab" in n or "__pycache__" in n]
    assert "natgw-ha-agent = nat_gateway_ha.cli:main" in entry_points and "natgw-lab" not in entry_points
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split()[1].split(">")[0].split("<")[0] for r in runtime) == [
        "boto3",
        "prometheus-client",
        "pydantic",
    ]
    assert (
        facts["filename"] == Path(facts["path"]).name == f"nat_gateway_ha-{facts['version']}-py3-none-any.whl"
    )


def test_the_root_distribution_leaves_the_lab_out_even_when_built_from_a_whole_checkout(
    tmp_path: Path,
) -> None:
    """The module stages only the agent's package; pyproject.toml itself must also keep the lab out."""
    source = tmp_path / "checkout"
    _copy_project(source)
    shutil.copytree(ROOT / "src" / "nat_gateway_ha_lab", source / "src" / "nat_gateway_ha_lab")
    built = wheel._pip_wheel(source, tmp_path / "out", "")
    with zipfile.ZipFile(built) as zf:
        packages = {n.split("/")[0] for n in zf.namelist()}
    assert "nat_gateway_ha" in packages and "nat_gateway_ha_lab" not in packages


def test_the_same_source_gives_the_same_wheel(built: tuple[Path, dict[str, str], bool]) -> None:
    build_dir, facts, _ = built
    source = build_dir.parent / "touched-source"
    _copy_project(source)
    for py in (source / "src" / "nat_gateway_ha").rglob("*.py"):
        os.utime(py, (1_700_000_000, 1_700_000_000))  # other mtimes, as after a fresh checkout
    (source / "src" / "nat_gateway_ha" / "__pycache__").mkdir(exist_ok=True)
    (source / "src" / "nat_gateway_ha" / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"stale")
    again, changed = wheel.build(source, build_dir)
    assert again == facts and not changed
    assert sorted(p.name for p in build_dir.iterdir()) == [facts["filename"]]


def test_a_changed_source_gives_a_new_wheel_and_replaces_the_old(
    built: tuple[Path, dict[str, str], bool], tmp_path: Path
) -> None:
    build_dir, facts, _ = built
    source = tmp_path / "source"
    _copy_project(source)
    with (source / "src" / "nat_gateway_ha" / "states.py").open("a") as f:
        f.write("\n# a change\n")
    out = tmp_path / "out"
    shutil.copytree(build_dir, out)
    changed_facts, changed = wheel.build(source, out)
    assert changed and changed_facts["sha256"] != facts["sha256"]
    assert changed_facts["sha256"] == wheel.sha256(Path(changed_facts["path"]))
    assert [p.name for p in out.iterdir()] == [facts["filename"]]


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _copy_project(source)
    (source / "pyproject.toml").write_text("[project\n")
    with pytest.raises(wheel.BuildError, match="pip wheel failed"):
        wheel.build(source, tmp_path / "out")


def test_the_module_reports_a_change_only_when_the_wheel_changed(tmp_path: Path) -> None:
    task = {
        "nat_gateway_ha_agent_wheel": {"source": str(ROOT), "build_dir": str(tmp_path / "build")},
        "register": "result",
    }
    save = {"ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(tmp_path / "{{ n }}")}}
    tasks = [task, dict(save, vars={"n": "first"}), task, dict(save, vars={"n": "second"})]
    (tmp_path / "play.yml").write_text(
        json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml")]
    cmd += ["-e", f"ansible_python_interpreter={sys.executable}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    first = json.loads((tmp_path / "first").read_text())
    second = json.loads((tmp_path / "second").read_text())
    assert first["changed"] is True and second["changed"] is False
    assert first["sha256"] == second["sha256"] == wheel.sha256(Path(second["path"]))


def _copy_project(dest: Path) -> None:
    """The files the agent's distribution is built from, in a scratch checkout."""
    (dest / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src" / "nat_gateway_ha", dest / "src" / "nat_gateway_ha")
