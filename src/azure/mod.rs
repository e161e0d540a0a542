//! The clients that speak HTTP to Azure. Nothing else in the crate does.
pub mod operations;
