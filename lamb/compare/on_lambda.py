"""Time artifacts on AWS Lambda itself: Lambda's own figures, on Lambda's own CPU.

Local timing runs on this machine's CPU, which is not the target's (``timing.IsaCheck``). Here
each packaged artifact is deployed as a temporary function through ``lamb deploy``'s planner and
executor (``deploy_facts``, with a role of its own), invoked cold and then warm with
``LogType=Tail``, and Lambda's REPORT line is read from each answer's log tail: ``Init Duration``
(the cold start, on the first request of an environment only), ``Duration``, ``Billed Duration``
and ``Max Memory Used``. A cold round after the first changes the function's environment, which
makes Lambda start new execution environments. Then the function and its role are deleted,
unless ``keep``. ``plan_only`` shows every call as AWS CLI commands and calls nothing.

The REPORT line's fields are AWS's ("How CloudWatch structures logs", Lambda Operator Guide,
https://docs.aws.amazon.com/lambda/latest/operatorguide/log-structure.html, and the REPORT line
data fields of https://docs.aws.amazon.com/lambda/latest/dg/csharp-logging.html: Init Duration
appears "for the first request served"); Invoke returns the last 4 KB of the log, base64, in
``LogResult`` when ``LogType`` is ``Tail`` (Lambda API reference, Invoke).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.cache import cache_root
from lamb.deploy.calls import Call, FileBytes, display
from lamb.deploy.teardown import teardown, teardown_calls
from lamb.errors import AwsError, InputError

# Tab-separated in the log; one optional field (Init Duration) and others after it (XRAY ...).
_REPORT = re.compile(
    r"REPORT RequestId: (?P<request_id>\S+)\s+Duration: (?P<duration>[\d.]+) ms\s+Billed Duration: (?P<billed>[\d.]+) ms"
    r"\s+Memory Size: (?P<memory>\d+) MB\s+Max Memory Used: (?P<used>\d+) MB(?:\s+Init Duration: (?P<init>[\d.]+) ms)?"
)
COLD_ROUND_VARIABLE = "LAMB_TIMING_ROUND"  # changed per cold round: Lambda starts fresh environments


@dataclass
class LambdaReport:
    """One REPORT line: what Lambda measured and billed for one request."""

    request_id: str
    duration_ms: float
    billed_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_ms: float | None  # Init Duration: only on an environment's first request


def parse_report(log: str) -> LambdaReport | None:
    """The last REPORT line in ``log`` (a log tail), or None when it holds none."""
    found = list(_REPORT.finditer(log))
    if not found:
        return None
    m = found[-1]
    return LambdaReport(m["request_id"], float(m["duration"]), float(m["billed"]), int(m["memory"]), int(m["used"]),
                        float(m["init"]) if m["init"] else None)


def log_tail(response: dict[str, Any]) -> str:
    """The decoded ``LogResult`` of an Invoke response ("" without one)."""
    encoded = response.get("LogResult")
    return base64.b64decode(encoded).decode("utf-8", "replace") if encoded else ""


@dataclass
class LambdaTiming:
    """One artifact timed on Lambda: every cold and warm request's REPORT figures."""

    artifact: Path
    function_name: str
    arch: str
    memory_mb: int | None
    cold: list[LambdaReport] = field(default_factory=list)
    warm: list[LambdaReport] = field(default_factory=list)
    missing: int = 0  # answers without a REPORT line in their log tail
    errors: list[str] = field(default_factory=list)  # requests the function failed (FunctionError)
    # The CPUs `lamb probe` read on Lambda for this arch (Lambda does not document them; a function
    # may land on any): "unknown" until a probe has run.
    cpus: list[str] = field(default_factory=list)

    @property
    def init_ms(self) -> float | None:
        """Median Init Duration of the cold requests."""
        inits = [r.init_ms for r in self.cold if r.init_ms is not None]
        return statistics.median(inits) if inits else None

    @property
    def cold_ms(self) -> float | None:
        """Median Duration of the cold requests (the first request, after init)."""
        return statistics.median(r.duration_ms for r in self.cold) if self.cold else None

    @property
    def warm_ms(self) -> float | None:
        return statistics.median(r.duration_ms for r in self.warm) if self.warm else None

    @property
    def max_memory_used_mb(self) -> int | None:
        return max((r.max_memory_used_mb for r in [*self.cold, *self.warm]), default=None)


@dataclass
class OnLambdaReport:
    """What ``time_on_lambda`` measured (or, with ``plan``, the calls it would make)."""

    region: str
    timings: list[LambdaTiming] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "lambda invoke", made or planned
    commands: list[list[str]] = field(default_factory=list)  # --plan: the AWS CLI commands of each call
    kept: bool = False


@dataclass
class OnLambdaOptions:
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    memory_mb: int | None = None  # None: what deploy advises from the artifact's own record
    cold: int = 1  # cold rounds (fresh execution environments)
    warm: int = 5  # warm requests after each cold one
    sample_image: Path | None = None
    keep: bool = False


