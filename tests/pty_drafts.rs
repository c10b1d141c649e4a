//! A draft survives SIGKILL: chartty on a real 120x40 pseudo-terminal,
//! against a portal server of the test's own, types a note, is killed
//! without warning, starts again and offers the draft back. Afterwards no
//! file under the session's HOME and TMPDIR holds the patient's name, MRN
//! or the typed words in plain form.

mod pty_support;

use std::time::{Duration, Instant};

use pty_support::portal::*;
use pty_support::*;
use rustix::process::Signal;
/// Words no demo record holds, so finding them anywhere means the draft.
const TYPED: &str = "Quixotic zebra syncope since Tuesday";

/// The server holds a draft with the typed words.
fn wait_server_draft(s: &Server, p: &Patient) {
    let deadline = Instant::now() + REACT;
    loop {
        let b = s.get(&format!(
            "DocumentReference?patient={}&doc-status=preliminary",
            p.id
        ));
        let found = b["entry"].as_array().into_iter().flatten().any(|e| {
            use base64::Engine as _;
            let data = e["resource"]["content"][0]["attachment"]["data"]
                .as_str()
                .unwrap_or("");
            let text = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default();
            String::from_utf8_lossy(&text).contains(TYPED)
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the draft never reached the server"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_draft_typed_before_sigkill_is_offered_back_and_nothing_is_on_disk_in_plain() {
    let s = server();
    let p = a_patient(&s);

    let root = new_root();
    let mut app = spawn(&s, &root, &[]);
    app.wait_patients();
    open_chart(&app, &p);
    write_note(&app, TYPED);
    // Two quiet seconds later it is saved, here and on the server.
    app.wait_screen("the draft saved", REACT, |s| s.contains(" · saved "));
    wait_server_draft(&s, &p);
    app.signal(Signal::KILL);
    app.wait_exit(EXIT);
    drop(app);

    // The next start offers it back when the chart opens: the local copy
    // where a credential store keeps the key, else the server's.
    let mut kept = Vec::new();
    files_under(&root.path().join("data"), &mut kept);
    let kept_here = kept
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "draft"));
    let mut app = spawn(&s, &root, &[]);
    app.wait_patients();
    if kept_here {
        // The copy on this machine is what comes back, said at start.
        app.wait_screen("the kept draft announced", REACT, |s| {
            s.contains("unsigned draft(s) kept from before")
        });
    }
    open_chart(&app, &p);
    app.wait_screen("the draft offered back", REACT, |s| {
        s.contains("is back in the editor")
    });
    app.send(b"6");
    app.wait_screen("the draft in the editor, as typed", REACT, |s| {
        s.contains(TYPED) && s.contains("SUBJECTIVE")
    });
    // It reopened on the first field left, the assessment list: Esc closes
    // the list, a second Esc leaves the editor; then quit.
    app.send(b"\x1b");
    std::thread::sleep(Duration::from_millis(300));
    app.send(b"\x1b");
    app.wait_screen("the notes pane", REACT, |s| s.contains("┏ 4 Notes"));
    // Nothing is unsaved (leaving the editor saved it): q quits at once.
    app.send(b"q");
    let status = app.wait_exit(EXIT);
    assert!(status.success(), "{status:?}");
    drop(app);

    // Nothing in plain under HOME, TMPDIR and the XDG folders.
    let mut files = Vec::new();
    files_under(root.path(), &mut files);
    let needles = [
        p.family.as_str(),
        p.given.as_str(),
        p.mrn.as_str(),
        TYPED,
        "Quixotic",
    ];
    let found = files_holding(root.path(), &needles);
    assert!(found.is_empty(), "plain patient data on disk: {found:?}");
    // The session did write files (the log at least): the scan saw them.
    assert!(!files.is_empty(), "no files written at all?");
    let drafts: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "draft"))
        .collect();
    eprintln!(
        "{} files scanned; {} encrypted draft file(s) (none: no credential store here, the server's copy was offered)",
        files.len(),
        drafts.len()
    );
}
