"""Tests of the ECR test peer: moto_launcher.py with moto_ecr_ext.py.

Every test talks to a launcher subprocess over HTTP, with boto3 for the AWS
APIs and urllib for the launcher's control endpoints.
"""

from __future__ import annotations

import json
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "moto_launcher.py"
REGION = "us-east-1"
ACCOUNT = "123456789012"


# ---------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------


def start_launcher(*extra: str, stdin=subprocess.PIPE) -> tuple[subprocess.Popen, str]:
    log = tempfile.NamedTemporaryFile(prefix="moto-launcher-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--port", "0", *extra],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"launcher did not start: {line!r}\n{Path(log.name).read_text()}")
    proc.log_path = log.name  # the server's stderr, removed by stop_launcher
    return proc, line.split()[1]


def stop_launcher(proc: subprocess.Popen) -> None:
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    Path(proc.log_path).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def server():
    proc, url = start_launcher()
    yield url
    stop_launcher(proc)


@pytest.fixture(autouse=True)
def _reset(server):
    http(server, "POST", "/moto-api/reset")


def client(url: str, service: str = "ecr", **config) -> Any:
    config.setdefault("retries", {"total_max_attempts": 1})
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


@pytest.fixture
def ecr(server):
    return client(server)


@pytest.fixture
def raw_ecr(server):
    """A client that leaves all validation to the server (as the Rust SDK does
    for lengths, ranges and patterns)."""
    return client(server, parameter_validation=False)


@pytest.fixture
def secrets(server):
    return client(server, "secretsmanager")


def http(url: str, method: str, path: str, body=None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def error_of(excinfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def create_repos(ecr, names) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: ecr.create_repository(repositoryName=n), names))


def push(ecr, repo: str, seed: str, tag: str | None = None) -> str:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 100,
            "digest": f"sha256:{'c' * 64}",
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": 200,
                "digest": "sha256:" + f"{seed:0>64}"[-64:],
            }
        ],
    }
    kwargs = {"imageTag": tag} if tag else {}
    image = ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), **kwargs)
    return image["image"]["imageId"]["imageDigest"]


def secret_arn(secrets, name: str, value: dict | None = None) -> str:
    value = value or {"username": "u", "accessToken": "t"}
    return secrets.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]


# ---------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------


def test_describe_repositories_pages_of_1000(ecr):
    names = [f"repo-{i:04d}" for i in range(2500)]
    create_repos(ecr, names)

    seen, pages, token = [], [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.describe_repositories(maxResults=1000, **kwargs)
        pages.append(len(page["repositories"]))
        seen += [r["repositoryName"] for r in page["repositories"]]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == [1000, 1000, 500]
    assert seen == sorted(names)

    # Without maxResults: at most 100, with a token.
    first = ecr.describe_repositories()
    assert len(first["repositories"]) == 100 and first["nextToken"]
    # botocore's paginator walks it too.
    total = sum(
        len(p["repositories"])
        for p in ecr.get_paginator("describe_repositories").paginate(
            PaginationConfig={"PageSize": 700}
        )
    )
    assert total == 2500


def test_last_page_has_no_token(ecr):
    create_repos(ecr, ["a1", "a2", "a3", "a4"])
    page = ecr.describe_repositories(maxResults=2)
    page = ecr.describe_repositories(maxResults=2, nextToken=page["nextToken"])
    assert [r["repositoryName"] for r in page["repositories"]] == ["a3", "a4"]
    assert "nextToken" not in page
    assert "nextToken" not in ecr.describe_repositories(maxResults=4)


def test_paging_survives_deletes_and_creates_between_pages(ecr):
    create_repos(ecr, [f"r{i}" for i in range(6)])
    page = ecr.describe_repositories(maxResults=3)
    assert [r["repositoryName"] for r in page["repositories"]] == ["r0", "r1", "r2"]
    ecr.delete_repository(repositoryName="r2")
    ecr.delete_repository(repositoryName="r3")
    ecr.create_repository(repositoryName="r00")  # sorts before the token
    page = ecr.describe_repositories(maxResults=3, nextToken=page["nextToken"])
    assert [r["repositoryName"] for r in page["repositories"]] == ["r4", "r5"]


def test_invalid_next_token(ecr, raw_ecr):
    create_repos(ecr, ["b1", "b2", "b3"])
    for bad in ("garbage", "eyJzIjoiMSIsImEiOiJiMSJ9.0000", ""):
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.describe_repositories(nextToken=bad)
        assert error_of(excinfo) == ("InvalidParameterException", 400)
        assert "nextToken" in excinfo.value.response["Error"]["Message"]

    token = ecr.describe_repositories(maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as excinfo:  # tampered
        ecr.describe_repositories(nextToken=token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert error_of(excinfo)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as excinfo:  # another operation's token
        ecr.list_images(repositoryName="b1", nextToken=token)
    assert error_of(excinfo)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as excinfo:  # another registry's request
        ecr.describe_repositories(registryId="111111111111", nextToken=token)
    assert error_of(excinfo)[0] == "InvalidParameterException"


def test_max_results_range(raw_ecr):
    for bad, words in ((0, "greater than or equal to 1"), (1001, "less than or equal to 1000")):
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.describe_repositories(maxResults=bad)
        assert error_of(excinfo) == ("InvalidParameterException", 400)
        assert words in excinfo.value.response["Error"]["Message"]
    raw_ecr.describe_repositories(maxResults=1)
    raw_ecr.describe_repositories(maxResults=1000)


def test_max_results_not_with_repository_names(ecr):
    create_repos(ecr, ["c1"])
    assert len(ecr.describe_repositories(repositoryNames=["c1"])["repositories"]) == 1
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_repositories(repositoryNames=["c1"], maxResults=5)
    assert error_of(excinfo) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_repositories(repositoryNames=["c1"], nextToken="x")
    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_describe_repositories_missing_name(ecr):
    create_repos(ecr, ["d1"])
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_repositories(repositoryNames=["d1", "missing"])
    assert error_of(excinfo) == ("RepositoryNotFoundException", 400)


def test_describe_images_and_list_images_page(ecr):
    ecr.create_repository(repositoryName="imgs")
    digests = sorted(push(ecr, "imgs", f"{i:x}", tag=f"t{i}") for i in range(7))
    got, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.describe_images(repositoryName="imgs", maxResults=3, **kwargs)
        got += [d["imageDigest"] for d in page["imageDetails"]]
        token = page.get("nextToken")
        if not token:
            break
    assert got == digests

    ids = []
    for page in ecr.get_paginator("list_images").paginate(
        repositoryName="imgs", PaginationConfig={"PageSize": 2}
    ):
        assert len(page["imageIds"]) <= 2
        ids += page["imageIds"]
    assert sorted(i["imageTag"] for i in ids) == [f"t{i}" for i in range(7)]

    with pytest.raises(ClientError) as excinfo:
        ecr.describe_images(
            repositoryName="imgs", imageIds=[{"imageTag": "t1"}], maxResults=2
        )
    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_tag_status_filter(ecr, raw_ecr):
    ecr.create_repository(repositoryName="tags")
    tagged = push(ecr, "tags", "1", tag="v1")
    untagged = push(ecr, "tags", "2")

    def described(status):
        images = ecr.describe_images(repositoryName="tags", filter={"tagStatus": status})
        return sorted(d["imageDigest"] for d in images["imageDetails"])

    def listed(status):
        images = ecr.list_images(repositoryName="tags", filter={"tagStatus": status})
        return sorted(i["imageDigest"] for i in images["imageIds"])

    for fetch in (described, listed):
        assert fetch("TAGGED") == [tagged]
        assert fetch("UNTAGGED") == [untagged]
        assert fetch("ANY") == sorted([tagged, untagged])

    untagged_detail = ecr.describe_images(repositoryName="tags", filter={"tagStatus": "UNTAGGED"})
    assert "imageTags" not in untagged_detail["imageDetails"][0]
    listed_untagged = ecr.list_images(repositoryName="tags", filter={"tagStatus": "UNTAGGED"})
    assert listed_untagged["imageIds"] == [{"imageDigest": untagged}]

    with pytest.raises(ClientError) as excinfo:
        raw_ecr.describe_images(repositoryName="tags", filter={"tagStatus": "SOME"})
    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_scan_findings_page(server, ecr):
    ecr.create_repository(repositoryName="scanned")
    digest = push(ecr, "scanned", "5", tag="latest")
    findings = [
        {"name": f"CVE-2024-{i:04d}", "severity": "HIGH", "uri": "https://example.invalid"}
        for i in range(5)
    ]
    result = {
        "registryId": ACCOUNT,
        "repositoryName": "scanned",
        "imageId": {"imageDigest": digest, "imageTag": "latest"},
        "imageScanStatus": {"status": "COMPLETE", "description": "done"},
        "imageScanFindings": {"findings": findings, "findingSeverityCounts": {"HIGH": 5}},
    }
    status, _ = http(
        server,
        "POST",
        "/moto-api/static/ecr/scan-finding-results",
        {"results": [result], "region": REGION},
    )
    assert status == 201
    ecr.start_image_scan(repositoryName="scanned", imageId={"imageTag": "latest"})

    names, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.describe_image_scan_findings(
            repositoryName="scanned", imageId={"imageTag": "latest"}, maxResults=2, **kwargs
        )
        pages += 1
        assert page["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 5}
        names += [f["name"] for f in page["imageScanFindings"]["findings"]]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 3
    assert names == [f["name"] for f in findings]


def test_put_image_into_missing_repository(ecr):
    with pytest.raises(ClientError) as excinfo:
        push(ecr, "nowhere", "1", tag="x")
    assert error_of(excinfo) == ("RepositoryNotFoundException", 400)


# ---------------------------------------------------------------------------
# Pull through cache rules
# ---------------------------------------------------------------------------


UPSTREAMS = {
    "ecr-public": "public.ecr.aws",
    "quay": "quay.io",
    "k8s": "registry.k8s.io",
    "docker-hub": "registry-1.docker.io",
    "github-container-registry": "ghcr.io",
    "gitlab-container-registry": "registry.gitlab.com",
    "azure-container-registry": "myregistry.azurecr.io",
    "chainguard": "cgr.dev",
    "ecr": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
}


def test_create_infers_upstream_registry(ecr, secrets):
    arn = secret_arn(secrets, "ecr-pullthroughcache/creds")
    for upstream, url in UPSTREAMS.items():
        kwargs = {"credentialArn": arn} if upstream in (
            "docker-hub",
            "github-container-registry",
            "gitlab-container-registry",
            "azure-container-registry",
            "chainguard",
        ) else {}
        created = ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix=f"p-{upstream}"[:30], upstreamRegistryUrl=url, **kwargs
        )
        assert created["upstreamRegistry"] == upstream
        assert created["registryId"] == ACCOUNT
        assert created["upstreamRegistryUrl"] == url
        assert created["upstreamRepositoryPrefix"] == "ROOT"
        assert created["createdAt"]
        assert created.get("credentialArn") == kwargs.get("credentialArn")
    rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert sorted(r["upstreamRegistry"] for r in rules) == sorted(UPSTREAMS)
    for rule in rules:
        assert set(rule) >= {
            "ecrRepositoryPrefix",
            "upstreamRegistryUrl",
            "createdAt",
            "updatedAt",
            "registryId",
            "upstreamRegistry",
            "upstreamRepositoryPrefix",
        }


def test_create_with_declared_upstream_registry(ecr):
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="quay-cache", upstreamRegistryUrl="quay.io", upstreamRegistry="quay"
    )
    assert created["upstreamRegistry"] == "quay"
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="k8s-cache",
            upstreamRegistryUrl="quay.io",
            upstreamRegistry="k8s",
        )
    assert error_of(excinfo) == ("UnsupportedUpstreamRegistryException", 400)
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="other", upstreamRegistryUrl="quay.io", upstreamRegistry="nexus"
        )
    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_create_rejects_unknown_upstream_url(ecr):
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="harbor", upstreamRegistryUrl="harbor.example.com"
        )
    assert error_of(excinfo) == ("UnsupportedUpstreamRegistryException", 400)
    assert "harbor.example.com is invalid" in excinfo.value.response["Error"]["Message"]


