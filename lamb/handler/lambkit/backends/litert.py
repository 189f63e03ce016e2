"""LiteRT (ai-edge-litert) or tflite-runtime: the ``.tflite`` backend."""

from __future__ import annotations

import threading

import numpy as np

from ..preprocess import dequantize
from . import InputSpec, declared_input, output_names


def _interpreter_class():
    # ai-edge-litert is the maintained runtime library; tflite-runtime is what the python3.10/3.11
    # (glibc 2.26) targets can ship. The artifact holds exactly one of them.
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


def _quant(detail):
    params = detail.get("quantization_parameters") or {}
    scales = params.get("scales")
    zeros = params.get("zero_points")
    if scales is not None and zeros is not None and len(scales) == 1 and float(scales[0]) != 0.0:
        return float(scales[0]), int(zeros[0])
    scale, zero = detail.get("quantization", (0.0, 0))
    return (float(scale), int(zero)) if scale else (None, None)


class LiteRTBackend:
    """One interpreter, used by one thread at a time.

    A TFLite interpreter is not thread-safe: two requests interleaving resize, set_tensor, invoke
    and get_tensor read each other's scores, or fail with "There is at least 1 reference to
    internal data in the interpreter". One lock serialises them; the interpreter's own threads
    (``num_threads``, one per vCPU) already use the CPU the function gets.
    """

    def __init__(self, path: str, record: dict, num_threads: int):
        self.interpreter = _interpreter_class()(model_path=path, num_threads=num_threads)
        self._lock = threading.Lock()
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs; this handler feeds exactly one image")
        shape = list(inputs[0].get("shape_signature", inputs[0]["shape"]))
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
        self._outputs = self._output_tensors(output_names(record))

    def _output_tensors(self, names):
        """(tensor index, name, quantization) per output, in the record's order.

        The interpreter's output order is not the model's; the signature maps the names the
        record (and the Keras model) uses to tensor indices.
        """
        details = {}
        signatures = self.interpreter.get_signature_list()
        if signatures:
            runner = self.interpreter.get_signature_runner(next(iter(signatures)))
            details = runner.get_output_details()
        if details and set(names) == set(details):
            return [(details[n]["index"], n, _quant(details[n])) for n in names]
        if details:
            return [(d["index"], n, _quant(d)) for n, d in sorted(details.items())]
        return [(d["index"], d["name"], _quant(d)) for d in self.interpreter.get_output_details()]

    def _resize(self, shape):
        self.interpreter.resize_tensor_input(self._index, shape)
        self.interpreter.allocate_tensors()

    def run(self, x):
        """The input tensor -> one float32 vector per output (dequantized)."""
        with self._lock:
            if self.input.size is None and tuple(self.interpreter.get_input_details()[0]["shape"]) != x.shape:
                self._resize(list(x.shape))
            self.interpreter.set_tensor(self._index, x)
            self.interpreter.invoke()
            raw = [(name, self.interpreter.get_tensor(index), quant) for index, name, quant in self._outputs]
        results = []
        for name, tensor, (scale, zero) in raw:  # get_tensor copies: safe to read outside the lock
            y = dequantize(tensor, scale, zero) if scale is not None and tensor.dtype.kind in "iu" else tensor
            results.append((name, np.asarray(y, dtype=np.float32).reshape(-1)))
        return results
