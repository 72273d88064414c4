//! Another service reusing `domain` with `use domain::prelude::*;` alone: it implements every
//! port and the journal in memory, adds its own vendor, runs a cycle and reads the plan.

use std::sync::Mutex;

use domain::prelude::*;

/// One vendor, ZETA, whose list is `{"jobs": [{"id", "ticket", "phone", "at"}]}`.
#[derive(Debug)]
struct Zeta(VendorName);

impl VendorAdapter for Zeta {
    fn name(&self) -> &VendorName {
        &self.0
    }
    fn policy(&self) -> VendorPolicy {
        VendorPolicy::default()
    }
    fn templates(&self) -> &'static [TemplateSource] {
        &[
            (
                "confirmed_note",
                "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\nAt {{when}}\n",
            ),
            ("confirmed_sms", "Booked for {{when}}.\n"),
        ]
    }
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let error = |reason| ListError::new(&self.0, reason);
        let (_, jobs) = record::list_fields(body, "jobs").map_err(error)?;
        record::list_records(jobs, "jobs").map_err(error)
    }
    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        json!({ "jobs": records })
    }
    fn map_record(&self, raw: &RawRecord) -> Result<Dispatch, SkipReason> {
        let text = |name: &str| raw[name].as_str();
        let number = text("id").ok_or_else(|| SkipReason::new(None, "id"))?;
        let ticket = text("ticket").ok_or_else(|| SkipReason::new(Some(number), "ticket"))?;
        let mut dispatch = Dispatch::new(
            self.0.clone(),
            DispatchNumber::parse(number)
                .map_err(|e| SkipReason::new(Some(number), e.to_string()))?,
            TicketId::parse(ticket).map_err(|e| SkipReason::new(Some(number), e.to_string()))?,
            Status::Confirmed,
            "booked",
        );
        dispatch.note_key = NoteKey::parse(number).ok();
        dispatch.client_phone = PhoneE164::parse_optional(text("phone"));
        dispatch.appointment = text("at").and_then(|at| Appointment::parse_rfc3339(at, None));
        Ok(dispatch)
    }
}

#[derive(Debug, Default)]
struct Source(Mutex<Option<String>>);

#[async_trait]
impl DispatchSource for Source {
    async fn fetch_dispatches(&self, vendor: &VendorName) -> Result<ListBody, PortError> {
        let body = self.0.lock().unwrap().clone();
        let body = body.ok_or_else(|| PortError::Unavailable(format!("no list for {vendor}")))?;
        RawValue::from_string(body).map_err(|e| PortError::Malformed(e.to_string()))
    }
}

#[derive(Debug, Default)]
struct Tickets(Mutex<BTreeMap<String, Vec<String>>>);

