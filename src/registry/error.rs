//! ECR errors, classified so that controllers decide from the class, never from a message.

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};

/// What kind of failure an ECR call had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The resource does not exist.
    NotFound,
    /// The resource exists already.
    AlreadyExists,
    /// The repository still holds images.
    NotEmpty,
    /// ECR throttled the call (after the SDK's own retries).
    Throttled,
    /// ECR rejected the request as invalid; repeating it will not help.
    Invalid,
    /// A service limit would be exceeded.
    LimitExceeded,
    /// The credentials may not do this, or are missing.
    AccessDenied,
    /// Server errors, timeouts, connection failures: worth retrying.
    Transient,
    /// A write refused before it was sent: this replica does not hold the leader lease (or
    /// could not renew it in time). Retried; it succeeds on whichever replica leads.
    Fenced,
    /// No credentials for the call: the role of a RegistryTarget could not be assumed (STS
    /// refused, or could not be reached). Retried with backoff: a fixed trust policy heals it.
    Credentials,
}

/// Error codes saying that what was asked for does not exist.
const NOT_FOUND: &[&str] = &[
    "RepositoryNotFoundException",
    "RepositoryPolicyNotFoundException",
    "LifecyclePolicyNotFoundException",
    "PullThroughCacheRuleNotFoundException",
    "RegistryPolicyNotFoundException",
    "ImageNotFoundException",
    "ScanNotFoundException",
    "SecretNotFoundException",
    "ResourceNotFoundException",
    "LifecyclePolicyPreviewNotFoundException",
    "TemplateNotFoundException",
    "SigningConfigurationNotFoundException",
    "ExclusionNotFoundException",
    // ECR Public.
    "RepositoryCatalogDataNotFoundException",
    "RegistryNotFoundException",
];

/// Error codes saying that what was to be created exists already.
const ALREADY_EXISTS: &[&str] = &[
    "RepositoryAlreadyExistsException",
    "PullThroughCacheRuleAlreadyExistsException",
    "ResourceExistsException",
    "TemplateAlreadyExistsException",
    "ExclusionAlreadyExistsException",
];

impl ErrorClass {
    /// Permanent failures wait for a spec change instead of retrying.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            ErrorClass::Invalid | ErrorClass::AccessDenied | ErrorClass::LimitExceeded
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "not_found",
            ErrorClass::AlreadyExists => "already_exists",
            ErrorClass::NotEmpty => "not_empty",
            ErrorClass::Throttled => "throttled",
            ErrorClass::Invalid => "invalid",
            ErrorClass::LimitExceeded => "limit_exceeded",
            ErrorClass::AccessDenied => "access_denied",
            ErrorClass::Transient => "transient",
            ErrorClass::Fenced => "fenced",
            ErrorClass::Credentials => "credentials",
        }
    }

    /// Classifies an AWS error code (the `__type` / `x-amzn-ErrorType` of the response).
    pub fn from_code(code: &str, http_status: Option<u16>) -> ErrorClass {
        match code {
            c if NOT_FOUND.contains(&c) => ErrorClass::NotFound,
            c if ALREADY_EXISTS.contains(&c) => ErrorClass::AlreadyExists,
            "RepositoryNotEmptyException" => ErrorClass::NotEmpty,
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException" => ErrorClass::Throttled,
            "LimitExceededException" | "TooManyTagsException" => ErrorClass::LimitExceeded,
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "UnauthorizedOperation"
            | "MissingAuthenticationToken"
            | "BlockedByOrganizationPolicyException" => ErrorClass::AccessDenied,
            "InvalidParameterException"
            | "InvalidTagParameterException"
            | "ValidationException"
            | "KmsException"
            | "UnsupportedUpstreamRegistryException"
            | "UnableToAccessSecretException"
            | "UnableToDecryptSecretValueException"
            | "UnableToGetUpstreamImageException"
            | "SecretNotFoundExceptionForUpstream"
            | "InvalidRequestException"
            | "InvalidParameterValueException"
            | "MalformedPolicyDocumentException"
            // ECR Public outside us-east-1: "The action isn't supported in this Region."
            | "UnsupportedCommandException" => ErrorClass::Invalid,
            "ServerException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "InternalServiceError" => ErrorClass::Transient,
            _ => match http_status {
                Some(s) if s >= 500 => ErrorClass::Transient,
                Some(429) => ErrorClass::Throttled,
                Some(403) => ErrorClass::AccessDenied,
                Some(404) => ErrorClass::NotFound,
                Some(s) if s >= 400 => ErrorClass::Invalid,
                _ => ErrorClass::Transient,
            },
        }
    }
}

