//! Changes made on a bad link, end to end: the real app driven by keys,
//! through the fault-injecting proxy, against the real portal server. Each
//! test checks the server directly (not through the proxy) for exactly the
//! data intended: nothing lost, nothing twice, nobody overwritten.

mod common;
mod fault_proxy;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chartty::api::{ApiClient, Backoff};
use chartty::roles::Role;
use chartty::tui::Session;
use chartty::tui::app::LinkState;
use chartty::tui::headless::Headless;
use chartty::tui::keeper::DraftKeeper;
use chartty::tui::popups::Popup;
use common::{Portal, get_as, message_task, notes_of, screen, select_task, settings, token};
use fault_proxy::{Fault, FaultProxy};
use serde_json::{Value, json};

const PATIENTS: usize = 30;

/// A request the proxy stalls is given up on after this long.
const TIMEOUT: Duration = Duration::from_millis(600);

async fn portal_behind_proxy(seed: u64) -> (Portal, FaultProxy) {
    let p = common::demo_portal(PATIENTS, 5).await;
    let url = url::Url::parse(&p.server.base_url).expect("the portal's address");
    let upstream = SocketAddr::new(
        url.host_str()
            .and_then(|h| h.parse().ok())
            .expect("a loopback address"),
        url.port().expect("a port"),
    );
    let proxy = FaultProxy::start(upstream, seed).await;
    (p, proxy)
}

/// The app signed in as `role`, talking to the portal through the proxy
/// with short timeouts, drafts and outbox kept by `keeper`.
async fn app_through(
    p: &Portal,
    proxy: &FaultProxy,
    role: Role,
    keeper: Option<Box<dyn DraftKeeper>>,
) -> Headless {
    let base = proxy.rebase(&p.server.base_url);
    let session = Session {
        base_url: base.clone(),
        token: Some(token(p, role)),
        role: Some(role),
        ..Session::default()
    };
    let client = ApiClient::new(&base, Some(token(p, role)), TIMEOUT)
        .expect("a client")
        .with_backoff(Backoff {
            attempts: 2,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        })
        .with_request_log();
    common::started_with(session, &settings(), keeper, client).await
}

/// Time passes (a minute per step) until nothing waits in the outbox and
/// nothing is in flight: probes find the link, the outbox is sent.
async fn until_sent(h: &mut Headless, clock: &mut Instant) {
    for _ in 0..60 {
        *clock += Duration::from_secs(61);
        h.tick(*clock);
        h.settle().await;
        if h.app.outbox_waiting() == 0 && h.app.in_flight() == 0 {
            return;
        }
    }
    panic!(
        "the outbox never emptied: {} waiting, link {:?}, notice {:?}",
        h.app.outbox_waiting(),
        h.app.link(),
        h.app.notice()
    );
}

/// The queue read again (as the background refresh does), with every
/// request passed.
async fn reload_queue(h: &mut Headless, clock: &mut Instant) {
    *clock += chartty::tui::app::QUEUE_REFRESH + Duration::from_secs(1);
    h.tick(*clock);
    h.settle().await;
}

fn count_starting(task: &Value, prefix: &str) -> usize {
    notes_of(task)
        .iter()
        .filter(|n| n.starts_with(prefix))
        .count()
}

async fn task(p: &Portal, id: &str) -> Value {
    get_as(p, Role::Attending, &format!("Task/{id}")).await
}

/// Replies the server holds to a patient's message.
async fn replies_to(p: &Portal, message: &str) -> Vec<Value> {
    let b = get_as(
        p,
        Role::Attending,
        "Communication?_count=500&_sort=-_lastUpdated",
    )
    .await;
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|c| {
            c["inResponseTo"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["reference"] == format!("Communication/{message}").as_str())
        })
        .collect()
}

/// Fresh tasks in the nurse queue, one per patient of the first listed.
async fn fresh_tasks(p: &Portal, n: usize, what: &str) -> Vec<(String, String)> {
    let b = get_as(p, Role::Attending, "Patient?_count=20").await;
    let ids: Vec<String> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for i in 0..n {
        let pid = &ids[i % ids.len()];
        out.push(message_task(p, pid, "nurse", &format!("{what} {i}")).await);
    }
    out
}

