"""lamb time: artifacts timed on AWS Lambda itself. The calls against moto (deploy through deploy's
planner and executor, invokes with their log tail, teardown); Lambda's REPORT lines parsed as
Lambda writes them."""

from __future__ import annotations

import base64
import json

import pytest
from typer.testing import CliRunner

from lamb.cli import app
from lamb.compare.on_lambda import OnLambdaOptions, function_name, log_tail, parse_report, time_on_lambda
from lamb.deploy.artifact import read_facts

REGION = "eu-west-1"

# REPORT lines as Lambda writes them (tab-separated; Init Duration on an environment's first request
# only, X-Ray's fields after it when tracing is on). The first two are real lines published with
# their figures: a cold Python request (github.com/open-telemetry/opentelemetry-lambda pull 2011)
# and a cold request of a 1,152 MB function (gist.github.com/brianleroux/abdf5fa2...).
COLD = ("REPORT RequestId: bf5f58db-ef7d-4cb2-b3c6-266eba1bbedb\tDuration: 395.99 ms\tBilled Duration: 662 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 301 MB\tInit Duration: 265.72 ms\t\n")
COLD_1152 = ("REPORT RequestId: 89ba7dfa-72d1-4ad7-9dac-2214d1698697\tDuration: 4.42 ms\tBilled Duration: 338 ms\t"
             "Memory Size: 1152 MB\tMax Memory Used: 75 MB\tInit Duration: 333.05 ms\t\n")
WARM = ("REPORT RequestId: f949935c-0f0e-4718-9976-9df42585adb5\tDuration: 2.05 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 1152 MB\tMax Memory Used: 76 MB\t\n")
TRACED = ("REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
          "Memory Size: 128 MB\tMax Memory Used: 18 MB\t\nXRAY TraceId: 1-581cf771-a006649127e371903a2de979\t"
          "SegmentId: 3d5f6cbc3cc1dbe5\tSampled: true\t\n")


def test_report_lines_are_read_as_lambda_writes_them():
    cold = parse_report(COLD)
    assert (cold.request_id, cold.duration_ms, cold.billed_ms) == ("bf5f58db-ef7d-4cb2-b3c6-266eba1bbedb", 395.99, 662.0)
    assert (cold.memory_mb, cold.max_memory_used_mb, cold.init_ms) == (512, 301, 265.72)
    assert parse_report(COLD_1152).init_ms == 333.05 and parse_report(COLD_1152).billed_ms == 338.0
    warm = parse_report(WARM)
    assert warm.init_ms is None and warm.duration_ms == 2.05 and warm.max_memory_used_mb == 76
    assert parse_report(TRACED).duration_ms == 12.34 and parse_report(TRACED).init_ms is None


def test_the_log_tail_is_read_to_its_last_report_line():
    # What Invoke's LogResult holds with LogType=Tail: the last 4 KB of the log, base64.
    tail = ("INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:0123\n"
            "START RequestId: bf5f58db-ef7d-4cb2-b3c6-266eba1bbedb Version: $LATEST\n"
            '{"lamb_timing": {"inference_ms": 370.1}}\n'
            "END RequestId: bf5f58db-ef7d-4cb2-b3c6-266eba1bbedb\n" + COLD)
    response = {"StatusCode": 200, "LogResult": base64.b64encode(tail.encode()).decode()}
    assert log_tail(response) == tail and parse_report(log_tail(response)).init_ms == 265.72
    assert parse_report(log_tail({"StatusCode": 200})) is None
    assert parse_report("START RequestId: x Version: $LATEST\n") is None


@pytest.fixture
def moto_iam(aws_env):
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}):
        yield


def _session():
    from lamb.deploy.aws import AwsSession

    return AwsSession(region=REGION, waiter_delay_s=0)


def test_each_artifact_is_deployed_invoked_cold_and_warm_and_deleted(moto_iam, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    session = _session()
    report = time_on_lambda([artifact], OnLambdaOptions(cold=2, warm=2), aws=session)
    name = function_name(read_facts(artifact))
    assert name.startswith("lamb-time-") and len(name) <= 64
    assert report.calls == [
        "iam create_role", "iam attach_role_policy", "lambda create_function", "lambda publish_version",
        "lambda invoke", "lambda invoke", "lambda invoke",
        "lambda update_function_configuration", "lambda invoke", "lambda invoke", "lambda invoke",
        "lambda delete_function", "iam detach_role_policy", "iam delete_role",
    ]
    functions = [f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"]]
    roles = [r["RoleName"] for r in session.client("iam").list_roles()["Roles"]]
    assert name not in functions and f"{name}-role" not in roles
    # moto's Lambda writes no REPORT line: every answer is counted as one without, none invented.
    (timing,) = report.timings
    assert timing.missing == 6 and timing.cold == [] and timing.warm == [] and timing.warm_ms is None
    assert timing.memory_mb == 1769 and report.region == REGION
    assert timing.cpus == []  # no probe has read Lambda's CPU here yet


def test_keep_leaves_the_function_and_the_figures_name_the_cpu_probe_read(moto_iam, deploy_artifact_factory):
    from lamb import measured

    xeon = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.90GHz\nflags\t\t: fpu avx2 avx512f\n"
    measured.store(measured.Measurement("python3.13", "x86_64", REGION, "2026-12-07T10:00:00+00:00",
                                        {"glibc": "2.34", "machine": "x86_64", "cpuinfo": xeon}))
    artifact = deploy_artifact_factory()
    session = _session()
    report = time_on_lambda([artifact], OnLambdaOptions(warm=0, keep=True), aws=session)
    assert report.kept and "lambda delete_function" not in report.calls
    assert report.timings[0].cpus == ["Intel(R) Xeon(R) Processor @ 2.90GHz (x86_64: AVX2, AVX-512F)"]
    functions = [f["FunctionName"] for f in session.client("lambda").list_functions()["Functions"]]
    assert function_name(read_facts(artifact)) in functions


def test_plan_prints_every_call_and_calls_nothing(aws_env, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    result = CliRunner().invoke(app, ["time", str(artifact), "--warm", "1", "--plan", "--region", REGION])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith(("aws ", "ROLE_ARN="))]
    invokes = [ln for ln in lines if ln.startswith("aws lambda invoke ")]
    assert len(invokes) == 2 and all("--log-type Tail" in ln for ln in invokes)
    assert any(ln.startswith("aws lambda create-function --function-name lamb-time-") for ln in lines)
    assert lines[-1].startswith("aws iam delete-role --role-name lamb-time-")


def test_json_carries_the_figures(moto_iam, deploy_artifact_factory, monkeypatch):
    artifact = deploy_artifact_factory()
    monkeypatch.setenv("AWS_REGION", REGION)
    result = CliRunner().invoke(app, ["time", str(artifact), "--warm", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["region"] == REGION and data["timings"][0]["missing"] == 2 and not data["kept"]
