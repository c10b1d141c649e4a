//! The demo clinic's hostile patient (escape sequences in the name, a
//! clipboard write and a C1 CSI in a message, a right-to-left override in
//! an allergy, a zero-width joiner) shown by the real binary on a real
//! pseudo-terminal, as a nurse finds and reads it: not one hostile byte
//! reaches the terminal, and every hostile character is shown as a marker
//! (the text is neutralised, not silently deleted).
//!
//! What the TUI may write, parsed escape by escape over the whole output:
//! printable text (UTF-8, no C1, no bidi or invisible format characters),
//! CR and LF, and these escapes only:
//! - `ESC [` CSI with decimal parameters: `m` (colours, attributes), `H`
//!   (cursor position), `A` `B` `C` `D` `G` (cursor moves), `J` `K`
//!   (erase);
//! - `ESC [ ?` private modes 25 (cursor), 1049 (alternate screen) and 2004
//!   (bracketed paste), set `h` or reset `l`;
//! - `ESC 7` / `ESC 8` (save and restore the cursor).
//!
//! No OSC (`ESC ]`: window title, hyperlinks, clipboard), DCS, APC, PM, SOS,
//! no reset, no other CSI (window operations, reports).

mod pty_support;

use chartty::fhir::sanitize::needs_replacing;
use chartty::server::demo::HOSTILE_PATIENT_SEARCH;
use pty_support::*;

/// Markers the sanitiser puts where the hostile characters were.
const NAME_MARKERS: [&str; 2] = ["Zzyzx␛[2J␛]0;pwned␇", "Mal⟨U+200D⟩lory"];
const ALLERGY_MARKER: &str = "Amoxicillin ⟨U+202E⟩enon";
const TASK_MARKER: &str = "⟨U+009B⟩2J␛]52;c;ZWNobyBwd25lZA==␇";

/// The hostile strings as the server holds them: none may reach the terminal.
const RAW: [&[u8]; 5] = [
    b"Zzyzx\x1b[2J",
    b"\x1b]0;pwned",
    b"\x1b]52;",
    "Mal\u{200d}lory".as_bytes(),
    "\u{202e}enon".as_bytes(),
];

/// Why the escape at the start of `rest` (an ESC) is not one the TUI may
/// write, and how many bytes it spans.
fn check_escape(rest: &[u8]) -> (usize, Result<(), String>) {
    let shown = |n: usize| String::from_utf8_lossy(&rest[..n.min(rest.len())]).into_owned();
    match rest.get(1) {
        Some(b'[') => {
            let body = &rest[2..];
            let Some(end) = body.iter().position(|b| (0x40..=0x7e).contains(b)) else {
                return (rest.len(), Err(format!("unterminated CSI {:?}", shown(24))));
            };
            let (params, fin) = (&body[..end], body[end]);
            let len = 2 + end + 1;
            let verdict = match params.first() {
                Some(b'?') => {
                    let modes = &params[1..];
                    let known = std::str::from_utf8(modes)
                        .ok()
                        .is_some_and(|m| matches!(m, "25" | "1049" | "2004"));
                    if known && matches!(fin, b'h' | b'l') {
                        Ok(())
                    } else {
                        Err(format!("private mode {:?}", shown(len)))
                    }
                }
                _ => {
                    let numeric = params.iter().all(|b| b.is_ascii_digit() || *b == b';');
                    let allowed = matches!(
                        fin,
                        b'm' | b'H' | b'A' | b'B' | b'C' | b'D' | b'G' | b'J' | b'K' | b'X'
                    );
                    if numeric && allowed {
                        Ok(())
                    } else {
                        Err(format!("CSI {:?}", shown(len)))
                    }
                }
            };
            (len, verdict)
        }
        Some(b'7' | b'8') => (2, Ok(())),
        _ => (2, Err(format!("escape {:?}", shown(8)))),
    }
}

/// Every way the output could let a hostile character through.
fn problems(out: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for raw in RAW {
        if find(out, raw).is_some() {
            found.push(format!(
                "raw {:?} in the output",
                String::from_utf8_lossy(raw)
            ));
        }
    }
    if find(out, b"\x1b]").is_some() {
        found.push("an OSC sequence (ESC ])".into());
    }
    let text = match std::str::from_utf8(out) {
        Ok(t) => t,
        Err(e) => {
            found.push(format!("not UTF-8 at byte {}", e.valid_up_to()));
            return found;
        }
    };
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            let (len, verdict) = check_escape(&bytes[i..]);
            if let Err(why) = verdict {
                found.push(format!("at byte {i}: {why}"));
            }
            i += len;
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        let allowed_control = matches!(c, '\r' | '\n');
        if !allowed_control && needs_replacing(c) {
            found.push(format!("at byte {i}: {:?} (U+{:04X})", c, c as u32));
        }
        i += c.len_utf8();
    }
    found
}

