//! What the puppet's window shows, with egui: the control code in large digits (copy, new
//! code), the accept dialog for each controller that asks (with its countdown), the connected
//! controllers (disconnect, view-only), files with each controller (accept or decline, progress,
//! cancel) and the chat, which also logs what happened to sessions.
//!
//! The desk holds no window and no puppet: [`Desk::on_event`] folds the puppet's events into
//! what it shows, [`Desk::show`] draws it and returns what the person asked for as
//! [`DeskAction`]s, which the window carries out through the puppet's handles. So it runs the
//! same in a test harness as in the window.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use rtcdesk_files::Direction;
use rtcdesk_proto::signal::SessionId;
use rtcdesk_ui::chat::{clock, ChatAction, ChatPanel};
use rtcdesk_ui::code::{CodeAction, CodeView};
use rtcdesk_ui::consent::{ConsentAnswer, ConsentDialog};
use rtcdesk_ui::controllers::{ConnectedController, ControllerAction, ControllerList};
use rtcdesk_ui::egui;
use rtcdesk_ui::transfers::{TransferAction, TransferList};

use crate::run::printable;
use crate::{Decision, PuppetEvent, SessionInfo, SessionState};

/// Controllers whose files are listed at most; the oldest ended ones go first.
const LISTED_SESSIONS: usize = 8;

/// What the person asked for; the window carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskAction {
    /// Answer a controller that asks.
    Decide(SessionId, Decision),
    /// End a session.
    Disconnect(SessionId),
    /// Let a session only watch (`true`) or give it control.
    SetViewOnly(SessionId, bool),
    /// Register again for a fresh code.
    NewCode,
    /// Send this chat line to every connected controller.
    SendChat(String),
    /// Take (`true`) or refuse a file a controller offers.
    AnswerFile {
        /// The controller's session.
        session: SessionId,
        /// The offer.
        id: u32,
        /// Whether to take it.
        accept: bool,
    },
    /// Stop a transfer, or take back this side's offer.
    CancelFile {
        /// The controller's session.
        session: SessionId,
        /// Which way it goes (ids are per direction).
        direction: Direction,
        /// The transfer.
        id: u32,
    },
    /// Offer this file to every connected controller (dropped onto the window).
    SendFile(PathBuf),
}

/// The files with one controller.
#[derive(Debug, Default)]
struct SessionFiles {
    name: String,
    list: TransferList,
    ended: bool,
}

/// The puppet window's state.
#[derive(Debug)]
pub struct Desk {
    code: CodeView,
    lan_urls: Vec<String>,
    consent_timeout: Duration,
    requests: VecDeque<ConsentDialog>,
    controllers: ControllerList,
    files: BTreeMap<SessionId, SessionFiles>,
    chat: ChatPanel,
    /// Names of the sessions seen, for the log once they are gone.
    names: BTreeMap<SessionId, String>,
}

/// The code as the person reads it: twelve digits (nine for a code without secret digits).
fn digits(code: &rtcdesk_pake::PairingCode) -> String {
    code.to_string().replace(' ', "")
}

impl Desk {
    /// A desk showing `code`, registered with `server` (and reachable on the LAN at
    /// `lan_urls`); a request is rejected after `consent_timeout` unanswered. With
    /// `view_only_toggles` off (`--view-only`) each controller's role is shown, not offered.
    pub fn new(
        code: &rtcdesk_pake::PairingCode,
        server: String,
        lan_urls: Vec<String>,
        consent_timeout: Duration,
        view_only_toggles: bool,
    ) -> Self {
        let mut chat = ChatPanel::default();
        chat.set_open(true);
        Self {
            code: CodeView {
                code: Some(digits(code)),
                server,
            },
            lan_urls,
            consent_timeout,
            requests: VecDeque::new(),
            controllers: ControllerList {
                controllers: Vec::new(),
                view_only_toggles,
            },
            files: BTreeMap::new(),
            chat,
            names: BTreeMap::new(),
        }
    }

    /// The code shown (digits only), `None` while there is none (signaling lost).
    pub fn code(&self) -> Option<&str> {
        self.code.code.as_deref()
    }

    /// Controllers waiting for an answer, first asked first.
    pub fn requests(&self) -> impl Iterator<Item = &ConsentDialog> {
        self.requests.iter()
    }

    /// The connected controllers as listed.
    pub fn controllers(&self) -> &[ConnectedController] {
        &self.controllers.controllers
    }

    /// The chat (and the sessions' log) as shown.
    pub fn chat(&self) -> &ChatPanel {
        &self.chat
    }

    /// Chat lines that came while the window was not looked at.
    pub fn unread(&self) -> usize {
        self.chat.unread()
    }

