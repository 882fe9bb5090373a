//! `ecr-operator lifecycle`: lifecycle policy tools.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ecr_operator::registry::{EcrRegistry, Registry, RegistryConfig};
use ecr_operator::{api, controllers};

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// The ECR repository name (e.g. team/app).
    #[arg(long)]
    repository: String,
    /// A LifecyclePolicy YAML file (the whole object, or only its spec); `-` reads stdin.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// AWS region (default: AWS_REGION / profile).
    #[arg(long, env = "ECR_OPERATOR_REGION")]
    region: Option<String>,
    /// ECR endpoint override (default: AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL).
    #[arg(long, env = "ECR_OPERATOR_ECR_ENDPOINT")]
    ecr_endpoint: Option<String>,
}

/// `ecr-operator lifecycle preview`: which images the policy would expire, and which it would
/// archive, now.
pub async fn preview(args: PreviewArgs) -> ExitCode {
    let text = match read_text(&args.file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let spec = match read_policy(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let (rules, _) = match controllers::lifecycle_policy::render_spec(&spec) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let registry = EcrRegistry::from_env(&RegistryConfig {
        region: args.region,
        endpoint_url: args.ecr_endpoint,
        max_attempts: None,
    })
    .await;
    let images = match registry.list_images_any_status(&args.repository).await {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let preview =
        controllers::lifecycle_policy::preview(&rules, &images, chrono::Utc::now(), usize::MAX);
    print!("{}", format_preview(&args.repository, &preview));
    ExitCode::SUCCESS
}

/// The file's text, or stdin's for `-`.
fn read_text(file: &Path) -> Result<String, String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))
    }
}

/// Reads a LifecyclePolicy (or only its spec) from YAML.
fn read_policy(text: &str) -> Result<api::lifecycle_policy::LifecyclePolicySpec, String> {
    if let Ok(policy) = serde_yaml::from_str::<api::LifecyclePolicy>(text) {
        return Ok(policy.spec);
    }
    serde_yaml::from_str::<api::lifecycle_policy::LifecyclePolicySpec>(text)
        .map_err(|e| format!("not a LifecyclePolicy: {e}"))
}

/// The preview as a table, one line per image the policy would act on (ACTION `expire` or
/// `archive`, STORAGE the class the image is in now), then a summary line.
fn format_preview(repository: &str, preview: &api::lifecycle_policy::LifecyclePreview) -> String {
    use api::lifecycle_policy::{LifecycleActionType, LifecycleStorageClass};
    let mut out = String::new();
    if !preview.images.is_empty() {
        let rows: Vec<[String; 6]> = preview
            .images
            .iter()
            .map(|i| {
                [
                    i.digest.clone(),
                    if i.tags.is_empty() {
                        "<untagged>".to_string()
                    } else {
                        i.tags.join(",")
                    },
                    i.pushed_at.clone(),
                    match i.storage_class {
                        LifecycleStorageClass::Standard => "standard",
                        LifecycleStorageClass::Archive => "archive",
                    }
                    .to_string(),
                    match i.action {
                        LifecycleActionType::Expire => "expire",
                        LifecycleActionType::Transition => "archive",
                    }
                    .to_string(),
                    i.rule_priority.to_string(),
                ]
            })
            .collect();
        let header = ["DIGEST", "TAGS", "PUSHED", "STORAGE", "ACTION", "RULE"].map(str::to_string);
        push_table(&mut out, &header, &rows);
    }
    out.push_str(&format!(
        "{} of {} images in {repository} would expire",
        preview.expiring_count, preview.image_count
    ));
    if preview.archiving_count > 0 {
        out.push_str(&format!(", {} would be archived", preview.archiving_count));
    }
    out.push('\n');
    out
}

/// Left-aligned columns as wide as their widest cell, two spaces apart.
fn push_table<const N: usize>(out: &mut String, header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::lifecycle_policy::{
        LifecycleActionType, LifecyclePreview, LifecycleStorageClass, PreviewImage,
    };

    #[test]
    fn each_image_says_archive_or_expire_and_its_rule() {
        let image = |digest: &str, action, storage_class, rule_priority| PreviewImage {
            digest: digest.to_string(),
            tags: vec![],
            pushed_at: "2025-01-01T00:00:00Z".to_string(),
            rule_priority,
            action,
            storage_class,
        };
        let preview = LifecyclePreview {
            image_count: 3,
            expiring_count: 1,
            archiving_count: 1,
            images: vec![
                image(
                    "sha256:a",
                    LifecycleActionType::Transition,
                    LifecycleStorageClass::Standard,
                    1,
                ),
                image(
                    "sha256:bb",
                    LifecycleActionType::Expire,
                    LifecycleStorageClass::Archive,
                    2,
                ),
            ],
            ..Default::default()
        };
        assert_eq!(
            format_preview("team/app", &preview),
            "DIGEST     TAGS        PUSHED                STORAGE   ACTION   RULE\n\
             sha256:a   <untagged>  2025-01-01T00:00:00Z  standard  archive  1\n\
             sha256:bb  <untagged>  2025-01-01T00:00:00Z  archive   expire   2\n\
             1 of 3 images in team/app would expire, 1 would be archived\n"
        );
    }
}
