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
import inspect
import io
import re
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

from lamb import manifest as mf
from lamb.convert.load import LoadedModel, load_keras_model
from lamb.convert.preprocess import check_preprocess, infer_preprocess, read_labels
from lamb.errors import ConversionError, InputError

#: How many calibration images int8 quantization uses at most: the TFLite docs suggest ~100-500;
#: more only costs conversion time.
MAX_CALIBRATION_IMAGES = 200
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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

    @property
    def size_ratio(self) -> float:
        return self.tflite_bytes / self.source_bytes if self.source_bytes else 0.0


@dataclass
class _Spec:
    name: str
    shape: list[int | None]
    dtype: Any  # tf.DType


def default_output(source: Path) -> Path:
    """``./<stem>.tflite`` in the current directory (a SavedModel folder's name is its stem)."""
    source = Path(source)
    stem = source.name if source.is_dir() else source.stem
    return Path.cwd() / f"{stem}.tflite"


def convert_model(
    source: Path,
    output: Path | None = None,
    *,
    quantize: str = "float32",
    calibration: Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    allow_flex: bool = False,
    preprocess: str | None = None,
    labels: list[str] | None = None,
    labels_file: Path | None = None,
    allow_unsafe_lambda: bool = False,
    int8_io: bool = False,
    loaded: LoadedModel | None = None,
) -> ConversionResult:
    """Load ``source``, convert it to TFLite, write ``<output>`` and ``<output stem>.lamb.json``.

    Nothing is written unless both conversion and inspection of the result succeed. ``loaded``
    (``source`` already loaded) lets one load serve several conversions (``lamb compare``).
    """
    started = time.perf_counter()
    source = Path(source)
    # Cheap checks first: a typo in an option should not cost a model load.
    if quantize not in mf.QUANTIZE_MODES:
        raise InputError(f"unknown quantization {quantize!r}", f"use one of: {', '.join(mf.QUANTIZE_MODES)}")
    if int8_io and quantize != "int8":
        raise InputError("--int8-io only applies to --quantize int8", "add --quantize int8, or drop --int8-io")
    if quantize == "int8" and calibration is None:
        raise InputError(
            "int8 quantization needs calibration images",
            "pass --calibration DIR with ~100 representative images (the model's own training images are best)",
        )
    if calibration is not None and quantize != "int8":
        raise InputError("--calibration only applies to --quantize int8", "add --quantize int8, or drop --calibration")
    calibration_files = _calibration_files(Path(calibration)) if calibration is not None else []
    if preprocess is not None:
        check_preprocess(preprocess)
    labels = read_labels(labels, labels_file)
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
    manifest_path = mf.manifest_path_for(tflite_path)

    from lamb import tflog

    if loaded is None:
        with tflog.capture_fd2():
            loaded = load_keras_model(source, allow_unsafe_lambda=allow_unsafe_lambda)
    notes = list(loaded.notes)

    inputs = _input_specs(loaded)
    inputs = _apply_input_shape(inputs, input_shape)

    if preprocess is not None:
        preprocess_mode, preprocess_note = preprocess, "given"
    elif loaded.is_keras:
        preprocess_mode, preprocess_note = infer_preprocess(loaded.model)
    else:
        preprocess_mode, preprocess_note = "none", "not inferred: a bare SavedModel has no layers to inspect; pass --preprocess"

    if labels is not None and loaded.is_keras:
        _check_labels_against_keras(labels, loaded.model)

    calibration_info = None
    representative = None
    if quantize == "int8":
        representative, calibration_info = _representative_dataset(calibration_files, inputs, preprocess_mode)
        calibration_info["dir"] = str(Path(calibration).resolve())
        calibration_info["io_dtype"] = "int8" if int8_io else "float32"

    with _converter_factory(loaded, inputs) as (make_converter, output_names):
        flatbuffer, flex_ops = _convert(make_converter, quantize, representative, allow_flex, int8_io)
    if flex_ops:
        notes.append(
            f"converted with TF Select (Flex) ops {', '.join(flex_ops)}: the slim LiteRT/tflite-runtime "
            "builds cannot run this model"
        )

    in_specs, out_specs = _describe(flatbuffer, [s.name for s in inputs], output_names)
    if labels is not None:
        _check_labels(labels, out_specs)

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
        quantization=quantize,
        preprocess=preprocess_mode,
        preprocess_note=preprocess_note,
        labels=labels,
        parameters=loaded.parameter_count(),
        requires_flex=bool(flex_ops),
        flex_ops=flex_ops,
        calibration=calibration_info,
        versions=versions(),
    )
    mf.write(manifest, manifest_path)
    return ConversionResult(
        tflite_path=tflite_path,
        manifest_path=manifest_path,
        manifest=manifest,
        seconds=time.perf_counter() - started,
        source_bytes=source_bytes,
        tflite_bytes=len(flatbuffer),
        notes=notes,
    )


