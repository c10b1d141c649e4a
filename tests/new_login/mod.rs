//! A "new login" for the keyring tests: this test binary run again as a
//! child, without a D-Bus session, that joins a new anonymous session
//! keyring (as `pam_keyinit` gives each login) before it does anything, and
//! reports what it found as `@@ KEY value` lines.

#![allow(dead_code)] // each test binary uses part of this

use std::ffi::OsStr;
use std::process::Command;

/// Runs this binary's ignored test `child` with `env` added; its
/// `@@ KEY value` lines.
pub fn run(what: &str, env: &[(&str, &OsStr)]) -> Vec<(String, String)> {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env_remove("DBUS_SESSION_BUS_ADDRESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.split_once("@@ "))
        .filter_map(|(_, kv)| kv.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn get<'a>(lines: &'a [(String, String)], key: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// In the child: a new anonymous session keyring, said as `@@ SESSION id`
/// (-1 where keyctl(2) is refused).
pub fn join_new_session() {
    // keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)
    let joined = unsafe { libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) };
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    let session = unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) };
    println!("\n@@ SESSION {}", if joined < 0 { -1 } else { session });
}
