//! Signaling server load benchmark: idle memory per connection, completed pairings per second and
//! relay latency, with 1,000 and 10,000 concurrent WebSocket connections on loopback.
//!
//! Run with `cargo xtask bench signal` (= `cargo run --profile bench -p rtcdesk-benches --bin
//! signal`). Optional arguments: connection counts (default `1000 10000`) and `--seconds S` of
//! pairing load per count (default 5).
//!
//! The server runs in a child process (this same binary, `serve` mode) so its RSS can be read from
//! `/proc/<pid>/status` without the clients' memory. The clients are `rtcdesk_signal`'s own
//! `SignalClient`s, half of them puppets and half controllers, in pairs. One pairing is the whole
//! v1 dance: register → connect → (incoming, ringing) → accept → accepted → offer → answer → 4
//! candidates each way → leave → left. Relay latency is one-way, from just before a relayed
//! message (offer, answer, candidate) is sent to when the other end has it, measured while all
//! pairs run the dance at full speed, and again at a light steady rate.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rtcdesk_proto::signal::{
    Accept, Answer, Candidate, Connect, Leave, Offer, Register, SessionId, SignalMessage,
};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::router::RouterConfig;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::TlsOptions;
use tokio::sync::Semaphore;

const SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\nm=video 9 UDP/TLS/RTP/SAVPF 45\r\nc=IN IP4 0.0.0.0\r\n\
a=rtpmap:45 AV1/90000\r\na=mid:0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:1\r\n";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve();
    }
    let mut counts = Vec::new();
    let mut seconds = 5u64;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--seconds" {
            seconds = iter
                .next()
                .ok_or_else(|| anyhow!("--seconds needs a value"))?
                .parse()?;
        } else {
            counts.push(arg.parse::<usize>().context("connection count")?);
        }
    }
    if counts.is_empty() {
        counts = vec![1000, 10_000];
    }
    let nofile = rlimit::increase_nofile_limit(65_536).context("raising the open-files limit")?;
    print_header(nofile, seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    core_only(Duration::from_secs(seconds))?;
    for count in counts {
        if count < 2 || count % 2 != 0 {
            bail!("connection counts must be even and at least 2");
        }
        if (count as u64) + 64 > nofile {
            bail!("{count} connections need more than the open-files limit of {nofile}");
        }
        runtime.block_on(run(count, Duration::from_secs(seconds)))?;
    }
    Ok(())
}

fn print_header(nofile: u64, seconds: u64) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("# rtcdesk-signal load benchmark");
    println!("command: cargo xtask bench signal  (cargo run --profile bench -p rtcdesk-benches --bin signal [COUNTS..] [--seconds S])");
    println!(
        "machine: {cpu}, {cores} cores, Linux {}; open-files limit {nofile}",
        kernel.trim()
    );
    println!("server: child process, tokio multi-thread runtime, ws:// on 127.0.0.1; clients: SignalClient in this process (same cores)");
    println!(
        "pairing load: all pairs loop the full dance; counted for {seconds} s after a {} s warm-up",
        WARM_UP.as_secs()
    );
    println!();
}

/// `serve` mode: run a server on 127.0.0.1:0 with limits raised for load, print its address,
/// and exit when stdin closes (the parent ended).
fn serve() -> anyhow::Result<()> {
    // RTCDESK_BENCH_SERVER_THREADS=N sets the server's worker threads (default: one per core).
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = std::env::var("RTCDESK_BENCH_SERVER_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        let mut config = ServerConfig::new("127.0.0.1:0".parse()?);
        config.router = RouterConfig {
            max_connections_per_address: 1_000_000,
            // The bench drives pairs as fast as they go; a real client sends far less.
            flood_rate: 100_000,
            flood_burst: 100_000,
            ping_interval: Duration::from_millis(env_ms("RTCDESK_BENCH_PING_MS", 3000)),
            dead_timeout: Duration::from_millis(env_ms("RTCDESK_BENCH_DEAD_MS", 6000)),
            ..RouterConfig::default()
        };
        let server = Server::bind(config).await?;
        println!("listening on {}", server.url());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        })
        .await?;
        Ok(())
    })
}

