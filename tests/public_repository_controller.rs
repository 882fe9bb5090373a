//! The PublicRepository controller end to end, against the API server (the real kube-apiserver
//! with `KUBEBUILDER_ASSETS`) and moto with Amazon ECR Public added by
//! tests/support/moto_ecr_public_ext.py (us-east-1 only, the model's constraints checked,
//! `logoUrl` answered in place of the logo, PutRepositoryCatalogData replacing the whole catalog).
//! What ECR Public holds is read with aws-sdk-ecrpublic directly, not through the operator's code.

mod common;

use std::collections::BTreeMap;

use aws_sdk_ecrpublic::types::RepositoryCatalogDataInput;
use common::{Env, assert_rejected, create, failed_with, ready, wait_for, wait_gone};
use ecr_operator::api::PublicRepository;
use ecr_operator::registry::Registry;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sha2::Digest;

const POLICY_ACTIONS: [&str; 2] = [
    "ecr-public:BatchCheckLayerAvailability",
    "ecr-public:PutImage",
];

fn public_client(env: &Env) -> aws_sdk_ecrpublic::Client {
    let conf = aws_sdk_ecrpublic::config::Builder::from(&env.moto.sdk_config())
        .region(aws_sdk_ecrpublic::config::Region::new("us-east-1"))
        .build();
    aws_sdk_ecrpublic::Client::from_conf(conf)
}

fn sha(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small "image": what moto keeps is the bytes, whatever they are.
fn logo(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..64u8).map(|i| i.wrapping_mul(seed)));
    bytes
}

async fn tags(c: &aws_sdk_ecrpublic::Client, name: &str) -> BTreeMap<String, String> {
    let arn = describe(c, name).await.expect("repository exists").0;
    let out = c
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// (ARN, URI) of a repository, `None` when it does not exist.
async fn describe(c: &aws_sdk_ecrpublic::Client, name: &str) -> Option<(String, String)> {
    match c
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => out.repositories().first().map(|r| {
            (
                r.repository_arn().unwrap_or_default().to_string(),
                r.repository_uri().unwrap_or_default().to_string(),
            )
        }),
        Err(e) => {
            let code = aws_sdk_ecrpublic::error::ProvideErrorMetadata::code(&e);
            assert_eq!(code, Some("RepositoryNotFoundException"), "{e:?}");
            None
        }
    }
}

async fn catalog(
    c: &aws_sdk_ecrpublic::Client,
    name: &str,
) -> aws_sdk_ecrpublic::types::RepositoryCatalogData {
    c.get_repository_catalog_data()
        .repository_name(name)
        .send()
        .await
        .unwrap()
        .catalog_data
        .unwrap_or_else(|| aws_sdk_ecrpublic::types::RepositoryCatalogData::builder().build())
}

async fn policy_actions(c: &aws_sdk_ecrpublic::Client, name: &str) -> Option<Vec<String>> {
    let out = c
        .get_repository_policy()
        .repository_name(name)
        .send()
        .await
        .ok()?;
    let doc: serde_json::Value = serde_json::from_str(out.policy_text()?).unwrap();
    let actions = &doc["Statement"][0]["Action"];
    Some(match actions {
        serde_json::Value::String(s) => vec![s.clone()],
        other => serde_json::from_value(other.clone()).unwrap(),
    })
}

async fn wait_until<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: T,
    read: impl AsyncFn() -> T,
) {
    let last = std::sync::Mutex::new(None);
    let result = testbed::wait::until(what, common::WAIT, || async {
        let got = read().await;
        let ok = got == want;
        *last.lock().unwrap() = Some(got);
        ok.then_some(())
    })
    .await;
    if let Err(e) = result {
        panic!("{e}: want {want:?}, last {:?}", last.lock().unwrap());
    }
}

/// Waits for `n` more reconciles of every one of `objects` PublicRepositories (each reads its
/// repository once per pass).
async fn passes(env: &Env, objects: u64, n: u64) {
    let stats = env.registry.stats();
    let start = stats.operation("ecr-public:DescribeRepositories");
    testbed::wait::until("more passes", common::WAIT, || async {
        (stats.operation("ecr-public:DescribeRepositories") >= start + objects * n).then_some(())
    })
    .await
    .unwrap();
}

