//! The envelope, its failure modes and the adapters, against a real `nats-server` started on
//! a free port for each test, with responders written in the tests.

use std::time::Duration;

use crate::common::{HANG_GUARD, connected_client, envelope, memory_store, responder};
use bytes::Bytes;
use domain::ports::{DispatchSource, Email, Notifier, PortError, TicketRepository};
use domain::{PhoneE164, TicketId, VendorName};
use infra_nats::{ConnectionState, NatsClient, RpcFailure, subjects};
use serde_json::{Value, json};
use test_support::servers::NatsServer;
use tokio::time::{Instant, sleep, timeout};

const TIMEOUT: Duration = Duration::from_secs(10);

fn request_id_of(request: &Value) -> uuid::Uuid {
    let id = request["request_id"].as_str().expect("a request_id string");
    let id = uuid::Uuid::parse_str(id).expect("a uuid request_id");
    assert_eq!(id.get_version_num(), 4);
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_round_trip() {
    let nats = NatsServer::new();
    let echo = responder(&nats.url(), "test.echo", |request| async move {
        envelope(&request, 200, json!({"echo": request["body"]}))
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;

    let reply = client.request("test.echo", json!({"n": 1})).await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"echo": {"n": 1}}));

    let received = echo.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = received[0].as_object().unwrap();
    assert_eq!(request.len(), 2, "only request_id and body: {request:?}");
    assert_eq!(request["body"], json!({"n": 1}));
    let id = request_id_of(&received[0]);
    assert_eq!(reply.request_id.as_deref(), Some(id.to_string().as_str()));

    // Every request gets a fresh id, and `call` returns the body.
    assert_eq!(
        client.call("test.echo", json!("x")).await.unwrap(),
        json!({"echo": "x"})
    );
    let received = echo.received.lock().unwrap().clone();
    assert_ne!(request_id_of(&received[0]), request_id_of(&received[1]));
}

