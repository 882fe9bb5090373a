//! Container image references, parsed and normalised the way the container runtime does it
//! (docker's `reference.ParseNormalizedNamed` from `distribution/reference`), and recognition of
//! the Amazon ECR registry hosts among them.
//!
//! The grammar, as `distribution/reference` states it:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6 ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex     (sha256, sha384, sha512; lowercase hex of full length)
//! ```
//!
//! A first path component is a registry host only when it contains `.` or `:`, is `localhost`, or
//! has an uppercase letter; otherwise the image is on Docker Hub (`docker.io`), and a one-component
//! Docker Hub name gets the `library/` prefix. Like `docker pull`, a reference with neither tag nor
//! digest means the tag `latest`.

use std::fmt;
use std::str::FromStr;

use crate::text::clip;

/// The registry host of Docker Hub images.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag of a reference that names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (`domain/path`) the grammar accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const TAG_LENGTH_MAX: usize = 128;
/// Inputs echoed in error messages are clipped to this many bytes: the message ends up in
/// admission responses and logs, and a pod spec may carry arbitrarily long strings.
const ECHO_MAX: usize = 80;

/// A parsed, normalised image reference: `domain/path[:tag][@digest]`.
///
/// The `Display` form is the fully normalised reference (`nginx` displays as
/// `docker.io/library/nginx:latest`) and parses back to the same value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a valid image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// The reference is the empty string.
    #[error("image reference is empty")]
    Empty,
    /// A bare 64-digit hex string is an image ID, which the runtime refuses as a repository name.
    #[error("image reference {0:?} is an image ID (64 hex digits), not a repository name")]
    ImageId(String),
    /// The registry host or port does not follow the grammar.
    #[error("invalid registry host {host:?}: {problem}")]
    InvalidDomain {
        /// The host as written (clipped).
        host: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Repository paths must be lowercase.
    #[error("repository name {0:?} must be lowercase")]
    Uppercase(String),
    /// A path component does not follow the grammar.
    #[error(
        "invalid repository name {path:?}: component {component:?} must be lowercase letters and \
         digits, separated by '.', '_', '__' or dashes"
    )]
    InvalidPath {
        /// The repository path (clipped).
        path: String,
        /// The offending component (clipped; empty for `a//b`).
        component: String,
    },
    /// `domain/path` is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name is {len} characters long; the limit is {NAME_TOTAL_LENGTH_MAX}")]
    NameTooLong {
        /// The length of the normalised `domain/path`.
        len: usize,
    },
    /// The tag does not follow the grammar.
    #[error(
        "invalid tag {0:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with \
         '.' or '-'"
    )]
    InvalidTag(String),
    /// The digest does not have the shape `algorithm:hex`.
    #[error("invalid digest {0:?}: expected ALGORITHM:HEX, e.g. sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    /// The digest algorithm is well-formed but not one the runtime verifies.
    #[error("unsupported digest algorithm {0:?}: use sha256, sha384 or sha512")]
    UnsupportedDigest(String),
    /// The digest has the wrong number of hex digits for its algorithm.
    #[error("digest {digest:?} has {got} hex digits; {algorithm} needs {want}")]
    DigestLength {
        /// The digest as written (clipped).
        digest: String,
        /// Its algorithm.
        algorithm: &'static str,
        /// Hex digits present.
        got: usize,
        /// Hex digits required.
        want: usize,
    },
}

