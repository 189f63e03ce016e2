"""Convert a loaded model for a runtime library and write the manifest beside it.

Generic: the runtime library's record (``lamb.runtime_lib``) names the model format, and the
format names its converter (``lamb.convert.engine``), which this module calls. Loading, input
shapes, preprocessing, labels, calibration images and the manifest are the same for every format.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from lamb import files, quantization, runtime_lib
from lamb import manifest as mf
from lamb.convert import engine
from lamb.convert.calibration import calibration_files, representative_dataset
from lamb.convert.engine import Converted, Export
from lamb.convert.heads import check_head, decide_head
from lamb.convert.options import ConvertOptions, missing_evidence, quantization_mode
from lamb.convert.preprocess import check_preprocess, read_labels
from lamb.convert.report import ConversionResult
from lamb.convert.signature import check_labels, check_labels_early
from lamb.errors import InputError
from lamb.progress import current
from lamb.source import InputSpec, Loaded, Source, apply_input_shape, open_source, source_bytes


def default_output(source: Path | Source, fmt: runtime_lib.ModelFormat | None = None) -> Path:
    """``./<stem><suffix>`` in the current directory (a SavedModel folder's name is its stem)."""
    src = source if not isinstance(source, (str, Path)) else open_source(Path(source))
    return Path.cwd() / f"{src.stem}{(fmt or runtime_lib.default().format).suffix}"


def runtime_lib_for(src: Source, name: str | None = None) -> runtime_lib.RuntimeLib:
    """The runtime library ``name``, refused when the source cannot become its format; by default
    the preferred library of the first format the source can become (an .onnx: ONNX Runtime)."""
    if name is not None:
        lib = runtime_lib.get(name)
        if not src.converts_to(lib.format.name):
            able = [r.name for f in runtime_lib.formats() if src.converts_to(f) for r in runtime_lib.for_format(f)]
            raise InputError(f"{src.path.name} is {src.title}, and {lib.name} runs {lib.format.name} models, which lamb does not make from it",
                             f"use --runtime-lib {' or '.join(able)}")
        return lib
    if src.converts_to(runtime_lib.default().format.name):
        return runtime_lib.default()
    return runtime_lib.for_format(next(f for f in runtime_lib.formats() if src.converts_to(f)))[0]


def convert_model(
    source: Path | Loaded | Export,
    output: Path | None = None,
    options: ConvertOptions | None = None,
    **changes: Any,
) -> ConversionResult:
    """Load ``source``, convert it for the runtime library, write ``<output>`` and ``<output stem>.lamb.json``.

    ``options`` (default: the command's) with ``changes`` applied field by field, so
    ``convert_model(path, out, quantize="int8", calibration=folder)`` reads as the command line
    does. The runtime library sets the model format and so its converter and its quantization
    modes. ``source`` is a path (a Keras file, a SavedModel folder, an .onnx: ``lamb.source``), or
    a model already loaded by its ``Source.load``: one load then serves several conversions
    (``lamb compare``); an ``Export`` of it shares one export too. A source already in the format
    (an .onnx for ONNX Runtime) is taken as it is. Nothing is written unless both conversion and
    inspection of the result succeed.
    """
    o = dataclasses.replace(options or ConvertOptions(), **changes)
    quantize, calibration, integer_io, preprocess, labels = o.quantize, o.calibration, o.integer_io, o.preprocess, o.labels
    allow_unsafe_lambda = o.allow_unsafe_lambda
    started = time.perf_counter()
    export = source if isinstance(source, Export) else None
    loaded: Loaded | None = export.loaded if export is not None else None if isinstance(source, (str, Path, Export)) else source
    src = open_source(loaded.source if loaded is not None else Path(source))  # type: ignore[arg-type]
    fmt = runtime_lib_for(src, o.runtime_lib_name).format
    # Cheap checks first: a typo in an option should not cost a model load.
    mode = quantization_mode(fmt, quantize, calibration, integer_io)
    calibration_images = calibration_files(Path(calibration)) if calibration is not None else []
    preprocess = check_preprocess(preprocess) if preprocess is not None else None
    labels = read_labels(list(labels)) if labels is not None else None
    given_head = check_head(o.head) if o.head is not None else None
    model_path = output_path(src, output, fmt, mode)
    manifest_path = mf.manifest_path_for(model_path)

    from lamb import tflog

    progress = current()
    if loaded is None:
        progress.phase(f"loading {src.path.name}")
        with tflog.capture_fd2():
            loaded = src.load(allow_unsafe_lambda=allow_unsafe_lambda)
    notes = _load_notes(loaded, allow_unsafe_lambda)
    inputs = apply_input_shape(loaded.inputs(), o.input_shape)
    preprocess_mode, preprocess_note, mismatch = loaded.preprocessing(preprocess)
    if labels is not None:
        check_labels_early(labels, loaded.outputs())

    representative, calibration_info = _calibration(mode, calibration, calibration_images, inputs, preprocess_mode, integer_io)
    if calibration_info is not None:
        progress.phase(f"converting to {fmt.name}, calibrating {mode.name} on {calibration_info['images']} images",
                       total=calibration_info["images"])
    else:
        progress.phase(f"converting to {fmt.name} ({mode.name})")
    converter = engine.for_format(fmt)
    exported = contextlib.nullcontext(export) if export is not None else engine.export(loaded, fmt, inputs)
    with exported as shared:
        converted = converter.convert(shared, inputs, mode, representative, allow_flex=o.allow_flex, integer_io=integer_io)
    notes.extend(converted.notes)
    if labels is not None:
        check_labels(labels, converted.outputs)
    head, head_note = decide_head(converted.outputs, given_head, loaded.final_activation())

    shipped = write_model(src, model_path, converted)
    model_bytes = sum(p.stat().st_size for p in [model_path, *(model_path.parent / name for name in shipped)])
    manifest = mf.Manifest(
        model=mf.ModelEntry(
            file=mf.relative_to_manifest(manifest_path, model_path), format=fmt.name,
            sha256=_sha256_bytes(converted.data), bytes=len(converted.data), external_data=shipped,
            external_sha256={n: mf.sha256_file(model_path.parent / n) for n in shipped},
        ),
        source=mf.relative_to_manifest(manifest_path, src.path),
        source_sha256=src.sha256(),
        source_format=loaded.source_format,
        source_bytes=source_bytes(src),
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
        versions=versions(src.readers),
        allow_unsafe_lambda=allow_unsafe_lambda,
        converter=converted.origin or None,
        source_absolute=str(src.path.resolve()),
    )
    mf.write(manifest, manifest_path)
    return ConversionResult(
        model_path=model_path, manifest_path=manifest_path, manifest=manifest, seconds=time.perf_counter() - started,
        source_bytes=manifest.source_bytes, model_bytes=model_bytes, notes=notes, warnings=missing_evidence(manifest),
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


def output_path(source: Path | Source, output: Path | None, fmt: runtime_lib.ModelFormat | None = None,
                mode: quantization.Mode | None = None) -> Path:
    """Where the model goes: ``output``, a file in ``output`` when it is a folder, else the default
    (the current folder). A model that changes (a quantized mode) never overwrites its source: the
    default then names the mode, ``<stem>.<mode><suffix>``."""
    src = source if not isinstance(source, (str, Path)) else open_source(Path(source))
    fmt = fmt or runtime_lib.default().format
    changes = mode is not None and mode.quantized
    model_path = Path(output) if output is not None else Path.cwd()
    # A path without a suffix is a folder (created if needed): the shell and Typer both drop the
    # trailing slash that would otherwise say so.
    if model_path.is_dir() or not model_path.suffix:
        name = default_output(src, fmt).name
        if changes and (model_path / name).resolve() == src.path.resolve():
            name = f"{src.stem}.{mode.name}{fmt.suffix}"  # type: ignore[union-attr]
        model_path = model_path / name
    if model_path.suffix != fmt.suffix:
        raise InputError(
            f"the output {model_path} does not end in {fmt.suffix}",
            f"name the output file like model{fmt.suffix} (the manifest goes beside it as model.lamb.json), or pass a folder",
        )
    if changes and model_path.resolve() == src.path.resolve():
        raise InputError(f"the {mode.name} model would overwrite its source {src.path.name}", "pass -o with another file name")  # type: ignore[union-attr]
    return model_path


def write_model(src: Source, model_path: Path, converted: Converted) -> list[str]:
    """The converted model at ``model_path`` and the external data it reads beside it, under the
    names it records (returned); nothing to write for a source taken as it is, in place."""
    names = [p.relative_to(src.path.parent).as_posix() for p in converted.external]
    if model_path.resolve() == src.path.resolve():
        return names  # float32 of an .onnx converted where it is: the file is the model
    for name, path in zip(names, converted.external):
        target = model_path.parent / name
        if target.exists() and target.resolve() != path.resolve():
            raise InputError(f"{target} already exists and is not {src.path.name}'s external data",
                             "write the model to another folder (-o DIR)")
    for name, path in zip(names, converted.external):
        if (model_path.parent / name).resolve() != path.resolve():
            with files.atomic_path(model_path.parent / name) as tmp:
                shutil.copyfile(path, tmp)
    mf.atomic_write_bytes(model_path, converted.data)
    return names


def _load_notes(loaded: Loaded, allow_unsafe_lambda: bool) -> list[str]:
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


def versions(readers: tuple[str, ...]) -> dict[str, str]:
    """lamb's version and those of the distributions that read the source (``Source.readers``), installed ones only."""
    found: dict[str, str] = {}
    for dist in ("lamb", *readers):
        try:
            found[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found
