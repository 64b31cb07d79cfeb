//! The session core: `str0m::Rtc` plus the STUN client, tracks, data-channel queues, liveness and
//! frame bookkeeping, with no I/O of its own. In str0m's shape: [`Session::handle_input`] takes
//! what happened (a datagram, or time passing) with `now`, commands are methods, and one
//! [`Session::poll_output`] drains everything to do: transmits, events, received media, the next
//! timeout.
//!
//! Every mutation of the `Rtc` is followed by a full drain of its `poll_output` (str0m's
//! single-mutation invariant), so outputs wait in queues here until the caller takes them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_stun::{Client as StunClient, Event as StunEvent, TransactionConfig};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, CandidateKind, Event, IceConnectionState, Output as RtcOutput, Rtc};

use crate::channel::{Channel, ChannelWriter, Message, OutgoingQueues, Queued};
use crate::config::{PeerConfig, Role};
use crate::gather::first_mid;
use crate::video::{EncodedAudioFrame, EncodedVideoFrame, ReceivedAudioFrame, ReceivedVideoFrame};
use crate::Error;

/// How often a keyframe request is repeated while the receiver still waits for one.
const KEYFRAME_REPEAT: Duration = Duration::from_millis(300);
/// When SCTP's buffered amount drops below this, str0m says so and the queues are pumped.
const CHANNEL_LOW_WATER: usize = 64 * 1024;
/// SCTP's send buffer for all channels together (str0m's default is 128 KiB). The bulk channel
/// may fill only [`crate::BULK_IN_FLIGHT`] of it, so input and control always find room.
const SCTP_BUFFER: usize = crate::BULK_IN_FLIGHT + 256 * 1024;
/// Video silent this long means the screen is still: the bandwidth estimator stops probing, so
/// an idle session costs only keepalives.
const PROBE_IDLE_AFTER: Duration = Duration::from_secs(1);

/// How often video RTCP reports go out.
const RTCP_VIDEO_INTERVAL: Duration = Duration::from_secs(2);

/// What happened, for [`Session::handle_input`].
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived from `source` on the local socket bound to `destination`.
    Receive {
        /// The remote address it came from.
        source: SocketAddr,
        /// The local address it arrived at (the host candidate's, or a relay's).
        destination: SocketAddr,
        /// Its bytes.
        contents: &'a [u8],
    },
    /// Time passed; due at [`Output::Timeout`].
    Timeout,
}

/// What the session wants done, from [`Session::poll_output`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send this datagram.
    Transmit(Transmit),
    /// Tell the application.
    Event(PeerEvent),
    /// A whole received video frame, for the decoder. If the decoder cannot take it, call
    /// [`Session::video_frame_dropped`].
    Video(ReceivedVideoFrame),
    /// A received audio frame, for the audio decoder (drop it when late).
    Audio(ReceivedAudioFrame),
    /// The receiver lost video, or a frame never left: the encoder's next frame must be a
    /// keyframe. This is the sender's one keyframe path.
    KeyframeWanted,
    /// Nothing more until this time (or the next input): call `handle_input(Input::Timeout, _)`
    /// then.
    Timeout(Instant),
}

/// A datagram to send from a given local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The local address it must leave from (a host socket's, or a relay's).
    pub source: SocketAddr,
    /// Where it goes.
    pub destination: SocketAddr,
    /// Its bytes.
    pub contents: Vec<u8>,
}

/// A DTLS certificate fingerprint: the hash function as SDP names it and the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsFingerprint {
    /// The hash function, e.g. `sha-256`.
    pub hash: String,
    /// The digest of the DER certificate.
    pub digest: Vec<u8>,
}

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A local candidate to signal to the other side, as a browser's `candidate` attribute value
    /// (`candidate:1 1 udp …`) with the media id it belongs to.
    LocalCandidate {
        /// The candidate attribute value.
        candidate: String,
        /// The media id (`sdpMid`) to signal with it.
        mid: Option<String>,
    },
    /// All local candidates were announced: signal end-of-candidates (an empty candidate).
    GatheringComplete,
    /// DTLS is up, with these certificates: sent once, just before the first `Connected`, so
    /// end-to-end verification (rtcdesk-pake) can bind the fingerprints DTLS actually
    /// negotiated rather than the ones the SDP claimed.
    Secured {
        /// Our certificate's fingerprint.
        local: DtlsFingerprint,
        /// The fingerprint of the certificate the peer presented in the handshake.
        remote: DtlsFingerprint,
    },
    /// ICE and DTLS are up: media and data can flow. Also sent when a silent peer is heard again.
    Connected,
    /// The peer has been silent for `silence_timeout` (or ICE lost it). It may come back.
    Disconnected,
    /// The session is over: closed by either side, or the peer stayed silent too long.
    Closed,
    /// One of our data channels opened; sending on it works from now on.
    ChannelOpen(Channel),
    /// The remote side opened a channel of its own (a browser may); data on it arrives as
    /// `Data(channel, …)` and can be sent back on `channel`.
    RemoteChannelOpen {
        /// How to address it.
        channel: Channel,
        /// The label the remote side gave it.
        label: String,
    },
    /// A TURN server gave no relayed candidate (wrong credentials, unreachable, over quota):
    /// the session goes on with its other candidates. `reason` says what happened, naming the
    /// server, in a line a user can act on.
    RelayFailed {
        /// The TURN server.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// Media and data flow over this candidate pair (first once connecting succeeds, again if
    /// ICE moves to another pair): direct or through a TURN relay.
    PathSelected(SelectedPair),
    /// A channel closed; nothing more can be sent on it.
    ChannelClosed(Channel),
    /// A message arrived on a data channel.
    Data(Channel, Message),
    /// Figures for the last stats interval (about one second).
    Stats(PeerStats),
}

