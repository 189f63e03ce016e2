"""lamb.package.verified: package ships only a runtime library release a verification ran on."""

from __future__ import annotations

import dataclasses

import pytest

from lamb import manifest as mf
from lamb import targets
from lamb.errors import VerificationFailed
from lamb.package import verified


@dataclasses.dataclass
class Choice:
    name: str
    version: str


@dataclasses.dataclass
class Outcome:
    passed: bool
    runtime_lib: str
    runtime_lib_version: str
    failures: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


TARGET = targets.get_target("python3.13", "arm64")


def _manifest(verified_copy, version="2.3.0"):
    m = mf.read(verified_copy)
    m.verification = dataclasses.replace(m.verification, runtime_lib="ai-edge-litert", runtime_lib_version=version)
    mf.write(m, verified_copy)
    return m


def test_the_verified_release_ships_without_a_second_verification(verified_copy):
    m = _manifest(verified_copy, "2.1.0")
    calls = []
    same, note = verified.ensure(verified_copy, m, Choice("ai-edge-litert", "2.1.0"), TARGET, lambda *a: calls.append(a))
    assert same is m and note is None and calls == []


def test_another_release_is_verified_again_and_recorded(verified_copy):
    m = _manifest(verified_copy, "2.3.0")
    calls = []

    def reverify(path, name, runtime, arch):
        calls.append((path, name, runtime, arch))
        again = mf.read(path)
        again.verification = dataclasses.replace(again.verification, runtime_lib_version="2.1.0")
        mf.write(again, path)
        return Outcome(True, name, "2.1.0")

    now, note = verified.ensure(verified_copy, m, Choice("ai-edge-litert", "2.1.0"), TARGET, reverify)
    assert calls == [(verified_copy, "ai-edge-litert", "python3.13", "arm64")]
    assert now.verification.runtime_lib_version == "2.1.0"
    assert note == "verified again on ai-edge-litert 2.1.0, what python3.13-arm64 ships (lamb verify had run ai-edge-litert 2.3.0)"


def test_a_failed_second_verification_refuses_naming_both_releases(verified_copy):
    m = _manifest(verified_copy, "2.3.0")
    with pytest.raises(VerificationFailed) as err:
        verified.ensure(verified_copy, m, Choice("ai-edge-litert", "2.1.0"), TARGET,
                        lambda *a: Outcome(False, "ai-edge-litert", "2.1.0", failures=["top-1 agreement 0.5 < 0.99"]))
    assert "ai-edge-litert 2.1.0" in err.value.message and "ai-edge-litert 2.3.0" in err.value.message
    assert "top-1 agreement" in err.value.message


def test_by_default_another_release_is_verified_again_by_lamb_verify():
    import inspect

    assert inspect.signature(verified.ensure).parameters["reverify"].default is verified.verify_again
    assert inspect.signature(verified.verify_again).parameters.keys() == {"manifest_path", "runtime_lib_name", "runtime", "arch"}


def test_told_not_to_verify_again_another_release_is_refused_with_the_command(verified_copy):
    m = _manifest(verified_copy, "2.3.0")
    with pytest.raises(VerificationFailed) as err:
        verified.ensure(verified_copy, m, Choice("ai-edge-litert", "2.1.0"), TARGET, None)
    assert "lamb verify ran the model on ai-edge-litert 2.3.0, but python3.13-arm64 ships ai-edge-litert 2.1.0" == err.value.message
    assert "lamb verify --runtime-lib ai-edge-litert --runtime python3.13 --arch arm64" in err.value.hint
