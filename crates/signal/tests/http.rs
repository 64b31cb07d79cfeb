//! The page and the HTTP rules on the signaling port, over real sockets on loopback: what is
//! served and with which headers, what is refused, and that the WebSocket still upgrades on the
//! same port, over plain TCP and over TLS. Requests are written by hand here so that malformed
//! ones can be sent too. Every wait is bounded by a timeout; nothing sleeps.

use std::time::Duration;

use rtcdesk_proto::signal::{Register, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::{ServerTls, TlsOptions};
use rtcdesk_signal::web::{ASSETS, CONTENT_SECURITY_POLICY, SIGNAL_PATH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any single wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(5);

/// One HTTP response as read off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a response (head and whole body, up to the end of the stream) into its parts; `None`
/// when the server sent nothing that looks like a response.
fn parse_reply(bytes: &[u8]) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    })
}

/// Writes `request` and reads until the server closes the connection.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut reply))
        .await
        .expect("the server answers and closes in time")
        .unwrap_or_default();
    reply
}

async fn raw(server: &Server, request: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(server.local_addr()).await.unwrap();
    exchange(stream, request).await
}

async fn get(server: &Server, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    parse_reply(&raw(server, request.as_bytes()).await).expect("an HTTP response")
}

async fn plain_server() -> Server {
    Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap()
}

