//! The domain's integration tests, one binary: rule tables, the executor through mocked ports,
//! whole cycles over the in-memory world, templates against the SPEC, and a third vendor.

mod common;
mod engine_cycles;
mod exactly_once;
mod executor_mocked;
mod journal;
mod notes_fixture;
mod prelude_only;
mod quiet_hours;
mod rules_table;
mod safeguards;
mod templates_match_spec;
mod third_vendor;
