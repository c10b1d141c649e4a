//! What a request may carry, checked before its body is read and before any
//! FHIR work: the length of its target (414) and headers (431), the size of
//! its body (413: a declared `Content-Length` is refused up front, a chunked
//! body is cut off at the limit), a body that stops arriving (408), a bearer
//! token for a request with a body when the server has users (401, so that
//! no one without a token can make it hold a body in memory), and in
//! open-access mode (no users) what keeps a web page the user visits from
//! using the server: JSON bodies only, a loopback `Host`, no foreign
//! `Origin`. The sign-in endpoints (`server::auth::FORM_PATHS`) are the one
//! exception to the token rule: they take a form body of at most 16 KiB
//! without a token, and nothing else. Every refusal is an
//! `OperationOutcome`.
//!
//! The body is read here, within the limits, and handed on whole; the
//! dispatcher in `http` never sees more than `Limits::max_body` bytes.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;

use super::http::FHIR_JSON;
use super::outcome::FhirError;
use super::transport::Limits;

/// Says whether a bearer token signs someone in now (asked of the store, so
/// a token issued or revoked while the server runs counts at once).
pub type Authenticated =
    dyn Fn(String) -> Pin<Box<dyn std::future::Future<Output = bool> + Send>> + Send + Sync;

pub struct Guard {
    max_body: usize,
    max_uri: usize,
    max_header_bytes: usize,
    max_headers: usize,
    body_read_timeout: Duration,
    body_min_rate: u64,
    /// Open access (no users): the browser checks apply.
    open_access: bool,
    authenticated: Box<Authenticated>,
}

impl Guard {
    /// `authenticated` is only asked when the server has users
    /// (`open_access` false), for requests that carry a body.
    pub fn new(limits: &Limits, open_access: bool, authenticated: Box<Authenticated>) -> Guard {
        Guard {
            max_body: limits.max_body,
            max_uri: limits.max_uri,
            max_header_bytes: limits.max_header_bytes,
            max_headers: limits.max_headers,
            body_read_timeout: limits.body_read_timeout,
            body_min_rate: limits.body_min_rate.max(1),
            open_access,
            authenticated,
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// A refused request: the error, and whether the connection must close
/// (a body was left unread).
struct Refusal {
    err: FhirError,
    close: bool,
}

impl Refusal {
    fn response(self, version: Version) -> Response {
        let mut r = (self.err.status, self.err.outcome().to_string()).into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if self.err.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // HTTP/2 resets the stream instead; `Connection` is not allowed there.
        if self.close && version < Version::HTTP_2 {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        r
    }
}

/// Marks a request passed on without its body (no valid token): the
/// connection closes after the answer, since the body is still on it.
#[derive(Debug, Clone, Copy)]
struct BodyLeftUnread;

/// The middleware: refuses what the guard refuses, else passes the request
/// on with its body read.
pub async fn admit(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let version = req.version();
    match guard.check(req).await {
        Ok(req) => {
            let unread = req.extensions().get::<BodyLeftUnread>().is_some();
            let mut response = next.run(req).await;
            if unread && version < Version::HTTP_2 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
        Err(refusal) => {
            tracing::debug!(
                status = refusal.err.status.as_u16(),
                "request refused by the guard"
            );
            refusal.response(version)
        }
    }
}

fn too_long(status: StatusCode, message: String) -> FhirError {
    FhirError::new(status, "too-long", message)
}

/// The media type of a `Content-Type`, lower case, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Guard {
    async fn check(&self, req: Request) -> Result<Request, Refusal> {
        let has_body = !req.body().is_end_stream();
        let refuse = |err: FhirError| Refusal {
            err,
            close: has_body,
        };

        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target > self.max_uri {
            return Err(refuse(too_long(
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request target is {target} bytes long; the limit is {}",
                    self.max_uri
                ),
            )));
        }
        let headers = req.headers();
        if headers.len() > self.max_headers {
            return Err(refuse(too_long(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request has {} header fields; the limit is {}",
                    headers.len(),
                    self.max_headers
                ),
            )));
        }
        let header_bytes: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > self.max_header_bytes {
            return Err(refuse(too_long(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request headers take {header_bytes} bytes; the limit is {}",
                    self.max_header_bytes
                ),
            )));
        }

        if self.open_access {
            check_open_access(&req, has_body).map_err(refuse)?;
        }

        // The sign-in endpoints take small forms from people who have no
        // token yet; nothing else changes for any other path.
        let sign_in_form = req.method() == Method::POST && is_sign_in_path(req.uri().path());
        let max_body = if sign_in_form {
            self.max_body.min(super::auth::MAX_FORM_BYTES)
        } else {
            self.max_body
        };
        if sign_in_form && has_body {
            let media = media_type(req.headers());
            if media.as_deref() != Some("application/x-www-form-urlencoded") {
                return Err(refuse(FhirError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not-supported",
                    "the sign-in endpoints take application/x-www-form-urlencoded bodies",
                )));
            }
        }
        let declared = declared_length(req.headers());
        if let Some(len) = declared
            && len > max_body as u64
        {
            return Err(refuse(body_too_large(max_body, Some(len))));
        }
        let needs_token = has_body && !self.open_access && !sign_in_form;
        let signed_in = match (needs_token, bearer_token(req.headers())) {
            (false, _) => true,
            (true, None) => false,
            (true, Some(token)) => (self.authenticated)(token.to_string()).await,
        };
        if !signed_in {
            // The body stays unread; the dispatcher answers 401 (and puts
            // it in the audit trail, with where it came from).
            let (mut parts, _unread) = req.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.extensions.insert(BodyLeftUnread);
            return Ok(Request::from_parts(parts, Body::empty()));
        }
        if !has_body {
            return Ok(req);
        }
        let (parts, body) = req.into_parts();
        let bytes = self
            .read_body(body, declared, max_body)
            .await
            .map_err(refuse)?;
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }

