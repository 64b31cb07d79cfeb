//! The controller's connect screen: type or paste a control code, pick a recent puppet, set the
//! signaling server; why the last attempt failed is shown here, in words, not only as an exit
//! code.

use egui::{Key, RichText, Ui};

use crate::recent::RecentPuppets;

/// What the person asked for on the connect screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectAction {
    /// Connect to the puppet with this code (12 digits: verified end to end; 9: not) through
    /// this signaling server.
    Connect {
        /// The control code, digits only.
        code: String,
        /// The signaling server's URL.
        server: String,
    },
}

/// The connect screen's state.
#[derive(Debug, Clone)]
pub struct ConnectScreen {
    /// The code as typed or pasted (spaces and dashes allowed).
    pub code: String,
    /// The signaling server's URL.
    pub server: String,
    /// Puppets connected to before.
    pub recent: RecentPuppets,
    /// Why the last attempt failed, shown in red until the next one.
    pub error: Option<String>,
    /// Set while an attempt is under way: the button waits.
    pub connecting: bool,
}

/// A typed or pasted code as its digits: 12 as the puppet shows them (the last three never go
/// to the signaling server and make the session verified end to end), or the first 9 alone.
/// Spaces, dashes and dots are ignored; anything else, or another count, is refused with the
/// reason to show.
pub fn normalize_code(text: &str) -> Result<String, &'static str> {
    let mut digits = String::with_capacity(12);
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '\u{a0}' => {}
            _ => return Err("a control code has digits only"),
        }
    }
    if digits.len() != 12 && digits.len() != 9 {
        return Err("a control code has 12 digits, as the puppet shows it");
    }
    Ok(digits)
}

impl ConnectScreen {
    /// A screen with an empty code, `server` preset and the `recent` list.
    pub fn new(server: String, recent: RecentPuppets) -> Self {
        Self {
            code: String::new(),
            server,
            recent,
            error: None,
            connecting: false,
        }
    }

    fn try_connect(&mut self) -> Option<ConnectAction> {
        match normalize_code(&self.code) {
            Ok(code) => {
                self.error = None;
                self.connecting = true;
                Some(ConnectAction::Connect {
                    code,
                    server: self.server.trim().to_owned(),
                })
            }
            Err(reason) => {
                self.error = Some(reason.to_owned());
                None
            }
        }
    }

    /// Draws the screen; returns an action when the person connects.
    pub fn show(&mut self, ui: &mut Ui) -> Option<ConnectAction> {
        let mut action = None;
        ui.heading("Connect to a puppet");
        ui.add_space(8.0);
        let label = ui.label("Control code");
        let field = ui.add(
            egui::TextEdit::singleline(&mut self.code)
                .hint_text("123 456 789 012")
                .font(egui::TextStyle::Heading)
                .desired_width(220.0),
        );
        let field = field.labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
        ui.add_space(4.0);
        let button = ui.add_enabled(!self.connecting, egui::Button::new("Connect"));
        if (button.clicked() || entered) && !self.connecting {
            action = self.try_connect();
        }
        if self.connecting {
            ui.label("Connecting… the puppet's user is asked to accept.");
        }
        if let Some(error) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        ui.add_space(12.0);
        ui.separator();
        ui.label(RichText::new("Recent puppets").strong());
        if self.recent.entries.is_empty() {
            ui.label("None yet.");
        }
        let mut picked = None;
        for entry in &self.recent.entries {
            let title = match &entry.name {
                Some(name) if !name.trim().is_empty() => format!("{name} — {}", entry.code),
                _ => entry.code.clone(),
            };
            if ui.button(title).clicked() {
                picked = Some(entry.clone());
            }
        }
        if let Some(entry) = picked {
            self.code = entry.code;
            self.server = entry.server;
            if !self.connecting {
                action = self.try_connect();
            }
        }
        ui.add_space(12.0);
        ui.separator();
        egui::CollapsingHeader::new("Signaling server")
            .default_open(false)
            .show(ui, |ui| {
                let label = ui.label("Server URL");
                ui.text_edit_singleline(&mut self.server)
                    .labelled_by(label.id);
            });
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_taken_as_shown_or_refused_with_a_reason() {
        assert_eq!(normalize_code("123 456 789").as_deref(), Ok("123456789"));
        assert_eq!(normalize_code(" 123-456-789 ").as_deref(), Ok("123456789"));
        assert_eq!(
            normalize_code("123 456 789 012").as_deref(),
            Ok("123456789012")
        );
        assert_eq!(
            normalize_code("12345678"),
            Err("a control code has 12 digits, as the puppet shows it")
        );
        assert_eq!(
            normalize_code("12345678x"),
            Err("a control code has digits only")
        );
    }
}
