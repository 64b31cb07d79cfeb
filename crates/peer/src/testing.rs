//! Two sessions wired together by a simulated link on a virtual clock (quinn-proto's `Pair`):
//! no sockets, no sleeps; seconds of protocol time pass in milliseconds. The link has a latency,
//! a seeded random loss, optional reordering, and can be cut. Exported with the `test-util`
//! feature so the puppet's and controller's tests can drive sessions the same way.
//!
//! ```
//! use std::time::Duration;
//! use rtcdesk_peer::testing::Pair;
//! use rtcdesk_peer::{Channel, Message};
//!
//! let mut pair = Pair::new(1);
//! pair.connect();
//! let now = pair.now;
//! pair.sessions[1].send_data(Channel::Input, Message::Binary(b"key".to_vec()), now).unwrap();
//! pair.drive_until(Duration::from_secs(1), |p| !p.data(0, Channel::Input).is_empty());
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::channel::{Channel, Message};
use crate::config::{PeerConfig, Role};
use crate::session::{Input, Output, PeerEvent, Session, Transmit};
use crate::video::{ReceivedAudioFrame, ReceivedVideoFrame};

/// The two sessions (index 0 the offerer, 1 the answerer) and the link between them.
pub struct Pair {
    /// The virtual clock.
    pub now: Instant,
    /// The offerer (a puppet) and the answerer (a controller).
    pub sessions: [Session; 2],
    /// Each side's host address.
    pub addresses: [SocketAddr; 2],
    in_flight: Vec<(Instant, usize, Transmit)>,
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Extra random delay up to this much, which reorders datagrams.
    pub jitter: Duration,
    /// Fraction of datagrams lost (0.0..=1.0).
    pub loss: f64,
    /// Nothing gets through while set (a vanished peer).
    pub cut: bool,
    rng: u64,
    /// Every event each side emitted, with when.
    pub events: [Vec<(Instant, PeerEvent)>; 2],
    /// Video frames each side received.
    pub frames: [Vec<ReceivedVideoFrame>; 2],
    /// Audio frames each side received.
    pub audio: [Vec<ReceivedAudioFrame>; 2],
    /// How often each side was asked for a keyframe.
    pub keyframes_wanted: [usize; 2],
    /// Bytes each side put on the link (datagram payloads), with when.
    pub sent: [Vec<(Instant, usize)>; 2],
}

impl Pair {
    /// Two sessions with default configurations, offer and answer applied, on a 10 ms link.
    pub fn new(seed: u64) -> Pair {
        Pair::with_configs(
            PeerConfig::new(Role::Offerer),
            PeerConfig::new(Role::Answerer),
            seed,
        )
    }

    /// Two sessions with the given configurations, offer and answer applied.
    pub fn with_configs(offerer: PeerConfig, answerer: PeerConfig, seed: u64) -> Pair {
        crate::install_crypto_provider();
        let now = Instant::now();
        let addresses: [SocketAddr; 2] = [
            SocketAddr::from(([10, 0, 0, 1], 1000)),
            SocketAddr::from(([10, 0, 0, 2], 2000)),
        ];
        let puppet = offerer
            .build(&addresses[..1], now)
            .expect("valid offerer configuration");
        let controller = answerer
            .build(&addresses[1..], now)
            .expect("valid answerer configuration");
        let mut pair = Pair {
            now,
            sessions: [puppet, controller],
            addresses,
            in_flight: Vec::new(),
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            cut: false,
            rng: seed | 1,
            events: [Vec::new(), Vec::new()],
            frames: [Vec::new(), Vec::new()],
            audio: [Vec::new(), Vec::new()],
            keyframes_wanted: [0, 0],
            sent: [Vec::new(), Vec::new()],
        };
        let offer = pair.sessions[0].create_offer(now).expect("offer");
        let answer = pair.sessions[1].accept_offer(&offer, now).expect("answer");
        pair.sessions[0]
            .accept_answer(&answer, now)
            .expect("answer accepted");
        pair
    }

