"""The deployment as a list of AWS API calls, decided from what already exists.

``read_state`` reads the account (the function, its versions, alias, URL and resource policy,
the role, the bucket and key, the repository): every create-or-update decision is made here,
from that state, never by trying a call and catching its refusal. ``make_plan`` returns the
calls; ``lamb deploy`` makes them (``lamb.deploy.aws.Executor``), ``--plan`` shows them
(``lamb.deploy.calls.display``), and ``template.yaml`` is written from the same plan.

``make_plan`` needs no model: a zip with a handler and a package record is enough (``lamb
probe`` deploys its probe function through it).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.cost import cost_per_million
from lamb.deploy import plan as planning
from lamb.deploy.artifact import ArtifactFacts
from lamb.deploy.aws import AwsSession
from lamb.deploy.calls import Call, FileBytes, Ref
from lamb.deploy.plan import URL_AUTH_TYPES, URL_PERMISSIONS, DeployOptions, Settings
from lamb.errors import InputError

# The statements lamb adds for a public URL, by id: removed when the URL is not public any more.
LAMB_STATEMENT_IDS = tuple(s["StatementId"] for s in URL_PERMISSIONS)
# What a publish may change (and so what makes a new version): code and these settings.
_VERSIONED = ("MemorySize", "Timeout", "Runtime", "Handler", "Role")


@dataclass
class State:
    """What already exists. ``read`` False: nothing was read (``--plan``), planned as for an
    account where nothing exists yet."""

    read: bool = False
    unread: str = "nothing was read"  # why not, when not (said in the plan's note)
    function: dict[str, Any] | None = None  # GetFunction's Configuration
    newest_version: dict[str, Any] | None = None  # the newest published version's configuration
    role_arn: str | None = None  # the --create-role role
    bucket_exists: bool = False  # lamb's default bucket (a --s3-bucket is the user's, never created)
    key_exists: bool = False
    repository_uri: str | None = None
    image_digest: str | None = None  # the pushed --image-uri's digest
    alias_version: str | None = None
    url: dict[str, Any] | None = None  # GetFunctionUrlConfig on the alias (or the function)
    statements: list[dict[str, Any]] = field(default_factory=list)  # the resource policy there
    reserved_concurrency: int | None = None
    other_urls: dict[str, dict[str, Any]] = field(default_factory=dict)  # qualifier ("" unqualified) -> its URL config


@dataclass
class Plan:
    """The deployment: what the function will be, and the calls that make it so."""

    function_name: str
    region: str
    package_type: str
    runtime: str | None
    arch: str
    handler: str
    settings: Settings
    upload: str  # "direct" | "s3" | "image"
    s3_bucket: str | None
    s3_key: str | None
    role: str | None  # an ARN, the name of the role to create, or None (an existing function's own)
    create_role: bool
    url: str
    alias: str | None
    image_uri: str | None
    reserved_concurrency: int | None
    configuration: dict[str, Any]  # the function's wanted settings, as CreateFunction takes them (Role aside)
    calls: list[Call] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)  # shell commands before the calls (build and push an image)
    notes: list[str] = field(default_factory=list)

    def has(self, operation: str) -> bool:
        return any(c.operation == operation for c in self.calls)

    def call_params(self, operation: str) -> dict[str, Any] | None:
        """The parameters of the first call of ``operation``, if the plan makes one."""
        return next((c.params for c in self.calls if c.operation == operation), None)


def read_state(aws: AwsSession, facts: ArtifactFacts, options: DeployOptions, account: str) -> State:
    """Everything ``make_plan`` decides from, read-only."""
    name = options.function_name
    existing = aws.get_function(name)
    state = State(read=True, function=existing["Configuration"] if existing else None)
    if state.function is not None:
        state.newest_version = aws.latest_version(name)
        state.reserved_concurrency = (existing or {}).get("Concurrency", {}).get("ReservedConcurrentExecutions")
        if options.alias:
            state.alias_version = aws.alias_version(name, options.alias)
        if state.alias_version is not None or not options.alias:
            state.url = aws.url_config(name, options.alias)
            state.statements = aws.policy_statements(name, options.alias)
        for qualifier in [None, *aws.alias_names(name)]:  # a URL an earlier deploy left on another qualifier
            if qualifier != options.alias and (url := aws.url_config(name, qualifier)) is not None:
                state.other_urls[qualifier or ""] = url
    if options.create_role:
        state.role_arn = aws.role_arn(planning.role_name(name))
    if facts.package_type == "Image":
        if options.image_uri:
            state.image_digest = aws.image_digest(options.image_uri)
        else:
            state.repository_uri = aws.repository_uri(planning.ecr_repository(name))
    elif facts.zipped_bytes is not None and not planning.fits_direct_upload(facts.zipped_bytes):
        bucket = options.s3_bucket or planning.default_bucket(account, aws.region)
        state.bucket_exists = options.s3_bucket is not None or aws.bucket_exists(bucket)
        state.key_exists = state.bucket_exists and aws.key_exists(bucket, planning.s3_key(facts.sha256 or ""))
    return state


def make_plan(facts: ArtifactFacts, options: DeployOptions, state: State, *, region: str, account: str | None = None,
              smoke_event: Path | None = None) -> Plan:
    """The calls that make the function what ``options`` ask, from ``state``."""
    planning.check_options(options)
    planning.check_artifact(facts)
    plan = _wanted(facts, options, state, region, account)
    name = options.function_name
    role = _role(plan, options, state)
    code = _code(plan, facts, options, state, account)
    code_sha256 = state.image_digest if facts.package_type == "Image" else facts.code_sha256
    _function(plan, facts, state, role, code, code_sha256)
    if options.reserved_concurrency is not None and options.reserved_concurrency != state.reserved_concurrency:
        plan.calls.append(Call("lambda", "put_function_concurrency", {"FunctionName": name, "ReservedConcurrentExecutions": options.reserved_concurrency},
                               f"reserving {options.reserved_concurrency} concurrent executions for {name}"))
    version = _publish(plan, state, code_sha256)
    _alias(plan, state, version)
    _url(plan, state)
    if options.smoke:
        assert smoke_event is not None, "the smoke test's event file is written before planning"
        plan.calls.append(Call("lambda", "invoke", {"FunctionName": name, "Qualifier": version, "Payload": FileBytes(smoke_event)},
                               f"invoking {name} once with a sample image (the smoke test)", name="smoke"))
    plan.notes += _public_notes(plan, facts, options, state)
    return plan


def _wanted(facts: ArtifactFacts, options: DeployOptions, state: State, region: str, account: str | None) -> Plan:
    settings = planning.settings_for(facts, options)
    notes: list[str] = []
    if facts.measured_on_stand_in and (options.memory_mb is None or options.timeout_s is None):
        notes.append(f"memory and timeout follow a smoke run on a host stand-in ({facts.measured_on}): an estimate for the target")
    if not state.read:
        notes.append(f"{state.unread}: planned as for an account where nothing exists yet; "
                     "`lamb deploy` reads what exists first and leaves out what is already so")
    configuration: dict[str, Any] = {"MemorySize": settings.memory_mb, "Timeout": settings.timeout_s}
    if facts.package_type == "Zip":  # an image's runtime and entry point are the image's: Lambda refuses Handler and Runtime for it
        configuration.update(Runtime=facts.runtime, Handler=facts.handler)
    bucket = key = image_uri = None
    if facts.package_type == "Image":
        upload = "image"
        image_uri = options.image_uri or planning.image_uri_for(account or "<ACCOUNT>", region, options.function_name, facts)
    elif facts.zipped_bytes is not None and planning.fits_direct_upload(facts.zipped_bytes):
        upload = "direct"
    else:
        upload = "s3"
        key = planning.s3_key(facts.sha256 or "")
        bucket = options.s3_bucket or planning.default_bucket(account or "<ACCOUNT>", region)
        if options.s3_bucket is None:
            notes.append(f"{facts.path.name} is over the direct-upload limit: it goes through S3, to the bucket {bucket} "
                         "(created if missing; --s3-bucket to choose one)")
    return Plan(
        function_name=options.function_name, region=region, package_type=facts.package_type, runtime=facts.runtime,
        arch=facts.arch, handler=facts.handler, settings=settings, upload=upload, s3_bucket=bucket, s3_key=key,
        role=options.role_arn or (planning.role_name(options.function_name) if options.create_role else None),
        create_role=options.create_role, url=options.url, alias=options.alias, image_uri=image_uri,
        reserved_concurrency=options.reserved_concurrency, configuration=configuration, notes=notes,
    )


def _role(plan: Plan, options: DeployOptions, state: State) -> str | Ref | None:
    if options.role_arn:
        return options.role_arn
    if not options.create_role:
        if state.function is None and state.read:
            raise InputError(f"there is no function {options.function_name} yet, and creating one needs an execution role",
                             "pass --create-role (least privilege: CloudWatch Logs only), or --role ARN")
        if not state.read:
            plan.notes.append("no --role or --create-role: an existing function keeps its role; creating one needs either")
        return None
    if state.role_arn:
        return state.role_arn
    name = planning.role_name(options.function_name)
    plan.calls += [
        Call("iam", "create_role", {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(planning.TRUST_POLICY, separators=(",", ":")),
                                    "Description": "Lambda execution role made by lamb deploy: CloudWatch Logs only"},
             f"creating the execution role {name} (trusts lambda.amazonaws.com)", name="role"),
        Call("iam", "attach_role_policy", {"RoleName": name, "PolicyArn": planning.BASIC_EXECUTION_POLICY_ARN},
             f"attaching the basic execution policy (CloudWatch Logs only) to {name}"),
    ]
    return Ref("role", "Role.Arn")


def _code(plan: Plan, facts: ArtifactFacts, options: DeployOptions, state: State, account: str | None) -> dict[str, Any]:
    """Where Lambda reads the code from; the bucket, the upload, the repository when missing."""
    name = options.function_name
    if plan.upload == "image":
        if options.image_uri is None:
            repo = planning.ecr_repository(name)
            if state.repository_uri is None:
                plan.calls.append(Call("ecr", "create_repository", {"repositoryName": repo, "imageScanningConfiguration": {"scanOnPush": True}},
                                       f"creating the ECR repository {repo}"))
            plan.prerequisites = _build_and_push(plan, facts)
            plan.notes.append("build and push the image (the commands above), then deploy with --image-uri; lamb does not run Docker")
        else:
            plan.notes.append("an image is proven to be the pushed image (its digest), not to be built from this context")
        return {"ImageUri": plan.image_uri}
    if plan.upload == "direct":
        return {"ZipFile": FileBytes(facts.path)}
    assert plan.s3_bucket and plan.s3_key
    changes = state.function is None or state.function.get("CodeSha256") != facts.code_sha256
    if options.s3_bucket is None and not state.bucket_exists:
        kwargs: dict[str, Any] = {"Bucket": plan.s3_bucket}
        if plan.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": plan.region}
        plan.calls.append(Call("s3", "create_bucket", kwargs, f"creating the bucket {plan.s3_bucket} for zips over the direct-upload limit"))
    if changes and not state.key_exists:
        plan.calls.append(Call("s3", "put_object", {"Bucket": plan.s3_bucket, "Key": plan.s3_key, "Body": FileBytes(facts.path)},
                               f"uploading {facts.path.name} to s3://{plan.s3_bucket}/{plan.s3_key} (content-addressed by its sha256)"))
    elif changes:
        plan.notes.append(f"s3://{plan.s3_bucket}/{plan.s3_key} already holds this zip: not uploaded again")
    return {"S3Bucket": plan.s3_bucket, "S3Key": plan.s3_key}


def _build_and_push(plan: Plan, facts: ArtifactFacts) -> list[str]:
    uri = plan.image_uri or ""
    registry = uri.split("/", 1)[0]
    return [
        shlex.join(["docker", "build", "--platform", "linux/amd64" if plan.arch == "x86_64" else "linux/arm64",
                    "--provenance=false", "-t", uri, str(facts.path)]),  # Lambda refuses the manifest list BuildKit writes by default
        shlex.join(["aws", "ecr", "get-login-password", "--region", plan.region]) + " | "
        + shlex.join(["docker", "login", "--username", "AWS", "--password-stdin", registry]),
        shlex.join(["docker", "push", uri]),
    ]


def _function(plan: Plan, facts: ArtifactFacts, state: State, role: str | Ref | None, code: dict[str, Any], code_sha256: str | None) -> None:
    """Create the function, or update its code (then its configuration) where they differ."""
    name = plan.function_name
    wanted = {**plan.configuration, **({"Role": role} if role is not None else {})}
    if state.function is None:
        plan.calls.append(Call(
            "lambda", "create_function",
            {"FunctionName": name, "PackageType": facts.package_type, "Code": code, "Architectures": [facts.arch],
             "Description": f"lamb: {facts.model} ({facts.runtime or 'image'} {facts.arch})"[:256], "Publish": False, **wanted},
            f"creating the function {name}", name="function", wait="function_active_v2", retry_role=True,
        ))
        return
    _refuse_kind_change(state.function, facts, name)
    if state.function.get("CodeSha256") != code_sha256 or code_sha256 is None:
        plan.calls.append(Call("lambda", "update_function_code", {"FunctionName": name, **code},
                               f"updating the code of {name}", wait="function_updated_v2"))
    drift = {k: v for k, v in wanted.items() if isinstance(v, Ref) or state.function.get(k) != v}
    if drift:
        plan.calls.append(Call("lambda", "update_function_configuration", {"FunctionName": name, **drift},
                               f"updating the configuration of {name} ({', '.join(drift)})", wait="function_updated_v2", retry_role=True))


def _publish(plan: Plan, state: State, code_sha256: str | None) -> Ref:
    """Publish a version; Lambda publishes none when nothing changed since the newest one
    (API_PublishVersion), and CodeSha256 makes it refuse other code than the artifact's."""
    params: dict[str, Any] = {"FunctionName": plan.function_name, "Description": "published by lamb deploy"}
    if code_sha256:
        params["CodeSha256"] = code_sha256
    plan.calls.append(Call("lambda", "publish_version", params, f"publishing a version of {plan.function_name}", name="publish"))
    return Ref("publish", "Version")


