//! Counts of ECR calls by operation and outcome, read by metrics and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// ECR operations that change state; a resync of unchanged objects must make none.
pub const WRITE_OPERATIONS: &[&str] = &[
    "CreateRepository",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "TagResource",
    "UntagResource",
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "DeleteRepository",
    "PutLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "PutReplicationConfiguration",
    "PutRegistryScanningConfiguration",
    "PutRegistryPolicy",
    "DeleteRegistryPolicy",
    "CreatePullThroughCacheRule",
    "UpdatePullThroughCacheRule",
    "DeletePullThroughCacheRule",
    "CreateRepositoryCreationTemplate",
    "UpdateRepositoryCreationTemplate",
    "DeleteRepositoryCreationTemplate",
    "StartImageScan",
    "PutAccountSetting",
    "PutSigningConfiguration",
    "DeleteSigningConfiguration",
    "RegisterPullTimeUpdateExclusion",
    "DeregisterPullTimeUpdateExclusion",
    // ECR Public, counted as `ecr-public:<Operation>` (the IAM action's spelling).
    "ecr-public:CreateRepository",
    "ecr-public:PutRepositoryCatalogData",
    "ecr-public:TagResource",
    "ecr-public:UntagResource",
    "ecr-public:SetRepositoryPolicy",
    "ecr-public:DeleteRepositoryPolicy",
    "ecr-public:DeleteRepository",
    // Secrets Manager, for mirrored pull-through cache credentials.
    "CreateSecret",
    "PutSecretValue",
    "DeleteSecret",
];

/// Call counters keyed by (operation, outcome); outcome is `success` or an error class.
#[derive(Debug, Default)]
pub struct CallStats {
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl CallStats {
    pub fn record(&self, operation: &'static str, outcome: &'static str) {
        // A poisoned lock only means a panic elsewhere mid-increment; counting goes on.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((operation, outcome)).or_default() += 1;
    }

    /// A copy of all counters.
    pub fn snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Total calls, all operations and outcomes.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Calls of one operation, all outcomes.
    pub fn operation(&self, operation: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((op, _), _)| *op == operation)
            .map(|(_, n)| n)
            .sum()
    }

    /// Successful calls that changed state (a refused CreateRepository changed nothing).
    pub fn writes(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((op, outcome), _)| *outcome == "success" && WRITE_OPERATIONS.contains(op))
            .map(|(_, n)| n)
            .sum()
    }
}
