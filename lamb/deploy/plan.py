"""What a deployment must be, decided before any AWS call: Lambda's limits, the settings, the names.

Everything here is pure: it reads the artifact's facts and the user's options and checks them
against Lambda's own limits (botocore's model accepts more than Lambda does). The calls that
make it so are ``lamb.deploy.planner``'s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from lamb.cost import LAMBDA_MAX_MEMORY_MB, LAMBDA_MIN_MEMORY_MB, LAMBDA_TIMEOUT_RANGE_S, advise_function
from lamb.deploy.artifact import ArtifactFacts
from lamb.errors import BudgetExceeded, InputError
from lamb.package.budget import UNZIPPED, MiB

# -- Lambda's limits (sources beside each) -------------------------------------------------------
TIMEOUT_RANGE_S = LAMBDA_TIMEOUT_RANGE_S  # 1-900 s, see lamb.cost
MEMORY_RANGE_MB = (LAMBDA_MIN_MEMORY_MB, LAMBDA_MAX_MEMORY_MB)  # 128-10,240 MB, see lamb.cost
# The 50 MB direct-upload limit is enforced on the request, where the zip travels base64-encoded:
# "Request must be smaller than 69905067 bytes for the CreateFunction operation" (AWS's answer,
# quoted in localstack/localstack#2999 and serverless/components#234): ceil(50 MiB x 4/3).
DIRECT_UPLOAD_REQUEST_BYTES = 69_905_067
# The request's other fields share that limit (configuration, description, environment up to
# 4 KB); keep this much room so a zip just under 50 MiB does not fail after its upload.
REQUEST_ENVELOPE_BYTES = 16 * 1024
# Unzipped code: 250 MB including layers (lamb.package.budget.UNZIPPED, same source).
UNZIPPED_BYTES = UNZIPPED
# Names: FunctionName (name only) [a-zA-Z0-9-_]{1,64}; alias names 1-128 of [a-zA-Z0-9-_], not all
# digits (API_CreateFunction / API_CreateAlias request syntax). IAM role names: 64 characters.
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")
ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
ROLE_NAME_MAX = 64
# The basic execution policy: CloudWatch Logs only (logs:CreateLogGroup, CreateLogStream,
# PutLogEvents). https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html
BASIC_EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# ReservedConcurrentExecutions: "Minimum value of 0" (API_PutFunctionConcurrency); the account's
# concurrency quota is 1,000 by default and Lambda keeps 100 of it unreserved
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); the real ceiling
# is the account's, which Lambda checks.
RESERVED_CONCURRENCY_MAX = 1_000_000
URL_MODES = ("none", "iam", "public")
URL_AUTH_TYPES = {"iam": "AWS_IAM", "public": "NONE"}
# Since October 2025 new function URLs need both actions in the resource policy: InvokeFunctionUrl
# (with FunctionUrlAuthType NONE for public ones) and InvokeFunction (with InvokedViaFunctionUrl).
# https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html ("Starting in October 2025, new
# function URLs will require both lambda:InvokeFunctionUrl and lambda:InvokeFunction permissions").
URL_PERMISSIONS: tuple[dict, ...] = (
    {"StatementId": "lamb-url-invoke-function-url", "Action": "lambda:InvokeFunctionUrl", "Principal": "*", "FunctionUrlAuthType": "NONE"},
    {"StatementId": "lamb-url-invoke-function", "Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True},
)


@dataclass(frozen=True)
class DeployOptions:
    """What the user asked for (``lamb deploy``'s options)."""

    function_name: str
    region: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    create_role: bool = False
    s3_bucket: str | None = None
    memory_mb: int | None = None
    timeout_s: int | None = None
    url: str = "none"
    alias: str | None = None
    endpoint_url: str | None = None
    image_uri: str | None = None
    smoke: bool = True
    sample_image: Path | None = None
    reserved_concurrency: int | None = None  # None: leave the function's as it is


@dataclass
class Settings:
    """The function's memory and timeout, and where each came from."""

    memory_mb: int
    timeout_s: int
    memory_source: str  # "--memory" | "from the measured peak RSS of 241 MB"
    timeout_source: str


# -- checks ---------------------------------------------------------------------------------------


def check_options(options: DeployOptions) -> None:
    """Refuse what Lambda would refuse, before any call (one line each, with the way out)."""
    if not FUNCTION_NAME.fullmatch(options.function_name or ""):
        raise InputError(
            f"--function-name {options.function_name!r} is not a Lambda function name",
            "use 1-64 letters, digits, hyphens or underscores, e.g. --function-name clothing-classifier",
        )
    if options.alias is not None and not ALIAS_NAME.fullmatch(options.alias):
        raise InputError(f"--alias {options.alias!r} is not a Lambda alias name", "use letters, digits, hyphens or underscores, not only digits, e.g. --alias live")
    if options.role_arn and options.create_role:
        raise InputError("--role and --create-role both given", "pass one: an existing execution role's ARN, or --create-role")
    if options.role_arn and not ROLE_ARN.fullmatch(options.role_arn):
        raise InputError(f"--role {options.role_arn!r} is not an IAM role ARN", "e.g. --role arn:aws:iam::123456789012:role/lambda-basic")
    if options.url not in URL_MODES:
        raise InputError(f"--url {options.url!r} is not one of {', '.join(URL_MODES)}", "none: no URL; iam: signed requests only; public: anyone")
    if options.memory_mb is not None and not MEMORY_RANGE_MB[0] <= options.memory_mb <= MEMORY_RANGE_MB[1]:
        raise InputError(
            f"--memory {options.memory_mb} is outside Lambda's range of {MEMORY_RANGE_MB[0]:,}-{MEMORY_RANGE_MB[1]:,} MB",
            "leave it out to use the memory the artifact's measured peak needs",
        )
    if options.reserved_concurrency is not None and not 0 <= options.reserved_concurrency <= RESERVED_CONCURRENCY_MAX:
        raise InputError(
            f"--reserved-concurrency {options.reserved_concurrency} is outside 0-{RESERVED_CONCURRENCY_MAX:,}",
            "e.g. --reserved-concurrency 10 (0 stops every invocation; the account keeps 100 unreserved)",
        )
    if options.timeout_s is not None and not TIMEOUT_RANGE_S[0] <= options.timeout_s <= TIMEOUT_RANGE_S[1]:
        raise InputError(
            f"--timeout {options.timeout_s} is outside Lambda's range of {TIMEOUT_RANGE_S[0]}-{TIMEOUT_RANGE_S[1]} s",
            "leave it out to use a timeout derived from the artifact's measured cold start",
        )


def check_artifact(facts: ArtifactFacts) -> None:
    """Lambda's size limit on unzipped code, checked before anything is uploaded."""
    if facts.package_type == "Zip" and facts.unzipped_bytes > UNZIPPED_BYTES:
        raise BudgetExceeded(
            f"{facts.path.name} unzips to {facts.unzipped_bytes / MiB:.1f} MB, over Lambda's {UNZIPPED_BYTES / MiB:.0f} MB limit; nothing was uploaded",
            "quantize the model (lamb convert --quantize dynamic), or deploy a container image (lamb package --format image)",
        )


def base64_size(n: int) -> int:
    return 4 * math.ceil(n / 3)


def fits_direct_upload(zip_bytes: int) -> bool:
    """True when the zip, base64-encoded in the request, stays under Lambda's request limit."""
    return base64_size(zip_bytes) + REQUEST_ENVELOPE_BYTES <= DIRECT_UPLOAD_REQUEST_BYTES


# -- settings -------------------------------------------------------------------------------------


def settings_for(facts: ArtifactFacts, options: DeployOptions) -> Settings:
    """Memory and timeout: the user's, else the advice ``lamb invoke`` gives for the artifact's
    measured figures (``lamb.cost.advise_function``, as the image context's README states it)."""
    if options.memory_mb is None and not facts.peak_rss_mb:
        raise InputError(
            f"{facts.path.name} carries no measured peak memory (it was packaged without a smoke run)",
            "pass --memory and --timeout, or rebuild with `lamb package` (with its smoke run) so deploy can size the function",
        )
    advice = advise_function(facts.invoke_ms, init_ms=facts.init_ms, peak_rss_mb=facts.peak_rss_mb, arch=facts.arch,
                             memory_mb=options.memory_mb)
    if options.memory_mb is not None:
        memory, memory_source = options.memory_mb, "--memory"
    else:
        memory, memory_source = advice.memory_mb, f"lamb invoke's advice: {advice.memory.reason}"
    if options.timeout_s is not None:
        timeout, timeout_source = options.timeout_s, "--timeout"
    elif advice.timeout_s is not None:
        timeout, timeout_source = advice.timeout_s, advice.timeout_reason
    else:
        raise InputError(
            f"{facts.path.name} carries no measured cold start (it was packaged without a smoke run)",
            "pass --timeout, or rebuild with `lamb package` (with its smoke run)",
        )
    return Settings(memory, timeout, memory_source, timeout_source)


# -- names ----------------------------------------------------------------------------------------


def role_name(function_name: str) -> str:
    """FUNCTION-role, as the image context's README names it (lamb.package.artifact.image_readme)."""
    return f"{function_name[:ROLE_NAME_MAX - 5]}-role"


def default_bucket(account: str, region: str) -> str:
    """The bucket deploy creates or reuses when no --s3-bucket is given: one per account and region."""
    return f"lamb-artifacts-{account}-{region}"


def s3_key(sha256: str) -> str:
    """Content-addressed: the same zip always lands on the same key, so it is uploaded once."""
    return f"lamb/{sha256}.zip"


def ecr_repository(function_name: str) -> str:
    """Named after the function, as in the image context's README; ECR repository names are lowercase."""
    return function_name.lower()


# -- the image ----------------------------------------------------------------------------------


def image_uri_for(account: str, region: str, function_name: str, facts: ArtifactFacts) -> str:
    tag = f"{facts.model}-{facts.arch}".lower()
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{ecr_repository(function_name)}:{tag}"