/// The nurse's Practitioner reference, as the server writes it on a claim.
async fn owner_of(p: &Portal, id: &str) -> Option<String> {
    task(p, id).await["owner"]["reference"]
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_offline_wait_in_order_and_go_once_when_the_link_returns() {
    let (p, proxy) = portal_behind_proxy(11).await;
    let made = fresh_tasks(&p, 2, "Offline work").await;
    let (msg_b, b) = made[1].clone();
    let (_, a) = made[0].clone();
    let mut h = app_through(&p, &proxy, Role::Nurse, None).await;
    let mut clock = Instant::now();
    assert_eq!(h.app.link(), LinkState::Online);

    // The link goes: the claim is tried, given up on, and waits.
    proxy.set(Fault::Stall);
    select_task(&mut h, &a);
    h.keys("c").unwrap();
    h.settle().await;
    assert_eq!(h.app.link(), LinkState::Down);
    assert_eq!(h.app.outbox_waiting(), 1);
    let text = screen(&mut h, 120, 40);
    assert!(
        text.contains("offline") && text.contains("1 change waiting"),
        "{text}"
    );
    // At 80 columns the server's address gives way, not the count.
    let narrow = screen(&mut h, 80, 24);
    let status = narrow.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        status.contains("offline · 1 change waiting") && !status.contains("127.0.0.1"),
        "{narrow}"
    );
    // The row shows the claim; the server has nothing yet.
    let row = h
        .app
        .panes
        .tasks
        .shown()
        .into_iter()
        .find(|r| r.task_id == a);
    assert!(row.is_some_and(|r| r.status == "in-progress"), "{text}");
    assert_eq!(task(&p, &a).await["status"], "requested");

    // More work while offline: complete the same task, claim and answer
    // another. Nothing is sent; all of it waits, in order.
    select_task(&mut h, &a);
    h.keys("d<enter>").unwrap();
    select_task(&mut h, &b);
    h.keys("c").unwrap();
    select_task(&mut h, &b);
    h.keys("a<enter>").unwrap();
    h.settle().await;
    assert_eq!(h.app.outbox_waiting(), 4, "{:?}", h.app.notice());
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("4 changes waiting"), "{text}");
    assert_eq!(task(&p, &a).await["status"], "requested");
    assert_eq!(task(&p, &b).await["status"], "requested");

    // The link returns: a probe finds it, and the outbox is sent by itself.
    proxy.set(Fault::Pass);
    let before = h.sent().len();
    until_sent(&mut h, &mut clock).await;
    let writes: Vec<String> = h.sent()[before..]
        .iter()
        .filter(|s| s.method != "GET")
        .map(|s| {
            let path = s.path_and_query.split('?').next().unwrap_or("");
            format!("{} {path}", s.method)
        })
        .collect();
    assert_eq!(
        writes,
        [
            format!("PUT /fhir/Task/{a}"),
            format!("PUT /fhir/Task/{a}"),
            format!("PUT /fhir/Task/{b}"),
            "POST /fhir/Communication".to_string(),
            format!("PUT /fhir/Task/{b}"),
        ],
        "sent in the order made, the reply then recorded on its task"
    );

    let ta = task(&p, &a).await;
    assert_eq!(ta["status"], "completed", "{ta}");
    assert_eq!(count_starting(&ta, "Claimed"), 1, "{ta}");
    assert_eq!(count_starting(&ta, "Completed: "), 1, "{ta}");
    let tb = task(&p, &b).await;
    assert_eq!(tb["status"], "in-progress", "{tb}");
    assert_eq!(count_starting(&tb, "Claimed"), 1, "{tb}");
    assert_eq!(count_starting(&tb, "Replied to the patient"), 1, "{tb}");
    assert_eq!(tb["output"].as_array().map(Vec::len), Some(1), "{tb}");
    assert_eq!(replies_to(&p, &msg_b).await.len(), 1, "one reply, once");
    let me = owner_of(&p, &a).await;
    assert!(
        me.as_deref()
            .is_some_and(|o| o.starts_with("Practitioner/"))
    );
    assert_eq!(owner_of(&p, &b).await, me);

    let text = screen(&mut h, 120, 40);
    let status = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        status.contains("online") && !status.contains("waiting"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_overtaken_meanwhile_is_kept_with_both_versions() {
    let (p, proxy) = portal_behind_proxy(12).await;
    let made = fresh_tasks(&p, 1, "Overtaken").await;
    let (_, a) = made[0].clone();
    let mut h = app_through(&p, &proxy, Role::Nurse, None).await;
    let mut clock = Instant::now();

    proxy.set(Fault::Stall);
    select_task(&mut h, &a);
    h.keys("c").unwrap();
    h.settle().await;
    assert_eq!(h.app.outbox_waiting(), 1);

    // Meanwhile an attending takes it, straight on the server.
    let mut theirs = task(&p, &a).await;
    let version = theirs["meta"]["versionId"].as_str().unwrap().to_string();
    theirs["status"] = json!("in-progress");
    theirs["owner"] =
        json!({"reference": "Practitioner/somebody-else", "display": "Dr Ngọc Ánh Trần"});
    let resp = reqwest::Client::new()
        .put(format!("{}/Task/{a}", p.server.base_url))
        .bearer_auth(token(&p, Role::Attending))
        .header("Content-Type", "application/fhir+json")
        .header("If-Match", format!("W/\"{version}\""))
        .body(theirs.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());

    proxy.set(Fault::Pass);
    until_sent(&mut h, &mut clock).await;
    assert_eq!(h.app.outbox_unsent(), 1, "kept, not dropped");
    let notice = h.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(
        notice.contains("Not sent") && notice.contains("changed on the server"),
        "{notice}"
    );
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("1 not sent (W)"), "{text}");

    // W shows ours and theirs, side by side in one view.
    h.keys("W").unwrap();
    let Some(Popup::Raw(view)) = h.app.popup() else {
        panic!("the outbox view opens: {:?}", h.app.notice())
    };
    let shown = view.text();
    let ours_at = shown.find("NOT SENT").expect("ours is shown");
    let theirs_at = shown.find("server's version now").expect("theirs too");
    assert!(ours_at < theirs_at, "{shown}");
    assert!(shown[ours_at..theirs_at].contains("Claimed"), "{shown}");
    assert!(
        shown[theirs_at..].contains("Practitioner/somebody-else"),
        "{shown}"
    );
    h.keys("<esc>").unwrap();
    assert_eq!(h.app.outbox_unsent(), 0, "seen");
    let text = screen(&mut h, 120, 40);
    assert!(!text.contains("not sent"), "{text}");

    // The attending's change stands.
    assert_eq!(
        owner_of(&p, &a).await.as_deref(),
        Some("Practitioner/somebody-else")
    );
    assert_eq!(count_starting(&task(&p, &a).await, "Claimed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_outlives_the_session_sealed_on_this_machine() {
    let (p, proxy) = portal_behind_proxy(13).await;
    let made = fresh_tasks(&p, 1, "Kept across a restart").await;
    let (_, a) = made[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mut h = app_through(
        &p,
        &proxy,
        Role::Nurse,
        Some(common::local_drafts(dir.path())),
    )
    .await;
    proxy.set(Fault::Stall);
    select_task(&mut h, &a);
    let label = h
        .app
        .panes
        .tasks
        .selected_row()
        .map(|r| r.patient_name.clone())
        .unwrap_or_default();
    h.keys("c").unwrap();
    h.settle().await;
    assert_eq!(h.app.outbox_waiting(), 1);
    h.end();

    // On disk: one sealed file, in which neither the patient nor the task
    // can be read.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    for plain in [a.as_str(), label.as_str(), "Task", "Claimed"] {
        assert!(
            !plain.is_empty() && !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain:?} readable in the kept outbox"
        );
    }

    // The next session, link back: it is sent, once, and the file goes.
    proxy.set(Fault::Pass);
    let mut again = app_through(
        &p,
        &proxy,
        Role::Nurse,
        Some(common::local_drafts(dir.path())),
    )
    .await;
    let mut clock = Instant::now();
    until_sent(&mut again, &mut clock).await;
    let t = task(&p, &a).await;
    assert_eq!(t["status"], "in-progress", "{t}");
    assert_eq!(count_starting(&t, "Claimed"), 1, "{t}");
    again.end();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing waits, nothing is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_signed_while_its_answer_is_lost_exists_once() {
    let (p, proxy) = portal_behind_proxy(14).await;
    let mut h = app_through(&p, &proxy, Role::Attending, None).await;
    let mut clock = Instant::now();
    let patient = h.app.panes.search.listed()[0].clone();
    common::open(&mut h, &patient.name, &patient.id).await;
    common::fill_progress_note(&mut h).await;
    // The server stores the signed note; every answer is lost on the way
    // back for a while.
    proxy.schedule(|req, _| {
        if req.method != "GET" {
            Fault::ResetAfterCommit
        } else {
            Fault::Stall
        }
    });
    h.keys("y").unwrap();
    h.settle().await;
    assert!(
        h.app.panes.editor.editing.is_none(),
        "signed, waiting: {:?}",
        h.app.notice()
    );
    assert!(h.app.outbox_waiting() >= 1);
    proxy.set(Fault::Pass);
    until_sent(&mut h, &mut clock).await;
    assert_eq!(h.app.outbox_unsent(), 0, "{:?}", h.app.notice());

    let ours = common::notes_written(&p, &patient.id).await;
    assert_eq!(ours.len(), 1, "exactly one note: {ours:#?}");
    assert_eq!(ours[0]["docStatus"], "final");
}

/// What one run means to do, and what the server must hold after.
struct Run {
    claim: String,
    claim_message: String,
    complete: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_fault_schedules_end_with_exactly_the_intended_data() {
    const RUNS: usize = 50;
    let (p, proxy) = portal_behind_proxy(20).await;
    let made = fresh_tasks(&p, RUNS * 2, "Scheduled").await;
    let mut h = app_through(&p, &proxy, Role::Nurse, None).await;
    let mut clock = Instant::now();
    let mut failures = Vec::new();
    for run in 0..RUNS {
        let r = Run {
            claim_message: made[run * 2].0.clone(),
            claim: made[run * 2].1.clone(),
            complete: made[run * 2 + 1].1.clone(),
        };
        proxy.set(Fault::Pass);
        reload_queue(&mut h, &mut clock).await;
        until_sent(&mut h, &mut clock).await;
        proxy.reset_stats();
        // This run's faults: each request draws one.
        proxy.schedule(move |_, rng| match rng.below(100) {
            0..=49 => Fault::Pass,
            50..=64 => Fault::ResetAfterCommit,
            65..=74 => Fault::ResetMidBody {
                after: rng.below(40) as usize,
            },
            75..=84 => Fault::unavailable(rng.below(2)),
            _ => Fault::Stall,
        });
        for (id, keys) in [
            (&r.claim, "c"),
            (&r.complete, "d<enter>"),
            (&r.claim, "a<enter>"),
        ] {
            if h.app.panes.tasks.shown().iter().any(|t| &t.task_id == id) {
                select_task(&mut h, id);
                h.keys(keys).unwrap();
                h.settle().await;
            } else {
                failures.push(format!("run {run}: task {id} not listed"));
            }
        }
        // A while with the same faults, then the link heals.
        for _ in 0..3 {
            clock += Duration::from_secs(61);
            h.tick(clock);
            h.settle().await;
        }
        proxy.set(Fault::Pass);
        until_sent(&mut h, &mut clock).await;

        let claimed = task(&p, &r.claim).await;
        let completed = task(&p, &r.complete).await;
        let replies = replies_to(&p, &r.claim_message).await;
        let problems = [
            (claimed["status"] != "in-progress")
                .then(|| format!("claim status {}", claimed["status"])),
            (count_starting(&claimed, "Claimed") != 1)
                .then(|| format!("claims {:?}", notes_of(&claimed))),
            (count_starting(&claimed, "Replied to the patient") != 1)
                .then(|| format!("reply notes {:?}", notes_of(&claimed))),
            (replies.len() != 1).then(|| format!("{} replies", replies.len())),
            (claimed["output"].as_array().map(Vec::len) != Some(1))
                .then(|| format!("outputs {}", claimed["output"])),
            (completed["status"] != "completed")
                .then(|| format!("complete status {}", completed["status"])),
            (count_starting(&completed, "Completed: ") != 1)
                .then(|| format!("completions {:?}", notes_of(&completed))),
            (h.app.outbox_unsent() != 0).then(|| format!("not sent: {:?}", h.app.notice())),
        ];
        let problems: Vec<String> = problems.into_iter().flatten().collect();
        if !problems.is_empty() {
            // What the link did to this run's changes, to replay it.
            let writes: Vec<String> = proxy
                .history()
                .iter()
                .filter(|x| x.request.method != "GET")
                .map(|x| format!("{} {} {:?}", x.request.method, x.request.target, x.fault))
                .collect();
            failures.push(format!(
                "run {run} (FAULT_PROXY_SEED={}): {}\n  {}",
                proxy.seed(),
                problems.join("; "),
                writes.join("\n  ")
            ));
        }
        if h.app.outbox_unsent() != 0 {
            // Seen, so the next run starts clean.
            h.keys("W<esc>").unwrap();
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_moving_go_on_while_the_server_stalls() {
    let (p, proxy) = portal_behind_proxy(15).await;
    let mut h = app_through(&p, &proxy, Role::Attending, None).await;
    let listed = h.app.panes.search.listed().to_vec();
    assert!(listed.len() > 3);
    proxy.set(Fault::Stall);
    // A chart that will not come, then a search that will not either.
    h.keys("1<enter>").unwrap();
    h.keys("/zz").unwrap();
    h.flush();
    assert!(h.app.in_flight() >= 2, "both still on their way");
    // Meanwhile the screen answers every key.
    h.keys("<c-u><esc>").unwrap();
    assert_eq!(h.app.panes.search.query(), "");
    let before = h.app.panes.search.selected_row().map(|r| r.id.clone());
    h.keys("jj").unwrap();
    let after = h.app.panes.search.selected_row().map(|r| r.id.clone());
    assert_ne!(before, after, "the selection moved");
    h.keys("3").unwrap();
    assert_eq!(h.app.focus(), chartty::tui::panes::PaneId::Results);
    assert!(h.app.in_flight() >= 1, "the stalled requests are still out");
    let text = screen(&mut h, 80, 24);
    assert!(text.contains("pending"), "{text}");
    // The link heals: the tries after the stalled ones are answered.
    proxy.set(Fault::Pass);
    h.settle().await;
    assert_eq!(h.app.in_flight(), 0);
    assert_eq!(h.app.link(), LinkState::Online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_change_to_a_task_waits_for_the_first_and_builds_on_it() {
    let (p, proxy) = portal_behind_proxy(16).await;
    let made = fresh_tasks(&p, 1, "Quick hands").await;
    let (_, a) = made[0].clone();
    let mut h = app_through(&p, &proxy, Role::Nurse, None).await;
    let mut clock = Instant::now();
    // Claim, and complete before the claim's answer is back: the second
    // change is made from the version the first one replaces.
    select_task(&mut h, &a);
    h.keys("c").unwrap();
    select_task(&mut h, &a);
    h.keys("d<enter>").unwrap();
    assert_eq!(h.app.outbox_waiting(), 1, "{:?}", h.app.notice());
    until_sent(&mut h, &mut clock).await;
    let t = task(&p, &a).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(count_starting(&t, "Claimed"), 1, "{t}");
    assert_eq!(count_starting(&t, "Completed: "), 1, "{t}");
    assert_eq!(
        t["meta"]["versionId"], "3",
        "two changes, two versions: {t}"
    );
    let notice = h.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(!notice.contains("not changed"), "{notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_server_refuses_leaves_the_row_as_the_server_has_it() {
    let (p, proxy) = portal_behind_proxy(17).await;
    let made = fresh_tasks(&p, 1, "Refused").await;
    let (_, a) = made[0].clone();
    let mut h = app_through(&p, &proxy, Role::Nurse, None).await;
    let status_of = |h: &Headless| {
        h.app
            .panes
            .tasks
            .shown()
            .into_iter()
            .find(|r| r.task_id == a)
            .map(|r| r.status.clone())
    };
    // The claim shows on the row while it is on its way...
    proxy.queue([Fault::Status {
        code: 400,
        retry_after: None,
    }]);
    select_task(&mut h, &a);
    h.keys("c").unwrap();
    assert_eq!(status_of(&h).as_deref(), Some("in-progress"));
    // ...and, refused, the row shows the task as the server has it.
    h.settle().await;
    let notice = h.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(notice.contains("not changed"), "{notice}");
    assert_eq!(status_of(&h).as_deref(), Some("requested"));
    assert_eq!(h.app.outbox_waiting(), 0, "an answer, not a lost one");
    assert_eq!(task(&p, &a).await["status"], "requested");
}