impl ImageRef {
    /// Parses and normalises `s` as the container runtime does (see the module docs).
    pub fn parse(s: &str) -> Result<Self, ImageRefError> {
        if s.is_empty() {
            return Err(ImageRefError::Empty);
        }
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ImageRefError::ImageId(s.to_owned()));
        }
        // Names and tags never contain '@', so the first one starts the digest.
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (s, None),
        };
        let (domain, remainder) = split_domain(rest);
        // Paths never contain ':', so the first one in the remainder starts the tag.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };
        validate_domain(domain)?;
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ImageRefError::Uppercase(clip(path, ECHO_MAX)));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        validate_path(&path)?;
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        let len = domain.len() + 1 + path.len();
        if len > NAME_TOTAL_LENGTH_MAX {
            return Err(ImageRefError::NameTooLong { len });
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            domain: domain.to_owned(),
            path,
            tag,
            digest,
        })
    }

    /// The registry host, with its port when one was given (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry (`library/nginx`, `team/app`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag: as written, `latest` when neither tag nor digest was given, `None` for a
    /// digest-only reference.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The ECR coordinates of this image, when its registry host is an Amazon ECR private
    /// registry endpoint.
    pub fn ecr(&self) -> Option<EcrImage> {
        let host = EcrHost::parse(&self.domain)?;
        Some(EcrImage {
            account: host.account,
            region: host.region,
            repository: self.path.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            fips: host.fips,
            dual_stack: host.dual_stack,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An image in an Amazon ECR private registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EcrImage {
    /// The 12-digit AWS account id (ECR's registry id).
    pub account: String,
    /// The AWS region, lowercase (`us-east-1`).
    pub region: String,
    /// The ECR repository name (`team/app`).
    pub repository: String,
    /// The tag, when the reference has one (`latest` when it had neither tag nor digest).
    pub tag: Option<String>,
    /// The digest, when the reference pins one.
    pub digest: Option<String>,
    /// Pulled through a FIPS endpoint (`dkr.ecr-fips`, `dkr-ecr-fips`).
    pub fips: bool,
    /// Pulled through a dual-stack (IPv4 and IPv6) endpoint (`ACCOUNT.dkr-ecr.REGION.on.aws`).
    pub dual_stack: bool,
}

/// The parts of an ECR registry host.
struct EcrHost {
    account: String,
    region: String,
    fips: bool,
    dual_stack: bool,
}

impl EcrHost {
    /// Recognises the documented ECR private registry hosts (case-insensitively, as DNS is):
    ///
    /// - `ACCOUNT.dkr.ecr.REGION.amazonaws.com` and `ACCOUNT.dkr.ecr-fips.REGION.amazonaws.com`
    /// - `ACCOUNT.dkr.ecr.REGION.amazonaws.com.cn` (China regions)
    /// - `ACCOUNT.dkr-ecr.REGION.on.aws` and `ACCOUNT.dkr-ecr-fips.REGION.on.aws` (dual-stack)
    ///
    /// An explicit `:443` is the same endpoint; any other port is not ECR.
    fn parse(domain: &str) -> Option<Self> {
        let host = match domain.rsplit_once(':') {
            Some((host, "443")) => host,
            Some(_) => return None,
            None => domain,
        }
        .to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        let (account, service, region, suffix) = match labels.as_slice() {
            [account, "dkr", service, region, suffix @ ..] => (*account, *service, *region, suffix),
            [account, service, region, suffix @ ..] => (*account, *service, *region, suffix),
            _ => return None,
        };
        let dotted = labels.get(1) == Some(&"dkr");
        let (fips, dual_stack) = match (dotted, service, suffix) {
            (true, "ecr", ["amazonaws", "com"] | ["amazonaws", "com", "cn"]) => (false, false),
            (true, "ecr-fips", ["amazonaws", "com"]) => (true, false),
            (false, "dkr-ecr", ["on", "aws"]) => (false, true),
            (false, "dkr-ecr-fips", ["on", "aws"]) => (true, true),
            _ => return None,
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !account_ok || !is_region(region) {
            return None;
        }
        Some(Self {
            account: account.to_owned(),
            region: region.to_owned(),
            fips,
            dual_stack,
        })
    }
}

/// AWS region names: `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1`.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Splits `name` into registry host and the rest as docker's `splitDockerDomain` does, with
/// `index.docker.io` normalised to `docker.io`.
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((LEGACY_DEFAULT_DOMAIN, tail)) => (DEFAULT_DOMAIN, tail),
        Some((first, tail)) if looks_like_domain(first) => (first, tail),
        _ => (DEFAULT_DOMAIN, name),
    }
}

/// docker's `splitDockerDomain` test for "this first component is a registry host".
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn validate_domain(domain: &str) -> Result<(), ImageRefError> {
    let invalid = |problem| ImageRefError::InvalidDomain {
        host: clip(domain, ECHO_MAX),
        problem,
    };
    let (host_ok, port) = if let Some(inner) = domain.strip_prefix('[') {
        let (addr, after) = inner
            .split_once(']')
            .ok_or_else(|| invalid("unclosed '[' in an IPv6 address"))?;
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b == b':' || b.is_ascii_hexdigit());
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("unexpected text after the IPv6 address"))?,
            ),
        };
        (addr_ok, port)
    } else {
        let (host, port) = match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        };
        (
            !host.is_empty() && host.split('.').all(is_domain_component),
            port,
        )
    };
    if !host_ok {
        return Err(invalid(
            "host names are dot-separated letters, digits and inner dashes",
        ));
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err(invalid("the port must be digits"))
        }
        _ => Ok(()),
    }
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

fn validate_path(path: &str) -> Result<(), ImageRefError> {
    match path.split('/').find(|c| !is_path_component(c)) {
        Some(component) => Err(ImageRefError::InvalidPath {
            path: clip(path, ECHO_MAX),
            component: clip(component, ECHO_MAX),
        }),
        None => Ok(()),
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            i += 1;
        }
        if i == start {
            return false;
        }
        match b.get(i) {
            None => return true,
            Some(b'.') => i += 1,
            Some(b'_') => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            Some(b'-') => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            Some(_) => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn validate_tag(tag: &str) -> Result<(), ImageRefError> {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let b = tag.as_bytes();
    let ok = b.len() <= TAG_LENGTH_MAX
        && b.first().is_some_and(word)
        && b.iter().all(|x| word(x) || *x == b'.' || *x == b'-');
    if ok {
        Ok(())
    } else {
        Err(ImageRefError::InvalidTag(clip(tag, ECHO_MAX)))
    }
}

/// The digest grammar of `distribution/reference`, then `go-digest`'s validation: only the
/// algorithms the runtime can verify, with lowercase hex of exactly the hash's length.
fn parse_digest(d: &str) -> Result<String, ImageRefError> {
    let invalid = || ImageRefError::InvalidDigest(clip(d, ECHO_MAX));
    let (algorithm, hex) = d.split_once(':').ok_or_else(invalid)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.split(['-', '_', '+', '.']).all(|part| {
            part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let (name, want) = match algorithm {
        "sha256" => ("sha256", 64),
        "sha384" => ("sha384", 96),
        "sha512" => ("sha512", 128),
        _ => return Err(ImageRefError::UnsupportedDigest(clip(algorithm, ECHO_MAX))),
    };
    if hex.len() != want {
        return Err(ImageRefError::DigestLength {
            digest: clip(d, ECHO_MAX),
            algorithm: name,
            got: hex.len(),
            want,
        });
    }
    if !hex.bytes().all(is_lower_hex) {
        return Err(invalid());
    }
    Ok(d.to_owned())
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
