//! The redirect of the authorization code flow, two ways: a listener on a
//! loopback port (RFC 8252 §7.3; over SSH the user forwards that port), or
//! the final redirect URL pasted back by the user (the browser shows an
//! error page for a port nobody listens on, but its address bar holds the
//! code).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The most a browser's request head may take up.
const MAX_HEAD: usize = 16 * 1024;

pub struct Callback {
    listener: TcpListener,
    pub redirect_uri: String,
}

impl Callback {
    /// Listens on 127.0.0.1:`port` (0: a free port).
    pub async fn bind(port: u16) -> Result<Callback, String> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on loopback: {e}"))?
            .port();
        Ok(Callback {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Answers browser requests until one brings the redirect for `state`;
    /// gives its code, or the error the server sent. Each connection is
    /// answered on its own task: one that sends nothing (another program
    /// on this machine) does not hold up the browser's.
    pub async fn code(&self, state: &str) -> Result<String, String> {
        let (tx, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
        let mut answering = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((conn, _)) = accepted else { continue };
                    let (tx, state) = (tx.clone(), state.to_string());
                    answering.spawn(async move {
                        if let Some(outcome) = answer(conn, &state).await {
                            let _ = tx.send(outcome);
                        }
                    });
                }
                Some(outcome) = outcomes.recv() => return outcome,
            }
        }
    }
}

/// One browser request: the redirect's outcome, or `None` for anything
/// else (a favicon, a stray request of another sign-in).
async fn answer(mut conn: tokio::net::TcpStream, state: &str) -> Option<Result<String, String>> {
    let head = tokio::time::timeout(Duration::from_secs(10), read_head(&mut conn))
        .await
        .ok()??;
    let target = head
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("GET "))
        .and_then(|l| l.split(' ').next())
        .unwrap_or("");
    if !target.starts_with("/callback") {
        let _ = respond(&mut conn, "404 Not Found", "Not here.").await;
        return None;
    }
    let outcome = code_from_pasted(target, state);
    let page = match &outcome {
        Ok(_) => "Signed in. You can close this tab and return to your terminal.",
        Err(_) => "Sign-in failed; your terminal says why.",
    };
    let _ = respond(&mut conn, "200 OK", page).await;
    match &outcome {
        Err(e) if e.starts_with(STALE) => None,
        _ => Some(outcome),
    }
}

async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_HEAD {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}

async fn respond(
    conn: &mut tokio::net::TcpStream,
    status: &str,
    text: &str,
) -> std::io::Result<()> {
    let body = format!("<!doctype html><title>chartty</title><p>{text}</p>");
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Cache-Control: no-store\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

const STALE: &str = "this redirect belongs to another sign-in";

/// The code in a redirect URL (whole, or just its path and query) for the
/// sign-in that sent `state`.
pub fn code_from_pasted(text: &str, state: &str) -> Result<String, String> {
    let text = text.trim();
    let query = match text.split_once('?') {
        Some((_, q)) => q,
        None if text.contains("code=") || text.contains("error=") => text,
        None => return Err("that is not the address the browser ended on (no `?code=`)".into()),
    };
    let query = query.split('#').next().unwrap_or("");
    let mut code = None;
    let mut got_state = None;
    let mut error = None;
    let mut description = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => got_state = Some(v.into_owned()),
            "error" => error = Some(v.into_owned()),
            "error_description" => description = Some(v.into_owned()),
            _ => {}
        }
    }
    // The state proves the redirect answers this request (RFC 6749 §10.12):
    // a code planted by someone else is never exchanged.
    if got_state.as_deref() != Some(state) {
        return Err(format!("{STALE} (its state does not match); try again"));
    }
    if let Some(e) = error {
        let why =
            crate::fhir::sanitize::sanitize(description.as_deref().unwrap_or(&e)).into_owned();
        return Err(format!("the server refused the sign-in: {why}"));
    }
    code.filter(|c| !c.is_empty())
        .ok_or_else(|| "the address holds no code".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_addresses_give_their_code_only_for_this_state() {
        let url = "http://127.0.0.1:8765/callback?code=abc%2Bd&state=s1";
        assert_eq!(code_from_pasted(url, "s1").unwrap(), "abc+d");
        assert_eq!(
            code_from_pasted(&format!("  {url}\n"), "s1").unwrap(),
            "abc+d"
        );
        assert_eq!(code_from_pasted("code=abc&state=s1", "s1").unwrap(), "abc");
        assert!(
            code_from_pasted(url, "s2")
                .unwrap_err()
                .contains("does not match")
        );
        assert!(
            code_from_pasted("http://x/callback?error=access_denied&state=s1", "s1")
                .unwrap_err()
                .contains("access_denied")
        );
        assert!(code_from_pasted("hello", "s1").is_err());
        assert!(code_from_pasted("http://x/callback?state=s1&code=", "s1").is_err());
    }

    #[tokio::test]
    async fn the_listener_takes_the_browsers_redirect_and_ignores_strays() {
        let cb = Callback::bind(0).await.unwrap();
        let port = cb.port();
        // A connection that never sends a byte holds nothing up.
        let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        assert_eq!(cb.redirect_uri, format!("http://127.0.0.1:{port}/callback"));
        let browser = tokio::spawn(async move {
            let get = |path: &'static str| async move {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            };
            let a = get("/favicon.ico").await;
            let b = get("/callback?code=old&state=other").await;
            let c = get("/callback?code=good&state=mine").await;
            (a, b, c)
        });
        assert_eq!(cb.code("mine").await.unwrap(), "good");
        let (a, _, c) = browser.await.unwrap();
        assert!(a.starts_with("HTTP/1.1 404"));
        assert!(c.contains("return to your terminal"));
    }
}