/// Transport and media figures, one snapshot per second.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PeerStats {
    /// Round-trip time of the selected candidate pair (ICE) or from RTCP.
    pub rtt: Option<Duration>,
    /// Everything sent (media, data, control) over the last interval, bit/s.
    pub send_bitrate_bps: u64,
    /// Everything received over the last interval, bit/s.
    pub receive_bitrate_bps: u64,
    /// Fraction of our packets the peer reported lost (0.0..=1.0).
    pub egress_loss: Option<f32>,
    /// Fraction of the peer's packets we lost.
    pub ingress_loss: Option<f32>,
    /// Video frames handed to the network.
    pub frames_sent: u64,
    /// Video frames received whole and handed to the decoder's queue.
    pub frames_received: u64,
    /// Video frames not sent: overwritten in the slot, before connecting, or while waiting for a
    /// keyframe.
    pub frames_skipped: u64,
    /// Audio frames handed to the network.
    pub audio_frames_sent: u64,
    /// Audio frames received.
    pub audio_frames_received: u64,
    /// The sender's bandwidth estimate (TWCC), when it has one.
    pub bandwidth_estimate_bps: Option<u64>,
    /// Bytes sent since the start.
    pub bytes_sent: u64,
    /// Bytes received since the start.
    pub bytes_received: u64,
    /// The candidate pair media and data flow over, once ICE has chosen one.
    pub selected_pair: Option<SelectedPair>,
}

/// The path a connected session uses, as a user asks "direct or relayed?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedPair {
    /// `Relayed` when we send through our TURN allocation, else `Host`: we send from a local
    /// socket (a NAT on the way may map it; the other side then sees it as srflx or prflx).
    pub local_kind: CandidateKind,
    /// The address we send from (our socket, or our relayed address).
    pub local: SocketAddr,
    /// What the remote candidate was signaled as; `PeerReflexive` when it was learned from
    /// the checks themselves (a NAT mapping the other side never signaled).
    pub remote_kind: CandidateKind,
    /// The address we send to.
    pub remote: SocketAddr,
}

/// Most remote candidates whose kinds are remembered for [`SelectedPair`]; a peer that signals
/// more still connects, later ones just show as prflx.
const MAX_REMEMBERED_CANDIDATES: usize = 64;

/// The kind a signaled candidate line (`candidate:… typ srflx …`) names; `None` for a line
/// without a known `typ`. Total: any text gives an answer.
pub fn candidate_kind(line: &str) -> Option<CandidateKind> {
    let mut words = line.split_ascii_whitespace();
    while let Some(word) = words.next() {
        if word == "typ" {
            return match words.next()? {
                "host" => Some(CandidateKind::Host),
                "srflx" => Some(CandidateKind::ServerReflexive),
                "prflx" => Some(CandidateKind::PeerReflexive),
                "relay" => Some(CandidateKind::Relayed),
                _ => None,
            };
        }
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    New,
    Connected,
    Disconnected,
    Closed,
}

/// One media track of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// Its media id in the SDP.
    pub mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// Which way media flows on it, from this side.
    pub direction: Direction,
}

impl Track {
    /// The RTP clock of the track's codec: 90 kHz for AV1, 48 kHz for Opus.
    pub fn clock(&self) -> Frequency {
        match self.kind {
            MediaKind::Audio => Frequency::FORTY_EIGHT_KHZ,
            MediaKind::Video => Frequency::NINETY_KHZ,
        }
    }
}

struct StunProbe {
    base: SocketAddr,
    client: StunClient,
}

