"""Tests of moto_ecr_registry_settings.py (account settings, managed signing,
pull time update exclusions) through boto3 against the launched moto server.

Bounds and patterns come from botocore's ECR model (the one moto serialises
with), read here, not from the module under test; defaults and quotas come
from the ECR user guide, cited where used.
"""

from __future__ import annotations

from datetime import datetime

import boto3
import botocore.session
import pytest
from botocore.config import Config

# The launcher, its per-test reset and the clients of test_moto_ext.py.
from test_moto_ext import (  # noqa: F401  (server and _reset are fixtures)
    ACCOUNT,
    REGION,
    _reset,
    client,
    ecr,
    push,
    raw_ecr,
    server,
)

MODEL = botocore.session.get_session().get_service_model("ecr")
OTHER_REGION = "eu-west-1"
OTHER_ACCOUNT = "210987654321"


def bounds(shape: str) -> tuple[int, int]:
    metadata = MODEL.shape_for(shape).metadata
    return metadata.get("min", 0), metadata["max"]


def ecr_client(url: str, region: str = REGION, account: str | None = None, **config):
    """An ECR client for another region, or (moto's x-moto-account-id header)
    another account."""
    config.setdefault("retries", {"total_max_attempts": 1})
    c = boto3.client(
        "ecr",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )
    if account:

        def add_header(request, **_):
            request.headers["x-moto-account-id"] = account

        c.meta.events.register("before-send.ecr.*", add_header)
    return c


def profile_arn(name: str = "release_signer", account: str = ACCOUNT) -> str:
    return f"arn:aws:signer:{REGION}:{account}:/signing-profiles/{name}"


def role_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


# ---------------------------------------------------------------------------
# Account settings
# ---------------------------------------------------------------------------

#: Defaults of a registry that never set them (user guide): "All new customer
#: registries are opted into this improved version [AWS_NATIVE] by default";
#: "The V2 version is the default registry policy scope"; blob mounting is
#: turned on with "put-account-setting --name BLOB_MOUNTING --value ENABLED".
DEFAULTS = {
    "BASIC_SCAN_TYPE_VERSION": "AWS_NATIVE",
    "REGISTRY_POLICY_SCOPE": "V2",
    "BLOB_MOUNTING": "DISABLED",
}


def test_account_setting_defaults(ecr):
    for name, value in DEFAULTS.items():
        answer = ecr.get_account_setting(name=name)
        assert (answer["name"], answer["value"]) == (name, value)


def test_put_account_setting_round_trip(ecr):
    answer = ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    assert (answer["name"], answer["value"]) == ("BLOB_MOUNTING", "ENABLED")
    assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "ENABLED"
    ecr.put_account_setting(name="BLOB_MOUNTING", value="DISABLED")
    assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "DISABLED"
    # The values PutAccountSettingRequest.value documents for the other two.
    for name, value in (("BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE"), ("REGISTRY_POLICY_SCOPE", "V2")):
        assert ecr.put_account_setting(name=name, value=value)["value"] == value
        assert ecr.get_account_setting(name=name)["value"] == value


def test_account_setting_refuses_unknown_names_and_values(ecr, raw_ecr):
    low, high = bounds("AccountSettingName")
    invalid = raw_ecr.exceptions.InvalidParameterException
    for name in ("SCAN_ON_PUSH", "blob_mounting", "x" * (high + 1), "x" * (low - 1)):
        with pytest.raises(invalid):
            raw_ecr.get_account_setting(name=name)
        with pytest.raises(invalid):
            raw_ecr.put_account_setting(name=name, value="ENABLED")
    # The model lists AWS_NATIVE, V2, ENABLED and DISABLED; CLAIR (unsupported
    # since October 1, 2025, user guide) and V1 are no longer among them, nor
    # is a value of another setting or another spelling.
    for name, value in (
        ("BASIC_SCAN_TYPE_VERSION", "CLAIR"),
        ("REGISTRY_POLICY_SCOPE", "V1"),
        ("REGISTRY_POLICY_SCOPE", "ENABLED"),
        ("BLOB_MOUNTING", "enabled"),
        ("BLOB_MOUNTING", "AWS_NATIVE"),
        ("BLOB_MOUNTING", ""),
    ):
        with pytest.raises(invalid):
            raw_ecr.put_account_setting(name=name, value=value)
        assert ecr.get_account_setting(name=name)["value"] == DEFAULTS[name], (name, value)
    with pytest.raises(invalid):
        raw_ecr.put_account_setting(name="BLOB_MOUNTING")