async fn registers(url: &str, tls: &TlsOptions) {
    let mut client = SignalClient::connect(url, tls).await.unwrap();
    client.send(&Register::named("pc").into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("registered in time")
        .unwrap();
    assert!(
        matches!(reply, Some(SignalMessage::Registered(_))),
        "{reply:?}"
    );
    client.close().await.unwrap();
}

fn assert_security_headers(reply: &Reply) {
    assert_eq!(
        reply.header("content-security-policy"),
        Some(CONTENT_SECURITY_POLICY)
    );
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(reply.header("x-frame-options"), Some("DENY"));
    assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
}

#[tokio::test]
async fn the_root_serves_the_page_as_html_with_a_strict_csp() {
    // Given a server, when a browser asks for `/`,
    let server = plain_server().await;
    let reply = get(&server, "/").await;
    // then it gets the page, as HTML, with the security headers.
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_security_headers(&reply);
    let csp = reply.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(
        reply.header("content-length").and_then(|l| l.parse().ok()),
        Some(reply.body.len())
    );
    let html = String::from_utf8(reply.body).unwrap();
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    server.shutdown().await;
}

#[tokio::test]
async fn every_asset_is_served_with_its_mime_type_and_bytes() {
    let server = plain_server().await;
    for asset in ASSETS {
        let reply = get(&server, asset.path).await;
        assert_eq!(reply.status, 200, "{}", asset.path);
        assert_eq!(reply.header("content-type"), Some(asset.content_type));
        assert_security_headers(&reply);
        assert_eq!(reply.body, asset.body, "{}", asset.path);
    }
    let types: Vec<_> = ["/", "/style.css", "/app.js", "/favicon.svg"]
        .into_iter()
        .map(|path| ASSETS.iter().find(|a| a.path == path).unwrap().content_type)
        .collect();
    assert_eq!(
        types,
        [
            "text/html; charset=utf-8",
            "text/css; charset=utf-8",
            "text/javascript; charset=utf-8",
            "image/svg+xml"
        ]
    );
    // A query string does not change what is served.
    assert_eq!(get(&server, "/app.js?v=2").await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_get_404_with_the_security_headers() {
    let server = plain_server().await;
    for path in [
        "/nope",
        "/index.htm",
        "/app.js/",
        "/APP.JS",
        "/signal/x",
        "/web/app.js",
    ] {
        let reply = get(&server, path).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_security_headers(&reply);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn traversal_attempts_get_404() {
    let server = plain_server().await;
    for path in [
        "/../Cargo.toml",
        "/web/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/..\\..\\Cargo.toml",
        "//etc/passwd",
        "/./index.html",
        "/index.html%00.js",
        "http://localhost/../../etc/passwd",
    ] {
        let reply = get(&server, path).await;
        assert!(
            reply.status == 404 || reply.status == 400,
            "{path}: {}",
            reply.status
        );
        assert!(
            !String::from_utf8_lossy(&reply.body).contains("[package]"),
            "{path}"
        );
    }
    server.shutdown().await;
}

/// Asserts the server refused a request with a 4xx (or closed without answering) and still
/// serves the page to the next client.
async fn refused_then_next_client_served(server: &Server, request: &[u8], expected: &[u16]) {
    let bytes = raw(server, request).await;
    if let Some(reply) = parse_reply(&bytes) {
        assert!(
            expected.contains(&reply.status),
            "{} for {:?}",
            reply.status,
            String::from_utf8_lossy(&request[..request.len().min(60)])
        );
    } else {
        assert!(
            bytes.is_empty() || bytes.starts_with(b"HTTP/1.1 4"),
            "{bytes:?}"
        );
    }
    assert_eq!(get(server, "/").await.status, 200);
}

#[tokio::test]
async fn oversized_headers_get_431_and_the_next_client_is_served() {
    let server = plain_server().await;
    let long = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    refused_then_next_client_served(&server, long.as_bytes(), &[431]).await;
    let mut many = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    refused_then_next_client_served(&server, many.as_bytes(), &[431]).await;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "p".repeat(64 * 1024));
    refused_then_next_client_served(&server, long_path.as_bytes(), &[414, 431]).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_are_rejected_and_the_next_client_is_served() {
    let server = plain_server().await;
    let malformed: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
    ];
    for request in malformed {
        refused_then_next_client_served(&server, request, &[400]).await;
    }
    // A client that connects and says nothing, or leaves half a request, ties nothing up for
    // the next one.
    let _silent = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut half = TcpStream::connect(server.local_addr()).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    assert_eq!(get(&server, "/").await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn only_get_and_head_are_served() {
    let server = plain_server().await;
    let post = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let reply = parse_reply(&raw(&server, post).await).unwrap();
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let head = b"HEAD /app.js HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let reply = parse_reply(&raw(&server, head).await).unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(
        reply.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_websocket_upgrades_on_the_page_port_at_the_root_and_the_signal_path() {
    // Given one server serving the page,
    let server = plain_server().await;
    assert_eq!(get(&server, "/").await.status, 200);
    // a native client given the base URL and the page's path both register.
    registers(&server.url(), &TlsOptions::default()).await;
    let signal_url = format!("ws://{}{SIGNAL_PATH}", server.local_addr());
    registers(&signal_url, &TlsOptions::default()).await;
    // A plain GET of the signaling path says how to use it.
    let reply = get(&server, SIGNAL_PATH).await;
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("upgrade"), Some("websocket"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_handshake_with_a_wrong_version_is_refused_and_others_still_upgrade() {
    let server = plain_server().await;
    let request =
        b"GET /signal HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let reply = parse_reply(&raw(&server, request).await).unwrap();
    assert_eq!(reply.status, 426);
    assert_eq!(reply.header("sec-websocket-version"), Some("13"));
    let keyless = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Version: 13\r\nConnection: close\r\n\r\n";
    let reply = parse_reply(&raw(&server, keyless).await).unwrap();
    assert_eq!(reply.status, 400);
    registers(&server.url(), &TlsOptions::default()).await;
    server.shutdown().await;
}

#[tokio::test]
async fn one_keep_alive_connection_fetches_a_file_then_upgrades() {
    let server = plain_server().await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Read exactly one response (head, then Content-Length bytes), leaving the stream open.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .expect("a response in time")
            .unwrap();
        head.push(byte[0]);
    }
    let reply = parse_reply(&head).unwrap();
    assert_eq!(reply.status, 200);
    let length: usize = reply.header("content-length").unwrap().parse().unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    let url = format!("ws://{}{SIGNAL_PATH}", server.local_addr());
    let (mut ws, response) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("upgraded in time")
            .unwrap();
    assert_eq!(response.status(), 101);
    use futures_util::{SinkExt, StreamExt};
    let register = SignalMessage::from(Register::named("pc")).encode();
    ws.send(tokio_tungstenite::tungstenite::Message::text(register))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = frame.into_text().unwrap();
    assert!(
        matches!(
            SignalMessage::parse(&text),
            Ok(SignalMessage::Registered(_))
        ),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn with_tls_the_page_is_served_over_https_and_signaling_upgrades_over_wss() {
    // Given a server with a self-signed certificate,
    let tls = ServerTls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let fingerprint = tls.fingerprint();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls = Some(tls);
    let server = Server::bind(config).await.unwrap();
    assert!(server.url().starts_with("wss://"));
    assert!(server.page_url().starts_with("https://"));
    let pinned = TlsOptions::pinned(&fingerprint).unwrap();
    // when a client that trusts it fetches the page over TLS,
    let connector = tokio_rustls::TlsConnector::from(pinned.client_config().unwrap());
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let bytes = exchange(
        stream,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    // then it gets the page with its headers,
    let reply = parse_reply(&bytes).unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_security_headers(&reply);
    // and signaling upgrades over wss:// on the same port, at both paths.
    registers(&server.url(), &pinned).await;
    let signal_url = format!(
        "wss://localhost:{}{SIGNAL_PATH}",
        server.local_addr().port()
    );
    registers(&signal_url, &pinned).await;
    // Plain HTTP on the TLS port gets nothing, and the port still serves TLS afterwards.
    let plain = raw(&server, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(parse_reply(&plain).is_none(), "{plain:?}");
    registers(&server.url(), &pinned).await;
    server.shutdown().await;
}

#[test]
fn the_binary_prints_where_the_page_is() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcdesk-signal"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut page = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("web page at ") {
            page = Some(url.to_string());
        }
        if line.starts_with("listening on ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let page = page.expect("a `web page at URL` line before `listening on`");
    assert!(
        page.starts_with("http://127.0.0.1:") && page.ends_with('/'),
        "{page}"
    );
}
