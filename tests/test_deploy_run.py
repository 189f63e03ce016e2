"""lamb.deploy.run: whole deployments against moto, in-process (mock_aws), never real AWS.

moto's Lambda runs functions in Docker unless told otherwise; its config API turns that off and
its lambda-simple queue gives each invocation a canned answer, so the smoke test's pass and
failure paths both run here.
"""

from __future__ import annotations

import json

import pytest

from lamb.deploy import DeployOptions, deploy_artifact
from lamb.deploy import plan as planning
from lamb.deploy.aws import AwsSession
from lamb.errors import ArtifactError, InputError

REGION = "eu-west-1"
SCORES = {"cat": 0.9, "dog": 0.1}


@pytest.fixture
def moto(aws_env):
    """moto without Docker for Lambda (canned answers instead), and an execution role to use."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def moto_iam(aws_env):
    """moto whose IAM knows AWS's managed policies, as a real account does (costs ~2 s: only for --create-role)."""
    from moto import mock_aws

    with mock_aws(config={"lambda": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}):
        yield


def existing_role() -> str:
    import boto3

    return boto3.client("iam").create_role(RoleName="lambda-basic", AssumeRolePolicyDocument=json.dumps(planning.TRUST_POLICY))["Role"]["Arn"]


def queue_answers(*answers: str) -> None:
    """What moto's non-Docker Lambda returns to the next invocations, in order."""
    import requests

    response = requests.post("http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response",
                             json={"results": list(answers), "region": REGION})
    assert response.status_code == 201


def deploy(artifact, **options):
    queue_answers(json.dumps(SCORES))
    return deploy_artifact(artifact, DeployOptions(function_name=options.pop("function_name", "clothes"), **options),
                           session=AwsSession(region=REGION))


def lam():
    import boto3

    return boto3.client("lambda", region_name=REGION)


