//! The local draft store: drafts come back exactly as saved, only to their
//! user on their server; files are private, sealed and opaque; damaged or
//! foreign files are skipped; with no key, drafts stay in memory.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chartty::drafts::{Draft, DraftKey, DraftStore, KeySource, Protection, default_dir};

struct FixedKey([u8; 32], Vec<[u8; 32]>);

impl KeySource for FixedKey {
    fn key(&self) -> Result<[u8; 32], String> {
        Ok(self.0)
    }
    fn describe(&self) -> String {
        "test key".into()
    }
    fn other_keys(&self) -> Vec<[u8; 32]> {
        self.1.clone()
    }
}

struct NoKey;

impl KeySource for NoKey {
    fn key(&self) -> Result<[u8; 32], String> {
        Err("no credential store in this test".into())
    }
    fn describe(&self) -> String {
        "nothing".into()
    }
}

fn store(dir: &Path, key: u8) -> DraftStore {
    DraftStore::open_with(dir, Box::new(FixedKey([key; 32], Vec::new())))
}

const SERVER: &str = "https://fhir.example.org/r4";
const LABEL: &str = "Nguyễn, Thị Lan · MRN 00100001";

fn draft(user: &str, server: &str, patient: &str, client: &str, text: &str) -> Draft {
    Draft {
        key: DraftKey {
            user: user.into(),
            server: server.into(),
            patient_id: patient.into(),
            client_id: client.into(),
        },
        text: text.into(),
        template: "progress-soap".into(),
        title: "Progress note".into(),
        patient_label: LABEL.into(),
        saved_at: "2026-11-28T10:15:30.123456789Z".parse().unwrap(),
        server_id: Some("doc-77".into()),
        server_version: Some("W/\"3\"".into()),
        relates_to: Some("DocumentReference/signed-1".into()),
        loinc: "11506-3".into(),
        loinc_display: "Progress note".into(),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sorted(mut v: Vec<Draft>) -> Vec<Draft> {
    v.sort_by(|a, b| {
        a.key
            .patient_id
            .cmp(&b.key.patient_id)
            .then(a.key.client_id.cmp(&b.key.client_id))
    });
    v
}

#[test]
fn drafts_come_back_exactly_and_only_to_their_user_and_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    let s = store(&dir, 1);
    assert_eq!(
        s.protection(),
        &Protection::Keyring {
            store: "test key".into()
        }
    );
    let mut mine = vec![
        draft(
            "alice",
            SERVER,
            "pat-1",
            "note-a",
            "S: cough ×3 days\u{202e}\n\tO: T 38.2 °C\r\n",
        ),
        draft("alice", SERVER, "pat-1", "note-b", ""),
        draft("alice", SERVER, "pat-2", "note-c", &"x".repeat(100_000)),
    ];
    mine[1].server_id = None;
    mine[1].server_version = None;
    mine[1].relates_to = None;
    for d in &mine {
        s.save(d).unwrap();
    }
    let theirs = [
        draft("bob", SERVER, "pat-1", "note-a", "Bob's"),
        draft(
            "alice",
            "https://other.example/fhir",
            "pat-1",
            "note-a",
            "other server",
        ),
        draft(
            "alice ",
            SERVER,
            "pat-1",
            "note-a",
            "a user name with a space",
        ),
    ];
    for d in &theirs {
        s.save(d).unwrap();
    }
    // A new version replaces the old one.
    mine[0].text.push_str("A: viral URTI\n");
    mine[0].saved_at += chrono::Duration::seconds(2);
    s.save(&mine[0]).unwrap();
    assert_eq!(files(&dir).len(), 6);

    let fresh = store(&dir, 1);
    assert_eq!(
        sorted(fresh.drafts_of("alice", SERVER)),
        sorted(mine.clone())
    );
    assert_eq!(fresh.drafts_of("bob", SERVER), vec![theirs[0].clone()]);
    assert_eq!(
        fresh.drafts_of("alice", "https://other.example/fhir"),
        vec![theirs[1].clone()]
    );
    assert!(fresh.drafts_of("carol", SERVER).is_empty());
    // Newest first.
    assert_eq!(fresh.drafts_of("alice", SERVER)[0], mine[0]);

    // Removed after signing: gone from this store, from disk, for a new store.
    fresh.remove(&mine[0].key).unwrap();
    fresh.remove(&mine[0].key).unwrap(); // twice is fine
    assert_eq!(files(&dir).len(), 5);
    assert_eq!(
        sorted(fresh.drafts_of("alice", SERVER)),
        sorted(mine[1..].to_vec())
    );
    assert_eq!(
        sorted(store(&dir, 1).drafts_of("alice", SERVER)),
        sorted(mine[1..].to_vec())
    );

    // Another key opens nothing.
    assert!(store(&dir, 2).drafts_of("alice", SERVER).is_empty());
}

#[test]
fn files_are_private_sealed_and_say_nothing_about_the_patient() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    // A folder that already exists with loose permissions is made private.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = store(&dir, 3);
    assert_eq!(mode(&dir), 0o700);
    let text = "Patient reports chest pain radiating to left arm; MRN 00100001 confirmed";
    let d = draft("dr.alice", SERVER, "patient-00100001", "note-1", text);
    s.save(&d).unwrap();
    let first = files(&dir);
    assert_eq!(first.len(), 1);
    let name = &first[0];
    let path = dir.join(name);
    assert_eq!(mode(&path), 0o600);
    let bytes = std::fs::read(&path).unwrap();
    for needle in [
        "00100001",
        "patient-00100001",
        "Nguy",
        "Lan",
        "chest pain",
        "Progress note",
        "dr.alice",
        "fhir.example",
        "progress-soap",
        "doc-77",
    ] {
        assert!(!name.contains(needle), "file name shows {needle:?}");
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "file shows {needle:?}"
        );
    }
    // A fresh random nonce for every write: the same draft saved twice is
    // two different ciphertexts under the same name.
    s.save(&d).unwrap();
    assert_eq!(files(&dir), first);
    let again = std::fs::read(&path).unwrap();
    assert_eq!(again.len(), bytes.len());
    assert_ne!(again, bytes);
    assert_ne!(again[16..40], bytes[16..40], "nonce reused");
    // No temporary files left behind.
    assert_eq!(files(&dir), first);
}

