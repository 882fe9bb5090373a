"""Registry-level settings of Amazon ECR that moto lacks, added to its ECR backend.

Applied by ``moto_ecr_ext.install()`` (import ``moto_ecr_ext``, not this
module, to patch moto): this module reuses that one's helpers (the wording of
InvalidParameterException, the constraint checks, the page tokens) and wraps
two of its backend methods (PutImage, BatchGetImage), so it must be installed
after them.  Like the other additions it follows the botocore service model
(ecr 2015-09-21) and the ECR user guide, and keeps its state on the ECR
backend, one per account and Region, i.e. per registry: two Regions or two
accounts are independent ("The private registry settings are configured
separately for each Region", user guide), and moto's reset clears it all.

1. Account settings: GetAccountSetting / PutAccountSetting for
   BASIC_SCAN_TYPE_VERSION, REGISTRY_POLICY_SCOPE and BLOB_MOUNTING, with the
   values the model documents and the defaults of the user guide (see
   ``ACCOUNT_SETTINGS``).
2. Managed signing: Put / Get / DeleteSigningConfiguration with the
   SigningConfiguration constraints of the model, and
   DescribeImageSigningStatus: an image pushed while rules match its
   repository is signed at once with each matching rule's profile (status
   COMPLETE; AWS Signer itself is not modelled).
3. Pull time update exclusions: Register / Deregister /
   ListPullTimeUpdateExclusions (at most 100 per registry), and BatchGetImage
   by an excluded IAM principal (moto's IAM user, or the role of moto's STS
   assumed-role credentials) leaves ``lastRecordedPullTime`` as it was.

Errors follow the rest of ``moto_ecr_ext``: a request member that breaks a
constraint of the model, or that names something the operation does not know
(an account setting name or value), is answered with InvalidParameterException
"Invalid parameter at '<member>' failed to satisfy constraint: '...'".
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.exceptions import LimitExceededException
from moto.ecr.models import ECRBackend, Image
from moto.ecr.responses import ECRResponse
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

import moto_ecr_ext as ext

__all__ = ["ACCOUNT_SETTINGS", "install"]

# ---------------------------------------------------------------------------
# Constants of the botocore service model (ecr 2015-09-21) and the user guide
# ---------------------------------------------------------------------------

#: Shape AccountSettingName: length 1..64 (the model has no enum for it).
ACCOUNT_SETTING_NAME_MIN, ACCOUNT_SETTING_NAME_MAX = 1, 64

#: name -> (default, accepted values).
#:
#: Values: PutAccountSettingRequest.value ("Valid value for basic scan type:
#: AWS_NATIVE. Valid values for registry policy scope: V2. Valid values for
#: blob mounting: ENABLED or DISABLED.").  Older documents also list CLAIR
#: and V1; the model no longer does, and the user guide says of Clair that it
#: is deprecated and "will no longer be supported in all regions as of
#: October 1, 2025" ("Scan images for OS vulnerabilities in Amazon ECR"), and
#: describes only the V2 registry policy ("Private registry permissions in
#: Amazon ECR": "Amazon ECR allows all ECR actions in the policy").  So CLAIR
#: and V1 are refused, as is any value of another setting.
#:
#: Defaults (a registry that never set them):
#: - BASIC_SCAN_TYPE_VERSION AWS_NATIVE: "All new customer registries are
#:   opted into this improved version by default" (basic scanning guide).
#: - REGISTRY_POLICY_SCOPE V2: "The V2 version is the default registry policy
#:   scope" (registry permissions guide); moto_ecr_ext's PutRegistryPolicy
#:   already accepts every ECR action, i.e. behaves as V2.
#: - BLOB_MOUNTING DISABLED: blob mounting is opt-in, the guide's "Blob
#:   mounting configuration" is how to turn it on ("--value ENABLED").
ACCOUNT_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BASIC_SCAN_TYPE_VERSION": ("AWS_NATIVE", ("AWS_NATIVE",)),
    "REGISTRY_POLICY_SCOPE": ("V2", ("V2",)),
    "BLOB_MOUNTING": ("DISABLED", ("ENABLED", "DISABLED")),
}

#: Shape SigningRuleList: 0..10 rules.
SIGNING_RULES_MIN, SIGNING_RULES_MAX = 0, 10
#: Shape SigningProfileArn: max length 200, this pattern (no minimum length).
SIGNING_PROFILE_ARN_MAX = 200
SIGNING_PROFILE_ARN_PATTERN = (
    r"^arn:aws(-[a-z]+)*:signer:[a-z0-9-]+:[0-9]{12}:\/signing-profiles\/[a-zA-Z0-9_]{2,}$"
)
#: Shape SigningRepositoryFilterList: 1..100 filters (the member is optional).
SIGNING_FILTERS_MIN, SIGNING_FILTERS_MAX = 1, 100
#: Shape SigningRepositoryFilterValue: length 1..256, this pattern.
SIGNING_FILTER_MIN, SIGNING_FILTER_MAX = 1, 256
SIGNING_FILTER_PATTERN = (
    r"^(?:[a-z0-9*]+(?:[._-][a-z0-9*]+)*/)*[a-z0-9*]+(?:[._-][a-z0-9*]+)*$"
)
#: Shape SigningRepositoryFilterType.
SIGNING_FILTER_TYPES = ("WILDCARD_MATCH",)

#: Shape PrincipalArn: max length 200, this pattern (``\w`` as in Java: ASCII).
PRINCIPAL_ARN_MAX = 200
PRINCIPAL_ARN_PATTERN = (
    r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$"
)
#: "You can configure up to 100 exclusions per account" ("Pull-time update
#: exclusions", user guide); also the model's PullTimeUpdateExclusionList
#: maximum.  Counted per registry here, as the API reference describes the
#: list ("the pull time update exclusion list for a registry").
MAX_PULL_TIME_UPDATE_EXCLUSIONS = 100


# ---------------------------------------------------------------------------
# Exceptions (codes are error shapes of the model, so moto's serialiser gives
# them their modelled HTTP status and __type, and botocore its classes)
# ---------------------------------------------------------------------------


class SigningConfigurationNotFoundException(ServiceException):
    code = "SigningConfigurationNotFoundException"

    def __init__(self, registry_id: str):
        super().__init__(
            f"Signing configuration does not exist in the registry with id '{registry_id}'"
        )


class ExclusionAlreadyExistsException(ServiceException):
    code = "ExclusionAlreadyExistsException"

    def __init__(self, principal_arn: str, registry_id: str):
        super().__init__(
            f"The pull time update exclusion for the principal '{principal_arn}' already "
            f"exists in the registry with id '{registry_id}'"
        )


class ExclusionNotFoundException(ServiceException):
    code = "ExclusionNotFoundException"

    def __init__(self, principal_arn: str, registry_id: str):
        super().__init__(
            f"The pull time update exclusion for the principal '{principal_arn}' does not "
            f"exist in the registry with id '{registry_id}'"
        )


for _exception in (
    SigningConfigurationNotFoundException,
    ExclusionAlreadyExistsException,
    ExclusionNotFoundException,
):
    # moto finds the error shape through the service named in the module.
    _exception.__module__ = "moto.ecr.exceptions"


def _check_string(member: str, value: Any, pattern: Optional[str], low: int, high: int) -> str:
    """Required string member of the given length, matching ``pattern``
    (ASCII classes, as the service's Java patterns)."""
    if value is None:
        raise ext._invalid(member, "Member must not be null")
    if not isinstance(value, str):
        raise ext._invalid(member, "Member must be a string")
    if len(value) < low:
        raise ext._invalid(member, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        raise ext._invalid(member, f"Member must have length less than or equal to {high}")
    if pattern is not None and not re.fullmatch(pattern, value, re.ASCII):
        raise ext._invalid(member, f"Member must satisfy regular expression pattern: {pattern}")
    return value


# ---------------------------------------------------------------------------
# Backend: account settings
# ---------------------------------------------------------------------------


def _account_settings(self: ECRBackend) -> dict[str, str]:
    settings = getattr(self, "account_settings", None)
    if settings is None:
        settings = self.account_settings = {}
    return settings


def _setting_name(name: Any) -> str:
    _check_string("name", name, None, ACCOUNT_SETTING_NAME_MIN, ACCOUNT_SETTING_NAME_MAX)
    if name not in ACCOUNT_SETTINGS:
        # InvalidParameterException, not ValidationException: both are
        # modelled errors of the two operations, but the model documents
        # InvalidParameterException as "The specified parameter is invalid.
        # Review the available parameters for the API request", which is
        # what an unknown name (or value) is: one member naming something
        # the API does not offer.  ValidationException ("There was an
        # exception validating this request") is not tied to a member, and
        # moto_ecr_ext answers every member-level error this way.
        raise ext._invalid("name", f"Member must be one of [{', '.join(ACCOUNT_SETTINGS)}]")
    return name


def get_account_setting(self: ECRBackend, name: Any) -> dict[str, str]:
    name = _setting_name(name)
    default, _ = ACCOUNT_SETTINGS[name]
    return {"name": name, "value": _account_settings(self).get(name, default)}


def put_account_setting(self: ECRBackend, name: Any, value: Any) -> dict[str, str]:
    name = _setting_name(name)
    if value is None:
        raise ext._invalid("value", "Member must not be null")
    _, allowed = ACCOUNT_SETTINGS[name]
    if value not in allowed:
        raise ext._invalid("value", f"Valid values for {name}: [{', '.join(allowed)}]")
    _account_settings(self)[name] = value
    return {"name": name, "value": value}


# ---------------------------------------------------------------------------
# Backend: managed signing
# ---------------------------------------------------------------------------


def _signing_filter(member: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ext._invalid(member, "Member must not be null")
    ext._validate_enum(f"{member}.filterType", value.get("filterType"), SIGNING_FILTER_TYPES)
    _check_string(
        f"{member}.filter",
        value.get("filter"),
        SIGNING_FILTER_PATTERN,
        SIGNING_FILTER_MIN,
        SIGNING_FILTER_MAX,
    )
    return {"filter": value["filter"], "filterType": value["filterType"]}


def _signing_rule(member: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ext._invalid(member, "Member must not be null")
    arn = _check_string(
        f"{member}.signingProfileArn",
        value.get("signingProfileArn"),
        SIGNING_PROFILE_ARN_PATTERN,
        0,
        SIGNING_PROFILE_ARN_MAX,
    )
    rule: dict[str, Any] = {"signingProfileArn": arn}
    filters = value.get("repositoryFilters")
    if filters is not None:
        filters_member = f"{member}.repositoryFilters"
        ext._validate_list(filters_member, filters, SIGNING_FILTERS_MIN, SIGNING_FILTERS_MAX)
        rule["repositoryFilters"] = [
            _signing_filter(f"{filters_member}.{i + 1}", f) for i, f in enumerate(filters)
        ]
    return rule


def _signing_configuration_from(value: Any) -> dict[str, Any]:
    """A checked copy of a SigningConfiguration (only its modelled members)."""
    if not isinstance(value, dict):
        raise ext._invalid("signingConfiguration", "Member must not be null")
    member = "signingConfiguration.rules"
    rules = ext._validate_list(member, value.get("rules"), SIGNING_RULES_MIN, SIGNING_RULES_MAX)
    return {"rules": [_signing_rule(f"{member}.{i + 1}", r) for i, r in enumerate(rules)]}


def put_signing_configuration(self: ECRBackend, signing_configuration: Any) -> dict[str, Any]:
    """Creates or replaces the registry's configuration; an empty ``rules``
    list (the model allows 0 rules) is stored as such."""
    self.signing_configuration = _signing_configuration_from(signing_configuration)
    return {"signingConfiguration": copy.deepcopy(self.signing_configuration)}


def _stored_signing_configuration(self: ECRBackend) -> dict[str, Any]:
    configuration = getattr(self, "signing_configuration", None)
    if configuration is None:
        raise SigningConfigurationNotFoundException(self.account_id)
    return configuration


def get_signing_configuration(self: ECRBackend) -> dict[str, Any]:
    configuration = _stored_signing_configuration(self)
    return {"registryId": self.account_id, "signingConfiguration": copy.deepcopy(configuration)}


def delete_signing_configuration(self: ECRBackend) -> dict[str, Any]:
    """Returns the deleted configuration; signatures already made stay
    ("Deleting the signing configuration does not affect existing image
    signatures")."""
    configuration = _stored_signing_configuration(self)
    self.signing_configuration = None
    return {"registryId": self.account_id, "signingConfiguration": configuration}


def _signing_filter_matches(pattern: str, repository_name: str) -> bool:
    """WILDCARD_MATCH: "the * character matches any sequence of characters"
    (SigningRepositoryFilter), over the whole repository name."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, repository_name) is not None


def _signing_profiles_for(self: ECRBackend, repository_name: str) -> list[str]:
    """The profiles of the rules matching a repository, in rule order, once
    each.  "If no filters are specified, all images pushed to the registry
    are signed using the rule's signing profile" (SigningRule)."""
    configuration = getattr(self, "signing_configuration", None) or {"rules": []}
    profiles: list[str] = []
    for rule in configuration["rules"]:
        filters = rule.get("repositoryFilters")
        if filters and not any(_signing_filter_matches(f["filter"], repository_name) for f in filters):
            continue
        if rule["signingProfileArn"] not in profiles:
            profiles.append(rule["signingProfileArn"])
    return profiles


_previous_put_image: Optional[Callable[..., Image]] = None


def put_image(self: ECRBackend, repository_name: str, *args: Any, **kwargs: Any) -> Image:
    """PutImage (moto_ecr_ext's) that signs a new image with the profiles of
    the signing rules matching its repository."""
    repository = self._get_repository(repository_name)
    before = list(repository.images)
    image = _previous_put_image(self, repository_name, *args, **kwargs)
    if not any(image is old for old in before):
        image.signing_statuses = [
            {"signingProfileArn": arn, "status": "COMPLETE"}
            for arn in _signing_profiles_for(self, repository.name)
        ]
    return image


def describe_image_signing_status(
    self: ECRBackend,
    repository_name: str,
    image_id: Optional[dict[str, Any]],
    registry_id: Optional[str] = None,
) -> dict[str, Any]:
    ext._validate_registry_id(registry_id)
    if not isinstance(image_id, dict):
        raise ext._invalid("imageId", "Member must not be null")
    repository = self._get_repository(repository_name, registry_id)
    image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
    answered_id = {"imageDigest": image.image_digest}
    if image_id.get("imageTag"):
        answered_id["imageTag"] = image_id["imageTag"]
    return {
        "repositoryName": repository.name,
        "imageId": answered_id,
        "registryId": repository.registry_id,
        "signingStatuses": copy.deepcopy(getattr(image, "signing_statuses", [])),
    }


# ---------------------------------------------------------------------------
# Backend: pull time update exclusions
# ---------------------------------------------------------------------------


def _exclusions(self: ECRBackend) -> dict[str, datetime]:
    exclusions = getattr(self, "pull_time_update_exclusions", None)
    if exclusions is None:
        exclusions = self.pull_time_update_exclusions = {}
    return exclusions


def _principal_arn(value: Any) -> str:
    return _check_string("principalArn", value, PRINCIPAL_ARN_PATTERN, 0, PRINCIPAL_ARN_MAX)


def register_pull_time_update_exclusion(self: ECRBackend, principal_arn: Any) -> dict[str, Any]:
    principal_arn = _principal_arn(principal_arn)
    exclusions = _exclusions(self)
    if principal_arn in exclusions:
        raise ExclusionAlreadyExistsException(principal_arn, self.account_id)
    if len(exclusions) >= MAX_PULL_TIME_UPDATE_EXCLUSIONS:
        raise LimitExceededException(
            f"The registry with id '{self.account_id}' already has the maximum of "
            f"{MAX_PULL_TIME_UPDATE_EXCLUSIONS} pull time update exclusions"
        )
    exclusions[principal_arn] = datetime.now(timezone.utc)
    return {"principalArn": principal_arn, "createdAt": exclusions[principal_arn]}


def deregister_pull_time_update_exclusion(self: ECRBackend, principal_arn: Any) -> dict[str, Any]:
    principal_arn = _principal_arn(principal_arn)
    if _exclusions(self).pop(principal_arn, None) is None:
        raise ExclusionNotFoundException(principal_arn, self.account_id)
    return {"principalArn": principal_arn}


def list_pull_time_update_exclusions(
    self: ECRBackend, max_results: Any = None, next_token: Optional[str] = None
) -> tuple[list[str], Optional[str]]:
    """Pages in ARN order; maxResults 1..1000, 100 without it (the model)."""
    scope = ext._scope(
        "ListPullTimeUpdateExclusions", account=self.account_id, region=self.region_name
    )
    return ext.paginate(list(_exclusions(self)), lambda arn: arn, max_results, next_token, scope)


_recording_batch_get_image: Optional[Callable[..., dict[str, Any]]] = None


def batch_get_image(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    image_ids: Optional[list[dict[str, Any]]] = None,
    principal_arn: Optional[str] = None,
) -> dict[str, Any]:
    """BatchGetImage: moto_ecr_ext's, which records the pull, unless the
    caller is excluded ("Amazon ECR will not record the pull time if an
    excluded principal pulls an image"): then moto's own, which records
    nothing."""
    if principal_arn is not None and principal_arn in _exclusions(self):
        return ext._moto_batch_get_image(self, repository_name, registry_id, image_ids)
    return _recording_batch_get_image(self, repository_name, registry_id, image_ids)


def caller_principal_arn(response: ECRResponse) -> Optional[str]:
    """The IAM principal behind the request's access key, as moto knows it:
    the role of STS assumed-role credentials, or the IAM user owning the key.
    None for keys moto did not issue (e.g. the tests' "testing")."""
    iam = iam_backends[response.current_account][get_partition(response.region)]
    access_key = response.get_access_key()
    key = iam.access_keys.get(access_key)
    if key is None:
        return None
    if key.role_arn:
        return key.role_arn
    user = iam.get_user_from_access_key_id(access_key)
    return user.arn if user else None


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


def response_get_account_setting(self: ECRResponse) -> ActionResult:
    return ActionResult(self.ecr_backend.get_account_setting(self._get_param("name")))


def response_put_account_setting(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.put_account_setting(self._get_param("name"), self._get_param("value"))
    )


def response_put_signing_configuration(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.put_signing_configuration(self._get_param("signingConfiguration"))
    )


def response_get_signing_configuration(self: ECRResponse) -> ActionResult:
    return ActionResult(self.ecr_backend.get_signing_configuration())


def response_delete_signing_configuration(self: ECRResponse) -> ActionResult:
    return ActionResult(self.ecr_backend.delete_signing_configuration())


def response_describe_image_signing_status(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.describe_image_signing_status(
            repository_name=self._get_param("repositoryName"),
            image_id=self._get_param("imageId"),
            registry_id=self._get_param("registryId"),
        )
    )


def response_register_pull_time_update_exclusion(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.register_pull_time_update_exclusion(self._get_param("principalArn"))
    )


def response_deregister_pull_time_update_exclusion(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.deregister_pull_time_update_exclusion(self._get_param("principalArn"))
    )


def response_list_pull_time_update_exclusions(self: ECRResponse) -> ActionResult:
    arns, token = self.ecr_backend.list_pull_time_update_exclusions(
        max_results=self._get_param("maxResults"), next_token=self._get_param("nextToken")
    )
    return ext._with_token({"pullTimeUpdateExclusions": arns}, token)


def response_batch_get_image(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.batch_get_image(
            self._get_param("repositoryName"),
            self._get_param("registryId"),
            self._get_param("imageIds"),
            principal_arn=caller_principal_arn(self),
        )
    )


# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------

_BACKEND_METHODS: dict[str, Callable[..., Any]] = {
    "get_account_setting": get_account_setting,
    "put_account_setting": put_account_setting,
    "put_signing_configuration": put_signing_configuration,
    "get_signing_configuration": get_signing_configuration,
    "delete_signing_configuration": delete_signing_configuration,
    "describe_image_signing_status": describe_image_signing_status,
    "put_image": put_image,
    "register_pull_time_update_exclusion": register_pull_time_update_exclusion,
    "deregister_pull_time_update_exclusion": deregister_pull_time_update_exclusion,
    "list_pull_time_update_exclusions": list_pull_time_update_exclusions,
    "batch_get_image": batch_get_image,
}

# moto dispatches an ECR action to the ECRResponse method named after it.
_RESPONSE_METHODS: dict[str, Callable[..., Any]] = {
    "get_account_setting": response_get_account_setting,
    "put_account_setting": response_put_account_setting,
    "put_signing_configuration": response_put_signing_configuration,
    "get_signing_configuration": response_get_signing_configuration,
    "delete_signing_configuration": response_delete_signing_configuration,
    "describe_image_signing_status": response_describe_image_signing_status,
    "register_pull_time_update_exclusion": response_register_pull_time_update_exclusion,
    "deregister_pull_time_update_exclusion": response_deregister_pull_time_update_exclusion,
    "list_pull_time_update_exclusions": response_list_pull_time_update_exclusions,
    "batch_get_image": response_batch_get_image,
}

_installed = False


def install() -> None:
    """Patch moto's ECR classes (idempotent).  Called by moto_ecr_ext.install()
    once its own methods are in place: PutImage and BatchGetImage wrap its."""
    global _installed, _previous_put_image, _recording_batch_get_image
    if _installed:
        return
    _previous_put_image = ECRBackend.put_image
    _recording_batch_get_image = ECRBackend.batch_get_image
    for name, function in _BACKEND_METHODS.items():
        function.__name__ = name
        setattr(ECRBackend, name, function)
    for name, function in _RESPONSE_METHODS.items():
        function.__name__ = name
        setattr(ECRResponse, name, function)
    _installed = True
