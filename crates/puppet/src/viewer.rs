//! One controller's session as a sans-IO core: everything the puppet decides about a session
//! once its peer connection exists, with no tokio, no socket and no clock of its own.
//!
//! The session task feeds it data-channel messages ([`Viewer::handle_data`]), the time
//! ([`Viewer::handle_timeout`]), the peer's stats ([`Viewer::handle_stats`]) and the user's
//! commands (send a file, accept or decline an offer, a chat line), and drains one
//! [`Viewer::poll_output`] for what to do: messages to send on a channel, input to inject,
//! chat lines and file events for the user. [`Viewer::poll_timeout`] says when the next stats
//! heartbeat is due.
//!
//! Rules it keeps:
//! - a stats message goes out every [`HEARTBEAT`] once the control channel is open while video
//!   flows, and every [`STILL_HEARTBEAT_EVERY`] heartbeats on a still screen (the first quiet
//!   one still goes, so the controller sees 0 fps): the figures do not change, and a still
//!   screen should cost next to nothing on the wire;
//! - a view-only session is told so (`view_only`) as soon as the control channel opens;
//! - malformed input and control messages are dropped (and logged), never answered;
//! - a view-only session refuses every file offered to the puppet (DESIGN.md: view-only
//!   controllers cannot push files);
//! - file bytes go on [`Channel::File`] only, and only while the shell has not reported that
//!   channel full ([`Viewer::file_channel_full`] gives the chunk back; it is sent first once
//!   [`Viewer::file_channel_room`] says the channel drained): never dropped, never blocking.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtcdesk_files::{DownloadFolder, Limits, Offer, SessionFiles, Sha256, Source, TransferEvent};
use rtcdesk_input::KeyboardMode;
use rtcdesk_peer::{Channel, Message, PeerStats};
use rtcdesk_proto::control::ControlMessage;
use rtcdesk_proto::InputMessage;

/// How often the puppet sends its stats on the control channel.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// On a still screen, stats go out every this many heartbeats.
pub const STILL_HEARTBEAT_EVERY: u32 = 5;

/// What the session's shell must do.
#[derive(Debug)]
pub enum ViewerOutput {
    /// Send this message on this channel.
    Send(Channel, Message),
    /// Hand this input message to the session's input policy (view-only check, mapping).
    Input(InputMessage),
    /// The controller asks for another keyboard mode.
    Keyboard(KeyboardMode),
    /// The controller's user wrote this chat line.
    Chat(String),
    /// Something about a file transfer, for the puppet's user.
    File(TransferEvent),
    /// The controller's clipboard now holds this text: put it on the puppet's clipboard
    /// (never from a view-only session).
    Clipboard(String),
}

/// Why a view-only session's file offers are refused.
fn refusal(view_only: bool) -> Option<String> {
    view_only.then(|| "this session is view-only: it cannot send files".to_owned())
}

/// The session's core. See the module documentation for its rules.
#[derive(Debug)]
pub struct Viewer {
    view_only: bool,
    files: SessionFiles,
    outputs: VecDeque<ViewerOutput>,
    control_open: bool,
    next_heartbeat: Instant,
    last_stats: PeerStats,
    frames_at_last_heartbeat: u64,
    /// Heartbeats in a row with no frame sent.
    quiet_ticks: u32,
}

impl Viewer {
    /// A core for a session starting at `now`; received files go into `folder` (`None`: every
    /// offer is refused, there is nowhere to put it).
    pub fn new(view_only: bool, folder: Option<DownloadFolder>, now: Instant) -> Self {
        Self {
            view_only,
            files: SessionFiles::new(folder, refusal(view_only), Limits::default()),
            outputs: VecDeque::new(),
            control_open: false,
            next_heartbeat: now + HEARTBEAT,
            last_stats: PeerStats::default(),
            frames_at_last_heartbeat: 0,
            quiet_ticks: 0,
        }
    }

