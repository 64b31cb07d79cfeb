//! What a session is set up with: role, addresses, STUN servers, timeouts, queue sizes.

use std::net::SocketAddr;
use std::time::Duration;

/// Which side of the offer/answer exchange this peer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The puppet: creates the offer, sends video, opens the data channels.
    Offerer,
    /// The controller: answers, receives video.
    Answerer,
}

/// The three data channels, each with the delivery its traffic needs (DESIGN.md, input protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Keys, buttons, wheel, text: reliable and ordered, never dropped.
    Input,
    /// Pointer moves: unordered, no retransmits (a stale move is worthless).
    Pointer,
    /// Chat, files, clipboard, stats: reliable and ordered.
    Control,
}

impl Channel {
    /// All channels, in the order the offerer creates them.
    pub const ALL: [Channel; 3] = [Channel::Input, Channel::Pointer, Channel::Control];

    /// The label on the wire; a browser controller creates or matches channels by it.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Input => "input",
            Channel::Pointer => "pointer",
            Channel::Control => "control",
        }
    }

    /// The channel with this label, if it is one of ours.
    pub fn from_label(label: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.label() == label)
    }

    /// Whether messages on this channel must all arrive (and so are never dropped locally).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Channel::Pointer)
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Channel::Input => 0,
            Channel::Pointer => 1,
            Channel::Control => 2,
        }
    }
}

/// How to set up one session. [`PeerConfig::new`] gives working defaults.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Offerer (puppet) or answerer (controller).
    pub role: Role,
    /// Bind here instead of one socket per usable interface. Tests use `127.0.0.1:0`.
    pub bind: Option<SocketAddr>,
    /// STUN servers asked for server-reflexive candidates, one query per server and socket.
    pub stun_servers: Vec<SocketAddr>,
    /// Silence after which the peer is reported [`Disconnected`](crate::PeerEvent::Disconnected).
    /// The issue asks for a vanished peer to be noticed within 5 s; ICE keepalives run every
    /// `keepalive_interval`, so this must be a few of those.
    pub silence_timeout: Duration,
    /// Silence after which the session gives up and closes itself.
    pub close_after_silence: Duration,
    /// How often ICE checks the selected pair (str0m's max STUN RTO); also keeps NATs open.
    pub keepalive_interval: Duration,
    /// Whether the video sender estimates bandwidth (TWCC) and paces to it. On by default;
    /// off sends every frame at once (only sensible on a LAN, or to measure raw capacity).
    pub bandwidth_estimation: bool,
    /// The bandwidth estimator's start value for the video sender.
    pub initial_bitrate_bps: u64,
    /// The most the bandwidth estimator should probe for.
    pub max_bitrate_bps: u64,
    /// How many outgoing data messages may wait for the network before `send_data` waits too.
    pub data_queue: usize,
    /// How many received video frames may wait for the decoder before newer ones are dropped
    /// (and a keyframe requested).
    pub video_receive_queue: usize,
    /// How many events may wait for the application before the network loop waits on it.
    pub event_queue: usize,
    /// Kernel send and receive buffer asked for each UDP socket, so a burst of video packets
    /// is not lost while the loop is busy (the kernel caps it at net.core.[rw]mem_max).
    pub socket_buffer_bytes: usize,
}

impl PeerConfig {
    /// Defaults: all interfaces, no STUN server, disconnect after 3 s of silence, close after 15 s.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            bind: None,
            stun_servers: Vec::new(),
            silence_timeout: Duration::from_secs(3),
            close_after_silence: Duration::from_secs(15),
            keepalive_interval: Duration::from_millis(500),
            bandwidth_estimation: true,
            initial_bitrate_bps: 2_000_000,
            max_bitrate_bps: 50_000_000,
            data_queue: 1024,
            video_receive_queue: 8,
            event_queue: 4096,
            socket_buffer_bytes: 4 << 20,
        }
    }
}
