//! chartty on a bad link: the real portal server, the real client, real
//! HTTP through a fault-injecting proxy (tests/fault_proxy). What is
//! asserted is what happened on the wire and what the client said, never
//! how long it took (wall-clock figures are printed for reading).

mod common;
mod fault_proxy;

use std::time::{Duration, Instant};

use base64::Engine as _;
use chartty::api::http::HttpOptions;
use chartty::api::{ApiClient, ApiError, ApiReply, ApiRequest, Backoff, Features, Worker, Write};
use chartty::fhir::codes::CLIENT_ID_SYSTEM;
use common::*;
use fault_proxy::{Fault, FaultProxy, Link};
use serde_json::{Value, json};

/// Long enough that no limit of the client's ends a test's request unless
/// the test means it to.
const PATIENT: Duration = Duration::from_secs(60);

fn client_via(base: &str, opts: &HttpOptions) -> ApiClient {
    ApiClient::with_options(base, None, opts).expect("a client")
}

fn search(name: &str) -> ApiRequest {
    ApiRequest::SearchPatients {
        params: vec![("name".into(), name.into())],
        count: 20,
    }
}

fn listed(reply: &Result<ApiReply, ApiError>) -> Option<Vec<String>> {
    match reply {
        Ok(ApiReply::Patients { patients, .. }) => {
            Some(patients.iter().map(|p| p.id.clone()).collect())
        }
        _ => None,
    }
}

