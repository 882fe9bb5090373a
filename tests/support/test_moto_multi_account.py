"""Several accounts in one launched moto server, reached through STS
AssumeRole (moto_sts_ext.py), as the operator's RegistryTarget reaches them.

Expected values come from the STS and ECR API references: AssumeRole answers
temporary credentials (access key ids starting ``ASIA``) and the
assumed-role user ``arn:aws:sts::<account>:assumed-role/<role>/<session>``;
ECR names the account in ``registryId``, the repository ARN
``arn:aws:ecr:<region>:<account>:repository/<name>`` and the URI
``<account>.dkr.ecr.<region>.amazonaws.com/<name>``; a refused AssumeRole is
HTTP 403, code AccessDenied, type Sender.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from test_moto_ext import http, start_launcher, stop_launcher

DEFAULT_ACCOUNT = "123456789012"
OTHER = "222222222222"
THIRD = "333333333333"
ROLE = f"arn:aws:iam::{OTHER}:role/x"


@pytest.fixture(scope="module")
def server():
    proc, url = start_launcher()
    yield url
    stop_launcher(proc)


@pytest.fixture(autouse=True)
def _reset(server):
    http(server, "POST", "/moto-api/reset")


def client(url: str, service: str, region: str = "us-east-1", credentials: dict | None = None) -> Any:
    credentials = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        config=Config(retries={"total_max_attempts": 1}),
        **credentials,
    )


def credentials_of(answer: dict) -> dict:
    c = answer["Credentials"]
    return {
        "aws_access_key_id": c["AccessKeyId"],
        "aws_secret_access_key": c["SecretAccessKey"],
        "aws_session_token": c["SessionToken"],
    }


def assume(url: str, role_arn: str = ROLE, caller: dict | None = None, **kwargs) -> dict:
    sts = client(url, "sts", credentials=caller)
    return sts.assume_role(RoleArn=role_arn, RoleSessionName="operator", **kwargs)


def iam_of(url: str, account: str) -> Any:
    """An IAM client acting in ``account`` (moto's x-moto-account-id header)."""
    iam = client(url, "iam")

    def add_header(request, **_):
        request.headers["x-moto-account-id"] = account

    iam.meta.events.register("before-sign.iam.*", add_header)
    return iam


def trust(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, condition: dict | None = None, effect: str = "Allow") -> dict:
    statement = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return statement


def create_role(url: str, account: str, name: str, policy: str) -> str:
    return iam_of(url, account).create_role(RoleName=name, AssumeRolePolicyDocument=policy)["Role"]["Arn"]


def access_denied(excinfo) -> dict:
    error = excinfo.value.response["Error"]
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Code"] == "AccessDenied"
    assert error["Type"] == "Sender"
    return error


# ---------------------------------------------------------------------------
# Reaching another account
# ---------------------------------------------------------------------------


def test_assume_role_of_another_account_answers_credentials(server):
    answer = assume(server)
    credentials = answer["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z0-9]{16}", credentials["AccessKeyId"])
    assert credentials["SecretAccessKey"] and credentials["SessionToken"]
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{OTHER}:assumed-role/x/operator"
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":operator")

    identity = client(server, "sts", credentials=credentials_of(answer)).get_caller_identity()
    assert identity["Account"] == OTHER
    assert identity["Arn"] == f"arn:aws:sts::{OTHER}:assumed-role/x/operator"
    assert client(server, "sts").get_caller_identity()["Account"] == DEFAULT_ACCOUNT


def test_ecr_calls_with_assumed_credentials_land_in_that_account(server):
    other = client(server, "ecr", credentials=credentials_of(assume(server)))
    default = client(server, "ecr")

    repository = other.create_repository(repositoryName="team/app")["repository"]
    assert repository["registryId"] == OTHER
    assert repository["repositoryArn"] == f"arn:aws:ecr:us-east-1:{OTHER}:repository/team/app"
    assert repository["repositoryUri"] == f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com/team/app"
    assert other.describe_registry()["registryId"] == OTHER

    # Invisible from the default account, and the other way round.
    assert default.describe_repositories()["repositories"] == []
    with pytest.raises(default.exceptions.RepositoryNotFoundException):
        default.describe_repositories(repositoryNames=["team/app"])
    default.create_repository(repositoryName="mine")
    assert [r["repositoryName"] for r in other.describe_repositories()["repositories"]] == ["team/app"]

    # The same name in both accounts: two repositories.
    twin = default.create_repository(repositoryName="team/app")["repository"]
    assert twin["registryId"] == DEFAULT_ACCOUNT
    assert twin["repositoryArn"] != repository["repositoryArn"]


def test_same_account_other_region_is_isolated(server):
    credentials = credentials_of(assume(server))
    east = client(server, "ecr", "us-east-1", credentials)
    west = client(server, "ecr", "eu-west-1", credentials)

    east.create_repository(repositoryName="app")
    assert west.describe_repositories()["repositories"] == []
    created = west.create_repository(repositoryName="app")["repository"]
    assert created["repositoryArn"] == f"arn:aws:ecr:eu-west-1:{OTHER}:repository/app"
    assert created["repositoryUri"] == f"{OTHER}.dkr.ecr.eu-west-1.amazonaws.com/app"
    east.delete_repository(repositoryName="app")
    assert [r["registryId"] for r in west.describe_repositories()["repositories"]] == [OTHER]