# ---------------------------------------------------------------------------
# Managed signing
# ---------------------------------------------------------------------------

RELEASE = profile_arn("release_signer")
NIGHTLY = profile_arn("nightly_signer")


def wildcard(*filters: str) -> list[dict]:
    return [{"filter": f, "filterType": "WILDCARD_MATCH"} for f in filters]


def test_signing_configuration_not_found(ecr):
    with pytest.raises(ecr.exceptions.SigningConfigurationNotFoundException):
        ecr.get_signing_configuration()
    with pytest.raises(ecr.exceptions.SigningConfigurationNotFoundException):
        ecr.delete_signing_configuration()


def test_put_get_delete_signing_configuration(ecr):
    configuration = {
        "rules": [
            {"signingProfileArn": RELEASE, "repositoryFilters": wildcard("prod/*", "*-release")},
            {"signingProfileArn": NIGHTLY},
        ]
    }
    put = ecr.put_signing_configuration(signingConfiguration=configuration)
    assert put["signingConfiguration"] == configuration
    got = ecr.get_signing_configuration()
    assert got["registryId"] == ACCOUNT
    assert got["signingConfiguration"] == configuration
    # Put replaces the whole configuration.
    replacement = {"rules": [{"signingProfileArn": NIGHTLY, "repositoryFilters": wildcard("dev")}]}
    ecr.put_signing_configuration(signingConfiguration=replacement)
    assert ecr.get_signing_configuration()["signingConfiguration"] == replacement
    deleted = ecr.delete_signing_configuration()
    assert deleted["registryId"] == ACCOUNT
    assert deleted["signingConfiguration"] == replacement
    with pytest.raises(ecr.exceptions.SigningConfigurationNotFoundException):
        ecr.get_signing_configuration()


def test_signing_configuration_without_rules(ecr):
    # SigningRuleList has min 0: an empty list is a configuration.
    assert bounds("SigningRuleList")[0] == 0
    assert ecr.put_signing_configuration(signingConfiguration={"rules": []})["signingConfiguration"] == {
        "rules": []
    }
    assert ecr.get_signing_configuration()["signingConfiguration"] == {"rules": []}


def test_signing_configuration_bounds(ecr, raw_ecr):
    invalid = raw_ecr.exceptions.InvalidParameterException

    def put(rules):
        return raw_ecr.put_signing_configuration(signingConfiguration={"rules": rules})

    _, max_rules = bounds("SigningRuleList")
    put([{"signingProfileArn": RELEASE}] * max_rules)
    with pytest.raises(invalid):
        put([{"signingProfileArn": RELEASE}] * (max_rules + 1))

    _, max_arn = bounds("SigningProfileArn")
    longest = profile_arn("p" * (max_arn - len(profile_arn(""))))
    assert len(longest) == max_arn
    put([{"signingProfileArn": longest}])
    with pytest.raises(invalid):
        put([{"signingProfileArn": longest + "p"}])

    min_filters, max_filters = bounds("SigningRepositoryFilterList")
    put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(*["app"] * max_filters)}])
    for count in (min_filters - 1, max_filters + 1):
        with pytest.raises(invalid):
            put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(*["app"] * count)}])

    min_filter, max_filter = bounds("SigningRepositoryFilterValue")
    longest_filter = "a" * max_filter
    put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(longest_filter)}])
    for value in ("a" * (max_filter + 1), "a" * (min_filter - 1)):
        with pytest.raises(invalid):
            put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(value)}])
    # The last rule of each put above was refused whole: the stored
    # configuration is the last accepted one.
    stored = ecr.get_signing_configuration()["signingConfiguration"]
    assert stored["rules"][0]["repositoryFilters"][0]["filter"] == longest_filter