/// A failed registry call.
#[derive(Debug, thiserror::Error)]
#[error("ECR {operation} failed ({class}): {message}", class = class.as_str())]
pub struct RegistryError {
    pub class: ErrorClass,
    pub operation: &'static str,
    /// The AWS error code, when the service answered.
    pub code: Option<String>,
    pub message: String,
}

impl RegistryError {
    pub fn new(class: ErrorClass, operation: &'static str, message: impl Into<String>) -> Self {
        RegistryError {
            class,
            operation,
            code: None,
            message: message.into(),
        }
    }

    /// Classifies any SDK error: service errors by code and HTTP status, the rest (timeouts,
    /// dispatch and response failures) as transient, construction failures as invalid.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        match &err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().map(str::to_string);
                let status = ctx.raw().status_code();
                let class = code
                    .as_deref()
                    .map(|c| ErrorClass::from_code(c, Some(status)))
                    .unwrap_or_else(|| ErrorClass::from_code("", Some(status)));
                let message =
                    ctx.err().message().map(str::to_string).unwrap_or_else(|| {
                        code.clone().unwrap_or_else(|| format!("HTTP {status}"))
                    });
                RegistryError {
                    class,
                    operation,
                    code,
                    message,
                }
            }
            SdkError::ConstructionFailure(_) => RegistryError {
                class: ErrorClass::Invalid,
                operation,
                code: None,
                message: error_chain(&err),
            },
            // Identity resolution fails before the request is sent: a dispatch failure too.
            _ if is_credentials_failure(&err) => RegistryError {
                class: ErrorClass::Credentials,
                operation,
                code: None,
                message: error_chain(&err),
            },
            // The fence refuses before each attempt: a dispatch failure.
            _ if is_fenced(&err) => RegistryError {
                class: ErrorClass::Fenced,
                operation,
                code: None,
                message: error_chain(&err),
            },
            _ => RegistryError {
                class: ErrorClass::Transient,
                operation,
                code: None,
                message: error_chain(&err),
            },
        }
    }
}

/// The HTTP status of a raw response, for classification of unmodelled errors.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Whether the leader fence refused the call (see [`super::fence`]).
fn is_fenced(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<super::fence::Fenced>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether the call failed for want of credentials (an assumed role's, see
/// [`super::targets`]): the credentials provider's error is in the chain.
fn is_credentials_failure(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Counts one call's outcome in `stats` under `operation` and classifies its error: the one
/// place every AWS call (ECR, Secrets Manager, SQS) is recorded.
pub(crate) fn record_outcome<T, E, R>(
    stats: &super::CallStats,
    operation: &'static str,
    result: std::result::Result<T, SdkError<E, R>>,
) -> super::Result<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    match result {
        Ok(v) => {
            stats.record(operation, "success");
            Ok(v)
        }
        Err(e) => {
            let err = RegistryError::from_sdk(operation, e);
            stats.record(operation, err.class.as_str());
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_from_codes() {
        let table = [
            ("RepositoryNotFoundException", 400, ErrorClass::NotFound),
            (
                "RepositoryAlreadyExistsException",
                400,
                ErrorClass::AlreadyExists,
            ),
            ("RepositoryNotEmptyException", 400, ErrorClass::NotEmpty),
            ("ThrottlingException", 400, ErrorClass::Throttled),
            ("InvalidParameterException", 400, ErrorClass::Invalid),
            ("LimitExceededException", 400, ErrorClass::LimitExceeded),
            ("AccessDeniedException", 400, ErrorClass::AccessDenied),
            ("ServerException", 500, ErrorClass::Transient),
            (
                "RepositoryCatalogDataNotFoundException",
                400,
                ErrorClass::NotFound,
            ),
            ("RegistryNotFoundException", 400, ErrorClass::NotFound),
            ("UnsupportedCommandException", 400, ErrorClass::Invalid),
            ("TooManyTagsException", 400, ErrorClass::LimitExceeded),
            ("SomethingNew", 503, ErrorClass::Transient),
            ("SomethingNew", 429, ErrorClass::Throttled),
            ("SomethingNew", 400, ErrorClass::Invalid),
        ];
        for (code, status, class) in table {
            assert_eq!(ErrorClass::from_code(code, Some(status)), class, "{code}");
        }
        assert!(ErrorClass::Invalid.is_permanent());
        assert!(!ErrorClass::Throttled.is_permanent());
    }
}
