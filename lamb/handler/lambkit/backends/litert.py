"""LiteRT (ai-edge-litert) or tflite-runtime: the ``.tflite`` backend."""

from __future__ import annotations

import threading

import numpy as np

from ..preprocess import dequantize
from . import Description, InputSpec, TensorSpec, declared_input, in_record_order

# The signature a converter writes for the model's one entry point; a model with others but not it
# is run through the first by name, so every reader picks the same one.
SERVING = "serving_default"


# The runtime libraries this backend runs on, by distribution: ai-edge-litert is the maintained one;
# tflite-runtime is what the python3.10/3.11 (glibc 2.26) targets can ship.
_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


def library(record: dict):
    """The Interpreter of the runtime library the record names (``package.runtime_lib``), else of
    whichever is installed: an artifact holds exactly one of them, a verify environment may hold both."""
    import importlib

    package = record.get("package")
    named = _MODULES.get(str(package.get("runtime_lib"))) if isinstance(package, dict) else None
    if named:
        return importlib.import_module(named).Interpreter
    try:
        return importlib.import_module(_MODULES["ai-edge-litert"]).Interpreter
    except ImportError:
        return importlib.import_module(_MODULES["tflite-runtime"]).Interpreter


def signature_name(signatures) -> str | None:
    """The signature every reader of a .tflite runs: ``serving_default``, else the first by name."""
    if not signatures:
        return None
    return SERVING if SERVING in signatures else sorted(signatures)[0]


def _quant(detail):
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zeros = params.get("zero_points")
    if scales is not None and zeros is not None and len(scales) == 1 and float(scales[0]) != 0.0:
        return float(scales[0]), int(zeros[0])
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else (None, None)


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


class LiteRTBackend:
    """One interpreter, used by one thread at a time.

    A TFLite interpreter is not thread-safe: two requests interleaving resize, set_tensor, invoke
    and get_tensor read each other's scores, or fail with "There is at least 1 reference to
    internal data in the interpreter". One lock serialises them; the interpreter's own threads
    (``num_threads``, one per vCPU) already use the CPU the function gets.
    """

    def __init__(self, path: str, record: dict, num_threads: int):
        self.interpreter = library(record)(model_path=path, num_threads=num_threads)
        # Allocating first: a model this library cannot run at all (TF Select ops, op versions it
        # predates) says so before the handler's own expectations are checked.
        self.interpreter.allocate_tensors()
        self._lock = threading.Lock()
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs; this handler feeds exactly one image")
        shape = [int(d) for d in inputs[0].get("shape_signature", inputs[0]["shape"])]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"the model's input has shape {shape}; this handler feeds (batch, height, width, 3) images")
        self._index = inputs[0]["index"]
        if -1 in shape[1:3]:
            spec = declared_input(record).get("shape") or shape
            shape[1:3] = spec[1:3]
        size = None if -1 in shape[1:3] else (int(shape[1]), int(shape[2]))
        self.input = InputSpec(size=size, layout="NHWC", dtype=np.dtype(inputs[0]["dtype"]), quantization=_quant(inputs[0]))
        batch_of_one = [1, *(size or inputs[0]["shape"][1:3]), 3]
        if list(inputs[0]["shape"]) != batch_of_one:
            self._resize(batch_of_one)
        else:
            self.interpreter.allocate_tensors()
        self._input_key, self._outputs = self._signature(record)

    def _signature(self, record):
        """The input's key and (tensor index, name, key, quantization) per output, in the record's order.

        The interpreter's output order is not the model's; the signature maps the names the
        record (and the source model) uses to tensor indices.
        """
        name = signature_name(self.interpreter.get_signature_list())
        if name is None:
            detail = self.interpreter.get_input_details()[0]
            details = {d["name"]: d for d in self.interpreter.get_output_details()}
            key = detail["name"]
        else:
            runner = self.interpreter.get_signature_runner(name)
            key = next(iter(runner.get_input_details()))
            details = runner.get_output_details()
        return key, [(details[k]["index"], n, k, _quant(details[k])) for n, k in in_record_order(record, list(details))]

    def _resize(self, shape):
        self.interpreter.resize_tensor_input(self._index, shape)
        self.interpreter.allocate_tensors()

    def describe(self) -> Description:
        detail = self.interpreter.get_input_details()[0]
        shape = tuple(int(d) for d in detail["shape"])
        inputs = (TensorSpec(self._input_key, self._input_key, shape, _dtype_name(detail["dtype"]), self.input.quantization),)
        tensors = {d["index"]: d for d in self.interpreter.get_tensor_details()}
        outputs = tuple(
            TensorSpec(name, key, tuple(int(d) for d in tensors[index]["shape"]), _dtype_name(tensors[index]["dtype"]), quant)
            for index, name, key, quant in self._outputs
        )
        counts: dict = {}
        for d in tensors.values():
            counts[_dtype_name(d["dtype"])] = counts.get(_dtype_name(d["dtype"]), 0) + 1
        return Description(inputs, outputs, self.input.layout, counts)

    def run(self, x):
        """The input tensor -> one float32 array per output (dequantized)."""
        with self._lock:
            if self.input.size is None and tuple(self.interpreter.get_input_details()[0]["shape"]) != x.shape:
                self._resize(list(x.shape))
            self.interpreter.set_tensor(self._index, x)
            self.interpreter.invoke()
            raw = [(name, self.interpreter.get_tensor(index), quant) for index, name, _key, quant in self._outputs]
        results = []
        for name, tensor, (scale, zero) in raw:  # get_tensor copies: safe to read outside the lock
            y = dequantize(tensor, scale, zero) if scale is not None and tensor.dtype.kind in "iu" else tensor
            results.append((name, np.asarray(y, dtype=np.float32)))
        return results


BACKEND = LiteRTBackend
