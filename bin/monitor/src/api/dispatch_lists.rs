//! `GET /api/v1/dispatches` reads a vendor's whole snapshot hash (one field per dispatch) and
//! decodes it, so callers must not multiply that load while cycles run: each vendor's list is
//! read, masked and written as JSON once, then served again to every caller until a cycle
//! record is stored by this replica or [`LIST_REUSE`] has passed (a cycle another replica
//! ran shows within that time). At most one read per vendor is made at a time; concurrent
//! callers wait for it and share it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::VendorName;
use domain::journal::{DispatchSnapshot, Journal};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Masker;

/// How long a vendor's list is served again when no cycle record was stored meanwhile.
pub const LIST_REUSE: Duration = Duration::from_secs(1);

/// One dispatch of a list: what the filters look at, and its snapshot as JSON, masked.
#[derive(Debug)]
pub struct Listed {
    /// Its status label, e.g. `confirmed`.
    pub status: String,
    /// Its dispatch number, lower case.
    pub number_lower: String,
    /// Its ticket id.
    pub ticket_id: String,
    /// Its snapshot as the API shows it.
    pub json: String,
}

/// A vendor's list, sorted by dispatch number, or why it could not be read (a failure is
/// reused too: it bounds the load just as well).
pub type VendorList = Result<Arc<Vec<Listed>>, String>;

/// A vendor's list, when its read started and the count of stored cycles then.
struct Computed {
    started: Instant,
    cycles_stored: u64,
    list: VendorList,
}

type Slot = Arc<tokio::sync::Mutex<Option<Computed>>>;

/// Each vendor's last list; the slot's lock is held while its list is read, so concurrent
/// callers wait for that read instead of starting their own.
pub struct DispatchLists {
    journal: Arc<dyn Journal>,
    cycles_stored: watch::Receiver<u64>,
    masker: Masker,
    reuse: Duration,
    vendors: Mutex<HashMap<VendorName, Slot>>,
}

impl std::fmt::Debug for DispatchLists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchLists").finish_non_exhaustive()
    }
}

impl DispatchLists {
    /// Lists read from `journal`, masked by `masker`, read again once `cycles_stored`
    /// changes or `reuse` ([`LIST_REUSE`] in the service) has passed.
    pub fn new(
        journal: Arc<dyn Journal>,
        cycles_stored: watch::Receiver<u64>,
        masker: Masker,
        reuse: Duration,
    ) -> Self {
        Self {
            journal,
            cycles_stored,
            masker,
            reuse,
            vendors: Mutex::default(),
        }
    }

    /// `vendor`'s list: the one read lately, the one being read now, or a new one.
    pub async fn list(&self, vendor: &VendorName) -> VendorList {
        let slot = self.slot(vendor);
        let mut slot = slot.lock().await;
        // Read before the journal is, so that a cycle stored meanwhile makes the next caller
        // read again.
        let cycles_stored = *self.cycles_stored.borrow();
        if let Some(computed) = slot.as_ref()
            && computed.cycles_stored == cycles_stored
            && computed.started.elapsed() <= self.reuse
        {
            return computed.list.clone();
        }
        let started = Instant::now();
        let list = self
            .journal
            .dispatches(vendor)
            .await
            .map(|snapshots| Arc::new(snapshots.into_iter().map(|s| self.listed(s)).collect()))
            .map_err(|error| error.to_string());
        *slot = Some(Computed {
            started,
            cycles_stored,
            list: list.clone(),
        });
        list
    }

    fn listed(&self, mut snapshot: DispatchSnapshot) -> Listed {
        let status = snapshot.status.clone();
        let number_lower = snapshot.dispatch_number.to_lowercase();
        let ticket_id = snapshot.ticket_id.clone();
        self.masker.shown_snapshot(&mut snapshot);
        Listed {
            status,
            number_lower,
            ticket_id,
            json: serde_json::to_string(&snapshot).unwrap_or_default(),
        }
    }

    fn slot(&self, vendor: &VendorName) -> Slot {
        let mut vendors = self.vendors.lock().unwrap_or_else(|e| e.into_inner());
        vendors.entry(vendor.clone()).or_default().clone()
    }
}

