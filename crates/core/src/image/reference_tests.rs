//! Tests of image reference parsing, normalisation and ECR host recognition (`reference.rs`).

use super::*;
use proptest::prelude::*;

const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn norm(s: &str) -> String {
    match ImageRef::parse(s) {
        Ok(r) => r.to_string(),
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

#[test]
fn normalises_valid_references() {
    let cases: &[(&str, &str)] = &[
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.25", "docker.io/library/nginx:1.25"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
        ("user/app", "docker.io/user/app:latest"),
        ("a/b/c/d", "docker.io/a/b/c/d:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:dev", "localhost:5000/app:dev"),
        ("localhost:5000", "docker.io/library/localhost:5000"),
        ("Registry/app", "Registry/app:latest"),
        ("quay.io/org/app:v1.2.3", "quay.io/org/app:v1.2.3"),
        (
            "my-registry.example.com:8443/a/b:c",
            "my-registry.example.com:8443/a/b:c",
        ),
        ("[::1]/app", "[::1]/app:latest"),
        ("[2001:db8::1]:5000/app:tag", "[2001:db8::1]:5000/app:tag"),
        ("192.168.0.1:5000/app", "192.168.0.1:5000/app:latest"),
        (
            "a.b/a__b/a--b/a.b/a_b/a---b",
            "a.b/a__b/a--b/a.b/a_b/a---b:latest",
        ),
        ("nginx:_tag", "docker.io/library/nginx:_tag"),
        ("nginx:TAG.v-1", "docker.io/library/nginx:TAG.v-1"),
    ];
    for (input, want) in cases {
        assert_eq!(norm(input), *want, "input {input:?}");
    }
    assert_eq!(
        norm(&format!("nginx@{SHA}")),
        format!("docker.io/library/nginx@{SHA}")
    );
    assert_eq!(
        norm(&format!("nginx:1.25@{SHA}")),
        format!("docker.io/library/nginx:1.25@{SHA}")
    );
    let sha512 = format!("sha512:{}", "a".repeat(128));
    assert_eq!(
        norm(&format!("x.io/a@{sha512}")),
        format!("x.io/a@{sha512}")
    );
    let sha384 = format!("sha384:{}", "b".repeat(96));
    assert_eq!(
        norm(&format!("x.io/a@{sha384}")),
        format!("x.io/a@{sha384}")
    );
}

#[test]
fn exposes_the_parts() {
    let r = ImageRef::parse(&format!("localhost:5000/team/app:v2@{SHA}")).unwrap();
    assert_eq!(r.domain(), "localhost:5000");
    assert_eq!(r.path(), "team/app");
    assert_eq!(r.name(), "localhost:5000/team/app");
    assert_eq!(r.tag(), Some("v2"));
    assert_eq!(r.digest(), Some(SHA));
    let d = ImageRef::parse(&format!("app@{SHA}")).unwrap();
    assert_eq!(d.tag(), None, "a digest-only reference gets no default tag");
    assert_eq!("busybox".parse::<ImageRef>().unwrap().tag(), Some("latest"));
}

#[test]
fn rejects_invalid_references() {
    use ImageRefError as E;
    let hex64 = "a".repeat(64);
    let long_path = format!("x.io/{}", "a".repeat(251));
    let long_tag = format!("nginx:{}", "t".repeat(129));
    type Expect = fn(&ImageRefError) -> bool;
    let cases: Vec<(String, Expect)> = vec![
        (String::new(), |e| *e == E::Empty),
        (hex64, |e| matches!(e, E::ImageId(_))),
        ("Nginx".into(), |e| matches!(e, E::Uppercase(_))),
        ("quay.io/Org/app".into(), |e| matches!(e, E::Uppercase(_))),
        ("a//b".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("x.io/".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("x.io/a/".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("-app".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("app-".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("a._b".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("a___b".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("a..b".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("app name".into(), |e| matches!(e, E::InvalidPath { .. })),
        (":tag".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("nginx:".into(), |e| matches!(e, E::InvalidTag(_))),
        ("nginx:.x".into(), |e| matches!(e, E::InvalidTag(_))),
        ("nginx:-x".into(), |e| matches!(e, E::InvalidTag(_))),
        ("nginx:a:b".into(), |e| matches!(e, E::InvalidTag(_))),
        ("nginx:a+b".into(), |e| matches!(e, E::InvalidTag(_))),
        (long_tag, |e| matches!(e, E::InvalidTag(_))),
        ("foo:bar/baz".into(), |e| {
            matches!(e, E::InvalidDomain { .. })
        }),
        ("x.io:/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("x.io:50a/app".into(), |e| {
            matches!(e, E::InvalidDomain { .. })
        }),
        ("-x.io/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("x-.io/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("x..io/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("x.io./app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("x_y.io/app".into(), |e| {
            matches!(e, E::InvalidDomain { .. })
        }),
        ("[::1/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("[]/app".into(), |e| matches!(e, E::InvalidPath { .. })),
        ("[::g]/app".into(), |e| matches!(e, E::InvalidDomain { .. })),
        ("[::1]x/app".into(), |e| {
            matches!(e, E::InvalidDomain { .. })
        }),
        ("[fe80::1%eth0]/app".into(), |e| {
            matches!(e, E::InvalidDomain { .. })
        }),
        (long_path, |e| *e == E::NameTooLong { len: 256 }),
        ("nginx@".into(), |e| matches!(e, E::InvalidDigest(_))),
        ("nginx@sha256".into(), |e| matches!(e, E::InvalidDigest(_))),
        ("nginx@sha256:abc".into(), |e| {
            matches!(e, E::InvalidDigest(_))
        }),
        (format!("nginx@{}", SHA.to_uppercase()), |e| {
            matches!(e, E::UnsupportedDigest(_))
        }),
        (format!("nginx@{}", SHA.replace("abcdef", "ABCDEF")), |e| {
            matches!(e, E::InvalidDigest(_))
        }),
        (format!("nginx@{}", SHA.replace("sha256", "md5")), |e| {
            matches!(e, E::UnsupportedDigest(_))
        }),
        (format!("nginx@{}", SHA.replace("sha256", "1sha")), |e| {
            matches!(e, E::InvalidDigest(_))
        }),
        (format!("nginx@{SHA}0"), |e| {
            matches!(
                e,
                E::DigestLength {
                    got: 65,
                    want: 64,
                    ..
                }
            )
        }),
        (format!("nginx@{SHA}@{SHA}"), |e| {
            matches!(e, E::InvalidDigest(_))
        }),
        (format!("@{SHA}"), |e| matches!(e, E::InvalidPath { .. })),
        ("ghcr.io/org/app@".into(), |e| {
            matches!(e, E::InvalidDigest(_))
        }),
    ];
    for (input, check) in &cases {
        match ImageRef::parse(input) {
            Ok(r) => panic!("{input:?} should be rejected, parsed as {r}"),
            Err(e) => assert!(check(&e), "{input:?}: unexpected error {e:?}"),
        }
    }
    // 255 is the limit, counted on the normalised name.
    assert!(ImageRef::parse(&format!("x.io/{}", "a".repeat(250))).is_ok());
    assert_eq!(
        ImageRef::parse(&"a".repeat(240)),
        Err(ImageRefError::NameTooLong { len: 258 })
    );
}

#[test]
fn errors_are_clear_and_clipped() {
    let e = ImageRef::parse("quay.io/Org/app").unwrap_err();
    assert_eq!(
        e.to_string(),
        "repository name \"Org/app\" must be lowercase"
    );
    let e = ImageRef::parse(&format!("nginx:{}", "t".repeat(5000))).unwrap_err();
    assert!(e.to_string().len() < 250, "{e}");
    let e = ImageRef::parse("nginx@md5:0123456789abcdef0123456789abcdef").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported digest algorithm \"md5\": use sha256, sha384 or sha512"
    );
}

#[test]
fn recognises_ecr_hosts() {
    let ecr = |s: &str| ImageRef::parse(s).unwrap().ecr();
    let img = ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1").unwrap();
    assert_eq!(
        img,
        EcrImage {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            repository: "team/app".into(),
            tag: Some("v1".into()),
            digest: None,
            fips: false,
            dual_stack: false,
        }
    );
    let cn = ecr("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app").unwrap();
    assert_eq!(
        (cn.region.as_str(), cn.tag.as_deref()),
        ("cn-north-1", Some("latest"))
    );
    let fips = ecr("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app").unwrap();
    assert!(fips.fips && !fips.dual_stack);
    assert_eq!(fips.region, "us-gov-west-1");
    let ds = ecr(&format!("123456789012.dkr-ecr.eu-west-1.on.aws/a/b@{SHA}")).unwrap();
    assert!(ds.dual_stack && !ds.fips);
    assert_eq!((ds.tag, ds.digest.as_deref()), (None, Some(SHA)));
    let dsf = ecr("123456789012.dkr-ecr-fips.us-east-2.on.aws/app").unwrap();
    assert!(dsf.dual_stack && dsf.fips);
    // DNS is case-insensitive, and :443 is the endpoint ECR serves: both are still ECR.
    let upper = ecr("123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM/app").unwrap();
    assert_eq!(upper.region, "us-east-1");
    assert!(ecr("123456789012.dkr.ecr.us-east-1.amazonaws.com:443/app").is_some());

    for not_ecr in [
        "nginx",
        "quay.io/app",
        "public.ecr.aws/nginx/nginx",
        "12345678901.dkr.ecr.us-east-1.amazonaws.com/app",
        "1234567890123.dkr.ecr.us-east-1.amazonaws.com/app",
        "12345678901a.dkr.ecr.us-east-1.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com:5000/app",
        "123456789012.dkr.ecr.useast1.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.io/app",
        "123456789012.dkr.ecr.us-east-1.example.com/app",
        "123456789012.ecr.us-east-1.amazonaws.com/app",
        "123456789012.api.ecr.us-east-1.amazonaws.com/app",
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com.cn/app",
        "123456789012.dkr-ecr.us-east-1.amazonaws.com/app",
        "123456789012.dkr.ecr.us-east-1.on.aws/app",
        "x.123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
    ] {
        assert_eq!(ecr(not_ecr), None, "{not_ecr}");
    }
}

fn domain_strategy() -> impl Strategy<Value = String> {
    let component = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?";
    let port = proptest::option::of(1u32..70000);
    prop_oneof![
        Just(DEFAULT_DOMAIN.to_owned()),
        Just("localhost".to_owned()),
        (component, component, port.clone()).prop_map(|(a, b, p)| format!(
            "{a}.{b}{}",
            p.map(|p| format!(":{p}")).unwrap_or_default()
        )),
        (component, 1u32..70000).prop_map(|(a, p)| format!("{a}:{p}")),
        ("[0-9a-fA-F]{0,4}", "[0-9a-fA-F:]{0,16}", port).prop_map(|(a, b, p)| format!(
            "[{a}:{b}]{}",
            p.map(|p| format!(":{p}")).unwrap_or_default()
        )),
        ("[0-9]{12}", "[a-z]{2}-[a-z]{1,9}-[0-9]{1,2}")
            .prop_map(|(acct, region)| format!("{acct}.dkr.ecr.{region}.amazonaws.com")),
    ]
    .prop_filter("index.docker.io is normalised", |d| {
        d != LEGACY_DEFAULT_DOMAIN
    })
}

fn ref_strategy() -> impl Strategy<Value = ImageRef> {
    let component = "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}";
    let path = proptest::collection::vec(component, 1..5).prop_map(|c| c.join("/"));
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    let digest = proptest::option::of(prop_oneof![
        "[a-f0-9]{64}".prop_map(|h| format!("sha256:{h}")),
        "[a-f0-9]{128}".prop_map(|h| format!("sha512:{h}")),
    ]);
    (domain_strategy(), path, tag, digest)
        .prop_map(|(domain, path, tag, digest)| {
            let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
                format!("library/{path}")
            } else {
                path
            };
            let tag = match (&tag, &digest) {
                (None, None) => Some(DEFAULT_TAG.to_owned()),
                _ => tag,
            };
            ImageRef {
                domain,
                path,
                tag,
                digest,
            }
        })
        .prop_filter("name length", |r| r.name().len() <= NAME_TOTAL_LENGTH_MAX)
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(r in ref_strategy()) {
        prop_assert_eq!(ImageRef::parse(&r.to_string()), Ok(r));
    }

    #[test]
    fn never_panics_on_arbitrary_strings(s in "\\PC{0,300}") {
        let _ = ImageRef::parse(&s);
    }

    #[test]
    fn normalisation_is_idempotent(s in "[a-zA-Z0-9./:@_\\[\\]-]{0,120}") {
        if let Ok(r) = ImageRef::parse(&s) {
            prop_assert_eq!(ImageRef::parse(&r.to_string()), Ok(r.clone()));
            let _ = r.ecr();
        }
    }

    #[test]
    fn ecr_images_carry_the_reference_parts(r in ref_strategy()) {
        if let Some(e) = r.ecr() {
            prop_assert_eq!(e.repository.as_str(), r.path());
            prop_assert_eq!(e.tag.as_deref(), r.tag());
            prop_assert_eq!(e.digest.as_deref(), r.digest());
            prop_assert_eq!(e.account.len(), 12);
        }
    }
}
