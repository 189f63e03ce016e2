"""Convert a loaded model to a ``.tflite`` file and write the manifest beside it.

The converter path: every model (Keras 3, tf_keras, or a bare SavedModel) is wrapped in one
``tf.function`` with an explicit input signature and a dict of named outputs, and handed to
``TFLiteConverter.from_concrete_functions``. Why not ``from_keras_model``: on Keras 3 models it
exports a temporary SavedModel (printing its endpoints to stdout), it names outputs ``output_0``,
and it cannot apply ``--input-shape`` to a model with open spatial dimensions. The concrete
function path costs the same, works the same way for all three loaders, and gives the TFLite
signature the model's own input and output names, which the manifest records and later steps use.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb import quantization
from lamb.convert.calibration import calibration_files, representative_dataset
from lamb.convert.converter import Export, converter_factory, run_converter
from lamb.convert.load import LoadedModel, load_keras_model
from lamb.convert.preprocess import NOT_INFERRED, check_preprocess, infer_preprocess, preprocess_evidence, read_labels
from lamb.convert.signature import (
    InputSpec,
    apply_input_shape,
    check_labels,
    check_labels_against_keras,
    describe,
    input_specs,
)
from lamb.errors import InputError
from lamb.progress import current


@dataclass
class ConversionResult:
    """What ``convert_model`` wrote and what it found out on the way."""

    tflite_path: Path
    manifest_path: Path
    manifest: mf.Manifest
    seconds: float  # wall time of load + convert + write
    source_bytes: int
    tflite_bytes: int
    notes: list[str] = field(default_factory=list)  # loader fallback, preprocessing inference, ...
    # One line each, said apart from the notes: "none" recorded without evidence, no labels.
    warnings: list[str] = field(default_factory=list)
    # --preprocess given against what the model shows (its base model, a layer that rescales);
    # the CLI warns with it unless --allow-preprocess-mismatch.
    preprocess_mismatch: str | None = None

    @property
    def size_ratio(self) -> float:
        return self.tflite_bytes / self.source_bytes if self.source_bytes else 0.0


def default_output(source: Path) -> Path:
    """``./<stem>.tflite`` in the current directory (a SavedModel folder's name is its stem)."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    return Path.cwd() / f"{stem}.tflite"


def convert_model(
    source: Path | LoadedModel | Export,
    output: Path | None = None,
    *,
    quantize: str = quantization.DEFAULT,
    calibration: Path | None = None,
    int8_io: bool = False,
    input_shape: tuple[int, ...] | None = None,
    preprocess: str | None = None,
    labels: Sequence[str] | None = None,
    allow_flex: bool = False,
    allow_unsafe_lambda: bool = False,
) -> ConversionResult:
    """Load ``source``, convert it to TFLite, write ``<output>`` and ``<output stem>.lamb.json``.

    ``quantize`` names a row of ``lamb.quantization.MODES``; ``calibration`` is the image folder a
    calibrated mode needs, and ``int8_io`` makes an integer-only model's input and output int8 too.
    ``labels`` are the class names in output order (``read_labels`` reads them from a file).
    ``source`` may be a model already loaded by ``load_keras_model``: one load then serves several
    conversions (``lamb compare``); an ``Export`` of it shares one export too. Nothing is written
    unless both conversion and inspection of the result succeed.
    """
    started = time.perf_counter()
    export = source if isinstance(source, Export) else None
    loaded = export.loaded if export is not None else source if isinstance(source, LoadedModel) else None
    source = loaded.source if loaded is not None else Path(source)  # type: ignore[arg-type]  # a path when nothing was loaded
    # Cheap checks first: a typo in an option should not cost a model load.
    mode = _quantization_mode(quantize, calibration, int8_io)
    calibration_images = calibration_files(Path(calibration)) if calibration is not None else []
    preprocess = check_preprocess(preprocess) if preprocess is not None else None
    labels = read_labels(list(labels)) if labels is not None else None
    tflite_path = output_path(source, output)
    manifest_path = mf.manifest_path_for(tflite_path)

    from lamb import tflog

    progress = current()
    if loaded is None:
        progress.phase(f"loading {source.name}")
        with tflog.capture_fd2():
            loaded = load_keras_model(source, allow_unsafe_lambda=allow_unsafe_lambda)
    notes = _load_notes(loaded, allow_unsafe_lambda)
    inputs = apply_input_shape(input_specs(loaded), input_shape)
    preprocess_mode, preprocess_note, mismatch = _preprocessing(loaded, preprocess)
    if labels is not None and loaded.is_keras:
        check_labels_against_keras(labels, loaded.model)

    representative, calibration_info = _calibration(mode, calibration, calibration_images, inputs, preprocess_mode, int8_io)
    if calibration_info is not None:
        progress.phase(f"converting to TFLite, calibrating {mode.name} on {calibration_info['images']} images",
                       total=calibration_info["images"])
    else:
        progress.phase(f"converting to TFLite ({mode.name})")
    exported: contextlib.AbstractContextManager[tuple[Callable[[], Any], list[str]]]
    if export is not None:
        exported = contextlib.nullcontext((export.make_converter, export.output_names))
    else:
        exported = converter_factory(loaded, inputs)
    with exported as (make_converter, output_names):
        flatbuffer, flex_ops = run_converter(make_converter, mode, representative, allow_flex, int8_io)
    if flex_ops:
        notes.append(
            f"converted with TF Select (Flex) ops {', '.join(flex_ops)}: the slim LiteRT/tflite-runtime "
            "builds cannot run this model"
        )

    in_specs, out_specs = describe(flatbuffer, [s.name for s in inputs], output_names)
    if labels is not None:
        check_labels(labels, out_specs)

    source_bytes = _source_bytes(source)
    mf.atomic_write_bytes(tflite_path, flatbuffer)
    manifest = mf.Manifest(
        tflite=mf.relative_to_manifest(manifest_path, tflite_path),
        tflite_sha256=_sha256_bytes(flatbuffer),
        tflite_bytes=len(flatbuffer),
        source=mf.relative_to_manifest(manifest_path, source),
        source_sha256=_source_sha256(source, loaded.source_format),
        source_format=loaded.source_format,
        source_bytes=source_bytes,
        loader=loaded.loader,
        inputs=in_specs,
        outputs=out_specs,
        quantization=mode.name,
        preprocess=preprocess_mode,
        preprocess_note=preprocess_note,
        labels=labels,
        parameters=loaded.parameter_count(),
        requires_flex=bool(flex_ops),
        flex_ops=flex_ops,
        calibration=calibration_info,
        versions=versions(),
        allow_unsafe_lambda=allow_unsafe_lambda,
        source_absolute=str(Path(source).resolve()),
    )
    mf.write(manifest, manifest_path)
    return ConversionResult(
        tflite_path=tflite_path, manifest_path=manifest_path, manifest=manifest, seconds=time.perf_counter() - started,
        source_bytes=source_bytes, tflite_bytes=len(flatbuffer), notes=notes, warnings=missing_evidence(manifest), preprocess_mismatch=mismatch,
    )


def missing_evidence(manifest: mf.Manifest) -> list[str]:
    """What the manifest records without evidence: a "none" nothing showed, no labels."""
    warnings = []
    if mf.preprocess_unconfirmed(manifest):
        warnings.append(
            'recorded preprocessing "none" (raw [0, 255] pixels): nothing in the model shows how it was trained; '
            "pass --preprocess (none to confirm), or `lamb verify --labeled-images DIR` shows which is right. "
            "`lamb package` refuses it until then"
        )
    if not manifest.labels:
        warnings.append("no class labels: the function will answer with output indices (\"0\", \"1\", ...); pass --labels-file")
    return warnings


def _calibration(
    mode: quantization.Mode, folder: Path | None, files: list[Path], inputs: list[InputSpec], preprocess: str, int8_io: bool
) -> tuple[Any, dict[str, Any] | None]:
    """The representative dataset a calibrated mode converts with, and what the manifest records of it."""
    if not mode.calibrated:
        return None, None
    representative, info = representative_dataset(files, inputs, preprocess)
    info["dir"] = str(Path(folder).resolve())  # type: ignore[arg-type]
    info["io_dtype"] = "int8" if int8_io else "float32"
    return representative, info


def _quantization_mode(quantize: str, calibration: Path | None, int8_io: bool) -> quantization.Mode:
    """The mode's row, with the options that only some modes take checked against it."""
    try:
        mode = quantization.get(quantize)
    except KeyError:
        raise InputError(f"unknown quantization {quantize!r}", f"use one of: {', '.join(quantization.NAMES)}") from None
    integer_only = " or ".join(m.name for m in quantization.MODES if m.integer_only)
    calibrated = " or ".join(m.name for m in quantization.MODES if m.calibrated)
    if int8_io and not mode.integer_only:
        raise InputError(f"--int8-io only applies to --quantize {integer_only}", f"add --quantize {integer_only}, or drop --int8-io")
    if mode.calibrated and calibration is None:
        raise InputError(
            f"{mode.name} quantization needs calibration images",
            "pass --calibration DIR with ~100 representative images (the model's own training images are best)",
        )
    if calibration is not None and not mode.calibrated:
        raise InputError(f"--calibration only applies to --quantize {calibrated}", f"add --quantize {calibrated}, or drop --calibration")
    return mode


def output_path(source: Path, output: Path | None) -> Path:
    """Where the .tflite goes: ``output``, a file in ``output`` when it is a folder, else the default."""
    tflite_path = Path(output) if output is not None else default_output(source)
    # A path without a suffix is a folder (created if needed): the shell and Typer both drop the
    # trailing slash that would otherwise say so.
    if tflite_path.is_dir() or not tflite_path.suffix:
        tflite_path = tflite_path / default_output(source).name
    if tflite_path.suffix != ".tflite":
        raise InputError(
            f"the output {tflite_path} does not end in .tflite",
            "name the output file like model.tflite (the manifest goes beside it as model.lamb.json), or pass a folder",
        )
    return tflite_path


def _preprocessing(loaded: LoadedModel, given: str | None) -> tuple[str, str, str | None]:
    """The preprocessing mode to record, how it was decided, and what the model shows against a given one."""
    if given is not None:
        return given, "given", preprocess_evidence(loaded.model, given) if loaded.is_keras else None
    if loaded.is_keras:
        return (*infer_preprocess(loaded.model), None)
    return "none", f"{NOT_INFERRED}: a bare SavedModel has no layers to inspect; pass --preprocess", None


def _load_notes(loaded: LoadedModel, allow_unsafe_lambda: bool) -> list[str]:
    notes = list(loaded.notes)
    if allow_unsafe_lambda and loaded.unsafe_lambdas:
        notes.append(
            f"loaded the Lambda layer code ({', '.join(loaded.unsafe_lambdas)}) as --allow-unsafe-lambda allows; "
            "the manifest records that, so `lamb verify` loads this same file without asking again"
        )
    return notes


# -- files and versions --------------------------------------------------------------------------


def _sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _source_bytes(source: Path) -> int:
    if source.is_dir():
        return sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    return source.stat().st_size


def _source_sha256(source: Path, source_format: str) -> str | None:
    if source_format == "savedmodel":
        pb = source / "saved_model.pb"
        return mf.sha256_file(pb) if pb.is_file() else None
    return mf.sha256_file(source)


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for key, dist in (("lamb", "lamb"), ("tensorflow", "tensorflow"), ("keras", "keras"), ("tf_keras", "tf-keras")):
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found
