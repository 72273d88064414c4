//! The general statuses every vendor's own statuses map into (SPEC §2).

use std::fmt;

use serde::Serialize;

/// A dispatch's status in the monitor's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Booked by the portal, not yet confirmed by the vendor.
    Requested,
    /// The vendor confirmed the appointment.
    Confirmed,
    /// The technician arrived on site.
    TechOnSite,
    /// The dispatch was cancelled.
    Canceled,
    /// The repair is complete.
    Completed,
    /// A vendor status the monitor does not act on (billing, on hold, unknown, ...).
    NotMonitored,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Requested,
        Status::Confirmed,
        Status::TechOnSite,
        Status::Canceled,
        Status::Completed,
        Status::NotMonitored,
    ];

    /// A stable snake-case label, used in metrics and JSON output.
    pub fn label(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Confirmed => "confirmed",
            Status::TechOnSite => "tech_on_site",
            Status::Canceled => "canceled",
            Status::Completed => "completed",
            Status::NotMonitored => "not_monitored",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
