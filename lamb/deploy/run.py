"""``deploy_artifact``: the artifact on Lambda, proven to be the built code, recorded.

Order: read the artifact's record -> plan (limits, settings, upload path; ``--plan`` stops here)
-> who is deploying -> the existing function (a change of package type or arch is refused
before anything is uploaded) -> role -> code (direct, or S3 once per sha256, or a pushed image)
-> create, or update code and configuration (each waited for) -> proof: the deployed
CodeSha256, runtime, arch and handler are the artifact's -> publish a version only when
something changed -> alias -> URL and its permissions -> one smoke invocation -> records.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.deploy import plan as planning
from lamb.deploy.artifact import ArtifactFacts, read_facts
from lamb.deploy.aws import AwsSession
from lamb.deploy.plan import DeployOptions, Plan
from lamb.errors import ArtifactError, AwsError, InputError

RECORD_SUFFIX = ".deploy.json"
TEMPLATE_NAME = "template.yaml"


@dataclass
class SmokeInvoke:
    """The one invocation of the deployed version with a sample image."""

    passed: bool
    status_code: int
    function_error: str | None  # Lambda's FunctionError ("Unhandled"): the handler raised or the runtime failed
    response: Any  # the payload, parsed as JSON when it is
    reason: str = ""  # why it failed


@dataclass
class DeployReport:
    artifact: Path
    function_name: str
    region: str
    planned_only: bool  # True: --plan, nothing was called
    plan: Plan
    account: str | None = None
    function_arn: str | None = None
    action: str = "planned"  # "created" | "updated" | "unchanged" | "planned"
    changed: list[str] = field(default_factory=list)  # "code", "configuration"
    upload: str = ""  # "direct" | "s3" | "image" | "none: the function already runs this code"
    uploaded_bytes: int = 0  # 0: nothing was sent
    s3_uri: str | None = None
    bucket_created: bool = False
    role_arn: str | None = None
    role_created: bool = False
    version: str | None = None
    published: bool = False  # False: the newest version already held this code and configuration
    alias: str | None = None
    alias_action: str | None = None
    url: str | None = None
    url_action: str | None = None
    permissions_added: list[str] = field(default_factory=list)
    artifact_sha256: str | None = None  # hex sha256 of the zip (or the image digest)
    code_sha256: str | None = None  # what Lambda must report: base64 of the zip's digest, or the image digest
    deployed_code_sha256: str | None = None  # what Lambda reports
    smoke: SmokeInvoke | None = None
    record_path: Path | None = None
    template_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def raise_for_failure(self) -> None:
        """``ArtifactError`` (exit code 9) when the deployed function failed its smoke test."""
        if self.smoke is not None and not self.smoke.passed:
            raise ArtifactError(
                f"the deployed function failed its smoke test: {self.smoke.reason}",
                f"see its logs: `aws logs tail /aws/lambda/{self.function_name} --since 10m --region {self.region}`; "
                f"the deployment is recorded in {self.record_path}",
            )


def deploy_artifact(
    artifact: Path | None,
    options: DeployOptions,
    *,
    plan_only: bool = False,
    session: AwsSession | None = None,
) -> DeployReport:
    """Deploy ``artifact`` (default: the one ``lamb package`` last built here) as ``options`` say.

    A failed smoke test does not raise here: the function is deployed and recorded either way;
    ``DeployReport.raise_for_failure()`` turns it into an error (the CLI does, after printing).
    """
    if artifact is None:
        from lamb.invoke import default_artifact

        artifact = default_artifact()
    planning.check_options(options)
    facts = read_facts(Path(artifact))
    planning.check_artifact(facts)
    if plan_only:
        region = options.region or _configured_region(options.profile) or "<REGION>"
        plan = planning.make_plan(facts, options, region=region)
        return DeployReport(facts.path, options.function_name, region, True, plan, upload=plan.upload,
                            artifact_sha256=facts.sha256, code_sha256=facts.code_sha256, notes=list(plan.notes))

    aws = session or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
    account = aws.account_id()
    plan = planning.make_plan(facts, options, region=aws.region, account=account)
    report = DeployReport(facts.path, options.function_name, aws.region, False, plan, account=account, upload=plan.upload,
                          artifact_sha256=facts.sha256, code_sha256=facts.code_sha256, alias=options.alias)
    name = options.function_name
    existing = aws.get_function(name)
    if existing is not None:
        _refuse_kind_change(existing["Configuration"], facts, name)
    elif not (options.role_arn or options.create_role):
        raise InputError(f"there is no function {name} yet, and creating one needs an execution role",
                         "pass --create-role (least privilege: CloudWatch Logs only), or --role ARN")

    code = _code(aws, facts, plan, options, report)
    role_arn = options.role_arn
    if options.create_role:
        role_arn, report.role_created = aws.ensure_role(plan.role)
    current = existing["Configuration"] if existing else None
    report.role_arn = role_arn or (current or {}).get("Role")
    _create_or_update(aws, facts, options, report, current, code, _configuration(plan, facts, role_arn))

    deployed = aws.get_function(name)
    assert deployed is not None
    report.deployed_code_sha256 = _prove(deployed["Configuration"], facts, report.code_sha256, name)
    _publish(aws, name, report)
    _expose(aws, options, report)
    if options.smoke:
        report.smoke = _smoke(aws, facts, name, report.version, options.sample_image)
    _write_records(report, facts)
    return report


# -- steps ----------------------------------------------------------------------------------------


def _create_or_update(aws: AwsSession, facts: ArtifactFacts, options: DeployOptions, report: DeployReport,
                      current: dict[str, Any] | None, code: dict[str, Any], config: dict[str, Any]) -> None:
    """Create the function, or update what differs: code first (waited for), then configuration."""
    name = options.function_name
    if current is None:
        report.uploaded_bytes += _upload_zip(aws, facts, options, report, code)
        created = aws.create_function(
            FunctionName=name, PackageType=facts.package_type, Code=code, Architectures=[facts.arch],
            Description=_description(facts), Publish=False, **config,
        )
        report.function_arn = created["FunctionArn"]
        report.action, report.changed = "created", ["code", "configuration"]
        return
    report.function_arn = current["FunctionArn"]
    if current.get("CodeSha256") != report.code_sha256:
        report.uploaded_bytes += _upload_zip(aws, facts, options, report, code)
        aws.update_code(name, code)
        report.changed.append("code")
    else:
        report.upload = "none: the function already runs this code"
    drift = {k: v for k, v in config.items() if current.get(k) != v}
    if drift:
        aws.update_configuration(name, drift)
        report.changed.append("configuration")
    report.action = "updated" if report.changed else "unchanged"


def _publish(aws: AwsSession, name: str, report: DeployReport) -> None:
    """Publish a version of exactly the artifact's code, unless the newest version already is one.

    "Lambda doesn't publish a version if the function's configuration and code haven't changed
    since the last version" (API_PublishVersion): it answers with that version, so asking is safe
    and a second deploy of the same zip publishes nothing. CodeSha256 makes Lambda refuse to
    publish other code than the artifact's, should someone deploy in between.
    """
    newest = aws.latest_version(name)
    published = aws.publish_version(name, report.code_sha256)
    if published.get("CodeSha256") != report.code_sha256:
        raise AwsError(f"version {published['Version']} of {name} holds other code than the artifact ({published.get('CodeSha256')} != {report.code_sha256})",
                       "another deployment changed the function meanwhile; deploy again")
    report.version = published["Version"]
    report.published = newest is None or newest["Version"] != published["Version"]


def _expose(aws: AwsSession, options: DeployOptions, report: DeployReport) -> None:
    """The alias on the new version, the function URL on the alias, and the URL's permissions."""
    name = options.function_name
    if options.alias:
        assert report.version is not None  # _publish set it
        report.alias_action = aws.ensure_alias(name, options.alias, report.version)
    if options.url == "none":
        return
    report.url, report.url_action = aws.ensure_url(name, options.alias, planning.URL_AUTH_TYPES[options.url])
    if options.url == "public":
        for statement in planning.URL_PERMISSIONS:
            if aws.add_permission(name, options.alias, **statement):
                report.permissions_added.append(statement["Action"])


