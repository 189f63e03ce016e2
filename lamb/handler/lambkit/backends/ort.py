"""ONNX Runtime (onnxruntime): the ``.onnx`` backend, and the model pre-optimized for one CPU.

Creating a session optimizes the graph first (constant folding, fusions, then at ORT_ENABLE_ALL
the layout changes for the CPU it runs on), and that is most of ONNX Runtime's cold start: on the
Xception shape, session creation is 119-193 ms of a 234-315 ms init. ``lamb package`` does it once
(``preoptimize``: ``SessionOptions.optimized_model_filepath`` at ORT_ENABLE_ALL) and ships the
result beside the plain model; the session then loads it with optimizations off. ONNX Runtime's
documentation warns that a model saved after the layout optimizations may hold layouts specific
to the CPU it was optimized on ("Graph optimizations", online and offline mode), and Lambda does
not document its CPUs: so the file is keyed by the instruction sets of the CPU that made it
(``cpu.Cpu.isa``) and the release that made it, and used only where both match; anywhere else the
plain model loads as before (``model_path``).
"""

from __future__ import annotations

import os

import numpy as np

from ..cpu import this_cpu
from . import Description, InputSpec, TensorSpec, declared_input, in_record_order

OPTIMIZED_FILE = "model.optimized.onnx"  # beside model.onnx at the task root

# onnxruntime's element type names -> NumPy dtypes, for the inputs an image model takes.
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
# ... and every element type an output or a description may name.
_NAMES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(int8)": "int8",
          "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}


def _dim(value):
    return value if isinstance(value, int) and value > 0 else -1  # "batch", None: open


def _obvious_layout(shape: list) -> str:
    """A record without a layout means NHWC, unless the model cannot take that: (N, 3, H, W)
    with a last dimension other than 3 is PyTorch's channels-first."""
    if len(shape) == 4 and shape[1] == 3 and shape[3] not in (3, -1):
        return "NCHW"
    return "NHWC"


def library(record: dict):
    """The runtime library, imported (what a verify runner times and blames apart)."""
    import onnxruntime

    return onnxruntime


class OnnxRuntimeBackend:
    """One ``InferenceSession`` on the CPU, intra-op threads set to the function's vCPUs.

    ``InferenceSession.run`` is thread-safe (onnxruntime's documented contract), so concurrent
    requests share the session without a lock. External weights (``model.onnx.data``) sit beside
    the model, where the session looks for them.
    """

    def __init__(self, path: str, record: dict, num_threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1  # one request runs one graph; parallelism is within ops
        self.path = model_path(path, record, ort.__version__)
        if self.path != path:  # optimized once already, for this CPU by this release
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(self.path, sess_options=options, providers=["CPUExecutionProvider"])
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs; this handler feeds exactly one image")
        shape = [_dim(d) for d in inputs[0].shape]
        layout = declared_input(record).get("layout") or _obvious_layout(shape)
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"the record's input layout {layout!r} is neither NHWC nor NCHW")
        channels, hw = (shape[1], shape[2:4]) if layout == "NCHW" else (shape[3] if len(shape) == 4 else None, shape[1:3])
        if len(shape) != 4 or channels not in (3, -1):
            raise ValueError(f"the model's input has shape {inputs[0].shape}; this handler feeds {layout} images with 3 channels")
        if -1 in hw:
            spec = declared_input(record).get("shape") or shape
            hw = spec[2:4] if layout == "NCHW" else spec[1:3]
        dtype = _DTYPES.get(inputs[0].type)
        if dtype is None:
            raise ValueError(f"the model's input is {inputs[0].type}; this handler feeds float tensors")
        size = None if -1 in hw else (int(hw[0]), int(hw[1]))
        self.input = InputSpec(size=size, layout=layout, dtype=np.dtype(dtype), quantization=(None, None))
        self._input_name = inputs[0].name
        self._outputs = in_record_order(record, [o.name for o in self.session.get_outputs()])  # (name, graph name)

    def describe(self) -> Description:
        first = self.session.get_inputs()[0]
        inputs = (TensorSpec(first.name, first.name, tuple(_dim(d) for d in first.shape), self.input.dtype.name),)
        graph = {o.name: o for o in self.session.get_outputs()}
        outputs = tuple(TensorSpec(name, key, tuple(_dim(d) for d in graph[key].shape), _NAMES.get(graph[key].type, graph[key].type))
                        for name, key in self._outputs)
        return Description(inputs, outputs, self.input.layout)

    def run(self, x):
        """The input tensor -> one float32 array per output."""
        values = self.session.run([key for _name, key in self._outputs], {self._input_name: x})
        return [(name, np.asarray(y, dtype=np.float32)) for (name, _key), y in zip(self._outputs, values)]


BACKEND = OnnxRuntimeBackend


def optimized_entry(record: dict) -> dict:
    """The record's pre-optimized model (``file``, ``isa``, ``runtime_lib_version``), or {}."""
    package = record.get("package")
    entry = package.get("optimized") if isinstance(package, dict) else None
    return entry if isinstance(entry, dict) else {}


def model_path(path: str, record: dict, version: str) -> str:
    """The file to load: the pre-optimized model when this CPU has the instruction sets it was
    optimized for and ``version`` (onnxruntime's) made it, else the plain model at ``path``."""
    entry = optimized_entry(record)
    if not entry:
        return path
    folder = os.path.dirname(path)
    optimized = os.path.join(folder, os.path.basename(str(entry.get("file") or OPTIMIZED_FILE)))
    data = [os.path.join(folder, os.path.basename(str(entry["data"])))] if entry.get("data") else []
    if entry.get("isa") == this_cpu().isa and entry.get("runtime_lib_version") == version and all(map(os.path.isfile, [optimized, *data])):
        return optimized
    return path


def preoptimize(path: str, out: str) -> dict:
    """Write ``path`` optimized at ORT_ENABLE_ALL for this CPU to ``out``, its weights beside it in
    ``out + ".data"``; the record's entry for the two.

    The weights go to their own file because ONNX Runtime maps such a file into memory where an
    initializer's offset is page-aligned (its writer aligns the large ones) and reads the tensors
    in place: on the Xception shape, float32 session creation fell from 144 ms (weights inside
    the protobuf, parsed and copied) to 17 ms, the first call about the same (bench_ort_init.py,
    AMD EPYC with AVX-512 VNNI).
    One thread, as the shipped handler's default: the saved graph does not depend on the count.
    """
    import onnxruntime as ort

    data = os.path.basename(out) + ".data"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = out
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", data)  # beside ``out``
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    options.intra_op_num_threads = 1
    ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    entry = {"file": os.path.basename(out), "data": data, "isa": this_cpu().isa, "runtime_lib_version": ort.__version__}
    if not os.path.isfile(os.path.join(os.path.dirname(out), data)):  # no weight of 1 KB or more: none written
        del entry["data"]
    return entry
