"""The commands on the artifact: ``lamb package``, ``lamb invoke`` and ``lamb serve``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from lamb import runtime_lib
from lamb.cli.common import (
    EnvOpt,
    JsonOpt,
    MemoryOpt,
    NoStandInOpt,
    PythonOpt,
    RuntimeOpt,
    SampleImageOpt,
    TimeoutOpt,
    VerboseOpt,
    app,
    console,
    handle_errors,
    help_from_tables,
    print_json,
)

# -- package -------------------------------------------------------------------------------------


@app.command()
@help_from_tables(suffix=runtime_lib.default().format.suffix)
def package(
    manifest: Path = typer.Argument(None, help="The manifest (*.lamb.json), its converted model, or their folder \\[default: the *.lamb.json in the current directory]."),
    runtime: str = RuntimeOpt,
    arch: str = typer.Option("x86_64", "--arch", "-a", help="Lambda architecture: x86_64 | arm64."),
    fmt: str = typer.Option("zip", "--format", "-f", help="zip (upload to Lambda, or S3 over 50 MB) | image (a Docker build context for a container image)."),
    output: Path = typer.Option(None, "--output", "-o", help="The .zip (or image folder) to write \\[default: ./<model>-<runtime>-<arch>.zip]. Replaced atomically."),
    runtime_lib: str = typer.Option(None, "--runtime-lib", help=f"{' | '.join(runtime_lib.names())} \\[default: what verify ran the model on, if it has wheels for the target]."),
    wheelhouse: Path = typer.Option(None, "--wheelhouse", help="Build offline from this folder of wheels (pip --no-index --find-links)."),
    no_slim: bool = typer.Option(False, "--no-slim", help="Keep everything the wheels install (tests, stubs, GPU/NPU accelerators, tools)."),
    max_size: str = typer.Option(None, "--max-size", help="Your own budget for the zip (the unzipped context with --format image), e.g. 40MB; exceeding it fails."),
    skip_verify: bool = typer.Option(False, "--skip-verify", help="Package a model that `lamb verify` did not pass (or changed since)."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke run of the built function."),
    no_bytecode: bool = typer.Option(False, "--no-bytecode", help="Ship no .pyc files (by default they are compiled with the target's Python when this machine has it, so cold starts skip compiling)."),
    sample_image: Path = SampleImageOpt,
    handler: Path = typer.Option(None, "--handler", help="Your own entry module (e.g. my_function.py, defining lambda_handler) shipped as lambda_function.py instead of lamb's; it imports what it needs from lambkit, shipped beside it. Smoke-tested the same way."),
    requirement: list[str] = typer.Option(None, "--requirement", help="A package your --handler imports beyond lamb's (e.g. keras-image-helper), or a requirements file; repeatable. Resolved for the target, audited and slimmed like the rest."),
    base_image: str = typer.Option(None, "--base-image", help="With --format image: build on this image (one built on AWS's Lambda Python base image, e.g. a course's model image) instead of public.ecr.aws/lambda/python; the smoke step still runs in it."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Build a Lambda deployment artifact for a verified model, sized and smoke-tested.

    Resolves wheels with pip for the target runtime and arch only (its manylinux tags and CPython version, binary wheels only; downloads are cached in ~/.cache/lamb or $LAMB_CACHE_DIR), picks the newest runtime library release whose wheel passes the ELF audit for the target (refused before building when none does), removes what the handler never loads (each rule is reported with the bytes it saved), and writes a deterministic zip (same inputs, same sha256) with lambda_function.py, the model (under its format's name: model{suffix}) and lamb.json at its root. With --format image it writes a Docker build context instead: a Dockerfile on public.ecr.aws/lambda/python, a pinned requirements.txt, and a README with the build and push commands.

    Every ELF file that ships (for an image: its pinned wheels) is audited against the target's own system, as data: versioned symbols (GLIBC_, GLIBCXX_, CXXABI_, GCC_) against its glibc and libstdc++, and every needed library resolved inside the artifact or in its base system. A smoke run on this machine cannot see those. Then it checks Lambda's limits (50 MB zipped for direct upload: a warning with advice; 250 MB unzipped or a 10 GB image: a failure, exit code 8) and runs the built handler on a sample image in a fresh Python whose import path is only the artifact and the standard library, reporting cold-start and inference times. When this machine cannot run the target's wheels (another Python version or arch), the same package versions are built for this machine and run instead, labelled as a stand-in. Nothing replaces the previous artifact unless every step passed.

    Examples:

      lamb package

      lamb package --runtime python3.12 --arch arm64 -o function.zip

      lamb package --format image --runtime python3.12

      lamb package --handler my_function.py --requirement keras-image-helper

      lamb package --format image --base-image agrigorev/model-2025-hairstyle:v1
    """
    with handle_errors(verbose):
        from lamb import api, progress
        from lamb.package.render import render

        with progress.for_terminal(as_json) as shown:
            report = api.package(
                manifest, runtime=runtime, arch=arch, format=fmt, output=output, runtime_lib=runtime_lib, wheelhouse=wheelhouse,
                slim=not no_slim, max_size=max_size, skip_verify=skip_verify, smoke=not no_smoke, bytecode=not no_bytecode,
                sample_image=sample_image, handler=handler, requirements=requirement, base_image=base_image, progress=shown,
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
    memory: int = MemoryOpt,
    max_latency_ms: float = typer.Option(None, "--max-latency-ms", help="Recommend the cheapest memory setting whose projected request time meets this \\[default: where cost stops being flat, 1,769 MB]."),
    timeout: float = TimeoutOpt,
    env: list[str] = EnvOpt,
    python: str = PythonOpt,
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
        from lamb import api, progress
        from lamb.errors import ArtifactError
        from lamb.invoke.render import render

        with progress.for_terminal(as_json) as shown:
            report = api.invoke(
                artifact, event_file=event, image=image, url=url, repeat=repeat, max_latency_ms=max_latency_ms, memory=memory,
                timeout=timeout, env=env, python=python, stand_in=not no_stand_in, progress=shown,
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
    port: int = typer.Option(8080, "--port", "-p", help="Port on 127.0.0.1 (8080, as the course's `docker run -p 8080:8080`; AWS's docs map 9000)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Warm function processes; each serves one request at a time, the rest queue."),
    memory: int = MemoryOpt,
    timeout: float = TimeoutOpt,
    env: list[str] = EnvOpt,
    python: str = PythonOpt,
    no_stand_in: bool = NoStandInOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve the artifact on the Lambda Runtime Interface Emulator's endpoint, without Docker.

    Answers POST http://127.0.0.1:PORT/2015-03-31/functions/function/invocations with the handler's JSON, so the course's test.py (written for `docker run -p 8080:8080`) works unchanged; pass --port 9000 for clients written for AWS's docs (`-p 9000:8080`). Chunked request bodies are accepted; the request line and headers must arrive within 30 s, and so must the body. The handler stays warm in --workers processes (each like one Lambda execution environment: python -I -S, the artifact only); concurrent requests are served or queued, none dropped. It listens at once and says when the function is ready: a request sent before waits and is answered once it is loaded. Open http://127.0.0.1:PORT/ in a browser for a page that sends an image (dropped, picked or by URL) and shows the top classes, the function's time and cold start, and the curl and Python lines for the same request. The handler runs under AWS's runtime interface client (awslambdaric) where it has a wheel for the interpreter, else lamb's stand-in; the output says which. Ctrl-C stops it and leaves no process behind; a summary follows, with the memory and timeout the requests served advise.

    Examples:

      lamb serve

      lamb serve function.zip --port 9000 --workers 2 --env LAMB_ALLOW_PRIVATE_URLS=1
    """
    with handle_errors(verbose):
        from lamb import api
        from lamb.serve import serve_artifact
        from lamb.serve.render import render as render_serve
        from lamb.serve.render import render_listening, render_ready

        def show(lines) -> Callable:
            def print_lines(server) -> None:
                if not as_json:
                    for line in lines(server):
                        console.print(line, highlight=False)
            return print_lines

        settings = api.run_settings(memory=memory, timeout=timeout, env=env, python=python, stand_in=not no_stand_in)
        report = serve_artifact(
            artifact, port=port, workers=workers, settings=settings, on_listening=show(render_listening), on_ready=show(render_ready),
        )
    if as_json:
        print_json(report)
        return
    for line in render_serve(report):
        console.print(line, highlight=False)