def test_create_direct_with_role_url_alias_and_smoke(moto_iam, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    report = deploy(artifact, create_role=True, url="public", alias="live")

    assert report.action == "created" and report.upload == "direct"
    assert report.uploaded_bytes == artifact.stat().st_size
    assert report.role_created and report.role_arn.endswith(":role/clothes-role")
    assert report.version == "1" and report.published and report.alias_action == "created"
    assert report.smoke.passed and report.smoke.response == SCORES and report.smoke.function_error is None
    config = lam().get_function(FunctionName="clothes")["Configuration"]
    assert config["CodeSha256"] == report.code_sha256 == report.deployed_code_sha256
    assert (config["Runtime"], config["Architectures"], config["Handler"]) == ("python3.12", ["x86_64"], "lambda_function.lambda_handler")
    assert (config["MemorySize"], config["Timeout"]) == (1769, 20)  # lamb invoke's advice for 241 MB and 200 ms

    statements = json.loads(lam().get_policy(FunctionName="clothes", Qualifier="live")["Policy"])["Statement"]
    assert {s["Action"] for s in statements} == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert any(s.get("FunctionUrlAuthType") == "NONE" for s in statements)
    assert any(s.get("InvokedViaFunctionUrl") is True for s in statements)
    assert report.url.startswith("https://") and report.url_action == "created"

    import boto3

    iam = boto3.client("iam", region_name=REGION)
    attached = iam.list_attached_role_policies(RoleName="clothes-role")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [planning.BASIC_EXECUTION_POLICY_ARN]
    trust = iam.get_role(RoleName="clothes-role")["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}

    record = json.loads(report.record_path.read_text())
    assert report.record_path.name == artifact.stem + ".deploy.json"
    assert record["function_arn"] == report.function_arn and record["version"] == "1" and record["alias"] == "live"
    assert record["artifact_sha256"] == report.artifact_sha256 and record["deployed_code_sha256"] == report.code_sha256
    assert record["upload"] == "direct" and record["region"] == REGION and record["url"] == report.url
    assert report.template_path.is_file()


def test_second_deploy_of_the_same_zip_uploads_and_publishes_nothing(moto_iam, deploy_artifact_factory):
    artifact = deploy_artifact_factory()
    first = deploy(artifact, create_role=True, alias="live", url="public")
    second = deploy(artifact, create_role=True, alias="live", url="public")
    assert second.action == "unchanged" and second.changed == []
    assert second.uploaded_bytes == 0 and second.upload.startswith("none")
    assert second.version == first.version and not second.published
    assert second.alias_action == "unchanged" and not second.role_created
    assert second.url == first.url and second.url_action == "unchanged" and second.permissions_added == []
    statements = json.loads(lam().get_policy(FunctionName="clothes", Qualifier="live")["Policy"])["Statement"]
    assert len(statements) == 2
    assert [v["Version"] for v in lam().list_versions_by_function(FunctionName="clothes")["Versions"]] == ["$LATEST", "1"]


def test_a_new_build_updates_code_and_moves_the_alias(moto, deploy_artifact_factory):
    role = existing_role()
    deploy(deploy_artifact_factory(seed=0), role_arn=role, alias="live")
    report = deploy(deploy_artifact_factory(seed=1, subdir="next"), alias="live")  # an existing function keeps its role
    assert report.action == "updated" and report.changed == ["code"]
    assert report.version == "2" and report.published and report.alias_action == "moved"
    assert lam().get_alias(FunctionName="clothes", Name="live")["FunctionVersion"] == "2"


def test_a_new_memory_setting_updates_only_the_configuration(moto, deploy_artifact_factory):
    role = existing_role()
    artifact = deploy_artifact_factory()
    deploy(artifact, role_arn=role)
    report = deploy(artifact, memory_mb=2048)
    assert report.changed == ["configuration"] and report.uploaded_bytes == 0
    assert report.version == "2" and report.published
    assert lam().get_function_configuration(FunctionName="clothes")["MemorySize"] == 2048


def test_large_zip_goes_through_s3_once(moto, deploy_artifact_factory, monkeypatch):
    role = existing_role()
    monkeypatch.setattr(planning, "DIRECT_UPLOAD_REQUEST_BYTES", 1000)  # a small zip stands in for a 97 MB one
    artifact = deploy_artifact_factory()
    first = deploy(artifact, role_arn=role)
    bucket = "lamb-artifacts-123456789012-eu-west-1"
    assert first.upload == "s3" and first.bucket_created
    assert first.s3_uri == f"s3://{bucket}/lamb/{first.artifact_sha256}.zip"
    assert first.uploaded_bytes == artifact.stat().st_size
    # another function from the same zip: the bucket and the key exist, nothing is sent
    other = deploy(artifact, function_name="clothes-staging", role_arn=role)
    assert other.action == "created" and other.uploaded_bytes == 0 and not other.bucket_created
    assert any("already holds this zip" in n for n in other.notes)
    assert other.deployed_code_sha256 == first.deployed_code_sha256


def test_given_bucket_is_used_not_created(moto, deploy_artifact_factory, monkeypatch):
    role = existing_role()
    import boto3

    monkeypatch.setattr(planning, "DIRECT_UPLOAD_REQUEST_BYTES", 1000)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="my-artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    report = deploy(deploy_artifact_factory(), role_arn=role, s3_bucket="my-artifacts")
    assert report.s3_uri.startswith("s3://my-artifacts/lamb/") and not report.bucket_created
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == ["my-artifacts"]


def test_arch_change_is_refused_before_any_upload(moto, deploy_artifact_factory, monkeypatch):
    role = existing_role()
    deploy(deploy_artifact_factory(arch="arm64"), role_arn=role)
    before = lam().get_function(FunctionName="clothes")["Configuration"]["CodeSha256"]
    monkeypatch.setattr(planning, "DIRECT_UPLOAD_REQUEST_BYTES", 1000)
    with pytest.raises(InputError, match=r"runs on arm64 .* built for x86_64; nothing was uploaded") as info:
        deploy(deploy_artifact_factory(arch="x86_64", subdir="x86"))
    assert "--arch arm64" in info.value.hint
    import boto3

    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []
    assert lam().get_function(FunctionName="clothes")["Configuration"]["CodeSha256"] == before


def test_creating_needs_a_role(moto, deploy_artifact_factory):
    with pytest.raises(InputError, match="creating one needs an execution role"):
        deploy(deploy_artifact_factory())


def test_smoke_fails_on_function_error(moto, deploy_artifact_factory):
    role = existing_role()
    artifact = deploy_artifact_factory()
    # Lambda sets FunctionError on an answer over its 6 MB payload limit; moto's queue can give one.
    too_large = "x" * 6_100_000
    queue_answers(too_large)
    report = deploy_artifact(artifact, DeployOptions("clothes", role_arn=role), session=AwsSession(region=REGION))
    assert report.smoke.function_error == "Unhandled" and not report.smoke.passed
    with pytest.raises(ArtifactError, match="failed its smoke test: FunctionError Unhandled: Response payload size exceeded") as info:
        report.raise_for_failure()
    assert "aws logs tail /aws/lambda/clothes" in info.value.hint
    record = json.loads(artifact.with_name(artifact.stem + ".deploy.json").read_text())
    assert record["smoke"]["passed"] is False and record["version"] == "1"


def test_smoke_fails_on_the_handlers_own_error(moto, deploy_artifact_factory):
    role = existing_role()
    queue_answers(json.dumps({"error": "cannot decode the image", "statusCode": 400}))
    report = deploy_artifact(deploy_artifact_factory(), DeployOptions("clothes", role_arn=role), session=AwsSession(region=REGION))
    assert report.smoke.function_error is None  # the status code alone says nothing here
    with pytest.raises(ArtifactError, match="the handler answered 400: cannot decode the image"):
        report.raise_for_failure()


def test_no_smoke_invokes_nothing(moto, deploy_artifact_factory):
    role = existing_role()
    report = deploy_artifact(deploy_artifact_factory(), DeployOptions("clothes", role_arn=role, smoke=False), session=AwsSession(region=REGION))
    assert report.smoke is None and report.version == "1"


def test_iam_url_adds_no_public_permission(moto, deploy_artifact_factory):
    role = existing_role()
    report = deploy(deploy_artifact_factory(), role_arn=role, url="iam")
    assert report.url and report.permissions_added == []
    assert lam().get_function_url_config(FunctionName="clothes")["AuthType"] == "AWS_IAM"


def test_plan_without_credentials_calls_nothing(deploy_artifact_factory, aws_env, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("--plan without credentials must not call AWS")

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setattr(AwsSession, "__init__", refuse)
    report = deploy_artifact(deploy_artifact_factory(), DeployOptions("clothes", create_role=True, url="public"), plan_only=True)
    assert report.planned_only and report.region == REGION and report.record_path is None
    assert [c.operation for c in report.plan.calls] == [
        "create_role", "attach_role_policy", "create_function", "publish_version", "create_function_url_config",
        "add_permission", "add_permission", "invoke"]
    assert len(report.commands) == len(report.plan.calls)
    assert any(n.startswith("no AWS credentials here, so nothing was read: planned as for an account where nothing exists yet")
               for n in report.notes)


def test_plan_reads_what_exists_and_changes_nothing(moto, deploy_artifact_factory):
    """--plan reads the account as a run does, so it shows the calls the run would make; it writes nothing."""
    artifact = deploy_artifact_factory()
    deploy(artifact, role_arn=existing_role(), url="public")
    before = lam().get_function(FunctionName="clothes")["Configuration"]
    planned = deploy_artifact(artifact, DeployOptions("clothes", memory_mb=2048, url="none"), plan_only=True,
                              session=AwsSession(region=REGION))
    assert [c.operation for c in planned.plan.calls] == [
        "update_function_configuration", "publish_version", "delete_function_url_config", "remove_permission", "remove_permission", "invoke"]
    assert planned.account == "123456789012" and not any("nothing was read" in n for n in planned.notes)
    assert lam().get_function(FunctionName="clothes")["Configuration"] == before
    assert [v["Version"] for v in lam().list_versions_by_function(FunctionName="clothes")["Versions"]] == ["$LATEST", "1"]
    assert lam().get_function_url_config(FunctionName="clothes")["AuthType"] == "NONE"
    ran = deploy(artifact, memory_mb=2048, url="none")  # and the run makes those very calls
    assert [c.operation for c in ran.plan.calls] == [c.operation for c in planned.plan.calls]


def test_image_deploys_the_pushed_image_and_proves_its_digest(moto, tmp_path, monkeypatch):
    import boto3

    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")  # moto then reports the ECR digest as CodeSha256, as Lambda does
    from conftest import make_image_context

    context = make_image_context(tmp_path / "model-python3.12-arm64-image")
    role = existing_role()
    options = dict(role_arn=role, memory_mb=1024, timeout_s=30, smoke=False)  # moto cannot invoke image functions
    with pytest.raises(InputError, match="no pushed image was named") as info:
        deploy_artifact(context, DeployOptions("clothes", **options), session=AwsSession(region=REGION))
    assert "--image-uri" in info.value.hint
    ecr = boto3.client("ecr", region_name=REGION)
    assert ecr.describe_repositories()["repositories"] == []  # refused before any call; --plan shows create-repository and the push
    repository = ecr.create_repository(repositoryName="clothes")["repository"]

    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "layers": [],
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:" + "b" * 64}}
    digest = ecr.put_image(repositoryName="clothes", imageManifest=json.dumps(manifest), imageTag="v1")["image"]["imageId"]["imageDigest"]
    uri = f"{repository['repositoryUri']}:v1"
    report = deploy_artifact(context, DeployOptions("clothes", image_uri=uri, **options), session=AwsSession(region=REGION))
    assert report.action == "created" and report.upload == "image" and report.uploaded_bytes == 0
    assert report.deployed_code_sha256 == digest.split(":", 1)[1] == report.code_sha256
    config = lam().get_function(FunctionName="clothes")["Configuration"]
    assert (config["PackageType"], config["Architectures"]) == ("Image", ["arm64"])
    assert any("not to be built from this context" in n for n in report.notes)

    again = deploy_artifact(context, DeployOptions("clothes", image_uri=uri, **options), session=AwsSession(region=REGION))
    assert again.action == "unchanged" and not again.published


def test_zip_over_an_image_function_is_refused(moto, tmp_path, deploy_artifact_factory):
    lam().create_function(FunctionName="clothes", Role=existing_role(), PackageType="Image",
                          Code={"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/clothes:v1"})
    with pytest.raises(InputError, match=r"has package type Image and .* is Zip; Lambda cannot change a function's package type") as info:
        deploy(deploy_artifact_factory())
    assert "delete-function" in info.value.hint


def test_smoke_event_is_the_users_the_contexts_or_synthetic(tmp_path, deploy_artifact_factory, sample_images):
    from conftest import make_image_context

    from lamb.deploy.artifact import read_facts
    from lamb.deploy.run import smoke_event

    zip_facts = read_facts(deploy_artifact_factory())
    assert set(smoke_event(zip_facts, None)) == {"image"}  # seeded synthetic JPEG, the model's input size
    assert smoke_event(zip_facts, None) == smoke_event(zip_facts, None)
    context = make_image_context(tmp_path / "ctx")
    (context / "sample-event.json").write_text(json.dumps({"image": "aGVsbG8="}))
    assert smoke_event(read_facts(context), None) == {"image": "aGVsbG8="}
    mine = next(sample_images.glob("*.png"))
    import base64

    assert smoke_event(read_facts(context), mine) == {"image": base64.b64encode(mine.read_bytes()).decode()}


def test_the_smoke_events_image_and_carried_event_are_read_within_lambdas_payload(tmp_path, deploy_artifact_factory):
    from conftest import make_image_context

    from lamb.deploy.artifact import read_facts
    from lamb.deploy.run import smoke_event

    huge = tmp_path / "huge.png"
    with open(huge, "wb") as f:
        f.truncate(2**30)  # sparse: read whole and base64-encoded, it took gigabytes
    with pytest.raises(InputError, match=r"the sample image .*huge.png is larger than 4.5 MB"):
        smoke_event(read_facts(deploy_artifact_factory()), huge)
    context = make_image_context(tmp_path / "ctx")
    with open(context / "sample-event.json", "wb") as f:
        f.truncate(2**30)
    with pytest.raises(InputError, match="is not the smoke event lamb package wrote"):
        smoke_event(read_facts(context), None)
