//! The customer-text safeguards (SPEC §17) in Redis, every key under
//! `{ENVIRONMENT_NAME}-dispatch-monitor:` and every command on one key (one hash slot):
//!
//! - `opt-outs`: one hash, field = E.164 number, value = JSON `{at, by, reason}`; no TTL;
//! - `paused:{VENDOR}:{dispatch_number}`: JSON `{at, by, reason}`, 30 days;
//! - `cap:{digits}`: a sorted set per number of the texts counted against its daily cap, each
//!   member a text's idempotency key scored by when it was reserved (ms); trimmed to the last
//!   24 hours and reserved by one Lua script, so two replicas never exceed the cap;
//! - `cap-alerted:{digits}`: set for 24 hours when the number's "cap reached" alert went out.

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::chrono::{DateTime, Utc};
use domain::ports::PortError;
use domain::safeguards::{CAP_WINDOW, OptOut, PAUSE_TTL, Reservation, SafeguardMark, Safeguards};
use domain::{DispatchNumber, PhoneE164, VendorName};
use fred::prelude::{
    Client, Expiration, HashesInterface, KeysInterface, LuaInterface, SetOptions,
    SortedSetsInterface,
};

use crate::connection::{unavailable, whole_millis, whole_seconds};
use crate::own_prefix;

/// Counts one text unless the cap is reached. KEYS[1] the number's sorted set; ARGV: now
/// (ms), window (ms), cap, member. Returns {1 reserved or 0 full, count in the window}.
const RESERVE_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return {1, count}
end
if count >= tonumber(ARGV[3]) then
  return {0, count}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, count + 1}
";

/// The safeguards in Redis.
#[derive(Debug, Clone)]
pub struct RedisSafeguards {
    client: Client,
    prefix: String,
}

impl RedisSafeguards {
    pub(crate) fn new(client: Client, env_name: &str) -> Self {
        Self {
            client,
            prefix: own_prefix(env_name),
        }
    }

    /// The opt-out hash, e.g. `production-dispatch-monitor:opt-outs`.
    pub fn opt_outs_key(&self) -> String {
        format!("{}opt-outs", self.prefix)
    }

    /// A dispatch's pause, e.g. `production-dispatch-monitor:paused:LIT:DIS37405`.
    pub fn pause_key(&self, vendor: &VendorName, dispatch_number: &DispatchNumber) -> String {
        format!("{}paused:{vendor}:{dispatch_number}", self.prefix)
    }

    /// A number's daily count, e.g. `production-dispatch-monitor:cap:12123595129`.
    pub fn cap_key(&self, phone: &PhoneE164) -> String {
        format!("{}cap:{}", self.prefix, phone.digits())
    }

    fn cap_alert_key(&self, phone: &PhoneE164) -> String {
        format!("{}cap-alerted:{}", self.prefix, phone.digits())
    }
}

fn mark_json(mark: &SafeguardMark) -> Result<String, PortError> {
    serde_json::to_string(mark).map_err(|error| PortError::Malformed(error.to_string()))
}

fn parse_mark(what: &str, json: &str) -> Result<SafeguardMark, PortError> {
    serde_json::from_str(json).map_err(|error| PortError::Malformed(format!("{what}: {error}")))
}

/// The mark shown for an entry that cannot be read.
fn unreadable_mark(error: &PortError) -> SafeguardMark {
    SafeguardMark {
        at: DateTime::<Utc>::UNIX_EPOCH,
        by: "unknown".into(),
        reason: format!("unreadable entry ({error})"),
    }
}