# -- signature -----------------------------------------------------------------------------------


def _clean_name(name: str, fallback: str) -> str:
    """A TFLite/SavedModel signature key: ``serving_default_<name>:0`` must stay a valid tensor name."""
    name = str(name).split(":")[0]
    name = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
    if not name or not (name[0].isalpha()):
        name = fallback
    return name


def _input_specs(loaded: LoadedModel) -> list[_Spec]:
    import tensorflow as tf

    specs: list[_Spec] = []
    if loaded.is_keras:
        for i, tensor in enumerate(loaded.model.inputs):
            shape = tensor.shape
            dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
            specs.append(_Spec(_clean_name(tensor.name, f"input_{i}"), dims, tf.as_dtype(tensor.dtype)))
    else:
        _, kwargs = loaded.signature.structured_input_signature
        for name in sorted(kwargs):
            spec = kwargs[name]
            specs.append(_Spec(_clean_name(name, name), spec.shape.as_list(), spec.dtype))
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            spec.name = f"{spec.name}_{i}"
        seen.add(spec.name)
    return specs


def _apply_input_shape(specs: list[_Spec], input_shape: tuple[int, ...] | None) -> list[_Spec]:
    """Fill open dimensions from ``--input-shape``; the batch dimension may stay open."""
    if input_shape is not None:
        if len(specs) != 1:
            raise InputError(
                f"--input-shape applies to single-input models; this one has {len(specs)} inputs",
                "convert a single-input model, or give the model fixed input shapes before saving",
            )
        spec = specs[0]
        given = [int(d) for d in input_shape]
        if any(d <= 0 for d in given):
            raise InputError(f"--input-shape {mf.format_shape(given)} has a non-positive dimension", "give positive sizes, e.g. 224,224,3")
        if len(given) == len(spec.shape) - 1:
            given = [spec.shape[0], *given]  # without the batch dimension, as Keras' input_shape
        if len(given) != len(spec.shape):
            raise InputError(
                f"--input-shape {mf.format_shape(input_shape)} has {len(input_shape)} dimensions; the model's input "
                f"{spec.name!r} is {mf.format_shape(spec.shape)}",
                f"give {len(spec.shape) - 1} sizes (without the batch dimension)",
            )
        for i, (have, want) in enumerate(zip(spec.shape, given)):
            if have is not None and want is not None and have != want:
                raise InputError(
                    f"--input-shape {mf.format_shape(input_shape)} contradicts the model's input {spec.name!r} {mf.format_shape(spec.shape)} "
                    f"at dimension {i}",
                    "only open (None) dimensions can be set",
                )
        spec.shape = given
    for spec in specs:
        if any(d is None for d in spec.shape[1:]):
            raise ConversionError(
                f"the model's input {spec.name!r} has open dimensions {mf.format_shape(spec.shape)}; TFLite needs them fixed",
                "pass --input-shape with the size the model should take, e.g. --input-shape 224,224,3",
            )
    return specs


@contextlib.contextmanager
def _converter_factory(loaded: LoadedModel, inputs: list[_Spec]) -> Iterator[tuple[Callable[[], Any], list[str]]]:
    """Yields (a function making a fresh TFLiteConverter, the output names).

    The model is wrapped as one function: positional inputs named like the model's, a dict of
    named outputs. Keras 3 models go through ``keras.export.ExportArchive`` and a temporary
    SavedModel, as TF's own ``from_keras_model`` does, because a Keras 3 model handed to
    ``from_concrete_functions`` as the trackable object does not carry its variables into the
    calibration graph (int8 then fails with READ_VARIABLE). tf_keras models and loaded SavedModels
    are real TF trackables, so their concrete function converts directly.
    """
    import tensorflow as tf

    signature = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in inputs]
    model = loaded.model
    if loaded.is_keras:
        declared = list(getattr(model, "output_names", None) or [])

        def call(args):
            return model(args[0] if len(args) == 1 else list(args), training=False)
    else:
        sig = loaded.signature
        _, kwargs = sig.structured_input_signature
        keys = sorted(kwargs)
        declared = sorted(sig.structured_outputs)

        def call(args):
            return sig(**dict(zip(keys, args)))

    names: list[str] = []
    input_names = {s.name for s in inputs}

    def named(out) -> dict[str, Any]:
        if isinstance(out, dict):
            items = list(out.items())
        else:
            tensors = list(out) if isinstance(out, (list, tuple)) else [out]
            keys_ = declared if len(declared) == len(tensors) else [f"output_{i}" for i in range(len(tensors))]
            items = list(zip(keys_, tensors))
        result: dict[str, Any] = {}
        for i, (key, tensor) in enumerate(items):
            key = _clean_name(key, f"output_{i}")
            if key in result or key in input_names:
                key = f"{key}_{i}"
            result[key] = tensor
        names[:] = list(result)
        return result

    def serve(*args):
        return named(call(args))

    if loaded.loader == "keras":
        import keras

        with tempfile.TemporaryDirectory(prefix="lamb-export-") as export_dir:
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serving_default", serve, signature)
            if "verbose" in inspect.signature(archive.write_out).parameters:
                archive.write_out(export_dir, verbose=False)
            else:  # Keras < 3.5 always prints the endpoints (one line per variable) to stdout
                with contextlib.redirect_stdout(io.StringIO()):
                    archive.write_out(export_dir)
            yield (lambda: _saved_model_converter(export_dir)), names
        return

    concrete = tf.function(serve, input_signature=signature, autograph=False).get_concrete_function()
    yield (lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)), names


