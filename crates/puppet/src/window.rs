//! The puppet's window: the [`Desk`] drawn with egui on a winit window, for the person whose
//! computer is shared. It runs on the main thread; the puppet runs on tokio beside it and its
//! events arrive as [`DeskEvent`]s through the event loop's proxy. What the person does goes
//! back through the puppet's handles, none of which waits, so the window never blocks.
//!
//! Closing the window stops sharing: every session ends and the program exits.

use std::sync::Arc;
use std::time::Instant;

use pixels::Pixels;
use rtcdesk_ui::egui;
use rtcdesk_ui::layer::EguiLayer;
use rtcdesk_ui::timer::RedrawTimer;
use winit::application::ApplicationHandler;
use winit::dpi::LogicalSize;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow};
use winit::window::{UserAttentionType, Window, WindowId};

use crate::desk::{Desk, DeskAction};
use crate::{ChatSender, PuppetControls, PuppetEvent, PuppetFiles, SessionInfo};

/// What reaches the window from the puppet's side.
#[derive(Debug)]
pub enum DeskEvent {
    /// Something happened; the sessions as they are right after it.
    Puppet(PuppetEvent, Vec<SessionInfo>),
    /// The puppet stopped (Ctrl-C, or it failed: then why).
    Stopped(Option<String>),
}

/// The puppet's handles the window acts through.
#[derive(Debug, Clone)]
pub struct DeskHandles {
    /// Answers, disconnects, roles, new code.
    pub controls: PuppetControls,
    /// Chat to every controller.
    pub chat: ChatSender,
    /// Files both ways.
    pub files: PuppetFiles,
}

/// The window and what it draws.
pub struct PuppetWindow {
    desk: Desk,
    handles: DeskHandles,
    window: Option<Arc<Window>>,
    pixels: Option<Pixels<'static>>,
    egui: Option<EguiLayer>,
    redraw: RedrawTimer,
    error: Option<String>,
}

impl PuppetWindow {
    /// A window showing `desk`, acting through `handles`.
    pub fn new(desk: Desk, handles: DeskHandles) -> Self {
        Self {
            desk,
            handles,
            window: None,
            pixels: None,
            egui: None,
            redraw: RedrawTimer::default(),
            error: None,
        }
    }

    /// Why the window could not go on, once it stopped for that reason.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, message: String) {
        self.error = Some(message);
        event_loop.exit();
    }

    fn request_redraw(&self) {
        if let Some(window) = &self.window {
            window.request_redraw();
        }
    }

    fn update_title(&self) {
        if let Some(window) = &self.window {
            window.set_title(&self.desk.title());
        }
    }

    fn render(&mut self, event_loop: &ActiveEventLoop) {
        let (Some(pixels), Some(window), Some(layer)) =
            (&self.pixels, &self.window, self.egui.as_mut())
        else {
            return;
        };
        let desk = &mut self.desk;
        let mut actions = Vec::new();
        let now = Instant::now();
        let pass = layer.run(window, |ui| {
            egui::CentralPanel::default().show(ui, |ui| actions = desk.show(ui, now));
        });
        self.redraw.schedule(Instant::now(), pass.repaint_after);
        let drawn = pixels.render_with(|encoder, target, context| {
            context.scaling_renderer.render(encoder, target);
            layer.render(encoder, target, context);
            Ok(())
        });
        if let Err(error) = drawn {
            return self.fail(event_loop, format!("cannot draw the window: {error}"));
        }
        let acted = !actions.is_empty();
        for action in actions {
            self.carry_out(action);
        }
        if acted {
            self.update_title();
            self.request_redraw();
        }
    }

    /// Does what the person asked for through the puppet's handles; what cannot be done is
    /// said in the window's log.
    fn carry_out(&mut self, action: DeskAction) {
        let DeskHandles {
            controls,
            chat,
            files,
        } = &self.handles;
        let failed = match action {
            DeskAction::SendChat(text) => {
                match chat.try_send(&text) {
                    Ok(_) => self.desk.sent_chat(text),
                    Err(crate::ChatError::NobodyConnected) => {
                        self.desk.chat_not_sent(&text, "nobody is connected")
                    }
                    Err(error) => self.desk.chat_not_sent(&text, &error.to_string()),
                }
                None
            }
            DeskAction::Decide(session, decision) => controls
                .decide(session, decision)
                .err()
                .map(|e| e.to_string()),
            DeskAction::Disconnect(session) => {
                controls.disconnect(session).err().map(|e| e.to_string())
            }
            DeskAction::SetViewOnly(session, on) => controls
                .set_view_only(session, on)
                .err()
                .map(|e| e.to_string()),
            DeskAction::NewCode => controls.new_code().err().map(|e| e.to_string()),
            DeskAction::AnswerFile {
                session,
                id,
                accept,
            } => files
                .answer(session, id, accept)
                .err()
                .map(|e| e.to_string()),
            DeskAction::CancelFile {
                session,
                direction,
                id,
            } => files
                .cancel(session, direction, id)
                .err()
                .map(|e| e.to_string()),
            DeskAction::SendFile(path) => match files.send(path.clone()) {
                Ok(()) => {
                    self.desk.note(format!(
                        "Offering {} to every connected controller.",
                        path.display()
                    ));
                    None
                }
                Err(error) => Some(format!("cannot send {}: {error}", path.display())),
            },
        };
        if let Some(why) = failed {
            self.desk.note(format!("Not done: {why}."));
        }
    }
}