def test_signing_configuration_patterns_and_members(raw_ecr):
    invalid = raw_ecr.exceptions.InvalidParameterException
    assert MODEL.shape_for("SigningRepositoryFilterType").enum == ["WILDCARD_MATCH"]

    def put(rules):
        return raw_ecr.put_signing_configuration(signingConfiguration={"rules": rules})

    # SigningProfileArn: arn:aws[-partition]:signer:<region>:<12 digits>:/signing-profiles/<2+ of [a-zA-Z0-9_]>
    for arn in (
        f"arn:aws-cn:signer:cn-north-1:{ACCOUNT}:/signing-profiles/Release_2",
        f"arn:aws-us-gov:signer:us-gov-west-1:{ACCOUNT}:/signing-profiles/ab",
    ):
        put([{"signingProfileArn": arn}])
    for arn in (
        f"arn:aws:signer:{REGION}:{ACCOUNT}:signing-profiles/release",  # no "/" before
        f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/r",  # one character
        f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/re-lease",  # "-"
        f"arn:aws:signer:{REGION}:12345:/signing-profiles/release",  # account
        f"arn:aws:kms:{REGION}:{ACCOUNT}:/signing-profiles/release",  # service
        "",
    ):
        with pytest.raises(invalid):
            put([{"signingProfileArn": arn}])
    # SigningRepositoryFilterValue: lowercase name parts, "*" anywhere in them.
    for value in ("prod/*", "*/production", "*prod*", "team-a/app.web_1"):
        put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(value)}])
    for value in ("Prod", "a//b", "/a", "a/", "-a", "a b"):
        with pytest.raises(invalid):
            put([{"signingProfileArn": RELEASE, "repositoryFilters": wildcard(value)}])
    # Required members and the filter type's enum.
    for rule in (
        {"repositoryFilters": wildcard("app")},
        {"signingProfileArn": RELEASE, "repositoryFilters": [{"filter": "app"}]},
        {"signingProfileArn": RELEASE, "repositoryFilters": [{"filterType": "WILDCARD_MATCH"}]},
        {"signingProfileArn": RELEASE, "repositoryFilters": [{"filter": "app", "filterType": "PREFIX_MATCH"}]},
    ):
        with pytest.raises(invalid):
            put([rule])
    with pytest.raises(invalid):
        raw_ecr.put_signing_configuration(signingConfiguration={})


def test_describe_image_signing_status(ecr):
    for name in ("prod/web", "lib", "early"):
        ecr.create_repository(repositoryName=name)
    before = push(ecr, "early", "e1", tag="v1")
    ecr.put_signing_configuration(
        signingConfiguration={
            "rules": [
                {"signingProfileArn": RELEASE, "repositoryFilters": wildcard("prod/*")},
                {"signingProfileArn": NIGHTLY},
                # The same profile again: one status per profile.
                {"signingProfileArn": RELEASE, "repositoryFilters": wildcard("*web")},
                {"signingProfileArn": profile_arn("other"), "repositoryFilters": wildcard("prod")},
            ]
        }
    )
    web = push(ecr, "prod/web", "w1", tag="v1")
    lib = push(ecr, "lib", "l1")

    answer = ecr.describe_image_signing_status(repositoryName="prod/web", imageId={"imageTag": "v1"})
    assert answer["repositoryName"] == "prod/web" and answer["registryId"] == ACCOUNT
    assert answer["imageId"]["imageDigest"] == web
    assert answer["signingStatuses"] == [
        {"signingProfileArn": RELEASE, "status": "COMPLETE"},
        {"signingProfileArn": NIGHTLY, "status": "COMPLETE"},
    ]
    answer = ecr.describe_image_signing_status(repositoryName="lib", imageId={"imageDigest": lib})
    assert answer["signingStatuses"] == [{"signingProfileArn": NIGHTLY, "status": "COMPLETE"}]
    # Pushed before the configuration: not signed.
    answer = ecr.describe_image_signing_status(repositoryName="early", imageId={"imageDigest": before})
    assert answer["signingStatuses"] == []
    # Deleting the configuration leaves the signatures made.
    ecr.delete_signing_configuration()
    answer = ecr.describe_image_signing_status(repositoryName="lib", imageId={"imageDigest": lib})
    assert len(answer["signingStatuses"]) == 1

    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_image_signing_status(repositoryName="missing", imageId={"imageTag": "v1"})
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_image_signing_status(repositoryName="lib", imageId={"imageTag": "nope"})