def _saved_model_converter(export_dir: str):
    """``TFLiteConverter.from_saved_model`` without its throw-away ``tf.saved_model.load``.

    ``from_saved_model`` restores the whole SavedModel (every variable) only to look up its
    signature keys, then returns a ``TFLiteSavedModelConverterV2`` that reads the directory
    again itself. For an Xception-sized model that discarded restore is ~1 s, 10 % of the whole
    conversion; we know the key, so we build the converter it would have returned directly.
    """
    import tensorflow as tf

    try:
        from tensorflow.lite.python.lite import TFLiteSavedModelConverterV2
    except ImportError:  # the private class moved: take the public (slower) way
        return tf.lite.TFLiteConverter.from_saved_model(export_dir, signature_keys=["serving_default"])
    return TFLiteSavedModelConverterV2(export_dir, {tf.saved_model.SERVING}, ["serving_default"])


# -- conversion ----------------------------------------------------------------------------------

_SELECT_OPS = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM_OPS = re.compile(r"Custom ops: ([^\n]+)")
_NOT_SUPPORTED = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_FLEX_IN_FLATBUFFER = re.compile(rb"Flex([A-Z][A-Za-z0-9]*)")


def _new_converter(make_converter, quantize: str, representative, ops: list, int8_io: bool):
    import tensorflow as tf

    # A fresh converter per attempt: TF 2.21's converter fails with an AttributeError when
    # convert() is called a second time on the same object.
    converter = make_converter()
    converter.target_spec.supported_ops = ops
    if quantize in ("float16", "dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        converter.representative_dataset = representative
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter


def _convert(make_converter, quantize: str, representative, allow_flex: bool, int8_io: bool) -> tuple[bytes, list[str]]:
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    from lamb import tflog

    builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantize == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS
    converter = _new_converter(make_converter, quantize, representative, [builtins], int8_io)
    with tflog.capture_fd2() as log:
        try:
            return bytes(converter.convert()), []
        except ConverterError as exc:
            failure = exc
    text = str(failure) + "\n" + "".join(log)
    select_ops = _ops_from(_SELECT_OPS, text)
    custom_ops = _ops_from(_CUSTOM_OPS, text)
    if not select_ops and not custom_ops:
        raise ConversionError(
            f"the TFLite converter refused the model: {_converter_summary(text)}",
            "run with --verbose for the converter's full log",
        ) from failure
    if custom_ops:
        raise ConversionError(
            f"the model uses ops neither TFLite nor TF Select can run: {', '.join(custom_ops)}",
            "replace those operations in the model with standard layers",
        ) from failure
    if not allow_flex:
        raise ConversionError(
            f"the model uses TensorFlow ops with no TFLite builtin: {', '.join(select_ops)}",
            "rewrite them with standard layers, or pass --allow-flex to embed them as TF Select (Flex) ops "
            "(the slim Lambda runtimes cannot run such a model)",
        ) from failure
    ops = [builtins, tf.lite.OpsSet.SELECT_TF_OPS]
    converter = _new_converter(make_converter, quantize, representative, ops, int8_io)
    with tflog.capture_fd2() as log:
        try:
            flatbuffer = bytes(converter.convert())
        except ConverterError as exc:
            summary = _converter_summary(str(exc) + "\n" + "".join(log))
            raise ConversionError(
                f"the TFLite converter refused the model even with TF Select ops: {summary}",
                "run with --verbose for the converter's full log",
            ) from exc
    embedded = sorted({m.decode() for m in _FLEX_IN_FLATBUFFER.findall(flatbuffer)})
    return flatbuffer, embedded or select_ops


def _ops_from(pattern: re.Pattern, text: str) -> list[str]:
    ops: list[str] = []
    for match in pattern.findall(text):
        for op in match.split(","):
            op = op.strip().removeprefix("tf.")
            if op and op not in ops:
                ops.append(op)
    return sorted(ops)


def _converter_summary(text: str) -> str:
    """The first error sentence of the converter's output, without MLIR locations or the IR dump."""
    for line in text.splitlines():
        match = re.search(r"error: (.+)", line)
        if match:
            return match.group(1).strip()[:200]
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first[:200]


# -- calibration ---------------------------------------------------------------------------------


def _calibration_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise InputError(f"no calibration folder at {directory}", "pass --calibration DIR, a folder of sample images")
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise InputError(
            f"no images in {directory} (looked for {', '.join(sorted(_IMAGE_SUFFIXES))})",
            "put ~100 representative images in the calibration folder",
        )
    return files


def _representative_dataset(files: list[Path], inputs: list[_Spec], mode: str) -> tuple[Callable[[], Iterator[list]], dict]:
    """Decode, resize and preprocess the calibration images exactly as the deployed handler will."""
    import numpy as np

    from lamb.handler.lambda_function import decode_image, image_to_pixels, preprocess

    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[3] != 3:
        shapes = ", ".join(mf.format_shape(s.shape) for s in inputs)
        raise InputError(
            f"int8 calibration needs one RGB image input (batch, height, width, 3); the model takes {shapes}",
            "use --quantize dynamic or float16 for this model",
        )
    _, height, width, _ = inputs[0].shape
    samples: list[Any] = []
    skipped: list[str] = []
    for path in files:
        if len(samples) >= MAX_CALIBRATION_IMAGES:
            break
        try:
            image = decode_image(path.read_bytes())
        except ValueError:
            skipped.append(path.name)
            continue
        pixels = image_to_pixels(image, (height, width))
        samples.append(preprocess(pixels, mode)[np.newaxis, ...])
    if not samples:
        raise InputError(
            f"none of the {len(files)} calibration files could be decoded as images",
            "put real JPEG/PNG images in the calibration folder",
        )

    def dataset() -> Iterator[list]:
        for sample in samples:
            yield [sample]

    return dataset, {"images": len(samples), "skipped": len(skipped), "mode": mode}


# -- reading the result back ---------------------------------------------------------------------


def _describe(flatbuffer: bytes, input_names: list[str], output_names: list[str]) -> tuple[list[mf.TensorSpec], list[mf.TensorSpec]]:
    """The signature as the TFLite runtime reports it (names, shapes, dtypes, quantization)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    # Only reads metadata: no allocate_tensors(), so a model with Flex ops can be described too.
    interpreter = Interpreter(model_content=flatbuffer)
    runner = interpreter.get_signature_runner("serving_default")

    def specs(details: dict, order: list[str]) -> list[mf.TensorSpec]:
        names = [n for n in order if n in details] + sorted(set(details) - set(order))
        out = []
        for name in names:
            d = details[name]
            scale, zero_point = d["quantization"]
            quantized = np.dtype(d["dtype"]).kind in "iu" and scale != 0.0
            out.append(
                mf.TensorSpec(
                    name=name,
                    shape=[int(x) for x in d["shape_signature"]],
                    dtype=np.dtype(d["dtype"]).name,
                    scale=float(scale) if quantized else None,
                    zero_point=int(zero_point) if quantized else None,
                )
            )
        return out

    return specs(runner.get_input_details(), input_names), specs(runner.get_output_details(), output_names)


def _check_labels(labels: list[str], outputs: list[mf.TensorSpec]) -> None:
    classes = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if len(outputs) != 1 or classes is None or classes < 1:
        raise InputError(
            f"labels need one output of shape (batch, classes); the model has {len(outputs)} output(s)",
            "drop --labels for this model",
        )
    if len(labels) != classes:
        raise InputError(
            f"{len(labels)} labels given but the model's output {outputs[0].name!r} has {classes} classes",
            f"give exactly {classes} labels, in the order of the model's output units",
        )


def _check_labels_against_keras(labels: list[str], model: Any) -> None:
    """The same check as ``_check_labels``, before the (slow) conversion rather than after."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        return  # _check_labels on the converted signature gives the precise message
    shape = outputs[0].shape
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    if dims and dims[-1] is not None:
        names = list(getattr(model, "output_names", None) or ["output_0"])  # Keras 3 Sequential: none
        shape = [-1 if d is None else int(d) for d in dims]
        _check_labels(labels, [mf.TensorSpec(name=_clean_name(names[0], "output_0"), shape=shape, dtype="float32")])


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
