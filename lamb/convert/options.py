"""What ``lamb convert`` takes (``ConvertOptions``), checked the same way for every source and
format; what it gives is ``lamb.convert.report.ConversionResult``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lamb import manifest as mf
from lamb import quantization, runtime_lib
from lamb.errors import InputError
from lamb.manifest import PREPROCESS_NOT_INFERRED as NOT_INFERRED


@dataclass(frozen=True)
class ConvertOptions:
    """Every choice ``lamb convert`` offers; the defaults are the command's."""

    quantize: str = quantization.DEFAULT  # one of the format's modes
    calibration: Path | None = None  # the image folder a calibrated mode needs
    integer_io: bool = False  # the model's input and output in its mode's integer type (Mode.integer_io)
    input_shape: tuple[int, ...] | None = None
    preprocess: str | None = None  # None: inferred from the model
    labels: Sequence[str] | None = None  # class names in output order (``read_labels`` reads a file)
    head: str | None = None  # what the output is (lambkit.heads); None: read off the graph, else assumed
    allow_flex: bool = False
    allow_unsafe_lambda: bool = False
    runtime_lib_name: str | None = None  # None: the first library in lamb.runtime_lib's preference order


def missing_evidence(manifest: mf.Manifest) -> list[str]:
    """What the manifest records without evidence: a "none" nothing showed, no labels."""
    warnings = []
    if mf.preprocess_unconfirmed(manifest):
        why = (manifest.preprocess_note or "").removeprefix(f"{NOT_INFERRED}: ").split("; pass --preprocess")[0]
        warnings.append(
            f'recorded preprocessing "none" (raw [0, 255] pixels) without evidence: {why}. Pass --preprocess '
            "(none to confirm), or let `lamb verify --labeled-images DIR` show which is right; `lamb package` refuses it until then"
        )
    if mf.unlabelled_classifier(manifest):
        warnings.append("no class labels: the function will answer with output indices (\"0\", \"1\", ...); pass --labels-file")
    return warnings


def quantization_mode(fmt: runtime_lib.ModelFormat, quantize: str, calibration: Path | None, integer_io: bool) -> quantization.Mode:
    """The mode's row, with the options that only some modes take checked against it."""
    try:
        mode = fmt.mode(quantize)
    except KeyError:
        raise InputError(f"unknown quantization {quantize!r}", f"use one of: {', '.join(fmt.mode_names)}") from None
    integer = " or ".join(m.name for m in fmt.modes if m.integer_io)
    calibrated = " or ".join(m.name for m in fmt.modes if m.calibrated)
    if integer_io and not integer:
        raise InputError(f"--integer-io is not offered for {fmt.title} model: its models take and return float32", "drop --integer-io")
    if integer_io and not mode.integer_io:
        raise InputError(f"--integer-io only applies to --quantize {integer}", f"add --quantize {integer}, or drop --integer-io")
    if mode.calibrated and calibration is None:
        raise InputError(
            f"{mode.name} quantization needs calibration images",
            "pass --calibration DIR with ~100 representative images (the model's own training images are best)",
        )
    if calibration is not None and not mode.calibrated:
        raise InputError(f"--calibration only applies to --quantize {calibrated}", f"add --quantize {calibrated}, or drop --calibration")
    return mode