# ---------------------------------------------------------------------------
# Pull time update exclusions
# ---------------------------------------------------------------------------


def test_register_list_deregister_exclusion(ecr):
    assert ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"] == []
    scanner = role_arn("scanner")
    answer = ecr.register_pull_time_update_exclusion(principalArn=scanner)
    assert answer["principalArn"] == scanner
    assert isinstance(answer["createdAt"], datetime)
    ci = f"arn:aws:iam::{ACCOUNT}:user/ci/robot"
    ecr.register_pull_time_update_exclusion(principalArn=ci)
    listed = ecr.list_pull_time_update_exclusions()
    assert sorted(listed["pullTimeUpdateExclusions"]) == sorted([scanner, ci])
    assert "nextToken" not in listed

    with pytest.raises(ecr.exceptions.ExclusionAlreadyExistsException):
        ecr.register_pull_time_update_exclusion(principalArn=scanner)

    assert ecr.deregister_pull_time_update_exclusion(principalArn=scanner)["principalArn"] == scanner
    assert ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"] == [ci]
    with pytest.raises(ecr.exceptions.ExclusionNotFoundException):
        ecr.deregister_pull_time_update_exclusion(principalArn=scanner)


def test_exclusion_principal_arn_constraints(raw_ecr):
    invalid = raw_ecr.exceptions.InvalidParameterException
    _, high = bounds("PrincipalArn")
    prefix = f"arn:aws:iam::{ACCOUNT}:role/"
    longest = prefix + "r" * (high - len(prefix))
    accepted = (
        longest,
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"arn:aws:iam::{ACCOUNT}:role/service-role/scan+er=,.@_1",
        f"arn:aws-cn:iam::{ACCOUNT}:role/scanner",
    )
    for arn in accepted:
        raw_ecr.register_pull_time_update_exclusion(principalArn=arn)
    refused = (
        longest + "r",
        f"arn:aws:iam::{ACCOUNT}:group/devs",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/scanner/session",
        "arn:aws:iam::12345:role/scanner",
        f"arn:aws:iam::{ACCOUNT}:role/",
        f"arn:aws:iam::{ACCOUNT}:role/scan ner",
        f"arn:aws:iam::{ACCOUNT}:role/sc\u00e4nner",  # \w of the service's (Java) pattern is ASCII
        "",
    )
    for arn in refused:
        with pytest.raises(invalid):
            raw_ecr.register_pull_time_update_exclusion(principalArn=arn)
        with pytest.raises(invalid):
            raw_ecr.deregister_pull_time_update_exclusion(principalArn=arn)
    listed = raw_ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"]
    assert sorted(listed) == sorted(accepted)


def test_exclusion_quota(ecr):
    # "You can configure up to 100 exclusions per account" (user guide);
    # the model's PullTimeUpdateExclusionList holds as many.
    quota = 100
    assert bounds("PullTimeUpdateExclusionList")[1] == quota
    for n in range(quota):
        ecr.register_pull_time_update_exclusion(principalArn=role_arn(f"r{n:03}"))
    with pytest.raises(ecr.exceptions.LimitExceededException):
        ecr.register_pull_time_update_exclusion(principalArn=role_arn("one-more"))
    # Without maxResults a page holds up to 100: all of them, no token.
    listed = ecr.list_pull_time_update_exclusions()
    assert len(listed["pullTimeUpdateExclusions"]) == quota and "nextToken" not in listed
    ecr.deregister_pull_time_update_exclusion(principalArn=role_arn("r000"))
    ecr.register_pull_time_update_exclusion(principalArn=role_arn("one-more"))