/// The router core alone, driven directly on this thread (no sockets, no tasks): the ceiling
/// that the I/O shell works under. 500 pairs loop the same dance as over sockets; only the
/// messages a client would need to read (`registered`, `ringing`) are parsed.
fn core_only(duration: Duration) -> anyhow::Result<()> {
    use rtcdesk_signal::router::{ConnId, Output, Router};
    let now = Instant::now();
    let config = RouterConfig {
        max_connections_per_address: usize::MAX,
        flood_rate: u32::MAX / 1000,
        flood_burst: u32::MAX / 1000,
        ..RouterConfig::default()
    };
    let mut router = Router::new(config, now);
    let pairs = 500u64;
    for conn in 0..2 * pairs {
        router.handle_open(ConnId(conn), "127.0.0.1:1".parse()?, now);
    }
    // Sends one message; returns the texts the router sends in answer.
    let step = |router: &mut Router, conn: u64, message: SignalMessage| {
        router.handle_text(ConnId(conn), &message.encode(), Instant::now());
        let mut texts = Vec::new();
        while let Some(output) = router.poll_output() {
            if let Output::Send { text, .. } = output {
                texts.push(text);
            }
        }
        texts
    };
    let started = Instant::now();
    let mut completed = 0u64;
    while started.elapsed() < duration {
        for pair in 0..pairs {
            let (puppet, controller) = (2 * pair, 2 * pair + 1);
            let texts = step(&mut router, puppet, Register::named("b").into());
            let SignalMessage::Registered(registered) = SignalMessage::parse(&texts[0])? else {
                bail!("expected registered");
            };
            let connect = Connect {
                code: registered.code,
                name: "b".into(),
                pake: None,
            };
            // The first output goes to the puppet (incoming), the second to the controller.
            let texts = step(&mut router, controller, connect.into());
            let SignalMessage::Ringing(ringing) = SignalMessage::parse(&texts[1])? else {
                bail!("expected ringing");
            };
            let session = ringing.session;
            let accept = Accept {
                session: session.clone(),
            };
            step(&mut router, puppet, accept.into());
            let offer = Offer {
                session: session.clone(),
                sdp: SDP.into(),
            };
            step(&mut router, puppet, offer.into());
            let answer = Answer {
                session: session.clone(),
                sdp: SDP.into(),
            };
            step(&mut router, controller, answer.into());
            for i in 0..4 {
                step(&mut router, puppet, candidate(&session, i));
                step(&mut router, controller, candidate(&session, i + 4));
            }
            step(&mut router, controller, Leave { session }.into());
            completed += 1;
        }
    }
    let rate = completed as f64 / started.elapsed().as_secs_f64();
    println!("## router core alone (one thread, no sockets)");
    println!(
        "pairings: {rate:.0} pairings/s ({completed} in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    println!();
    Ok(())
}

/// A duration in milliseconds from the environment, for experiments with the server's timers.
fn env_ms(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The server child; killed when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn spawn() -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("server said {line:?}"))?
            .to_string();
        Ok(Self { child, url })
    }

    /// CPU time the server has used so far (user + system), from `/proc/<pid>/stat`.
    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .ok_or_else(|| anyhow!("odd /proc stat"))?;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // Linux reports these in USER_HZ, 100 on every mainstream configuration.
        Ok(ticks as f64 / 100.0)
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", self.child.id()))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run(count: usize, duration: Duration) -> anyhow::Result<()> {
    println!(
        "## {count} concurrent connections (load average before: {})",
        load_average()
    );
    let server = ServerProcess::spawn()?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = server.rss_kib()?;

    // Open every connection, each registering once (an idle puppet waiting with its code).
    let started = Instant::now();
    let clients = open_clients(&server.url, count).await?;
    let opened_in = started.elapsed();
    // Let the server settle (handshake buffers freed, tasks parked).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.rss_kib()?;
    let per_conn = (rss_idle.saturating_sub(rss_before) as f64) * 1024.0 / count as f64;
    println!(
        "idle: {count} connections opened and registered in {:.2} s; server RSS {rss_before} KiB -> {rss_idle} KiB = {:.1} KiB ({:.0} bytes) per idle connection",
        opened_in.as_secs_f64(),
        per_conn / 1024.0,
        per_conn
    );

    // Full-speed pairing dance on every pair.
    let (pairings, latencies, clients, server_cpu) =
        pairing_load(clients, duration, &server).await?;
    let rate = pairings as f64 / duration.as_secs_f64();
    println!(
        "pairings: {pairings} completed in {:.1} s = {rate:.0} pairings/s ({} pairs looping)",
        duration.as_secs_f64(),
        count / 2
    );
    println!(
        "server CPU during the count: {:.2} s = {:.0}% of one core, {:.0} µs per pairing (29 frames)",
        server_cpu,
        100.0 * server_cpu / duration.as_secs_f64(),
        1e6 * server_cpu / pairings.max(1) as f64
    );
    print_latency(
        "relay latency under full pairing load (CPU saturated)",
        latencies,
    );

    // Light steady load: every pair in an accepted session, the puppets together relaying
    // STEADY_RATE candidates per second, phases spread evenly.
    let latencies = steady_relay(clients, duration).await?;
    print_latency(
        &format!("relay latency at a steady {STEADY_RATE:.0} relays/s over all pairs"),
        latencies,
    );
    println!(
        "server RSS after load: {} KiB; load average after: {}",
        server.rss_kib()?,
        load_average()
    );
    println!();
    Ok(())
}

