"""lamb's Python API: the pipeline's steps as functions, with the command line's defaults.

``lamb.convert``, ``lamb.verify``, ``lamb.compare``, ``lamb.package``, ``lamb.invoke`` and
``lamb.deploy`` are these functions (``import lamb`` loads them on first use). Each takes what its
command takes, under the option's own name (``--runtime-lib`` is ``runtime_lib=``, ``--no-smoke``
is ``smoke=False``), applies the same rules, and returns the report the command renders and
``--json`` prints. The CLI (``lamb.cli``) calls these functions and only parses, renders and maps
errors to exit codes, so ``lamb.package(...)`` and ``lamb package`` decide alike.

A model may be a path, or the model itself: a Keras model in memory, or an ``onnx.ModelProto``.
The manifest records the source model's file and hash (``lamb verify`` loads it again), so an
in-memory model is saved first, beside the converted model, and the result's notes say where.
Each step after ``convert`` also takes the previous step's result where it takes a path.

Errors are ``lamb.errors.LambError``; a verification that fails is a report with
``passed=False`` (``report.raise_for_failure()`` raises it), as with ``lamb verify``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamb import quantization
from lamb.errors import InputError

if TYPE_CHECKING:  # the reports, for readers and mypy; importing them would load every step
    from lamb.compare.report import CompareReport
    from lamb.convert.report import ConversionResult
    from lamb.deploy.report import DeployReport
    from lamb.invoke.report import InvokeReport
    from lamb.local import RunSettings
    from lamb.package.report import PackageReport
    from lamb.verify.report import VerifyReport

STEPS = ("convert", "verify", "compare", "package", "invoke", "deploy")


def convert(model: Any, output: str | Path | None = None, **options: Any) -> ConversionResult:
    """Convert ``model`` for a runtime library, write it and its manifest; ``lamb convert``.

    ``model``: a ``.h5``, ``.keras``, SavedModel folder or ``.onnx`` path, a Keras model, or an
    ``onnx.ModelProto``. ``output``: the converted file or its folder (default: the current one).
    Options, as ``lamb convert --help`` describes them: ``quantize`` (``"float32"``, a mode of the
    runtime library's format, or ``"auto"``), ``runtime_lib``, ``preprocess``, ``labels`` (a list, or
    ``"a,b,c"``), ``labels_file``, ``calibration``, ``input_shape`` (``(224, 224, 3)`` or
    ``"224,224,3"``), ``integer_io``, ``allow_flex``, ``allow_unsafe_lambda``, ``head`` (``"binary-logit"``, ...); with
    ``quantize="auto"`` also ``images`` and ``labeled_images``. Returns a ``ConversionResult``
    (with ``quantize="auto"``, its ``comparison`` is the ``CompareReport`` that chose the mode).
    """
    from lamb.convert import convert_model
    from lamb.convert.preprocess import read_labels

    _quiet_tensorflow()
    source, saved = _source(model, output)
    o = _Options("lamb convert", options)
    quantize = o.pop("quantize", quantization.DEFAULT)
    images, labeled_images = o.pop("images"), o.pop("labeled_images")
    labels = read_labels(_labels(o.pop("labels")), o.pop("labels_file"))
    common = {
        "calibration": o.pop("calibration"), "input_shape": _shape(o.pop("input_shape")), "preprocess": o.pop("preprocess"),
        "allow_unsafe_lambda": bool(o.pop("allow_unsafe_lambda", False)), "head": o.pop("head"),
    }
    integer_io, allow_flex, runtime_lib = bool(o.pop("integer_io", False)), bool(o.pop("allow_flex", False)), o.pop("runtime_lib")
    o.done()
    if quantize == "auto":
        from lamb.compare.auto import convert_auto

        if integer_io or allow_flex:
            raise InputError("--quantize auto compares the modes lamb ships as they are", "drop --integer-io/--allow-flex, or pick a mode")
        calibrated = common["calibration"] is not None or labeled_images is not None
        result, comparison = convert_auto(
            source, _path(output), images=_path(images), labeled_images=_path(labeled_images), labels=labels, runtime_lib=runtime_lib,
            modes=None if calibrated else _uncalibrated_modes(source, runtime_lib), **common,
        )
        result.comparison = comparison
    elif images is not None or labeled_images is not None:
        flag = "--images" if images is not None else "--labeled-images"
        raise InputError(f"{flag} only applies to --quantize auto", f"verify with `lamb verify {flag} DIR`")
    else:
        result = convert_model(
            source, _path(output), quantize=quantize, labels=labels, integer_io=integer_io, allow_flex=allow_flex,
            runtime_lib_name=runtime_lib, **common,
        )
    if saved:
        result.notes.insert(0, saved)
    return result


def verify(source_model: Any = None, converted_model: Any = None, **options: Any) -> VerifyReport:
    """Run the source and the converted model on the same inputs, on the runtime library that
    ships, and record the verdict in the manifest; ``lamb verify``.

    With no models, the manifest in the current folder names both; ``source_model`` may also be
    ``lamb.convert``'s result (its manifest). Options, as ``lamb verify --help`` describes them:
    ``manifest``, ``samples``, ``images``, ``labeled_images``, ``seed``, ``preprocess``, ``labels``,
    ``quantize``, ``runtime_lib``, ``runtime``, ``arch``, ``atol``, ``rtol``, ``min_top1``,
    ``min_cosine``, ``top_k``, ``allow_unsafe_lambda``. Returns a ``VerifyReport``; a failure is
    ``passed=False`` (``raise_for_failure()`` raises ``OutputMismatch``, exit code 1).
    """
    from lamb.targets import default_runtime
    from lamb.verify import ToleranceOverrides, VerifyInputs, verify_model

    _quiet_tensorflow()
    o = _Options("lamb verify", options)
    manifest = _path(o.pop("manifest"))
    if source_model is not None and hasattr(source_model, "manifest_path"):
        manifest, source_model = Path(source_model.manifest_path), None
    inputs = VerifyInputs(
        samples=o.pop("samples"), images=_path(o.pop("images")), seed=o.pop("seed", 0), preprocess=o.pop("preprocess"),
        labeled_images=_path(o.pop("labeled_images")),
    )
    tolerances = ToleranceOverrides(**{k: o.pop(k) for k in ("atol", "rtol", "min_top1", "min_cosine", "top_k")})
    runtime, arch = o.pop("runtime"), o.pop("arch")
    labels, quantize, runtime_lib, unsafe = _labels(o.pop("labels")), o.pop("quantize"), o.pop("runtime_lib"), o.pop("allow_unsafe_lambda", False)
    o.done()
    return verify_model(
        _path(source_model), _path(converted_model), manifest_path=manifest, inputs=inputs, tolerances=tolerances, labels=labels,
        quantization=quantize, runtime_lib_name=runtime_lib, allow_unsafe_lambda=bool(unsafe),
        # --arch names the target together with --runtime (the newest runtime when only --arch is given)
        runtime=f"{runtime or default_runtime().name}-{arch}" if arch else runtime,
    )


def compare(model: Any, **options: Any) -> CompareReport:
    """Convert, verify, size, time and price ``model`` in every (runtime library, mode), and
    recommend one; ``lamb compare``.

    ``model``: a path, a Keras model or an ``onnx.ModelProto``, as for ``convert``. Options, as
    ``lamb compare --help`` describes them: ``images``, ``labeled_images``, ``calibration``,
    ``samples``, ``seed``, ``runtime``, ``arch``, ``memory`` (a list of MB, or ``"512,1024"``),
    ``modes``, ``runtime_lib``, ``preprocess``, ``labels``, ``labels_file``, ``input_shape``,
    ``max_latency_ms``, ``output_dir``, ``allow_unsafe_lambda``, ``plot`` (a PNG to write), and
    ``progress`` (called with each phase's name). Returns a ``CompareReport``;
    ``raise_for_failure()`` raises when no mode passed (exit code 1).
    """
    from lamb.compare import DEFAULT_MEMORY_MB, compare_models
    from lamb.compare.core import CompareOptions
    from lamb.compare.render import check_plot, write_plot
    from lamb.cost import parse_memory_list

    _quiet_tensorflow()
    source, saved = _source(model, options.get("output_dir"))
    o = _Options("lamb compare", options)
    plot = _path(o.pop("plot"))
    check_plot(plot)
    memory = o.pop("memory")
    memory = parse_memory_list(memory if memory is None or isinstance(memory, str) else ",".join(map(str, memory)), DEFAULT_MEMORY_MB)
    changes: dict[str, Any] = {"labels": _labels(o.pop("labels")), "input_shape": _shape(o.pop("input_shape")), "memory": memory}
    progress = o.pop("progress")
    changes.update(o.rest(CompareOptions))
    report = compare_models(source, progress=progress, **changes)
    if plot is not None:
        write_plot(report, plot)
    if saved:
        report.notes.insert(0, saved)
    return report


def package(manifest: Any = None, **options: Any) -> PackageReport:
    """Build a Lambda artifact for a verified model: wheels for the target, the ELF audit, slimming,
    size budget and smoke run; ``lamb package``.

    ``manifest``: a manifest, its converted model or their folder, or a result of ``convert`` or
    ``verify`` (default: the manifest in the current folder). Options, as ``lamb package --help``
    describes them: ``runtime``, ``arch``, ``format`` (``"zip"`` or ``"image"``), ``output``,
    ``runtime_lib``, ``wheelhouse``, ``slim``, ``max_size``, ``skip_verify``, ``smoke``,
    ``bytecode``, ``sample_image``, ``handler``, ``requirements`` (what ``--requirement`` adds, a
    list), ``base_image``, and ``progress`` (a ``lamb.progress.Progress``).
    When the release that ships is not the one verify ran on, the model is verified again on it
    (``lamb.package.build_package``'s default, so ``lamb package`` and Python decide alike). Returns a ``PackageReport``.
    """
    from lamb.package import build_package
    from lamb.package.build import PackageOptions

    _quiet_tensorflow()  # verifying again loads the source model
    o = _Options("lamb package", options)
    changes = {
        "fmt": o.pop("format", "zip"), "runtime_lib_name": o.pop("runtime_lib"), "slim_deps": o.pop("slim", True),
        "compile_bytecode": o.pop("bytecode", True), "requirements": tuple(o.pop("requirements", ())),
    }
    progress = o.pop("progress")
    changes.update(o.rest(PackageOptions))
    return build_package(_manifest_path(manifest), progress=progress, **changes)


def invoke(artifact: Any = None, **options: Any) -> InvokeReport:
    """Run the artifact's handler locally the way Lambda does, once cold and ``repeat`` times warm;
    ``lamb invoke``.

    ``artifact``: the zip or image folder, or ``package``'s result (default: the newest artifact in
    the current folder). Options, as ``lamb invoke --help`` describes them: one of ``image``,
    ``url``, ``event_file`` or ``event`` (any JSON value); ``repeat``, ``max_latency_ms``,
    ``memory`` (MB), ``timeout`` (s), ``env`` (a dict, or ``["KEY=VALUE"]``), ``python``,
    ``stand_in``. Returns an ``InvokeReport``; its ``error`` is set when the function failed.
    """
    from lamb.invoke import invoke_artifact

    o = _Options("lamb invoke", options)
    settings = run_settings(**{k: o.pop(k) for k in ("memory", "timeout", "env", "python", "stand_in")})
    changes = o.rest(("image", "url", "event_file", "event", "repeat", "max_latency_ms", "progress"))
    return invoke_artifact(_artifact_path(artifact), settings=settings, **changes)


def run_settings(
    memory: int | None = None, timeout: float | None = None, env: Any = None, python: str | None = None, stand_in: bool | None = None,
) -> RunSettings:
    """The ``RunSettings`` that ``lamb invoke`` and ``lamb serve`` run a function with: ``memory``
    (MB), ``timeout`` (s), ``env`` (a dict, or ``["KEY=VALUE"]`` as ``--env`` gives them), the
    ``python`` to run it with, and whether a host ``stand_in`` may run what this machine cannot."""
    from lamb.invoke import parse_env
    from lamb.local import RunSettings

    defaults = RunSettings()
    return RunSettings(
        memory_mb=defaults.memory_mb if memory is None else memory, timeout_s=defaults.timeout_s if timeout is None else timeout,
        env=dict(env) if isinstance(env, dict) else parse_env(env), python=python,
        stand_in=defaults.stand_in if stand_in is None else stand_in,
    )


def deploy(artifact: Any = None, **options: Any) -> DeployReport:
    """Put the artifact on AWS Lambda and prove the deployed code is the built code; ``lamb deploy``.

    ``artifact``: the zip or image folder, or ``package``'s result (default: the newest artifact in
    the current folder). Options, as ``lamb deploy --help`` describes them: ``function_name``
    (required), ``region``, ``profile``, ``role``, ``create_role``, ``s3_bucket``, ``memory``,
    ``timeout``, ``url``, ``reserved_concurrency``, ``alias``, ``image_uri``, ``endpoint_url``,
    ``plan`` (plan only: the calls, made by nothing), ``smoke``, ``sample_image``. Returns a
    ``DeployReport``; ``raise_for_failure()`` raises when the deployed function failed its smoke test.
    """
    from lamb.deploy import DeployOptions, deploy_artifact

    o = _Options("lamb deploy", options)
    renamed = {"role_arn": o.pop("role"), "memory_mb": o.pop("memory"), "timeout_s": o.pop("timeout")}
    plan = bool(o.pop("plan", False))
    fields = {**{k: v for k, v in renamed.items() if v is not None}, **o.rest(DeployOptions)}
    if not fields.get("function_name"):
        raise InputError("deploy needs a function name", "pass function_name='my-function' (--function-name)")
    return deploy_artifact(_artifact_path(artifact), DeployOptions(**fields), plan_only=plan)


# -- what the steps share ---------------------------------------------------------------------------

# Options that name files or folders: a str is taken as a path.
_PATHS = frozenset({
    "images", "labeled_images", "calibration", "labels_file", "output_dir", "output", "wheelhouse", "sample_image", "handler",
    "event_file", "image",
})


class _Options:
    """A step's keyword options, taken one by one; what is left is checked against the step."""

    def __init__(self, command: str, options: dict[str, Any]):
        self.command = command
        self._left = dict(options)

    def pop(self, name: str, default: Any = None) -> Any:
        value = self._left.pop(name, None)
        return default if value is None else value

    def rest(self, allowed: Any) -> dict[str, Any]:
        """Every option not taken yet, checked against ``allowed`` (the step's options dataclass, or
        the names its function takes), with a str taken as a path where the option names a file."""
        names = {f.name for f in dataclasses.fields(allowed)} if dataclasses.is_dataclass(allowed) else set(allowed)
        self._left = {k: v for k, v in self._left.items() if v is not None}
        unknown = sorted(set(self._left) - names)
        if unknown:
            raise InputError(f"{self.command} has no option {unknown[0]!r}", f"see `{self.command} --help`")
        left, self._left = self._left, {}
        return {k: Path(v) if k in _PATHS else v for k, v in left.items()}

    def done(self) -> None:
        if self._left:
            raise InputError(f"{self.command} has no option {sorted(self._left)[0]!r}", f"see `{self.command} --help`")


