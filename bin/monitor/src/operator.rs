//! The operator's levers on customer texts from the command line (SPEC §17): the opt-out
//! list (`opt-out add|remove|list`) and pausing one dispatch's texts (`pause`, `resume`). They
//! need Redis only; each prints one line per fact and returns.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use domain::pausing;
use domain::safeguards::{SafeguardMark, Safeguards};
use domain::{DispatchNumber, PhoneE164, VendorName};
use infra_redis::{DEFAULT_COMMAND_TIMEOUT, RedisConnection};

use crate::api::mask_phones;
use crate::settings::Settings;
use crate::wiring;

/// How long the journal gets to write a pause before the command exits.
const JOURNAL_FLUSH: Duration = Duration::from_secs(5);

/// Who acts from this command line: `cli:{USER}`.
pub fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let user = user.trim();
    format!("cli:{}", if user.is_empty() { "operator" } else { user })
}

async fn connect(settings: &Settings) -> anyhow::Result<RedisConnection> {
    let ca_file = settings.tls_ca_file.as_ref().map(|file| file.0.as_path());
    let url = settings.redis_url().expose();
    RedisConnection::connect_with(url, DEFAULT_COMMAND_TIMEOUT, ca_file)
        .await
        .context("cannot set up the Redis client")
}

fn mark(reason: &str) -> SafeguardMark {
    SafeguardMark {
        at: Utc::now(),
        by: operator(),
        reason: reason.trim().to_owned(),
    }
}

fn describe(mark: &SafeguardMark) -> String {
    let reason = if mark.reason.is_empty() {
        String::new()
    } else {
        format!(": {}", mark.reason)
    };
    format!("since {} by {}{reason}", mark.at.to_rfc3339(), mark.by)
}

/// `opt-out add PHONE [--reason TEXT]`.
pub async fn opt_out_add(
    settings: &Settings,
    phone: &PhoneE164,
    reason: &str,
) -> anyhow::Result<String> {
    let store = connect(settings)
        .await?
        .safeguards(&settings.environment_name);
    if store.add_opt_out(phone, &mark(reason)).await? {
        return Ok(format!(
            "{phone} added to the opt-out list: no text goes to it"
        ));
    }
    let listed = store.opt_outs().await?;
    let since = listed
        .iter()
        .find(|opt_out| &opt_out.phone == phone)
        .map(|opt_out| format!(" ({})", describe(&opt_out.mark)))
        .unwrap_or_default();
    Ok(format!("{phone} is already on the opt-out list{since}"))
}

/// `opt-out remove PHONE`.
pub async fn opt_out_remove(settings: &Settings, phone: &PhoneE164) -> anyhow::Result<String> {
    let store = connect(settings)
        .await?
        .safeguards(&settings.environment_name);
    Ok(if store.remove_opt_out(phone).await? {
        format!("{phone} removed from the opt-out list: texts still due go to it again")
    } else {
        format!("{phone} was not on the opt-out list")
    })
}

/// `opt-out list [--show-phones]`: one line per number, masked as the API masks them unless
/// asked for whole.
pub async fn opt_out_list(settings: &Settings, show_phones: bool) -> anyhow::Result<String> {
    let store = connect(settings)
        .await?
        .safeguards(&settings.environment_name);
    let listed = store.opt_outs().await?;
    if listed.is_empty() {
        return Ok("no number is on the opt-out list".to_owned());
    }
    let lines: Vec<String> = listed
        .iter()
        .map(|opt_out| {
            let phone = opt_out.phone.to_string();
            let phone = if show_phones {
                phone
            } else {
                mask_phones(&phone)
            };
            format!("{phone}  {}", describe(&opt_out.mark))
        })
        .collect();
    Ok(lines.join("\n"))
}

/// `pause VENDOR DISPATCH --reason TEXT`: journaled with who and why.
pub async fn pause(
    settings: &Settings,
    vendor: &VendorName,
    number: &DispatchNumber,
    reason: &str,
) -> anyhow::Result<String> {
    let redis = connect(settings).await?;
    let store = redis.safeguards(&settings.environment_name);
    let journal = redis.journal(&settings.environment_name);
    let replica = wiring::replica_name(settings);
    let mark = mark(reason);
    let newly = pausing::pause_dispatch(&store, &journal, vendor, number, &mark, &replica).await?;
    journal.flush(JOURNAL_FLUSH).await;
    Ok(if newly {
        format!("{vendor} {number} paused: its texts are withheld until resumed (30 days at most)")
    } else {
        format!("{vendor} {number} was already paused; its reason is now {reason:?}")
    })
}

/// `resume VENDOR DISPATCH`: journaled with who.
pub async fn resume(
    settings: &Settings,
    vendor: &VendorName,
    number: &DispatchNumber,
) -> anyhow::Result<String> {
    let redis = connect(settings).await?;
    let store = redis.safeguards(&settings.environment_name);
    let journal = redis.journal(&settings.environment_name);
    let replica = wiring::replica_name(settings);
    let lifted = pausing::resume_dispatch(
        &store,
        &journal,
        vendor,
        number,
        &operator(),
        Utc::now(),
        &replica,
    )
    .await?;
    journal.flush(JOURNAL_FLUSH).await;
    Ok(match lifted {
        Some(pause) => format!(
            "{vendor} {number} resumed: texts still due go out (it was paused {})",
            describe(&pause)
        ),
        None => format!("{vendor} {number} was not paused"),
    })
}
