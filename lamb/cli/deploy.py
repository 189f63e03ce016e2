"""``lamb deploy``: the artifact onto AWS Lambda."""

from __future__ import annotations

from pathlib import Path

import typer

from lamb.cli.common import JsonOpt, SampleImageOpt, VerboseOpt, app, console, handle_errors, print_json

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
    url: str = typer.Option("none", "--url", help="Function URL: none (removes a URL and lamb's public permissions left by an earlier deploy) | iam (signed requests; removes lamb's public permissions) | public (anyone; adds both invoke permissions)."),
    reserved_concurrency: int = typer.Option(None, "--reserved-concurrency", help="Reserve (and cap at) this many concurrent executions \\[default: leave the function's as it is; unbounded for a new one]."),
    alias: str = typer.Option(None, "--alias", help="Point this alias at the published version (and the URL at the alias)."),
    image_uri: str = typer.Option(None, "--image-uri", help="For an image artifact: the image already pushed to ECR (see --plan for the build and push)."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="Send every AWS call here (a local fake such as moto's server)."),
    plan: bool = typer.Option(False, "--plan", help="Print the API calls this deploy would make, as AWS CLI commands that paste and run; reads what exists (read-only), changes nothing. Without credentials: the calls for an account where nothing exists yet."),
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip invoking the deployed function with a sample image."),
    sample_image: Path = SampleImageOpt,
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Put the packaged artifact on AWS Lambda, and prove the deployed code is the built code.

    Runtime, architecture, package type and handler come from the artifact's own record; memory and timeout from its measured figures (override with --memory/--timeout). A zip whose base64 fits Lambda's request limit (69,905,067 bytes, i.e. 50 MB) is uploaded directly; a larger one goes to S3 under its sha256 and is uploaded only once. Over 250 MB unzipped is refused before any upload, as is changing an existing function's package type or architecture.

    It reads what exists first (function, versions, alias, URL and resource policy, role, bucket, key), then plans the API calls that make the function as asked, and makes them in order; --plan shows the same calls as AWS CLI commands. An existing function gets its code updated, then its configuration, each waited for; a new one is created (retrying while a fresh role propagates). The published version's CodeSha256, runtime, arch and handler must equal the artifact's, or deploy fails. A version is published only when something changed, --alias is moved to it, and the smoke test invokes that version once with ARTIFACT-STEM.smoke-event.json: it fails on FunctionError, not only on the status code; a loader error naming a GLIBC/GLIBCXX/CXXABI version is recorded as a measured fact about the target.

    The function ends as asked: --url none removes a URL an earlier deploy made, and lamb's two public permissions; --url iam removes those permissions. --url public says what one request costs and that concurrency is unbounded unless --reserved-concurrency caps it.

    Writes ARTIFACT-STEM.deploy.json (ARN, version, alias, URL, region, upload path, both sha256s) and template.yaml (the same function in CloudFormation) beside the artifact. AWS refusing or being unreachable exits with code 10 and one line naming what to do (e.g. the missing IAM action).

    Examples:

      lamb deploy --function-name clothes --create-role --url public --reserved-concurrency 10

      lamb deploy model-python3.12-x86_64.zip -n clothes --role arn:aws:iam::123456789012:role/lambda --alias live

      lamb deploy model-python3.12-x86_64-image -n clothes --plan
    """
    with handle_errors(verbose):
        from lamb import api
        from lamb.deploy.render import render

        report = api.deploy(
            artifact, function_name=function_name, region=region, profile=profile, role=role, create_role=create_role,
            s3_bucket=s3_bucket, memory=memory, timeout=timeout, url=url, alias=alias, endpoint_url=endpoint_url,
            image_uri=image_uri, smoke=not no_smoke, sample_image=sample_image, reserved_concurrency=reserved_concurrency,
            plan=plan,
        )
        if as_json:
            print_json(report)
        else:
            for renderable in render(report, verbose):
                console.print(renderable, highlight=False, soft_wrap=True)  # each command stays on one line, to copy
        report.raise_for_failure()


# -- time ----------------------------------------------------------------------------------------


@app.command("time")
def time_(
    artifacts: list[Path] = typer.Argument(..., help="The .zip files `lamb package` built, one temporary function each."),
    region: str = typer.Option(None, "--region", help="AWS region \\[default: AWS_REGION or your profile's]."),
    profile: str = typer.Option(None, "--profile", help="AWS profile from ~/.aws/config \\[default: AWS_PROFILE or default]."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", help="Send every AWS call here (a local fake such as moto's server)."),
    memory: int = typer.Option(None, "--memory", help="Memory in MB for every function \\[default: what lamb deploy advises for each]."),
    cold: int = typer.Option(1, "--cold", help="Cold starts per artifact (each after the first changes the environment, so Lambda starts a fresh one)."),
    warm: int = typer.Option(5, "--warm", help="Warm requests after each cold start."),
    sample_image: Path = SampleImageOpt,
    keep: bool = typer.Option(False, "--keep", help="Leave the functions and their roles in place."),
    plan: bool = typer.Option(False, "--plan", help="Print the API calls as AWS CLI commands that paste and run; calls nothing."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Time packaged artifacts on AWS Lambda itself, on Lambda's own CPU.

    Each artifact is deployed as a temporary function (as lamb deploy does it, with a role of its own), invoked cold and then warm with its log tail, and Lambda's own REPORT figures are read: Init Duration (the cold start), Duration, Billed Duration and Max Memory Used. Then the function and its role are deleted, unless --keep. Compare these with `lamb compare`'s local figures, which this machine's CPU measured.

    Examples:

      lamb time model-python3.12-x86_64.zip model-int8-python3.12-x86_64.zip --warm 10

      lamb time fn.zip --plan
    """
    with handle_errors(verbose):
        from lamb.compare.on_lambda import OnLambdaOptions, time_on_lambda

        options = OnLambdaOptions(region=region, profile=profile, endpoint_url=endpoint_url, memory_mb=memory, cold=cold,
                                  warm=warm, sample_image=sample_image, keep=keep)
        report = time_on_lambda(artifacts, options, plan_only=plan)
        if as_json:
            print_json(report)
            return
        from lamb.compare.render import render_on_lambda

        for part in render_on_lambda(report):
            console.print(part, highlight=False, soft_wrap=bool(report.commands))
