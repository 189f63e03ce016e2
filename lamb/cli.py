"""lamb's command line: parse, call one library function, render its result.

No business logic lives here, and nothing heavy is imported at module level, so ``lamb --help``
stays fast. Errors: every ``LambError`` becomes one line (plus a hint) and its exit code;
``--verbose`` shows the traceback and TensorFlow's own logs as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import typer
from rich.console import Console

from lamb import quantization, tflite_lib
from lamb.errors import EXIT_CODES, InputError, LambError

app = typer.Typer(
    name="lamb",
    help=(
        "Turn a trained Keras image model into a TensorFlow Lite artifact that is proven to compute "
        "what the Keras model computes and to fit and run on AWS Lambda.\n\n"
        "Pipeline: lamb convert MODEL.h5 -> lamb verify -> lamb package -> lamb invoke / lamb serve -> lamb deploy.\n\n"
        "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)

VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show TensorFlow's logs and full tracebacks.")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON (for scripts) instead of tables.")
# invoke and serve run the same function the same way:
EnvOpt = typer.Option(None, "--env", help="KEY=VALUE for the function's environment (repeatable), e.g. LAMB_ALLOW_PRIVATE_URLS=1.")
NoStandInOpt = typer.Option(
    False, "--no-stand-in", help="Fail instead of running a host stand-in when this machine cannot load the artifact's wheels."
)


def _help_from_tables(**fields: str) -> Callable[[F], F]:
    """Fill ``{name}`` in a command's docstring (its --help) from lamb's tables, as EXIT_CODES fills the app's."""

    def fill(command: F) -> F:
        doc = command.__doc__ or ""
        for name, text in fields.items():
            doc = doc.replace("{" + name + "}", text)
        command.__doc__ = doc
        return command

    return fill


@contextlib.contextmanager
def handle_errors(verbose: bool) -> Iterator[None]:
    """Turn a LambError into one line on stderr and its exit code."""
    from lamb import tflog

    tflog.configure(verbose)
    try:
        yield
    except LambError as exc:
        if verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]; nothing was left half-written")
        raise typer.Exit(130) from None


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths and numpy scalars -> plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def print_json(result: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print lamb's version and exit.", is_eager=True),
) -> None:
    if version:
        from lamb import __version__

        console.print(f"lamb {__version__}")
        raise typer.Exit(0)


# -- convert -------------------------------------------------------------------------------------


