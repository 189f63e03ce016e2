"""The audited choice of the TFLite library release, on real wheels from the index (cached).

Each choice fetches one or two wheels (a few MB to 20 MB, once: ~/.cache/lamb) and audits them as
they would ship; no artifact is built, so these take seconds.
"""

from __future__ import annotations

import shutil

import pytest

from lamb import targets
from lamb.errors import DependencyError
from lamb.release import lib_choice, wheels

pytestmark = pytest.mark.network


def test_python311_arm64_is_refused_naming_the_symbol():
    target = targets.get_target("python3.11", "arm64")
    with pytest.raises(DependencyError) as err:
        lib_choice.resolve(target, None)
    message = err.value.message
    # one sentence: the library and the symbol version it needs, the target's glibc
    assert message.startswith("ai-edge-litert 1.4.0 cannot load on python3.11 on arm64 (Amazon Linux 2, glibc 2.26)")
    assert "needs GLIBC_2.30" in message and message.count(". ") == 0
    # the way out
    # the way out, each offered only because its own wheel passes the audit
    assert "python3.12 or newer on arm64" in err.value.hint
    assert "--arch x86_64 (ai-edge-litert==1.4.0 passes there)" in err.value.hint and "--wheelhouse" in err.value.hint


def test_python310_tflite_runtime_is_refused_from_the_index():
    with pytest.raises(DependencyError, match=r"tflite-runtime 2\.14\.0 cannot load .* needs GLIBC_2\.29") as err:
        lib_choice.resolve(targets.get_target("python3.10", "x86_64"), None, "tflite-runtime")
    # no newer runtime has tflite-runtime wheels, so none is offered; the default library passes here
    assert "drop --runtime-lib: ai-edge-litert==1.4.0" in err.value.hint and "python3.12" not in err.value.hint


def test_python312_x86_64_passes_with_the_newest_release():
    picked = lib_choice.resolve(targets.get_target("python3.12", "x86_64"), None)
    assert picked.choice.requirement == "ai-edge-litert==2.3.0" and picked.wheel_audit.passed
    assert "passes the ELF audit for Amazon Linux 2023" in picked.choice.reason and not picked.rejected
    assert picked.wheel_audit.provided["GLIBC"] == "2.34" and picked.wheel_audit.rests_on == "documented"


@pytest.mark.parametrize("runtime", ["python3.12", "python3.13"])
def test_arm64_on_al2023_gets_the_newest_release_that_passes_gcc_11s_libstdcxx(runtime):
    # AWS documents GCC 11 (GLIBCXX_3.4.29); ai-edge-litert 2.1.1-2.3.0 on aarch64 need 3.4.30
    picked = lib_choice.resolve(targets.get_target(runtime, "arm64"), None)
    assert picked.choice.requirement == "ai-edge-litert==2.1.0" and picked.wheel_audit.passed
    assert picked.rejected == ["ai-edge-litert 2.3.0 needs GLIBCXX_3.4.30 (libpywrap_litert_common.so)"]
    assert picked.wheel_audit.provided["GLIBCXX"] == "3.4.29" and picked.wheel_audit.newest["GLIBCXX"] == "3.4.26"


def test_python314_arm64_is_refused_with_the_ways_out_that_pass():
    target = targets.get_target("python3.14", "arm64")
    with pytest.raises(DependencyError) as err:
        lib_choice.resolve(target, None)
    assert err.value.message == (
        "ai-edge-litert 2.3.0 cannot load on python3.14 on arm64 (Amazon Linux 2023, glibc 2.34): its "
        "libpywrap_litert_common.so needs GLIBCXX_3.4.30"
    )
    hint = err.value.hint
    assert "--arch x86_64 (ai-edge-litert==2.3.0 passes there)" in hint
    # the ONNX engine, whose aarch64 wheel needs only GLIBCXX_3.4.22: the model must be converted for it
    assert "`lamb convert MODEL --runtime-lib onnxruntime`, verify and package that (onnxruntime " in hint
    assert "--format image" in hint
    assert "`lamb probe --runtime python3.14 --arch arm64` (this verdict rests on documented facts" in hint
    assert "python3.12 or newer" not in hint  # it is already AL2023


def test_an_image_ships_what_only_unmeasured_facts_refuse_and_its_build_decides():
    picked = lib_choice.resolve(targets.get_target("python3.14", "arm64"), None, slimmed=False, proven_at_build=True)
    assert picked.choice.requirement == "ai-edge-litert==2.3.0" and not picked.wheel_audit.passed
    assert "docker build runs the model" in picked.unproven