def _configured_region(profile: str | None) -> str | None:
    """The region boto3 would use, read from the environment and config files only (no call)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from lamb.deploy.aws import configured_region

    try:
        return configured_region(boto3.Session(profile_name=profile))
    except BotoCoreError:  # an unknown profile only means no default region for a plan
        return None


def _refuse_kind_change(current: dict[str, Any], facts: ArtifactFacts, name: str) -> None:
    package_type = current.get("PackageType", "Zip")
    arch = (current.get("Architectures") or ["x86_64"])[0]
    if package_type != facts.package_type:
        raise InputError(
            f"the function {name} has package type {package_type} and {facts.path.name} is {facts.package_type}; Lambda cannot change a function's package type; nothing was uploaded",
            f"deploy under another --function-name, or delete it first: aws lambda delete-function --function-name {name}",
        )
    if arch != facts.arch:
        raise InputError(
            f"the function {name} runs on {arch} and {facts.path.name} is built for {facts.arch}; nothing was uploaded",
            f"build for {arch} (`lamb package --arch {arch}`), or deploy under another --function-name",
        )


def _description(facts: ArtifactFacts) -> str:
    return f"lamb: {facts.model} ({facts.runtime or 'image'} {facts.arch})"[:256]


def _configuration(plan: Plan, facts: ArtifactFacts, role_arn: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {"MemorySize": plan.settings.memory_mb, "Timeout": plan.settings.timeout_s}
    if facts.package_type == "Zip":
        config.update(Runtime=facts.runtime, Handler=facts.handler)
    if role_arn:
        config["Role"] = role_arn
    return config


def _code(aws: AwsSession, facts: ArtifactFacts, plan: Plan, options: DeployOptions, report: DeployReport) -> dict[str, Any]:
    """Where the code comes from. Nothing is uploaded here (see ``_upload_zip``)."""
    if facts.package_type == "Image":
        uri, created = aws.ensure_repository(planning.ecr_repository(options.function_name))
        if created:
            report.notes.append(f"created the ECR repository {uri}")
        if options.image_uri is None:
            raise InputError(
                f"{facts.path.name} is an image build context and no pushed image was named",
                "build and push it (`lamb deploy --plan` prints the docker commands, with --provenance=false), then pass --image-uri",
            )
        digest = aws.image_digest(options.image_uri)
        report.artifact_sha256 = report.code_sha256 = digest
        report.notes.append("an image is proven to be the pushed image (its digest), not to be built from this context")
        return {"ImageUri": options.image_uri}
    if plan.upload == "direct":
        return {"ZipFile": None}  # read only if it is sent
    assert facts.sha256 is not None and plan.s3_key is not None
    bucket = options.s3_bucket or planning.default_bucket(report.account or "", aws.region)
    report.s3_uri = f"s3://{bucket}/{plan.s3_key}"
    return {"S3Bucket": bucket, "S3Key": plan.s3_key}


def _upload_zip(aws: AwsSession, facts: ArtifactFacts, options: DeployOptions, report: DeployReport, code: dict[str, Any]) -> int:
    """Put the zip where Lambda reads it; returns the bytes sent (0 when S3 already holds it)."""
    if "ZipFile" in code:
        code["ZipFile"] = facts.path.read_bytes()
        return len(code["ZipFile"])
    if "S3Bucket" not in code:
        return 0  # an image: already pushed
    if options.s3_bucket is None:  # lamb's own bucket for this account and region
        report.bucket_created = aws.ensure_bucket(code["S3Bucket"])
        report.notes.append(f"{'created' if report.bucket_created else 'reused'} the bucket {code['S3Bucket']} for zips over the direct-upload limit")
    if aws.upload_once(code["S3Bucket"], code["S3Key"], facts.path):
        return facts.zipped_bytes or 0
    report.notes.append(f"{report.s3_uri} already held this zip: not uploaded again")
    return 0


def _prove(config: dict[str, Any], facts: ArtifactFacts, expected: str | None, name: str) -> str | None:
    """The deployed function must run the built code on the artifact's runtime, arch and handler."""
    deployed = config.get("CodeSha256")
    if deployed != expected:
        raise AwsError(
            f"the deployed code of {name} is not the built code: Lambda reports CodeSha256 {deployed}, the artifact's is {expected}",
            "another deployment changed the function meanwhile, or the upload was altered; deploy again",
        )
    wanted: dict[str, Any] = {"Architectures": [facts.arch]}
    if facts.package_type == "Zip":
        wanted.update(Runtime=facts.runtime, Handler=facts.handler)
    for key, value in wanted.items():
        if config.get(key) != value:
            raise AwsError(f"{name} reports {key} {config.get(key)!r}, the artifact needs {value!r}", "deploy again; if it persists, update the function by hand")
    return deployed