def test_authenticated_upstreams_need_a_secret(ecr):
    for upstream in (
        "docker-hub",
        "github-container-registry",
        "gitlab-container-registry",
        "azure-container-registry",
    ):
        with pytest.raises(ClientError) as excinfo:
            ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix="auth", upstreamRegistryUrl=UPSTREAMS[upstream]
            )
        assert error_of(excinfo) == ("UnsupportedUpstreamRegistryException", 400)
        assert "requires authentication" in excinfo.value.response["Error"]["Message"]
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_cross_account_ecr_upstream_needs_a_role(ecr):
    url = "210987654321.dkr.ecr.us-west-2.amazonaws.com"
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="other-acct", upstreamRegistryUrl=url)
    assert error_of(excinfo) == ("UnsupportedUpstreamRegistryException", 400)
    role = f"arn:aws:iam::{ACCOUNT}:role/ecr-ptc"
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="other-acct",
        upstreamRegistryUrl=url,
        customRoleArn=role,
        upstreamRepositoryPrefix="team-a",
    )
    assert created["customRoleArn"] == role
    assert created["upstreamRepositoryPrefix"] == "team-a"


def test_credential_arn_must_be_a_ptc_secret(ecr, raw_ecr, secrets):
    wrong_name = secret_arn(secrets, "some-other-secret-with-a-long-enough-name")
    for bad in (wrong_name, "arn:aws:iam::123456789012:role/ecr-pullthroughcache-role-name"):
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix="docker-hub",
                upstreamRegistryUrl="registry-1.docker.io",
                credentialArn=bad,
            )
        assert error_of(excinfo) == ("InvalidParameterException", 400)
        assert "credentialArn" in excinfo.value.response["Error"]["Message"]

    missing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/absent-AbCdEf"
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="docker-hub",
            upstreamRegistryUrl="registry-1.docker.io",
            credentialArn=missing,
        )
    assert error_of(excinfo) == ("SecretNotFoundException", 400)

    arn = secret_arn(secrets, "ecr-pullthroughcache/dockerhub")
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="docker-hub",
        upstreamRegistryUrl="registry-1.docker.io",
        credentialArn=arn,
    )
    assert created["credentialArn"] == arn
    assert created["upstreamRegistry"] == "docker-hub"


def test_prefix_constraints(ecr, raw_ecr):
    for bad in ("a", "x" * 31, "Upper", "bad//prefix", "-lead", "ROOT/x"):
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.create_pull_through_cache_rule(
                ecrRepositoryPrefix=bad, upstreamRegistryUrl="public.ecr.aws"
            )
        assert error_of(excinfo) == ("InvalidParameterException", 400), bad
    for good in ("ab", "team-a/ecr.public", "ns/", "x" * 30):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=good, upstreamRegistryUrl="public.ecr.aws")
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.us-east-2.amazonaws.com"
    )
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(
            ecrRepositoryPrefix="ROOT",
            upstreamRegistryUrl=f"{ACCOUNT}.dkr.ecr.us-east-2.amazonaws.com",
            upstreamRepositoryPrefix="team-a",
        )
    assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_rule_already_exists(ecr):
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ecr-public", upstreamRegistryUrl="public.ecr.aws")
    # "If you specify ecr-public as the prefix, Amazon ECR treats that as ecr-public/."
    for prefix in ("ecr-public", "ecr-public/"):
        with pytest.raises(ClientError) as excinfo:
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=prefix, upstreamRegistryUrl="quay.io")
        assert error_of(excinfo) == ("PullThroughCacheRuleAlreadyExistsException", 400)


def test_fifty_rules_per_registry(ecr):
    for i in range(50):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=f"rule-{i:02d}", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as excinfo:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="rule-50", upstreamRegistryUrl="quay.io")
    assert error_of(excinfo) == ("LimitExceededException", 400)

    prefixes, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.describe_pull_through_cache_rules(maxResults=20, **kwargs)
        prefixes += [r["ecrRepositoryPrefix"] for r in page["pullThroughCacheRules"]]
        token = page.get("nextToken")
        if not token:
            break
    assert prefixes == [f"rule-{i:02d}" for i in range(50)]

    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="rule-00")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="rule-50", upstreamRegistryUrl="quay.io")


def test_describe_by_prefix(ecr):
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="one", upstreamRegistryUrl="quay.io")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="two", upstreamRegistryUrl="registry.k8s.io")
    rules = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["two"])["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in rules] == ["two"]
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["one", "three"])
    assert error_of(excinfo) == ("PullThroughCacheRuleNotFoundException", 400)


def test_update_rule(ecr, secrets):
    first = secret_arn(secrets, "ecr-pullthroughcache/gh-1")
    second = secret_arn(secrets, "ecr-pullthroughcache/gh-2")
    created = ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="gh", upstreamRegistryUrl="ghcr.io", credentialArn=first
    )
    time.sleep(0.01)
    updated = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="gh", credentialArn=second)
    assert updated["credentialArn"] == second
    assert updated["ecrRepositoryPrefix"] == "gh"
    assert updated["registryId"] == ACCOUNT
    assert updated["updatedAt"] > created["createdAt"]
    assert set(updated) - {"ResponseMetadata"} == {
        "ecrRepositoryPrefix",
        "registryId",
        "updatedAt",
        "credentialArn",
        "upstreamRepositoryPrefix",
    }
    rule = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][0]
    assert rule["credentialArn"] == second
    assert rule["updatedAt"] == updated["updatedAt"]
    assert rule["createdAt"] == created["createdAt"]

    with pytest.raises(ClientError) as excinfo:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="nope", credentialArn=second)
    assert error_of(excinfo) == ("PullThroughCacheRuleNotFoundException", 400)
    missing = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/gone-AbCdEf"
    with pytest.raises(ClientError) as excinfo:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="gh", credentialArn=missing)
    assert error_of(excinfo) == ("SecretNotFoundException", 400)


def test_delete_rule(ecr):
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    assert deleted["ecrRepositoryPrefix"] == "k8s"
    assert deleted["upstreamRegistryUrl"] == "registry.k8s.io"
    assert deleted["registryId"] == ACCOUNT
    assert deleted["createdAt"]
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []
    with pytest.raises(ClientError) as excinfo:
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    assert error_of(excinfo) == ("PullThroughCacheRuleNotFoundException", 400)


def test_validate_rule(ecr, secrets):
    good = secret_arn(secrets, "ecr-pullthroughcache/good")
    bad = secret_arn(secrets, "ecr-pullthroughcache/bad", {"user": "u"})
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="good", upstreamRegistryUrl="registry-1.docker.io", credentialArn=good
    )
    ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix="bad", upstreamRegistryUrl="registry-1.docker.io", credentialArn=bad
    )
    ok = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="good")
    assert ok["isValid"] is True and "failure" not in ok
    assert ok["credentialArn"] == good and ok["upstreamRegistryUrl"] == "registry-1.docker.io"
    not_ok = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="bad")
    assert not_ok["isValid"] is False and "accessToken" in not_ok["failure"]
    with pytest.raises(ClientError) as excinfo:
        ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="none")
    assert error_of(excinfo) == ("PullThroughCacheRuleNotFoundException", 400)


# ---------------------------------------------------------------------------
# Registry replication
# ---------------------------------------------------------------------------


def destination(region: str, registry: str = ACCOUNT) -> dict:
    return {"region": region, "registryId": registry}


def test_replication_with_several_rules(ecr):
    configuration = {
        "rules": [
            {"destinations": [destination("us-west-2"), destination("eu-west-1")]},
            {
                "destinations": [destination("us-east-1", "111111111111")],
                "repositoryFilters": [
                    {"filter": "prod", "filterType": "PREFIX_MATCH"},
                    {"filter": "team-a/", "filterType": "PREFIX_MATCH"},
                ],
                "deleteReplication": {"enabled": True},
            },
            {
                "destinations": [destination("ap-south-1", "222222222222")],
                "repositoryFilters": [{"filter": "shared", "filterType": "PREFIX_MATCH"}],
            },
        ]
    }
    put = ecr.put_replication_configuration(replicationConfiguration=configuration)
    assert put["replicationConfiguration"] == configuration
    described = ecr.describe_registry()
    assert described["registryId"] == ACCOUNT
    assert described["replicationConfiguration"] == configuration

    # An empty rules list clears replication.
    cleared = ecr.put_replication_configuration(replicationConfiguration={"rules": []})
    assert cleared["replicationConfiguration"] == {"rules": []}
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}


