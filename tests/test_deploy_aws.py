"""lamb.deploy.aws (its Executor, and reading state) against botocore's Stubber: what moto is too lenient to produce.

moto accepts a 70 MB ZipFile, never reports LastUpdateStatus InProgress, accepts a duplicate
permission, and never refuses a fresh role; real Lambda does all four. Each answer is stubbed
here exactly as Lambda gives it, and lamb's reaction is checked: one AwsError line naming what
to do, or a retry that ends.
"""

from __future__ import annotations

import io

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lamb.deploy.aws import AwsSession, Executor, missing_action
from lamb.deploy.calls import Call
from lamb.errors import AwsError

NAME = "clothes"
ARN = f"arn:aws:lambda:eu-west-1:123456789012:function:{NAME}"
ROLE = "arn:aws:iam::123456789012:role/lamb-clothes"


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stubbed(aws_env):
    """(AwsSession, Stubber, clock) around a real botocore Lambda client that never reaches the network."""
    import boto3

    client = boto3.client("lambda", region_name="eu-west-1")
    clock = FakeClock()
    session = AwsSession(region="eu-west-1", clients={"lambda": client}, sleep=clock.sleep, clock=clock, waiter_delay_s=0, role_timeout_s=10)
    with Stubber(client) as stubber:
        yield session, stubber, clock
        stubber.assert_no_pending_responses()


def _function(status="Successful", state="Active", reason=None):
    config = {"FunctionName": NAME, "FunctionArn": ARN, "State": state, "LastUpdateStatus": status}
    if reason:
        config["LastUpdateStatusReason"] = reason
    return {"Configuration": config}


def create(session):
    return Executor(session).run(Call("lambda", "create_function", CREATE, f"creating the function {NAME}", wait="function_active_v2", retry_role=True))


def update_code(session, **code):
    return Executor(session).run(Call("lambda", "update_function_code", {"FunctionName": NAME, **code}, f"updating the code of {NAME}", wait="function_updated_v2"))


CREATE = dict(FunctionName=NAME, Runtime="python3.12", Role=ROLE, Handler="lambda_function.lambda_handler", Code={"ZipFile": b"PK"})


def test_request_entity_too_large_says_to_use_s3(stubbed):
    session, stubber, _ = stubbed
    stubber.add_client_error(
        "create_function", service_error_code="RequestEntityTooLargeException", http_status_code=413,
        service_message="Request must be smaller than 69905067 bytes for the CreateFunction operation",
    )
    with pytest.raises(AwsError, match="too large") as info:
        create(session)
    assert "--s3-bucket" in info.value.hint
    assert AwsError.exit_code == 10


def test_role_propagation_is_retried_until_lambda_can_assume_it(stubbed):
    session, stubber, clock = stubbed
    for _ in range(2):
        stubber.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                                 service_message="The role defined for the function cannot be assumed by Lambda.")
    stubber.add_response("create_function", {"FunctionName": NAME, "FunctionArn": ARN}, CREATE)
    stubber.add_response("get_function", _function(state="Pending"), {"FunctionName": NAME})
    stubber.add_response("get_function", _function(state="Active"), {"FunctionName": NAME})
    assert create(session)["FunctionArn"] == ARN
    assert clock.sleeps == [1.0, 2.0]


def test_role_propagation_retry_has_a_time_limit(stubbed):
    session, stubber, clock = stubbed
    for _ in range(4):  # 1 + 2 + 4 s of waiting, then the next 8 s would pass the 10 s limit
        stubber.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                                 service_message="The role defined for the function cannot be assumed by Lambda.")
    with pytest.raises(AwsError, match="still cannot assume the execution role after 10 s") as info:
        create(session)
    assert "lambda.amazonaws.com" in info.value.hint
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_other_invalid_parameters_are_not_retried(stubbed):
    session, stubber, clock = stubbed
    stubber.add_client_error("create_function", service_error_code="InvalidParameterValueException",
                             service_message="The runtime parameter of python3.99 is not supported.")
    with pytest.raises(AwsError, match=r"python3.99 is not supported"):
        create(session)
    assert clock.sleeps == []


def test_update_in_progress_is_waited_out_then_retried(stubbed):
    session, stubber, _ = stubbed
    stubber.add_client_error("update_function_code", service_error_code="ResourceConflictException", http_status_code=409,
                             service_message=f"The operation cannot be performed at this time. An update is in progress for resource: {ARN}")
    stubber.add_response("get_function", _function("InProgress"), {"FunctionName": NAME})
    stubber.add_response("get_function", _function("Successful"), {"FunctionName": NAME})
    stubber.add_response("update_function_code", {"FunctionName": NAME, "CodeSha256": "abc"}, {"FunctionName": NAME, "ZipFile": b"PK"})
    stubber.add_response("get_function", _function("InProgress"), {"FunctionName": NAME})
    stubber.add_response("get_function", _function("Successful"), {"FunctionName": NAME})
    assert update_code(session, ZipFile=b"PK")["CodeSha256"] == "abc"


