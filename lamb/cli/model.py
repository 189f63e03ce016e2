"""The commands on the model: ``lamb convert``, ``lamb verify`` and ``lamb compare``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from lamb import quantization, runtime_lib
from lamb.cli.common import (
    AllowUnsafeLambdaOpt,
    JsonOpt,
    RuntimeOpt,
    VerboseOpt,
    app,
    console,
    err_console,
    handle_errors,
    help_from_tables,
    print_json,
)
from lamb.manifest import HEADS, PREPROCESS_MODES
from lamb.markup import plain
from lamb.targets import default_runtime, runtime_names

# The default runtime library's model format names the files in --help; every library is listed.
_DEFAULT = runtime_lib.default()
_SUFFIX = _DEFAULT.format.suffix
_LIBS = " | ".join(runtime_lib.names())
_MODES = _DEFAULT.format.modes

# -- convert -------------------------------------------------------------------------------------


PREPROCESS_CHOICES = " | ".join(PREPROCESS_MODES)  # the manifest's modes, which the shipped handler implements
HEAD_CHOICES = " | ".join(HEADS)

@app.command()
@help_from_tables(suffix=_SUFFIX, default_lib=_DEFAULT.name)
def convert(
    model: Path = typer.Argument(..., help="The source model: a Keras .h5 (Keras 3 or tf.keras) or .keras file, a SavedModel folder, or an exported .onnx (PyTorch: torch.onnx.export), which runs as it is."),
    output: Path = typer.Option(None, "--output", "-o", help=f"Where to write the converted model, or a folder for it \\[default: ./<model stem>{_SUFFIX}, or the --runtime-lib's format; a quantized .onnx beside its source: ./<stem>.<mode>.onnx]; the manifest (and an .onnx's external data) goes beside it."),
    quantize: str = typer.Option("float32", "--quantize", "-q", help=f"{quantization.choices_help(_MODES)} | auto (run `lamb compare` on the --runtime-lib and keep the mode it recommends)."),
    images: Path = typer.Option(None, "--images", help="With --quantize auto: real images to verify each mode on (besides 32 random samples)."),
    labeled_images: Path = typer.Option(None, "--labeled-images", help="With --quantize auto: labelled images each mode is judged on by its accuracy against the source model's (and int8 calibrated on, without --calibration); see `lamb compare --help`."),
    calibration: Path = typer.Option(None, "--calibration", help="Folder of representative images for --quantize int8 (~100 is plenty)."),
    integer_io: bool = typer.Option(
        False, "--integer-io", "--int8-io",
        help=f"With --quantize {' or '.join(m.name for m in _MODES if m.integer_io)}: the model's input and output in the mode's integer type too (default: float32). --int8-io is the old name.",
    ),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix open input dimensions in the model's own layout, without the batch dimension: 224,224,3 (channels last), 3,224,224 (channels first, PyTorch's), or just 224,224."),
    preprocess: str = typer.Option(None, "--preprocess", help=f"Pixel preprocessing the model was trained with: {PREPROCESS_CHOICES} (tf, Keras's name, is xception) \\[default: inferred from the model, else none, said in a warning that `lamb package` enforces]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated: cat,dog,bird."),
    labels_file: Path = typer.Option(None, "--labels-file", help="Text file with one class label per line, in output order."),
    head: str = typer.Option(None, "--head", help=f"What the model's output is: {HEAD_CHOICES}. A binary model (one output) takes two labels, negative first, and answers {{negative: 1 - p, positive: p}} \\[default: read off the graph (a final sigmoid or softmax), else logits, said in the summary]."),
    allow_flex: bool = typer.Option(False, "--allow-flex", help="Convert ops the runtime library has no builtin for as TF Select (Flex) ops; the slim runtime libraries cannot run the result."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"The runtime library to convert for: {_LIBS} (it sets the model format) \\[default: {_DEFAULT.name}]."),
    allow_unsafe_lambda: bool = AllowUnsafeLambdaOpt,
    allow_preprocess_mismatch: bool = typer.Option(False, "--allow-preprocess-mismatch", help="No warning when --preprocess differs from what the model shows (its keras.applications base, a leading layer that rescales)."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Convert a trained model (Keras, SavedModel or ONNX) for a runtime library and write its manifest.

    Writes MODEL{suffix} (for {default_lib}, the default runtime library) and MODEL.lamb.json (the manifest `lamb verify` and `lamb package` read) into the current directory, or beside --output. Nothing is written if anything fails. A model whose height or width is open is refused until --input-shape fixes it.

    Keras-2 .h5 files that Keras 3 cannot read (TFOpLambda: preprocess_input or other TensorFlow ops inside the model) are loaded with tf_keras automatically; the summary says which loader was used.

    An .onnx (PyTorch's torch.onnx.export, or any exporter) runs on ONNX Runtime as it is: float32 copies it (with its external weights, model.onnx.data, which ship beside it) into the current directory, or -o; another --quantize mode writes the quantized model, named MODEL.MODE.onnx where it would replace its source. A channel-first input (N, 3, H, W) is recorded as NCHW and fed so, and --preprocess torch (ImageNet mean/std) is inferred for it. A PyTorch .pt/.pth is refused: export it with torch.onnx.export first.

    Examples:

      lamb convert model.h5 --labels cat,dog,bird

      lamb convert model.h5 -q int8 --calibration images/ --preprocess xception

      lamb convert model.h5 --runtime-lib onnxruntime

      lamb convert model.onnx --preprocess torch --labels-file labels.txt
    """
    with handle_errors(verbose):
        from lamb import api, progress

        # -q auto shows lamb compare's tables, not convert's phases
        with progress.for_terminal(as_json or quantize == "auto"):
            result = api.convert(
                model, output, quantize=quantize, images=images, labeled_images=labeled_images, calibration=calibration,
                integer_io=integer_io, input_shape=input_shape, preprocess=preprocess, labels=labels, labels_file=labels_file,
                allow_flex=allow_flex, runtime_lib=runtime_lib, allow_unsafe_lambda=allow_unsafe_lambda, head=head,
            )
        if result.comparison is not None and not as_json:
            from lamb.compare.render import render as render_comparison

            for renderable in render_comparison(result.comparison):
                console.print(renderable, highlight=False)
    if as_json:
        print_json(result)
        return
    from lamb.convert.render import summary_table

    console.print(summary_table(result))
    for note in result.notes:
        console.print(f"[dim]note:[/] {plain(note)}", highlight=False)
    mismatch = [] if allow_preprocess_mismatch or result.preprocess_mismatch is None else [result.preprocess_mismatch]
    for warning in [*mismatch, *result.warnings]:
        console.print(f"[yellow]warning:[/] {plain(warning)}", highlight=False, soft_wrap=True)  # one line each, for grep


