"""Amazon ECR Public for the moto server, registered at import time.

moto (pinned in requirements.txt) has no ECR Public at all: no backend, no
URL pattern, and a request signed for ``ecr-public`` is not routed anywhere.
This module adds the control plane of the service as moto would: a backend
keyed by account and region (``ecrpublic_backends``, registered as the
package ``moto.ecrpublic`` so that moto's server, ``get_backend`` and
``POST /moto-api/reset`` treat it as one of their own), a response class
parsed and serialised with botocore's ``ecr-public`` 2020-10-30 model (JSON
1.1, target prefix ``SpencerFrontendService``), and errors of the model's
shapes, so that botocore and the Rust SDK parse them into the modelled
exceptions.  Requests reach it by their SigV4 credential scope
(service ``ecr-public``) at the moto endpoint, or by the host
``api.ecr-public.<region>.amazonaws.com``.

Operations (the constraints are the model's, checked on the server, since
the Rust SDK checks none of them):

* CreateRepository: ``repositoryName`` (2..205, the model's RepositoryName
  pattern), ``catalogData`` (below), ``tags``.  The response holds the
  repository and its catalog data (``{}`` without any, as the service
  answers).  ARN ``arn:aws:ecr-public::<account>:repository/<name>``, URI
  ``public.ecr.aws/<registry alias>/<name>``.  RepositoryAlreadyExistsException.
* DescribeRepositories: all repositories in name order, paged (``maxResults``
  1..1000, 100 by default, opaque ``nextToken``), or those of
  ``repositoryNames`` (1..100, not combinable with paging; a missing one:
  RepositoryNotFoundException).
* DeleteRepository (``force`` accepted; no image can be pushed here, so
  RepositoryNotEmptyException is never answered), with its catalog data,
  policy and tags.  Answers the deleted repository.
* PutRepositoryCatalogData / GetRepositoryCatalogData.  Catalog data:
  ``description`` (max 1024), ``aboutText`` and ``usageText`` (max 25600
  each), ``architectures`` and ``operatingSystems`` (at most 50 strings of
  1..50 characters; values outside the Gallery's badges (ARM, ARM 64, x86,
  x86-64; Linux, Windows) are kept, as the API reference says),
  ``logoImageBlob`` (base64 on the wire, at most 512000 bytes decoded; empty
  means no logo).  The logo is not returned, only ``logoUrl``, shaped as the
  service's (``https://d3g9o9u8re44ak.cloudfront.net/logo/<uuid>/<uuid>.png``)
  and derived from the registry, repository and image content: the same
  image gives the same URL, another image another URL.  A put replaces the
  catalog data with the one sent (members left out are cleared, the logo
  too): the API reference says "Creates or updates" without telling which
  members survive, and a client that always sends its whole catalog data
  (which it must for the logo, since it cannot read it back) is right under
  either reading.  ``marketplaceCertified`` is never returned.  A repository
  always has catalog data (possibly empty), so
  RepositoryCatalogDataNotFoundException is never answered.
* SetRepositoryPolicy (``policyText`` up to 10240 characters, a JSON object
  with a ``Statement``; ``force`` accepted), GetRepositoryPolicy,
  DeleteRepositoryPolicy (answers the deleted policy);
  RepositoryPolicyNotFoundException when there is none.
* TagResource / UntagResource / ListTagsForResource on a repository ARN.
  Keys 1..128, values 0..256 (else InvalidTagParameterException), at most 50
  tags on a repository (TooManyTagsException, the limit the exception's
  documentation gives; nothing is applied then).  An ARN that is not one of
  this service's repository ARNs: InvalidParameterException; an unknown
  repository: RepositoryNotFoundException.
* DescribeRegistries (the caller's registry: ARN
  ``arn:aws:ecr-public::<account>:registry/<account>``, not verified, one
  ACTIVE primary default alias), GetRegistryCatalogData and
  PutRegistryCatalogData (``displayName`` 0..100).

The registry alias is fixed per account: eight characters, letters and digits
alternating as the service's default aliases are (``o5l1c9o9``), derived
from the account id.  ``registryId``, when given, must be 12 digits; one
other than the caller's account names a registry the caller cannot see, so
its repositories are not found (and listing it finds none).  ECR Public's
control plane is in us-east-1 only: a request signed for any other region is
answered UnsupportedCommandException ("The action isn't supported in this
Region."), the model's error for it.  Each account has its own registry
(see ``moto_sts_ext`` for reaching another account).

The launcher's fault switch and call counters (``EcrExtMiddleware`` of
``moto_ecr_ext``) know the service as ``ecr-public``: faults with
``"service": "ecr-public"`` (server errors answer the model's
ServerException) and ``GET /moto-api/ecr-ext/calls?service=ecr-public``.

Constraint violations are answered InvalidParameterException, worded as
Amazon ECR words them: "Invalid parameter at '<member>' failed to satisfy
constraint: '...'".  Not implemented: the image and layer operations
(BatchCheckLayerAvailability, PutImage, DescribeImages, ...) and
GetAuthorizationToken.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys
import types
import uuid
from datetime import datetime, timezone
from typing import Any, Optional

from moto import backend_index
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, BaseResponse, EmptyResult

__all__ = ["ECRPublicBackend", "ECRPublicResponse", "ecrpublic_backends", "install"]

SERVICE = "ecr-public"
PACKAGE = "moto.ecrpublic"
#: The only Region with ECR Public's control plane.
HOME_REGION = "us-east-1"
#: X-Amz-Target prefix of the JSON protocol (the model's targetPrefix).
TARGET_PREFIX = "SpencerFrontendService"

# Shapes of the ecr-public 2020-10-30 model.
REPOSITORY_NAME_PATTERN = r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
REPOSITORY_NAME_MIN, REPOSITORY_NAME_MAX = 2, 205
REGISTRY_ID_PATTERN = r"[0-9]{12}"
DESCRIPTION_MAX = 1024
ABOUT_TEXT_MAX = USAGE_TEXT_MAX = 25600
LIST_MAX = 50  # ArchitectureList, OperatingSystemList
ITEM_MIN, ITEM_MAX = 1, 50  # Architecture, OperatingSystem
LOGO_MAX = 512000
POLICY_MAX = 10240
TAG_KEY_MIN, TAG_KEY_MAX, TAG_VALUE_MAX = 1, 128, 256
TAG_LIST_MAX = 200
#: TooManyTagsException: "The maximum number of tags that can be applied to a
#: repository is 50."
TAGS_PER_REPOSITORY = 50
MAX_RESULTS_MIN, MAX_RESULTS_MAX, DEFAULT_MAX_RESULTS = 1, 1000, 100
REPOSITORY_NAMES_MAX = 100
DISPLAY_NAME_MAX = 100
LOGO_HOST = "https://d3g9o9u8re44ak.cloudfront.net"


# ---------------------------------------------------------------------------
# Errors (shapes of the model)
# ---------------------------------------------------------------------------


class InvalidParameterException(ServiceException):
    code = "InvalidParameterException"


class InvalidTagParameterException(ServiceException):
    code = "InvalidTagParameterException"


class TooManyTagsException(ServiceException):
    code = "TooManyTagsException"


class RepositoryAlreadyExistsException(ServiceException):
    code = "RepositoryAlreadyExistsException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"The repository with name '{name}' already exists in the registry with id '{registry_id}'"
        )


class RepositoryNotFoundException(ServiceException):
    code = "RepositoryNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
        )


class RepositoryPolicyNotFoundException(ServiceException):
    code = "RepositoryPolicyNotFoundException"

    def __init__(self, name: str, registry_id: str):
        super().__init__(
            "Repository policy does not exist for the repository with name "
            f"'{name}' in the registry with id '{registry_id}'"
        )


class UnsupportedCommandException(ServiceException):
    code = "UnsupportedCommandException"
    message = "The action isn't supported in this Region."


for _exception in (
    InvalidParameterException,
    InvalidTagParameterException,
    TooManyTagsException,
    RepositoryAlreadyExistsException,
    RepositoryNotFoundException,
    RepositoryPolicyNotFoundException,
    UnsupportedCommandException,
):
    # moto finds an exception's service model by its package.
    _exception.__module__ = PACKAGE + ".exceptions"


def _invalid(member: str, constraint: str) -> InvalidParameterException:
    return InvalidParameterException(
        f"Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'"
    )


def _check_string(member: str, value: Any, min_len: int = 0, max_len: Optional[int] = None,
                   pattern: Optional[str] = None) -> None:
    if not isinstance(value, str):
        raise _invalid(member, "Member must be a string")
    if len(value) < min_len:
        raise _invalid(member, f"Member must have length greater than or equal to {min_len}")
    if max_len is not None and len(value) > max_len:
        raise _invalid(member, f"Member must have length less than or equal to {max_len}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise _invalid(member, f"Member must satisfy regular expression pattern: {pattern}")


def _check_repository_name(value: Any, member: str = "repositoryName") -> None:
    _check_string(member, value, REPOSITORY_NAME_MIN, REPOSITORY_NAME_MAX, REPOSITORY_NAME_PATTERN)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def registry_alias(account_id: str) -> str:
    """The account's default registry alias: letter, digit, letter, ... (8)."""
    digest = hashlib.sha256(f"ecr-public:{account_id}".encode()).digest()
    letters, digits = "abcdefghijklmnopqrstuvwxyz", "0123456789"
    return "".join(
        (letters if i % 2 == 0 else digits)[b % (26 if i % 2 == 0 else 10)]
        for i, b in enumerate(digest[:8])
    )