impl ApplicationHandler<DeskEvent> for PuppetWindow {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() {
            return;
        }
        let attributes = Window::default_attributes()
            .with_title(self.desk.title())
            .with_inner_size(LogicalSize::new(480.0, 640.0))
            .with_min_inner_size(LogicalSize::new(360.0, 420.0));
        let window = match event_loop.create_window(attributes) {
            Ok(window) => Arc::new(window),
            Err(error) => return self.fail(event_loop, format!("cannot open a window: {error}")),
        };
        window.set_ime_allowed(true);
        // All egui: the picture underneath is one black pixel.
        let pixels = match rtcdesk_ui::surface::window_pixels(window.clone(), (1, 1)) {
            Ok(pixels) => pixels,
            Err(error) => return self.fail(event_loop, error),
        };
        self.egui = Some(EguiLayer::new(&window, &pixels));
        self.pixels = Some(pixels);
        self.window = Some(window);
        self.request_redraw();
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        // egui asked for a frame at a set time (the countdown, a blinking text cursor).
        if self.redraw.due(Instant::now()) {
            self.request_redraw();
        }
        event_loop.set_control_flow(match self.redraw.deadline() {
            Some(at) => ControlFlow::WaitUntil(at),
            None => ControlFlow::Wait,
        });
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: DeskEvent) {
        match event {
            DeskEvent::Puppet(event, sessions) => {
                self.desk.on_event(&event, &sessions, Instant::now());
                if self.desk.needs_attention() {
                    if let Some(window) = &self.window {
                        window.request_user_attention(Some(UserAttentionType::Critical));
                    }
                }
                self.update_title();
                self.request_redraw();
            }
            DeskEvent::Stopped(error) => {
                self.error = error;
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        if let (Some(layer), Some(window)) = (self.egui.as_mut(), &self.window) {
            if layer.handle_event(window, &event).repaint {
                window.request_redraw();
            }
        }
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            WindowEvent::Resized(size) => {
                if let Some(pixels) = self.pixels.as_mut() {
                    if let Err(error) = pixels.resize_surface(size.width.max(1), size.height.max(1))
                    {
                        return self.fail(event_loop, format!("cannot resize the window: {error}"));
                    }
                }
                self.request_redraw();
            }
            WindowEvent::Focused(focused) => {
                self.desk.set_looking(focused);
                if focused {
                    if let Some(window) = &self.window {
                        window.request_user_attention(None);
                    }
                }
                self.update_title();
            }
            WindowEvent::DroppedFile(path) => {
                self.carry_out(DeskAction::SendFile(path));
                self.request_redraw();
            }
            WindowEvent::RedrawRequested => self.render(event_loop),
            _ => {}
        }
    }
}
