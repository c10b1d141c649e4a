//! The drafts key in the OS credential store, on a Linux machine without a
//! desktop session (no D-Bus): the Secret Service is passed over with its
//! reason, the kernel keyring keeps the key, and a new login — a new session
//! keyring, as after a dropped SSH link — still finds it through the user's
//! persistent keyring. Where no store works, drafts stay in memory and the
//! store says why.
//!
//! Each "login" is a child process (this test binary run again) that joins a
//! new anonymous session keyring before it opens the store. The key is made
//! under a service name of this run and forgotten at the end.

use std::ffi::OsStr;
use std::path::Path;

mod new_login;
use new_login::get;

use chartty::drafts::{Draft, DraftKey, DraftStore, KeySource, KeyringKeys, Protection, Store};

const ACCOUNT: &str = "drafts-key-test";
const SERVER: &str = "https://fhir.example.org/r4";
const TEXT: &str = "S: dizziness on standing\nO: BP 96/60 sitting, 82/50 standing\n";

fn draft() -> Draft {
    Draft {
        key: DraftKey {
            user: "dr.keyring".into(),
            server: SERVER.into(),
            patient_id: "pat-kr-1".into(),
            client_id: "note-1".into(),
        },
        text: TEXT.into(),
        template: "progress-soap".into(),
        title: "Progress note".into(),
        patient_label: "Nguyễn, Thị Lan · MRN 00100001".into(),
        saved_at: "2026-11-28T10:15:30Z".parse().unwrap(),
        server_id: None,
        server_version: None,
        relates_to: None,
        loinc: "11506-3".into(),
        loinc_display: "Progress note".into(),
    }
}

/// Forgets the test key however the test ends.
struct Forget(String);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = KeyringKeys::named(&self.0, ACCOUNT)
            .only(&[Store::KernelKeyring])
            .forget();
    }
}

/// Runs this binary's `child` test as `mode` (a new login, without a
/// D-Bus session); its `KEY value` lines.
fn run_child(mode: &str, service: &str, dir: &Path) -> Vec<(String, String)> {
    new_login::run(
        mode,
        &[
            ("CHARTTY_DRAFTS_TEST_CHILD", OsStr::new(mode)),
            ("CHARTTY_DRAFTS_SERVICE", OsStr::new(service)),
            ("CHARTTY_DRAFTS_DIR", dir.as_os_str()),
        ],
    )
}

#[test]
fn the_kernel_keyring_keeps_the_key_across_a_new_login() {
    let service = format!(
        "chartty-test-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let _forget = Forget(service.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");

    // Login 1: both stores asked, Secret Service first; there is no D-Bus
    // session, so the kernel keyring holds the key.
    let first = run_child("write", &service, &dir);
    let protection = get(&first, "PROTECTION").unwrap();
    if let Some(why) = protection.strip_prefix("memory-only ") {
        // A sandbox that forbids keyctl(2): the fallback must be chosen and
        // say why, naming both stores.
        assert!(why.contains("Secret Service: no D-Bus session"), "{why}");
        assert!(why.contains("kernel keyring"), "{why}");
        eprintln!(
            "NOTE: the kernel keyring is not reachable here; drafts fell back to memory: {why}"
        );
        return;
    }
    assert_eq!(
        protection, "keyring kernel keyring (persistent)",
        "{first:?}"
    );
    assert_eq!(get(&first, "SAVED"), Some("ok"));

    // Login 2: a new session keyring (login 1's is gone with its process);
    // the key is found through the persistent keyring and the draft opens.
    let second = run_child("read", &service, &dir);
    assert_ne!(
        get(&first, "SESSION"),
        get(&second, "SESSION"),
        "not a new session keyring"
    );
    assert_eq!(
        get(&second, "PROTECTION"),
        Some("keyring kernel keyring (persistent)")
    );
    assert_eq!(get(&second, "RECOVERED"), Some("1"), "{second:?}");
    assert_eq!(get(&second, "SAME"), Some("yes"));

    // The key really is the keyring's: once forgotten, a new login gets a
    // new key and the draft cannot be opened (it is not deleted either).
    // Forgotten from a login of its own, as the user would: the parent
    // process's session keyring is not linked to the persistent one.
    let forgot = run_child("forget", &service, &dir);
    assert_eq!(get(&forgot, "FORGOT"), Some("ok"), "{forgot:?}");
    let third = run_child("read", &service, &dir);
    assert_eq!(get(&third, "RECOVERED"), Some("0"), "{third:?}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

struct Broken;

impl KeySource for Broken {
    fn key(&self) -> Result<[u8; 32], String> {
        Err("the credential store refused: permission denied".into())
    }
    fn describe(&self) -> String {
        "a broken store".into()
    }
}

#[test]
fn with_no_store_drafts_stay_in_memory_and_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");

    // An injected source that fails.
    let s = DraftStore::open_with(&dir, Box::new(Broken));
    let Protection::MemoryOnly { why } = s.protection() else {
        panic!("{:?}", s.protection())
    };
    assert!(why.contains("permission denied"), "{why}");
    s.save(&draft()).unwrap();
    assert_eq!(s.drafts_of("dr.keyring", SERVER), vec![draft()]);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

    // The real source with no store to ask.
    let s = DraftStore::open_with(
        &dir,
        Box::new(KeyringKeys::named("chartty-test-none", ACCOUNT).only(&[])),
    );
    let Protection::MemoryOnly { why } = s.protection() else {
        panic!("{:?}", s.protection())
    };
    assert!(why.contains("no credential store"), "{why}");

    // The Secret Service alone, without a D-Bus session: passed over, with
    // the reason (in a child, whose environment has no session bus).
    let lines = run_child("ss-only", "chartty-test-ss", &dir);
    let p = get(&lines, "PROTECTION").unwrap();
    assert!(p.starts_with("memory-only "), "{p}");
    assert!(p.contains("Secret Service: no D-Bus session"), "{p}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// One "login": joins a new session keyring, opens the store, does `mode`,
/// prints `@@ KEY value` lines.
#[test]
#[ignore = "child process of the tests above"]
fn child() {
    let Ok(mode) = std::env::var("CHARTTY_DRAFTS_TEST_CHILD") else {
        return;
    };
    let service = std::env::var("CHARTTY_DRAFTS_SERVICE").unwrap();
    let dir = std::path::PathBuf::from(std::env::var_os("CHARTTY_DRAFTS_DIR").unwrap());
    new_login::join_new_session();
    let keys = KeyringKeys::named(&service, ACCOUNT);
    if mode == "forget" {
        match keys.only(&[Store::KernelKeyring]).forget() {
            Ok(()) => println!("@@ FORGOT ok"),
            Err(e) => println!("@@ FORGOT {e}"),
        }
        return;
    }
    let keys = if mode == "ss-only" {
        keys.only(&[Store::SecretService])
    } else {
        keys
    };
    let store = DraftStore::open_with(&dir, Box::new(keys));
    match store.protection() {
        Protection::Keyring { store } => println!("@@ PROTECTION keyring {store}"),
        Protection::MemoryOnly { why } => println!("@@ PROTECTION memory-only {why}"),
    }
    match mode.as_str() {
        "write" => {
            store.save(&draft()).unwrap();
            println!("@@ SAVED ok");
        }
        "read" => {
            let got = store.drafts_of("dr.keyring", SERVER);
            println!("@@ RECOVERED {}", got.len());
            println!(
                "@@ SAME {}",
                if got == vec![draft()] { "yes" } else { "no" }
            );
        }
        _ => {}
    }
}