/// The 1/5/15-minute load averages: other work on the machine skews every figure here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn open_clients(url: &str, count: usize) -> anyhow::Result<Vec<SignalClient>> {
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let gate = gate.clone();
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let mut client = SignalClient::connect(&url, &TlsOptions::default()).await?;
            client.send(&Register::named("bench").into()).await?;
            match client.recv().await? {
                Some(SignalMessage::Registered(_)) => Ok::<_, anyhow::Error>(client),
                other => bail!("expected registered, got {other:?}"),
            }
        }));
    }
    let mut clients = Vec::with_capacity(count);
    for task in tasks {
        clients.push(task.await??);
    }
    Ok(clients)
}

/// Relays per second, over all pairs together, in the steady-load phase.
const STEADY_RATE: f64 = 2000.0;
/// Pairing load runs this long before pairings are counted.
const WARM_UP: Duration = Duration::from_secs(2);

async fn steady_relay(
    clients: Vec<SignalClient>,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let pairs = clients.len() / 2;
    let period = Duration::from_secs_f64(pairs as f64 / STEADY_RATE);
    // Every pair establishes its session first; the steady relays start together afterwards,
    // so the burst of set-ups is not measured as relay latency.
    let established = Arc::new(tokio::sync::Barrier::new(pairs + 1));
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<tokio::time::Instant>);
    let mut tasks = Vec::new();
    let mut clients = clients.into_iter();
    let mut index = 0u32;
    while let (Some(puppet), Some(controller)) = (clients.next(), clients.next()) {
        let phase = period.mul_f64(f64::from(index) / pairs as f64);
        index += 1;
        let established = established.clone();
        let mut start_rx = start_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut pair = Pair {
                puppet,
                controller,
                latencies: Vec::new(),
            };
            let session = pair.establish().await;
            established.wait().await;
            let session = session?;
            let start = start_rx
                .wait_for(Option::is_some)
                .await?
                .ok_or_else(|| anyhow!("no start time"))?;
            pair.latencies.clear();
            let mut ticks = tokio::time::interval_at(start + phase, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let end = start + duration;
            let mut i = 0;
            loop {
                let tick = ticks.tick().await;
                if tick >= end {
                    break;
                }
                pair.relay(true, candidate(&session, i)).await?;
                i += 1;
            }
            Ok::<_, anyhow::Error>(pair.latencies)
        }));
    }
    established.wait().await;
    start_tx.send(Some(
        tokio::time::Instant::now() + Duration::from_millis(200),
    ))?;
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok(latencies)
}