    /// Whether the person is looking at the window (focused): lines arriving meanwhile are read.
    pub fn set_looking(&mut self, looking: bool) {
        self.chat.set_open(looking);
    }

    /// Whether something waits for the person (a controller asking, a file offered): the
    /// window asks for attention then.
    pub fn needs_attention(&self) -> bool {
        !self.requests.is_empty() || self.files.values().any(|f| f.list.waiting_for_answer())
    }

    /// The window's title: the code, and what waits.
    pub fn title(&self) -> String {
        let mut title = match self.code() {
            Some(code) => format!("rtcdesk puppet — {}", rtcdesk_ui::code::grouped(code)),
            None => "rtcdesk puppet — no code (reconnecting)".to_owned(),
        };
        let connected = self.controllers.controllers.len();
        if connected > 0 {
            title.push_str(&format!(" — {connected} connected"));
        }
        if !self.requests.is_empty() {
            title.push_str(" — someone asks to connect");
        }
        match self.unread() {
            0 => {}
            1 => title.push_str(" — 1 new message"),
            n => title.push_str(&format!(" — {n} new messages")),
        }
        title
    }

    fn log(&mut self, text: String) {
        self.chat.notice(text, clock(SystemTime::now()));
    }

    fn name_of(&self, session: &SessionId) -> String {
        self.names
            .get(session)
            .cloned()
            .unwrap_or_else(|| "a controller".to_owned())
    }

    fn files_with(&mut self, session: &SessionId) -> &mut SessionFiles {
        if !self.files.contains_key(session) && self.files.len() >= LISTED_SESSIONS {
            let oldest_ended = self
                .files
                .iter()
                .find(|(_, f)| f.ended)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest_ended.or_else(|| self.files.keys().next().cloned()) {
                self.files.remove(&id);
            }
        }
        let name = self.name_of(session);
        self.files
            .entry(session.clone())
            .or_insert_with(|| SessionFiles {
                name,
                ..SessionFiles::default()
            })
    }

    /// Folds a puppet event in at `now`; `sessions` is the puppet's list right after it.
    pub fn on_event(&mut self, event: &PuppetEvent, sessions: &[SessionInfo], now: Instant) {
        for info in sessions {
            self.names
                .insert(info.session.clone(), printable(&info.name));
        }
        self.controllers.controllers = sessions
            .iter()
            .filter(|s| s.state == SessionState::Connected)
            .map(|s| ConnectedController {
                session: s.session.to_string(),
                name: printable(&s.name),
                view_only: s.view_only,
            })
            .collect();
        match event {
            PuppetEvent::Registered { pairing, .. } => {
                let fresh = self.code.code.as_deref() != Some(digits(pairing).as_str());
                self.code.code = Some(digits(pairing));
                if fresh {
                    self.log("A new control code is shown: the old one no longer works.".into());
                }
            }
            PuppetEvent::Incoming {
                session,
                from,
                verified,
            } => {
                let from = printable(from);
                self.names.insert(session.clone(), from.clone());
                self.requests.push_back(ConsentDialog::new(
                    session.to_string(),
                    from,
                    *verified,
                    now,
                    self.consent_timeout,
                ));
            }
            PuppetEvent::VerificationFailed { from, .. } => self.log(format!(
                "\"{}\" does not hold the whole code (wrong last digits, or someone guessing): refused.",
                printable(from)
            )),
            PuppetEvent::CodeRetired { failed_runs } => self.log(format!(
                "{failed_runs} failed tries: that code is retired. Give the new one."
            )),
            PuppetEvent::Declined { session, from } => {
                self.answered(session);
                self.log(format!("\"{}\" was not let in.", printable(from)));
            }
            PuppetEvent::SessionStarted {
                session,
                name,
                view_only,
            } => {
                self.answered(session);
                let role = if *view_only {
                    "to watch only"
                } else {
                    "with control"
                };
                self.log(format!("\"{}\" let in {role}; connecting…", printable(name)));
            }
            PuppetEvent::SessionConnected { session } => {
                let name = self.name_of(session);
                self.log(format!("\"{name}\" is connected and sees this screen."));
            }
            PuppetEvent::RoleChanged { session, view_only } => {
                let name = self.name_of(session);
                self.log(if *view_only {
                    format!("\"{name}\" now only watches.")
                } else {
                    format!("\"{name}\" now has control.")
                });
            }
            PuppetEvent::SessionEnded { session, reason } => {
                self.answered(session);
                let name = self.name_of(session);
                if let Some(files) = self.files.get_mut(session) {
                    files.ended = true;
                }
                self.log(format!("\"{name}\" is gone: {reason}."));
            }
            PuppetEvent::SignalingLost { reason } => {
                self.code.code = None;
                self.log(format!(
                    "Lost the signaling server ({reason}): connecting again; sessions go on."
                ));
            }
            PuppetEvent::Chat { session: _, line } => self.chat.received(
                rtcdesk_proto::chat::printable(&line.from, 64),
                rtcdesk_proto::chat::printable(&line.text, 4096),
                clock(line.at),
            ),
            PuppetEvent::File { session, event } => {
                self.files_with(session).list.on_event(event);
            }
            PuppetEvent::FileOffered { session, offer } => {
                self.files_with(session).list.offered_by_us(offer);
            }
            PuppetEvent::FileProgress { session, transfers } => {
                self.files_with(session).list.on_progress(transfers);
            }
            PuppetEvent::FileNotSent { path, reason, .. } => {
                self.log(format!("Cannot send {}: {reason}.", path.display()));
            }
            _ => {}
        }
    }

