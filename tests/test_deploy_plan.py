"""lamb.deploy.plan, lamb.deploy.planner (for an empty account) and lamb.deploy.artifact: limits, settings, upload path and commands, no AWS."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest

from lamb import manifest as mf
from lamb.deploy import plan as planning
from lamb.deploy.artifact import read_facts
from lamb.deploy.calls import display
from lamb.deploy.plan import DeployOptions
from lamb.deploy.planner import State, make_plan
from lamb.errors import ArtifactError, BudgetExceeded, InputError, ManifestError
from lamb.package.budget import MiB


def test_direct_upload_limit_is_the_base64_request_limit():
    # Lambda's 69,905,067 bytes is 50 MiB x 4/3: a zip of exactly 50 MiB, padded and wrapped in a request, is over.
    assert -(-50 * MiB * 4 // 3) == planning.DIRECT_UPLOAD_REQUEST_BYTES
    assert planning.base64_size(50 * MiB) > planning.DIRECT_UPLOAD_REQUEST_BYTES
    assert not planning.fits_direct_upload(50 * MiB)
    assert planning.fits_direct_upload(45 * MiB)
    assert planning.fits_direct_upload(50 * MiB - 3 * planning.REQUEST_ENVELOPE_BYTES)


def test_facts_come_from_the_record_and_the_bytes(deploy_artifact_factory):
    path = deploy_artifact_factory(arch="arm64", runtime="python3.11")
    facts = read_facts(path)
    assert (facts.package_type, facts.runtime, facts.arch, facts.handler) == ("Zip", "python3.11", "arm64", "lambda_function.lambda_handler")
    assert facts.peak_rss_mb == 241.0 and facts.init_ms == 190.0
    import base64
    import hashlib

    assert facts.code_sha256 == base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


def test_facts_ignore_the_file_name(deploy_artifact_factory, tmp_path):
    path = deploy_artifact_factory(arch="arm64")
    renamed = path.rename(tmp_path / "out" / "model-python3.13-x86_64.zip")
    facts = read_facts(renamed)
    assert facts.arch == "arm64" and facts.runtime == "python3.12"


def test_figures_of_another_build_are_not_used(deploy_artifact_factory):
    path = deploy_artifact_factory()
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("extra.txt", "changed after packaging")
    facts = read_facts(path)
    assert facts.peak_rss_mb is None  # the manifest beside it records another sha256


def test_a_zip_without_a_record_is_refused(tmp_path, deploy_artifact_factory):
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lambda_function.py", "")
    with pytest.raises(ManifestError, match=r"holds no readable lamb.json"):
        read_facts(path)
    # built by a lamb that wrote no package record: refused, not guessed from the file name
    shipped = dataclasses.replace(mf.read_shipped(deploy_artifact_factory()), package=None)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("lamb.json", json.dumps(shipped.to_dict()))
    with pytest.raises(ArtifactError, match="no package record"):
        read_facts(path)
    # not a zip at all: refused by the zip check before any record is looked for
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(ArtifactError, match=r"not a readable zip file"):
        read_facts(tmp_path / "broken.zip")


@pytest.mark.parametrize("memory", [127, 10241, 20000])
def test_memory_outside_lambdas_range_is_refused(memory):
    with pytest.raises(InputError, match="128-10,240 MB"):
        planning.check_options(DeployOptions("f", memory_mb=memory))


@pytest.mark.parametrize("timeout", [0, 901, 5400])
def test_timeout_outside_lambdas_range_is_refused(timeout):
    with pytest.raises(InputError, match="1-900 s"):
        planning.check_options(DeployOptions("f", timeout_s=timeout))


@pytest.mark.parametrize(
    "options, match",
    [
        (DeployOptions("has space"), "not a Lambda function name"),
        (DeployOptions("x" * 65), "not a Lambda function name"),
        (DeployOptions("f", alias="123"), "not a Lambda alias name"),
        (DeployOptions("f", role_arn="arn:aws:iam::123456789012:role/r", create_role=True), "both given"),
        (DeployOptions("f", role_arn="my-role"), "not an IAM role ARN"),
        (DeployOptions("f", url="open"), "is not one of none, iam, public"),
    ],
)
def test_bad_options_are_one_line_each(options, match):
    with pytest.raises(InputError, match=match) as info:
        planning.check_options(options)
    assert "\n" not in info.value.message and info.value.hint


def test_over_250_mb_unzipped_is_refused_before_anything(deploy_artifact_factory):
    facts = dataclasses.replace(read_facts(deploy_artifact_factory()), unzipped_bytes=251 * MiB)
    with pytest.raises(BudgetExceeded, match="over Lambda's 250 MB limit; nothing was uploaded"):
        make_plan(facts, DeployOptions("f", create_role=True, smoke=False), State(), region="eu-west-1")


def test_settings_follow_the_measured_figures(deploy_artifact_factory):
    facts = read_facts(deploy_artifact_factory())
    from lamb.cost import advise_memory

    settings = planning.settings_for(facts, DeployOptions("f"))
    assert settings.memory_mb == advise_memory(200.0, peak_rss_mb=241.0).recommended_mb == 1769
    # (190 + 200) ms at a full vCPU, x2, + 13 s url fetch = 13.8 -> 20 s in 10 s steps; never Lambda's default 3 s
    assert settings.timeout_s == 20
    # at 384 MB the CPU share is 384/1769: 390 ms x 4.6 x 2 + 13 = 16.6 -> 20 s
    assert planning.settings_for(facts, DeployOptions("f", memory_mb=384)).timeout_s == 20
    given = planning.settings_for(facts, DeployOptions("f", memory_mb=2048, timeout_s=30))
    assert (given.memory_mb, given.timeout_s, given.memory_source) == (2048, 30, "--memory")


def test_without_measured_figures_memory_must_be_given(deploy_artifact_factory):
    facts = read_facts(deploy_artifact_factory(measured=False))
    with pytest.raises(InputError, match="no measured peak memory"):
        planning.settings_for(facts, DeployOptions("f"))
    with pytest.raises(InputError, match="no measured cold start"):
        planning.settings_for(facts, DeployOptions("f", memory_mb=512))
    assert planning.settings_for(facts, DeployOptions("f", memory_mb=512, timeout_s=20)).timeout_s == 20


def test_timeout_advice_stays_in_range():
    from lamb.cost import URL_FETCH_ALLOWANCE_S, recommend_timeout_s

    assert recommend_timeout_s(0, 0, 10240) == 20  # URL_FETCH_ALLOWANCE_S, rounded up to 10 s
    assert URL_FETCH_ALLOWANCE_S == 13
    assert recommend_timeout_s(10_000_000, 0, 128) == 900


def commands_of(plan) -> str:
    return "\n".join(c for cs in display(plan.calls, region=plan.region) for c in cs)


def test_plan_small_zip_goes_direct(deploy_artifact_factory, tmp_path):
    facts = read_facts(deploy_artifact_factory())
    event = tmp_path / "event.json"
    plan = make_plan(facts, DeployOptions("clothes", create_role=True, url="public", alias="live"), State(), region="eu-west-1", smoke_event=event)
    assert plan.upload == "direct" and plan.s3_key is None
    commands = commands_of(plan)
    assert f"--zip-file fileb://{facts.path}" in commands
    assert "ROLE_ARN=$(aws iam create-role --role-name clothes-role" in commands and "--query Role.Arn --output text)" in commands
    assert '--role "$ROLE_ARN"' in commands and "sleep 10" in commands  # the pasted commands wait for IAM as the run retries
    assert "--policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" in commands
    assert "--action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE" in commands
    assert "--action lambda:InvokeFunction --principal '*' --invoked-via-function-url" in commands
    assert "--runtime python3.12" in commands and "--architectures x86_64" in commands
    assert "aws lambda wait function-active-v2 --function-name clothes" in commands
    assert "PUBLISH_VERSION=$(aws lambda publish-version" in commands and '--function-version "$PUBLISH_VERSION"' in commands
    # the smoke test reads the file the run writes and sends, on the version just published
    assert f'aws lambda invoke --function-name clothes --qualifier "$PUBLISH_VERSION" --payload fileb://{event} response.json' in commands


def test_plan_large_zip_goes_through_s3_content_addressed(deploy_artifact_factory, monkeypatch):
    monkeypatch.setattr(planning, "DIRECT_UPLOAD_REQUEST_BYTES", 1000)  # a small zip stands in for a 97 MB one
    facts = read_facts(deploy_artifact_factory())
    plan = make_plan(facts, DeployOptions("clothes", create_role=True, smoke=False), State(), region="eu-west-1", account="123456789012")
    assert plan.upload == "s3"
    assert plan.s3_key == f"lamb/{facts.sha256}.zip"
    assert plan.s3_bucket == "lamb-artifacts-123456789012-eu-west-1"
    assert any("goes through S3" in n for n in plan.notes)
    assert f"aws s3api put-object --bucket lamb-artifacts-123456789012-eu-west-1 --key lamb/{facts.sha256}.zip --body {facts.path}" in commands_of(plan)
    given = make_plan(facts, DeployOptions("clothes", create_role=True, s3_bucket="mine", smoke=False), State(), region="eu-west-1")
    assert given.s3_bucket == "mine" and not given.has("create_bucket") and given.has("put_object")


def test_plan_for_an_image_prints_the_build_and_push_and_never_a_handler(tmp_path):
    from conftest import make_image_context

    context = make_image_context(tmp_path / "model-python3.12-arm64-image")
    facts = read_facts(context)
    assert facts.package_type == "Image" and facts.sha256 is None
    plan = make_plan(facts, DeployOptions("clothes", create_role=True, memory_mb=1024, timeout_s=30), State(), region="eu-west-1",
                     smoke_event=context / "sample-event.json")
    commands = commands_of(plan)
    prerequisites = "\n".join(plan.prerequisites)
    assert "docker build --platform linux/arm64 --provenance=false" in prerequisites and "docker push" in prerequisites
    assert "aws ecr create-repository --repository-name clothes" in commands
    assert "--package-type Image" in commands
    # Lambda refuses Handler and Runtime for an image function, on create and on update
    assert "--handler" not in commands and "--runtime" not in commands
    existing = State(read=True, function={"PackageType": "Image", "Architectures": ["arm64"], "MemorySize": 512, "Timeout": 3,
                                          "CodeSha256": "old", "FunctionArn": "arn"})
    update = make_plan(facts, DeployOptions("clothes", memory_mb=1024, timeout_s=30, smoke=False), existing, region="eu-west-1")
    configuration = update.call_params("update_function_configuration")
    assert configuration == {"FunctionName": "clothes", "MemorySize": 1024, "Timeout": 30}
    assert "--handler" not in commands_of(update)
    assert f"--payload fileb://{context / 'sample-event.json'}" in commands


def test_deploy_invoke_and_the_image_readme_state_one_advice(deploy_artifact_factory):
    """Memory and timeout come from lamb.cost.advise_function wherever they are stated: deploy's
    settings, the image context's README (written from the smoke run's figures), invoke's advice."""
    from lamb import targets
    from lamb.cost import advise_function
    from lamb.package.artifact import image_readme

    facts = read_facts(deploy_artifact_factory())
    settings = planning.settings_for(facts, DeployOptions("f"))
    advice = advise_function(facts.invoke_ms, init_ms=facts.init_ms, peak_rss_mb=facts.peak_rss_mb, arch=facts.arch)
    assert (settings.memory_mb, settings.timeout_s) == (advice.memory_mb, advice.timeout_s) == (1769, 20)
    readme = image_readme(targets.get_target("python3.12", "x86_64"), "tiny", advice)
    assert f"MEMORY={settings.memory_mb} TIMEOUT={settings.timeout_s}" in readme
    assert "--memory-size $MEMORY --timeout $TIMEOUT" in readme and "1024" not in readme


