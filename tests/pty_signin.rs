//! A whole session on a real terminal, signed in the SMART way against the
//! portal server: `chartty` with no token prints the sign-in address, the
//! person signs in in a browser and pastes back the address it ended on
//! (no port forward), opens a chart, writes a note, locks the screen,
//! unlocks it with a device code approved elsewhere, and quits. Afterwards
//! no file under the session's HOME and TMPDIR holds the patient's name or
//! MRN, the typed words, the password, the refresh token kept in the
//! credential store, or any token the server would accept. `chartty
//! logout` then revokes the sign-in and forgets it.

mod browser;
mod pty_support;

use std::time::Duration;

use chartty::api::signin::kept::KeptSignIns;
use chartty::roles::Role;
use pty_support::portal::*;
use pty_support::*;
use rustix::process::Signal;

const TYPED: &str = "Saffron ibis orthostasis";

/// The sign-in address chartty printed.
fn printed_address(app: &PtyApp) -> String {
    app.wait_output("the sign-in address", START, b"/auth/authorize?");
    let out = app.output();
    let at = find(&out, b"/auth/authorize?").unwrap();
    let start = rfind(&out[..at], b"http://").unwrap();
    let end = out[start..]
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .map_or(out.len(), |n| start + n);
    String::from_utf8_lossy(&out[start..end]).into_owned()
}

/// Bearer-looking words (64 hex digits: the portal's tokens) in `bytes`.
fn hex_words(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            if run.len() >= 64 {
                out.push(run[..64].to_string());
            }
            run.clear();
        }
    }
    out
}

