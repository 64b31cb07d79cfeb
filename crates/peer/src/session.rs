//! The session core: `str0m::Rtc` plus the STUN client, liveness and frame bookkeeping, with no
//! I/O of its own (str0m's shape: inputs and `now` in, transmits, events and a timeout out).
//!
//! Every mutation of the `Rtc` is followed by a full drain of `poll_output` (str0m's
//! single-mutation invariant), so outputs wait in queues here until the driver takes them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtcdesk_stun::{Client as StunClient, Event as StunEvent, TransactionConfig};
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::config::{Channel, PeerConfig, Role};
use crate::gather::first_mid;
use crate::video::{EncodedVideoFrame, ReceivedVideoFrame};
use crate::Error;

/// How often a keyframe request is repeated while the receiver still waits for one.
const KEYFRAME_REPEAT: Duration = Duration::from_millis(300);
/// When SCTP's buffered amount drops below this, str0m says so; the driver then retries.
const CHANNEL_LOW_WATER: usize = 64 * 1024;

/// What the session tells the application.
#[derive(Debug, Clone, PartialEq)]
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
    /// ICE and DTLS are up: video and data can flow. Also sent when a silent peer is heard again.
    Connected,
    /// The peer has been silent for `silence_timeout` (or ICE lost it). It may come back.
    Disconnected,
    /// The session is over: closed by either side, or the peer stayed silent too long.
    Closed,
    /// A data channel opened; sending on it works from now on.
    ChannelOpen(Channel),
    /// A message arrived on a data channel.
    Data(Channel, Vec<u8>),
    /// The receiver lost video (PLI/FIR) or a frame was dropped before sending: the encoder
    /// should make the next frame a keyframe.
    KeyframeRequested,
    /// Figures for the last stats interval (about one second).
    Stats(PeerStats),
}

/// Transport and video figures, one snapshot per second.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// The sender's bandwidth estimate (TWCC), when it has one.
    pub bandwidth_estimate_bps: Option<u64>,
    /// Bytes sent since the start.
    pub bytes_sent: u64,
    /// Bytes received since the start.
    pub bytes_received: u64,
}

/// A datagram to send from a given local socket.
#[derive(Debug)]
pub(crate) struct Transmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    New,
    Connected,
    Disconnected,
    Closed,
}

struct StunProbe {
    base: SocketAddr,
    client: StunClient,
}

/// The sans-IO session; see the module docs.
pub(crate) struct Session {
    rtc: Rtc,
    role: Role,
    silence_timeout: Duration,
    close_after_silence: Duration,
    stun_servers: Vec<SocketAddr>,
    probes: Vec<StunProbe>,
    gathering_started: bool,
    gathering_done: bool,
    local_description: Option<Option<String>>,
    unannounced_candidates: Vec<String>,
    pending_offer: Option<SdpPendingOffer>,
    video_mid: Option<Mid>,
    channel_ids: HashMap<ChannelId, Channel>,
    open_channels: [Option<ChannelId>; 3],
    lifecycle: Lifecycle,
    dtls_up: bool,
    last_heard: Instant,
    rtc_timeout: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<PeerEvent>,
    received_frames: VecDeque<ReceivedVideoFrame>,
    first_capture: Option<Instant>,
    sender_needs_keyframe: bool,
    receiver_needs_keyframe: Option<Instant>,
    stats: PeerStats,
    previous_totals: Option<(Instant, u64, u64)>,
}

