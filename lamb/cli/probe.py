"""``lamb probe``: measure what a Lambda target's loader provides."""

from __future__ import annotations

import typer

from lamb.cli.common import JsonOpt, RuntimeOpt, VerboseOpt, app, console, handle_errors, print_json


@app.command()
def probe(
    runtime: str = RuntimeOpt,
    arch: str = typer.Option(None, "--arch", "-a", help="x86_64 or arm64 \\[default: x86_64]."),
    local: bool = typer.Option(False, "--local", help="Run the probe on this machine instead (nothing is stored)."),
    keep: bool = typer.Option(False, "--keep", help="Leave the probe function and its role in place."),
    region: str = typer.Option(None, "--region", help="AWS region \\[default: AWS_REGION or your profile's]."),
    profile: str = typer.Option(None, "--profile", help="AWS profile from ~/.aws/config \\[default: AWS_PROFILE or default]."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="Send every AWS call here (a local fake such as moto's server)."),
    plan: bool = typer.Option(False, "--plan", help="Print the API calls as AWS CLI commands that paste and run; calls nothing."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Measure what a Lambda target's dynamic loader really provides, and keep it for the ELF audit.

    With your AWS credentials it creates a role (basic execution policy only) and a tiny function with no dependencies on the runtime and arch, invokes it, and deletes both unless --keep. The function reports glibc (gnu_get_libc_version), the libstdc++ and libgcc_s the loader resolves with their newest GLIBCXX_, CXXABI_ and GCC_ versions (read from the files' version definitions), the libraries in /lib64 and /usr/lib64, Python's version, /etc/os-release and AWS_EXECUTION_ENV. The facts are stored in lamb's cache (probe/RUNTIME-ARCH-REGION.json); from then on `lamb package` audits that target against them, as measured facts, instead of AWS's documented ones. --local runs the same probe on this machine and prints it.

    Examples:

      lamb probe --runtime python3.13 --arch arm64

      lamb probe --local --json

      lamb probe --runtime python3.14 --arch arm64 --plan
    """
    with handle_errors(verbose):
        from lamb.probe import ProbeOptions, probe_aws, probe_local

        if local:
            report = probe_local()
        else:
            options = ProbeOptions(runtime=runtime, arch=arch, region=region, profile=profile, endpoint_url=endpoint_url, keep=keep)
            report = probe_aws(options, plan_only=plan)
        if as_json:
            print_json(report)
            return
        from lamb.probe.render import render

        for part in render(report):
            console.print(part, highlight=False, soft_wrap=bool(report.commands))  # commands stay whole, to copy
