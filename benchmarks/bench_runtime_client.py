"""What running under AWS's runtime interface client (awslambdaric, over the Runtime API lamb serves)
costs against lamb's stand-in bootstrap (over a pipe), for the same handler on the same Python.

Each environment is started fresh ``--reps`` times (the cold start: interpreter start, client
start, handler import) and invoked ``--warm`` times warm; runs alternate between the two clients,
so drift on a shared machine hits both. Prints medians of the cold start, of the warm invocation
as each reports it (under awslambdaric, as Lambda measures Duration: from handing the event over
to the answer, so the Runtime API's round trip is in it; the stand-in times the handler call
alone), and of ``LocalFunction.invoke`` as the caller waits for it (the same measure for both).

    .venv/bin/python benchmarks/bench_runtime_client.py [--python 3.12] [--reps 5] [--warm 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine

from lamb.local import LocalFunction, RunSettings, runtime_client_name
from lamb.runtime_client import runtime_client_for
from lamb.targets import find_python, host_arch

HANDLER = "def lambda_handler(event, context):\n    return {'echo': event}\n"


def measure(root: Path, settings: RunSettings, warm: int) -> tuple[float, list[float], list[float]]:
    with LocalFunction(root, settings) as fn:
        first = fn.invoke({"i": 0})
        assert first.error is None, first.error
        reported, waited = [], []
        for i in range(warm):
            start = time.perf_counter()
            result = fn.invoke({"i": i})
            waited.append((time.perf_counter() - start) * 1000.0)
            assert result.invoke_ms is not None
            reported.append(result.invoke_ms)
    assert first.init_ms is not None
    return first.init_ms, reported, waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.12")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warm", type=int, default=50)
    args = parser.parse_args()
    python = find_python(args.python)
    client, why = runtime_client_for(args.python, host_arch() or "x86_64")
    if python is None or client is None:
        sys.exit(f"needs CPython {args.python} and awslambdaric for it: {why or 'no interpreter'}")
    root = Path(tempfile.mkdtemp(prefix="bench-ric-"))
    (root / "lambda_function.py").write_text(HANDLER)
    runs = {name: RunSettings(python=python, runtime_client=c) for name, c in (("awslambdaric", client), ("stand-in", None))}
    inits: dict[str, list[float]] = {name: [] for name in runs}
    warms: dict[str, list[float]] = {name: [] for name in runs}
    waits: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.reps):
        for name, settings in runs.items():
            init_ms, reported, waited = measure(root, settings, args.warm)
            inits[name].append(init_ms)
            warms[name] += reported
            waits[name] += waited
    print(f"Python {args.python}, an echo handler; {args.reps} cold starts and {args.reps} x {args.warm} warm invocations each")
    print(describe_machine())
    for name, settings in runs.items():
        print(f"{runtime_client_name(settings)}: cold start {statistics.median(inits[name]):.1f} ms, warm invoke "
              f"{statistics.median(warms[name]):.2f} ms as reported, {statistics.median(waits[name]):.2f} ms as the caller waits")
    ratio = lambda d: statistics.median(d["awslambdaric"]) / statistics.median(d["stand-in"])  # noqa: E731
    print(f"awslambdaric / stand-in: cold start {ratio(inits):.2f}x, warm invoke as the caller waits {ratio(waits):.2f}x")


if __name__ == "__main__":
    main()