def test_replication_of_deletions(ecr, raw_ecr):
    """ReplicationRule.deleteReplication (shape DeleteReplication, whose
    ``enabled`` is required) is stored per rule and returned as sent, true or
    false; a rule without it comes back without it."""
    rules = [
        {"destinations": [destination("us-west-2")], "deleteReplication": {"enabled": True}},
        {"destinations": [destination("eu-west-1")], "deleteReplication": {"enabled": False}},
        {"destinations": [destination("ap-south-1")]},
    ]
    put = ecr.put_replication_configuration(replicationConfiguration={"rules": rules})
    assert put["replicationConfiguration"]["rules"] == rules
    assert ecr.describe_registry()["replicationConfiguration"]["rules"] == rules
    for bad in ({}, {"enabled": None}):
        rule = {"destinations": [destination("us-west-2")], "deleteReplication": bad}
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.put_replication_configuration(replicationConfiguration={"rules": [rule]})
        assert error_of(excinfo) == ("InvalidParameterException", 400), bad
        message = excinfo.value.response["Error"]["Message"]
        assert "deleteReplication.enabled" in message and "must not be null" in message, message
    # A refused configuration leaves the last one in place.
    assert ecr.describe_registry()["replicationConfiguration"]["rules"] == rules


def test_replication_limits(ecr, raw_ecr):
    # 10 rules and 25 unique destinations across them: the most accepted.
    accounts = [f"{n:012d}" for n in range(1, 26)]
    rules = [
        {"destinations": [destination("us-west-2", a) for a in accounts[i::10]]} for i in range(10)
    ]
    ecr.put_replication_configuration(replicationConfiguration={"rules": rules})
    assert len(ecr.describe_registry()["replicationConfiguration"]["rules"]) == 10

    too_many = [
        ({"rules": rules + [{"destinations": [destination("us-west-2", accounts[0])]}]}, "less than or equal to 10"),
        ({"rules": [{"destinations": [destination("us-west-2", f"{n:012d}") for n in range(1, 27)]}]}, "25 unique destinations"),
        ({"rules": [{"destinations": [destination("us-west-2")] * 101}]}, "less than or equal to 100"),
        (
            {
                "rules": [
                    {
                        "destinations": [destination("us-west-2")],
                        "repositoryFilters": [{"filter": f"f{n:03d}", "filterType": "PREFIX_MATCH"} for n in range(101)],
                    }
                ]
            },
            "less than or equal to 100",
        ),
    ]
    for configuration, words in too_many:
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.put_replication_configuration(replicationConfiguration=configuration)
        assert error_of(excinfo) == ("InvalidParameterException", 400)
        assert words in excinfo.value.response["Error"]["Message"]
    # A refused configuration leaves the last one in place.
    assert len(ecr.describe_registry()["replicationConfiguration"]["rules"]) == 10


