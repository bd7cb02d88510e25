"""The role's argument_specs.yml and README key tables are generated from the models and must stay current.

A stale file fails naming itself, and the generated spec has what Ansible needs for every option
(test_docs_ansible.py runs Ansible's own validation against it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nat_gateway_ha.inventory import docs

ROOT = Path(__file__).resolve().parents[2]


def _copy_generated(tmp_path: Path) -> Path:
    for path in (docs.SPECS, docs.README, docs.DEFAULTS):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    return tmp_path


def test_generated_files_are_current() -> None:
    assert docs.stale(ROOT) == [], "stale generated files: run make docs"


def test_check_names_the_stale_file_and_write_restores_it_keeping_the_prose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_generated(tmp_path)
    readme = root / docs.README
    original = readme.read_text()
    readme.write_text(original.replace("| `vrid` | required |", "| `vrid` | 7 |"))
    assert docs.main(["--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{docs.README} is stale" in out
    assert str(docs.SPECS) not in out
    assert docs.main(["--write", "--root", str(root)]) == 0
    assert readme.read_text() == original
    assert docs.main(["--check", "--root", str(root)]) == 0


def test_a_missing_marker_is_an_error_not_a_silently_dropped_table(tmp_path: Path) -> None:
    root = _copy_generated(tmp_path)
    readme = root / docs.README
    readme.write_text(readme.read_text().replace("<!-- BEGIN GENERATED: host-vars -->", ""))
    with pytest.raises(ValueError, match="no marker for host-vars"):
        docs.render(root)


def _walk(options: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in options.items():
        yield f"{path}{name}", spec
        yield from _walk(spec.get("options", {}), f"{path}{name}.")


def test_every_option_has_a_type_and_a_description() -> None:
    specs = yaml.safe_load((ROOT / docs.SPECS).read_text())["argument_specs"]
    allowed = {"str", "int", "float", "bool", "list", "dict", "path", "raw"}
    for entry in ("main", "render"):
        for name, spec in _walk(specs[entry]["options"]):
            assert spec["type"] in allowed, name
            assert isinstance(spec["description"], str) and spec["description"], name
            assert spec["type"] == "list" or "elements" not in spec, name
            assert not (spec.get("required") and "default" in spec), name


def test_the_agent_option_lists_every_tunable_with_its_default() -> None:
    specs = yaml.safe_load((ROOT / docs.SPECS).read_text())["argument_specs"]["main"]["options"]
    agent = specs[docs.PAIR_VAR]["options"]["agent"]["options"]
    assert agent["api_share"] == {
        "description": agent["api_share"]["description"],
        "type": "float",
        "default": 1.0,
    }
    assert agent["eip_timing"]["choices"] == ["after_first_wave", "with_routes", "after_all_routes"]
    assert agent["api_limits"]["default"]["ReplaceRoute"] == {"capacity": 50.0, "refill": 5.0}
    assert specs[docs.PAIR_VAR]["options"]["authentication"]["options"]["auth_pass"]["no_log"] is True


def test_every_role_default_is_described() -> None:
    defaults = yaml.safe_load((ROOT / docs.DEFAULTS).read_text())
    assert set(defaults) <= set(docs.ROLE_VARS)
