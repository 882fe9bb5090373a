"""Several AWS accounts in one moto server, reached through STS AssumeRole.

What moto (pinned in requirements.txt) does on its own, in server mode
----------------------------------------------------------------------
Every backend is keyed by account id and region, and moto picks the account
of a request from its credentials (``BaseResponse.get_current_account``):

1. ``MOTO_ACCOUNT_ID`` in the *server's* environment, for every request (so
   the launcher must not be started with it: it would pin all requests, the
   assumed ones too, to one account);
2. else an ``x-moto-account-id`` request header;
3. else the account whose moto IAM holds the request's access key id (the
   20-character ``AKIA``/``ASIA`` key id of the SigV4 ``Authorization``
   header);
4. else the default account, 123456789012: what any unknown key (``testing``,
   ``AKIAIOSFODNN7EXAMPLE``, ...) gets.

``sts:AssumeRole`` of ``arn:aws:iam::222222222222:role/x`` creates a temporary
``ASIA...`` access key in account 222222222222's IAM (the account comes from
the role ARN) and answers it with a secret key and a session token.  Requests
signed with that key then land in account 222222222222's backends (rule 3),
in the region they are signed for: ECR answers with ``registryId``
222222222222 and ARNs of that account, and each (account, region) pair has
its own repositories.  The session token is not checked, nor is the
expiration.  ``GetCallerIdentity`` with the key answers the assumed-role ARN
``arn:aws:sts::222222222222:assumed-role/x/<session>``.  A client therefore
reaches another account exactly as against AWS: any credentials for the
caller, an STS client at the moto endpoint, AssumeRole, then the returned
credentials for the service clients (the SDKs' assume-role credential
providers do that at the same endpoint override).  Two caveats: a moto reset
(``POST /moto-api/reset``) forgets the temporary keys, after which cached
credentials silently fall back to the default account (rule 4); and the
role's account is read from the ARN only (an ARN without an account, or of
another service, stays in the caller's account).

moto grants every AssumeRole: the role need not exist, and neither its trust
policy nor ``ExternalId`` is looked at (``ExternalId`` is stored, unchecked).

The addition: AssumeRole checks the trust policy of roles that exist
---------------------------------------------------------------------
When the role named by ``RoleArn`` exists in moto's IAM of its account (ARN
equal to the role's, path included), AssumeRole evaluates the role's trust
policy (``AssumeRolePolicyDocument``) as IAM does for the parts a test needs,
and refuses the call unless it allows it:

* a statement applies when its ``Action`` (or a wildcard such as ``sts:*``)
  matches ``sts:AssumeRole`` (``NotAction`` is not supported: such a
  statement never applies), its ``Principal`` names the caller, and all its
  ``Condition`` blocks hold;
* the caller is named by ``"*"``, ``{"AWS": "*"}``, its account (``"111122223333"``
  or ``arn:aws:iam::111122223333:root``), or its exact ARN: an IAM user's
  ARN, or for a session of an assumed role the role's ARN or the session's
  ``arn:aws:sts::...:assumed-role/<role>/<session>``.  A caller with a key
  moto does not know is ``arn:aws:sts::<account>:user/moto`` of the account
  of rule 2/4 (moto's GetCallerIdentity says the same).  ``Service`` and
  ``Federated`` principals never name an IAM caller;
* conditions: the operators ``StringEquals``, ``StringNotEquals``,
  ``StringLike``, ``StringNotLike`` (with their ``IfExists`` forms) and
  ``Null``, on the key ``sts:ExternalId`` (the request's ``ExternalId``),
  ``aws:PrincipalAccount`` and ``aws:PrincipalArn``; keys are case-insensitive,
  values case-sensitive; several values are ORed, several keys and operators
  ANDed.  A condition on another key, or with another operator, does not
  hold (refusing is the safe reading of what is not modelled);
* an explicit ``Deny`` that applies wins over any ``Allow``.

A refusal is answered as STS answers it: HTTP 403, the query protocol's
``ErrorResponse`` with ``Type`` Sender, ``Code`` AccessDenied and the message
"User: <caller ARN> is not authorized to perform: sts:AssumeRole on
resource: <role ARN>", which botocore parses into a ClientError with code
AccessDenied (and the Rust SDK into an unhandled error with that code).

A role that does not exist is still granted, as moto grants it (AWS would
refuse): tests that never create roles keep working.  So a test that needs
"a role that cannot be assumed" creates the role in its account first, with
a trust policy that does not admit the caller or that requires an
``ExternalId`` the caller does not send (``sts:ExternalId`` under
``StringEquals``, the form the IAM user guide gives).  A role is created in
another account by signing IAM calls for it: the ``x-moto-account-id:
222222222222`` header (rule 2), or credentials of a session already in that
account.  Changing the trust policy (``UpdateAssumeRolePolicy``) or deleting
the role takes effect at the next AssumeRole; credentials already issued
stay valid, as in AWS.

The other AssumeRole checks stay moto's: ``RoleSessionName`` longer than 64
characters is refused (ValidationError); ``DurationSeconds``, the
``ExternalId`` pattern and session policies are not checked.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from typing import Any, Optional
from urllib.parse import unquote
from xml.sax.saxutils import escape

from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse
from moto.utilities.utils import get_partition

__all__ = ["Caller", "assume_role_refusal", "evaluate_trust_policy", "install"]

ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(.+)$")
ASSUME_ROLE = "sts:AssumeRole"
STRING_OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike")


class Caller:
    """Who signs an AssumeRole: ``account``, ``arn`` (what AccessDenied
    names), and the ARNs a trust policy's Principal may name it by."""

    def __init__(self, account: str, arn: str, names: tuple[str, ...]):
        self.account = account
        self.arn = arn
        self.names = names