/// Wait for the proxy to see something the client did (a hang-up); the
/// deadline only bounds a test that would otherwise hang.
async fn until(what: &str, proxy: &FaultProxy, done: impl Fn(&fault_proxy::Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(&proxy.stats()) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:?} (seed {})",
            proxy.stats(),
            proxy.seed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_opens_in_two_round_trips_cold_and_one_warm_at_300_ms() {
    let clinic = messy_portal().await;
    let direct = client_via(&clinic.server.base_url, &HttpOptions::new(PATIENT));
    let Ok(ApiReply::Capabilities(offered)) = direct.execute(ApiRequest::Capabilities).await else {
        panic!("the server's capabilities");
    };
    let proxy = FaultProxy::start(clinic.server.addr, 300).await;
    proxy.set_link(Link::rtt(Duration::from_millis(300)).with_jitter(Duration::from_millis(30)));
    let mut failures = Vec::new();
    for features in [
        offered,
        Features {
            lastn: false,
            ..offered
        },
    ] {
        let open = || ApiRequest::OpenChart {
            patient_id: LAN.into(),
            name: Some("Nguyễn, Thị Lan".into()),
            features,
        };
        let truth = direct.execute(open()).await.expect("the chart, directly");
        let slow = client_via(
            &proxy.rebase(&clinic.server.base_url),
            &HttpOptions::new(PATIENT),
        );
        for (warmth, most) in [("cold", 2), ("warm", 1)] {
            proxy.reset_stats();
            let started = Instant::now();
            let reply = slow.execute(open()).await;
            let took = started.elapsed();
            let s = proxy.stats();
            println!(
                "lastn {}: {warmth} chart at 300 ms RTT: {} round trips, {} requests, \
                 {} connections, {} B up, {} B down, {} ms",
                features.lastn,
                s.round_trips,
                s.requests,
                s.connections,
                s.bytes_up,
                s.bytes_down,
                took.as_millis()
            );
            if s.round_trips > most {
                failures.push(format!(
                    "lastn {}, {warmth}: {} round trips, expected at most {most}: {:#?}",
                    features.lastn,
                    s.round_trips,
                    proxy.history()
                ));
            }
            if reply.as_ref().ok() != Some(&truth) {
                failures.push(format!(
                    "lastn {}, {warmth}: the chart differs from the one read directly: {reply:?}",
                    features.lastn
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {}:\n{}",
        proxy.seed(),
        failures.join("\n")
    );
}

/// A narrow link slows a chart down by what crosses it and changes
/// nothing in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_link_carries_the_same_chart() {
    let clinic = messy_portal().await;
    let direct = client_via(&clinic.server.base_url, &HttpOptions::new(PATIENT));
    let open = || ApiRequest::OpenChart {
        patient_id: LAN.into(),
        name: None,
        features: Features::default(),
    };
    let truth = direct.execute(open()).await.expect("the chart, directly");
    let proxy = FaultProxy::start(clinic.server.addr, 5).await;
    let rate = 8_000;
    proxy.set_link(Link::rtt(Duration::from_millis(100)).with_bandwidth(rate));
    let slow = client_via(
        &proxy.rebase(&clinic.server.base_url),
        &HttpOptions::new(PATIENT),
    );
    let started = Instant::now();
    let reply = slow.execute(open()).await;
    let took = started.elapsed();
    let s = proxy.stats();
    println!(
        "chart at {rate} B/s: {} B up, {} B down, {} ms",
        s.bytes_up,
        s.bytes_down,
        took.as_millis()
    );
    assert_eq!(reply.ok(), Some(truth), "seed {}", proxy.seed());
    // Every byte waited for its share of the link (a lower bound: a
    // sleep never ends early).
    let carried = Duration::from_secs_f64((s.bytes_up + s.bytes_down) as f64 / rate as f64);
    assert!(took >= carried, "{} ms for {s:?}", took.as_millis());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_search_is_given_up_within_its_read_timeout() {
    let clinic = messy_portal().await;
    let proxy = FaultProxy::start(clinic.server.addr, 7).await;
    let backoff = Backoff {
        attempts: 2,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(100),
    };
    let opts = HttpOptions::new(Duration::from_secs(3))
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(1));
    let client = client_via(&proxy.rebase(&clinic.server.base_url), &opts).with_backoff(backoff);
    proxy.set(Fault::Stall);
    let started = Instant::now();
    let stalled = client.execute(search("lan")).await;
    println!(
        "stalled search gave up after {} ms",
        started.elapsed().as_millis()
    );
    let err = stalled.expect_err("a stalled search fails");
    assert_eq!(err.status, None, "retryable, as the link being down: {err}");
    assert!(
        err.message.contains("the server did not answer within 1 s"),
        "{err}"
    );
    // Tried as often as the backoff says, each abandoned by the client.
    until("both stalled tries abandoned", &proxy, |s| s.abandoned == 2).await;
    assert_eq!(proxy.stats().requests, u64::from(backoff.attempts));

    proxy.set(Fault::Pass);
    let after = client.execute(search("lan")).await;
    let ids = listed(&after).unwrap_or_else(|| panic!("the next search answers: {after:?}"));
    assert!(ids.iter().any(|id| id == LAN), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_search_supersedes_a_stalled_one() {
    let clinic = messy_portal().await;
    let proxy = FaultProxy::start(clinic.server.addr, 11).await;
    let client = client_via(
        &proxy.rebase(&clinic.server.base_url),
        &HttpOptions::new(PATIENT).with_timeouts(PATIENT, PATIENT),
    );
    proxy.queue([Fault::Stall]);
    let (mut worker, mut replies) = Worker::new(client, tokio::runtime::Handle::current());
    assert_eq!(worker.submit(1, search("nguy")), None);
    // The first search is on the wire (and stalled) before the second goes.
    until("the first search reached the proxy", &proxy, |s| {
        s.requests == 1
    })
    .await;
    assert_eq!(
        worker.submit(2, search("lan")),
        Some(1),
        "the stalled search is cancelled"
    );
    let done = replies.recv().await.expect("a reply");
    assert_eq!(done.id, 2, "only the newer search answers");
    let ids = listed(&done.result).unwrap_or_else(|| panic!("{:?}", done.result));
    assert!(ids.iter().any(|id| id == LAN), "{ids:?}");
    // Cancelling dropped the stalled request's connection: its limits
    // (a minute) had nothing to do with it.
    until("the stalled search abandoned", &proxy, |s| s.abandoned == 1).await;
    assert!(
        replies.try_recv().is_err(),
        "no reply ever comes for the cancelled search"
    );
}

/// A read that meets a fault: how many tries reach the proxy, whether it
/// ends well, and the least wait between the first two tries.
struct ReadCase {
    name: &'static str,
    queued: Vec<Fault>,
    then: Fault,
    tries: u64,
    ok: bool,
    status: Option<u16>,
    least_wait: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_tried_again_as_the_backoff_says() {
    let clinic = messy_portal().await;
    let backoff = Backoff {
        attempts: 3,
        base: Duration::from_millis(10),
        cap: Duration::from_secs(1),
    };
    let cases = [
        ReadCase {
            name: "503, Retry-After beyond the cap",
            queued: vec![Fault::unavailable(30)],
            then: Fault::Pass,
            tries: 2,
            ok: true,
            status: None,
            least_wait: backoff.cap,
        },
        ReadCase {
            name: "429, Retry-After 1 s",
            queued: vec![Fault::too_many(1)],
            then: Fault::Pass,
            tries: 2,
            ok: true,
            status: None,
            least_wait: Duration::from_secs(1),
        },
        ReadCase {
            name: "503 every time",
            queued: vec![],
            then: Fault::unavailable(0),
            tries: backoff.attempts.into(),
            ok: false,
            status: Some(503),
            least_wait: Duration::ZERO,
        },
        ReadCase {
            name: "reset in the middle of the answer",
            queued: vec![Fault::ResetMidBody { after: 40 }],
            then: Fault::Pass,
            tries: 2,
            ok: true,
            status: None,
            least_wait: Duration::ZERO,
        },
        ReadCase {
            name: "reset in the middle of every answer",
            queued: vec![],
            then: Fault::ResetMidBody { after: 0 },
            tries: backoff.attempts.into(),
            ok: false,
            status: None,
            least_wait: Duration::ZERO,
        },
    ];
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let proxy = FaultProxy::start(clinic.server.addr, 100 + i as u64).await;
        proxy.set_link(Link::rtt(Duration::from_millis(20)));
        proxy.queue(case.queued.clone());
        proxy.set(case.then.clone());
        let client = client_via(
            &proxy.rebase(&clinic.server.base_url),
            &HttpOptions::new(PATIENT),
        )
        .with_backoff(backoff);
        let started = Instant::now();
        let reply = client.execute(search("lan")).await;
        let history = proxy.history();
        println!(
            "{}: {} tries in {} ms",
            case.name,
            history.len(),
            started.elapsed().as_millis()
        );
        let mut wrong = Vec::new();
        if history.len() as u64 != case.tries {
            wrong.push(format!("{} tries, expected {}", history.len(), case.tries));
        }
        match (&reply, case.ok) {
            (Ok(_), true) => {
                let ids = listed(&reply).unwrap_or_default();
                if !ids.iter().any(|id| id == LAN) {
                    wrong.push(format!("the reply lists {ids:?}"));
                }
            }
            (Err(e), false) if e.status == case.status => {}
            _ => wrong.push(format!(
                "ended {reply:?}, expected {}",
                if case.ok {
                    "a reply".to_string()
                } else {
                    format!("an error with status {:?}", case.status)
                }
            )),
        }
        if let [first, second, ..] = &history[..] {
            let waited = second.request.at - first.request.at;
            if waited < case.least_wait {
                wrong.push(format!(
                    "the second try came {} ms after the first, expected at least {} ms",
                    waited.as_millis(),
                    case.least_wait.as_millis()
                ));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} (seed {}): {}",
                case.name,
                proxy.seed(),
                wrong.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn note(text: &str, doc_status: &str) -> Value {
    json!({"resourceType": "DocumentReference", "status": "current", "docStatus": doc_status,
        "subject": {"reference": format!("Patient/{LAN}")},
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}]},
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text)}}]})
}

/// The notes the server holds with this client id, asked of it directly.
async fn stored_with_id(base: &str, client_id: &str) -> Vec<Value> {
    let url = format!("{base}/DocumentReference?identifier={CLIENT_ID_SYSTEM}|{client_id}");
    let found: Value = reqwest::get(url)
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("a Bundle");
    found["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

async fn read_directly(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}/{path}"))
        .await
        .expect("the server answers")
        .json()
        .await
        .expect("JSON")
}

/// A signed note's create whose answer is lost after the server stored
/// it: the write (as retried by the client, then replayed whole as an
/// outbox would) leaves exactly one note, signed, with the text written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_signed_while_the_link_drops_is_stored_once() {
    let clinic = messy_portal().await;
    let base = &clinic.server.base_url;
    let mut failures = Vec::new();
    for (i, replace_existing) in [true, false].into_iter().enumerate() {
        let proxy = FaultProxy::start(clinic.server.addr, 200 + i as u64).await;
        let client = client_via(&proxy.rebase(base), &HttpOptions::new(PATIENT));
        let client_id = format!("signed-during-a-drop-{replace_existing}");
        let text = "Seen today. Plan: recheck potassium in 1 week.";
        let write = Write::Create {
            resource: note(text, "final"),
            client_id: client_id.clone(),
            conditional: true,
            replace_existing,
        };
        proxy.queue([Fault::ResetAfterCommit]);
        let first = client.write(write.clone()).await;
        let replay = client.write(write).await;
        let history: Vec<String> = proxy
            .history()
            .iter()
            .map(|x| format!("{} {} {:?}", x.request.method, x.request.target, x.fault))
            .collect();
        println!(
            "replace_existing {replace_existing}: first {:?}; sent {history:#?}",
            first.as_ref().map(|_| "written")
        );
        let mut wrong = Vec::new();
        if let Err(e) = &first
            && e.status.is_some()
        {
            wrong.push(format!(
                "the retried create ended with the server refusing it: {e}"
            ));
        }
        if let Err(e) = &replay {
            wrong.push(format!("the replayed create failed: {e}"));
        }
        let stored = stored_with_id(base, &client_id).await;
        if stored.len() != 1 {
            wrong.push(format!(
                "{} notes with the client id: {stored:#?}",
                stored.len()
            ));
        }
        if let Some(doc) = stored.first() {
            if doc["docStatus"] != "final" {
                wrong.push(format!("docStatus {}", doc["docStatus"]));
            }
            if doc["content"] != note(text, "final")["content"] {
                wrong.push(format!("content {}", doc["content"]));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "replace_existing {replace_existing} (seed {}): {}",
                proxy.seed(),
                wrong.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A versioned update whose answer is lost after the server stored it:
/// retried and replayed, it leaves exactly one new version with the
/// content written, and no version conflict reaches the user (the server
/// holds what was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_stored_while_the_link_drops_makes_one_version() {
    let clinic = messy_portal().await;
    let base = &clinic.server.base_url;
    let direct = client_via(base, &HttpOptions::new(PATIENT));
    let mut failures = Vec::new();
    for (i, (name, doc_status)) in [
        ("draft text", "preliminary"),
        ("signing the draft", "final"),
    ]
    .into_iter()
    .enumerate()
    {
        let made = direct
            .write(Write::Create {
                resource: note("First words.", "preliminary"),
                client_id: format!("update-during-a-drop-{i}"),
                conditional: true,
                replace_existing: true,
            })
            .await;
        let Ok(ApiReply::Written {
            resource: draft,
            version: Some(version),
        }) = made
        else {
            panic!("the draft is stored: {made:?}");
        };
        let id = draft["id"].as_str().expect("an id").to_string();
        let mut changed = draft.clone();
        changed["docStatus"] = json!(doc_status);
        changed["content"] = note("First words, and the plan.", doc_status)["content"].clone();
        let update = Write::Update {
            resource: changed.clone(),
            version: version.clone(),
        };

        let proxy = FaultProxy::start(clinic.server.addr, 300 + i as u64).await;
        let client = client_via(&proxy.rebase(base), &HttpOptions::new(PATIENT));
        proxy.queue([Fault::ResetAfterCommit]);
        let first = client.write(update.clone()).await;
        let replay = client.write(update).await;
        let mut wrong = Vec::new();
        for (what, r) in [
            ("the retried update", &first),
            ("the replayed update", &replay),
        ] {
            match r {
                Err(e) if e.status.is_some() => {
                    wrong.push(format!("{what} ended with the server refusing it: {e}"))
                }
                Err(e) if what == "the replayed update" => {
                    wrong.push(format!("{what} failed: {e}"))
                }
                _ => {}
            }
        }
        let stored = read_directly(base, &format!("DocumentReference/{id}")).await;
        let now = stored["meta"]["versionId"].as_str().unwrap_or("");
        if now.parse::<u64>().ok() != version.parse::<u64>().ok().map(|v| v + 1) {
            wrong.push(format!(
                "version {now} after {version}: one new version expected"
            ));
        }
        for field in ["docStatus", "content"] {
            if stored[field] != changed[field] {
                wrong.push(format!("{field} {} on the server", stored[field]));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{name} (seed {}): {}",
                proxy.seed(),
                wrong.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
