//! Every worked example of the Amazon ECR User Guide page "Examples of lifecycle policies", run
//! through parse → validate → evaluate. Policy texts are the documented ones; the archived copy of
//! the guide (github.com/awsdocs/amazon-ecr-user-guide) uses `tagPrefixList`, the current page the
//! equivalent `tagPatternList`, so both variants are checked where they differ.
//!
//! "N days ago" is taken as exactly N × 24 h before `now`. Where the guide shows a policy without a
//! repository (the first two sections, and every archive example), the image set is ours and says
//! so. The archive examples ("Filtering on last pulled time", "Filtering on archive transition
//! time" and the section "Archive examples") also check which images are archived and which
//! expired, and by which rule.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{Action, Image, StorageClass, evaluate, parse, validate};

struct Example {
    /// Section of the examples page, and which doc version the policy text comes from.
    source: &'static str,
    policy: &'static str,
    /// (name, tags, pushed N days ago); the name is also the digest.
    images: &'static [(&'static str, &'static [&'static str], i64)],
    /// Names of the images the guide says are expired.
    expired: &'static [&'static str],
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// Repository of "Filtering on multiple rules", Examples A and B.
const MULTI_RULE_REPO: &[(&str, &[&str], i64)] = &[
    ("A", &["beta-1", "prod-1"], 10),
    ("B", &["beta-2", "prod-2"], 9),
    ("C", &["beta-3"], 8),
];

/// Repository of "Filtering on multiple tags in a single rule", Example A.
const MULTI_TAG_REPO_A: &[(&str, &[&str], i64)] = &[
    ("A", &["alpha-1"], 12),
    ("B", &["beta-1"], 11),
    ("C", &["alpha-2", "beta-2"], 10),
    ("D", &["alpha-3"], 4),
    ("E", &["beta-3"], 3),
    ("F", &["alpha-4", "beta-4"], 2),
];

/// Repository of "Filtering on multiple tags in a single rule", Example B.
const MULTI_TAG_REPO_B: &[(&str, &[&str], i64)] = &[
    ("A", &["alpha-1", "beta-1", "gamma-1"], 10),
    ("B", &["alpha-2", "beta-2"], 9),
    ("C", &["alpha-3", "beta-3", "gamma-2"], 8),
];

/// Repository of "Filtering on all images", Example B. D and E are both pushed "1 day ago"; the
/// guide's outcome (D expired by the `any` rule) needs E to count as the newer one, which our
/// tie-break (larger digest is newer) gives, and which the guide's listing order suggests.
const ALL_IMAGES_REPO_B: &[(&str, &[&str], i64)] = &[
    ("A", &["alpha-1", "beta-1"], 4),
    ("B", &[], 3),
    ("C", &["alpha-2"], 2),
    ("D", &["git hash"], 1),
    ("E", &[], 1),
];

