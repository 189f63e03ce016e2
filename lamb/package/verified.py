"""Ship only what was verified: the runtime library release ``lamb package`` ships must be the one
the manifest's verification ran on, or it is verified again on it first.

The ELF audit may pick another release than ``lamb verify`` ran (ai-edge-litert 2.1.0 on arm64
where verify, on this x86_64 machine, ran 2.3.0), or another library (the verified one refused on
Amazon Linux 2). Then the verification is repeated on the release that ships, on the same inputs
(``lamb.verify.verify_again``, by default: ``lamb.package.build_package`` from Python and
``lamb package`` decide alike), and the new verdict is the one the manifest and the artifact record.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb import targets
from lamb.errors import VerificationFailed

# (manifest path, runtime library, runtime, arch) -> a report with ``passed``, ``runtime_lib``,
# ``runtime_lib_version``, ``failures`` and ``error`` (lamb.verify.VerifyReport).
Reverify = Callable[[Path, str, str, str], Any]


def matches(verification: mf.Verification | None, name: str, version: str) -> bool:
    return verification is not None and (verification.runtime_lib, verification.runtime_lib_version) == (name, version)


def verify_again(manifest_path: Path, runtime_lib_name: str, runtime: str, arch: str) -> Any:
    """``lamb.verify.verify_again``: what ``ensure`` verifies again with unless told otherwise."""
    from lamb.verify import verify_again

    return verify_again(manifest_path, runtime_lib_name, runtime, arch)


def ensure(manifest_path: Path, manifest: mf.Manifest, choice: Any, target: targets.Target,
           reverify: Reverify | None = verify_again) -> tuple[mf.Manifest, str | None]:
    """The manifest whose verification ran on ``choice`` (name and version), verifying again with
    ``reverify`` when it did not (None: refuse, naming the command that verifies it); and a
    sentence saying so (None when nothing had to be done)."""
    before = manifest.verification
    if before is None or matches(before, choice.name, choice.version):
        return manifest, None
    ran = f"{before.runtime_lib} {before.runtime_lib_version}"
    ships = f"{choice.name} {choice.version}"
    if reverify is None:
        raise VerificationFailed(
            f"lamb verify ran the model on {ran}, but {target.name} ships {ships}",
            f"run `lamb verify --runtime-lib {choice.name} --runtime {target.runtime.name} --arch {target.arch}`, "
            "or package with verifying again left on (the default)",
        )
    report = reverify(manifest_path, choice.name, target.runtime.name, target.arch)
    if not report.passed:
        why = "; ".join(report.failures[:2]) or report.error or "see `lamb verify`"
        raise VerificationFailed(
            f"verified again on {ships}, which {target.name} ships (verify had run {ran}): it failed ({why})",
            f"package for another target, or another --runtime-lib; `lamb verify --runtime-lib {choice.name} "
            f"--runtime {target.runtime.name} --arch {target.arch}` shows the numbers",
        )
    got = f"{report.runtime_lib} {report.runtime_lib_version}"
    if got != ships:
        raise VerificationFailed(f"verifying again on {ships} ran {got} instead", "report this: lamb verify and lamb package disagree")
    return mf.read(manifest_path), f"verified again on {ships}, what {target.name} ships (lamb verify had run {ran})"
