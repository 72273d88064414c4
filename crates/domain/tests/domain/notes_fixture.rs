//! The SPEC's Bruin ticket-details fixture through the note model (SPEC §6).

use domain::{NoteKey, RawTicketNote, TicketNotes, phrases};

fn fixture_notes() -> TicketNotes {
    let details = test_support::fixtures::json("bruin-ticket-details.json");
    let raw: Vec<RawTicketNote> = serde_json::from_value(details["ticketNotes"].clone()).unwrap();
    assert_eq!(raw.len(), 5);
    TicketNotes::from_raw(raw)
}

#[test]
fn the_fixture_notes_are_cleaned_and_ordered_by_instant() {
    let notes = fixture_notes();
    // The null note is dropped; the rest are oldest first by instant, whatever their order.
    let ids: Vec<i64> = notes.as_slice().iter().map(|n| n.id.unwrap()).collect();
    assert_eq!(ids, [70805303, 70805299, 70805300, 70805302]);
}

#[test]
fn only_the_exact_dispatch_notes_count() {
    let notes = fixture_notes();
    let ours = notes.for_key(&NoteKey::parse("DIS37405").unwrap());
    let ids: Vec<i64> = ours.as_slice().iter().map(|n| n.id.unwrap()).collect();
    assert_eq!(
        ids,
        [70805300, 70805302],
        "DIS374050's note is not DIS37405's"
    );
    assert!(ours.has(phrases::REQUESTED));
    assert!(ours.has(phrases::CONFIRMED));
    assert!(!ours.has(phrases::CONFIRMED_SMS));

    let other = notes.for_key(&NoteKey::parse("DIS374050").unwrap());
    assert_eq!(other.as_slice().len(), 1);
    assert!(
        notes
            .for_key(&NoteKey::parse("DIS3740").unwrap())
            .as_slice()
            .is_empty()
    );
}
