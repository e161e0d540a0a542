//! adf-secret-refresh keeps Azure Data Factory working when a secret in Azure Key Vault rotates.
//!
//! Read the modules in the order a rotation flows through them:
//! [`event`] → [`apply`] (the run: [`observe`] lists, [`plan`] with [`scan`] decides, [`act`] re-saves and
//! tests) → [`diagnose`] → [`report`] → [`notify`].
//! [`azure`] holds the only code that speaks HTTP to Azure; [`functions`] is the Azure Functions custom
//! handler; [`app`] builds the clients from [`config`] for both the CLI and the handler.
#![forbid(unsafe_code)]

pub mod act;
pub mod app;
pub mod apply;
pub mod audit;
pub mod azure;
pub mod config;
pub mod coordination;
pub mod diagnose;
pub mod event;
pub mod functions;
pub mod impact;
pub mod inventory;
pub mod lint;
pub mod model;
pub mod notify;
pub mod observe;
pub mod plan;
pub mod remote;
pub mod report;
pub mod scan;
pub mod telemetry;
