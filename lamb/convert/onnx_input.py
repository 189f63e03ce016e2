"""``lamb convert model.onnx``: an exported ONNX model (PyTorch's ``torch.onnx.export``, or anything
else) taken as it is, described by a manifest.

Nothing is converted: the model keeps its graph, its opset and its external weights
(``model.onnx.data``, which ship beside it). lamb reads its signature, records the input's layout
(channel-first ``(N, 3, H, W)`` is PyTorch's, ``"layout": "NCHW"``), infers the preprocessing where
the layout makes it obvious, checks the labels against the output, and, for a quantization mode
other than float32, writes a quantized copy with ONNX Runtime's quantizer (``lamb.convert.onnx``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from lamb import files, runtime_lib
from lamb import manifest as mf
from lamb.convert import onnx as onnx_convert
from lamb.convert import onnx_check
from lamb.convert.calibration import calibration_files, representative_dataset
from lamb.convert.heads import check_head, decide_head, onnx_activation
from lamb.convert.options import ConvertOptions, missing_evidence, quantization_mode
from lamb.convert.preprocess import NOT_INFERRED, check_preprocess, read_labels
from lamb.convert.report import ConversionResult
from lamb.convert.signature import InputSpec, check_labels
from lamb.errors import InputError, ModelLoadError
from lamb.progress import current

SOURCE_FORMAT = "onnx"
LOADER = "onnx"
# A protobuf cannot exceed 2 GB: a quantized copy is written in one file, so its float source must fit.
_PROTOBUF_LIMIT = 2**31


def is_onnx(source: Path) -> bool:
    return Path(source).suffix.lower() == ".onnx" and Path(source).is_file()


def convert_onnx_model(source: Path, output: Path | None, options: ConvertOptions) -> ConversionResult:
    """Describe (and optionally quantize) the ONNX model ``source``; write ``<output stem>.lamb.json``.

    ``options`` is ``lamb.convert.core.ConvertOptions``. float32 keeps the file as it is (copied
    with its external data when ``output`` is elsewhere); another mode writes a quantized copy,
    by default ``<stem>.<mode>.onnx`` beside the source. Returns a ``ConversionResult``.
    """
    started = time.perf_counter()
    source = Path(source)
    lib = runtime_lib.get(options.runtime_lib_name or "onnxruntime")
    fmt = lib.format
    if fmt.name != onnx_convert.FORMAT:
        raise InputError(f"{source.name} is an ONNX model, and {lib.name} runs {fmt.name} models",
                         f"use --runtime-lib {' or '.join(r.name for r in runtime_lib.for_format(onnx_convert.FORMAT))}")
    mode = quantization_mode(fmt, options.quantize, options.calibration, options.integer_io)
    if options.allow_flex:
        raise InputError("--allow-flex is a TensorFlow Lite option", "drop --allow-flex")
    given = check_preprocess(options.preprocess) if options.preprocess is not None else None  # 'tf' -> 'xception'
    labels = read_labels(list(options.labels)) if options.labels is not None else None
    given_head = check_head(options.head) if options.head is not None else None
    model_path = _output_path(source, output, mode.name)

    current().phase(f"reading {source.name}")
    model, external = _load(source)
    onnx_check.check_shippable(model, source.name, lib.name)
    layout = _layout(model)
    inputs, outputs = onnx_convert.describe(model, layout)
    inputs = _with_input_shape(inputs, options.input_shape, layout)
    if labels is not None:
        check_labels(labels, outputs)
    head, head_note = decide_head(outputs, given_head, onnx_activation(model))
    preprocess, preprocess_note = _preprocessing(given, inputs, layout)
    shown = mf.format_shape([None if d < 0 else d for d in inputs[0].shape])
    notes = [f"input {inputs[0].name} {shown} is channel-first (NCHW): the handler feeds it so"] if layout == "NCHW" else []

    calibration_info = None
    manifest_path = mf.manifest_path_for(model_path)
    if mode.optimize:
        representative = None
        if mode.calibrated:
            representative, calibration_info = _calibration(options.calibration, inputs[0], layout, preprocess)
        current().phase(f"quantizing ({mode.name})")
        data, settings = onnx_convert.quantize(_bytes(model, source), mode, representative, layout)
        quantized, _ = onnx_convert.describe(data, layout)
        mf.atomic_write_bytes(model_path, data)
        shipped, origin = [], {**_origin(model), **settings}
        inputs = [dataclass_copy(q, shape=i.shape) for q, i in zip(quantized, inputs)]
    else:
        _place(source, model_path, external)
        shipped, origin = external, _origin(model)
    model_bytes = model_path.stat().st_size
    manifest = mf.Manifest(
        model=mf.ModelEntry(file=mf.relative_to_manifest(manifest_path, model_path), format=fmt.name,
                            sha256=mf.sha256_file(model_path), bytes=model_bytes, external_data=shipped,
                            external_sha256={n: mf.sha256_file(model_path.parent / n) for n in shipped}),
        source=mf.relative_to_manifest(manifest_path, source), source_sha256=mf.sha256_file(source),
        source_format=SOURCE_FORMAT, source_bytes=_bytes_on_disk(source, external),
        loader=LOADER, inputs=inputs, outputs=outputs, quantization=mode.name, preprocess=preprocess,
        preprocess_note=preprocess_note, labels=labels, head=head, head_note=head_note, parameters=_parameters(model), calibration=calibration_info,
        versions=_versions(), converter=origin, source_absolute=str(source.resolve()),
    )
    mf.write(manifest, manifest_path)
    return ConversionResult(
        model_path=model_path, manifest_path=manifest_path, manifest=manifest, seconds=time.perf_counter() - started,
        source_bytes=manifest.source_bytes, model_bytes=model_bytes, notes=notes, warnings=missing_evidence(manifest),
    )


def dataclass_copy(spec: mf.TensorSpec, **changes: Any) -> mf.TensorSpec:
    import dataclasses

    return dataclasses.replace(spec, **changes)


# -- reading the model ----------------------------------------------------------------------------


def _load(source: Path) -> tuple[Any, list[str]]:
    """The model with its weights, and the external data files it names (relative to its folder)."""
    import onnx

    external = _external_names(source)
    missing = [name for name in external if not (source.parent / name).is_file()]
    if missing:
        raise InputError(
            f"{source.name} keeps its weights in {', '.join(missing)}, which is not beside it",
            "put the .onnx.data file(s) the exporter wrote in the same folder as the .onnx",
        )
    try:
        onnx.checker.check_model(str(source))
        model = onnx.load(str(source))
    except (onnx.checker.ValidationError, onnx.onnx_cpp2py_export.shape_inference.InferenceError) as exc:
        raise ModelLoadError(f"{source.name} is not a valid ONNX model: {_first(exc)}", "export it again") from exc
    except Exception as exc:  # protobuf's DecodeError and friends: not a model at all
        raise ModelLoadError(f"{source.name} is not an ONNX model ({type(exc).__name__}: {_first(exc)})",
                             "pass the .onnx file your exporter wrote") from exc
    if not [v for v in model.graph.input if v.name not in {t.name for t in model.graph.initializer}]:
        raise InputError(f"{source.name} has no inputs", "export the model with its image input")
    return model, external


def _external_names(source: Path) -> list[str]:
    """The files an ONNX model's initializers point to (``location`` of external data), in order."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        bare = onnx.load(str(source), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(f"{source.name} is not an ONNX model ({type(exc).__name__}: {_first(exc)})",
                             "pass the .onnx file your exporter wrote") from exc
    names: list[str] = []
    for tensor in _get_all_tensors(bare):
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            if location is None or Path(location).is_absolute() or ".." in Path(location).parts:
                raise InputError(f"{source.name} points its weights at {location!r}, outside its own folder",
                                 "save the model with its external data beside it (onnx.save(..., location='model.onnx.data'))")
            onnx_check.check_external(tensor, location, source.parent, source.name)
            if location not in names:
                names.append(location)
    return names


