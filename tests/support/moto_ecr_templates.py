"""Repository creation templates for moto's Amazon ECR backend, applied at import time.

moto (pinned in requirements.txt) does not implement CreateRepositoryCreationTemplate,
UpdateRepositoryCreationTemplate, DeleteRepositoryCreationTemplate nor
DescribeRepositoryCreationTemplates (it answers HTTP 500).  This module adds them, following
the botocore service model (``data/ecr/2015-09-21/service-2.json``) that moto serialises with:

- Requests are checked against the model's shapes: Prefix (1..256, the model's pattern, or
  ``ROOT``), RepositoryTemplateDescription (at most 256), RCTAppliedForList (required on create,
  values of RCTAppliedFor), EncryptionConfigurationForRepositoryCreationTemplate (encryptionType
  required, KmsKeyForRepositoryCreationTemplate 0..2048 with its pattern), TagList (Key and Value
  required; the member's documentation bounds keys to 128 and values to 256 characters),
  ImageTagMutability with ImageTagMutabilityExclusionFilters (the pairing CreateRepository
  checks), RepositoryPolicyText (0..10240, a JSON document), LifecyclePolicyTextFor
  RepositoryCreationTemplate (0..30720, checked as PutLifecyclePolicy checks a policy) and
  CustomRoleArn (at most 2048).
- ECR holds one template per prefix ("There is always an assumed / applied to the end of the
  prefix"): a second CreateRepositoryCreationTemplate answers TemplateAlreadyExistsException;
  Update and Delete of a prefix without template answer TemplateNotFoundException.
- UpdateRepositoryCreationTemplate changes the members it is given and keeps the others; an
  empty string clears description, repositoryPolicy, lifecyclePolicy and customRoleArn, an empty
  resourceTags list clears the tags.  imageTagMutability and its exclusion filters go together:
  a mode given without filters drops the filters the template had.
- A template reports imageTagMutability MUTABLE and encryptionType AES256 when created without
  them (the defaults the model's documentation names).
- DescribeRepositoryCreationTemplates pages (maxResults 1..1000, 100 by default; opaque tokens
  bound to the request) in prefix order; ``prefixes`` selects templates, and a prefix without
  template is left out (the operation's errors do not include TemplateNotFoundException).

Applying templates to repositories that pull-through cache, replication or create on push
would create is not modelled.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.models import ECRBackend
from moto.ecr.responses import ECRResponse

import moto_ecr_ext as ext

#: Shape Prefix: 1..256 characters of this pattern (the PullThroughCacheRule prefix pattern).
TEMPLATE_PREFIX_MIN, TEMPLATE_PREFIX_MAX = 1, 256
TEMPLATE_PREFIX_PATTERN = (
    r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
)
#: Shape RepositoryTemplateDescription.
DESCRIPTION_MAX = 256
#: Shape RCTAppliedFor.
APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
#: Shape EncryptionType and KmsKeyForRepositoryCreationTemplate.
ENCRYPTION_TYPES = ("AES256", "KMS", "KMS_DSSE")
KMS_KEY_MAX = 2048
KMS_KEY_PATTERN = r"^$|arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[a-z0-9-]+"
#: Member resourceTags: "Tag keys can have a maximum character length of 128
#: characters, and tag values can have a maximum length of 256 characters."
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256
#: Shapes RepositoryPolicyText and LifecyclePolicyTextForRepositoryCreationTemplate.
REPOSITORY_POLICY_MAX = 10240
LIFECYCLE_POLICY_MAX = 30720
CUSTOM_ROLE_ARN_MAX = 2048


class TemplateAlreadyExistsException(ServiceException):
    code = "TemplateAlreadyExistsException"

    def __init__(self, prefix: str):
        super().__init__(
            f"The repository creation template with the prefix '{prefix}' already exists. "
            "Specify a unique prefix and try again."
        )


class TemplateNotFoundException(ServiceException):
    code = "TemplateNotFoundException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The repository creation template with the prefix '{prefix}' can't be found "
            f"in the registry with id '{registry_id}'. Verify the registry ID and prefix and try again."
        )


for _exception in (TemplateAlreadyExistsException, TemplateNotFoundException):
    # moto finds the error shape through the module's service name.
    _exception.__module__ = "moto.ecr.exceptions"


class RepositoryCreationTemplate:
    """Shape RepositoryCreationTemplate."""

    _MEMBERS = (
        "prefix",
        "description",
        "encryptionConfiguration",
        "resourceTags",
        "imageTagMutability",
        "imageTagMutabilityExclusionFilters",
        "repositoryPolicy",
        "lifecyclePolicy",
        "appliedFor",
        "customRoleArn",
        "createdAt",
        "updatedAt",
    )

    def __init__(self, prefix: str, values: dict[str, Any]):
        now = datetime.now(timezone.utc)
        self.values: dict[str, Any] = {
            "prefix": prefix,
            "imageTagMutability": "MUTABLE",
            "encryptionConfiguration": {"encryptionType": "AES256"},
            "createdAt": now,
            "updatedAt": now,
        }
        self.update(values, now)

    def update(self, values: dict[str, Any], now: datetime) -> None:
        for member, value in values.items():
            if value in ("", []) and member != "appliedFor":
                self.values.pop(member, None)
            elif value is not None:
                self.values[member] = value
        self.values["updatedAt"] = now

    def to_dict(self) -> dict[str, Any]:
        return {m: self.values[m] for m in self._MEMBERS if self.values.get(m) is not None}


def _check_length(member: str, value: Any, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ext._invalid(member, "Member must be a string")
    if len(value) > high:
        raise ext._invalid(member, f"Member must have length less than or equal to {high}")


def _check_prefix(member: str, prefix: Any) -> str:
    ext._validate_pattern(
        member, prefix, TEMPLATE_PREFIX_PATTERN, TEMPLATE_PREFIX_MIN, TEMPLATE_PREFIX_MAX
    )
    return ext._prefix_key(prefix)


def _check_applied_for(value: Any, required: bool) -> None:
    if value is None:
        if required:
            raise ext._invalid("appliedFor", "Member must not be null")
        return
    if not isinstance(value, list):
        raise ext._invalid("appliedFor", "Member must be a list")
    for item in value:
        ext._validate_enum("appliedFor", item, APPLIED_FOR)


def _check_encryption(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ext._invalid("encryptionConfiguration", "Member must be a structure")
    ext._validate_enum(
        "encryptionConfiguration.encryptionType", value.get("encryptionType"), ENCRYPTION_TYPES
    )
    key = value.get("kmsKey")
    if key is not None:
        ext._validate_pattern("encryptionConfiguration.kmsKey", key, KMS_KEY_PATTERN, 0, KMS_KEY_MAX)
    if key and value["encryptionType"] == "AES256":
        # As CreateRepository: a KMS key goes with KMS encryption only.
        raise ext._invalid(
            "encryptionConfiguration.kmsKey",
            "KMS key should not be specified when encryption type is AES256",
        )


def _check_tags(tags: Any) -> None:
    if tags is None:
        return
    if not isinstance(tags, list):
        raise ext._invalid("resourceTags", "Member must be a list")
    for i, tag in enumerate(tags):
        member = f"resourceTags.{i + 1}"
        if not isinstance(tag, dict) or "Key" not in tag or "Value" not in tag:
            raise ext._invalid(member, "Key and Value must not be null")
        ext._validate_pattern(f"{member}.Key", tag["Key"], r"(?s).+", 1, TAG_KEY_MAX)
        ext._validate_pattern(f"{member}.Value", tag["Value"], r"(?s).*", 0, TAG_VALUE_MAX)


def _check_policies(repository_policy: Any, lifecycle_policy: Any) -> None:
    _check_length("repositoryPolicy", repository_policy, REPOSITORY_POLICY_MAX)
    _check_length("lifecyclePolicy", lifecycle_policy, LIFECYCLE_POLICY_MAX)
    if repository_policy:
        try:
            document = json.loads(repository_policy)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ext._invalid("repositoryPolicy", "Invalid repository policy provided")
    if lifecycle_policy:
        ext.parse_lifecycle_policy(lifecycle_policy)


def _check_members(values: dict[str, Any]) -> None:
    _check_length("description", values.get("description"), DESCRIPTION_MAX)
    _check_encryption(values.get("encryptionConfiguration"))
    _check_tags(values.get("resourceTags"))
    _check_policies(values.get("repositoryPolicy"), values.get("lifecyclePolicy"))
    _check_length("customRoleArn", values.get("customRoleArn"), CUSTOM_ROLE_ARN_MAX)


def _templates(self: ECRBackend) -> dict[str, RepositoryCreationTemplate]:
    templates = getattr(self, "repository_creation_templates", None)
    if templates is None:
        templates = self.repository_creation_templates = {}
    return templates


def _mutability(values: dict[str, Any], current: Optional[dict[str, Any]]) -> None:
    """Checks imageTagMutability and its filters as one pair: the request's when it names a
    mode, else the template's mode with the request's filters."""
    mode = values.get("imageTagMutability")
    filters = values.get("imageTagMutabilityExclusionFilters")
    if mode is None and filters is None:
        return
    if mode is None:
        mode = (current or {}).get("imageTagMutability", "MUTABLE")
    values["imageTagMutability"] = mode
    values["imageTagMutabilityExclusionFilters"] = ext._validate_tag_mutability(mode, filters) or []


def create_repository_creation_template(
    self: ECRBackend, prefix: str, values: dict[str, Any]
) -> RepositoryCreationTemplate:
    key = _check_prefix("prefix", prefix)
    _check_applied_for(values.get("appliedFor"), required=True)
    _check_members(values)
    _mutability(values, None)
    templates = _templates(self)
    if key in templates:
        raise TemplateAlreadyExistsException(prefix)
    template = RepositoryCreationTemplate(prefix, values)
    templates[key] = template
    return template


def update_repository_creation_template(
    self: ECRBackend, prefix: str, values: dict[str, Any]
) -> RepositoryCreationTemplate:
    key = _check_prefix("prefix", prefix)
    _check_applied_for(values.get("appliedFor"), required=False)
    _check_members(values)
    template = _templates(self).get(key)
    if template is None:
        raise TemplateNotFoundException(prefix, self.account_id)
    _mutability(values, template.values)
    template.update(values, datetime.now(timezone.utc))
    return template


def delete_repository_creation_template(self: ECRBackend, prefix: str) -> RepositoryCreationTemplate:
    key = _check_prefix("prefix", prefix)
    template = _templates(self).pop(key, None)
    if template is None:
        raise TemplateNotFoundException(prefix, self.account_id)
    return template


def describe_repository_creation_templates(
    self: ECRBackend,
    prefixes: Optional[list[str]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> tuple[list[RepositoryCreationTemplate], Optional[str]]:
    templates = _templates(self)
    if prefixes:
        keys = {_check_prefix("prefixes", p) for p in prefixes}
        selected = [t for k, t in templates.items() if k in keys]
    else:
        selected = list(templates.values())
    scope = ext._scope(
        "DescribeRepositoryCreationTemplates", prefixes=sorted(prefixes or []), account=self.account_id
    )
    return ext.paginate(
        selected, lambda t: ext._prefix_key(t.values["prefix"]), max_results, next_token, scope
    )


#: The members of Create/UpdateRepositoryCreationTemplateRequest besides prefix.
_REQUEST_MEMBERS = (
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
)


def _request_values(self: ECRResponse) -> dict[str, Any]:
    return {m: self._get_param(m) for m in _REQUEST_MEMBERS if self._get_param(m) is not None}


def _answer(self: ECRResponse, template: RepositoryCreationTemplate) -> ActionResult:
    # Shapes Create/Update/DeleteRepositoryCreationTemplateResponse.
    return ActionResult(
        {"registryId": self.ecr_backend.account_id, "repositoryCreationTemplate": template.to_dict()}
    )


def response_create_repository_creation_template(self: ECRResponse) -> ActionResult:
    backend = self.ecr_backend
    template = backend.create_repository_creation_template(
        self._get_param("prefix"), _request_values(self)
    )
    return _answer(self, template)


def response_update_repository_creation_template(self: ECRResponse) -> ActionResult:
    backend = self.ecr_backend
    template = backend.update_repository_creation_template(
        self._get_param("prefix"), _request_values(self)
    )
    return _answer(self, template)


def response_delete_repository_creation_template(self: ECRResponse) -> ActionResult:
    template = self.ecr_backend.delete_repository_creation_template(self._get_param("prefix"))
    return _answer(self, template)


def response_describe_repository_creation_templates(self: ECRResponse) -> ActionResult:
    templates, token = self.ecr_backend.describe_repository_creation_templates(
        prefixes=self._get_param("prefixes"),
        max_results=self._get_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    result = {
        "registryId": self.ecr_backend.account_id,
        "repositoryCreationTemplates": [t.to_dict() for t in templates],
    }
    return ext._with_token(result, token)


_BACKEND: dict[str, Callable[..., Any]] = {
    "create_repository_creation_template": create_repository_creation_template,
    "update_repository_creation_template": update_repository_creation_template,
    "delete_repository_creation_template": delete_repository_creation_template,
    "describe_repository_creation_templates": describe_repository_creation_templates,
}
_RESPONSES: dict[str, Callable[..., Any]] = {
    "create_repository_creation_template": response_create_repository_creation_template,
    "update_repository_creation_template": response_update_repository_creation_template,
    "delete_repository_creation_template": response_delete_repository_creation_template,
    "describe_repository_creation_templates": response_describe_repository_creation_templates,
}

_backend_init = ECRBackend.__init__


def _init_with_templates(self: ECRBackend, *args: Iterable[Any], **kwargs: Any) -> None:
    _backend_init(self, *args, **kwargs)
    # Keyed by prefix without trailing "/"; on the backend, so moto's reset clears them.
    self.repository_creation_templates = {}


def install() -> None:
    """Patch moto's ECR backend and response classes (idempotent)."""
    if getattr(ECRBackend, "_repository_creation_templates", False):
        return
    ECRBackend.__init__ = _init_with_templates  # type: ignore[method-assign]
    for name, function in _BACKEND.items():
        setattr(ECRBackend, name, function)
    for name, function in _RESPONSES.items():
        function.__name__ = name
        setattr(ECRResponse, name, function)
    ECRBackend._repository_creation_templates = True  # type: ignore[attr-defined]


install()