def smoke_event(facts: ArtifactFacts, image: Path | None) -> dict[str, Any]:
    """The event the smoke test sends: ``--sample-image``; else the one an image context carries
    (an image the function answered in lamb's smoke run); else a seeded synthetic image."""
    from lamb.package.artifact import SAMPLE_EVENT
    from lamb.package.build import sample_event

    carried = facts.path / SAMPLE_EVENT
    if image is None and facts.path.is_dir() and carried.is_file():
        return json.loads(carried.read_text(encoding="utf-8"))
    return sample_event(facts.manifest, image)


def _smoke(aws: AwsSession, facts: ArtifactFacts, name: str, version: str | None, image: Path | None) -> SmokeInvoke:
    status, function_error, payload = aws.invoke(name, version, smoke_event(facts, image))
    try:
        response: Any = json.loads(payload) if payload else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        response = payload.decode("utf-8", "replace")
    reason = ""
    if function_error:
        detail = response.get("errorMessage") if isinstance(response, dict) else response
        reason = f"FunctionError {function_error}: {detail}"
    elif not 200 <= status < 300:
        reason = f"status {status}"
    elif isinstance(response, dict) and isinstance(response.get("statusCode"), int) and response["statusCode"] >= 400:
        reason = f"the handler answered {response['statusCode']}: {response.get('error') or response.get('body')}"
    elif not isinstance(response, dict) or not response:
        reason = f"the handler answered {str(response)[:120]!r}, not scores"
    return SmokeInvoke(not reason, status, function_error, response, reason)