const EXAMPLES: &[Example] = &[
    Example {
        source: "Filtering on image age (archived guide: untagged, 14 days); images are ours",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days",
            "selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},
            "action":{"type":"expire"}}]}"#,
        images: &[
            ("old", &[], 15),
            ("fresh", &[], 13),
            ("tagged-old", &["v1"], 30),
        ],
        expired: &["old"],
    },
    Example {
        source: "Filtering on image age (current guide: tagPatternList prod*, 14 days); images are ours",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Expire images older than 14 days",
            "selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14},
            "action":{"type":"expire"}}]}"#,
        images: &[
            ("prod-old", &["prod-1"], 20),
            ("prod-bare", &["prod"], 15),
            ("prod-new", &["prod-2"], 3),
            ("dev-old", &["dev-1"], 30),
            ("untagged-old", &[], 30),
        ],
        expired: &["prod-old", "prod-bare"],
    },
    Example {
        source: "Filtering on image count (keep one untagged image); images are ours",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Keep only one untagged image, expire all others",
            "selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},
            "action":{"type":"expire"}}]}"#,
        images: &[
            ("u3", &[], 3),
            ("u2", &[], 2),
            ("u1", &[], 1),
            ("t9", &["v9"], 9),
        ],
        expired: &["u3", "u2"],
    },
    Example {
        source: "Filtering on multiple rules, Example A (archived guide: tagPrefixList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: MULTI_RULE_REPO,
        expired: &["A"],
    },
    Example {
        source: "Filtering on multiple rules, Example A (current guide: tagPatternList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: MULTI_RULE_REPO,
        expired: &["A"],
    },
    Example {
        source: "Filtering on multiple rules, Example B (archived guide: tagPrefixList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["beta"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: MULTI_RULE_REPO,
        expired: &["A", "B"],
    },
    Example {
        source: "Filtering on multiple rules, Example B (current guide: tagPatternList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["beta*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: MULTI_RULE_REPO,
        expired: &["A", "B"],
    },
    Example {
        source: "Filtering on multiple tags in a single rule, Example A (archived guide: tagPrefixList)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Rule 1",
            "selection":{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"sinceImagePushed","countNumber":5,"countUnit":"days"},
            "action":{"type":"expire"}}]}"#,
        images: MULTI_TAG_REPO_A,
        expired: &["C"],
    },
    Example {
        source: "Filtering on multiple tags in a single rule, Example A (current guide: tagPatternList)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Rule 1",
            "selection":{"tagStatus":"tagged","tagPatternList":["alpha*","beta*"],"countType":"sinceImagePushed","countNumber":5,"countUnit":"days"},
            "action":{"type":"expire"}}]}"#,
        images: MULTI_TAG_REPO_A,
        expired: &["C"],
    },
    Example {
        source: "Filtering on multiple tags in a single rule, Example B (archived guide: tagPrefixList)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Rule 1",
            "selection":{"tagStatus":"tagged","tagPrefixList":["alpha","beta"],"countType":"imageCountMoreThan","countNumber":1},
            "action":{"type":"expire"}}]}"#,
        images: MULTI_TAG_REPO_B,
        expired: &["A", "B"],
    },
    Example {
        source: "Filtering on multiple tags in a single rule, Example B (current guide: tagPatternList)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Rule 1",
            "selection":{"tagStatus":"tagged","tagPatternList":["alpha*","beta*"],"countType":"imageCountMoreThan","countNumber":1},
            "action":{"type":"expire"}}]}"#,
        images: MULTI_TAG_REPO_B,
        expired: &["A", "B"],
    },
    Example {
        source: "Filtering on all images, Example A",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Rule 1",
            "selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},
            "action":{"type":"expire"}}]}"#,
        images: &[
            ("A", &["alpha-1"], 4),
            ("B", &["beta-1"], 3),
            ("C", &[], 2),
            ("D", &["alpha-2"], 1),
        ],
        expired: &["A", "B", "C"],
    },
    Example {
        source: "Filtering on all images, Example B (archived guide: tagPrefixList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPrefixList":["alpha"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":3,"description":"Rule 3","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: ALL_IMAGES_REPO_B,
        expired: &["A", "B", "D"],
    },
    Example {
        source: "Filtering on all images, Example B (current guide: tagPatternList)",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Rule 1","selection":{"tagStatus":"tagged","tagPatternList":["alpha*"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":2,"description":"Rule 2","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
            {"rulePriority":3,"description":"Rule 3","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        images: ALL_IMAGES_REPO_B,
        expired: &["A", "B", "D"],
    },
];

fn images(specs: &[(&str, &[&str], i64)]) -> Vec<Image> {
    specs
        .iter()
        .map(|(name, tags, days_ago)| Image {
            digest: (*name).to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: now() - TimeDelta::days(*days_ago),
            ..Image::default()
        })
        .collect()
}

#[test]
fn every_documented_example() {
    for example in EXAMPLES {
        let rules = parse(example.policy).unwrap_or_else(|e| panic!("{}: {e}", example.source));
        assert_eq!(validate(&rules), [], "{}", example.source);
        let expiries = evaluate(&rules, &images(example.images), now());
        let mut got: Vec<&str> = expiries.iter().map(|e| e.digest.as_str()).collect();
        got.sort_unstable();
        let mut want = example.expired.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{}", example.source);
    }
}

#[test]
fn all_images_example_b_names_the_expiring_rules() {
    // The guide: Rule 1 marks A, Rule 2 marks B, Rule 3 marks D.
    let rules = parse(EXAMPLES[EXAMPLES.len() - 1].policy).expect("parses");
    let got: Vec<(String, u32)> = evaluate(&rules, &images(ALL_IMAGES_REPO_B), now())
        .into_iter()
        .map(|e| (e.digest, e.rule_priority))
        .collect();
    assert_eq!(
        got,
        [
            ("A".to_string(), 1),
            ("B".to_string(), 2),
            ("D".to_string(), 3)
        ]
    );
}

#[test]
fn all_images_example_b_with_e_pushed_later() {
    // Same outcome when E really is newer than D, without relying on the digest tie-break.
    let rules = parse(EXAMPLES[EXAMPLES.len() - 1].policy).expect("parses");
    let mut repo = images(ALL_IMAGES_REPO_B);
    for image in &mut repo {
        if image.digest == "E" {
            image.pushed_at += TimeDelta::minutes(1);
        }
    }
    let got: Vec<String> = evaluate(&rules, &repo, now())
        .into_iter()
        .map(|e| e.digest)
        .collect();
    assert_eq!(got, ["A", "B", "D"]);
}

/// An image of the archive examples: (name, tags, pushed N days ago, last pulled N days ago,
/// archived N days ago — `Some` for an image in the archive storage class).
type ArchiveImage = (
    &'static str,
    &'static [&'static str],
    i64,
    Option<i64>,
    Option<i64>,
);