@pytest.mark.e2e
@pytest.mark.network  # the target's wheels and awslambdaric (cached after the first run)
def test_invoke_deploy_plan_and_the_image_readme_print_the_same_memory_and_timeout(verified_copy):
    """Three measurements of one function (the zip's smoke run, the image's, a lamb invoke under
    awslambdaric), one advice: what the issue found as 1,769 vs 1,752 MB and 15, 16 and 17 s."""
    from pathlib import Path

    from lamb.invoke import invoke_artifact
    from lamb.package import build_package

    folder = verified_copy.parent  # deploy reads the smoke run's figures from the manifest beside the zip
    zipped = build_package(verified_copy, runtime="python3.12", output=folder / "f.zip")
    build_package(verified_copy, runtime="python3.12", fmt="image", output=folder / "ctx")
    sample = Path(__file__).resolve().parent.parent / "models" / "demo" / "samples" / "hat-1.png"
    invoked = invoke_artifact(zipped.artifact, image=sample)
    planned = planning.settings_for(read_facts(zipped.artifact), DeployOptions("f"))
    readme = (folder / "ctx" / "README.md").read_text()
    assert invoked.error is None and invoked.runtime_client.startswith("AWS's runtime interface client")
    assert (invoked.recommended_memory_mb, invoked.recommended_timeout_s) == (planned.memory_mb, planned.timeout_s)
    assert f"MEMORY={planned.memory_mb} TIMEOUT={planned.timeout_s} " in readme