impl Session {
    /// A session whose host candidates are the given bound socket addresses.
    pub(crate) fn new(config: &PeerConfig, bases: &[SocketAddr], now: Instant) -> Self {
        let mut builder = Rtc::builder()
            .clear_codecs()
            .enable_av1(true)
            .set_stats_interval(Some(Duration::from_secs(1)));
        // ICE checks on the selected pair run at least this often, so silence means gone.
        builder.set_max_stun_rto(config.keepalive_interval);
        let bwe = config.role == Role::Offerer && config.bandwidth_estimation;
        if bwe {
            builder = builder.enable_bwe(Some(Bitrate::bps(config.initial_bitrate_bps)));
        }
        let mut rtc = builder.build(now);
        if bwe {
            rtc.bwe()
                .set_desired_bitrate(Bitrate::bps(config.max_bitrate_bps));
        }
        let mut session = Self {
            rtc,
            role: config.role,
            silence_timeout: config.silence_timeout,
            close_after_silence: config.close_after_silence,
            stun_servers: config.stun_servers.clone(),
            probes: Vec::new(),
            gathering_started: false,
            gathering_done: false,
            local_description: None,
            unannounced_candidates: Vec::new(),
            pending_offer: None,
            video_mid: None,
            channel_ids: HashMap::new(),
            open_channels: [None; 3],
            lifecycle: Lifecycle::New,
            dtls_up: false,
            last_heard: now,
            rtc_timeout: now,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            received_frames: VecDeque::new(),
            first_capture: None,
            sender_needs_keyframe: true,
            receiver_needs_keyframe: None,
            stats: PeerStats::default(),
            previous_totals: None,
        };
        for &base in bases {
            match Candidate::host(base, "udp") {
                Ok(candidate) => {
                    if let Some(added) = session.rtc.add_local_candidate(candidate) {
                        let line = added.to_sdp_string();
                        session.announce(line);
                    }
                }
                Err(e) => tracing::debug!(%base, "no host candidate: {e}"),
            }
            session.probes.push(StunProbe {
                base,
                client: StunClient::new(TransactionConfig::default()),
            });
        }
        session.drain(now);
        session
    }

    // ---- signaling ------------------------------------------------------------------------

    /// The offer: AV1 video (send only) and the three data channels.
    pub(crate) fn create_offer(&mut self, now: Instant) -> Result<String, Error> {
        if self.role != Role::Offerer || self.local_description.is_some() {
            return Err(Error::WrongState("create_offer"));
        }
        let mut change = self.rtc.sdp_api();
        let mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        for channel in Channel::ALL {
            change.add_channel_with_config(channel_config(channel));
        }
        let (offer, pending) = change.apply().ok_or(Error::WrongState("create_offer"))?;
        self.video_mid = Some(mid);
        self.pending_offer = Some(pending);
        let sdp = offer.to_sdp_string();
        self.drain(now);
        self.set_local_description(&sdp, now);
        Ok(sdp)
    }