    /// The control channel opened: heartbeats start, and a view-only controller is told it
    /// may only watch, so it shows that and sends no input.
    pub fn control_opened(&mut self, now: Instant) {
        self.control_open = true;
        self.next_heartbeat = now + HEARTBEAT;
        if self.view_only {
            let message = ControlMessage::ViewOnly { on: true };
            self.outputs.push_back(ViewerOutput::Send(
                Channel::Control,
                Message::Text(message.encode()),
            ));
        }
    }

    /// Whether the session only watches now.
    pub fn view_only(&self) -> bool {
        self.view_only
    }

    /// The puppet's user changed the session's role: from now on its clipboard and file
    /// offers are refused (or taken again), and its controller is told at once, so it shows
    /// it. (Its input is the shell's to refuse: see [`Viewer::view_only`].)
    pub fn set_view_only(&mut self, view_only: bool) {
        if self.view_only == view_only {
            return;
        }
        self.view_only = view_only;
        self.files.set_refusal(refusal(view_only));
        if self.control_open {
            let message = ControlMessage::ViewOnly { on: view_only };
            self.outputs.push_back(ViewerOutput::Send(
                Channel::Control,
                Message::Text(message.encode()),
            ));
        }
    }

    /// The peer's latest figures, for the next heartbeat.
    pub fn handle_stats(&mut self, stats: PeerStats) {
        self.last_stats = stats;
    }

    /// A data-channel message arrived.
    pub fn handle_data(&mut self, channel: Channel, bytes: &[u8], now: Instant) {
        match channel {
            Channel::Input | Channel::Pointer => match InputMessage::decode(bytes) {
                Ok(message) => self.outputs.push_back(ViewerOutput::Input(message)),
                Err(error) => tracing::debug!(?error, "dropping a malformed input message"),
            },
            Channel::Control => self.handle_control(bytes, now),
            Channel::File => {
                if let Err(error) = self.files.handle_chunk(bytes, now) {
                    tracing::debug!(%error, "file chunk refused");
                }
                self.collect_file_events();
            }
            other => tracing::trace!(?other, "data on a channel the puppet does not use"),
        }
    }

    fn handle_control(&mut self, bytes: &[u8], now: Instant) {
        let message = self.files.handle_control_bytes(bytes, now);
        self.collect_file_events();
        let Some(message) = message else {
            return;
        };
        match message {
            ControlMessage::Keyboard { mode } => {
                self.outputs.push_back(ViewerOutput::Keyboard(mode))
            }
            ControlMessage::Chat { text } => self.outputs.push_back(ViewerOutput::Chat(text)),
            ControlMessage::Clipboard { text } if self.view_only => {
                tracing::debug!(
                    bytes = text.len(),
                    "clipboard from a view-only session refused"
                );
            }
            ControlMessage::Clipboard { text } => {
                self.outputs.push_back(ViewerOutput::Clipboard(text))
            }
            other => tracing::debug!(?other, "control message not handled"),
        }
    }

    /// Moves the file events out for the puppet's user (refused offers never reach it).
    fn collect_file_events(&mut self) {
        while let Some(event) = self.files.poll_event() {
            self.outputs.push_back(ViewerOutput::File(event));
        }
    }

    /// The puppet's user accepts offer `id`: its part file is prepared in the download folder
    /// (resuming one a broken session left).
    pub fn accept(&mut self, id: u32, now: Instant) -> Result<(), rtcdesk_files::FileError> {
        let result = self.files.accept(id, now);
        self.collect_file_events();
        result
    }

    /// The puppet's user stops transfer `id` in `direction`, or takes back an offer.
    pub fn cancel(
        &mut self,
        direction: rtcdesk_files::Direction,
        id: u32,
    ) -> Result<(), rtcdesk_files::FileError> {
        let result = self
            .files
            .cancel(direction, id, "the puppet's user cancelled");
        self.collect_file_events();
        result
    }

    /// The puppet's user declines offer `id`.
    pub fn decline(&mut self, id: u32, reason: &str) -> Result<(), rtcdesk_files::FileError> {
        let result = self.files.decline(id, reason);
        self.collect_file_events();
        result
    }

