"""Wheels resolved for the target, never for this machine; the cache; the wheelhouse."""

from __future__ import annotations

import shutil

import pytest

from lamb import targets
from lamb.errors import DependencyError, InputError
from lamb.release import wheels

pytestmark = pytest.mark.network


def test_python312_install_has_cp312_binaries(target_installs):
    result = target_installs["python3.12-x86_64"]
    assert result.installed["ai-edge-litert"] == "2.3.0"
    assert {"numpy", "pillow"} <= set(result.installed)
    sos = [p.name for p in result.dest.rglob("*.cpython-*.so")]
    assert sos and all("cpython-312-x86_64-linux-gnu" in name for name in sos)  # this host is 3.11
    assert all(("cp312" in w or "abi3" in w or "none-any" in w) for w in result.wheels)
    assert "numpy==" + result.installed["numpy"] in result.pinned()


def test_python311_install_uses_manylinux_wheels_al2_can_load(target_installs):
    result = target_installs["python3.11-x86_64"]
    assert result.installed["ai-edge-litert"] == "1.4.0"
    for wheel in result.wheels:
        tags = wheel[: -len(".whl")].split("-")[-1].split(".")
        # every platform tag of every wheel must be one the target's glibc (2.26) loads
        assert any(t == "any" or t in targets.get_target("python3.11").platform_tags for t in tags), wheel


def test_no_wheel_for_the_target_names_package_and_target(tmp_path, target_installs):
    with pytest.raises(DependencyError) as err:
        wheels.install_for_target(["ai-edge-litert==2.3.0"], targets.get_target("python3.11"), tmp_path / "x")
    assert "ai-edge-litert" in err.value.message and "python3.11-x86_64" in err.value.message
    assert err.value.exit_code == 7


def test_cache_makes_the_second_install_offline(tmp_path, target_installs):
    result = wheels.install_for_target(
        target_installs["python3.12-x86_64"].pinned(), targets.get_target("python3.12"), tmp_path / "again"
    )
    assert result.source == "cache"
    assert result.installed == target_installs["python3.12-x86_64"].installed


def test_wheelhouse_builds_offline_and_reports_what_is_missing(tmp_path, target_installs):
    first = target_installs["python3.11-x86_64"]
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name in first.wheels:
        shutil.copy2(wheels.cache_dir() / name, house / name)
    result = wheels.install_for_target(first.pinned(), targets.get_target("python3.11"), tmp_path / "deps", wheelhouse=house)
    assert result.source == "wheelhouse" and result.installed == first.installed
    numpy_wheel = next(house.glob("numpy-*.whl"))
    numpy_wheel.unlink()
    with pytest.raises(DependencyError) as err:
        wheels.install_for_target(first.pinned(), targets.get_target("python3.11"), tmp_path / "deps2", wheelhouse=house)
    assert "numpy" in err.value.message and "wheelhouse" in err.value.message
    with pytest.raises(InputError):
        wheels.install_for_target(["numpy"], targets.get_target("python3.11"), tmp_path / "d3", wheelhouse=tmp_path / "nope")


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMB_CACHE_DIR", str(tmp_path))
    assert wheels.cache_dir() == tmp_path / "wheels"


def test_requires_python_is_checked_against_the_target_not_this_machine(tmp_path, target_installs):
    # NumPy 2.5 requires Python >= 3.12. pip < 24.3 compared that with the running Python (3.11
    # here) even for a --python-version 3.14 target; the default target broke on a fresh clone.
    result = wheels.install_for_target(["numpy>=2.5"], targets.get_target("python3.14"), tmp_path / "t")
    assert result.installed["numpy"].startswith("2.")
    sos = [p.name for p in (tmp_path / "t").rglob("*.cpython-*.so")]
    assert sos and all("cpython-314-x86_64-linux-gnu" in name for name in sos)


def test_installed_distributions_reads_metadata_and_normalises_names(tmp_path):
    for dist, name, version in [("Foo_Bar-1.0.dist-info", "Foo_Bar", "1.0"), ("zope.iface-2.1.dist-info", "zope.iface", "2.1")]:
        (tmp_path / dist).mkdir()
        (tmp_path / dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
    (tmp_path / "broken-0.dist-info").mkdir()  # no METADATA: skipped, not an error
    assert wheels.installed_distributions(tmp_path) == {"foo-bar": "1.0", "zope-iface": "2.1"}


def test_a_requirement_pip_could_not_satisfy_is_named_by_its_distribution():
    assert wheels._requirement_name("Pillow[extra]>=10; python_version>'3'") == "pillow"
    assert wheels._requirement_name("numpy==2.5") == "numpy"