struct ArchiveExample {
    /// Section of the examples page ("Archive examples" and the filtering sections).
    source: &'static str,
    policy: &'static str,
    images: &'static [ArchiveImage],
    /// Names of the images the policy archives, by rule priority.
    archived: &'static [(&'static str, u32)],
    /// Names of the images the policy expires, by rule priority.
    expired: &'static [(&'static str, u32)],
}

/// Our repository for the archive examples, which show policies without one: images pulled and
/// pushed at various ages, two of them already in the archive.
const ARCHIVE_REPO: &[ArchiveImage] = &[
    ("prod-old-pulled-now", &["prod-1"], 200, Some(1), None),
    ("prod-old-never-pulled", &["prod-2"], 120, None, None),
    ("prod-new", &["prod-3"], 10, None, None),
    ("dev-pulled-long-ago", &["dev-1"], 300, Some(100), None),
    ("untagged-old", &[], 95, None, None),
    ("archived-long", &["prod-0"], 900, Some(500), Some(400)),
    ("archived-recently", &["dev-0"], 900, Some(500), Some(100)),
];

const ARCHIVE_EXAMPLES: &[ArchiveExample] = &[
    ArchiveExample {
        source: "Filtering on last pulled time / Archiving images not pulled in a specified number of days",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Archive images not pulled in 90 days",
            "selection":{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":90},
            "action":{"type":"transition","targetStorageClass":"archive"}}]}"#,
        images: ARCHIVE_REPO,
        // Never pulled: the push time counts; archived images are not standard, so not seen.
        archived: &[
            ("dev-pulled-long-ago", 1),
            ("prod-old-never-pulled", 1),
            ("untagged-old", 1),
        ],
        expired: &[],
    },
    ArchiveExample {
        source: "Filtering on archive transition time (365 days)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Expire images archived for more than 365 days",
            "selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},
            "action":{"type":"expire"}}]}"#,
        images: ARCHIVE_REPO,
        archived: &[],
        expired: &[("archived-long", 1)],
    },
    ArchiveExample {
        source: "Archiving images older than a specified number of days (prod*, 30 days)",
        policy: r#"{"rules":[{"rulePriority":1,"description":"Archive production images older than 30 days",
            "selection":{"tagStatus":"tagged","tagPatternList":["prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":30},
            "action":{"type":"transition","targetStorageClass":"archive"}}]}"#,
        images: ARCHIVE_REPO,
        // Pushed long ago, so archived even though pulled yesterday; archived-long is already.
        archived: &[("prod-old-pulled-now", 1), ("prod-old-never-pulled", 1)],
        expired: &[],
    },
    ArchiveExample {
        source: "Combining archive and expire rules",
        policy: r#"{"rules":[
            {"rulePriority":1,"description":"Archive images older than 30 days",
             "selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},
             "action":{"type":"transition","targetStorageClass":"archive"}},
            {"rulePriority":2,"description":"Expire images archived for more than 365 days",
             "selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":365},
             "action":{"type":"expire"}}]}"#,
        images: ARCHIVE_REPO,
        archived: &[
            ("dev-pulled-long-ago", 1),
            ("prod-old-pulled-now", 1),
            ("prod-old-never-pulled", 1),
            ("untagged-old", 1),
        ],
        expired: &[("archived-long", 2)],
    },
];