    /// Offers a file to the controller (`sha256` from [`rtcdesk_files::hash_source`], computed
    /// off the session task). Gives the transfer's id.
    pub fn send_file(
        &mut self,
        name: &str,
        size: u64,
        sha256: Sha256,
        source: Box<dyn Source + Send>,
        now: Instant,
    ) -> Result<u32, rtcdesk_files::FileError> {
        let id = self.files.send_file(name, size, sha256, source, now);
        self.collect_file_events();
        id
    }

    /// The puppet's user writes a chat line (already encoded as a `chat` message).
    pub fn send_chat(&mut self, encoded: String) {
        self.outputs
            .push_back(ViewerOutput::Send(Channel::Control, Message::Text(encoded)));
    }

    /// The puppet's clipboard changed (already encoded as a `clipboard` message). A view-only
    /// session gets none: it may watch the screen, not take what was copied.
    pub fn send_clipboard(&mut self, encoded: String) {
        if !self.view_only {
            self.outputs
                .push_back(ViewerOutput::Send(Channel::Control, Message::Text(encoded)));
        }
    }

    /// Bytes, rate and time left of every live transfer.
    pub fn progress(
        &self,
        now: Instant,
    ) -> Vec<(Offer, rtcdesk_files::Direction, rtcdesk_files::Progress)> {
        self.files.progress(now)
    }

    /// The file channel refused `message` (its queue is full): it is kept and sent first once
    /// [`Viewer::file_channel_room`] is called; no more chunks come out until then.
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

