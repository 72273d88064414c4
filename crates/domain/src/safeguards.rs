//! Customer-text safeguards (SPEC §17): the levers an operator has over the texts the monitor
//! sends on its own. Numbers that opted out are never texted; no number gets more than the
//! daily cap in any rolling 24 hours; a paused dispatch texts nobody. They live behind the
//! [`Safeguards`] port, so every replica obeys them at once, and they fail safe: a safeguard
//! that cannot be read sends nothing.
//!
//! The engine reads a dispatch's safeguards once, in its observe phase
//! ([`Safeguards::dispatch_facts`]), and hands them to the pure rules as [`SafeguardFacts`].
//! The cap is also reserved, atomically, just before each SMS is claimed in the ledger.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::PortError;
use crate::{DispatchNumber, PhoneE164, VendorName};

/// The rolling window the cap counts over: 24 hours.
pub const CAP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// How long a pause lasts unless resumed: 30 days.
pub const PAUSE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The default `MONITOR_SMS_DAILY_CAP`.
pub const DEFAULT_DAILY_CAP: u32 = 10;

/// Who set a safeguard, when and why (stored as JSON `{at, by, reason}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SafeguardMark {
    /// When it was set.
    pub at: DateTime<Utc>,
    /// Who set it: `cli:{user}` or `api`.
    pub by: String,
    /// Why, as the operator wrote it (may be empty).
    pub reason: String,
}

/// A number on the opt-out list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    /// The number, E.164.
    pub phone: PhoneE164,
    /// Who listed it, when and why.
    pub mark: SafeguardMark,
}

/// The result of reserving one text against a number's daily cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted: the text may go.
    Reserved,
    /// The number already had `count` texts in the last 24 hours: the text must not go.
    Full {
        /// Texts counted in the window.
        count: u32,
    },
}

/// The daily cap per number (`MONITOR_SMS_DAILY_CAP`); zero is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DailyCap(pub u32);

impl DailyCap {
    /// The cap when it is on.
    pub fn limit(self) -> Option<u32> {
        (self.0 > 0).then_some(self.0)
    }
}

impl Default for DailyCap {
    fn default() -> Self {
        Self(DEFAULT_DAILY_CAP)
    }
}

impl fmt::Display for DailyCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the safeguards say about one dispatch, read once per cycle for the rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SafeguardFacts {
    /// Which of the dispatch's numbers opted out.
    pub opted_out: BTreeSet<PhoneE164>,
    /// The dispatch's pause, when paused.
    pub paused: Option<SafeguardMark>,
    /// Which of the dispatch's numbers are at their daily cap now.
    pub capped: BTreeSet<PhoneE164>,
    /// Why the safeguards could not be read: then no SMS step may be taken (fail safe).
    pub unreadable: Option<String>,
}

impl SafeguardFacts {
    /// Nothing configured: no opt-out, no pause, nothing capped.
    pub const NONE: SafeguardFacts = SafeguardFacts {
        opted_out: BTreeSet::new(),
        paused: None,
        capped: BTreeSet::new(),
        unreadable: None,
    };

    /// Facts that could not be read: every SMS step fails safe.
    pub fn unreadable(error: &PortError) -> Self {
        Self {
            unreadable: Some(error.to_string()),
            ..Self::default()
        }
    }
}

/// Why an SMS step is withheld by a safeguard. Listed in precedence order: when several
/// apply, the first wins (opted out > paused > capped; quiet hours come after all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withhold {
    /// The number is on the opt-out list (SPEC §17.1).
    OptedOut,
    /// The dispatch is paused (SPEC §17.3).
    Paused,
    /// The number had its daily cap of texts (SPEC §17.2).
    Capped,
}

impl Withhold {
    /// The metric and journal label: `opted_out`, `paused`, `capped`.
    pub fn label(self) -> &'static str {
        match self {
            Withhold::OptedOut => "opted_out",
            Withhold::Paused => "paused",
            Withhold::Capped => "capped",
        }
    }

    /// How `plan` shows the step: `withheld (opted out)`, `withheld (paused)`, `held (capped)`.
    pub fn plan_label(self) -> &'static str {
        match self {
            Withhold::OptedOut => "withheld (opted out)",
            Withhold::Paused => "withheld (paused)",
            Withhold::Capped => "held (capped)",
        }
    }
}

impl fmt::Debug for dyn Safeguards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Safeguards")
    }
}

/// The safeguards' store (SPEC §17): opt-outs, pauses, and the per-number daily counts. Every
/// replica reads the same store. Times are the caller's clock, so a simulated day works.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Safeguards: Send + Sync {
    /// Everything the rules need about one dispatch, whose numbers are `phones`: which opted
    /// out, its pause, and (when `cap` is on) which are at the cap.
    async fn dispatch_facts(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
        phones: &[PhoneE164],
        cap: DailyCap,
        now: DateTime<Utc>,
    ) -> Result<SafeguardFacts, PortError> {
        let counts = async {
            let mut capped = BTreeSet::new();
            if let Some(limit) = cap.limit() {
                for phone in phones {
                    if self.texts_in_window(phone, now).await? >= limit {
                        capped.insert(phone.clone());
                    }
                }
            }
            Ok::<_, PortError>(capped)
        };
        let (opted_out, paused, capped) = futures::join!(
            self.opted_out(phones),
            self.paused(vendor, dispatch_number),
            counts
        );
        Ok(SafeguardFacts {
            opted_out: opted_out?,
            paused: paused?,
            capped: capped?,
            unreadable: None,
        })
    }

    /// Which of `phones` are on the opt-out list. An entry of one of them that cannot be
    /// read is an error (`PortError::Malformed`), never "not listed".
    async fn opted_out(&self, phones: &[PhoneE164]) -> Result<BTreeSet<PhoneE164>, PortError>;
    /// Lists `phone`; `false` when it was listed already (the first listing is kept).
    async fn add_opt_out(&self, phone: &PhoneE164, mark: &SafeguardMark)
    -> Result<bool, PortError>;
    /// Takes `phone` off the list; `false` when it was not listed.
    async fn remove_opt_out(&self, phone: &PhoneE164) -> Result<bool, PortError>;
    /// The whole list, ordered by number; an entry that cannot be read is listed with a mark
    /// saying so, so that it can be seen and removed.
    async fn opt_outs(&self) -> Result<Vec<OptOut>, PortError>;
    /// Pauses a dispatch's texts for [`PAUSE_TTL`]; `false` when it was paused already (the
    /// mark is replaced).
    async fn pause(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError>;
    /// Resumes a dispatch; the pause it lifted, `None` when it was not paused.
    async fn resume(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError>;
    /// The dispatch's pause, when paused; a pause that cannot be read is an error.
    async fn paused(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError>;
    /// How many texts `phone` was reserved for in the [`CAP_WINDOW`] before `now`.
    async fn texts_in_window(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError>;
    /// Counts one text to `phone` (its idempotency key `id`) unless `cap` texts were counted
    /// in the window before `now`; atomic across replicas. The same `id` counts once.
    async fn reserve(
        &self,
        phone: &PhoneE164,
        id: &str,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<Reservation, PortError>;
    /// Uncounts a reservation whose text was refused.
    async fn release(&self, phone: &PhoneE164, id: &str) -> Result<(), PortError>;
    /// Whether the "cap reached" alert for `phone` is to be posted now: `true` at most once
    /// per number per 24 hours.
    async fn first_cap_alert(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError>;
}
