//! `chartty demo` on a real pseudo-terminal: however the session ends (a
//! signal, the terminal closing, a panic, quitting), the process ends
//! promptly, the terminal is given back (cooked mode, main screen, cursor
//! shown, bracketed paste off) and the demo clinic's data is removed.

mod pty_support;

use std::panic::AssertUnwindSafe;
use std::process::ExitStatus;

use pty_support::*;
use rustix::process::Signal;

/// While the TUI runs: raw mode is on (so the checks after it ends mean
/// something) and the demo data sits in one private directory.
fn check_running(app: &PtyApp) {
    let modes = app.local_modes();
    assert!(
        !modes.contains(rustix::termios::LocalModes::ICANON)
            && !modes.contains(rustix::termios::LocalModes::ECHO),
        "the TUI runs with the terminal in raw mode, found {modes:?}"
    );
    let dirs = app.demo_dirs();
    assert_eq!(
        dirs.len(),
        1,
        "one chartty-demo-* directory in TMPDIR: {dirs:?}"
    );
    let mode = mode_of(&dirs[0]);
    assert_eq!(
        mode,
        0o700,
        "the demo data directory {} is {mode:o}, not 0700",
        dirs[0].display()
    );
}

/// After the process ended: the terminal is given back and the data is gone.
fn check_given_back(app: &PtyApp) {
    let modes = app.local_modes();
    assert!(
        cooked(modes),
        "canonical mode and echo are back on after the process ended, found {modes:?}"
    );
    let problems = app.restore_problems();
    assert!(
        problems.is_empty(),
        "the output ends with the terminal given back: {}",
        problems.join("; ")
    );
    assert!(
        app.demo_dirs().is_empty(),
        "the demo data is removed: {:?} left in {}",
        app.demo_dirs(),
        app.tmpdir().display()
    );
}