def _layout(model: Any) -> str:
    """ "NCHW" when the first 4-D input has 3 channels first and not last; else "NHWC"."""
    constants = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in constants:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
        if len(dims) == 4 and dims[1] in (1, 3) and dims[3] not in (1, 3):
            return "NCHW"
        return "NHWC"
    return "NHWC"


def _with_input_shape(inputs: list[mf.TensorSpec], input_shape: tuple[int, ...] | None, layout: str) -> list[mf.TensorSpec]:
    """``--input-shape H,W,C`` fills the open image dimensions the handler must resize to."""
    if input_shape is None:
        return inputs
    first = inputs[0]
    if len(first.shape) != 4 or len(input_shape) != 3:
        raise InputError("--input-shape takes HEIGHT,WIDTH,CHANNELS for a 4-D image input", f"the model's input is {first.shape}")
    h, w, c = input_shape
    wanted = [first.shape[0], c, h, w] if layout == "NCHW" else [first.shape[0], h, w, c]
    for have, want in zip(first.shape[1:], wanted[1:]):
        if have not in (-1, want):
            raise InputError(f"--input-shape {h},{w},{c} does not fit the model's input {first.shape} ({layout})",
                             "pass the shape the model was exported with, or drop --input-shape")
    return [dataclass_copy(first, shape=wanted), *inputs[1:]]


