//! Pushing images to moto (PutImage with a minimal manifest).

use aws_sdk_ecr::Client;

/// Pushes an image manifest under `tag` and returns its digest. The manifest is unique per tag
/// so every call creates a distinct image.
pub async fn push_image(
    client: &Client,
    repository: &str,
    tag: &str,
) -> Result<String, aws_sdk_ecr::Error> {
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": format!("sha256:{:0>64}", hex_of(&format!("config-{repository}-{tag}"))),
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 32654,
            "digest": format!("sha256:{:0>64}", hex_of(&format!("layer-{repository}-{tag}"))),
        }],
    });
    let out = client
        .put_image()
        .repository_name(repository)
        .image_tag(tag)
        .image_manifest(manifest.to_string())
        .send()
        .await?;
    Ok(out
        .image()
        .and_then(|i| i.image_id())
        .and_then(|id| id.image_digest())
        .unwrap_or_default()
        .to_string())
}

/// A stable hex string derived from `s` (not cryptographic; only distinct).
fn hex_of(s: &str) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut out = String::new();
    for salt in 0..4u8 {
        let mut h = DefaultHasher::new();
        (s, salt).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