async fn pairing_load(
    clients: Vec<SignalClient>,
    duration: Duration,
    server: &ServerProcess,
) -> anyhow::Result<(u64, Vec<Duration>, Vec<SignalClient>, f64)> {
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut clients = clients.into_iter();
    while let (Some(puppet), Some(controller)) = (clients.next(), clients.next()) {
        let completed = completed.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut pair = Pair {
                puppet,
                controller,
                latencies: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) {
                pair.dance().await?;
                completed.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(pair)
        }));
    }
    // Every pair starts at once; let the first wave pass before counting.
    tokio::time::sleep(WARM_UP).await;
    let start_count = completed.load(Ordering::Relaxed);
    let start_cpu = server.cpu_seconds()?;
    tokio::time::sleep(duration).await;
    let total = completed.load(Ordering::Relaxed) - start_count;
    let server_cpu = server.cpu_seconds()? - start_cpu;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut clients = Vec::new();
    for task in tasks {
        let pair = task.await??;
        latencies.extend(pair.latencies);
        clients.push(pair.puppet);
        clients.push(pair.controller);
    }
    Ok((total, latencies, clients, server_cpu))
}

struct Pair {
    puppet: SignalClient,
    controller: SignalClient,
    latencies: Vec<Duration>,
}

impl Pair {
    async fn dance(&mut self) -> anyhow::Result<()> {
        let session = self.establish().await?;
        let offer = Offer {
            session: session.clone(),
            sdp: SDP.into(),
        };
        self.relay(true, offer.into()).await?;
        let answer = Answer {
            session: session.clone(),
            sdp: SDP.into(),
        };
        self.relay(false, answer.into()).await?;
        for i in 0..4 {
            self.relay(true, candidate(&session, i)).await?;
            self.relay(false, candidate(&session, i + 4)).await?;
        }
        self.controller
            .send(
                &Leave {
                    session: session.clone(),
                }
                .into(),
            )
            .await?;
        match next(&mut self.puppet).await? {
            SignalMessage::Left(_) => Ok(()),
            other => bail!("expected left, got {other:?}"),
        }
    }

    /// register → connect → incoming/ringing → accept → accepted; returns the session.
    async fn establish(&mut self) -> anyhow::Result<SessionId> {
        self.puppet.send(&Register::named("bench").into()).await?;
        let code = match next(&mut self.puppet).await? {
            SignalMessage::Registered(r) => r.code,
            other => bail!("expected registered, got {other:?}"),
        };
        self.controller
            .send(
                &Connect {
                    code,
                    name: "bench".into(),
                    pake: None,
                }
                .into(),
            )
            .await?;
        let session = match next(&mut self.controller).await? {
            SignalMessage::Ringing(r) => r.session,
            other => bail!("expected ringing, got {other:?}"),
        };
        match next(&mut self.puppet).await? {
            SignalMessage::Incoming(_) => {}
            other => bail!("expected incoming, got {other:?}"),
        }
        self.puppet
            .send(
                &Accept {
                    session: session.clone(),
                }
                .into(),
            )
            .await?;
        match next(&mut self.controller).await? {
            SignalMessage::Accepted(_) => Ok(session),
            other => bail!("expected accepted, got {other:?}"),
        }
    }

    /// Sends from one end and times its arrival at the other.
    async fn relay(&mut self, from_puppet: bool, message: SignalMessage) -> anyhow::Result<()> {
        let (from, to) = if from_puppet {
            (&mut self.puppet, &mut self.controller)
        } else {
            (&mut self.controller, &mut self.puppet)
        };
        let sent = Instant::now();
        from.send(&message).await?;
        let got = next(to).await?;
        self.latencies.push(sent.elapsed());
        if got != message {
            bail!("relayed {message:?}, received {got:?}");
        }
        Ok(())
    }
}

fn candidate(session: &SessionId, i: u32) -> SignalMessage {
    Candidate {
        session: session.clone(),
        candidate: format!(
            "candidate:{i} 1 udp 2113937151 192.0.2.{} {} typ host generation 0",
            i + 1,
            50_000 + i
        ),
        mid: Some("0".into()),
    }
    .into()
}

async fn next(client: &mut SignalClient) -> anyhow::Result<SignalMessage> {
    tokio::time::timeout(Duration::from_secs(30), client.recv())
        .await
        .context("no message within 30 s")??
        .ok_or_else(|| anyhow!("the server closed the connection"))
}

fn print_latency(what: &str, mut latencies: Vec<Duration>) {
    if latencies.is_empty() {
        println!("{what}: no samples");
        return;
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        latencies.len()
    );
}
