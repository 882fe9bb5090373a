//! Images in a repository and their scans.

use aws_sdk_ecr::types::{DescribeImagesFilter, ImageIdentifier, ImageStatusFilter};

use super::convert::{image_info, merge_findings_page};
use super::{EcrRegistry, PAGE_SIZE};
use crate::registry::{ErrorClass, ImageInfo, Result, ScanFindings};

/// DescribeImages takes at most this many image ids.
const DESCRIBE_BATCH: usize = 100;

/// Every image of the repository with `status` (ECR's default, without one: the active images).
pub(super) async fn list_images(
    r: &EcrRegistry,
    name: &str,
    status: Option<ImageStatusFilter>,
) -> Result<Vec<ImageInfo>> {
    let filter = status.map(|s| DescribeImagesFilter::builder().image_status(s).build());
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = r.outcome(
            "DescribeImages",
            r.client
                .describe_images()
                .repository_name(name)
                .set_filter(filter.clone())
                .max_results(PAGE_SIZE)
                .set_next_token(token.take())
                .send()
                .await,
        )?;
        out.extend(page.image_details().iter().filter_map(image_info));
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

pub(super) async fn image_digest(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    tag: &str,
) -> Result<Option<String>> {
    let result = r.outcome(
        "DescribeImages",
        r.client
            .describe_images()
            .set_registry_id(registry_id.map(str::to_string))
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await,
    );
    match result {
        Ok(out) => Ok(out
            .image_details()
            .iter()
            .find_map(|d| d.image_digest().map(str::to_string))),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) async fn describe_images(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    digests: &[String],
) -> Result<Vec<ImageInfo>> {
    let mut out = Vec::new();
    // DescribeImages fails the whole call with ImageNotFoundException when one of the ids is
    // gone: such a batch is re-read one by one.
    for batch in digests.chunks(DESCRIBE_BATCH) {
        match describe_image_batch(r, registry_id, repository, batch).await {
            Ok(found) => out.extend(found),
            Err(e) if e.code.as_deref() == Some("RepositoryNotFoundException") => {
                return Ok(Vec::new());
            }
            Err(e) if e.class == ErrorClass::NotFound && batch.len() > 1 => {
                out.extend(describe_images_one_by_one(r, registry_id, repository, batch).await?);
            }
            Err(e) if e.class == ErrorClass::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One DescribeImages call per digest, leaving out those that do not exist.
async fn describe_images_one_by_one(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    digests: &[String],
) -> Result<Vec<ImageInfo>> {
    let mut out = Vec::new();
    for digest in digests {
        match describe_image_batch(r, registry_id, repository, std::slice::from_ref(digest)).await {
            Ok(found) => out.extend(found),
            Err(e) if e.class == ErrorClass::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One DescribeImages call for at most [`DESCRIBE_BATCH`] digests.
async fn describe_image_batch(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    digests: &[String],
) -> Result<Vec<ImageInfo>> {
    let ids = digests
        .iter()
        .map(|d| ImageIdentifier::builder().image_digest(d).build())
        .collect();
    let out = r.outcome(
        "DescribeImages",
        r.client
            .describe_images()
            .set_registry_id(registry_id.map(str::to_string))
            .repository_name(repository)
            .set_image_ids(Some(ids))
            .send()
            .await,
    )?;
    Ok(out.image_details().iter().filter_map(image_info).collect())
}

pub(super) async fn describe_image_scan_findings(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    digest: &str,
) -> Result<Option<ScanFindings>> {
    let image_id = ImageIdentifier::builder().image_digest(digest).build();
    let mut out = ScanFindings::default();
    let mut token: Option<String> = None;
    loop {
        let result = r.outcome(
            "DescribeImageScanFindings",
            r.client
                .describe_image_scan_findings()
                .set_registry_id(registry_id.map(str::to_string))
                .repository_name(repository)
                .image_id(image_id.clone())
                .max_results(PAGE_SIZE)
                .set_next_token(token.take())
                .send()
                .await,
        );
        let page = match result {
            Ok(page) => page,
            Err(e) if e.code.as_deref() == Some("ScanNotFoundException") => return Ok(None),
            Err(e) => return Err(e),
        };
        merge_findings_page(&mut out, &page);
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(Some(out)),
        }
    }
}

pub(super) async fn start_image_scan(
    r: &EcrRegistry,
    registry_id: Option<&str>,
    repository: &str,
    digest: &str,
) -> Result<()> {
    r.outcome(
        "StartImageScan",
        r.client
            .start_image_scan()
            .set_registry_id(registry_id.map(str::to_string))
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .send()
            .await,
    )
    .map(drop)
}