fn archive_images(specs: &[ArchiveImage]) -> Vec<Image> {
    let ago = |days: i64| now() - TimeDelta::days(days);
    specs
        .iter()
        .map(|(name, tags, pushed, pulled, archived)| Image {
            digest: (*name).to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: ago(*pushed),
            storage_class: match archived {
                Some(_) => StorageClass::Archive,
                None => StorageClass::Standard,
            },
            last_pulled_at: pulled.map(ago),
            last_archived_at: archived.map(ago),
            last_activated_at: None,
        })
        .collect()
}

#[test]
fn every_documented_archive_example() {
    for example in ARCHIVE_EXAMPLES {
        let rules = parse(example.policy).unwrap_or_else(|e| panic!("{}: {e}", example.source));
        assert_eq!(validate(&rules), [], "{}", example.source);
        let outcomes = evaluate(&rules, &archive_images(example.images), now());
        let of = |action: Action| {
            let mut got: Vec<(&str, u32)> = outcomes
                .iter()
                .filter(|e| e.action == action)
                .map(|e| (e.digest.as_str(), e.rule_priority))
                .collect();
            got.sort_unstable();
            got
        };
        let sorted = |list: &[(&'static str, u32)]| {
            let mut list = list.to_vec();
            list.sort_unstable();
            list
        };
        assert_eq!(
            of(Action::Transition),
            sorted(example.archived),
            "{}",
            example.source
        );
        assert_eq!(
            of(Action::Expire),
            sorted(example.expired),
            "{}",
            example.source
        );
    }
}

#[test]
fn the_guides_archive_warnings_are_enforced() {
    // "The sinceImagePulled count type must be used with the transition action. It cannot be
    // used with the expire action."
    let pulled_expire = ARCHIVE_EXAMPLES[0].policy.replace(
        r#"{"type":"transition","targetStorageClass":"archive"}"#,
        r#"{"type":"expire"}"#,
    );
    let rules = parse(&pulled_expire).expect("parses");
    let errors = validate(&rules);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "rules[0].action.type");
    // "Images must be in archive storage for a minimum of 90 days before deletion."
    let early = ARCHIVE_EXAMPLES[1]
        .policy
        .replace(r#""countNumber":365"#, r#""countNumber":30"#);
    let errors = validate(&parse(&early).expect("parses"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "rules[0].selection.countNumber");
    // "sinceImageTransitioned ... must be used with ... the archive storage class."
    let standard = ARCHIVE_EXAMPLES[1]
        .policy
        .replace(r#""storageClass":"archive","#, "");
    let errors = validate(&parse(&standard).expect("parses"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].path, "rules[0].selection.storageClass");
}