def validate_catalog_data(data: Any, member: str = "catalogData") -> dict[str, Any]:
    """The catalog data to store from a RepositoryCatalogDataInput: the text
    members as sent, the logo decoded to bytes (None for no logo)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _invalid(member, "Member must be a structure")
    stored: dict[str, Any] = {}
    for name, limit in (("description", DESCRIPTION_MAX), ("aboutText", ABOUT_TEXT_MAX),
                        ("usageText", USAGE_TEXT_MAX)):
        if data.get(name) is not None:
            _check_string(f"{member}.{name}", data[name], 0, limit)
            stored[name] = data[name]
    for name in ("architectures", "operatingSystems"):
        values = data.get(name)
        if values is None:
            continue
        if not isinstance(values, list):
            raise _invalid(f"{member}.{name}", "Member must be a list")
        if len(values) > LIST_MAX:
            raise _invalid(f"{member}.{name}", f"Member must have length less than or equal to {LIST_MAX}")
        for value in values:
            _check_string(f"{member}.{name}.member", value, ITEM_MIN, ITEM_MAX)
        stored[name] = list(values)
    blob = data.get("logoImageBlob")
    if blob is not None:
        if not isinstance(blob, str):
            raise _invalid(f"{member}.logoImageBlob", "Member must be a base64-encoded blob")
        try:
            logo = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"{member}.logoImageBlob", "Member must be a base64-encoded blob")
        if len(logo) > LOGO_MAX:
            raise _invalid(
                f"{member}.logoImageBlob", f"Member must have length less than or equal to {LOGO_MAX}"
            )
        if logo:
            stored["logo"] = logo
    return stored


class PublicRepository:
    def __init__(self, account_id: str, name: str, catalog: dict[str, Any], tags: dict[str, Any]):
        self.registry_id = account_id
        self.name = name
        self.arn = f"arn:aws:ecr-public::{account_id}:repository/{name}"
        self.uri = f"public.ecr.aws/{registry_alias(account_id)}/{name}"
        self.created_at = datetime.now(timezone.utc)
        self.catalog = catalog
        self.policy: Optional[str] = None
        self.tags = tags  # key -> value (None when sent without one)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repositoryArn": self.arn,
            "registryId": self.registry_id,
            "repositoryName": self.name,
            "repositoryUri": self.uri,
            "createdAt": self.created_at,
        }

    def logo_url(self) -> Optional[str]:
        logo = self.catalog.get("logo")
        if logo is None:
            return None
        owner = uuid.uuid5(uuid.NAMESPACE_URL, self.arn)
        image = uuid.uuid5(owner, hashlib.sha256(logo).hexdigest())
        return f"{LOGO_HOST}/logo/{owner}/{image}.png"

    def catalog_data(self) -> dict[str, Any]:
        """RepositoryCatalogData as the service answers it."""
        data = {k: v for k, v in self.catalog.items() if k != "logo"}
        url = self.logo_url()
        if url is not None:
            data["logoUrl"] = url
        return data

    def tag_list(self) -> list[dict[str, Any]]:
        return [
            {"Key": key} if value is None else {"Key": key, "Value": value}
            for key, value in self.tags.items()
        ]


def _tags_of(tags: Any) -> dict[str, Any]:
    if tags is None:
        return {}
    if not isinstance(tags, list):
        raise _invalid("tags", "Member must be a list")
    if len(tags) > TAG_LIST_MAX:
        raise _invalid("tags", f"Member must have length less than or equal to {TAG_LIST_MAX}")
    result: dict[str, Any] = {}
    for tag in tags:
        key = tag.get("Key") if isinstance(tag, dict) else None
        value = tag.get("Value") if isinstance(tag, dict) else None
        if (
            not isinstance(key, str)
            or not TAG_KEY_MIN <= len(key) <= TAG_KEY_MAX
            or (value is not None and (not isinstance(value, str) or len(value) > TAG_VALUE_MAX))
        ):
            raise InvalidTagParameterException(
                "Tag keys can have a maximum character length of 128 characters, "
                "and tag values can have a maximum length of 256 characters."
            )
        result[key] = value
    return result


def _too_many_tags() -> TooManyTagsException:
    return TooManyTagsException(
        f"The maximum number of tags that can be applied to a repository is {TAGS_PER_REPOSITORY}."
    )


class ECRPublicBackend(BaseBackend):
    """One account's public registry (kept per region, as moto keys every
    backend; only us-east-1's is reachable)."""

    def __init__(self, region_name: str, account_id: str):
        super().__init__(region_name, account_id)
        self.repositories: dict[str, PublicRepository] = {}
        self.registry_catalog: dict[str, Any] = {}

    @property
    def _url_module(self) -> Any:  # type: ignore[override]
        return sys.modules[PACKAGE + ".urls"]

    # -- registry ---------------------------------------------------------

    def _registry(self, registry_id: Optional[str]) -> str:
        if registry_id is not None:
            _check_string("registryId", registry_id, pattern=REGISTRY_ID_PATTERN)
            return registry_id
        return self.account_id

    def _repository(self, name: Any, registry_id: Optional[str]) -> PublicRepository:
        _check_repository_name(name)
        registry = self._registry(registry_id)
        repository = self.repositories.get(name) if registry == self.account_id else None
        if repository is None:
            raise RepositoryNotFoundException(name, registry)
        return repository

    def describe_registries(self) -> list[dict[str, Any]]:
        alias = registry_alias(self.account_id)
        return [
            {
                "registryId": self.account_id,
                "registryArn": f"arn:aws:ecr-public::{self.account_id}:registry/{self.account_id}",
                "registryUri": f"public.ecr.aws/{alias}",
                "verified": False,
                "aliases": [
                    {
                        "name": alias,
                        "status": "ACTIVE",
                        "primaryRegistryAlias": True,
                        "defaultRegistryAlias": True,
                    }
                ],
            }
        ]

    def put_registry_catalog_data(self, display_name: Any) -> dict[str, Any]:
        if display_name is not None:
            _check_string("displayName", display_name, 0, DISPLAY_NAME_MAX)
            self.registry_catalog["displayName"] = display_name
        return dict(self.registry_catalog)

    # -- repositories -----------------------------------------------------

    def create_repository(self, name: Any, catalog: Any, tags: Any) -> PublicRepository:
        _check_repository_name(name)
        stored = validate_catalog_data(catalog)
        tag_map = _tags_of(tags)
        if len(tag_map) > TAGS_PER_REPOSITORY:
            raise _too_many_tags()
        if name in self.repositories:
            raise RepositoryAlreadyExistsException(name, self.account_id)
        repository = PublicRepository(self.account_id, name, stored, tag_map)
        self.repositories[name] = repository
        return repository

    def describe_repositories(
        self, registry_id: Optional[str], names: Any, max_results: Any, next_token: Any
    ) -> tuple[list[PublicRepository], Optional[str]]:
        registry = self._registry(registry_id)
        if names is not None:
            if max_results is not None or next_token is not None:
                raise InvalidParameterException(
                    "Invalid parameter at 'repositoryNames': maxResults and nextToken "
                    "cannot be used together with repositoryNames"
                )
            if not isinstance(names, list) or not 1 <= len(names) <= REPOSITORY_NAMES_MAX:
                raise _invalid(
                    "repositoryNames",
                    f"Member must have length between 1 and {REPOSITORY_NAMES_MAX}",
                )
            found = []
            for name in names:
                _check_repository_name(name, "repositoryNames.member")
                found.append(self._repository(name, registry))
            return found, None
        if max_results is None:
            limit = DEFAULT_MAX_RESULTS
        elif not isinstance(max_results, int) or isinstance(max_results, bool):
            raise _invalid("maxResults", "Member must be an integer")
        elif max_results < MAX_RESULTS_MIN:
            raise _invalid("maxResults", f"Member must have value greater than or equal to {MAX_RESULTS_MIN}")
        elif max_results > MAX_RESULTS_MAX:
            raise _invalid("maxResults", f"Member must have value less than or equal to {MAX_RESULTS_MAX}")
        else:
            limit = max_results
        after = _read_token(next_token, registry) if next_token is not None else None
        if registry != self.account_id:
            return [], None
        ordered = sorted(self.repositories)
        if after is not None:
            ordered = [name for name in ordered if name > after]
        page = ordered[:limit]
        token = _make_token(registry, page[-1]) if len(ordered) > limit else None
        return [self.repositories[name] for name in page], token

    def delete_repository(self, name: Any, registry_id: Optional[str]) -> PublicRepository:
        repository = self._repository(name, registry_id)
        del self.repositories[repository.name]
        return repository

    def put_repository_catalog_data(self, name: Any, registry_id: Optional[str], catalog: Any) -> PublicRepository:
        repository = self._repository(name, registry_id)
        if catalog is None:
            raise _invalid("catalogData", "Member must not be null")
        repository.catalog = validate_catalog_data(catalog)
        return repository

    def set_repository_policy(self, name: Any, registry_id: Optional[str], policy: Any) -> PublicRepository:
        repository = self._repository(name, registry_id)
        if policy is None:
            raise _invalid("policyText", "Member must not be null")
        _check_string("policyText", policy, 0, POLICY_MAX)
        try:
            document = json.loads(policy)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "Statement" not in document:
            raise _invalid("PolicyText", "Invalid repository policy provided")
        repository.policy = policy
        return repository

    def get_repository_policy(self, name: Any, registry_id: Optional[str]) -> PublicRepository:
        repository = self._repository(name, registry_id)
        if repository.policy is None:
            raise RepositoryPolicyNotFoundException(repository.name, repository.registry_id)
        return repository

    def delete_repository_policy(self, name: Any, registry_id: Optional[str]) -> str:
        repository = self.get_repository_policy(name, registry_id)
        policy, repository.policy = repository.policy, None
        return policy  # type: ignore[return-value]

    # -- tags -------------------------------------------------------------

    def _by_arn(self, arn: Any) -> PublicRepository:
        _check_string("resourceArn", arn, 1, 2048)
        match = re.fullmatch(r"arn:aws:ecr-public::([0-9]{12}):repository/(.+)", arn)
        if match is None:
            raise _invalid("resourceArn", f"Invalid ARN: {arn}")
        return self._repository(match.group(2), match.group(1))

    def tag_resource(self, arn: Any, tags: Any) -> None:
        repository = self._by_arn(arn)
        if tags is None:
            raise _invalid("tags", "Member must not be null")
        merged = {**repository.tags, **_tags_of(tags)}
        if len(merged) > TAGS_PER_REPOSITORY:
            raise _too_many_tags()
        repository.tags = merged

    def untag_resource(self, arn: Any, keys: Any) -> None:
        repository = self._by_arn(arn)
        if not isinstance(keys, list):
            raise _invalid("tagKeys", "Member must not be null")
        if len(keys) > TAG_LIST_MAX:
            raise _invalid("tagKeys", f"Member must have length less than or equal to {TAG_LIST_MAX}")
        for key in keys:
            if not isinstance(key, str) or not TAG_KEY_MIN <= len(key) <= TAG_KEY_MAX:
                raise InvalidTagParameterException(
                    "Tag keys can have a maximum character length of 128 characters, "
                    "and tag values can have a maximum length of 256 characters."
                )
        for key in keys:
            repository.tags.pop(key, None)

    def list_tags_for_resource(self, arn: Any) -> list[dict[str, Any]]:
        return self._by_arn(arn).tag_list()


