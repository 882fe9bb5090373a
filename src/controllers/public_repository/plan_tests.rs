use super::*;

use crate::api::public_repository::{CatalogData, PublicRepositorySpec};
use crate::api::repository::{Effect, PolicyStatement, Principals, RepositoryPolicy};
use crate::api::tags::Tags;

const OWNER: &str = "c/ns/web";

fn repo(adopt: bool) -> PublicRepository {
    let mut r = PublicRepository::new(
        "web",
        PublicRepositorySpec {
            repository_name: "ns/web".into(),
            adopt,
            ..Default::default()
        },
    );
    r.metadata.namespace = Some("ns".into());
    r
}

fn info() -> PublicRepositoryInfo {
    PublicRepositoryInfo {
        name: "ns/web".into(),
        arn: "arn:aws:ecr-public::123456789012:repository/ns/web".into(),
        uri: "public.ecr.aws/o5l1c9o9/ns/web".into(),
        registry_id: "123456789012".into(),
        created_at: Some(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

fn recorded() -> PublicRepositoryStatus {
    PublicRepositoryStatus {
        repository_arn: Some(info().arn),
        created_at: status::recorded_time(info().created_at),
        ownership: Some(Ownership::Created),
        ..Default::default()
    }
}

fn granted(adopt: bool, by: Option<&str>) -> Access {
    Access::Granted {
        adopt,
        by: by.map(str::to_string),
    }
}

/// What a claim comes to.
#[derive(Debug, PartialEq)]
enum Want {
    Owned(bool),
    Adopt,
    Refused(&'static str, &'static str),
}

/// (what, found owner, adopt, status, access, repository, expected).
type ClaimCase = (
    &'static str,
    Option<&'static str>,
    bool,
    PublicRepositoryStatus,
    Access,
    PublicRepositoryInfo,
    Want,
);

#[test]
fn claims() {
    let other = PublicRepositoryInfo {
        created_at: None,
        ..info()
    };
    let cases: Vec<ClaimCase> = vec![
        (
            "our tag, recorded",
            Some(OWNER),
            false,
            recorded(),
            granted(false, None),
            info(),
            Want::Owned(false),
        ),
        (
            "our tag, status lost: taken back",
            Some(OWNER),
            false,
            Default::default(),
            granted(false, None),
            info(),
            Want::Owned(true),
        ),
        (
            "someone else's tag",
            Some("c/other/x"),
            true,
            recorded(),
            granted(true, None),
            info(),
            Want::Refused("Conflict", "owned by c/other/x"),
        ),
        (
            "another cluster's tag",
            Some("c2/ns/web"),
            true,
            Default::default(),
            granted(true, None),
            info(),
            Want::Refused("Conflict", "owned by c2/ns/web"),
        ),
        (
            "tag removed outside, recorded repository",
            None,
            false,
            recorded(),
            granted(false, None),
            info(),
            Want::Owned(false),
        ),
        (
            "no tag, same name re-created outside",
            None,
            false,
            recorded(),
            granted(false, None),
            other.clone(),
            Want::Refused("Conflict", "spec.adopt"),
        ),
        (
            "no tag, no adopt",
            None,
            false,
            Default::default(),
            granted(true, Some("p")),
            info(),
            Want::Refused("Conflict", "set spec.adopt: true"),
        ),
        (
            "no tag, adopt, grant allows",
            None,
            true,
            Default::default(),
            granted(true, Some("p")),
            info(),
            Want::Adopt,
        ),
        (
            "no tag, adopt, default grant",
            None,
            true,
            Default::default(),
            granted(false, None),
            info(),
            Want::Refused("Forbidden", "default grant allows no adoption"),
        ),
        (
            "no tag, adopt, policy without adoption",
            None,
            true,
            Default::default(),
            granted(false, Some("p")),
            info(),
            Want::Refused(
                "Forbidden",
                "RepositoryAccessPolicy p grants it without allowAdoption",
            ),
        ),
    ];
    for (what, found, adopt, status, access, info, want) in cases {
        let got = match decide_claim(&info, found, OWNER, &repo(adopt), &status, &access) {
            Claim::Owned { taken_back } => Want::Owned(taken_back),
            Claim::Adopt => Want::Adopt,
            Claim::Refuse(e) => {
                let reason = e.reason().as_str();
                let message = e.to_string();
                match &want {
                    Want::Refused(r, part) if *r == reason && message.contains(part) => {
                        Want::Refused(r, part)
                    }
                    _ => panic!("{what}: refused {reason}: {message}"),
                }
            }
        };
        assert_eq!(got, want, "{what}");
    }
}

fn desired(catalog: Option<PublicCatalog>, logo: Option<&[u8]>) -> Desired {
    Desired {
        name: "ns/web".into(),
        catalog,
        logo: logo.map(|b| Logo::new(b.to_vec(), "test").unwrap()),
        tags: BTreeMap::from([(OWNER_TAG.to_string(), OWNER.to_string())]),
        policy: None,
    }
}

fn text(description: &str) -> PublicCatalog {
    PublicCatalog {
        description: description.into(),
        architectures: vec!["ARM 64".into(), "x86-64".into()],
        ..Default::default()
    }
}

fn seen(catalog: PublicCatalog, url: Option<&str>) -> PublicCatalogInfo {
    PublicCatalogInfo {
        catalog,
        logo_url: url.map(str::to_string),
    }
}

fn sent(sha_of: Option<&[u8]>, url: Option<&str>, managed: bool) -> PublicRepositoryStatus {
    PublicRepositoryStatus {
        logo_sha256: sha_of.map(|b| Logo::new(b.to_vec(), "t").unwrap().sha256),
        logo_url: url.map(str::to_string),
        catalog_managed: managed,
        ..Default::default()
    }
}

/// (what, desired, observed, status, expected write).
type CatalogCase = (
    &'static str,
    Desired,
    PublicCatalogInfo,
    PublicRepositoryStatus,
    Option<&'static str>,
);

#[test]
fn catalog_writes() {
    let a: &[u8] = b"logo a";
    let b: &[u8] = b"logo b";
    let cases: Vec<CatalogCase> = vec![
        (
            "in sync with a logo",
            desired(Some(text("d")), Some(a)),
            seen(text("d"), Some("u1")),
            sent(Some(a), Some("u1"), true),
            None,
        ),
        (
            "in sync without a logo",
            desired(Some(text("d")), None),
            seen(text("d"), None),
            sent(None, None, true),
            None,
        ),
        (
            "description changed outside",
            desired(Some(text("d")), Some(a)),
            seen(text("x"), Some("u1")),
            sent(Some(a), Some("u1"), true),
            Some("catalogData"),
        ),
        (
            "architectures reordered outside",
            desired(Some(text("d")), None),
            seen(
                PublicCatalog {
                    architectures: vec!["x86-64".into(), "ARM 64".into()],
                    ..text("d")
                },
                None,
            ),
            sent(None, None, true),
            Some("catalogData"),
        ),
        (
            "logo source changed",
            desired(Some(text("d")), Some(b)),
            seen(text("d"), Some("u1")),
            sent(Some(a), Some("u1"), true),
            Some("logoImage"),
        ),
        (
            "logo replaced outside (URL moved)",
            desired(Some(text("d")), Some(a)),
            seen(text("d"), Some("u2")),
            sent(Some(a), Some("u1"), true),
            Some("logoImage"),
        ),
        (
            "logo removed outside",
            desired(Some(text("d")), Some(a)),
            seen(text("d"), None),
            sent(Some(a), Some("u1"), true),
            Some("logoImage"),
        ),
        (
            "logo put outside, none declared",
            desired(Some(text("d")), None),
            seen(text("d"), Some("u9")),
            sent(None, None, true),
            Some("logoImage"),
        ),
        (
            "first sight: logo never sent",
            desired(Some(text("d")), Some(a)),
            seen(text("d"), Some("u1")),
            sent(None, None, false),
            Some("logoImage"),
        ),
        (
            "catalog dropped from the spec, ours",
            desired(None, None),
            seen(text("d"), Some("u1")),
            sent(Some(a), Some("u1"), true),
            Some("catalogData"),
        ),
        (
            "catalog dropped, already empty",
            desired(None, None),
            seen(PublicCatalog::default(), None),
            sent(None, None, true),
            None,
        ),
        (
            "no catalog declared, not ours",
            desired(None, None),
            seen(text("theirs"), Some("u")),
            sent(None, None, false),
            None,
        ),
    ];
    for (what, want, observed, status, expected) in cases {
        assert_eq!(plan_catalog(&want, &observed, &status), expected, "{what}");
    }
    assert!(!catalog_read_needed(
        &desired(None, None),
        &sent(None, None, false)
    ));
    assert!(catalog_read_needed(
        &desired(None, None),
        &sent(None, None, true)
    ));
    assert!(catalog_read_needed(
        &desired(Some(text("d")), None),
        &sent(None, None, false)
    ));
}

#[test]
fn logo_bounds_and_digest() {
    // LogoImageBlob: at most 512000 bytes.
    assert!(Logo::new(vec![0; LOGO_MAX_BYTES], "x").is_ok());
    let err = Logo::new(vec![0; LOGO_MAX_BYTES + 1], "ConfigMap ns/l key k").unwrap_err();
    assert_eq!(err.reason().as_str(), "Invalid");
    assert!(err.to_string().contains("ConfigMap ns/l key k"), "{err}");
    // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
    assert_eq!(
        Logo::new(b"abc".to_vec(), "x").unwrap().sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

fn policy() -> RepositoryPolicy {
    RepositoryPolicy {
        version: None,
        statements: vec![PolicyStatement {
            sid: None,
            effect: Effect::Allow,
            principals: Principals {
                aws: vec!["*".into()],
                service: vec![],
            },
            actions: vec!["ecr-public:PutImage".into()],
            conditions: BTreeMap::new(),
        }],
    }
}

#[test]
fn plans_of_tags_catalog_and_policy() {
    let mut spec = repo(false);
    spec.spec.tags = Tags::from_iter([("team", "web")]);
    spec.spec.catalog_data = Some(CatalogData {
        description: Some("d".into()),
        ..Default::default()
    });
    spec.spec.repository_policy = Some(policy());
    let want = Desired::from_spec(&spec, OWNER, None);
    assert_eq!(want.tags.get(OWNER_TAG).map(String::as_str), Some(OWNER));
    let policy_text = want.policy.clone().unwrap().to_string();
    let in_sync = Observed {
        tags: want.tags.clone(),
        catalog: Some(seen(
            catalog_of(spec.spec.catalog_data.as_ref().unwrap()),
            None,
        )),
        policy: Some(Some(policy_text.clone())),
    };
    let mut status = recorded();
    status.managed_tag_keys = vec!["team".into(), "gone".into()];
    status.policy_managed = true;
    status.catalog_managed = true;
    let p = plan(&want, &in_sync, &status, false);
    assert_eq!(
        p,
        Plan {
            policy: Some(PolicyAction::Keep),
            ..Default::default()
        }
    );
    assert!(p.changes().is_empty());

    // A tag removed outside, one we set dropped from the spec, a foreign one kept, the policy
    // changed outside.
    let mut drift = in_sync.clone();
    drift.tags.remove("team");
    drift.tags.insert("gone".into(), "x".into());
    drift.tags.insert("foreign".into(), "y".into());
    drift.policy = Some(Some("{\"Statement\":[]}".into()));
    let p = plan(&want, &drift, &status, false);
    assert_eq!(p.tags_set, BTreeMap::from([("team".into(), "web".into())]));
    assert_eq!(p.tags_remove, vec!["gone".to_string()]);
    assert_eq!(p.policy, Some(PolicyAction::Put(policy_text)));
    assert_eq!(p.changes(), vec!["tags", "repositoryPolicy"]);

    // The policy dropped from the spec: deleted when ours, kept when not; not read when
    // neither declared nor ours.
    let mut bare = want.clone();
    bare.policy = None;
    assert_eq!(
        plan(&bare, &in_sync, &status, false).policy,
        Some(PolicyAction::Delete)
    );
    let not_ours = PublicRepositoryStatus {
        policy_managed: false,
        ..status.clone()
    };
    assert_eq!(
        plan(&bare, &in_sync, &not_ours, false).policy,
        Some(PolicyAction::Keep)
    );
    assert!(!policy_read(&bare, &not_ours, false));
    assert!(
        policy_read(&bare, &not_ours, true),
        "taken back: the old object's policy is ours"
    );
}

#[test]
fn status_and_events() {
    let mut spec = repo(false);
    spec.spec.catalog_data = Some(CatalogData::default());
    spec.spec.tags = Tags::from_iter([("b", "1"), ("a", "2")]);
    let logo = Logo::new(b"x".to_vec(), "t").unwrap();
    let want = Desired::from_spec(&spec, OWNER, Some(logo.clone()));
    let s = synced_status(
        Default::default(),
        &spec,
        &want,
        &info(),
        Ownership::Adopted,
        Some("u".into()),
    );
    assert_eq!(
        s.repository_uri.as_deref(),
        Some("public.ecr.aws/o5l1c9o9/ns/web")
    );
    assert_eq!(s.logo_url.as_deref(), Some("u"));
    assert_eq!(s.logo_sha256, Some(logo.sha256));
    assert_eq!(s.managed_tag_keys, vec!["a", "b"]);
    assert!(s.catalog_managed && !s.policy_managed);
    assert!(status_records(&s, &info()));
    // Without catalog data nothing of the logo is recorded.
    let bare = Desired::from_spec(&repo(false), OWNER, None);
    let s = synced_status(
        s,
        &repo(false),
        &bare,
        &info(),
        Ownership::Adopted,
        Some("u".into()),
    );
    assert_eq!(
        (s.logo_url, s.logo_sha256, s.catalog_managed),
        (None, None, false)
    );

    let cases = [
        ((true, false, vec![], false), Some("Created")),
        ((false, true, vec!["tags"], true), Some("Adopted")),
        ((false, false, vec!["catalogData"], true), Some("Updated")),
        (
            (false, false, vec!["tags", "logoImage"], false),
            Some("DriftCorrected"),
        ),
        ((false, false, vec![], true), None),
    ];
    for ((created, adopted, changes, spec_changed), want) in cases {
        let got = announce("ns/web", created, adopted, &changes, spec_changed);
        assert_eq!(got.as_ref().map(|a| a.reason), want, "{changes:?}");
    }
    let drift = announce("ns/web", false, false, &["tags", "logoImage"], false).unwrap();
    assert_eq!(
        drift.note,
        "Restored tags, logoImage changed outside ecr-operator"
    );
}
