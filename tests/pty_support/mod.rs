//! Run the built `chartty` binary on a real pseudo-terminal, as a terminal
//! emulator or sshd would: the child is a session leader with the pty as its
//! controlling terminal, its output is read continuously (a child never blocks
//! on a full pty), and what it drew is replayed into a small screen model.
//!
//! Every wait has a deadline; on failure the message carries the screen.

#![allow(dead_code)] // each test binary uses part of this

pub mod portal;

use std::ffi::OsStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};
use rustix::pty::OpenptFlags;
use rustix::termios::{LocalModes, Winsize};

/// The demo builds a database and a server before the first frame; a busy
/// two-core CI machine running other builds gets plenty of room.
pub const START: Duration = Duration::from_secs(30);
/// How long a process may take to end once told to.
pub const EXIT: Duration = Duration::from_secs(10);
/// How long an on-screen reaction to input may take.
pub const REACT: Duration = Duration::from_secs(10);

pub const COLS: u16 = 100;
pub const ROWS: u16 = 30;

pub const ENTER_ALT_SCREEN: &[u8] = b"\x1b[?1049h";
pub const LEAVE_ALT_SCREEN: &[u8] = b"\x1b[?1049l";
pub const HIDE_CURSOR: &[u8] = b"\x1b[?25l";
pub const SHOW_CURSOR: &[u8] = b"\x1b[?25h";
pub const PASTE_ON: &[u8] = b"\x1b[?2004h";
pub const PASTE_OFF: &[u8] = b"\x1b[?2004l";

/// Output of the child, as read from the pty master so far.
#[derive(Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Condvar,
}

#[derive(Default)]
struct OutputState {
    bytes: Vec<u8>,
    /// The pty has no slave side open any more (the child and all it
    /// started are gone), or the master was closed.
    ended: bool,
}

