//! `chartty login`, `chartty logout`, and the sign-in the TUI starts with:
//! a SMART sign-in kept in the credential store is refreshed; else the user
//! signs in here, before the TUI takes the terminal.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::api::http::HttpOptions;
use crate::api::signin::kept::{Kept, KeptSignIns};
use crate::api::signin::loopback::{Callback, code_from_pasted};
use crate::api::signin::{Bearer, DeviceStart, Identity, RefreshFailed, SignIn, TokenSet, pkce};
use crate::config::Settings;

/// How to sign in.
#[derive(Debug, Clone, Copy, Default)]
pub struct How {
    /// The device code flow even where the browser flow is offered.
    pub device: bool,
    /// The loopback port (else the configured `login_port`).
    pub port: Option<u16>,
}

fn base(settings: &Settings) -> anyhow::Result<String> {
    settings.server.clone().context(
        "no server configured: pass --server URL, set CHARTTY_SERVER, \
         or put `server = \"...\"` in the config file",
    )
}

/// The same timeout, CA file and proxies as the TUI's requests.
fn http(settings: &Settings) -> HttpOptions {
    HttpOptions::new(Duration::from_secs(settings.request_timeout_secs.max(1)))
        .with_ca_file(settings.ca_file.clone())
}

fn store(settings: &Settings) -> Option<Arc<KeptSignIns>> {
    settings.keep_sign_in.then(|| Arc::new(KeptSignIns::os()))
}

/// `chartty login`: sign in and keep the sign-in.
pub async fn login(settings: &Settings, how: How) -> anyhow::Result<Identity> {
    let base = base(settings)?;
    let signin = SignIn::discover(&base, &http(settings))
        .await
        .map_err(|e| anyhow!(e))?;
    let tokens = interactive(&signin, settings, how).await?;
    let who = tokens.identity.clone().unwrap_or_default();
    keep_after_sign_in(settings, &signin, &tokens).await;
    Ok(who)
}

async fn keep_after_sign_in(settings: &Settings, signin: &SignIn, tokens: &TokenSet) {
    let who = tokens.identity.as_ref().map(Identity::label);
    let who = who.as_deref().unwrap_or("(the server did not say who)");
    let Some(refresh) = &tokens.refresh_token else {
        eprintln!(
            "Signed in as {who}. The server gave no refresh token: chartty signs in again at the next start."
        );
        return;
    };
    let Some(kept) = store(settings) else {
        eprintln!(
            "Signed in as {who}. keep_sign_in is off: nothing is kept; chartty signs in again at the next start."
        );
        return;
    };
    // A sign-in kept from before is replaced: it is revoked, not left valid
    // on the server until it expires.
    if let Ok(Some((old, _))) = kept.load(&signin.base)
        && &old.refresh_token != refresh
    {
        let _ = signin.revoke(&old.refresh_token, "refresh_token").await;
    }
    match kept.keep(
        &signin.base,
        &Kept::new(refresh.clone(), tokens.identity.as_ref()),
    ) {
        Ok(place) if place.starts_with("kernel keyring") => eprintln!(
            "Signed in as {who}. The sign-in is kept in the {place}: a cache of this \
             machine's kernel, lost at reboot (or after 3 days unused), never written to disk."
        ),
        Ok(place) => eprintln!("Signed in as {who}. The sign-in is kept in the {place}."),
        Err(why) => eprintln!(
            "Signed in as {who}. The sign-in is kept in memory only ({why}): chartty signs in again at the next start."
        ),
    }
}

/// Signs in with the browser (loopback redirect or pasted address) or a
/// device code, printing what the user must do.
async fn interactive(signin: &SignIn, settings: &Settings, how: How) -> anyhow::Result<TokenSet> {
    let use_device = how.device || signin.config.code_endpoint().is_none();
    if use_device {
        let start = signin.device_start().await.map_err(|e| anyhow!(e))?;
        print_device(&start);
        return signin.device_wait(&start).await.map_err(|e| anyhow!(e));
    }
    let port = how.port.unwrap_or(settings.login_port);
    let callback = match Callback::bind(port).await {
        Ok(c) => c,
        // Taken (another sign-in, another program): any free port will do
        // when pasting back; say so.
        Err(why) if how.port.is_none() => {
            eprintln!("{why}; using another port");
            Callback::bind(0).await.map_err(|e| anyhow!(e))?
        }
        Err(why) => bail!(why),
    };
    let verifier = pkce::random_text().map_err(|e| anyhow!(e))?;
    let state = pkce::random_text().map_err(|e| anyhow!(e))?;
    let url = signin
        .authorize_url(&callback.redirect_uri, &state, &verifier)
        .map_err(|e| anyhow!(e))?;
    let port = callback.port();
    eprintln!(
        "Open this address in a browser and sign in:\n\n  {url}\n\n\
         Over SSH, forward the port first (ssh -L {port}:127.0.0.1:{port} …), \
         or paste here the address the browser ends on (it starts with {}):",
        callback.redirect_uri
    );
    print_qr(&url);
    let mut pasted = pasted_lines();
    let code = tokio::select! {
        code = callback.code(&state) => code,
        code = first_pasted_code(&mut pasted, &state) => code,
    }
    .map_err(|e| anyhow!(e))?;
    drop(pasted);
    signin
        .exchange_code(&code, &verifier, &callback.redirect_uri)
        .await
        .map_err(|e| anyhow!(e))
}

