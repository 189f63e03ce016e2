"""A plain CloudFormation template for the function deploy made, for people who deploy with IaC.

The same function, role, version, alias, URL and permissions, as resources. Zip code is read
from S3 (CloudFormation cannot take a zip this size inline): the bucket and key deploy used, or
parameters to fill in after ``aws s3 cp`` when deploy uploaded directly. Checked with cfn-lint
in the tests.
"""

from __future__ import annotations

from typing import Any

from lamb.deploy.plan import BASIC_EXECUTION_POLICY_ARN, TRUST_POLICY, URL_AUTH_TYPES, URL_PERMISSIONS
from lamb.deploy.planner import Plan


def template(plan: Plan, *, role_arn: str | None, s3_bucket: str | None, s3_key: str | None, code_sha256: str | None) -> dict[str, Any]:
    """The template as a dict (``render`` makes it YAML)."""
    parameters: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {"FunctionArn": {"Value": {"Fn::GetAtt": ["Function", "Arn"]}}}

    if plan.create_role or not role_arn:
        resources["ExecutionRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": TRUST_POLICY, "ManagedPolicyArns": [BASIC_EXECUTION_POLICY_ARN]},
        }
        role: Any = {"Fn::GetAtt": ["ExecutionRole", "Arn"]}
    else:
        role = role_arn

    properties: dict[str, Any] = {
        "FunctionName": plan.function_name,
        "PackageType": plan.package_type,
        "Architectures": [plan.arch],
        **plan.configuration,  # the settings the plan's create/update calls carry (no Handler for an image)
        "Role": role,
    }
    if plan.reserved_concurrency is not None:
        properties["ReservedConcurrentExecutions"] = plan.reserved_concurrency
    if plan.package_type == "Image":
        parameters["ImageUri"] = {"Type": "String", "Description": "The pushed image (build with --provenance=false)",
                                  **({"Default": plan.image_uri} if plan.image_uri and "<" not in plan.image_uri else {})}
        properties["Code"] = {"ImageUri": {"Ref": "ImageUri"}}
    else:
        parameters["CodeS3Bucket"] = {"Type": "String", "Description": "Bucket holding the zip (aws s3 cp ZIP s3://BUCKET/KEY)",
                                      **({"Default": s3_bucket} if s3_bucket else {})}
        parameters["CodeS3Key"] = {"Type": "String", "Description": "Key of the zip in that bucket",
                                   **({"Default": s3_key} if s3_key else {})}
        properties["Code"] = {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    resources["Function"] = {"Type": "AWS::Lambda::Function", "Properties": properties}

    version: dict[str, Any] = {"FunctionName": {"Ref": "Function"}}
    if code_sha256:
        version["CodeSha256"] = code_sha256  # CloudFormation refuses to publish other code than the built zip
    resources["Version"] = {"Type": "AWS::Lambda::Version", "Properties": version}
    target: Any = {"Ref": "Version"}
    qualifier: Any = {"Ref": "Version"}
    if plan.alias:
        resources["Alias"] = {
            "Type": "AWS::Lambda::Alias",
            "Properties": {"FunctionName": {"Ref": "Function"}, "FunctionVersion": {"Fn::GetAtt": ["Version", "Version"]}, "Name": plan.alias},
        }
        target = qualifier = {"Ref": "Alias"}

    if plan.url != "none":
        auth = URL_AUTH_TYPES[plan.url]
        # The URL belongs to the alias when there is one, else to the unqualified function (as lamb deploy does).
        url_target = target if plan.alias else {"Fn::GetAtt": ["Function", "Arn"]}
        resources["Url"] = {"Type": "AWS::Lambda::Url", "Properties": {"TargetFunctionArn": url_target, "AuthType": auth}}
        outputs["FunctionUrl"] = {"Value": {"Fn::GetAtt": ["Url", "FunctionUrl"]}}
        if plan.url == "public":
            permission_target = qualifier if plan.alias else {"Ref": "Function"}
            for logical_id, statement in zip(("UrlInvokePermission", "FunctionInvokePermission"), URL_PERMISSIONS):
                properties = {k: v for k, v in statement.items() if k != "StatementId"}  # CloudFormation names its own
                resources[logical_id] = {"Type": "AWS::Lambda::Permission", "Properties": {**properties, "FunctionName": permission_target}}
    outputs["Version"] = {"Value": {"Fn::GetAtt": ["Version", "Version"]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{plan.function_name}: a lamb artifact ({plan.runtime or 'container image'} on {plan.arch}), written by lamb deploy",
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }


def render(document: dict[str, Any]) -> str:
    import yaml

    class NoAliases(yaml.SafeDumper):
        # CloudFormation rejects YAML aliases (&id001 / *id001), which PyYAML writes for repeated objects.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(document, Dumper=NoAliases, sort_keys=False, default_flow_style=False, width=120)