def test_a_measured_libstdcxx_outranks_the_documented_one():
    from lamb import measured

    measured.store(measured.Measurement(
        "python3.14", "arm64", "us-east-1", "2026-12-06T15:00:00+00:00",
        {"glibc": "2.34", "glibcxx": "3.4.33", "cxxabi": "1.3.15", "gcc": "14.0.0"},
    ))
    picked = lib_choice.resolve(targets.get_target("python3.14", "arm64"), None)
    assert picked.choice.requirement == "ai-edge-litert==2.3.0" and picked.wheel_audit.rests_on == "measured"


def test_a_refusal_on_measured_facts_offers_neither_an_image_nor_another_probe():
    from lamb import measured

    measured.store(measured.Measurement(
        "python3.14", "arm64", "us-east-1", "2026-12-06T15:00:00+00:00",
        {"glibc": "2.34", "glibcxx": "3.4.29", "cxxabi": "1.3.13", "gcc": "11.0"},
    ))
    with pytest.raises(DependencyError) as err:
        lib_choice.resolve(targets.get_target("python3.14", "arm64"), None, proven_at_build=True)
    assert "GLIBCXX_3.4.30" in err.value.message
    assert "lamb probe" not in err.value.hint and "--format image" not in err.value.hint


def test_python311_x86_64_gets_the_release_whose_wheel_loads_on_amazon_linux_2():
    picked = lib_choice.resolve(targets.get_target("python3.11", "x86_64"), None)
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
    picked = lib_choice.resolve(target, None, wheelhouse=house)
    assert picked.choice.requirement == "ai-edge-litert==1.4.0"
    assert "the wheelhouse's ai_edge_litert-1.4.0-cp311-cp311-linux_x86_64.whl passes" in picked.choice.reason


def test_a_wheelhouse_wheel_that_does_not_load_is_refused_naming_the_symbol(tmp_path):
    target = targets.get_target("python3.11", "x86_64")
    house = _wheelhouse(tmp_path, "tflite-runtime", "2.14.0", target, "linux_x86_64")
    with pytest.raises(DependencyError) as err:
        lib_choice.resolve(target, None, "tflite-runtime", wheelhouse=house)
    assert "the wheelhouse's tflite_runtime-2.14.0-cp311-cp311-linux_x86_64.whl cannot load" in err.value.message
    assert "GLIBC_2.29" in err.value.message


def test_an_empty_wheelhouse_says_so(tmp_path):
    with pytest.raises(DependencyError, match="has no wheel of ai-edge-litert"):
        lib_choice.resolve(targets.get_target("python3.12"), None, "ai-edge-litert", wheelhouse=tmp_path)


# What the audit chose for ai-edge-litert on 2026-12-06, on the documented target facts (the docs'
# `lamb package` page shows the same findings): a release, or a refusal naming the version and need.
AUDITED = {
    ("python3.10", "x86_64"): "1.4.0", ("python3.11", "x86_64"): "1.4.0",
    ("python3.10", "arm64"): "refused: 1.4.0 needs GLIBC_2.30", ("python3.11", "arm64"): "refused: 1.4.0 needs GLIBC_2.30",
    ("python3.12", "x86_64"): "2.3.0", ("python3.13", "x86_64"): "2.3.0", ("python3.14", "x86_64"): "2.3.0",
    ("python3.12", "arm64"): "2.1.0", ("python3.13", "arm64"): "2.1.0",
    ("python3.14", "arm64"): "refused: 2.3.0 needs GLIBCXX_3.4.30",
}


def test_the_default_runtime_is_the_newest_whose_litert_passes_the_audit_on_both_arches():
    """What --help says of the default (targets.DEFAULT_RUNTIME_WHY), held to the audit's findings."""
    both = [r for r in targets.RUNTIMES if not any(AUDITED[(r.name, arch)].startswith("refused") for arch in targets.ARCHES)]
    newest = max(both, key=lambda r: tuple(int(x) for x in r.python.split(".")))
    assert targets.DEFAULT_RUNTIME == newest.name == targets.default_runtime().name
    assert any(AUDITED[(r.name, "arm64")].startswith("refused") for r in targets.RUNTIMES
               if tuple(int(x) for x in r.python.split(".")) > tuple(int(x) for x in newest.python.split(".")))


def test_the_audit_chooses_per_target():
    assert set(AUDITED) == {(r.name, arch) for r in targets.RUNTIMES for arch in targets.ARCHES}
    for (runtime, arch), expected in AUDITED.items():
        target = targets.get_target(runtime, arch)
        if expected.startswith("refused: "):
            with pytest.raises(DependencyError) as err:
                lib_choice.resolve(target, None)
            version, _, need = expected[len("refused: "):].partition(" needs ")
            assert f"ai-edge-litert {version} cannot load" in err.value.message and need in err.value.message
        else:
            assert lib_choice.resolve(target, None).choice.version == expected, (runtime, arch)
