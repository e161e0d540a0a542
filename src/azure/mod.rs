//! The clients that speak HTTP to Azure. Nothing else in the crate does.
pub mod arm;
pub mod auth;
pub mod error;
pub mod keyvault;
pub mod lro;
pub mod operations;
pub mod pacer;
pub mod pager;
pub mod request;
pub mod resource_id;
pub mod retry;
pub mod storage;
pub mod synapse;
