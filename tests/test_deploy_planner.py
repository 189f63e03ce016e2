"""lamb.deploy.planner and its two executors: the plan is data, the run makes it, --plan shows it.

Against moto in-process (no Docker for Lambda: canned answers), never real AWS. Each URL
transition leaves the function exactly as asked; the displayed commands and the calls made
agree call by call, parameter by parameter, and every operation and parameter is one botocore's
model knows.
"""

from __future__ import annotations

import json
import shlex

import pytest
from test_deploy_run import REGION, SCORES, existing_role, lam, queue_answers

from lamb.deploy import DeployOptions, deploy_artifact
from lamb.deploy.artifact import read_facts
from lamb.deploy.aws import AwsSession, Executor
from lamb.deploy.calls import FileBytes, Ref, display
from lamb.deploy.planner import LAMB_STATEMENT_IDS, State, make_plan, read_state
from lamb.deploy.run import write_smoke_event
from lamb.errors import InputError


@pytest.fixture
def moto(aws_env, request):
    """moto (IAM with AWS's managed policies only when a test creates a role: ~2 s) and a role to use."""
    from moto import mock_aws

    managed = "create_role" in str(getattr(request.node, "callspec", None) and request.node.callspec.params)
    with mock_aws(config={"lambda": {"use_docker": False}, "iam": {"load_aws_managed_policies": managed}}):
        yield existing_role()


def deploy(artifact, **options):
    queue_answers(json.dumps(SCORES))
    return deploy_artifact(artifact, DeployOptions(function_name="clothes", **options), session=AwsSession(region=REGION))


def public_statements(qualifier=None) -> list[str]:
    kwargs = {"FunctionName": "clothes", **({"Qualifier": qualifier} if qualifier else {})}
    try:
        policy = json.loads(lam().get_policy(**kwargs)["Policy"])
    except lam().exceptions.ResourceNotFoundException:
        return []
    return [s["Sid"] for s in policy["Statement"] if s.get("Principal") in ("*", {"AWS": "*"})]


def url_auth(qualifier=None) -> str | None:
    kwargs = {"FunctionName": "clothes", **({"Qualifier": qualifier} if qualifier else {})}
    try:
        return lam().get_function_url_config(**kwargs)["AuthType"]
    except lam().exceptions.ResourceNotFoundException:
        return None


@pytest.mark.parametrize("alias", [None, "live"])
def test_url_none_after_public_leaves_nothing_public(moto, deploy_artifact_factory, alias):
    artifact = deploy_artifact_factory()
    public = deploy(artifact, role_arn=moto, url="public", alias=alias)
    assert url_auth(alias) == "NONE" and sorted(public_statements(alias)) == sorted(LAMB_STATEMENT_IDS)
    assert any("anyone on the internet can invoke it" in n and "concurrency is unbounded" in n and "per million" in n for n in public.notes)

    closed = deploy(artifact, url="none", alias=alias)  # the default
    assert url_auth(alias) is None and public_statements(alias) == []
    assert closed.url is None and closed.url_action == "removed"
    assert sorted(closed.permissions_removed) == sorted(LAMB_STATEMENT_IDS)
    assert closed.action == "unchanged"  # code and configuration: nothing else was touched
    record = json.loads(closed.record_path.read_text())
    assert record["url"] is None
    assert "FunctionUrl" not in json.dumps(__import__("yaml").safe_load(closed.template_path.read_text()))


def test_url_iam_after_public_removes_the_public_statements(moto, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    first = deploy(artifact, role_arn=moto, url="public")
    iam = deploy(artifact, url="iam")
    assert url_auth() == "AWS_IAM" and public_statements() == []
    assert iam.url == first.url and iam.url_action == "updated"
    again = deploy(artifact, url="public")  # and back: both statements return
    assert url_auth() == "NONE" and sorted(public_statements()) == sorted(LAMB_STATEMENT_IDS)
    assert sorted(again.permissions_added) == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]