    /// Reads the body up to `max_body`. It may take `body_read_timeout`,
    /// plus a second for every `body_min_rate` bytes that arrived.
    async fn read_body(
        &self,
        mut body: Body,
        declared: Option<u64>,
        max_body: usize,
    ) -> Result<Bytes, FhirError> {
        let start = tokio::time::Instant::now();
        let mut first: Option<Bytes> = None;
        let mut rest: Vec<u8> = Vec::new();
        let mut received: usize = 0;
        loop {
            let allowed = self.body_read_timeout
                + Duration::from_secs_f64(received as f64 / self.body_min_rate as f64);
            let frame = tokio::time::timeout_at(
                start + allowed,
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)),
            )
            .await;
            let frame = match frame {
                Err(_) => {
                    return Err(FhirError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "timeout",
                        "the request body did not arrive in time",
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(FhirError::bad_request("the request body could not be read"));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received += data.len();
            if received > max_body {
                return Err(body_too_large(max_body, declared));
            }
            // The common case, a body in one piece, is passed on uncopied.
            match &first {
                None if rest.is_empty() => first = Some(data),
                _ => {
                    if let Some(f) = first.take() {
                        let hint = declared.map_or(0, |n| n as usize).min(max_body);
                        rest.reserve(hint.max(f.len() + data.len()));
                        rest.extend_from_slice(&f);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(first.unwrap_or_else(|| Bytes::from(rest)))
    }
}

fn body_too_large(limit: usize, declared: Option<u64>) -> FhirError {
    let what = match declared {
        Some(n) => format!("the request body is {n} bytes"),
        None => "the request body is longer".to_string(),
    };
    FhirError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-long",
        format!("{what}; the limit is {limit} bytes"),
    )
}

/// Exactly the sign-in endpoints that take forms (`/auth/...`), so that
/// no other path is spared the token check.
fn is_sign_in_path(path: &str) -> bool {
    super::auth::FORM_PATHS.contains(&path)
}

/// Open access: only requests a web page cannot forge.
///
/// - `Host` names this machine's loopback interface (`localhost`, 127.0.0.0/8,
///   `::1`), so a DNS-rebinding name (`evil.example` resolving to 127.0.0.1)
///   is refused. The port is not compared: an SSH tunnel or a port forward
///   reaches the same server under another port, and the port is not what a
///   rebinding page controls.
/// - An `Origin`, if any, is the server's own (`http://` + the `Host`); a
///   page elsewhere, and `Origin: null`, are refused.
/// - A request with a body declares `application/fhir+json` or
///   `application/json`: a browser sends those cross-site only after a CORS
///   preflight, which this server never grants (and a bodiless write has
///   nothing to write).
///   `POST [type]/_search` keeps its FHIR form body
///   (`application/x-www-form-urlencoded`): it reads, and without CORS a
///   foreign page cannot see the answer.
fn check_open_access(req: &Request, has_body: bool) -> Result<(), FhirError> {
    let headers = req.headers();
    let mut hosts: Vec<&str> = Vec::new();
    for v in headers.get_all(header::HOST) {
        hosts.push(
            v.to_str()
                .map_err(|_| misdirected("the Host header is not ASCII"))?,
        );
    }
    if let Some(a) = req.uri().authority() {
        hosts.push(a.as_str());
    }
    let Some(host) = hosts.first().copied() else {
        return Err(FhirError::bad_request(
            "a Host header is required (open access answers requests to loopback only)",
        ));
    };
    if hosts
        .iter()
        .any(|h| !loopback_host(h) || !h.eq_ignore_ascii_case(host))
    {
        return Err(misdirected(
            "this server has no users and answers only requests addressed to a loopback \
             name (localhost, 127.0.0.1, [::1]); the Host of this request is not one",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let same = origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(&format!("http://{host}")));
        if !same {
            return Err(FhirError::forbidden(
                "this server has no users and refuses requests from web pages of other \
                 origins (the Origin of this request is not the server's)",
            ));
        }
    }
    let method = req.method();
    let search = method == Method::POST && req.uri().path().ends_with("/_search");
    let media = media_type(headers);
    let media = media.as_deref();
    let json = matches!(media, Some("application/fhir+json" | "application/json"));
    let ok = if search {
        !has_body || media == Some("application/x-www-form-urlencoded")
    } else if has_body {
        json
    } else {
        // Nothing to write: the dispatcher answers (405, or 400 for a
        // create without a resource).
        true
    };
    if !ok {
        return Err(FhirError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!(
                "this server has no users and takes only application/fhir+json or \
                 application/json request bodies (got {})",
                media.map_or("no Content-Type".to_string(), |m| format!("{m:?}"))
            ),
        ));
    }
    Ok(())
}

fn misdirected(message: &str) -> FhirError {
    FhirError::new(StatusCode::MISDIRECTED_REQUEST, "security", message)
}

/// `localhost`, or a loopback address, with an optional port.
fn loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (ip, port)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.:1",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "app.localhost",
            "10.0.0.1:8080",
            "0.0.0.0:8080",
            "[::]:8080",
            "[::1]8080",
            "localhost:",
            "localhost:80x",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  abc "),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
    }
}
