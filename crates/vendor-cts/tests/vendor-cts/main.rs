//! The CTS adapter's integration tests, one binary: fixture mappings and properties.

mod mapping;
mod properties;
