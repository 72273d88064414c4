//! The `VendorAdapter` trait: what a vendor crate provides to the engine.

use std::fmt;

use serde::Serialize;

use crate::{Dispatch, VendorName, VendorPolicy};

/// One raw vendor record as received; only the vendor's adapter knows its shape.
pub type RawRecord = serde_json::Value;

/// A template a vendor supplies or overrides: its name and Handlebars source.
pub type TemplateSource = (&'static str, &'static str);

/// A vendor's list response did not have the expected shape (SPEC §9 response checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {vendor} dispatch list: {reason}")]
pub struct ListError {
    /// The vendor whose response it was.
    pub vendor: VendorName,
    /// What was wrong, e.g. `Status is "Failed", not "Success"`.
    pub reason: String,
}

/// Why a record was not turned into a dispatch; logged, never fatal to the cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkipReason {
    /// The record's dispatch number, when it had a usable one.
    pub dispatch_number: Option<String>,
    /// Which field made it unusable and why.
    pub reason: String,
}

impl SkipReason {
    /// A skip for a record with the given dispatch number (if known).
    pub fn new(dispatch_number: Option<&str>, reason: impl Into<String>) -> Self {
        Self {
            dispatch_number: dispatch_number.map(str::to_owned),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dispatch_number {
            Some(number) => write!(f, "{number}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// A vendor: its name, how its list response splits into records, and how one record maps
/// into a [`Dispatch`]. Implementations do no I/O; the engine fetches the list through the
/// [`DispatchSource`](crate::ports::DispatchSource) port.
pub trait VendorAdapter: Send + Sync + fmt::Debug {
    /// The vendor's name, e.g. `LIT`.
    fn name(&self) -> &VendorName;

    /// How the vendor's confirmation flow differs from the common one.
    fn policy(&self) -> VendorPolicy;

    /// The vendor's own templates; they override the common ones of the same name.
    fn templates(&self) -> &'static [TemplateSource];

    /// Names of the extra values this vendor puts in [`Dispatch::template_fields`], so that
    /// start-up can trial-render its templates. None by default.
    fn template_fields(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks a successful list response body and returns its records.
    fn records(&self, body: serde_json::Value) -> Result<Vec<RawRecord>, ListError>;

    /// Maps one record; a record that cannot be used gives the reason instead.
    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason>;
}
