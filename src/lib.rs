//! adf-secret-refresh keeps Azure Data Factory working when a secret in Azure Key Vault rotates.
//!
//! Read the modules in the order a rotation flows through them:
//! [`event`] → [`plan`] (with [`scan`]) → [`apply`] → [`diagnose`] → [`report`].
//! [`azure`] holds the only code that speaks HTTP to Azure; [`functions`] is the Azure Functions custom handler.
#![forbid(unsafe_code)]

pub mod azure;
pub mod config;
pub mod diagnose;
pub mod event;
pub mod functions;
pub mod plan;
pub mod report;
pub mod scan;
