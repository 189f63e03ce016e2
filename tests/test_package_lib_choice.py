"""The audited choice of the TFLite library release, on real wheels from the index (cached).

Each choice fetches one or two wheels (a few MB to 20 MB, once: ~/.cache/lamb) and audits them as
they would ship; no artifact is built, so these take seconds.
"""

from __future__ import annotations

import shutil

import pytest

from lamb import targets
from lamb.errors import DependencyError
from lamb.package import lib_choice, wheels

pytestmark = pytest.mark.network


def test_python311_arm64_is_refused_naming_the_symbol():
    target = targets.get_target("python3.11", "arm64")
    with pytest.raises(DependencyError) as err:
        lib_choice.choose(target, None)
    message = err.value.message
    # one sentence: the library and the symbol version it needs, the target's glibc
    assert message.startswith("ai-edge-litert 1.4.0 cannot load on python3.11 on arm64 (Amazon Linux 2, glibc 2.26)")
    assert "needs GLIBC_2.30" in message and message.count(". ") == 0
    # the way out
    # the way out, each offered only because its own wheel passes the audit
    assert "python3.12 or newer on arm64" in err.value.hint
    assert "x86_64 (ai-edge-litert==1.4.0 passes there)" in err.value.hint and "--wheelhouse" in err.value.hint


def test_python310_tflite_runtime_is_refused_from_the_index():
    with pytest.raises(DependencyError, match=r"tflite-runtime 2\.14\.0 cannot load .* needs GLIBC_2\.29") as err:
        lib_choice.choose(targets.get_target("python3.10", "x86_64"), None, "tflite-runtime")
    # no newer runtime has tflite-runtime wheels, so none is offered; the default library passes here
    assert "drop --runtime-lib: ai-edge-litert==1.4.0" in err.value.hint and "python3.12" not in err.value.hint


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_python312_passes_with_the_newest_release(arch):
    picked = lib_choice.choose(targets.get_target("python3.12", arch), None)
    assert picked.choice.requirement == "ai-edge-litert==2.3.0" and picked.wheel_audit.passed
    assert "passes the ELF audit for Amazon Linux 2023" in picked.choice.reason and not picked.rejected
    assert picked.wheel_audit.provided["GLIBC"] == "2.34"


def test_python311_x86_64_gets_the_release_whose_wheel_loads_on_amazon_linux_2():
    picked = lib_choice.choose(targets.get_target("python3.11", "x86_64"), None)
    assert picked.choice.requirement == "ai-edge-litert==1.4.0"
    assert picked.wheel_audit.newest["GLIBC"] <= "2.26"


def _wheelhouse(tmp_path, name, version, target, tagged_as):
    """A wheelhouse holding one real wheel renamed to the platform tag ``tagged_as``."""
    wheel = wheels.fetch_wheel(name, version, target)
    house = tmp_path / "wheelhouse"
    house.mkdir()
    parts = wheel.name[:-len(".whl")].split("-")
    shutil.copy2(wheel, house / ("-".join(parts[:4]) + f"-{tagged_as}.whl"))
    return house


def test_a_linux_tagged_wheelhouse_wheel_that_loads_is_used(tmp_path):
    # as a wheel built on Amazon Linux itself would be tagged
    target = targets.get_target("python3.11", "x86_64")
    house = _wheelhouse(tmp_path, "ai-edge-litert", "1.4.0", target, "linux_x86_64")
    picked = lib_choice.choose(target, None, wheelhouse=house)
    assert picked.choice.requirement == "ai-edge-litert==1.4.0"
    assert "the wheelhouse's ai_edge_litert-1.4.0-cp311-cp311-linux_x86_64.whl passes" in picked.choice.reason


def test_a_wheelhouse_wheel_that_does_not_load_is_refused_naming_the_symbol(tmp_path):
    target = targets.get_target("python3.11", "x86_64")
    house = _wheelhouse(tmp_path, "tflite-runtime", "2.14.0", target, "linux_x86_64")
    with pytest.raises(DependencyError) as err:
        lib_choice.choose(target, None, "tflite-runtime", wheelhouse=house)
    assert "the wheelhouse's tflite_runtime-2.14.0-cp311-cp311-linux_x86_64.whl cannot load" in err.value.message
    assert "GLIBC_2.29" in err.value.message


def test_an_empty_wheelhouse_says_so(tmp_path):
    with pytest.raises(DependencyError, match="has no wheel of ai-edge-litert"):
        lib_choice.choose(targets.get_target("python3.12"), None, "ai-edge-litert", wheelhouse=tmp_path)
