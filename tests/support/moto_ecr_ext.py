"""Additions to moto's Amazon ECR backend, applied at import time.

moto (pinned in requirements.txt) implements most of the ECR control plane but
lacks a few things this project's tests need.  Everything added here follows
the Amazon ECR API reference (and the botocore service model that moto itself
serialises with), so that a client under test cannot tell these parts from the
real service.  The additions are written as moto would write them, so that
they can be offered upstream:

1. Paging.  ``maxResults`` (1..1000) and ``nextToken`` for DescribeRepositories,
   DescribeImages, ListImages, DescribeImageScanFindings and
   DescribePullThroughCacheRules.  Without ``maxResults`` each returns at most
   100 results, as the API reference says.  ``maxResults``/``nextToken`` cannot
   be combined with ``repositoryNames`` (DescribeRepositories) or ``imageIds``
   (DescribeImages).  Tokens are opaque, signed, bound to the request they
   continue, and name the last item returned (not an offset), so items
   created or deleted between two pages neither shift nor break the listing.
   Pages are ordered by repository name, image digest (ListImages: digest,
   then tag), finding position, and rule prefix.
2. ``filter.tagStatus`` (and ``filter.imageStatus``) for DescribeImages and
   ListImages.
3. Pull through cache rules: Create / Describe / Update / Delete / Validate,
   with the request constraints of the API reference, upstream registry
   inference from ``upstreamRegistryUrl``, credentials required by the
   upstream registries that need them, the Secrets Manager secret looked up in
   moto's own Secrets Manager, and the quota of 50 rules per registry.
4. PutImage into a repository that does not exist answers
   RepositoryNotFoundException (moto raised a bare Exception, i.e. HTTP 500).
5. Registry replication: PutReplicationConfiguration with several rules
   (moto refused more than one), validated as the API reference and the user
   guide describe it: at most 10 rules and 25 unique destinations across
   them, 1..100 repository filters per rule, no destination equal to the
   source registry and Region or in another partition; a rule's
   ``deleteReplication`` (``enabled`` required) is stored and returned as
   sent.  An empty ``rules`` list clears replication.  DescribeRegistry
   returns the configuration.
6. Image scans.  moto binds an injected scan result to the exact imageId of
   the first DescribeImageScanFindings call, so the same scan read by digest
   after being read by tag took the next injected result (or the default).
   Here a scan (StartImageScan, or scan on push) gets its result when it is
   first read, in any form: the next result injected through
   /moto-api/static/ecr/scan-finding-results for the image (matched as moto
   matches them, by any of the image's tags), else moto's default finding.
   DescribeImageScanFindings by tag or by digest and DescribeImages
   (``imageScanStatus``, ``imageScanFindingsSummary``, only for scanned
   images) then report that result; the next scan takes the next one.
7. Scan on push: PutImage of a new image starts a basic scan when the registry
   scan type is BASIC and the repository has ``scanOnPush`` or matches a
   SCAN_ON_PUSH rule of the registry scanning configuration.
   Scan events: as in ECR, every completed scan is announced on the default
   EventBridge bus as an ``ECR Image Scan`` event (source ``aws.ecr``; detail
   scan-status, repository-name, image-digest, image-tags and
   finding-severity-counts), which moto's events backend delivers to the
   targets of matching rules (SQS among them).  Announcing a scan binds its
   result, so results meant for it must be injected before the scan.
8. Lifecycle policy preview: StartLifecyclePolicyPreview evaluates the policy
   (given, or the repository's) at once, following the evaluation rules of
   the ECR user guide; GetLifecyclePolicyPreview pages the result (status
   COMPLETE), filtered by ``filter.tagStatus`` or ``imageIds``.
   Archive rules: PutLifecyclePolicy and the preview accept and check the
   ``transition`` action (``targetStorageClass: archive``), ``storageClass``
   and the count types ``sinceImagePulled`` / ``sinceImageTransitioned`` as
   the user guide combines them (see ``parse_lifecycle_policy``), and the
   preview archives or expires images by their storage class, last pull,
   archive and restore times.  Images have a status: UpdateImageStorageClass
   archives (``ARCHIVED``, ``lastArchivedAt``) and restores (``ACTIVE`` at
   once, ``lastActivatedAt``; Amazon ECR passes through ``ACTIVATING``), and
   BatchGetImage of an active image records ``lastRecordedPullTime``;
   DescribeImages returns these members, and without ``filter.imageStatus``
   DescribeImages and ListImages list active images only, as the model says.
9. PutImageScanningConfiguration without ``scanOnPush`` turns scan on push
   off: the member defaults to false (API reference), and the AWS SDKs leave a
   false boolean out, sending ``imageScanningConfiguration: {}``.  moto kept
   the previous setting, so scan on push could be turned on but never off.
10. Repository names follow the model's RepositoryName (separators ``.``,
   ``_``, ``__`` and runs of ``-``; length 2..256): moto refused ``a__b``.
11. Tag mutability exclusions: CreateRepository and PutImageTagMutability
   check ``imageTagMutabilityExclusionFilters`` against the model (1..5
   filters, filterType WILDCARD, filter pattern and length) and its pairing
   with the mode (required with IMMUTABLE_WITH_EXCLUSION and
   MUTABLE_WITH_EXCLUSION, refused with MUTABLE and IMMUTABLE).
   PutImageTagMutability stores the mode as sent and returns the filters.
   PutImage matches the filters as wildcards over the whole tag (moto took
   them for regular expressions matched at the start of the tag).
12. Registry policy: PutRegistryPolicy accepts every ECR action (``ecr:``
   followed by an action name or a wildcard), as ECR does with the registry
   policy scope V2, the default ("Private registry permissions in Amazon
   ECR": "V2 is the expanded registry policy scope that includes all ECR
   permissions"); moto allowed only ecr:CreateRepository and
   ecr:ReplicateImage, refusing ecr:BatchImportUpstreamImage, which the pull
   through cache needs.  Actions of other services are refused with ECR's
   "Invalid registry policy provided".  ``policyText`` longer than the
   model's RegistryPolicyText (10,240 characters) is refused; moto stored it.
13. Repository creation templates: Create / Update / Delete /
   DescribeRepositoryCreationTemplates (moto answered HTTP 500), as the
   model has them: Prefix (1..256, its pattern, or ``ROOT``; ECR assumes a
   trailing ``/``), RCTAppliedFor, RepositoryTemplateDescription (256),
   EncryptionConfigurationForRepositoryCreationTemplate (a KMS key ARN, no
   key with AES256), resourceTags (keys 128, values 256, both required),
   the exclusion filters paired with the mode (as CreateRepository),
   RepositoryPolicyText (10,240, a JSON document),
   LifecyclePolicyTextForRepositoryCreationTemplate (30,720, checked as
   PutLifecyclePolicy checks a policy) and CustomRoleArn (2048).  One
   template per prefix (TemplateAlreadyExistsException; Update and Delete of
   a prefix without one: TemplateNotFoundException).  Update changes the
   members it is given and keeps the others; an empty string clears
   description, repositoryPolicy, lifecyclePolicy and customRoleArn, an
   empty resourceTags list the tags, and a mode given without filters drops
   the filters.  Without them a template reports imageTagMutability MUTABLE
   and encryptionType AES256.  Describe pages in prefix order (maxResults
   1..1000, 100 by default) and selects by ``prefixes``, leaving out
   prefixes without a template (its errors have no
   TemplateNotFoundException).  Applying templates to the repositories that
   pull through cache, replication or create on push would create is not
   modelled.
14. Registry settings, in ``moto_ecr_registry_settings`` (installed by
   ``install`` below): Get/PutAccountSetting, managed signing (Put / Get /
   DeleteSigningConfiguration, DescribeImageSigningStatus) and pull time
   update exclusions (Register / Deregister / List, honoured by
   BatchGetImage).  See that module's docstring.

Requests that break a constraint of the model (range, length, pattern, enum)
are answered as Amazon ECR answers them: InvalidParameterException, worded
"Invalid parameter at '<member>' failed to satisfy constraint: '...'".

Not part of the ECR API, and so kept apart at the end of this module:
``EcrExtMiddleware``, a WSGI middleware for the moto server that adds a
runtime fault switch (throttling, server errors, latency) and per-operation
call counters under ``/moto-api/ecr-ext/``.  See its docstring.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional
from urllib.parse import parse_qs

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecr.exceptions import (
    ImageAlreadyExistsException,
    InvalidParameterException,
    LifecyclePolicyNotFoundException,
    LimitExceededException,
    ScanNotFoundException,
)
from moto.ecr import models as moto_ecr_models
from moto.ecr.models import ECRBackend, Image, Repository
from moto.ecr import policy_validation as moto_policy_validation
from moto.ecr.policy_validation import EcrLifecyclePolicyValidator
from moto.ecr.responses import ECRResponse
from moto.iam.exceptions import MalformedPolicyDocument
from moto.utilities.utils import get_partition

__all__ = [
    "EcrExtMiddleware",
    "LifecycleImage",
    "LifecyclePolicyPreview",
    "PullThroughCacheRule",
    "evaluate_lifecycle_policy",
    "install",
]

# ---------------------------------------------------------------------------
# Constants taken from the API reference / botocore service model (ecr 2015-09-21)
# ---------------------------------------------------------------------------

#: "If this parameter is not used, then <Operation> returns up to 100 results
#: and a nextToken value, if applicable." (same for all five operations)
DEFAULT_MAX_RESULTS = 100
#: "This value can be between 1 and 1000."
MAX_MAX_RESULTS = 1000

#: Shape PullThroughCacheRuleRepositoryPrefix: length 2..30, this pattern.
#: Note the model's pattern, not the shorter one quoted in older docs: it
#: accepts an optional trailing "/" and the literal ROOT.
PTC_PREFIX_PATTERN = (
    r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$"
)
PTC_PREFIX_MIN, PTC_PREFIX_MAX = 2, 30
ROOT_PREFIX = "ROOT"

#: Shape CredentialArn: length 50..612, a Secrets Manager secret whose name
#: starts with "ecr-pullthroughcache/".
CREDENTIAL_ARN_PATTERN = (
    r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\-pullthroughcache\/[a-zA-Z0-9\/_+=.@-]+$"
)
CREDENTIAL_ARN_MIN, CREDENTIAL_ARN_MAX = 50, 612
#: Shape CustomRoleArn: max length 2048.
CUSTOM_ROLE_ARN_MAX = 2048
#: Shape RegistryId.
REGISTRY_ID_PATTERN = r"[0-9]{12}"

#: Amazon ECR service quota "Pull through cache rules per registry".
MAX_PTC_RULES_PER_REGISTRY = 50

#: Shape UpstreamRegistry, with the upstreamRegistryUrl syntax the
#: CreatePullThroughCacheRule reference gives for each.
UPSTREAM_REGISTRY_URL_PATTERNS: dict[str, str] = {
    "ecr": r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?",
    "ecr-public": r"public\.ecr\.aws",
    "quay": r"quay\.io",
    "k8s": r"registry\.k8s\.io",
    "docker-hub": r"registry-1\.docker\.io",
    "github-container-registry": r"ghcr\.io",
    # Azure container registry names are 5..50 alphanumerics.
    "azure-container-registry": r"[a-z0-9]{5,50}\.azurecr\.io",
    "gitlab-container-registry": r"registry\.gitlab\.com",
    "chainguard": r"cgr\.dev",
}
#: Upstream registries that "require authentication with AWS Secrets Manager
#: secret" (ECR user guide, "Sync an upstream registry").
UPSTREAMS_REQUIRING_SECRET = frozenset(
    {
        "docker-hub",
        "github-container-registry",
        "gitlab-container-registry",
        "azure-container-registry",
        "chainguard",
    }
)

TAG_STATUS_VALUES = ("TAGGED", "UNTAGGED", "ANY")
IMAGE_STATUS_VALUES = ("ACTIVE", "ARCHIVED", "ACTIVATING", "ANY")

#: Replication.  The user guide ("Considerations for private image
#: replication"): "The replication configuration for a private registry may
#: contain up to 25 unique destinations across all rules, with a maximum of 10
#: rules total.  Each rule may contain up to 100 filters."  The API reference
#: agrees (ReplicationConfiguration.rules: 0..10 items; ReplicationRule
#: .destinations: at most 100 items, .repositoryFilters: 1..100 items).  The
#: botocore model is looser on rules (0..25), and botocore checks no maxima,
#: so 11..25 rules reach the server and are refused here.
MAX_REPLICATION_RULES = 10
MAX_REPLICATION_DESTINATIONS_PER_RULE = 100
MAX_REPLICATION_UNIQUE_DESTINATIONS = 25
MIN_REPLICATION_FILTERS, MAX_REPLICATION_FILTERS = 1, 100
#: Shape RepositoryFilterValue: length 2..256, this pattern; RepositoryFilterType.
REPLICATION_FILTER_MIN, REPLICATION_FILTER_MAX = 2, 256
REPLICATION_FILTER_PATTERN = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$"
REPLICATION_FILTER_TYPES = ("PREFIX_MATCH",)
#: Shape Region.
REGION_PATTERN = r"[0-9a-z-]{2,25}"

#: Image scans: moto's description of a completed scan.
SCAN_COMPLETE = {"status": "COMPLETE", "description": "The scan was completed successfully."}
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")

#: Lifecycle policy preview.  Shape LifecyclePolicyText: length 100..30720
#: (the quota "Lifecycle policy length").  GetLifecyclePolicyPreview's
#: maxResults (LifecyclePreviewMaxResults) "can be between 1 and 100".
LIFECYCLE_POLICY_TEXT_MIN, LIFECYCLE_POLICY_TEXT_MAX = 100, 30720
MAX_PREVIEW_RESULTS = 100
#: "There is a maximum limit of four wildcards (*) per string" (tagPatternList).
MAX_TAG_PATTERN_WILDCARDS = 4
SECONDS_PER_DAY = 86400


# ---------------------------------------------------------------------------
# Exceptions (codes match error shapes of the ECR service model, so moto's
# serialiser gives them their modelled HTTP status and __type)
# ---------------------------------------------------------------------------


class PullThroughCacheRuleAlreadyExistsException(ServiceException):
    code = "PullThroughCacheRuleAlreadyExistsException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"A pull through cache rule with the prefix '{prefix}' already exists "
            f"in the registry with id '{registry_id}'"
        )


class PullThroughCacheRuleNotFoundException(ServiceException):
    code = "PullThroughCacheRuleNotFoundException"

    def __init__(self, prefix: str, registry_id: str):
        super().__init__(
            f"The pull through cache rule with the prefix '{prefix}' does not exist "
            f"in the registry with id '{registry_id}'"
        )


class UnsupportedUpstreamRegistryException(ServiceException):
    code = "UnsupportedUpstreamRegistryException"


class LifecyclePolicyPreviewNotFoundException(ServiceException):
    """"There is no dry run for this repository." """

    code = "LifecyclePolicyPreviewNotFoundException"

    def __init__(self, repository_name: str, registry_id: str):
        super().__init__(
            "Lifecycle policy preview does not exist for the repository with name "
            f"'{repository_name}' in the registry with id '{registry_id}'"
        )


class SecretNotFoundException(ServiceException):
    """ECR's own error shape (not Secrets Manager's ResourceNotFoundException)."""

    code = "SecretNotFoundException"

    def __init__(self, arn: str):
        super().__init__(
            f"The secret with ARN '{arn}' was not found. "
            "Specify a valid Secrets Manager secret ARN and try again"
        )


# moto looks up the error shape of an exception through the service named in
# its module ("moto.<service>...."); this module's own name would mislead it.
for _exception in (
    PullThroughCacheRuleAlreadyExistsException,
    PullThroughCacheRuleNotFoundException,
    UnsupportedUpstreamRegistryException,
    SecretNotFoundException,
    LifecyclePolicyPreviewNotFoundException,
):
    _exception.__module__ = "moto.ecr.exceptions"


def _invalid(member: str, constraint: str) -> InvalidParameterException:
    """ECR's wording for a request member that breaks a constraint, e.g.
    "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member
    must have value less than or equal to 1000'" (as Amazon ECR answers)."""
    return InvalidParameterException(
        f"Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'"
    )


