//! The controller's thin toolbar while connected: chat, files, keyboard mode, the view-only
//! state, stats and disconnect. It is drawn only while the pointer is off the picture (near the
//! top edge or over the bar itself), so it never covers what the person is working on.

use egui::Ui;

/// A toolbar button the person pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolbarAction {
    /// Open or close the chat panel.
    Chat,
    /// Open or close the files panel.
    Files,
    /// Switch between positional keys and typed text.
    KeyboardMode,
    /// Open or close the stats panel.
    Stats,
    /// End the session.
    Disconnect,
}

/// What the toolbar shows besides its buttons.
#[derive(Debug, Clone, Default)]
pub struct Toolbar {
    /// The keyboard mode's name, e.g. "keys" or "text".
    pub keyboard_mode: String,
    /// Whether the puppet lets us only watch.
    pub view_only: bool,
    /// Unread chat messages, shown on the chat button.
    pub unread: usize,
    /// The height (in points) from the window's top edge where the pointer brings the bar up.
    pub reveal_height: f32,
}

/// Whether the bar shows for a pointer at `pointer_y` (points from the top; `None` when the
/// pointer is outside the window): near the top edge, or while the pointer is on the bar.
pub fn toolbar_visible(pointer_y: Option<f32>, reveal_height: f32, over_bar: bool) -> bool {
    over_bar || pointer_y.is_some_and(|y| y <= reveal_height)
}

impl Toolbar {
    /// Draws the buttons in a row.
    pub fn show(&self, ui: &mut Ui) -> Option<ToolbarAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            let chat = if self.unread > 0 {
                format!("Chat ({})", self.unread)
            } else {
                "Chat".to_owned()
            };
            if ui.button(chat).clicked() {
                action = Some(ToolbarAction::Chat);
            }
            if ui.button("Files").clicked() {
                action = Some(ToolbarAction::Files);
            }
            if ui
                .button(format!("Keyboard: {}", self.keyboard_mode))
                .clicked()
            {
                action = Some(ToolbarAction::KeyboardMode);
            }
            if self.view_only {
                ui.label("View only");
            }
            if ui.button("Stats").clicked() {
                action = Some(ToolbarAction::Stats);
            }
            if ui.button("Disconnect").clicked() {
                action = Some(ToolbarAction::Disconnect);
            }
        });
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_shows_near_the_top_edge_or_while_used() {
        assert!(toolbar_visible(Some(3.0), 24.0, false));
        assert!(!toolbar_visible(Some(200.0), 24.0, false));
        assert!(toolbar_visible(Some(200.0), 24.0, true));
        assert!(!toolbar_visible(None, 24.0, false));
    }
}
