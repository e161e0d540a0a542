//! The Azure Functions custom handler: one handler per function, behind an axum router.

/// The functions this app defines. Each has a folder of the same name under `function/`.
pub const FUNCTION_NAMES: &[&str] = &["KeyVaultSecretEvent", "RefreshJob", "Refresh", "Audit"];

/// The storage queue that carries refresh jobs from `KeyVaultSecretEvent` to `RefreshJob`.
pub const REFRESH_JOB_QUEUE: &str = "refresh-jobs";
/// The storage queue that receives a message when a run needs a person's attention.
pub const ATTENTION_QUEUE: &str = "refresh-attention";
/// The blob container that receives every report.
pub const REPORT_CONTAINER: &str = "reports";