def _make_token(registry: str, last: str) -> str:
    raw = json.dumps({"registryId": registry, "after": last}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _read_token(token: Any, registry: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if decoded["registryId"] == registry and isinstance(decoded["after"], str):
            return decoded["after"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise InvalidParameterException("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid NextToken'")


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


class ECRPublicResponse(BaseResponse):
    def __init__(self) -> None:
        super().__init__(service_name=SERVICE)

    @property
    def backend(self) -> ECRPublicBackend:
        if self.region != HOME_REGION:
            raise UnsupportedCommandException()
        return ecrpublic_backends[self.current_account][self.region]

    def create_repository(self) -> ActionResult:
        repository = self.backend.create_repository(
            self._get_param("repositoryName"), self._get_param("catalogData"), self._get_param("tags")
        )
        return ActionResult({"repository": repository.to_dict(), "catalogData": repository.catalog_data()})

    def describe_repositories(self) -> ActionResult:
        repositories, token = self.backend.describe_repositories(
            self._get_param("registryId"),
            self._get_param("repositoryNames"),
            self._get_param("maxResults"),
            self._get_param("nextToken"),
        )
        result: dict[str, Any] = {"repositories": [r.to_dict() for r in repositories]}
        if token is not None:
            result["nextToken"] = token
        return ActionResult(result)

    def delete_repository(self) -> ActionResult:
        repository = self.backend.delete_repository(
            self._get_param("repositoryName"), self._get_param("registryId")
        )
        return ActionResult({"repository": repository.to_dict()})

    def get_repository_catalog_data(self) -> ActionResult:
        repository = self.backend._repository(self._get_param("repositoryName"), self._get_param("registryId"))
        return ActionResult({"catalogData": repository.catalog_data()})

    def put_repository_catalog_data(self) -> ActionResult:
        repository = self.backend.put_repository_catalog_data(
            self._get_param("repositoryName"), self._get_param("registryId"), self._get_param("catalogData")
        )
        return ActionResult({"catalogData": repository.catalog_data()})

    def set_repository_policy(self) -> ActionResult:
        repository = self.backend.set_repository_policy(
            self._get_param("repositoryName"), self._get_param("registryId"), self._get_param("policyText")
        )
        return ActionResult(self._policy_result(repository, repository.policy))

    def get_repository_policy(self) -> ActionResult:
        repository = self.backend.get_repository_policy(
            self._get_param("repositoryName"), self._get_param("registryId")
        )
        return ActionResult(self._policy_result(repository, repository.policy))

    def delete_repository_policy(self) -> ActionResult:
        name, registry = self._get_param("repositoryName"), self._get_param("registryId")
        policy = self.backend.delete_repository_policy(name, registry)
        repository = self.backend._repository(name, registry)
        return ActionResult(self._policy_result(repository, policy))

    @staticmethod
    def _policy_result(repository: PublicRepository, policy: Optional[str]) -> dict[str, Any]:
        return {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "policyText": policy,
        }

    def tag_resource(self) -> ActionResult:
        self.backend.tag_resource(self._get_param("resourceArn"), self._get_param("tags"))
        return EmptyResult()

    def untag_resource(self) -> ActionResult:
        self.backend.untag_resource(self._get_param("resourceArn"), self._get_param("tagKeys"))
        return EmptyResult()

    def list_tags_for_resource(self) -> ActionResult:
        return ActionResult({"tags": self.backend.list_tags_for_resource(self._get_param("resourceArn"))})

    def describe_registries(self) -> ActionResult:
        # One registry per account: a page of one, whatever maxResults says.
        max_results = self._get_param("maxResults")
        if max_results is not None and not MAX_RESULTS_MIN <= int(max_results) <= MAX_RESULTS_MAX:
            raise _invalid("maxResults", f"Member must have value between {MAX_RESULTS_MIN} and {MAX_RESULTS_MAX}")
        return ActionResult({"registries": self.backend.describe_registries()})

    def get_registry_catalog_data(self) -> ActionResult:
        return ActionResult({"registryCatalogData": dict(self.backend.registry_catalog)})

    def put_registry_catalog_data(self) -> ActionResult:
        data = self.backend.put_registry_catalog_data(self._get_param("displayName"))
        return ActionResult({"registryCatalogData": data})


# ---------------------------------------------------------------------------
# Registration with moto
# ---------------------------------------------------------------------------

URL_BASES = [
    r"https?://api\.ecr-public\.(.+)\.amazonaws\.com",
    r"https?://ecr-public\.(.+)\.amazonaws\.com",
]

ecrpublic_backends = BackendDict(ECRPublicBackend, SERVICE)


def install() -> None:
    """Register ``moto.ecrpublic`` (backends, urls, exceptions) and route
    its hosts to it."""
    package = sys.modules.get(PACKAGE)
    if package is None:
        package = types.ModuleType(PACKAGE)
        package.__path__ = []  # a package, so that submodules import
        sys.modules[PACKAGE] = package
    package.ecrpublic_backends = ecrpublic_backends  # type: ignore[attr-defined]
    urls = types.ModuleType(PACKAGE + ".urls")
    urls.url_bases = URL_BASES  # type: ignore[attr-defined]
    urls.url_paths = {"{0}/$": ECRPublicResponse.dispatch}  # type: ignore[attr-defined]
    sys.modules[PACKAGE + ".urls"] = urls
    exceptions = types.ModuleType(PACKAGE + ".exceptions")
    for exception in (
        InvalidParameterException,
        InvalidTagParameterException,
        TooManyTagsException,
        RepositoryAlreadyExistsException,
        RepositoryNotFoundException,
        RepositoryPolicyNotFoundException,
        UnsupportedCommandException,
    ):
        setattr(exceptions, exception.__name__, exception)
    sys.modules[PACKAGE + ".exceptions"] = exceptions
    # The launcher's fault switch and call counters (moto_ecr_ext's
    # EcrExtMiddleware) tell services apart by X-Amz-Target prefix.
    import moto_ecr_ext

    moto_ecr_ext.TARGET_PREFIXES.setdefault(TARGET_PREFIX, SERVICE)
    moto_ecr_ext.SERVER_ERROR_CODES.setdefault(SERVICE, "ServerException")
    patterns = backend_index.backend_url_patterns
    if not any(service == SERVICE for service, _ in patterns):
        # Before ecr's patterns, which do not match these hosts anyway.
        patterns[:0] = [(SERVICE, re.compile(base)) for base in URL_BASES]


install()
