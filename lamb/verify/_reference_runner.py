"""Run a *source* .onnx on a reference implementation, in its own process, for ``lamb verify``.

The converted model runs on the shipped backend (``_runner.py``); a model given as ``.onnx`` has no
Keras model to compare with, so its reference is computed here, from the source file. Executed as a
script (``python -I -S _reference_runner.py LIB MODULE MODEL [PATH ...]``), never imported by lamb,
with the protocol every verify runner speaks (``_runner_protocol``). ``MODULE`` says what computes:

- ``onnx.reference``: ONNX's own Python reference evaluator, an implementation independent of
  ONNX Runtime, the reference for a model given as ``.onnx``;
- ``onnxruntime-unoptimized``: ONNX Runtime with every graph optimization disabled, the weaker
  reference when the reference evaluator is too slow for the model.

It imports only the library, NumPy and the standard library. External weights
(``model.onnx.data``) are read from beside the model, as the handler reads them.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it off
from _runner_protocol import Done, Ready, TensorInfo, emit, open_channel, save_outputs, serve, stage, version

# onnx's element types (onnx.TensorProto.DataType) -> NumPy names, for the types image models use.
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}




def _spec(name: str, shape, dtype: str) -> TensorInfo:
    dims = [int(d) if isinstance(d, int) and d > 0 else -1 for d in shape]
    return TensorInfo(key=name, name=name, shape=dims, dtype=dtype, scale=None, zero_point=None)


class _Session:
    """ONNX Runtime with every graph optimization off: the weaker reference."""

    def __init__(self, model_path: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = [_spec(i.name, i.shape, _ORT_TYPES.get(i.type, i.type)) for i in self.session.get_inputs()]
        self.outputs = [_spec(o.name, o.shape, _ORT_TYPES.get(o.type, o.type)) for o in self.session.get_outputs()]

    def run(self, feeds: dict) -> list:
        return self.session.run([o["key"] for o in self.outputs], feeds)


class _Reference:
    """``onnx.reference.ReferenceEvaluator``: ONNX's own definition of each op, in NumPy."""

    def __init__(self, model_path: str):
        import onnx
        from onnx.reference import ReferenceEvaluator

        model = onnx.load(model_path)  # external data is read from beside the model
        self.evaluator = ReferenceEvaluator(model)
        constants = {t.name for t in model.graph.initializer}

        def spec(v):
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            return _spec(v.name, dims, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name)

        self.inputs = [spec(v) for v in model.graph.input if v.name not in constants]
        self.outputs = [spec(v) for v in model.graph.output]

    def run(self, feeds: dict) -> list:
        return list(self.evaluator.run([o["key"] for o in self.outputs], feeds))


def _run(np, engine, request: dict, channel) -> Done:
    arrays = {key: np.load(path) for key, path in request["inputs"].items()}
    n = len(next(iter(arrays.values())))
    # One sample per call at the model's own batch size (1, or open), as the deployed handler runs it.
    results: dict = {spec["key"]: [] for spec in engine.outputs}
    invoke_s = 0.0
    for i in range(n):
        feeds = {spec["key"]: np.ascontiguousarray(arrays[spec["key"]][i : i + 1].astype(spec["dtype"], copy=False))
                 for spec in engine.inputs}
        t0 = time.perf_counter()
        values = engine.run(feeds)
        invoke_s += time.perf_counter() - t0
        for spec, y in zip(engine.outputs, values):
            results[spec["key"]].append(np.asarray(y, dtype=np.float32)[:1])
        emit(channel, {"event": "progress", "samples": 1})
    files = save_outputs(np, request["out_dir"], "reference", engine.outputs, results)
    return Done(event="done", outputs=files, samples=n, invoke_s=invoke_s)


def main(argv: list[str]) -> int:
    lib, module_name, model_path, extra_paths = argv[0], argv[1], argv[2], argv[3:]
    channel = open_channel(extra_paths)

    def imports():
        import numpy as np

        __import__("onnx.reference" if module_name == "onnx.reference" else "onnxruntime")
        return np

    imported = stage(channel, "import", imports)
    if imported is None:
        return 3
    np, import_s = imported

    def load() -> _Reference | _Session:
        return _Reference(model_path) if module_name == "onnx.reference" else _Session(model_path)

    loaded = stage(channel, "load", load)  # the library cannot load this model: that is the finding
    if loaded is None:
        return 3
    engine, load_s = loaded
    dist = "onnx" if module_name == "onnx.reference" else lib
    emit(channel, Ready(event="ready", lib=lib, version=version(dist), numpy=np.__version__, inputs=engine.inputs,
                        outputs=engine.outputs, import_s=import_s, load_s=load_s))

    return serve(channel, lambda request: _run(np, engine, request, channel))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
