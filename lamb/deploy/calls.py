"""A deployment as data: the AWS API calls, in order, and how to show them as AWS CLI commands.

As Chalice's planner does (``chalice/deploy/planner.py``: ``models.APICall``), the planner
returns a list of ``Call``; one executor makes them with boto3 (``lamb.deploy.aws.Executor``),
``display`` turns the same list into AWS CLI commands that paste into a shell and run. A value
that only an earlier call can give (the ARN of a role created on the way, the version just
published) is a ``Ref`` to that call's response: the executor reads it from the response, the
commands from a shell variable the earlier command set. A file's bytes (the zip, the smoke
event) are a ``FileBytes``: read by the executor, ``fileb://`` for the CLI.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Ref:
    """The value at ``path`` (dotted keys) in the response of the call named ``call``."""

    call: str
    path: str

    @property
    def variable(self) -> str:
        """The shell variable the displayed commands keep it in: ``ROLE_ARN``, ``PUBLISH_VERSION``."""
        return re.sub(r"[^A-Z0-9]+", "_", f"{self.call}_{self.path.rsplit('.', 1)[-1]}".upper())


@dataclass(frozen=True)
class FileBytes:
    """The bytes of a file on this machine, read when the call is made."""

    path: Path


@dataclass
class Call:
    """One AWS API call: boto3's client name and method, its parameters, and why it is made."""

    service: str  # boto3's client name: "lambda", "iam", "s3", "ecr"
    operation: str  # boto3's method name: "create_function"
    params: dict[str, Any]  # top-level values may be a Ref or a FileBytes (Code.ZipFile too)
    purpose: str  # what it is for, in the plan's words
    name: str | None = None  # names the response for a later Ref (and for the run's report)
    wait: str | None = None  # a botocore waiter to run after it (function_active_v2, ...)
    retry_role: bool = False  # retried while Lambda cannot yet assume a freshly created role

    def refs(self) -> list[Ref]:
        return [v for v in self.params.values() if isinstance(v, Ref)]


# -- display --------------------------------------------------------------------------------------

# The AWS CLI's command for a boto3 client name where they differ: S3's API calls are `aws s3api`.
_CLI_SERVICE = {"s3": "s3api"}


def display(calls: list[Call], *, region: str, endpoint_url: str | None = None) -> list[list[str]]:
    """Each call as the AWS CLI commands that make it (its wait included), ready to paste.

    A call whose response a later call refers to sets a shell variable (``--query``), which the
    later command reads; so the commands run in order in one shell do what the executor does.
    """
    wanted: dict[str, Ref] = {r.call: r for c in calls for r in c.refs()}
    extra = ["--region", region] + (["--endpoint-url", endpoint_url] if endpoint_url else [])
    out = []
    for c in calls:
        service = _CLI_SERVICE.get(c.service, c.service)
        words = ["aws", service, _kebab(c.operation), *_arguments(c), *extra]
        command = " ".join(_quote(w) for w in words)
        ref = wanted.get(c.name or "")
        if ref is not None:
            command = f"{ref.variable}=$({command} --query {shlex.quote(ref.path)} --output text)"
        commands = [command]
        if (c.service, c.operation) == ("iam", "create_role"):
            # what the executor's retry (Call.retry_role on the function's calls) does for a shell
            commands.append("sleep 10  # a new role takes a few seconds before Lambda may assume it")
        if c.wait:
            name = c.params["FunctionName"]
            commands.append(" ".join(_quote(w) for w in ["aws", service, "wait", _kebab(c.wait), "--function-name", name, *extra]))
        out.append(commands)
    return out


def _kebab(name: str) -> str:
    """boto3's snake_case or the API's PascalCase as the CLI's kebab-case."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).replace("_", "-").lower()


def _arguments(c: Call) -> list[Any]:
    args: list[Any] = []
    for key, value in c.params.items():
        flag = "--" + _kebab(key)
        if key == "Code" and isinstance(value, dict) and isinstance(value.get("ZipFile"), FileBytes):
            args += ["--zip-file", f"fileb://{value['ZipFile'].path}"]  # the CLI's own option for Code.ZipFile
        elif isinstance(value, FileBytes):
            # put-object's --body takes a plain path; the others take fileb://
            args += [flag, str(value.path) if key == "Body" else f"fileb://{value.path}"]
        elif isinstance(value, bool):
            args.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, (dict, list)) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            args += [flag, json.dumps(value, separators=(",", ":"))]
        elif isinstance(value, list):
            args += [flag, *value]
        else:
            args += [flag, value if isinstance(value, Ref) else str(value)]
    if c.operation == "invoke":
        args.append("response.json")  # the CLI's outfile: where the answer goes
    return args


def _quote(word: Any) -> str:
    if isinstance(word, Ref):
        return f'"${word.variable}"'
    return shlex.quote(word)