#[test]
fn damaged_and_foreign_files_are_skipped_without_harm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    let s = store(&dir, 4);
    let save = |d: &Draft| {
        let before: BTreeSet<String> = files(&dir).into_iter().collect();
        s.save(d).unwrap();
        let after: BTreeSet<String> = files(&dir).into_iter().collect();
        after.difference(&before).next().unwrap().clone()
    };
    let keep = draft("alice", SERVER, "pat-keep", "n", "this one stays readable");
    save(&keep);
    let p1 = draft("alice", SERVER, "pat-1", "n", "first patient");
    let p2 = draft("alice", SERVER, "pat-2", "n", "second patient");
    let f1 = save(&p1);
    let f2 = save(&p2);
    let bob = draft("bob", SERVER, "pat-1", "n", "bob's note on patient 1");
    let fb = save(&bob);
    let elsewhere = draft(
        "alice",
        "https://other.example/fhir",
        "pat-1",
        "n",
        "other server",
    );
    let fe = save(&elsewhere);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();

    // Another patient's file under this patient's name: refused, not shown
    // as this patient's draft.
    write(&f2, &read(&f1));
    // Another user's file (same OS account, same key) under alice's name.
    let p3 = draft("alice", SERVER, "pat-3", "n", "third");
    let f3 = save(&p3);
    write(&f3, &read(&fb));
    // Another server's file under this server's name.
    let p4 = draft("alice", SERVER, "pat-4", "n", "fourth");
    let f4 = save(&p4);
    write(&f4, &read(&fe));
    // A file sealed with another key (another OS user's folder).
    let other_dir = tmp.path().join("other-user");
    let other = store(&other_dir, 9);
    let p5 = draft("alice", SERVER, "pat-5", "n", "fifth");
    other.save(&p5).unwrap();
    let f5 = save(&p5);
    write(
        &f5,
        &std::fs::read(other_dir.join(&files(&other_dir)[0])).unwrap(),
    );
    // Damage of every kind.
    let mut damaged = Vec::new();
    for (i, how) in ["truncated", "flipped", "empty", "garbage", "folder"]
        .iter()
        .enumerate()
    {
        let d = draft("alice", SERVER, &format!("pat-d{i}"), "n", "to be damaged");
        let f = save(&d);
        let mut bytes = read(&f);
        match *how {
            "truncated" => write(&f, &bytes[..bytes.len() / 2]),
            "flipped" => {
                let n = bytes.len() - 20;
                bytes[n] ^= 1;
                write(&f, &bytes)
            }
            "empty" => write(&f, b""),
            "garbage" => write(&f, &[0xffu8; 4096]),
            _ => {
                std::fs::remove_file(dir.join(&f)).unwrap();
                std::fs::create_dir(dir.join(&f)).unwrap();
            }
        }
        damaged.push(f);
    }
    // Strays that are not drafts at all.
    write("README", b"not a draft");
    write(".tmp-1-2", b"partial");

    let fresh = store(&dir, 4);
    let got = fresh.drafts_of("alice", SERVER);
    assert_eq!(sorted(got), sorted(vec![keep, p1]));
    assert_eq!(fresh.drafts_of("bob", SERVER), vec![bob]);
    assert_eq!(
        fresh.drafts_of("alice", "https://other.example/fhir"),
        vec![elsewhere]
    );
    // Nothing was deleted: a damaged file is evidence, not rubbish.
    for f in [&f2, &f3, &f4, &f5].into_iter().chain(damaged.iter()) {
        assert!(dir.join(f).exists());
    }
}

