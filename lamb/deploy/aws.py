"""The AWS calls deploy makes, through boto3, with every refusal turned into one ``AwsError`` line.

``AwsSession`` owns the clients. Tests inject clients (moto's, or ones wrapped in botocore's
``Stubber``) and a fake clock, so every error mapping, waiter and retry runs offline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from lamb.deploy.calls import Call, FileBytes, Ref
from lamb.errors import AwsError, InputError

log = logging.getLogger(__name__)

# Lambda answers CreateFunction (and configuration updates that change the role) with this in
# the seconds after a role is created, until IAM has propagated it; the fix everyone uses is to
# retry (e.g. epam/aws-syndicate#63, LinusU/scandium#31). We retry for up to a minute.
ROLE_NOT_READY = "cannot be assumed by Lambda"
ROLE_PROPAGATION_TIMEOUT_S = 60.0
# "An update is in progress for resource": a code or configuration change is still being applied
# (LastUpdateStatus InProgress). We wait for function_updated_v2 and try again, this often.
CONFLICT_RETRIES = 3
# function_updated_v2 / function_active_v2 poll GetFunction every 1 s, 300 times (botocore's
# waiters-2.json; `aws lambda wait function-updated-v2`: "poll every 1 seconds ... 300 failed checks").
WAITER_DELAY_S = 1
WAITER_MAX_ATTEMPTS = 300

_CREDENTIAL_CODES = {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException",
                     "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthFailure"}
_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "KMSAccessDeniedException"}
_THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"}
_ACTION_IN_MESSAGE = re.compile(r"perform:\s*([a-z0-9-]+:[A-Za-z0-9]+)")


def missing_action(message: str) -> str | None:
    """The IAM action an AccessDenied message names ("... not authorized to perform: lambda:CreateFunction ...")."""
    match = _ACTION_IN_MESSAGE.search(message or "")
    return match.group(1) if match else None


def error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def error_message(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Message", "") or str(exc)


@contextlib.contextmanager
def refusals(doing: str, *, iam_action: str | None = None) -> Iterator[None]:
    """Turn whatever botocore raises while ``doing`` into one ``AwsError`` naming what to do."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        WaiterError,
    )

    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise AwsError(
            f"no AWS credentials for {doing}",
            "run `aws configure` (or `aws sso login`), pass --profile, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ) from None
    except ProfileNotFound as exc:
        raise InputError(f"no AWS profile {exc.kwargs.get('profile')!r}", "list yours with `aws configure list-profiles`") from None
    except NoRegionError:
        raise InputError("no AWS region", "pass --region, or set AWS_DEFAULT_REGION (or a region in your profile)") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as exc:
        raise AwsError(f"cannot reach AWS while {doing} ({exc})", "check the network, --region and --endpoint-url") from None
    except WaiterError as exc:
        last = exc.last_response or {}
        config = last.get("Configuration", last)
        status = config.get("LastUpdateStatus") or config.get("State") or "an unexpected state"
        reason = config.get("LastUpdateStatusReason") or config.get("StateReason") or str(exc.kwargs.get("reason", exc))
        raise AwsError(
            f"{doing} ended in {status}: {reason}",
            "see the function in the Lambda console or `aws lambda get-function`; fix what the reason names and deploy again",
        ) from None
    except ClientError as exc:
        raise translate(exc, doing, iam_action=iam_action) from None


def translate(exc: Exception, doing: str, *, iam_action: str | None = None) -> AwsError:
    code, message = error_code(exc), error_message(exc)
    if code in _CREDENTIAL_CODES:
        return AwsError(f"AWS refused the credentials while {doing} ({code})", "refresh them: `aws sso login`, `aws configure`, or a new session token")
    if code in _DENIED_CODES or "not authorized" in message:
        action = missing_action(message) or iam_action
        return AwsError(
            f"AWS denied {doing}" + (f": the caller lacks {action}" if action else f" ({message})"),
            f"grant {action} to the identity running lamb (an IAM policy), or deploy with a role that has it" if action
            else "grant the IAM permission the message names to the identity running lamb",
        )
    if code in _THROTTLE_CODES:
        return AwsError(f"AWS throttled {doing} ({code})", "wait a minute and deploy again; lamb already retried (botocore's standard retry mode)")
    if code == "RequestEntityTooLargeException":
        return AwsError(f"Lambda refused the zip as too large while {doing}: {message}", "pass --s3-bucket BUCKET to upload it through S3")
    return AwsError(f"AWS refused {doing}: {code}: {message}", "fix what the message names and deploy again")


def configured_region(session: Any) -> str | None:
    """The region a boto3 session resolves, else AWS_REGION: boto3 reads only AWS_DEFAULT_REGION,
    while the AWS CLI v2 and Lambda itself set AWS_REGION, so users often have only that one."""
    import os

    return session.region_name or os.environ.get("AWS_REGION") or None


def log_calls(client: Any) -> Any:
    """Log each API call ``client`` makes, and its answer, at debug level (shown by --verbose).

    botocore's own debug log is the wire (headers, signatures, bodies); this is one line a call,
    through botocore's event hooks: before-parameter-build (the caller's parameters, also under
    a Stubber, which answers in before-call) and after-call (the answer, errors included).
    """
    meta = getattr(client, "meta", None)
    if meta is None:  # not a botocore client (a test's stand-in): nothing to hook
        return client
    service = meta.service_model.service_name

    def before(model: Any, params: dict[str, Any], **_: Any) -> None:
        log.debug("AWS %s %s(%s)", service, model.name, ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items())))

    def after(model: Any, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", getattr(http_response, "status_code", "?"))
        error = parsed.get("Error", {}).get("Code")
        log.debug("AWS %s %s -> %s%s", service, model.name, status, f" {error}" if error else "")

    meta.events.register("before-parameter-build", before)
    meta.events.register("after-call", after)
    return client


def _short(value: Any) -> str:
    """A parameter as a log shows it: bytes by their size, long values cut."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value):,} bytes>"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class AwsSession:
    """The clients deploy uses, for one region (and profile, and endpoint)."""

    def __init__(
        self,
        *,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
        clients: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        waiter_delay_s: float = WAITER_DELAY_S,
        role_timeout_s: float = ROLE_PROPAGATION_TIMEOUT_S,
    ):
        self._clients = dict(clients or {})
        for given in self._clients.values():
            log_calls(given)
        self.endpoint_url = endpoint_url
        self.sleep, self.clock = sleep, clock
        self.waiter_delay_s, self.role_timeout_s = waiter_delay_s, role_timeout_s
        self._session: Any = None  # a boto3.Session, unless every client was given
        if clients is not None and region is not None:
            self.region = region
            return
        import boto3

        with refusals("reading the AWS configuration"):
            self._session = boto3.Session(profile_name=profile, region_name=region)
        resolved = region or configured_region(self._session)
        if not resolved:
            raise InputError("no AWS region", "pass --region, or set AWS_DEFAULT_REGION (or a region in your profile)")
        self.region = resolved

    def client(self, name: str) -> Any:
        if name not in self._clients:
            from botocore.config import Config

            # standard mode: retries throttling and transient errors with backoff (botocore's default, "legacy", does fewer)
            config = Config(retries={"mode": "standard", "max_attempts": 5}, user_agent_extra="lamb-deploy")
            self._clients[name] = log_calls(
                self._session.client(name, region_name=self.region, endpoint_url=self.endpoint_url, config=config)
            )
        return self._clients[name]

    @property
    def lam(self) -> Any:
        return self.client("lambda")

    # -- identity ------------------------------------------------------------------------------

    def account_id(self) -> str:
        with refusals("checking who is deploying (sts:GetCallerIdentity)"):
            return self.client("sts").get_caller_identity()["Account"]

    # -- reading what exists (the planner decides from this) ----------------------------------

    def role_arn(self, name: str) -> str | None:
        iam = self.client("iam")
        with refusals(f"looking up the role {name}", iam_action="iam:GetRole"):
            try:
                return iam.get_role(RoleName=name)["Role"]["Arn"]
            except iam.exceptions.NoSuchEntityException:
                return None

    def bucket_exists(self, bucket: str) -> bool:
        s3 = self.client("s3")
        with refusals(f"checking the bucket {bucket}", iam_action="s3:ListBucket"):
            try:
                s3.head_bucket(Bucket=bucket)
                return True
            except s3.exceptions.ClientError as exc:
                if error_code(exc) in ("403", "Forbidden", "AccessDenied"):
                    raise AwsError(
                        f"the bucket {bucket} exists but this identity cannot use it (another account's, or s3:ListBucket is missing)",
                        "pass --s3-bucket with a bucket of yours in this region",
                    ) from None
                if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
        return False

    def key_exists(self, bucket: str, key: str) -> bool:
        s3 = self.client("s3")
        with refusals(f"checking s3://{bucket}/{key}", iam_action="s3:GetObject"):
            try:
                s3.head_object(Bucket=bucket, Key=key)
                return True
            except s3.exceptions.ClientError as exc:
                if error_code(exc) not in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                    raise
        return False

    def repository_uri(self, name: str) -> str | None:
        ecr = self.client("ecr")
        with refusals(f"looking up the ECR repository {name}", iam_action="ecr:DescribeRepositories"):
            try:
                return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
            except ecr.exceptions.RepositoryNotFoundException:
                return None

    def image_digest(self, image_uri: str) -> str:
        """The pushed image's digest (hex), which Lambda reports as the function's CodeSha256."""
        repo_part, _, ref = image_uri.partition("/")[2].rpartition("@") if "@" in image_uri else (None, None, None)
        if repo_part is not None:
            repository, image_id = repo_part, {"imageDigest": ref}
        else:
            path = image_uri.split("/", 1)[1] if "/" in image_uri else image_uri
            repository, _, tag = path.partition(":")
            image_id = {"imageTag": tag or "latest"}
        ecr = self.client("ecr")
        with refusals(f"looking up the pushed image {image_uri}", iam_action="ecr:DescribeImages"):
            try:
                detail = ecr.describe_images(repositoryName=repository, imageIds=[image_id])["imageDetails"][0]
            except (ecr.exceptions.ImageNotFoundException, ecr.exceptions.RepositoryNotFoundException):
                raise InputError(f"no image {image_uri} in ECR", "build and push it first: `lamb deploy --plan` prints the commands") from None
        return detail["imageDigest"].split(":", 1)[-1]

    def get_function(self, name: str, qualifier: str | None = None) -> dict[str, Any] | None:
        kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        with refusals(f"looking up the function {name}", iam_action="lambda:GetFunction"):
            try:
                return self.lam.get_function(**kwargs)
            except self.lam.exceptions.ResourceNotFoundException:
                return None

    def latest_version(self, name: str) -> dict[str, Any] | None:
        """The newest published version's configuration, or None when none was published."""
        newest = None
        with refusals(f"listing the versions of {name}", iam_action="lambda:ListVersionsByFunction"):
            for page in self.lam.get_paginator("list_versions_by_function").paginate(FunctionName=name):
                for version in page["Versions"]:
                    if version["Version"].isdigit() and (newest is None or int(version["Version"]) > int(newest["Version"])):
                        newest = version
        return newest

    def alias_version(self, name: str, alias: str) -> str | None:
        with refusals(f"looking up the alias {alias} of {name}", iam_action="lambda:GetAlias"):
            try:
                return self.lam.get_alias(FunctionName=name, Name=alias)["FunctionVersion"]
            except self.lam.exceptions.ResourceNotFoundException:
                return None

    def alias_names(self, name: str) -> list[str]:
        with refusals(f"listing the aliases of {name}", iam_action="lambda:ListAliases"):
            return [a["Name"] for page in self.lam.get_paginator("list_aliases").paginate(FunctionName=name) for a in page["Aliases"]]

    def url_config(self, name: str, qualifier: str | None) -> dict[str, Any] | None:
        kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        with refusals(f"looking up the function URL of {name}", iam_action="lambda:GetFunctionUrlConfig"):
            try:
                return self.lam.get_function_url_config(**kwargs)
            except self.lam.exceptions.ResourceNotFoundException:
                return None

    def policy_statements(self, name: str, qualifier: str | None) -> list[dict[str, Any]]:
        """The statements of the function's (or alias's) resource policy; [] when it has none."""
        kwargs = {"FunctionName": name, **({"Qualifier": qualifier} if qualifier else {})}
        with refusals(f"reading the resource policy of {name}", iam_action="lambda:GetPolicy"):
            try:
                return json.loads(self.lam.get_policy(**kwargs)["Policy"]).get("Statement", [])
            except self.lam.exceptions.ResourceNotFoundException:
                return []

    def wait(self, waiter: str, name: str, doing: str) -> None:
        config = {"Delay": self.waiter_delay_s, "MaxAttempts": WAITER_MAX_ATTEMPTS}
        with refusals(doing, iam_action="lambda:GetFunction"):
            self.lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig=config)

    # -- retries -------------------------------------------------------------------------------

    def _retrying(self, call: Callable[[], Any], name: str, *, role: bool = False) -> Any:
        """``call()``, retried while an earlier update is in progress (ResourceConflictException:
        wait for function_updated_v2, then again) and, with ``role``, while Lambda cannot yet
        assume a freshly created role (up to a time limit)."""
        deadline = self.clock() + self.role_timeout_s
        delay, conflicts = 1.0, 0
        while True:
            try:
                return call()
            except self.lam.exceptions.ResourceConflictException:
                if conflicts == CONFLICT_RETRIES:
                    raise
                conflicts += 1
                config = {"Delay": self.waiter_delay_s, "MaxAttempts": WAITER_MAX_ATTEMPTS}
                self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=config)
            except self.lam.exceptions.InvalidParameterValueException as exc:
                if not role or ROLE_NOT_READY not in error_message(exc):
                    raise
                if self.clock() + delay > deadline:
                    raise AwsError(
                        f"Lambda still cannot assume the execution role after {self.role_timeout_s:.0f} s",
                        "check that the role trusts lambda.amazonaws.com (`aws iam get-role`), then deploy again",
                    ) from None
                self.sleep(delay)
                delay = min(delay * 2, 8.0)


