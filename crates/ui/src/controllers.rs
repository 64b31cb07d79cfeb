//! The puppet's list of connected controllers: each with a view-only toggle and a
//! "Disconnect" button, so the person at the puppet stays in charge during a session.

use egui::Ui;

/// One connected controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedController {
    /// The session id.
    pub session: String,
    /// The name it gave.
    pub name: String,
    /// Whether it may only watch.
    pub view_only: bool,
}

/// What the person did to a controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerAction {
    /// End this session.
    Disconnect(String),
    /// Set or clear view-only for this session.
    SetViewOnly(String, bool),
}

/// The list's state.
#[derive(Debug, Clone, Default)]
pub struct ControllerList {
    /// The controllers now connected.
    pub controllers: Vec<ConnectedController>,
    /// Whether view-only can be switched during a session (a checkbox); otherwise each row
    /// only says which it is.
    pub view_only_toggles: bool,
}

impl ControllerList {
    /// Draws one row per controller.
    pub fn show(&mut self, ui: &mut Ui) -> Option<ControllerAction> {
        let mut action = None;
        ui.strong("Connected controllers");
        if self.controllers.is_empty() {
            ui.label("Nobody is connected.");
        }
        let toggles = self.view_only_toggles;
        for controller in &mut self.controllers {
            ui.horizontal(|ui| {
                ui.label(&controller.name);
                if !toggles {
                    ui.label(if controller.view_only {
                        "(view only)"
                    } else {
                        "(full control)"
                    });
                } else if ui
                    .checkbox(&mut controller.view_only, "view only")
                    .changed()
                {
                    action = Some(ControllerAction::SetViewOnly(
                        controller.session.clone(),
                        controller.view_only,
                    ));
                }
                if ui.button("Disconnect").clicked() {
                    action = Some(ControllerAction::Disconnect(controller.session.clone()));
                }
            });
        }
        action
    }
}