@app.command()
def convert(
    model: Path = typer.Argument(..., help="Keras model: a .h5 (Keras 3 or tf.keras), a .keras file, or a SavedModel folder."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the .tflite, or a folder for it \\[default: ./<model stem>.tflite]; the manifest goes beside it."),
    quantize: str = typer.Option("float32", "--quantize", "-q", help=f"{quantization.choices_help()} | auto (run `lamb compare` and keep the mode it recommends)."),
    images: Path = typer.Option(None, "--images", help="With --quantize auto: real images to verify each mode on (besides 32 random samples)."),
    calibration: Path = typer.Option(None, "--calibration", help="Folder of representative images for --quantize int8 (~100 is plenty)."),
    int8_io: bool = typer.Option(False, "--int8-io", help="With --quantize int8: make the input and output int8 too (default: float32)."),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix open input dimensions, e.g. 224,224,3 (without the batch dimension)."),
    preprocess: str = typer.Option(None, "--preprocess", help="Pixel preprocessing the model was trained with: xception (x/127.5-1), caffe, torch, scale (x/255), none \\[default: inferred from the model, else none]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated: cat,dog,bird."),
    labels_file: Path = typer.Option(None, "--labels-file", help="Text file with one class label per line, in output order."),
    allow_flex: bool = typer.Option(False, "--allow-flex", help="Convert ops with no TFLite builtin as TF Select (Flex) ops; the slim Lambda runtimes cannot run the result."),
    allow_unsafe_lambda: bool = typer.Option(False, "--allow-unsafe-lambda", help="Load Lambda layers holding Python code (runs that code: only for files you trust)."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Convert a trained Keras model to TensorFlow Lite and write its manifest.

    Writes MODEL.tflite and MODEL.lamb.json (the manifest `lamb verify` and `lamb package` read) into the current directory, or beside --output. Nothing is written if anything fails.

    Keras-2 .h5 files that Keras 3 cannot read (TFOpLambda: preprocess_input or other TensorFlow ops inside the model) are loaded with tf_keras automatically; the summary says which loader was used.

    Examples:

      lamb convert model.h5 --labels cat,dog,bird

      lamb convert model.h5 -q int8 --calibration images/ --preprocess xception
    """
    with handle_errors(verbose):
        from lamb import progress
        from lamb.convert import convert_model
        from lamb.convert.preprocess import parse_input_shape, parse_labels_option, read_labels

        if quantize == "auto":
            from lamb.compare.core import convert_auto
            from lamb.compare.render import render as render_comparison

            if int8_io or allow_flex:
                raise InputError("--quantize auto compares the modes lamb ships as they are", "drop --int8-io/--allow-flex, or pick a mode")
            result, comparison = convert_auto(
                model, output, images=images, calibration=calibration, input_shape=parse_input_shape(input_shape),
                preprocess=preprocess, labels=parse_labels_option(labels), labels_file=labels_file,
                allow_unsafe_lambda=allow_unsafe_lambda,
                modes=None if calibration is not None else [m.name for m in quantization.MODES if not m.calibrated],
            )
            if not as_json:
                for renderable in render_comparison(comparison):
                    console.print(renderable, highlight=False)
        elif images is not None:
            raise InputError("--images only applies to --quantize auto", "verify with `lamb verify --images DIR`")
        else:
            with progress.for_terminal(as_json):
                result = convert_model(
                    model, output, quantize=quantize, calibration=calibration, input_shape=parse_input_shape(input_shape),
                    allow_flex=allow_flex, preprocess=preprocess, labels=read_labels(parse_labels_option(labels), labels_file),
                    allow_unsafe_lambda=allow_unsafe_lambda, int8_io=int8_io,
                )
    if as_json:
        print_json(result)
        return
    from lamb.convert.report import summary_table

    console.print(summary_table(result))
    for note in result.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)


# -- verify --------------------------------------------------------------------------------------


@app.command()
@_help_from_tables(
    tolerances=quantization.tolerances_help(),
    calibrated=" and ".join(m.name for m in quantization.MODES if m.calibrated),
)
def verify(
    keras_model: Path = typer.Argument(None, help="The Keras model (.h5, .keras or SavedModel folder) \\[default: from the manifest]."),
    tflite_model: Path = typer.Argument(None, help="The .tflite converted from it \\[default: from the manifest]."),
    manifest: Path = typer.Option(None, "--manifest", "-m", help="The manifest to read and update \\[default: the *.lamb.json in the current directory, or beside TFLITE_MODEL]."),
    samples: int = typer.Option(None, "--samples", "-n", help="Seeded random inputs: uniform pixels in [0, 255] through the preprocessing \\[default: 32, or 0 with --images]."),
    images: Path = typer.Option(None, "--images", help="Folder of real images (searched recursively), decoded and preprocessed exactly as the Lambda handler does; combinable with --samples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    preprocess: str = typer.Option(None, "--preprocess", help="xception | caffe | torch | scale | none \\[default: the manifest's; none without one]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated (names classes in failure messages) \\[default: the manifest's]."),
    quantize: str = typer.Option(None, "--quantize", help=f"Whose default tolerances apply: {' | '.join(quantization.NAMES)} \\[default: the manifest's, else inferred from the .tflite]."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"Run the .tflite on {' or '.join(tflite_lib.NAMES)} \\[default: the library the artifact ships]. {tflite_lib.isolation_help()}"),
    runtime: str = typer.Option(None, "--runtime", help="Lambda runtime whose shipped library to verify on, e.g. python3.12 \\[default: the newest]."),
    atol: float = typer.Option(None, "--atol", help="Absolute error allowed on top of --rtol: values pass when max|keras - tflite| <= atol + rtol x range(keras output)."),
    rtol: float = typer.Option(None, "--rtol", help="Error allowed relative to the range of the Keras output (0.01 = 1% of the range)."),
    min_top1: float = typer.Option(None, "--min-top1", help="Least fraction of samples whose top-1 class must agree (classifier outputs: shape (N, C), C > 1)."),
    min_cosine: float = typer.Option(None, "--min-cosine", help="Least mean cosine similarity between the two models' outputs."),
    top_k: int = typer.Option(None, "--top-k", help="Also check the overlap of the top-k classes (must reach --min-top1 unless set otherwise)."),
    allow_unsafe_lambda: bool = typer.Option(False, "--allow-unsafe-lambda", help="Load Lambda layers holding Python code (runs that code: only for files you trust)."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Prove the .tflite computes what the Keras model computes, on the runtime Lambda will run.

    Runs both models on the same inputs and compares every output: max absolute error, max error relative to the Keras output's range, mean absolute error, cosine similarity, and for classifiers top-1 agreement (top-k with --top-k). The .tflite runs on the TFLite library the artifact ships (not TensorFlow's interpreter), in its own process; a library that cannot load the model is a failure with the reason.

    Tolerances default per quantization mode, set from what each mode measurably achieves on trained models and real images (atol / rtol / min-cosine / min-top1): {tolerances}. The top-1 agreement's 95 % lower bound (Wilson) is shown beside it: when the rate passes but the bound does not, the verdict is a pass with a warning saying how many inputs would settle it. A {calibrated} model checked on random pixels alone is "not enough evidence" (exit code 1): verify it with --images.

    The verdict is written into the manifest, so `lamb package` refuses a model that failed or was never verified. Exit code 0: pass; 1: fail.

    Examples:

      lamb verify

      lamb verify --images samples/ --samples 100 --top-k 3

      lamb verify model.h5 model.tflite --preprocess xception --runtime-lib tflite-runtime
    """
    with handle_errors(verbose):
        from lamb import progress
        from lamb.convert.preprocess import parse_labels_option
        from lamb.verify import ToleranceOverrides, VerifyInputs, render_report, verify_model

        with progress.for_terminal(as_json):
            report = verify_model(
                keras_model,
                tflite_model,
                manifest_path=manifest,
                inputs=VerifyInputs(samples=samples, images=images, seed=seed, preprocess=preprocess),
                tolerances=ToleranceOverrides(atol=atol, rtol=rtol, min_top1=min_top1, min_cosine=min_cosine, top_k=top_k),
                labels=parse_labels_option(labels),
                quantization=quantize,
                tflite_lib=runtime_lib,
                runtime=runtime,
                allow_unsafe_lambda=allow_unsafe_lambda,
            )
        if as_json:
            print_json(report)
        else:
            for renderable in render_report(report):
                console.print(renderable, highlight=False)
            for note in report.notes:
                console.print(f"[dim]note:[/] {note}", highlight=False)
            if report.recorded:
                console.print(f"[dim]recorded in {report.manifest_path}[/]", highlight=False)
        report.raise_for_failure()


# -- compare -------------------------------------------------------------------------------------


@app.command()
def compare(
    model: Path = typer.Argument(..., help="Keras model: a .h5, a .keras file, or a SavedModel folder."),
    images: Path = typer.Option(None, "--images", help="Folder of real images to verify every mode on (recommended: int8 needs them to pass)."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration images for int8; without them int8 is skipped."),
    samples: int = typer.Option(32, "--samples", "-n", help="Seeded random inputs, besides --images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    runtime: str = typer.Option(None, "--runtime", "-r", help="Lambda runtime: python3.10 ... python3.14 \\[default: the newest]."),
    arch: str = typer.Option(None, "--arch", "-a", help="Lambda architecture: x86_64 | arm64 (sets the prices) \\[default: x86_64]."),
    memory: str = typer.Option(None, "--memory", help="Memory settings to price, in MB, comma-separated \\[default: 512,1024,1769,3008]."),
    modes: str = typer.Option(None, "--modes", help="Modes to compare, comma-separated \\[default: float32,float16,dynamic,int8]."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help="Verify on ai-edge-litert or tflite-runtime \\[default: what the target ships]."),
    preprocess: str = typer.Option(None, "--preprocess", help="xception | caffe | torch | scale | none \\[default: inferred, as lamb convert does]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated."),
    labels_file: Path = typer.Option(None, "--labels-file", help="Text file with one class label per line."),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix open input dimensions, e.g. 224,224,3."),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="Advise the cheapest memory meeting this request time \\[default: where cost stops being flat]."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Keep every converted model (and its manifest, verdict recorded) in this folder."),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG of error against warm time, marker size by zip size (needs the [plot] extra)."),
    allow_unsafe_lambda: bool = typer.Option(False, "--allow-unsafe-lambda", help="Load Lambda layers holding Python code (only for files you trust)."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Choose the quantization to ship: every mode's error, size, latency and Lambda cost, side by side.

    Loads and runs the Keras model once; converts it in each mode (int8 only with --calibration) and verifies each against the same reference outputs on the TFLite library the target ships, with the mode's default tolerances. Projects each artifact's zip from the target's real, slimmed dependencies; times the shipped handler (cold start, and the warm median at 1 thread) in fresh processes; prices a million requests at each --memory (1 vCPU per 1,769 MB; us-east-1 on-demand prices: an estimate from local timing). A mode that fails to convert, or that the library cannot run, is a marked row.

    Recommends the cheapest mode that passes and fits Lambda's 50 MB direct upload, else the cheapest that passes, and the memory setting for it. Exit code 0 with a recommendation, 1 when no mode passed.

    Examples:

      lamb compare model.h5 --images samples/

      lamb compare model.h5 --images samples/ --calibration calib/ --memory 1024,1769 --plot compare.png

      lamb compare model.h5 --modes float32,dynamic --runtime python3.12 --arch arm64 --json
    """
    with handle_errors(verbose):
        from lamb.compare import DEFAULT_MEMORY_MB, compare_models
        from lamb.compare.render import check_plot, render, write_plot
        from lamb.convert.preprocess import parse_input_shape, parse_labels_option
        from lamb.cost import parse_memory_list
        from lamb.errors import VerificationFailed

        check_plot(plot)
        status = contextlib.nullcontext() if as_json else err_console.status("lamb compare")
        with status as shown:
            report = compare_models(
                model, images=images, calibration=calibration, samples=samples, seed=seed, runtime=runtime, arch=arch,
                memory=parse_memory_list(memory, DEFAULT_MEMORY_MB), modes=modes, runtime_lib=runtime_lib,
                preprocess=preprocess, labels=parse_labels_option(labels), labels_file=labels_file,
                input_shape=parse_input_shape(input_shape), allow_unsafe_lambda=allow_unsafe_lambda,
                max_latency_ms=max_latency_ms, output_dir=output_dir, progress=shown.update if shown is not None else None,
            )
        if plot is not None:
            write_plot(report, plot)
        if as_json:
            print_json(report)
        else:
            for renderable in render(report):
                console.print(renderable, highlight=False)
            if plot is not None:
                console.print(f"[dim]plot written to {plot}[/]", highlight=False)
        if report.recommended is None:
            raise VerificationFailed(f"no recommendation: {report.why}", "see each mode's row; --images with real images gives int8 a fair test")


# -- package -------------------------------------------------------------------------------------


@app.command()
def package(
    manifest: Path = typer.Argument(None, help="The manifest (*.lamb.json), its .tflite, or their folder \\[default: the *.lamb.json in the current directory]."),
    runtime: str = typer.Option(None, "--runtime", "-r", help="Lambda runtime: python3.10 ... python3.14 \\[default: the newest]."),
    arch: str = typer.Option("x86_64", "--arch", "-a", help="Lambda architecture: x86_64 | arm64."),
    fmt: str = typer.Option("zip", "--format", "-f", help="zip (upload to Lambda, or S3 over 50 MB) | image (a Docker build context for a container image)."),
    output: Path = typer.Option(None, "--output", "-o", help="The .zip (or image folder) to write \\[default: ./<model>-<runtime>-<arch>.zip]. Replaced atomically."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"{' | '.join(tflite_lib.NAMES)} \\[default: what verify ran the model on, if it has wheels for the target]."),
    wheelhouse: Path = typer.Option(None, "--wheelhouse", help="Build offline from this folder of wheels (pip --no-index --find-links)."),
    no_slim: bool = typer.Option(False, "--no-slim", help="Keep everything the wheels install (tests, stubs, GPU/NPU accelerators, tools)."),
    max_size: str = typer.Option(None, "--max-size", help="Your own budget for the zip (the unzipped context with --format image), e.g. 40MB; exceeding it fails."),
    skip_verify: bool = typer.Option(False, "--skip-verify", help="Package a model that `lamb verify` did not pass (or changed since)."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke run of the built function."),
    no_bytecode: bool = typer.Option(False, "--no-bytecode", help="Ship no .pyc files (by default they are compiled with the target's Python when this machine has it, so cold starts skip compiling)."),
    sample_image: Path = typer.Option(None, "--sample-image", help="Image the smoke run sends \\[default: a seeded synthetic JPEG]."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a Lambda deployment artifact for a verified model, sized and smoke-tested.

    Resolves wheels with pip for the target runtime and arch only (its manylinux tags and CPython version, binary wheels only; downloads are cached in ~/.cache/lamb or $LAMB_CACHE_DIR), picks the newest TFLite library release whose wheel passes the ELF audit for the target (refused before building when none does), removes what the handler never loads (each rule is reported with the bytes it saved), and writes a deterministic zip (same inputs, same sha256) with lambda_function.py, model.tflite and lamb.json at its root. With --format image it writes a Docker build context instead: a Dockerfile on public.ecr.aws/lambda/python, a pinned requirements.txt, and a README with the build and push commands.

    Every ELF file that ships (for an image: its pinned wheels) is audited against the target's own system, as data: versioned symbols (GLIBC_, GLIBCXX_, CXXABI_, GCC_) against its glibc and libstdc++, and every needed library resolved inside the artifact or in its base system. A smoke run on this machine cannot see those. Then it checks Lambda's limits (50 MB zipped for direct upload: a warning with advice; 250 MB unzipped or a 10 GB image: a failure, exit code 8) and runs the built handler on a sample image in a fresh Python whose import path is only the artifact and the standard library, reporting cold-start and inference times. When this machine cannot run the target's wheels (another Python version or arch), the same package versions are built for this machine and run instead, labelled as a stand-in. Nothing replaces the previous artifact unless every step passed.

    Examples:

      lamb package

      lamb package --runtime python3.12 --arch arm64 -o function.zip

      lamb package --format image --runtime python3.12
    """
    with handle_errors(verbose):
        from lamb import progress
        from lamb.package import build_package
        from lamb.package.report import render

        with progress.for_terminal(as_json) as shown:
            report = build_package(
                manifest,
                runtime=runtime,
                arch=arch,
                fmt=fmt,
                output=output,
                runtime_lib_name=runtime_lib,
                wheelhouse=wheelhouse,
                slim_deps=not no_slim,
                max_size=max_size,
                skip_verify=skip_verify,
                smoke=not no_smoke,
                compile_bytecode=not no_bytecode,
                sample_image=sample_image,
                progress=shown,
            )
    if as_json:
        print_json(report)
        return
    for renderable in render(report, verbose):
        console.print(renderable, highlight=False)


# -- invoke --------------------------------------------------------------------------------------


@app.command()
def invoke(
    artifact: Path = typer.Argument(None, help="The .zip or image folder `lamb package` built \\[default: the newest one in the current directory]."),
    event: Path = typer.Option(None, "--event", "-e", help="A JSON event file (any event, as in the Lambda console's Test tab; - for stdin)."),
    image: Path = typer.Option(None, "--image", "-i", help="An image file, sent as {\"image\": \"<base64>\"}."),
    url: str = typer.Option(None, "--url", "-u", help="An image URL, sent as {\"url\": ...} (the course's format)."),
    repeat: int = typer.Option(0, "--repeat", "-n", help="Invoke N more times on the warm function and report p50/p95."),
    memory: int = typer.Option(1024, "--memory", help="The function's memory setting in MB (128-10240): sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE and the kill limit."),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="Recommend the cheapest memory setting whose projected request time meets this \\[default: where cost stops being flat, 1,769 MB]."),
    timeout: float = typer.Option(30.0, "--timeout", help="The function's timeout in seconds."),
    env: list[str] = EnvOpt,
    python: str = typer.Option(None, "--python", help="The interpreter to run it with \\[default: lamb's own Python, or pythonX.Y on PATH for an artifact built for X.Y]."),
    no_stand_in: bool = NoStandInOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Run the built artifact locally the way Lambda runs it: no Docker.

    Unpacks the artifact to a temp folder and starts a fresh Python whose import path is only the artifact and the standard library (python -I -S), with Lambda's environment variables, the artifact as working directory, a private /tmp and a context object. The handler is imported once (the cold start) and invoked with the event. Prints the handler's response exactly as returned (its own 400s included), init and invoke ms, peak memory, and the memory setting to use. An unhandled exception, a timeout or a crash is shown as Lambda reports it, exit code 9.

    Local CPU is not Lambda's: below 1,769 MB a function gets a fraction of a vCPU. The recommended memory weighs Lambda cost against latency from the measured time (an estimate): where cost stops being flat, or the cheapest setting meeting --max-latency-ms, never below what the peak RSS needs.

    Examples:

      lamb invoke --image cat.jpg

      lamb invoke function.zip --url http://127.0.0.1:8000/cat.jpg --env LAMB_ALLOW_PRIVATE_URLS=1

      lamb invoke --event apigw-event.json --repeat 20 --json
    """
    with handle_errors(verbose):
        from lamb.errors import ArtifactError
        from lamb import progress
        from lamb.invoke import invoke_artifact, parse_env, render
        from lamb.local import RunSettings

        settings = RunSettings(memory_mb=memory, timeout_s=timeout, env=parse_env(env), python=python, stand_in=not no_stand_in)
        with progress.for_terminal(as_json) as shown:
            report = invoke_artifact(
                artifact, event_file=event, image=image, url=url, repeat=repeat, settings=settings,
                max_latency_ms=max_latency_ms, progress=shown,
            )
    if as_json:
        print_json(report)
    else:
        for renderable in render(report, verbose):
            console.print(renderable, highlight=False)
    if report.error is not None:
        raise typer.Exit(ArtifactError.exit_code)


# -- serve ---------------------------------------------------------------------------------------


@app.command()
def serve(
    artifact: Path = typer.Argument(None, help="The .zip or image folder `lamb package` built \\[default: the newest one in the current directory]."),
    port: int = typer.Option(9000, "--port", "-p", help="Port on 127.0.0.1 (9000 is what the course's Docker setup maps)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Warm function processes; each serves one request at a time, the rest queue."),
    memory: int = typer.Option(1024, "--memory", help="Each function's memory setting in MB (128-10240)."),
    timeout: float = typer.Option(30.0, "--timeout", help="Each invocation's timeout in seconds."),
    env: list[str] = EnvOpt,
    python: str = typer.Option(None, "--python", help="The interpreter to run it with \\[default: as for lamb invoke]."),
    no_stand_in: bool = NoStandInOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve the artifact on the Lambda Runtime Interface Emulator's endpoint, without Docker.

    Answers POST http://127.0.0.1:PORT/2015-03-31/functions/function/invocations with the handler's JSON, so a client written for the course's `docker run -p 9000:8080` setup works unchanged. The handler stays warm in --workers processes (each like one Lambda execution environment: python -I -S, the artifact only); concurrent requests are served or queued, none dropped. Ctrl-C stops it and leaves no process behind; a summary follows.

    Examples:

      lamb serve

      lamb serve function.zip --port 8080 --workers 2 --env LAMB_ALLOW_PRIVATE_URLS=1
    """
    with handle_errors(verbose):
        from lamb.invoke import parse_env
        from lamb.local import RunSettings
        from lamb.serve import serve_artifact

        def ready(server) -> None:
            if as_json:
                return
            inits = ", ".join(f"{ms:,.0f}" for ms in server.report.init_ms)
            console.print(f"serving [bold]{server.report.artifact}[/] with {server.n_workers} worker(s) (cold starts: {inits} ms)", highlight=False)
            for failure in server.init_failures:
                console.print(f"[bold red]init failed:[/] {failure.error.get('errorType')}: {failure.error.get('errorMessage')}", highlight=False)
            for note in server.report.notes:
                console.print(f"[dim]note:[/] {note}", highlight=False)
            console.print(f"POST JSON events to [bold]{server.url}[/]", highlight=False)
            console.print(f"""[dim]e.g. curl -s -X POST {server.url} -d '{{"url": "https://.../image.jpg"}}'   Ctrl-C to stop[/]""", highlight=False)

        settings = RunSettings(memory_mb=memory, timeout_s=timeout, env=parse_env(env), python=python, stand_in=not no_stand_in)
        report = serve_artifact(
            artifact, port=port, workers=workers, settings=settings, on_ready=ready,
        )
    if as_json:
        print_json(report)
        return
    p50 = "-" if report.p50_ms is None else f"{report.p50_ms:,.1f} ms"
    p95 = "-" if report.p95_ms is None else f"{report.p95_ms:,.1f} ms"
    console.print(
        f"stopped after {report.seconds:,.0f} s: {report.requests} requests ({report.unhandled_errors} unhandled errors, "
        f"{report.rejected} rejected), latency p50 {p50}, p95 {p95}; no processes left",
        highlight=False,
    )


# -- deploy --------------------------------------------------------------------------------------


@app.command()
def deploy(
    artifact: Path = typer.Argument(None, help="The .zip or image folder `lamb package` built \\[default: the newest one in the current directory]."),
    function_name: str = typer.Option(..., "--function-name", "-n", help="The Lambda function to create or update."),
    region: str = typer.Option(None, "--region", help="AWS region \\[default: AWS_REGION or your profile's]."),
    profile: str = typer.Option(None, "--profile", help="AWS profile from ~/.aws/config \\[default: AWS_PROFILE or default]."),
    role: str = typer.Option(None, "--role", help="ARN of an existing execution role (needed to create a function, unless --create-role)."),
    create_role: bool = typer.Option(False, "--create-role", help="Create (or reuse) FUNCTION-role: trusts lambda.amazonaws.com, basic execution policy (CloudWatch Logs) only."),
    s3_bucket: str = typer.Option(None, "--s3-bucket", help="Bucket for zips over the 50 MB direct-upload limit \\[default: lamb-artifacts-ACCOUNT-REGION, created if missing]."),
    memory: int = typer.Option(None, "--memory", help="Memory in MB, 128-10,240 \\[default: from the artifact's measured peak, as lamb invoke advises]."),
    timeout: int = typer.Option(None, "--timeout", help="Timeout in seconds, 1-900 \\[default: from the artifact's measured cold start]."),
    url: str = typer.Option("none", "--url", help="Function URL: none | iam (signed requests) | public (anyone; adds both invoke permissions)."),
    alias: str = typer.Option(None, "--alias", help="Point this alias at the published version (and the URL at the alias)."),
    image_uri: str = typer.Option(None, "--image-uri", help="For an image artifact: the image already pushed to ECR (see --plan for the build and push)."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="Send every AWS call here (a local fake such as moto's server)."),
    plan: bool = typer.Option(False, "--plan", help="Print what would be created or updated and every command, without calling AWS."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip invoking the deployed function with a sample image."),
    sample_image: Path = typer.Option(None, "--sample-image", help="Image the smoke test sends \\[default: a seeded synthetic JPEG]."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Put the packaged artifact on AWS Lambda, and prove the deployed code is the built code.

    Runtime, architecture, package type and handler come from the artifact's own record; memory and timeout from its measured figures (override with --memory/--timeout). A zip whose base64 fits Lambda's request limit (69,905,067 bytes, i.e. 50 MB) is uploaded directly; a larger one goes to S3 under its sha256 and is uploaded only once. Over 250 MB unzipped is refused before any upload, as is changing an existing function's package type or architecture.

    An existing function gets its code updated, then its configuration, each waited for; a new one is created (retrying while a fresh role propagates). The deployed CodeSha256, runtime, arch and handler must equal the artifact's, or deploy fails. A version is published only when something changed, --alias is moved to it, and the smoke test invokes that version once: it fails on FunctionError, not only on the status code.

    Writes ARTIFACT-STEM.deploy.json (ARN, version, alias, URL, region, upload path, both sha256s) and template.yaml (the same function in CloudFormation) beside the artifact. AWS refusing or being unreachable exits with code 10 and one line naming what to do (e.g. the missing IAM action).

    Examples:

      lamb deploy --function-name clothes --create-role --url public

      lamb deploy model-python3.12-x86_64.zip -n clothes --role arn:aws:iam::123456789012:role/lambda --alias live

      lamb deploy model-python3.12-x86_64-image -n clothes --plan
    """
    with handle_errors(verbose):
        from lamb.deploy import DeployOptions, deploy_artifact
        from lamb.deploy.report import render

        options = DeployOptions(
            function_name=function_name, region=region, profile=profile, role_arn=role, create_role=create_role,
            s3_bucket=s3_bucket, memory_mb=memory, timeout_s=timeout, url=url, alias=alias, endpoint_url=endpoint_url,
            image_uri=image_uri, smoke=not no_smoke, sample_image=sample_image,
        )
        report = deploy_artifact(artifact, options, plan_only=plan)
        if as_json:
            print_json(report)
        else:
            for renderable in render(report, verbose):
                console.print(renderable, highlight=False, soft_wrap=True)  # each command stays on one line, to copy
        report.raise_for_failure()
