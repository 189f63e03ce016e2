"""Convert a loaded model for a runtime library and write the manifest beside it.

Generic: the runtime library's record (``lamb.runtime_lib``) names the model format, and the
format names its converter (``lamb.convert.engine``), which this module calls. Loading, input
shapes, preprocessing, labels, calibration images and the manifest are the same for every format.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb import quantization, runtime_lib
from lamb.convert import engine, onnx_input
from lamb.convert.calibration import calibration_files, representative_dataset
from lamb.convert.engine import Export
from lamb.convert.heads import check_head, decide_head, keras_activation
from lamb.convert.load import LoadedModel, load_keras_model
from lamb.convert.options import ConvertOptions, missing_evidence, quantization_mode
from lamb.convert.preprocess import NOT_INFERRED, check_preprocess, infer_preprocess, preprocess_evidence, read_labels
from lamb.convert.report import ConversionResult
from lamb.convert.signature import InputSpec, apply_input_shape, check_labels, check_labels_against_keras, input_specs
from lamb.errors import InputError
from lamb.progress import current


def default_output(source: Path, fmt: runtime_lib.ModelFormat | None = None) -> Path:
    """``./<stem><suffix>`` in the current directory (a SavedModel folder's name is its stem)."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    return Path.cwd() / f"{stem}{(fmt or runtime_lib.default().format).suffix}"


def convert_model(
    source: Path | LoadedModel | Export,
    output: Path | None = None,
    options: ConvertOptions | None = None,
    **changes: Any,
) -> ConversionResult:
    """Load ``source``, convert it for the runtime library, write ``<output>`` and ``<output stem>.lamb.json``.

    ``options`` (default: the command's) with ``changes`` applied field by field, so
    ``convert_model(path, out, quantize="int8", calibration=folder)`` reads as the command line
    does. The runtime library sets the model format and so its converter and its quantization
    modes. ``source`` may be a model already loaded by ``load_keras_model``: one load then serves
    several conversions (``lamb compare``); an ``Export`` of it shares one export too. Nothing is
    written unless both conversion and inspection of the result succeed.
    """
    o = dataclasses.replace(options or ConvertOptions(), **changes)
    if not isinstance(source, (LoadedModel, Export)) and onnx_input.is_onnx(source):
        return onnx_input.convert_onnx_model(source, output, o)  # an exported model, taken as it is
    quantize, calibration, integer_io, preprocess, labels = o.quantize, o.calibration, o.integer_io, o.preprocess, o.labels
    input_shape, allow_flex, allow_unsafe_lambda, runtime_lib_name = o.input_shape, o.allow_flex, o.allow_unsafe_lambda, o.runtime_lib_name
    started = time.perf_counter()
    fmt = runtime_lib.get(runtime_lib_name).format if runtime_lib_name else runtime_lib.default().format
    export = source if isinstance(source, Export) else None
    loaded = export.loaded if export is not None else source if isinstance(source, LoadedModel) else None
    source = loaded.source if loaded is not None else Path(source)  # type: ignore[arg-type]  # a path when nothing was loaded
    # Cheap checks first: a typo in an option should not cost a model load.
    mode = quantization_mode(fmt, quantize, calibration, integer_io)
    calibration_images = calibration_files(Path(calibration)) if calibration is not None else []
    preprocess = check_preprocess(preprocess) if preprocess is not None else None
    labels = read_labels(list(labels)) if labels is not None else None
    given_head = check_head(o.head) if o.head is not None else None
    model_path = output_path(source, output, fmt)
    manifest_path = mf.manifest_path_for(model_path)

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

    representative, calibration_info = _calibration(mode, calibration, calibration_images, inputs, preprocess_mode, integer_io)
    if calibration_info is not None:
        progress.phase(f"converting to {fmt.name}, calibrating {mode.name} on {calibration_info['images']} images",
                       total=calibration_info["images"])
    else:
        progress.phase(f"converting to {fmt.name} ({mode.name})")
    converter = engine.for_format(fmt)
    exported = contextlib.nullcontext(export) if export is not None else converter.export(loaded, inputs)
    with exported as shared:
        converted = converter.convert(shared, inputs, mode, representative, allow_flex=allow_flex, integer_io=integer_io)
    notes.extend(converted.notes)
    if labels is not None:
        check_labels(labels, converted.outputs)
    head, head_note = decide_head(converted.outputs, given_head, keras_activation(loaded.model) if loaded.is_keras else None)

    source_bytes = _source_bytes(source)
    mf.atomic_write_bytes(model_path, converted.data)
    manifest = mf.Manifest(
        model=mf.ModelEntry(
            file=mf.relative_to_manifest(manifest_path, model_path), format=fmt.name,
            sha256=_sha256_bytes(converted.data), bytes=len(converted.data),
        ),
        source=mf.relative_to_manifest(manifest_path, source),
        source_sha256=_source_sha256(source, loaded.source_format),
        source_format=loaded.source_format,
        source_bytes=source_bytes,
        loader=loaded.loader,
        inputs=converted.inputs,
        outputs=converted.outputs,
        quantization=mode.name,
        preprocess=preprocess_mode,
        preprocess_note=preprocess_note,
        labels=labels,
        head=head,
        head_note=head_note,
        parameters=loaded.parameter_count(),
        requires_flex=bool(converted.flex_ops),
        flex_ops=converted.flex_ops,
        calibration=calibration_info,
        versions=versions(),
        allow_unsafe_lambda=allow_unsafe_lambda,
        converter=converted.origin or None,
        source_absolute=str(Path(source).resolve()),
    )
    mf.write(manifest, manifest_path)
    return ConversionResult(
        model_path=model_path, manifest_path=manifest_path, manifest=manifest, seconds=time.perf_counter() - started,
        source_bytes=source_bytes, model_bytes=len(converted.data), notes=notes, warnings=missing_evidence(manifest),
        preprocess_mismatch=mismatch,
    )


def _calibration(
    mode: quantization.Mode, folder: Path | None, files: list[Path], inputs: list[InputSpec], preprocess: str, integer_io: bool
) -> tuple[Any, dict[str, Any] | None]:
    """The representative dataset a calibrated mode converts with, and what the manifest records of it."""
    if not mode.calibrated:
        return None, None
    representative, info = representative_dataset(files, inputs, preprocess)
    info["dir"] = str(Path(folder).resolve())  # type: ignore[arg-type]
    info["io_dtype"] = mode.integer_io if integer_io and mode.integer_io else "float32"
    return representative, info


def output_path(source: Path, output: Path | None, fmt: runtime_lib.ModelFormat | None = None) -> Path:
    """Where the model goes: ``output``, a file in ``output`` when it is a folder, else the default."""
    fmt = fmt or runtime_lib.default().format
    model_path = Path(output) if output is not None else default_output(source, fmt)
    # A path without a suffix is a folder (created if needed): the shell and Typer both drop the
    # trailing slash that would otherwise say so.
    if model_path.is_dir() or not model_path.suffix:
        model_path = model_path / default_output(source, fmt).name
    if model_path.suffix != fmt.suffix:
        raise InputError(
            f"the output {model_path} does not end in {fmt.suffix}",
            f"name the output file like model{fmt.suffix} (the manifest goes beside it as model.lamb.json), or pass a folder",
        )
    return model_path


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
