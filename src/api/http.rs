//! The rules every HTTP client of chartty is built with, so that the FHIR
//! client and sign-in reach servers the same way:
//!
//! - TLS through rustls (ring), server certificates checked against the
//!   operating system's trust store (rustls-platform-verifier, which reads
//!   it through rustls-native-certs: `/etc/ssl/certs`, `SSL_CERT_FILE`,
//!   `SSL_CERT_DIR`), plus the site's own CA bundle when one is configured;
//! - redirects followed only within the origin the request was sent to: a
//!   server that redirects elsewhere would receive a token and a request
//!   body it was never meant to (and over `http://`, in the clear);
//! - proxies from `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
//!   (or their lower-case forms), never for this machine's own addresses.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

/// Redirects followed at most, within one origin.
const MAX_REDIRECTS: usize = 10;

/// Never sent through a proxy: a local server (the demo, a test, a tunnel)
/// is reached directly whatever the environment says.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// Longest wait for a connection (TCP, and TLS where used) by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the next bytes of an answer by default.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How to build a client.
///
/// Three limits, because a bad link fails in three ways that need
/// different patience:
/// - `connect_timeout`: a server that cannot be reached (down, a firewall
///   that drops packets, a wrong address) is known in a few seconds, so the
///   status bar can say offline instead of waiting for the whole request;
/// - `read_timeout`: from the request's start until the answer's first
///   bytes, then between any two reads of its body. A stalled server or a
///   connection that died without a reset is given up on after this, while
///   a large answer trickling in over a slow link is not cut off as long
///   as bytes keep coming;
/// - `timeout`: the whole exchange, sending to last byte, whatever the
///   pace: nothing waits longer than this.
///
/// A read that hits any of them is tried again with backoff like any
/// request that did not reach the server; a write only because it is
/// conditional or versioned (see `api::write`).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The whole exchange.
    pub timeout: Duration,
    /// Connecting, capped by `timeout`.
    pub connect_timeout: Duration,
    /// The first bytes of the answer, and each read after them; capped by
    /// `timeout`.
    pub read_timeout: Duration,
    /// A PEM file of one or more CA certificates trusted besides the
    /// system's (a site CA).
    pub ca_file: Option<PathBuf>,
    pub proxies: Proxies,
}

impl HttpOptions {
    /// `timeout` for the whole exchange, the default connect and read
    /// limits (no longer than `timeout`), no site CA, proxies from the
    /// environment.
    pub fn new(timeout: Duration) -> HttpOptions {
        HttpOptions {
            timeout,
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
            ca_file: None,
            proxies: Proxies::from_env(),
        }
    }

    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> HttpOptions {
        self.ca_file = ca_file;
        self
    }

    pub fn with_proxies(mut self, proxies: Proxies) -> HttpOptions {
        self.proxies = proxies;
        self
    }

    /// Connect and read limits other than the defaults.
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> HttpOptions {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self
    }

    /// The connect limit as applied (never beyond the whole exchange's).
    pub fn effective_connect_timeout(&self) -> Duration {
        self.connect_timeout.min(self.timeout)
    }

    /// The read limit as applied (never beyond the whole exchange's).
    pub fn effective_read_timeout(&self) -> Duration {
        self.read_timeout.min(self.timeout)
    }
}

type MakeProxy = fn(&str) -> reqwest::Result<reqwest::Proxy>;

/// Proxy settings as the usual environment variables give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies {
    /// For `http://` requests (`HTTP_PROXY`).
    pub http: Option<String>,
    /// For `https://` requests (`HTTPS_PROXY`), tunnelled with `CONNECT`.
    pub https: Option<String>,
    /// For both, where the specific one is not set (`ALL_PROXY`).
    pub all: Option<String>,
    /// Hosts, domains (with their subdomains), IP addresses or networks
    /// reached directly, comma-separated; `*` for all (`NO_PROXY`).
    pub no_proxy: Option<String>,
}

impl Proxies {
    /// From the process environment.
    pub fn from_env() -> Proxies {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// From variables looked up by `var`; the upper-case name wins over the
    /// lower-case one, and an empty value counts as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Proxies {
        let first = |names: [&str; 2]| {
            names
                .iter()
                .filter_map(|n| var(n))
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        };
        Proxies {
            http: first(["HTTP_PROXY", "http_proxy"]),
            https: first(["HTTPS_PROXY", "https_proxy"]),
            all: first(["ALL_PROXY", "all_proxy"]),
            no_proxy: first(["NO_PROXY", "no_proxy"]),
        }
    }

    fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none() && self.all.is_none()
    }

    fn apply(&self, mut builder: reqwest::ClientBuilder) -> anyhow::Result<reqwest::ClientBuilder> {
        if self.is_empty() {
            // Nothing set: no proxy at all, not reqwest's own reading of
            // the environment (which would send loopback through one).
            return Ok(builder.no_proxy());
        }
        let bypass = match &self.no_proxy {
            Some(list) => format!("{list},{LOOPBACK}"),
            None => LOOPBACK.to_string(),
        };
        let kinds: [(&Option<String>, &str, MakeProxy); 3] = [
            (&self.http, "HTTP_PROXY", |u| reqwest::Proxy::http(u)),
            (&self.https, "HTTPS_PROXY", |u| reqwest::Proxy::https(u)),
            (&self.all, "ALL_PROXY", |u| reqwest::Proxy::all(u)),
        ];
        for (url, var, make) in kinds {
            let Some(url) = url else { continue };
            // The value may hold a password: it is not echoed back.
            let proxy = make(url).map_err(|_| anyhow!("{var} is not a valid proxy URL"))?;
            builder = builder.proxy(proxy.no_proxy(reqwest::NoProxy::from_string(&bypass)));
        }
        Ok(builder)
    }
}

/// Why a redirect was not followed; found again in the request's error
/// with [`refused_redirect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRefused {
    /// The redirect's status (301, 302, 307, ...), once known.
    pub status: Option<u16>,
    pub message: String,
}

impl RedirectRefused {
    fn new(message: String) -> RedirectRefused {
        RedirectRefused {
            status: None,
            message,
        }
    }
}

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RedirectRefused {}

/// The refusal behind a failed request, if a redirect was refused.
pub fn refused_redirect(e: &reqwest::Error) -> Option<RedirectRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r.clone());
        }
        source = s.source();
    }
    None
}

/// What is wrong with the server's certificate, if that is why a request
/// failed: said plainly, since "cannot reach the server" would send the
/// user looking at the network.
pub fn certificate_problem(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = s.downcast_ref::<rustls::Error>() {
            return Some(format!(
                "the server's certificate is not trusted ({why:?}); if your site's own CA \
                 issued it, set ca_file to that CA's PEM file"
            ));
        }
        // An I/O error's `source()` skips what it wraps: look inside.
        next = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// Scheme, host and port of a URL, as a message may show it (the path and
/// query may hold a patient's name).
fn origin_text(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}/…", url.scheme()),
        None => format!("{}://{host}/…", url.scheme()),
    }
}

/// Whether a redirect from `original` to `target` may be followed, and why not.
pub fn check_redirect(original: &url::Url, target: &url::Url) -> Result<(), RedirectRefused> {
    let clear = target.scheme() == "http" && !(is_loopback(target) && is_loopback(original));
    if clear {
        return Err(RedirectRefused::new(format!(
            "the server redirected to {} — refusing to send patient data or a token in the clear",
            origin_text(target)
        )));
    }
    if target.origin() != original.origin() {
        return Err(RedirectRefused::new(format!(
            "the server redirected to {}, another server — refusing to send patient data or a \
             token there; if that is the right server, set it as the server address",
            origin_text(target)
        )));
    }
    Ok(())
}

fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let Some(original) = attempt.previous().first().cloned() else {
            return attempt.follow();
        };
        let status = Some(attempt.status().as_u16());
        if let Err(refused) = check_redirect(&original, attempt.url()) {
            return attempt.error(RedirectRefused { status, ..refused });
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            let refused = RedirectRefused {
                status,
                message: format!("the server redirected more than {MAX_REDIRECTS} times"),
            };
            return attempt.error(refused);
        }
        attempt.follow()
    })
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // reqwest is built without a default provider; a second install
        // (another part of the process did it) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The certificates of a PEM CA bundle; an error names the file.
pub fn load_ca_file(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the CA file {} (ca_file)", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
        anyhow!(
            "the CA file {} (ca_file) is not a valid PEM certificate bundle",
            path.display()
        )
    })?;
    if certs.is_empty() {
        bail!(
            "the CA file {} (ca_file) holds no certificate: expected PEM blocks \
             starting with -----BEGIN CERTIFICATE-----",
            path.display()
        );
    }
    Ok(certs)
}

