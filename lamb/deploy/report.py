"""What ``lamb deploy`` did (or, with ``--plan``, would do): ``DeployReport`` and its smoke invocation.

``render`` draws it; ``--json`` serialises it; the deployment record keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.deploy.planner import Plan
from lamb.errors import ArtifactError


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
    planned_only: bool  # True: --plan, nothing was changed
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
    permissions_removed: list[str] = field(default_factory=list)  # lamb's public statements, once the URL is not public
    reserved_concurrency: int | None = None
    commands: list[list[str]] = field(default_factory=list)  # the plan's calls as AWS CLI commands (--plan)
    learned: str | None = None  # a fact about the target the smoke test's failure showed (lamb.deploy.learn)
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
