"""Run a .tflite on a TFLite library, in its own process, for ``lamb verify``.

This file is executed as a script (``python -I -S _tflite_runner.py LIB MODULE MODEL [PATH ...]``),
never imported by lamb: ``LIB`` is the library's distribution, ``MODULE`` what it imports as (both
from the library's record in ``lamb.runtime_lib.litert``). It imports only the LiteRT library, NumPy, the standard library and the
shipped handler's quantization functions (what the Lambda artifact ships), so the numbers
``lamb verify`` compares are the numbers Lambda will compute. Running it in a separate process keeps TensorFlow (loaded by lamb for the Keras side) and
the TFLite library out of each other's way, and lets the library live in a different environment
(see ``lamb.runtime_lib.RuntimeLib.needs``).

Protocol: one JSON object per line. The runner loads the library and the model, then writes
``{"event": "ready", ...signature...}`` (or ``{"event": "error", ...}``) and waits. lamb sends
``{"cmd": "run", "inputs": {key: "x.npy"}, "out_dir": "..."}``; the runner invokes the model once
per sample at the model's own batch size (as the deployed handler does), writes one ``.npy`` per
output and answers ``{"event": "done", ...}``. End of input ends the process.

Failures of the library (import, model load, allocation, invoke) are reported as an ``error`` event
carrying the library's own message: lamb turns them into a verification failure.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it off
from _runner_protocol import emit, error, open_channel, save_outputs, serve, version


def _describe(key: str, d: dict) -> dict:
    scale, zero_point = d.get("quantization", (0.0, 0))
    quantized = bool(scale)
    return {
        "key": key,
        "name": d["name"],
        "index": int(d["index"]),
        "shape": [int(s) for s in d["shape"]],
        "shape_signature": [int(s) for s in d.get("shape_signature", d["shape"])],
        "dtype": d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"]),
        "scale": float(scale) if quantized else None,
        "zero_point": int(zero_point) if quantized else None,
    }


def _signature(interpreter) -> tuple[list[dict], list[dict], str | None]:
    """Inputs and outputs in the order of the model's serving signature.

    The interpreter's ``get_output_details()`` order is the order of tensors in the flatbuffer,
    which the converter does not keep aligned with the Keras model's outputs (a two-output model
    comes back reversed); the signature's keys (``output_0``, ... or the Keras output names) are
    what lets lamb pair each output with its Keras counterpart.
    """
    signatures = interpreter.get_signature_list()
    if signatures:
        name = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
        runner = interpreter.get_signature_runner(name)
        ins = [_describe(k, d) for k, d in runner.get_input_details().items()]
        outs = [_describe(k, d) for k, d in runner.get_output_details().items()]
        return ins, outs, name
    ins = [_describe(d["name"], d) for d in interpreter.get_input_details()]
    outs = [_describe(d["name"], d) for d in interpreter.get_output_details()]
    return ins, outs, None


def _dtype_counts(interpreter) -> dict:
    """How many tensors of each dtype the model holds (how lamb tells quantization modes apart)."""
    counts: dict = {}
    for d in interpreter.get_tensor_details():
        name = d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"])
        counts[name] = counts.get(name, 0) + 1
    return counts


def _run(np, interpreter, inputs: list[dict], outputs: list[dict], request: dict, channel) -> dict:
    # The shipped handler's own (de)quantization: its folder is on sys.path (lamb.verify.runner puts it
    # there), and at module level it imports only NumPy and the standard library.
    from lambkit.preprocess import dequantize, quantize  # on sys.path only here

    arrays = {key: np.load(path) for key, path in request["inputs"].items()}
    n = len(next(iter(arrays.values())))
    batch = {spec["key"]: max(spec["shape"][0], 1) if spec["shape"] else 1 for spec in inputs}
    step = min(batch.values())
    results: dict[str, list] = {spec["key"]: [] for spec in outputs}
    invoke_s = 0.0
    for start in range(0, n, step):
        for spec in inputs:
            x = arrays[spec["key"]][start : start + step]
            if len(x) < step:  # a last, short batch: pad with the first sample, drop the extra rows
                x = np.concatenate([x, np.repeat(x[:1], step - len(x), axis=0)])
            if spec["scale"] is not None:
                x = quantize(x, spec["scale"], spec["zero_point"], spec["dtype"])
            else:
                x = x.astype(spec["dtype"], copy=False)
            interpreter.set_tensor(spec["index"], np.ascontiguousarray(x))
        t0 = time.perf_counter()
        interpreter.invoke()
        invoke_s += time.perf_counter() - t0
        for spec in outputs:
            y = interpreter.get_tensor(spec["index"])
            if spec["scale"] is not None:  # int8/uint8 output: back to real values
                y = dequantize(y, spec["scale"], spec["zero_point"])
            results[spec["key"]].append(np.array(y[: min(step, n - start)], dtype=np.float32))
        emit(channel, {"event": "progress", "samples": min(step, n - start)})  # lamb verify counts them
    files = save_outputs(np, request["out_dir"], "tflite", outputs, results)
    return {"event": "done", "outputs": files, "samples": n, "invoke_s": invoke_s}


def main(argv: list[str]) -> int:
    lib, module_name, model_path, extra_paths = argv[0], argv[1], argv[2], argv[3:]
    channel = open_channel(extra_paths)

    t0 = time.perf_counter()
    try:
        import numpy as np

        module = __import__(module_name + ".interpreter", fromlist=["Interpreter"])
    except Exception as exc:  # noqa: BLE001 - reported to lamb, which explains it to the user
        error(channel, "import", exc)
        return 3
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        interpreter = module.Interpreter(model_path=model_path)
        interpreter.allocate_tensors()
        # Models converted from Keras have batch 1 baked into the tensor shapes; the runner keeps
        # it, as the deployed handler does, and feeds one sample per invoke.
        inputs, outputs, signature = _signature(interpreter)
    except Exception as exc:  # noqa: BLE001 - the library cannot load this model: that is the finding
        error(channel, "load", exc)
        return 3
    emit(
        channel,
        {
            "event": "ready",
            "lib": lib,
            "version": version(lib),
            "numpy": np.__version__,
            "signature": signature,
            "inputs": inputs,
            "outputs": outputs,
            "tensor_dtypes": _dtype_counts(interpreter),
            "import_s": import_s,
            "load_s": time.perf_counter() - t0,
        },
    )

    return serve(channel, lambda request: _run(np, interpreter, inputs, outputs, request, channel))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
