//! Typed settings from the environment and the command line.

/// Every application setting the product reads. `infra/` sets them and a test keeps the two in step.
pub const APP_SETTINGS: &[&str] = &[
    "ADF_REFRESH_SCOPE",
    "ADF_REFRESH_VAULTS",
    "ADF_REFRESH_NOTIFY",
    "ADF_REFRESH_WEBHOOK_URL",
    "ADF_REFRESH_WEBHOOK_SECRET",
    "ADF_REFRESH_TEAMS_WEBHOOK_URL",
    "ADF_REFRESH_SLACK_WEBHOOK_URL",
    "ADF_REFRESH_ARM_ENDPOINT",
    "ADF_REFRESH_KEYVAULT_ENDPOINT",
    "ADF_REFRESH_CA_FILE",
    "ADF_REFRESH_CREDENTIAL",
    "AZURE_CLIENT_ID",
];