def test_list_exclusions_pages(ecr, raw_ecr):
    arns = [role_arn(f"role-{n:02}") for n in range(25)]
    for arn in reversed(arns):
        ecr.register_pull_time_update_exclusion(principalArn=arn)
    pages, token = [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = ecr.list_pull_time_update_exclusions(maxResults=10, **kwargs)
        pages.append(page["pullTimeUpdateExclusions"])
        token = page.get("nextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [arn for page in pages for arn in page] == sorted(arns)
    # A token names where the page ended: a deletion between pages shifts nothing.
    first = ecr.list_pull_time_update_exclusions(maxResults=10)
    ecr.deregister_pull_time_update_exclusion(principalArn=arns[12])
    rest = ecr.list_pull_time_update_exclusions(maxResults=100, nextToken=first["nextToken"])
    assert rest["pullTimeUpdateExclusions"] == sorted(arns)[10:12] + sorted(arns)[13:]

    low, high = bounds("MaxResults")
    assert len(ecr.list_pull_time_update_exclusions(maxResults=high)["pullTimeUpdateExclusions"]) == 24
    for max_results in (low - 1, high + 1):
        with pytest.raises(raw_ecr.exceptions.InvalidParameterException):
            raw_ecr.list_pull_time_update_exclusions(maxResults=max_results)
    with pytest.raises(raw_ecr.exceptions.InvalidParameterException):
        raw_ecr.list_pull_time_update_exclusions(nextToken="not-a-token")


def pull_time(ecr, repo: str, digest: str):
    images = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])
    return images["imageDetails"][0].get("lastRecordedPullTime")


def test_excluded_principal_does_not_update_pull_time(server, ecr):
    sts = client(server, "sts")
    iam = client(server, "iam")
    scanner = sts.assume_role(RoleArn=role_arn("scanner"), RoleSessionName="scan")["Credentials"]
    iam.create_user(UserName="ci")
    ci_key = iam.create_access_key(UserName="ci")["AccessKey"]

    def ecr_as(access_key: str, secret: str, token: str | None = None):
        return boto3.client(
            "ecr",
            endpoint_url=server,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    as_scanner = ecr_as(scanner["AccessKeyId"], scanner["SecretAccessKey"], scanner["SessionToken"])
    as_ci = ecr_as(ci_key["AccessKeyId"], ci_key["SecretAccessKey"])

    ecr.create_repository(repositoryName="app")
    first = push(ecr, "app", "a1", tag="v1")
    second = push(ecr, "app", "a2", tag="v2")
    ecr.register_pull_time_update_exclusion(principalArn=role_arn("scanner"))
    ecr.register_pull_time_update_exclusion(principalArn=f"arn:aws:iam::{ACCOUNT}:user/ci")

    # Excluded: the assumed role's and the user's pulls record nothing.
    pulled = as_scanner.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert [i["imageId"]["imageDigest"] for i in pulled["images"]] == [first]
    as_ci.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert pull_time(ecr, "app", first) is None
    # Anyone else's pull is recorded.
    ecr.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v2"}])
    assert pull_time(ecr, "app", second) is not None
    # Deregistered, the role's pulls are recorded again.
    ecr.deregister_pull_time_update_exclusion(principalArn=role_arn("scanner"))
    as_scanner.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "v1"}])
    assert pull_time(ecr, "app", first) is not None


# ---------------------------------------------------------------------------
# One registry per account and Region
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["region", "account"])
def test_registries_are_independent(server, ecr, where):
    other = (
        ecr_client(server, region=OTHER_REGION)
        if where == "region"
        else ecr_client(server, account=OTHER_ACCOUNT)
    )
    ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    ecr.put_signing_configuration(signingConfiguration={"rules": [{"signingProfileArn": RELEASE}]})
    ecr.register_pull_time_update_exclusion(principalArn=role_arn("scanner"))

    assert other.get_account_setting(name="BLOB_MOUNTING")["value"] == "DISABLED"
    with pytest.raises(other.exceptions.SigningConfigurationNotFoundException):
        other.get_signing_configuration()
    assert other.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"] == []
    # The other registry's own settings leave this one's alone.
    other.register_pull_time_update_exclusion(principalArn=role_arn("scanner"))
    other.put_signing_configuration(signingConfiguration={"rules": []})
    other.put_account_setting(name="BLOB_MOUNTING", value="DISABLED")
    if where == "account":
        assert other.get_signing_configuration()["registryId"] == OTHER_ACCOUNT
    other.delete_signing_configuration()
    other.deregister_pull_time_update_exclusion(principalArn=role_arn("scanner"))

    assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "ENABLED"
    assert ecr.get_signing_configuration()["signingConfiguration"]["rules"] == [
        {"signingProfileArn": RELEASE}
    ]
    assert ecr.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"] == [role_arn("scanner")]