# IAM action names that differ from the operation's own name.
_IAM_ACTION = {("lambda", "invoke"): "lambda:InvokeFunction", ("s3", "put_object"): "s3:PutObject"}


class Executor:
    """Makes a plan's calls with boto3, in order, and keeps each named call's response.

    Every refusal is one ``AwsError`` naming what the call was for; Lambda writes are retried
    while an earlier update is in progress, and (``Call.retry_role``) while a fresh role
    propagates; a call's waiter runs before the next call.
    """

    def __init__(self, aws: AwsSession):
        self.aws = aws
        self.responses: dict[str, Any] = {}
        self.made: list[tuple[str, str, dict[str, Any]]] = []  # (service, operation, params as sent, files by path)

    def execute(self, calls: list[Call]) -> dict[str, Any]:
        for call in calls:
            self.run(call)
        return self.responses

    def run(self, call: Call) -> Any:
        params = {key: self._resolve(value) for key, value in call.params.items()}
        method = getattr(self.aws.client(call.service), call.operation)
        action = _IAM_ACTION.get((call.service, call.operation)) or f"{call.service}:{_pascal(call.operation)}"
        with refusals(call.purpose, iam_action=action):
            if call.service == "lambda":
                response = self.aws._retrying(lambda: method(**params), params["FunctionName"], role=call.retry_role)
            else:
                response = method(**params)
            if hasattr(response.get("Payload"), "read"):  # invoke's answer is a stream
                response = {**response, "Payload": response["Payload"].read()}
        if call.wait:
            self.aws.wait(call.wait, params["FunctionName"], call.purpose)
        self.made.append((call.service, call.operation, _as_made(call.params, params)))
        if call.name:
            self.responses[call.name] = response
        return response

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            found: Any = self.responses[value.call]
            for key in value.path.split("."):
                found = found[key]
            return found
        if isinstance(value, FileBytes):
            return value.path.read_bytes()
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value


def _pascal(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _as_made(planned: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """What was sent, with file contents named by their file (as the displayed commands name them)."""
    out: dict[str, Any] = {}
    for key, value in planned.items():
        if isinstance(value, dict):
            out[key] = _as_made(value, sent[key])
        else:
            out[key] = value if isinstance(value, FileBytes) else sent[key]
    return out
