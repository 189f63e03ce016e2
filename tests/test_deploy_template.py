"""lamb.deploy.template: the CloudFormation template passes cfn-lint for every shape deploy makes."""

from __future__ import annotations

import json

import pytest
import yaml

from lamb.deploy import plan as planning
from lamb.deploy import template
from lamb.deploy.artifact import read_facts
from lamb.deploy.plan import DeployOptions
from lamb.deploy.planner import State, make_plan


def lint(document: dict) -> list:
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    return cfn_lint(template.render(document), config=ManualArgs(regions=["eu-west-1"]))


@pytest.mark.parametrize(
    "options, s3",
    [
        (DeployOptions("clothes", create_role=True, smoke=False), None),
        (DeployOptions("clothes", create_role=True, url="public", alias="live", smoke=False, reserved_concurrency=5),
         ("lamb-artifacts-123456789012-eu-west-1", "lamb/abc.zip")),
        (DeployOptions("clothes", role_arn="arn:aws:iam::123456789012:role/lambda-basic", url="iam", smoke=False), None),
    ],
)
def test_zip_templates_pass_cfn_lint(deploy_artifact_factory, options, s3):
    facts = read_facts(deploy_artifact_factory())
    plan = make_plan(facts, options, State(), region="eu-west-1", account="123456789012")
    document = template.template(plan, role_arn=options.role_arn, s3_bucket=s3 and s3[0], s3_key=s3 and s3[1], code_sha256=facts.code_sha256)
    assert lint(document) == []
    function = document["Resources"]["Function"]["Properties"]
    assert (function["Runtime"], function["Architectures"], function["Handler"]) == ("python3.12", ["x86_64"], "lambda_function.lambda_handler")
    assert (function["MemorySize"], function["Timeout"]) == (plan.settings.memory_mb, plan.settings.timeout_s)
    assert document["Resources"]["Version"]["Properties"]["CodeSha256"] == facts.code_sha256
    # the template's function is the plan's: the settings its create call carries
    created = plan.call_params("create_function")
    assert {k: function[k] for k in plan.configuration} == {k: created[k] for k in plan.configuration}
    assert function.get("ReservedConcurrentExecutions") == options.reserved_concurrency
    assert yaml.safe_load(template.render(document)) == json.loads(json.dumps(document))
    if options.url == "public":
        permissions = [r["Properties"] for r in document["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
        assert {p["Action"] for p in permissions} == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
        assert any(p.get("InvokedViaFunctionUrl") is True for p in permissions)
    if options.create_role:
        role = document["Resources"]["ExecutionRole"]["Properties"]
        assert role["ManagedPolicyArns"] == [planning.BASIC_EXECUTION_POLICY_ARN]


def test_image_template_passes_cfn_lint(tmp_path):
    from conftest import make_image_context

    context = make_image_context(tmp_path / "model-image")
    facts = read_facts(context)
    options = DeployOptions("clothes", create_role=True, memory_mb=1024, timeout_s=30, url="public", smoke=False,
                            image_uri="123456789012.dkr.ecr.eu-west-1.amazonaws.com/clothes:v1")
    plan = make_plan(facts, options, State(), region="eu-west-1", account="123456789012")
    document = template.template(plan, role_arn=None, s3_bucket=None, s3_key=None, code_sha256=None)
    assert lint(document) == []
    assert document["Parameters"]["ImageUri"]["Default"] == options.image_uri
    assert "Runtime" not in document["Resources"]["Function"]["Properties"]
    assert "Handler" not in document["Resources"]["Function"]["Properties"]
