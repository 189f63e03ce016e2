"""`lamb deploy` through the CLI: one-line refusals, --plan, and one end-to-end run against moto's server."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lamb.cli import app

runner = CliRunner()


def test_memory_outside_lambdas_range_is_one_line_before_any_call(deploy_artifact_factory, aws_env):
    artifact = deploy_artifact_factory()
    result = runner.invoke(app, ["deploy", str(artifact), "--function-name", "clothes", "--create-role", "--memory", "20000",
                                 "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 3
    assert "128-10,240 MB" in result.output and "Traceback" not in result.output


def test_plan_prints_every_command_without_calling_aws(deploy_artifact_factory, aws_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)  # no credentials: nothing to read, the plan is for an empty account
    artifact = deploy_artifact_factory()
    result = runner.invoke(app, ["deploy", str(artifact), "-n", "clothes", "--create-role", "--url", "public", "--alias", "live", "--plan"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for expected in ("aws iam create-role", "aws lambda create-function", "aws lambda wait function-active-v2",
                     "aws lambda publish-version", "aws lambda create-alias", "--invoked-via-function-url", "aws lambda invoke",
                     "no AWS credentials here, so nothing was read: planned as for an account where nothing exists yet",
                     "--url public: anyone on the internet can invoke it"):
        assert expected in result.output
    assert not artifact.with_name(artifact.stem + ".deploy.json").exists()
    event = artifact.with_name(artifact.stem + ".smoke-event.json")  # what the displayed invoke reads
    assert f"--payload fileb://{event}" in result.output and set(json.loads(event.read_text())) == {"image"}


def test_unreachable_aws_is_exit_code_10(deploy_artifact_factory, aws_env):
    result = runner.invoke(app, ["deploy", str(deploy_artifact_factory()), "-n", "clothes", "--create-role",
                                 "--endpoint-url", "http://127.0.0.1:9"])
    assert result.exit_code == 10
    assert "cannot reach AWS" in result.output and "Traceback" not in result.output


def test_verbose_shows_the_trail_of_aws_calls(deploy_artifact_factory, aws_env):
    args = ["deploy", str(deploy_artifact_factory()), "-n", "clothes", "--create-role", "--endpoint-url", "http://127.0.0.1:9"]
    quiet, loud = runner.invoke(app, args), runner.invoke(app, [*args, "--verbose"])
    assert quiet.exit_code == loud.exit_code == 10
    assert "lamb.deploy.aws: AWS " not in quiet.stderr
    assert "lamb.deploy.aws: AWS " in loud.stderr, loud.stderr


@pytest.fixture
def moto_server(aws_env, monkeypatch):
    """moto's server on a free port, Lambda without Docker (its config API), AWS managed policies loaded."""
    import requests
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    before = requests.get(f"{url}/moto-api/config").json()
    requests.post(f"{url}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/config", json={"lambda": before["lambda"]})
        requests.post(f"{url}/moto-api/reset")
        server.stop()


@pytest.mark.e2e
def test_deploy_end_to_end_against_moto_server(moto_server, deploy_artifact_factory):
    import requests

    artifact = deploy_artifact_factory()
    args = ["deploy", str(artifact), "--function-name", "clothes", "--create-role", "--url", "public", "--alias", "live",
            "--region", "eu-west-1", "--endpoint-url", moto_server, "--json"]
    answers = {"results": [json.dumps({"cat": 0.9}), json.dumps({"cat": 0.9})], "region": "eu-west-1"}
    requests.post(f"{moto_server}/moto-api/static/lambda-simple/response", json=answers).raise_for_status()

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["action"] == "created" and report["smoke"]["passed"] and report["version"] == "1"
    assert report["deployed_code_sha256"] == report["code_sha256"]
    assert report["url"].startswith("https://")

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    again = json.loads(second.stdout)
    assert again["action"] == "unchanged" and again["uploaded_bytes"] == 0 and not again["published"] and again["version"] == "1"

    record = json.loads(artifact.with_name(artifact.stem + ".deploy.json").read_text())
    assert record["function_arn"].endswith(":function:clothes") and record["alias"] == "live"
    assert (artifact.parent / "template.yaml").is_file()