def test_a_session_can_assume_a_role_of_a_third_account(server):
    second = credentials_of(assume(server))
    third = assume(server, f"arn:aws:iam::{THIRD}:role/y", caller=second)
    assert third["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{THIRD}:assumed-role/y/operator"
    ecr = client(server, "ecr", credentials=credentials_of(third))
    assert ecr.create_repository(repositoryName="app")["repository"]["registryId"] == THIRD


def test_a_reset_forgets_the_temporary_keys(server):
    # Documented caveat: after a reset, credentials issued before it are
    # unknown keys, which moto puts in the default account.
    ecr = client(server, "ecr", credentials=credentials_of(assume(server)))
    assert ecr.create_repository(repositoryName="app")["repository"]["registryId"] == OTHER
    http(server, "POST", "/moto-api/reset")
    assert ecr.create_repository(repositoryName="app")["repository"]["registryId"] == DEFAULT_ACCOUNT


# ---------------------------------------------------------------------------
# Trust policies and ExternalId
# ---------------------------------------------------------------------------


def test_a_role_moto_does_not_hold_is_granted_with_any_external_id(server):
    # moto's behaviour, kept: no role, nothing to refuse.
    assert assume(server, ExternalId="whatever")["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{OTHER}:assumed-role/x/"
    )
    assert assume(server)["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_external_id_condition(server):
    role = create_role(
        server, OTHER, "x", trust(allow({"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"},
                                        {"StringEquals": {"sts:ExternalId": "s3cr3t-id"}}))
    )
    assert role == ROLE

    with pytest.raises(ClientError) as missing:
        assume(server)
    error = access_denied(missing)
    assert error["Message"] == (
        f"User: arn:aws:sts::{DEFAULT_ACCOUNT}:user/moto is not authorized to perform: "
        f"sts:AssumeRole on resource: {ROLE}"
    )
    with pytest.raises(ClientError) as wrong:
        assume(server, ExternalId="other-id")
    access_denied(wrong)

    granted = assume(server, ExternalId="s3cr3t-id")
    ecr = client(server, "ecr", credentials=credentials_of(granted))
    assert ecr.create_repository(repositoryName="app")["repository"]["registryId"] == OTHER


def test_principal_must_name_the_caller(server):
    create_role(server, OTHER, "x", trust(allow({"AWS": f"arn:aws:iam::{THIRD}:root"})))
    with pytest.raises(ClientError) as denied:
        assume(server)
    access_denied(denied)

    create_role(server, OTHER, "by-id", trust(allow({"AWS": DEFAULT_ACCOUNT})))
    assert assume(server, f"arn:aws:iam::{OTHER}:role/by-id")["Credentials"]
    create_role(server, OTHER, "anyone", trust(allow("*")))
    assert assume(server, f"arn:aws:iam::{OTHER}:role/anyone")["Credentials"]
    create_role(server, OTHER, "service", trust(allow({"Service": "ec2.amazonaws.com"})))
    with pytest.raises(ClientError) as service_only:
        assume(server, f"arn:aws:iam::{OTHER}:role/service")
    access_denied(service_only)


def test_a_role_trusting_another_role_admits_its_sessions_only(server):
    # Role x (account OTHER, not created: granted to anyone) is the hop; role
    # "target" in THIRD trusts role x only.
    create_role(server, THIRD, "target", trust(allow({"AWS": ROLE})))
    target = f"arn:aws:iam::{THIRD}:role/target"

    with pytest.raises(ClientError) as denied:
        assume(server, target)
    access_denied(denied)

    hop = credentials_of(assume(server))
    answer = assume(server, target, caller=hop)
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{THIRD}:assumed-role/target/operator"

    with pytest.raises(ClientError) as other_hop:
        assume(server, target, caller=credentials_of(assume(server, f"arn:aws:iam::{OTHER}:role/not-x")))
    assert access_denied(other_hop)["Message"].startswith(
        f"User: arn:aws:sts::{OTHER}:assumed-role/not-x/operator is not authorized"
    )


def test_an_explicit_deny_wins(server):
    create_role(
        server,
        OTHER,
        "x",
        trust(
            allow({"AWS": DEFAULT_ACCOUNT}),
            allow({"AWS": DEFAULT_ACCOUNT}, {"StringNotEquals": {"sts:ExternalId": "good"}}, effect="Deny"),
        ),
    )
    with pytest.raises(ClientError) as denied:
        assume(server, ExternalId="bad")
    access_denied(denied)
    assert assume(server, ExternalId="good")["Credentials"]


def test_trust_policy_changes_apply_to_the_next_assume_role(server):
    create_role(server, OTHER, "x", trust(allow({"AWS": DEFAULT_ACCOUNT})))
    issued = client(server, "ecr", credentials=credentials_of(assume(server)))

    iam_of(server, OTHER).update_assume_role_policy(
        RoleName="x", PolicyDocument=trust(allow({"AWS": THIRD}))
    )
    with pytest.raises(ClientError) as denied:
        assume(server)
    access_denied(denied)
    # Credentials already issued stay valid.
    assert issued.create_repository(repositoryName="app")["repository"]["registryId"] == OTHER

    iam_of(server, OTHER).delete_role(RoleName="x")
    assert assume(server)["Credentials"]  # no role any more: moto grants


def test_ecr_public_of_another_account(server):
    other = client(server, "ecr-public", credentials=credentials_of(assume(server)))
    default = client(server, "ecr-public")
    repository = other.create_repository(repositoryName="app")["repository"]
    assert repository["registryId"] == OTHER
    assert repository["repositoryArn"] == f"arn:aws:ecr-public::{OTHER}:repository/app"
    assert default.describe_repositories()["repositories"] == []
    assert other.describe_registries()["registries"][0]["registryId"] == OTHER