def test_replication_validation(ecr, raw_ecr):
    ecr.put_replication_configuration(
        replicationConfiguration={"rules": [{"destinations": [destination("us-west-2")]}]}
    )
    bad_rules = [
        # The source registry and Region itself.
        {"destinations": [destination(REGION)]},
        # No destination.
        {"destinations": []},
        # Another partition.
        {"destinations": [destination("cn-north-1")]},
        # Constraints of the model.
        {"destinations": [destination("us-west-2", "12345")]},
        {"destinations": [destination("US_WEST_2")]},
        {"destinations": [destination("us-west-2")], "repositoryFilters": []},
        {"destinations": [destination("us-west-2")], "repositoryFilters": [{"filter": "p", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [destination("us-west-2")], "repositoryFilters": [{"filter": "Prod", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [destination("us-west-2")], "repositoryFilters": [{"filter": "prod", "filterType": "WILDCARD"}]},
        {"destinations": [destination("us-west-2")], "repositoryFilters": [{"filter": "prod"}]},
    ]
    for rule in bad_rules:
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.put_replication_configuration(replicationConfiguration={"rules": [rule]})
        assert error_of(excinfo) == ("InvalidParameterException", 400), rule
    with pytest.raises(ClientError) as excinfo:
        ecr.put_replication_configuration(
            replicationConfiguration={"rules": [{"destinations": [destination(REGION)]}]}
        )
    assert "cannot be the same as the source registry" in excinfo.value.response["Error"]["Message"]
    # A refused configuration leaves the last one in place.
    assert ecr.describe_registry()["replicationConfiguration"] == {
        "rules": [{"destinations": [destination("us-west-2")]}]
    }


# ---------------------------------------------------------------------------
# Image scans and scan on push
# ---------------------------------------------------------------------------


def inject_scan_results(server: str, *results: dict) -> None:
    status, _ = http(
        server,
        "POST",
        "/moto-api/static/ecr/scan-finding-results",
        {"results": list(results), "region": REGION},
    )
    assert status == 201


def scan_result(repo: str, image_id: dict, counts: dict, status: str = "COMPLETE") -> dict:
    findings = [
        {"name": f"CVE-2024-{severity}-{n}", "severity": severity, "uri": "https://example.invalid"}
        for severity, count in counts.items()
        for n in range(count)
    ]
    return {
        "registryId": ACCOUNT,
        "repositoryName": repo,
        "imageId": image_id,
        "imageScanStatus": {"status": status, "description": f"scan {status.lower()}"},
        "imageScanFindings": {"findings": findings, "findingSeverityCounts": counts},
    }


def details_by_digest(ecr, repo: str) -> dict:
    return {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}


def test_describe_images_reports_scans(ecr):
    ecr.create_repository(repositoryName="scans")
    scanned = push(ecr, "scans", "1", tag="v1")
    other = push(ecr, "scans", "2", tag="v2")
    for detail in details_by_digest(ecr, "scans").values():
        assert "imageScanStatus" not in detail and "imageScanFindingsSummary" not in detail
    with pytest.raises(ClientError) as excinfo:
        ecr.describe_image_scan_findings(repositoryName="scans", imageId={"imageTag": "v1"})
    assert error_of(excinfo) == ("ScanNotFoundException", 400)

    started = ecr.start_image_scan(repositoryName="scans", imageId={"imageTag": "v1"})
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert started["imageId"] == {"imageDigest": scanned, "imageTag": "v1"}
    ecr.get_waiter("image_scan_complete").wait(
        repositoryName="scans", imageId={"imageDigest": scanned}, WaiterConfig={"Delay": 1}
    )
    details = details_by_digest(ecr, "scans")
    assert details[scanned]["imageScanStatus"] == {
        "status": "COMPLETE",
        "description": "The scan was completed successfully.",
    }
    summary = details[scanned]["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == {"HIGH": 1}
    assert summary["imageScanCompletedAt"] and summary["vulnerabilitySourceUpdatedAt"]
    findings = ecr.describe_image_scan_findings(repositoryName="scans", imageId={"imageTag": "v1"})
    assert findings["imageScanFindings"]["imageScanCompletedAt"] == summary["imageScanCompletedAt"]
    assert "imageScanStatus" not in details[other] and "imageScanFindingsSummary" not in details[other]

    # One basic scan per image a day.
    with pytest.raises(ClientError) as excinfo:
        ecr.start_image_scan(repositoryName="scans", imageId={"imageDigest": scanned})
    assert error_of(excinfo) == ("LimitExceededException", 400)


def test_scan_result_is_the_same_by_tag_and_by_digest(server, ecr):
    ecr.create_repository(repositoryName="bound")
    digest = push(ecr, "bound", "3", tag="latest")
    first = scan_result("bound", {"imageTag": "latest"}, {"MEDIUM": 2})
    second = scan_result("bound", {"imageTag": "latest"}, {"LOW": 1})
    inject_scan_results(server, first, second)
    ecr.start_image_scan(repositoryName="bound", imageId={"imageTag": "latest"})

    for image_id in (
        {"imageDigest": digest},
        {"imageTag": "latest"},
        {"imageDigest": digest, "imageTag": "latest"},
        {"imageDigest": digest},
    ):
        found = ecr.describe_image_scan_findings(repositoryName="bound", imageId=image_id)
        assert found["imageScanFindings"]["findingSeverityCounts"] == {"MEDIUM": 2}, image_id
        assert len(found["imageScanFindings"]["findings"]) == 2
    summary = details_by_digest(ecr, "bound")[digest]["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == {"MEDIUM": 2}
    # The injected result has no timestamps: the summary has the scan's.
    assert summary["imageScanCompletedAt"]


def test_failed_scan_has_no_summary(server, ecr):
    ecr.create_repository(repositoryName="failing")
    digest = push(ecr, "failing", "4", tag="broken")
    failed = scan_result("failing", {"imageDigest": digest}, {}, status="FAILED")
    del failed["imageScanFindings"]
    inject_scan_results(server, failed)
    ecr.start_image_scan(repositoryName="failing", imageId={"imageDigest": digest})
    detail = details_by_digest(ecr, "failing")[digest]
    assert detail["imageScanStatus"] == {"status": "FAILED", "description": "scan failed"}
    assert "imageScanFindingsSummary" not in detail


def test_scan_on_push_repository_setting(server, ecr):
    ecr.create_repository(repositoryName="onpush", imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="manual")
    inject_scan_results(server, scan_result("onpush", {"imageTag": "v2"}, {"CRITICAL": 3}))
    first = push(ecr, "onpush", "5", tag="v1")
    second = push(ecr, "onpush", "6", tag="v2")
    manual = push(ecr, "manual", "7", tag="v1")

    details = details_by_digest(ecr, "onpush")
    assert details[first]["imageScanStatus"]["status"] == "COMPLETE"
    assert details[first]["imageScanFindingsSummary"]["findingSeverityCounts"] == {"HIGH": 1}
    assert details[second]["imageScanFindingsSummary"]["findingSeverityCounts"] == {"CRITICAL": 3}
    by_tag = ecr.describe_image_scan_findings(repositoryName="onpush", imageId={"imageTag": "v2"})
    assert by_tag["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 3}
    # "This limit includes if an image was scanned on initial push."
    with pytest.raises(ClientError) as excinfo:
        ecr.start_image_scan(repositoryName="onpush", imageId={"imageTag": "v1"})
    assert error_of(excinfo) == ("LimitExceededException", 400)
    # A new tag for an image already there is no new push: same scan.
    push(ecr, "onpush", "5", tag="v1-again")
    again = ecr.describe_image_scan_findings(repositoryName="onpush", imageId={"imageTag": "v1-again"})
    assert again["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 1}

    assert "imageScanStatus" not in details_by_digest(ecr, "manual")[manual]


def test_scan_on_push_turned_off_by_an_empty_configuration(ecr):
    """SDKs omit a false boolean: {} must mean scanOnPush false."""
    ecr.create_repository(repositoryName="toggle", imageScanningConfiguration={"scanOnPush": True})
    ecr.put_image_scanning_configuration(repositoryName="toggle", imageScanningConfiguration={})
    repo = ecr.describe_repositories(repositoryNames=["toggle"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    ecr.put_image_scanning_configuration(
        repositoryName="toggle", imageScanningConfiguration={"scanOnPush": True}
    )
    repo = ecr.describe_repositories(repositoryNames=["toggle"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}


def test_scan_on_push_registry_rules(ecr):
    ecr.put_registry_scanning_configuration(
        scanType="BASIC",
        rules=[
            {
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [
                    {"filter": "prod*", "filterType": "WILDCARD"},
                    {"filter": "team", "filterType": "WILDCARD"},
                ],
            }
        ],
    )
    expected = {"prod-app": True, "app-prod": False, "my-team-app": True, "dev-app": False}
    for n, repo in enumerate(expected):
        ecr.create_repository(repositoryName=repo)
        push(ecr, repo, f"a{n}", tag="v1")
    for repo, scanned in expected.items():
        detail = ecr.describe_images(repositoryName=repo)["imageDetails"][0]
        assert ("imageScanStatus" in detail) is scanned, repo

    # With enhanced scanning, Amazon Inspector scans, not ECR's basic scan.
    ecr.put_registry_scanning_configuration(
        scanType="ENHANCED",
        rules=[
            {
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}],
            }
        ],
    )
    ecr.create_repository(repositoryName="prod-enhanced", imageScanningConfiguration={"scanOnPush": True})
    push(ecr, "prod-enhanced", "e1", tag="v1")
    assert "imageScanStatus" not in ecr.describe_images(repositoryName="prod-enhanced")["imageDetails"][0]


# ---------------------------------------------------------------------------
# Lifecycle policy preview
# ---------------------------------------------------------------------------


EXPIRE = {"type": "expire"}
TRANSITION = {"type": "transition", "targetStorageClass": "archive"}


def lifecycle_policy(*rules: tuple) -> str:
    """Rules as (priority, selection) or (priority, selection, action); the
    action is expire unless given."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": rule[0],
                    "description": f"rule with priority {rule[0]}",
                    "selection": rule[1],
                    "action": rule[2] if len(rule) > 2 else EXPIRE,
                }
                for rule in rules
            ]
        }
    )


KEEP_ONE_UNTAGGED = {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}
KEEP_TWO_V = {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 2}


def test_lifecycle_preview_errors(ecr, raw_ecr):
    ecr.create_repository(repositoryName="nopreview")
    with pytest.raises(ClientError) as excinfo:
        ecr.get_lifecycle_policy_preview(repositoryName="nopreview")
    assert error_of(excinfo) == ("LifecyclePolicyPreviewNotFoundException", 400)
    with pytest.raises(ClientError) as excinfo:  # no text, no repository policy
        ecr.start_lifecycle_policy_preview(repositoryName="nopreview")
    assert error_of(excinfo) == ("LifecyclePolicyNotFoundException", 400)
    for operation in (ecr.start_lifecycle_policy_preview, ecr.get_lifecycle_policy_preview):
        with pytest.raises(ClientError) as excinfo:
            operation(repositoryName="missing")
        assert error_of(excinfo) == ("RepositoryNotFoundException", 400)

    invalid = [
        lifecycle_policy((1, KEEP_ONE_UNTAGGED), (1, KEEP_TWO_V)),  # same priority
        lifecycle_policy(
            (1, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}),
            (2, KEEP_TWO_V),
        ),  # any is not last
        lifecycle_policy((1, KEEP_ONE_UNTAGGED), (2, dict(KEEP_ONE_UNTAGGED, countNumber=3))),
        lifecycle_policy((1, {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1})),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, tagPrefixList=["v"]))),
        lifecycle_policy((1, {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1})),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, countUnit="days"))),
        lifecycle_policy((1, dict(KEEP_TWO_V, tagPrefixList=None, tagPatternList=["*a*b*c*d*e"]))),
        lifecycle_policy((1, KEEP_TWO_V), (2, dict(KEEP_TWO_V, countNumber=5))),  # same prefixes
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, countNumber=0))),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, countType="sinceImagePulled"))),
        json.dumps({"rules": [], "description": "a policy needs one or more rules" + " " * 60}),
        "{" + " " * 120 + "not json",
        "x" * 99,  # LifecyclePolicyText: length 100..30720
    ]
    for text in invalid:
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.start_lifecycle_policy_preview(repositoryName="nopreview", lifecyclePolicyText=text)
        assert error_of(excinfo) == ("InvalidParameterException", 400), text
    with pytest.raises(ClientError) as excinfo:
        ecr.get_lifecycle_policy_preview(repositoryName="nopreview")
    assert error_of(excinfo)[0] == "LifecyclePolicyPreviewNotFoundException"


def test_lifecycle_preview(ecr):
    ecr.create_repository(repositoryName="lp")
    tagged = [push(ecr, "lp", f"b{n}", tag=f"v{n}") for n in range(5)]
    untagged = [push(ecr, "lp", f"c{n}") for n in range(2)]
    other = push(ecr, "lp", "d0", tag="release")
    text = lifecycle_policy((1, KEEP_ONE_UNTAGGED), (2, KEEP_TWO_V))

    started = ecr.start_lifecycle_policy_preview(repositoryName="lp", lifecyclePolicyText=text)
    assert started["status"] == "IN_PROGRESS"
    assert (started["registryId"], started["repositoryName"], started["lifecyclePolicyText"]) == (
        ACCOUNT, "lp", text,
    )
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(
        repositoryName="lp", WaiterConfig={"Delay": 1}
    )
    preview = ecr.get_lifecycle_policy_preview(repositoryName="lp")
    assert preview["status"] == "COMPLETE"
    assert preview["lifecyclePolicyText"] == text
    assert preview["summary"] == {"expiringImageTotalCount": 4}
    assert "nextToken" not in preview
    results = {r["imageDigest"]: r for r in preview["previewResults"]}
    # The oldest untagged image (rule 1) and all but the two youngest v* (rule 2).
    assert set(results) == {untagged[0], *tagged[:3]}
    assert other not in results
    assert results[untagged[0]]["appliedRulePriority"] == 1
    assert "imageTags" not in results[untagged[0]]
    for digest, n in zip(tagged[:3], range(3)):
        assert results[digest]["appliedRulePriority"] == 2
        assert results[digest]["imageTags"] == [f"v{n}"]
        assert results[digest]["action"] == {"type": "EXPIRE"}
        assert results[digest]["imagePushedAt"]

    untagged_only = ecr.get_lifecycle_policy_preview(repositoryName="lp", filter={"tagStatus": "UNTAGGED"})
    assert [r["imageDigest"] for r in untagged_only["previewResults"]] == [untagged[0]]
    tagged_only = ecr.get_lifecycle_policy_preview(repositoryName="lp", filter={"tagStatus": "TAGGED"})
    assert len(tagged_only["previewResults"]) == 3
    by_id = ecr.get_lifecycle_policy_preview(
        repositoryName="lp", imageIds=[{"imageTag": "v1"}, {"imageDigest": tagged[4]}]
    )
    assert [r["imageDigest"] for r in by_id["previewResults"]] == [tagged[1]]

    pages, token, seen = 0, None, []
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.get_lifecycle_policy_preview(repositoryName="lp", maxResults=3, **kwargs)
        pages += 1
        seen += [r["imageDigest"] for r in page["previewResults"]]
        assert page["summary"] == {"expiringImageTotalCount": 4}
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 2 and sorted(seen) == sorted(results)

    for kwargs in ({"maxResults": 101}, {"imageIds": [{"imageTag": "v1"}], "maxResults": 2}):
        with pytest.raises(ClientError) as excinfo:
            ecr.get_lifecycle_policy_preview(repositoryName="lp", **kwargs)
        assert error_of(excinfo) == ("InvalidParameterException", 400)


def test_lifecycle_preview_of_the_repository_policy(ecr):
    ecr.create_repository(repositoryName="stored")
    digests = [push(ecr, "stored", f"e{n}") for n in range(3)]
    text = lifecycle_policy((1, KEEP_ONE_UNTAGGED))
    ecr.put_lifecycle_policy(repositoryName="stored", lifecyclePolicyText=text)
    started = ecr.start_lifecycle_policy_preview(repositoryName="stored")
    assert started["lifecyclePolicyText"] == text
    preview = ecr.get_lifecycle_policy_preview(repositoryName="stored")
    assert sorted(r["imageDigest"] for r in preview["previewResults"]) == sorted(digests[:2])

    # A new preview replaces the last one.
    keep_all = lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, countNumber=10)))
    ecr.start_lifecycle_policy_preview(repositoryName="stored", lifecyclePolicyText=keep_all)
    preview = ecr.get_lifecycle_policy_preview(repositoryName="stored")
    assert preview["previewResults"] == []
    assert preview["summary"] == {"expiringImageTotalCount": 0}
    assert preview["lifecyclePolicyText"] == keep_all


# The evaluator, in process, on the examples of the ECR user guide
# ("Examples of lifecycle policies"), with push times days in the past.

DAY = 86400.0
NOW = 1_700_000_000.0


def evaluate(rules: list[tuple[int, dict]], images: dict[str, tuple[list[str], float]]) -> dict:
    import moto_ecr_ext

    policy = moto_ecr_ext.parse_lifecycle_policy(lifecycle_policy(*rules))
    lifecycle_images = [
        moto_ecr_ext.LifecycleImage(name, tags, NOW - days * DAY) for name, (tags, days) in images.items()
    ]
    return {
        digest: priority
        for digest, (priority, _) in moto_ecr_ext.evaluate_lifecycle_policy(
            policy, lifecycle_images, NOW
        ).items()
    }


def keep(count: int, prefixes: list[str] | None = None, patterns: list[str] | None = None) -> dict:
    selection = {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": count}
    if prefixes:
        selection["tagPrefixList"] = prefixes
    if patterns:
        selection["tagPatternList"] = patterns
    return selection


def test_evaluator_multiple_rules_examples():
    images = {
        "A": (["beta-1", "prod-1"], 10),
        "B": (["beta-2", "prod-2"], 9),
        "C": (["beta-3"], 8),
    }
    # Example A: rule 2 would mark A and B, but both match rule 1's tagging
    # requirements.  Result: Image A is expired.
    assert evaluate([(1, keep(1, ["prod"])), (2, keep(1, ["beta"]))], images) == {"A": 1}
    # Example B: rule 1 marks A and B; rule 2 sees nothing new.
    assert evaluate([(1, keep(1, ["beta"])), (2, keep(1, ["prod"]))], images) == {"A": 1, "B": 1}
    # The same with tagPatternList.
    assert evaluate([(1, keep(1, patterns=["prod*"])), (2, keep(1, patterns=["beta*"]))], images) == {"A": 1}


def test_evaluator_multiple_tags_in_one_rule():
    images = {
        "A": (["alpha-1"], 12),
        "B": (["beta-1"], 11),
        "C": (["alpha-2", "beta-2"], 10),
        "D": (["alpha-3"], 4),
        "E": (["beta-3"], 3),
        "F": (["alpha-4", "beta-4"], 2),
    }
    older_than_5_days = {
        "tagStatus": "tagged",
        "tagPrefixList": ["alpha", "beta"],
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 5,
    }
    assert evaluate([(1, older_than_5_days)], images) == {"C": 1}
    images = {
        "A": (["alpha-1", "beta-1", "gamma-1"], 10),
        "B": (["alpha-2", "beta-2"], 9),
        "C": (["alpha-3", "beta-3", "gamma-2"], 8),
    }
    assert evaluate([(1, keep(1, ["alpha", "beta"]))], images) == {"A": 1, "B": 1}


def test_evaluator_patterns_untagged_and_any():
    images = {
        "u1": ([], 5),
        "u2": ([], 4),
        "t1": (["prod-1"], 3),
        "t2": (["prod-2", "latest"], 2),
        "t3": (["dev-3"], 1),
    }
    # Rule 1 keeps one untagged image; rule 2 (any) keeps the two youngest
    # of all images but may not expire u2, which rule 1 selected.
    any_keep_2 = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}
    assert evaluate([(1, KEEP_ONE_UNTAGGED), (5, any_keep_2)], images) == {"u1": 1, "t1": 5}
    # Patterns match whole tags; "*" stands for any characters.
    assert evaluate([(1, keep(1, patterns=["prod-*"]))], images) == {"t1": 1}
    assert evaluate([(1, keep(1, patterns=["prod"]))], images) == {}
    assert evaluate([(1, keep(1, patterns=["*-*"]))], images) == {"t1": 1, "t2": 1}
    # Ties in push time: the image pushed first is the older one.
    tied = {"first": (["v1"], 1), "second": (["v2"], 1)}
    assert evaluate([(1, keep(1, ["v"]))], tied) == {"first": 1}


# Archive rules ("Examples of lifecycle policies", "Archive examples" and the
# sections on last pulled time and archive transition time).

PULLED_90 = {"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90}
PUSHED_30 = {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}
ARCHIVED_365 = {
    "tagStatus": "any",
    "storageClass": "archive",
    "countType": "sinceImageTransitioned",
    "countUnit": "days",
    "countNumber": 365,
}


def evaluate_archive(rules: list[tuple], images: dict[str, dict]) -> dict:
    """Like ``evaluate``, for images given as {name: {tags, pushed, pulled,
    archived, activated}} in days ago (archived: in the archive class)."""
    import moto_ecr_ext

    def ago(days):
        return None if days is None else NOW - days * DAY

    policy = moto_ecr_ext.parse_lifecycle_policy(lifecycle_policy(*rules))
    lifecycle_images = [
        moto_ecr_ext.LifecycleImage(
            name,
            spec.get("tags", []),
            NOW - spec["pushed"] * DAY,
            storage_class="archive" if "archived" in spec else "standard",
            last_pulled_at=ago(spec.get("pulled")),
            last_archived_at=ago(spec.get("archived")),
            last_activated_at=ago(spec.get("activated")),
        )
        for name, spec in images.items()
    ]
    return moto_ecr_ext.evaluate_lifecycle_policy(policy, lifecycle_images, NOW)


ARCHIVE_REPO = {
    "prod-old-pulled-now": {"tags": ["prod-1"], "pushed": 200, "pulled": 1},
    "prod-old-never-pulled": {"tags": ["prod-2"], "pushed": 120},
    "prod-new": {"tags": ["prod-3"], "pushed": 10},
    "dev-pulled-long-ago": {"tags": ["dev-1"], "pushed": 300, "pulled": 100},
    "restored-lately": {"tags": ["dev-2"], "pushed": 300, "pulled": 200, "activated": 5},
    "archived-long": {"tags": ["prod-0"], "pushed": 900, "archived": 400},
    "archived-recently": {"tags": ["dev-0"], "pushed": 900, "archived": 100},
}


def test_evaluator_archive_examples():
    T, E = "transition", "expire"
    # Archiving images not pulled in 90 days: the push time for an image never
    # pulled, the restore time for one not pulled since; archived images are
    # not seen by a standard rule.
    assert evaluate_archive([(1, PULLED_90, TRANSITION)], ARCHIVE_REPO) == {
        "prod-old-never-pulled": (1, T),
        "dev-pulled-long-ago": (1, T),
    }
    # Expiring images archived for more than 365 days.
    assert evaluate_archive([(1, ARCHIVED_365)], ARCHIVE_REPO) == {"archived-long": (1, E)}
    # Archiving prod* images older than 30 days.
    prod_30 = {"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "sinceImagePushed",
               "countUnit": "days", "countNumber": 30}
    assert evaluate_archive([(1, prod_30, TRANSITION)], ARCHIVE_REPO) == {
        "prod-old-pulled-now": (1, T),
        "prod-old-never-pulled": (1, T),
    }
    # Combining archive and expire rules: an any rule in each storage class.
    assert evaluate_archive([(1, PUSHED_30, TRANSITION), (2, ARCHIVED_365)], ARCHIVE_REPO) == {
        "prod-old-pulled-now": (1, T),
        "prod-old-never-pulled": (1, T),
        "dev-pulled-long-ago": (1, T),
        "restored-lately": (1, T),
        "archived-long": (2, E),
    }
    # Counting keeps the newest standard image, by restore time for a restored
    # one (restored-lately, 5 days); archived images do not count.
    keep_one = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
    assert evaluate_archive([(1, keep_one, TRANSITION)], ARCHIVE_REPO) == {
        name: (1, T)
        for name in ("prod-old-pulled-now", "prod-old-never-pulled", "prod-new", "dev-pulled-long-ago")
    }


def test_lifecycle_archive_rules_are_checked_as_ecr_does(ecr, raw_ecr):
    ecr.create_repository(repositoryName="arch")
    accepted = [
        lifecycle_policy((1, PULLED_90, TRANSITION)),
        lifecycle_policy((1, ARCHIVED_365)),
        lifecycle_policy((1, PUSHED_30, TRANSITION), (2, ARCHIVED_365)),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, storageClass="standard"), TRANSITION),
                         (2, dict(ARCHIVED_365, tagStatus="untagged", countNumber=90))),
    ]
    for text in accepted:
        ecr.put_lifecycle_policy(repositoryName="arch", lifecyclePolicyText=text)
        assert ecr.get_lifecycle_policy(repositoryName="arch")["lifecyclePolicyText"] == text
        ecr.start_lifecycle_policy_preview(repositoryName="arch", lifecyclePolicyText=text)
    refused = [
        lifecycle_policy((1, PULLED_90)),  # sinceImagePulled with expire
        lifecycle_policy((1, ARCHIVED_365, TRANSITION)),  # sinceImageTransitioned with transition
        lifecycle_policy((1, dict(ARCHIVED_365, storageClass="standard"))),
        lifecycle_policy((1, {k: v for k, v in ARCHIVED_365.items() if k != "storageClass"})),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, storageClass="archive"))),
        lifecycle_policy((1, dict(ARCHIVED_365, countNumber=89))),  # 90 days in the archive
        lifecycle_policy((1, {k: v for k, v in PULLED_90.items() if k != "countUnit"}, TRANSITION)),
        lifecycle_policy((1, PULLED_90, {"type": "transition"})),
        lifecycle_policy((1, PULLED_90, {"type": "transition", "targetStorageClass": "standard"})),
        lifecycle_policy((1, PUSHED_30, {"type": "expire", "targetStorageClass": "archive"})),
        lifecycle_policy((1, dict(KEEP_ONE_UNTAGGED, storageClass="glacier"))),
        lifecycle_policy((1, ARCHIVED_365), (2, dict(ARCHIVED_365, tagStatus="untagged"))),  # any not last
        lifecycle_policy((1, dict(ARCHIVED_365, tagStatus="untagged")),
                         (2, dict(ARCHIVED_365, tagStatus="untagged", countNumber=400))),
    ]
    for text in refused:
        for call in (
            lambda: raw_ecr.put_lifecycle_policy(repositoryName="arch", lifecyclePolicyText=text),
            lambda: raw_ecr.start_lifecycle_policy_preview(repositoryName="arch", lifecyclePolicyText=text),
        ):
            with pytest.raises(ClientError) as excinfo:
                call()
            assert error_of(excinfo) == ("InvalidParameterException", 400), text


def test_archive_pull_times_and_the_archive_preview(ecr):
    ecr.create_repository(repositoryName="cold")
    digests = [push(ecr, "cold", f"f{n}", tag=f"v{n}") for n in range(4)]
    # A pull is recorded; DescribeImages says when.
    ecr.batch_get_image(repositoryName="cold", imageIds=[{"imageTag": "v3"}])
    answer = ecr.update_image_storage_class(
        repositoryName="cold", imageId={"imageTag": "v0"}, targetStorageClass="ARCHIVE"
    )
    assert answer["imageStatus"] == "ARCHIVED"
    with pytest.raises(ClientError) as excinfo:
        ecr.update_image_storage_class(
            repositoryName="cold", imageId={"imageTag": "v0"}, targetStorageClass="ARCHIVE"
        )
    assert error_of(excinfo)[0] == "ImageStorageClassUpdateNotSupportedException"
    # Without filter.imageStatus only active images are listed.
    active = ecr.describe_images(repositoryName="cold")["imageDetails"]
    assert sorted(d["imageDigest"] for d in active) == sorted(digests[1:])
    assert all(d["imageStatus"] == "ACTIVE" for d in active)
    pulled = [d for d in active if d["imageDigest"] == digests[3]][0]
    assert "lastRecordedPullTime" in pulled
    everything = ecr.describe_images(repositoryName="cold", filter={"imageStatus": "ANY"})["imageDetails"]
    archived = [d for d in everything if d["imageDigest"] == digests[0]][0]
    assert archived["imageStatus"] == "ARCHIVED" and "lastArchivedAt" in archived
    listed = ecr.list_images(repositoryName="cold", filter={"imageStatus": "ARCHIVED"})["imageIds"]
    assert [i["imageDigest"] for i in listed] == [digests[0]]

    # Keep the newest standard image, archive the others; the archived image
    # is not counted, and the archive rule waits for its 365 days.
    keep_one = {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}
    text = lifecycle_policy((1, keep_one, TRANSITION), (2, ARCHIVED_365))
    ecr.put_lifecycle_policy(repositoryName="cold", lifecyclePolicyText=text)
    ecr.start_lifecycle_policy_preview(repositoryName="cold")
    preview = ecr.get_lifecycle_policy_preview(repositoryName="cold")
    assert preview["summary"] == {
        "expiringImageTotalCount": 0,
        "transitioningImageTotalCounts": [{"targetStorageClass": "ARCHIVE", "imageTotalCount": 2}],
    }
    results = {r["imageDigest"]: r for r in preview["previewResults"]}
    assert set(results) == {digests[1], digests[2]}
    for r in results.values():
        assert r["action"] == {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}
        assert r["storageClass"] == "STANDARD" and r["appliedRulePriority"] == 1

    # Restoring makes the image active again, with its restore time.
    ecr.update_image_storage_class(
        repositoryName="cold", imageId={"imageDigest": digests[0]}, targetStorageClass="STANDARD"
    )
    restored = ecr.describe_images(repositoryName="cold", imageIds=[{"imageDigest": digests[0]}])
    detail = restored["imageDetails"][0]
    assert detail["imageStatus"] == "ACTIVE" and "lastActivatedAt" in detail


# ---------------------------------------------------------------------------
# Fault switch and call counters
# ---------------------------------------------------------------------------


def test_throttle_count_then_normal(server, ecr):
    status, fault = http(
        server, "POST", "/moto-api/ecr-ext/faults",
        {"operation": "DescribeRepositories", "kind": "throttle", "count": 2},
    )
    assert status == 201 and fault["remaining"] == 2
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            ecr.describe_repositories()
        assert error_of(excinfo) == ("ThrottlingException", 400)
        headers = excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amzn-errortype"] == "ThrottlingException"
        assert headers["content-type"] == "application/x-amz-json-1.1"
    ecr.describe_repositories()
    assert http(server, "GET", "/moto-api/ecr-ext/faults") == (200, {"faults": []})


def test_throttle_is_retried_by_the_sdk(server):
    retrying = client(server, retries={"mode": "standard", "max_attempts": 5})
    http(server, "POST", "/moto-api/ecr-ext/faults", {"operation": "*", "kind": "throttle", "count": 2})
    response = retrying.describe_repositories()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_throttle_raw_body(server):
    http(server, "POST", "/moto-api/ecr-ext/faults", {"kind": "throttle", "count": 1})
    request = urllib.request.Request(
        server + "/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    body = json.loads(excinfo.value.read())
    assert body == {"__type": "ThrottlingException", "message": "Rate exceeded"}


def test_server_error(server, ecr):
    http(server, "POST", "/moto-api/ecr-ext/faults", {"operation": "ListImages", "kind": "server_error", "count": 1})
    ecr.create_repository(repositoryName="e1")
    ecr.describe_repositories()  # another operation: untouched
    with pytest.raises(ClientError) as excinfo:
        ecr.list_images(repositoryName="e1")
    assert error_of(excinfo) == ("ServerException", 500)
    ecr.list_images(repositoryName="e1")


def test_latency(server, ecr):
    http(server, "POST", "/moto-api/ecr-ext/faults",
         {"operation": "DescribeRepositories", "kind": "latency", "latencyMs": 400, "count": 1})
    start = time.monotonic()
    ecr.describe_repositories()
    assert time.monotonic() - start >= 0.4
    start = time.monotonic()
    ecr.describe_repositories()
    assert time.monotonic() - start < 0.4


def test_fraction_with_seed(server, ecr):
    http(server, "POST", "/moto-api/ecr-ext/faults",
         {"operation": "DescribeRepositories", "kind": "throttle", "fraction": 0.5, "seed": 7})
    outcomes = []
    for _ in range(40):
        try:
            ecr.describe_repositories()
            outcomes.append(False)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ThrottlingException"
            outcomes.append(True)
    rng = random.Random(7)
    assert outcomes == [rng.random() < 0.5 for _ in range(40)]
    _, listed = http(server, "GET", "/moto-api/ecr-ext/faults")
    assert listed["faults"][0]["matched"] == 40
    assert listed["faults"][0]["injected"] == sum(outcomes)
    assert http(server, "DELETE", "/moto-api/ecr-ext/faults") == (200, {"cleared": 1})
    ecr.describe_repositories()


def test_secretsmanager_faults(server, secrets, ecr):
    http(server, "POST", "/moto-api/ecr-ext/faults",
         {"service": "secretsmanager", "operation": "CreateSecret", "kind": "server_error", "count": 1})
    with pytest.raises(ClientError) as excinfo:
        secrets.create_secret(Name="ecr-pullthroughcache/x", SecretString="{}")
    assert error_of(excinfo) == ("InternalServiceError", 500)
    ecr.describe_repositories()
    _, sm_calls = http(server, "GET", "/moto-api/ecr-ext/calls?service=secretsmanager")
    assert sm_calls == {"CreateSecret": 1}


def test_bad_fault_definitions(server):
    for bad in (
        {"kind": "explode"},
        {"kind": "throttle", "count": 0},
        {"kind": "throttle", "fraction": 2},
        {"kind": "latency"},
        {"kind": "throttle", "service": "s3"},
        {"kind": "throttle", "typo": 1},
    ):
        status, body = http(server, "POST", "/moto-api/ecr-ext/faults", bad)
        assert status == 400 and "error" in body, bad
    assert http(server, "GET", "/moto-api/ecr-ext/faults") == (200, {"faults": []})


def test_delete_one_fault(server):
    _, a = http(server, "POST", "/moto-api/ecr-ext/faults", {"kind": "latency", "latencyMs": 1})
    _, b = http(server, "POST", "/moto-api/ecr-ext/faults", {"kind": "throttle", "count": 3})
    assert http(server, "DELETE", f"/moto-api/ecr-ext/faults/{a['id']}") == (200, {"cleared": 1})
    _, listed = http(server, "GET", "/moto-api/ecr-ext/faults")
    assert [f["id"] for f in listed["faults"]] == [b["id"]]
    assert http(server, "DELETE", f"/moto-api/ecr-ext/faults/{a['id']}")[0] == 404


def test_call_counts(server, ecr):
    http(server, "POST", "/moto-api/ecr-ext/faults",
         {"operation": "DescribeRepositories", "kind": "throttle", "count": 1})
    ecr.create_repository(repositoryName="counted")
    for _ in range(3):
        try:
            ecr.describe_repositories()
        except ClientError:
            pass
    assert http(server, "GET", "/moto-api/ecr-ext/calls") == (
        200,
        {"CreateRepository": 1, "DescribeRepositories": 3},
    )
    assert http(server, "GET", "/moto-api/ecr-ext/calls/faulted") == (200, {"DescribeRepositories": 1})
    assert http(server, "DELETE", "/moto-api/ecr-ext/calls")[0] == 200
    assert http(server, "GET", "/moto-api/ecr-ext/calls") == (200, {})
    assert http(server, "GET", "/moto-api/ecr-ext/calls/faulted") == (200, {})


def test_served_faults_are_counted_by_operation_and_kind(server, ecr):
    faults = "/moto-api/ecr-ext/faults"
    http(server, "POST", faults, {"operation": "DescribeRepositories", "kind": "throttle", "count": 2})
    http(server, "POST", faults, {"operation": "DescribeRepositories", "kind": "latency", "latencyMs": 5, "count": 1})
    http(server, "POST", faults, {"operation": "ListImages", "kind": "server_error", "count": 1,
                                  "errorCode": "ServiceUnavailableException", "httpStatus": 503})
    http(server, "POST", faults, {"operation": "ListImages", "kind": "server_error", "count": 1})
    # Never hit: defined for an operation nobody calls.
    http(server, "POST", faults, {"operation": "DeleteRepository", "kind": "throttle", "count": 1})
    ecr.create_repository(repositoryName="served")
    for _ in range(3):
        try:
            ecr.describe_repositories()
        except ClientError:
            pass
    codes = []
    for _ in range(3):
        try:
            ecr.list_images(repositoryName="served")
            codes.append(None)
        except ClientError as e:
            codes.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
    # Two error faults matched the first ListImages: only the first one answered it.
    assert codes == [("ServiceUnavailableException", 503), ("ServerException", 500), None]
    assert http(server, "GET", "/moto-api/ecr-ext/calls/served") == (
        200,
        {
            "DescribeRepositories": {"throttle:ThrottlingException": 2, "latency:5ms": 1},
            "ListImages": {"server_error:ServiceUnavailableException": 1, "server_error:ServerException": 1},
        },
    )
    # The unserved fault is still pending, and counted nowhere.
    _, listed = http(server, "GET", faults)
    assert [f["operation"] for f in listed["faults"]] == ["DeleteRepository"]
    assert http(server, "GET", "/moto-api/ecr-ext/calls/served?service=secretsmanager") == (200, {})
    assert http(server, "DELETE", "/moto-api/ecr-ext/calls")[0] == 200
    assert http(server, "GET", "/moto-api/ecr-ext/calls/served") == (200, {})


def test_served_faults_count_under_concurrency(server):
    http(server, "POST", "/moto-api/ecr-ext/faults",
         {"operation": "DescribeRepositories", "kind": "throttle", "count": 30})
    clients = [client(server) for _ in range(8)]

    def work(i):
        throttled = 0
        for _ in range(10):
            try:
                clients[i].describe_repositories()
            except ClientError:
                throttled += 1
        return throttled

    with ThreadPoolExecutor(8) as pool:
        throttled = sum(pool.map(work, range(8)))
    assert throttled == 30
    assert http(server, "GET", "/moto-api/ecr-ext/calls/served") == (
        200,
        {"DescribeRepositories": {"throttle:ThrottlingException": 30}},
    )
    http(server, "POST", "/moto-api/reset")
    assert http(server, "GET", "/moto-api/ecr-ext/calls/served") == (200, {})


def test_reset_clears_everything(server, ecr):
    ecr.create_repository(repositoryName="gone")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    http(server, "POST", "/moto-api/ecr-ext/faults", {"operation": "ListImages", "kind": "throttle"})
    assert http(server, "POST", "/moto-api/reset")[0] == 200
    assert http(server, "GET", "/moto-api/ecr-ext/faults") == (200, {"faults": []})
    assert http(server, "GET", "/moto-api/ecr-ext/calls") == (200, {})
    assert ecr.describe_repositories()["repositories"] == []
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_concurrent_clients(server):
    clients = [client(server) for _ in range(16)]
    clients[0].create_repository(repositoryName="shared")

    def work(i):
        c = clients[i]
        c.create_repository(repositoryName=f"conc-{i:02d}")
        for _ in range(10):
            c.describe_repositories(maxResults=5)
            c.list_images(repositoryName="shared")
        return i

    with ThreadPoolExecutor(16) as pool:
        assert sorted(pool.map(work, range(16))) == list(range(16))
    _, calls = http(server, "GET", "/moto-api/ecr-ext/calls")
    assert calls == {"CreateRepository": 17, "DescribeRepositories": 160, "ListImages": 160}


# ---------------------------------------------------------------------------
# Launcher lifecycle
# ---------------------------------------------------------------------------


def test_launcher_exits_when_stdin_closes():
    proc, url = start_launcher()
    assert http(url, "GET", "/moto-api/ecr-ext/calls")[0] == 200
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    stop_launcher(proc)


def test_launcher_exits_on_sigterm():
    proc, url = start_launcher("--stdin-watch", "off", stdin=subprocess.DEVNULL)
    time.sleep(0.2)
    assert proc.poll() is None  # /dev/null stdin does not stop it
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    stop_launcher(proc)


def test_launcher_ready_line_is_the_only_stdout(tmp_path):
    log = tmp_path / "launcher.log"
    proc, url = start_launcher("--log-file", str(log))
    try:
        # Whatever the server logs after READY goes to stderr (the log file).
        c = client(url)
        c.describe_repositories()
    finally:
        stop_launcher(proc)
    assert proc.stdout.read() == b""
    assert log.exists()


# ---------------------------------------------------------------------------
# Scan events (EventBridge to SQS) and rescans
# ---------------------------------------------------------------------------


def scan_event_queue(server) -> tuple[Any, str]:
    """An SQS queue that an EventBridge rule feeds with ECR's scan events."""
    sqs = client(server, "sqs")
    events = client(server, "events")
    url = sqs.create_queue(QueueName="ecr-scan-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="ecr-scans",
        EventPattern=json.dumps({"source": ["aws.ecr"], "detail-type": ["ECR Image Scan"]}),
    )
    events.put_targets(Rule="ecr-scans", Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def received(sqs, url: str, wait: int = 0) -> list[dict[str, Any]]:
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


def test_completed_scans_are_announced_on_eventbridge(server, ecr):
    sqs, url = scan_event_queue(server)
    ecr.create_repository(repositoryName="announced", imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="quiet")
    inject_scan_results(server, scan_result("announced", {"imageTag": "v1"}, {"CRITICAL": 2}))
    pushed = push(ecr, "announced", "e1", tag="v1")
    (event,) = received(sqs, url, wait=1)
    assert event["source"] == "aws.ecr" and event["detail-type"] == "ECR Image Scan"
    # moto's delivery to SQS leaves out the event's "account"; AWS sends it.
    assert event.get("account", ACCOUNT) == ACCOUNT and event["region"] == REGION
    assert event["resources"] == [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/announced"]
    assert event["detail"] == {
        "scan-status": "COMPLETE",
        "repository-name": "announced",
        "finding-severity-counts": {"CRITICAL": 2},
        "image-digest": pushed,
        "image-tags": ["v1"],
    }
    # A push without a scan announces nothing; a StartImageScan does.
    other = push(ecr, "quiet", "e2", tag="v1")
    assert received(sqs, url) == []
    ecr.start_image_scan(repositoryName="quiet", imageId={"imageDigest": other})
    (event,) = received(sqs, url, wait=1)
    assert event["detail"]["image-digest"] == other
    assert event["detail"]["finding-severity-counts"] == {"HIGH": 1}


def test_rescan_is_a_new_scan_with_the_next_result(server, ecr):
    sqs, url = scan_event_queue(server)
    ecr.create_repository(repositoryName="rescanned")
    digest = push(ecr, "rescanned", "r1", tag="v1")
    status, answer = http(
        server, "POST", "/moto-api/ecr-ext/rescan", {"repositoryName": "rescanned", "imageDigest": digest}
    )
    assert status == 200 and answer["imageDigest"] == digest
    first = details_by_digest(ecr, "rescanned")[digest]["imageScanFindingsSummary"]
    assert first["findingSeverityCounts"] == {"HIGH": 1}
    inject_scan_results(server, scan_result("rescanned", {"imageDigest": digest}, {"CRITICAL": 1}))
    assert http(
        server, "POST", "/moto-api/ecr-ext/rescan", {"repositoryName": "rescanned", "imageDigest": digest}
    )[0] == 200
    second = details_by_digest(ecr, "rescanned")[digest]["imageScanFindingsSummary"]
    assert second["findingSeverityCounts"] == {"CRITICAL": 1}
    assert second["imageScanCompletedAt"] > first["imageScanCompletedAt"]
    found = ecr.describe_image_scan_findings(repositoryName="rescanned", imageId={"imageDigest": digest})
    assert found["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 1}
    counts = [e["detail"]["finding-severity-counts"] for e in received(sqs, url, wait=1)]
    counts += [e["detail"]["finding-severity-counts"] for e in received(sqs, url)]
    assert counts == [{"HIGH": 1}, {"CRITICAL": 1}]

    missing = http(server, "POST", "/moto-api/ecr-ext/rescan", {"repositoryName": "nope", "imageDigest": digest})
    assert missing[0] == 404
    assert http(server, "POST", "/moto-api/ecr-ext/rescan", {"repositoryName": "rescanned"})[0] == 400


def test_a_long_poll_does_not_hold_up_other_calls(server, ecr):
    sqs, url = scan_event_queue(server)
    ecr.create_repository(repositoryName="polled", imageScanningConfiguration={"scanOnPush": True})
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(received, sqs, url, 10)
        time.sleep(0.5)  # let the poll begin; the push below must not wait for it
        push(ecr, "polled", "lp", tag="v1")
        events = waiting.result(timeout=15)
    assert [e["detail"]["repository-name"] for e in events] == ["polled"]
    assert time.monotonic() - started < 8, "the push waited for the long poll"


# ---------------------------------------------------------------------------
# Repository names and tag mutability exclusions
# ---------------------------------------------------------------------------

WILDCARD = "WILDCARD"


def exclusions(*filters: str) -> list[dict[str, str]]:
    return [{"filterType": WILDCARD, "filter": f} for f in filters]


def test_repository_names_of_the_current_model(ecr, raw_ecr):
    for name in ("a__b", "web--frontend", "team__a/web---frontend/a.b_c-d", "ab"):
        assert ecr.create_repository(repositoryName=name)["repository"]["repositoryName"] == name
    for name in ("a___b", "a-_b", "_ab", "team/", "Team/app", "a", "a" * 257):
        with pytest.raises(ClientError) as excinfo:
            raw_ecr.create_repository(repositoryName=name)
        assert error_of(excinfo) == ("InvalidParameterException", 400), name
        assert "'repositoryName'" in str(excinfo.value), name


def test_exclusions_are_stored_and_returned(ecr):
    created = ecr.create_repository(
        repositoryName="excl",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=exclusions("latest", "dev-*"),
    )["repository"]
    assert created["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert created["imageTagMutabilityExclusionFilters"] == exclusions("latest", "dev-*")
    described = ecr.describe_repositories(repositoryNames=["excl"])["repositories"][0]
    assert described["imageTagMutabilityExclusionFilters"] == exclusions("latest", "dev-*")

    # PutImageTagMutability replaces mode and filters together, and says so.
    put = ecr.put_image_tag_mutability(
        repositoryName="excl",
        imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=exclusions("release-*"),
    )
    assert put["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    assert put["imageTagMutabilityExclusionFilters"] == exclusions("release-*")
    described = ecr.describe_repositories(repositoryNames=["excl"])["repositories"][0]
    assert described["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"
    assert described["imageTagMutabilityExclusionFilters"] == exclusions("release-*")

    # A plain mode drops the filters.
    put = ecr.put_image_tag_mutability(repositoryName="excl", imageTagMutability="IMMUTABLE")
    assert put["imageTagMutability"] == "IMMUTABLE"
    assert "imageTagMutabilityExclusionFilters" not in put
    described = ecr.describe_repositories(repositoryNames=["excl"])["repositories"][0]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert "imageTagMutabilityExclusionFilters" not in described


def _manifest(n: int) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": f"sha256:{n:064x}"},
            "layers": [],
        }
    )


def _moves(ecr, repository: str, tag: str, manifests) -> bool:
    """Whether ``tag``, pushed on one image, can then be pushed on another."""
    ecr.put_image(repositoryName=repository, imageManifest=_manifest(next(manifests)), imageTag=tag)
    try:
        ecr.put_image(repositoryName=repository, imageManifest=_manifest(next(manifests)), imageTag=tag)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ImageAlreadyExistsException"
        return False
    return True


@pytest.mark.parametrize(
    ("mode", "filters", "expected"),
    [
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], {"latest": True, "dev-1": True, "latest-old": False, "devx": False, "v1": False}),
        ("MUTABLE_WITH_EXCLUSION", ["release-*", "v*.*"], {"release-1": False, "v1.2": False, "v1": True, "xrelease-1": True, "latest": True}),
        ("IMMUTABLE", None, {"latest": False}),
        ("MUTABLE", None, {"latest": True}),
    ],
)
def test_exclusions_decide_which_tags_move(ecr, mode, filters, expected):
    extra = {} if filters is None else {"imageTagMutabilityExclusionFilters": exclusions(*filters)}
    ecr.create_repository(repositoryName="pins", imageTagMutability=mode, **extra)
    manifests = iter(range(1, 100))
    got = {tag: _moves(ecr, "pins", tag, manifests) for tag in expected}
    assert got == expected


@pytest.mark.parametrize(
    ("mode", "filters", "member", "words"),
    [
        ("IMMUTABLE_WITH_EXCLUSION", None, "imageTagMutabilityExclusionFilters", "can't be null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION"),
        ("MUTABLE_WITH_EXCLUSION", None, "imageTagMutabilityExclusionFilters", "can't be null when imageTagMutability is set as MUTABLE_WITH_EXCLUSION"),
        ("MUTABLE", exclusions("latest"), "imageTagMutabilityExclusionFilters", "must be null when imageTagMutability is set as MUTABLE"),
        ("IMMUTABLE", exclusions("latest"), "imageTagMutabilityExclusionFilters", "must be null when imageTagMutability is set as IMMUTABLE"),
        ("IMMUTABLE_WITH_EXCLUSION", [], "imageTagMutabilityExclusionFilters", "length greater than or equal to 1"),
        ("IMMUTABLE_WITH_EXCLUSION", exclusions(*"abcdef"), "imageTagMutabilityExclusionFilters", "length less than or equal to 5"),
        ("IMMUTABLE_WITH_EXCLUSION", exclusions("dev/*"), "imageTagMutabilityExclusionFilters.1.filter", "regular expression pattern"),
        ("IMMUTABLE_WITH_EXCLUSION", exclusions("t" * 129), "imageTagMutabilityExclusionFilters.1.filter", "length between 1 and 128"),
        ("IMMUTABLE_WITH_EXCLUSION", [{"filterType": "REGEX", "filter": "x"}], "imageTagMutabilityExclusionFilters.1.filterType", "[WILDCARD]"),
        ("IMMUTABLE_WITH_EXCLUSION", [{"filter": "x"}], "imageTagMutabilityExclusionFilters.1.filterType", "[WILDCARD]"),
        ("IMMUTABLE_WITH_EXCLUSION", [{"filterType": WILDCARD}], "imageTagMutabilityExclusionFilters.1.filter", "must not be null"),
        ("SOMETIMES", None, "imageTagMutability", "enum value set"),
    ],
)
def test_exclusion_errors_on_create_and_put(ecr, raw_ecr, mode, filters, member, words):
    ecr.create_repository(repositoryName="target")
    extra = {} if filters is None else {"imageTagMutabilityExclusionFilters": filters}
    calls = [
        lambda: raw_ecr.create_repository(repositoryName="new-one", imageTagMutability=mode, **extra),
        lambda: raw_ecr.put_image_tag_mutability(repositoryName="target", imageTagMutability=mode, **extra),
    ]
    for call in calls:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("InvalidParameterException", 400)
        message = excinfo.value.response["Error"]["Message"]
        assert f"Invalid parameter at '{member}' failed to satisfy constraint:" in message, message
        assert words in message, message
    # Nothing was created or changed.
    names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert names == ["target"]
    assert ecr.describe_repositories()["repositories"][0]["imageTagMutability"] == "MUTABLE"


# ---------------------------------------------------------------------------
# Registry policy
# ---------------------------------------------------------------------------

REPOSITORIES = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*"
INVALID_REGISTRY_POLICY = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'"


def registry_policy(*actions: str, resource: bool = True, sid: str = "Peer") -> str:
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": list(actions),
    }
    if resource:
        statement["Resource"] = [REPOSITORIES]
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_registry_policy_not_found_until_put_and_after_delete(ecr):
    for call in (ecr.get_registry_policy, ecr.delete_registry_policy):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("RegistryPolicyNotFoundException", 400)
    text = registry_policy("ecr:ReplicateImage", "ecr:CreateRepository")
    put = ecr.put_registry_policy(policyText=text)
    assert (put["registryId"], put["policyText"]) == (ACCOUNT, text)
    got = ecr.get_registry_policy()
    assert (got["registryId"], got["policyText"]) == (ACCOUNT, text)
    deleted = ecr.delete_registry_policy()
    assert deleted["policyText"] == text
    with pytest.raises(ClientError) as excinfo:
        ecr.get_registry_policy()
    assert error_of(excinfo) == ("RegistryPolicyNotFoundException", 400)


@pytest.mark.parametrize(
    "actions",
    [
        ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository"),
        ("ecr:ReplicateImage",),
        ("ecr:DescribeImages", "ecr:BatchGetImage"),
        ("ecr:*",),
        ("ecr:Batch*",),
    ],
)
def test_registry_policy_takes_every_ecr_action(ecr, actions):
    text = registry_policy(*actions)
    ecr.put_registry_policy(policyText=text)
    assert ecr.get_registry_policy()["policyText"] == text


@pytest.mark.parametrize(
    "text",
    [
        registry_policy("s3:GetObject"),
        registry_policy("ecr:ReplicateImage", "iam:PassRole"),
        registry_policy("*"),
        registry_policy("ecr:ReplicateImage", resource=False),
        "not json",
    ],
)
def test_registry_policy_refused_as_ecr_refuses_it(ecr, text):
    ecr.put_registry_policy(policyText=registry_policy("ecr:ReplicateImage"))
    with pytest.raises(ClientError) as excinfo:
        ecr.put_registry_policy(policyText=text)
    assert error_of(excinfo) == ("InvalidParameterException", 400)
    assert excinfo.value.response["Error"]["Message"] == INVALID_REGISTRY_POLICY
    # The policy in place is kept.
    assert ecr.get_registry_policy()["policyText"] == registry_policy("ecr:ReplicateImage")


def test_registry_policy_text_is_bounded(ecr, raw_ecr):
    base = registry_policy("ecr:ReplicateImage", "ecr:X")
    at_limit = base.replace('"ecr:X"', '"ecr:X' + "a" * (10240 - len(base)) + '"')
    assert len(at_limit) == 10240
    raw_ecr.put_registry_policy(policyText=at_limit)
    assert ecr.get_registry_policy()["policyText"] == at_limit
    over = at_limit.replace('"ecr:X', '"ecr:Xa')
    with pytest.raises(ClientError) as excinfo:
        raw_ecr.put_registry_policy(policyText=over)
    assert error_of(excinfo) == ("InvalidParameterException", 400)
    message = excinfo.value.response["Error"]["Message"]
    assert message == (
        "Invalid parameter at 'policyText' failed to satisfy constraint: "
        "'Member must have length less than or equal to 10240'"
    )
    assert ecr.get_registry_policy()["policyText"] == at_limit


# ---------------------------------------------------------------------------
# Repository creation templates
# ---------------------------------------------------------------------------

TEMPLATE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}],
    }
)
TEMPLATE_LIFECYCLE = json.dumps(
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
TEMPLATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-template"
TEMPLATE_KMS = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def full_template(prefix: str = "prod") -> dict:
    return {
        "prefix": prefix,
        "description": "production images",
        "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": TEMPLATE_KMS},
        "resourceTags": [{"Key": "team", "Value": "platform"}],
        "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
        "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "latest"}],
        "repositoryPolicy": TEMPLATE_POLICY,
        "lifecyclePolicy": TEMPLATE_LIFECYCLE,
        "appliedFor": ["PULL_THROUGH_CACHE", "REPLICATION", "CREATE_ON_PUSH"],
        "customRoleArn": TEMPLATE_ROLE,
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
        {"encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": TEMPLATE_KMS}},
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


# ---------------------------------------------------------------------------
# Bulk seeding (benchmarks)
# ---------------------------------------------------------------------------


def test_seeded_repositories_read_back_as_created_ones(server, ecr):
    settings = {
        "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
    }
    ecr.create_repository(repositoryName="made/one", tags=[{"Key": "team", "Value": "a"}], **settings)
    requests = [
        {"repositoryName": f"seeded/{i}", "tags": [{"Key": "team", "Value": str(i)}], **settings}
        for i in range(3)
    ]
    status, answer = http(server, "POST", "/moto-api/ecr-ext/repositories", {"region": REGION, "repositories": requests})
    assert (status, answer) == (200, {"created": 3})
    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    assert sorted(repos) == ["made/one", "seeded/0", "seeded/1", "seeded/2"]
    made, seeded = repos["made/one"], repos["seeded/1"]
    for key in ("imageTagMutability", "imageScanningConfiguration", "encryptionConfiguration", "registryId"):
        assert seeded[key] == made[key], key
    assert seeded["repositoryArn"] == f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/seeded/1"
    tags = ecr.list_tags_for_resource(resourceArn=seeded["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "1"}]
    # Seeding is not an ECR call: only the one real CreateRepository is counted.
    assert http(server, "GET", "/moto-api/ecr-ext/calls")[1].get("CreateRepository") == 1


def test_seeding_refuses_what_create_repository_refuses(server, ecr):
    ecr.create_repository(repositoryName="taken")
    requests = [{"repositoryName": "fresh"}, {"repositoryName": "taken"}, {"repositoryName": "never"}]
    status, answer = http(server, "POST", "/moto-api/ecr-ext/repositories", {"repositories": requests})
    assert status == 400 and "request 1 (taken)" in answer["error"], answer
    assert "RepositoryAlreadyExists" in answer["error"] or "already exists" in answer["error"], answer
    status, answer = http(server, "POST", "/moto-api/ecr-ext/repositories", {"repositories": [{"repositoryName": "Bad_Upper"}]})
    assert status == 400 and "Bad_Upper" in answer["error"], answer
    names = sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"])
    assert names == ["fresh", "taken"]
    assert http(server, "POST", "/moto-api/ecr-ext/repositories", {"region": REGION})[0] == 400