fn print_device(start: &DeviceStart) {
    eprintln!(
        "On any device (a phone will do), open\n\n  {}\n\nand enter the code  {}",
        start.verification_uri, start.user_code
    );
    if let Some(full) = &start.verification_uri_complete {
        eprintln!("(or open {full})");
        print_qr(full);
    }
    eprintln!("Waiting for the approval…");
}

/// The address as a QR code, where the terminal has room for it.
fn print_qr(url: &str) {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let (cols, rows) = ratatui::crossterm::terminal::size().unwrap_or((80, 24));
    // Leave room for the lines around it.
    if let Some(code) = super::qr::draw(url, cols, rows.saturating_sub(8)) {
        eprintln!("\n{code}");
    }
}

/// Lines typed or pasted on standard input, read on a thread of their own
/// that stops when this is dropped: once signed in, the TUI must get every
/// key, and a reader still blocked on the terminal would take some.
struct PastedLines {
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for PastedLines {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pasted_lines() -> PastedLines {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::Builder::new()
        .name("paste-back".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut pending = Vec::new();
            // Asked in short waits, so that a stop is seen at once.
            while !stopping.load(Ordering::Relaxed) {
                let mut fds = [rustix::event::PollFd::new(
                    &stdin,
                    rustix::event::PollFlags::IN,
                )];
                let wait = rustix::event::Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                };
                match rustix::event::poll(&mut fds, Some(&wait)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
                let mut buf = [0u8; 4096];
                let n = match rustix::io::read(&stdin, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                while let Some(end) = pending.iter().position(|b| *b == b'\n' || *b == b'\r') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line).trim().to_string();
                    if !text.is_empty() && tx.send(text).is_err() {
                        return;
                    }
                }
            }
        })
        .ok();
    PastedLines {
        lines,
        stop,
        thread,
    }
}

async fn first_pasted_code(pasted: &mut PastedLines, state: &str) -> Result<String, String> {
    while let Some(line) = pasted.lines.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        match code_from_pasted(&line, state) {
            Ok(code) => return Ok(code),
            Err(why) => {
                eprintln!("{why}");
                let _ = std::io::stderr().flush();
            }
        }
    }
    // Standard input closed: only the browser's redirect can answer now.
    std::future::pending().await
}

/// The bearer the TUI starts with when no token is configured: the kept
/// sign-in, refreshed, else a sign-in now.
pub async fn start(settings: &Settings) -> anyhow::Result<(Bearer, Option<Identity>)> {
    let base = base(settings)?;
    let signin = SignIn::discover(&base, &http(settings)).await.map_err(|e| {
        anyhow!(
            "not signed in: {e}\n(pass a token with --token or CHARTTY_TOKEN if the server's administrator gave you one)"
        )
    })?;
    let kept = store(settings);
    if let Some(store) = &kept {
        match store.load(&signin.base) {
            Ok(Some((k, _place))) => match signin.refresh(&k.refresh_token).await {
                Ok(mut tokens) => {
                    if tokens.identity.is_none() {
                        tokens.identity = k.identity();
                    }
                    if let Some(r) = &tokens.refresh_token {
                        if let Err(why) = store.keep(
                            &signin.base,
                            &Kept::new(r.clone(), tokens.identity.as_ref()),
                        ) {
                            tracing::warn!("the renewed sign-in was not kept: {why}");
                        }
                    } else {
                        tokens.refresh_token = Some(k.refresh_token.clone());
                    }
                    let who = tokens.identity.clone();
                    return Ok((Bearer::signed_in(signin, tokens, kept), who));
                }
                Err(RefreshFailed::Ended(why)) => {
                    let _ = store.forget(&signin.base);
                    eprintln!("{why}");
                }
                Err(RefreshFailed::Passing(why)) => {
                    bail!("the kept sign-in could not be renewed: {why}")
                }
            },
            Ok(None) => {}
            Err(why) => eprintln!("No kept sign-in could be read ({why})."),
        }
    }
    let tokens = interactive(&signin, settings, How::default()).await?;
    keep_after_sign_in(settings, &signin, &tokens).await;
    let who = tokens.identity.clone();
    Ok((Bearer::signed_in(signin, tokens, kept), who))
}

/// `chartty logout`: revoke at the server, then forget locally.
pub async fn logout(settings: &Settings) -> anyhow::Result<String> {
    let base = base(settings)?;
    let store = KeptSignIns::os();
    let kept = store.load(&base).map_err(|e| anyhow!(e))?;
    let Some((k, _)) = kept else {
        return Ok(format!("No sign-in to {base} is kept here."));
    };
    let revoked = match SignIn::discover(&base, &http(settings)).await {
        Ok(signin) => signin.revoke(&k.refresh_token, "refresh_token").await,
        Err(e) => Err(e),
    };
    let forgotten = store.forget(&base);
    let said: String = match revoked {
        Ok(true) => "Signed out: the server revoked the sign-in and it is no longer kept here.".into(),
        Ok(false) => "Signed out here; the server offers no revocation, so the sign-in stays valid there until it expires.".into(),
        Err(why) => format!("Signed out here, but the server could not revoke the sign-in ({why}); it stays valid there until it expires."),
    };
    Ok(match forgotten {
        Ok(()) => said,
        Err(why) => format!(
            "{said}\nA copy may be left in a credential store that could not be reached: {why}"
        ),
    })
}
