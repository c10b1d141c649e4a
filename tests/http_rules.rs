//! The client's HTTPS rules against real servers on this machine: redirects
//! away from the origin or to clear text are refused and said so, a site CA
//! makes its servers trusted (and only with it), and proxies are used as the
//! environment variables say, never for this machine's own addresses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chartty::api::http::{HttpOptions, Proxies, http_client};
use chartty::api::{ApiClient, ApiReply, ApiRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const CAPABILITY: &str = r#"{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server"}]}"#;

fn timeout() -> Duration {
    Duration::from_secs(10)
}

/// Read one request head; its first line.
async fn request_line<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// A server that answers each connection with `reply(request line)` and
/// keeps the request lines it saw.
async fn serve<F>(reply: F) -> (SocketAddr, Arc<Mutex<Vec<String>>>)
where
    F: Fn(&str) -> Vec<u8> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = Arc::clone(&log);
            let reply = Arc::clone(&reply);
            tokio::spawn(async move {
                let line = request_line(&mut stream).await;
                log.lock().unwrap().push(line.clone());
                let _ = stream.write_all(&reply(&line)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, seen)
}

async fn capabilities(client: &ApiClient) -> Result<ApiReply, String> {
    client
        .execute(ApiRequest::Capabilities)
        .await
        .map_err(|e| e.message)
}

#[tokio::test]
async fn a_redirect_to_clear_text_is_refused_and_says_why() {
    let (addr, seen) = serve(|_| {
        answer(
            "302 Found",
            &[("Location", "http://fhir.example.org/r4/metadata?name=doe")],
            "",
        )
    })
    .await;
    let client = ApiClient::new(
        &format!("http://{addr}/fhir"),
        Some("t0k3n".into()),
        timeout(),
    )
    .unwrap();
    let Err(e) = client.execute(ApiRequest::Capabilities).await else {
        panic!("the redirect was followed");
    };
    assert_eq!(e.status, Some(302), "an answer, not a lost connection");
    let why = e.message;
    assert!(
        why.contains("redirected to http://fhir.example.org/…")
            && why.contains("refusing to send patient data or a token in the clear")
            && !why.contains("doe"),
        "{why}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "asked once, not retried");
}

#[tokio::test]
async fn a_redirect_to_another_server_is_refused_one_within_the_origin_is_followed() {
    let (other, other_seen) = serve(|_| answer("200 OK", &[], CAPABILITY)).await;
    let away = format!("http://{other}/fhir/metadata");
    let (addr, _) = serve(move |line| {
        if line.starts_with("GET /fhir/metadata ") {
            answer("307 Temporary Redirect", &[("Location", &away)], "")
        } else {
            answer("200 OK", &[], CAPABILITY)
        }
    })
    .await;
    let client = ApiClient::new(&format!("http://{addr}/fhir"), None, timeout()).unwrap();
    let why = capabilities(&client).await.unwrap_err();
    assert!(
        why.contains(&format!("redirected to http://{other}/…")),
        "{why}"
    );
    assert!(
        other_seen.lock().unwrap().is_empty(),
        "nothing reached the other server"
    );

    let (addr, seen) = serve(|line| {
        if line.starts_with("GET /fhir/metadata ") {
            answer(
                "301 Moved Permanently",
                &[("Location", "/fhir/v2/metadata")],
                "",
            )
        } else {
            answer("200 OK", &[], CAPABILITY)
        }
    })
    .await;
    let client = ApiClient::new(&format!("http://{addr}/fhir"), None, timeout()).unwrap();
    assert!(capabilities(&client).await.is_ok());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET /fhir/metadata HTTP/1.1",
            "GET /fhir/v2/metadata HTTP/1.1"
        ]
    );
}

/// A site CA and a certificate it issued for `localhost` and 127.0.0.1.
struct SiteCa {
    ca_pem: String,
    leaf: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn site_ca() -> SiteCa {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Example Clinic test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    let b64 = base64::engine::general_purpose::STANDARD.encode(ca_cert.der());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    SiteCa {
        ca_pem: format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        ),
        leaf: leaf_cert.der().clone(),
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// An HTTPS server with the site's certificate, answering every request
/// with a CapabilityStatement.
async fn https_server(ca: &SiteCa) -> SocketAddr {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![ca.leaf.clone()], ca.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = request_line(&mut tls).await;
                reply_and_close(&mut tls, &answer("200 OK", &[], CAPABILITY)).await;
            });
        }
    });
    addr
}

async fn reply_and_close<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn a_server_of_the_site_ca_is_trusted_only_with_the_ca_file() {
    let ca = site_ca();
    let addr = https_server(&ca).await;
    let base = format!("https://localhost:{}/fhir", addr.port());

    let without = ApiClient::new(&base, None, timeout()).unwrap();
    let why = capabilities(&without).await.unwrap_err();
    assert!(
        why.contains("certificate is not trusted") && why.contains("ca_file"),
        "{why}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("site-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let opts = HttpOptions::new(timeout()).with_ca_file(Some(ca_file));
    let with = ApiClient::with_options(&base, None, &opts).unwrap();
    let reply = capabilities(&with).await;
    assert!(matches!(reply, Ok(ApiReply::Capabilities(_))), "{reply:?}");
}

#[tokio::test]
async fn proxies_are_used_as_the_environment_says_never_for_loopback() {
    let (proxy, proxied) = serve(|line| {
        if line.starts_with("CONNECT ") {
            answer("403 Forbidden", &[], "")
        } else {
            answer("200 OK", &[], CAPABILITY)
        }
    })
    .await;
    let proxy_url = format!("http://{proxy}");
    let client =
        |proxies: Proxies| http_client(&HttpOptions::new(timeout()).with_proxies(proxies)).unwrap();

    // Plain HTTP is forwarded: the proxy sees the whole URL.
    let http = client(Proxies {
        http: Some(proxy_url.clone()),
        ..Proxies::default()
    });
    let r = http
        .get("http://fhir.example.test/r4/metadata")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        proxied.lock().unwrap().pop().as_deref(),
        Some("GET http://fhir.example.test/r4/metadata HTTP/1.1")
    );

    // HTTPS is tunnelled: the proxy sees only the host and port.
    let https = client(Proxies {
        https: Some(proxy_url.clone()),
        ..Proxies::default()
    });
    assert!(
        https
            .get("https://fhir.example.test/r4/metadata")
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        proxied.lock().unwrap().pop().as_deref(),
        Some("CONNECT fhir.example.test:443 HTTP/1.1")
    );

    // NO_PROXY: straight to the host (which does not exist), not the proxy.
    let bypass = client(Proxies {
        http: Some(proxy_url.clone()),
        no_proxy: Some("other.example, .example.test".into()),
        ..Proxies::default()
    });
    assert!(
        bypass
            .get("http://fhir.example.test/r4/metadata")
            .send()
            .await
            .is_err()
    );
    assert!(
        proxied.lock().unwrap().is_empty(),
        "{:?}",
        proxied.lock().unwrap()
    );

    // This machine is reached directly, whatever the variables say.
    let (local, local_seen) = serve(|_| answer("200 OK", &[], CAPABILITY)).await;
    let all = client(Proxies {
        all: Some(proxy_url.clone()),
        http: Some(proxy_url),
        ..Proxies::default()
    });
    for host in [format!("{local}"), format!("localhost:{}", local.port())] {
        let r = all
            .get(format!("http://{host}/fhir/metadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(local_seen.lock().unwrap().len(), 2);
    assert!(proxied.lock().unwrap().is_empty());
}