def nothing_new(plan: Plan, state: State) -> bool:
    """True when the newest version already is this code and configuration (publishing returns it)."""
    newest = state.newest_version
    if newest is None or plan.has("create_function") or plan.has("update_function_code") or plan.has("update_function_configuration"):
        return False
    current = state.function or {}
    return newest.get("CodeSha256") == current.get("CodeSha256") and all(newest.get(k) == current.get(k) for k in _VERSIONED)


def _alias(plan: Plan, state: State, version: Ref) -> None:
    if not plan.alias:
        return
    params = {"FunctionName": plan.function_name, "Name": plan.alias, "FunctionVersion": version}
    if state.alias_version is None:
        plan.calls.append(Call("lambda", "create_alias", params, f"creating the alias {plan.alias}", name="alias"))
    elif not (nothing_new(plan, state) and state.alias_version == (state.newest_version or {}).get("Version")):
        plan.calls.append(Call("lambda", "update_alias", params, f"pointing the alias {plan.alias} at the new version", name="alias"))


def _url(plan: Plan, state: State) -> None:
    """The URL as asked, and lamb's public statements only while the URL is public."""
    name = plan.function_name
    target = {"FunctionName": name, **({"Qualifier": plan.alias} if plan.alias else {})}
    where = f"{name}:{plan.alias}" if plan.alias else name
    auth = URL_AUTH_TYPES.get(plan.url)
    current = (state.url or {}).get("AuthType")
    if auth is None and current is not None:
        plan.calls.append(Call("lambda", "delete_function_url_config", dict(target), f"removing the function URL of {where} (--url none)"))
    elif auth is not None and current is None:
        plan.calls.append(Call("lambda", "create_function_url_config", {**target, "AuthType": auth}, f"creating the {auth} function URL of {where}", name="url"))
    elif auth is not None and current != auth:
        plan.calls.append(Call("lambda", "update_function_url_config", {**target, "AuthType": auth}, f"changing the function URL of {where} to {auth}", name="url"))
    present = {s.get("Sid") for s in state.statements}
    for statement in URL_PERMISSIONS:
        sid = statement["StatementId"]
        if plan.url == "public" and sid not in present:
            plan.calls.append(Call("lambda", "add_permission", {**target, **statement}, f"allowing anyone to call the URL of {where} ({statement['Action']})"))
        elif plan.url != "public" and sid in present:
            plan.calls.append(Call("lambda", "remove_permission", {**target, "StatementId": sid},
                                   f"removing the public permission {sid} of {where} (--url {plan.url})"))


