//! Faults a subject can be given: fail the next requests with a status, act but never reply (a
//! lost reply), act but reply with bad JSON, or answer late.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault for one subject; counts apply to the subject's next requests, in the order `fail`,
/// `no_reply`, `bad_json`. `latency_ms` stays until set again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The NATS subject, e.g. `notification.sms.request` or `lit.dispatch.get`.
    pub subject: String,
    /// Refuse the next this many requests with `status`, doing nothing.
    #[serde(default)]
    pub fail: u32,
    /// The status refused requests get (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// Act on the next this many requests but never reply: the reply is lost.
    #[serde(default)]
    pub no_reply: u32,
    /// Act on the next this many requests but reply with bytes that are not JSON.
    #[serde(default)]
    pub bad_json: u32,
    /// From now on, wait this long before every reply (0 removes the latency).
    #[serde(default)]
    pub latency_ms: Option<u64>,
}

impl Fault {
    /// One line for the timeline.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.fail > 0 {
            let status = self.status.unwrap_or(500);
            parts.push(format!("fail the next {} with {status}", self.fail));
        }
        if self.no_reply > 0 {
            parts.push(format!("never reply to the next {}", self.no_reply));
        }
        if self.bad_json > 0 {
            parts.push(format!("bad JSON for the next {}", self.bad_json));
        }
        if let Some(ms) = self.latency_ms {
            parts.push(format!("{ms} ms latency"));
        }
        format!("{}: {}", self.subject, parts.join(", "))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Answer normally.
    Answer,
    /// Refuse with this status; do nothing.
    Refuse(u16),
    /// Act, but do not reply.
    Silent,
    /// Act, but reply with bad JSON.
    Garble,
}

#[derive(Debug, Clone, Default)]
struct SubjectFaults {
    fail: u32,
    status: u16,
    no_reply: u32,
    bad_json: u32,
    latency: Duration,
}

/// The faults in force, per subject.
#[derive(Debug, Default)]
pub(crate) struct Faults(BTreeMap<String, SubjectFaults>);

impl Faults {
    /// Adds `fault`'s counts to the subject's and sets its latency.
    pub(crate) fn add(&mut self, fault: &Fault) {
        let entry = self.0.entry(fault.subject.clone()).or_default();
        entry.fail += fault.fail;
        entry.status = fault.status.unwrap_or(500);
        entry.no_reply += fault.no_reply;
        entry.bad_json += fault.bad_json;
        if let Some(ms) = fault.latency_ms {
            entry.latency = Duration::from_millis(ms);
        }
    }

    /// The next request's verdict and latency; uses up one count.
    pub(crate) fn next(&mut self, subject: &str) -> (Verdict, Duration) {
        let Some(entry) = self.0.get_mut(subject) else {
            return (Verdict::Answer, Duration::ZERO);
        };
        let verdict = if entry.fail > 0 {
            entry.fail -= 1;
            Verdict::Refuse(entry.status)
        } else if entry.no_reply > 0 {
            entry.no_reply -= 1;
            Verdict::Silent
        } else if entry.bad_json > 0 {
            entry.bad_json -= 1;
            Verdict::Garble
        } else {
            Verdict::Answer
        };
        (verdict, entry.latency)
    }

    /// Drops every fault.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_used_up_in_order_and_latency_stays() {
        let mut faults = Faults::default();
        faults.add(&Fault {
            subject: "s".into(),
            fail: 1,
            status: Some(503),
            no_reply: 1,
            bad_json: 1,
            latency_ms: Some(20),
        });
        let latency = Duration::from_millis(20);
        assert_eq!(faults.next("s"), (Verdict::Refuse(503), latency));
        assert_eq!(faults.next("s"), (Verdict::Silent, latency));
        assert_eq!(faults.next("s"), (Verdict::Garble, latency));
        assert_eq!(faults.next("s"), (Verdict::Answer, latency));
        assert_eq!(faults.next("other"), (Verdict::Answer, Duration::ZERO));
    }
}
