//! What the controller's window draws over the picture, with egui: a thin toolbar (chat, files,
//! keyboard, view-only state, stats, disconnect) that shows only while the pointer is at the
//! window's top edge or on the bar, and one side panel at a time (chat, files or stats).
//!
//! The overlay holds no window and no session: [`Overlay::on_event`] folds the session's events
//! into what the panels show, [`Overlay::show`] draws them and returns what the person asked
//! for as [`OverlayAction`]s, which the window carries out. So it runs the same in a test
//! harness as in the window.

use std::time::SystemTime;

use rtcdesk_files::Direction;
use rtcdesk_ui::chat::{clock, ChatAction, ChatPanel};
use rtcdesk_ui::egui;
use rtcdesk_ui::stats::{StatsPanel, StatsView};
use rtcdesk_ui::toolbar::{toolbar_visible, Toolbar, ToolbarAction};
use rtcdesk_ui::transfers::{Transfer, TransferAction, TransferList};

use crate::{ControllerEvent, PuppetStats, SessionStats};

/// Points from the window's top edge where the pointer brings the toolbar up: thin, so working
/// near the top of the puppet's screen (its own menus and tabs) does not keep raising it.
pub const REVEAL_HEIGHT: f32 = 6.0;

/// The side panel that is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// The session's chat.
    Chat,
    /// Files both ways.
    Files,
    /// Both sides' figures.
    Stats,
}

/// What the person asked for; the window carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayAction {
    /// Send this chat line to the puppet's user.
    SendChat(String),
    /// Take the file the puppet offers.
    AcceptFile(u32),
    /// Refuse it.
    DeclineFile(u32),
    /// Stop a transfer (or take back an offer) in this direction.
    CancelFile(Direction, u32),
    /// Keep key presses on this machine, or give them back to the puppet.
    ToggleKeyboard,
    /// End the session (like closing the window).
    Disconnect,
}

/// The overlay's state.
#[derive(Debug, Default)]
pub struct Overlay {
    chat: ChatPanel,
    stats: StatsPanel,
    transfers: TransferList,
    panel: Option<Panel>,
    view_only: bool,
    keyboard_local: bool,
    /// Where the bar was last drawn, so it stays while the pointer is on it.
    bar: Option<egui::Rect>,
    /// Whether the last pass drew anything (then a pass is needed to take it away).
    drew: bool,
}

fn local_view(stats: &SessionStats) -> StatsView {
    StatsView {
        fps: Some(stats.fps),
        rtt_ms: stats.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
        bitrate_bps: Some(stats.receive_bitrate_bps),
        latency_ms: stats
            .stamp_latency
            .or(stats.decode_time)
            .map(|d| d.as_secs_f64() * 1000.0),
        loss_percent: stats.peer.ingress_loss.map(|l| f64::from(l) * 100.0),
        codec: Some("AV1 (dav1d)".to_owned()),
        resolution: stats.video_size,
    }
}

fn puppet_view(stats: &PuppetStats, resolution: Option<(u32, u32)>) -> StatsView {
    StatsView {
        fps: Some(stats.fps),
        rtt_ms: Some(stats.rtt_ms),
        bitrate_bps: Some((stats.bitrate_kbps * 1000.0).max(0.0) as u64),
        latency_ms: None,
        loss_percent: Some(stats.loss * 100.0),
        codec: Some("AV1".to_owned()),
        resolution,
    }
}

impl Overlay {
    /// An overlay for a session with the puppet: columns named "controller" and "puppet".
    pub fn new() -> Self {
        Self {
            stats: StatsPanel {
                sides: ("controller".to_owned(), "puppet".to_owned()),
                ..StatsPanel::default()
            },
            ..Self::default()
        }
    }

    /// Folds a session event into what the panels show. An offer from the puppet opens the
    /// files panel: it waits for an answer.
    pub fn on_event(&mut self, event: &ControllerEvent) {
        match event {
            ControllerEvent::Chat(line) => self.chat.received(
                rtcdesk_proto::chat::printable(&line.from, 64),
                rtcdesk_proto::chat::printable(&line.text, 4096),
                clock(line.at),
            ),
            ControllerEvent::Stats(stats) => self.stats.local = local_view(stats),
            ControllerEvent::PuppetStats(stats) => {
                self.stats.remote = Some(puppet_view(stats, self.stats.local.resolution));
            }
            ControllerEvent::ViewOnly(on) => self.view_only = *on,
            ControllerEvent::FileOffered(offer) => self.transfers.offered_by_us(offer),
            ControllerEvent::File(event) => {
                let offered_to_us = self.transfers.on_event(event);
                if offered_to_us {
                    self.open(Panel::Files);
                }
            }
            ControllerEvent::FileProgress(live) => self.transfers.on_progress(live),
            _ => {}
        }
    }

