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
from typing import Any, Iterator

import typer
from rich.console import Console

from lamb.errors import EXIT_CODES, LambError

app = typer.Typer(
    name="lamb",
    help=(
        "Turn a trained Keras image model into a TensorFlow Lite artifact that is proven to compute "
        "what the Keras model computes and to fit and run on AWS Lambda.\n\n"
        "Pipeline: lamb convert MODEL.h5 -> lamb verify -> lamb package -> lamb invoke / lamb serve.\n\n"
        "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

console = Console()
err_console = Console(stderr=True)

VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show TensorFlow's logs and full tracebacks.")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON (for scripts) instead of tables.")


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
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the .tflite [default: ./<model stem>.tflite]; the manifest goes beside it."),
    quantize: str = typer.Option("float32", "--quantize", "-q", help="float32 | float16 | dynamic | int8 (full-integer, needs --calibration)."),
    calibration: Path = typer.Option(None, "--calibration", help="Folder of representative images for --quantize int8 (~100 is plenty)."),
    int8_io: bool = typer.Option(False, "--int8-io", help="With --quantize int8: make the input and output int8 too (default: float32)."),
    input_shape: str = typer.Option(None, "--input-shape", help="Fix open input dimensions, e.g. 224,224,3 (without the batch dimension)."),
    preprocess: str = typer.Option(None, "--preprocess", help="Pixel preprocessing the model was trained with: xception (x/127.5-1), caffe, torch, scale (x/255), none [default: inferred]."),
    labels: str = typer.Option(None, "--labels", help="Class labels in output order, comma-separated: cat,dog,bird."),
    labels_file: Path = typer.Option(None, "--labels-file", help="Text file with one class label per line, in output order."),
    allow_flex: bool = typer.Option(False, "--allow-flex", help="Convert ops with no TFLite builtin as TF Select (Flex) ops; the slim Lambda runtimes cannot run the result."),
    allow_unsafe_lambda: bool = typer.Option(False, "--allow-unsafe-lambda", help="Load Lambda layers holding Python code (runs that code: only for files you trust)."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Convert a trained Keras model to TensorFlow Lite and write its manifest.

    Writes MODEL.tflite and MODEL.lamb.json (the manifest that `lamb verify` and `lamb package`
    read) into the current directory, or beside --output. Keras-2 .h5 files that Keras 3 cannot
    read (TFOpLambda, e.g. preprocess_input inside the model) are loaded with tf_keras
    automatically. Nothing is written if anything fails.

    Examples:

      lamb convert model.h5 --labels cat,dog,bird

      lamb convert model.h5 -q int8 --calibration images/ --preprocess xception
    """
    with handle_errors(verbose):
        from lamb.convert import convert_model
        from lamb.convert.preprocess import parse_input_shape, parse_labels_option

        result = convert_model(
            model,
            output,
            quantize=quantize,
            calibration=calibration,
            input_shape=parse_input_shape(input_shape),
            allow_flex=allow_flex,
            preprocess=preprocess,
            labels=parse_labels_option(labels),
            labels_file=labels_file,
            allow_unsafe_lambda=allow_unsafe_lambda,
            int8_io=int8_io,
        )
    if as_json:
        print_json(result)
        return
    from lamb.convert.report import summary_table

    console.print(summary_table(result))
    for note in result.notes:
        console.print(f"[dim]note:[/] {note}", highlight=False)