#[test]
fn without_a_key_drafts_stay_in_memory_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    let s = DraftStore::open_with(&dir, Box::new(NoKey));
    match s.protection() {
        Protection::MemoryOnly { why } => {
            assert!(why.contains("no credential store in this test"), "{why}")
        }
        p => panic!("expected memory only, got {p:?}"),
    }
    assert!(!s.protection().on_disk());
    assert!(s.protection().summary().contains("memory"));
    let d = draft("alice", SERVER, "pat-1", "n", "typed with no keyring");
    s.save(&d).unwrap();
    assert_eq!(s.drafts_of("alice", SERVER), vec![d.clone()]);
    assert!(s.drafts_of("bob", SERVER).is_empty());
    assert!(
        files(&dir).is_empty(),
        "memory only wrote {:?}",
        files(&dir)
    );
    s.remove(&d.key).unwrap();
    assert!(s.drafts_of("alice", SERVER).is_empty());

    // A folder that cannot be made: memory only too, saying which folder.
    let blocked = tmp.path().join("a-file");
    std::fs::write(&blocked, b"").unwrap();
    let s = store(&blocked.join("drafts"), 1);
    match s.protection() {
        Protection::MemoryOnly { why } => assert!(why.contains("drafts folder"), "{why}"),
        p => panic!("expected memory only, got {p:?}"),
    }
    s.save(&d).unwrap();
    assert_eq!(s.drafts_of("alice", SERVER), vec![d]);
}

#[test]
fn drafts_sealed_with_an_older_key_stay_readable_and_move_to_the_new_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    let d = draft("alice", SERVER, "pat-1", "n", "sealed with the old key");
    store(&dir, 5).save(&d).unwrap();
    let old_file = files(&dir);
    let both = DraftStore::open_with(&dir, Box::new(FixedKey([6; 32], vec![[5; 32]])));
    assert_eq!(both.drafts_of("alice", SERVER), vec![d.clone()]);
    let mut d2 = d.clone();
    d2.text.push_str(" and saved again");
    both.save(&d2).unwrap();
    let now = files(&dir);
    assert_eq!(now.len(), 1);
    assert_ne!(now, old_file, "the old key's file should be gone");
    assert_eq!(store(&dir, 6).drafts_of("alice", SERVER), vec![d2]);
}

#[test]
fn a_reader_never_sees_a_partial_draft() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drafts");
    let writer = Arc::new(store(&dir, 7));
    let done = Arc::new(AtomicBool::new(false));
    let w = {
        let (writer, done) = (writer.clone(), done.clone());
        std::thread::spawn(move || {
            for i in 1..=300 {
                let text = format!("{i}:{}", "abcdefghij".repeat(i * 3));
                writer
                    .save(&draft("alice", SERVER, "pat-1", "n", &text))
                    .unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut seen = 0;
    let mut last = 0;
    while !done.load(Ordering::SeqCst) || seen == 0 {
        let got = store(&dir, 7).drafts_of("alice", SERVER);
        if seen > 0 || !got.is_empty() {
            assert_eq!(got.len(), 1, "a draft went missing or doubled");
            let text = &got[0].text;
            let (n, body) = text.split_once(':').expect("well-formed");
            let n: usize = n.parse().unwrap();
            assert_eq!(body, "abcdefghij".repeat(n * 3), "partial draft");
            assert!(n >= last, "went back from {last} to {n}");
            last = n;
            seen += 1;
        }
    }
    w.join().unwrap();
    assert!(seen > 0);
    assert_eq!(files(&dir).len(), 1);
}

#[test]
fn store_is_send_and_sync_and_debug_shows_no_patient_data() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DraftStore>();
    let d = draft("alice", SERVER, "pat-00100001", "n", "chest pain");
    let shown = format!("{d:?} {:?}", d.key);
    for needle in ["chest pain", "Nguy", "00100001", "Progress note"] {
        assert!(!shown.contains(needle), "Debug shows {needle:?}: {shown}");
    }
}

/// `default_dir` is `$XDG_DATA_HOME/chartty/drafts`, created 0700 (in a
/// child process: the environment is the process's).
#[test]
fn default_dir_is_private_under_xdg_data_home() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_default_dir",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XDG_DATA_HOME", tmp.path())
        .env("CHARTTY_DRAFTS_TEST_CHILD", "default_dir")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tmp.path().join("chartty").join("drafts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("DIR {}", dir.display())),
        "{stdout}"
    );
    assert_eq!(mode(&dir), 0o700);
}

#[test]
#[ignore = "child process of default_dir_is_private_under_xdg_data_home"]
fn child_default_dir() {
    if std::env::var("CHARTTY_DRAFTS_TEST_CHILD").as_deref() != Ok("default_dir") {
        return;
    }
    let dir = default_dir().expect("a drafts folder");
    println!("DIR {}", dir.display());
}
