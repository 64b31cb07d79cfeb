//! Files on their way: incoming ones wait for "Accept" or "Decline" before a byte is written;
//! accepted and outgoing ones show a progress bar.

use egui::Ui;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// Offered to us; nothing written until accepted.
    Offered,
    /// Bytes flowing.
    Moving,
    /// All bytes arrived and were checked.
    Done,
    /// Declined, cancelled or failed.
    Stopped,
}

/// One file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The transfer's id.
    pub id: u32,
    /// The file's name, as offered.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes moved so far.
    pub done: u64,
    /// Whether it comes to us.
    pub incoming: bool,
    /// Where it stands.
    pub state: TransferState,
}

/// What the person did to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferAction {
    /// Take the offered file.
    Accept(u32),
    /// Refuse it.
    Decline(u32),
    /// Stop a transfer under way, or take back our own offer: the other side is told. Ids
    /// are per direction, so the direction comes with it.
    Cancel {
        /// The transfer.
        id: u32,
        /// Whether it is one coming to us.
        incoming: bool,
    },
}

/// The list's state.
#[derive(Debug, Clone, Default)]
pub struct TransferList {
    /// Newest last.
    pub transfers: Vec<Transfer>,
}

/// `1.5 MB`, `820 kB`, `12 B`.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else if bytes >= 1000 {
        format!("{} kB", bytes / 1000)
    } else {
        format!("{bytes} B")
    }
}

impl TransferList {
    /// Draws one row per file.
    pub fn show(&self, ui: &mut Ui) -> Option<TransferAction> {
        let mut action = None;
        ui.strong("Files");
        if self.transfers.is_empty() {
            ui.label("No files yet. Drop a file onto the window to send it.");
        }
        for t in &self.transfers {
            ui.horizontal(|ui| {
                let arrow = if t.incoming { "⬇" } else { "⬆" };
                ui.label(format!("{arrow} {} ({})", t.name, size_text(t.size)));
                match t.state {
                    TransferState::Offered if !t.incoming => {
                        ui.label("waiting for the other side");
                        if ui.button("Cancel").clicked() {
                            action = Some(TransferAction::Cancel {
                                id: t.id,
                                incoming: t.incoming,
                            });
                        }
                    }
                    TransferState::Offered => {
                        if ui.button("Accept").clicked() {
                            action = Some(TransferAction::Accept(t.id));
                        }
                        if ui.button("Decline").clicked() {
                            action = Some(TransferAction::Decline(t.id));
                        }
                    }
                    TransferState::Moving => {
                        let fraction = if t.size == 0 {
                            1.0
                        } else {
                            (t.done as f64 / t.size as f64).clamp(0.0, 1.0) as f32
                        };
                        ui.add(
                            egui::ProgressBar::new(fraction)
                                .desired_width(160.0)
                                .show_percentage(),
                        );
                        if ui.button("Cancel").clicked() {
                            action = Some(TransferAction::Cancel {
                                id: t.id,
                                incoming: t.incoming,
                            });
                        }
                    }
                    TransferState::Done => {
                        ui.label("done");
                    }
                    TransferState::Stopped => {
                        ui.label("stopped");
                    }
                }
            });
        }
        action
    }
}