    /// Applies the remote answer to our offer.
    pub(crate) fn accept_answer(&mut self, sdp: &str, now: Instant) -> Result<(), Error> {
        let pending = self
            .pending_offer
            .take()
            .ok_or(Error::WrongState("accept_answer"))?;
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| Error::Sdp(e.to_string()))?;
        let result = self.rtc.sdp_api().accept_answer(pending, answer);
        self.drain(now);
        result.map_err(|e| Error::Sdp(e.to_string()))
    }

    /// Answers a remote offer; returns the answer SDP.
    pub(crate) fn accept_offer(&mut self, sdp: &str, now: Instant) -> Result<String, Error> {
        if self.role != Role::Answerer || self.local_description.is_some() {
            return Err(Error::WrongState("accept_offer"));
        }
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| Error::Sdp(e.to_string()))?;
        let result = self.rtc.sdp_api().accept_offer(offer);
        self.drain(now);
        let answer = result.map_err(|e| Error::Sdp(e.to_string()))?;
        let answer_sdp = answer.to_sdp_string();
        self.video_mid = video_mid(&answer_sdp);
        self.set_local_description(&answer_sdp, now);
        Ok(answer_sdp)
    }

    /// A remote candidate as signaled (`candidate:…`, with or without `a=`). Empty means
    /// end-of-candidates, which str0m does not need; mDNS (`.local`) candidates are skipped
    /// because str0m cannot resolve them (the peer-reflexive candidate covers that case).
    pub(crate) fn add_remote_candidate(
        &mut self,
        candidate: &str,
        now: Instant,
    ) -> Result<(), Error> {
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
            reason: e.to_string(),
        })?;
        self.rtc.add_remote_candidate(parsed);
        self.drain(now);
        Ok(())
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
            Some(mid) => self.events.push_back(PeerEvent::LocalCandidate {
                candidate,
                mid: mid.clone(),
            }),
            None => self.unannounced_candidates.push(candidate),
        }
    }

    /// Moves STUN requests to the transmit queue and turns answers into srflx candidates.
    fn collect_stun(&mut self) {
        let mut found = Vec::new();
        for probe in &mut self.probes {
            while let Some(transmit) = probe.client.poll_transmit() {
                self.transmits.push_back(Transmit {
                    source: probe.base,
                    destination: transmit.destination,
                    contents: transmit.contents,
                });
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
            && self.probes.iter().all(|p| p.client.is_idle())
        {
            self.gathering_done = true;
            self.events.push_back(PeerEvent::GatheringComplete);
        }
    }

    // ---- network and time -----------------------------------------------------------------

    /// A datagram arrived on the socket bound to `destination`.
    pub(crate) fn handle_receive(
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
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            return;
        }
        self.last_heard = now;
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::warn!("str0m rejected a datagram: {e}");
        }
        self.drain(now);
        self.check_liveness(now);
    }

    /// Time passed: retransmit, send keepalives and reports, notice silence.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for probe in &mut self.probes {
            probe.client.handle_timeout(now);
        }
        self.collect_stun();
        if self.lifecycle != Lifecycle::Closed {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::warn!("str0m timeout handling failed: {e}");
            }
        }
        self.drain(now);
        self.check_liveness(now);
        if let Some(asked) = self.receiver_needs_keyframe {
            if now >= asked + KEYFRAME_REPEAT {
                self.ask_for_keyframe(now);
            }
        }
    }

    /// When [`Session::handle_timeout`] must run next.
    pub(crate) fn poll_timeout(&self) -> Instant {
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
        next
    }

    fn check_liveness(&mut self, now: Instant) {
        let silence = now.saturating_duration_since(self.last_heard);
        match self.lifecycle {
            Lifecycle::Connected if silence >= self.silence_timeout => {
                tracing::info!(?silence, "peer silent: disconnected");
                self.lifecycle = Lifecycle::Disconnected;
                self.events.push_back(PeerEvent::Disconnected);
            }
            Lifecycle::Disconnected if silence >= self.close_after_silence => {
                tracing::info!(?silence, "peer gone: closing");
                self.close(now);
            }
            Lifecycle::Disconnected if silence < self.silence_timeout && self.ice_up() => {
                self.lifecycle = Lifecycle::Connected;
                self.events.push_back(PeerEvent::Connected);
            }
            _ => {}
        }
    }

    fn ice_up(&self) -> bool {
        self.dtls_up && self.rtc.is_connected()
    }

    /// Closes the session: str0m sends its goodbyes (DTLS close_notify, SCTP shutdown), which
    /// wait in the transmit queue.
    pub(crate) fn close(&mut self, now: Instant) {
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
            self.events.push_back(PeerEvent::Closed);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle == Lifecycle::Closed
    }

    // ---- media and data ---------------------------------------------------------------------

    /// Sends one encoded frame. `overwritten` says an earlier frame never made it out, which
    /// breaks the reference chain: until the next keyframe nothing more is sent.
    pub(crate) fn send_video(&mut self, frame: EncodedVideoFrame, overwritten: bool, now: Instant) {
        if overwritten {
            self.stats.frames_skipped += 1;
            self.want_keyframe_from_encoder();
        }
        let ready = self.lifecycle == Lifecycle::Connected && self.video_mid.is_some();
        if !ready || (self.sender_needs_keyframe && !frame.keyframe) {
            self.stats.frames_skipped += 1;
            return;
        }
        let Some(mid) = self.video_mid else { return };
        let Some(writer) = self.rtc.writer(mid) else {
            self.stats.frames_skipped += 1;
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Av1)
            .map(|p| p.pt())
        else {
            tracing::warn!("the peer did not accept AV1");
            self.stats.frames_skipped += 1;
            return;
        };
        let first = *self.first_capture.get_or_insert(frame.capture_time);
        let since_first = frame.capture_time.saturating_duration_since(first);
        let rtp_time = MediaTime::from_90khz((since_first.as_micros() * 9 / 100) as u64);
        match writer.write(pt, frame.capture_time, rtp_time, frame.data) {
            Ok(()) => {
                self.stats.frames_sent += 1;
                if frame.keyframe {
                    self.sender_needs_keyframe = false;
                }
            }
            Err(e) => {
                tracing::warn!("video frame not written: {e}");
                self.stats.frames_skipped += 1;
                self.want_keyframe_from_encoder();
            }
        }
        self.drain(now);
    }

    fn want_keyframe_from_encoder(&mut self) {
        self.sender_needs_keyframe = true;
        self.events.push_back(PeerEvent::KeyframeRequested);
    }

    /// Asks the sender for a keyframe (PLI), e.g. after the decoder failed.
    pub(crate) fn request_keyframe(&mut self, now: Instant) {
        self.ask_for_keyframe(now);
    }

    fn ask_for_keyframe(&mut self, now: Instant) {
        self.receiver_needs_keyframe = Some(now);
        let Some(mid) = self.video_mid else { return };
        if let Some(mut writer) = self.rtc.writer(mid) {
            if let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli) {
                tracing::debug!("keyframe request not sent yet: {e}");
            }
        }
        self.drain(now);
    }

    /// The decoder took a frame.
    pub(crate) fn received_frame_delivered(&mut self) {
        self.stats.frames_received += 1;
    }

    /// The decoder's queue was full: this frame is lost, so skip to the next keyframe.
    pub(crate) fn received_frame_dropped(&mut self, now: Instant) {
        self.ask_for_keyframe(now);
    }

    /// Writes one data-channel message. `Ok(false)`: not now (channel not open yet or SCTP's
    /// buffer full); the caller keeps reliable messages and retries after the next input.
    pub(crate) fn send_data(
        &mut self,
        channel: Channel,
        bytes: &[u8],
        now: Instant,
    ) -> Result<bool, Error> {
        if self.lifecycle == Lifecycle::Closed {
            return Err(Error::Closed);
        }
        let Some(id) = self.open_channels[channel.index()] else {
            return Ok(false);
        };
        let Some(mut handle) = self.rtc.channel(id) else {
            return Ok(false);
        };
        let accepted = handle.write(true, bytes);
        self.drain(now);
        Ok(accepted?)
    }

    /// Whether a channel is open for sending.
    pub(crate) fn is_open(&self, channel: Channel) -> bool {
        self.open_channels[channel.index()].is_some()
    }

    // ---- outputs ----------------------------------------------------------------------------

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }

    pub(crate) fn poll_video(&mut self) -> Option<ReceivedVideoFrame> {
        self.received_frames.pop_front()
    }

    /// Drains str0m until it only has a timeout left (its single-mutation invariant).
    fn drain(&mut self, now: Instant) {
        while self.rtc.is_alive() {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.rtc_timeout = at;
                    return;
                }
                Ok(Output::Transmit(transmit)) => self.transmits.push_back(Transmit {
                    source: transmit.source,
                    destination: transmit.destination,
                    contents: transmit.contents.into(),
                }),
                Ok(Output::Event(event)) => self.handle_rtc_event(event, now),
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

    fn handle_rtc_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                self.dtls_up = true;
                self.last_heard = now;
                if self.lifecycle != Lifecycle::Closed {
                    self.lifecycle = Lifecycle::Connected;
                    self.events.push_back(PeerEvent::Connected);
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
                    self.events.push_back(PeerEvent::Disconnected);
                }
            }
            Event::MediaAdded(added)
                if added.kind == MediaKind::Video && self.video_mid.is_none() =>
            {
                self.video_mid = Some(added.mid);
            }
            Event::MediaData(data) => self.handle_media_data(data, now),
            Event::KeyframeRequest(_) => self.want_keyframe_from_encoder(),
            Event::ChannelOpen(id, label) => {
                let Some(channel) = Channel::from_label(&label) else {
                    tracing::debug!(label, "ignoring an unknown data channel");
                    return;
                };
                self.channel_ids.insert(id, channel);
                self.open_channels[channel.index()] = Some(id);
                if let Some(mut handle) = self.rtc.channel(id) {
                    handle.set_buffered_amount_low_threshold(CHANNEL_LOW_WATER);
                }
                self.events.push_back(PeerEvent::ChannelOpen(channel));
            }
            Event::ChannelData(data) => {
                if let Some(&channel) = self.channel_ids.get(&data.id) {
                    self.events.push_back(PeerEvent::Data(channel, data.data));
                }
            }
            Event::ChannelClose(id) => {
                if let Some(channel) = self.channel_ids.remove(&id) {
                    self.open_channels[channel.index()] = None;
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
    }

    fn handle_media_data(&mut self, data: str0m::media::MediaData, now: Instant) {
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
        self.received_frames.push_back(ReceivedVideoFrame {
            data: data.data,
            rtp_time: data.time.numer(),
            keyframe,
            contiguous: data.contiguous,
            received_at: data.network_time,
        });
    }

    /// The video sender's current bandwidth estimate (TWCC), once it has one.
    pub(crate) fn bandwidth_estimate_bps(&self) -> Option<u64> {
        self.stats.bandwidth_estimate_bps
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
        self.events.push_back(PeerEvent::Stats(self.stats.clone()));
    }
}