/// `[` the items `]`: the JSON array of snapshots already written as JSON.
pub fn json_array<'a>(items: impl Iterator<Item = &'a Listed>) -> String {
    let mut body = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&item.json);
    }
    body.push(']');
    body
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::Utc;
    use domain::journal::{CycleRecord, DispatchHistory, JournalEntry};
    use domain::ports::PortError;
    use infra_redis::{DEFAULT_COMMAND_TIMEOUT, RedisConnection, RedisJournal};
    use test_support::servers::RedisServer;

    use super::*;

    /// The journal in a real `redis-server`, its list reads counted and slowed down.
    struct CountedReads {
        journal: RedisJournal,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl Journal for CountedReads {
        async fn record_dispatch(
            &self,
            snapshot: DispatchSnapshot,
            entries: Vec<JournalEntry>,
        ) -> Result<(), PortError> {
            self.journal.record_dispatch(snapshot, entries).await
        }
        async fn record_entries(
            &self,
            vendor: &VendorName,
            dispatch_number: &str,
            entries: Vec<JournalEntry>,
        ) -> Result<(), PortError> {
            self.journal
                .record_entries(vendor, dispatch_number, entries)
                .await
        }
        async fn record_cycle(
            &self,
            cycle: CycleRecord,
            seen: Option<Vec<String>>,
        ) -> Result<(), PortError> {
            self.journal.record_cycle(cycle, seen).await
        }
        async fn cycles(
            &self,
            vendor: &VendorName,
            limit: usize,
        ) -> Result<Vec<CycleRecord>, PortError> {
            self.journal.cycles(vendor, limit).await
        }
        async fn dispatches(
            &self,
            vendor: &VendorName,
        ) -> Result<Vec<DispatchSnapshot>, PortError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.journal.dispatches(vendor).await
        }
        async fn dispatch(
            &self,
            vendor: &VendorName,
            dispatch_number: &str,
        ) -> Result<Option<DispatchHistory>, PortError> {
            self.journal.dispatch(vendor, dispatch_number).await
        }
    }

    fn snapshot(number: &str) -> DispatchSnapshot {
        DispatchSnapshot {
            vendor: "LIT".into(),
            dispatch_number: number.into(),
            ticket_id: "3544800".into(),
            status: "confirmed".into(),
            vendor_status: "Request Confirmed".into(),
            appointment: None,
            ours: true,
            tech_name: None,
            tech_phone: None,
            client_phone: Some("+12123595129".into()),
            site: None,
            street: None,
            skipped_rules: vec![],
            seen: Utc::now(),
            last_action: None,
            paused: None,
        }
    }

    /// Records a LIT cycle that listed `numbers`, and waits until it is stored.
    async fn cycle(journal: &RedisJournal, numbers: &[&str]) {
        for number in numbers {
            journal
                .record_dispatch(snapshot(number), vec![])
                .await
                .unwrap();
        }
        let record = CycleRecord {
            vendor: "LIT".into(),
            replica: "a".into(),
            started: Utc::now(),
            finished: Utc::now(),
            outcome: "ok".into(),
            error: None,
            records: numbers.len(),
            ours: numbers.len(),
            actions: 0,
            failures: 0,
        };
        let seen = numbers.iter().map(|n| (*n).to_owned()).collect();
        journal.record_cycle(record, Some(seen)).await.unwrap();
        journal.flush(Duration::from_secs(10)).await;
    }

    async fn world(
        reuse: Duration,
    ) -> (RedisServer, RedisJournal, Arc<CountedReads>, DispatchLists) {
        let server = RedisServer::new();
        let connection = RedisConnection::connect(&server.url(), DEFAULT_COMMAND_TIMEOUT)
            .await
            .unwrap();
        let journal = connection.journal("test");
        let counted = Arc::new(CountedReads {
            journal: journal.clone(),
            reads: AtomicUsize::new(0),
        });
        let masker = Masker { show_phones: false };
        let lists = DispatchLists::new(counted.clone(), journal.cycles_stored(), masker, reuse);
        (server, journal, counted, lists)
    }

    fn numbers(list: &VendorList) -> Vec<String> {
        let body = json_array(list.as_ref().unwrap().iter());
        let shown: Vec<DispatchSnapshot> = serde_json::from_str(&body).unwrap();
        shown.into_iter().map(|d| d.dispatch_number).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_read_which_is_the_journals_masked() {
        let (_server, journal, counted, lists) = world(Duration::from_secs(60)).await;
        cycle(&journal, &["DIS2", "DIS1"]).await;
        let lit = VendorName::parse("LIT").unwrap();
        let reads = || counted.reads.load(Ordering::SeqCst);
        let answers = futures::future::join_all((0..8).map(|_| lists.list(&lit))).await;
        assert_eq!(reads(), 1, "eight concurrent callers, one read");
        let mut expected = journal.dispatches(&lit).await.unwrap();
        expected
            .iter_mut()
            .for_each(|d| Masker { show_phones: false }.shown_snapshot(d));
        for answer in &answers {
            let body = json_array(answer.as_ref().unwrap().iter());
            assert_eq!(body, serde_json::to_string(&expected).unwrap());
            assert!(body.contains(r#""client_phone":"+1******5129""#), "{body}");
        }
        assert_eq!(numbers(&answers[0]), ["DIS1", "DIS2"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_list_is_read_again_once_a_cycle_is_stored_or_it_is_old() {
        let (server, journal, counted, lists) = world(Duration::from_millis(500)).await;
        let lit = VendorName::parse("LIT").unwrap();
        let reads = || counted.reads.load(Ordering::SeqCst);
        cycle(&journal, &["DIS1"]).await;
        assert_eq!(numbers(&lists.list(&lit).await), ["DIS1"]);
        assert_eq!(numbers(&lists.list(&lit).await), ["DIS1"]);
        assert_eq!(reads(), 1, "served again while fresh");

        // This replica's next cycle shows at once.
        cycle(&journal, &["DIS1", "DIS2"]).await;
        assert_eq!(numbers(&lists.list(&lit).await), ["DIS1", "DIS2"]);
        assert_eq!(reads(), 2);

        // Another replica's cycle (written past this journal's queue) shows once the list
        // is old.
        let other = RedisConnection::connect(&server.url(), DEFAULT_COMMAND_TIMEOUT)
            .await
            .unwrap()
            .journal("test");
        cycle(&other, &["DIS3"]).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(numbers(&lists.list(&lit).await), ["DIS3"]);
        assert_eq!(reads(), 3);
    }
}
