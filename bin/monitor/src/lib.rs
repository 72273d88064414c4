//! The `dispatch-monitor` binary's library: configuration, logs and metrics, the [`app::App`]
//! that schedules vendor cycles under leases and serves HTTP health, metrics, the operator API
//! and the dashboard, `plan`,
//! `demo`, and the wiring of vendor adapters and infrastructure into the domain engine.
//!
//! Business rules live in `domain`; this crate only assembles and schedules. It is the one
//! place that knows every vendor and infrastructure crate.

pub mod alert_queue;
pub mod api;
pub mod app;
pub mod at;
pub mod cli;
pub mod demo;
pub mod http;
pub mod operator;
pub mod plan;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod wiring;
