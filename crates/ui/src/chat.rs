//! The chat panel both programs show: the lines of the session with time and name, a field to
//! write the next one, and the count of lines that arrived while the panel was closed (shown on
//! the toolbar's chat button and on the badge over the picture).

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use egui::{Key, RichText, Ui};

/// Lines kept per session: enough to scroll back through a conversation, bounded so a chatty
/// (or hostile) peer cannot grow the window's memory without end.
pub const KEPT_LINES: usize = 500;

/// Characters of one line drawn (a longer line is cut: the rest is in the log).
const SHOWN_CHARS: usize = 4096;

/// `HH:MM` of `at`, in UTC (what the rest of the programs print).
pub fn clock(at: SystemTime) -> String {
    let seconds = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}", seconds / 3600, seconds / 60 % 60)
}

/// One line as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    /// Who wrote it ("you" for our own lines).
    pub from: String,
    /// What was written, already cleaned of control characters.
    pub text: String,
    /// When, as `HH:MM` (or `HH:MM:SS`) local to how the program shows time.
    pub clock: String,
    /// Whether we wrote it.
    pub ours: bool,
}

/// What the person asked of the chat panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAction {
    /// Send this line (never empty, never only spaces).
    Send(String),
}

/// The chat panel's state.
#[derive(Debug, Clone, Default)]
pub struct ChatPanel {
    lines: VecDeque<ChatEntry>,
    /// The line being written.
    pub draft: String,
    open: bool,
    unread: usize,
}

impl ChatPanel {
    /// A line from the other side: unread while the panel is closed.
    pub fn received(&mut self, from: String, text: String, clock: String) {
        self.push(ChatEntry {
            from,
            text,
            clock,
            ours: false,
        });
        if !self.open {
            self.unread += 1;
        }
    }

    /// A line we sent.
    pub fn sent(&mut self, text: String, clock: String) {
        self.push(ChatEntry {
            from: "you".to_owned(),
            text,
            clock,
            ours: true,
        });
    }

    /// A note from this program in the chat (a line that could not be sent): never unread.
    pub fn notice(&mut self, text: String, clock: String) {
        self.push(ChatEntry {
            from: "—".to_owned(),
            text,
            clock,
            ours: true,
        });
    }

    fn push(&mut self, entry: ChatEntry) {
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(entry);
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &ChatEntry> {
        self.lines.iter()
    }

    /// Lines that arrived while the panel was closed.
    pub fn unread(&self) -> usize {
        self.unread
    }

    /// Whether the panel is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens or closes the panel; opening it marks every line read.
    pub fn set_open(&mut self, open: bool) {
        self.open = open;
        if open {
            self.unread = 0;
        }
    }

    /// Draws the lines and the field; returns the line to send when the person presses Enter
    /// or "Send".
    pub fn show(&mut self, ui: &mut Ui) -> Option<ChatAction> {
        let mut action = None;
        ui.strong("Chat");
        let field_height = 64.0;
        egui::ScrollArea::vertical()
            .max_height((ui.available_height() - field_height).max(40.0))
            .stick_to_bottom(true)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if self.lines.is_empty() {
                    ui.label("No messages yet.");
                }
                for line in &self.lines {
                    let text: String = line.text.chars().take(SHOWN_CHARS).collect();
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(&line.clock).weak());
                        let name = RichText::new(&line.from).strong();
                        ui.label(if line.ours { name } else { name.italics() });
                        ui.label(text);
                    });
                }
            });
        ui.separator();
        ui.horizontal(|ui| {
            let field = ui.add(
                egui::TextEdit::singleline(&mut self.draft)
                    .hint_text("Write a message")
                    .desired_width((ui.available_width() - 56.0).max(60.0)),
            );
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let clicked = ui.button("Send").clicked();
            if entered || clicked {
                let text = self.draft.trim().to_owned();
                if !text.is_empty() {
                    self.draft.clear();
                    action = Some(ChatAction::Send(text));
                }
                // Keep writing after Enter, as every chat does.
                field.request_focus();
            }
        });
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arriving_while_closed_are_unread_until_the_panel_opens() {
        let mut chat = ChatPanel::default();
        chat.received("puppet".into(), "hello".into(), "10:00".into());
        chat.received("puppet".into(), "are you there?".into(), "10:01".into());
        assert_eq!(chat.unread(), 2);
        chat.set_open(true);
        assert_eq!(chat.unread(), 0);
        chat.received("puppet".into(), "ok".into(), "10:02".into());
        assert_eq!(chat.unread(), 0, "read as it arrives while open");
        chat.set_open(false);
        chat.sent("back".into(), "10:03".into());
        assert_eq!(chat.unread(), 0, "our own lines are never unread");
        assert_eq!(chat.lines().count(), 4);
    }

    #[test]
    fn the_panel_keeps_a_bounded_number_of_lines() {
        let mut chat = ChatPanel::default();
        for i in 0..KEPT_LINES + 10 {
            chat.received("p".into(), format!("line {i}"), "00:00".into());
        }
        assert_eq!(chat.lines().count(), KEPT_LINES);
        assert_eq!(
            chat.lines().next().map(|l| l.text.as_str()),
            Some("line 10")
        );
        assert_eq!(chat.unread(), KEPT_LINES + 10, "every line was unread");
    }
}
