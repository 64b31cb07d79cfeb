//! rtcdesk's windows, drawn with egui, for both programs.
//!
//! Each screen is a plain value holding what it shows, with a `show(&mut self, ui)` that draws
//! it and returns what the person asked for (an action enum) instead of doing it: the programs
//! own the sessions, the screens only ask. That keeps the screens testable without a window or
//! a network (`tests/` drives them with egui's kittest harness, finds widgets by label and role
//! through AccessKit and renders PNG screenshots on wgpu).
//!
//! - controller: [`connect::ConnectScreen`] (code, recent puppets, signaling server),
//!   [`toolbar::Toolbar`] and [`stats::StatsPanel`] while connected;
//! - puppet: [`code::CodeView`], [`consent::ConsentDialog`], [`controllers::ControllerList`];
//! - both: [`transfers::TransferList`] (incoming files with accept/decline and progress) and
//!   [`chat::ChatPanel`] (the session's lines, with an unread count);
//! - [`layer::EguiLayer`] draws any of them over a `pixels` frame on pixels' own wgpu device
//!   (made with [`surface::window_pixels`]),
//!   and [`timer::RedrawTimer`] tells the event loop when egui wants its next frame.

pub mod chat;
pub mod code;
pub mod connect;
pub mod consent;
pub mod controllers;
pub mod layer;
pub mod recent;
pub mod stats;
pub mod surface;
pub mod timer;
pub mod toolbar;
pub mod transfers;

pub use egui;
