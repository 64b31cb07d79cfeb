//! The browser controller page and the HTTP rules it is served by, without I/O.
//!
//! The page lives in `web/` at the repository root and is compiled into the binary
//! (`include_bytes!`), so nothing is read from disk at run time and no request path ever reaches
//! a file system: [`route`] answers from a fixed allow-list ([`ASSETS`]) by exact path, which
//! makes `..`, `%2e%2e`, doubled slashes and every other traversal trick a plain 404. The same
//! listener carries the signaling WebSocket: a `GET` with `Upgrade: websocket` at `/` or at
//! [`SIGNAL_PATH`] becomes [`Route::Upgrade`]. `web/HTTP.md` documents what is served where.

use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, StatusCode, Version};

/// The path the page opens its signaling WebSocket on. `/` with an `Upgrade` header works too,
/// for native clients given the server's base URL.
pub const SIGNAL_PATH: &str = "/signal";

/// The Content-Security-Policy of every response: scripts, styles and images only from this
/// origin (no inline script or style, no `eval`), WebSockets to this server (`ws:`/`wss:`, since
/// older browsers do not count them as `'self'`), video from the WebRTC stream, no plugins, no
/// framing, no forms, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; \
connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// One embedded file of the page.
#[derive(Debug)]
pub struct Asset {
    /// The exact request path it answers.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes, as they are in `web/`.
    pub body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $file:literal, $content_type:literal;)*) => {
        /// Every file the server answers, by exact path; anything else is 404.
        pub const ASSETS: &[Asset] = &[
            $(Asset {
                path: $path,
                content_type: $content_type,
                body: include_bytes!(concat!("../../../web/", $file)),
            },)*
        ];
    };
}

assets! {
    "/" => "index.html", "text/html; charset=utf-8";
    "/index.html" => "index.html", "text/html; charset=utf-8";
    "/style.css" => "style.css", "text/css; charset=utf-8";
    "/app.js" => "app.js", "text/javascript; charset=utf-8";
    "/signaling.js" => "signaling.js", "text/javascript; charset=utf-8";
    "/session.js" => "session.js", "text/javascript; charset=utf-8";
    "/input.js" => "input.js", "text/javascript; charset=utf-8";
    "/keycodes.js" => "keycodes.js", "text/javascript; charset=utf-8";
    "/stats.js" => "stats.js", "text/javascript; charset=utf-8";
    "/control.js" => "control.js", "text/javascript; charset=utf-8";
    "/favicon.svg" => "favicon.svg", "image/svg+xml";
}

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Serve this file (`GET` or `HEAD`).
    Asset(&'static Asset),
    /// Switch to the signaling WebSocket; answer 101 with this `Sec-WebSocket-Accept`.
    Upgrade {
        /// The `Sec-WebSocket-Accept` value for the client's key.
        accept_key: String,
    },
    /// An error response with a short plain-text reason.
    Refuse {
        /// The status to answer with.
        status: StatusCode,
        /// What was wrong, for the person reading the response.
        reason: &'static str,
    },
}

impl PartialEq for Asset {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for Asset {}

/// Decides what a request gets, from its method, version, path (without the query) and headers.
pub fn route(method: &Method, version: Version, path: &str, headers: &HeaderMap) -> Route {
    let wants_websocket = header_has_token(headers, hyper::header::UPGRADE, "websocket");
    if wants_websocket && (path == "/" || path == SIGNAL_PATH) {
        return websocket_upgrade(method, version, headers);
    }
    if path == SIGNAL_PATH {
        return Route::Refuse {
            status: StatusCode::UPGRADE_REQUIRED,
            reason: "this path is the signaling WebSocket; connect with Upgrade: websocket",
        };
    }
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return Route::Refuse {
            status: StatusCode::NOT_FOUND,
            reason: "not found",
        };
    };
    if method != Method::GET && method != Method::HEAD {
        return Route::Refuse {
            status: StatusCode::METHOD_NOT_ALLOWED,
            reason: "only GET and HEAD are served",
        };
    }
    Route::Asset(asset)
}