def test_an_update_ending_in_failed_is_one_line_with_the_reason(stubbed):
    session, stubber, _ = stubbed
    stubber.add_response("update_function_code", {"FunctionName": NAME}, {"FunctionName": NAME, "S3Bucket": "bucket", "S3Key": "k"})
    stubber.add_response("get_function", _function("InProgress"), {"FunctionName": NAME})
    stubber.add_response("get_function", _function("Failed", reason="Unzipped size must be smaller than 262144000 bytes"), {"FunctionName": NAME})
    with pytest.raises(AwsError, match="updating the code of clothes ended in Failed: Unzipped size must be smaller than 262144000 bytes"):
        update_code(session, S3Bucket="bucket", S3Key="k")


def test_access_denied_names_the_missing_action(stubbed):
    session, stubber, _ = stubbed
    stubber.add_client_error(
        "get_function", service_error_code="AccessDeniedException", http_status_code=403,
        service_message=f"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: lambda:GetFunction on resource: {ARN} because no identity-based policy allows the lambda:GetFunction action",
    )
    with pytest.raises(AwsError, match="the caller lacks lambda:GetFunction") as info:
        session.get_function(NAME)
    assert info.value.hint.startswith("grant lambda:GetFunction")


def test_missing_action_parsing():
    assert missing_action("User: x is not authorized to perform: iam:CreateRole on resource: y") == "iam:CreateRole"
    assert missing_action("Access Denied") is None


def test_throttling_says_to_wait(stubbed):
    session, stubber, _ = stubbed
    stubber.add_client_error("get_function", service_error_code="TooManyRequestsException", http_status_code=429, service_message="Rate exceeded")
    with pytest.raises(AwsError, match="throttled"):
        session.get_function(NAME)


def test_expired_credentials(stubbed):
    session, stubber, _ = stubbed
    stubber.add_client_error("get_function", service_error_code="ExpiredTokenException", http_status_code=403, service_message="The security token included in the request is expired")
    with pytest.raises(AwsError, match="refused the credentials") as info:
        session.get_function(NAME)
    assert "aws sso login" in info.value.hint


def test_no_credentials_at_all(aws_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    session = AwsSession(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(AwsError, match="no AWS credentials") as info:
        session.account_id()
    assert "--profile" in info.value.hint


def test_unreachable_endpoint(aws_env):
    import boto3
    from botocore.config import Config

    sts = boto3.client("sts", region_name="eu-west-1", endpoint_url="http://127.0.0.1:9", config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    session = AwsSession(region="eu-west-1", clients={"sts": sts})
    with pytest.raises(AwsError, match="cannot reach AWS") as info:
        session.account_id()
    assert "--endpoint-url" in info.value.hint


def test_invoke_reports_function_error(stubbed):
    session, stubber, _ = stubbed
    body = b'{"errorMessage": "No module named numpy", "errorType": "Runtime.ImportModuleError"}'
    stubber.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": StreamingBody(io.BytesIO(body), len(body))},
                         {"FunctionName": NAME, "Qualifier": "3", "Payload": ANY})
    answer = Executor(session).run(Call("lambda", "invoke", {"FunctionName": NAME, "Qualifier": "3", "Payload": b'{"image": "..."}'}, "invoking"))
    assert (answer["StatusCode"], answer["FunctionError"], answer["Payload"]) == (200, "Unhandled", body)


def test_a_create_ending_in_failed_gives_the_state_reason(stubbed):
    session, stubber, _ = stubbed
    stubber.add_response("create_function", {"FunctionName": NAME, "FunctionArn": ARN}, CREATE)
    stubber.add_response("get_function", {"Configuration": {"FunctionName": NAME, "State": "Pending"}}, {"FunctionName": NAME})
    stubber.add_response("get_function", {"Configuration": {"FunctionName": NAME, "State": "Failed", "StateReason": "Lambda was unable to decrypt the environment variables"}},
                         {"FunctionName": NAME})
    with pytest.raises(AwsError, match="creating the function clothes ended in Failed: Lambda was unable to decrypt"):
        create(session)


def test_unknown_profile_is_bad_input(aws_env):
    from lamb.errors import InputError

    with pytest.raises(InputError, match="no AWS profile 'nope'") as info:
        AwsSession(region="eu-west-1", profile="nope")
    assert "list-profiles" in info.value.hint


def test_no_region_is_bad_input(aws_env, monkeypatch):
    from lamb.errors import InputError

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(InputError, match="no AWS region"):
        AwsSession()
    monkeypatch.setenv("AWS_REGION", "ap-south-1")  # what the AWS CLI v2 and Lambda set; boto3 alone ignores it
    assert AwsSession().region == "ap-south-1"


def test_every_call_and_its_answer_is_logged_for_verbose(stubbed, caplog):
    session, stubber, _ = stubbed
    stubber.add_client_error("create_function", service_error_code="RequestEntityTooLargeException", http_status_code=413,
                             service_message="too large")
    with caplog.at_level("DEBUG", logger="lamb.deploy.aws"), pytest.raises(AwsError):
        create(session)
    lines = [r.getMessage() for r in caplog.records if r.name == "lamb.deploy.aws"]
    assert any(line.startswith("AWS lambda CreateFunction(") and "Code={'ZipFile': b'PK'}" in line for line in lines), lines
    assert "AWS lambda CreateFunction -> 413 RequestEntityTooLargeException" in lines
