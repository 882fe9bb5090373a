//! `ecr-operator export`: the custom resources that describe a registry as it is, so that a team
//! moving from the console or Terraform starts from its real registry.
//!
//! Observe (reads only, through the [`Registry`] trait) → convert (pure, `export/convert.rs`)
//! → YAML documents on stdout in a stable order; what no object can say goes to stderr.

mod convert;
mod names;
mod policy;
mod settings;
#[cfg(test)]
mod tests;

use std::process::ExitCode;

use futures::{StreamExt, TryStreamExt};

use convert::{Export, Object, Observed, ObservedRepository, Options};
use ecr_operator::api::repository::OWNER_TAG;
use ecr_operator::registry::{EcrRegistry, Registry, RegistryConfig, RegistryError};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The namespace of the Repository and LifecyclePolicy objects.
    #[arg(long, short = 'n', default_value = "default")]
    namespace: String,
    /// Leave out the RepositoryAccessPolicy that lets the namespace adopt the exported
    /// repositories (when a cluster admin grants them otherwise).
    #[arg(long)]
    no_access_policy: bool,
    /// Exit with status 2 when some part of the registry could not be exported.
    #[arg(long)]
    strict: bool,
    /// AWS region (default: AWS_REGION / profile).
    #[arg(long, env = "ECR_OPERATOR_REGION")]
    region: Option<String>,
    /// ECR endpoint override (default: AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL).
    #[arg(long, env = "ECR_OPERATOR_ECR_ENDPOINT")]
    ecr_endpoint: Option<String>,
}

/// Why the export stopped: a read failed, or an object could not be written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the registry: {0}")]
    Read(#[from] RegistryError),
    #[error("writing YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// Repositories read at once (three reads each).
const CONCURRENCY: usize = 8;

pub async fn export(args: ExportArgs) -> ExitCode {
    let registry = EcrRegistry::from_env(&RegistryConfig {
        region: args.region.clone(),
        endpoint_url: args.ecr_endpoint.clone(),
        max_attempts: None,
    })
    .await;
    let options = Options {
        namespace: args.namespace.clone(),
        access_policy: !args.no_access_policy,
    };
    let result = match observe(&registry).await {
        Ok(observed) => {
            let exported = convert::export(&observed, &options);
            to_yaml(&exported.objects).map(|yaml| (exported, yaml))
        }
        Err(e) => Err(e),
    };
    let (exported, yaml) = match result {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{yaml}");
    report(&exported);
    if args.strict && exported.notes.iter().any(|n| n.refused) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Everything the conversion needs, read once. A repository the operator owns is read no
/// further than its tags: it is not exported.
pub async fn observe(registry: &dyn Registry) -> Result<Observed, ExportError> {
    let listed = registry.list_repositories().await?;
    let repositories = futures::stream::iter(listed)
        .map(|info| async move {
            let tags = registry.list_tags(&info.arn).await?;
            if tags.contains_key(OWNER_TAG) {
                return Ok(ObservedRepository {
                    info,
                    tags,
                    policy: None,
                    lifecycle_policy: None,
                });
            }
            let policy = registry.get_repository_policy(&info.name).await?;
            let lifecycle_policy = registry.get_lifecycle_policy(&info.name).await?;
            Ok::<_, RegistryError>(ObservedRepository {
                info,
                tags,
                policy,
                lifecycle_policy,
            })
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Observed {
        repositories,
        replication: registry.get_replication().await?,
        scanning: registry.get_registry_scanning().await?,
        registry_policy: registry.get_registry_policy().await?,
        pull_through_cache_rules: registry.list_pull_through_cache_rules().await?,
        templates: registry
            .describe_creation_templates(&[])
            .await?
            .into_iter()
            .map(|t| t.template)
            .collect(),
    })
}

/// The objects as YAML documents, each after `---`.
pub fn to_yaml(objects: &[Object]) -> Result<String, ExportError> {
    let mut out = String::new();
    for object in objects {
        let doc = match object {
            Object::RepositoryAccessPolicy(o) => serde_yaml::to_string(o),
            Object::Repository(o) => serde_yaml::to_string(o),
            Object::LifecyclePolicy(o) => serde_yaml::to_string(o),
            Object::ReplicationConfig(o) => serde_yaml::to_string(o),
            Object::ScanPolicy(o) => serde_yaml::to_string(o),
            Object::RegistryPolicy(o) => serde_yaml::to_string(o),
            Object::PullThroughCacheRule(o) => serde_yaml::to_string(o),
            Object::RepositoryCreationTemplate(o) => serde_yaml::to_string(o),
        }?;
        out.push_str("---\n");
        out.push_str(&doc);
    }
    Ok(out)
}

/// What was left out, one line each on stderr, then a summary.
fn report(exported: &Export) {
    for note in &exported.notes {
        let level = if note.refused { "warning" } else { "note" };
        eprintln!("{level}: {}: {}", note.subject, note.reason);
    }
    let refused = exported.notes.iter().filter(|n| n.refused).count();
    eprintln!(
        "exported {} objects; {refused} parts of the registry left out",
        exported.objects.len()
    );
}
