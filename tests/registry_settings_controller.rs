//! The RegistrySettings controller end to end: account settings, managed signing and pull-time
//! update exclusions, against the API server (the real kube-apiserver with
//! `KUBEBUILDER_ASSETS`) and moto (whose launcher adds the three APIs, see
//! tests/support/moto_ecr_registry_settings.py).

mod common;

use std::collections::BTreeSet;

use common::{Env, assert_rejected, create, failed_with, message_of, ready, wait_for, wait_gone};
use ecr_operator::api::RegistrySettings;
use ecr_operator::registry::{Registry, SigningRuleInfo};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

const PROFILE: &str = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/Release";
const OTHER_PROFILE: &str = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/Console";
const CI: &str = "arn:aws:iam::123456789012:role/ci";
const SCANNER: &str = "arn:aws:iam::123456789012:role/scanners/trivy";
const OUTSIDE: &str = "arn:aws:iam::123456789012:user/registered-outside";

fn settings(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: ecr.operator.dev/v1alpha1\nkind: RegistrySettings\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    )
}

async fn exclusions(env: &Env) -> BTreeSet<String> {
    env.registry
        .list_pull_time_update_exclusions()
        .await
        .unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

async fn wait_ecr<T: PartialEq + std::fmt::Debug>(what: &str, want: T, read: impl AsyncFn() -> T) {
    testbed::wait::until(what, common::WAIT, || async {
        (read().await == want).then_some(())
    })
    .await
    .unwrap();
}

/// Waits for an event `reason` about this very RegistrySettings object (by uid).
async fn wait_event(env: &Env, obj: &RegistrySettings, reason: &str) {
    let events: Api<Event> = Api::all(env.kube.client());
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

#[tokio::test]
async fn settings_apply_stay_in_sync_drift_back_and_go_with_the_object() {
    let env = Env::start().await;
    let api: Api<RegistrySettings> = Api::all(env.kube.client());
    let reg = env.registry.clone();
    // Registered by someone else: never touched.
    reg.register_pull_time_update_exclusion(OUTSIDE)
        .await
        .unwrap();
    let spec = format!(
        "{{accountSettings: {{blobMounting: ENABLED, registryPolicyScope: V2}}, \
         signing: {{rules: [{{signingProfileArn: '{PROFILE}', repositoryFilters: [{{filter: 'prod/*'}}, {{filter: '*/release', filterType: WILDCARD_MATCH}}]}}]}}, \
         pullTimeUpdateExclusions: ['{CI}', '{SCANNER}'], deletionPolicy: Delete}}"
    );
    create(&api, &settings("registry", &spec)).await;
    let obj = wait_for(&api, "registry", "Ready", ready).await;
    wait_event(&env, &obj, "Applied").await;
    assert_eq!(
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap(),
        "ENABLED"
    );
    assert_eq!(
        reg.get_account_setting("REGISTRY_POLICY_SCOPE")
            .await
            .unwrap(),
        "V2"
    );
    let rules = reg
        .get_signing_configuration()
        .await
        .unwrap()
        .expect("signing");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].profile_arn, PROFILE);
    assert_eq!(
        rules[0]
            .repository_filters
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        set(&["prod/*", "*/release"])
    );
    assert_eq!(exclusions(&env).await, set(&[CI, SCANNER, OUTSIDE]));
    let status = obj.status.clone().unwrap();
    assert_eq!(
        status.registered_exclusions,
        vec![CI.to_string(), SCANNER.to_string()]
    );
    assert_eq!(
        (status.signing_owned, status.signing_rule_count),
        (Some(true), Some(1))
    );
    assert_eq!(
        status
            .account_settings
            .get("BLOB_MOUNTING")
            .map(String::as_str),
        Some("ENABLED")
    );

    // In sync: every pass reads, none writes.
    let stats = reg.stats();
    let (writes, reads) = (stats.writes(), stats.operation("GetSigningConfiguration"));
    testbed::wait::until("three more passes", common::WAIT, || async {
        (stats.operation("GetSigningConfiguration") >= reads + 3).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(stats.writes(), writes, "no write in sync");

    // Drift in all three parts, made outside: restored by the next pass.
    reg.put_account_setting("BLOB_MOUNTING", "DISABLED")
        .await
        .unwrap();
    reg.put_signing_configuration(&[SigningRuleInfo {
        profile_arn: OTHER_PROFILE.to_string(),
        repository_filters: vec![],
    }])
    .await
    .unwrap();
    reg.deregister_pull_time_update_exclusion(CI).await.unwrap();
    wait_ecr("exclusion restored", set(&[CI, SCANNER, OUTSIDE]), || {
        exclusions(&env)
    })
    .await;
    wait_ecr("blob mounting restored", "ENABLED".to_string(), || async {
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap()
    })
    .await;
    wait_ecr("signing restored", Some(PROFILE.to_string()), || async {
        let rules = reg.get_signing_configuration().await.unwrap()?;
        rules.first().map(|r| r.profile_arn.clone())
    })
    .await;
    wait_event(&env, &obj, "DriftCorrected").await;

    // The spec drops signing and one exclusion: what this object wrote goes, the rest stays.
    let patch = json!({"spec": {"signing": null, "pullTimeUpdateExclusions": [SCANNER]}});
    api.patch("registry", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_ecr("signing deleted", None, || async {
        reg.get_signing_configuration().await.unwrap()
    })
    .await;
    wait_ecr("ci deregistered", set(&[SCANNER, OUTSIDE]), || {
        exclusions(&env)
    })
    .await;
    let obj = wait_for(&api, "registry", "status follows", |o| {
        o.status.as_ref().is_some_and(|s| {
            s.signing_owned.is_none() && s.registered_exclusions == vec![SCANNER.to_string()]
        })
    })
    .await;
    assert!(ready(&obj));

    // Deletion with deletionPolicy Delete: its exclusion goes; account settings stay.
    api.delete("registry", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "registry").await;
    assert_eq!(exclusions(&env).await, set(&[OUTSIDE]));
    assert_eq!(
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap(),
        "ENABLED"
    );
}

#[tokio::test]
async fn a_foreign_signing_configuration_and_a_second_object_are_conflicts() {
    let env = Env::start().await;
    let api: Api<RegistrySettings> = Api::all(env.kube.client());
    let reg = env.registry.clone();
    let theirs = vec![SigningRuleInfo {
        profile_arn: OTHER_PROFILE.to_string(),
        repository_filters: vec!["team/*".to_string()],
    }];
    reg.put_signing_configuration(&theirs).await.unwrap();
    let before = reg.get_account_setting("BLOB_MOUNTING").await.unwrap();
    let writes = reg.stats().writes();
    let flip = if before == "ENABLED" {
        "DISABLED"
    } else {
        "ENABLED"
    };
    let spec = format!(
        "{{accountSettings: {{blobMounting: {flip}}}, signing: {{rules: [{{signingProfileArn: '{PROFILE}'}}]}}, pullTimeUpdateExclusions: ['{CI}']}}"
    );
    create(&api, &settings("a-first", &spec)).await;
    let c = wait_for(&api, "a-first", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&c).contains("signing configuration that ecr-operator did not write"),
        "{c:?}"
    );
    assert_eq!(
        reg.stats().writes(),
        writes,
        "nothing written, not even the other parts"
    );
    assert_eq!(
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap(),
        before
    );

    // Saying exactly what ECR holds takes it over; then the rest is applied.
    let patch = json!({"spec": {"signing": {"rules": [{"signingProfileArn": OTHER_PROFILE, "repositoryFilters": [{"filter": "team/*"}]}]}}});
    api.patch("a-first", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let first = wait_for(&api, "a-first", "Ready", ready).await;
    assert_eq!(first.status.as_ref().unwrap().signing_owned, Some(true));
    assert_eq!(
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap(),
        flip
    );
    assert_eq!(
        reg.get_signing_configuration().await.unwrap(),
        Some(theirs.clone())
    );

    // A second object for the same registry: Conflict, nothing written by it.
    let writes = reg.stats().writes();
    create(
        &api,
        &settings(
            "b-second",
            &format!("{{accountSettings: {{blobMounting: {before}}}}}"),
        ),
    )
    .await;
    let second = wait_for(&api, "b-second", "Conflict", failed_with("Conflict")).await;
    assert!(
        message_of(&second).contains("RegistrySettings a-first already manages"),
        "{second:?}"
    );
    assert_eq!(reg.stats().writes(), writes);
    api.delete("b-second", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "b-second").await;

    // deletionPolicy Retain (the default): everything stays.
    api.delete("a-first", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "a-first").await;
    assert_eq!(reg.get_signing_configuration().await.unwrap(), Some(theirs));
    assert_eq!(exclusions(&env).await, set(&[CI]));
    assert_eq!(
        reg.get_account_setting("BLOB_MOUNTING").await.unwrap(),
        flip
    );
}

#[tokio::test]
async fn the_crd_refuses_what_ecr_would() {
    let env = Env::start().await;
    // Untyped: the typed kind could not even hold most of what is refused here.
    let resource = kube::core::ApiResource::erase::<RegistrySettings>(&());
    let api: Api<kube::api::DynamicObject> = Api::all_with(env.kube.client(), &resource);
    let refused = [
        // PutAccountSetting takes AWS_NATIVE, V2, ENABLED / DISABLED only.
        (
            "{accountSettings: {basicScanTypeVersion: CLAIR}}",
            "basicScanTypeVersion",
        ),
        (
            "{accountSettings: {registryPolicyScope: V1}}",
            "registryPolicyScope",
        ),
        ("{accountSettings: {blobMounting: 'ON'}}", "blobMounting"),
        // SigningProfileArn's pattern.
        (
            "{signing: {rules: [{signingProfileArn: 'arn:aws:signer:us-east-1:123456789012:signing-profiles/x'}]}}",
            "signingProfileArn",
        ),
        // SigningRepositoryFilterValue: lower case, no leading separator.
        (
            "{signing: {rules: [{signingProfileArn: 'arn:aws:signer:us-east-1:123456789012:/signing-profiles/ok', repositoryFilters: [{filter: 'Prod/*'}]}]}}",
            "filter",
        ),
        (
            "{signing: {rules: [{signingProfileArn: 'arn:aws:signer:us-east-1:123456789012:/signing-profiles/ok', repositoryFilters: [{filter: 'a', filterType: PREFIX_MATCH}]}]}}",
            "filterType",
        ),
        // PrincipalArn: an IAM role or user of a 12-digit account.
        (
            "{pullTimeUpdateExclusions: ['arn:aws:iam::12345:role/short-account']}",
            "pullTimeUpdateExclusions",
        ),
        (
            "{pullTimeUpdateExclusions: ['arn:aws:iam::123456789012:group/g']}",
            "pullTimeUpdateExclusions",
        ),
        (
            "{pullTimeUpdateExclusions: ['arn:aws:iam::123456789012:role/a', 'arn:aws:iam::123456789012:role/a']}",
            "Duplicate value",
        ),
    ];
    for (spec, expect) in refused {
        assert_rejected(&api, &settings("bad", spec), expect).await;
    }
    // 11 rules: SigningRuleList takes at most 10.
    let rule = "{signingProfileArn: 'arn:aws:signer:us-east-1:123456789012:/signing-profiles/ok'}";
    let eleven = format!("{{signing: {{rules: [{}]}}}}", [rule; 11].join(", "));
    assert_rejected(&api, &settings("bad", &eleven), "rules").await;
    // 101 exclusions: the user guide's 100 per account.
    let many: Vec<String> = (0..101)
        .map(|i| format!("'arn:aws:iam::123456789012:role/r{i}'"))
        .collect();
    let many = format!("{{pullTimeUpdateExclusions: [{}]}}", many.join(", "));
    assert_rejected(&api, &settings("bad", &many), "pullTimeUpdateExclusions").await;

    // What ECR accepts is accepted: partitions, paths, users, ten rules, the three settings.
    let ten = format!("{{signing: {{rules: [{}]}}}}", [rule; 10].join(", "));
    create(&api, &settings("ten-rules", &ten)).await;
    api.delete("ten-rules", &DeleteParams::default())
        .await
        .unwrap();
    create(
        &api,
        &settings(
            "accepted",
            "{accountSettings: {basicScanTypeVersion: AWS_NATIVE, registryPolicyScope: V2, blobMounting: DISABLED}, \
             signing: {rules: [{signingProfileArn: 'arn:aws-cn:signer:cn-north-1:123456789012:/signing-profiles/Cn_Profile', repositoryFilters: [{filter: '*prod*'}, {filter: 'team/app.v2_x-y'}]}]}, \
             pullTimeUpdateExclusions: ['arn:aws-us-gov:iam::123456789012:role/path/to/role+=,.@-x', 'arn:aws:iam::123456789012:user/u']}",
        ),
    )
    .await;
    api.delete("accepted", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&api, "accepted").await;
}