    /// A line this side sent, for the chat's history.
    pub fn sent_chat(&mut self, text: String) {
        self.chat.sent(text, clock(SystemTime::now()));
    }

    /// A chat line that could not go, and why, shown where it was written.
    pub fn chat_not_sent(&mut self, text: &str, why: &str) {
        self.chat.notice(
            format!("not sent ({why}): {text}"),
            clock(SystemTime::now()),
        );
    }

    /// Whether key presses stay on this machine (shown on the toolbar).
    pub fn set_keyboard_local(&mut self, local: bool) {
        self.keyboard_local = local;
    }

    /// Chat lines not seen yet.
    pub fn unread(&self) -> usize {
        self.chat.unread()
    }

    /// The open side panel.
    pub fn panel(&self) -> Option<Panel> {
        self.panel
    }

    /// The transfers as listed.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers.transfers
    }

    /// The chat as shown.
    pub fn chat(&self) -> &ChatPanel {
        &self.chat
    }

    /// Opens `panel` (closing another one).
    pub fn open(&mut self, panel: Panel) {
        self.panel = Some(panel);
        self.chat.set_open(panel == Panel::Chat);
    }

    fn toggle(&mut self, panel: Panel) {
        if self.panel == Some(panel) {
            self.panel = None;
            self.chat.set_open(false);
        } else {
            self.open(panel);
        }
    }

    /// Whether the bar shows with the pointer at `pointer` (points; `None`: outside the
    /// window): at the top edge, on the bar, or while a panel is open.
    pub fn bar_visible(&self, pointer: Option<egui::Pos2>) -> bool {
        let over_bar = matches!((self.bar, pointer), (Some(bar), Some(p)) if bar.contains(p));
        self.panel.is_some() || toolbar_visible(pointer.map(|p| p.y), REVEAL_HEIGHT, over_bar)
    }

    /// Whether anything is drawn over the picture with the pointer at `pointer`, or was in the
    /// last pass: the window runs an egui pass only then, so a bare picture costs nothing.
    pub fn needs_pass(&self, pointer: Option<egui::Pos2>) -> bool {
        self.drew || self.bar_visible(pointer) || self.chat.unread() > 0
    }

    /// Draws the overlay into the window's root `ui`; returns what the person asked for.
    /// `pointer` is where the window last saw the pointer (points, in the ui's coordinates),
    /// which egui may not have seen: the window gives egui no input while nothing is drawn.
    pub fn show(&mut self, ui: &mut egui::Ui, pointer: Option<egui::Pos2>) -> Vec<OverlayAction> {
        let mut actions = Vec::new();
        // Positions are kept relative to the ui's corner (the window's, in the window).
        let origin = ui.max_rect().min.to_vec2();
        let pointer = pointer.map(|p| p - origin);
        let bar_visible = self.bar_visible(pointer);
        self.drew = bar_visible || self.chat.unread() > 0;
        if bar_visible {
            let toolbar = Toolbar {
                keyboard_mode: if self.keyboard_local {
                    "local"
                } else {
                    "puppet"
                }
                .to_owned(),
                view_only: self.view_only,
                unread: self.chat.unread(),
                reveal_height: REVEAL_HEIGHT,
            };
            let bar = egui::Panel::top("toolbar").show(ui, |ui| toolbar.show(ui));
            self.bar = Some(bar.response.rect.translate(-origin));
            match bar.inner {
                Some(ToolbarAction::Chat) => self.toggle(Panel::Chat),
                Some(ToolbarAction::Files) => self.toggle(Panel::Files),
                Some(ToolbarAction::Stats) => self.toggle(Panel::Stats),
                Some(ToolbarAction::KeyboardMode) => actions.push(OverlayAction::ToggleKeyboard),
                Some(ToolbarAction::Disconnect) => actions.push(OverlayAction::Disconnect),
                None => {}
            }
        } else {
            self.bar = None;
            if self.chat.unread() > 0 {
                self.unread_badge(ui);
            }
        }
        if let Some(panel) = self.panel {
            egui::Panel::right("side")
                .default_size(300.0)
                .show(ui, |ui| match panel {
                    Panel::Chat => {
                        if let Some(ChatAction::Send(text)) = self.chat.show(ui) {
                            actions.push(OverlayAction::SendChat(text));
                        }
                    }
                    Panel::Files => match self.transfers.show(ui) {
                        Some(TransferAction::Accept(id)) => {
                            actions.push(OverlayAction::AcceptFile(id))
                        }
                        Some(TransferAction::Decline(id)) => {
                            actions.push(OverlayAction::DeclineFile(id))
                        }
                        Some(TransferAction::Cancel { id, incoming }) => {
                            let direction = if incoming {
                                Direction::Incoming
                            } else {
                                Direction::Outgoing
                            };
                            actions.push(OverlayAction::CancelFile(direction, id));
                        }
                        None => {}
                    },
                    Panel::Stats => self.stats.show(ui),
                });
        }
        actions
    }

    /// A small note at the top right while the bar is hidden: new chat lines wait. Clicking
    /// it opens the chat.
    fn unread_badge(&mut self, ui: &mut egui::Ui) {
        let text = match self.chat.unread() {
            1 => "1 new message".to_owned(),
            n => format!("{n} new messages"),
        };
        let clicked = egui::Area::new(egui::Id::new("unread"))
            .anchor(egui::Align2::RIGHT_TOP, [-8.0, 8.0])
            .show(ui.ctx(), |ui| ui.button(text).clicked())
            .inner;
        if clicked {
            self.open(Panel::Chat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_files::{Offer, Progress, Sha256, TransferEvent};
    use rtcdesk_ui::transfers::{TransferState, LISTED_TRANSFERS};

    fn offer(id: u32, name: &str) -> Offer {
        Offer {
            id,
            name: name.into(),
            size: 1000,
            sha256: Sha256([0; 32]),
        }
    }

    #[test]
    fn an_offer_from_the_puppet_opens_the_files_panel_and_follows_the_transfer() {
        let mut overlay = Overlay::new();
        overlay.on_event(&ControllerEvent::File(TransferEvent::Offered {
            offer: offer(3, "../../etc/passwd"),
            safe_name: "passwd".into(),
        }));
        assert_eq!(overlay.panel(), Some(Panel::Files));
        assert_eq!(overlay.transfers()[0].name, "passwd");
        assert_eq!(overlay.transfers()[0].state, TransferState::Offered);
        overlay.on_event(&ControllerEvent::FileProgress(vec![(
            offer(3, "passwd"),
            Direction::Incoming,
            Progress {
                bytes: 400,
                total: 1000,
                rate: 0.0,
                remaining: None,
            },
        )]));
        assert_eq!(overlay.transfers()[0].done, 400);
        assert_eq!(overlay.transfers()[0].state, TransferState::Moving);
        overlay.on_event(&ControllerEvent::File(TransferEvent::Completed {
            direction: Direction::Incoming,
            id: 3,
            path: None,
        }));
        assert_eq!(overlay.transfers()[0].state, TransferState::Done);
    }

    #[test]
    fn ids_are_per_direction() {
        let mut overlay = Overlay::new();
        overlay.on_event(&ControllerEvent::FileOffered(offer(1, "ours.txt")));
        overlay.on_event(&ControllerEvent::File(TransferEvent::Offered {
            offer: offer(1, "theirs.txt"),
            safe_name: "theirs.txt".into(),
        }));
        overlay.on_event(&ControllerEvent::File(TransferEvent::Accepted {
            id: 1,
            offset: 0,
        }));
        let states: Vec<_> = overlay
            .transfers()
            .iter()
            .map(|t| (t.name.as_str(), t.state))
            .collect();
        assert_eq!(
            states,
            [
                ("ours.txt", TransferState::Moving),
                ("theirs.txt", TransferState::Offered)
            ]
        );
    }

    #[test]
    fn the_list_of_transfers_is_bounded() {
        let mut overlay = Overlay::new();
        for id in 0..LISTED_TRANSFERS as u32 + 5 {
            overlay.on_event(&ControllerEvent::FileOffered(offer(id, "f")));
        }
        assert_eq!(overlay.transfers().len(), LISTED_TRANSFERS);
    }

    #[test]
    fn the_bar_shows_at_the_top_edge_or_with_a_panel_open_and_a_bare_picture_needs_no_pass() {
        let mut overlay = Overlay::new();
        assert!(!overlay.needs_pass(Some(egui::pos2(300.0, 200.0))));
        assert!(!overlay.needs_pass(None));
        assert!(overlay.bar_visible(Some(egui::pos2(300.0, 2.0))));
        overlay.open(Panel::Stats);
        assert!(overlay.bar_visible(Some(egui::pos2(300.0, 200.0))));
    }

    #[test]
    fn a_chat_line_from_the_puppet_is_unread_until_the_chat_opens() {
        let mut overlay = Overlay::new();
        overlay.on_event(&ControllerEvent::Chat(crate::ChatLine {
            from: "puppet\u{7}".into(),
            text: "hello\u{1b}[2J".into(),
            at: std::time::UNIX_EPOCH + std::time::Duration::from_secs(3600 + 120),
        }));
        assert_eq!(overlay.unread(), 1);
        assert!(overlay.needs_pass(None), "the unread note is drawn");
        let line = overlay.chat().lines().next().cloned().unwrap();
        assert_eq!(
            (line.from.as_str(), line.text.as_str(), line.clock.as_str()),
            ("puppet", "hello[2J", "01:02")
        );
        overlay.open(Panel::Chat);
        assert_eq!(overlay.unread(), 0);
    }
}
