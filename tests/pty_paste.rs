//! Pastes into `chartty demo` on a real pseudo-terminal: whatever their size,
//! they are read and applied at once, without waiting for another key.

mod pty_support;

use std::time::{Duration, Instant};

use pty_support::*;

/// `len` bytes of text no demo patient's name matches.
fn paste_text(len: usize) -> String {
    "Xqzpaste Wvkjtext ".chars().cycle().take(len).collect()
}

fn bracketed(text: &str) -> Vec<u8> {
    let mut bytes = b"\x1b[200~".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\x1b[201~");
    bytes
}

/// The search box has focus: its caret is drawn.
fn focus_search(app: &PtyApp) {
    app.send(b"/");
    app.wait_screen("the search box taking text", REACT, |s| {
        s.contains("Find: \u{258f}")
    });
}

/// The search box shows the start of `text`, and the list says nothing
/// matches it: the paste was applied.
fn wait_applied(app: &PtyApp, text: &str) {
    // A query longer than the box shows its end, where the caret is.
    let end = text.trim_end();
    let tail = &end[end.len() - 40..];
    app.wait_screen("the pasted text in the search box", REACT, |s| {
        s.contains("Find: …") && s.contains(tail) && s.contains("No patient matches")
    });
}

/// Everything written into the terminal has been read by the app: the
/// terminal's input queue is empty and stays so.
fn wait_input_read(app: &PtyApp) {
    let settled = Duration::from_millis(500);
    let deadline = Instant::now() + REACT;
    let mut empty_since: Option<Instant> = None;
    loop {
        let unread = app.unread_input();
        let now = Instant::now();
        if unread == 0 {
            let since = *empty_since.get_or_insert(now);
            if now.duration_since(since) >= settled {
                return;
            }
        } else {
            empty_since = None;
        }
        assert!(
            now < deadline,
            "{unread} bytes typed into the terminal were still unread after {REACT:?}; the screen:\n{}",
            app.screen().text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn quit_and_check(mut app: PtyApp, text: &str) {
    // The search box has focus: Ctrl-C quits from there.
    app.send(b"\x03");
    let status = app.wait_exit(EXIT);
    assert!(status.success(), "ctrl-c quits: {status:?}");
    assert!(
        cooked(app.local_modes()),
        "the terminal is back in cooked mode"
    );
    let problems = app.restore_problems();
    assert!(problems.is_empty(), "{}", problems.join("; "));
    assert!(app.demo_dirs().is_empty(), "the demo data is removed");
    let log = std::fs::read_to_string(app.log_file()).unwrap_or_default();
    assert!(
        !log.contains(&text[..20]),
        "the log holds nothing that was typed into the search box:\n{log}"
    );
}

#[test]
fn a_large_bracketed_paste_is_applied_at_once() {
    let app = PtyApp::demo(&[], &[]);
    app.wait_patients();
    focus_search(&app);
    let text = paste_text(10_000);
    app.send(&bracketed(&text));
    // No other key: the paste alone must show.
    wait_applied(&app, &text);
    wait_input_read(&app);
    quit_and_check(app, &text);
}

/// A key and a paste that reach the app in one read (a fast hand, or an SSH
/// link that sends them in one packet): the key must not hold back the
/// paste behind it until yet another key comes.
#[test]
fn a_paste_that_arrives_with_a_key_is_applied_at_once() {
    let app = PtyApp::demo(&[], &[]);
    app.wait_patients();
    let text = paste_text(3_000);
    let mut bytes = b"/".to_vec();
    bytes.extend_from_slice(&bracketed(&text));
    app.send(&bytes);
    wait_applied(&app, &text);
    wait_input_read(&app);
    quit_and_check(app, &text);
}

/// A terminal (or tmux, screen) that does not frame pastes sends them as
/// typed keys: a few KB of them must all be read, not stall part-way until
/// the next key.
#[test]
fn a_paste_without_framing_is_read_to_the_end() {
    let app = PtyApp::demo(&[], &[]);
    app.wait_patients();
    focus_search(&app);
    let text = paste_text(4_000);
    app.send(text.as_bytes());
    wait_applied(&app, &text);
    wait_input_read(&app);
    quit_and_check(app, &text);
}