/// A private HOME, TMPDIR and XDG directories under one temporary directory.
pub fn new_root() -> Arc<tempfile::TempDir> {
    let root = tempfile::Builder::new()
        .prefix("chartty-pty-test-")
        .tempdir()
        .expect("a temporary directory for the test");
    let dirs = ["home", "tmp", "config", "data", "state", "cache", "runtime"];
    for d in dirs {
        std::fs::create_dir(root.path().join(d)).expect("test directories");
    }
    std::fs::set_permissions(
        root.path().join("runtime"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("runtime dir mode");
    Arc::new(root)
}

/// A `chartty` process on its own pseudo-terminal, with a private HOME,
/// TMPDIR and XDG directories under one temporary directory.
pub struct PtyApp {
    child: Child,
    pid: Pid,
    /// Shared by a restart of the app ([`PtyApp::spawn_in`]).
    root: Arc<tempfile::TempDir>,
    /// The write side of the master (a duplicate of the reader's).
    master: Option<OwnedFd>,
    slave_path: PathBuf,
    output: Arc<Output>,
    stop_reader: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    screen: Mutex<(Screen, usize)>,
    status: Option<ExitStatus>,
}

impl PtyApp {
    /// `chartty demo --patients 20` plus `args`, with `env` added to the clean
    /// environment.
    pub fn demo(args: &[&str], env: &[(&str, &str)]) -> PtyApp {
        let mut all = vec!["demo", "--patients", "20"];
        all.extend_from_slice(args);
        PtyApp::spawn(&all, env, true)
    }

    /// As [`PtyApp::demo`], in a session of its own that has no controlling
    /// terminal: closing the terminal then sends it no SIGHUP, and only its
    /// input ending tells it the terminal is gone.
    pub fn demo_without_controlling_terminal(args: &[&str]) -> PtyApp {
        let mut all = vec!["demo", "--patients", "20"];
        all.extend_from_slice(args);
        PtyApp::spawn(&all, &[], false)
    }

    pub fn spawn(args: &[&str], env: &[(&str, &str)], controlling: bool) -> PtyApp {
        PtyApp::spawn_full(None, args, env, controlling, (COLS, ROWS))
    }

    /// Another run in the directories of an earlier one (a restart), on a
    /// terminal of `size` (columns, rows).
    pub fn spawn_in(
        root: &Arc<tempfile::TempDir>,
        args: &[&str],
        env: &[(&str, &str)],
        size: (u16, u16),
    ) -> PtyApp {
        PtyApp::spawn_full(Some(Arc::clone(root)), args, env, true, size)
    }

    /// The directories this run uses, for [`PtyApp::spawn_in`].
    pub fn shared_root(&self) -> Arc<tempfile::TempDir> {
        Arc::clone(&self.root)
    }

    fn spawn_full(
        root: Option<Arc<tempfile::TempDir>>,
        args: &[&str],
        env: &[(&str, &str)],
        controlling: bool,
        (cols, rows): (u16, u16),
    ) -> PtyApp {
        let root = root.unwrap_or_else(new_root);

        // The master is close-on-exec from the start so that no other test's
        // child keeps it open: closing it must hang the terminal up.
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
                .expect("a pseudo-terminal");
        rustix::pty::grantpt(&master).expect("grantpt");
        rustix::pty::unlockpt(&master).expect("unlockpt");
        let slave_path = PathBuf::from(
            rustix::pty::ptsname(&master, Vec::new())
                .expect("ptsname")
                .into_string()
                .expect("a UTF-8 pty name"),
        );
        rustix::termios::tcsetwinsize(
            &master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("window size");
        let slave = open_slave(&slave_path).expect("the pty's slave side");

        let p = |d: &str| root.path().join(d);
        // A bench may measure another build (the one before a change).
        let bin = std::env::var_os("CHARTTY_PTY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_chartty")));
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", p("home"))
            .env("TMPDIR", p("tmp"))
            .env("XDG_CONFIG_HOME", p("config"))
            .env("XDG_DATA_HOME", p("data"))
            .env("XDG_STATE_HOME", p("state"))
            .env("XDG_CACHE_HOME", p("cache"))
            .env("XDG_RUNTIME_DIR", p("runtime"))
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: between fork and exec this only makes raw system calls
        // (no allocation, no locks): a new session, then the pty (already
        // on fd 0) as its controlling terminal, as a login on a terminal gets.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::setsid()?;
                if controlling {
                    rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chartty starts");
        // The parent keeps no slave descriptor: when the child is gone, the
        // master reads end.
        drop(cmd);
        let pid = Pid::from_child(&child);

        let reader_fd = master.try_clone().expect("dup master");
        set_nonblocking(&master);
        let output = Arc::new(Output::default());
        let stop_reader = Arc::new(AtomicBool::new(false));
        let reader = {
            let output = Arc::clone(&output);
            let stop = Arc::clone(&stop_reader);
            std::thread::Builder::new()
                .name("pty-reader".into())
                .spawn(move || read_master(reader_fd, &output, &stop))
                .expect("reader thread")
        };
        PtyApp {
            child,
            pid,
            root,
            master: Some(master),
            slave_path,
            output,
            stop_reader,
            reader: Some(reader),
            screen: Mutex::new((Screen::new(cols, rows), 0)),
            status: None,
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn tmpdir(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.path().join("state/chartty/chartty.log")
    }

    /// `chartty-demo-*` directories under the child's TMPDIR.
    pub fn demo_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.tmpdir()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| n.starts_with("chartty-demo-"))
            })
            .collect()
    }

    /// All bytes the child wrote so far.
    pub fn output(&self) -> Vec<u8> {
        self.output.state.lock().unwrap().bytes.clone()
    }

    /// The screen as drawn so far.
    pub fn screen(&self) -> Screen {
        let bytes = self.output();
        let mut guard = self.screen.lock().unwrap();
        let (screen, seen) = &mut *guard;
        screen.feed(&bytes[*seen..]);
        *seen = bytes.len();
        screen.clone()
    }

    /// Wait until `ready` holds for the screen, or fail after `limit` with
    /// `what` and the screen in the message.
    pub fn wait_screen(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&Screen) -> bool,
    ) -> Screen {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            let seen = self.screen.lock().unwrap().1;
            let now = Instant::now();
            let state = self.output.state.lock().unwrap();
            let closed = state.ended && state.bytes.len() == seen;
            if now >= deadline || closed {
                drop(state);
                let why = if closed {
                    "the terminal closed before it was seen".to_string()
                } else {
                    format!("not seen within {limit:?}")
                };
                panic!(
                    "{what}: {why}; the screen:\n{}\n(process {})",
                    screen.text(),
                    self.describe_process()
                );
            }
            if state.bytes.len() == seen {
                let wait = (deadline - now).min(Duration::from_millis(100));
                let _ = self.output.changed.wait_timeout(state, wait).unwrap();
            }
        }
    }

    /// Wait until the output holds `needle`.
    pub fn wait_output(&self, what: &str, limit: Duration, needle: &[u8]) {
        let deadline = Instant::now() + limit;
        let mut state = self.output.state.lock().unwrap();
        while find(&state.bytes, needle).is_none() {
            let now = Instant::now();
            if now >= deadline || state.ended {
                drop(state);
                panic!(
                    "{what}: not in the output within {limit:?}; the screen:\n{}\n(process {})",
                    self.screen().text(),
                    self.describe_process()
                );
            }
            state = self
                .output
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap()
                .0;
        }
    }

    /// The TUI is up: the alternate screen is on and the search pane drawn.
    pub fn wait_started(&self) -> Screen {
        self.wait_output("the alternate screen", START, ENTER_ALT_SCREEN);
        self.wait_screen("the patient search pane", START, |s| s.contains("Find:"))
    }

    /// The TUI is up and the demo patients are listed.
    pub fn wait_patients(&self) -> Screen {
        self.wait_started();
        self.wait_screen("the demo patients listed", START, |s| {
            s.contains("Find:") && !s.contains("No patients loaded yet")
        })
    }

    /// Write `bytes` as typed (or pasted) into the terminal, within `REACT`.
    pub fn send(&self, bytes: &[u8]) {
        let master = self.master.as_ref().expect("the terminal is open");
        let deadline = Instant::now() + REACT;
        let mut rest = bytes;
        while !rest.is_empty() {
            match rustix::io::write(master, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::AGAIN) | Err(Errno::INTR) => {
                    let now = Instant::now();
                    assert!(
                        now < deadline,
                        "the app read no input for {REACT:?}: {} of {} bytes unsent; the screen:\n{}",
                        rest.len(),
                        bytes.len(),
                        self.screen().text()
                    );
                    let mut fds = [PollFd::new(master, PollFlags::OUT)];
                    let _ =
                        rustix::event::poll(&mut fds, Some(&timespec(Duration::from_millis(50))));
                }
                Err(e) => panic!("writing to the terminal: {e}"),
            }
        }
    }

    pub fn signal(&self, sig: Signal) {
        rustix::process::kill_process(self.pid, sig).expect("the process takes a signal");
    }

    /// Local modes of the terminal (the child's side of the pty).
    pub fn local_modes(&self) -> LocalModes {
        let slave = open_slave(&self.slave_path).expect("the pty's slave side");
        rustix::termios::tcgetattr(&slave)
            .expect("tcgetattr")
            .local_modes
    }

    /// Close the terminal's master side, as a terminal emulator that was
    /// closed or an SSH session that dropped does: the child's terminal
    /// hangs up.
    pub fn close_terminal(&mut self) {
        self.stop_reader.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            r.join().expect("the reader thread");
        }
        self.master = None;
    }

    /// Wait for the process to end within `limit`; the rest of its output is
    /// collected. On timeout it is killed and the test fails.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let screen = self.screen().text();
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the process did not end within {limit:?}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.status = Some(status);
        // Whatever it wrote before it ended.
        if self.reader.is_some() {
            let state = self.output.state.lock().unwrap();
            let (state, _) = self
                .output
                .changed
                .wait_timeout_while(state, EXIT, |s| !s.ended)
                .unwrap();
            assert!(
                state.ended,
                "the terminal stayed open after the process ended"
            );
        }
        status
    }

    fn describe_process(&self) -> String {
        let pid = self.pid.as_raw_nonzero();
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) state ...": the state letter, e.g. R running, S sleeping.
            Ok(stat) => {
                let state = stat.rsplit(") ").next().unwrap_or("?");
                format!(
                    "{pid} alive, state {}",
                    state.split(' ').next().unwrap_or("?")
                )
            }
            Err(_) => format!("{pid} gone"),
        }
    }

    /// Why the output does not end with the terminal given back, if it does not.
    pub fn restore_problems(&self) -> Vec<String> {
        restore_problems(&self.output())
    }
}