/// Checks an RFC 6455 opening handshake and computes its accept key.
fn websocket_upgrade(method: &Method, version: Version, headers: &HeaderMap) -> Route {
    let refuse = |status, reason| Route::Refuse { status, reason };
    if method != Method::GET {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket opens with GET");
    }
    if version != Version::HTTP_11 {
        return refuse(StatusCode::BAD_REQUEST, "a WebSocket opens over HTTP/1.1");
    }
    if !header_has_token(headers, hyper::header::CONNECTION, "upgrade") {
        return refuse(StatusCode::BAD_REQUEST, "Connection: upgrade is missing");
    }
    if headers.get(hyper::header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken",
        );
    }
    let Some(key) = headers.get(hyper::header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing");
    };
    // A key is 16 random bytes in base64: 24 characters. Its value is not decoded (RFC 6455
    // §4.2.1 only asks that it be there); the length check keeps junk out of the hash.
    if key.len() != 24 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key is not 16 bytes of base64",
        );
    }
    Route::Upgrade {
        accept_key: tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
    }
}

/// Whether a comma-separated header holds `token`, case-insensitively (`Connection: keep-alive,
/// Upgrade` holds `upgrade`).
fn header_has_token(headers: &HeaderMap, name: hyper::header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// The headers every HTTP response carries (besides `Content-Type` and `Content-Length`): the
/// CSP, no MIME sniffing, no referrer, no framing, and no caching so an upgraded server's page is
/// fetched fresh.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-cache"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Route {
        route(&Method::GET, Version::HTTP_11, path, &HeaderMap::new())
    }

    fn upgrade_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
        headers.insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        headers
    }

    #[test]
    fn the_page_and_each_asset_are_served_by_exact_path_only() {
        for asset in ASSETS {
            assert_eq!(get(asset.path), Route::Asset(asset), "{}", asset.path);
            assert!(!asset.body.is_empty(), "{} is empty", asset.path);
        }
        for path in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "//app.js",
            "/app.js/",
            "/APP.JS",
            "/web/app.js",
            "/.git/config",
            "",
        ] {
            assert!(
                matches!(
                    get(path),
                    Route::Refuse {
                        status: StatusCode::NOT_FOUND,
                        ..
                    }
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn an_rfc_6455_handshake_upgrades_at_the_root_and_the_signal_path() {
        for path in ["/", SIGNAL_PATH] {
            let routed = route(&Method::GET, Version::HTTP_11, path, &upgrade_headers());
            assert_eq!(
                routed,
                Route::Upgrade {
                    // The example of RFC 6455 section 1.3.
                    accept_key: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
                }
            );
        }
        assert!(matches!(
            route(
                &Method::GET,
                Version::HTTP_11,
                "/app.js",
                &upgrade_headers()
            ),
            Route::Asset(_)
        ));
    }

    #[test]
    fn a_broken_handshake_is_refused_with_the_reason() {
        let mut headers = upgrade_headers();
        headers.insert("sec-websocket-version", HeaderValue::from_static("8"));
        let routed = route(&Method::GET, Version::HTTP_11, "/", &headers);
        assert!(matches!(
            routed,
            Route::Refuse {
                status: StatusCode::UPGRADE_REQUIRED,
                ..
            }
        ));
        let mut headers = upgrade_headers();
        headers.remove("sec-websocket-key");
        let routed = route(&Method::GET, Version::HTTP_11, "/", &headers);
        assert!(matches!(
            routed,
            Route::Refuse {
                status: StatusCode::BAD_REQUEST,
                ..
            }
        ));
        let routed = route(&Method::POST, Version::HTTP_11, "/", &upgrade_headers());
        assert!(matches!(
            routed,
            Route::Refuse {
                status: StatusCode::METHOD_NOT_ALLOWED,
                ..
            }
        ));
        let routed = route(&Method::GET, Version::HTTP_10, "/", &upgrade_headers());
        assert!(matches!(
            routed,
            Route::Refuse {
                status: StatusCode::BAD_REQUEST,
                ..
            }
        ));
        assert!(matches!(
            get(SIGNAL_PATH),
            Route::Refuse {
                status: StatusCode::UPGRADE_REQUIRED,
                ..
            }
        ));
    }

    #[test]
    fn only_get_and_head_fetch_the_page() {
        let headers = HeaderMap::new();
        assert!(matches!(
            route(&Method::HEAD, Version::HTTP_11, "/", &headers),
            Route::Asset(_)
        ));
        assert!(matches!(
            route(&Method::POST, Version::HTTP_11, "/", &headers),
            Route::Refuse {
                status: StatusCode::METHOD_NOT_ALLOWED,
                ..
            }
        ));
    }

    #[test]
    fn the_page_has_no_inline_script_the_csp_would_block() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
        assert!(!html.contains("<script>"), "inline script in index.html");
        assert!(!html.contains(" style="), "inline style in index.html");
        let handler = html.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "inline event handler in index.html");
    }
}
