//! What a pass reads besides the watched Repositories and ScanPolicies (`cluster.rs`): the
//! reports that exist, the images pods run, and what ECR holds of a target's images.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::plan::{Images, PodImage, PodImages, Target};
use super::report::label_value;
use super::{MANAGED_BY_LABEL, REPOSITORY_LABEL};
use crate::api::image_scan_report::ImageScanReport;
use crate::controllers::{Context, Error, MANAGER};
use crate::image::{EcrImage, ImageRef};
use crate::registry::{ImageInfo, Registry};

/// Pods listed per page.
const POD_PAGE: u32 = 500;
/// Repositories per report listing of an event batch (their label values go in the URL).
const REPOSITORIES_PER_LISTING: usize = 50;

/// Every report this operator wrote (in its watch scope), by name.
pub async fn reports(ctx: &Context) -> Result<BTreeMap<String, ImageScanReport>, Error> {
    list_reports(ctx, None).await
}

/// The reports of `repositories` only, found by the repository label every report carries: an
/// event batch lists these instead of every report.
pub async fn reports_of(
    ctx: &Context,
    repositories: &BTreeSet<&str>,
) -> Result<BTreeMap<String, ImageScanReport>, Error> {
    // ECR names start with a letter or digit: no label value is empty.
    let labels: BTreeSet<String> = repositories
        .iter()
        .map(|r| label_value(r))
        .filter(|l| !l.is_empty())
        .collect();
    let labels: Vec<String> = labels.into_iter().collect();
    let mut out = BTreeMap::new();
    for chunk in labels.chunks(REPOSITORIES_PER_LISTING) {
        let term = format!("{REPOSITORY_LABEL} in ({})", chunk.join(","));
        out.extend(list_reports(ctx, Some(&term)).await?);
    }
    // Repositories that sanitize alike share a label value.
    out.retain(|_, r| repositories.contains(r.spec.repository_name.as_str()));
    Ok(out)
}

async fn list_reports(
    ctx: &Context,
    term: Option<&str>,
) -> Result<BTreeMap<String, ImageScanReport>, Error> {
    let api = Api::<ImageScanReport>::all(ctx.client.clone());
    let mut selector = format!("{MANAGED_BY_LABEL}={MANAGER}");
    for extra in term
        .into_iter()
        .map(str::to_string)
        .chain(ctx.config.watch.label_selector())
    {
        selector = format!("{selector},{extra}");
    }
    Ok(api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .map(|r| (r.name_any(), r))
        .collect())
}

/// What ECR holds of `target`'s images, read through `registry` (its place's client): every
/// image of a managed repository, or those it names (a tag costs one lookup of its digest, then
/// one DescribeImages per 100 digests).
pub async fn images(registry: &dyn Registry, target: &Target) -> Result<Vec<ImageInfo>, Error> {
    let (registry_id, repository) = (target.registry_id.as_str(), target.repository.as_str());
    let refs = match &target.images {
        Images::All => return Ok(registry.list_images(repository).await?),
        Images::Only(refs) => refs,
    };
    let mut digests = BTreeSet::new();
    for r in refs {
        match r {
            PodImage::Digest(d) => {
                digests.insert(d.clone());
            }
            PodImage::Tag(t) => {
                if let Some(d) = registry
                    .image_digest(Some(registry_id), repository, t)
                    .await?
                {
                    digests.insert(d);
                }
            }
        }
    }
    let digests: Vec<String> = digests.into_iter().collect();
    Ok(registry
        .describe_images(Some(registry_id), repository, &digests)
        .await?)
}

/// The ECR images of every pod, by region, then by (registry id, repository).
pub async fn pod_images(ctx: &Context) -> Result<BTreeMap<String, PodImages>, Error> {
    let scope = &ctx.config.watch;
    let api = scope.namespaced_api::<Pod>(&ctx.client);
    let mut out = BTreeMap::<String, PodImages>::new();
    let mut params = scope.list_params().limit(POD_PAGE);
    loop {
        let page = api.list(&params).await?;
        let in_scope = page
            .items
            .iter()
            .filter(|p| scope.includes_namespace(p.metadata.namespace.as_deref()));
        for image in in_scope.flat_map(images_of) {
            let key = (image.account.clone(), image.repository.clone());
            let id = match (image.digest, image.tag) {
                (Some(d), _) => PodImage::Digest(d),
                (None, Some(t)) => PodImage::Tag(t),
                (None, None) => continue,
            };
            let region = out.entry(image.region).or_default();
            region.entry(key).or_default().insert(id);
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// The ECR images of one pod: for each container, the digest the kubelet reports it runs
/// (`imageID`), else the image of its spec.
pub fn images_of(pod: &Pod) -> Vec<EcrImage> {
    let mut running = running_images(pod);
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let containers = spec
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.image.as_deref()))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), c.image.as_deref())),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), c.image.as_deref())),
        );
    let mut out = Vec::new();
    for (name, image) in containers {
        if let Some(image) = running.remove(name) {
            out.push(image);
        } else if let Some(image) = image
            .and_then(|i| ImageRef::parse(i).ok())
            .and_then(|r| r.ecr())
        {
            out.push(image);
        }
    }
    out
}

/// The ECR image each container runs, by container name, from the kubelet's `imageID`.
fn running_images(pod: &Pod) -> BTreeMap<&str, EcrImage> {
    let mut running = BTreeMap::new();
    let Some(status) = &pod.status else {
        return running;
    };
    let statuses = [
        &status.container_statuses,
        &status.init_container_statuses,
        &status.ephemeral_container_statuses,
    ];
    for s in statuses.into_iter().flatten().flatten() {
        // Container runtimes report `[docker-pullable://]HOST/REPO@sha256:...`.
        let id = s.image_id.trim_start_matches("docker-pullable://");
        if let Some(image) = ImageRef::parse(id).ok().and_then(|r| r.ecr())
            && image.digest.is_some()
        {
            running.insert(s.name.as_str(), image);
        }
    }
    running
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_report_the_digest_they_run() {
        let host = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let digest = format!("sha256:{}", "cd".repeat(32));
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [{"name": "init", "image": format!("{host}/base/init@{digest}")}],
                "containers": [
                    {"name": "app", "image": format!("{host}/team/app:v1")},
                    {"name": "sidecar", "image": "docker.io/library/nginx:1.27"},
                    {"name": "pending", "image": format!("{host}/team/tool:2")},
                ],
            },
            "status": {"containerStatuses": [
                {"name": "app", "image": format!("{host}/team/app:v1"),
                 "imageID": format!("docker-pullable://{host}/team/app@{digest}"),
                 "ready": true, "restartCount": 0},
                {"name": "sidecar", "image": "nginx:1.27",
                 "imageID": format!("docker.io/library/nginx@{digest}"),
                 "ready": true, "restartCount": 0},
            ]},
        }))
        .unwrap();
        let got: Vec<(String, Option<String>, Option<String>)> = images_of(&pod)
            .into_iter()
            .map(|i| (i.repository, i.tag, i.digest))
            .collect();
        assert_eq!(
            got,
            vec![
                // The kubelet's imageID: the digest pulled, without the tag.
                ("team/app".to_string(), None, Some(digest.clone())),
                ("team/tool".to_string(), Some("2".to_string()), None),
                ("base/init".to_string(), None, Some(digest.clone())),
            ]
        );
    }
}
