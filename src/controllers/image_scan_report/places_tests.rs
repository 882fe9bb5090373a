//! Table tests of which registry's pass decides what (`places.rs`).

use super::*;
use crate::api::image_scan_report::ImageScanReportSpec;
use crate::controllers::image_scan_report::plan::PodImage;

const OWN: &str = "111122223333";
const B: &str = "444455556666";

fn place(target: Option<&str>, registry_id: &str, region: &str) -> Place {
    Place {
        target: target.map(str::to_string),
        registry_id: registry_id.into(),
        region: region.into(),
    }
}

fn report(registry_id: &str, region: &str, repository: &str) -> (String, ImageScanReport) {
    let name = format!("{registry_id}-{region}-{repository}");
    let spec = ImageScanReportSpec {
        registry_id: registry_id.into(),
        region: region.into(),
        repository_name: repository.into(),
        ..Default::default()
    };
    (name.clone(), ImageScanReport::new(&name, spec))
}

#[test]
fn the_own_registry_and_each_ready_named_target_are_read() {
    let ready = |name: &str| match name {
        "b" => Some((B.to_string(), "eu-west-1".to_string())),
        _ => None,
    };
    let got = places("us-east-1", ["b", "gone", "b"], ready);
    assert_eq!(
        got,
        vec![
            place(None, "", "us-east-1"),
            // Named twice, read once; "gone" is not Ready: no pass, no call.
            place(Some("b"), B, "eu-west-1"),
        ]
    );
    assert_eq!(places("", [], ready), vec![place(None, "", "")]);
}

#[test]
fn reports_go_to_the_pass_of_their_registry_and_held_ones_to_none() {
    let places = [
        place(None, "", "us-east-1"),
        place(Some("b"), B, "eu-west-1"),
    ];
    let existing: BTreeMap<String, ImageScanReport> = [
        report(OWN, "us-east-1", "app"),
        report(B, "eu-west-1", "app"),
        // Account B in another region than the target's: not that target's to decide.
        report(B, "us-east-1", "app"),
        // A Repository whose target cannot be reached: its reports stay.
        report(B, "ap-south-1", "held"),
        // A region-less (older) report of the own registry.
        report(OWN, "", "web"),
    ]
    .into_iter()
    .collect();
    let held = BTreeSet::from([(B.to_string(), "held".to_string())]);
    let split = split_reports(existing, &places, &held);
    let names = |i: usize| split[i].keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(0),
        [
            format!("{OWN}--web"),
            format!("{OWN}-us-east-1-app"),
            format!("{B}-us-east-1-app"),
        ]
    );
    assert_eq!(names(1), [format!("{B}-eu-west-1-app")]);
}

#[test]
fn scan_events_go_to_the_target_of_their_account_else_the_own_registry() {
    let event = |registry_id: Option<&str>, repository: &str| ScanEvent {
        registry_id: registry_id.map(str::to_string),
        repository: repository.into(),
        digest: "sha256:00".into(),
    };
    let places = [
        place(None, "", "us-east-1"),
        place(Some("b"), B, "eu-west-1"),
    ];
    let events = BTreeSet::from([
        event(Some(B), "in-b"),
        event(Some(OWN), "own"),
        event(None, "unsaid"),
    ]);
    let repos = |p: &Place| {
        events_of(p, &places, &events)
            .into_iter()
            .map(|e| e.repository)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        repos(&places[0]),
        BTreeSet::from(["own".into(), "unsaid".into()])
    );
    assert_eq!(repos(&places[1]), BTreeSet::from(["in-b".into()]));
}

#[test]
fn a_pass_reads_the_pod_images_of_its_region_or_all_when_the_own_region_is_unknown() {
    let image = |account: &str, repository: &str, tag: &str| {
        PodImages::from([(
            (account.to_string(), repository.to_string()),
            BTreeSet::from([PodImage::Tag(tag.into())]),
        )])
    };
    let by_region = BTreeMap::from([
        ("us-east-1".to_string(), image(OWN, "app", "v1")),
        ("eu-west-1".to_string(), image(B, "app", "v2")),
    ]);
    assert_eq!(pods_in(&by_region, "eu-west-1"), image(B, "app", "v2"));
    assert_eq!(pods_in(&by_region, "ap-south-1"), PodImages::new());
    let all = pods_in(&by_region, "");
    assert_eq!(all.len(), 2);
    assert!(all.contains_key(&(B.to_string(), "app".to_string())));
}
