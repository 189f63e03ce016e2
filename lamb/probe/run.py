"""``lamb probe``: measure what a Lambda target's loader really provides, and keep it.

On AWS: ``lamb deploy``'s own ``deploy_facts`` (its planner and executor) deploys a zip holding
only ``function.py`` with a role of its own (basic execution policy only), and its smoke
invocation is the probe; then the function and the role are deleted unless ``keep``. ``--plan``
shows the same calls as AWS CLI commands (deploy's ``display``). The function's answer is stored in lamb's
cache (``lamb.measured``) keyed by runtime, arch and region, where the ELF audit finds it and
ranks it above the documented facts. ``--local`` runs the same file on this machine.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb import layout, measured, targets
from lamb.deploy.calls import Call, display
from lamb.deploy.teardown import teardown, teardown_calls
from lamb.errors import AwsError, InputError
from lamb.probe.report import ProbeReport

FUNCTION = Path(__file__).resolve().with_name("function.py")
# Small and short: the probe reads a few files and loads two libraries.
MEMORY_MB = 128
TIMEOUT_S = 30


def probe_local() -> ProbeReport:
    """Run the probe function's file on this machine, in a fresh isolated Python."""
    proc = subprocess.run([sys.executable, "-I", "-S", str(FUNCTION)], capture_output=True, text=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise InputError(f"the probe failed on this machine: {(proc.stderr or proc.stdout).strip()[-300:]}",
                         "run with --verbose and report it")
    facts = json.loads(proc.stdout)
    return ProbeReport("this machine", "local", _now(), facts=facts, cpu=measured.cpu_in(facts, str(facts.get("machine"))))


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


def cleanup_calls(target: targets.Target) -> list[Call]:
    """Deleting the function (all its versions) and the role the deploy created for it."""
    return teardown_calls(function_name(target), "probe function")


@dataclass
class ProbeOptions:
    runtime: str | None = None
    arch: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    keep: bool = False


def probe_aws(options: ProbeOptions, *, plan_only: bool = False, aws: Any = None) -> ProbeReport:
    """Deploy (``lamb deploy``'s ``deploy_facts``: its planner and executor, the smoke invocation
    being the probe), then delete what it made unless ``keep``; store what the function read.

    ``aws``: an ``AwsSession`` (tests pass one holding moto's or Stubber-wrapped clients).
    """
    from lamb.deploy import DeployOptions, deploy_facts
    from lamb.deploy.artifact import plain_zip
    from lamb.deploy.aws import AwsSession, Executor

    target = targets.get_target(options.runtime, options.arch)
    name = function_name(target)
    folder = measured.probe_dir() / "function"
    facts = plain_zip(probe_zip(folder), runtime=target.runtime.name, arch=target.arch, handler=layout.HANDLER, name=name)
    deploy = DeployOptions(name, region=options.region, profile=options.profile, create_role=True, memory_mb=MEMORY_MB,
                           timeout_s=TIMEOUT_S, endpoint_url=options.endpoint_url)
    event = folder / "event.json"
    cleanup = [] if options.keep else cleanup_calls(target)
    if plan_only:
        shown = deploy_facts(facts, deploy, plan_only=True, session=aws, smoke_event=event)
        commands = shown.commands + display(cleanup, region=shown.region, endpoint_url=options.endpoint_url)
        calls = [f"{c.service} {c.operation}" for c in [*shown.plan.calls, *cleanup]]
        return ProbeReport(target.name, shown.region, None, function_name=name, kept=options.keep, calls=calls, commands=commands)
    aws = aws or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
    executor = Executor(aws)
    try:
        report = deploy_facts(facts, deploy, session=aws, smoke_event=event)
    except BaseException:
        # The deploy's own error is the one to tell; a clean-up that fails too must not hide it.
        with contextlib.suppress(AwsError):
            teardown(executor, cleanup)
        raise
    teardown(executor, cleanup)
    answer = _answer(report.smoke, target)
    measurement = measured.Measurement(target.runtime.name, target.arch, aws.region, _now(), answer)
    stored = measured.store(measurement)
    return ProbeReport(
        target.name, aws.region, measurement.measured_at, facts=answer, stored=str(stored), function_name=name,
        kept=options.keep, calls=[f"{c.service} {c.operation}" for c in [*report.plan.calls, *cleanup]], cpu=measurement.cpu,
    )


def _answer(smoke: Any, target: targets.Target) -> dict[str, Any]:
    """The facts in the probe function's answer (deploy's smoke invocation), or AwsError."""
    answer = smoke.response if smoke is not None else None
    if smoke is None or not smoke.passed or not isinstance(answer, dict) or "glibc" not in answer:
        raise AwsError(f"the probe function on {target.name} did not answer with its facts: {str(answer)[:300]}",
                       "see its logs in CloudWatch (run with --keep to keep the function), then probe again")
    return answer


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