/// The sans-IO session; see the module docs. Build it with [`PeerConfig::build`].
pub struct Session {
    rtc: Rtc,
    role: Role,
    audio: bool,
    silence_timeout: Duration,
    close_after_silence: Duration,
    max_bitrate_bps: u64,
    bwe: bool,
    stun_servers: Vec<SocketAddr>,
    probes: Vec<StunProbe>,
    /// Relayed candidates the endpoint is still getting for this session; gathering is
    /// complete only when none is pending.
    pending_relays: usize,
    gathering_started: bool,
    gathering_done: bool,
    local_description: Option<Option<String>>,
    unannounced_candidates: Vec<String>,
    pending_offer: Option<SdpPendingOffer>,
    tracks: Vec<Track>,
    /// Channel ids by channel, and the reverse, for channels that are open.
    channels: HashMap<ChannelId, Channel>,
    outgoing: OutgoingQueues,
    lifecycle: Lifecycle,
    dtls_up: bool,
    last_heard: Instant,
    rtc_timeout: Instant,
    outputs: VecDeque<Output>,
    /// Capture time of the first frame sent on each track: RTP time counts from it.
    first_capture: HashMap<Mid, Instant>,
    sender_needs_keyframe: bool,
    receiver_needs_keyframe: Option<Instant>,
    last_video_sent: Option<Instant>,
    probing: bool,
    /// The sending video track is paused on a still screen (no padding, no probes).
    video_paused: bool,
    stats: PeerStats,
    previous_totals: Option<(Instant, u64, u64)>,
    /// Our relayed addresses, to tell a relayed path from a direct one.
    relayed_addresses: Vec<SocketAddr>,
    /// Signaled remote candidates' kinds by address (at most [`MAX_REMEMBERED_CANDIDATES`]).
    remote_kinds: HashMap<SocketAddr, CandidateKind>,
    /// The pair media and data leave on (see [`Session::selected_pair`]).
    path: Option<SelectedPair>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.role)
            .field("lifecycle", &self.lifecycle)
            .field("tracks", &self.tracks)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session whose host candidates are the given bound socket addresses. The configuration
    /// was validated by [`PeerConfig::build`].
    pub(crate) fn new(config: &PeerConfig, bases: &[SocketAddr], now: Instant) -> Self {
        let mut builder = Rtc::builder()
            .clear_codecs()
            .enable_av1(true)
            .set_stats_interval(Some(Duration::from_secs(1)))
            // Sender and receiver reports (RTT, loss) every 2 s rather than str0m's 1 s: on a
            // still screen they are most of what is left on the wire. Congestion control has
            // its own, faster feedback (TWCC).
            .set_rtcp_report_interval_video(RTCP_VIDEO_INTERVAL)
            .set_sctp_max_buffered_amount(SCTP_BUFFER);
        // The answerer takes audio whenever it is offered; the offerer offers it when asked.
        if config.audio || config.role == Role::Answerer {
            builder = builder.enable_opus(true, false);
        }
        // ICE checks on the selected pair run at least this often, so silence means gone.
        builder.set_max_stun_rto(config.keepalive_interval);
        let bwe = config.role == Role::Offerer && config.bandwidth_estimation;
        if bwe {
            builder = builder.enable_bwe(Some(Bitrate::bps(config.initial_bitrate_bps)));
        }
        let rtc = builder.build(now);
        let mut session = Self {
            rtc,
            role: config.role,
            audio: config.audio,
            silence_timeout: config.silence_timeout,
            close_after_silence: config.close_after_silence,
            max_bitrate_bps: config.max_bitrate_bps,
            bwe,
            stun_servers: config.stun_servers.clone(),
            probes: Vec::new(),
            pending_relays: 0,
            gathering_started: false,
            gathering_done: false,
            local_description: None,
            unannounced_candidates: Vec::new(),
            pending_offer: None,
            tracks: Vec::new(),
            channels: HashMap::new(),
            outgoing: OutgoingQueues::new(config.data_queue),
            lifecycle: Lifecycle::New,
            dtls_up: false,
            last_heard: now,
            rtc_timeout: now,
            outputs: VecDeque::new(),
            first_capture: HashMap::new(),
            sender_needs_keyframe: true,
            receiver_needs_keyframe: None,
            last_video_sent: None,
            probing: false,
            video_paused: false,
            stats: PeerStats::default(),
            previous_totals: None,
            relayed_addresses: Vec::new(),
            remote_kinds: HashMap::new(),
            path: None,
        };
        // Relay-only offers no host or server-reflexive candidate: the peer never learns them.
        if !config.relay_only {
            for &base in bases {
                session.add_host_candidate(base);
                session.probes.push(StunProbe {
                    base,
                    client: StunClient::new(TransactionConfig::default()),
                });
            }
        }
        session.drain(now);
        session
    }

    fn add_host_candidate(&mut self, base: SocketAddr) {
        match Candidate::host(base, "udp") {
            Ok(candidate) => {
                if let Some(added) = self.rtc.add_local_candidate(candidate) {
                    let line = added.to_sdp_string();
                    self.announce(line);
                }
            }
            Err(e) => tracing::debug!(%base, "no host candidate: {e}"),
        }
    }

    /// A relayed candidate is on its way (a TURN allocation is being made for this session's
    /// socket): end-of-candidates waits for it, or for [`Session::relay_failed`].
    pub fn expect_relay(&mut self) {
        self.pending_relays += 1;
    }

    /// Adds a relayed local candidate: `relayed` is the TURN allocation's address, `base` the
    /// local socket its server traffic uses. Transmits from `relayed` must be wrapped for the
    /// TURN server by the caller, and what it unwraps fed back with `relayed` as destination.
    pub fn add_relay_candidate(
        &mut self,
        relayed: SocketAddr,
        base: SocketAddr,
        now: Instant,
    ) -> Result<(), Error> {
        self.pending_relays = self.pending_relays.saturating_sub(1);
        if !self.relayed_addresses.contains(&relayed) {
            self.relayed_addresses.push(relayed);
        }
        let candidate = Candidate::relayed(relayed, base, "udp");
        let added = match candidate {
            Ok(candidate) => self.rtc.add_local_candidate(candidate),
            Err(e) => {
                self.collect_stun();
                return Err(Error::BadLocalCandidate(e));
            }
        };
        if let Some(added) = added {
            let line = added.to_sdp_string();
            self.announce(line);
        }
        self.drain(now);
        self.collect_stun();
        Ok(())
    }

    /// A TURN server this session was waiting for gave no relayed candidate.
    pub fn relay_failed(&mut self, server: SocketAddr, reason: String) {
        self.pending_relays = self.pending_relays.saturating_sub(1);
        self.outputs
            .push_back(Output::Event(PeerEvent::RelayFailed { server, reason }));
        self.collect_stun();
    }

    // ---- signaling ------------------------------------------------------------------------

    /// The offer: AV1 video (send only), Opus audio when configured, and our data channels.
    pub fn create_offer(&mut self, now: Instant) -> Result<String, Error> {
        if self.role != Role::Offerer || self.local_description.is_some() {
            return Err(Error::WrongState("create_offer"));
        }
        let mut change = self.rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let audio = self
            .audio
            .then(|| change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
        for channel in Channel::OURS {
            if let Some(config) = channel.config() {
                change.add_channel_with_config(config);
            }
        }
        let (offer, pending) = change.apply().ok_or(Error::WrongState("create_offer"))?;
        self.tracks.push(Track {
            mid: video,
            kind: MediaKind::Video,
            direction: Direction::SendOnly,
        });
        if let Some(mid) = audio {
            self.tracks.push(Track {
                mid,
                kind: MediaKind::Audio,
                direction: Direction::SendOnly,
            });
        }
        self.pending_offer = Some(pending);
        let sdp = offer.to_sdp_string();
        self.drain(now);
        self.set_local_description(&sdp, now);
        Ok(sdp)
    }

    /// Applies the remote answer to our offer.
    pub fn accept_answer(&mut self, sdp: &str, now: Instant) -> Result<(), Error> {
        let pending = self
            .pending_offer
            .take()
            .ok_or(Error::WrongState("accept_answer"))?;
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        let result = self.rtc.sdp_api().accept_answer(pending, answer);
        self.drain(now);
        result.map_err(Error::Negotiation)
    }

    /// Answers a remote offer; returns the answer SDP.
    pub fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, Error> {
        if self.role != Role::Answerer || self.local_description.is_some() {
            return Err(Error::WrongState("accept_offer"));
        }
        let offer = SdpOffer::from_sdp_string(sdp)?;
        let result = self.rtc.sdp_api().accept_offer(offer);
        self.drain(now);
        let answer = result.map_err(Error::Negotiation)?;
        let answer_sdp = answer.to_sdp_string();
        for track in media_sections(&answer_sdp) {
            self.add_track(track);
        }
        self.set_local_description(&answer_sdp, now);
        Ok(answer_sdp)
    }

    /// A remote candidate as signaled (`candidate:…`, with or without `a=`). Empty means
    /// end-of-candidates, which str0m does not need; mDNS (`.local`) candidates are skipped
    /// because str0m cannot resolve them (the peer-reflexive candidate covers that case).
    pub fn add_remote_candidate(&mut self, candidate: &str, now: Instant) -> Result<(), Error> {
        let line = candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            tracing::debug!("remote end-of-candidates");
            return Ok(());
        }
        if line.split_whitespace().any(|part| part.ends_with(".local")) {
            tracing::debug!(line, "skipping mDNS candidate");
            return Ok(());
        }
        let parsed = Candidate::from_sdp_string(line).map_err(|e| Error::BadCandidate {
            candidate: candidate.to_string(),
            error: e,
        })?;
        if self.remote_kinds.len() < MAX_REMEMBERED_CANDIDATES {
            self.remote_kinds.insert(parsed.addr(), parsed.kind());
        }
        self.rtc.add_remote_candidate(parsed);
        self.drain(now);
        Ok(())
    }

    /// The media tracks negotiated so far.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    fn track(&self, kind: MediaKind) -> Option<Track> {
        self.tracks.iter().copied().find(|t| t.kind == kind)
    }

    fn add_track(&mut self, track: Track) {
        if !self.tracks.iter().any(|t| t.mid == track.mid) {
            self.tracks.push(track);
        }
    }

    fn set_local_description(&mut self, sdp: &str, now: Instant) {
        self.local_description = Some(first_mid(sdp));
        for candidate in std::mem::take(&mut self.unannounced_candidates) {
            self.announce(candidate);
        }
        self.start_gathering(now);
    }

    fn start_gathering(&mut self, now: Instant) {
        if self.gathering_started {
            return;
        }
        self.gathering_started = true;
        for probe in &mut self.probes {
            for &server in &self.stun_servers {
                if server.is_ipv4() == probe.base.is_ipv4() {
                    if let Err(e) = probe.client.start_binding(now, server) {
                        tracing::warn!(%server, "STUN query not started: {e}");
                    }
                }
            }
        }
        self.collect_stun();
    }

    /// Signals a local candidate, or keeps it until there is a local description to go with.
    fn announce(&mut self, candidate: String) {
        match &self.local_description {
            Some(mid) => self
                .outputs
                .push_back(Output::Event(PeerEvent::LocalCandidate {
                    candidate,
                    mid: mid.clone(),
                })),
            None => self.unannounced_candidates.push(candidate),
        }
    }

    /// Moves STUN requests to the output queue and turns answers into srflx candidates.
    fn collect_stun(&mut self) {
        let mut found = Vec::new();
        for probe in &mut self.probes {
            while let Some(transmit) = probe.client.poll_transmit() {
                self.outputs.push_back(Output::Transmit(Transmit {
                    source: probe.base,
                    destination: transmit.destination,
                    contents: transmit.contents,
                }));
            }
            while let Some(event) = probe.client.poll_event() {
                match event {
                    StunEvent::Mapped { mapped, server, .. } => {
                        tracing::debug!(%server, %mapped, base = %probe.base, "server-reflexive");
                        found.push((mapped, probe.base));
                    }
                    StunEvent::Failed { server, error, .. } => {
                        tracing::warn!(%server, ?error, "STUN server refused");
                    }
                    StunEvent::TimedOut { server, .. } => {
                        tracing::warn!(%server, "STUN server did not answer");
                    }
                }
            }
        }
        for (mapped, base) in found {
            match Candidate::server_reflexive(mapped, base, "udp") {
                Ok(candidate) => {
                    if let Some(added) = self.rtc.add_local_candidate(candidate) {
                        let line = added.to_sdp_string();
                        self.announce(line);
                    }
                }
                Err(e) => tracing::debug!(%mapped, "no srflx candidate: {e}"),
            }
        }
        if self.gathering_started
            && !self.gathering_done
            && self.pending_relays == 0
            && self.probes.iter().all(|p| p.client.is_idle())
        {
            self.gathering_done = true;
            self.outputs
                .push_back(Output::Event(PeerEvent::GatheringComplete));
        }
    }

    // ---- network and time -----------------------------------------------------------------

    /// Whether a datagram belongs to this session (str0m's `accepts`: the ICE credentials of a
    /// STUN message, or a known remote address). A shell hosting many sessions on one socket
    /// set routes each datagram to the first session that accepts it.
    pub fn accepts(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        now: Instant,
    ) -> bool {
        if rtcdesk_stun::looks_like_stun(contents)
            && self.probes.iter().any(|p| p.base == destination)
            && self.stun_servers.contains(&source)
        {
            return true;
        }
        match Receive::new(Protocol::Udp, source, destination, contents) {
            Ok(receive) => self.rtc.accepts(&str0m::Input::Receive(now, receive)),
            Err(_) => false,
        }
    }

    /// Feeds what happened; then drain [`Session::poll_output`].
    pub fn handle_input(&mut self, input: Input<'_>, now: Instant) {
        match input {
            Input::Receive {
                source,
                destination,
                contents,
            } => self.handle_receive(now, source, destination, contents),
            Input::Timeout => self.handle_timeout(now),
        }
    }

    fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        bytes: &[u8],
    ) {
        if rtcdesk_stun::looks_like_stun(bytes) {
            if let Some(probe) = self.probes.iter_mut().find(|p| p.base == destination) {
                if probe.client.handle_datagram(source, bytes) {
                    self.collect_stun();
                    self.drain(now);
                    return;
                }
            }
        }
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, bytes) else {
            return;
        };
        let input = str0m::Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            return;
        }
        self.last_heard = now;
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::warn!("str0m rejected a datagram: {e}");
        }
        self.drain(now);
        self.check_liveness(now);
        // An acknowledgement may have made room in SCTP's buffer.
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        for probe in &mut self.probes {
            probe.client.handle_timeout(now);
        }
        self.collect_stun();
        if self.lifecycle != Lifecycle::Closed {
            if let Err(e) = self.rtc.handle_input(str0m::Input::Timeout(now)) {
                tracing::warn!("str0m timeout handling failed: {e}");
            }
        }
        self.drain(now);
        self.check_liveness(now);
        self.follow_video_activity(now);
        self.pump(now);
        if let Some(asked) = self.receiver_needs_keyframe {
            if now >= asked + KEYFRAME_REPEAT {
                self.ask_for_keyframe(now);
            }
        }
    }

    /// When the next [`Input::Timeout`] is due.
    fn next_timeout(&self) -> Instant {
        let mut next = self.rtc_timeout;
        for probe in &self.probes {
            if let Some(at) = probe.client.poll_timeout() {
                next = next.min(at);
            }
        }
        match self.lifecycle {
            Lifecycle::Connected => next = next.min(self.last_heard + self.silence_timeout),
            Lifecycle::Disconnected => next = next.min(self.last_heard + self.close_after_silence),
            Lifecycle::New | Lifecycle::Closed => {}
        }
        if let Some(asked) = self.receiver_needs_keyframe {
            next = next.min(asked + KEYFRAME_REPEAT);
        }
        if let (true, Some(sent)) = (self.probing, self.last_video_sent) {
            next = next.min(sent + PROBE_IDLE_AFTER);
        }
        next
    }

    fn check_liveness(&mut self, now: Instant) {
        let silence = now.saturating_duration_since(self.last_heard);
        match self.lifecycle {
            Lifecycle::Connected if silence >= self.silence_timeout => {
                tracing::info!(?silence, "peer silent: disconnected");
                self.lifecycle = Lifecycle::Disconnected;
                self.outputs
                    .push_back(Output::Event(PeerEvent::Disconnected));
            }
            Lifecycle::Disconnected if silence >= self.close_after_silence => {
                tracing::info!(?silence, "peer gone: closing");
                self.close(now);
            }
            Lifecycle::Disconnected if silence < self.silence_timeout && self.ice_up() => {
                self.lifecycle = Lifecycle::Connected;
                self.outputs.push_back(Output::Event(PeerEvent::Connected));
            }
            _ => {}
        }
    }

    /// Probes for bandwidth only while video flows: the estimator pads up to the desired
    /// bitrate to find the path's capacity, which on a still screen is traffic for nothing.
    ///
    /// Asking for no bitrate is not enough: str0m pads at 50 kbit/s and sends its periodic
    /// probes whenever a media line is sending. So a still screen also pauses the video
    /// track (see [`Session::pause_video`]); the next frame resumes it.
    fn follow_video_activity(&mut self, now: Instant) {
        if !self.bwe {
            return;
        }
        let active = self
            .last_video_sent
            .is_some_and(|sent| now < sent + PROBE_IDLE_AFTER);
        if active != self.probing {
            self.probing = active;
            let desired = if active { self.max_bitrate_bps } else { 0 };
            self.rtc.bwe().set_desired_bitrate(Bitrate::bps(desired));
            if !active {
                self.pause_video(true);
            }
            self.drain(now);
        }
    }

    /// Pauses or resumes the sending video track on this side only, with no renegotiation:
    /// str0m's local direction says whether the line is sending, and only a sending line is
    /// padded and probed. The change is deliberately not applied as an offer: the remote side
    /// sees nothing but the media stopping and starting again, as it would on a still
    /// screen anyway. Pausing drops the retransmission cache, so it happens only after
    /// [`PROBE_IDLE_AFTER`] without a frame, long after the last one was acknowledged or
    /// given up.
    fn pause_video(&mut self, paused: bool) {
        if self.video_paused == paused {
            return;
        }
        let Some(track) = self.track(MediaKind::Video) else {
            return;
        };
        if !track.direction.is_sending() {
            return;
        }
        let direction = if paused {
            Direction::Inactive
        } else {
            track.direction
        };
        let mut local_only = self.rtc.sdp_api();
        local_only.set_direction(track.mid, direction);
        drop(local_only);
        self.video_paused = paused;
        tracing::debug!(paused, "video track");
    }

    fn ice_up(&self) -> bool {
        self.dtls_up && self.rtc.is_connected()
    }

    /// Closes the session: str0m sends its goodbyes (DTLS close_notify, SCTP shutdown), which
    /// wait in the output queue.
    pub fn close(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::Closed {
            return;
        }
        if let Err(e) = self.rtc.close() {
            tracing::debug!("closing: {e}");
        }
        self.drain(now);
        self.finish();
    }

    fn finish(&mut self) {
        if self.lifecycle != Lifecycle::Closed {
            self.lifecycle = Lifecycle::Closed;
            self.outputs.push_back(Output::Event(PeerEvent::Closed));
        }
    }

    /// Whether the session has ended; nothing more will happen.
    pub fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    /// Whether ICE and DTLS are up and the peer is not silent.
    pub fn is_connected(&self) -> bool {
        self.lifecycle == Lifecycle::Connected
    }

    // ---- media ------------------------------------------------------------------------------

    /// Sends one encoded video frame. `overwritten` says an earlier frame never made it out,
    /// which breaks the reference chain: until the next keyframe nothing more is sent.
    pub fn send_video(&mut self, frame: EncodedVideoFrame, overwritten: bool, now: Instant) {
        if overwritten {
            self.stats.frames_skipped += 1;
            self.want_keyframe_from_encoder();
        }
        let keyframe = frame.keyframe;
        if self.sender_needs_keyframe && !keyframe {
            self.stats.frames_skipped += 1;
            return;
        }
        self.pause_video(false);
        match self.write_media(MediaKind::Video, frame.capture_time, frame.data, now) {
            Ok(()) => {
                self.stats.frames_sent += 1;
                self.last_video_sent = Some(now);
                if keyframe {
                    self.sender_needs_keyframe = false;
                }
                self.follow_video_activity(now);
            }
            Err(reason) => {
                tracing::debug!("video frame not sent: {reason}");
                self.stats.frames_skipped += 1;
                self.want_keyframe_from_encoder();
            }
        }
        self.drain(now);
    }

    /// Sends one encoded Opus frame on the audio track (dropped when there is none, or before
    /// the session is connected: late audio is worthless).
    pub fn send_audio(&mut self, frame: EncodedAudioFrame, now: Instant) {
        match self.write_media(MediaKind::Audio, frame.capture_time, frame.data, now) {
            Ok(()) => self.stats.audio_frames_sent += 1,
            Err(reason) => tracing::trace!("audio frame not sent: {reason}"),
        }
        self.drain(now);
    }

    /// Writes one frame on the track of `kind`; the RTP time counts from the track's first
    /// frame at the codec's clock rate. The bytes are shared with str0m, not copied.
    fn write_media(
        &mut self,
        kind: MediaKind,
        capture_time: Instant,
        data: Arc<[u8]>,
        now: Instant,
    ) -> Result<(), &'static str> {
        if self.lifecycle != Lifecycle::Connected {
            return Err("not connected");
        }
        let track = self.track(kind).ok_or("no such track")?;
        let codec = match kind {
            MediaKind::Video => Codec::Av1,
            MediaKind::Audio => Codec::Opus,
        };
        let first = *self.first_capture.entry(track.mid).or_insert(capture_time);
        let since_first = capture_time.saturating_duration_since(first);
        let rtp_time = MediaTime::from_micros(since_first.as_micros() as u64).rebase(track.clock());
        let writer = self.rtc.writer(track.mid).ok_or("track not ready")?;
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .ok_or("the peer did not accept the codec")?;
        let result = writer.write(pt, capture_time, rtp_time, data);
        self.drain(now);
        result.map_err(|e| {
            tracing::warn!("str0m refused a frame: {e}");
            "refused"
        })
    }

    fn want_keyframe_from_encoder(&mut self) {
        self.sender_needs_keyframe = true;
        self.outputs.push_back(Output::KeyframeWanted);
    }

    /// Asks the sender for a keyframe (PLI), e.g. after the decoder failed. Repeated until one
    /// arrives; frames before it are not handed out. This is the receiver's one keyframe path.
    pub fn request_keyframe(&mut self, now: Instant) {
        self.ask_for_keyframe(now);
    }

    fn ask_for_keyframe(&mut self, now: Instant) {
        self.receiver_needs_keyframe = Some(now);
        let Some(track) = self.track(MediaKind::Video) else {
            return;
        };
        if let Some(mut writer) = self.rtc.writer(track.mid) {
            if let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli) {
                tracing::debug!("keyframe request not sent yet: {e}");
            }
        }
        self.drain(now);
    }

    /// The decoder's queue was full: this frame is lost, so skip to the next keyframe.
    pub fn video_frame_dropped(&mut self, now: Instant) {
        self.stats.frames_received = self.stats.frames_received.saturating_sub(1);
        self.ask_for_keyframe(now);
    }

    // ---- data -------------------------------------------------------------------------------

    /// Queues a message on a data channel; it leaves as soon as the channel is open and SCTP
    /// has room, in priority order (pointer, input, control, then bulk). [`Error::Full`] when
    /// that channel's queue is full: the caller decides whether to wait, drop or give up.
    pub fn send_data(
        &mut self,
        channel: Channel,
        message: Message,
        now: Instant,
    ) -> Result<(), Error> {
        if self.lifecycle == Lifecycle::Closed {
            return Err(Error::Closed);
        }
        if let Channel::Remote(_) = channel {
            if !self.channels.values().any(|c| *c == channel) {
                return Err(Error::UnknownChannel);
            }
        }
        match self.outgoing.push(channel, message) {
            Queued::Yes => {
                self.pump(now);
                Ok(())
            }
            Queued::Full => Err(Error::Full),
        }
    }

    /// How many more messages the channel's queue takes before [`Session::send_data`] reports
    /// [`Error::Full`].
    pub fn channel_room(&self, channel: Channel) -> usize {
        self.outgoing.room(channel)
    }

    /// Whether a channel is open for sending.
    pub fn is_open(&self, channel: Channel) -> bool {
        self.channels.values().any(|c| *c == channel)
    }

    fn pump(&mut self, now: Instant) {
        let mut writer = RtcChannels {
            rtc: &mut self.rtc,
            channels: &self.channels,
        };
        if self.outgoing.pump(&mut writer) > 0 {
            self.drain(now);
        }
    }

    // ---- outputs ----------------------------------------------------------------------------

    /// The next thing to do; [`Output::Timeout`] when there is nothing else (call again after
    /// the next input).
    pub fn poll_output(&mut self) -> Output {
        self.outputs
            .pop_front()
            .unwrap_or_else(|| Output::Timeout(self.next_timeout()))
    }

    /// Drains str0m until it only has a timeout left (its single-mutation invariant).
    fn drain(&mut self, now: Instant) {
        let mut pump = false;
        while self.rtc.is_alive() {
            match self.rtc.poll_output() {
                Ok(RtcOutput::Timeout(at)) => {
                    self.rtc_timeout = at;
                    if pump {
                        self.pump(now);
                    }
                    return;
                }
                Ok(RtcOutput::Transmit(transmit)) => {
                    self.note_path(transmit.source, transmit.destination, &transmit.contents);
                    self.outputs.push_back(Output::Transmit(Transmit {
                        source: transmit.source,
                        destination: transmit.destination,
                        contents: transmit.contents.into(),
                    }))
                }
                Ok(RtcOutput::Event(event)) => pump |= self.handle_rtc_event(event, now),
                Err(e) => {
                    tracing::warn!("str0m failed, closing the session: {e}");
                    self.rtc.disconnect();
                    self.finish();
                    return;
                }
            }
        }
        // Not alive: closed by us or the peer, nothing more will come out.
        self.rtc_timeout = now + Duration::from_secs(3600);
        self.finish();
    }

    /// Tells the application which certificates DTLS negotiated ([`PeerEvent::Secured`]).
    fn report_fingerprints(&mut self) {
        let api = self.rtc.direct_api();
        let local = api.local_dtls_fingerprint().clone();
        let Some(remote) = api.remote_dtls_fingerprint().cloned() else {
            // str0m checks the peer's certificate against the SDP before it connects, so this
            // cannot happen; a verifying application then sees no `Secured` and gives up.
            tracing::warn!("DTLS connected without a peer certificate");
            return;
        };
        let convert = |f: str0m::crypto::Fingerprint| DtlsFingerprint {
            hash: f.hash_func,
            digest: f.bytes,
        };
        self.outputs.push_back(Output::Event(PeerEvent::Secured {
            local: convert(local),
            remote: convert(remote),
        }));
    }

    /// Handles one str0m event; true when the data queues should be pumped.
    fn handle_rtc_event(&mut self, event: Event, now: Instant) -> bool {
        match event {
            Event::Connected => {
                let first = !self.dtls_up;
                self.dtls_up = true;
                self.last_heard = now;
                if first {
                    self.report_fingerprints();
                }
                if self.lifecycle != Lifecycle::Closed {
                    self.lifecycle = Lifecycle::Connected;
                    self.outputs.push_back(Output::Event(PeerEvent::Connected));
                    // The first frame the receiver gets must be a keyframe.
                    self.want_keyframe_from_encoder();
                }
            }
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "ICE");
                if state == IceConnectionState::Disconnected
                    && self.lifecycle == Lifecycle::Connected
                {
                    self.lifecycle = Lifecycle::Disconnected;
                    self.outputs
                        .push_back(Output::Event(PeerEvent::Disconnected));
                }
            }
            Event::MediaAdded(added) => self.add_track(Track {
                mid: added.mid,
                kind: added.kind,
                direction: added.direction,
            }),
            Event::MediaData(data) => self.handle_media_data(data, now),
            Event::KeyframeRequest(_) => self.want_keyframe_from_encoder(),
            Event::ChannelOpen(id, label) => {
                self.channel_opened(id, label);
                return true;
            }
            Event::ChannelData(data) => {
                if let Some(&channel) = self.channels.get(&data.id) {
                    let message = if data.binary {
                        Message::Binary(data.data)
                    } else {
                        match String::from_utf8(data.data) {
                            Ok(text) => Message::Text(text),
                            Err(e) => Message::Binary(e.into_bytes()),
                        }
                    };
                    self.outputs
                        .push_back(Output::Event(PeerEvent::Data(channel, message)));
                }
            }
            Event::ChannelBufferedAmountLow(_) => return true,
            Event::ChannelClose(id) => {
                if let Some(channel) = self.channels.remove(&id) {
                    self.outgoing.remove(channel);
                    self.outputs
                        .push_back(Output::Event(PeerEvent::ChannelClosed(channel)));
                }
            }
            Event::PeerStats(peer) => self.handle_peer_stats(peer),
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.stats.bandwidth_estimate_bps = Some(estimate.as_u64());
            }
            Event::Closed => {
                tracing::info!("peer closed the session");
                self.finish();
            }
            _ => {}
        }
        false
    }

    fn channel_opened(&mut self, id: ChannelId, label: String) {
        let ours = Channel::from_label(&label).filter(|c| !self.is_open(*c));
        let channel = match ours {
            Some(channel) => channel,
            None => {
                let Some(stream) = self.rtc.direct_api().sctp_stream_id_by_channel_id(id) else {
                    return;
                };
                Channel::Remote(stream)
            }
        };
        self.channels.insert(id, channel);
        if let Some(mut handle) = self.rtc.channel(id) {
            handle.set_buffered_amount_low_threshold(CHANNEL_LOW_WATER);
        }
        let event = match channel {
            Channel::Remote(_) => PeerEvent::RemoteChannelOpen { channel, label },
            _ => PeerEvent::ChannelOpen(channel),
        };
        self.outputs.push_back(Output::Event(event));
    }

    fn handle_media_data(&mut self, data: str0m::media::MediaData, now: Instant) {
        let kind = self
            .tracks
            .iter()
            .find(|t| t.mid == data.mid)
            .map(|t| t.kind)
            .unwrap_or(MediaKind::Video);
        if kind == MediaKind::Audio {
            self.stats.audio_frames_received += 1;
            self.outputs.push_back(Output::Audio(ReceivedAudioFrame {
                data: data.data,
                rtp_time: data.time.numer(),
                received_at: data.network_time,
            }));
            return;
        }
        let keyframe = data.is_keyframe();
        if !data.contiguous && !keyframe {
            // Packets were lost for good (NACK gave up): the decoder needs a fresh start.
            self.ask_for_keyframe(now);
            return;
        }
        if self.receiver_needs_keyframe.is_some() {
            if !keyframe {
                return;
            }
            self.receiver_needs_keyframe = None;
        }
        self.stats.frames_received += 1;
        self.outputs.push_back(Output::Video(ReceivedVideoFrame {
            data: data.data,
            rtp_time: data.time.numer(),
            keyframe,
            contiguous: data.contiguous,
            received_at: data.network_time,
        }));
    }

    /// The video sender's current bandwidth estimate (TWCC), once it has one.
    pub fn bandwidth_estimate_bps(&self) -> Option<u64> {
        self.stats.bandwidth_estimate_bps
    }

    /// Only the selected pair carries anything but STUN (DTLS, SRTP, SCTP): the first such
    /// transmit, and any that leaves on another pair, tells which path is in use.
    fn note_path(&mut self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) {
        // RFC 7983: a first byte of 0..=3 is STUN (connectivity checks go on every pair).
        if contents.first().is_none_or(|&b| b <= 3) {
            return;
        }
        if self
            .path
            .is_some_and(|p| p.local == source && p.remote == destination)
        {
            return;
        }
        let local_kind = if self.relayed_addresses.contains(&source) {
            CandidateKind::Relayed
        } else {
            CandidateKind::Host
        };
        let path = SelectedPair {
            local_kind,
            local: source,
            remote_kind: self
                .remote_kinds
                .get(&destination)
                .copied()
                .unwrap_or(CandidateKind::PeerReflexive),
            remote: destination,
        };
        tracing::info!(local = %path.local, local_kind = %path.local_kind, remote = %path.remote, remote_kind = %path.remote_kind, "path selected");
        self.path = Some(path);
        self.stats.selected_pair = Some(path);
        self.outputs
            .push_back(Output::Event(PeerEvent::PathSelected(path)));
    }

    /// The candidate pair in use, once anything but connectivity checks has been sent.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        self.path
    }

    /// The newest figures (also sent as [`PeerEvent::Stats`] once a second).
    pub fn stats(&self) -> &PeerStats {
        &self.stats
    }

    fn handle_peer_stats(&mut self, peer: str0m::stats::PeerStats) {
        let (tx, rx) = (peer.peer_bytes_tx, peer.peer_bytes_rx);
        if let Some((at, prev_tx, prev_rx)) = self.previous_totals {
            let seconds = peer.timestamp.saturating_duration_since(at).as_secs_f64();
            if seconds > 0.0 {
                self.stats.send_bitrate_bps =
                    (tx.saturating_sub(prev_tx) as f64 * 8.0 / seconds) as u64;
                self.stats.receive_bitrate_bps =
                    (rx.saturating_sub(prev_rx) as f64 * 8.0 / seconds) as u64;
            }
        }
        self.previous_totals = Some((peer.timestamp, tx, rx));
        self.stats.bytes_sent = tx;
        self.stats.bytes_received = rx;
        self.stats.rtt = peer.rtt.or_else(|| {
            peer.selected_candidate_pair
                .as_ref()
                .and_then(|pair| pair.current_round_trip_time)
        });
        self.stats.egress_loss = peer.egress_loss_fraction;
        self.stats.ingress_loss = peer.ingress_loss_fraction;
        if let Some(bwe) = peer.bwe_tx {
            self.stats.bandwidth_estimate_bps = Some(bwe.as_u64());
        }
        self.stats.selected_pair = self.path;
        self.outputs
            .push_back(Output::Event(PeerEvent::Stats(self.stats.clone())));
    }
}

