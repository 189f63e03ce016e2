"""``verify_again``: the manifest's verification repeated on another release of a runtime library.

``lamb package`` ships only what a verification ran on. When the ELF audit makes it ship another
release than ``lamb verify`` used (ai-edge-litert 2.1.0 where verify ran 2.3.0, say), it verifies
again through this: the same inputs (the images folder the verification recorded, if it is still
there, and its seeded random samples regenerated from the recorded seed), the same tolerances, on
the library ``lamb package`` ships for the target. The new verdict replaces the manifest's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.verify.inputs import DEFAULT_SAMPLES, DEFAULT_SEED, VerifyInputs
from lamb.verify.report import VerifyReport
from lamb.verify.step import verify_model
from lamb.verify.tolerances import ToleranceOverrides


def verify_again(manifest_path: Path, runtime_lib_name: str, runtime: str, arch: str) -> VerifyReport:
    """Verify the manifest's model again, on ``runtime_lib_name`` as ``lamb package`` ships it for
    ``runtime`` on ``arch``, with the inputs and tolerances of the manifest's last verification."""
    manifest_path = Path(manifest_path)
    previous = mf.read(manifest_path).verification
    inputs, note = recorded_inputs(previous, manifest_path)
    recorded = previous.tolerances if previous is not None else {}
    limits: dict[str, Any] = {f.name: recorded[f.name] for f in dataclasses.fields(ToleranceOverrides) if f.name in recorded}
    report = verify_model(
        manifest_path=manifest_path, inputs=inputs, tolerances=ToleranceOverrides(**limits),
        runtime_lib_name=runtime_lib_name, runtime=f"{runtime}-{arch}",
    )
    if note:
        report.notes.append(note)
    return report


def recorded_inputs(previous: mf.Verification | None, manifest_path: Path) -> tuple[VerifyInputs, str]:
    """The inputs ``previous`` ran on, as far as they can be had again, and a note when not all can."""
    if previous is None:
        return VerifyInputs(), ""
    seed = previous.seed if previous.seed is not None else DEFAULT_SEED
    images = None
    if previous.images_dir:
        folder = Path(previous.images_dir)
        folder = folder if folder.is_absolute() else manifest_path.parent / folder
        images = folder if folder.is_dir() else None
    if previous.images and images is None:
        # The images are gone: as many seeded random inputs instead, said plainly.
        samples = max(previous.samples + previous.images, DEFAULT_SAMPLES)
        return (VerifyInputs(samples=samples, seed=seed),
                f"the {previous.images} images the last verification used are not at {previous.images_dir or 'a recorded folder'} "
                f"any more: verified on {samples} seeded random inputs (seed {seed}) instead")
    return VerifyInputs(samples=previous.samples if previous.samples or images is not None else None,
                        images=images, seed=seed), ""