#[test]
fn a_signed_in_session_leaves_no_secret_and_no_patient_data_in_any_file() {
    let s = server_with(chartty::server::Options {
        device_interval: Duration::from_secs(1),
        ..chartty::server::Options::default()
    });
    let p = a_patient(&s);
    let me = s.user(Role::Attending).clone();
    let base = s.server.base_url.clone();
    let root = new_root();
    let rt = &s.runtime;

    // No token: chartty signs in before the TUI starts.
    let mut app = PtyApp::spawn_in(
        &root,
        &["--server", base.as_str()],
        &[("CHARTTY_LOGIN_PORT", "0")],
        SIZE,
    );
    let url = printed_address(&app);
    let location = rt.block_on(browser::sign_in(&url, &me.login, &me.password));
    app.send(format!("{location}\r").as_bytes());
    app.wait_patients();
    let kept_first = KeptSignIns::os().load(&base).ok().flatten();

    open_chart(&app, &p);
    write_note(&app, TYPED);
    app.wait_screen("the draft saved", REACT, |s| s.contains(" · saved "));

    app.send(b"\x0c");
    // Once the note is saved and the tokens are gone, unlocking is offered.
    app.wait_screen("locked", REACT, |s| {
        s.contains("d  sign in on another device")
    });
    app.send(b"d");
    let shown = app.wait_screen("the code", REACT, |s| s.contains("enter the code"));
    let code = shown
        .line_with("enter the code")
        .and_then(|l| {
            l.split("enter the code")
                .nth(1)
                .map(|c| c.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap();
    let verify = shown
        .line_with("Open  ")
        .and_then(|l| {
            l.split("Open  ")
                .nth(1)
                .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
        })
        .unwrap();
    rt.block_on(browser::device(
        &verify,
        &code,
        &me.login,
        &me.password,
        true,
    ));
    app.wait_screen("unlocked, the chart back", REACT, |scr| {
        scr.contains(&p.family.to_uppercase()) && !scr.contains("Locked.")
    });
    app.signal(Signal::TERM);
    app.wait_exit(EXIT);
    drop(app);
    // Unlocking signed in anew: the store holds the new sign-in.
    let kept = KeptSignIns::os().load(&base).ok().flatten();

    // Nothing secret, nothing of the patient, in any file.
    let mut needles = vec![
        p.family.clone(),
        p.given.clone(),
        p.mrn.clone(),
        TYPED.to_string(),
        me.password.clone(),
        code.clone(),
    ];
    match (&kept_first, &kept) {
        (Some((first, _)), Some((last, _))) => {
            assert_ne!(
                first.refresh_token, last.refresh_token,
                "replaced at unlock"
            );
            needles.push(first.refresh_token.clone());
            needles.push(last.refresh_token.clone());
        }
        _ => eprintln!("NOTE: no credential store here; the sign-in was kept in memory only"),
    }
    let refs: Vec<&str> = needles.iter().map(String::as_str).collect();
    let found = files_holding(root.path(), &refs);
    assert!(
        found.is_empty(),
        "secrets or patient data on disk: {found:?}"
    );
    let mut files = Vec::new();
    files_under(root.path(), &mut files);
    assert!(
        !files.is_empty(),
        "the session wrote files (the log at least)"
    );
    let mut words = Vec::new();
    for f in &files {
        words.extend(hex_words(&std::fs::read(f).unwrap_or_default()));
    }
    for w in &words {
        let status = rt.block_on(async {
            reqwest::Client::new()
                .get(format!("{base}/$whoami"))
                .bearer_auth(w)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 401, "a working token in a file");
    }

    // Logging out revokes the kept sign-in and forgets it; the one kept
    // before the lock was revoked when the unlock replaced it.
    if let (Some((first, _)), Some((last, _))) = (kept_first, kept) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chartty"))
            .args(["logout", "--server", base.as_str()])
            .env("HOME", root.path().join("home"))
            .env("XDG_CONFIG_HOME", root.path().join("config"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("the server revoked the sign-in"), "{said}");
        assert!(KeptSignIns::os().load(&base).unwrap().is_none());
        for refresh in [first.refresh_token, last.refresh_token] {
            let refused = rt.block_on(async {
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs([
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", "chartty"),
                    ])
                    .finish();
                reqwest::Client::new()
                    .post(format!("{}/auth/token", base.trim_end_matches("/fhir")))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            assert_eq!(refused, 400, "a revoked refresh token no longer works");
        }
    }
}

/// `chartty login` as a command: its standard error, read as it comes.
struct Login {
    child: std::process::Child,
    said: std::sync::mpsc::Receiver<String>,
    all: String,
    home: tempfile::TempDir,
}

impl Login {
    fn start(base: &str, args: &[&str]) -> Login {
        use std::io::BufRead as _;
        let home = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chartty"))
            .arg("login")
            .args(["--server", base])
            .args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, said) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Login {
            child,
            said,
            all: String::new(),
            home,
        }
    }

    /// Reads until a line holds `needle`; that line.
    fn line_with(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .said
                .recv_timeout(START)
                .unwrap_or_else(|_| panic!("no line with {needle:?} in:\n{}", self.all));
            self.all.push_str(&line);
            self.all.push('\n');
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the end; all it said.
    fn finish(&mut self) -> String {
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.said.recv_timeout(Duration::from_secs(2)) {
            self.all.push_str(&line);
            self.all.push('\n');
        }
        assert!(status.success(), "{status:?}\n{}", self.all);
        self.all.clone()
    }

    /// No file under its HOME holds `secret`.
    fn wrote_no(&self, secret: &str) {
        let found = files_holding(self.home.path(), &[secret]);
        assert!(found.is_empty(), "files written by login: {found:?}");
    }
}

fn logout(base: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args(["logout", "--server", base])
        .env("HOME", home.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn chartty_login_takes_the_browsers_redirect_on_the_loopback_port_or_a_device_code() {
    let s = server_with(chartty::server::Options {
        device_interval: Duration::from_secs(1),
        ..chartty::server::Options::default()
    });
    let nurse = s.user(Role::Nurse).clone();
    let base = s.server.base_url.clone();
    let rt = &s.runtime;

    // The browser on this machine (or through `ssh -L`): it follows the
    // redirect to chartty's listener.
    let mut login = Login::start(&base, &["--port", "0"]);
    let line = login.line_with("/auth/authorize?");
    let url = line.trim().to_string();
    login.line_with("ssh -L");
    let location = rt.block_on(browser::sign_in(&url, &nurse.login, &nurse.password));
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let page = rt.block_on(browser::follow(&location));
    assert!(page.contains("return to your terminal"), "{page}");
    let said = login.finish();
    assert!(
        said.contains(&format!("Signed in as {}", nurse.name)),
        "{said}"
    );
    let kept = KeptSignIns::os().load(&base).ok().flatten();
    match &kept {
        Some((k, _)) => {
            assert!(said.contains("kept in the kernel keyring"), "{said}");
            login.wrote_no(&k.refresh_token);
        }
        None => assert!(said.contains("memory only"), "{said}"),
    }

    // A device code, approved on "a phone".
    let mut login = Login::start(&base, &["--device"]);
    let verify = login.line_with("/auth/device/verify").trim().to_string();
    let code_line = login.line_with("enter the code");
    let code = code_line.split_whitespace().last().unwrap().to_string();
    rt.block_on(browser::device(
        &verify,
        &code,
        &nurse.login,
        &nurse.password,
        true,
    ));
    let said = login.finish();
    assert!(
        said.contains(&format!("Signed in as {}", nurse.name)),
        "{said}"
    );

    if kept.is_some() {
        let said = logout(&base);
        assert!(said.contains("the server revoked the sign-in"), "{said}");
        assert!(
            logout(&base).contains("No sign-in"),
            "nothing kept any more"
        );
    }
}
