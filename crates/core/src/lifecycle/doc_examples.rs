//! Every worked example of the Amazon ECR User Guide page "Examples of lifecycle policies", run
//! through parse → validate → evaluate. Policy texts are the documented ones; the archived copy of
//! the guide (github.com/awsdocs/amazon-ecr-user-guide) uses `tagPrefixList`, the current page the
//! equivalent `tagPatternList`, so both variants are checked where they differ.
//!
//! "N days ago" is taken as exactly N × 24 h before `now`. Where the guide shows a policy without a
//! repository (the first two sections), the image set is ours and says so.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::{Image, evaluate, parse, validate};

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