/// The name of the first patient listed, as the clinician sees it.
fn first_patient_name(screen: &Screen) -> String {
    let line = screen
        .line_with("▶ ")
        .unwrap_or_else(|| panic!("a selected patient row; the screen:\n{}", screen.text()));
    let after = line.split("▶ ").nth(1).unwrap_or_default();
    after
        .split("  ")
        .next()
        .unwrap_or_default()
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn log_text(app: &PtyApp) -> String {
    std::fs::read_to_string(app.log_file()).unwrap_or_default()
}

/// The output after the alternate screen was last left.
fn after_leaving(app: &PtyApp) -> String {
    let out = app.output();
    let from = rfind(&out, LEAVE_ALT_SCREEN).map_or(0, |i| i + LEAVE_ALT_SCREEN.len());
    String::from_utf8_lossy(&out[from..]).into_owned()
}

fn ended_by_itself(status: ExitStatus) -> bool {
    // A process killed by the signal has no exit code.
    status.code().is_some()
}

fn signal_case(sig: Signal, name: &str) {
    let mut app = PtyApp::demo(&[], &[]);
    let screen = app.wait_patients();
    check_running(&app);
    let patient = first_patient_name(&screen);
    app.signal(sig);
    let status = app.wait_exit(EXIT);
    assert!(
        ended_by_itself(status),
        "{name} ends the session through its own clean-up, not by killing it: {status:?}"
    );
    check_given_back(&app);
    let log = log_text(&app);
    assert!(
        log.contains("ended by a signal") && log.contains(name),
        "the log says which signal ended the session:\n{log}"
    );
    assert!(
        !patient.is_empty() && !log.contains(&patient),
        "the log holds no patient data (found {patient:?}):\n{log}"
    );
}

#[test]
fn signals_end_the_session_give_the_terminal_back_and_remove_the_demo_data() {
    let cases = [
        (Signal::TERM, "SIGTERM"),
        (Signal::HUP, "SIGHUP"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::INT, "SIGINT"),
    ];
    let mut failures = Vec::new();
    for (sig, name) in cases {
        if let Err(e) = std::panic::catch_unwind(AssertUnwindSafe(|| signal_case(sig, name))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The SSH link drops or the terminal window is closed: the pty's master
/// side goes away, the kernel hangs the terminal up and sends SIGHUP.
#[test]
fn a_closed_terminal_ends_the_demo_and_removes_its_data() {
    let mut app = PtyApp::demo(&[], &[]);
    app.wait_patients();
    check_running(&app);
    app.close_terminal();
    app.wait_exit(EXIT);
    assert!(
        app.demo_dirs().is_empty(),
        "the demo data is removed after the terminal closed: {:?}",
        app.demo_dirs()
    );
}

#[test]
fn a_panic_gives_the_terminal_back_and_removes_the_demo_data() {
    let mut app = PtyApp::demo(&[], &[("CHARTTY_TEST_PANIC", "key")]);
    app.wait_patients();
    check_running(&app);
    app.send(b"j");
    let status = app.wait_exit(EXIT);
    assert_eq!(
        status.code(),
        Some(101),
        "a panic ends the process as a panic does"
    );
    check_given_back(&app);
    let after = after_leaving(&app);
    assert!(
        after.contains("CHARTTY_TEST_PANIC=key"),
        "the panic message is printed on the main screen, after the terminal is given back:\n{after}"
    );
}

#[test]
fn a_panic_on_another_thread_ends_the_session_cleanly() {
    let mut app = PtyApp::demo(&[], &[("CHARTTY_TEST_PANIC", "thread")]);
    app.wait_patients();
    check_running(&app);
    app.send(b"j");
    let status = app.wait_exit(EXIT);
    assert_eq!(status.code(), Some(1), "the session ends with an error");
    check_given_back(&app);
    let after = after_leaving(&app);
    assert!(
        after.contains("internal error") && after.contains("CHARTTY_TEST_PANIC=thread"),
        "the panic is reported on the main screen, after the terminal is given back:\n{after}"
    );
    let log = log_text(&app);
    assert!(
        log.contains("a thread panicked") && !log.contains("CHARTTY_TEST_PANIC=thread"),
        "the log says a thread panicked, without its message (it may quote patient data):\n{log}"
    );
}

#[test]
fn quitting_from_the_keymap_gives_the_terminal_back_and_removes_the_demo_data() {
    for (keys, what) in [(&b"q"[..], "q"), (&b"\x03"[..], "ctrl-c")] {
        let mut app = PtyApp::demo(&[], &[]);
        let screen = app.wait_patients();
        check_running(&app);
        let patient = first_patient_name(&screen);
        app.send(keys);
        let status = app.wait_exit(EXIT);
        assert!(status.success(), "{what} quits: {status:?}");
        check_given_back(&app);
        let log = log_text(&app);
        assert!(
            !log.contains(&patient),
            "{what}: the log holds no patient data (found {patient:?}):\n{log}"
        );
    }
}

/// The database files are created 0600 by the server's store; the directory
/// around them (0700) is checked in every test above.
#[test]
fn the_demo_database_files_are_private() {
    let mut app = PtyApp::demo(&[], &[]);
    app.wait_patients();
    let dirs = app.demo_dirs();
    assert_eq!(dirs.len(), 1, "one chartty-demo-* directory: {dirs:?}");
    let mut wrong = Vec::new();
    for entry in std::fs::read_dir(&dirs[0]).expect("the demo directory") {
        let path = entry.expect("an entry").path();
        let mode = mode_of(&path);
        if mode != 0o600 {
            wrong.push(format!("{} is {mode:o}", path.display()));
        }
    }
    assert!(
        wrong.is_empty(),
        "the demo database files are 0600 (set where they are created, in \
         src/server/store.rs): {}",
        wrong.join(", ")
    );
    app.send(b"q");
    app.wait_exit(EXIT);
}

/// A terminal that goes away without a SIGHUP (the app is not in the
/// terminal's session, e.g. started by a supervisor on a pty it does not
/// control): the end of its input ends the session. (Without it, only a
/// failed draw would end the session, whenever something is drawn next.)
#[test]
fn a_terminal_gone_without_a_hangup_signal_ends_the_demo() {
    let mut app = PtyApp::demo_without_controlling_terminal(&[]);
    app.wait_patients();
    check_running(&app);
    app.close_terminal();
    app.wait_exit(EXIT);
    assert!(
        app.demo_dirs().is_empty(),
        "the demo data is removed after the terminal went away: {:?}",
        app.demo_dirs()
    );
}

/// The clinic takes a while to prepare (a few seconds for 500 patients in a
/// debug build): a signal, or Ctrl-C typed meanwhile, stops it, and its data
/// is removed all the same.
#[test]
fn stopping_the_demo_while_it_is_prepared_removes_its_data() {
    for what in ["SIGTERM", "ctrl-c typed"] {
        let mut app = PtyApp::spawn(&["demo", "--patients", "500"], &[], true);
        app.wait_output("the preparation", START, b"preparing a demo clinic");
        assert_eq!(
            app.demo_dirs().len(),
            1,
            "{what}: the demo directory exists"
        );
        if what == "SIGTERM" {
            app.signal(Signal::TERM);
        } else {
            // The line discipline turns it into SIGINT: the TUI is not up yet.
            app.send(b"\x03");
        }
        let status = app.wait_exit(EXIT);
        assert!(
            find(&app.output(), ENTER_ALT_SCREEN).is_none(),
            "{what}: the TUI started before the stop came (this machine prepared 500 \
             patients faster than the test could stop it)"
        );
        assert!(
            ended_by_itself(status),
            "{what} stops the preparation through the demo's own clean-up: {status:?}"
        );
        assert!(
            app.demo_dirs().is_empty(),
            "{what}: the demo data is removed: {:?}",
            app.demo_dirs()
        );
    }
}
