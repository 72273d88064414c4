//! The `VendorAdapter` trait: what a vendor crate provides to the engine.

use std::fmt;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::{Dispatch, Status, VendorName, VendorPolicy};

/// One raw vendor record as received; only the vendor's adapter knows its shape.
pub type RawRecord = serde_json::Value;

/// A vendor list reply's body as JSON text, as the bridge sent it. It is read only as far as
/// needed: the adapter reads its few top-level fields and splits its array into
/// [`RawRecordText`]s, and each record becomes a [`RawRecord`] only while it is mapped. A list
/// of 10,000 records never exists as one JSON tree.
pub type ListBody = Box<serde_json::value::RawValue>;

/// One record of a vendor's list as JSON text, borrowed from its [`ListBody`].
pub type RawRecordText<'a> = &'a serde_json::value::RawValue;

/// The list body of a JSON value, for sources and tests that hold lists as values.
pub fn list_body_of(value: &serde_json::Value) -> ListBody {
    serde_json::value::to_raw_value(value).expect("a JSON value always serialises")
}

/// The records `adapter` reads from a list body given as a value, each read back as JSON: for
/// tests and simulators, which hold lists as values.
pub fn records_of(
    adapter: &dyn VendorAdapter,
    body: &serde_json::Value,
) -> Result<Vec<RawRecord>, ListError> {
    let body = list_body_of(body);
    adapter
        .records(&body)?
        .into_iter()
        .map(|text| {
            serde_json::from_str(text.get()).map_err(|error| {
                ListError::new(adapter.name(), format!("a record cannot be read: {error}"))
            })
        })
        .collect()
}

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

impl ListError {
    /// `vendor`'s list was wrong for `reason`.
    pub fn new(vendor: &VendorName, reason: impl Into<String>) -> Self {
        Self {
            vendor: vendor.clone(),
            reason: reason.into(),
        }
    }
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

/// A dispatch described in the monitor's terms, as a vendor's record would state it. The
/// simulator (`dispatch-sim`), tests and benchmarks build worlds of these; a vendor's
/// [`VendorAdapter::record_for`] writes one as that vendor's raw record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchSpec {
    /// The vendor's dispatch id.
    pub dispatch_number: String,
    /// The Bruin ticket.
    pub ticket_id: String,
    /// The id our notes carry, when the vendor keeps it apart from the dispatch number (CTS's
    /// IGZ number); vendors whose note key is the dispatch number ignore it.
    pub note_key: Option<String>,
    /// The general status.
    pub status: Status,
    /// The appointment's wall-clock time at the site, and the site's zone word
    /// (`Pacific`, `Eastern`, ...).
    pub appointment: Option<(chrono::NaiveDateTime, String)>,
    /// The technician's name.
    pub tech_name: Option<String>,
    /// The technician's phone, as the vendor would write it.
    pub tech_phone: Option<String>,
    /// The site contact's phone, as the vendor would write it.
    pub client_phone: Option<String>,
    /// The site's name.
    pub site: Option<String>,
    /// The site's street.
    pub street: Option<String>,
    /// The technician checked in.
    pub tech_on_site: bool,
    /// The technician checked out.
    pub completed: bool,
}

impl DispatchSpec {
    /// A requested dispatch with only its identity.
    pub fn new(dispatch_number: &str, ticket_id: &str) -> Self {
        Self {
            dispatch_number: dispatch_number.to_owned(),
            ticket_id: ticket_id.to_owned(),
            note_key: None,
            status: Status::Requested,
            appointment: None,
            tech_name: None,
            tech_phone: None,
            client_phone: None,
            site: None,
            street: None,
            tech_on_site: false,
            completed: false,
        }
    }
}

/// A vendor: its name, how its list response splits into records, and how one record maps
/// into a [`Dispatch`]. Implementations do no I/O; the engine fetches the list through the
/// [`DispatchSource`](crate::ports::DispatchSource) port.
///
/// What the rules need from [`map_record`](Self::map_record), rule by rule, is listed in
/// `docs/adding-a-vendor.md`; [`record`](crate::record) has the helpers every adapter uses to
/// read raw JSON.
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

    /// Checks a successful list response body and splits it into its records, still as JSON
    /// text ([`record::list_fields`](crate::record::list_fields) and
    /// [`record::list_records`](crate::record::list_records) do the reading).
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError>;

    /// The list response body a bridge sends for `records`: the inverse of
    /// [`records`](Self::records). Simulators and tests use it to serve any vendor's list.
    fn list_body(&self, records: Vec<RawRecord>) -> serde_json::Value;

    /// Maps one record; a record that cannot be used gives the reason instead.
    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason>;

    /// The raw record this vendor would send for `spec`, so that the simulator, tests and
    /// benchmarks can serve the vendor without knowing its JSON: `map_record` of it gives back
    /// `spec`'s values. `None` (the default) means the vendor cannot be simulated.
    fn record_for(&self, spec: &DispatchSpec) -> Option<RawRecord> {
        let _ = spec;
        None
    }
}
