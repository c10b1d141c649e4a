//! The lock screen, driven by keys against the real portal server over
//! loopback HTTP: what leaves memory when it locks, who may unlock, and what
//! comes back.

mod common;

use std::time::{Duration, Instant};

use common::{Portal, screen};

use chartty::config::Settings;
use chartty::drafts::DraftStore;
use chartty::roles::Role;
use chartty::tui::app::LockStep;
use chartty::tui::headless::Headless;

async fn signed_in(
    p: &Portal,
    role: Role,
    settings: &Settings,
    drafts: &std::path::Path,
) -> Headless {
    common::signed_in(p, role, settings, Some(common::local_drafts(drafts))).await
}

fn token(p: &Portal, role: Role) -> String {
    common::token(p, role)
}

fn settings(idle_minutes: u64) -> Settings {
    Settings {
        time_zone: chrono_tz::Tz::UTC,
        idle_lock_minutes: idle_minutes,
        ..Settings::default()
    }
}

/// Opens the first listed patient; its family name and MRN.
async fn open_first(h: &mut Headless) -> (String, String, String) {
    let row = h.app.panes.search.listed()[0].clone();
    let family: String = row.name.split(',').next().unwrap_or("").to_string();
    let query: String = family.chars().take(5).collect::<String>().to_lowercase();
    common::open(h, &query, &row.id).await;
    let mrn = row.mrn.clone();
    (row.id, family, mrn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_l_drops_the_chart_and_the_token_and_only_the_sessions_token_brings_them_back() {
    let p = common::demo_portal(30, 11).await;
    let drafts = tempfile::tempdir().unwrap();
    let mut h = signed_in(&p, Role::Attending, &settings(10), drafts.path()).await;
    let (id, family, mrn) = open_first(&mut h).await;
    h.keys("4n<enter>").unwrap();
    h.paste("Words written before the lock.");
    let written = h.app.panes.editor.editing.as_ref().map(|e| e.text());
    let written = written.expect("the editor is open");
    assert!(
        written.contains("Words written before the lock."),
        "{written}"
    );
    let before = screen(&mut h, 120, 40);
    assert!(before.contains(&family.to_uppercase()), "{before}");

    h.keys("<c-l>").unwrap();
    h.settle().await;
    let lock = h.app.locked().expect("Ctrl-l locks");
    assert!(
        lock.tokens_dropped,
        "the token left memory once the draft was saved"
    );
    assert!(h.app.chart().is_none());
    assert!(h.app.panes.search.listed().is_empty());
    assert!(h.app.panes.editor.editing.is_none());
    assert!(h.app.panes.tasks.rows().is_empty());
    let locked = screen(&mut h, 120, 40);
    for secret in [family.as_str(), mrn.as_str(), "Words written", "MRN"] {
        assert!(!secret.is_empty());
        assert!(
            !locked.contains(secret),
            "{secret:?} on the lock screen:\n{locked}"
        );
    }
    assert!(locked.contains("Locked."), "{locked}");
    let small = screen(&mut h, 80, 24);
    assert!(small.contains("t  type or paste the token"), "{small}");

    // Behind the lock nothing is reachable: pane keys and searches do
    // nothing, and no request goes out.
    let sent = h.sent().len();
    h.keys("2/abc<enter>3").unwrap();
    h.settle().await;
    assert_eq!(h.sent().len(), sent, "no request while locked");
    assert!(h.app.locked().is_some());

    // Someone else's token does not unlock.
    h.keys("t").unwrap();
    h.paste(&token(&p, Role::Nurse));
    h.keys("<enter>").unwrap();
    h.settle().await;
    let lock = h.app.locked().expect("still locked");
    assert_eq!(lock.step, LockStep::Choose);
    assert!(
        lock.problem
            .as_deref()
            .unwrap_or("")
            .contains("not the token"),
        "{:?}",
        lock.problem
    );
    let shown = screen(&mut h, 120, 40);
    assert!(
        !shown.contains(&token(&p, Role::Attending)),
        "a typed token is never shown"
    );

    // The session's own token unlocks: the same chart is back, and the
    // note being written with it.
    h.keys("t").unwrap();
    h.paste(&token(&p, Role::Attending));
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert!(h.app.locked().is_none(), "{:?}", h.app.locked());
    assert_eq!(h.app.chart().and_then(|c| c.patient.id.clone()), Some(id));
    let back = h
        .app
        .panes
        .editor
        .editing
        .as_ref()
        .expect("the draft is back in the editor");
    assert_eq!(back.text(), written, "the note as it was at the lock");
    let after = screen(&mut h, 120, 40);
    assert!(after.contains(&family.to_uppercase()), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_without_a_key_lock_the_screen_and_a_key_resets_the_clock() {
    let p = common::demo_portal(10, 3).await;
    let drafts = tempfile::tempdir().unwrap();
    let mut h = signed_in(&p, Role::Attending, &settings(10), drafts.path()).await;
    open_first(&mut h).await;
    let start = Instant::now();
    h.tick(start + Duration::from_secs(9 * 60));
    assert!(h.app.locked().is_none(), "not before 10 minutes");
    h.keys("j").unwrap();
    h.tick(start + Duration::from_secs(18 * 60));
    assert!(
        h.app.locked().is_none(),
        "a key started the 10 minutes again"
    );
    h.tick(start + Duration::from_secs(20 * 60));
    h.settle().await;
    assert!(h.app.locked().is_some(), "locked after 10 minutes idle");
    assert!(h.app.chart().is_none());
    let shown = screen(&mut h, 120, 40);
    assert!(shown.contains("without a key"), "{shown}");

    // Quitting from the lock screen is allowed (drafts are kept).
    h.keys("q").unwrap();
    assert!(h.app.should_quit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_lock_zero_never_locks() {
    let p = common::demo_portal(5, 3).await;
    let drafts = tempfile::tempdir().unwrap();
    let mut h = signed_in(&p, Role::Attending, &settings(0), drafts.path()).await;
    h.tick(Instant::now() + Duration::from_secs(24 * 3600));
    assert!(h.app.locked().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_key_works_over_popups_and_in_text_boxes() {
    let p = common::demo_portal(5, 3).await;
    let drafts = tempfile::tempdir().unwrap();
    for keys in ["?", "/abc", ":", "gg"] {
        let mut h = signed_in(&p, Role::Attending, &settings(10), drafts.path()).await;
        h.keys(keys).unwrap();
        h.keys("<c-l>").unwrap();
        h.settle().await;
        assert!(h.app.locked().is_some(), "Ctrl-l after {keys:?} locks");
        assert!(
            h.app.popup().is_none(),
            "no popup behind the lock after {keys:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_up_saves_the_note_then_drops_the_chart() {
    let p = common::demo_portal(10, 3).await;
    let drafts = tempfile::tempdir().unwrap();
    let mut h = signed_in(&p, Role::Attending, &settings(10), drafts.path()).await;
    open_first(&mut h).await;
    h.keys("4n<enter>").unwrap();
    h.paste("Typed just before the link dropped.");
    // What the runner does on SIGHUP: lock, then end the session.
    h.app.lock(chartty::tui::app::LockReason::HangUp);
    assert!(h.app.chart().is_none());
    assert!(h.app.panes.editor.editing.is_none());
    let user = h
        .app
        .session()
        .user
        .clone()
        .expect("the server named the user");
    h.end();
    let store = DraftStore::open_with(drafts.path(), Box::new(common::FixedKey(common::DRAFT_KEY)));
    let kept: Vec<_> = store
        .drafts_of(&user, &p.server.base_url)
        .into_iter()
        .filter(|d| d.text.contains("Typed just before the link dropped."))
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the note was saved, encrypted, before the process went"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_unlocks_before_the_token_has_left_memory() {
    let p = common::demo_portal(10, 3).await;
    let drafts = tempfile::tempdir().unwrap();
    let mut h = signed_in(&p, Role::Attending, &settings(10), drafts.path()).await;
    open_first(&mut h).await;
    h.keys("4n<enter>").unwrap();
    h.paste("Words on their way to the server.");
    // Locked with the draft's save in flight: the token is still held
    // until it is back, and no key unlocks meanwhile.
    h.keys("<c-l>").unwrap();
    assert!(!h.app.locked().unwrap().tokens_dropped);
    h.keys("t").unwrap();
    h.paste("anything at all");
    h.keys("<enter>d").unwrap();
    h.settle().await;
    let lock = h.app.locked().expect("still locked");
    assert!(lock.tokens_dropped);
    assert_eq!(
        lock.step,
        LockStep::Choose,
        "t and d did nothing while locking"
    );
    assert!(h.app.chart().is_none());
    // A wrong token now is refused too.
    h.keys("t").unwrap();
    h.paste("anything at all");
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert!(h.app.locked().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_asks_for_no_sign_in_unlocks_with_enter() {
    let clinic = common::messy_portal().await;
    let mut h = common::app_at(&clinic.server.base_url, &settings(10)).await;
    h.keys("<c-l>").unwrap();
    h.settle().await;
    let shown = screen(&mut h, 80, 24);
    assert!(shown.contains("Enter  go on"), "{shown}");
    assert!(!shown.contains("d  sign in"), "{shown}");
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert!(h.app.locked().is_none());
    assert!(!h.app.panes.search.listed().is_empty(), "the list is back");
}
