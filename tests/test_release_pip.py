"""pip's failures mapped to DependencyError, offline: a fake pip injected into PipRunner."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamb import targets
from lamb.errors import DependencyError
from lamb.release import wheels


class FakePip:
    """Stands in for ``SubprocessPip``: records each call; ``fail(args)`` returns the stderr of a
    failed run or None; successful installs write a dist-info per requirement into --target, and
    NumPy's (version 1.0) when no requirement names it, as a resolver would bring it in."""

    def __init__(self, fail=lambda args: None):
        self.calls: list[list[str]] = []
        self.fail = fail

    def main(self, args):
        self.calls.append(args)
        stderr = self.fail(args)
        if stderr is not None:
            return 1, stderr
        if "--dry-run" in args:  # pip's plan: the report of what it would install (nothing, here)
            Path(args[args.index("--report") + 1]).write_text('{"install": []}')
        elif args[0] == "install":
            dest = Path(args[args.index("--target") + 1])
            requirements = _requirements(args)
            if not any(r.partition("==")[0] == "numpy" for r in requirements):
                requirements.append("numpy")  # as ai-edge-litert depends on it: the resolver's pick
            for req in requirements:
                name, _, version = req.partition("==")
                info = dest / f"{name}-{version or '1.0'}.dist-info"
                info.mkdir(parents=True, exist_ok=True)
                (info / "METADATA").write_text(f"Name: {name}\nVersion: {version or '1.0'}\n\n")
        return 0, ""


def _requirements(args):
    """The positional requirements at the end of a pip command line lamb builds."""
    options_with_values = {"--report", "--target", "--find-links", "--implementation", "--python-version", "--abi", "--platform", "--dest"}
    out, skip = [], False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg in options_with_values:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out


TARGET = targets.get_target("python3.12", "x86_64")


@pytest.mark.parametrize(("stderr", "message", "package"), [
    ("ERROR: Could not find a version that satisfies the requirement numpy==9.9 (from versions: none)\n"
     "ERROR: No matching distribution found for numpy==9.9\n", "no wheel of numpy==9.9 for python3.12-x86_64", "numpy"),
    ("ERROR: Package 'Foo_Bar' requires a different Python: 3.12.0 not in '>=3.13'\n",
     "Foo_Bar does not support Python 3.12 (3.12.0 not in '>=3.13')", "foo-bar"),
    ("ERROR: Cannot install a and b because these package versions have conflicting dependencies.\n"
     "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io\n", "the requirements conflict for python3.12-x86_64", None),
    ("ERROR: something else entirely\n", "pip failed resolving wheels for python3.12-x86_64: ERROR: something else entirely", None),
])
def test_pip_failures_become_one_dependency_error(tmp_path, stderr, message, package):
    fake = FakePip(fail=lambda args: stderr)
    with pytest.raises(DependencyError) as info:
        wheels.install_for_target(["numpy==9.9"], TARGET, tmp_path / "dest", cache=tmp_path / "cache",
                                  pip=wheels.PipRunner(fake))
    assert message in info.value.message and info.value.package == package
    assert "the package index" in info.value.message or package != "numpy"
    assert [call[0] for call in fake.calls] == ["install", "download"]  # the cache first, then the index


def test_the_cache_then_the_index_with_the_targets_tags(tmp_path):
    misses = iter([True, False, False])  # the cache lacks the wheel once; the download brings it
    fake = FakePip(fail=lambda args: "ERROR: No matching distribution found for pillow\n" if args[0] == "install" and next(misses) else None)
    result = wheels.install_for_target(["pillow==11.0.0"], TARGET, tmp_path / "dest", cache=tmp_path / "cache",
                                       pip=wheels.PipRunner(fake))
    assert result.source == "index" and result.installed == {"pillow": "11.0.0", "numpy": "1.0"}
    assert [call[0] for call in fake.calls] == ["install", "download", "install"]
    for call in fake.calls:
        assert "--only-binary=:all:" in call and call[call.index("--python-version") + 1] == "3.12"
        assert "manylinux_2_34_x86_64" in call and "pillow==11.0.0" in call
    assert "--no-index" in fake.calls[0] and str(tmp_path / "cache") in fake.calls[1]


def test_a_wheelhouse_failure_names_the_wheelhouse(tmp_path):
    house = tmp_path / "house"
    house.mkdir()
    fake = FakePip(fail=lambda args: "ERROR: No matching distribution found for numpy\n")
    with pytest.raises(DependencyError, match=r"in the wheelhouse .*house") as info:
        wheels.install_for_target(["numpy"], TARGET, tmp_path / "dest", wheelhouse=house, pip=wheels.PipRunner(fake))
    assert "add the wheel to the wheelhouse" in info.value.hint and len(fake.calls) == 1  # never the index


def test_same_versions_unpins_what_the_host_lacks_but_never_the_runtime_library(tmp_path):
    def no_numpy_25(args):
        return "ERROR: No matching distribution found for numpy==2.5.0\n" if "numpy==2.5.0" in args else None

    pins = {"ai-edge-litert": "2.3.0", "numpy": "2.5.0"}
    fake = FakePip(fail=no_numpy_25)
    got, differences = wheels.install_same_versions(pins, TARGET, tmp_path / "dest", keep="ai-edge-litert",
                                                     cache=tmp_path / "cache", pip=wheels.PipRunner(fake))
    assert got.installed == {"ai-edge-litert": "2.3.0", "numpy": "1.0"}
    assert differences == ["numpy 1.0 (target 2.5.0)"]
    fake = FakePip(fail=lambda args: "ERROR: No matching distribution found for ai-edge-litert==2.3.0\n"
                   if "ai-edge-litert==2.3.0" in args else None)
    with pytest.raises(DependencyError, match="cannot run a stand-in"):
        wheels.install_same_versions(pins, TARGET, tmp_path / "dest2", keep="ai-edge-litert",
                                     cache=tmp_path / "cache", pip=wheels.PipRunner(fake))


def test_the_real_pip_leaves_a_trail_for_verbose(caplog):
    with caplog.at_level("DEBUG", logger="lamb.release.wheels"):
        status, _ = wheels.SubprocessPip().main(["--version"])
    lines = [r.getMessage() for r in caplog.records if r.name == "lamb.release.wheels"]
    assert status == 0 and lines[0] == "pip --version" and lines[1].startswith("pip exited 0 after ")
