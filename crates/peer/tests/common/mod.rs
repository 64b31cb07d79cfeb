//! A pair of peers on loopback, signaled directly through channels, optionally through a lossy
//! UDP relay; and synthetic AV1 frames that str0m's packetizer takes as real.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtcdesk_peer::{Peer, PeerConfig, PeerEvent, PeerHandle, Role, VideoReceiver};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Generous bound for anything that should take milliseconds on loopback; only a hang hits it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One end of the pair, after its candidates are wired to the other end.
pub struct Side {
    pub handle: PeerHandle,
    /// Every event except local candidates (those went to the other side).
    /// GatheringComplete is both applied to the other side and passed on.
    pub events: mpsc::UnboundedReceiver<PeerEvent>,
    video: Option<VideoReceiver>,
    backlog: std::collections::VecDeque<PeerEvent>,
}

impl Side {
    /// Received video frames.
    pub fn video(&mut self) -> &mut VideoReceiver {
        self.video.as_mut().expect("video receiver taken")
    }

    /// Takes the video receiver, e.g. into a decoder task.
    pub fn take_video(&mut self) -> VideoReceiver {
        self.video.take().expect("video receiver taken")
    }

    /// Waits for the first event `pick` accepts. Events it does not want are kept, in order,
    /// for later waits (so waiting for `Connected` does not lose an earlier `ChannelOpen`).
    pub async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(PeerEvent) -> Option<T>,
    ) -> T {
        for position in 0..self.backlog.len() {
            if let Some(value) = pick(self.backlog[position].clone()) {
                self.backlog.remove(position);
                return value;
            }
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("events ended while waiting for {what}"));
            if let Some(value) = pick(event.clone()) {
                return value;
            }
            if !matches!(event, PeerEvent::Stats(_)) {
                self.backlog.push_back(event);
            }
        }
    }

    pub async fn wait_for_event(&mut self, wanted: PeerEvent) {
        let what = format!("{wanted:?}");
        self.wait_for(&what, |e| (e == wanted).then_some(())).await
    }
}

pub fn loopback_config(role: Role) -> PeerConfig {
    let mut config = PeerConfig::new(role);
    config.bind = Some("127.0.0.1:0".parse().unwrap());
    config
}

/// Where each side should believe the other is (the relay), if not at its real address.
#[derive(Clone, Copy, Default)]
pub struct Rewrites {
    /// Address the puppet's candidates are rewritten to, as the controller sees them.
    pub puppet_seen_at: Option<SocketAddr>,
    /// Address the controller's candidates are rewritten to, as the puppet sees them.
    pub controller_seen_at: Option<SocketAddr>,
}

/// Starts both peers; `before_signaling` sees their addresses first (to set up a relay).
pub async fn start_pair(puppet_config: PeerConfig, controller_config: PeerConfig) -> (Peer, Peer) {
    let puppet = Peer::start(puppet_config).unwrap();
    let controller = Peer::start(controller_config).unwrap();
    (puppet, controller)
}

/// Offer, answer and trickled candidates, exchanged directly; returns once both are connected.
pub async fn connect(puppet: Peer, controller: Peer, rewrites: Rewrites) -> (Side, Side) {
    let offer = puppet.handle.create_offer().await.unwrap();
    let offer = rewrite_sdp(&offer, rewrites.puppet_seen_at);
    let answer = controller.handle.accept_offer(offer).await.unwrap();
    let answer = rewrite_sdp(&answer, rewrites.controller_seen_at);
    puppet.handle.accept_answer(answer).await.unwrap();

    let puppet_events = forward(
        puppet.events,
        controller.handle.clone(),
        rewrites.puppet_seen_at,
    );
    let controller_events = forward(
        controller.events,
        puppet.handle.clone(),
        rewrites.controller_seen_at,
    );
    let mut puppet = Side {
        handle: puppet.handle,
        events: puppet_events,
        video: Some(puppet.video),
        backlog: Default::default(),
    };
    let mut controller = Side {
        handle: controller.handle,
        events: controller_events,
        video: Some(controller.video),
        backlog: Default::default(),
    };
    puppet.wait_for_event(PeerEvent::Connected).await;
    controller.wait_for_event(PeerEvent::Connected).await;
    (puppet, controller)
}

/// Applies local candidates to the other side (the signaling server's job) and passes on the rest.
fn forward(
    mut events: mpsc::Receiver<PeerEvent>,
    other: PeerHandle,
    seen_at: Option<SocketAddr>,
) -> mpsc::UnboundedReceiver<PeerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PeerEvent::LocalCandidate { candidate, .. } => {
                    let candidate = rewrite_candidate(&candidate, seen_at);
                    let _ = other.add_remote_candidate(candidate).await;
                }
                PeerEvent::GatheringComplete => {
                    let _ = other.add_remote_candidate(String::new()).await;
                    let _ = tx.send(PeerEvent::GatheringComplete);
                }
                other_event => {
                    let _ = tx.send(other_event);
                }
            }
        }
    });
    rx
}

