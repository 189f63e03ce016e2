"""The ``tflite`` format's converter (``lamb.convert.engine``): TensorFlow's ``TFLiteConverter``.

The model wrapped as one function, the quantization mode's settings (LiteRT's modes in
``lamb.runtime_lib.litert``), the retry with TF Select ops that ``--allow-flex`` allows, and the
signature read back from the flatbuffer with LiteRT.

Why ``from_concrete_functions`` and not ``from_keras_model``: on Keras 3 models the latter exports
a temporary SavedModel (printing its endpoints to stdout), names outputs ``output_0``, and cannot
apply ``--input-shape`` to a model with open spatial dimensions. The concrete function path costs
the same, works the same way for all three loaders, and gives the TFLite signature the model's own
input and output names, which the manifest records and later steps use.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.convert.engine import Converted, Export
from lamb.convert.savedmodel import saved_model, serving_function
from lamb.errors import ConversionError
from lamb.quantization import Mode
from lamb.runtime_lib.litert import ConverterSettings
from lamb.source.base import InputSpec
from lamb.source.tf_load import LoadedModel

logger = logging.getLogger(__name__)  # (``log`` below is the converter's captured fd-2 output)

FORMAT = "tflite"


@contextlib.contextmanager
def export(loaded: LoadedModel, inputs: list[InputSpec]) -> Iterator[Export]:
    """The model wrapped once; its ``handle`` makes a fresh TFLiteConverter per conversion."""
    with converter_factory(loaded, inputs) as (make_converter, names):
        yield Export(loaded, FORMAT, names, make_converter)


def convert(
    exported: Export, inputs: list[InputSpec], mode: Mode, representative: Any, *, allow_flex: bool, integer_io: bool,
) -> Converted:
    """The flatbuffer in ``mode``, and its signature as LiteRT reads it back; ConversionError if refused."""
    flatbuffer, flex_ops = run_converter(exported.handle, mode, representative, allow_flex, integer_io)
    notes = []
    if flex_ops:
        notes.append(
            f"converted with TF Select (Flex) ops {', '.join(flex_ops)}: the slim LiteRT/tflite-runtime "
            "builds cannot run this model"
        )
    in_specs, out_specs = describe(flatbuffer, [s.name for s in inputs], exported.output_names)
    return Converted(flatbuffer, in_specs, out_specs, flex_ops=flex_ops, notes=notes)


def quantization_of(path: Path) -> str | None:
    """None: a .tflite's tensor types (the backend's description) tell its modes apart."""
    return None


def ship(model: Path, external: list[Path], dest: Path) -> list[Path]:
    """A .tflite ships as it is: LiteRT maps the file into memory itself."""
    shutil.copyfile(model, dest)
    return []


@contextlib.contextmanager
def converter_factory(loaded: LoadedModel, inputs: list[InputSpec]) -> Iterator[tuple[Callable[[], Any], list[str]]]:
    """Yields (a function making a fresh TFLiteConverter, the output names).

    The model is wrapped as one function (``lamb.convert.savedmodel``). Keras 3 models go through
    a temporary SavedModel, as TF's own ``from_keras_model`` does (``savedmodel.saved_model`` says
    why); tf_keras models and loaded SavedModels are real TF trackables, so their concrete function
    converts directly.
    """
    import tensorflow as tf

    if loaded.loader == "keras":
        with saved_model(loaded, inputs) as (export_dir, names):
            yield (lambda: _saved_model_converter(export_dir)), names
        return
    serve, signature, names = serving_function(loaded, inputs)
    concrete = tf.function(serve, input_signature=signature, autograph=False).get_concrete_function()
    yield (lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded.model)), names


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


_SELECT_OPS = re.compile(r"TF Select ops: ([^\n]+)")
_CUSTOM_OPS = re.compile(r"Custom ops: ([^\n]+)")
_FLEX_IN_FLATBUFFER = re.compile(rb"Flex([A-Z][A-Za-z0-9]*)")


def _settings(mode: Mode) -> ConverterSettings:
    """The mode's TFLiteConverter settings, as LiteRT's record gives them (its rows' own type)."""
    return mode.settings if isinstance(mode.settings, ConverterSettings) else ConverterSettings()


def _new_converter(make_converter, mode: Mode, representative, ops: list, integer_io: bool):
    """A converter set up as the quantization mode's row says."""
    import tensorflow as tf

    # A fresh converter per attempt: TF 2.21's converter fails with an AttributeError when
    # convert() is called a second time on the same object.
    settings = _settings(mode)
    converter = make_converter()
    converter.target_spec.supported_ops = ops
    if settings.optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if settings.supported_types:
        converter.target_spec.supported_types = [tf.as_dtype(name) for name in settings.supported_types]
    if mode.calibrated:
        converter.representative_dataset = representative
        if integer_io and mode.integer_io:
            converter.inference_input_type = tf.as_dtype(mode.integer_io)
            converter.inference_output_type = tf.as_dtype(mode.integer_io)
    logger.debug(
        "TFLite converter for %s: ops %s, optimizations %s, supported types %s, representative dataset %s, I/O %s",
        mode.name, [getattr(op, "name", op) for op in ops], settings.optimize, list(settings.supported_types) or "default",
        "yes" if mode.calibrated else "no", mode.integer_io if integer_io and mode.integer_io else "float32",
    )
    return converter


def run_converter(make_converter, mode: Mode, representative, allow_flex: bool, integer_io: bool) -> tuple[bytes, list[str]]:
    """The flatbuffer and the TF Select ops it embeds (none unless ``allow_flex``); ConversionError if refused."""
    import tensorflow as tf
    from tensorflow.lite.python.convert_phase import ConverterError

    from lamb import tflog

    builtins = getattr(tf.lite.OpsSet, _settings(mode).ops_set)
    converter = _new_converter(make_converter, mode, representative, [builtins], integer_io)
    started = time.perf_counter()
    with tflog.capture_fd2() as log:
        try:
            flatbuffer = bytes(converter.convert())
            logger.debug("converted: %d bytes in %.1f s", len(flatbuffer), time.perf_counter() - started)
            return flatbuffer, []
        except ConverterError as exc:
            failure = exc
    text = str(failure) + "\n" + "".join(log)
    select_ops = _ops_from(_SELECT_OPS, text)
    custom_ops = _ops_from(_CUSTOM_OPS, text)
    logger.debug("the converter refused (%s); TF Select ops %s, custom ops %s", _converter_summary(text), select_ops, custom_ops)
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
    converter = _new_converter(make_converter, mode, representative, ops, integer_io)
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
    logger.debug("converted with TF Select ops %s: %d bytes", embedded or select_ops, len(flatbuffer))
    return flatbuffer, embedded or select_ops


def _ops_from(pattern: re.Pattern, text: str) -> list[str]:
    ops: list[str] = []
    for match in pattern.findall(text):
        for raw in match.split(","):
            op = raw.strip().removeprefix("tf.")
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


def describe(flatbuffer: bytes, input_names: list[str], output_names: list[str]) -> tuple[list[mf.TensorSpec], list[mf.TensorSpec]]:
    """The signature as LiteRT reports it (names, shapes, dtypes, quantization)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from lamb.handler.lambkit.backends import pair
    from lamb.handler.lambkit.backends.litert import signature_name

    # Only reads metadata: no allocate_tensors(), so a model with Flex ops can be described too.
    interpreter = Interpreter(model_content=flatbuffer)
    # The signature and the pairing the shipped backend uses: the record lists the outputs in the
    # order and under the names the function will answer with.
    runner = interpreter.get_signature_runner(signature_name(interpreter.get_signature_list()))

    def specs(details: dict, order: list[str]) -> list[mf.TensorSpec]:
        keys = list(details)
        paired = pair(order, keys)
        names = [keys[i] for i in paired] if paired is not None else keys
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