    /// Time passed: the heartbeat, if due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_heartbeat {
            return;
        }
        self.next_heartbeat = now + HEARTBEAT;
        if !self.control_open {
            return;
        }
        let moving = self.last_stats.frames_sent != self.frames_at_last_heartbeat;
        self.quiet_ticks = if moving { 0 } else { self.quiet_ticks + 1 };
        if self.quiet_ticks > 1 && !self.quiet_ticks.is_multiple_of(STILL_HEARTBEAT_EVERY) {
            return;
        }
        let stats = &self.last_stats;
        let fps = stats
            .frames_sent
            .saturating_sub(self.frames_at_last_heartbeat) as f64
            / HEARTBEAT.as_secs_f64();
        self.frames_at_last_heartbeat = stats.frames_sent;
        let message = ControlMessage::Stats {
            fps,
            rtt_ms: stats.rtt.map_or(0.0, |rtt| rtt.as_secs_f64() * 1000.0),
            bitrate_kbps: stats.send_bitrate_bps as f64 / 1000.0,
            loss: stats.egress_loss.map_or(0.0, f64::from),
        };
        self.outputs.push_back(ViewerOutput::Send(
            Channel::Control,
            Message::Text(message.encode()),
        ));
    }

    /// When [`Viewer::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_heartbeat
    }

    /// The next thing to do; `None` when nothing is left for now. File chunks come last, after
    /// every control message, and at most [`rtcdesk_files::CHUNKS_PER_DRAIN`] in a row.
    pub fn poll_output(&mut self) -> Option<ViewerOutput> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        if let Some(message) = self.files.poll_control() {
            return Some(ViewerOutput::Send(
                Channel::Control,
                Message::Text(message.encode()),
            ));
        }
        self.collect_file_events();
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        None
    }

    /// The next file chunk to send, while the file channel has room; `None` once the drain's
    /// share is used ([`rtcdesk_files::CHUNKS_PER_DRAIN`]) or no transfer has window left. Call after
    /// [`Viewer::poll_output`] is empty.
    pub fn poll_file(&mut self, sent_this_drain: usize) -> Option<Message> {
        let chunk = self.files.poll_chunk(sent_this_drain);
        self.collect_file_events();
        chunk.map(Message::Binary)
    }

    /// The session is gone: incoming part files are kept for a resume.
    pub fn close(&mut self) {
        self.files.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_files::{hash_source, SeekSource};
    use rtcdesk_proto::file::FileChunk;

    fn drain(viewer: &mut Viewer) -> Vec<ViewerOutput> {
        let mut outputs = Vec::new();
        while let Some(output) = viewer.poll_output() {
            outputs.push(output);
        }
        let mut sent = 0;
        while let Some(chunk) = viewer.poll_file(sent) {
            sent += 1;
            outputs.push(ViewerOutput::Send(Channel::File, chunk));
        }
        outputs
    }

    fn control_sent(outputs: &[ViewerOutput]) -> Vec<ControlMessage> {
        outputs
            .iter()
            .filter_map(|o| match o {
                ViewerOutput::Send(Channel::Control, m) => {
                    ControlMessage::parse(std::str::from_utf8(m.as_bytes()).ok()?).ok()
                }
                _ => None,
            })
            .collect()
    }

    fn offer_message(id: u32, bytes: &[u8]) -> ControlMessage {
        let sha256 = hash_source(
            &mut SeekSource(std::io::Cursor::new(bytes.to_vec())),
            bytes.len() as u64,
        )
        .expect("hash");
        ControlMessage::FileOffer {
            id,
            name: "../../notes.txt".into(),
            size: bytes.len() as u64,
            sha256,
        }
    }

    fn control(viewer: &mut Viewer, message: &ControlMessage, now: Instant) {
        viewer.handle_data(Channel::Control, message.encode().as_bytes(), now);
    }

    fn chunk(id: u32, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        FileChunk { id, offset, data }.encode(&mut bytes);
        bytes
    }

    #[test]
    fn a_heartbeat_goes_out_each_second_once_the_control_channel_is_open() {
        let start = Instant::now();
        let mut viewer = Viewer::new(false, None, start);
        // Given a closed control channel, when a second passes, then nothing is sent.
        viewer.handle_timeout(start + HEARTBEAT);
        assert!(drain(&mut viewer).is_empty());
        // Given it opened, when less than a second passes, then nothing; at the second, stats.
        let opened = start + HEARTBEAT;
        viewer.control_opened(opened);
        assert_eq!(viewer.poll_timeout(), opened + HEARTBEAT);
        viewer.handle_timeout(opened + Duration::from_millis(999));
        assert!(drain(&mut viewer).is_empty());
        let mut stats = PeerStats::default();
        stats.frames_sent = 30;
        viewer.handle_stats(stats);
        viewer.handle_timeout(opened + HEARTBEAT);
        let sent = control_sent(&drain(&mut viewer));
        assert!(
            matches!(sent.as_slice(), [ControlMessage::Stats { fps, .. }] if *fps == 30.0),
            "{sent:?}"
        );
        assert_eq!(viewer.poll_timeout(), opened + 2 * HEARTBEAT);
    }

    #[test]
    fn a_still_screen_sends_stats_every_fifth_heartbeat_and_at_once_when_it_moves() {
        let start = Instant::now();
        let mut viewer = Viewer::new(false, None, start);
        viewer.control_opened(start);
        let mut stats = PeerStats::default();
        let mut sent_at = Vec::new();
        // Given a still screen for 11 heartbeats, then frames again at the 12th.
        for tick in 1..=12u32 {
            if tick == 12 {
                stats.frames_sent = 20;
            }
            viewer.handle_stats(stats.clone());
            viewer.handle_timeout(start + HEARTBEAT * tick);
            if !control_sent(&drain(&mut viewer)).is_empty() {
                sent_at.push(tick);
            }
        }
        // Then: the first quiet one, every fifth after, and the one that moved.
        assert_eq!(sent_at, vec![1, 5, 10, 12]);
    }

    #[test]
    fn a_view_only_controller_is_told_as_soon_as_control_opens() {
        let now = Instant::now();
        let mut viewer = Viewer::new(true, None, now);
        viewer.control_opened(now);
        assert_eq!(
            control_sent(&drain(&mut viewer)),
            vec![ControlMessage::ViewOnly { on: true }]
        );
        let mut watching_and_controlling = Viewer::new(false, None, now);
        watching_and_controlling.control_opened(now);
        assert!(control_sent(&drain(&mut watching_and_controlling)).is_empty());
    }

    #[test]
    fn malformed_input_and_control_messages_are_dropped() {
        let now = Instant::now();
        let mut viewer = Viewer::new(false, None, now);
        viewer.handle_data(Channel::Input, &[0xff, 1, 2], now);
        viewer.handle_data(Channel::Pointer, &[], now);
        viewer.handle_data(Channel::Control, b"{\"type\":\"chat\"", now);
        viewer.handle_data(Channel::Control, &[0xc3, 0x28], now);
        viewer.handle_data(Channel::Control, b"{\"type\":\"nope\"}", now);
        assert!(drain(&mut viewer).is_empty());
        // And a good one still passes.
        control(
            &mut viewer,
            &ControlMessage::Chat { text: "hi".into() },
            now,
        );
        assert!(matches!(drain(&mut viewer).as_slice(), [ViewerOutput::Chat(t)] if t == "hi"));
    }

    #[test]
    fn a_file_offered_then_accepted_arrives_chunk_by_chunk_and_is_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Instant::now();
        let folder = DownloadFolder::new(dir.path()).expect("folder");
        let mut viewer = Viewer::new(false, Some(folder), now);
        let bytes: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        // Given an offer with a hostile name,
        control(&mut viewer, &offer_message(7, &bytes), now);
        let outputs = drain(&mut viewer);
        assert!(
            matches!(outputs.as_slice(), [ViewerOutput::File(TransferEvent::Offered { safe_name, .. })] if safe_name == "notes.txt"),
            "{outputs:?}"
        );
        // when the user accepts,
        viewer.accept(7, now).expect("accepted");
        let sent = control_sent(&drain(&mut viewer));
        assert!(
            matches!(
                sent.as_slice(),
                [ControlMessage::FileAccept {
                    id: 7,
                    offset: 0,
                    ..
                }]
            ),
            "{sent:?}"
        );
        // and the chunks come in order,
        for (i, part) in bytes.chunks(16384).enumerate() {
            viewer.handle_data(Channel::File, &chunk(7, (i * 16384) as u64, part), now);
        }
        // then the file is in place inside the folder and file_done goes back.
        let outputs = drain(&mut viewer);
        assert!(control_sent(&outputs)
            .iter()
            .any(|m| matches!(m, ControlMessage::FileDone { id: 7 })));
        assert!(outputs.iter().any(|o| matches!(
            o,
            ViewerOutput::File(TransferEvent::Completed { path: Some(_), .. })
        )));
        assert_eq!(
            std::fs::read(dir.path().join("notes.txt")).expect("file"),
            bytes
        );
    }

    #[test]
    fn a_chunk_before_accept_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Instant::now();
        let folder = DownloadFolder::new(dir.path()).expect("folder");
        let mut viewer = Viewer::new(false, Some(folder), now);
        control(&mut viewer, &offer_message(3, b"abc"), now);
        drain(&mut viewer);
        // When a chunk comes before the user answered,
        viewer.handle_data(Channel::File, &chunk(3, 0, b"abc"), now);
        // then the transfer is cut off with a protocol error and nothing is written.
        let sent = control_sent(&drain(&mut viewer));
        assert!(
            sent.iter()
                .any(|m| matches!(m, ControlMessage::FileError { id: 3, .. })),
            "{sent:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        assert!(viewer.accept(3, now).is_err());
    }

    #[test]
    fn a_view_only_session_refuses_incoming_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Instant::now();
        let folder = DownloadFolder::new(dir.path()).expect("folder");
        let mut viewer = Viewer::new(true, Some(folder), now);
        control(&mut viewer, &offer_message(1, b"abc"), now);
        let outputs = drain(&mut viewer);
        // No question for the user, a decline for the controller.
        assert!(!outputs.iter().any(|o| matches!(o, ViewerOutput::File(_))));
        let sent = control_sent(&outputs);
        assert!(
            matches!(sent.as_slice(), [ControlMessage::FileDecline { id: 1, .. }]),
            "{sent:?}"
        );
        assert!(viewer.accept(1, now).is_err());
    }

    #[test]
    fn a_role_changed_mid_session_is_told_and_enforced_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = Instant::now();
        let folder = DownloadFolder::new(dir.path()).expect("folder");
        let mut viewer = Viewer::new(false, Some(folder), now);
        viewer.control_opened(now);
        drain(&mut viewer);
        // Given control taken away, then the controller hears it, and its clipboard and
        // files are refused while the puppet's clipboard no longer goes to it.
        viewer.set_view_only(true);
        assert!(viewer.view_only());
        assert_eq!(
            control_sent(&drain(&mut viewer)),
            vec![ControlMessage::ViewOnly { on: true }]
        );
        viewer.set_view_only(true);
        assert!(drain(&mut viewer).is_empty(), "no news, no message");
        control(
            &mut viewer,
            &ControlMessage::Clipboard { text: "x".into() },
            now,
        );
        control(&mut viewer, &offer_message(1, b"abc"), now);
        viewer.send_clipboard(ControlMessage::Clipboard { text: "y".into() }.encode());
        let sent = control_sent(&drain(&mut viewer));
        assert!(
            matches!(sent.as_slice(), [ControlMessage::FileDecline { id: 1, .. }]),
            "{sent:?}"
        );
        // Given control back, then offers are asked about again.
        viewer.set_view_only(false);
        assert_eq!(
            control_sent(&drain(&mut viewer)),
            vec![ControlMessage::ViewOnly { on: false }]
        );
        control(&mut viewer, &offer_message(2, b"abc"), now);
        assert!(drain(&mut viewer).iter().any(|o| matches!(
            o,
            ViewerOutput::File(rtcdesk_files::TransferEvent::Offered { .. })
        )));
    }

    #[test]
    fn a_chunk_the_file_channel_refused_is_sent_first_when_it_drains() {
        let now = Instant::now();
        let mut viewer = Viewer::new(false, None, now);
        let bytes = vec![5u8; 40_000];
        let sha256 = hash_source(&mut SeekSource(std::io::Cursor::new(bytes.clone())), 40_000)
            .expect("hash");
        let source = Box::new(SeekSource(std::io::Cursor::new(bytes)));
        let id = viewer
            .send_file("a.bin", 40_000, sha256, source, now)
            .expect("offered");
        drain(&mut viewer);
        control(
            &mut viewer,
            &ControlMessage::FileAccept {
                id,
                offset: 0,
                window: 4 << 20,
            },
            now,
        );
        while viewer.poll_output().is_some() {}
        let first = viewer.poll_file(0).expect("a chunk");
        // When the channel is full, the chunk is given back and nothing more comes out,
        viewer.file_channel_full(first.clone());
        assert!(viewer.wants_file_room());
        assert!(viewer.poll_file(0).is_none());
        // then once it drains the same chunk comes first, then the rest in order.
        viewer.file_channel_room();
        assert_eq!(
            viewer.poll_file(0).expect("again").as_bytes(),
            first.as_bytes()
        );
        let second = viewer.poll_file(1).expect("next");
        let decoded = FileChunk::decode(second.as_bytes()).expect("chunk");
        assert_eq!(decoded.offset, 16384);
    }
    #[test]
    fn clipboard_text_is_taken_only_from_a_session_that_may_control() {
        let now = Instant::now();
        let message = ControlMessage::Clipboard {
            text: "copied".into(),
        };
        let mut viewer = Viewer::new(false, None, now);
        control(&mut viewer, &message, now);
        assert!(
            matches!(drain(&mut viewer).as_slice(), [ViewerOutput::Clipboard(t)] if t == "copied")
        );
        viewer.send_clipboard(message.encode());
        assert!(matches!(
            drain(&mut viewer).as_slice(),
            [ViewerOutput::Send(Channel::Control, _)]
        ));

        let mut watcher = Viewer::new(true, None, now);
        drain(&mut watcher);
        control(&mut watcher, &message, now);
        watcher.send_clipboard(message.encode());
        assert!(
            drain(&mut watcher).is_empty(),
            "a view-only session neither writes nor reads the clipboard"
        );
    }
}