fn rewrite_candidate(candidate: &str, seen_at: Option<SocketAddr>) -> String {
    let Some(addr) = seen_at else {
        return candidate.to_string();
    };
    let mut parts: Vec<String> = candidate.split_whitespace().map(str::to_string).collect();
    parts[4] = addr.ip().to_string();
    parts[5] = addr.port().to_string();
    parts.join(" ")
}

fn rewrite_sdp(sdp: &str, seen_at: Option<SocketAddr>) -> String {
    sdp.split("\r\n")
        .map(|line| match line.strip_prefix("a=") {
            Some(rest) if rest.starts_with("candidate:") => {
                format!("a={}", rewrite_candidate(rest, seen_at))
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A UDP forwarder between the two peers that drops and reorders datagrams with a seeded RNG,
/// and can be cut off entirely to make a peer vanish.
pub struct Relay {
    pub facing_puppet: SocketAddr,
    pub facing_controller: SocketAddr,
    cut: Arc<AtomicBool>,
    pub forwarded: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    pub reordered: Arc<AtomicU64>,
}

impl Relay {
    pub async fn start(
        puppet: SocketAddr,
        controller: SocketAddr,
        loss: f64,
        reorder: f64,
        seed: u64,
    ) -> Relay {
        let a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let relay = Relay {
            facing_puppet: a.local_addr().unwrap(),
            facing_controller: b.local_addr().unwrap(),
            cut: Arc::new(AtomicBool::new(false)),
            forwarded: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            reordered: Arc::new(AtomicU64::new(0)),
        };
        for (from, to, destination, seed) in [
            (a.clone(), b.clone(), controller, seed),
            (b, a, puppet, seed ^ 0x5eed),
        ] {
            let cut = relay.cut.clone();
            let counters = (
                relay.forwarded.clone(),
                relay.dropped.clone(),
                relay.reordered.clone(),
            );
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut held: Option<Vec<u8>> = None;
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok((len, _)) = from.recv_from(&mut buf).await else {
                        return;
                    };
                    if cut.load(Ordering::Relaxed) || rng.random_bool(loss) {
                        counters.1.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let datagram = buf[..len].to_vec();
                    if held.is_none() && rng.random_bool(reorder) {
                        counters.2.fetch_add(1, Ordering::Relaxed);
                        held = Some(datagram);
                        continue;
                    }
                    let _ = to.send_to(&datagram, destination).await;
                    counters.0.fetch_add(1, Ordering::Relaxed);
                    if let Some(late) = held.take() {
                        let _ = to.send_to(&late, destination).await;
                        counters.0.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        relay
    }

    /// From now on nothing gets through, in either direction: both peers vanish for each other.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    pub fn rewrites(&self) -> Rewrites {
        Rewrites {
            puppet_seen_at: Some(self.facing_controller),
            controller_seen_at: Some(self.facing_puppet),
        }
    }
}

/// Connects a pair through a relay with the given loss and reordering.
pub async fn connect_through_relay(
    puppet_config: PeerConfig,
    controller_config: PeerConfig,
    loss: f64,
    reorder: f64,
    seed: u64,
) -> (Side, Side, Relay) {
    let (puppet, controller) = start_pair(puppet_config, controller_config).await;
    let relay = Relay::start(
        puppet.handle.local_addresses()[0],
        controller.handle.local_addresses()[0],
        loss,
        reorder,
        seed,
    )
    .await;
    let (puppet, controller) = connect(puppet, controller, relay.rewrites()).await;
    (puppet, controller, relay)
}

/// A synthetic AV1 temporal unit that str0m's packetizer treats as real: a sequence header OBU
/// on keyframes (which sets the N bit), then a frame OBU whose payload encodes `index`.
pub fn av1_frame(index: u32, payload_len: usize, keyframe: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_len + 16);
    if keyframe {
        push_obu(&mut out, 1, &[0x00, 0x00, 0x00, 0x0a, 0x0b, 0x0c]);
    }
    let mut payload = Vec::with_capacity(payload_len.max(4));
    payload.extend_from_slice(&index.to_be_bytes());
    let mut state = index.wrapping_mul(2_654_435_761).wrapping_add(1);
    while payload.len() < payload_len.max(4) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        payload.push(state as u8);
    }
    push_obu(&mut out, 6, &payload);
    out
}

fn push_obu(out: &mut Vec<u8>, obu_type: u8, payload: &[u8]) {
    out.push((obu_type << 3) | 0b0000_0010); // has_size_field
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(payload);
}

/// The frame index a synthetic frame carries.
pub fn frame_index(frame: &[u8]) -> u32 {
    // Skip a sequence header OBU (type 1) if present, then the frame OBU header and size.
    let mut at = 0;
    loop {
        let obu_type = (frame[at] >> 3) & 0x0f;
        at += 1;
        let mut size = 0usize;
        let mut shift = 0;
        loop {
            let byte = frame[at];
            at += 1;
            size |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if obu_type == 6 {
            return u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
        }
        at += size;
    }
}

pub fn since(start: Instant) -> Duration {
    start.elapsed()
}
