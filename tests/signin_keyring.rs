//! A sign-in kept in the OS credential store, on a Linux machine without a
//! desktop session (no D-Bus): the kernel keyring keeps it, a new login (a
//! new session keyring, as after a dropped SSH link) finds it through the
//! user's persistent keyring, and forgetting it removes it. Where no store
//! works, nothing is kept and the caller hears why. No plain file is ever
//! written.
//!
//! Each "login" is a child process (this test binary run again) that joins
//! a new anonymous session keyring first. Everything is kept under a
//! service name of this run and forgotten at the end.

use std::ffi::OsStr;

mod new_login;
use new_login::get;

use chartty::api::signin::Identity;
use chartty::api::signin::kept::{Kept, KeptSignIns};
use chartty::keystore::{Secrets, Store};

const BASE: &str = "https://fhir.example.org/r4";
const REFRESH: &str = "refresh-4f1c9a-not-a-real-token";

fn kept() -> Kept {
    Kept::new(
        REFRESH.into(),
        Some(&Identity {
            issuer: "https://fhir.example.org".into(),
            subject: "rosa".into(),
            name: Some("Rosa Delgado, RN".into()),
            fhir_user: Some("https://fhir.example.org/r4/Practitioner/pr-1".into()),
        }),
    )
}

struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = run_child("forget", &self.0);
    }
}

/// Runs this binary's `child` test as `mode` (a new login, without a
/// D-Bus session, with a HOME of its own); its `KEY value` lines.
fn run_child(mode: &str, service: &str) -> Vec<(String, String)> {
    let home = tempfile::tempdir().unwrap();
    let lines = new_login::run(
        mode,
        &[
            ("CHARTTY_SIGNIN_TEST_CHILD", OsStr::new(mode)),
            ("CHARTTY_SIGNIN_SERVICE", OsStr::new(service)),
            ("HOME", home.path().as_os_str()),
        ],
    );
    // Nothing in the home directory: the store is the keyring, not a file.
    let files = walk(home.path());
    assert!(files.is_empty(), "files written by {mode}: {files:?}");
    lines
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_kernel_keyring_keeps_a_sign_in_across_a_new_login() {
    let service = format!(
        "chartty-signin-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let _forget = Forget(service.clone());

    let first = run_child("write", &service);
    let kept_in = get(&first, "KEPT").unwrap();
    if let Some(why) = kept_in.strip_prefix("error ") {
        // A sandbox that forbids keyctl(2): nothing is kept, and the
        // reason names both stores.
        assert!(why.contains("Secret Service: no D-Bus session"), "{why}");
        assert!(why.contains("kernel keyring"), "{why}");
        eprintln!("NOTE: the kernel keyring is not reachable here: {why}");
        return;
    }
    assert_eq!(kept_in, "kernel keyring (persistent)", "{first:?}");

    let second = run_child("read", &service);
    assert_ne!(
        get(&first, "SESSION"),
        get(&second, "SESSION"),
        "a new session keyring"
    );
    assert_eq!(get(&second, "FOUND"), Some("same"), "{second:?}");
    assert_eq!(get(&second, "FROM"), Some("kernel keyring (persistent)"));

    // A rotated refresh token replaces the old one.
    let third = run_child("rotate", &service);
    assert_eq!(get(&third, "ROTATED"), Some("ok"), "{third:?}");
    let fourth = run_child("read", &service);
    assert_eq!(get(&fourth, "FOUND"), Some("rotated"), "{fourth:?}");

    // Logging out forgets it for every later login.
    let forgot = run_child("forget", &service);
    assert_eq!(get(&forgot, "FORGOT"), Some("ok"));
    let fifth = run_child("read", &service);
    assert_eq!(get(&fifth, "FOUND"), Some("none"), "{fifth:?}");
}

#[test]
fn with_no_store_nothing_is_kept_and_the_reason_is_given() {
    let none = KeptSignIns::with(Secrets::only("chartty-signin-test-none", &[]));
    let why = none.keep(BASE, &kept()).unwrap_err();
    assert!(why.contains("no credential store"), "{why}");
    assert!(none.load(BASE).is_err());

    // The Secret Service alone, without a D-Bus session: passed over, with
    // the reason (in a child, whose environment has no session bus).
    let lines = run_child("ss-only", "chartty-signin-test-ss");
    let got = get(&lines, "KEPT").unwrap();
    assert!(got.starts_with("error "), "{got}");
    assert!(got.contains("no D-Bus session"), "{got}");
}

/// One "login": joins a new session keyring, then does `mode`, printing
/// `@@ KEY value` lines.
#[test]
#[ignore = "child process of the tests above"]
fn child() {
    let Ok(mode) = std::env::var("CHARTTY_SIGNIN_TEST_CHILD") else {
        return;
    };
    let service = std::env::var("CHARTTY_SIGNIN_SERVICE").unwrap();
    new_login::join_new_session();
    let store = if mode == "ss-only" {
        KeptSignIns::with(Secrets::only(&service, &[Store::SecretService]))
    } else {
        KeptSignIns::with(Secrets::new(&service))
    };
    match mode.as_str() {
        "write" | "ss-only" => match store.keep(BASE, &kept()) {
            Ok(place) => println!("@@ KEPT {place}"),
            Err(e) => println!("@@ KEPT error {e}"),
        },
        "rotate" => {
            let mut k = kept();
            k.refresh_token = format!("{REFRESH}-rotated");
            match store.keep(BASE, &k) {
                Ok(_) => println!("@@ ROTATED ok"),
                Err(e) => println!("@@ ROTATED {e}"),
            }
        }
        "read" => match store.load(BASE) {
            Ok(Some((k, from))) => {
                let what = if k.refresh_token == REFRESH && k.identity() == kept().identity() {
                    "same"
                } else if k.refresh_token.ends_with("-rotated") {
                    "rotated"
                } else {
                    "other"
                };
                println!("@@ FOUND {what}");
                println!("@@ FROM {from}");
            }
            Ok(None) => println!("@@ FOUND none"),
            Err(e) => println!("@@ FOUND error {e}"),
        },
        "forget" => match store.forget(BASE) {
            Ok(()) => println!("@@ FORGOT ok"),
            Err(e) => println!("@@ FORGOT {e}"),
        },
        _ => {}
    }
}
