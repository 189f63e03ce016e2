"""A model pre-optimized at package time, so the function's cold start skips it (ONNX Runtime's).

The runtime library's backend in the shipped handler owns the how, when it has one: its module's
``preoptimize(path, out)`` writes the file and returns its record entry (ONNX Runtime's:
``lambkit.backends.ort``, which loads it only on a CPU with the instruction sets it was made for).
Here it runs where it must: in a fresh process of the target's own Python on the target's own
wheels (the release that ships makes the file), beside the plain model, which stays the fallback.
The same process checks the optimized model against the plain one through the backend itself, on
seeded inputs: a file that answers differently (beyond float32's tolerance) is not shipped.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb import runtime_lib, targets
from lamb.errors import ArtifactError
from lamb.files import out_of_space, write_refused
from lamb.handler.lambkit.cpu import this_cpu
from lamb.package import budget, bytecode
from lamb.quantization import DEFAULT

SAMPLES = 4  # seeded random inputs the optimized model must answer as the plain one does
BYTECODE_HEADROOM = 1.1  # the .pyc compiled after this add up to about a tenth of the dependencies

# Run with the target's Python (``-I -S``, and ``-B``: no host .pyc left in the trees that ship):
# argv is the dependency tree, the artifact's own files (lambkit), the backend's name, the model,
# the optimized file to write, the sample count and the tolerance.
SCRIPT = r"""
import json, sys
deps, files, name, model, out, samples, rtol = sys.argv[1:8]
sys.path[:0] = [files, deps]
import numpy as np
from lambkit.backends import load, module
entry = module(name).preoptimize(model, out)
plain, optimized = load(name, model, {}, 1), load(name, model, {"package": {"optimized": entry}}, 1)
assert getattr(optimized, "path", out) == out, "the backend did not choose the file it just optimized"
spec = plain.input
shape = (1, 3, *(spec.size or (224, 224))) if spec.layout == "NCHW" else (1, *(spec.size or (224, 224)), 3)
rng, worst = np.random.default_rng(0), 0.0
for _ in range(int(samples)):
    x = rng.uniform(-1, 1, shape).astype(spec.dtype)
    for (_n, a), (_m, b) in zip(plain.run(x), optimized.run(x)):
        span = float(a.max() - a.min()) or 1.0
        worst = max(worst, float(np.abs(a - b).max()) / span)
print(json.dumps({**entry, "max_rel": worst, "ok": worst <= float(rtol)}))
"""


@dataclass
class Optimized:
    """What pre-optimizing did: the record's entry when the file ships, and one sentence."""

    entry: dict[str, Any] | None  # PackageRecord.optimized: file, isa, runtime_lib_version, max_rel
    note: str


def preoptimize(
    target: targets.Target, lib_name: str, deps: Path, files: Path, model_file: str, *, limit: int | None, progress: Any = None,
) -> Optimized:
    """Pre-optimize ``files/model_file`` for this CPU on the target's wheels in ``deps``, when the
    library's backend can (``preoptimize``) and this machine runs the target's Python on its arch.
    ``limit``: the unzipped bytes the artifact may hold (None: no limit); a copy that would break it
    is not shipped."""
    from lamb.handler.lambkit import backends

    name = runtime_lib.get(lib_name).handler_backend
    try:
        backend = backends.module(name)
    except ImportError:  # a backend its library's own distribution ships: only the target's wheels have it
        return Optimized(None, "")
    if not hasattr(backend, "preoptimize"):
        return Optimized(None, "")
    python = bytecode.target_python(target)
    if python is None:
        return Optimized(None, f"not pre-optimized: no Python {target.python_version} on {target.arch} here to run the "
                               f"target's {lib_name}, so each cold start optimizes the graph")
    if progress is not None:
        progress.phase(f"pre-optimizing the model with the target's {lib_name} for this CPU ({this_cpu().isa})")
    out = files / backend.OPTIMIZED_FILE
    rtol = runtime_lib.get(lib_name).format.mode(DEFAULT).tolerances.rtol
    proc = subprocess.run(
        [python, "-I", "-S", "-B", "-c", SCRIPT, str(deps), str(files), name, str(files / model_file), str(out), str(SAMPLES), str(rtol)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    if proc.returncode != 0:
        # The scratch folder's disk full: ONNX Runtime may say so, or only that it failed to write.
        need = sum(p.stat().st_size for p in files.glob(f"{model_file}*"))  # the copy is about the model's size
        refused = write_refused(RuntimeError(proc.stderr), files) or out_of_space(files, need)
        if refused is not None:
            raise refused
        raise ArtifactError(f"pre-optimizing the model with the target's {lib_name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}",
                            "run with --verbose and report it")
    entry = json.loads(proc.stdout.strip().splitlines()[-1])
    made = files_of(files, entry)
    if not entry.pop("ok"):
        _remove(made)
        return Optimized(None, f"not pre-optimized: the optimized graph answered {entry['max_rel']:.1e} of the output's range "
                               f"away from the plain one (over float32's {rtol:g})")
    total = sum(c.unzipped for c in budget.measure_tree(deps) + budget.measure_tree(files))
    if limit is not None and total * BYTECODE_HEADROOM > limit:
        _remove(made)
        return Optimized(None, f"not pre-optimized: with the optimized copy the artifact would unzip to {total / 2**20:.0f} MB, "
                               f"too near Lambda's {limit / 2**20:.0f} MB")
    size = sum(p.stat().st_size for p in made)
    return Optimized(entry, f"{entry['file']} ({size / 2**20:.1f} MB with its weights) pre-optimized by {lib_name} "
                            f"{entry['runtime_lib_version']} for {entry['isa']}, loaded on a CPU with those instruction sets "
                            f"(agrees with the plain model to {entry['max_rel']:.1e}); the plain model elsewhere")


def _remove(made: list[Path]) -> None:
    for path in made:
        path.unlink(missing_ok=True)


def files_of(root: Path, entry: dict[str, Any]) -> list[Path]:
    """The pre-optimized model's files in ``root``: the graph, then its weights' file if any (none
    for an empty entry). Names only, whatever a record says: never a path out of ``root``."""
    names = [entry.get("file"), entry.get("data")]
    return [root / Path(str(name)).name for name in names if name]