# -- verify --------------------------------------------------------------------------------------


@app.command()
@help_from_tables(
    tolerances=quantization.tolerances_help(_MODES),
    calibrated=" and ".join(m.name for m in _MODES if m.calibrated),
    suffix=_SUFFIX,
    other_lib=runtime_lib.names()[-1],
)
def verify(
    source_model: Path = typer.Argument(None, help="The source model (.h5, .keras, SavedModel folder or .onnx) \\[default: from the manifest]."),
    converted_model: Path = typer.Argument(None, help=f"The model converted from it ({_SUFFIX}, ...) \\[default: from the manifest]."),
    manifest: Path = typer.Option(None, "--manifest", "-m", help="The manifest to read and update \\[default: the *.lamb.json in the current directory, or beside CONVERTED_MODEL]."),
    samples: int = typer.Option(None, "--samples", "-n", help="Seeded random inputs: uniform pixels in [0, 255] through the preprocessing \\[default: 32, or 0 with --images]."),
    images: Path = typer.Option(None, "--images", help="Folder of real images (searched recursively), decoded and preprocessed exactly as the Lambda handler does; combinable with --samples."),
    labeled_images: Path = typer.Option(None, "--labeled-images", help="Folder of labelled images (a folder per class, or files named <label>-1.jpg / <label>_1.jpg): top-1/top-k accuracy with its 95 % bound, per class, in every preprocessing mode; a mode clearly better than the recorded one fails verify."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    preprocess: str = typer.Option(None, "--preprocess", help=f"{PREPROCESS_CHOICES} \\[default: the manifest's; none without one]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated (names classes in failure messages) \\[default: the manifest's]."),
    quantize: str = typer.Option(None, "--quantize", help=f"Whose default tolerances apply: {' | '.join(runtime_lib.mode_names())} \\[default: the manifest's, else inferred from the converted model]."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"Run the converted model on {_LIBS} \\[default: the library the artifact ships]. {runtime_lib.isolation_help()}"),
    runtime: str = typer.Option(None, "--runtime", help=f"Lambda runtime whose shipped library to verify on: {' | '.join(runtime_names())} \\[default: {default_runtime().name}]."),
    arch: str = typer.Option(None, "--arch", help="With --runtime: the architecture whose shipped release to verify on (x86_64 | arm64) \\[default: x86_64]."),
    atol: float = typer.Option(None, "--atol", help="Absolute error allowed on top of --rtol: values pass when max|source - converted| <= atol + rtol x range(source output)."),
    rtol: float = typer.Option(None, "--rtol", help="Error allowed relative to the range of the source output (0.01 = 1% of the range)."),
    min_top1: float = typer.Option(None, "--min-top1", help="Least fraction of samples whose top-1 class must agree (classifier outputs: shape (N, C), C > 1)."),
    min_cosine: float = typer.Option(None, "--min-cosine", help="Least mean cosine similarity between the two models' outputs."),
    top_k: int = typer.Option(None, "--top-k", help="Also check the overlap of the top-k classes (must reach --min-top1 unless set otherwise)."),
    allow_unsafe_lambda: bool = AllowUnsafeLambdaOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Prove the converted model computes what the source model computes, on the runtime library Lambda will run.

    Runs both models on the same inputs and compares every output: max absolute error, max error relative to the source output's range, mean absolute error, cosine similarity, and for classifiers top-1 agreement (top-k with --top-k). The converted model runs on the runtime library the artifact ships (not TensorFlow's interpreter), in its own process; a library that cannot load the model is a failure with the reason.

    Tolerances default per quantization mode, set from what each mode measurably achieves on trained models and real images (atol / rtol / min-cosine / min-top1): {tolerances}. The top-1 agreement's 95 % lower bound (Wilson) is shown beside it: when the rate passes but the bound does not, the verdict is a pass with a warning saying how many inputs would settle it. A {calibrated} model checked on random pixels alone is "not enough evidence" (exit code 1): verify it with --images.

    With --labeled-images (a folder per class, or <label>-1.jpg files) it also measures accuracy: each image decoded by the handler's own code, preprocessed in every mode and run on the converted model; top-1 and top-k with their Wilson 95 % interval, per class, a confusion table, and the source model's accuracy on the same inputs. It fails when another preprocessing mode is clearly better (the intervals do not overlap), naming it and the command that fixes it, or when the converted model is clearly more than a point below the source model.

    The verdict is written into the manifest, so `lamb package` refuses a model that failed or was never verified. Exit code 0: pass; 1: fail.

    Examples:

      lamb verify

      lamb verify --images samples/ --samples 100 --top-k 3

      lamb verify --labeled-images labelled/

      lamb verify model.h5 model{suffix} --preprocess xception --runtime-lib {other_lib}
    """
    with handle_errors(verbose):
        from lamb import api, progress
        from lamb.verify import render_report

        with progress.for_terminal(as_json):
            report = api.verify(
                source_model, converted_model, manifest=manifest, samples=samples, images=images, labeled_images=labeled_images,
                seed=seed, preprocess=preprocess, labels=labels, quantize=quantize, runtime_lib=runtime_lib, runtime=runtime,
                arch=arch, atol=atol, rtol=rtol, min_top1=min_top1, min_cosine=min_cosine, top_k=top_k,
                allow_unsafe_lambda=allow_unsafe_lambda,
            )
        if as_json:
            print_json(report)
        else:
            for renderable in render_report(report):
                console.print(renderable, highlight=False)
            for note in report.notes:
                console.print(f"[dim]note:[/] {plain(note)}", highlight=False)
            if report.recorded:
                console.print(f"[dim]recorded in {plain(report.manifest_path)}[/]", highlight=False)
        report.raise_for_failure()


# -- compare -------------------------------------------------------------------------------------


# What `lamb compare` compares by default: the first library of each model format (runtime_lib.formats()).
_PER_FORMAT = [runtime_lib.for_format(f) for f in runtime_lib.formats()]


@app.command()
@help_from_tables(
    per_format=", ".join(f"{libs[0].name} for {libs[0].format.title} model" for libs in _PER_FORMAT),
    later=" or ".join(lib.name for libs in _PER_FORMAT for lib in libs[1:]) or "none",
)
def compare(
    model: Path = typer.Argument(..., help="The source model: a Keras .h5 or .keras file, a SavedModel folder, or an exported .onnx (compared on ONNX Runtime's modes)."),
    images: Path = typer.Option(None, "--images", help="Folder of real images to verify every mode on (recommended: int8 needs them to pass)."),
    labeled_images: Path = typer.Option(None, "--labeled-images", help="Folder of labelled images (a folder per class, or <label>-1.jpg files): every mode judged by its top-1 accuracy against the source model's on them (within 1 point passes, whatever the agreement), and int8 calibrated on them without --calibration."),
    calibration: Path = typer.Option(None, "--calibration", help="Calibration images for int8; without them (or --labeled-images) int8 is skipped."),
    samples: int = typer.Option(32, "--samples", "-n", help="Seeded random inputs, besides --images."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random inputs."),
    runtime: str = RuntimeOpt,
    arch: str = typer.Option(None, "--arch", "-a", help="Lambda architecture: x86_64 | arm64 (sets the prices) \\[default: x86_64]."),
    memory: str = typer.Option(None, "--memory", help="Memory settings to price, in MB, comma-separated \\[default: 512,1024,1769,3008]."),
    modes: str = typer.Option(None, "--modes", help=f"Modes to compare, comma-separated \\[default: {','.join(_DEFAULT.format.mode_names)}]."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"Compare on this runtime library only: {_LIBS} \\[default: every one with a wheel for the target, one per model format]."),
    preprocess: str = typer.Option(None, "--preprocess", help=f"{PREPROCESS_CHOICES} \\[default: inferred, as lamb convert does]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated."),
    labels_file: Path = typer.Option(None, "--labels-file", help="Text file with one class label per line."),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix open input dimensions in the model's own layout: 224,224,3, 3,224,224 (channels first) or 224,224."),
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="Advise the cheapest memory meeting this request time \\[default: where cost stops being flat]."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Keep every converted model (and its manifest, verdict recorded) in this folder, a subfolder per runtime library."),
    plot: Path = typer.Option(None, "--plot", help="Write a PNG of error against warm time, marker size by zip size (needs the [plot] extra)."),
    allow_unsafe_lambda: bool = AllowUnsafeLambdaOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Choose the runtime library and quantization to ship: each one's error, size, latency and Lambda cost, side by side.

    Rows are (runtime library, mode). By default every runtime library that can run the model on the target is compared: for each model format, the first library in lamb's preference order with a wheel for the target ({per_format}); the others ({later}) only with --runtime-lib, or where the first has no wheel. Loads and runs the source model once (an .onnx: on ONNX's own reference evaluator); converts it for each library in each mode (int8 only with --calibration) and verifies each against the same reference outputs on that library as the target ships it, with the mode's default tolerances. Projects each artifact's zip from the target's real, slimmed dependencies; times the shipped handler (cold start, and the warm median at 1 thread) in fresh processes; prices a million requests at each --memory (1 vCPU per 1,769 MB; us-east-1 on-demand prices: an estimate from local timing). A mode that fails to convert, or that the library cannot run, is a marked row.

    Recommends the cheapest (runtime library, mode) that passes and fits Lambda's 50 MB direct upload, else the cheapest that passes, and the memory setting for it. Exit code 0 with a recommendation, 1 when no mode passed.

    Examples:

      lamb compare model.h5 --images samples/

      lamb compare model.h5 --images samples/ --calibration calib/ --memory 1024,1769 --plot compare.png

      lamb compare model.h5 --labeled-images labelled/

      lamb compare model.h5 --modes float32,dynamic --runtime python3.12 --arch arm64 --json

      lamb compare model.h5 --runtime-lib onnxruntime

      lamb compare model.onnx --labeled-images labelled/
    """
    with handle_errors(verbose):
        from lamb import api
        from lamb.compare.render import render

        status = contextlib.nullcontext() if as_json else err_console.status("lamb compare")
        with status as shown:
            report = api.compare(
                model, images=images, labeled_images=labeled_images, calibration=calibration, samples=samples, seed=seed,
                runtime=runtime, arch=arch, memory=memory, modes=modes, runtime_lib=runtime_lib, preprocess=preprocess,
                labels=labels, labels_file=labels_file, input_shape=input_shape, allow_unsafe_lambda=allow_unsafe_lambda,
                max_latency_ms=max_latency_ms, output_dir=output_dir, plot=plot, progress=(lambda text: shown.update(plain(text))) if shown is not None else None,
            )
        if as_json:
            print_json(report)
        else:
            for renderable in render(report):
                console.print(renderable, highlight=False)
            if plot is not None:
                console.print(f"[dim]plot written to {plain(plot)}[/]", highlight=False)
        report.raise_for_failure()
