"""``lamb probe``: measure what a Lambda target's loader really provides, and keep it.

On AWS: a plan of API calls (create a role with the basic execution policy, create a function
with only ``function.py`` in its zip, invoke it, then delete the function and the role unless
``keep``), made by deploy's ``Executor`` and shown by deploy's ``display``: the code
``lamb deploy`` uses, so ``--plan`` is the same calls. The function's answer is stored in lamb's
cache (``lamb.measured``) keyed by runtime, arch and region, where the ELF audit finds it and
ranks it above the documented facts. ``--local`` runs the same file on this machine.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import layout, measured, targets
from lamb.deploy import plan as planning
from lamb.deploy.calls import Call, FileBytes, Ref, display
from lamb.errors import AwsError, InputError

FUNCTION = Path(__file__).resolve().with_name("function.py")
# Small and short: the probe reads a few files and loads two libraries.
MEMORY_MB = 128
TIMEOUT_S = 30


@dataclass
class ProbeReport:
    """What a probe measured (or, with ``plan``, the calls it would make)."""

    target: str  # "python3.13-arm64", or "this machine"
    region: str  # "eu-west-1", or "local"
    measured_at: str | None  # ISO 8601 UTC; None for a plan
    facts: dict[str, Any] = field(default_factory=dict)
    stored: str | None = None  # where the facts were kept (AWS probes only)
    function_name: str | None = None
    kept: bool = False  # the function and role were left in place (--keep)
    calls: list[str] = field(default_factory=list)  # the calls made, or planned ("lambda create_function")
    commands: list[list[str]] = field(default_factory=list)  # --plan: the AWS CLI commands


def probe_local() -> ProbeReport:
    """Run the probe function's file on this machine, in a fresh isolated Python."""
    proc = subprocess.run([sys.executable, "-I", "-S", str(FUNCTION)], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise InputError(f"the probe failed on this machine: {(proc.stderr or proc.stdout).strip()[-300:]}",
                         "run with --verbose and report it")
    return ProbeReport("this machine", "local", _now(), facts=json.loads(proc.stdout))


def function_name(target: targets.Target) -> str:
    return f"lamb-probe-{target.runtime.name.replace('.', '-')}-{target.arch.replace('_', '-')}"


def probe_zip(dest: Path) -> Path:
    """The probe function's zip: ``function.py`` as the handler module, nothing else."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(layout.HANDLER_FILE, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, FUNCTION.read_bytes())
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "lamb-probe.zip"
    path.write_bytes(buf.getvalue())
    (dest / "event.json").write_text("{}\n", encoding="utf-8")
    return path


def plan_calls(target: targets.Target, folder: Path, keep: bool = False) -> list[Call]:
    """The probe as data: every API call, in order."""
    name = function_name(target)
    role = f"{name}-role"
    zip_path = probe_zip(folder)
    calls = [
        Call("iam", "create_role", {"RoleName": role, "AssumeRolePolicyDocument": json.dumps(planning.TRUST_POLICY, separators=(",", ":")),
                                    "Description": "lamb probe: CloudWatch Logs only; deleted after the probe"},
             f"creating the probe's role {role}", name="role"),
        Call("iam", "attach_role_policy", {"RoleName": role, "PolicyArn": planning.BASIC_EXECUTION_POLICY_ARN},
             f"attaching the basic execution policy to {role}"),
        Call("lambda", "create_function", {
            "FunctionName": name, "Runtime": target.runtime.name, "Architectures": [target.arch],
            "Handler": layout.HANDLER, "Role": Ref("role", "Role.Arn"), "Code": {"ZipFile": FileBytes(zip_path)},
            "MemorySize": MEMORY_MB, "Timeout": TIMEOUT_S, "Description": "lamb probe: reads what the loader provides",
        }, f"creating the probe function {name}", name="function", wait="function_active_v2", retry_role=True),
        Call("lambda", "invoke", {"FunctionName": name, "Payload": FileBytes(folder / "event.json")},
             f"invoking the probe function {name}", name="invoke"),
    ]
    return calls if keep else calls + cleanup_calls(target)


def cleanup_calls(target: targets.Target) -> list[Call]:
    name = function_name(target)
    role = f"{name}-role"
    return [
        Call("lambda", "delete_function", {"FunctionName": name}, f"deleting the probe function {name}"),
        Call("iam", "detach_role_policy", {"RoleName": role, "PolicyArn": planning.BASIC_EXECUTION_POLICY_ARN},
             f"detaching the basic execution policy from {role}"),
        Call("iam", "delete_role", {"RoleName": role}, f"deleting the probe's role {role}"),
    ]


@dataclass
class ProbeOptions:
    runtime: str | None = None
    arch: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    keep: bool = False


def probe_aws(options: ProbeOptions, *, plan_only: bool = False, aws: Any = None) -> ProbeReport:
    """Deploy, invoke and (unless ``keep``) delete the probe function; store what it read.

    ``aws``: an ``AwsSession`` (tests pass one holding moto's or Stubber-wrapped clients).
    """
    from lamb.deploy.aws import AwsSession, Executor

    target = targets.get_target(options.runtime, options.arch)
    folder = measured.probe_dir() / "function"
    if plan_only:
        from lamb.deploy.run import _configured_region

        region = options.region or (aws.region if aws is not None else _configured_region(options.profile)) or "<REGION>"
        calls = plan_calls(target, folder, options.keep)
        commands = display(calls, region=region, endpoint_url=options.endpoint_url)
        return ProbeReport(target.name, region, None, function_name=function_name(target), kept=options.keep,
                           calls=[f"{c.service} {c.operation}" for c in calls], commands=commands)
    aws = aws or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
    executor = Executor(aws)
    calls = plan_calls(target, folder, keep=True)
    try:
        responses = executor.execute(calls)
    finally:
        if not options.keep:
            _clean_up(executor, target)
    answer = _answer(responses["invoke"], target)
    measurement = measured.Measurement(target.runtime.name, target.arch, aws.region, _now(), answer)
    stored = measured.store(measurement)
    return ProbeReport(
        target.name, aws.region, measurement.measured_at, facts=answer, stored=str(stored),
        function_name=function_name(target), kept=options.keep,
        calls=[f"{service} {operation}" for service, operation, _params in executor.made],
    )


def _clean_up(executor: Any, target: targets.Target) -> None:
    """Delete what the probe made, even after a failure; what was never made is not an error."""
    for call in cleanup_calls(target):
        try:
            executor.run(call)
        except AwsError as exc:
            if "NoSuchEntity" not in exc.message and "ResourceNotFound" not in exc.message:
                raise


def _answer(response: dict[str, Any], target: targets.Target) -> dict[str, Any]:
    payload = response.get("Payload", b"")
    try:
        answer = json.loads(payload or b"null")
    except ValueError:
        answer = None
    if response.get("FunctionError") or not isinstance(answer, dict) or "glibc" not in answer:
        raise AwsError(f"the probe function on {target.name} did not answer with its facts: {str(payload)[:300]}",
                       "see its logs in CloudWatch (run with --keep to keep the function), then probe again")
    return answer


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
