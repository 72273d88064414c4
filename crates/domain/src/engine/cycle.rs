//! The cycle around the dispatches: fetch the vendor's list, map its records, process the
//! dispatches (up to `concurrency` at once, until told to stop), and journal the cycle.

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use super::{Engine, Mode, VendorEntry, journal_failed};
use crate::journal::{CycleRecord, DispatchReport};
use crate::ports::PortError;
use crate::{
    Dispatch, ListBody, ListError, RawRecordText, SkipReason, VendorAdapter, VendorName, telemetry,
};

/// Why a cycle starts no further dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The process is shutting down.
    Shutdown,
    /// The vendor lease may have lapsed: another holder took it, or its last successful renewal
    /// was requested a TTL ago or more (SPEC §13.8, §18.6).
    LeaseLost,
}

/// A vendor cycle could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    /// No adapter is registered under that name.
    #[error("no vendor named {0} is configured")]
    UnknownVendor(String),
    /// The list request failed.
    #[error("fetching the {vendor} dispatch list failed: {error}")]
    Fetch {
        /// The vendor.
        vendor: VendorName,
        /// Why.
        error: PortError,
    },
    /// The list reply had the wrong shape.
    #[error(transparent)]
    Malformed(#[from] ListError),
}

/// What one vendor cycle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    /// The vendor.
    pub vendor: VendorName,
    /// Records in the list.
    pub records: usize,
    /// Records that could not be mapped.
    pub skipped_records: Vec<SkipReason>,
    /// Every mapped dispatch processed, in list order.
    pub dispatches: Vec<DispatchReport>,
    /// Dispatches left for the next cycle (shutdown, or a lost lease).
    pub left: usize,
    /// Why the cycle stopped starting dispatches; a lease lost while its last dispatches ran
    /// counts too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
}

impl Engine {
    /// Runs one cycle of `vendor`. Fetch and shape failures alert and return an error; every
    /// per-dispatch failure is alerted and reported, never returned.
    pub async fn run_cycle(
        &self,
        vendor: &VendorName,
        mode: Mode,
    ) -> Result<CycleReport, CycleError> {
        self.run_cycle_until(vendor, mode, &|| None).await
    }

