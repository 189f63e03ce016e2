"""The ``onnx`` format's converter (``lamb.convert.engine``): SavedModel -> tf2onnx, then ONNX Runtime's quantizer.

The model goes through a SavedModel (``lamb.convert.savedmodel``), the route the course's 2025
recipe takes and the one tf2onnx reads best; tf2onnx writes a float32 graph at ``OPSET`` once per
export, and each quantization mode is applied to that graph by ``onnxruntime.quantization``
(``quantize``). An ONNX model given as the source (``lamb.source.onnx``) is not exported: float32
ships it as it is, with its external data; the other modes quantize it the same way.

How each mode quantizes, measured on the Xception shape (benchmarks/xception_model.py, 299x299,
onnxruntime 1.32, 1 thread; median of 3 fresh processes of 7 warm calls each, the range of the 3
in brackets; AMD EPYC with AVX-512 VNNI, 2026-12-06; ``benchmarks/bench_engines.py --settings``):

    setting                                              MB   warm ms
    float32 (tf2onnx)                                   79.3  185 (148-193)
    float16 (fp16 graph, float32 input and output)      39.7  162 (152-207)
    quantize_dynamic QInt8 weights (the defaults)       20.0 1182 (1019-1331)  ConvInteger: no fast s8 kernel
    quantize_dynamic QInt8, per-channel                 20.0 1181 (1125-1555)
    quantize_dynamic MatMul/Gemm only                   79.3  185 (173-310)    the convolutions stay float
    quantize_dynamic QUInt8 weights                     20.0  213 (181-229)
    quantize_static QDQ per-channel, U8 act / S8 weights 20.3  62 (61-103)
    quantize_static QDQ per-channel, S8 act / S8 weights 20.3 102 (87-203)
    quantize_static QOperator per-channel, U8 / S8      20.2   77 (73-116)
    quantize_static QDQ per-channel U8/S8, reduce_range 20.3   61 (54-64)

So ``dynamic`` quantizes weights as QUInt8 (4x smaller, 1.15x float32's time on a CNN, where the
default QInt8 takes 6x), and ``int8`` is static QDQ, per-channel, U8 activations and S8 weights,
after ``quant_pre_process`` (shape inference and graph optimisation first, as ONNX Runtime's
quantization guide asks): 3x faster than float32 at a quarter of its size. reduce_range
(7-bit weights) costs nothing measurable here and avoids the U8S8 saturation ONNX Runtime's
documentation warns of on x86 CPUs without VNNI: which CPU a Lambda function gets is not documented.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from lamb import files
from lamb import manifest as mf
from lamb.convert.engine import Converted, Export
from lamb.convert.savedmodel import SIGNATURE_KEY, saved_model
from lamb.errors import ArtifactError, ConversionError, InputError
from lamb.quantization import Mode
from lamb.source.base import InputSpec
from lamb.source.onnx import tensor_specs
from lamb.source.tf_load import LoadedModel

log = logging.getLogger(__name__)

FORMAT = "onnx"
# ONNX Runtime 1.32 runs opsets up to 23; 17 is what the course's recipe and tf2onnx 1.17 were
# measured with (issue 15), and every quantizer setting above needs >= 13 (per-channel QDQ).
OPSET = 17


@contextlib.contextmanager
def export(loaded: LoadedModel, inputs: list[InputSpec]) -> Iterator[Export]:
    """The model through a SavedModel and tf2onnx once; its ``handle`` is the float32 ONNX model's bytes."""
    with saved_model(loaded, inputs) as (export_dir, names):
        proto = _tf2onnx(export_dir)
    yield Export(loaded, FORMAT, names, proto.SerializeToString())


def convert(
    exported: Export, inputs: list[InputSpec], mode: Mode, representative: Any, *, allow_flex: bool, integer_io: bool,
) -> Converted:
    """The ONNX model in ``mode``, and its signature; ConversionError if the quantizer refuses it."""
    started = time.perf_counter()
    given = exported.as_given
    if given is not None and allow_flex:
        raise InputError("--allow-flex is a TensorFlow Lite option", "drop --allow-flex")
    if given is not None and not mode.quantized:
        data, external, settings = given.data, given.external, dict[str, Any]()
    else:
        model = exported.handle() if callable(exported.handle) else exported.handle
        (data, settings), external = quantize(model, mode, representative, exported.layout), []
    log.debug("ONNX %s: %d bytes in %.1f s, %s", mode.name, len(data), time.perf_counter() - started,
              settings or "the float32 graph as written")
    in_specs, out_specs = describe(data, layout=exported.layout, output_order=exported.output_names)
    # The inputs as --input-shape fixed them: the graph may leave them open; the handler resizes to these.
    fixed = {i.name: [-1 if d is None else int(d) for d in i.shape] for i in inputs}
    in_specs = [dataclasses.replace(s, shape=fixed.get(s.name, s.shape)) for s in in_specs]
    origin = dict(given.origin) if given is not None else {"converter": "tf2onnx", "tf2onnx": _version("tf2onnx"), "opset": OPSET}
    return Converted(data, in_specs, out_specs, origin={**origin, **settings}, external=external)