def _quiet_tensorflow() -> None:
    """TensorFlow's log noise off, as the command line has it (unless a caller asked for --verbose)."""
    from lamb import tflog

    tflog.configure(tflog.is_verbose())


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value)


def _labels(labels: Any) -> list[str] | None:
    from lamb.convert.preprocess import parse_labels_option

    return parse_labels_option(labels) if isinstance(labels, str) else None if labels is None else [str(x) for x in labels]


def _shape(shape: Any) -> tuple[int, ...] | None:
    from lamb.convert.preprocess import parse_input_shape

    return parse_input_shape(shape) if isinstance(shape, str) else None if shape is None else tuple(int(x) for x in shape)


def _uncalibrated_modes(source: Path, runtime_lib_name: str | None) -> list[str]:
    """``-q auto`` without calibration images: the modes of the library convert would use that need
    none (int8 cannot be judged)."""
    from lamb.convert.core import runtime_lib_for
    from lamb.source import open_source

    lib = runtime_lib_for(open_source(source), runtime_lib_name)
    return [m.name for m in lib.format.modes if not m.calibrated]


def _manifest_path(manifest: Any) -> Path | None:
    """A path as given, or the manifest of a step's result (``ConversionResult``, ``VerifyReport``)."""
    found = getattr(manifest, "manifest_path", manifest)
    return None if found is None else Path(found)


def _artifact_path(artifact: Any) -> Path | None:
    """A path as given, or the artifact of ``package``'s result."""
    found = getattr(artifact, "artifact", artifact)
    return None if found is None else Path(found)


def _source(model: Any, output: Any) -> tuple[Path, str]:
    """``model`` as a path: a path as given; a model in memory saved (atomically) beside the output
    by its source (``lamb.source.save_from_memory``), and the note that says where."""
    from lamb.source import save_from_memory

    if isinstance(model, (str, os.PathLike)):
        return Path(model), ""
    folder = Path(output) if output is not None and not Path(output).suffix else Path(output).parent if output else Path.cwd()
    path = save_from_memory(model, folder)
    return path, f"saved the model from memory as {path} (the manifest's source model)"
