//! The clients that speak HTTP to Azure. Nothing else in the crate does.
pub mod arm;
pub mod auth;
pub mod keyvault;
pub mod operations;
pub mod pacer;
pub mod resource_id;
pub mod retry;
pub mod storage;
pub mod synapse;
