//! The real app, driven by key strings, against the real portal server
//! in-process over loopback with a small demo population.

mod common;

use common::{Portal, anchor, screen};
use std::time::Duration;

use chartty::api::ApiClient;
use chartty::config::Settings;
use chartty::roles::Role;
use chartty::server::ServerConfig;
use chartty::tui::action::Action;
use chartty::tui::app::LinkState;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::{Context, Keymap, display_sequence};
use chartty::tui::panes::PaneId;
use chartty::tui::panes::tasks::QueueState;
use chartty::tui::popups::Popup;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};

const PATIENTS: usize = 60;
const SEED: u64 = 7;

async fn portal() -> Portal {
    common::demo_portal(PATIENTS, SEED).await
}

async fn app_at(base: &str, token: Option<String>, role: Option<Role>, keymap: Keymap) -> Headless {
    let session = Session {
        base_url: base.to_string(),
        token: token.clone(),
        role,
        user: None,
        ..Session::default()
    };
    let client = ApiClient::new(base, token, Duration::from_secs(30))
        .unwrap()
        .with_request_log();
    let mut app = App::new(
        &Settings::default(),
        session,
        keymap,
        Theme::default(),
        anchor(),
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.settle().await;
    h
}

async fn signed_in(portal: &Portal, role: Role) -> Headless {
    let token = portal.server.token_for(role).map(str::to_string);
    assert!(token.is_some(), "the demo has a {role} user");
    app_at(
        &portal.server.base_url,
        token,
        Some(role),
        Keymap::defaults(),
    )
    .await
}

/// Open a patient through the search box; returns its id.
async fn open_some_patient(h: &mut Headless, nth: usize) -> String {
    let target = h.app.panes.search.listed()[nth].clone();
    let family: String = target
        .name
        .split(',')
        .next()
        .unwrap()
        .chars()
        .take(4)
        .collect::<String>()
        .to_lowercase();
    let year = &target.birth_date[..4];
    h.keys(&format!("/<c-u>{family} {year}")).unwrap();
    h.settle().await;
    let pos = h
        .app
        .panes
        .search
        .listed()
        .iter()
        .position(|r| r.id == target.id)
        .expect("the fuzzy query lists the patient");
    for _ in 0..pos {
        h.keys("<down>").unwrap();
    }
    h.keys("<enter>").unwrap();
    h.settle().await;
    target.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_search_opens_a_chart_in_one_batch_request() {
    let portal = portal().await;
    let mut h = signed_in(&portal, Role::Attending).await;
    assert_eq!(h.app.session().role, Some(Role::Attending));
    assert!(h.app.session().user.is_some(), "$whoami named the user");
    assert!(
        !h.app.panes.search.listed().is_empty(),
        "the working set loaded"
    );

    let target = h.app.panes.search.listed()[5].clone();
    let family: String = target
        .name
        .split(',')
        .next()
        .unwrap()
        .chars()
        .take(4)
        .collect();
    h.keys(&format!(
        "/{} {}",
        family.to_lowercase(),
        &target.birth_date[..4]
    ))
    .unwrap();
    h.settle().await;
    let listed = h.app.panes.search.listed();
    assert!(listed.iter().any(|r| r.id == target.id));
    // Every row matches every word somewhere (name, birth date or MRN).
    assert!(
        listed
            .iter()
            .all(|r| r.birth_date.contains(&target.birth_date[..4])
                || r.mrn.contains(&target.birth_date[..4]))
    );
    // The typed query also went to the server as standard parameters.
    assert!(
        h.sent()
            .iter()
            .any(|s| s.path_and_query.contains("birthdate=") && s.path_and_query.contains("name="))
    );
    let pos = listed.iter().position(|r| r.id == target.id).unwrap();
    for _ in 0..pos {
        h.keys("<down>").unwrap();
    }

    let before = h.sent().len();
    h.keys("<enter>").unwrap();
    h.settle().await;
    let chart = h.app.chart().expect("the chart opened");
    assert_eq!(chart.patient.id.as_deref(), Some(target.id.as_str()));
    assert_eq!(h.app.focus(), PaneId::Summary);
    let sent = h.sent();
    let opened = &sent[before..];
    assert_eq!(opened.len(), 1, "one round trip: {opened:?}");
    assert_eq!(opened[0].method, "POST");
    assert_eq!(opened[0].path_and_query, "/fhir");
    assert!(
        chart.allergies.failed.is_none()
            && chart.labs.failed.is_none()
            && chart.vitals.failed.is_none()
    );

    let text = screen(&mut h, 120, 40);
    assert!(text.contains(&format!("MRN {}", target.mrn)), "{text}");
    assert!(text.contains(&target.birth_date));
    assert!(
        text.contains("ALLERGIES:") || text.contains("No allergies recorded"),
        "{text}"
    );

    // The MRN alone finds the same patient first.
    h.keys(&format!("/<c-u>{}", target.mrn)).unwrap();
    h.settle().await;
    assert_eq!(h.app.panes.search.listed()[0].id, target.id);
    assert!(h.sent().iter().any(|s| {
        s.path_and_query
            .contains(&format!("identifier={}", target.mrn))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panes_sequences_and_result_history() {
    let portal = portal().await;
    let mut h = signed_in(&portal, Role::Attending).await;
    // A patient with a repeated lab, so there is a history to open.
    let mut found = false;
    for nth in 0..10 {
        open_some_patient(&mut h, nth).await;
        if h.app
            .panes
            .results
            .groups()
            .iter()
            .any(|g| g.values.len() >= 2)
        {
            found = true;
            break;
        }
        h.keys("<esc>").unwrap();
    }
    assert!(found, "a demo patient with repeated results");

    h.keys("3").unwrap();
    assert_eq!(h.app.focus(), PaneId::Results);
    let idx = h
        .app
        .panes
        .results
        .groups()
        .iter()
        .position(|g| g.values.len() >= 2)
        .unwrap();
    h.keys(&"j".repeat(idx)).unwrap();
    h.keys("<enter>").unwrap();
    assert!(h.app.panes.results.showing_history());
    assert_eq!(
        h.app.panes.results.selected_group().unwrap().values.len(),
        { h.app.panes.results.groups()[idx].values.len() }
    );
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("values"), "{text}");
    h.keys("<esc>").unwrap();
    assert!(!h.app.panes.results.showing_history());

    h.keys("<tab>").unwrap();
    assert_eq!(h.app.focus(), PaneId::Notes);
    h.keys("<s-tab><s-tab>").unwrap();
    assert_eq!(h.app.focus(), PaneId::Summary);

    // A sequence: which-key while pending, Esc cancels, the full sequence runs.
    h.keys("g").unwrap();
    assert_eq!(h.app.pending_keys().len(), 1);
    assert!(h.app.which_key().iter().any(|(k, _)| k == "r"));
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("Go to results"), "{text}");
    h.keys("<esc>").unwrap();
    assert!(h.app.pending_keys().is_empty());
    assert_eq!(h.app.focus(), PaneId::Summary);
    h.keys("gr").unwrap();
    assert_eq!(h.app.focus(), PaneId::Results);
    h.keys("5").unwrap();
    assert_eq!(h.app.focus(), PaneId::Tasks);
    h.keys("4").unwrap();
    assert_eq!(h.app.focus(), PaneId::Notes);
    if !h.app.panes.notes.notes().is_empty() {
        h.keys("<enter>").unwrap();
        assert!(h.app.panes.notes.reading().is_some());
        h.keys("<esc>").unwrap();
        assert!(h.app.panes.notes.reading().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_popup_and_palette_run_an_action() {
    let portal = portal().await;
    let mut h = signed_in(&portal, Role::Nurse).await;
    h.keys("?").unwrap();
    assert!(matches!(h.app.popup(), Some(Popup::Help(_))));
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("Go to results"), "{text}");
    // Keys go to the popup while it is open (a nurse starts on the queue).
    h.keys("3").unwrap();
    assert_eq!(h.app.focus(), PaneId::Tasks);
    h.keys("<esc>").unwrap();
    assert!(h.app.popup().is_none());

    h.keys(":pane results").unwrap();
    assert!(matches!(h.app.popup(), Some(Popup::Palette(_))));
    h.keys("<enter>").unwrap();
    assert!(h.app.popup().is_none());
    assert_eq!(h.app.focus(), PaneId::Results);

    h.keys("<c-p>go to the task<enter>").unwrap();
    assert_eq!(h.app.focus(), PaneId::Tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_unbound_in_the_user_keymap_does_nothing() {
    let portal = portal().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keymap.toml");
    std::fs::write(
        &file,
        "[global]\nkeymap = [\n    { on = \"3\", run = \"noop\" },\n]\n",
    )
    .unwrap();
    let load = Keymap::load(Some(&file));
    assert!(load.warnings.is_empty(), "{:?}", load.warnings);
    let token = portal.server.token_for(Role::Attending).map(str::to_string);
    let mut h = app_at(&portal.server.base_url, token, None, load.keymap).await;
    assert_eq!(h.app.focus(), PaneId::Search);
    h.keys("3").unwrap();
    assert_eq!(h.app.focus(), PaneId::Search);
    h.keys("4").unwrap();
    assert_eq!(h.app.focus(), PaneId::Notes);
    // Hints and help read the live keymap: `3` is no longer offered.
    let offered = h
        .app
        .keymap()
        .keys_for(Context::Search, Action::PaneResults)
        .iter()
        .map(|k| display_sequence(k))
        .collect::<Vec<_>>();
    assert!(!offered.contains(&"3".to_string()), "{offered:?}");
    assert!(offered.contains(&"g r".to_string()), "{offered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_search_is_cancelled_and_never_applied() {
    let portal = portal().await;
    let mut h = signed_in(&portal, Role::Attending).await;
    let family: String = h.app.panes.search.listed()[0]
        .name
        .split(',')
        .next()
        .unwrap()
        .to_lowercase();
    let short: String = family.chars().take(2).collect();
    let longer: String = family.chars().take(4).collect();

    h.keys(&format!("/{short}")).unwrap();
    h.flush();
    assert_eq!(h.app.in_flight(), 1, "the first search is out");
    h.keys(&longer[short.len()..]).unwrap();
    h.flush();
    // The newer search supersedes the older one: one in flight, one dropped.
    assert_eq!(h.app.in_flight(), 1);
    assert_eq!(h.app.stats().stale_dropped, 1);
    h.settle().await;
    assert_eq!(h.app.panes.search.query(), longer);
    let sent = h.sent();
    let searches: Vec<_> = sent
        .iter()
        .filter(|s| s.path_and_query.contains("name="))
        .collect();
    assert!(
        (1..=2).contains(&searches.len()),
        "the older one may have left before it was cancelled: {searches:?}"
    );
    // Whatever the older search found is not listed unless it matches.
    assert!(
        h.app
            .panes
            .search
            .listed()
            .iter()
            .all(|r| chartty::fhir::fold::fold(&r.name).contains(&longer[..2])),
        "{:?}",
        h.app.panes.search.listed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tasks_pane_lists_the_role_queue_and_opens_the_patient() {
    let portal = portal().await;
    for role in [Role::Nurse, Role::Frontdesk] {
        let mut h = signed_in(&portal, role).await;
        assert_eq!(h.app.panes.tasks.state, QueueState::Loaded);
        let rows = h.app.panes.tasks.rows().to_vec();
        assert!(!rows.is_empty(), "the demo {role} queue has tasks");
        let queue = format!("performer-type=urn:chartty:role%7C{}", role.code());
        assert!(h.sent().iter().any(|s| s.path_and_query.contains(&queue)));
        // STAT and urgent first, then by due time, soonest first.
        let rank = |p: &str| match p {
            "stat" => 0,
            "asap" => 1,
            "urgent" => 2,
            _ => 3,
        };
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (rank(&r.priority), r.due.is_none(), r.due))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "{keys:?}");

        h.keys("5").unwrap();
        assert_eq!(h.app.focus(), PaneId::Tasks);
        let row = rows.iter().position(|r| r.patient_id.is_some()).unwrap();
        h.keys(&"j".repeat(row)).unwrap();
        // `Enter` reads the message; `o` opens the chart.
        h.keys("o").unwrap();
        h.settle().await;
        let chart = h.app.chart().expect("the task's patient opened");
        assert_eq!(chart.patient.id, rows[row].patient_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_failures_show_a_message_and_lose_nothing() {
    let portal = portal().await;
    // The front desk may not read results or allergies: the chart still opens.
    let mut h = signed_in(&portal, Role::Frontdesk).await;
    let id = open_some_patient(&mut h, 0).await;
    let chart = h.app.chart().expect("demographics open");
    assert_eq!(chart.patient.id.as_deref(), Some(id.as_str()));
    let labs = chart.labs.failed.as_ref().expect("labs are refused");
    assert!(labs.contains("403"), "{labs}");
    assert!(chart.allergies.failed.is_some());
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("ALLERGIES NOT AVAILABLE"), "{text}");
    assert!(!text.contains("No known allergies") && !text.contains("No allergies recorded"));
    h.keys("3").unwrap();
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("Labs not available: HTTP 403"), "{text}");
    // A refused category is unknown, not empty.
    assert!(!text.contains("No results on file"), "{text}");
    // At 80 columns what to do comes first, and a cut is marked.
    let narrow = screen(&mut h, 80, 24);
    assert!(
        narrow.contains("ALLERGIES NOT AVAILABLE — ask the patient"),
        "{narrow}"
    );
    assert!(
        narrow.lines().nth(1).is_some_and(|l| l.contains('…')),
        "{narrow}"
    );

    // The server goes away: a reload fails with a message, the chart stays.
    let query = h.app.panes.search.query().to_string();
    portal.server.stop().await;
    h.keys("r").unwrap();
    h.settle().await;
    let notice = h.app.notice().expect("a message").text.clone();
    assert!(notice.contains("Could not open the chart"), "{notice}");
    assert_eq!(h.app.link(), LinkState::Down);
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.clone()),
        Some(id.clone())
    );
    assert_eq!(h.app.panes.search.query(), query);
    let text = screen(&mut h, 80, 24);
    assert!(text.contains("offline"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_at_all_is_explained_not_a_crash() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    drop(listener);
    let mut h = app_at(&base, None, None, Keymap::defaults()).await;
    assert_eq!(h.app.link(), LinkState::Down);
    assert!(h.app.notice().is_some());
    assert_eq!(h.app.panes.tasks.state, QueueState::NoRole);
    h.keys("/garc<esc>").unwrap();
    h.settle().await;
    h.keys("5").unwrap();
    let text = screen(&mut h, 80, 24);
    assert!(text.contains("No role is known"), "{text}");
}

/// `../shared/data` beside the crate (looked up through the ancestors).
fn shared_data() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/data"))
        .find(|d| d.is_dir())
        .expect("shared/data next to the crate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_fhir_server_with_synthea_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("plain.db");
    let (db2, data) = (db.clone(), shared_data());
    tokio::task::spawn_blocking(move || chartty::server::import_paths(&db2, &[data], false))
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // No users: open access, no `$whoami`, no queues, like a plain FHIR store.
    let server =
        chartty::server::start_with_staff(ServerConfig { db, demo: None }, listener, Vec::new())
            .await
            .unwrap();
    let mut h = app_at(&server.base_url, None, None, Keymap::defaults()).await;
    assert_eq!(h.app.session().role, None);
    assert_eq!(h.app.panes.tasks.state, QueueState::NoRole);
    assert_eq!(h.app.link(), LinkState::Online);

    // Accents: typed plainly, found anyway.
    h.keys("/agustin").unwrap();
    h.settle().await;
    let first = h
        .app
        .panes
        .search
        .listed()
        .first()
        .map(|r| (*r).clone())
        .expect("a match");
    assert!(first.name.contains("Agustín"), "{first:?}");
    assert!(!first.mrn.is_empty(), "Synthea's MR identifier is the MRN");
    h.keys("<enter>").unwrap();
    h.settle().await;
    let chart = h.app.chart().expect("the chart opened");
    assert_eq!(chart.patient.id.as_deref(), Some(first.id.as_str()));
    assert!(
        chart.allergies.failed.is_none()
            && chart.conditions.failed.is_none()
            && chart.labs.failed.is_none()
    );
    let text = screen(&mut h, 80, 24);
    assert!(text.contains(&format!("MRN {}", first.mrn)), "{text}");
    assert!(text.contains("role unknown"), "{text}");
    h.keys("5").unwrap();
    let text = screen(&mut h, 80, 24);
    assert!(text.contains("No role is known"), "{text}");
    h.keys("3").unwrap();
    let _ = screen(&mut h, 120, 40);
    h.keys("4<enter>").unwrap();
    let _ = screen(&mut h, 120, 40);

    // Someone who died in 1989 is marked so in the list and the banner,
    // with the age at death rather than a living age.
    h.keys("1/<c-u>barney abbott").unwrap();
    h.settle().await;
    let dead = h.app.panes.search.listed()[0].clone();
    assert!(dead.name.contains("Abbott"), "{dead:?}");
    assert!(dead.deceased.is_some(), "{dead:?}");
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("(† 1989-02-15)"), "{text}");
    h.keys("<enter>").unwrap();
    h.settle().await;
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("† died 1989-02-15 at"), "{text}");
    // At 80 columns the UUID MRN does not fit beside the death date: the
    // banner marks the cut instead of losing it at the edge.
    let banner = screen(&mut h, 80, 24)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    assert!(banner.trim_end().ends_with('…'), "{banner}");
    server.stop().await;
}

/// A FHIR server that ignores every search parameter (like some test stores):
/// each search returns every resource of its type, both patients mixed.
async fn filter_ignoring_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{Method, StatusCode, Uri};
    use serde_json::{Value, json};

    fn patient(id: &str, family: &str, given: &str) -> Value {
        json!({"resourceType": "Patient", "id": id,
            "name": [{"family": family, "given": [given]}],
            "gender": "female", "birthDate": "1970-01-01"})
    }
    fn all_of(kind: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for (p, allergy) in [("p1", "Penicillin"), ("p2", "Peanut")] {
            let r = json!({"reference": format!("Patient/{p}")});
            out.extend([
                patient("p1", "Alpha", "Ann"),
                patient("p2", "Beta", "Bob"),
                json!({"resourceType": "AllergyIntolerance", "id": format!("a-{p}"),
                    "patient": r, "code": {"text": allergy}}),
                json!({"resourceType": "Condition", "id": format!("c-{p}"), "subject": r,
                    "clinicalStatus": {"coding": [{"code": "active"}]},
                    "code": {"text": format!("Problem of {p}")}}),
                json!({"resourceType": "Encounter", "id": format!("e-{p}"), "subject": r}),
            ]);
        }
        let mut seen = std::collections::HashSet::new();
        out.into_iter()
            .filter(|v| v["resourceType"] == kind)
            .filter(|v| seen.insert(v["id"].to_string()))
            .collect()
    }
    async fn handle(method: Method, uri: Uri) -> (StatusCode, axum::Json<Value>) {
        let path = uri.path().trim_start_matches("/fhir").trim_matches('/');
        let not_found = json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-supported"}]});
        if method != Method::GET {
            return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(not_found));
        }
        match path.split_once('/') {
            Some(("Patient", id)) => match all_of("Patient").into_iter().find(|p| p["id"] == id) {
                Some(p) => (StatusCode::OK, axum::Json(p)),
                None => (StatusCode::NOT_FOUND, axum::Json(not_found)),
            },
            Some(_) => (StatusCode::NOT_FOUND, axum::Json(not_found)),
            None if path.starts_with('$') => (StatusCode::NOT_FOUND, axum::Json(not_found)),
            None => {
                let entry: Vec<Value> = all_of(path)
                    .into_iter()
                    .map(|r| json!({"resource": r}))
                    .collect();
                let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entry});
                (StatusCode::OK, axum::Json(bundle))
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(handle);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_patient_never_shows_another_patients_data() {
    let (base, server) = filter_ignoring_server().await;
    let mut h = app_at(&base, None, None, Keymap::defaults()).await;
    h.keys("/alpha").unwrap();
    h.settle().await;
    assert_eq!(h.app.panes.search.listed()[0].id, "p1");
    h.keys("<enter>").unwrap();
    h.settle().await;
    let chart = h.app.chart().expect("the chart opened");
    assert_eq!(chart.patient.id.as_deref(), Some("p1"));
    assert_eq!(chart.allergies.items.len(), 1);
    assert!(chart.allergies.failed.is_none());
    assert_eq!(chart.other_patients_ignored, 3);
    let text = screen(&mut h, 100, 30);
    assert!(text.contains("Penicillin"), "{text}");
    assert!(
        !text.contains("Peanut"),
        "another patient's allergy: {text}"
    );
    assert!(!text.contains("Problem of p2"), "{text}");
    assert!(
        text.contains("ignored 3 resources of other patients"),
        "{text}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_recovers_by_itself_and_old_failures_are_cleared() {
    // Nobody listens yet.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let base = format!("http://{addr}/fhir");
    let mut h = app_at(&base, None, None, Keymap::defaults()).await;
    assert_eq!(h.app.link(), LinkState::Down);
    assert!(h.app.notice().is_some_and(|n| n.error));

    // A probe goes out once its wait is over, fails, and waits longer.
    // (The capability statement was asked for at start: not a probe.)
    let metadata = |h: &Headless| {
        h.sent()
            .iter()
            .filter(|s| s.path_and_query == "/fhir/metadata")
            .count()
    };
    let at_start = metadata(&h);
    assert!(at_start >= 1, "the capability statement was asked for");
    let probes = |h: &Headless| metadata(h) - at_start;
    h.tick(std::time::Instant::now());
    assert_eq!(probes(&h), 0, "not before the first wait");
    h.tick(std::time::Instant::now() + Duration::from_secs(3));
    h.settle().await;
    assert_eq!(probes(&h), 1);
    assert_eq!(h.app.link(), LinkState::Down);
    h.tick(std::time::Instant::now() + Duration::from_secs(3));
    assert_eq!(probes(&h), 1, "the second wait is longer than the first");

    // The server comes up: the next probe finds it, no key pressed.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = chartty::server::start_with_staff(
        ServerConfig {
            db: dir.path().join("late.db"),
            demo: None,
        },
        listener,
        Vec::new(),
    )
    .await
    .unwrap();
    h.tick(std::time::Instant::now() + Duration::from_secs(31));
    h.settle().await;
    assert_eq!(probes(&h), 2);
    assert_eq!(h.app.link(), LinkState::Online);
    let sent = h.sent();
    let last_probe = sent
        .iter()
        .rposition(|s| s.path_and_query == "/fhir/metadata")
        .unwrap();
    assert!(
        sent[last_probe..]
            .iter()
            .any(|s| s.path_and_query.starts_with("/fhir/Patient?")),
        "the patient list that never arrived is asked for again: {sent:?}"
    );
    assert!(
        h.app.notice().is_none(),
        "the old failure is gone: {:?}",
        h.app.notice()
    );
    let text = screen(&mut h, 80, 24);
    assert!(
        text.contains("online") && !text.contains("Could not"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_the_banner_says_which_chart_is_on_screen() {
    let portal = portal().await;
    let mut h = signed_in(&portal, Role::Attending).await;
    let first = open_some_patient(&mut h, 0).await;
    let shown = h.app.chart().unwrap().patient.display_name();
    portal.server.stop().await;

    // Ask for another patient from the list: until it answers, the banner says so.
    h.keys("/<c-u><esc>").unwrap();
    h.settle().await;
    let listed = h.app.panes.search.listed();
    let pos = listed.iter().position(|r| r.id != first).unwrap();
    let other = listed[pos].name.clone();
    for _ in 0..pos {
        h.keys("<down>").unwrap();
    }
    h.keys("<enter>").unwrap();
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("(opening "), "{text}");
    h.settle().await;
    let notice = h.app.notice().expect("a message").text.clone();
    assert!(
        notice.contains(&format!("Could not open the chart of {other}")),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("still showing {shown}")),
        "{notice}"
    );
    assert_eq!(h.app.link(), LinkState::Down);
}

#[test]
fn the_summary_binds_no_key_it_ignores() {
    // The cover sheet has no selection, so "open" would do nothing there.
    let keymap = Keymap::defaults();
    assert!(
        keymap
            .bindings(Context::Summary)
            .all(|b| b.action != Action::Open)
    );
}
