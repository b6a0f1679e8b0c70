//! tollgate: a privileged-access gateway for application-to-application traffic.
//!
//! The appliance crate: the thread-per-core engine, configuration, identity,
//! policy, the per-protocol session glue and the command-line front end.
//! See `../shared/DESIGN.md` (the product) and `README.md` (how to run it).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod app;
pub mod approvals;
pub mod cluster;
pub mod config;
pub mod dist;
pub mod engine;
pub mod http;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod mysql;
pub mod objstore;
pub mod pg;
pub mod pipeline;
pub mod policy;
pub mod policy_cli;
pub mod ready;
pub mod recording;
pub mod recordings_cli;
pub mod relay;
pub mod service_manager;
pub mod snapshot;
pub mod ssh;
pub mod telemetry;
pub mod tls;