def function_name(facts: Any) -> str:
    """A temporary function's name: the artifact's stem and a digest of it (Lambda allows 64)."""
    digest = hashlib.sha256(str(facts.sha256 or facts.path).encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9-]+", "-", facts.stem)[:40].strip("-")
    return f"lamb-time-{stem}-{digest}"


def invoke_calls(name: str, event: Path, options: OnLambdaOptions) -> list[Call]:
    """Each cold round (a changed environment after the first) then its warm requests, with the log tail."""
    calls: list[Call] = []
    for round_ in range(options.cold):
        if round_:
            calls.append(Call("lambda", "update_function_configuration",
                              {"FunctionName": name, "Environment": {"Variables": {COLD_ROUND_VARIABLE: str(round_)}}},
                              f"changing {name}'s environment, so the next request starts a fresh one", wait="function_updated_v2"))
        for i in range(1 + options.warm):
            kind = "cold" if i == 0 else "warm"
            calls.append(Call("lambda", "invoke", {"FunctionName": name, "Payload": FileBytes(event), "LogType": "Tail"},
                              f"invoking {name} {kind} (round {round_ + 1})", name=f"{kind}-{round_}-{i}"))
    return calls


def time_on_lambda(artifacts: list[Path], options: OnLambdaOptions, *, plan_only: bool = False, aws: Any = None) -> OnLambdaReport:
    """Deploy, time and delete each artifact in turn (see the module docstring).

    ``aws``: an ``AwsSession`` (tests pass one holding moto's clients).
    """
    from lamb.deploy.artifact import read_facts
    from lamb.deploy.aws import AwsSession

    if not artifacts:
        raise InputError("no artifact to time", "name the .zip files `lamb package` built")
    if options.cold < 1 or options.warm < 0:
        raise InputError("--cold must be at least 1 and --warm at least 0", "e.g. --cold 2 --warm 5")
    facts = [read_facts(Path(a)) for a in artifacts]
    if not plan_only:
        aws = aws or AwsSession(region=options.region, profile=options.profile, endpoint_url=options.endpoint_url)
    report = OnLambdaReport(region="", kept=options.keep)
    for one in facts:
        # Kept in lamb's cache, where the planned commands' fileb:// finds it too.
        event = cache_root() / "time" / f"{function_name(one)}-event.json"
        event.parent.mkdir(parents=True, exist_ok=True)
        event.write_text(json.dumps(_sample_event(one, options.sample_image)), encoding="utf-8")
        _time_one(one, event, options, report, plan_only, aws)
    return report


def _sample_event(facts: Any, image: Path | None) -> dict:
    from lamb.package.smoke import sample_event

    if facts.manifest is None:
        raise InputError(f"{facts.path.name} carries no lamb.json", "time artifacts `lamb package` built")
    return sample_event(facts.manifest, image)


def _time_one(facts: Any, event: Path, options: OnLambdaOptions, report: OnLambdaReport, plan_only: bool, aws: Any) -> None:
    from lamb.deploy import DeployOptions, deploy_facts
    from lamb.deploy.aws import Executor

    name = function_name(facts)
    deploy = DeployOptions(name, region=options.region, profile=options.profile, create_role=True, memory_mb=options.memory_mb,
                           endpoint_url=options.endpoint_url, smoke=False)
    invokes = invoke_calls(name, event, options)
    undo = [] if options.keep else teardown_calls(name)
    if plan_only:
        shown = deploy_facts(facts, deploy, plan_only=True, session=aws)
        report.region = shown.region
        report.commands += shown.commands + display([*invokes, *undo], region=shown.region, endpoint_url=options.endpoint_url)
        report.calls += [f"{c.service} {c.operation}" for c in [*shown.plan.calls, *invokes, *undo]]
        return
    executor = Executor(aws)
    from lamb import measured

    timing = LambdaTiming(facts.path, name, facts.arch, None, cpus=sorted({cpu.describe() for cpu, _m in measured.cpus(facts.arch)}))
    try:
        deployed = deploy_facts(facts, deploy, session=aws)
        timing.memory_mb = deployed.plan.settings.memory_mb if deployed.plan.settings else options.memory_mb
        for call in invokes:
            response = executor.run(call)
            if call.operation != "invoke":
                continue
            if response.get("FunctionError"):
                timing.errors.append(f"{call.purpose}: {response.get('FunctionError')}: {str(response.get('Payload'))[:200]}")
            figures = parse_report(log_tail(response))
            if figures is None:
                timing.missing += 1
            else:
                (timing.cold if call.name and call.name.startswith("cold") else timing.warm).append(figures)
    except BaseException:
        # The run's own error is the one to tell; a teardown that fails too must not hide it.
        with contextlib.suppress(AwsError):
            teardown(executor, undo)
        raise
    teardown(executor, undo)
    report.region = aws.region
    report.timings.append(timing)
    report.calls += [f"{c.service} {c.operation}" for c in [*deployed.plan.calls, *invokes, *undo]]
