//! Files on their way: incoming ones wait for "Accept" or "Decline" before a byte is written;
//! accepted and outgoing ones show a progress bar.

use egui::Ui;
use rtcdesk_files::{Direction, Offer, Progress, TransferEvent};

/// Transfers listed at most; the oldest finished ones go first.
pub const LISTED_TRANSFERS: usize = 50;

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
    /// This side offered a file (`offer.id` is an outgoing id): it waits for the other side.
    pub fn offered_by_us(&mut self, offer: &Offer) {
        self.add(Transfer {
            id: offer.id,
            name: rtcdesk_files::name::safe_name(&offer.name),
            size: offer.size,
            done: 0,
            incoming: false,
            state: TransferState::Offered,
        });
    }

    /// Folds a transfer event in. Returns `true` for a file offered to us, which waits for
    /// this side's user: the window shows the list then.
    pub fn on_event(&mut self, event: &TransferEvent) -> bool {
        match event {
            TransferEvent::Offered { offer, safe_name } => {
                self.add(Transfer {
                    id: offer.id,
                    name: safe_name.clone(),
                    size: offer.size,
                    done: 0,
                    incoming: true,
                    state: TransferState::Offered,
                });
                return true;
            }
            TransferEvent::Accepted { id, offset } => {
                if let Some(t) = self.find(Direction::Outgoing, *id) {
                    t.state = TransferState::Moving;
                    t.done = *offset;
                }
            }
            TransferEvent::Completed { direction, id, .. } => {
                if let Some(t) = self.find(*direction, *id) {
                    t.state = TransferState::Done;
                    t.done = t.size;
                }
            }
            TransferEvent::Ended { direction, id, .. } => {
                if let Some(t) = self.find(*direction, *id) {
                    t.state = TransferState::Stopped;
                }
            }
            _ => {}
        }
        false
    }

    /// Bytes moved so far of each live transfer.
    pub fn on_progress(&mut self, live: &[(Offer, Direction, Progress)]) {
        for (offer, direction, progress) in live {
            if let Some(t) = self.find(*direction, offer.id) {
                t.state = TransferState::Moving;
                t.done = progress.bytes;
            }
        }
    }

    /// Whether an offer to us waits for an answer.
    pub fn waiting_for_answer(&self) -> bool {
        self.transfers
            .iter()
            .any(|t| t.incoming && t.state == TransferState::Offered)
    }

    /// Adds a row, keeping at most [`LISTED_TRANSFERS`]: the oldest finished one goes (with
    /// none finished, the oldest).
    fn add(&mut self, transfer: Transfer) {
        if self.transfers.len() >= LISTED_TRANSFERS {
            let finished = self
                .transfers
                .iter()
                .position(|t| matches!(t.state, TransferState::Done | TransferState::Stopped));
            self.transfers.remove(finished.unwrap_or(0));
        }
        self.transfers.push(transfer);
    }

    /// The newest row for transfer `id` in `direction` (ids are per direction).
    fn find(&mut self, direction: Direction, id: u32) -> Option<&mut Transfer> {
        let incoming = direction == Direction::Incoming;
        self.transfers
            .iter_mut()
            .rev()
            .find(|t| t.id == id && t.incoming == incoming)
    }

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
