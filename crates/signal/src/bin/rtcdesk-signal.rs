//! `rtcdesk-signal`: the rtcdesk signaling server.
//!
//! Serves signaling protocol v1 over `ws://` or, with a certificate, `wss://`, and on the same
//! port the browser controller page (`http://` or `https://`). Prints the page's URL and the URL
//! it listens on (and a self-signed certificate's fingerprint) on stdout; logs go to stderr,
//! filtered by `RUST_LOG` (default `info`). Control codes and SDP are never logged at info.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use rtcdesk_signal::ice::IceConfig;
use rtcdesk_signal::router::RouterConfig;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::ServerTls;

/// The rtcdesk signaling server: introduces puppets and controllers by control code and relays
/// their WebRTC offers, answers and candidates. On the same port it serves the browser
/// controller page: open http://HOST:PORT/ (https:// with TLS) and type the code.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address and port to listen on. Use 0.0.0.0:PORT to serve the LAN or the internet (then
    /// use TLS), port 0 to pick a free port (the URL printed on stdout tells which).
    #[arg(long, default_value = "127.0.0.1:8443", env = "RTCDESK_SIGNAL_LISTEN")]
    listen: SocketAddr,

    /// PEM certificate chain (end-entity first) to serve wss:// with; needs --tls-key.
    #[arg(long, requires = "tls_key", conflicts_with = "self_signed")]
    tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve wss:// with a certificate made at start-up for localhost, 127.0.0.1, ::1 and the
    /// listen address (plus --name). Its SHA-256 fingerprint is printed so clients can pin it.
    /// For tests and LAN use.
    #[arg(long)]
    self_signed: bool,

    /// Extra DNS name or IP address for the --self-signed certificate (repeatable).
    #[arg(long = "name", value_name = "NAME", requires = "self_signed")]
    names: Vec<String>,

    /// Seconds a control code stays valid (sent to puppets as `expires_in`).
    #[arg(long, default_value_t = 600)]
    code_lifetime: u64,

    /// Open connections allowed from one IP address (raise it for load tests).
    #[arg(long, default_value_t = 256)]
    max_connections_per_address: usize,

    /// Sessions one connection may take part in at once.
    #[arg(long, default_value_t = 64)]
    max_sessions_per_connection: usize,

    /// Failed `connect` attempts allowed per address per minute before `rate_limited`.
    #[arg(long, default_value_t = 5)]
    max_failed_connects: u32,

    /// Milliseconds between pings to idle connections.
    #[arg(long, default_value_t = 3000)]
    ping_interval_ms: u64,

    /// Milliseconds of silence after which a connection is dropped (and its peers told `left`).
    #[arg(long, default_value_t = 6000)]
    dead_timeout_ms: u64,

    /// A STUN server to hand every client (HOST:PORT or stun:HOST:PORT; repeatable). Clients
    /// use the servers handed to them unless they were given their own --stun/--turn.
    #[arg(long, value_name = "HOST:PORT")]
    stun: Vec<String>,

    /// A TURN server to hand every client, with fresh time-limited credentials made with
    /// --turn-secret: `turn:HOST:PORT` (UDP), `turn:HOST:PORT?transport=tcp` (for networks that
    /// block UDP), `turns:HOST:PORT` (TLS); repeatable. Then two machines behind any NATs connect.
    #[arg(long, value_name = "URL")]
    turn: Vec<String>,

    /// The TURN server's shared secret (coturn: `use-auth-secret` with `static-auth-secret`),
    /// or set RTCDESK_TURN_SECRET, which keeps it out of `ps`. It never leaves this server:
    /// clients get credentials derived from it (TURN REST: `EXPIRY:LABEL` and an HMAC).
    #[arg(
        long,
        value_name = "SECRET",
        env = "RTCDESK_TURN_SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<String>,

    /// Seconds the handed-out TURN credentials stay valid.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    turn_credential_lifetime: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tls = server_tls(&args)?;
    if tls.is_none() && !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "serving plain ws:// on a non-loopback address: control codes and SDP cross the \
             network unencrypted; use --tls-cert/--tls-key or --self-signed"
        );
    }
    if let Some(tls) = &tls {
        println!("certificate sha256 fingerprint: {}", tls.fingerprint());
    }
    let ice = IceConfig::new(
        &args.stun,
        &args.turn,
        args.turn_secret.as_deref(),
        Duration::from_secs(args.turn_credential_lifetime),
    )?;
    if !ice.is_empty() {
        tracing::info!(
            stun = args.stun.len(),
            turn = args.turn.len(),
            "handing out ICE servers"
        );
    }
    let router = RouterConfig {
        ice,
        code_lifetime: Duration::from_secs(args.code_lifetime),
        max_connections_per_address: args.max_connections_per_address,
        max_sessions_per_connection: args.max_sessions_per_connection,
        max_failed_connects: args.max_failed_connects,
        ping_interval: Duration::from_millis(args.ping_interval_ms),
        dead_timeout: Duration::from_millis(args.dead_timeout_ms),
        ..RouterConfig::default()
    };
    if router.ping_interval.is_zero() || router.dead_timeout <= router.ping_interval {
        bail!("--dead-timeout-ms must be longer than --ping-interval-ms, which must not be 0");
    }
    let mut config = ServerConfig::new(args.listen);
    config.router = router;
    config.tls = tls;
    let server = Server::bind(config).await?;
    println!("web page at {}", server.page_url());
    println!("listening on {}", server.url());
    tokio::select! {
        () = server_wait(server) => bail!("the server stopped"),
        signal = tokio::signal::ctrl_c() => {
            signal.context("cannot wait for Ctrl-C")?;
            tracing::info!("interrupted; stopping");
        }
    }
    Ok(())
}

async fn server_wait(server: Server) {
    server.wait().await;
}

fn server_tls(args: &Args) -> anyhow::Result<Option<ServerTls>> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let tls = ServerTls::from_pem_files(cert, key)
            .with_context(|| format!("cannot use {} / {}", cert.display(), key.display()))?;
        return Ok(Some(tls));
    }
    if !args.self_signed {
        return Ok(None);
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let ip = args.listen.ip();
    if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
        names.push(ip.to_string());
    }
    names.extend(args.names.iter().cloned());
    let tls = ServerTls::self_signed(&names).context("cannot make a self-signed certificate")?;
    Ok(Some(tls))
}