def test_statements_lamb_did_not_add_are_named_not_removed(moto, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    deploy(artifact, role_arn=moto)
    lam().add_permission(FunctionName="clothes", StatementId="theirs", Action="lambda:InvokeFunction", Principal="*")
    report = deploy(artifact)
    assert public_statements() == ["theirs"]
    assert any("statements lamb did not add (theirs)" in n for n in report.notes)


def test_reserved_concurrency_is_set_and_said(moto, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    report = deploy(artifact, role_arn=moto, url="public", reserved_concurrency=3)
    assert lam().get_function_concurrency(FunctionName="clothes")["ReservedConcurrentExecutions"] == 3
    assert report.reserved_concurrency == 3 and any("concurrency is capped at 3" in n for n in report.notes)
    again = deploy(artifact, url="public")  # left out: kept as it is, and still said
    assert again.plan.call_params("put_function_concurrency") is None
    assert any("concurrency is capped at 3" in n for n in again.notes)
    assert json.loads(again.record_path.read_text())["reserved_concurrency"] == 3


def test_reserved_concurrency_out_of_range_is_one_line():
    from lamb.deploy.plan import check_options
    from lamb.errors import InputError

    with pytest.raises(InputError, match="--reserved-concurrency -1 is outside"):
        check_options(DeployOptions("clothes", reserved_concurrency=-1))


def test_public_url_cost_comes_from_lamb_cost_and_the_measured_figures(deploy_artifact_factory, tmp_path):
    from lamb.cost import cost_per_million

    facts = read_facts(deploy_artifact_factory())
    plan = make_plan(facts, DeployOptions("clothes", create_role=True, url="public", smoke=False), State(), region=REGION)
    per_million = cost_per_million(facts.invoke_ms, plan.settings.memory_mb, facts.arch)
    assert any(f"${per_million / 1e6:.7f}" in n and f"${per_million:,.2f} per million" in n for n in plan.notes)


# -- the two executors agree ------------------------------------------------------------------------


def parse(command: str) -> tuple[str | None, list[str]]:
    """(the shell variable it sets, the aws command's words) of one displayed command."""
    variable = None
    if "=$(" in command.split(" ", 1)[0]:
        variable, command = command.split("=$(", 1)
        command = command.removesuffix(")")
    return variable, shlex.split(command)


def flags(words: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    key = None
    for word in words:
        if word.startswith("--"):
            key = word[2:]
            out[key] = []
        elif key is not None:
            out[key].append(word)
    return out


@pytest.mark.parametrize("options", [
    dict(create_role=True, url="public", alias="live", reserved_concurrency=2),
    dict(url="iam", s3=True),
])
def test_plan_and_run_agree_call_by_call(moto, deploy_artifact_factory, monkeypatch, options):
    """The same plan through both executors: each displayed command is the call the run made,
    with the same operation and the same parameter values; every name is botocore's own."""
    import boto3
    from botocore import xform_name

    from lamb.deploy import plan as planning

    if options.pop("s3", False):
        monkeypatch.setattr(planning, "DIRECT_UPLOAD_REQUEST_BYTES", 1000)  # through S3: bucket, key, upload
        options["role_arn"] = moto
    artifact = deploy_artifact_factory()
    facts = read_facts(artifact)
    wanted = DeployOptions("clothes", **options)
    aws = AwsSession(region=REGION)
    account = aws.account_id()
    event = write_smoke_event(facts, None)
    plan = make_plan(facts, wanted, read_state(aws, facts, wanted, account), region=REGION, account=account, smoke_event=event)
    shown = display(plan.calls, region=REGION)

    queue_answers(json.dumps(SCORES))
    executor = Executor(aws)
    executor.execute(plan.calls)
    assert len(executor.made) == len(plan.calls) == len(shown)

    variables: dict[str, str] = {}
    for call, (service, operation, sent), commands in zip(plan.calls, executor.made, shown):
        variable, words = parse(commands[0])
        cli_service = {"s3": "s3api"}.get(service, service)
        assert words[:3] == ["aws", cli_service, operation.replace("_", "-")]
        model = boto3.client(service, region_name=REGION).meta.service_model
        operation_model = next(model.operation_model(o) for o in model.operation_names if xform_name(o) == operation)
        members = operation_model.input_shape.members
        given = flags(words[3:])
        assert given.pop("region") == [REGION]
        for key, value in sent.items():
            assert key in members, f"{operation}: {key} is not a parameter botocore knows"
            flag = xform_name(key, "-")
            if key == "Code" and isinstance(value.get("ZipFile"), FileBytes):
                assert given.pop("zip-file") == [f"fileb://{value['ZipFile'].path}"]
            elif isinstance(value, FileBytes):
                assert given.pop(flag)[0] in (str(value.path), f"fileb://{value.path}")
            elif isinstance(value, bool):
                assert flag in given if value else f"no-{flag}" in given
                given.pop(flag if value else f"no-{flag}")
            elif isinstance(call.params[key], Ref):
                ref = call.params[key]
                assert given.pop(flag) == [f"${ref.variable}"] and variables[ref.variable] == value
            elif isinstance(value, list):
                assert given.pop(flag) == value
            elif isinstance(value, dict):
                assert json.loads(given.pop(flag)[0]) == value
            else:
                assert given.pop(flag) == [str(value)]
        given.pop("query", None), given.pop("output", None)
        assert given == {}, f"{operation}: displayed flags the run did not send: {given}"
        if variable:  # what the command's --query keeps is what the run read from the answer
            ref = next(r for c in plan.calls for r in c.refs() if r.variable == variable)
            found = executor.responses[ref.call]
            for key in ref.path.split("."):
                found = found[key]
            variables[variable] = found
        if call.wait:
            assert commands[1].startswith(f"aws lambda wait {call.wait.replace('_', '-')} --function-name clothes")


def test_a_second_plan_against_what_the_first_made_only_publishes_and_smokes(moto, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    deploy(artifact, role_arn=moto, url="public", alias="live", reserved_concurrency=2)
    facts = read_facts(artifact)
    aws = AwsSession(region=REGION)
    options = DeployOptions("clothes", url="public", alias="live", reserved_concurrency=2)
    plan = make_plan(facts, options, read_state(aws, facts, options, aws.account_id()), region=REGION, smoke_event=write_smoke_event(facts, None))
    assert [c.operation for c in plan.calls] == ["publish_version", "invoke"]


# -- learning from a failed smoke test --------------------------------------------------------------


def test_a_missing_glibcxx_is_said_in_one_line_and_recorded_as_measured(deploy_artifact_factory, monkeypatch, tmp_path):
    from lamb.deploy import learn
    from lamb.deploy.run import smoke_result

    monkeypatch.setenv("LAMB_CACHE_DIR", str(tmp_path / "cache"))
    message = ("Unable to import module 'lambda_function': /lib64/libstdc++.so.6: version `GLIBCXX_3.4.30' not found "
               "(required by /var/task/ai_edge_litert/libpywrap_litert_common.so)")
    body = json.dumps({"errorMessage": message, "errorType": "Runtime.ImportModuleError", "stackTrace": []}).encode()
    smoke = smoke_result({"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body})
    facts = read_facts(deploy_artifact_factory())
    line = learn.from_smoke(smoke, facts, "eu-west-1")
    assert line.startswith("python3.12 on x86_64 in eu-west-1 lacks GLIBCXX_3.4.30 (libpywrap_litert_common.so needs it)")
    assert "\n" not in line
    assert str(learn.path_for("python3.12", "x86_64", "eu-west-1")) in line
    fact = learn.lacks("python3.12", "x86_64", "eu-west-1")["GLIBCXX_3.4.30"]
    assert fact["rank"] == "measured" and "GLIBCXX_3.4.30" in fact["evidence"] and fact["date"]
    # other failures teach nothing
    other = smoke_result({"StatusCode": 200, "FunctionError": "Unhandled",
                          "Payload": json.dumps({"errorType": "Runtime.ImportModuleError", "errorMessage": "No module named 'numpy'"}).encode()})
    assert learn.from_smoke(other, facts, "eu-west-1") is None
    assert learn.missing_version("version 'CXXABI_1.3.15' not found") == ("CXXABI_1.3.15", None)
    assert learn.missing_version("version `GLIBC_2.34' not found (required by /var/task/x.so)") == ("GLIBC_2.34", "/var/task/x.so")


def test_a_plain_zip_with_no_dependencies_deploys_through_the_same_plan(moto, tmp_path):
    """What `lamb probe` needs: a function from a zip lamb did not package, with its own event."""
    import zipfile

    from lamb.deploy import deploy_facts
    from lamb.deploy.artifact import plain_zip

    path = tmp_path / "probe.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("probe.py", "import platform\ndef handler(event, context):\n    return {'libc': platform.libc_ver()}\n")
    facts = plain_zip(path, runtime="python3.13", arch="arm64", handler="probe.handler", name="probe")
    event = tmp_path / "event.json"
    event.write_text("{}")
    options = DeployOptions("lamb-probe", role_arn=moto, memory_mb=128, timeout_s=30)
    shown = deploy_facts(facts, options, plan_only=True, smoke_event=event)
    assert [c.operation for c in shown.plan.calls] == ["create_function", "publish_version", "invoke"]
    assert any(f"--payload fileb://{event}" in c[0] for c in shown.commands)

    queue_answers(json.dumps({"libc": ["glibc", "2.34"]}))
    report = deploy_facts(facts, options, session=AwsSession(region=REGION), smoke_event=event)
    assert report.action == "created" and report.smoke.passed and report.smoke.response == {"libc": ["glibc", "2.34"]}
    config = lam().get_function(FunctionName="lamb-probe")["Configuration"]
    assert (config["Runtime"], config["Handler"], config["Architectures"]) == ("python3.13", "probe.handler", ["arm64"])
    with pytest.raises(InputError, match="no measured peak memory"):
        deploy_facts(facts, DeployOptions("lamb-probe", role_arn=moto, smoke=False), plan_only=True)


def test_a_url_left_on_another_qualifier_is_named_with_the_way_to_remove_it(deploy_artifact_factory):
    # moto ignores Qualifier for function URLs, so the state is given here as read_state reads it from Lambda
    facts = read_facts(deploy_artifact_factory())
    function = {"PackageType": "Zip", "Architectures": ["x86_64"], "FunctionArn": "arn", "CodeSha256": facts.code_sha256}
    left = {"": {"AuthType": "NONE", "FunctionUrl": "https://abc.lambda-url.eu-west-1.on.aws/"}}
    plan = make_plan(facts, DeployOptions("clothes", alias="live", smoke=False), State(read=True, function=function, other_urls=left),
                     region=REGION)
    assert any("clothes still has a public URL from another deploy (https://abc.lambda-url.eu-west-1.on.aws/)" in n
               and "`lamb deploy -n clothes --url none` removes it" in n for n in plan.notes)
    assert not plan.has("delete_function_url_config")  # another qualifier's: named, not removed