/// The last four digits of a number, as masked output shows it.
fn last_four(phone: &PhoneE164) -> &str {
    let digits = phone.as_str();
    &digits[digits.len().saturating_sub(4)..]
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[async_trait]
impl Safeguards for RedisSafeguards {
    async fn opted_out(&self, phones: &[PhoneE164]) -> Result<BTreeSet<PhoneE164>, PortError> {
        if phones.is_empty() {
            return Ok(BTreeSet::new());
        }
        let fields: Vec<String> = phones.iter().map(ToString::to_string).collect();
        let values: Vec<Option<String>> = self
            .client
            .hmget(self.opt_outs_key(), fields)
            .await
            .map_err(|error| unavailable("opt-out read", &error))?;
        // An entry that cannot be read is an error, not "not listed": the rules then hold
        // every text of the dispatch and the alert says which entry to fix (fail safe).
        let mut listed = BTreeSet::new();
        for (phone, value) in phones.iter().zip(values) {
            let Some(json) = value else { continue };
            if let Err(error) = parse_mark("opt-out", &json) {
                return Err(PortError::Malformed(format!(
                    "the opt-out entry of the number ending {} in {} cannot be read ({error}); \
                     texts to it wait until the entry is fixed or removed",
                    last_four(phone),
                    self.opt_outs_key()
                )));
            }
            listed.insert(phone.clone());
        }
        Ok(listed)
    }

    async fn add_opt_out(
        &self,
        phone: &PhoneE164,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError> {
        self.client
            .hsetnx(self.opt_outs_key(), phone.as_str(), mark_json(mark)?)
            .await
            .map_err(|error| unavailable("opt-out write", &error))
    }

    async fn remove_opt_out(&self, phone: &PhoneE164) -> Result<bool, PortError> {
        let removed: i64 = self
            .client
            .hdel(self.opt_outs_key(), phone.as_str())
            .await
            .map_err(|error| unavailable("opt-out write", &error))?;
        Ok(removed > 0)
    }

    async fn opt_outs(&self) -> Result<Vec<OptOut>, PortError> {
        let fields: Vec<(String, String)> = self
            .client
            .hgetall(self.opt_outs_key())
            .await
            .map_err(|error| unavailable("opt-out read", &error))?;
        let mut list = Vec::with_capacity(fields.len());
        for (field, json) in fields {
            let Ok(phone) = PhoneE164::parse_us(&field) else {
                tracing::warn!(
                    key = %self.opt_outs_key(),
                    "an opt-out entry's field is not a US number; it withholds nothing: remove it"
                );
                continue;
            };
            // An unreadable entry is listed, so that an operator sees it and can remove it.
            let mark = parse_mark("opt-out", &json).unwrap_or_else(|error| {
                tracing::warn!(
                    key = %self.opt_outs_key(),
                    ending = last_four(&phone),
                    "an opt-out entry cannot be read; texts to the number wait until it is fixed or removed"
                );
                unreadable_mark(&error)
            });
            list.push(OptOut { phone, mark });
        }
        list.sort_by(|a, b| a.phone.cmp(&b.phone));
        Ok(list)
    }

    async fn pause(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError> {
        let previous: Option<String> = self
            .client
            .set(
                self.pause_key(vendor, dispatch_number),
                mark_json(mark)?,
                Some(Expiration::EX(whole_seconds(PAUSE_TTL))),
                None,
                true,
            )
            .await
            .map_err(|error| unavailable("pause write", &error))?;
        Ok(previous.is_none())
    }

    async fn resume(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        let previous: Option<String> = self
            .client
            .getdel(self.pause_key(vendor, dispatch_number))
            .await
            .map_err(|error| unavailable("pause write", &error))?;
        // A pause that cannot be read was still a pause.
        Ok(previous
            .map(|json| parse_mark("pause", &json).unwrap_or_else(|error| unreadable_mark(&error))))
    }

    async fn paused(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        let json: Option<String> = self
            .client
            .get(self.pause_key(vendor, dispatch_number))
            .await
            .map_err(|error| unavailable("pause read", &error))?;
        let key = self.pause_key(vendor, dispatch_number);
        json.map(|json| {
            parse_mark("pause", &json).map_err(|error| {
                PortError::Malformed(format!(
                    "the pause key {key} cannot be read ({error}); the dispatch's texts wait \
                     until it is fixed, removed or expires"
                ))
            })
        })
        .transpose()
    }

    async fn texts_in_window(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError> {
        let since = millis(now) - whole_millis(CAP_WINDOW);
        let count: i64 = self
            .client
            .zcount(self.cap_key(phone), since as f64 + 1.0, f64::INFINITY)
            .await
            .map_err(|error| unavailable("daily cap read", &error))?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn reserve(
        &self,
        phone: &PhoneE164,
        id: &str,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<Reservation, PortError> {
        let args = vec![
            millis(now).to_string(),
            whole_millis(CAP_WINDOW).to_string(),
            cap.to_string(),
            id.to_owned(),
        ];
        let (reserved, count): (i64, i64) = self
            .client
            .eval(RESERVE_SCRIPT, self.cap_key(phone), args)
            .await
            .map_err(|error| unavailable("daily cap reservation", &error))?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(if reserved == 1 {
            Reservation::Reserved
        } else {
            Reservation::Full { count }
        })
    }

    async fn release(&self, phone: &PhoneE164, id: &str) -> Result<(), PortError> {
        self.client
            .zrem::<i64, _, _>(self.cap_key(phone), id)
            .await
            .map(drop)
            .map_err(|error| unavailable("daily cap release", &error))
    }

    async fn first_cap_alert(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let written: Option<String> = self
            .client
            .set(
                self.cap_alert_key(phone),
                now.to_rfc3339(),
                Some(Expiration::EX(whole_seconds(CAP_WINDOW))),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(|error| unavailable("daily cap alert marker", &error))?;
        Ok(written.is_some())
    }
}