/// Search the hostile patient, open the chart, open the nurse's queue and
/// the raw view of the hostile task; then quit. Returns the whole output.
fn read_hostile_patient(size: (u16, u16)) -> Vec<u8> {
    let root = new_root();
    let mut app = PtyApp::spawn_in(
        &root,
        &[
            "demo",
            "--patients",
            "20",
            "--role",
            "nurse",
            "--pane",
            "search",
        ],
        &[],
        size,
    );
    app.wait_patients();
    app.send(b"/");
    app.wait_screen("the search box taking text", REACT, |s| {
        s.contains("Find: \u{258f}")
    });
    app.send(HOSTILE_PATIENT_SEARCH.as_bytes());
    app.wait_screen("the hostile patient listed", REACT, |s| {
        NAME_MARKERS.iter().all(|m| s.contains(m)) && s.contains("900000001")
    });

    app.send(b"\r");
    app.wait_screen("the chart with its allergy banner", REACT, |s| {
        s.contains(&format!("ALLERGIES: {ALLERGY_MARKER}")) && s.contains("MRN 900000001")
    });

    app.send(b"5");
    let screen = app.wait_screen("the nurse's queue", REACT, |s| {
        s.contains("5 Tasks") && s.lines().iter().any(|l| l.contains("Zzyzx␛[2J"))
    });
    // Down to the hostile patient's task and its raw record, which shows
    // the whole summary however narrow the queue's column is.
    let lines = screen.lines();
    let header = lines
        .iter()
        .position(|l| l.contains("Pri") && l.contains("Due"));
    let row = lines.iter().position(|l| l.contains("Zzyzx␛[2J"));
    let (Some(header), Some(row)) = (header, row) else {
        panic!(
            "the queue's header and the hostile row; the screen:\n{}",
            screen.text()
        );
    };
    for _ in 0..row - header - 1 {
        app.send(b"j");
    }
    app.send(b"v");
    app.wait_screen("the raw view of the hostile task", REACT, |s| {
        s.contains("Task p-hostile-task-1") && s.contains(TASK_MARKER)
    });
    app.send(b"\x1b");
    app.wait_screen("the raw view closed", REACT, |s| !s.contains("Raw FHIR"));
    app.send(b"q");
    let status = app.wait_exit(EXIT);
    assert!(status.success(), "q quits: {status:?}");
    let problems = app.restore_problems();
    assert!(problems.is_empty(), "{}", problems.join("; "));
    app.output()
}

fn check_size(size: (u16, u16)) {
    let out = read_hostile_patient(size);
    let found = problems(&out);
    assert!(
        found.is_empty(),
        "at {}x{}, hostile bytes reached the terminal:\n{}",
        size.0,
        size.1,
        found.join("\n")
    );
}

#[test]
fn no_hostile_byte_reaches_a_120x40_terminal() {
    check_size((120, 40));
}

#[test]
fn no_hostile_byte_reaches_an_80x24_terminal() {
    check_size((80, 24));
}

/// The checks above catch what they are meant to catch.
#[test]
fn the_output_check_finds_each_kind_of_hostile_byte() {
    let clean = "\x1b[?1049h\x1b[1;1H\x1b[38;5;12mZzyzx␛[2J\x1b[0m\r\n\x1b7\x1b8\x1b[2K\x1b[?25l";
    assert_eq!(problems(clean.as_bytes()), Vec::<String>::new());
    for bad in [
        "\x1b]0;title\x07",
        "\x1b]52;c;ZXZpbA==\x07",
        "\x1b]8;;http://x\x1b\\",
        "a\u{9b}2J",
        "a\u{202e}b",
        "a\u{2067}b",
        "a\u{200d}b",
        "a\u{200b}b",
        "a\u{61c}b",
        "a\u{2028}b",
        "a\u{200f}b",
        "\x07",
        "\x1bc",
        "\x1bP1$r\x1b\\",
        "\x1b[8;1;1t",
        "\x1b[6n",
        "\x1b[?1000h",
    ] {
        assert!(!problems(bad.as_bytes()).is_empty(), "{bad:?} passed");
    }
    assert!(!problems(b"\xc2").is_empty(), "broken UTF-8 passed");
}