/// Our channels as the queues see them: open ones by label, written through str0m.
struct RtcChannels<'a> {
    rtc: &'a mut Rtc,
    channels: &'a HashMap<ChannelId, Channel>,
}

impl RtcChannels<'_> {
    fn id(&self, channel: Channel) -> Option<ChannelId> {
        self.channels
            .iter()
            .find(|(_, c)| **c == channel)
            .map(|(id, _)| *id)
    }
}

impl ChannelWriter for RtcChannels<'_> {
    fn is_open(&mut self, channel: Channel) -> bool {
        self.id(channel).is_some()
    }

    fn buffered(&mut self, channel: Channel) -> usize {
        let Some(id) = self.id(channel) else { return 0 };
        self.rtc.channel(id).map_or(0, |mut c| c.buffered_amount())
    }

    fn write(&mut self, channel: Channel, message: &Message) -> bool {
        let Some(id) = self.id(channel) else {
            return false;
        };
        let Some(mut handle) = self.rtc.channel(id) else {
            return false;
        };
        match handle.write(message.is_binary(), message.as_bytes()) {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(?channel, "data channel write failed: {e}");
                false
            }
        }
    }
}

/// The media sections of an SDP, as tracks seen from its author's side.
fn media_sections(sdp: &str) -> Vec<Track> {
    let mut tracks = Vec::new();
    let mut current: Option<(MediaKind, Option<Mid>, Direction)> = None;
    let mut finish = |section: Option<(MediaKind, Option<Mid>, Direction)>| {
        if let Some((kind, Some(mid), direction)) = section {
            tracks.push(Track {
                mid,
                kind,
                direction,
            });
        }
    };
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            finish(current.take());
            current = if media.starts_with("video") {
                Some((MediaKind::Video, None, Direction::SendRecv))
            } else if media.starts_with("audio") {
                Some((MediaKind::Audio, None, Direction::SendRecv))
            } else {
                None
            };
        } else if let Some((_, mid, direction)) = current.as_mut() {
            match line {
                "a=sendonly" => *direction = Direction::SendOnly,
                "a=recvonly" => *direction = Direction::RecvOnly,
                "a=inactive" => *direction = Direction::Inactive,
                _ => {
                    if let Some(value) = line.strip_prefix("a=mid:") {
                        *mid = Some(Mid::from(value));
                    }
                }
            }
        }
    }
    finish(current);
    tracks
}

#[cfg(test)]
mod tests;
