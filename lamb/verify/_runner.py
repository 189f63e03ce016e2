"""Run a converted model through the shipped handler's backend, in its own process, for ``lamb verify``.

Executed as a script (``python -I -S _runner.py LIB BACKEND MODEL RECORD [PATH ...]``), never
imported by lamb: ``LIB`` is the runtime library's distribution, ``BACKEND`` the backend its record
names (``lambkit.backends``, from the handler folder on ``PATH``), ``RECORD`` a JSON file with the
model's record (its manifest; ``{}`` for a model named alone). The backend loads and runs the model
exactly as the deployed function does; this script holds no model-reading code of its own. It only
feeds arrays, one sample per call (as the handler runs a request), and reports. Running it in a
separate process keeps TensorFlow (loaded by lamb for the source side) and the runtime library out
of each other's way, and lets the library live in a different environment (see
``lamb.runtime_lib.RuntimeLib.needs``).

The protocol and its messages are ``_runner_protocol``'s. Failures of the library (import, model
load, invoke) are reported as an ``Error`` carrying the library's own message: lamb turns them into
a verification failure.
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves it off
from _runner_protocol import (
    Done,
    Progress,
    Ready,
    RunRequest,
    TensorInfo,
    emit,
    open_channel,
    save_outputs,
    serve,
    stage,
    version,
)


def _info(spec) -> TensorInfo:
    scale, zero_point = spec.quantization
    return TensorInfo(key=spec.name, name=spec.key, shape=[int(d) for d in spec.shape], dtype=spec.dtype,
                      scale=scale, zero_point=zero_point)


def _run(np, backends, backend, request: RunRequest, channel) -> Done:
    ((_key, path),) = request["inputs"].items()  # the handler feeds one image; so does verify
    x = np.load(path)
    results: dict = {}
    invoke_s = 0.0
    for i in range(len(x)):
        sample = backends.typed(backend.input, np.ascontiguousarray(x[i : i + 1]))
        t0 = time.perf_counter()
        outputs = backend.run(sample)
        invoke_s += time.perf_counter() - t0
        for name, y in outputs:
            results.setdefault(name, []).append(y)
        emit(channel, Progress(event="progress", samples=1))  # lamb verify counts them
    described = [_info(s) for s in backend.describe().outputs]
    files = save_outputs(np, request["out_dir"], "model", described, results)
    return Done(event="done", outputs=files, samples=len(x), invoke_s=invoke_s)


def main(argv: list[str]) -> int:
    lib, backend_name, model_path, record_path, extra_paths = argv[0], argv[1], argv[2], argv[3], argv[4:]
    channel = open_channel(extra_paths)

    def imports():
        import numpy as np
        from lambkit import backends  # the handler folder is on sys.path (lamb.verify.runner puts it there)

        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
        # As the artifact's lamb.json will say it: this library, through this backend.
        record["package"] = {**(record.get("package") or {}), "runtime_lib": lib, "handler_backend": backend_name}
        backends.module(backend_name).library(record)
        return np, backends, record

    imported = stage(channel, "import", imports)
    if imported is None:
        return 3
    (np, backends, record), import_s = imported

    def load():
        backend = backends.load(backend_name, model_path, record, num_threads=os.cpu_count() or 1)
        return backend, backend.describe()

    loaded = stage(channel, "load", load)  # the library cannot load this model: that is the finding
    if loaded is None:
        return 3
    (backend, described), load_s = loaded
    emit(channel, Ready(
        event="ready", lib=lib, version=version(lib), numpy=np.__version__, backend=backend_name, layout=described.layout,
        inputs=[_info(s) for s in described.inputs], outputs=[_info(s) for s in described.outputs],
        tensor_dtypes=dict(described.tensor_dtypes), import_s=import_s, load_s=load_s,
    ))
    return serve(channel, lambda request: _run(np, backends, backend, request, channel))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