@pytest.mark.e2e
@pytest.mark.network
def test_a_real_package_deploys_with_its_own_record(moto_server, verified_copy, monkeypatch):
    """`lamb package` then `lamb deploy` in the same folder, no artifact named: the function gets
    the record's runtime, arch and handler, the smoke run's memory advice, and the zip's CodeSha256."""
    import boto3
    import requests

    from lamb.package import build_package

    monkeypatch.chdir(verified_copy.parent)
    package = build_package(verified_copy, runtime="python3.12", skip_verify=True)
    answers = {"results": [json.dumps({"cat": 0.9})], "region": "eu-west-1"}
    requests.post(f"{moto_server}/moto-api/static/lambda-simple/response", json=answers).raise_for_status()

    result = runner.invoke(app, ["deploy", "-n", "tiny", "--create-role", "--region", "eu-west-1", "--endpoint-url", moto_server, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["artifact"].endswith(package.artifact.name)  # the one `lamb package` just built here
    config = boto3.client("lambda", region_name="eu-west-1", endpoint_url=moto_server).get_function(FunctionName="tiny")["Configuration"]
    assert (config["Runtime"], config["Architectures"], config["Handler"]) == ("python3.12", ["x86_64"], "lambda_function.lambda_handler")
    import base64
    import hashlib

    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(package.artifact.read_bytes()).digest()).decode()
    from lamb.cost import advise_memory

    smoke = package.smoke
    assert config["MemorySize"] == advise_memory(smoke.invoke_ms, peak_rss_mb=smoke.peak_rss_mb).recommended_mb


def test_a_failed_smoke_test_prints_the_report_then_exits_9(deploy_artifact_factory, aws_env):
    import requests
    from moto import mock_aws

    artifact = deploy_artifact_factory()
    with mock_aws(config={"lambda": {"use_docker": False}}):
        import boto3

        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        answer = {"results": [json.dumps({"error": "cannot decode the image", "statusCode": 400})], "region": "eu-west-1"}
        requests.post("http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response", json=answer).raise_for_status()
        result = runner.invoke(app, ["deploy", str(artifact), "-n", "clothes", "--role", role, "--json"])
    assert result.exit_code == 9
    report = json.loads(result.stdout)
    assert report["smoke"]["passed"] is False and report["version"] == "1"
    assert "failed its smoke test: the handler answered 400" in result.stderr


@pytest.mark.parametrize("command", [["deploy", "-n", "clothes", "--plan"], ["serve", "--port", "0"], ["invoke", "--url", "https://example.com/cat.jpg"]])
def test_no_artifact_here_is_one_line_that_fits_every_command(tmp_path, monkeypatch, aws_env, command):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code != 0 and "no Lambda artifact in" in result.output
    assert "to invoke" not in result.output and "Traceback" not in result.output


@pytest.mark.e2e
@pytest.mark.network
def test_an_image_packaged_before_a_zip_keeps_its_smoke_figures_for_deploy(verified_copy, aws_env, monkeypatch):
    """Issue 17: package an image, then a zip, from one manifest; `lamb deploy <the image folder>
    --plan` still finds the image's smoke figures (the manifest keeps every artifact's record)."""
    from lamb.package import build_package

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)  # a plan for an empty account: nothing to read

    folder = verified_copy.parent
    image = build_package(verified_copy, runtime="python3.11", fmt="image", output=folder / "tiny-image", skip_verify=True)
    build_package(verified_copy, runtime="python3.11", output=folder / "tiny.zip", skip_verify=True)
    result = runner.invoke(app, ["deploy", str(image.artifact), "-n", "tiny", "--create-role", "--plan"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "carries no measured peak memory" not in result.output
    assert "--handler" not in result.output and "--package-type Image" in result.output
    from lamb import manifest as mf
    from lamb.cost import advise_function

    smoke = mf.read(verified_copy).record_of(image.artifact, verified_copy).smoke  # the image's own figures, not the zip's
    advice = advise_function(smoke.invoke_ms, init_ms=smoke.init_ms, peak_rss_mb=smoke.peak_rss_mb)
    assert f"--memory-size {advice.memory_mb} --timeout {advice.timeout_s}" in result.output
