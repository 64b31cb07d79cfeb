//! The controller's session as a sans-IO core: everything it decides once the peer connection
//! exists, with no tokio, no socket and no clock of its own.
//!
//! The session task feeds it data-channel messages ([`SessionCore::handle_data`]), the peer's
//! stats with the decoder's counters ([`SessionCore::handle_stats`]) and the user's commands
//! (chat, send a file, accept, decline or cancel one), and drains
//! [`SessionCore::poll_output`] for what to do: messages to send on a channel and events for the
//! user. File chunks come from [`SessionCore::poll_chunk`], after every control message.
//!
//! Rules it keeps:
//! - the keyboard mode goes out as soon as the control channel opens;
//! - malformed control messages are dropped (and logged), never answered;
//! - a file offered by the puppet is accepted only with `accept_files` or when the user says so
//!   ([`SessionCore::accept`]); without a download folder it is refused unseen;
//! - the puppet's `stats` and `view_only` messages become [`ControllerEvent::PuppetStats`] and
//!   [`ControllerEvent::ViewOnly`];
//! - file bytes go on [`Channel::File`] only, held back while that channel is full, never
//!   dropped, never blocking (see [`rtcdesk_files::SessionFiles`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use rtcdesk_files::{
    Direction, DownloadFolder, FileError, Limits, Offer, Progress, SessionFiles, Sha256, Source,
    TransferEvent,
};
use rtcdesk_peer::{Channel, Message, PeerStats};
use rtcdesk_proto::chat::ChatLine;
use rtcdesk_proto::control::ControlMessage;

use crate::session::{ControllerEvent, PuppetStats, SessionStats};
use crate::KeyboardMode;

/// What the session's shell must do.
#[derive(Debug)]
// Stats events are the large ones, once a second: boxing them would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum CoreOutput {
    /// Send this message on this channel.
    Send(Channel, Message),
    /// Tell the user.
    Event(ControllerEvent),
}

/// The decoder's running totals, read by the shell once per stats interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeTotals {
    /// Pictures decoded since the start.
    pub pictures: u64,
    /// Microseconds dav1d spent on them.
    pub decode_micros: u64,
    /// Frames that failed to decode.
    pub errors: u64,
    /// The last picture's size.
    pub size: Option<(u32, u32)>,
    /// Age of the last stamped picture (synthetic desktop only).
    pub stamp_age: Option<Duration>,
}

/// What a session starts with.
#[derive(Debug)]
pub struct CoreConfig {
    /// Who the puppet is (its signaling name), for chat lines.
    pub puppet_name: String,
    /// How key events are replayed, told to the puppet once the control channel opens.
    pub keyboard: KeyboardMode,
    /// Where files the puppet sends go (`None`: every offer is refused).
    pub folder: Option<DownloadFolder>,
    /// Accept every file the puppet offers without asking.
    pub accept_files: bool,
}

/// The session's core. See the module documentation for its rules.
#[derive(Debug)]
pub struct SessionCore {
    puppet_name: String,
    keyboard: KeyboardMode,
    accept_files: bool,
    files: SessionFiles,
    outputs: VecDeque<CoreOutput>,
    last_totals: DecodeTotals,
    last_stats_at: Instant,
}

impl SessionCore {
    /// A core for a session starting at `now`.
    pub fn new(config: CoreConfig, now: Instant) -> Self {
        Self {
            puppet_name: config.puppet_name,
            keyboard: config.keyboard,
            accept_files: config.accept_files,
            files: SessionFiles::new(config.folder, None, Limits::default()),
            outputs: VecDeque::new(),
            last_totals: DecodeTotals::default(),
            last_stats_at: now,
        }
    }

    /// The control channel opened: the puppet learns the keyboard mode.
    pub fn control_opened(&mut self) {
        let message = ControlMessage::Keyboard {
            mode: self.keyboard,
        };
        self.send_control(&message);
    }

    /// A data-channel message arrived.
    pub fn handle_data(&mut self, channel: Channel, bytes: &[u8], now: Instant) {
        match channel {
            Channel::Control => self.handle_control(bytes, now),
            Channel::File => {
                if let Err(error) = self.files.handle_chunk(bytes, now) {
                    tracing::debug!(%error, "file chunk refused");
                }
                self.collect_file_events(now);
            }
            other => tracing::trace!(?other, "data on a channel the controller does not read"),
        }
    }

