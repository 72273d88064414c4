//! The NATS subjects the monitor sends requests to (SPEC §3).

use domain::VendorName;

/// Ticket details and notes from the Bruin bridge.
pub const TICKET_DETAILS: &str = "bruin.ticket.details.request";
/// Appends a note to a Bruin ticket.
pub const TICKET_NOTE_APPEND: &str = "bruin.ticket.note.append.request";
/// Sends one SMS.
pub const SMS: &str = "notification.sms.request";
/// Posts one Slack line; its request has no `body`.
pub const SLACK: &str = "notification.slack.request";
/// Sends an email; its request has no `body`.
pub const EMAIL: &str = "notification.email.request";

/// A vendor's dispatch list, e.g. `lit.dispatch.get`.
pub fn dispatch_list(vendor: &VendorName) -> String {
    format!("{}.dispatch.get", vendor.lower())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_list_subjects_use_the_lower_case_vendor() {
        assert_eq!(
            dispatch_list(&VendorName::parse("LIT").unwrap()),
            "lit.dispatch.get"
        );
        assert_eq!(
            dispatch_list(&VendorName::parse("cts").unwrap()),
            "cts.dispatch.get"
        );
    }
}