/// A client built with chartty's rules (see the module documentation).
pub fn http_client(opts: &HttpOptions) -> anyhow::Result<reqwest::Client> {
    build(builder(opts)?.redirect(redirect_policy()), opts)
}

/// The same rules for talking to a sign-in server, which follows no
/// redirect at all: a code, a refresh token or a password is never carried
/// on to another address.
pub fn sign_in_client(opts: &HttpOptions) -> anyhow::Result<reqwest::Client> {
    build(
        builder(opts)?.redirect(reqwest::redirect::Policy::none()),
        opts,
    )
}

fn builder(opts: &HttpOptions) -> anyhow::Result<reqwest::ClientBuilder> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .gzip(true)
        .timeout(opts.timeout)
        .read_timeout(opts.effective_read_timeout())
        .connect_timeout(opts.effective_connect_timeout())
        .user_agent(concat!("chartty/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &opts.ca_file {
        builder = builder.tls_certs_merge(load_ca_file(path)?);
    }
    opts.proxies.apply(builder)
}

fn build(builder: reqwest::ClientBuilder, opts: &HttpOptions) -> anyhow::Result<reqwest::Client> {
    builder.build().map_err(|e| match &opts.ca_file {
        // Certificates are parsed for real when the TLS settings are built.
        Some(path) => anyhow!("cannot use the CA file {} (ca_file): {e}", path.display()),
        None => anyhow!("cannot set up HTTPS: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn redirects_stay_within_the_origin_and_never_go_to_clear_text() {
        let fhir = url("https://fhir.example.org/r4/Patient?name=doe");
        assert!(check_redirect(&fhir, &url("https://fhir.example.org/other/x")).is_ok());
        let clear = check_redirect(&fhir, &url("http://fhir.example.org/r4/x?name=doe"))
            .unwrap_err()
            .message;
        assert!(
            clear.contains("redirected to http://fhir.example.org/…")
                && clear.contains("in the clear")
                && !clear.contains("doe"),
            "{clear}"
        );
        let away = check_redirect(&fhir, &url("https://evil.example.net/r4")).unwrap_err();
        assert!(
            away.message.contains("https://evil.example.net/…"),
            "{away}"
        );
        assert!(check_redirect(&fhir, &url("https://fhir.example.org:8443/r4")).is_err());

        let local = url("http://127.0.0.1:8080/fhir");
        assert!(check_redirect(&local, &url("http://127.0.0.1:8080/fhir/x")).is_ok());
        assert!(check_redirect(&local, &url("http://localhost:8080/fhir")).is_err());
        let to_clear = check_redirect(&fhir, &url("http://127.0.0.1/")).unwrap_err();
        assert!(to_clear.message.contains("in the clear"), "{to_clear}");
    }

    #[test]
    fn proxy_variables_upper_case_first_empty_is_unset() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = Proxies::from_vars(env(&[
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("http_proxy", "http://plain:3128"),
            ("NO_PROXY", ""),
            ("no_proxy", ".example.org, 10.0.0.0/8"),
        ]));
        assert_eq!(
            p,
            Proxies {
                http: Some("http://plain:3128".into()),
                https: Some("http://upper:3128".into()),
                all: None,
                no_proxy: Some(".example.org, 10.0.0.0/8".into()),
            }
        );
        let none = Proxies::from_vars(env(&[("NO_PROXY", "*")]));
        assert!(none.is_empty());
        let all = Proxies::from_vars(env(&[("all_proxy", "socks5://x:1080")]));
        assert_eq!(all.all.as_deref(), Some("socks5://x:1080"));
    }

    #[test]
    fn a_bad_proxy_value_is_named_not_echoed() {
        let p = Proxies {
            https: Some("http://user:s3cret@[bad".into()),
            ..Proxies::default()
        };
        let err = http_client(&HttpOptions::new(Duration::from_secs(1)).with_proxies(p))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTPS_PROXY") && !err.contains("s3cret"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_malformed_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load_ca_file(&missing).unwrap_err().to_string();
        assert!(
            err.contains("missing.pem") && err.contains("ca_file"),
            "{err}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = load_ca_file(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.pem") && err.contains("BEGIN CERTIFICATE"),
            "{err}"
        );

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = http_client(
            &HttpOptions::new(Duration::from_secs(1)).with_ca_file(Some(broken.clone())),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("broken.pem"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = http_client(
            &HttpOptions::new(Duration::from_secs(1)).with_ca_file(Some(garbage.clone())),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("garbage.pem"), "{err}");
    }
}
