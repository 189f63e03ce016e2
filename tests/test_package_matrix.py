"""Issue 16's "done when", as a test: on the documented facts (AL2023's libstdc++ at GLIBCXX_3.4.29),
every Lambda runtime on both arches, with the default library and with tflite-runtime, either
ships an artifact whose every ELF file passes that baseline or is refused in one line with ways
out. Real wheels (cached), no smoke run."""

from __future__ import annotations

import pytest

from lamb import targets
from lamb.errors import DependencyError
from lamb.package import build_package

pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.mark.parametrize("runtime_lib", [None, "tflite-runtime"])
def test_every_target_ships_what_passes_or_refuses_with_ways_out(tmp_path, verified_copy, runtime_lib):
    outcomes = {}
    for runtime in targets.RUNTIMES:
        for arch in targets.ARCHES:
            out = tmp_path / f"{runtime.name}-{arch}.zip"
            try:
                # skip_verify: this is about the audit; tests/test_package.py verifies again on what ships
                r = build_package(verified_copy, runtime=runtime.name, arch=arch, output=out, smoke=False,
                                  runtime_lib_name=runtime_lib, skip_verify=True)
            except DependencyError as exc:
                assert "\n" not in exc.message and exc.hint.startswith("use ")
                outcomes[f"{runtime.name}-{arch}"] = "refused"
                continue
            assert r.audit is not None and r.audit.passed and r.audit.rests_on == "documented"
            assert r.audit.provided["GLIBCXX"] == ("3.4.29" if runtime.os == "Amazon Linux 2023" else "3.4.24")
            outcomes[f"{runtime.name}-{arch}"] = f"{r.runtime_lib.name} {r.runtime_lib.version}"
    if runtime_lib is None:
        assert outcomes == {
            "python3.10-x86_64": "ai-edge-litert 1.4.0", "python3.10-arm64": "refused",
            "python3.11-x86_64": "ai-edge-litert 1.4.0", "python3.11-arm64": "refused",
            "python3.12-x86_64": "ai-edge-litert 2.3.0", "python3.12-arm64": "ai-edge-litert 2.1.0",
            "python3.13-x86_64": "ai-edge-litert 2.3.0", "python3.13-arm64": "ai-edge-litert 2.1.0",
            "python3.14-x86_64": "ai-edge-litert 2.3.0", "python3.14-arm64": "refused",
        }
    else:
        assert set(outcomes.values()) == {"refused"}  # glibc 2.29 on AL2, no wheel for 3.12+
