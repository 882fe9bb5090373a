//! Which registry's pass decides what, pure: the registries a refresh reads (the own and each
//! Ready RegistryTarget something names, [`places`]), which existing reports each one's pass
//! may refresh or delete ([`split_reports`]), which pod images ([`pods_in`]) and which scan
//! events ([`events_of`]) it handles.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::PodImages;
use crate::api::image_scan_report::ImageScanReport;
use crate::registry::ScanEvent;

/// A registry a pass reads, through its own client: the operator's own, or a Ready
/// RegistryTarget's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The RegistryTarget, `None` for the operator's own registry.
    pub target: Option<String>,
    /// The target's account; empty for the own registry (its repositories say theirs).
    pub registry_id: String,
    /// The target's region; for the own registry the operator's, empty when not told.
    pub region: String,
}

/// The registries a pass reads: the own, and each Ready target that a Repository or a
/// ScanPolicy names (`ready` gives a Ready target's account and region). A target nothing
/// names costs no call: the reports of its images are the own pass's to delete.
pub fn places<'a>(
    own_region: &str,
    named: impl IntoIterator<Item = &'a str>,
    ready: impl Fn(&str) -> Option<(String, String)>,
) -> Vec<Place> {
    let mut places = vec![Place {
        target: None,
        registry_id: String::new(),
        region: own_region.to_string(),
    }];
    let named: BTreeSet<&str> = named.into_iter().collect();
    for name in named {
        if let Some((registry_id, region)) = ready(name) {
            places.push(Place {
                target: Some(name.to_string()),
                registry_id,
                region,
            });
        }
    }
    places
}

/// The existing reports split by the place whose pass decides them, in the order of
/// `places`: a target's by its account and region; none for the repositories in `held`
/// (registry id, repository) of Repositories whose target cannot be reached now, whose reports
/// stay as they are; the own registry's all the others.
pub fn split_reports(
    existing: BTreeMap<String, ImageScanReport>,
    places: &[Place],
    held: &BTreeSet<(String, String)>,
) -> Vec<BTreeMap<String, ImageScanReport>> {
    let mut split = vec![BTreeMap::new(); places.len()];
    let own = places.iter().position(|p| p.target.is_none());
    for (name, report) in existing {
        let spec = &report.spec;
        if held.contains(&(spec.registry_id.clone(), spec.repository_name.clone())) {
            continue;
        }
        let target = places.iter().position(|p| {
            p.target.is_some() && p.registry_id == spec.registry_id && p.region == spec.region
        });
        if let Some(i) = target.or(own) {
            split[i].insert(name, report);
        }
    }
    split
}

/// The pod images a pass of a registry in `region` reads, from those of every region: the
/// region's; all of them for the own registry when the operator was not told its region (one
/// client then answers for every region, as against a single test registry).
pub fn pods_in(by_region: &BTreeMap<String, PodImages>, region: &str) -> PodImages {
    if region.is_empty() {
        let mut all = PodImages::new();
        for pods in by_region.values() {
            for (key, refs) in pods {
                all.entry(key.clone())
                    .or_default()
                    .extend(refs.iter().cloned());
            }
        }
        return all;
    }
    by_region.get(region).cloned().unwrap_or_default()
}

/// The events of a batch that `place`'s pass handles: a target's, those that name its
/// account; the own registry's, those that name no Ready target's account.
pub fn events_of(
    place: &Place,
    places: &[Place],
    events: &BTreeSet<ScanEvent>,
) -> BTreeSet<ScanEvent> {
    let of_target = |e: &ScanEvent, p: &Place| {
        p.target.is_some() && e.registry_id.as_deref() == Some(p.registry_id.as_str())
    };
    events
        .iter()
        .filter(|e| match place.target {
            Some(_) => of_target(e, place),
            None => !places.iter().any(|p| of_target(e, p)),
        })
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "places_tests.rs"]
mod tests;
