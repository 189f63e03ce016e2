"""Undoing a temporary deployment: the function and the role ``--create-role`` made for it.

``lamb probe`` and ``lamb time`` deploy a function of their own, use it once, and delete it
again (unless ``--keep``); both plan the same calls here and make them through the executor.
"""

from __future__ import annotations

from typing import Any

from lamb.deploy import plan as planning
from lamb.deploy.calls import Call
from lamb.errors import AwsError


def teardown_calls(name: str, what: str = "temporary function") -> list[Call]:
    """Deleting the function ``name`` (all its versions) and the role the deploy created for it."""
    role = planning.role_name(name)
    return [
        Call("lambda", "delete_function", {"FunctionName": name}, f"deleting the {what} {name}"),
        Call("iam", "detach_role_policy", {"RoleName": role, "PolicyArn": planning.BASIC_EXECUTION_POLICY_ARN},
             f"detaching the basic execution policy from {role}"),
        Call("iam", "delete_role", {"RoleName": role}, f"deleting the {what}'s role {role}"),
    ]


def teardown(executor: Any, calls: list[Call]) -> None:
    """Make the teardown calls; what was never made (a failure before it) is not an error."""
    for call in calls:
        try:
            executor.run(call)
        except AwsError as exc:
            if "NoSuchEntity" not in exc.message and "ResourceNotFound" not in exc.message:
                raise
