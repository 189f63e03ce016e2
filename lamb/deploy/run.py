"""``deploy_artifact``: the artifact on Lambda, proven to be the built code, recorded.

Order: read the artifact's record -> who is deploying -> what exists (``planner.read_state``)
-> the plan: the API calls, decided from that state, every refusal (a package type or arch
change, no role) before any call -> the calls, made in order (``aws.Executor``) -> proof: the
published version holds the artifact's code, runtime, arch and handler -> one smoke
invocation -> records. ``--plan`` stops at the plan and shows its calls as AWS CLI commands.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb.deploy import learn
from lamb.deploy import plan as planning
from lamb.deploy.artifact import ArtifactFacts, read_facts
from lamb.deploy.aws import AwsSession, Executor
from lamb.deploy.calls import display
from lamb.deploy.plan import DeployOptions
from lamb.deploy.planner import Plan, State, make_plan, read_state
from lamb.deploy.report import DeployReport, SmokeInvoke
from lamb.errors import AwsError, InputError
from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES
from lamb.records import read_at_most

RECORD_SUFFIX = ".deploy.json"
TEMPLATE_NAME = "template.yaml"
SMOKE_EVENT_SUFFIX = ".smoke-event.json"


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
    event = write_smoke_event(facts, options.sample_image) if options.smoke else None
    return deploy_facts(facts, options, plan_only=plan_only, session=session, smoke_event=event)


def deploy_facts(
    facts: ArtifactFacts,
    options: DeployOptions,
    *,
    plan_only: bool = False,
    session: AwsSession | None = None,
    smoke_event: Path | None = None,
) -> DeployReport:
    """Deploy what ``facts`` describe: a lamb artifact (``read_facts``), or a plain zip
    (``artifact.plain_zip``, e.g. ``lamb probe``'s function) smoke-tested with ``smoke_event``."""
    planning.check_options(options)
    planning.check_artifact(facts)
    event = smoke_event
    if plan_only:
        state, region, account = _state_for_plan(facts, options, session)
        plan = make_plan(facts, options, state, region=region, account=account, smoke_event=event)
        return DeployReport(facts.path, options.function_name, region, True, plan, account=account, upload=plan.upload,
                            artifact_sha256=facts.sha256, code_sha256=facts.code_sha256, notes=list(plan.notes),
                            commands=display(plan.calls, region=region, endpoint_url=options.endpoint_url))

    aws = session or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
    account = aws.account_id()
    state = read_state(aws, facts, options, account)
    plan = make_plan(facts, options, state, region=aws.region, account=account, smoke_event=event)
    if plan.prerequisites:
        raise InputError(
            f"{facts.path.name} is an image build context and no pushed image was named",
            "build and push it (`lamb deploy --plan` prints the docker commands, with --provenance=false), then pass --image-uri",
        )
    code_sha256 = state.image_digest if facts.package_type == "Image" else facts.code_sha256
    report = DeployReport(facts.path, options.function_name, aws.region, False, plan, account=account, upload=plan.upload,
                          artifact_sha256=state.image_digest or facts.sha256, code_sha256=code_sha256, alias=options.alias,
                          notes=list(plan.notes))
    executor = Executor(aws)
    for call in plan.calls:
        executor.run(call)
        if call.name == "publish":
            report.deployed_code_sha256 = _prove(executor.responses["publish"], facts, code_sha256, options.function_name)
    _outcome(report, plan, state, executor.responses, facts)
    if "smoke" in executor.responses:
        report.smoke = smoke_result(executor.responses["smoke"])
        report.learned = learn.from_smoke(report.smoke, facts, aws.region)
    _write_records(report, facts)
    return report


def _outcome(report: DeployReport, plan: Plan, state: State, responses: dict[str, Any], facts: ArtifactFacts) -> None:
    """What the calls did, for the report: read from the plan, the state before and the answers."""
    current = state.function or {}
    report.function_arn = (responses.get("function") or current).get("FunctionArn")
    if plan.has("create_function"):
        report.action, report.changed = "created", ["code", "configuration"]
    else:
        report.changed = [what for op, what in (("update_function_code", "code"), ("update_function_configuration", "configuration")) if plan.has(op)]
        report.action = "updated" if report.changed else "unchanged"
    code_sent = plan.has("create_function") or plan.has("update_function_code")
    if not code_sent:
        report.upload = "none: the function already runs this code"
    if plan.upload == "s3":
        report.s3_uri = f"s3://{plan.s3_bucket}/{plan.s3_key}"
        report.bucket_created = plan.has("create_bucket")
    if plan.has("put_object") or (plan.upload == "direct" and code_sent):
        report.uploaded_bytes = facts.zipped_bytes or 0
    report.role_created = plan.has("create_role")
    created = (responses.get("role") or {}).get("Role", {}).get("Arn")
    given = plan.role if plan.role and plan.role.startswith("arn:") else None
    report.role_arn = created or state.role_arn or given or current.get("Role")
    report.version = responses["publish"]["Version"]
    newest = state.newest_version
    report.published = newest is None or newest["Version"] != report.version
    if plan.alias:
        report.alias_action = ("created" if plan.has("create_alias")
                               else "moved" if plan.has("update_alias") and state.alias_version != report.version else "unchanged")
    url = responses.get("url") or (state.url if plan.url != "none" else None)
    report.url = (url or {}).get("FunctionUrl")
    report.url_action = ("created" if plan.has("create_function_url_config") else "updated" if plan.has("update_function_url_config")
                         else "removed" if plan.has("delete_function_url_config") else "unchanged" if report.url else None)
    report.permissions_added = [c.params["Action"] for c in plan.calls if c.operation == "add_permission"]
    report.permissions_removed = [c.params["StatementId"] for c in plan.calls if c.operation == "remove_permission"]
    report.reserved_concurrency = plan.reserved_concurrency if plan.reserved_concurrency is not None else state.reserved_concurrency


def _state_for_plan(facts: ArtifactFacts, options: DeployOptions, session: AwsSession | None) -> tuple[State, str, str | None]:
    """What exists, read as a run would read it (read-only calls), so ``--plan`` shows the calls
    the run would make; without credentials, or when AWS cannot be reached, an empty account."""
    region = options.region or _configured_region(options.profile) or "<REGION>"
    if session is None and not _has_credentials(options.profile):
        return State(unread="no AWS credentials here, so nothing was read"), region, None
    if session is None and region == "<REGION>":
        return State(unread="no AWS region (--region, or AWS_REGION), so nothing was read"), region, None
    try:
        aws = session or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
        account = aws.account_id()
        return read_state(aws, facts, options, account), aws.region, account
    except AwsError as exc:
        return State(unread=f"the account could not be read ({exc.message})"), region, None


def _has_credentials(profile: str | None) -> bool:
    """Whether boto3 finds credentials (environment, files, SSO cache, instance role) for ``profile``."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile).get_credentials() is not None
    except BotoCoreError:
        return False


def _configured_region(profile: str | None) -> str | None:
    """The region boto3 would use, read from the environment and config files only (no call)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    from lamb.deploy.aws import configured_region

    try:
        return configured_region(boto3.Session(profile_name=profile))
    except BotoCoreError:  # an unknown profile only means no default region for a plan
        return None


def _prove(config: dict[str, Any], facts: ArtifactFacts, expected: str | None, name: str) -> str:
    """The published version must run the built code on the artifact's runtime, arch and handler."""
    deployed = config.get("CodeSha256")
    if deployed is None or deployed != expected:
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
    from lamb.package.smoke import sample_event

    carried = facts.path / SAMPLE_EVENT
    if image is None and facts.path.is_dir() and carried.is_file():
        data = read_at_most(carried, MAX_PAYLOAD_BYTES)  # lamb package wrote it within Lambda's payload limit
        try:
            if len(data) <= MAX_PAYLOAD_BYTES:
                return json.loads(data)
        except (ValueError, RecursionError):
            pass
        raise InputError(f"{carried} is not the smoke event lamb package wrote", "package the image again, or pass --sample-image")
    if facts.manifest is None:
        raise InputError(f"{facts.path.name} is not a lamb artifact: there is no sample image to send it",
                         "give the smoke test's event yourself, or deploy with --no-smoke")
    return sample_event(facts.manifest, image)


def write_smoke_event(facts: ArtifactFacts, image: Path | None) -> Path:
    """The smoke test's event as a file, so the displayed ``aws lambda invoke`` reads what the run sends.

    An image context carries one (``sample-event.json``, answered in lamb's smoke run); otherwise
    it is written beside the artifact as ``<stem>.smoke-event.json``.
    """
    from lamb.package.artifact import SAMPLE_EVENT

    carried = facts.path / SAMPLE_EVENT
    if image is None and facts.path.is_dir() and carried.is_file():
        return carried
    path = facts.path.resolve().parent / f"{facts.stem}{SMOKE_EVENT_SUFFIX}"
    mf.atomic_write_bytes(path, json.dumps(smoke_event(facts, image)).encode())
    return path


def smoke_result(response: dict[str, Any]) -> SmokeInvoke:
    """The smoke invocation judged: a FunctionError, a status, or a handler's own error all fail it."""
    status, function_error, payload = response["StatusCode"], response.get("FunctionError"), response.get("Payload") or b""
    try:
        answer: Any = json.loads(payload) if payload else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = payload.decode("utf-8", "replace")
    reason = ""
    if function_error:
        detail = answer.get("errorMessage") if isinstance(answer, dict) else answer
        reason = f"FunctionError {function_error}: {detail}"
    elif not 200 <= status < 300:
        reason = f"status {status}"
    elif isinstance(answer, dict) and isinstance(answer.get("statusCode"), int) and answer["statusCode"] >= 400:
        reason = f"the handler answered {answer['statusCode']}: {answer.get('error') or answer.get('body')}"
    elif not isinstance(answer, dict) or not answer:
        reason = f"the handler answered {str(answer)[:120]!r}, not scores"
    return SmokeInvoke(not reason, status, function_error, answer, reason)


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
        "reserved_concurrency": report.reserved_concurrency,
        "timeout_s": report.plan.settings.timeout_s,
        "smoke": None if report.smoke is None else {"passed": report.smoke.passed, "reason": report.smoke.reason},
        "deployed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _write_records(report: DeployReport, facts: ArtifactFacts) -> None:
    from lamb.deploy import template

    folder = facts.path.resolve().parent
    report.record_path = folder / f"{facts.stem}{RECORD_SUFFIX}"
    mf.atomic_write_bytes(report.record_path, (json.dumps(record(report), indent=2) + "\n").encode())
    s3 = report.plan.upload == "s3"
    document = template.template(report.plan, role_arn=None if report.role_created else report.role_arn,
                                 s3_bucket=report.plan.s3_bucket if s3 else None, s3_key=report.plan.s3_key if s3 else None, code_sha256=report.deployed_code_sha256 if facts.package_type == "Zip" else None)
    report.template_path = folder / TEMPLATE_NAME
    mf.atomic_write_bytes(report.template_path, template.render(document).encode())