def _caller(access_key_id: str, current_account: str, partition: str) -> Caller:
    for _, by_partition in list(sts_backends.items()):
        for backend in list(by_partition.values()):
            session = backend.get_assumed_role_from_access_key(access_key_id)
            if session is not None:
                return Caller(session.account_id, session.arn, (session.arn, session.role_arn))
    for account, by_partition in list(iam_backends.items()):
        iam = by_partition[partition]
        user = iam.get_user_from_access_key_id(access_key_id)
        if user is not None:
            return Caller(account, user.arn, (user.arn,))
    arn = f"arn:{partition}:sts::{current_account}:user/moto"
    return Caller(current_account, arn, (arn,))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _names_caller(principal: Any, caller: Caller, partition: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for entry in _as_list(principal.get("AWS")):
        if entry == "*" or entry == caller.account:
            return True
        if entry == f"arn:{partition}:iam::{caller.account}:root":
            return True
        if entry in caller.names:
            return True
    return False


def _action_matches(action: Any) -> bool:
    return any(
        isinstance(pattern, str) and fnmatch.fnmatchcase(ASSUME_ROLE.lower(), pattern.lower())
        for pattern in _as_list(action)
    )


def _condition_holds(conditions: Any, context: dict[str, Optional[str]]) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return False
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            return False
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        for key, wanted in block.items():
            key = key.lower()
            if key not in context:
                return False
            value = context[key]
            values = [str(v) for v in _as_list(wanted)]
            if base == "Null":
                if values[0].lower() not in ("true", "false"):
                    return False
                if (value is None) != (values[0].lower() == "true"):
                    return False
                continue
            if base not in STRING_OPERATORS:
                return False
            if value is None:
                if if_exists:
                    continue
                # A missing key satisfies no positive operator and, as IAM
                # evaluates it, every negated one.
                if base in ("StringEquals", "StringLike"):
                    return False
                continue
            if base.endswith("Like"):
                matched = any(fnmatch.fnmatchcase(value, v) for v in values)
            else:
                matched = value in values
            if matched == ("Not" in base):
                return False
    return True


def evaluate_trust_policy(
    document: Any, caller: Caller, external_id: Optional[str], partition: str = "aws"
) -> bool:
    """Whether the trust policy ``document`` (JSON text, possibly
    URL-encoded, or a parsed dict) lets ``caller`` assume the role."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(unquote(document))
    context = {
        "sts:externalid": external_id,
        "aws:principalaccount": caller.account,
        "aws:principalarn": caller.names[-1],
    }
    allowed = False
    for statement in _as_list(document.get("Statement")):
        if not isinstance(statement, dict):
            continue
        if not _action_matches(statement.get("Action")):
            continue
        if not _names_caller(statement.get("Principal"), caller, partition):
            continue
        if not _condition_holds(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def assume_role_refusal(
    role_arn: Optional[str],
    external_id: Optional[str],
    access_key_id: str,
    current_account: str,
    region: str,
) -> Optional[str]:
    """The AccessDenied message for an AssumeRole the role's trust policy
    refuses, or None when it is granted (always for a role moto's IAM does
    not hold)."""
    match = ROLE_ARN.match(role_arn or "")
    if match is None:
        return None
    partition = get_partition(region)
    iam = iam_backends[match.group(2)][partition]
    try:
        role = iam.get_role_by_arn(role_arn)
    except NotFoundException:
        return None
    caller = _caller(access_key_id, current_account, partition)
    if evaluate_trust_policy(role.assume_role_policy_document, caller, external_id, partition):
        return None
    return f"User: {caller.arn} is not authorized to perform: {ASSUME_ROLE} on resource: {role_arn}"


def access_denied(message: str) -> tuple[int, dict[str, Any], str]:
    """STS's answer to a refused call (query protocol, HTTP 403)."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return 403, {"status": 403, "Content-Type": "text/xml"}, body


_moto_assume_role = TokenResponse.assume_role


def assume_role(self: TokenResponse) -> Any:
    refusal = assume_role_refusal(
        self._get_param("RoleArn"),
        self._get_param("ExternalId"),
        self.get_access_key(),
        self.current_account,
        self.region,
    )
    if refusal is not None:
        return access_denied(refusal)
    return _moto_assume_role(self)


def install() -> None:
    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]


install()