# -- records --------------------------------------------------------------------------------------


def record(report: DeployReport) -> dict[str, Any]:
    """What ``<stem>.deploy.json`` holds."""
    return {
        "function_arn": report.function_arn,
        "function_name": report.function_name,
        "version": report.version,
        "alias": report.alias,
        "url": report.url,
        "region": report.region,
        "account": report.account,
        "upload": report.upload,
        "s3_uri": report.s3_uri,
        "artifact": report.artifact.name,
        "artifact_sha256": report.artifact_sha256,
        "deployed_code_sha256": report.deployed_code_sha256,
        "runtime": report.plan.runtime,
        "arch": report.plan.arch,
        "handler": report.plan.handler,
        "memory_mb": report.plan.settings.memory_mb,
        "timeout_s": report.plan.settings.timeout_s,
        "smoke": None if report.smoke is None else {"passed": report.smoke.passed, "reason": report.smoke.reason},
        "deployed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _write_records(report: DeployReport, facts: ArtifactFacts) -> None:
    from lamb.deploy import template

    folder = facts.path.resolve().parent
    report.record_path = folder / f"{facts.stem}{RECORD_SUFFIX}"
    mf.atomic_write_bytes(report.record_path, (json.dumps(record(report), indent=2) + "\n").encode())
    bucket, key = (report.s3_uri[5:].split("/", 1) if report.s3_uri else (None, None))
    document = template.template(report.plan, role_arn=None if report.role_created else report.role_arn,
                                 s3_bucket=bucket, s3_key=key, code_sha256=report.deployed_code_sha256 if facts.package_type == "Zip" else None)
    report.template_path = folder / TEMPLATE_NAME
    mf.atomic_write_bytes(report.template_path, template.render(document).encode())
