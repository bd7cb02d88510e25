"""The base root cache: keyed by what goes into it, and an interrupted build is never taken for a base."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from nat_gateway_ha_lab import baseroot


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(baseroot, "CACHE_DIR", tmp_path)
    return tmp_path


def test_key_follows_the_package_list(monkeypatch: pytest.MonkeyPatch) -> None:
    before = baseroot.base_path()
    monkeypatch.setattr(baseroot, "PACKAGES", (*baseroot.PACKAGES, "tcpdump"))
    extended = baseroot.base_path()
    assert extended != before
    monkeypatch.setattr(baseroot, "PACKAGES", tuple(reversed(baseroot.PACKAGES)))
    assert baseroot.base_path() == extended  # order does not matter, content does


def test_a_complete_base_is_reused_without_building(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = baseroot.base_path()
    (final / "etc").mkdir(parents=True)
    (final / "etc/os-release").write_text("ID=debian\n")

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("debootstrap must not run for a cached base")

    monkeypatch.setattr(subprocess, "run", no_build)
    assert baseroot.ensure_base(log=False) == final


def test_an_interrupted_build_is_discarded(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What a killed build leaves: a temp dir that looks like a root but never got its final name.
    stale = cache / f".build-{baseroot.base_path().name}-4242"
    (stale / "etc").mkdir(parents=True)
    (stale / "etc/os-release").write_text("ID=debian\n")
    monkeypatch.setattr(baseroot.shutil, "which", lambda name: "/usr/sbin/debootstrap")

    def failing_debootstrap(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        target = Path(cmd[-2])
        (target / "debootstrap").mkdir(parents=True)
        (target / "debootstrap/debootstrap.log").write_text("E: Couldn't download packages\n")
        return subprocess.CompletedProcess(cmd, 1)

    monkeypatch.setattr(baseroot.subprocess, "run", failing_debootstrap)
    with pytest.raises(SystemExit, match="debootstrap failed"):
        baseroot.ensure_base(log=False)
    assert not stale.exists()
    assert not baseroot.base_path().exists()
    assert list(cache.glob(".build-*")) == []
    assert "Couldn't download packages" in (cache / "debootstrap.log").read_text()