    /// Like [`run_cycle`](Self::run_cycle), but `stop()` is asked before each dispatch starts:
    /// once it gives a reason no further dispatch is started; those in flight finish. It is
    /// asked once more at the end, so a lease lost during the last dispatches is reported and
    /// journaled (`lease_lost`). Used for graceful shutdown and lost leases.
    pub async fn run_cycle_until(
        &self,
        vendor: &VendorName,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> Result<CycleReport, CycleError> {
        let entry = self
            .vendors
            .iter()
            .find(|entry| entry.adapter.name() == vendor)
            .ok_or_else(|| CycleError::UnknownVendor(vendor.to_string()))?;
        let started = Instant::now();
        let started_at = self.ports.clock.now();
        let result = self
            .cycle(entry, mode, stop)
            .instrument(tracing::info_span!("cycle", vendor = %vendor))
            .await;
        // A dry run (a plan) is not a cycle: it counts in no cycle metric (SPEC §18.5).
        if mode == Mode::Execute {
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            metrics::histogram!(telemetry::CYCLE_DURATION, "vendor" => vendor.to_string(), "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            self.record_cycle(vendor, started_at, &result).await;
        }
        result
    }

    /// Journals the cycle and the snapshots of its dispatches; a failure is logged and counted.
    async fn record_cycle(
        &self,
        vendor: &VendorName,
        started: chrono::DateTime<chrono::Utc>,
        result: &Result<CycleReport, CycleError>,
    ) {
        let finished = self.ports.clock.now();
        let mut cycle = CycleRecord {
            vendor: vendor.to_string(),
            replica: self.settings.replica.clone(),
            started,
            finished,
            outcome: "ok".to_owned(),
            error: None,
            records: 0,
            ours: 0,
            actions: 0,
            failures: 0,
        };
        let seen = match result {
            Ok(report) => {
                cycle.records = report.records;
                cycle.count(&report.dispatches);
                if report.stopped == Some(StopReason::LeaseLost) {
                    cycle.outcome = "lease_lost".to_owned();
                } else if report.left > 0 {
                    cycle.outcome = "stopped".to_owned();
                }
                Some(
                    report
                        .dispatches
                        .iter()
                        .map(|r| r.dispatch.dispatch_number.to_string())
                        .collect(),
                )
            }
            Err(error) => {
                cycle.outcome = "failed".to_owned();
                cycle.error = Some(error.to_string());
                None
            }
        };
        if let Err(error) = self.journal.record_cycle(cycle, seen).await {
            journal_failed(&error);
        }
    }

    async fn cycle(
        &self,
        entry: &VendorEntry,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> Result<CycleReport, CycleError> {
        let body = self.fetch_list(entry, mode).await?;
        let adapter = entry.adapter.as_ref();
        let records = match adapter.records(&body) {
            Ok(records) => records,
            Err(error) => return Err(self.list_failed(entry, mode, error.into()).await),
        };
        let record_count = records.len();
        let (dispatches, skipped_records) = map_records(adapter, records);
        drop(body);

        let total = dispatches.len();
        let (reports, stopped) = self.process_all(entry, dispatches, mode, stop).await;

        if reports.len() < total {
            tracing::warn!(
                left = total - reports.len(),
                "stopping: dispatches left for the next run"
            );
        }
        tracing::info!(
            records = record_count,
            skipped = skipped_records.len(),
            "cycle finished"
        );
        Ok(CycleReport {
            vendor: entry.adapter.name().clone(),
            records: record_count,
            skipped_records,
            left: total - reports.len(),
            dispatches: reports,
            stopped,
        })
    }

    /// Processes the dispatches until `stop()` gives a reason, asking it before each starts;
    /// returns their reports in list order and the reason, if any (a lease lost while the last
    /// ones ran included). A free slot starts the next dispatch at once, so one slow dispatch
    /// never holds the others back (SPEC §13.7).
    async fn process_all(
        &self,
        entry: &VendorEntry,
        dispatches: Vec<Dispatch>,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> (Vec<DispatchReport>, Option<StopReason>) {
        let mut stopped = None;
        let mut reports: Vec<(usize, DispatchReport)> =
            futures::stream::iter(dispatches.into_iter().enumerate())
                .take_while(|_| {
                    stopped = stop();
                    futures::future::ready(stopped.is_none())
                })
                .map(|(index, dispatch)| {
                    let span = tracing::info_span!(
                        "dispatch",
                        vendor = %dispatch.vendor,
                        dispatch_number = %dispatch.dispatch_number,
                        ticket_id = %dispatch.ticket_id,
                    );
                    let process = self.process(entry, dispatch, mode).instrument(span);
                    async move { (index, process.await) }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        reports.sort_by_key(|(index, _)| *index);
        let reports = reports.into_iter().map(|(_, report)| report).collect();
        let stopped = stopped.or_else(|| stop().filter(|why| *why == StopReason::LeaseLost));
        (reports, stopped)
    }

    /// Fetches the vendor's list; a failure alerts (SPEC §9).
    async fn fetch_list(&self, entry: &VendorEntry, mode: Mode) -> Result<ListBody, CycleError> {
        let vendor = entry.adapter.name();
        match self.ports.source.fetch_dispatches(vendor).await {
            Ok(body) => Ok(body),
            Err(error) => {
                let error = CycleError::Fetch {
                    vendor: vendor.clone(),
                    error,
                };
                Err(self.list_failed(entry, mode, error).await)
            }
        }
    }

    /// Logs and alerts a list that could not be fetched or read (SPEC §9), and hands the error
    /// back.
    async fn list_failed(&self, entry: &VendorEntry, mode: Mode, error: CycleError) -> CycleError {
        tracing::error!(%error, "vendor cycle skipped");
        if mode == Mode::Execute {
            self.alerts()
                .vendor(&entry.templates, entry.adapter.name(), &error.to_string())
                .await;
        }
        error
    }
}

/// Maps every record; a dispatch listed twice keeps its later record, so that each dispatch
/// gets one ticket-details request per cycle.
fn map_records(
    adapter: &dyn VendorAdapter,
    records: Vec<RawRecordText<'_>>,
) -> (Vec<Dispatch>, Vec<SkipReason>) {
    let mut skipped = Vec::new();
    let mut dispatches: Vec<Dispatch> = Vec::with_capacity(records.len());
    let mut index_by_number: HashMap<String, usize> = HashMap::with_capacity(records.len());
    // Each record is read from the list's text only while it is mapped, so the list is never
    // one JSON tree in memory.
    for text in records {
        let mapped = serde_json::from_str(text.get())
            .map_err(|error| SkipReason::new(None, format!("the record cannot be read: {error}")))
            .and_then(|record| adapter.map_record(&record));
        match mapped {
            Ok(dispatch) => {
                let number = dispatch.dispatch_number.to_string();
                if let Some(&earlier) = index_by_number.get(&number) {
                    tracing::warn!(vendor = %dispatch.vendor, dispatch_number = %number, ticket_id = %dispatch.ticket_id, "dispatch listed twice; the later record is used");
                    skipped.push(SkipReason::new(
                        Some(&number),
                        "listed twice; the later record is used",
                    ));
                    dispatches[earlier] = dispatch;
                } else {
                    index_by_number.insert(number, dispatches.len());
                    dispatches.push(dispatch);
                }
            }
            Err(reason) => {
                tracing::info!(vendor = %adapter.name(), %reason, "record skipped");
                skipped.push(reason);
            }
        }
    }
    (dispatches, skipped)
}