# ---------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------


class _PageTokens:
    """Opaque page tokens: ``base64url(json).hmac``.

    The payload holds a digest of the request parameters the token continues
    (the "scope") and the sort key of the last item returned.  Tokens are
    signed with a per-process key, so a tampered, truncated or foreign token
    is rejected, as is a token replayed with different parameters.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def encode(self, scope: str, after: Any) -> str:
        raw = json.dumps({"s": scope, "a": after}, separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def decode(self, scope: str, token: Any) -> Any:
        try:
            payload, signature = str(token).rsplit(".", 1)
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError("bad signature")
            padded = payload + "=" * (-len(payload) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded))
            if data["s"] != scope:
                raise ValueError("token belongs to another request")
            return data["a"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise _invalid("nextToken", "Invalid token") from None


_TOKENS = _PageTokens()


def _scope(operation: str, **params: Any) -> str:
    """Digest of the non-paging parameters of a request."""
    canonical = json.dumps([operation, params], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _as_key(value: Any) -> Any:
    # JSON turns tuples into lists; sort keys compare as tuples.
    if isinstance(value, list):
        return tuple(_as_key(v) for v in value)
    return value


def validate_max_results(max_results: Any, maximum: int = MAX_MAX_RESULTS) -> int:
    """maxResults is "between 1 and 1000" (GetLifecyclePolicyPreview: 1 and
    100); absent means the default of 100."""
    if max_results is None:
        return DEFAULT_MAX_RESULTS
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise _invalid("maxResults", "Member must be an integer")
    if max_results < 1:
        raise _invalid("maxResults", "Member must have value greater than or equal to 1")
    if max_results > maximum:
        raise _invalid("maxResults", f"Member must have value less than or equal to {maximum}")
    return max_results


def paginate(
    items: Iterable[Any],
    sort_key: Callable[[Any], Any],
    max_results: Any,
    next_token: Optional[str],
    scope: str,
    maximum: int = MAX_MAX_RESULTS,
) -> tuple[list[Any], Optional[str]]:
    """One page of ``items`` (ordered by ``sort_key``) and the next token.

    The token names the sort key of the last item on the page; the next page
    starts after it.  Keys must be unique and JSON-serialisable (str, int,
    float, or tuples of them).
    """
    limit = validate_max_results(max_results, maximum)
    ordered = sorted(items, key=sort_key)
    keys = [sort_key(item) for item in ordered]
    start = 0
    if next_token is not None:
        start = bisect.bisect_right(keys, _as_key(_TOKENS.decode(scope, next_token)))
    page = ordered[start : start + limit]
    token = None
    if start + limit < len(ordered):
        token = _TOKENS.encode(scope, keys[start + limit - 1])
    return page, token


def _reject_paging_with(member: str, max_results: Any, next_token: Any) -> None:
    """maxResults/nextToken "cannot be used when you specify <member>"."""
    if max_results is not None:
        raise _invalid("maxResults", f"This option cannot be used when you specify {member}")
    if next_token is not None:
        raise _invalid("nextToken", f"This option cannot be used when you specify {member}")


def _validate_enum(member: str, value: Any, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise _invalid(member, f"Member must satisfy enum value set: [{', '.join(allowed)}]")


def _image_filter(image_filter: Optional[dict[str, Any]]) -> Callable[[Image], bool]:
    """Predicate for DescribeImagesFilter / ListImagesFilter.

    "If not specified, only images with ACTIVE status are returned" (the
    model's DescribeImagesFilter and ListImagesFilter).
    """
    image_filter = image_filter or {}
    tag_status = image_filter.get("tagStatus") or "ANY"
    image_status = image_filter.get("imageStatus") or "ACTIVE"
    _validate_enum("filter.tagStatus", tag_status, TAG_STATUS_VALUES)
    _validate_enum("filter.imageStatus", image_status, IMAGE_STATUS_VALUES)

    def keep(image: Image) -> bool:
        if image_status != "ANY" and _image_status(image) != image_status:
            return False
        if tag_status == "TAGGED":
            return bool(image.image_tags)
        if tag_status == "UNTAGGED":
            return not image.image_tags
        return True

    return keep


# ---------------------------------------------------------------------------
# Backend: paged reads
# ---------------------------------------------------------------------------


def describe_repositories(
    self: ECRBackend,
    registry_id: Optional[str] = None,
    repository_names: Optional[list[str]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> tuple[list[Any], Optional[str]]:
    """Repositories by name (all must exist), or one page of all of them
    ordered by name."""
    if repository_names:
        _reject_paging_with("repositories with repositoryNames", max_results, next_token)
        found = []
        for name in dict.fromkeys(repository_names):
            found.append(self._get_repository(name, registry_id))
        return found, None
    registry = registry_id or self.account_id
    repositories = [r for r in list(self.repositories.values()) if r.registry_id == registry]
    scope = _scope("DescribeRepositories", registryId=registry)
    return paginate(repositories, lambda r: r.name, max_results, next_token, scope)


def describe_images(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    image_ids: Optional[list[dict[str, str]]] = None,
    image_filter: Optional[dict[str, Any]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> tuple[list[Image], Optional[str]]:
    """Images by id (each must exist), or one page of all images that pass
    ``filter`` ordered by digest."""
    repository = self._get_repository(repository_name, registry_id)
    if image_ids and not (image_filter or {}).get("imageStatus"):
        # Images named by id are described whatever their status.
        image_filter = dict(image_filter or {}, imageStatus="ANY")
    keep = _image_filter(image_filter)
    if image_ids:
        _reject_paging_with("images with imageIds", max_results, next_token)
        found: dict[str, Image] = {}
        for image_id in image_ids:
            image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
            found.setdefault(image.image_digest, image)
        return [image for image in found.values() if keep(image)], None
    images = [image for image in list(repository.images) if keep(image)]
    scope = _scope(
        "DescribeImages",
        registryId=repository.registry_id,
        repositoryName=repository.name,
        filter=image_filter or {},
    )
    return paginate(images, lambda i: i.image_digest, max_results, next_token, scope)


def list_images(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    image_filter: Optional[dict[str, Any]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> tuple[list[dict[str, str]], Optional[str]]:
    """One page of image ids (one per tag, one for an untagged image), ordered
    by digest and tag."""
    repository = self._get_repository(repository_name, registry_id)
    keep = _image_filter(image_filter)
    image_ids = []
    for image in list(repository.images):
        if not keep(image):
            continue
        for tag in image.image_tags or [None]:
            image_id = {"imageDigest": image.image_digest}
            if tag is not None:
                image_id["imageTag"] = tag
            image_ids.append(image_id)
    scope = _scope(
        "ListImages",
        registryId=repository.registry_id,
        repositoryName=repository.name,
        filter=image_filter or {},
    )
    return paginate(
        image_ids,
        lambda i: (i["imageDigest"], i.get("imageTag", "")),
        max_results,
        next_token,
        scope,
    )


# ---------------------------------------------------------------------------
# Backend: image scans
# ---------------------------------------------------------------------------


class ImageScan:
    """The last basic scan of an image.

    ``result`` is the DescribeImageScanFindings answer for it, bound when the
    scan is first read (moto's rule for injected results), whatever form of
    imageId it is read with.
    """

    def __init__(self, completed_at: datetime):
        self.completed_at = completed_at
        self.result: Optional[dict[str, Any]] = None


def _as_utc(moment: datetime) -> datetime:
    # moto stamps scans with datetime.today(): naive, local time.
    return moment.astimezone(timezone.utc)


def _begin_scan(image: Image) -> None:
    """A basic scan of ``image``, complete at once as moto's findings are.
    ``last_scan`` is moto's own record of it (ScanNotFoundException, the quota
    of one scan per image a day)."""
    image.last_scan = datetime.today()
    image.ext_scan = ImageScan(_as_utc(image.last_scan))


def _scan_of(image: Image) -> Optional[ImageScan]:
    if image.last_scan is None:
        return None
    scan = getattr(image, "ext_scan", None)
    if scan is None:  # a scan moto recorded without us
        scan = image.ext_scan = ImageScan(_as_utc(image.last_scan))
    return scan


def _claim_injected_results(self: ECRBackend, repository: Repository, image: Image) -> None:
    """Move the results injected through /moto-api/static/ecr/scan-finding-results
    for ``image`` to its queue, as moto does: same repository name, and the
    result's imageTag (any tag of the image, not only its latest) or
    imageDigest names the image, or the result names no image."""
    for result in list(self.scan_finding_results):
        wanted = result.get("imageId") or {}
        tag, digest = wanted.get("imageTag"), wanted.get("imageDigest")
        if result.get("repositoryName") != repository.name:
            continue
        if (not tag and not digest) or tag in image.image_tags or digest == image.image_digest:
            image.scan_finding_results_queue.append(result)
            self.scan_finding_results.remove(result)


def _default_scan_result(repository: Repository, image: Image, scan: ImageScan) -> dict[str, Any]:
    """moto's default answer (one HIGH finding), stamped with the scan's time."""
    image_id = {"imageDigest": image.image_digest}
    if image.image_tag is not None:
        image_id["imageTag"] = image.image_tag
    return {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageId": image_id,
        "imageScanStatus": dict(SCAN_COMPLETE),
        "imageScanFindings": {
            "imageScanCompletedAt": scan.completed_at,
            "vulnerabilitySourceUpdatedAt": scan.completed_at,
            "findings": [
                {
                    "name": "CVE-9999-9999",
                    "uri": "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-9999-9999",
                    "severity": "HIGH",
                    "attributes": [
                        {"key": "package_version", "value": "9.9.9"},
                        {"key": "package_name", "value": "moto_fake"},
                        {"key": "CVSS2_VECTOR", "value": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                        {"key": "CVSS2_SCORE", "value": "7.5"},
                    ],
                }
            ],
            "findingSeverityCounts": {"HIGH": 1},
        },
    }


def _scan_result(self: ECRBackend, repository: Repository, image: Image) -> Optional[dict[str, Any]]:
    """The result of the image's last scan (None: never scanned).  Bound on
    first read to the next injected result for the image, else moto's default."""
    scan = _scan_of(image)
    if scan is None:
        return None
    if scan.result is None:
        _claim_injected_results(self, repository, image)
        queue = image.scan_finding_results_queue
        scan.result = queue.pop(0) if queue else _default_scan_result(repository, image, scan)
    return scan.result


def _severity_counts(findings: dict[str, Any]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for member in ("findings", "enhancedFindings"):
        for finding in findings.get(member) or []:
            if isinstance(finding, dict) and finding.get("severity"):
                counts[finding["severity"]] += 1
    return dict(counts)


def _image_scan_details(self: ECRBackend, repository: Repository, image: Image) -> dict[str, Any]:
    """ImageDetail's ``imageScanStatus`` and ``imageScanFindingsSummary`` ("a
    summary of the last completed image scan"), both absent for an image that
    was never scanned, the summary absent unless the scan is COMPLETE."""
    result = _scan_result(self, repository, image)
    if result is None:
        return {}
    status = copy.deepcopy(result.get("imageScanStatus") or SCAN_COMPLETE)
    details: dict[str, Any] = {"imageScanStatus": status}
    if status.get("status") == "COMPLETE":
        findings = result.get("imageScanFindings") or {}
        completed_at = image.ext_scan.completed_at
        counts = findings.get("findingSeverityCounts")
        details["imageScanFindingsSummary"] = {
            "imageScanCompletedAt": findings.get("imageScanCompletedAt") or completed_at,
            "vulnerabilitySourceUpdatedAt": findings.get("vulnerabilitySourceUpdatedAt")
            or completed_at,
            "findingSeverityCounts": copy.deepcopy(counts)
            if counts is not None
            else _severity_counts(findings),
        }
    return details


def _announce_scan(self: ECRBackend, repository: Repository, image: Image) -> None:
    """Put the ``ECR Image Scan`` event of the image's completed scan on the
    default event bus ("Amazon ECR events and EventBridge", ECR user guide).
    Nothing happens when no rule could receive it, so the scan's result stays
    unbound until first read (see module docstring, item 6)."""
    from moto.events.models import events_backends

    events = events_backends[self.account_id][self.region_name]
    try:
        bus = events.describe_event_bus("default")
    except Exception:  # noqa: BLE001 - no default bus: nobody listens
        return
    if not bus.rules:
        return
    result = _scan_result(self, repository, image)
    if result is None:
        return
    status = (result.get("imageScanStatus") or SCAN_COMPLETE).get("status")
    findings = result.get("imageScanFindings") or {}
    counts = findings.get("findingSeverityCounts")
    detail = {
        "scan-status": status,
        "repository-name": repository.name,
        "finding-severity-counts": copy.deepcopy(counts) if counts is not None else _severity_counts(findings),
        "image-digest": image.image_digest,
        "image-tags": list(image.image_tags),
    }
    events.put_events(
        [
            {
                "Source": "aws.ecr",
                "DetailType": "ECR Image Scan",
                "Detail": json.dumps(detail),
                "Resources": [repository.arn],
            }
        ]
    )


def rescan_image(
    self: ECRBackend, registry_id: Optional[str], repository_name: str, image_digest: str
) -> dict[str, Any]:
    """A new scan of an image ECR already scanned, complete at once, as
    enhanced (continuous) scanning rescans images when new vulnerabilities
    are published.  Basic scanning allows one StartImageScan a day, so tests
    use this for "the same image, scanned again".  The new scan completes at
    least a second after the last one (the API's timestamps are compared by
    clients) and takes the next injected result; it is announced like any
    other scan."""
    repository = self._get_repository(repository_name, registry_id)
    image = repository._get_image(None, image_digest)
    previous = _scan_of(image)
    now = datetime.today()
    if previous is not None:
        floor = previous.completed_at.timestamp() + 1
        if now.timestamp() < floor:
            now = datetime.fromtimestamp(floor)
    image.last_scan = now
    image.ext_scan = ImageScan(_as_utc(now))
    _announce_scan(self, repository, image)
    return {"repositoryName": repository.name, "imageDigest": image.image_digest}


_moto_start_image_scan = ECRBackend.start_image_scan


def start_image_scan(
    self: ECRBackend, registry_id: Optional[str], repository_name: str, image_id: dict[str, str]
) -> dict[str, Any]:
    """moto's StartImageScan (IN_PROGRESS; LimitExceededException for a second
    scan of an image the same day), starting a new scan whose result is bound
    on first read."""
    if not image_id:
        raise _invalid("imageId", "Member must not be null")
    answer = _moto_start_image_scan(self, registry_id, repository_name, image_id)
    repository = self._get_repository(repository_name, registry_id)
    image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
    image.ext_scan = ImageScan(_as_utc(image.last_scan))
    _announce_scan(self, repository, image)
    if answer["imageId"].get("imageTag") is None:
        del answer["imageId"]["imageTag"]
    return answer


def describe_image_scan_findings(
    self: ECRBackend,
    registry_id: Optional[str],
    repository_name: str,
    image_id: dict[str, Any],
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> dict[str, Any]:
    """The image's last scan result (see ``_scan_result``) with its
    ``findings`` and ``enhancedFindings`` paged.  ``findingSeverityCounts``
    keeps counting all findings on every page."""
    if not image_id:
        raise _invalid("imageId", "Member must not be null")
    repository = self._get_repository(repository_name, registry_id)
    image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
    scanned = _scan_result(self, repository, image)
    if scanned is None:
        digest = image_id.get("imageDigest") or "null"
        tag = image_id.get("imageTag") or "null"
        raise ScanNotFoundException(
            image_id=f"{{imageDigest:'{digest}', imageTag:'{tag}'}}",
            repository_name=repository_name,
            registry_id=repository.registry_id,
        )
    result = copy.deepcopy(scanned)
    findings = result.get("imageScanFindings") or {}
    # The two lists are paged together by position: a scan fills one of them
    # (basic scanning: findings; enhanced scanning: enhancedFindings).
    members = [
        (member, finding)
        for member in ("findings", "enhancedFindings")
        for finding in findings.get(member) or []
    ]
    scope = _scope(
        "DescribeImageScanFindings",
        registryId=repository.registry_id,
        repositoryName=repository.name,
        imageDigest=image.image_digest,
    )
    page, token = paginate(
        list(enumerate(members)), lambda entry: entry[0], max_results, next_token, scope
    )
    for member in ("findings", "enhancedFindings"):
        if member in findings:
            findings[member] = [f for (_, (m, f)) in page if m == member]
    if token:
        result["nextToken"] = token
    return result


def _wildcard_filter_matches(repository_filter: str, repository_name: str) -> bool:
    """ScanningRepositoryFilter (WILDCARD): "a filter with no wildcard will
    match all repository names that contain the filter.  A filter with a
    wildcard (*) matches on any repository name where the wildcard replaces
    zero or more characters in the repository name" (ECR user guide)."""
    if "*" not in repository_filter:
        return repository_filter in repository_name
    pattern = ".*".join(re.escape(part) for part in repository_filter.split("*"))
    return re.fullmatch(pattern, repository_name) is not None


def _scans_on_push(self: ECRBackend, repository: Repository) -> bool:
    """A basic scan on push: the registry scan type is BASIC (the default)
    and the repository has scanOnPush, or a SCAN_ON_PUSH rule of the registry
    scanning configuration matches it.  With ENHANCED scanning, Amazon
    Inspector scans, not ECR."""
    configuration = self.registry_scanning_configuration or {}
    if (configuration.get("scanType") or "BASIC") != "BASIC":
        return False
    if (repository.image_scanning_configuration or {}).get("scanOnPush"):
        return True
    for rule in configuration.get("rules") or []:
        if rule.get("scanFrequency") != "SCAN_ON_PUSH":
            continue
        for repository_filter in rule.get("repositoryFilters") or []:
            if (repository_filter.get("filterType") or "WILDCARD") == "WILDCARD" and (
                _wildcard_filter_matches(repository_filter.get("filter") or "", repository.name)
            ):
                return True
    return False


_moto_put_image_scanning_configuration = ECRBackend.put_image_scanning_configuration


def put_image_scanning_configuration(
    self: ECRBackend, registry_id: str, repository_name: str, image_scan_config: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """A missing ``scanOnPush`` is false, its default (SDKs send ``{}`` for
    false); moto ignored an empty configuration."""
    config = dict(image_scan_config or {})
    config.setdefault("scanOnPush", False)
    return _moto_put_image_scanning_configuration(self, registry_id, repository_name, config)


_moto_put_image = ECRBackend.put_image


def put_image(self: ECRBackend, repository_name: str, *args: Any, **kwargs: Any) -> Image:
    """PutImage into a missing repository: RepositoryNotFoundException.  A new
    image (not a new tag for an image already there) is scanned on push when
    ``_scans_on_push`` says so."""
    repository = self._get_repository(repository_name)
    before = list(repository.images)
    image = _moto_put_image(self, repository_name, *args, **kwargs)
    if not any(image is old for old in before) and _scans_on_push(self, repository):
        _begin_scan(image)
        _announce_scan(self, repository, image)
    return image


# ---------------------------------------------------------------------------
# Backend: pull through cache rules
# ---------------------------------------------------------------------------


class PullThroughCacheRule:
    """Shape PullThroughCacheRule.

    (In moto itself this would subclass moto.core.common_models.BaseModel,
    whose metaclass files models by their ``moto.<service>`` module name.)
    """

    def __init__(
        self,
        registry_id: str,
        ecr_repository_prefix: str,
        upstream_registry_url: str,
        upstream_registry: str,
        credential_arn: Optional[str],
        custom_role_arn: Optional[str],
        upstream_repository_prefix: str,
    ):
        now = datetime.now(timezone.utc)
        self.registry_id = registry_id
        self.ecr_repository_prefix = ecr_repository_prefix
        self.upstream_registry_url = upstream_registry_url
        self.upstream_registry = upstream_registry
        self.credential_arn = credential_arn
        self.custom_role_arn = custom_role_arn
        self.upstream_repository_prefix = upstream_repository_prefix
        self.created_at = now
        self.updated_at = now

    _MEMBERS = {
        "ecrRepositoryPrefix": "ecr_repository_prefix",
        "upstreamRegistryUrl": "upstream_registry_url",
        "createdAt": "created_at",
        "registryId": "registry_id",
        "credentialArn": "credential_arn",
        "customRoleArn": "custom_role_arn",
        "upstreamRepositoryPrefix": "upstream_repository_prefix",
        "upstreamRegistry": "upstream_registry",
        "updatedAt": "updated_at",
    }

    def to_dict(self, members: Optional[Iterable[str]] = None) -> dict[str, Any]:
        """The given members (all of PullThroughCacheRule by default), unset ones left out."""
        out = {}
        for member in members or self._MEMBERS:
            value = getattr(self, self._MEMBERS[member])
            if value is not None:
                out[member] = value
        return out


def _prefix_key(prefix: str) -> str:
    # "There is always an assumed / applied to the end of the prefix. If you
    # specify ecr-public as the prefix, Amazon ECR treats that as ecr-public/."
    return prefix.rstrip("/") if prefix != ROOT_PREFIX else prefix


def _validate_prefix(member: str, prefix: Any) -> None:
    if not isinstance(prefix, str) or not prefix:
        raise _invalid(member, "Member must not be null")
    if not PTC_PREFIX_MIN <= len(prefix) <= PTC_PREFIX_MAX:
        raise _invalid(
            member,
            f"Member must have length between {PTC_PREFIX_MIN} and {PTC_PREFIX_MAX}",
        )
    if not re.match(PTC_PREFIX_PATTERN, prefix):
        raise _invalid(member, f"Member must satisfy regular expression pattern: {PTC_PREFIX_PATTERN}")


def _validate_registry_id(registry_id: Any, member: str = "registryId") -> None:
    if registry_id is not None and not re.fullmatch(REGISTRY_ID_PATTERN, str(registry_id)):
        raise _invalid(member, f"Member must satisfy regular expression pattern: {REGISTRY_ID_PATTERN}")


def _validate_credential_arn(arn: Any) -> None:
    if arn is None:
        return
    if not CREDENTIAL_ARN_MIN <= len(arn) <= CREDENTIAL_ARN_MAX:
        raise _invalid(
            "credentialArn",
            f"Member must have length between {CREDENTIAL_ARN_MIN} and {CREDENTIAL_ARN_MAX}",
        )
    if not re.match(CREDENTIAL_ARN_PATTERN, arn):
        raise _invalid("credentialArn", f"Member must satisfy regular expression pattern: {CREDENTIAL_ARN_PATTERN}")


def _validate_custom_role_arn(arn: Any) -> None:
    if arn is not None and len(arn) > CUSTOM_ROLE_ARN_MAX:
        raise _invalid(
            "customRoleArn", f"Member must have length less than or equal to {CUSTOM_ROLE_ARN_MAX}"
        )


def _upstream_registry_for(url: str, declared: Optional[str]) -> tuple[str, Optional[re.Match[str]]]:
    """The upstream registry of ``upstreamRegistryUrl`` (checked against the
    declared ``upstreamRegistry`` when one is given)."""
    if declared is not None:
        _validate_enum("upstreamRegistry", declared, UPSTREAM_REGISTRY_URL_PATTERNS)
        candidates = [declared]
    else:
        candidates = list(UPSTREAM_REGISTRY_URL_PATTERNS)
    for registry in candidates:
        match = re.fullmatch(UPSTREAM_REGISTRY_URL_PATTERNS[registry], url or "")
        if match:
            return registry, match
    # Amazon ECR's answer for a URL it does not support (e.g. a private
    # Harbor): UnsupportedUpstreamRegistryException with this message.
    raise UnsupportedUpstreamRegistryException(
        f"The upstream registry URL {url} is invalid. "
        "Specify a valid upstream registry URL and try again"
    )


def _find_secret(arn: str) -> Any:
    """The secret in moto's Secrets Manager (in the ARN's account and region),
    or None when it does not exist or is scheduled for deletion."""
    from moto.secretsmanager.models import secretsmanager_backends

    parts = arn.split(":")
    region, account = parts[3], parts[4]
    secret = secretsmanager_backends[account][region].secrets.get(arn)
    if secret is None or getattr(secret, "is_deleted", lambda: False)():
        return None
    return secret


def _require_secret(arn: Optional[str]) -> None:
    if arn is not None and _find_secret(arn) is None:
        raise SecretNotFoundException(arn)


def _ptc_rules(self: ECRBackend) -> dict[tuple[str, str], PullThroughCacheRule]:
    rules = getattr(self, "pull_through_cache_rules", None)
    if rules is None:
        rules = self.pull_through_cache_rules = {}
    return rules


def _get_ptc_rule(self: ECRBackend, prefix: str, registry_id: Optional[str]) -> PullThroughCacheRule:
    registry = registry_id or self.account_id
    rule = _ptc_rules(self).get((registry, _prefix_key(prefix)))
    if rule is None:
        raise PullThroughCacheRuleNotFoundException(prefix, registry)
    return rule


def create_pull_through_cache_rule(
    self: ECRBackend,
    ecr_repository_prefix: str,
    upstream_registry_url: str,
    registry_id: Optional[str] = None,
    upstream_registry: Optional[str] = None,
    credential_arn: Optional[str] = None,
    custom_role_arn: Optional[str] = None,
    upstream_repository_prefix: Optional[str] = None,
) -> PullThroughCacheRule:
    _validate_registry_id(registry_id)
    _validate_prefix("ecrRepositoryPrefix", ecr_repository_prefix)
    if upstream_repository_prefix is not None:
        _validate_prefix("upstreamRepositoryPrefix", upstream_repository_prefix)
        # "You can set the upstream repository prefix only when the Amazon ECR
        # repository prefix has a non-ROOT value."
        if ecr_repository_prefix == ROOT_PREFIX and upstream_repository_prefix != ROOT_PREFIX:
            raise _invalid(
                "upstreamRepositoryPrefix",
                "The upstream repository prefix can only be set when the ECR repository prefix is not ROOT",
            )
    if not upstream_registry_url:
        raise _invalid("upstreamRegistryUrl", "Member must not be null")
    _validate_credential_arn(credential_arn)
    _validate_custom_role_arn(custom_role_arn)
    registry = registry_id or self.account_id

    upstream, url_match = _upstream_registry_for(upstream_registry_url, upstream_registry)
    if upstream in UPSTREAMS_REQUIRING_SECRET and credential_arn is None:
        # Amazon ECR's answer, e.g. for Docker Hub without credentials.
        raise UnsupportedUpstreamRegistryException(
            "The specified upstream registry requires authentication. "
            "Specify a valid Secrets Manager ARN"
        )
    if upstream == "ecr" and url_match is not None:
        # An IAM role is needed "if the upstream and downstream Amazon ECR
        # registries belong to different AWS account[s]".
        if url_match.group("account") != registry and custom_role_arn is None:
            raise UnsupportedUpstreamRegistryException(
                "The specified upstream registry requires authentication. "
                "Specify a valid IAM role ARN in customRoleArn"
            )

    rules = _ptc_rules(self)
    key = (registry, _prefix_key(ecr_repository_prefix))
    if key in rules:
        raise PullThroughCacheRuleAlreadyExistsException(ecr_repository_prefix, registry)
    if sum(1 for (reg, _) in rules if reg == registry) >= MAX_PTC_RULES_PER_REGISTRY:
        raise LimitExceededException(
            f"The maximum number of pull through cache rules ({MAX_PTC_RULES_PER_REGISTRY}) "
            f"for the registry with id '{registry}' has been reached"
        )
    _require_secret(credential_arn)

    rule = PullThroughCacheRule(
        registry_id=registry,
        ecr_repository_prefix=ecr_repository_prefix,
        upstream_registry_url=upstream_registry_url,
        upstream_registry=upstream,
        credential_arn=credential_arn,
        custom_role_arn=custom_role_arn,
        # "When this field isn't specified, Amazon ECR will use the ROOT."
        upstream_repository_prefix=upstream_repository_prefix or ROOT_PREFIX,
    )
    rules[key] = rule
    return rule


def describe_pull_through_cache_rules(
    self: ECRBackend,
    registry_id: Optional[str] = None,
    ecr_repository_prefixes: Optional[list[str]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> tuple[list[PullThroughCacheRule], Optional[str]]:
    """The named rules (each must exist) or all rules, ordered by prefix and paged."""
    _validate_registry_id(registry_id)
    registry = registry_id or self.account_id
    if ecr_repository_prefixes:
        rules = {}
        for prefix in ecr_repository_prefixes:
            _validate_prefix("ecrRepositoryPrefixes", prefix)
            rule = _get_ptc_rule(self, prefix, registry)
            rules[id(rule)] = rule
        selected = list(rules.values())
    else:
        selected = [r for (reg, _), r in list(_ptc_rules(self).items()) if reg == registry]
    scope = _scope(
        "DescribePullThroughCacheRules",
        registryId=registry,
        ecrRepositoryPrefixes=sorted(ecr_repository_prefixes or []),
    )
    return paginate(
        selected, lambda r: _prefix_key(r.ecr_repository_prefix), max_results, next_token, scope
    )


def update_pull_through_cache_rule(
    self: ECRBackend,
    ecr_repository_prefix: str,
    registry_id: Optional[str] = None,
    credential_arn: Optional[str] = None,
    custom_role_arn: Optional[str] = None,
) -> PullThroughCacheRule:
    """Replace the credentials of a rule (the only mutable parts of one)."""
    _validate_registry_id(registry_id)
    _validate_prefix("ecrRepositoryPrefix", ecr_repository_prefix)
    _validate_credential_arn(credential_arn)
    _validate_custom_role_arn(custom_role_arn)
    if credential_arn is None and custom_role_arn is None:
        raise _invalid("credentialArn", "Either credentialArn or customRoleArn must be specified")
    rule = _get_ptc_rule(self, ecr_repository_prefix, registry_id)
    _require_secret(credential_arn)
    if credential_arn is not None:
        rule.credential_arn = credential_arn
    if custom_role_arn is not None:
        rule.custom_role_arn = custom_role_arn
    rule.updated_at = datetime.now(timezone.utc)
    return rule


def delete_pull_through_cache_rule(
    self: ECRBackend, ecr_repository_prefix: str, registry_id: Optional[str] = None
) -> PullThroughCacheRule:
    _validate_registry_id(registry_id)
    _validate_prefix("ecrRepositoryPrefix", ecr_repository_prefix)
    rule = _get_ptc_rule(self, ecr_repository_prefix, registry_id)
    del _ptc_rules(self)[(rule.registry_id, _prefix_key(rule.ecr_repository_prefix))]
    return rule


def validate_pull_through_cache_rule(
    self: ECRBackend, ecr_repository_prefix: str, registry_id: Optional[str] = None
) -> dict[str, Any]:
    """What can be checked without reaching the upstream registry: that the
    secret exists and holds the JSON ECR expects
    (``{"username": ..., "accessToken": ...}``).  An upstream is taken to be
    reachable, and a rule without credentials to be valid."""
    _validate_registry_id(registry_id)
    _validate_prefix("ecrRepositoryPrefix", ecr_repository_prefix)
    rule = _get_ptc_rule(self, ecr_repository_prefix, registry_id)
    failure = None
    if rule.credential_arn is not None:
        secret = _find_secret(rule.credential_arn)
        if secret is None:
            failure = f"The secret {rule.credential_arn} could not be found"
        else:
            try:
                value = json.loads(secret.secret_string or "")
                if not (isinstance(value, dict) and value.get("username") and value.get("accessToken")):
                    raise ValueError
            except ValueError:
                failure = (
                    "The secret value must be a JSON object with the keys "
                    "'username' and 'accessToken'"
                )
    result = rule.to_dict(
        [
            "ecrRepositoryPrefix",
            "registryId",
            "upstreamRegistryUrl",
            "credentialArn",
            "customRoleArn",
            "upstreamRepositoryPrefix",
        ]
    )
    result["isValid"] = failure is None
    if failure is not None:
        result["failure"] = failure
    return result


# ---------------------------------------------------------------------------
# Backend: registry replication
# ---------------------------------------------------------------------------


def _validate_pattern(member: str, value: Any, pattern: str, low: int, high: int) -> None:
    if value is None:
        raise _invalid(member, "Member must not be null")
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise _invalid(member, f"Member must have length between {low} and {high}")
    if not re.fullmatch(pattern, value):
        raise _invalid(member, f"Member must satisfy regular expression pattern: {pattern}")


def _validate_list(member: str, value: Any, low: int, high: int) -> list[Any]:
    if value is None:
        raise _invalid(member, "Member must not be null")
    if not isinstance(value, list):
        raise _invalid(member, "Member must be a list")
    if len(value) < low:
        raise _invalid(member, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        raise _invalid(member, f"Member must have length less than or equal to {high}")
    return value


def _replication_destination(self: ECRBackend, member: str, destination: Any) -> dict[str, str]:
    if not isinstance(destination, dict):
        raise _invalid(member, "Member must not be null")
    region = destination.get("region")
    registry_id = destination.get("registryId")
    _validate_pattern(f"{member}.region", region, REGION_PATTERN, 2, 25)
    if registry_id is None:
        raise _invalid(f"{member}.registryId", "Member must not be null")
    _validate_registry_id(registry_id, f"{member}.registryId")
    if region == self.region_name and registry_id == self.account_id:
        # moto's (and Amazon ECR's) answer.
        raise InvalidParameterException(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
            "'Replication destination cannot be the same as the source registry'"
        )
    if get_partition(region) != get_partition(self.region_name):
        # "Cross-Region replication is not supported between AWS partitions."
        raise InvalidParameterException(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
            f"'Replication destination region {region} is not in the partition of the source "
            f"region {self.region_name}'"
        )
    return {"region": region, "registryId": registry_id}


def _replication_rule(self: ECRBackend, member: str, rule: Any) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise _invalid(member, "Member must not be null")
    destinations = _validate_list(
        f"{member}.destinations", rule.get("destinations"), 1, MAX_REPLICATION_DESTINATIONS_PER_RULE
    )
    out: dict[str, Any] = {
        "destinations": [
            _replication_destination(self, f"{member}.destinations.{n}.member", destination)
            for n, destination in enumerate(destinations, 1)
        ]
    }
    filters = rule.get("repositoryFilters")
    if filters is not None:
        _validate_list(
            f"{member}.repositoryFilters", filters, MIN_REPLICATION_FILTERS, MAX_REPLICATION_FILTERS
        )
        out["repositoryFilters"] = []
        for n, repository_filter in enumerate(filters, 1):
            filter_member = f"{member}.repositoryFilters.{n}.member"
            if not isinstance(repository_filter, dict):
                raise _invalid(filter_member, "Member must not be null")
            value = repository_filter.get("filter")
            _validate_pattern(
                f"{filter_member}.filter",
                value,
                REPLICATION_FILTER_PATTERN,
                REPLICATION_FILTER_MIN,
                REPLICATION_FILTER_MAX,
            )
            filter_type = repository_filter.get("filterType")
            if filter_type is None:
                raise _invalid(f"{filter_member}.filterType", "Member must not be null")
            _validate_enum(f"{filter_member}.filterType", filter_type, REPLICATION_FILTER_TYPES)
            out["repositoryFilters"].append({"filter": value, "filterType": filter_type})
    delete_replication = rule.get("deleteReplication")
    if delete_replication is not None:
        enabled = delete_replication.get("enabled") if isinstance(delete_replication, dict) else None
        if not isinstance(enabled, bool):
            raise _invalid(f"{member}.deleteReplication.enabled", "Member must not be null")
        out["deleteReplication"] = {"enabled": enabled}
    return out


def put_replication_configuration(
    self: ECRBackend, replication_config: Optional[dict[str, Any]]
) -> dict[str, Any]:
    """Replace the registry's replication configuration (several rules; an
    empty ``rules`` list turns replication off)."""
    if not isinstance(replication_config, dict):
        raise _invalid("replicationConfiguration", "Member must not be null")
    rules = _validate_list(
        "replicationConfiguration.rules", replication_config.get("rules"), 0, MAX_REPLICATION_RULES
    )
    validated = [
        _replication_rule(self, f"replicationConfiguration.rules.{n}.member", rule)
        for n, rule in enumerate(rules, 1)
    ]
    unique = {(d["region"], d["registryId"]) for rule in validated for d in rule["destinations"]}
    if len(unique) > MAX_REPLICATION_UNIQUE_DESTINATIONS:
        raise InvalidParameterException(
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
            f"'A replication configuration may contain up to {MAX_REPLICATION_UNIQUE_DESTINATIONS} "
            f"unique destinations across all rules, found {len(unique)}'"
        )
    self.replication_config = {"rules": validated}
    return {"replicationConfiguration": copy.deepcopy(self.replication_config)}


def describe_registry(self: ECRBackend) -> dict[str, Any]:
    return {
        "registryId": self.account_id,
        "replicationConfiguration": copy.deepcopy(self.replication_config),
    }


# ---------------------------------------------------------------------------
# Backend: image storage classes (archive) and pull times
# ---------------------------------------------------------------------------


class ImageStorageClassUpdateNotSupportedException(ServiceException):
    """The requested image storage class update is not supported."""

    code = "ImageStorageClassUpdateNotSupportedException"


# Found by moto's serialiser among the ECR model's error shapes (as above).
ImageStorageClassUpdateNotSupportedException.__module__ = "moto.ecr.exceptions"


def _image_status(image: Image) -> str:
    """ImageStatus: ACTIVE, ARCHIVED or ACTIVATING; moto's images are
    ACTIVE until archived."""
    return getattr(image, "image_status", "ACTIVE")


def _lifecycle_image(image: Image) -> LifecycleImage:
    """An image as lifecycle rules see it; one being restored (ACTIVATING)
    is not in the standard class yet."""
    return LifecycleImage(
        image.image_digest,
        image.image_tags,
        image.image_pushed_at,
        storage_class="standard" if _image_status(image) == "ACTIVE" else "archive",
        last_pulled_at=getattr(image, "last_recorded_pull_time", None),
        last_archived_at=getattr(image, "last_archived_at", None),
        last_activated_at=getattr(image, "last_activated_at", None),
    )


def update_image_storage_class(
    self: ECRBackend,
    repository_name: str,
    image_id: dict[str, str],
    target_storage_class: str,
    registry_id: Optional[str] = None,
) -> dict[str, Any]:
    """Archive an active image (ARCHIVED, lastArchivedAt now) or restore an
    archived one (lastActivatedAt now; ACTIVE at once, where Amazon ECR
    passes through ACTIVATING for up to 20 minutes).  TargetStorageClass is
    STANDARD or ARCHIVE; moving an image to the class it is in is refused."""
    _validate_enum("targetStorageClass", target_storage_class, ("STANDARD", "ARCHIVE"))
    repository = self._get_repository(repository_name, registry_id)
    image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
    now = int(time.time())
    status = _image_status(image)
    if target_storage_class == "ARCHIVE" and status == "ACTIVE":
        image.image_status = "ARCHIVED"
        image.last_archived_at = now
    elif target_storage_class == "STANDARD" and status == "ARCHIVED":
        image.image_status = "ACTIVE"
        image.last_activated_at = now
    else:
        raise ImageStorageClassUpdateNotSupportedException(
            f"The image is {status}; it cannot move to {target_storage_class}"
        )
    return {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageId": {"imageDigest": image.image_digest},
        "imageStatus": image.image_status,
    }


_moto_batch_get_image = ECRBackend.batch_get_image


def batch_get_image(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    image_ids: Optional[list[dict[str, Any]]] = None,
) -> dict[str, Any]:
    """moto's BatchGetImage, recording the pull (lastRecordedPullTime) of
    every active image it returns."""
    response = _moto_batch_get_image(self, repository_name, registry_id, image_ids)
    now = int(time.time())
    for image in response["images"]:
        if _image_status(image) == "ACTIVE":
            image.last_recorded_pull_time = now
    return response


_moto_put_lifecycle_policy = ECRBackend.put_lifecycle_policy


def put_lifecycle_policy(
    self: ECRBackend,
    registry_id: Optional[str],
    repository_name: str,
    lifecycle_policy_text: str,
) -> dict[str, Any]:
    """moto's PutLifecyclePolicy after the checks Amazon ECR makes of the
    policy (``parse_lifecycle_policy``), archive rules included."""
    self._get_repository(repository_name, registry_id)
    parse_lifecycle_policy(lifecycle_policy_text)
    return _moto_put_lifecycle_policy(self, registry_id, repository_name, lifecycle_policy_text)


def _teach_moto_archive_rules() -> None:
    """moto's lifecycle policy schema knows only expire, imageCountMoreThan
    and sinceImagePushed: add the members and values of the archive rules
    (the model's LifecyclePolicyRuleAction, LifecyclePolicyStorageClass)."""
    moto_policy_validation.VALID_ACTION_PROPERTIES = {"type", "targetStorageClass"}
    moto_policy_validation.VALID_ACTION_TYPE_VALUES = {"expire", "transition"}
    moto_policy_validation.VALID_SELECTION_PROPERTIES = {
        *moto_policy_validation.VALID_SELECTION_PROPERTIES,
        "storageClass",
    }
    moto_policy_validation.VALID_SELECTION_COUNT_TYPE_VALUES = {
        "imageCountMoreThan",
        *SINCE_COUNT_TYPES,
    }


# ---------------------------------------------------------------------------
# Backend: lifecycle policy preview
# ---------------------------------------------------------------------------


class LifecycleImage:
    """What the lifecycle policy evaluator knows of an image: its storage
    class ("standard" or "archive") and, as epoch seconds, its push, last
    pull, last archive and last restore times (None when it never was)."""

    def __init__(
        self,
        digest: str,
        tags: Iterable[str],
        pushed_at: float,
        storage_class: str = "standard",
        last_pulled_at: Optional[float] = None,
        last_archived_at: Optional[float] = None,
        last_activated_at: Optional[float] = None,
    ):
        self.digest = digest
        self.tags = tuple(tags)
        self.pushed_at = pushed_at
        self.storage_class = storage_class
        self.last_pulled_at = last_pulled_at
        self.last_archived_at = last_archived_at
        self.last_activated_at = last_activated_at


def _tag_pattern_matches(pattern: str, tag: str) -> bool:
    """tagPatternList: a tag pattern "may contain wildcards (*)", each
    replacing zero or more characters; without one it names the tag itself."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, tag) is not None


def _storage_class(selection: dict[str, Any]) -> str:
    """ "If you omit this, the value of standard will be used." """
    return selection.get("storageClass") or "standard"


def _selects(selection: dict[str, Any], image: LifecycleImage) -> bool:
    """Whether an image "matches the tagging requirements" of a rule: "The
    rule will only select images of this storage class"."""
    if image.storage_class != _storage_class(selection):
        return False
    tag_status = selection["tagStatus"]
    if tag_status == "any":
        return True
    if tag_status == "untagged":
        return not image.tags
    if not image.tags:
        return False
    # "An image is successfully matched if all of the tags in the
    # tagPrefixList value are matched against any of the image's tags"; the
    # same for tagPatternList ("only the images with all specified tags are
    # selected").  A rule giving both lists must satisfy both.
    return all(
        any(tag.startswith(prefix) for tag in image.tags)
        for prefix in selection.get("tagPrefixList") or []
    ) and all(
        any(_tag_pattern_matches(pattern, tag) for tag in image.tags)
        for pattern in selection.get("tagPatternList") or []
    )


def _reference_time(count_type: str, image: LifecycleImage) -> Optional[float]:
    """The time a since* count measures from ("Lifecycle policy evaluation
    rules"): sinceImagePushed the push; sinceImagePulled the last pull, "If
    an image was never pulled, the image's pushed_at_time is used ... If an
    image was archived and then restored ... but never pulled since ..., the
    image's last_activated_at"; sinceImageTransitioned "all archived images
    whose last_archived_at is older" (none without that time)."""
    if count_type == "sinceImagePushed":
        return image.pushed_at
    if count_type == "sinceImagePulled":
        pulled, activated = image.last_pulled_at, image.last_activated_at
        if activated is not None and (pulled is None or activated > pulled):
            return activated
        return pulled if pulled is not None else image.pushed_at
    if image.storage_class != "archive":
        return None
    return image.last_archived_at


def evaluate_lifecycle_policy(
    policy: dict[str, Any], images: list[LifecycleImage], now: float
) -> dict[str, tuple[int, str]]:
    """The images a (validated) lifecycle policy expires or archives: digest
    -> (priority of the rule, its action type, "expire" or "transition").

    Follows "Lifecycle policy evaluation rules" of the ECR user guide: every
    rule identifies the images of its storage class it would act on as if no
    other rule existed (imageCountMoreThan: all but the countNumber youngest
    of the images it selects, youngest by push or, for a restored image,
    restore time; the since* types: those whose reference time is more than
    countNumber days ago), then rules apply by priority, lowest first.  An
    image is expired or archived by at most one rule, and never by a rule of
    lower priority than a rule whose tagging requirements it matches; a
    transition never acts on an archived image.  ``images`` are in push
    order, which breaks ties between equal times.
    """
    order = {id(image): n for n, image in enumerate(images)}

    def age_key(image: LifecycleImage) -> tuple[float, int]:
        start = image.last_activated_at if image.last_activated_at is not None else image.pushed_at
        return (start, order[id(image)])

    seen: set[str] = set()
    acted: dict[str, tuple[int, str]] = {}
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        selection = rule["selection"]
        action = rule["action"]["type"]
        selected = [image for image in images if _selects(selection, image)]
        if selection["countType"] == "imageCountMoreThan":
            marked = sorted(selected, key=age_key, reverse=True)[selection["countNumber"] :]
        else:  # the since* types, countUnit days
            age_limit = selection["countNumber"] * SECONDS_PER_DAY
            marked = []
            for image in selected:
                start = _reference_time(selection["countType"], image)
                if start is not None and now - start > age_limit:
                    marked.append(image)
        for image in sorted(marked, key=age_key):
            if action == "transition" and image.storage_class == "archive":
                continue
            if image.digest not in seen and image.digest not in acted:
                acted[image.digest] = (rule["rulePriority"], action)
        seen.update(image.digest for image in selected)
    return acted


def _policy_error(reason: str) -> InvalidParameterException:
    return InvalidParameterException(
        f"{EcrLifecyclePolicyValidator.INVALID_PARAMETER_ERROR_MESSAGE}{reason}'"
    )


#: "Archived images have a minimum storage duration of 90 days. You cannot
#: configure lifecycle policies that delete images that have been in archive
#: for less than 90 days" ("Archiving an image").
MIN_ARCHIVE_DAYS = 90
SINCE_COUNT_TYPES = ("sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")


def _check_archive_rule(selection: dict[str, Any], action: dict[str, Any]) -> None:
    """How a rule's count type, storage class and action combine.

    "Lifecycle policy properties": storageClass "Required: yes, if countType is
    sinceImageTransitioned ... When using a countType of imageCountMoreThan,
    sinceImagePushed, or sinceImagePulled, the only supported value is
    standard"; countUnit "Required: yes, only if countType is set to
    sinceImagePushed, sinceImagePulled, or sinceImageTransitioned ... an error
    will occur if you specify a count unit when countType is any other value";
    targetStorageClass "Required: yes, if type is transition ... archive is the
    only supported value" (and "only present when the type is TRANSITION", the
    model's LifecyclePolicyRuleAction).  "Examples of lifecycle policies": "The
    sinceImagePulled count type must be used with the transition action" and
    "The sinceImageTransitioned count type must be used with the expire action
    and the archive storage class. Images must be in archive storage for a
    minimum of 90 days before deletion"."""
    count_type = selection["countType"]
    if count_type in SINCE_COUNT_TYPES and "countUnit" not in selection:
        raise _policy_error(f"countUnit is required when countType is {count_type}")
    if count_type not in SINCE_COUNT_TYPES and "countUnit" in selection:
        raise _policy_error(
            "countUnit can only be used when countType is sinceImagePushed, "
            "sinceImagePulled or sinceImageTransitioned"
        )
    storage_class = selection.get("storageClass", "standard")
    if storage_class not in ("standard", "archive"):
        raise _policy_error("storageClass must be standard or archive")
    if (storage_class == "archive") != (count_type == "sinceImageTransitioned"):
        raise _policy_error(
            "storageClass archive is required with countType sinceImageTransitioned "
            "and only allowed with it"
        )
    action_type = action["type"]
    target = action.get("targetStorageClass")
    if action_type == "transition" and target != "archive":
        raise _policy_error("targetStorageClass archive is required when type is transition")
    if action_type != "transition" and target is not None:
        raise _policy_error("targetStorageClass can only be used when type is transition")
    if count_type == "sinceImagePulled" and action_type != "transition":
        raise _policy_error("countType sinceImagePulled must be used with the transition action")
    if count_type == "sinceImageTransitioned":
        if action_type != "expire":
            raise _policy_error(
                "countType sinceImageTransitioned must be used with the expire action"
            )
        if selection["countNumber"] < MIN_ARCHIVE_DAYS:
            raise _policy_error(
                f"images must be in archive storage for a minimum of {MIN_ARCHIVE_DAYS} days"
            )


def _tag_lists(selection: dict[str, Any]) -> dict[str, list[str]]:
    lists = {}
    for name in ("tagPrefixList", "tagPatternList"):
        value = selection.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise _policy_error(f"{name} must be a list of non-empty strings")
        lists[name] = value
    return lists


def parse_lifecycle_policy(text: str) -> dict[str, Any]:
    """The policy, checked by moto's validator (the one PutLifecyclePolicy
    uses, taught the archive fields at install) and then against the rules
    the evaluator relies on, which the user guide states: unique rule
    priorities; tagged rules name a tagPrefixList or a tagPatternList (at most
    four wildcards a pattern), untagged rules neither; counts are positive
    integers; a policy has one or more rules; the archive combinations of
    ``_check_archive_rule``; and, per storage class ("The set of all rules
    selecting a specific storage class must contain a unique set of
    prefixes", "Only one rule selecting a specific storage class is allowed
    to select untagged images"), unique prefix sets, one untagged rule, and
    the ``any`` rule with the highest rulePriority ("A rule with a tagStatus
    value of any must have the highest value for rulePriority": per class,
    since the guide's "Combining archive and expire rules" has an ``any``
    rule in each)."""
    try:
        EcrLifecyclePolicyValidator(text).validate()
    except InvalidParameterException:
        raise
    except Exception:  # moto's validator assumes objects where it reads them
        raise _policy_error("Could not map policyString into LifecyclePolicy.") from None
    policy = json.loads(text)
    if not policy["rules"]:
        # "A lifecycle policy contains one or more rules."
        raise _policy_error("rules must contain at least one rule")
    priorities: set[int] = set()
    prefix_sets: set[tuple[str, frozenset[str]]] = set()
    untagged_classes: set[str] = set()
    for rule in policy["rules"]:
        priority = rule["rulePriority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
            raise _policy_error("rulePriority must be a positive integer")
        if priority in priorities:
            raise _policy_error(f"rulePriority {priority} is not unique")
        priorities.add(priority)
        selection = rule["selection"]
        if not isinstance(selection, dict) or not isinstance(rule["action"], dict):
            raise _policy_error("Could not map policyString into LifecyclePolicy.")
        count = selection["countNumber"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _policy_error("countNumber must be a positive integer")
        _check_archive_rule(selection, rule["action"])
        storage_class = _storage_class(selection)
        lists = _tag_lists(selection)
        tag_status = selection["tagStatus"]
        if tag_status == "tagged":
            if not any(lists.values()):
                raise _policy_error(
                    "tagPrefixList or tagPatternList is required when tagStatus is tagged"
                )
            for pattern in lists.get("tagPatternList", []):
                if pattern.count("*") > MAX_TAG_PATTERN_WILDCARDS:
                    raise _policy_error(
                        f"tagPatternList value '{pattern}' has more than "
                        f"{MAX_TAG_PATTERN_WILDCARDS} wildcards"
                    )
            if "tagPrefixList" in lists:
                prefixes = (storage_class, frozenset(lists["tagPrefixList"]))
                if prefixes in prefix_sets:
                    raise _policy_error("The set of rules must contain a unique set of tag prefixes")
                prefix_sets.add(prefixes)
        elif tag_status == "untagged":
            if lists:
                raise _policy_error(
                    "tagPrefixList and tagPatternList must be omitted when tagStatus is untagged"
                )
            if storage_class in untagged_classes:
                raise _policy_error("Only one rule is allowed to select untagged images")
            untagged_classes.add(storage_class)
    for rule in policy["rules"]:
        selection = rule["selection"]
        same_class = [
            r["rulePriority"]
            for r in policy["rules"]
            if _storage_class(r["selection"]) == _storage_class(selection)
        ]
        if selection["tagStatus"] == "any" and rule["rulePriority"] != max(same_class):
            raise _policy_error(
                "A rule with tagStatus any must have the highest value for rulePriority"
            )
    return policy


class LifecyclePolicyPreview:
    """The last lifecycle policy preview of a repository, complete at once."""

    def __init__(self, repository: Repository, policy_text: str, results: list[dict[str, Any]]):
        self.registry_id = repository.registry_id
        self.repository_name = repository.name
        self.policy_text = policy_text
        self.status = "COMPLETE"
        self.results = results

    @property
    def summary(self) -> dict[str, Any]:
        # transitioningImageTotalCounts "is only present if at least one
        # image will be transitioned" (LifecyclePolicyPreviewSummary).
        archiving = sum(1 for r in self.results if r["action"]["type"] == "TRANSITION")
        summary: dict[str, Any] = {"expiringImageTotalCount": len(self.results) - archiving}
        if archiving:
            summary["transitioningImageTotalCounts"] = [
                {"targetStorageClass": "ARCHIVE", "imageTotalCount": archiving}
            ]
        return summary


def start_lifecycle_policy_preview(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    lifecycle_policy_text: Optional[str] = None,
) -> dict[str, Any]:
    """Evaluate ``lifecycle_policy_text`` (else the repository's lifecycle
    policy) against the images of the repository now.  The answer says
    IN_PROGRESS, as Amazon ECR's does; the preview is complete at once."""
    _validate_registry_id(registry_id)
    repository = self._get_repository(repository_name, registry_id)
    if lifecycle_policy_text is None:
        if not repository.lifecycle_policy:
            raise LifecyclePolicyNotFoundException(repository.name, repository.registry_id)
        text = repository.lifecycle_policy
    else:
        if not isinstance(lifecycle_policy_text, str) or not (
            LIFECYCLE_POLICY_TEXT_MIN <= len(lifecycle_policy_text) <= LIFECYCLE_POLICY_TEXT_MAX
        ):
            raise _invalid(
                "lifecyclePolicyText",
                f"Member must have length between {LIFECYCLE_POLICY_TEXT_MIN} "
                f"and {LIFECYCLE_POLICY_TEXT_MAX}",
            )
        text = lifecycle_policy_text
    policy = parse_lifecycle_policy(text)
    images = list(repository.images)
    acted = evaluate_lifecycle_policy(policy, [_lifecycle_image(i) for i in images], time.time())
    results = []
    for image in images:
        if image.image_digest not in acted:
            continue
        priority, action = acted[image.image_digest]
        result: dict[str, Any] = {"imageDigest": image.image_digest}
        if image.image_tags:
            result["imageTags"] = list(image.image_tags)
        result.update(
            {
                "imagePushedAt": image.image_pushed_at,
                "action": (
                    {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"}
                    if action == "transition"
                    else {"type": "EXPIRE"}
                ),
                "appliedRulePriority": priority,
                "storageClass": "ARCHIVE" if _image_status(image) != "ACTIVE" else "STANDARD",
            }
        )
        results.append(result)
    repository.lifecycle_policy_preview = LifecyclePolicyPreview(repository, text, results)
    return {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "lifecyclePolicyText": text,
        "status": "IN_PROGRESS",
    }


def get_lifecycle_policy_preview(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str] = None,
    image_ids: Optional[list[dict[str, str]]] = None,
    preview_filter: Optional[dict[str, Any]] = None,
    max_results: Optional[int] = None,
    next_token: Optional[str] = None,
) -> dict[str, Any]:
    """The last preview of the repository: its results for the given images,
    or one page (1..100, ordered by push time and digest) of those that pass
    ``filter.tagStatus``.  ``summary`` counts the whole preview."""
    _validate_registry_id(registry_id)
    repository = self._get_repository(repository_name, registry_id)
    preview: Optional[LifecyclePolicyPreview] = getattr(
        repository, "lifecycle_policy_preview", None
    )
    if preview is None:
        raise LifecyclePolicyPreviewNotFoundException(repository.name, repository.registry_id)
    tag_status = (preview_filter or {}).get("tagStatus") or "ANY"
    _validate_enum("filter.tagStatus", tag_status, TAG_STATUS_VALUES)
    results = [
        r
        for r in preview.results
        if tag_status == "ANY" or (tag_status == "TAGGED") == bool(r.get("imageTags"))
    ]
    token = None
    if image_ids:
        _reject_paging_with("images with imageIds", max_results, next_token)
        results = [
            r
            for r in results
            if any(
                (i.get("imageDigest") or i.get("imageTag"))
                and i.get("imageDigest") in (None, r["imageDigest"])
                and (i.get("imageTag") is None or i["imageTag"] in r.get("imageTags", []))
                for i in image_ids
            )
        ]
    else:
        scope = _scope(
            "GetLifecyclePolicyPreview",
            registryId=repository.registry_id,
            repositoryName=repository.name,
            filter=preview_filter or {},
        )
        results, token = paginate(
            results,
            lambda r: (r["imagePushedAt"], r["imageDigest"]),
            max_results,
            next_token,
            scope,
            maximum=MAX_PREVIEW_RESULTS,
        )
    answer = {
        "registryId": preview.registry_id,
        "repositoryName": preview.repository_name,
        "lifecyclePolicyText": preview.policy_text,
        "status": preview.status,
        "previewResults": copy.deepcopy(results),
        "summary": preview.summary,
    }
    if token:
        answer["nextToken"] = token
    return answer


# ---------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------


def _with_token(result: dict[str, Any], token: Optional[str]) -> ActionResult:
    if token:
        result["nextToken"] = token
    return ActionResult(result)


def response_describe_repositories(self: ECRResponse) -> ActionResult:
    repositories, token = self.ecr_backend.describe_repositories(
        registry_id=self._get_param("registryId"),
        repository_names=self._get_param("repositoryNames"),
        max_results=self._get_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return _with_token({"repositories": repositories}, token)


def response_update_image_storage_class(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.update_image_storage_class(
            repository_name=self._get_param("repositoryName"),
            image_id=self._get_param("imageId") or {},
            target_storage_class=self._get_param("targetStorageClass"),
            registry_id=self._get_param("registryId"),
        )
    )


def response_describe_images(self: ECRResponse) -> ActionResult:
    images, token = self.ecr_backend.describe_images(
        repository_name=self._get_param("repositoryName"),
        registry_id=self._get_param("registryId"),
        image_ids=self._get_param("imageIds"),
        image_filter=self._get_param("filter"),
        max_results=self._get_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    repository = self.ecr_backend._get_repository(
        self._get_param("repositoryName"), self._get_param("registryId")
    )
    details = []
    for image in images:
        detail = copy.copy(image)
        # Amazon ECR leaves out imageTags when an image has none.
        if not detail.image_tags:
            del detail.image_tags
        scan = _image_scan_details(self.ecr_backend, repository, image)
        detail.image_scan_status = scan.get("imageScanStatus")
        detail.image_scan_findings_summary = scan.get("imageScanFindingsSummary")
        detail.image_status = _image_status(image)
        details.append(detail)
    return _with_token({"imageDetails": details}, token)


def response_list_images(self: ECRResponse) -> ActionResult:
    image_ids, token = self.ecr_backend.list_images(
        repository_name=self._get_param("repositoryName"),
        registry_id=self._get_param("registryId"),
        image_filter=self._get_param("filter"),
        max_results=self._get_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return _with_token({"imageIds": image_ids}, token)


def response_describe_image_scan_findings(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.describe_image_scan_findings(
            registry_id=self._get_param("registryId"),
            repository_name=self._get_param("repositoryName"),
            image_id=self._get_param("imageId"),
            max_results=self._get_param("maxResults"),
            next_token=self._get_param("nextToken"),
        )
    )


def response_create_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    rule = self.ecr_backend.create_pull_through_cache_rule(
        ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
        upstream_registry_url=self._get_param("upstreamRegistryUrl"),
        registry_id=self._get_param("registryId"),
        upstream_registry=self._get_param("upstreamRegistry"),
        credential_arn=self._get_param("credentialArn"),
        custom_role_arn=self._get_param("customRoleArn"),
        upstream_repository_prefix=self._get_param("upstreamRepositoryPrefix"),
    )
    # Shape CreatePullThroughCacheRuleResponse
    return ActionResult(
        rule.to_dict(
            [
                "ecrRepositoryPrefix",
                "upstreamRegistryUrl",
                "createdAt",
                "registryId",
                "upstreamRegistry",
                "credentialArn",
                "customRoleArn",
                "upstreamRepositoryPrefix",
            ]
        )
    )


def response_describe_pull_through_cache_rules(self: ECRResponse) -> ActionResult:
    rules, token = self.ecr_backend.describe_pull_through_cache_rules(
        registry_id=self._get_param("registryId"),
        ecr_repository_prefixes=self._get_param("ecrRepositoryPrefixes"),
        max_results=self._get_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return _with_token({"pullThroughCacheRules": [r.to_dict() for r in rules]}, token)


def response_update_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    rule = self.ecr_backend.update_pull_through_cache_rule(
        ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
        registry_id=self._get_param("registryId"),
        credential_arn=self._get_param("credentialArn"),
        custom_role_arn=self._get_param("customRoleArn"),
    )
    # Shape UpdatePullThroughCacheRuleResponse
    return ActionResult(
        rule.to_dict(
            [
                "ecrRepositoryPrefix",
                "registryId",
                "updatedAt",
                "credentialArn",
                "customRoleArn",
                "upstreamRepositoryPrefix",
            ]
        )
    )


def response_delete_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    rule = self.ecr_backend.delete_pull_through_cache_rule(
        ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
        registry_id=self._get_param("registryId"),
    )
    # Shape DeletePullThroughCacheRuleResponse
    return ActionResult(
        rule.to_dict(
            [
                "ecrRepositoryPrefix",
                "upstreamRegistryUrl",
                "createdAt",
                "registryId",
                "credentialArn",
                "customRoleArn",
                "upstreamRepositoryPrefix",
            ]
        )
    )


def response_validate_pull_through_cache_rule(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.validate_pull_through_cache_rule(
            ecr_repository_prefix=self._get_param("ecrRepositoryPrefix"),
            registry_id=self._get_param("registryId"),
        )
    )


def response_start_lifecycle_policy_preview(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.start_lifecycle_policy_preview(
            repository_name=self._get_param("repositoryName"),
            registry_id=self._get_param("registryId"),
            lifecycle_policy_text=self._get_param("lifecyclePolicyText"),
        )
    )


def response_get_lifecycle_policy_preview(self: ECRResponse) -> ActionResult:
    return ActionResult(
        self.ecr_backend.get_lifecycle_policy_preview(
            repository_name=self._get_param("repositoryName"),
            registry_id=self._get_param("registryId"),
            image_ids=self._get_param("imageIds"),
            preview_filter=self._get_param("filter"),
            max_results=self._get_param("maxResults"),
            next_token=self._get_param("nextToken"),
        )
    )


# ---------------------------------------------------------------------------
# Backend: repository names and tag mutability exclusions
# ---------------------------------------------------------------------------

#: Shape RepositoryName of the model: this pattern (anchored here), length
#: 2..256.  Components are separated by ".", "_", "__" or a run of "-"; moto's
#: own pattern predates "__" and "-+" and refused ``a__b`` and ``web--frontend``.
REPOSITORY_NAME_PATTERN = (
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
)
REPOSITORY_NAME_MIN, REPOSITORY_NAME_MAX = 2, 256
#: Shape ImageTagMutability.
TAG_MUTABILITY = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
EXCLUSION_MODES = ("IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
#: Shape ImageTagMutabilityExclusionFilters: a list of 1..5
#: ImageTagMutabilityExclusionFilter, each with both members required:
#: filterType (ImageTagMutabilityExclusionFilterType: WILDCARD) and filter
#: (ImageTagMutabilityExclusionFilterValue: length 1..128, this pattern).
EXCLUSION_FILTERS_MIN, EXCLUSION_FILTERS_MAX = 1, 5
EXCLUSION_FILTER_TYPES = ("WILDCARD",)
EXCLUSION_FILTER_PATTERN = r"^[0-9a-zA-Z._*-]{1,128}$"
EXCLUSION_FILTER_MIN, EXCLUSION_FILTER_MAX = 1, 128
EXCLUSION_MEMBER = "imageTagMutabilityExclusionFilters"


def _validate_tag_mutability(mode: Any, filters: Any) -> Optional[list[dict[str, str]]]:
    """The mode and filters of CreateRepository / PutImageTagMutability, as
    ECR checks them: the model's shapes first, then the pairing.  ECR answers
    an exclusion mode without filters with "ImageTagMutabilityExclusionFilters
    can't be null when imageTagMutability is set as IMMUTABLE_WITH_EXCLUSION"
    and refuses filters with MUTABLE or IMMUTABLE.  moto checked the pairing on
    create only, not the shapes, and on PutImageTagMutability silently turned
    IMMUTABLE with filters into IMMUTABLE_WITH_EXCLUSION.  Returns the filters
    as they are stored (``None`` when there are none)."""
    _validate_enum("imageTagMutability", mode, TAG_MUTABILITY)
    if filters is not None:
        _validate_list(EXCLUSION_MEMBER, filters, EXCLUSION_FILTERS_MIN, EXCLUSION_FILTERS_MAX)
        for i, exclusion in enumerate(filters):
            member = f"{EXCLUSION_MEMBER}.{i + 1}"
            if not isinstance(exclusion, dict):
                raise _invalid(member, "Member must be a structure")
            _validate_enum(f"{member}.filterType", exclusion.get("filterType"), EXCLUSION_FILTER_TYPES)
            _validate_pattern(
                f"{member}.filter",
                exclusion.get("filter"),
                EXCLUSION_FILTER_PATTERN,
                EXCLUSION_FILTER_MIN,
                EXCLUSION_FILTER_MAX,
            )
    if mode in EXCLUSION_MODES and filters is None:
        raise _invalid(
            EXCLUSION_MEMBER,
            f"ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as {mode}",
        )
    if mode not in EXCLUSION_MODES and filters is not None:
        raise _invalid(
            EXCLUSION_MEMBER,
            f"ImageTagMutabilityExclusionFilters must be null when imageTagMutability is set as {mode}",
        )
    if filters is None:
        return None
    return [{"filterType": f["filterType"], "filter": f["filter"]} for f in filters]


_moto_create_repository = ECRBackend.create_repository


def create_repository(
    self: ECRBackend,
    repository_name: str,
    registry_id: Optional[str],
    encryption_config: Any,
    image_scan_config: Any,
    image_tag_mutability: Optional[str],
    tags: list[dict[str, str]],
    image_tag_mutability_exclusion_filters: Any = None,
) -> Repository:
    """CreateRepository with the model's RepositoryName and the tag mutability
    checks of ``_validate_tag_mutability`` (the mode defaults to MUTABLE)."""
    _validate_pattern(
        "repositoryName",
        repository_name,
        f"^{REPOSITORY_NAME_PATTERN}$",
        REPOSITORY_NAME_MIN,
        REPOSITORY_NAME_MAX,
    )
    filters = _validate_tag_mutability(
        image_tag_mutability or "MUTABLE", image_tag_mutability_exclusion_filters
    )
    return _moto_create_repository(
        self,
        repository_name=repository_name,
        registry_id=registry_id,
        encryption_config=encryption_config,
        image_scan_config=image_scan_config,
        image_tag_mutability=image_tag_mutability,
        tags=tags,
        image_tag_mutability_exclusion_filters=filters,
    )


def put_image_tag_mutability(
    self: ECRBackend,
    registry_id: Optional[str],
    repository_name: str,
    image_tag_mutability: Any,
    image_tag_mutability_exclusion_filters: Any = None,
) -> dict[str, Any]:
    """PutImageTagMutability: validated as CreateRepository is; the mode is
    stored as sent, the filters replace the old ones (none without), and the
    response carries them, as PutImageTagMutabilityResponse says."""
    filters = _validate_tag_mutability(image_tag_mutability, image_tag_mutability_exclusion_filters)
    repository = self._get_repository(repository_name, registry_id)
    repository.image_tag_mutability_exclusion_filters = filters
    repository.image_tag_mutability = image_tag_mutability
    answer: dict[str, Any] = {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "imageTagMutability": image_tag_mutability,
    }
    if filters:
        answer[EXCLUSION_MEMBER] = copy.deepcopy(filters)
    return answer


def _exclusion_matches(pattern: str, tag: str) -> bool:
    """A WILDCARD exclusion filter: ``*`` matches any run of characters, and
    the filter must match the whole tag (``dev-*`` matches ``dev-1``, not
    ``devx``; ``latest`` matches only ``latest``)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), tag) is not None


def _resolve_image_tag_mutability(self: ECRBackend, repository: Repository, proposed_image_tag: Optional[str]) -> list[Image]:
    """The images holding the tag being pushed; refused when the tag may not
    move.  A tag is immutable in IMMUTABLE, and in the exclusion modes when it
    is immutable by the mode and not excluded, or mutable by the mode and
    excluded.  moto decided this with ``re.match(filter, tag)``: filters were
    regular expressions matched at the start, so ``latest`` also excluded
    ``latest-old`` and ``dev-*`` also ``devx``.  The error stays moto's."""
    holders = [image for image in repository.images if proposed_image_tag in image.image_tags]
    if not holders or proposed_image_tag is None:
        return holders
    excluded = any(
        _exclusion_matches(f["filter"], proposed_image_tag)
        for f in repository.image_tag_mutability_exclusion_filters or []
    )
    immutable_by_mode = repository.image_tag_mutability in ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")
    if immutable_by_mode != excluded:
        raise ImageAlreadyExistsException(
            registry_id=repository.registry_id,
            image_tag=proposed_image_tag,
            digest=holders[0].get_image_digest(),
            repository_name=repository.name,
        )
    return holders


# ---------------------------------------------------------------------------
# Registry policy
# ---------------------------------------------------------------------------

#: Shape RegistryPolicyText: length 0..10240.
REGISTRY_POLICY_TEXT_MAX = 10240
#: An ECR action as IAM writes it: the service prefix, then an action name in
#: which * and ? stand for any characters.
ECR_ACTION_PATTERN = re.compile(r"^ecr:[A-Za-z*?]+$")

_moto_put_registry_policy = ECRBackend.put_registry_policy


def _validate_registry_policy_action(self: ECRBackend, policy_text: str) -> None:
    """Every action of every statement is an ECR action (scope V2)."""
    for statement in json.loads(policy_text)["Statement"]:
        actions = statement.get("Action", [])
        if isinstance(actions, str):
            actions = [actions]
        if not all(isinstance(a, str) and ECR_ACTION_PATTERN.match(a) for a in actions):
            raise MalformedPolicyDocument()


def put_registry_policy(self: ECRBackend, policy_text: str) -> dict[str, Any]:
    if not isinstance(policy_text, str):
        raise _invalid("policyText", "Member must not be null")
    if len(policy_text) > REGISTRY_POLICY_TEXT_MAX:
        raise _invalid(
            "policyText", f"Member must have length less than or equal to {REGISTRY_POLICY_TEXT_MAX}"
        )
    return _moto_put_registry_policy(self, policy_text)


# ---------------------------------------------------------------------------
# Repository creation templates
# ---------------------------------------------------------------------------

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
        raise _invalid(member, "Member must be a string")
    if len(value) > high:
        raise _invalid(member, f"Member must have length less than or equal to {high}")


def _check_prefix(member: str, prefix: Any) -> str:
    _validate_pattern(
        member, prefix, TEMPLATE_PREFIX_PATTERN, TEMPLATE_PREFIX_MIN, TEMPLATE_PREFIX_MAX
    )
    return _prefix_key(prefix)


def _check_applied_for(value: Any, required: bool) -> None:
    if value is None:
        if required:
            raise _invalid("appliedFor", "Member must not be null")
        return
    if not isinstance(value, list):
        raise _invalid("appliedFor", "Member must be a list")
    for item in value:
        _validate_enum("appliedFor", item, APPLIED_FOR)


def _check_encryption(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid("encryptionConfiguration", "Member must be a structure")
    _validate_enum(
        "encryptionConfiguration.encryptionType", value.get("encryptionType"), ENCRYPTION_TYPES
    )
    key = value.get("kmsKey")
    if key is not None:
        _validate_pattern("encryptionConfiguration.kmsKey", key, KMS_KEY_PATTERN, 0, KMS_KEY_MAX)
    if key and value["encryptionType"] == "AES256":
        # As CreateRepository: a KMS key goes with KMS encryption only.
        raise _invalid(
            "encryptionConfiguration.kmsKey",
            "KMS key should not be specified when encryption type is AES256",
        )


def _check_tags(tags: Any) -> None:
    if tags is None:
        return
    if not isinstance(tags, list):
        raise _invalid("resourceTags", "Member must be a list")
    for i, tag in enumerate(tags):
        member = f"resourceTags.{i + 1}"
        if not isinstance(tag, dict) or "Key" not in tag or "Value" not in tag:
            raise _invalid(member, "Key and Value must not be null")
        _validate_pattern(f"{member}.Key", tag["Key"], r"(?s).+", 1, TAG_KEY_MAX)
        _validate_pattern(f"{member}.Value", tag["Value"], r"(?s).*", 0, TAG_VALUE_MAX)


def _check_policies(repository_policy: Any, lifecycle_policy: Any) -> None:
    _check_length("repositoryPolicy", repository_policy, REPOSITORY_POLICY_MAX)
    _check_length("lifecyclePolicy", lifecycle_policy, LIFECYCLE_POLICY_MAX)
    if repository_policy:
        try:
            document = json.loads(repository_policy)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise _invalid("repositoryPolicy", "Invalid repository policy provided")
    if lifecycle_policy:
        parse_lifecycle_policy(lifecycle_policy)


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
    values["imageTagMutabilityExclusionFilters"] = _validate_tag_mutability(mode, filters) or []


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
    scope = _scope(
        "DescribeRepositoryCreationTemplates", prefixes=sorted(prefixes or []), account=self.account_id
    )
    return paginate(
        selected, lambda t: _prefix_key(t.values["prefix"]), max_results, next_token, scope
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
    return _with_token(result, token)


# ---------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------

_BACKEND_METHODS: dict[str, Callable[..., Any]] = {
    "describe_repositories": describe_repositories,
    "describe_images": describe_images,
    "list_images": list_images,
    "describe_image_scan_findings": describe_image_scan_findings,
    "start_image_scan": start_image_scan,
    "put_image": put_image,
    "put_image_scanning_configuration": put_image_scanning_configuration,
    "create_repository": create_repository,
    "put_image_tag_mutability": put_image_tag_mutability,
    "_resolve_image_tag_mutability": _resolve_image_tag_mutability,
    "put_replication_configuration": put_replication_configuration,
    "describe_registry": describe_registry,
    "start_lifecycle_policy_preview": start_lifecycle_policy_preview,
    "get_lifecycle_policy_preview": get_lifecycle_policy_preview,
    "update_image_storage_class": update_image_storage_class,
    "batch_get_image": batch_get_image,
    "put_lifecycle_policy": put_lifecycle_policy,
    "create_pull_through_cache_rule": create_pull_through_cache_rule,
    "describe_pull_through_cache_rules": describe_pull_through_cache_rules,
    "update_pull_through_cache_rule": update_pull_through_cache_rule,
    "delete_pull_through_cache_rule": delete_pull_through_cache_rule,
    "validate_pull_through_cache_rule": validate_pull_through_cache_rule,
    "_validate_registry_policy_action": _validate_registry_policy_action,
    "put_registry_policy": put_registry_policy,
    "create_repository_creation_template": create_repository_creation_template,
    "update_repository_creation_template": update_repository_creation_template,
    "delete_repository_creation_template": delete_repository_creation_template,
    "describe_repository_creation_templates": describe_repository_creation_templates,
}

# moto dispatches an ECR action to the ECRResponse method named after it.
_RESPONSE_METHODS: dict[str, Callable[..., Any]] = {
    "describe_repositories": response_describe_repositories,
    "describe_images": response_describe_images,
    "list_images": response_list_images,
    "describe_image_scan_findings": response_describe_image_scan_findings,
    "create_pull_through_cache_rule": response_create_pull_through_cache_rule,
    "describe_pull_through_cache_rules": response_describe_pull_through_cache_rules,
    "update_pull_through_cache_rule": response_update_pull_through_cache_rule,
    "delete_pull_through_cache_rule": response_delete_pull_through_cache_rule,
    "validate_pull_through_cache_rule": response_validate_pull_through_cache_rule,
    "start_lifecycle_policy_preview": response_start_lifecycle_policy_preview,
    "get_lifecycle_policy_preview": response_get_lifecycle_policy_preview,
    "update_image_storage_class": response_update_image_storage_class,
    "create_repository_creation_template": response_create_repository_creation_template,
    "update_repository_creation_template": response_update_repository_creation_template,
    "delete_repository_creation_template": response_delete_repository_creation_template,
    "describe_repository_creation_templates": response_describe_repository_creation_templates,
}

_moto_backend_init = ECRBackend.__init__


def _backend_init(self: ECRBackend, region_name: str, account_id: str) -> None:
    _moto_backend_init(self, region_name, account_id)
    # Keyed by (registryId, prefix without trailing "/").  Lives on the
    # backend, so moto's reset (POST /moto-api/reset) clears it.
    self.pull_through_cache_rules: dict[tuple[str, str], PullThroughCacheRule] = {}
    # Keyed by prefix without trailing "/"; one template per prefix.
    self.repository_creation_templates: dict[str, RepositoryCreationTemplate] = {}


_installed = False


def install() -> None:
    """Patch moto's ECR backend and response classes (idempotent)."""
    global _installed
    if _installed:
        return
    ECRBackend.__init__ = _backend_init  # type: ignore[method-assign]
    # moto's CreateRepository checks names against this module global.
    moto_ecr_models.ECR_REPOSITORY_NAME_PATTERN = REPOSITORY_NAME_PATTERN
    _teach_moto_archive_rules()
    for name, function in _BACKEND_METHODS.items():
        function.__name__ = name
        setattr(ECRBackend, name, function)
    for name, function in _RESPONSE_METHODS.items():
        function.__name__ = name
        setattr(ECRResponse, name, function)
    # Imported here: it builds on this module's helpers and methods.
    import moto_ecr_registry_settings

    moto_ecr_registry_settings.install()
    _installed = True


install()


# ---------------------------------------------------------------------------
# Test control: fault switch and call counters (a WSGI middleware)
# ---------------------------------------------------------------------------

#: X-Amz-Target prefixes of the JSON-protocol services watched here.
TARGET_PREFIXES = {
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "secretsmanager": "secretsmanager",
}
#: The modelled 5xx error of each service.
SERVER_ERROR_CODES = {"ecr": "ServerException", "secretsmanager": "InternalServiceError"}
FAULT_KINDS = ("throttle", "server_error", "latency")
EXT_PREFIX = "/moto-api/ecr-ext"


class FaultError(ValueError):
    """A fault definition that cannot be accepted."""


class Fault:
    """One rule of the fault switch.  See ``EcrExtMiddleware``."""

    def __init__(self, fault_id: int, spec: dict[str, Any]):
        if not isinstance(spec, dict):
            raise FaultError("a fault is a JSON object")
        unknown = set(spec) - {
            "service",
            "operation",
            "kind",
            "count",
            "fraction",
            "seed",
            "latencyMs",
            "errorCode",
            "httpStatus",
            "message",
        }
        if unknown:
            raise FaultError(f"unknown fields: {sorted(unknown)}")
        self.id = fault_id
        self.service = spec.get("service", "ecr")
        if self.service not in (*TARGET_PREFIXES.values(), "*"):
            raise FaultError(f"service must be one of {[*TARGET_PREFIXES.values(), '*']}")
        self.operation = spec.get("operation", "*")
        if not isinstance(self.operation, str) or not self.operation:
            raise FaultError("operation must be an operation name or '*'")
        self.kind = spec.get("kind")
        if self.kind not in FAULT_KINDS:
            raise FaultError(f"kind must be one of {list(FAULT_KINDS)}")
        self.count = spec.get("count")
        if self.count is not None and (
            isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1
        ):
            raise FaultError("count must be a positive integer")
        self.fraction = spec.get("fraction")
        if self.fraction is not None and (
            isinstance(self.fraction, bool)
            or not isinstance(self.fraction, (int, float))
            or not 0.0 <= self.fraction <= 1.0
        ):
            raise FaultError("fraction must be a number between 0.0 and 1.0")
        self.seed = spec.get("seed")
        self._random = random.Random(self.seed)
        self.latency_ms = spec.get("latencyMs", 0 if self.kind != "latency" else None)
        if self.kind == "latency" and (
            isinstance(self.latency_ms, bool)
            or not isinstance(self.latency_ms, (int, float))
            or self.latency_ms < 0
        ):
            raise FaultError("a latency fault needs latencyMs >= 0")
        self.error_code = spec.get("errorCode")
        self.http_status = spec.get("httpStatus")
        if self.http_status is not None and (
            not isinstance(self.http_status, int) or not 400 <= self.http_status <= 599
        ):
            raise FaultError("httpStatus must be an HTTP error status")
        self.message = spec.get("message")
        self.matched = 0
        self.injected = 0

    def matches(self, service: str, operation: str) -> bool:
        return self.service in ("*", service) and self.operation in ("*", operation)

    def fires(self) -> bool:
        """Called with the switch's lock held, for a matching call."""
        self.matched += 1
        if self.fraction is not None and self._random.random() >= self.fraction:
            return False
        self.injected += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.injected >= self.count

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind,
            "count": self.count,
            "remaining": None if self.count is None else self.count - self.injected,
            "fraction": self.fraction,
            "seed": self.seed,
            "matched": self.matched,
            "injected": self.injected,
        }
        if self.kind == "latency":
            out["latencyMs"] = self.latency_ms
        for key, value in (
            ("errorCode", self.error_code),
            ("httpStatus", self.http_status),
            ("message", self.message),
        ):
            if value is not None:
                out[key] = value
        return out


class EcrExtMiddleware:
    """WSGI middleware for the moto server: a fault switch and call counters.

    Requests are told apart by their ``X-Amz-Target`` header
    (``AmazonEC2ContainerRegistry_V20150921.<Operation>`` for ECR,
    ``secretsmanager.<Operation>`` for Secrets Manager).

    ``/moto-api/ecr-ext/faults``
        ``POST`` a JSON fault::

            {"service": "ecr" (default) | "secretsmanager" | "*",
             "operation": "DescribeRepositories" | "*" (default),
             "kind": "throttle" | "server_error" | "latency",
             "count": N,            # fire on the next N matching calls, then expire
             "fraction": 0.0-1.0,   # fire on this share of matching calls
             "seed": any,           #   ... drawn from random.Random(seed)
             "latencyMs": N,        # for kind latency
             "errorCode": "...", "httpStatus": N, "message": "..."}  # overrides

        Without count and fraction a fault fires on every matching call until
        cleared; with both, on a share of them until it has fired N times.
        Answer: 201 with the fault (with its ``id``).  ``GET`` lists active
        faults (``{"faults": [...]}``), ``DELETE`` clears them all,
        ``DELETE /moto-api/ecr-ext/faults/<id>`` one.

        ``throttle`` answers HTTP 400 with the JSON error Amazon uses:
        header ``x-amzn-ErrorType: ThrottlingException`` and body
        ``{"__type": "ThrottlingException", "message": "Rate exceeded"}``.
        ``server_error`` answers HTTP 500 with the service's modelled server
        error (ECR: ``ServerException``; Secrets Manager:
        ``InternalServiceError``).  ``latency`` waits, then lets the call
        proceed.  Several latency faults add up; the first error fault that
        fires answers the call.

    ``/moto-api/ecr-ext/calls``
        ``GET``: ``{"<Operation>": n, ...}``, calls received per ECR operation,
        faulted ones included.  ``GET .../calls/faulted``: the same for the
        calls answered by an injected error.  ``?service=secretsmanager``
        selects another service.  ``DELETE .../calls`` resets all counters.

    ``POST /moto-api/ecr-ext/repositories``
        ``{"region", "repositories": [CreateRepository request, ...]}``:
        creates them in bulk, as CreateRepository does, without counting calls
        (benchmarks seed 100,000 repositories this way).

    ``POST /moto-api/reset`` (moto's reset) also clears faults and counters.

    Calls to moto's backends are serialised with one lock: moto's backends
    are not written for concurrent requests (e.g. iterating a dict another
    request is adding to), and ECR calls are short.  Injected latency is spent
    outside that lock, and so is SQS ReceiveMessage: a long poll waits up to
    20 s for a message that another request (a scan announced on EventBridge)
    must be able to send meanwhile; moto's queues only append and pop there.
    """

    def __init__(self, app: Callable[..., Any]):
        self.app = app
        self._lock = threading.Lock()
        self._backend_lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1
        self._calls: dict[str, Counter[str]] = {}
        self._faulted: dict[str, Counter[str]] = {}

    # -- state -------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._faulted.clear()

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        with self._lock:
            fault = Fault(self._next_id, spec)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def _decide(self, service: str, operation: str) -> tuple[float, Optional[Fault]]:
        """Count the call and pick what to do: (delay in s, error fault or None)."""
        delay = 0.0
        error = None
        with self._lock:
            self._calls.setdefault(service, Counter())[operation] += 1
            for fault in list(self._faults):
                if not fault.matches(service, operation):
                    continue
                if fault.kind != "latency" and error is not None:
                    continue
                if not fault.fires():
                    continue
                if fault.kind == "latency":
                    delay += fault.latency_ms / 1000.0
                else:
                    error = fault
                if fault.exhausted:
                    self._faults.remove(fault)
            if error is not None:
                self._faulted.setdefault(service, Counter())[operation] += 1
        return delay, error

    # -- WSGI --------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == EXT_PREFIX or path.startswith(EXT_PREFIX + "/"):
            return self._control(environ, start_response, path[len(EXT_PREFIX) :], method)
        if path.rstrip("/") == "/moto-api/reset" and method == "POST":
            self.reset()

        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        service = TARGET_PREFIXES.get(prefix)
        if service is not None and operation:
            delay, error = self._decide(service, operation)
            if delay:
                time.sleep(delay)
            if error is not None:
                _drain(environ)
                return self._error(start_response, service, error)

        if target == "AmazonSQS.ReceiveMessage":
            return list(self.app(environ, start_response))
        with self._backend_lock:
            # moto (Flask) builds the whole body before returning it.
            return list(self.app(environ, start_response))

    def _error(self, start_response: Callable[..., Any], service: str, fault: Fault) -> list[bytes]:
        if fault.kind == "throttle":
            status = fault.http_status or 400
            code = fault.error_code or "ThrottlingException"
            message = fault.message or "Rate exceeded"
        else:
            status = fault.http_status or 500
            code = fault.error_code or SERVER_ERROR_CODES.get(service, "InternalFailure")
            message = fault.message or "Injected server error"
        body = json.dumps({"__type": code, "message": message}).encode()
        request_id = str(uuid.uuid4())
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("Content-Length", str(len(body))),
                ("x-amzn-ErrorType", code),
                ("x-amzn-RequestId", request_id),
            ],
        )
        return [body]

    def _control(
        self, environ: dict[str, Any], start_response: Callable[..., Any], sub: str, method: str
    ) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        service = query.get("service", ["ecr"])[0]
        sub = sub.rstrip("/")
        try:
            if sub == "/faults":
                if method == "GET":
                    with self._lock:
                        return _json(start_response, 200, {"faults": [f.to_json() for f in self._faults]})
                if method == "POST":
                    try:
                        spec = json.loads(_drain(environ) or b"null")
                    except ValueError as e:
                        raise FaultError(f"body is not JSON: {e}") from None
                    return _json(start_response, 201, self.add_fault(spec).to_json())
                if method == "DELETE":
                    with self._lock:
                        cleared = len(self._faults)
                        self._faults.clear()
                    return _json(start_response, 200, {"cleared": cleared})
            elif sub.startswith("/faults/") and method == "DELETE":
                fault_id = sub[len("/faults/") :]
                with self._lock:
                    kept = [f for f in self._faults if str(f.id) != fault_id]
                    cleared = len(self._faults) - len(kept)
                    self._faults[:] = kept
                if not cleared:
                    return _json(start_response, 404, {"error": f"no fault {fault_id}"})
                return _json(start_response, 200, {"cleared": cleared})
            elif sub == "/calls":
                if method == "GET":
                    with self._lock:
                        return _json(start_response, 200, dict(self._calls.get(service, {})))
                if method == "DELETE":
                    with self._lock:
                        self._calls.clear()
                        self._faulted.clear()
                    return _json(start_response, 200, {})
            elif sub == "/rescan" and method == "POST":
                return self._rescan(start_response, environ)
            elif sub == "/repositories" and method == "POST":
                return self._seed_repositories(start_response, environ)
            elif sub == "/calls/faulted" and method == "GET":
                with self._lock:
                    return _json(start_response, 200, dict(self._faulted.get(service, {})))
            else:
                return _json(start_response, 404, {"error": f"no such endpoint: {EXT_PREFIX}{sub}"})
            return _json(start_response, 405, {"error": f"method {method} not allowed"})
        except FaultError as e:
            return _json(start_response, 400, {"error": str(e)})


    def _rescan(self, start_response: Callable[..., Any], environ: dict[str, Any]) -> list[bytes]:
        """``POST /moto-api/ecr-ext/rescan`` with ``{"repositoryName",
        "imageDigest"[, "registryId", "region"]}``: see ``rescan_image``."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ecr.models import ecr_backends

        try:
            spec = json.loads(_drain(environ) or b"null")
        except ValueError as e:
            raise FaultError(f"body is not JSON: {e}") from None
        if not isinstance(spec, dict) or not spec.get("repositoryName") or not spec.get("imageDigest"):
            raise FaultError("repositoryName and imageDigest are required")
        account = spec.get("registryId") or DEFAULT_ACCOUNT_ID
        backend = ecr_backends[account][spec.get("region") or "us-east-1"]
        try:
            with self._backend_lock:
                answer = rescan_image(backend, account, spec["repositoryName"], spec["imageDigest"])
        except Exception as e:  # noqa: BLE001 - moto's not-found errors, for the caller
            return _json(start_response, 404, {"error": str(e)})
        return _json(start_response, 200, answer)

    def _seed_repositories(
        self, start_response: Callable[..., Any], environ: dict[str, Any]
    ) -> list[bytes]:
        """``POST /moto-api/ecr-ext/repositories`` with ``{"region",
        "repositories": [CreateRepository request, ...]}``: creates every
        repository as CreateRepository does (the same backend call with the
        same members and checks, one lock held for the batch), without a
        signed request and a response each, so that benchmarks can seed
        100,000 repositories in seconds.  Answers ``{"created": n}``, or 400
        naming the first request refused (those before it stay created)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ecr.models import ecr_backends

        try:
            spec = json.loads(_drain(environ) or b"null")
        except ValueError as e:
            raise FaultError(f"body is not JSON: {e}") from None
        requests = spec.get("repositories") if isinstance(spec, dict) else None
        if not isinstance(requests, list):
            raise FaultError("repositories (a list of CreateRepository requests) is required")
        region = spec.get("region") or "us-east-1"
        created = 0
        with self._backend_lock:
            for request in requests:
                if not isinstance(request, dict) or not request.get("repositoryName"):
                    raise FaultError(f"request {created}: repositoryName is required")
                account = request.get("registryId") or DEFAULT_ACCOUNT_ID
                try:
                    ecr_backends[account][region].create_repository(
                        repository_name=request["repositoryName"],
                        registry_id=request.get("registryId"),
                        encryption_config=request.get("encryptionConfiguration"),
                        image_scan_config=request.get("imageScanningConfiguration"),
                        image_tag_mutability=request.get("imageTagMutability"),
                        image_tag_mutability_exclusion_filters=request.get(
                            "imageTagMutabilityExclusionFilters"
                        ),
                        tags=request.get("tags", []),
                    )
                except Exception as e:  # noqa: BLE001 - moto's errors, for the caller
                    name = request["repositoryName"]
                    raise FaultError(f"request {created} ({name}): {e}") from None
                created += 1
        return _json(start_response, 200, {"created": created})


_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _drain(environ: dict[str, Any]) -> bytes:
    """Read the request body.  A server that closes a socket with unread
    input resets the connection, and the client may then lose the answer."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _json(start_response: Callable[..., Any], status: int, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