fn channel_config(channel: Channel) -> ChannelConfig {
    ChannelConfig {
        label: channel.label().to_string(),
        ordered: channel != Channel::Pointer,
        reliability: if channel.is_reliable() {
            Reliability::Reliable
        } else {
            Reliability::MaxRetransmits { retransmits: 0 }
        },
        negotiated: None,
        protocol: String::new(),
    }
}

/// The mid of the `m=video` section of an SDP.
fn video_mid(sdp: &str) -> Option<Mid> {
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
        } else if in_video {
            if let Some(mid) = line.strip_prefix("a=mid:") {
                return Some(Mid::from(mid));
            }
        }
    }
    None
}

/// Two sessions wired together by a simulated link, on a virtual clock (quinn-proto's `Pair`):
/// no sockets, no sleeps; seconds of protocol time pass in milliseconds.
#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        now: Instant,
        sessions: [Session; 2],
        addresses: [SocketAddr; 2],
        in_flight: Vec<(Instant, usize, Transmit)>,
        latency: Duration,
        loss: f64,
        cut: bool,
        rng: u64,
        events: [Vec<(Instant, PeerEvent)>; 2],
        frames: [Vec<ReceivedVideoFrame>; 2],
    }

    impl Pair {
        fn new(loss: f64, seed: u64) -> Pair {
            crate::install_crypto_provider();
            let now = Instant::now();
            let addresses: [SocketAddr; 2] = [
                "10.0.0.1:1000".parse().unwrap(),
                "10.0.0.2:2000".parse().unwrap(),
            ];
            let puppet = Session::new(&PeerConfig::new(Role::Offerer), &addresses[..1], now);
            let controller = Session::new(&PeerConfig::new(Role::Answerer), &addresses[1..], now);
            let mut pair = Pair {
                now,
                sessions: [puppet, controller],
                addresses,
                in_flight: Vec::new(),
                latency: Duration::from_millis(10),
                loss,
                cut: false,
                rng: seed | 1,
                events: [Vec::new(), Vec::new()],
                frames: [Vec::new(), Vec::new()],
            };
            let offer = pair.sessions[0].create_offer(now).unwrap();
            let answer = pair.sessions[1].accept_offer(&offer, now).unwrap();
            pair.sessions[0].accept_answer(&answer, now).unwrap();
            pair
        }

        fn random(&mut self) -> f64 {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            (self.rng >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Moves outputs onto the link (and candidates to the other side), then advances the
        /// clock to the next delivery or timeout and handles it.
        fn step(&mut self) {
            for side in 0..2 {
                while let Some(transmit) = self.sessions[side].poll_transmit() {
                    let lost = self.cut || self.random() < self.loss;
                    if !lost {
                        self.in_flight
                            .push((self.now + self.latency, 1 - side, transmit));
                    }
                }
                while let Some(frame) = self.sessions[side].poll_video() {
                    self.sessions[side].received_frame_delivered();
                    self.frames[side].push(frame);
                }
                while let Some(event) = self.sessions[side].poll_event() {
                    if let PeerEvent::LocalCandidate { candidate, .. } = &event {
                        let now = self.now;
                        self.sessions[1 - side]
                            .add_remote_candidate(candidate, now)
                            .unwrap();
                    }
                    self.events[side].push((self.now, event));
                }
            }
            let next_delivery = self.in_flight.iter().map(|(at, _, _)| *at).min();
            let next_timeout = self.sessions[0]
                .poll_timeout()
                .min(self.sessions[1].poll_timeout());
            let next = next_delivery.map_or(next_timeout, |d| d.min(next_timeout));
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) =
                self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
            self.in_flight = later;
            for (_, to, transmit) in due {
                let destination = self.addresses[to];
                self.sessions[to].handle_receive(
                    now,
                    self.addresses[1 - to],
                    destination,
                    &transmit.contents,
                );
            }
            for session in &mut self.sessions {
                if session.poll_timeout() <= now {
                    session.handle_timeout(now);
                }
            }
        }

        /// Steps until `done` holds; panics after `limit` of virtual time.
        fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) {
            let give_up = self.now + limit;
            while !done(self) {
                assert!(
                    self.now < give_up,
                    "not done after {limit:?} of virtual time"
                );
                self.step();
            }
        }

        fn saw(&self, side: usize, wanted: &PeerEvent) -> Option<Instant> {
            self.events[side]
                .iter()
                .find(|(_, event)| event == wanted)
                .map(|(at, _)| *at)
        }

        fn data(&self, side: usize, channel: Channel) -> Vec<Vec<u8>> {
            self.events[side]
                .iter()
                .filter_map(|(_, event)| match event {
                    PeerEvent::Data(c, bytes) if *c == channel => Some(bytes.clone()),
                    _ => None,
                })
                .collect()
        }

        fn connect(&mut self) {
            let all_open = |p: &Pair, side: usize| {
                Channel::ALL
                    .iter()
                    .all(|c| p.saw(side, &PeerEvent::ChannelOpen(*c)).is_some())
            };
            self.drive_until(Duration::from_secs(60), |p| {
                all_open(p, 0) && all_open(p, 1)
            });
        }
    }

    #[test]
    fn the_offer_is_plain_sdp_with_av1_send_only_nack_rtx_and_data_channels() {
        crate::install_crypto_provider();
        let now = Instant::now();
        let bases = ["10.0.0.1:1000".parse().unwrap()];
        let mut puppet = Session::new(&PeerConfig::new(Role::Offerer), &bases, now);
        let offer = puppet.create_offer(now).unwrap();
        assert!(offer.starts_with("v=0\r\n"), "{offer}");
        assert!(offer.contains("m=video "), "{offer}");
        assert!(offer.contains("AV1/90000"), "{offer}");
        assert!(offer.contains("a=sendonly"), "{offer}");
        assert!(
            offer.contains(" nack\r\n") && offer.contains(" nack pli\r\n"),
            "{offer}"
        );
        assert!(offer.contains("rtx/90000"), "{offer}");
        assert!(
            offer.contains("m=application ") && offer.contains("webrtc-datachannel"),
            "{offer}"
        );
        assert!(offer.contains("a=candidate:"), "{offer}");
        // The answerer cannot offer, the offerer cannot offer twice.
        assert!(puppet.create_offer(now).is_err());
        let mut controller = Session::new(&PeerConfig::new(Role::Answerer), &bases, now);
        assert!(controller.create_offer(now).is_err());
        let answer = controller.accept_offer(&offer, now).unwrap();
        assert!(answer.contains("a=recvonly"), "{answer}");
    }

    #[test]
    fn bad_remote_input_is_an_error_not_a_panic() {
        crate::install_crypto_provider();
        let now = Instant::now();
        let bases = ["10.0.0.2:2000".parse().unwrap()];
        let mut controller = Session::new(&PeerConfig::new(Role::Answerer), &bases, now);
        assert!(matches!(
            controller.add_remote_candidate("candidate:garbage", now),
            Err(Error::BadCandidate { .. })
        ));
        // End-of-candidates and mDNS candidates (which str0m cannot resolve) are accepted.
        controller.add_remote_candidate("", now).unwrap();
        controller
            .add_remote_candidate(
                "candidate:1 1 udp 2122260223 0c4a7e5b-1a2b.local 54321 typ host",
                now,
            )
            .unwrap();
        controller
            .add_remote_candidate("a=candidate:1 1 udp 2122260223 10.0.0.1 1000 typ host", now)
            .unwrap();
        assert!(matches!(
            controller.accept_offer("not sdp", now),
            Err(Error::Sdp(_))
        ));
        assert!(matches!(
            controller.accept_answer("v=0", now),
            Err(Error::WrongState(_))
        ));
    }

    #[test]
    fn a_pair_connects_and_talks_on_a_virtual_clock() {
        let mut pair = Pair::new(0.0, 1);
        pair.connect();
        let now = pair.now;
        assert!(pair.sessions[0]
            .send_data(Channel::Input, b"key", now)
            .unwrap());
        assert!(pair.sessions[1]
            .send_data(Channel::Control, b"chat", now)
            .unwrap());
        pair.drive_until(Duration::from_secs(1), |p| {
            !p.data(1, Channel::Input).is_empty() && !p.data(0, Channel::Control).is_empty()
        });
        assert_eq!(pair.data(1, Channel::Input), [b"key".to_vec()]);
        assert_eq!(pair.data(0, Channel::Control), [b"chat".to_vec()]);
    }

    #[test]
    fn silence_is_reported_at_the_silence_timeout_then_the_session_closes() {
        let mut pair = Pair::new(0.0, 2);
        pair.connect();
        pair.cut = true;
        let cut_at = pair.now;
        pair.drive_until(Duration::from_secs(30), |p| {
            p.saw(0, &PeerEvent::Closed).is_some()
        });
        let disconnected = pair.saw(0, &PeerEvent::Disconnected).unwrap() - cut_at;
        let closed = pair.saw(0, &PeerEvent::Closed).unwrap() - cut_at;
        let config = PeerConfig::new(Role::Offerer);
        // Silence counts from the last datagram heard, at most one keepalive before the cut.
        assert!(disconnected <= config.silence_timeout, "{disconnected:?}");
        assert!(disconnected + config.keepalive_interval + pair.latency >= config.silence_timeout);
        assert!(closed <= config.close_after_silence, "{closed:?}");
        assert!(pair.saw(1, &PeerEvent::Disconnected).is_some());
    }

    #[test]
    fn reliable_data_survives_ten_percent_loss_in_order() {
        // The handshake runs lossless: OpenSSL's DTLS retransmission timer reads the real clock,
        // so a lost flight would wait for real seconds. SCTP and SRTP run on the virtual clock.
        let mut pair = Pair::new(0.0, 0xfeed);
        pair.connect();
        pair.loss = 0.10;
        let total = 200u32;
        let mut next = 0u32;
        let give_up = pair.now + Duration::from_secs(60);
        while pair.data(1, Channel::Input).len() < total as usize {
            assert!(pair.now < give_up, "not delivered in 60 s of virtual time");
            // Feed the sender as fast as SCTP takes messages, as the driver does.
            while next < total {
                let now = pair.now;
                if !pair.sessions[0]
                    .send_data(Channel::Input, &next.to_be_bytes(), now)
                    .unwrap()
                {
                    break;
                }
                next += 1;
            }
            pair.step();
        }
        let expected: Vec<Vec<u8>> = (0..total).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(pair.data(1, Channel::Input), expected);
    }

    #[test]
    fn video_over_a_lossy_link_arrives_whole_in_order() {
        let mut pair = Pair::new(0.0, 0xbeef);
        pair.connect();
        pair.loss = 0.05;
        let start = pair.now;
        let mut sent = Vec::new();
        for index in 0..100u32 {
            let keyframe = index == 0 || pair.sessions[0].sender_needs_keyframe;
            let mut data = vec![(6 << 3) | 0b10, 0x90, 0x03]; // frame OBU, 400-byte payload
            data.extend((0..400u32).map(|i| (i.wrapping_mul(31) ^ index) as u8));
            if keyframe {
                let mut with_header = vec![(1 << 3) | 0b10, 2, 0, 0];
                with_header.extend_from_slice(&data);
                data = with_header;
            }
            sent.push(data.clone());
            let frame = EncodedVideoFrame {
                data,
                capture_time: start + Duration::from_millis(33 * u64::from(index)),
                keyframe,
            };
            let now = pair.now;
            pair.sessions[0].send_video(frame, false, now);
            let until = pair.now + Duration::from_millis(33);
            pair.drive_until(Duration::from_secs(1), |p| p.now >= until);
        }
        pair.drive_until(Duration::from_secs(5), |p| {
            p.frames[1]
                .last()
                .is_some_and(|f| f.data[..] == sent[sent.len() - 1][..])
        });
        let mut position = 0;
        for frame in &pair.frames[1] {
            let found = sent[position..]
                .iter()
                .position(|s| s[..] == frame.data[..])
                .expect("every frame whole and in order");
            position += found + 1;
        }
        assert!(
            pair.frames[1].len() >= 50,
            "{} frames",
            pair.frames[1].len()
        );
    }
}