def _public_notes(plan: Plan, facts: ArtifactFacts, options: DeployOptions, state: State) -> list[str]:
    notes = []
    others = [s.get("Sid") for s in state.statements if s.get("Principal") in ("*", {"AWS": "*"}) and s.get("Sid") not in LAMB_STATEMENT_IDS]
    if others:
        notes.append(f"the resource policy also allows anyone through statements lamb did not add ({', '.join(map(str, others))}): left as they are")
    for qualifier, url in sorted(state.other_urls.items()):
        where = f"{plan.function_name}:{qualifier}" if qualifier else plan.function_name
        public = "a public" if url.get("AuthType") == "NONE" else f"an {url.get('AuthType')}"
        qualifier_flag = f" --alias {qualifier}" if qualifier else ""
        notes.append(f"{where} still has {public} URL from another deploy ({url.get('FunctionUrl')}), which this one leaves alone: "
                     f"`lamb deploy -n {plan.function_name}{qualifier_flag} --url none` removes it")
    if plan.url != "public":
        return notes
    cap = options.reserved_concurrency if options.reserved_concurrency is not None else state.reserved_concurrency
    concurrency = (f"concurrency is capped at {cap} (reserved)" if cap is not None
                   else "concurrency is unbounded (up to the account's regional limit) unless --reserved-concurrency N caps it")
    memory = plan.settings.memory_mb
    if facts.invoke_ms:
        per_million = cost_per_million(facts.invoke_ms, memory, facts.arch)
        cost = (f"one request costs about ${per_million / 1e6:.7f} (${per_million:,.2f} per million) at {memory:,} MB on {facts.arch}, "
                f"from the smoke run's {facts.invoke_ms:,.0f} ms")
    else:
        cost = "the artifact carries no measured request time to price a request with"
    notes.append(f"--url public: anyone on the internet can invoke it; {cost}; {concurrency}")
    return notes


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