def _preprocessing(given: str | None, inputs: list[mf.TensorSpec], layout: str) -> tuple[str, str]:
    if given is not None:
        return given, "given"
    if layout == "NCHW":
        return "torch", ("inferred: the input is channel-first (N, 3, H, W), PyTorch's layout; torchvision models "
                         "take ImageNet mean/std ('torch'). Pass --preprocess if this model was trained otherwise")
    return "none", f"{NOT_INFERRED}: an ONNX graph does not say how its inputs were scaled; pass --preprocess"


def _calibration(folder: Path | None, spec: mf.TensorSpec, layout: str, preprocess: str) -> tuple[Any, dict[str, Any]]:
    """The calibration images, decoded and preprocessed as the handler does (NHWC; quantize transposes)."""
    import numpy as np

    assert folder is not None  # _quantization_mode requires it for a calibrated mode
    shape = spec.shape
    h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    if h < 0 or w < 0:
        raise InputError(f"the model's input {mf.format_shape(shape)} has open image dimensions",
                         "pass --input-shape HEIGHT,WIDTH,3 so calibration images can be resized")
    nhwc = [InputSpec(spec.name, [1, h, w, 3], np.float32)]
    representative, info = representative_dataset(calibration_files(Path(folder)), nhwc, preprocess)
    info["dir"] = str(Path(folder).resolve())
    info["io_dtype"] = "float32"
    return representative, info


# -- writing ---------------------------------------------------------------------------------------


def _output_path(source: Path, output: Path | None, mode: str) -> Path:
    stem = source.stem if mode == "float32" else f"{source.stem}.{mode}"
    path = Path(output) if output is not None else (source.parent / f"{stem}.onnx" if mode != "float32" else source)
    if path.is_dir() or not path.suffix:
        path = path / f"{stem}.onnx"
    if path.suffix != ".onnx":
        raise InputError(f"the output {path} does not end in .onnx", "name the output like model.onnx, or pass a folder")
    if mode != "float32" and path.resolve() == source.resolve():
        raise InputError(f"the {mode} model would overwrite its source {source.name}", "pass -o with another file name")
    return path


def _place(source: Path, model_path: Path, external: list[str]) -> None:
    """The model (and its external data, under the names it records) at ``model_path``; nothing to do in place."""
    if model_path.resolve() == source.resolve():
        return
    for name in external:
        target = model_path.parent / name
        if target.exists() and target.resolve() != (source.parent / name).resolve():
            raise InputError(f"{target} already exists and is not {source.name}'s external data",
                             "write the model to another folder (-o DIR)")
    for name in external:
        with files.atomic_path(model_path.parent / name) as tmp:
            shutil.copyfile(source.parent / name, tmp)
    with files.atomic_path(model_path) as tmp:
        shutil.copyfile(source, tmp)


def _bytes(model: Any, source: Path) -> bytes:
    size = model.ByteSize()
    if size >= _PROTOBUF_LIMIT:
        raise InputError(f"{source.name} holds {size / 1e9:.1f} GB of weights; ONNX Runtime's quantizer works on models under 2 GB",
                         "ship it as float32 (the default)")
    return model.SerializeToString()


def _bytes_on_disk(source: Path, external: list[str]) -> int:
    return source.stat().st_size + sum((source.parent / n).stat().st_size for n in external)


def _parameters(model: Any) -> int:
    total = 0
    for t in model.graph.initializer:
        size = 1
        for d in t.dims:
            size *= int(d)
        total += size
    return total


def _origin(model: Any) -> dict[str, Any]:
    """What the model says of itself: its exporter and opset."""
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "unknown"
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return {"converter": "as given", "producer": producer, "opset": int(opset), "ir_version": int(model.ir_version)}


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in ("lamb", "onnx", "onnxruntime"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def _first(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
