//! The dispatch monitor's domain: general statuses, the normalised [`Dispatch`], validated
//! newtypes, ticket notes, the rules and their executor, the per-vendor cycle [`Engine`], and
//! the ports (async traits) through which all of it reaches the outside world.
//!
//! This crate does no I/O. It knows nothing of NATS, Redis or any vendor's JSON shape:
//! vendor crates implement [`VendorAdapter`], infrastructure crates implement the traits in
//! [`ports`]. It depends on no infrastructure crate, so other services can reuse it with their
//! own port implementations (see [`memory`] and the example on [`Engine`]).

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod appointment;
mod dispatch;
mod ids;
mod notes;
mod quiet;
mod status;
mod templates;
mod vendor;

pub mod actions;
pub mod alerts;
pub mod engine;
pub mod events;
pub mod executor;
pub mod journal;
pub mod memory;
#[cfg(feature = "mocks")]
pub mod mocks;
pub mod pausing;
pub mod ports;
pub mod record;
pub mod rules;
pub mod safeguards;
pub mod telemetry;

pub use appointment::{Appointment, SiteZone, UsZone};
pub use dispatch::{Dispatch, VendorPolicy, join_present};
pub use engine::{CycleError, CycleReport, Engine, EngineSettings, Mode, Ports, StopReason};
pub use ids::{
    DispatchNumber, InvalidValue, NoteKey, PHONE_INPUT_PATTERN, PhoneE164, TicketId, VendorName,
};
pub use journal::{DispatchOutcome, DispatchReport};
pub use notes::{
    DispatchNotes, LEGACY_WATERMARK, RawTicketNote, TicketNote, TicketNotes, WATERMARK, belongs_to,
    normalise_name, phrases, tech_names_in,
};
pub use quiet::QuietHours;
pub use status::Status;

// What the public signatures use, so users need not depend on the same versions themselves.
pub use async_trait::async_trait;
pub use chrono;
pub use serde_json;

/// What an adapter, a port implementation or another service driving the engine needs, in
/// one `use`: every type the port traits' signatures, [`VendorAdapter`] and the [`Engine`]'s
/// public API (its reports and their steps) use.
pub mod prelude {
    pub use std::collections::BTreeMap;
    pub use std::sync::Arc;
    pub use std::time::Duration;

    pub use crate::actions::{ActionKind, Recipient, SmsPurpose};
    pub use crate::alerts::AlertLevel;
    pub use crate::journal::{
        CycleRecord, DispatchHistory, DispatchSnapshot, EntryKind, Execution, Journal,
        JournalEntry, LastAction, NoJournal,
    };
    pub use crate::ports::{
        Claim, Clock, DispatchRegistry, DispatchSource, Email, EntryState, LargeMessageStore,
        LeaseToken, LedgerEntry, LedgerKey, Notifier, PortError, SmsLedger, StepKey, SystemClock,
        TicketRepository, VendorLease,
    };
    pub use crate::rules::{
        Action, BlockedAction, DeferredAction, Plan, PlannedSms, RuleSettings, Step,
    };
    pub use crate::safeguards::{
        DailyCap, OptOut, Reservation, SafeguardFacts, SafeguardMark, Safeguards, Withhold,
    };
    pub use crate::{
        Appointment, CycleError, CycleReport, Dispatch, DispatchNumber, DispatchOutcome,
        DispatchReport, DispatchSpec, Engine, EngineSettings, ListBody, ListError, Mode, NoteKey,
        PhoneE164, Ports, QuietHours, RawRecord, RawRecordText, RawTicketNote, SkipReason, Status,
        TemplateError, TemplateSource, TicketId, VendorAdapter, VendorName, VendorPolicy,
        async_trait, list_body_of, record, records_of,
    };
    pub use chrono::{DateTime, Utc};
    pub use serde_json::value::RawValue;
    pub use serde_json::{Value, json};
}
pub use templates::{
    MAX_NOTE_CHARS, TemplateContext, TemplateError, TemplateName, TemplateValues, Templates,
};
pub use vendor::{
    DispatchSpec, ListBody, ListError, RawRecord, RawRecordText, SkipReason, TemplateSource,
    VendorAdapter, list_body_of, records_of,
};
