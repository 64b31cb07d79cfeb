//! The puppet's control code in large digits, with "Copy" and "New code": the person reads it
//! out or pastes it into a message; a new code makes the old one useless to anyone who saw it.

use egui::{RichText, Ui};

/// What the person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeAction {
    /// The code went to the clipboard.
    Copied,
    /// Register again for a fresh code.
    NewCode,
}

/// The code view's state.
#[derive(Debug, Clone, Default)]
pub struct CodeView {
    /// The current code (9 digits), `None` until the signaling server gave one.
    pub code: Option<String>,
    /// The signaling server's address, shown small under the code.
    pub server: String,
}

/// `123456789` → `123 456 789`, as people read it.
pub fn grouped(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 2);
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

impl CodeView {
    /// Draws the code and its buttons.
    pub fn show(&self, ui: &mut Ui) -> Option<CodeAction> {
        let mut action = None;
        ui.label("Your control code");
        match &self.code {
            Some(code) => {
                ui.label(RichText::new(grouped(code)).monospace().size(44.0).strong());
            }
            None => {
                ui.label(RichText::new("waiting for a code…").size(20.0));
            }
        }
        ui.horizontal(|ui| {
            let copy = ui.add_enabled(self.code.is_some(), egui::Button::new("Copy"));
            if copy.clicked() {
                if let Some(code) = &self.code {
                    ui.ctx().copy_text(code.clone());
                    action = Some(CodeAction::Copied);
                }
            }
            if ui.button("New code").clicked() {
                action = Some(CodeAction::NewCode);
            }
        });
        if !self.server.is_empty() {
            ui.small(format!("signaling server: {}", self.server));
        }
        action
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_are_grouped_in_threes() {
        assert_eq!(super::grouped("123456789"), "123 456 789");
    }
}