    fn handle_control(&mut self, bytes: &[u8], now: Instant) {
        let message = self.files.handle_control_bytes(bytes, now);
        self.collect_file_events(now);
        let Some(message) = message else {
            return;
        };
        let event = match message {
            ControlMessage::Chat { text } => ControllerEvent::Chat(ChatLine {
                from: self.puppet_name.clone(),
                text,
                at: SystemTime::now(),
            }),
            ControlMessage::ViewOnly { on } => ControllerEvent::ViewOnly(on),
            ControlMessage::Clipboard { text } => ControllerEvent::Clipboard(text),
            ControlMessage::Stats {
                fps,
                rtt_ms,
                bitrate_kbps,
                loss,
            } => ControllerEvent::PuppetStats(PuppetStats {
                fps,
                rtt_ms,
                bitrate_kbps,
                loss,
            }),
            other => {
                tracing::debug!(message = ?other, "control message not handled");
                return;
            }
        };
        self.outputs.push_back(CoreOutput::Event(event));
    }

    /// The peer's figures and the decoder's totals for the interval that ends `now`.
    pub fn handle_stats(&mut self, peer: PeerStats, totals: DecodeTotals, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_stats_at)
            .as_secs_f64()
            .max(1e-3);
        self.last_stats_at = now;
        let new_pictures = totals.pictures.saturating_sub(self.last_totals.pictures);
        let new_micros = totals
            .decode_micros
            .saturating_sub(self.last_totals.decode_micros);
        self.last_totals = totals;
        let stats = SessionStats {
            fps: new_pictures as f64 / elapsed,
            rtt: peer.rtt,
            receive_bitrate_bps: peer.receive_bitrate_bps,
            stamp_latency: totals.stamp_age,
            decode_time: (new_pictures > 0)
                .then(|| Duration::from_micros(new_micros / new_pictures)),
            video_size: totals.size,
            decode_errors: totals.errors,
            peer,
        };
        self.outputs
            .push_back(CoreOutput::Event(ControllerEvent::Stats(stats)));
        let progress = self.files.progress(now);
        if !progress.is_empty() {
            self.outputs
                .push_back(CoreOutput::Event(ControllerEvent::FileProgress(progress)));
        }
    }

    /// The user accepts file offer `id`: it goes into the download folder (resuming a part file
    /// a broken session left).
    pub fn accept(&mut self, id: u32, now: Instant) -> Result<(), FileError> {
        let result = self.files.accept(id, now);
        self.collect_file_events(now);
        result
    }

    /// The user declines file offer `id`.
    pub fn decline(&mut self, id: u32, reason: &str, now: Instant) -> Result<(), FileError> {
        let result = self.files.decline(id, reason);
        self.collect_file_events(now);
        result
    }

    /// The user cancels a transfer either way.
    pub fn cancel(
        &mut self,
        direction: Direction,
        id: u32,
        reason: &str,
        now: Instant,
    ) -> Result<(), FileError> {
        let result = self.files.cancel(direction, id, reason);
        self.collect_file_events(now);
        result
    }

    /// Offers a file to the puppet (`sha256` computed off the session task). Gives its id.
    pub fn send_file(
        &mut self,
        name: &str,
        size: u64,
        sha256: Sha256,
        source: Box<dyn Source + Send>,
        now: Instant,
    ) -> Result<u32, FileError> {
        let result = self.files.send_file(name, size, sha256, source, now);
        self.collect_file_events(now);
        result
    }

    /// Bytes, rate and time left of every live transfer.
    pub fn progress(&self, now: Instant) -> Vec<(Offer, Direction, Progress)> {
        self.files.progress(now)
    }

    /// Whether a transfer is offered or under way (a script waits for these before leaving).
    pub fn transferring(&self) -> bool {
        self.files.busy()
    }

    /// The next thing to do; `None` when nothing is left for now.
    pub fn poll_output(&mut self) -> Option<CoreOutput> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        if let Some(message) = self.files.poll_control() {
            return Some(CoreOutput::Send(
                Channel::Control,
                Message::Text(message.encode()),
            ));
        }
        self.collect_file_events(Instant::now());
        self.outputs.pop_front()
    }

    /// The next file chunk, while the file channel has room (see
    /// [`rtcdesk_files::SessionFiles::poll_chunk`]). Call once [`SessionCore::poll_output`] is
    /// empty.
    pub fn poll_chunk(&mut self, sent_this_drain: usize) -> Option<Message> {
        let chunk = self.files.poll_chunk(sent_this_drain);
        chunk.map(Message::Binary)
    }

    /// The file channel refused `message`: it goes first once there is room.
    pub fn file_channel_full(&mut self, message: Message) {
        self.files.channel_full(message.into_bytes());
    }

    /// Whether the shell should wait for room on the file channel.
    pub fn wants_file_room(&self) -> bool {
        self.files.wants_room()
    }

    /// The file channel has room again.
    pub fn file_channel_room(&mut self) {
        self.files.channel_room();
    }

    /// The session is over: incoming part files are kept for a resume.
    pub fn close(&mut self) {
        self.files.close();
        self.collect_file_events(Instant::now());
    }

    fn send_control(&mut self, message: &ControlMessage) {
        self.outputs.push_back(CoreOutput::Send(
            Channel::Control,
            Message::Text(message.encode()),
        ));
    }

    /// Moves file events out; with `accept_files`, offers are accepted here.
    fn collect_file_events(&mut self, now: Instant) {
        while let Some(event) = self.files.poll_event() {
            if let (true, TransferEvent::Offered { offer, .. }) = (self.accept_files, &event) {
                let id = offer.id;
                self.outputs
                    .push_back(CoreOutput::Event(ControllerEvent::File(event)));
                if let Err(error) = self.files.accept(id, now) {
                    tracing::warn!(id, %error, "file offer not taken");
                }
                continue;
            }
            self.outputs
                .push_back(CoreOutput::Event(ControllerEvent::File(event)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_files::{hash_source, SeekSource, Transfers};

    fn core(accept_files: bool, folder: Option<DownloadFolder>) -> SessionCore {
        SessionCore::new(
            CoreConfig {
                puppet_name: "alice".into(),
                keyboard: KeyboardMode::Translate,
                folder,
                accept_files,
            },
            Instant::now(),
        )
    }

    fn drain(core: &mut SessionCore) -> (Vec<(Channel, Message)>, Vec<ControllerEvent>) {
        let (mut sent, mut events) = (Vec::new(), Vec::new());
        while let Some(output) = core.poll_output() {
            match output {
                CoreOutput::Send(channel, message) => sent.push((channel, message)),
                CoreOutput::Event(event) => events.push(event),
            }
        }
        let mut n = 0;
        while let Some(chunk) = core.poll_chunk(n) {
            n += 1;
            sent.push((Channel::File, chunk));
        }
        (sent, events)
    }

    fn control(core: &mut SessionCore, message: &ControlMessage) {
        core.handle_data(
            Channel::Control,
            message.encode().as_bytes(),
            Instant::now(),
        );
    }

    #[test]
    fn the_keyboard_mode_goes_out_when_control_opens() {
        let mut core = core(false, None);
        core.control_opened();
        let (sent, _) = drain(&mut core);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, Channel::Control);
        assert_eq!(
            ControlMessage::parse(std::str::from_utf8(sent[0].1.as_bytes()).unwrap()),
            Ok(ControlMessage::Keyboard {
                mode: KeyboardMode::Translate
            })
        );
    }

    #[test]
    fn chat_stats_and_view_only_from_the_puppet_become_events() {
        let mut core = core(false, None);
        control(&mut core, &ControlMessage::Chat { text: "hi".into() });
        control(&mut core, &ControlMessage::ViewOnly { on: true });
        control(
            &mut core,
            &ControlMessage::Stats {
                fps: 30.0,
                rtt_ms: 4.0,
                bitrate_kbps: 900.0,
                loss: 0.0,
            },
        );
        let (_, events) = drain(&mut core);
        assert!(
            matches!(&events[0], ControllerEvent::Chat(line) if line.text == "hi" && line.from == "alice")
        );
        assert_eq!(events[1], ControllerEvent::ViewOnly(true));
        assert!(matches!(&events[2], ControllerEvent::PuppetStats(s) if s.fps == 30.0));
    }

    #[test]
    fn malformed_control_messages_are_dropped_unanswered() {
        let mut core = core(false, None);
        for bytes in [
            &b"\xff\xfe"[..],
            b"{",
            b"{\"type\":\"nope\"}",
            &[b'x'; 70_000][..],
        ] {
            core.handle_data(Channel::Control, bytes, Instant::now());
        }
        let (sent, events) = drain(&mut core);
        assert!(sent.is_empty() && events.is_empty());
    }

    #[test]
    fn decode_totals_become_per_second_figures() {
        let start = Instant::now();
        let mut core = SessionCore::new(
            CoreConfig {
                puppet_name: "p".into(),
                keyboard: KeyboardMode::Map,
                folder: None,
                accept_files: false,
            },
            start,
        );
        let totals = DecodeTotals {
            pictures: 60,
            decode_micros: 60_000,
            errors: 1,
            size: Some((1280, 720)),
            stamp_age: None,
        };
        core.handle_stats(PeerStats::default(), totals, start + Duration::from_secs(2));
        let (_, events) = drain(&mut core);
        let ControllerEvent::Stats(stats) = &events[0] else {
            panic!("{events:?}")
        };
        assert!((stats.fps - 30.0).abs() < 1e-9);
        assert_eq!(stats.decode_time, Some(Duration::from_millis(1)));
        assert_eq!(stats.video_size, Some((1280, 720)));
        assert_eq!(stats.decode_errors, 1);
    }

    #[test]
    fn with_accept_files_an_offer_is_received_into_the_folder() {
        let now = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let mut core = core(true, Some(DownloadFolder::new(dir.path()).unwrap()));
        let mut puppet = Transfers::new(Limits::default());
        let bytes = b"report".to_vec();
        let sha256 = hash_source(&mut SeekSource(std::io::Cursor::new(bytes.clone())), 6).unwrap();
        puppet
            .send_file(
                "../../etc/report.txt",
                6,
                sha256,
                Box::new(SeekSource(std::io::Cursor::new(bytes))),
                now,
            )
            .unwrap();
        control(&mut core, &puppet.poll_control().unwrap());
        let (sent, events) = drain(&mut core);
        assert!(matches!(
            &events[0],
            ControllerEvent::File(TransferEvent::Offered { .. })
        ));
        for (_, message) in sent {
            let text = std::str::from_utf8(message.as_bytes()).unwrap();
            puppet
                .handle_control(&ControlMessage::parse(text).unwrap(), now)
                .unwrap();
        }
        let mut chunk = Vec::new();
        while puppet.poll_file(&mut chunk) {
            core.handle_data(Channel::File, &chunk, now);
            chunk.clear();
        }
        let (_, events) = drain(&mut core);
        assert!(events.iter().any(|e| matches!(
            e,
            ControllerEvent::File(TransferEvent::Completed { path: Some(_), .. })
        )));
        assert_eq!(
            std::fs::read(dir.path().join("report.txt")).unwrap(),
            b"report"
        );
        assert!(!core.transferring());
    }

    #[test]
    fn without_a_folder_an_offer_is_declined_unseen() {
        let now = Instant::now();
        let mut core = core(true, None);
        let mut puppet = Transfers::new(Limits::default());
        let sha256 = hash_source(&mut SeekSource(std::io::Cursor::new(vec![1])), 1).unwrap();
        puppet
            .send_file(
                "x",
                1,
                sha256,
                Box::new(SeekSource(std::io::Cursor::new(vec![1]))),
                now,
            )
            .unwrap();
        control(&mut core, &puppet.poll_control().unwrap());
        let (sent, events) = drain(&mut core);
        assert!(events.is_empty());
        let text = std::str::from_utf8(sent[0].1.as_bytes()).unwrap();
        assert!(matches!(
            ControlMessage::parse(text),
            Ok(ControlMessage::FileDecline { .. })
        ));
    }
}