impl Drop for PtyApp {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop_reader.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// For each mode the app turns on, that it was turned off after it was last
/// turned on: an empty list means the terminal was given back.
pub fn restore_problems(out: &[u8]) -> Vec<String> {
    let pairs = [
        ("the alternate screen", ENTER_ALT_SCREEN, LEAVE_ALT_SCREEN),
        ("the hidden cursor", HIDE_CURSOR, SHOW_CURSOR),
        ("bracketed paste", PASTE_ON, PASTE_OFF),
    ];
    let mut problems = Vec::new();
    for (name, on, off) in pairs {
        match (rfind(out, on), rfind(out, off)) {
            (None, _) => problems.push(format!("{name} was never turned on")),
            (Some(_), None) => problems.push(format!("{name} was never turned off")),
            (Some(a), Some(b)) if b < a => problems.push(format!(
                "{name} was turned on again after it was last turned off"
            )),
            _ => {}
        }
    }
    problems
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether raw mode is off: line editing and echo as a shell expects them.
pub fn cooked(modes: LocalModes) -> bool {
    modes.contains(LocalModes::ICANON) && modes.contains(LocalModes::ECHO)
}

/// The mode bits (`0o777`) of a path.
pub fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

fn open_slave(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

fn set_nonblocking(fd: &OwnedFd) {
    let flags = rustix::fs::fcntl_getfl(fd).expect("getfl");
    rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK).expect("setfl");
}

fn read_master(fd: OwnedFd, output: &Output, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                output
                    .state
                    .lock()
                    .unwrap()
                    .bytes
                    .extend_from_slice(&buf[..n]);
                output.changed.notify_all();
            }
            Err(Errno::AGAIN) | Err(Errno::INTR) => {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                let _ = rustix::event::poll(&mut fds, Some(&timespec(Duration::from_millis(50))));
            }
            // EIO: no slave side is open any more.
            Err(_) => break,
        }
    }
    output.state.lock().unwrap().ended = true;
    output.changed.notify_all();
}

