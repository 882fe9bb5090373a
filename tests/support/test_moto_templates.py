"""Tests of the repository creation templates moto_ecr_templates.py adds to moto, through the
launcher and boto3 (the fixtures of test_moto_ext.py)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from test_moto_ext import ACCOUNT, _reset, ecr, error_of, raw_ecr, server  # noqa: F401

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}],
    }
)
LIFECYCLE = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5},
                "action": {"type": "expire"},
            }
        ]
    }
)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-template"
KMS = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def full_template(prefix: str = "prod") -> dict:
    return {
        "prefix": prefix,
        "description": "production images",
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": KMS},
        "resourceTags": [{"Key": "team", "Value": "platform"}],
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}],
        "repositoryPolicy": POLICY,
        "lifecyclePolicy": LIFECYCLE,
        "appliedFor": ["PULL_THROUGH_CACHE", "REPLICATION", "CREATE_ON_PUSH"],
        "customRoleArn": ROLE,
    }


def test_template_create_describe_delete(ecr):
    created = ecr.create_repository_creation_template(**full_template())
    assert created["registryId"] == ACCOUNT
    template = created["repositoryCreationTemplate"]
    for member, value in full_template().items():
        assert template[member] == value, member
    assert template["createdAt"] == template["updatedAt"]
    described = ecr.describe_repository_creation_templates()
    assert described["registryId"] == ACCOUNT
    assert described["repositoryCreationTemplates"] == [template]
    deleted = ecr.delete_repository_creation_template(prefix="prod")
    assert deleted["repositoryCreationTemplate"] == template
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_template_defaults(ecr):
    template = ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["REPLICATION"])[
        "repositoryCreationTemplate"
    ]
    assert template["imageTagMutability"] == "MUTABLE"
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    for member in ("description", "resourceTags", "repositoryPolicy", "lifecyclePolicy", "customRoleArn"):
        assert member not in template


def test_template_one_per_prefix(ecr):
    ecr.create_repository_creation_template(prefix="team/app", appliedFor=["CREATE_ON_PUSH"])
    # "There is always an assumed / applied to the end of the prefix."
    for prefix in ("team/app", "team/app/"):
        with pytest.raises(ClientError) as excinfo:
            ecr.create_repository_creation_template(prefix=prefix, appliedFor=["REPLICATION"])
        assert error_of(excinfo) == ("TemplateAlreadyExistsException", 400)


def test_template_not_found(ecr):
    with pytest.raises(ClientError) as excinfo:
        ecr.update_repository_creation_template(prefix="absent", description="x")
    assert error_of(excinfo) == ("TemplateNotFoundException", 400)
    with pytest.raises(ClientError) as excinfo:
        ecr.delete_repository_creation_template(prefix="absent")
    assert error_of(excinfo) == ("TemplateNotFoundException", 400)


def test_template_update_changes_given_members_only(ecr):
    created = ecr.create_repository_creation_template(**full_template())["repositoryCreationTemplate"]
    updated = ecr.update_repository_creation_template(prefix="prod", description="new", appliedFor=["REPLICATION"])
    template = updated["repositoryCreationTemplate"]
    assert template["description"] == "new"
    assert template["appliedFor"] == ["REPLICATION"]
    assert template["createdAt"] == created["createdAt"]
    assert template["updatedAt"] >= created["updatedAt"]
    for member in ("encryptionConfiguration", "resourceTags", "repositoryPolicy", "lifecyclePolicy", "customRoleArn"):
        assert template[member] == created[member], member
    # Empty values clear; a mode without filters drops the filters.
    cleared = ecr.update_repository_creation_template(
        prefix="prod/",
        description="",
        repositoryPolicy="",
        lifecyclePolicy="",
        customRoleArn="",
        resourceTags=[],
        imageTagMutability="MUTABLE",
    )["repositoryCreationTemplate"]
    for member in (
        "description",
        "repositoryPolicy",
        "lifecyclePolicy",
        "customRoleArn",
        "resourceTags",
        "imageTagMutabilityExclusionFilters",
    ):
        assert member not in cleared, member
    assert cleared["imageTagMutability"] == "MUTABLE"
    assert ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == [cleared]


def test_template_describe_pages_and_filters(ecr):
    prefixes = [f"app-{i:02d}" for i in range(7)]
    for prefix in reversed(prefixes):
        ecr.create_repository_creation_template(prefix=prefix, appliedFor=["CREATE_ON_PUSH"])
    seen, token = [], None
    while True:
        kwargs = {"maxResults": 3} | ({"nextToken": token} if token else {})
        page = ecr.describe_repository_creation_templates(**kwargs)
        assert len(page["repositoryCreationTemplates"]) <= 3
        seen += [t["prefix"] for t in page["repositoryCreationTemplates"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == prefixes
    paginator = ecr.get_paginator("describe_repository_creation_templates")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    assert [t["prefix"] for p in pages for t in p["repositoryCreationTemplates"]] == prefixes
    # A prefix without template is left out; "app-01/" names app-01.
    filtered = ecr.describe_repository_creation_templates(prefixes=["app-01/", "app-05", "nothing"])
    assert [t["prefix"] for t in filtered["repositoryCreationTemplates"]] == ["app-01", "app-05"]
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_repository_creation_templates(maxResults=2, nextToken="forged")
    assert error_of(excinfo) == ("InvalidParameterException", 400)


@pytest.mark.parametrize(
    "change",
    [
        {"prefix": "Upper"},
        {"prefix": "a" * 257},
        {"prefix": "bad//prefix"},
        {"appliedFor": ["PUSH"]},
        {"description": "d" * 257},
        {"encryptionConfiguration": {"encryptionType": "RSA"}},
        {"encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "not-an-arn"}},
        {"encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": KMS}},
        {"resourceTags": [{"Key": "k" * 129, "Value": "v"}]},
        {"resourceTags": [{"Key": "k", "Value": "v" * 257}]},
        {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": None},
        {"imageTagMutability": "IMMUTABLE"},
        {"imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "a b"}]},
        {"imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": f"t{i}"} for i in range(6)]},
        {"repositoryPolicy": "not json"},
        {"repositoryPolicy": json.dumps({"Statement": []}) + " " * 10240},
        {"lifecyclePolicy": json.dumps({"rules": []})},
        {"customRoleArn": "r" * 2049},
    ],
)
def test_template_refuses_what_the_model_refuses(raw_ecr, change):
    request = full_template() | change
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ClientError) as excinfo:
        raw_ecr.create_repository_creation_template(**request)
    assert error_of(excinfo) == ("InvalidParameterException", 400)
    assert raw_ecr.describe_repository_creation_templates()["repositoryCreationTemplates"] == []


def test_template_requires_applied_for(raw_ecr):
    with pytest.raises(ClientError) as excinfo:
        raw_ecr.create_repository_creation_template(prefix="prod")
    assert error_of(excinfo) == ("InvalidParameterException", 400)