    /// A number in 0.0..1.0 from the seeded generator (xorshift), for loss and jitter.
    pub fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Drains both sides' outputs (datagrams onto the link, candidates to the other side),
    /// then advances the clock to the next delivery or timeout and handles it.
    pub fn step(&mut self) {
        let mut timeouts = [self.now; 2];
        #[allow(clippy::needless_range_loop)] // both sessions and the other side are indexed
        for side in 0..2 {
            loop {
                match self.sessions[side].poll_output() {
                    Output::Transmit(transmit) => {
                        self.sent[side].push((self.now, transmit.contents.len()));
                        let lost = self.cut || self.random() < self.loss;
                        if !lost {
                            let extra = self.jitter.mul_f64(self.random());
                            let at = self.now + self.latency + extra;
                            self.in_flight.push((at, 1 - side, transmit));
                        }
                    }
                    Output::Video(frame) => self.frames[side].push(frame),
                    Output::Audio(frame) => self.audio[side].push(frame),
                    Output::KeyframeWanted => self.keyframes_wanted[side] += 1,
                    Output::Event(event) => {
                        if let PeerEvent::LocalCandidate { candidate, .. } = &event {
                            let now = self.now;
                            self.sessions[1 - side]
                                .add_remote_candidate(candidate, now)
                                .expect("our own candidates parse");
                        }
                        self.events[side].push((self.now, event));
                    }
                    Output::Timeout(at) => {
                        timeouts[side] = at;
                        break;
                    }
                }
            }
        }
        let next_delivery = self.in_flight.iter().map(|(at, _, _)| *at).min();
        let next_timeout = timeouts[0].min(timeouts[1]);
        let next = next_delivery.map_or(next_timeout, |d| d.min(next_timeout));
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(at, _, _)| *at <= now);
        self.in_flight = later;
        let mut due = due;
        due.sort_by_key(|(at, _, _)| *at);
        for (_, to, transmit) in due {
            let input = Input::Receive {
                source: self.addresses[1 - to],
                destination: self.addresses[to],
                contents: &transmit.contents,
            };
            self.sessions[to].handle_input(input, now);
        }
        for (side, session) in self.sessions.iter_mut().enumerate() {
            if timeouts[side] <= now {
                session.handle_input(Input::Timeout, now);
            }
        }
    }

    /// Steps until `done` holds; panics after `limit` of virtual time.
    pub fn drive_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) {
        let give_up = self.now + limit;
        while !done(self) {
            assert!(
                self.now < give_up,
                "not done after {limit:?} of virtual time"
            );
            self.step();
        }
    }

    /// Steps for `duration` of virtual time.
    pub fn drive_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        self.drive_until(duration + Duration::from_secs(1), |p| p.now >= until);
    }

    /// When a side first emitted this event.
    pub fn saw(&self, side: usize, wanted: &PeerEvent) -> Option<Instant> {
        self.events[side]
            .iter()
            .find(|(_, event)| event == wanted)
            .map(|(at, _)| *at)
    }

    /// The messages a side received on a channel, in order.
    pub fn data(&self, side: usize, channel: Channel) -> Vec<Message> {
        self.data_with_times(side, channel)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// The messages a side received on a channel, with when.
    pub fn data_with_times(&self, side: usize, channel: Channel) -> Vec<(Instant, Message)> {
        self.events[side]
            .iter()
            .filter_map(|(at, event)| match event {
                PeerEvent::Data(c, message) if *c == channel => Some((*at, message.clone())),
                _ => None,
            })
            .collect()
    }

    /// How many messages a side received on a channel (without copying them).
    pub fn count(&self, side: usize, channel: Channel) -> usize {
        self.events[side]
            .iter()
            .filter(|(_, event)| matches!(event, PeerEvent::Data(c, _) if *c == channel))
            .count()
    }

    /// Bytes a side put on the link between two times.
    pub fn bytes_sent_between(&self, side: usize, from: Instant, to: Instant) -> usize {
        self.sent[side]
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, n)| n)
            .sum()
    }

    /// Drives until every one of our channels is open on both sides.
    pub fn connect(&mut self) {
        let all_open = |p: &Pair, side: usize| {
            Channel::OURS
                .iter()
                .all(|c| p.saw(side, &PeerEvent::ChannelOpen(*c)).is_some())
        };
        self.drive_until(Duration::from_secs(60), |p| {
            all_open(p, 0) && all_open(p, 1)
        });
    }
}