/// Waits for an event `reason` about this very object (by uid).
async fn wait_event(env: &Env, obj: &PublicRepository, reason: &str) {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.kube.client());
    let uid = obj.metadata.uid.clone();
    testbed::wait::until(&format!("{reason} event"), common::WAIT, || {
        let (events, uid) = (events.clone(), uid.clone());
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().is_some_and(|r| r.uid == uid)
                })
                .then_some(())
        }
    })
    .await
    .unwrap();
}

fn spec_yaml(name: &str, repository: &str, rest: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: PublicRepository\nmetadata: {{name: {name}}}\nspec: {{repositoryName: '{repository}'{rest}}}\n"
    )
}

async fn logo_sources(env: &Env, ns: &str) {
    let cms: Api<ConfigMap> = env.api(ns);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("logos".into());
    cm.binary_data = Some(BTreeMap::from([("web.png".into(), ByteString(logo(3)))]));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let secrets: Api<Secret> = env.api(ns);
    let mut secret = Secret::default();
    secret.metadata.name = Some("brand".into());
    secret.data = Some(BTreeMap::from([("logo".into(), ByteString(logo(7)))]));
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

#[tokio::test]
async fn create_stay_in_sync_restore_drift_and_resend_a_changed_logo() {
    let env = Env::start().await;
    let ns = env.kube.namespace("public").await.unwrap();
    let api: Api<PublicRepository> = env.api(&ns);
    let c = public_client(&env);
    logo_sources(&env, &ns).await;
    let web = format!("{ns}/web");
    let cli = format!("{ns}/tools/cli");
    let full = format!(
        ", catalogData: {{description: 'A web server', aboutText: '# Web server', usageText: 'docker pull it', \
         architectures: ['x86-64', 'ARM 64'], operatingSystems: [Linux], \
         logoImage: {{configMapKeyRef: {{name: logos, key: web.png}}}}}}, \
         repositoryPolicy: {{statements: [{{sid: Push, effect: Allow, principals: {{aws: ['arn:aws:iam::123456789012:role/ci']}}, \
         actions: ['{}', '{}']}}]}}, tags: {{team: web, env: prod}}",
        POLICY_ACTIONS[0], POLICY_ACTIONS[1]
    );
    create(&api, &spec_yaml("web", &web, &full)).await;
    let secret_logo =
        ", catalogData: {description: 'CLI', logoImage: {secretKeyRef: {name: brand, key: logo}}}";
    create(&api, &spec_yaml("cli", &cli, secret_logo)).await;
    let obj = wait_for(&api, "web", "web Ready", ready).await;
    let cli_obj = wait_for(&api, "cli", "cli Ready", ready).await;

    // Everything the spec says, in ECR Public (us-east-1, the only region moto serves it in).
    let (arn, uri) = describe(&c, &web).await.expect("created");
    let status = obj.status.clone().unwrap();
    assert_eq!(status.repository_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(status.repository_uri.as_deref(), Some(uri.as_str()));
    assert!(
        uri.starts_with("public.ecr.aws/") && uri.ends_with(&web),
        "{uri}"
    );
    let got = catalog(&c, &web).await;
    assert_eq!(got.description(), Some("A web server"));
    assert_eq!(got.about_text(), Some("# Web server"));
    assert_eq!(got.usage_text(), Some("docker pull it"));
    assert_eq!(got.architectures(), ["x86-64", "ARM 64"]);
    assert_eq!(got.operating_systems(), ["Linux"]);
    let web_logo_url = got.logo_url().expect("a logo").to_string();
    assert_eq!(status.logo_url.as_deref(), Some(web_logo_url.as_str()));
    assert_eq!(status.logo_sha256, Some(sha(&logo(3))));
    let cli_catalog = catalog(&c, &cli).await;
    let cli_logo_url = cli_catalog
        .logo_url()
        .expect("the Secret's logo")
        .to_string();
    assert_ne!(cli_logo_url, web_logo_url, "another image, another URL");
    assert_eq!(
        cli_obj.status.as_ref().and_then(|s| s.logo_sha256.clone()),
        Some(sha(&logo(7)))
    );
    let want_tags = BTreeMap::from([
        (
            "ecr.operator.dev/owner".to_string(),
            format!("test-cluster/{ns}/web"),
        ),
        ("env".to_string(), "prod".to_string()),
        ("team".to_string(), "web".to_string()),
    ]);
    assert_eq!(tags(&c, &web).await, want_tags);
    assert_eq!(
        policy_actions(&c, &web).await,
        Some(POLICY_ACTIONS.map(String::from).to_vec())
    );

    // In sync: three more passes of both objects write nothing, and read at most four things
    // each (the repository, its tags, its catalog data; the policy only where one is declared).
    let stats = env.registry.stats();
    let reads_of = || {
        [
            "ecr-public:DescribeRepositories",
            "ecr-public:ListTagsForResource",
            "ecr-public:GetRepositoryCatalogData",
            "ecr-public:GetRepositoryPolicy",
        ]
        .iter()
        .map(|op| stats.operation(op))
        .sum::<u64>()
    };
    let (writes, reads) = (stats.writes(), reads_of());
    let describes = stats.operation("ecr-public:DescribeRepositories");
    passes(&env, 2, 3).await;
    assert_eq!(stats.writes(), writes, "no write while in sync");
    let made = stats.operation("ecr-public:DescribeRepositories") - describes;
    let read = reads_of() - reads;
    eprintln!("ECR Public calls in sync: {read} reads over {made} object passes, no write");
    // web reads 4 per pass, cli 3 (no policy): at most 4 per pass, plus a pass under way at the
    // start; at least 3 per pass, less the reads after the describe of a pass under way at the
    // end (3 for each of the two objects).
    assert!(read <= 4 * made + 4, "{read} reads over {made} passes");
    assert!(read + 6 >= 3 * made, "{read} reads over {made} passes");

    // Drift outside: catalog replaced (description, logo gone), a tag removed, the policy changed.
    c.put_repository_catalog_data()
        .repository_name(&web)
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .description("changed")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The owner tag too: the status records this very repository, so it is put back.
    c.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .tag_keys("ecr.operator.dev/owner")
        .send()
        .await
        .unwrap();
    let foreign_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": ["ecr-public:PutImage"]}]});
    c.set_repository_policy()
        .repository_name(&web)
        .policy_text(foreign_policy.to_string())
        .send()
        .await
        .unwrap();
    wait_until(
        "catalog restored",
        Some("A web server".to_string()),
        async || catalog(&c, &web).await.description().map(str::to_string),
    )
    .await;
    wait_until("logo re-sent", Some(web_logo_url.clone()), async || {
        catalog(&c, &web).await.logo_url().map(str::to_string)
    })
    .await;
    wait_until("tags restored", want_tags.clone(), async || {
        tags(&c, &web).await
    })
    .await;
    wait_until(
        "policy restored",
        Some(POLICY_ACTIONS.map(String::from).to_vec()),
        async || policy_actions(&c, &web).await,
    )
    .await;

    wait_event(&env, &obj, "DriftCorrected").await;

    // Another logo put outside with the very same text: only the logo's URL tells (the API never
    // returns the logo), and the spec's logo is sent again.
    let text_now = catalog(&c, &web).await;
    c.put_repository_catalog_data()
        .repository_name(&web)
        .catalog_data(
            RepositoryCatalogDataInput::builder()
                .set_description(text_now.description().map(str::to_string))
                .set_about_text(text_now.about_text().map(str::to_string))
                .set_usage_text(text_now.usage_text().map(str::to_string))
                .set_architectures(Some(text_now.architectures().to_vec()))
                .set_operating_systems(Some(text_now.operating_systems().to_vec()))
                .logo_image_blob(aws_smithy_types::Blob::new(logo(99)))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_ne!(
        catalog(&c, &web).await.logo_url().map(str::to_string),
        Some(web_logo_url.clone())
    );
    wait_until(
        "the spec's logo back",
        Some(web_logo_url.clone()),
        async || catalog(&c, &web).await.logo_url().map(str::to_string),
    )
    .await;

    // A new logo in the ConfigMap is sent: a new URL, recorded with the new image's digest.
    let cms: Api<ConfigMap> = env.api(&ns);
    let patch = json!({"binaryData": {"web.png": ByteString(logo(11))}});
    cms.patch("logos", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let updated = wait_for(&api, "web", "new logo recorded", |o: &PublicRepository| {
        o.status.as_ref().and_then(|s| s.logo_sha256.clone()) == Some(sha(&logo(11)))
    })
    .await;
    let new_url = catalog(&c, &web).await.logo_url().map(str::to_string);
    assert_ne!(new_url.as_deref(), Some(web_logo_url.as_str()));
    assert_eq!(updated.status.and_then(|s| s.logo_url), new_url);
    // The other members were sent with it (a put replaces the whole catalog).
    assert_eq!(catalog(&c, &web).await.usage_text(), Some("docker pull it"));
}

#[tokio::test]
async fn a_missing_logo_source_writes_nothing_until_it_exists() {
    let env = Env::start().await;
    let ns = env.kube.namespace("nologo").await.unwrap();
    let api: Api<PublicRepository> = env.api(&ns);
    let c = public_client(&env);
    let name = format!("{ns}/app");
    let spec = ", catalogData: {description: d, logoImage: {configMapKeyRef: {name: later, key: logo.png}}}";
    create(&api, &spec_yaml("app", &name, spec)).await;
    let obj = wait_for(&api, "app", "SecretNotFound", failed_with("SecretNotFound")).await;
    let message = common::message_of(&obj);
    assert!(
        message.contains(&format!("ConfigMap {ns}/later")),
        "{message}"
    );
    assert_eq!(describe(&c, &name).await, None, "nothing created");
    assert_eq!(
        env.registry
            .stats()
            .operation("ecr-public:CreateRepository"),
        0
    );
    let cms: Api<ConfigMap> = env.api(&ns);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("later".into());
    cm.binary_data = Some(BTreeMap::from([("logo.png".into(), ByteString(logo(5)))]));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    wait_for(&api, "app", "Ready once the ConfigMap exists", ready).await;
    assert!(catalog(&c, &name).await.logo_url().is_some());
}

#[tokio::test]
async fn foreign_repository_conflict_adoption_and_deletion_policies() {
    let env = Env::start().await;
    let ns = env.kube.namespace("adopt").await.unwrap();
    let api: Api<PublicRepository> = env.api(&ns);
    let c = public_client(&env);
    let foreign = format!("{ns}/legacy");
    c.create_repository()
        .repository_name(&foreign)
        .send()
        .await
        .unwrap();
    c.tag_resource()
        .resource_arn(describe(&c, &foreign).await.unwrap().0)
        .tags(
            aws_sdk_ecrpublic::types::Tag::builder()
                .key("keep")
                .value("me")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let writes = env.registry.stats().writes();
    create(
        &api,
        &spec_yaml(
            "legacy",
            &foreign,
            ", catalogData: {description: mine}, deletionPolicy: Delete",
        ),
    )
    .await;
    let obj = wait_for(&api, "legacy", "Conflict", failed_with("Conflict")).await;
    assert!(common::message_of(&obj).contains("spec.adopt"), "{obj:?}");
    passes(&env, 1, 3).await;
    assert_eq!(
        env.registry.stats().writes(),
        writes,
        "nothing written to a foreign repository"
    );
    assert_eq!(catalog(&c, &foreign).await.description(), None);

    // Adopted with adopt: true (the test's grant allows adoption): tagged, catalog written,
    // foreign tags kept.
    let patch = json!({"spec": {"adopt": true}});
    api.patch("legacy", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let adopted = wait_for(&api, "legacy", "adopted", ready).await;
    assert_eq!(
        adopted.status.and_then(|s| s.ownership),
        Some(ecr_operator::api::repository::Ownership::Adopted)
    );
    let got = tags(&c, &foreign).await;
    assert_eq!(got.get("keep").map(String::as_str), Some("me"));
    assert_eq!(
        got.get("ecr.operator.dev/owner"),
        Some(&format!("test-cluster/{ns}/legacy"))
    );
    assert_eq!(catalog(&c, &foreign).await.description(), Some("mine"));

    // A Delete object that never owned its repository leaves it when deleted.
    let other = format!("{ns}/other");
    c.create_repository()
        .repository_name(&other)
        .send()
        .await
        .unwrap();
    create(
        &api,
        &spec_yaml("other", &other, ", deletionPolicy: Delete"),
    )
    .await;
    wait_for(&api, "other", "Conflict", failed_with("Conflict")).await;
    api.delete("other", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "other").await;
    assert!(
        describe(&c, &other).await.is_some(),
        "not ours: left in place"
    );

    // Delete removes the repository it owns; Retain leaves its repository with the owner tag.
    api.delete("legacy", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "legacy").await;
    assert_eq!(describe(&c, &foreign).await, None);
    let kept = format!("{ns}/kept");
    create(&api, &spec_yaml("kept", &kept, "")).await;
    wait_for(&api, "kept", "kept Ready", ready).await;
    api.delete("kept", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "kept").await;
    assert!(describe(&c, &kept).await.is_some(), "Retain keeps it");
    assert_eq!(
        tags(&c, &kept).await.get("ecr.operator.dev/owner"),
        Some(&format!("test-cluster/{ns}/kept"))
    );
}

#[tokio::test]
async fn the_crd_refuses_what_ecr_public_would() {
    let env = Env::start().await;
    let ns = env.kube.namespace("crd").await.unwrap();
    let resource = kube::core::ApiResource::erase::<PublicRepository>(&());
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(env.kube.client(), &ns, &resource);
    let long_name = "a".repeat(206);
    let too_many: Vec<String> = (0..51).map(|i| format!("'arch{i}'")).collect();
    let refused = [
        // RepositoryName: one separator between components (private ECR allows `__`).
        ("a__b", "", "repositoryName"),
        ("-ab", "", "repositoryName"),
        ("Upper", "", "repositoryName"),
        ("a", "", "repositoryName"),
        (long_name.as_str(), "", "repositoryName"),
        // RepositoryDescription (1024), Architecture (1..50), ArchitectureList (50).
        (
            "ok",
            &format!(", catalogData: {{description: '{}'}}", "d".repeat(1025)),
            "description",
        ),
        (
            "ok",
            &format!(", catalogData: {{architectures: ['{}']}}", "x".repeat(51)),
            "architectures",
        ),
        (
            "ok",
            ", catalogData: {operatingSystems: ['']}",
            "operatingSystems",
        ),
        (
            "ok",
            &format!(
                ", catalogData: {{architectures: [{}]}}",
                too_many.join(", ")
            ),
            "architectures",
        ),
        (
            "ok",
            &format!(", catalogData: {{usageText: '{}'}}", "u".repeat(25601)),
            "usageText",
        ),
        // One logo source.
        ("ok", ", catalogData: {logoImage: {}}", "exactly one"),
        (
            "ok",
            ", catalogData: {logoImage: {configMapKeyRef: {name: a, key: b}, secretKeyRef: {name: a, key: b}}}",
            "exactly one",
        ),
        // ECR Public's policy actions only.
        (
            "ok",
            ", repositoryPolicy: {statements: [{effect: Allow, principals: {aws: ['*']}, actions: ['ecr:PutImage']}]}",
            "ecr-public:",
        ),
        // Tags: the reserved owner key and AWS's prefix.
        ("ok", ", tags: {'aws:x': y}", "aws:"),
        ("ok", ", tags: {'ecr.operator.dev/owner': y}", "reserved"),
    ];
    for (i, (name, rest, expect)) in refused.iter().enumerate() {
        let yaml = spec_yaml(&format!("bad{i}"), name, rest);
        assert_rejected(&api, &yaml, expect).await;
    }
    let fifty: Vec<String> = (0..50).map(|i| format!("'arch{i}'")).collect();
    let admitted = [
        ("a.b-c_d/e0".to_string(), String::new()),
        ("a".repeat(205), String::new()),
        (
            "ok".to_string(),
            format!(
                ", catalogData: {{description: '{}', architectures: [{}], operatingSystems: [Linux, Windows]}}",
                "d".repeat(1024),
                fifty.join(", ")
            ),
        ),
        (
            "ok2".to_string(),
            ", repositoryPolicy: {statements: [{effect: Allow, principals: {aws: ['*']}, actions: ['ecr-public:*', '*']}]}"
                .to_string(),
        ),
    ];
    for (i, (name, rest)) in admitted.iter().enumerate() {
        let yaml = spec_yaml(&format!("good{i}"), name, rest);
        let obj: kube::api::DynamicObject = serde_yaml::from_str(&yaml).unwrap();
        api.create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &obj,
        )
        .await
        .unwrap_or_else(|e| panic!("{yaml}: {e}"));
    }
    // The name is immutable.
    let obj: kube::api::DynamicObject =
        serde_yaml::from_str(&spec_yaml("fixed", "fixed", "")).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let patch = json!({"spec": {"repositoryName": "other"}});
    let err = api
        .patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("repositoryName is immutable");
    assert!(err.to_string().contains("immutable"), "{err}");
}

/// With no RepositoryAccessPolicy a namespace manages only ECR Public names under `<namespace>/`
/// and adopts nothing, as for Repository: both refusals come before any write.
#[tokio::test]
async fn names_and_adoption_follow_the_namespace_grants() {
    let env = Env::start_with_default_grants().await;
    let ns = env.kube.namespace("tenant").await.unwrap();
    let api: Api<PublicRepository> = env.api(&ns);
    let c = public_client(&env);
    let foreign = format!("{ns}/legacy");
    c.create_repository()
        .repository_name(&foreign)
        .send()
        .await
        .unwrap();
    let writes = env.registry.stats().writes();
    create(&api, &spec_yaml("outside", "shared/tool", "")).await;
    create(&api, &spec_yaml("legacy", &foreign, ", adopt: true")).await;
    let outside = wait_for(&api, "outside", "Forbidden", failed_with("Forbidden")).await;
    assert!(
        common::message_of(&outside).contains(&format!("default grant is {ns}/*")),
        "{outside:?}"
    );
    let legacy = wait_for(&api, "legacy", "Forbidden", failed_with("Forbidden")).await;
    assert!(
        common::message_of(&legacy).contains("default grant allows no adoption"),
        "{legacy:?}"
    );
    passes(&env, 1, 2).await;
    assert_eq!(env.registry.stats().writes(), writes, "nothing written");
    assert_eq!(describe(&c, "shared/tool").await, None);
    assert_eq!(tags(&c, &foreign).await, BTreeMap::new());
    // A name of its own is created; a second object naming it is Conflict.
    let own = format!("{ns}/own");
    create(&api, &spec_yaml("own", &own, "")).await;
    wait_for(&api, "own", "own Ready", ready).await;
    create(&api, &spec_yaml("own-again", &own, "")).await;
    let younger = wait_for(&api, "own-again", "Conflict", failed_with("Conflict")).await;
    assert!(
        common::message_of(&younger)
            .contains(&format!("PublicRepository {ns}/own already manages")),
        "{younger:?}"
    );
}

/// The ECR Public client calls us-east-1 whatever region the configuration it is built from
/// names (moto answers UnsupportedCommandException elsewhere, as ECR Public does), counts its
/// calls under `ecr-public:`, and its writes are refused by a shut leader fence before they are
/// sent.
#[tokio::test]
async fn the_client_calls_us_east_1_and_is_fenced() {
    use ecr_operator::registry::{EcrRegistry, ErrorClass, NewPublicRepository};
    let moto = testbed::moto::Moto::start().await.unwrap();
    let elsewhere = moto
        .sdk_config()
        .to_builder()
        .region(aws_config::Region::new("eu-west-1"))
        .build();
    let input = |name: &str| NewPublicRepository {
        name: name.to_string(),
        catalog: None,
        logo: None,
        tags: BTreeMap::new(),
    };
    let open = EcrRegistry::from_client(moto.ecr_client()).with_ecr_public(&elsewhere);
    let public = open.ecr_public().expect("an ECR Public client");
    let (info, _) = public
        .create_public_repository(&input("open/app"))
        .await
        .unwrap();
    assert!(info.arn.starts_with("arn:aws:ecr-public::"), "{info:?}");
    assert_eq!(open.stats().operation("ecr-public:CreateRepository"), 1);
    assert_eq!(open.stats().writes(), 1);

    let fenced = EcrRegistry::from_client(moto.ecr_client())
        .with_ecr_public(&elsewhere)
        .with_fence(ecr_operator::leader::Fence::shut());
    let public = fenced.ecr_public().expect("an ECR Public client");
    let err = public
        .create_public_repository(&input("fenced/app"))
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Fenced, "{err}");
    // Reads are not fenced.
    assert_eq!(
        public
            .describe_public_repository("fenced/app")
            .await
            .unwrap(),
        None
    );
    assert_eq!(fenced.stats().writes(), 0);
}