    /// The request for `session` is settled (answered, given up, or timed out in the book).
    fn answered(&mut self, session: &SessionId) {
        self.requests.retain(|r| r.session != session.as_str());
    }

    /// A line this side sent, for the chat's history.
    pub fn sent_chat(&mut self, text: String) {
        self.chat.sent(text, clock(SystemTime::now()));
    }

    /// A chat line that could not go, and why, shown where it was written.
    pub fn chat_not_sent(&mut self, text: &str, why: &str) {
        self.log(format!("not sent ({why}): {text}"));
    }

    /// Something the window could not do, in the log.
    pub fn note(&mut self, text: String) {
        self.log(text);
    }

    /// Whether a pass is due at `now` without input: a countdown ticks.
    pub fn ticking(&self) -> bool {
        !self.requests.is_empty()
    }

    /// Draws the desk at `now`; returns what the person asked for.
    pub fn show(&mut self, ui: &mut egui::Ui, now: Instant) -> Vec<DeskAction> {
        let mut actions = Vec::new();
        if let Some(request) = self.requests.front() {
            let session = SessionId::from(request.session.as_str());
            let answer = egui::Frame::group(ui.style())
                .fill(ui.visuals().faint_bg_color)
                .show(ui, |ui| request.show(ui, now))
                .inner;
            if let Some(answer) = answer {
                let decision = match answer {
                    ConsentAnswer::Accept => Decision::Control,
                    ConsentAnswer::ViewOnly => Decision::ViewOnly,
                    ConsentAnswer::Reject => Decision::Decline,
                };
                // Gone from the screen at once; the book's event confirms it.
                self.requests.pop_front();
                actions.push(DeskAction::Decide(session, decision));
            }
            if self.requests.len() > 1 {
                ui.label(format!("{} more waiting.", self.requests.len() - 1));
            }
            ui.separator();
        }
        match self.code.show(ui) {
            Some(CodeAction::NewCode) => actions.push(DeskAction::NewCode),
            Some(CodeAction::Copied) => self.log("The code is on the clipboard.".into()),
            None => {}
        }
        for url in &self.lan_urls {
            ui.small(format!("from the LAN: controller --signal {url} CODE"));
        }
        ui.separator();
        match self.controllers.show(ui) {
            Some(ControllerAction::Disconnect(session)) => {
                actions.push(DeskAction::Disconnect(SessionId::from(session.as_str())))
            }
            Some(ControllerAction::SetViewOnly(session, on)) => actions.push(
                DeskAction::SetViewOnly(SessionId::from(session.as_str()), on),
            ),
            None => {}
        }
        for (session, files) in &self.files {
            if files.list.transfers.is_empty() {
                continue;
            }
            ui.separator();
            ui.label(format!("With \"{}\":", files.name));
            match files.list.show(ui) {
                Some(TransferAction::Accept(id)) => actions.push(DeskAction::AnswerFile {
                    session: session.clone(),
                    id,
                    accept: true,
                }),
                Some(TransferAction::Decline(id)) => actions.push(DeskAction::AnswerFile {
                    session: session.clone(),
                    id,
                    accept: false,
                }),
                Some(TransferAction::Cancel { id, incoming }) => {
                    actions.push(DeskAction::CancelFile {
                        session: session.clone(),
                        direction: if incoming {
                            Direction::Incoming
                        } else {
                            Direction::Outgoing
                        },
                        id,
                    })
                }
                None => {}
            }
        }
        ui.separator();
        if let Some(ChatAction::Send(text)) = self.chat.show(ui) {
            actions.push(DeskAction::SendChat(text));
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_files::{Offer, Sha256, TransferEvent};
    use rtcdesk_ui::transfers::TransferState;

    fn code() -> rtcdesk_pake::PairingCode {
        "123 456 789 012".parse().expect("a code")
    }

    fn desk() -> Desk {
        Desk::new(
            &code(),
            "ws://127.0.0.1:8443/".into(),
            Vec::new(),
            Duration::from_secs(30),
            true,
        )
    }

    fn info(id: &str, state: SessionState, view_only: bool) -> SessionInfo {
        SessionInfo {
            session: id.into(),
            name: format!("ctl {id}"),
            state,
            view_only,
        }
    }

    #[test]
    fn a_request_waits_until_the_book_settles_it() {
        let mut desk = desk();
        let now = Instant::now();
        let asking = [info("s1", SessionState::Asking, false)];
        desk.on_event(
            &PuppetEvent::Incoming {
                session: "s1".into(),
                from: "ana\u{1b}[2J".into(),
                verified: false,
            },
            &asking,
            now,
        );
        let request = desk.requests().next().expect("asked");
        assert_eq!(
            request.from, "ana[2J",
            "no terminal escapes from the network"
        );
        assert!(!request.verified);
        assert!(desk.needs_attention());
        assert!(desk.title().contains("someone asks to connect"));
        // The book timed it out (or the controller gave up): the dialog goes.
        desk.on_event(
            &PuppetEvent::Declined {
                session: "s1".into(),
                from: "ana".into(),
            },
            &[],
            now,
        );
        assert_eq!(desk.requests().count(), 0);
        assert!(!desk.needs_attention());
    }

    #[test]
    fn the_list_follows_the_sessions_and_the_log_names_them() {
        let mut desk = desk();
        let now = Instant::now();
        let connected = [
            info("s1", SessionState::Connected, false),
            info("s2", SessionState::Connecting, true),
        ];
        desk.on_event(
            &PuppetEvent::SessionConnected {
                session: "s1".into(),
            },
            &connected,
            now,
        );
        assert_eq!(
            desk.controllers(),
            &[ConnectedController {
                session: "s1".into(),
                name: "ctl s1".into(),
                view_only: false
            }]
        );
        desk.on_event(
            &PuppetEvent::SessionEnded {
                session: "s1".into(),
                reason: crate::EndReason::Disconnected,
            },
            &[],
            now,
        );
        assert!(desk.controllers().is_empty());
        let last = desk.chat().lines().last().expect("logged");
        assert_eq!(last.text, "\"ctl s1\" is gone: you disconnected it.");
    }

    #[test]
    fn a_lost_signaling_server_hides_the_code_until_a_new_one_comes() {
        let mut desk = desk();
        let now = Instant::now();
        assert_eq!(desk.code(), Some("123456789012"));
        desk.on_event(
            &PuppetEvent::SignalingLost {
                reason: "closed".into(),
            },
            &[],
            now,
        );
        assert_eq!(desk.code(), None);
        assert!(desk.title().contains("no code"));
        let pairing: rtcdesk_pake::PairingCode = "987 654 321 000".parse().expect("a code");
        desk.on_event(
            &PuppetEvent::Registered {
                code: pairing.route,
                pairing,
                expires_in: Duration::from_secs(600),
                device: false,
            },
            &[],
            now,
        );
        assert_eq!(desk.code(), Some("987654321000"));
    }

    #[test]
    fn files_are_listed_per_controller_and_bounded() {
        let mut desk = desk();
        let now = Instant::now();
        for i in 0..LISTED_SESSIONS + 3 {
            let session: SessionId = format!("s{i:02}").as_str().into();
            desk.on_event(
                &PuppetEvent::File {
                    session,
                    event: TransferEvent::Offered {
                        offer: Offer {
                            id: 1,
                            name: "a.txt".into(),
                            size: 3,
                            sha256: Sha256([0; 32]),
                        },
                        safe_name: "a.txt".into(),
                    },
                },
                &[],
                now,
            );
        }
        assert_eq!(desk.files.len(), LISTED_SESSIONS);
        assert!(desk.needs_attention(), "offers wait for an answer");
        let (_, first) = desk.files.iter().next().expect("listed");
        assert_eq!(first.list.transfers[0].state, TransferState::Offered);
        assert!(first.list.transfers[0].incoming);
    }

    #[test]
    fn unread_lines_count_while_the_window_is_not_looked_at() {
        let mut desk = desk();
        desk.set_looking(false);
        desk.on_event(
            &PuppetEvent::Chat {
                session: "s1".into(),
                line: rtcdesk_proto::chat::ChatLine {
                    from: "ana".into(),
                    text: "hello".into(),
                    at: SystemTime::now(),
                },
            },
            &[],
            Instant::now(),
        );
        assert_eq!(desk.unread(), 1);
        assert!(desk.title().ends_with("1 new message"));
        desk.set_looking(true);
        assert_eq!(desk.unread(), 0);
    }
}
