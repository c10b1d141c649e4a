//! The lock screen on a real terminal: chartty on a 120x40 pseudo-terminal
//! against a portal server of the test's own. Ctrl-l locks at once and the
//! session's token unlocks; a minute without a key locks; a hang-up (a
//! dropped SSH link) locks and saves the note being written before the
//! process goes.

mod pty_support;

use std::time::Duration;

use pty_support::portal::*;
use pty_support::*;
use rustix::process::Signal;

const TYPED: &str = "Vermilion heron presyncope";

#[test]
fn ctrl_l_clears_the_screen_and_only_the_sessions_token_unlocks_it() {
    let s = server();
    let p = a_patient(&s);
    let root = new_root();
    let mut app = spawn(&s, &root, &[]);
    app.wait_patients();
    // A token from the environment is said to be visible to others.
    assert!(
        find(&app.output(), b"shows in shell history").is_some(),
        "the --token warning"
    );
    open_chart(&app, &p);
    write_note(&app, TYPED);

    app.send(b"\x0c"); // Ctrl-l
    let locked = app.wait_screen("the lock screen", REACT, |s| s.contains("Locked."));
    for gone in [p.family.to_uppercase(), p.mrn.clone(), TYPED.to_string()] {
        assert!(
            !locked.contains(&gone),
            "{gone:?} still on screen:\n{}",
            locked.text()
        );
    }

    // Keys behind the lock do nothing.
    app.send(b"2");
    std::thread::sleep(Duration::from_millis(300));
    assert!(app.screen().contains("Locked."));

    app.wait_screen("unlocking offered", REACT, |s| {
        s.contains("t  type or paste")
    });
    app.send(b"t");
    app.wait_screen("the token prompt", REACT, |s| s.contains("Token:"));
    app.send(s.token().as_bytes());
    let typed = app.screen();
    assert!(!typed.contains(&s.token()), "the token is never echoed");
    app.send(b"\r");
    app.wait_screen("the chart back, with the note", REACT, |scr| {
        scr.contains(&p.family.to_uppercase()) && !scr.contains("Locked.")
    });
    app.send(b"6");
    app.wait_screen("the note as it was", REACT, |scr| scr.contains(TYPED));
    app.signal(Signal::TERM);
    app.wait_exit(EXIT);
}

#[test]
fn a_hang_up_locks_and_saves_the_note_being_written() {
    let s = server();
    let p = a_patient(&s);
    let root = new_root();
    let mut app = spawn(&s, &root, &[]);
    app.wait_patients();
    open_chart(&app, &p);
    write_note(&app, TYPED);
    // At once: no time for the two-second save.
    app.signal(Signal::HUP);
    app.wait_exit(EXIT);
    let log = std::fs::read_to_string(app.log_file()).unwrap_or_default();
    assert!(log.contains("screen locked reason=HangUp"), "{log}");
    drop(app);

    // The next start offers the note back.
    let mut again = spawn(&s, &root, &[]);
    again.wait_patients();
    open_chart(&again, &p);
    again.wait_screen("the note offered back", REACT, |s| {
        s.contains("is back in the editor")
    });
    again.send(b"6");
    again.wait_screen("as typed", REACT, |s| s.contains(TYPED));
    again.signal(Signal::TERM);
    again.wait_exit(EXIT);
}

#[test]
fn a_minute_without_a_key_locks_the_screen() {
    let s = server();
    let p = a_patient(&s);
    let root = new_root();
    let mut app = spawn(&s, &root, &[("CHARTTY_IDLE_LOCK_MINUTES", "1")]);
    app.wait_patients();
    open_chart(&app, &p);
    let locked = app.wait_screen("the idle lock", Duration::from_secs(75), |s| {
        s.contains("Locked after a while without a key.")
    });
    assert!(!locked.contains(&p.family.to_uppercase()));
    app.send(b"q");
    let status = app.wait_exit(EXIT);
    assert!(status.success(), "{status:?}");
}