/// Just enough of a VT100/xterm screen to read what ratatui drew through
/// crossterm: cursor moves, erases, printable text; styles are ignored.
#[derive(Clone)]
pub struct Screen {
    cols: usize,
    rows: usize,
    cells: Vec<Vec<char>>,
    row: usize,
    col: usize,
    wrap_pending: bool,
    parser: Parse,
    utf8: Vec<u8>,
}

#[derive(Clone, PartialEq)]
enum Parse {
    Ground,
    Escape,
    /// ESC ( or similar: one more byte names a charset.
    Charset,
    Csi(Vec<u8>),
    Osc,
    OscEscape,
}

impl Screen {
    pub fn new(cols: u16, rows: u16) -> Screen {
        Screen {
            cols: cols.into(),
            rows: rows.into(),
            cells: vec![vec![' '; cols.into()]; rows.into()],
            row: 0,
            col: 0,
            wrap_pending: false,
            parser: Parse::Ground,
            utf8: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    pub fn lines(&self) -> Vec<String> {
        self.cells
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect()
    }

    pub fn contains(&self, s: &str) -> bool {
        self.lines().iter().any(|l| l.contains(s))
    }

    /// The first line holding `s`.
    pub fn line_with(&self, s: &str) -> Option<String> {
        self.lines().into_iter().find(|l| l.contains(s))
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        match std::mem::replace(&mut self.parser, Parse::Ground) {
            Parse::Ground => self.ground(b),
            Parse::Escape => match b {
                b'[' => self.parser = Parse::Csi(Vec::new()),
                b']' => self.parser = Parse::Osc,
                b'(' | b')' | b'*' | b'+' | b'#' => self.parser = Parse::Charset,
                _ => {}
            },
            Parse::Charset => {}
            Parse::Csi(mut params) => {
                if (0x40..=0x7e).contains(&b) {
                    self.csi(&params, b);
                } else {
                    params.push(b);
                    self.parser = Parse::Csi(params);
                }
            }
            Parse::Osc => match b {
                0x07 => {}
                0x1b => self.parser = Parse::OscEscape,
                _ => self.parser = Parse::Osc,
            },
            Parse::OscEscape => {}
        }
    }

    fn ground(&mut self, b: u8) {
        if !self.utf8.is_empty() || b >= 0x80 {
            self.utf8.push(b);
            match std::str::from_utf8(&self.utf8) {
                Ok(s) => {
                    let c = s.chars().next().unwrap_or('?');
                    self.utf8.clear();
                    self.print(c);
                }
                Err(e) if e.error_len().is_some() || self.utf8.len() >= 4 => {
                    self.utf8.clear();
                    self.print('\u{fffd}');
                }
                Err(_) => {}
            }
            return;
        }
        match b {
            0x1b => self.parser = Parse::Escape,
            b'\r' => {
                self.col = 0;
                self.wrap_pending = false;
            }
            b'\n' | 0x0b | 0x0c => self.line_feed(),
            0x08 => {
                self.col = self.col.saturating_sub(1);
                self.wrap_pending = false;
            }
            b'\t' => self.col = ((self.col / 8 + 1) * 8).min(self.cols - 1),
            0x20..=0x7e => self.print(b as char),
            _ => {}
        }
    }

    fn print(&mut self, c: char) {
        if self.wrap_pending {
            self.col = 0;
            self.line_feed();
        }
        self.cells[self.row][self.col] = c;
        if self.col + 1 >= self.cols {
            self.wrap_pending = true;
        } else {
            self.col += 1;
        }
    }

    fn line_feed(&mut self) {
        self.wrap_pending = false;
        if self.row + 1 >= self.rows {
            self.cells.remove(0);
            self.cells.push(vec![' '; self.cols]);
        } else {
            self.row += 1;
        }
    }

    fn csi(&mut self, params: &[u8], fin: u8) {
        let private = params
            .first()
            .is_some_and(|b| matches!(b, b'?' | b'>' | b'<' | b'='));
        let text = String::from_utf8_lossy(if private { &params[1..] } else { params });
        let nums: Vec<usize> = text.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let n = |i: usize, default: usize| match nums.get(i) {
            Some(0) | None => default,
            Some(v) => *v,
        };
        self.wrap_pending = false;
        match (private, fin) {
            (false, b'H') | (false, b'f') => {
                self.row = (n(0, 1) - 1).min(self.rows - 1);
                self.col = (n(1, 1) - 1).min(self.cols - 1);
            }
            (false, b'A') => self.row = self.row.saturating_sub(n(0, 1)),
            (false, b'B') => self.row = (self.row + n(0, 1)).min(self.rows - 1),
            (false, b'C') => self.col = (self.col + n(0, 1)).min(self.cols - 1),
            (false, b'D') => self.col = self.col.saturating_sub(n(0, 1)),
            (false, b'G') => self.col = (n(0, 1) - 1).min(self.cols - 1),
            (false, b'd') => self.row = (n(0, 1) - 1).min(self.rows - 1),
            (false, b'J') => {
                let (r, c) = (self.row, self.col);
                match nums.first().copied().unwrap_or(0) {
                    0 => {
                        self.clear_line_from(r, c);
                        for row in r + 1..self.rows {
                            self.clear_line_from(row, 0);
                        }
                    }
                    1 => {
                        for row in 0..r {
                            self.clear_line_from(row, 0);
                        }
                        for col in 0..=c.min(self.cols - 1) {
                            self.cells[r][col] = ' ';
                        }
                    }
                    _ => {
                        for row in 0..self.rows {
                            self.clear_line_from(row, 0);
                        }
                    }
                }
            }
            (false, b'K') => {
                let (r, c) = (self.row, self.col);
                match nums.first().copied().unwrap_or(0) {
                    0 => self.clear_line_from(r, c),
                    1 => {
                        for col in 0..=c.min(self.cols - 1) {
                            self.cells[r][col] = ' ';
                        }
                    }
                    _ => self.clear_line_from(r, 0),
                }
            }
            (false, b'X') => {
                let (r, c) = (self.row, self.col);
                for col in c..(c + n(0, 1)).min(self.cols) {
                    self.cells[r][col] = ' ';
                }
            }
            (true, b'h') | (true, b'l') if nums.contains(&1049) => {
                // Either screen starts blank for what this model needs.
                for row in 0..self.rows {
                    self.clear_line_from(row, 0);
                }
            }
            _ => {}
        }
    }

    fn clear_line_from(&mut self, row: usize, col: usize) {
        for c in col..self.cols {
            self.cells[row][c] = ' ';
        }
    }
}

impl PtyApp {
    /// Bytes typed into the terminal that the app has not read yet.
    pub fn unread_input(&self) -> u64 {
        let slave = open_slave(&self.slave_path).expect("the pty's slave side");
        rustix::io::ioctl_fionread(&slave).expect("FIONREAD")
    }
}
