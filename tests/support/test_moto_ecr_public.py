"""Tests of Amazon ECR Public in the launched moto server
(moto_ecr_public_ext.py), through boto3's ``ecr-public`` client.

Expected values come from the ecr-public 2020-10-30 model (bounds, patterns,
error shapes) and the service's documented answers: a repository ARN
``arn:aws:ecr-public::<account>:repository/<name>``, a URI
``public.ecr.aws/<registry alias>/<name>``, ``"catalogData": {}`` for a
repository created without catalog data, a ``logoUrl`` in place of the logo,
and a control plane in us-east-1 only.
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

ACCOUNT = "123456789012"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr-public:*"]}],
    }
)


@pytest.fixture(scope="module")
def server():
    proc, url = start_launcher()
    yield url
    stop_launcher(proc)


@pytest.fixture(autouse=True)
def _reset(server):
    http(server, "POST", "/moto-api/reset")


def client(url: str, region: str = "us-east-1", **config) -> Any:
    config.setdefault("retries", {"total_max_attempts": 1})
    return boto3.client(
        "ecr-public",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


@pytest.fixture
def ecrp(server):
    return client(server)


@pytest.fixture
def raw(server):
    """Leaves every constraint to the server, as the Rust SDK does."""
    return client(server, parameter_validation=False)


def invalid(excinfo) -> str:
    response = excinfo.value.response
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Message"]


def alias_of(ecrp) -> str:
    return ecrp.describe_registries()["registries"][0]["aliases"][0]["name"]


# ---------------------------------------------------------------------------
# Repositories
# ---------------------------------------------------------------------------


def test_create_without_catalog_data(ecrp):
    answer = ecrp.create_repository(repositoryName="project-a/nginx-web-app")
    repository = answer["repository"]
    assert answer["catalogData"] == {}
    assert repository["registryId"] == ACCOUNT
    assert repository["repositoryName"] == "project-a/nginx-web-app"
    assert repository["repositoryArn"] == f"arn:aws:ecr-public::{ACCOUNT}:repository/project-a/nginx-web-app"
    assert repository["repositoryUri"] == f"public.ecr.aws/{alias_of(ecrp)}/project-a/nginx-web-app"
    assert "createdAt" in repository
    assert ecrp.get_repository_catalog_data(repositoryName="project-a/nginx-web-app")["catalogData"] == {}

    with pytest.raises(ecrp.exceptions.RepositoryAlreadyExistsException):
        ecrp.create_repository(repositoryName="project-a/nginx-web-app")


def test_create_with_catalog_data_and_tags(ecrp):
    catalog = {
        "description": "My project-a ECR Public Repository",
        "architectures": ["ARM", "ARM 64", "x86", "x86-64"],
        "operatingSystems": ["Linux"],
        "logoImageBlob": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "aboutText": "## Quick reference",
        "usageText": "## Supported architectures",
    }
    answer = ecrp.create_repository(
        repositoryName="app", catalogData=catalog, tags=[{"Key": "team", "Value": "a"}, {"Key": "empty"}]
    )
    returned = answer["catalogData"]
    assert {k: v for k, v in returned.items() if k != "logoUrl"} == {
        k: v for k, v in catalog.items() if k != "logoImageBlob"
    }
    assert re.fullmatch(
        r"https://d3g9o9u8re44ak\.cloudfront\.net/logo/[0-9a-f-]{36}/[0-9a-f-]{36}\.png", returned["logoUrl"]
    )
    assert "logoImageBlob" not in returned
    assert ecrp.get_repository_catalog_data(repositoryName="app")["catalogData"] == returned
    arn = answer["repository"]["repositoryArn"]
    assert ecrp.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "team", "Value": "a"},
        {"Key": "empty"},
    ]


def test_put_catalog_data_replaces_it_and_names_the_logo(ecrp):
    ecrp.create_repository(repositoryName="app")
    first = ecrp.put_repository_catalog_data(
        repositoryName="app",
        catalogData={"description": "one", "usageText": "use it", "logoImageBlob": b"logo-1"},
    )["catalogData"]
    assert first["description"] == "one" and first["usageText"] == "use it"
    assert ecrp.get_repository_catalog_data(repositoryName="app")["catalogData"] == first

    same_logo = ecrp.put_repository_catalog_data(
        repositoryName="app", catalogData={"description": "two", "logoImageBlob": b"logo-1"}
    )["catalogData"]
    assert same_logo == {"description": "two", "logoUrl": first["logoUrl"]}  # usageText cleared

    other_logo = ecrp.put_repository_catalog_data(
        repositoryName="app", catalogData={"logoImageBlob": b"logo-2"}
    )["catalogData"]
    assert other_logo["logoUrl"] != first["logoUrl"]

    assert ecrp.put_repository_catalog_data(repositoryName="app", catalogData={})["catalogData"] == {}
    assert ecrp.put_repository_catalog_data(
        repositoryName="app", catalogData={"logoImageBlob": b""}
    )["catalogData"] == {}

    # Another repository, same image: its own URL.
    ecrp.create_repository(repositoryName="other", catalogData={"logoImageBlob": b"logo-2"})
    assert ecrp.get_repository_catalog_data(repositoryName="other")["catalogData"]["logoUrl"] != other_logo["logoUrl"]

    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.put_repository_catalog_data(repositoryName="missing", catalogData={})
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.get_repository_catalog_data(repositoryName="missing")


def test_architectures_and_operating_systems_outside_the_gallery_badges_are_kept(ecrp):
    catalog = {"architectures": ["riscv64"], "operatingSystems": ["FreeBSD"]}
    assert ecrp.create_repository(repositoryName="app", catalogData=catalog)["catalogData"] == catalog


@pytest.mark.parametrize(
    "member, at_limit, over_limit",
    [
        ("description", "d" * 1024, "d" * 1025),
        ("aboutText", "a" * 25600, "a" * 25601),
        ("usageText", "u" * 25600, "u" * 25601),
        ("architectures", ["x86"] * 50, ["x86"] * 51),
        ("architectures", ["a" * 50], ["a" * 51]),
        ("operatingSystems", ["Linux"] * 50, ["Linux"] * 51),
        ("operatingSystems", ["o"], [""]),
        ("logoImageBlob", b"\x01" * 512000, b"\x01" * 512001),
    ],
)
def test_catalog_data_bounds(raw, member, at_limit, over_limit):
    raw.create_repository(repositoryName="app")
    assert raw.put_repository_catalog_data(repositoryName="app", catalogData={member: at_limit})
    with pytest.raises(ClientError) as create:
        raw.create_repository(repositoryName="other", catalogData={member: over_limit})
    assert f"'catalogData.{member}" in invalid(create)
    with pytest.raises(ClientError) as put:
        raw.put_repository_catalog_data(repositoryName="app", catalogData={member: over_limit})
    invalid(put)
    # Nothing was created or changed by the refused calls.
    assert [r["repositoryName"] for r in raw.describe_repositories()["repositories"]] == ["app"]
    assert raw.get_repository_catalog_data(repositoryName="app")["catalogData"] != {}


# ECR Public's RepositoryName allows one separator (. _ -) between
# components, unlike private ECR's (__ and runs of -).
@pytest.mark.parametrize("name", ["a", "A1", "a" * 206, "a//b", "-ab", "ab-", "a/", "a b", "x__y", "a--b"])
def test_repository_name_constraints(raw, name):
    with pytest.raises(ClientError) as excinfo:
        raw.create_repository(repositoryName=name)
    assert "'repositoryName'" in invalid(excinfo)


@pytest.mark.parametrize("name", ["ab", "a" * 205, "a.b_c-d/e/f1", "0/1"])
def test_valid_repository_names(ecrp, name):
    assert ecrp.create_repository(repositoryName=name)["repository"]["repositoryName"] == name


def test_describe_repositories_pages(ecrp, raw):
    names = [f"repo-{i:02d}" for i in range(7)]
    for name in reversed(names):
        ecrp.create_repository(repositoryName=name)
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"maxResults": 3, **({"nextToken": token} if token else {})}
        page = ecrp.describe_repositories(**kwargs)
        pages += 1
        seen += [r["repositoryName"] for r in page["repositories"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == names and pages == 3
    assert [r["repositoryName"] for r in ecrp.describe_repositories()["repositories"]] == names

    selected = ecrp.describe_repositories(repositoryNames=["repo-03", "repo-01"])["repositories"]
    assert [r["repositoryName"] for r in selected] == ["repo-03", "repo-01"]
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.describe_repositories(repositoryNames=["repo-01", "missing"])
    with pytest.raises(ClientError) as combined:
        ecrp.describe_repositories(repositoryNames=["repo-01"], maxResults=1)
    invalid(combined)
    for bad in (0, 1001):
        with pytest.raises(ClientError) as excinfo:
            raw.describe_repositories(maxResults=bad)
        assert "'maxResults'" in invalid(excinfo)
    with pytest.raises(ClientError) as token_error:
        ecrp.describe_repositories(nextToken="not-a-token")
    invalid(token_error)


def test_default_page_is_100(ecrp):
    for i in range(101):
        ecrp.create_repository(repositoryName=f"r{i:03d}")
    first = ecrp.describe_repositories()
    assert len(first["repositories"]) == 100 and "nextToken" in first
    rest = ecrp.describe_repositories(nextToken=first["nextToken"])
    assert [r["repositoryName"] for r in rest["repositories"]] == ["r100"]
    assert "nextToken" not in rest


def test_registry_id(ecrp, raw):
    ecrp.create_repository(repositoryName="app")
    assert ecrp.describe_repositories(registryId=ACCOUNT)["repositories"][0]["repositoryName"] == "app"
    assert ecrp.describe_repositories(registryId="210987654321")["repositories"] == []
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException) as excinfo:
        ecrp.get_repository_catalog_data(registryId="210987654321", repositoryName="app")
    assert "'210987654321'" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as bad:
        raw.describe_repositories(registryId="12345")
    assert "'registryId'" in invalid(bad)


def test_delete_repository_with_force(ecrp):
    created = ecrp.create_repository(
        repositoryName="app", catalogData={"description": "d"}, tags=[{"Key": "k", "Value": "v"}]
    )["repository"]
    ecrp.set_repository_policy(repositoryName="app", policyText=POLICY)
    deleted = ecrp.delete_repository(repositoryName="app", force=True)["repository"]
    assert deleted == created
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.describe_repositories(repositoryNames=["app"])
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.delete_repository(repositoryName="app")

    # A new repository of the same name starts empty.
    again = ecrp.create_repository(repositoryName="app")
    assert again["catalogData"] == {}
    assert ecrp.list_tags_for_resource(resourceArn=again["repository"]["repositoryArn"])["tags"] == []
    with pytest.raises(ecrp.exceptions.RepositoryPolicyNotFoundException):
        ecrp.get_repository_policy(repositoryName="app")
    assert ecrp.delete_repository(repositoryName="app")["repository"]["repositoryName"] == "app"


# ---------------------------------------------------------------------------
# Repository policy
# ---------------------------------------------------------------------------


def test_repository_policy(ecrp, raw):
    ecrp.create_repository(repositoryName="app")
    with pytest.raises(ecrp.exceptions.RepositoryPolicyNotFoundException):
        ecrp.get_repository_policy(repositoryName="app")
    expected = {"registryId": ACCOUNT, "repositoryName": "app", "policyText": POLICY}

    answer = ecrp.set_repository_policy(repositoryName="app", policyText=POLICY)
    assert {k: answer[k] for k in expected} == expected
    answer = ecrp.get_repository_policy(repositoryName="app")
    assert {k: answer[k] for k in expected} == expected
    assert ecrp.set_repository_policy(repositoryName="app", policyText=POLICY, force=True)["policyText"] == POLICY

    answer = ecrp.delete_repository_policy(repositoryName="app")
    assert {k: answer[k] for k in expected} == expected
    with pytest.raises(ecrp.exceptions.RepositoryPolicyNotFoundException):
        ecrp.delete_repository_policy(repositoryName="app")
    with pytest.raises(ecrp.exceptions.RepositoryPolicyNotFoundException):
        ecrp.get_repository_policy(repositoryName="app")

    with pytest.raises(ClientError) as not_json:
        ecrp.set_repository_policy(repositoryName="app", policyText="{not json")
    invalid(not_json)
    long_policy = json.dumps({"Version": "2012-10-17", "Statement": [], "Id": "x" * 10240})
    with pytest.raises(ClientError) as too_long:
        raw.set_repository_policy(repositoryName="app", policyText=long_policy)
    assert "'policyText'" in invalid(too_long)
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.set_repository_policy(repositoryName="missing", policyText=POLICY)


# ---------------------------------------------------------------------------
# Tags
# ---------------------------------------------------------------------------


def test_tags(ecrp, raw):
    arn = ecrp.create_repository(repositoryName="app", tags=[{"Key": "a", "Value": "1"}])["repository"][
        "repositoryArn"
    ]
    ecrp.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert sorted(ecrp.list_tags_for_resource(resourceArn=arn)["tags"], key=lambda t: t["Key"]) == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    ecrp.untag_resource(resourceArn=arn, tagKeys=["a", "never-there"])
    assert ecrp.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]

    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(49)]
    ecrp.tag_resource(resourceArn=arn, tags=fifty)  # 50 with "b"
    with pytest.raises(ecrp.exceptions.TooManyTagsException):
        ecrp.tag_resource(resourceArn=arn, tags=[{"Key": "one-more", "Value": "v"}])
    assert len(ecrp.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    with pytest.raises(ecrp.exceptions.TooManyTagsException):
        ecrp.create_repository(repositoryName="other", tags=[{"Key": f"k{i}"} for i in range(51)])

    with pytest.raises(ecrp.exceptions.InvalidTagParameterException):
        raw.tag_resource(resourceArn=arn, tags=[{"Key": "k" * 129, "Value": "v"}])
    with pytest.raises(ecrp.exceptions.InvalidTagParameterException):
        raw.tag_resource(resourceArn=arn, tags=[{"Key": "k", "Value": "v" * 257}])
    raw.untag_resource(resourceArn=arn, tagKeys=["b"])
    assert raw.tag_resource(resourceArn=arn, tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    assert {"Key": "k" * 128, "Value": "v" * 256} in raw.list_tags_for_resource(resourceArn=arn)["tags"]

    with pytest.raises(ClientError) as not_an_arn:
        ecrp.list_tags_for_resource(resourceArn=f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app")
    invalid(not_an_arn)
    with pytest.raises(ecrp.exceptions.RepositoryNotFoundException):
        ecrp.tag_resource(resourceArn=arn.replace("/app", "/missing"), tags=[{"Key": "a", "Value": "b"}])


# ---------------------------------------------------------------------------
# Registry, Region, reset
# ---------------------------------------------------------------------------


def test_describe_registries(ecrp):
    (registry,) = ecrp.describe_registries()["registries"]
    alias = registry["aliases"][0]["name"]
    assert re.fullmatch(r"[a-z][a-z0-9]+(?:[._-][a-z0-9]+)*", alias) and 2 <= len(alias) <= 50
    assert registry == {
        "registryId": ACCOUNT,
        "registryArn": f"arn:aws:ecr-public::{ACCOUNT}:registry/{ACCOUNT}",
        "registryUri": f"public.ecr.aws/{alias}",
        "verified": False,
        "aliases": [{"name": alias, "status": "ACTIVE", "primaryRegistryAlias": True, "defaultRegistryAlias": True}],
    }


def test_registry_catalog_data(ecrp, raw):
    assert ecrp.get_registry_catalog_data()["registryCatalogData"] == {}
    assert ecrp.put_registry_catalog_data(displayName="My registry")["registryCatalogData"] == {
        "displayName": "My registry"
    }
    assert ecrp.get_registry_catalog_data()["registryCatalogData"] == {"displayName": "My registry"}
    with pytest.raises(ClientError) as too_long:
        raw.put_registry_catalog_data(displayName="d" * 101)
    assert "'displayName'" in invalid(too_long)


@pytest.mark.parametrize("region", ["us-west-2", "eu-west-1"])
def test_only_us_east_1(server, region):
    elsewhere = client(server, region)
    for call in (
        lambda: elsewhere.create_repository(repositoryName="app"),
        lambda: elsewhere.describe_repositories(),
        lambda: elsewhere.describe_registries(),
    ):
        with pytest.raises(elsewhere.exceptions.UnsupportedCommandException) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Message"] == "The action isn't supported in this Region."
    assert client(server).describe_repositories()["repositories"] == []


def test_reset_clears_public_repositories(server, ecrp):
    ecrp.create_repository(repositoryName="app")
    ecrp.put_registry_catalog_data(displayName="x")
    http(server, "POST", "/moto-api/reset")
    assert ecrp.describe_repositories()["repositories"] == []
    assert ecrp.get_registry_catalog_data()["registryCatalogData"] == {}


def test_private_ecr_is_unaffected(server, ecrp):
    ecr = boto3.client(
        "ecr", endpoint_url=server, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    ecrp.create_repository(repositoryName="app")
    assert ecr.describe_repositories()["repositories"] == []
    ecr.create_repository(repositoryName="app")
    assert [r["repositoryName"] for r in ecrp.describe_repositories()["repositories"]] == ["app"]


def test_fault_switch_and_call_counters_know_ecr_public(server, ecrp):
    status, fault = http(
        server,
        "POST",
        "/moto-api/ecr-ext/faults",
        {"service": "ecr-public", "operation": "DescribeRepositories", "kind": "server_error", "count": 1},
    )
    assert status == 201, fault
    with pytest.raises(ecrp.exceptions.ServerException):
        ecrp.describe_repositories()
    assert ecrp.describe_repositories()["repositories"] == []
    status, calls = http(server, "GET", "/moto-api/ecr-ext/calls?service=ecr-public")
    assert (status, calls) == (200, {"DescribeRepositories": 2})
    status, faulted = http(server, "GET", "/moto-api/ecr-ext/calls/faulted?service=ecr-public")
    assert (status, faulted) == (200, {"DescribeRepositories": 1})