#[tokio::test(flavor = "multi_thread")]
async fn any_2xx_is_success_and_other_statuses_are_rejections() {
    let nats = NatsServer::new();
    let _service = responder(&nats.url(), "test.status", |request| async move {
        let status = request["body"]["status"].as_u64().unwrap() as u16;
        envelope(&request, status, json!("Bruin said no"))
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;

    for status in [200, 201, 299] {
        assert!(
            client
                .call("test.status", json!({"status": status}))
                .await
                .is_ok()
        );
    }
    let rejected = client.call("test.status", json!({"status": 500})).await;
    assert_eq!(
        rejected,
        Err(PortError::Rejected {
            status: 500,
            detail: "Bruin said no".into()
        })
    );
    // A service's own 503 is its answer, not a transport failure.
    let rejected = client.call("test.status", json!({"status": 503})).await;
    assert!(
        matches!(rejected, Err(PortError::Rejected { status: 503, .. })),
        "{rejected:?}"
    );
    let reply = client
        .request("test.status", json!({"status": 300}))
        .await
        .unwrap();
    assert_eq!(reply.status, 300);
    assert!(!reply.is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_reply_times_out_as_uncertain() {
    let nats = NatsServer::new();
    let _silent = responder(&nats.url(), "test.silent", |_| async { None }).await;
    let client = connected_client(&nats, Duration::from_millis(300), memory_store()).await;

    let failure = timeout(HANG_GUARD, client.request("test.silent", json!({})))
        .await
        .unwrap();
    assert_eq!(
        failure,
        Err(RpcFailure::TimedOut(Duration::from_millis(300)))
    );
    // The request went out: the service may have acted on it.
    let error = timeout(HANG_GUARD, client.call("test.silent", json!({})))
        .await
        .unwrap();
    let Err(PortError::Uncertain(message)) = error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("test.silent") && message.contains("503"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subject_without_responders_is_unavailable() {
    let nats = NatsServer::new();
    // The timeout is long: "no responders" must come back without waiting for it.
    let client = connected_client(&nats, Duration::from_secs(120), memory_store()).await;

    let failure = timeout(HANG_GUARD, client.request("nobody.listens", json!({})))
        .await
        .unwrap();
    assert_eq!(failure, Err(RpcFailure::NoResponders));
    let error = timeout(HANG_GUARD, client.call("nobody.listens", json!({})))
        .await
        .unwrap();
    assert!(matches!(error, Err(PortError::Unavailable(_))), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unparseable_replies_are_uncertain() {
    let nats = NatsServer::new();
    let _junk = responder(&nats.url(), "test.junk", |_| async {
        Some(Bytes::from_static(b"<html>502 Bad Gateway</html>"))
    })
    .await;
    let _no_status = responder(&nats.url(), "test.nostatus", |request| async move {
        Some(Bytes::from(
            json!({"request_id": request["request_id"], "body": {}}).to_string(),
        ))
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;

    let failure = client.request("test.junk", json!({})).await;
    assert!(
        matches!(failure, Err(RpcFailure::InvalidReply(_))),
        "{failure:?}"
    );
    assert!(matches!(
        client.call("test.junk", json!({})).await,
        Err(PortError::Uncertain(_))
    ));
    let failure = client.request("test.nostatus", json!({})).await;
    assert!(
        matches!(failure, Err(RpcFailure::InvalidReply(_))),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_reply_missing_from_the_store_is_unavailable() {
    let nats = NatsServer::new();
    let _service = responder(&nats.url(), "test.lost", |_| async {
        Some(Bytes::from(
            json!({"token": "gone", "is_stored": true}).to_string(),
        ))
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;
    let failure = client.request("test.lost", json!({})).await;
    assert!(
        matches!(failure, Err(RpcFailure::InvalidReply(_))),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dispatch_lists_come_from_the_vendor_subject() {
    let nats = NatsServer::new();
    let lit = responder(&nats.url(), "lit.dispatch.get", |request| async move {
        envelope(
            &request,
            200,
            json!({"Status": "Success", "DispatchList": [{"Dispatch_Number": "DIS1"}]}),
        )
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;
    let source = client.dispatch_source();

    let body = source
        .fetch_dispatches(&VendorName::parse("LIT").unwrap())
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(body.get()).unwrap();
    assert_eq!(body["DispatchList"][0]["Dispatch_Number"], "DIS1");
    assert_eq!(lit.received.lock().unwrap()[0]["body"], json!({}));
    // CTS has no responder here.
    let cts = source
        .fetch_dispatches(&VendorName::parse("CTS").unwrap())
        .await;
    assert!(matches!(cts, Err(PortError::Unavailable(_))), "{cts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_notes_are_read_and_appended_through_the_bruin_bridge() {
    let nats = NatsServer::new();
    let details = responder(&nats.url(), subjects::TICKET_DETAILS, |request| async move {
        if request["body"]["ticket_id"] == "666" {
            return envelope(&request, 200, json!({"ticketDetails": []}));
        }
        envelope(
            &request,
            200,
            json!({
                "ticketDetails": [{"detailID": 1}],
                "ticketNotes": [
                    {"noteId": 1, "noteValue": "#*MetTel's IPA*# DIS1\nDispatch Management - Dispatch Requested",
                     "serviceNumber": ["S1"], "createdDate": "2020-05-28T06:05:54.987-04:00", "creator": null},
                    {"noteId": 2, "noteValue": null, "serviceNumber": [], "createdDate": "2020-05-29T06:05:54-04:00", "creator": "x"}
                ]
            }),
        )
    })
    .await;
    let append = responder(
        &nats.url(),
        subjects::TICKET_NOTE_APPEND,
        |request| async move { envelope(&request, 200, json!("Note appended")) },
    )
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;
    let tickets = client.tickets();
    let ticket = TicketId::parse("3544800").unwrap();

    let notes = tickets.ticket_notes(&ticket).await.unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].note_id, Some(1));
    assert!(
        notes[0]
            .note_value
            .as_deref()
            .unwrap()
            .contains("Dispatch Requested")
    );
    assert_eq!(notes[1].note_value, None);
    assert_eq!(
        details.received.lock().unwrap()[0]["body"],
        json!({"ticket_id": "3544800"})
    );

    let malformed = tickets.ticket_notes(&TicketId::parse("666").unwrap()).await;
    assert!(
        matches!(malformed, Err(PortError::Malformed(_))),
        "{malformed:?}"
    );

    tickets
        .append_note(&ticket, "#*MetTel's IPA*# DIS1\nhello")
        .await
        .unwrap();
    assert_eq!(
        append.received.lock().unwrap()[0]["body"],
        json!({"ticket_id": "3544800", "note": "#*MetTel's IPA*# DIS1\nhello", "is_private": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_use_their_own_wire_formats() {
    let nats = NatsServer::new();
    let sms = responder(&nats.url(), subjects::SMS, |request| async move {
        envelope(&request, 200, json!(null))
    })
    .await;
    let flat_reply = |request: Value| async move {
        let status = if request.get("body").is_some() {
            400
        } else {
            200
        };
        Some(Bytes::from(
            json!({"request_id": request["request_id"], "status": status}).to_string(),
        ))
    };
    let slack = responder(&nats.url(), subjects::SLACK, flat_reply).await;
    let email_service = responder(&nats.url(), subjects::EMAIL, |request| async move {
        let status = if request["email_data"]["recipient"] == "fail@x" {
            500
        } else {
            200
        };
        Some(Bytes::from(
            json!({"request_id": request["request_id"], "status": status}).to_string(),
        ))
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;
    let notifier = client.notifier();

    let phone = PhoneE164::parse_us("+1 212 359 5129").unwrap();
    notifier
        .send_sms(
            &phone,
            "Your dispatch is confirmed",
            "dev:LIT:DIS1:confirmed:12123595129",
        )
        .await
        .unwrap();
    let request = sms.received.lock().unwrap()[0].clone();
    request_id_of(&request);
    assert_eq!(
        request["body"],
        json!({
            "sms_to": "12123595129",
            "sms_data": "Your dispatch is confirmed",
            "idempotency_key": "dev:LIT:DIS1:confirmed:12123595129"
        })
    );

    notifier
        .post_slack("[dispatch-monitor] [LIT] hello")
        .await
        .unwrap();
    let request = slack.received.lock().unwrap()[0].clone();
    request_id_of(&request);
    assert_eq!(request.as_object().unwrap().len(), 2, "{request}");
    assert_eq!(request["message"], "[dispatch-monitor] [LIT] hello");

    let email = Email {
        subject: "Dispatch cancelled".into(),
        recipients: "a@x, b@y".into(),
        text: "Line 1\nLine <2>".into(),
    };
    notifier.send_email(&email).await.unwrap();
    let request = email_service.received.lock().unwrap()[0].clone();
    request_id_of(&request);
    assert_eq!(request.as_object().unwrap().len(), 2, "{request}");
    assert_eq!(
        request["email_data"],
        json!({
            "subject": "Dispatch cancelled",
            "recipient": "a@x, b@y",
            "text": "Line 1\nLine <2>",
            "html": "Line 1<br>\nLine &lt;2&gt;",
            "images": [],
            "attachments": [],
        })
    );
    let failed = notifier
        .send_email(&Email {
            recipients: "fail@x".into(),
            ..email
        })
        .await;
    assert!(
        matches!(failed, Err(PortError::Rejected { status: 500, .. })),
        "{failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_client_recovers_after_nats_restarts() {
    let mut nats = NatsServer::new();
    let _echo = responder(&nats.url(), "test.echo", |request| async move {
        envelope(&request, 200, request["body"].clone())
    })
    .await;
    let client = connected_client(&nats, TIMEOUT, memory_store()).await;
    assert_eq!(client.call("test.echo", json!(1)).await.unwrap(), json!(1));

    nats.stop();
    let deadline = Instant::now() + HANG_GUARD;
    while client.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the client never noticed the outage"
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.connection_state(), ConnectionState::Disconnected);
    // While NATS is down, requests fail at once instead of waiting out the 10 s timeout.
    let down = timeout(
        Duration::from_secs(5),
        client.request("test.echo", json!(2)),
    )
    .await
    .expect("a request waited while NATS was down");
    assert_eq!(
        down,
        Err(RpcFailure::Disconnected(ConnectionState::Disconnected))
    );
    let error = client.call("test.echo", json!(2)).await;
    let Err(PortError::Unavailable(message)) = error else {
        panic!("{error:?}")
    };
    assert!(message.contains("not connected"), "{message}");

    nats.start();
    assert!(
        client.wait_until_connected(Duration::from_secs(30)).await,
        "no reconnection"
    );
    // The responder resubscribes on its own reconnection; wait for it too.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.call("test.echo", json!(3)).await {
            Ok(body) => {
                assert_eq!(body, json!(3));
                break;
            }
            Err(error) => {
                assert!(Instant::now() < deadline, "never recovered: {error}");
                sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_fails_when_the_connection_drops() {
    let mut nats = NatsServer::new();
    let silent = responder(&nats.url(), "test.silent", |_| async { None }).await;
    // The timeout is long: the drop must end the request long before it.
    let client = connected_client(&nats, Duration::from_secs(120), memory_store()).await;

    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.request("test.silent", json!({})).await }
    });
    let deadline = Instant::now() + HANG_GUARD;
    while silent.received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the request never arrived");
        sleep(Duration::from_millis(10)).await;
    }
    nats.stop();
    let outcome = timeout(HANG_GUARD, waiting)
        .await
        .expect("the request kept waiting")
        .unwrap();
    assert_eq!(outcome, Err(RpcFailure::ConnectionLost));
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_while_nats_is_down_returns_and_connects_later() {
    let mut nats = NatsServer::new();
    nats.stop();

    let client = timeout(
        HANG_GUARD,
        NatsClient::connect(&nats.url(), TIMEOUT, memory_store()),
    )
    .await
    .expect("connect waited for NATS")
    .unwrap();
    assert!(!client.is_connected());
    let down = timeout(
        Duration::from_secs(5),
        client.request("test.echo", json!({})),
    )
    .await
    .expect("a request waited while NATS was down");
    assert_eq!(
        down,
        Err(RpcFailure::Disconnected(ConnectionState::Pending))
    );

    nats.start();
    assert!(
        client.wait_until_connected(Duration::from_secs(30)).await,
        "never connected"
    );
    let _echo = responder(&nats.url(), "test.echo", |request| async move {
        envelope(&request, 200, json!("up"))
    })
    .await;
    // Right after connecting, the server may not have the responder's interest routed to the
    // client yet; the call succeeds within a few tries.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.call("test.echo", json!({})).await {
            Ok(reply) => {
                assert_eq!(reply, json!("up"));
                break;
            }
            Err(error) if std::time::Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the client never recovered: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_url_is_refused() {
    let store = memory_store();
    let error = NatsClient::connect("nats://user:secret@[bad", TIMEOUT, store)
        .await
        .unwrap_err();
    assert!(
        !error.to_string().contains("secret"),
        "the URL leaked: {error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_url_speaks_tls_with_a_verified_certificate_and_never_plaintext() {
    let tls = test_support::servers::TlsFiles::generate();
    let nats = NatsServer::tls(&tls);
    assert!(nats.url().starts_with("tls://"));
    let ca = tls.ca_cert();
    let client = NatsClient::connect_with(&nats.url(), TIMEOUT, memory_store(), Some(&ca))
        .await
        .unwrap();
    assert!(
        client.wait_until_connected(HANG_GUARD).await,
        "no TLS connection"
    );
    let responder_client = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.clone())
        .require_tls(true)
        .connect(nats.url())
        .await
        .unwrap();
    let mut requests = responder_client.subscribe("tls.echo").await.unwrap();
    responder_client.flush().await.unwrap();
    tokio::spawn(async move {
        use futures::StreamExt;
        while let Some(message) = requests.next().await {
            let request: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let reply =
                json!({"request_id": request["request_id"], "status": 200, "body": "over TLS"});
            let _ = responder_client
                .publish(message.reply.unwrap(), reply.to_string().into())
                .await;
        }
    });
    assert_eq!(
        client.call("tls.echo", json!({})).await.unwrap(),
        json!("over TLS")
    );

    // Without the CA the server's certificate is not trusted: never connected.
    let untrusted = NatsClient::connect(&nats.url(), TIMEOUT, memory_store())
        .await
        .unwrap();
    assert!(!untrusted.wait_until_connected(Duration::from_secs(2)).await);
    assert!(untrusted.call("tls.echo", json!({})).await.is_err());
}