def _tf2onnx(export_dir: str) -> Any:
    """tf2onnx's SavedModel route (its ``--saved-model`` command line), in this process, in its
    large-model way, which holds memory to about a third.

    Measured on the Xception shape (benchmarks/bench_convert_memory.py): as tf2onnx's command line
    converts it, the process peaked at 6.9 GB. Of that, TensorFlow's graph optimiser (grappler) on
    the frozen graph took it to 2.6 GB, and tf2onnx's own optimisers the rest: each works on a deep
    copy of the graph, and the copies it replaces (reference cycles) wait for the cyclic collector,
    a dozen copies of the weights at a time. So: the frozen graph goes to tf2onnx without grappler
    (tf2onnx's ``large_model`` freezing; its optimisers fold what grappler would), its large
    constants stay out of TensorFlow's graph (``compress_graph_def``), and each optimiser starts
    after a collection: 1.9 GB. The graph is the same but for one Add (130 nodes against 129), with
    identical outputs and warm time (176 against 179 ms, 1 thread, 2026-12-07).
    """
    import gc

    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader
    from tf2onnx.tf_utils import compress_graph_def
    from tf2onnx.tfonnx import process_tf_graph

    from lamb import tflog

    def collected(factory: Any) -> Any:
        def make() -> Any:
            gc.collect()
            return factory()

        return make

    optimizers = {name: collected(factory) for name, factory in optimizer._get_optimizers().items()}
    with tflog.capture_fd2() as log:
        try:
            graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
                export_dir, None, None, ["serve"], [SIGNATURE_KEY], None, True,  # large_model: frozen without grappler
                return_initialized_tables=True, return_tensors_to_rename=True,
            )
            with tf.Graph().as_default() as tf_graph:
                values = compress_graph_def(graph_def)
                tf.import_graph_def(graph_def, name="")
                del graph_def
                graph = process_tf_graph(tf_graph, const_node_values=values, opset=OPSET, input_names=inputs,
                                         output_names=outputs, tensors_to_rename=renames, initialized_tables=tables)
                del values
                graph = optimizer.optimize_graph(graph, True, optimizers=optimizers)
                proto = graph.make_model("converted from lamb")
        except Exception as exc:  # tf2onnx raises bare ValueError/KeyError/... for unsupported graphs
            first = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ConversionError(f"tf2onnx could not convert the model: {first}", "run with --verbose for tf2onnx's log") from exc
    unsupported = sorted({line.split("Unsupported ops:")[1].strip() for line in log if "Unsupported ops:" in line})
    if unsupported:
        raise ConversionError(f"tf2onnx has no ONNX op for: {'; '.join(unsupported)}", "replace those layers, or use --runtime-lib ai-edge-litert")
    return proto


# -- quantization (shared with ONNX models given as input) -----------------------------------------