#[async_trait]
impl TicketRepository for Tickets {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        let notes = self.0.lock().unwrap();
        let texts = notes.get(ticket.as_str()).cloned().unwrap_or_default();
        Ok(texts
            .into_iter()
            .enumerate()
            .map(|(n, text)| RawTicketNote {
                note_id: Some(n as i64),
                note_value: Some(text),
                created_date: Some("2026-01-01T00:00:00Z".into()),
            })
            .collect())
    }
    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError> {
        let mut notes = self.0.lock().unwrap();
        notes
            .entry(ticket.as_str().into())
            .or_default()
            .push(note.into());
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Outbox(Mutex<Vec<String>>);

#[async_trait]
impl Notifier for Outbox {
    async fn send_sms(&self, to: &PhoneE164, text: &str, _key: &str) -> Result<(), PortError> {
        self.0.lock().unwrap().push(format!("{to}: {text}"));
        Ok(())
    }
    async fn post_slack(&self, _message: &str) -> Result<(), PortError> {
        Ok(())
    }
    async fn send_email(&self, email: &Email) -> Result<(), PortError> {
        self.0.lock().unwrap().push(email.subject.clone());
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Registry(Mutex<BTreeMap<String, Value>>);

#[async_trait]
impl DispatchRegistry for Registry {
    async fn register(&self, dispatch_number: &str, value: &Value) -> Result<bool, PortError> {
        let mut registry = self.0.lock().unwrap();
        Ok(registry
            .insert(dispatch_number.into(), value.clone())
            .is_none())
    }
}

#[derive(Debug, Default)]
struct Ledger {
    sms: Mutex<BTreeMap<LedgerKey, LedgerEntry>>,
    notes: Mutex<BTreeMap<StepKey, bool>>,
}

impl Ledger {
    fn set(&self, key: &LedgerKey, state: EntryState) {
        if let Some(entry) = self.sms.lock().unwrap().get_mut(key) {
            entry.state = state;
        }
    }
}

#[async_trait]
impl SmsLedger for Ledger {
    async fn entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Vec<LedgerEntry>, PortError> {
        let sms = self.sms.lock().unwrap();
        Ok(sms
            .values()
            .filter(|e| &e.key.vendor == vendor && &e.key.dispatch_number == dispatch_number)
            .cloned()
            .collect())
    }
    async fn claim(&self, key: &LedgerKey, note: &str, _ttl: Duration) -> Result<Claim, PortError> {
        let mut sms = self.sms.lock().unwrap();
        Ok(match sms.get(key).map(|entry| entry.state) {
            Some(EntryState::Sent) => Claim::AlreadySent,
            Some(_) => Claim::HeldElsewhere,
            None => {
                let state = EntryState::Claimed;
                let entry = LedgerEntry {
                    key: key.clone(),
                    state,
                    note: note.into(),
                };
                sms.insert(key.clone(), entry);
                Claim::Claimed
            }
        })
    }
    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.set(key, EntryState::Sent);
        Ok(())
    }
    async fn mark_uncertain(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.set(key, EntryState::Uncertain);
        Ok(())
    }
    async fn release(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.sms.lock().unwrap().remove(key);
        Ok(())
    }
    async fn claim_note(&self, key: &StepKey, _ttl: Duration) -> Result<Claim, PortError> {
        let mut notes = self.notes.lock().unwrap();
        Ok(match notes.insert(key.clone(), false) {
            Some(true) => Claim::AlreadySent,
            Some(false) => Claim::HeldElsewhere,
            None => Claim::Claimed,
        })
    }
    async fn note_appended(&self, key: &StepKey) -> Result<(), PortError> {
        self.notes.lock().unwrap().insert(key.clone(), true);
        Ok(())
    }
    async fn release_note(&self, key: &StepKey) -> Result<(), PortError> {
        self.notes.lock().unwrap().remove(key);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Lease(Mutex<BTreeMap<String, String>>);

#[async_trait]
impl VendorLease for Lease {
    async fn try_acquire(
        &self,
        vendor: &VendorName,
        _ttl: Duration,
    ) -> Result<Option<LeaseToken>, PortError> {
        let mut held = self.0.lock().unwrap();
        if held.contains_key(vendor.as_str()) {
            return Ok(None);
        }
        held.insert(vendor.as_str().into(), "zeta-service".into());
        let holder = "zeta-service".into();
        Ok(Some(LeaseToken {
            vendor: vendor.clone(),
            holder,
        }))
    }
    async fn renew(&self, token: &LeaseToken, _ttl: Duration) -> Result<bool, PortError> {
        let held = self.0.lock().unwrap();
        Ok(held.get(token.vendor.as_str()) == Some(&token.holder))
    }
    async fn release(&self, token: &LeaseToken) -> Result<bool, PortError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .remove(token.vendor.as_str())
            .is_some())
    }
}

#[derive(Debug, Default)]
struct Large(Mutex<BTreeMap<String, String>>);

#[async_trait]
impl LargeMessageStore for Large {
    async fn put(&self, token: &str, json: &str, _ttl: Duration) -> Result<(), PortError> {
        self.0.lock().unwrap().insert(token.into(), json.into());
        Ok(())
    }
    async fn take(&self, token: &str) -> Result<Option<String>, PortError> {
        Ok(self.0.lock().unwrap().remove(token))
    }
}

#[derive(Debug)]
struct Fixed(DateTime<Utc>);

impl Clock for Fixed {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

#[derive(Debug, Default)]
struct Recorded {
    dispatches: Mutex<Vec<(DispatchSnapshot, Vec<JournalEntry>)>>,
    cycles: Mutex<Vec<CycleRecord>>,
    late_entries: Mutex<Vec<JournalEntry>>,
}

#[async_trait]
impl Journal for Recorded {
    async fn record_dispatch(
        &self,
        snapshot: DispatchSnapshot,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        self.dispatches.lock().unwrap().push((snapshot, entries));
        Ok(())
    }
    async fn record_cycle(
        &self,
        cycle: CycleRecord,
        _seen: Option<Vec<String>>,
    ) -> Result<(), PortError> {
        self.cycles.lock().unwrap().push(cycle);
        Ok(())
    }
    async fn record_entries(
        &self,
        _vendor: &VendorName,
        _dispatch_number: &str,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        self.late_entries.lock().unwrap().extend(entries);
        Ok(())
    }
    async fn cycles(
        &self,
        vendor: &VendorName,
        limit: usize,
    ) -> Result<Vec<CycleRecord>, PortError> {
        let cycles = self.cycles.lock().unwrap();
        let of_vendor = cycles.iter().rev().filter(|c| c.vendor == vendor.as_str());
        Ok(of_vendor.take(limit).cloned().collect())
    }
    async fn dispatches(&self, vendor: &VendorName) -> Result<Vec<DispatchSnapshot>, PortError> {
        let dispatches = self.dispatches.lock().unwrap();
        let of_vendor = dispatches
            .iter()
            .filter(|(s, _)| s.vendor == vendor.as_str());
        Ok(of_vendor.map(|(snapshot, _)| snapshot.clone()).collect())
    }
    async fn dispatch(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
    ) -> Result<Option<DispatchHistory>, PortError> {
        let dispatches = self.dispatches.lock().unwrap();
        let found = dispatches.iter().rev().find(|(snapshot, _)| {
            snapshot.vendor == vendor.as_str() && snapshot.dispatch_number == dispatch_number
        });
        Ok(found.map(|(snapshot, entries)| DispatchHistory {
            snapshot: Some(snapshot.clone()),
            entries: entries.clone(),
        }))
    }
}

#[tokio::test]
async fn every_port_is_implemented_with_the_prelude_alone() {
    let zeta = VendorName::parse("ZETA").unwrap();
    let now: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().unwrap();
    let source = Arc::new(Source::default());
    let tickets = Arc::new(Tickets::default());
    let outbox = Arc::new(Outbox::default());
    let journal = Arc::new(Recorded::default());
    let job = json!({"id": "Z-1", "ticket": "7001", "phone": "+12125550101",
                     "at": "2026-03-20T09:00:00-04:00"});
    *source.0.lock().unwrap() = Some(json!({ "jobs": [job] }).to_string());
    tickets.0.lock().unwrap().insert(
        "7001".into(),
        vec!["#*MetTel's IPA*# Z-1\nDispatch Management - Dispatch Requested\n".into()],
    );
    #[allow(clippy::needless_update)]
    let ports = Ports {
        source: source.clone(),
        tickets: tickets.clone(),
        notifier: outbox.clone(),
        registry: Arc::new(Registry::default()),
        ledger: Arc::new(Ledger::default()),
        clock: Arc::new(Fixed(now)),
        // A port added later comes from the in-memory world until this test implements it.
        ..domain::memory::MemoryWorld::new(Arc::new(domain::memory::ManualClock::new(now))).ports()
    };
    let engine = Engine::new(ports, EngineSettings::default())
        .with_journal(journal.clone())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(Arc::new(Zeta(zeta.clone())), &BTreeMap::new())
        .unwrap();

    // A dry run plans; reading the plan needs the step types.
    let report: CycleReport = engine.run_cycle(&zeta, Mode::DryRun).await.unwrap();
    let dispatch: &DispatchReport = &report.dispatches[0];
    assert_eq!(dispatch.outcome, DispatchOutcome::Planned);
    let kinds: Vec<ActionKind> = dispatch.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, [ActionKind::ConfirmedNote, ActionKind::ConfirmedSms]);
    let Step::Act(action) = &dispatch.steps[1] else {
        panic!("{:?}", dispatch.steps)
    };
    let sms: &PlannedSms = &action.sms[0];
    assert_eq!(sms.key.purpose.to, Recipient::Client);
    assert_eq!(sms.text, "Booked for Mar 20, 2026 @ 09:00 AM UTC-04:00.\n");

    let report = engine.run_cycle(&zeta, Mode::Execute).await.unwrap();
    assert!(matches!(
        report.dispatches[0].outcome,
        DispatchOutcome::Executed(Execution::Completed { .. })
    ));
    assert_eq!(
        outbox.0.lock().unwrap()[0],
        "+12125550101: Booked for Mar 20, 2026 @ 09:00 AM UTC-04:00.\n"
    );
    assert_eq!(tickets.0.lock().unwrap()["7001"].len(), 3);
    let history = journal.dispatch(&zeta, "Z-1").await.unwrap().unwrap();
    assert!(history.entries.iter().any(|e| e.kind == EntryKind::Sms));
    assert_eq!(journal.cycles(&zeta, 5).await.unwrap().len(), 1);
    assert!(matches!(
        engine
            .run_cycle(&VendorName::parse("NO-SUCH-VENDOR").unwrap(), Mode::DryRun)
            .await,
        Err(CycleError::UnknownVendor(_))
    ));

    // The ports the engine does not drive are the replicas' and the transport's.
    let lease = Lease::default();
    let token = lease
        .try_acquire(&zeta, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(lease.renew(&token, Duration::from_secs(5)).await.unwrap());
    assert_eq!(lease.holder(&zeta).await.unwrap(), None);
    assert!(lease.release(&token).await.unwrap());
    let large = Large::default();
    large.put("t", "{}", Duration::from_secs(5)).await.unwrap();
    assert_eq!(large.take("t").await.unwrap().as_deref(), Some("{}"));
}