def quantize(model: bytes, mode: Mode, representative: Any = None, layout: str = "NHWC") -> tuple[bytes, dict[str, Any]]:
    """``model`` (float32 ONNX bytes) in quantization ``mode``, and the settings used (for the manifest).

    The mode's row says what to do: unquantized is float32 as it is; float16 weights are an fp16
    graph keeping float32 inputs and outputs; a calibrated mode is static int8
    calibrated on ``representative`` (lamb.convert.calibration's dataset of NHWC samples,
    transposed for an NCHW ``layout``); otherwise dynamic int8 weights.
    """
    if not mode.quantized:
        return model, {}
    import onnx

    if mode.weights == "float16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        fp16 = convert_float_to_float16(onnx.load_from_string(model), keep_io_types=True)
        return fp16.SerializeToString(), {"quantizer": "onnxruntime.transformers.float16", "keep_io_types": True}
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with files.scratch("lamb-onnx-") as tmp:  # the temporary folder full (the quantizer's copies too): one line naming it
        src, pre, out = Path(tmp, "in.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "out.onnx")
        src.write_bytes(model)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            if mode.calibrated:
                name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
                samples = [s[0] for s in representative()]

                class Reader(CalibrationDataReader):
                    def __init__(self) -> None:
                        self._next = iter(samples)

                    def get_next(self) -> dict[str, Any] | None:
                        sample = next(self._next, None)
                        if sample is None:
                            return None
                        return {name: sample.transpose(0, 3, 1, 2).copy() if layout == "NCHW" else sample}

                settings = {"quantizer": "quantize_static", **STATIC}
                quantize_static(
                    str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                )
            else:
                settings = {"quantizer": "quantize_dynamic", **DYNAMIC}
                quantize_dynamic(str(pre), str(out), weight_type=QuantType.QUInt8)
        except (ValueError, RuntimeError, KeyError) as exc:
            first = " ".join(str(exc).split())[:200]
            raise ConversionError(f"ONNX Runtime's quantizer refused the model ({mode.name}): {first}",
                                  "try another --quantize mode") from exc
        return out.read_bytes(), settings


# The settings quantize passes, as the manifest records them (the measurements are in the docstring).
STATIC = {"format": "QDQ", "per_channel": True, "reduce_range": True, "activation_type": "QUInt8", "weight_type": "QInt8",
          "pre_process": True, "calibrate_method": "MinMax"}
DYNAMIC = {"weight_type": "QUInt8", "pre_process": True}


# -- the signature --------------------------------------------------------------------------------


def describe(model: bytes | Any, layout: str | None, output_order: list[str] | None = None) -> tuple[list[mf.TensorSpec], list[mf.TensorSpec]]:
    """The graph's inputs and outputs as TensorSpecs (``lamb.source.onnx.tensor_specs``), the outputs in ``output_order``."""
    inputs, outputs = tensor_specs(model, layout)
    if output_order:
        rank = {name: i for i, name in enumerate(output_order)}
        outputs.sort(key=lambda s: rank.get(s.name, len(rank)))
    return inputs, outputs


# Ops that tell quantization modes apart: static QDQ, and dynamic (integer weights, float activations).
_STATIC_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}
_DYNAMIC_OPS = {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"}


def quantization_of(path: Path) -> str | None:
    """The mode an ``.onnx`` was written in, read off its ops (its tensor types cannot tell a
    QDQ graph from a dynamic one): what ``lamb verify`` judges a model named without a manifest by."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    if ops & _STATIC_OPS:
        return "int8"
    if ops & _DYNAMIC_OPS:
        return "dynamic"
    float16 = onnx.TensorProto.FLOAT16
    return "float16" if any(t.data_type == float16 for t in model.graph.initializer) else "float32"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


# A one-file model of this many bytes or more (its weights, nearly all) ships them apart.
WEIGHTS_APART = 1 << 20


def ship(model: Path, external: list[Path], dest: Path) -> list[Path]:
    """The model at ``dest`` with its weights apart, in ``dest.name + ".data"``, when it holds them
    inside (a file of ``WEIGHTS_APART`` bytes or more); a model with external data keeps its files.

    ONNX Runtime creates a session faster when the weights are not inside the protobuf (parsed,
    then copied out): on the Xception shape, with the graph optimized as it loads, 253 -> 166 ms
    in float32 and 93 -> 65 ms in int8 (benchmarks/bench_ort_init.py, AMD EPYC with AVX-512 VNNI,
    onnxruntime 1.32); this is what a CPU other than the packaging one loads
    (``lambkit.backends.ort.preoptimize`` has the rest). Written with onnx's own external-data
    writer, then read back: every tensor must equal the verified model's, or nothing ships.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    if external:  # the exporter's own layout (torch.onnx.export's .onnx.data): as it is
        shutil.copyfile(model, dest)
        for data in external:
            shutil.copyfile(data, dest.parent / data.name)
        return [dest.parent / data.name for data in external]
    if model.stat().st_size < WEIGHTS_APART:  # a session parses it in a few milliseconds
        shutil.copyfile(model, dest)
        return []
    data = dest.parent / f"{dest.name}.data"
    proto = onnx.load(str(model))
    before = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}  # they keep their bytes when saving moves them out
    onnx.save_model(proto, str(dest), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name, size_threshold=1024)
    after = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(dest)).graph.initializer}
    if before.keys() != after.keys() or any(not np.array_equal(before[k], after[k]) for k in before):
        raise ArtifactError(f"{model.name} with its weights apart does not read back as the same tensors",
                            "run with --verbose and report it")
    return [data]
