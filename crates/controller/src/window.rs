//! The controller's window: the puppet's screen, scaled with its aspect ratio, and input.
//!
//! winit's event loop owns the main thread; the network (tokio) and the decoder run on others.
//! The decoder thread's [`WindowSink`] converts each picture to RGBA into a latest-wins
//! [`FrameSlot`] and wakes the event loop with [`UserEvent::Frame`]; the loop copies the newest
//! picture into the `pixels` frame buffer (whose size follows the video's) and presents it
//! (wgpu; Vulkan lavapipe where there is no GPU). pixels' scaling renderer letterboxes the
//! picture; its clipping rectangle tells [`WindowInput`] where the picture is, so pointer
//! positions are normalised to the video.
//!
//! Over the picture, egui draws the [`Overlay`](crate::overlay::Overlay): a toolbar at the top
//! edge and the chat, files and stats panels, on pixels' own wgpu device. While nothing is drawn
//! over the picture, no egui pass runs and egui gets no input, so a bare picture costs what it
//! did without egui; while something is, input over it stays local.
//!
//! **Keyboard release:** pressing Ctrl+Alt+Shift together releases the keyboard to the local
//! desktop: every key and button held on the puppet is released and key presses stay local
//! (pointer input still goes to the puppet). The same combination takes the keyboard back.
//! Losing focus also releases everything held.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pixels::{Pixels, ScalingMode};
use rtcdesk_input::window::{PictureRect, WindowInput};
use rtcdesk_media::frame::unix_micros_now;
use rtcdesk_ui::egui;
use rtcdesk_ui::layer::EguiLayer;
use rtcdesk_ui::timer::RedrawTimer;
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoopProxy};
use winit::keyboard::ModifiersState;
use winit::window::{Window, WindowId};

use crate::decode::{DecodedPicture, FrameSink};
use crate::overlay::{Overlay, OverlayAction};
use crate::{stats, ControllerEvent, InputSender, KeyboardMode, SessionStats};
use rtcdesk_ui::connect::{ConnectAction, ConnectScreen};
use rtcdesk_ui::recent::RecentPuppet;

/// Events the event loop gets from other threads.
#[derive(Debug)]
// Frames are signalled without data; the rare session event may be large.
#[allow(clippy::large_enum_variant)]
pub enum UserEvent {
    /// A new picture is in the slot.
    Frame,
    /// Something happened to the session.
    Controller(ControllerEvent),
    /// The user asked to quit from elsewhere (Ctrl-C in the terminal): like closing the window.
    Quit,
    /// The local clipboard's text, read when the window gained the focus.
    LocalClipboard(String),
    /// A chat line typed on the terminal the window was started from: sent like one written
    /// in the chat panel, and shown there.
    TypedChat(String),
    /// The connect screen's attempt succeeded: the session to show.
    Paired(Paired),
    /// The connect screen's attempt failed, and why (shown on the screen).
    PairingFailed(String),
}

/// A session the connect screen paired, on its way to the window.
pub struct Paired(pub Box<crate::Controller>);

impl std::fmt::Debug for Paired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Paired(..)")
    }
}

/// What the window needs of a session to show it and drive it.
pub struct SessionParts {
    /// The puppet's name or code, for the title.
    pub puppet: String,
    /// Where input goes.
    pub sender: InputSender,
    /// Files dropped on the window and the files panel's answers.
    pub files: crate::FileCommands,
    /// Lines written in the chat panel.
    pub chat: crate::ChatSender,
    /// The shared clipboard, unless turned off.
    pub clipboard: Option<crate::window_clipboard::WindowClipboard>,
}

/// Starts pairing with the code and signaling server the person entered; the outcome comes
/// back as [`UserEvent::Paired`] or [`UserEvent::PairingFailed`].
pub type StartPairing = Box<dyn FnMut(String, String)>;

/// Turns a paired controller into what the window drives (the program keeps the controller
/// to close it at the end); the `&str` is the control code it was paired with (9 digits).
pub type AttachSession = Box<dyn FnMut(crate::Controller, &str) -> SessionParts>;

/// The window before a session: the connect screen and how to start one.
struct Connecting {
    screen: ConnectScreen,
    start: StartPairing,
    attach: AttachSession,
    /// The code and server of the attempt under way, remembered once it succeeds.
    attempt: Option<(String, String)>,
}

#[derive(Debug, Default)]
struct SlotInner {
    rgba: Vec<u8>,
    width: u32,
    height: u32,
    fresh: bool,
}

/// The newest decoded picture as RGBA, waiting for the window (latest wins: an older picture
/// not yet shown is overwritten).
#[derive(Debug, Default)]
pub struct FrameSlot {
    inner: Mutex<SlotInner>,
    /// Signalled with each picture, for [`FrameSlot::wait_for_size`].
    arrived: Condvar,
}

impl FrameSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The size of the newest picture, once there is one.
    pub fn size(&self) -> Option<(u32, u32)> {
        let inner = self.lock();
        (inner.width > 0).then_some((inner.width, inner.height))
    }

    /// Swaps a new RGBA picture in (the caller gets the old buffer back for reuse) and wakes
    /// whoever waits for one. Returns whether an unshown picture was already there.
    fn put(&self, rgba: &mut Vec<u8>, width: u32, height: u32) -> bool {
        let was_fresh = {
            let mut inner = self.lock();
            std::mem::swap(&mut inner.rgba, rgba);
            inner.width = width;
            inner.height = height;
            std::mem::replace(&mut inner.fresh, true)
        };
        self.arrived.notify_all();
        was_fresh
    }

    /// Waits up to `timeout` for the first picture and returns its size, so the window can
    /// open at the video's size rather than be resized under the user a moment later.
    pub fn wait_for_size(&self, timeout: Duration) -> Option<(u32, u32)> {
        let inner = self.lock();
        let (inner, _) = self
            .arrived
            .wait_timeout_while(inner, timeout, |inner| inner.width == 0)
            .unwrap_or_else(|e| e.into_inner());
        (inner.width > 0).then_some((inner.width, inner.height))
    }
}

/// The decoder thread's side of the window: RGBA into the slot, then a wake-up.
pub struct WindowSink {
    slot: Arc<FrameSlot>,
    proxy: EventLoopProxy<UserEvent>,
    rgba: Vec<u8>,
}

impl WindowSink {
    /// A sink filling `slot` and waking the loop behind `proxy`.
    pub fn new(slot: Arc<FrameSlot>, proxy: EventLoopProxy<UserEvent>) -> Self {
        Self {
            slot,
            proxy,
            rgba: Vec::new(),
        }
    }
}

impl FrameSink for WindowSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        // Convert outside the lock, then swap buffers: the window never waits on a conversion.
        picture.to_rgba(&mut self.rgba);
        let was_fresh = self
            .slot
            .put(&mut self.rgba, picture.width(), picture.height());
        if !was_fresh {
            let _ = self.proxy.send_event(UserEvent::Frame);
        }
    }
}

/// The window application: owns the window, the frame buffer and the input mapping.
pub struct WindowApp {
    puppet: String,
    slot: Arc<FrameSlot>,
    input: WindowInput,
    sender: Option<InputSender>,
    connecting: Option<Connecting>,
    /// Set when a session starts from the connect screen: the window takes the video's size
    /// with the first picture.
    fit_to_video: bool,
    files: Option<crate::FileCommands>,
    chat: Option<crate::ChatSender>,
    clipboard: Option<crate::window_clipboard::WindowClipboard>,
    /// Live transfers for the title ("↑ report.pdf 37%"), from the last progress event.
    transfers: Option<String>,
    window: Option<Arc<Window>>,
    pixels: Option<Pixels<'static>>,
    egui: Option<EguiLayer>,
    overlay: Overlay,
    redraw: RedrawTimer,
    /// Where the pointer is over the window, in points (`None`: outside).
    pointer: Option<egui::Pos2>,
    video_size: Option<(u32, u32)>,
    stats: Option<SessionStats>,
    keyboard_released: bool,
    modifiers: ModifiersState,
    interrupted: bool,
    exit_code: Option<i32>,
    error: Option<String>,
}

/// The keyboard-release combination.
const RELEASE_COMBO: &str = "Ctrl+Alt+Shift";

impl WindowApp {
    /// An app showing `puppet` (its name or code, for the title) from `slot`, sending input
    /// through `sender` in keyboard mode `keyboard`.
    pub fn new(
        puppet: String,
        slot: Arc<FrameSlot>,
        sender: InputSender,
        keyboard: KeyboardMode,
    ) -> Self {
        Self::build(puppet, slot, Some(sender), keyboard)
    }

    fn build(
        puppet: String,
        slot: Arc<FrameSlot>,
        sender: Option<InputSender>,
        keyboard: KeyboardMode,
    ) -> Self {
        Self {
            puppet,
            slot,
            input: WindowInput::new(keyboard),
            sender,
            connecting: None,
            fit_to_video: false,
            files: None,
            chat: None,
            clipboard: None,
            transfers: None,
            window: None,
            pixels: None,
            egui: None,
            overlay: Overlay::new(),
            redraw: RedrawTimer::default(),
            pointer: None,
            video_size: None,
            stats: None,
            keyboard_released: false,
            modifiers: ModifiersState::empty(),
            interrupted: false,
            exit_code: None,
            error: None,
        }
    }

    /// A window that opens on the connect screen: `start` pairs with what the person entered,
    /// `attach` turns the paired controller into the session the window then shows.
    pub fn connect_screen(
        slot: Arc<FrameSlot>,
        keyboard: KeyboardMode,
        screen: ConnectScreen,
        start: StartPairing,
        attach: AttachSession,
    ) -> Self {
        // No session yet: the input sender comes with it.
        let mut app = Self::build("connect to a puppet".to_owned(), slot, None, keyboard);
        app.connecting = Some(Connecting {
            screen,
            start,
            attach,
            attempt: None,
        });
        app
    }

    /// Shows the paired session: from now on the window is the puppet's screen.
    fn start_session(&mut self, controller: crate::Controller) {
        let Some(mut connecting) = self.connecting.take() else {
            return;
        };
        let name = controller.puppet_name().map(str::to_owned);
        let (code, server) = connecting.attempt.take().unwrap_or_default();
        // Only the part the signaling server routes by: the last three digits are a secret of
        // this one session.
        let route: String = code.chars().take(9).collect();
        let parts = (connecting.attach)(controller, &route);
        if !route.is_empty() {
            let mut recent = connecting.screen.recent;
            recent.remember(RecentPuppet {
                code: route,
                name,
                server,
                last_used: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            });
            if let Err(error) = recent.save() {
                eprintln!("controller: the recent puppets are not saved: {error}");
            }
        }
        self.puppet = parts.puppet;
        self.sender = Some(parts.sender);
        self.files = Some(parts.files);
        self.chat = Some(parts.chat);
        self.clipboard = parts.clipboard;
        self.fit_to_video = true;
        self.update_title();
        self.request_redraw();
    }

    /// The clipboard is shared with the puppet through `clipboard`.
    pub fn with_clipboard(mut self, clipboard: crate::window_clipboard::WindowClipboard) -> Self {
        self.clipboard = Some(clipboard);
        self
    }

    /// Files dropped on the window are offered to the puppet through `files`.
    pub fn with_files(mut self, files: crate::FileCommands) -> Self {
        self.files = Some(files);
        self
    }

    /// Chat lines written in the window's chat panel go to the puppet's user through `chat`.
    pub fn with_chat(mut self, chat: crate::ChatSender) -> Self {
        self.chat = Some(chat);
        self
    }

    /// The exit code once the loop has ended: 0 when the user closed the window, the session's
    /// code when it ended, 1 when the window failed.
    pub fn exit_code(&self) -> i32 {
        self.exit_code.unwrap_or(crate::EXIT_OK)
    }

    /// Why the window failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, message: String) {
        self.error = Some(message);
        self.exit_code = Some(crate::EXIT_OTHER);
        event_loop.exit();
    }

    fn update_title(&self) {
        let Some(window) = &self.window else { return };
        let note = if self.interrupted {
            Some("connection interrupted…".to_owned())
        } else if self.keyboard_released {
            Some(format!("keyboard released — {RELEASE_COMBO} takes it back"))
        } else {
            self.transfers.clone()
        };
        window.set_title(&stats::window_title(
            &self.puppet,
            self.stats.as_ref(),
            note.as_deref(),
        ));
    }

    fn send_pending_input(&mut self) {
        let Some(sender) = &self.sender else {
            return;
        };
        while let Some(message) = self.input.poll_message() {
            match sender.try_send(&message) {
                Ok(()) => {}
                Err(rtcdesk_peer::Error::Full) if message.event.is_droppable() => {
                    tracing::trace!("pointer move dropped: the network is behind");
                }
                Err(rtcdesk_peer::Error::Full) => {
                    tracing::warn!("input event lost: over a thousand are waiting for the network");
                }
                Err(error) => tracing::debug!(%error, "input not sent: the session is closing"),
            }
        }
    }

    /// Tells the input mapper where pixels drew the picture.
    fn update_picture(&mut self) {
        let (Some(pixels), Some((width, height))) = (&self.pixels, self.video_size) else {
            self.input.set_picture(None);
            return;
        };
        let clip = pixels.context().scaling_renderer.clip_rect();
        let picture =
            (clip.2 > 0 && clip.3 > 0).then(|| PictureRect::from_clip_rect(clip, width, height));
        self.input.set_picture(picture);
    }

    /// Copies the newest picture into the frame buffer and presents it.
    fn show_newest(&mut self, event_loop: &ActiveEventLoop) {
        let Some(pixels) = self.pixels.as_mut() else {
            return;
        };
        let mut resized = false;
        {
            let mut inner = self.slot.lock();
            if !inner.fresh {
                return;
            }
            inner.fresh = false;
            let size = (inner.width, inner.height);
            if self.video_size != Some(size) {
                if let Err(error) = pixels.resize_buffer(size.0, size.1) {
                    drop(inner);
                    self.fail(
                        event_loop,
                        format!("cannot show a {size:?} picture: {error}"),
                    );
                    return;
                }
                self.video_size = Some(size);
                resized = true;
            }
            let frame = pixels.frame_mut();
            if frame.len() == inner.rgba.len() {
                frame.copy_from_slice(&inner.rgba);
            }
        }
        if resized {
            if std::mem::take(&mut self.fit_to_video) {
                if let Some(window) = &self.window {
                    let _ = window.request_inner_size(initial_window_size(self.video_size));
                }
            }
            self.update_picture();
        }
        self.render(event_loop);
    }

    /// Draws the picture and, when anything is over it, an egui pass; then carries out what
    /// the person asked for in it.
    fn render(&mut self, event_loop: &ActiveEventLoop) {
        let (Some(pixels), Some(window)) = (&self.pixels, &self.window) else {
            return;
        };
        let mut actions = Vec::new();
        let mut connect = None;
        // The connect screen is all egui; over a picture, egui runs only when something is
        // drawn there.
        let egui_pass = self.connecting.is_some() || self.overlay.needs_pass(self.pointer);
        let drawn = match self.egui.as_mut() {
            Some(layer) if egui_pass => {
                let mut screen = self.connecting.as_mut().map(|c| &mut c.screen);
                let overlay = &mut self.overlay;
                let pointer = self.pointer;
                let pass = layer.run(window, |ui| match screen.as_deref_mut() {
                    Some(screen) => {
                        egui::CentralPanel::default().show(ui, |ui| connect = screen.show(ui));
                    }
                    None => actions = overlay.show(ui, pointer),
                });
                self.redraw.schedule(Instant::now(), pass.repaint_after);
                pixels.render_with(|encoder, target, context| {
                    context.scaling_renderer.render(encoder, target);
                    layer.render(encoder, target, context);
                    Ok(())
                })
            }
            _ => pixels.render(),
        };
        if let Err(error) = drawn {
            return self.fail(event_loop, format!("cannot draw the window: {error}"));
        }
        if let (Some(ConnectAction::Connect { code, server }), Some(connecting)) =
            (connect, self.connecting.as_mut())
        {
            connecting.attempt = Some((code.clone(), server.clone()));
            (connecting.start)(code, server);
            self.request_redraw();
        }
        for action in actions {
            self.carry_out(event_loop, action);
        }
    }

    /// Does what the person asked for in the overlay.
    fn carry_out(&mut self, event_loop: &ActiveEventLoop, action: OverlayAction) {
        let files = self.files.as_ref();
        let answer = match action {
            OverlayAction::SendChat(text) => {
                match self.chat.as_ref().map(|chat| chat.try_send(&text)) {
                    Some(Ok(())) => self.overlay.sent_chat(text),
                    Some(Err(error)) => self.overlay.chat_not_sent(&text, &error.to_string()),
                    None => self.overlay.chat_not_sent(&text, "no chat in this session"),
                }
                self.request_redraw();
                return;
            }
            OverlayAction::AcceptFile(id) => files.map(|f| f.accept(id)),
            OverlayAction::DeclineFile(id) => {
                files.map(|f| f.decline(id, "the controller's user declined"))
            }
            OverlayAction::CancelFile(direction, id) => {
                files.map(|f| f.cancel(direction, id, "the controller's user cancelled"))
            }
            OverlayAction::ToggleKeyboard => {
                self.toggle_keyboard_release();
                return;
            }
            OverlayAction::Disconnect => {
                self.close(event_loop);
                return;
            }
        };
        if let Some(Err(error)) = answer {
            eprintln!("controller: file: {error}");
        }
    }

    /// The user ends the session (window closed, Disconnect, Ctrl-C): everything held on the
    /// puppet is released first, and the program exits with 0.
    fn close(&mut self, event_loop: &ActiveEventLoop) {
        self.input.release_all(unix_micros_now());
        self.send_pending_input();
        self.exit_code = Some(crate::EXIT_OK);
        event_loop.exit();
    }

    fn request_redraw(&self) {
        if let Some(window) = &self.window {
            window.request_redraw();
        }
    }

    fn toggle_keyboard_release(&mut self) {
        self.keyboard_released = !self.keyboard_released;
        if self.keyboard_released {
            self.input.release_all(unix_micros_now());
            self.send_pending_input();
        }
        self.overlay.set_keyboard_local(self.keyboard_released);
        self.update_title();
        self.request_redraw();
    }
}

impl WindowApp {
    /// Shows `event` to egui; says whether egui keeps it (a click on the toolbar, a key typed
    /// into the chat), so it does not reach the puppet.
    fn overlay_took(&mut self, event: &WindowEvent) -> bool {
        let scale = self.window.as_ref().map_or(1.0, |w| w.scale_factor());
        match event {
            WindowEvent::CursorMoved { position, .. } => {
                self.pointer = Some(egui::pos2(
                    (position.x / scale) as f32,
                    (position.y / scale) as f32,
                ));
            }
            WindowEvent::CursorLeft { .. } => self.pointer = None,
            _ => {}
        }
        let (Some(layer), Some(window)) = (self.egui.as_mut(), &self.window) else {
            return false;
        };
        let response = layer.handle_event(window, event);
        if self.connecting.is_some() {
            // The connect screen is all egui: nothing goes to a puppet, and the window's own
            // events (close, resize, redraw) are still handled.
            if response.repaint {
                window.request_redraw();
            }
            return !matches!(
                event,
                WindowEvent::CloseRequested
                    | WindowEvent::Resized(_)
                    | WindowEvent::RedrawRequested
                    | WindowEvent::ScaleFactorChanged { .. }
            );
        }
        if !self.overlay.needs_pass(self.pointer) {
            layer.discard_input(window);
            return false;
        }
        if response.repaint {
            window.request_redraw();
        }
        let (wants_pointer, wants_keyboard) = layer.wants_input();
        let pointer_over_overlay = wants_pointer
            && matches!(
                event,
                WindowEvent::CursorMoved { .. }
                    | WindowEvent::MouseInput { .. }
                    | WindowEvent::MouseWheel { .. }
            );
        let typing_into_overlay = wants_keyboard
            && matches!(
                event,
                WindowEvent::KeyboardInput { .. } | WindowEvent::Ime(_)
            );
        pointer_over_overlay || typing_into_overlay
    }
}

/// A window size for a video of `size`: the video's own size, shrunk to fit 1280×800.
fn initial_window_size(size: Option<(u32, u32)>) -> PhysicalSize<u32> {
    let (width, height) = size.unwrap_or((1280, 720));
    let scale = (1280.0 / width as f64).min(800.0 / height as f64).min(1.0);
    PhysicalSize::new(
        ((width as f64 * scale).round() as u32).max(1),
        ((height as f64 * scale).round() as u32).max(1),
    )
}

impl ApplicationHandler<UserEvent> for WindowApp {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_some() {
            return;
        }
        let video_size = self.slot.size();
        let size = if self.connecting.is_some() {
            PhysicalSize::new(480, 420)
        } else {
            initial_window_size(video_size)
        };
        let attributes = Window::default_attributes()
            .with_title(stats::window_title(&self.puppet, None, None))
            .with_inner_size(size);
        let window = match event_loop.create_window(attributes) {
            Ok(window) => Arc::new(window),
            Err(error) => return self.fail(event_loop, format!("cannot open a window: {error}")),
        };
        window.set_ime_allowed(true);
        let buffer = video_size.unwrap_or((16, 9));
        let mut pixels = match rtcdesk_ui::surface::window_pixels(window.clone(), buffer) {
            Ok(pixels) => pixels,
            Err(error) => return self.fail(event_loop, error),
        };
        pixels.set_scaling_mode(ScalingMode::Fill);
        self.egui = Some(EguiLayer::new(&window, &pixels));
        self.pixels = Some(pixels);
        self.video_size = video_size;
        self.window = Some(window);
        self.update_picture();
        // Show what is already waiting (the slot keeps it fresh until then).
        self.show_newest(event_loop);
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        // egui asked for a frame at a set time (a blinking text cursor, an animation).
        if self.redraw.due(Instant::now()) {
            self.request_redraw();
        }
        event_loop.set_control_flow(match self.redraw.deadline() {
            Some(at) => ControlFlow::WaitUntil(at),
            None => ControlFlow::Wait,
        });
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: UserEvent) {
        if let UserEvent::Controller(event) = &event {
            self.overlay.on_event(event);
            if self.overlay.needs_pass(self.pointer) {
                self.request_redraw();
            }
        }
        match event {
            UserEvent::Frame => self.show_newest(event_loop),
            UserEvent::Controller(ControllerEvent::FileProgress(live)) => {
                self.transfers = transfers_note(&live);
                self.update_title();
            }
            UserEvent::Controller(ControllerEvent::File(
                rtcdesk_files::TransferEvent::Completed { .. }
                | rtcdesk_files::TransferEvent::Ended { .. },
            )) => {
                // The next progress event lists what is still running.
                self.transfers = None;
                self.update_title();
            }
            UserEvent::TypedChat(text) => self.carry_out(event_loop, OverlayAction::SendChat(text)),
            UserEvent::Paired(Paired(controller)) => self.start_session(*controller),
            UserEvent::PairingFailed(why) => {
                if let Some(connecting) = self.connecting.as_mut() {
                    connecting.screen.connecting = false;
                    connecting.screen.error = Some(why);
                    connecting.attempt = None;
                }
                self.request_redraw();
            }
            UserEvent::LocalClipboard(text) => {
                if let Some(clipboard) = self.clipboard.as_mut() {
                    clipboard.local(&text);
                }
            }
            UserEvent::Controller(ControllerEvent::Clipboard(text)) => {
                if let Some(clipboard) = self.clipboard.as_mut() {
                    clipboard.remote(text);
                }
            }
            UserEvent::Controller(ControllerEvent::ViewOnly(on)) => {
                if let Some(clipboard) = self.clipboard.as_mut() {
                    clipboard.set_view_only(on);
                }
            }
            UserEvent::Quit => self.close(event_loop),
            UserEvent::Controller(ControllerEvent::Stats(stats)) => {
                self.stats = Some(stats);
                self.update_title();
            }
            UserEvent::Controller(ControllerEvent::Interrupted) => {
                self.interrupted = true;
                self.update_title();
            }
            UserEvent::Controller(ControllerEvent::Connected) => {
                self.interrupted = false;
                self.update_title();
            }
            UserEvent::Controller(ControllerEvent::Ended(reason)) => {
                eprintln!("controller: {reason}");
                self.exit_code = Some(reason.exit_code());
                event_loop.exit();
            }
            // The path and the first picture's time are printed by the program; the title
            // shows what matters while watching.
            // Chat lines are printed on stderr by the program before they get here.
            UserEvent::Controller(_) => {}
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let now = unix_micros_now();
        if self.overlay_took(&event) {
            return;
        }
        match &event {
            WindowEvent::CloseRequested => return self.close(event_loop),
            WindowEvent::Resized(size) => {
                if let Some(pixels) = self.pixels.as_mut() {
                    if size.width > 0 && size.height > 0 {
                        if let Err(error) = pixels.resize_surface(size.width, size.height) {
                            return self.fail(event_loop, format!("cannot resize: {error}"));
                        }
                    }
                }
                self.update_picture();
                self.render(event_loop);
            }
            WindowEvent::ScaleFactorChanged { .. } => self.update_picture(),
            WindowEvent::Focused(true) => {
                if let Some(clipboard) = &self.clipboard {
                    clipboard.focused();
                }
            }
            WindowEvent::DroppedFile(path) => {
                if let Some(files) = &self.files {
                    match files.send(path.clone()) {
                        Ok(()) => {
                            eprintln!("controller: offering {} to the puppet", path.display())
                        }
                        Err(error) => {
                            eprintln!("controller: cannot send {}: {error}", path.display())
                        }
                    }
                }
                return;
            }
            WindowEvent::RedrawRequested => self.render(event_loop),
            WindowEvent::ModifiersChanged(modifiers) => {
                let state = modifiers.state();
                let combo = ModifiersState::CONTROL | ModifiersState::ALT | ModifiersState::SHIFT;
                let now_held = state.contains(combo);
                let was_held = self.modifiers.contains(combo);
                self.modifiers = state;
                if now_held && !was_held {
                    self.toggle_keyboard_release();
                }
            }
            _ => {}
        }
        let keyboard_event = matches!(
            event,
            WindowEvent::KeyboardInput { .. } | WindowEvent::Ime(_)
        );
        if self.keyboard_released && keyboard_event {
            return;
        }
        self.input.handle_window_event(&event, now);
        self.send_pending_input();
    }
}

/// A short note for the title about the live transfers: `↑ report.pdf 37%`, `↓ a.txt 5%`,
/// `+1` for each further one; `None` when none runs.
fn transfers_note(
    live: &[(
        rtcdesk_files::Offer,
        rtcdesk_files::Direction,
        rtcdesk_files::Progress,
    )],
) -> Option<String> {
    let (offer, direction, progress) = live.first()?;
    let arrow = match direction {
        rtcdesk_files::Direction::Outgoing => "↑",
        rtcdesk_files::Direction::Incoming => "↓",
    };
    let mut note = format!(
        "{arrow} {} {:.0}%",
        rtcdesk_files::name::safe_name(&offer.name),
        progress.fraction() * 100.0
    );
    if live.len() > 1 {
        note.push_str(&format!(" +{}", live.len() - 1));
    }
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_first_live_transfer_and_counts_the_others() {
        use rtcdesk_files::{Direction, Offer, Progress, Sha256};
        let offer = |name: &str| Offer {
            id: 1,
            name: name.into(),
            size: 100,
            sha256: Sha256([0; 32]),
        };
        let progress = Progress {
            bytes: 37,
            total: 100,
            rate: 0.0,
            remaining: None,
        };
        assert_eq!(transfers_note(&[]), None);
        assert_eq!(
            transfers_note(&[(offer("report.pdf"), Direction::Outgoing, progress)]).as_deref(),
            Some("↑ report.pdf 37%")
        );
        assert_eq!(
            transfers_note(&[
                (offer("a.txt"), Direction::Incoming, progress),
                (offer("b.txt"), Direction::Outgoing, progress),
            ])
            .as_deref(),
            Some("↓ a.txt 37% +1")
        );
    }

    #[test]
    fn waiting_for_the_size_wakes_with_the_first_picture() {
        let slot = Arc::new(FrameSlot::default());
        assert_eq!(slot.wait_for_size(Duration::from_millis(1)), None);
        let decoder = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                let mut rgba = vec![0u8; 4 * 4 * 2];
                slot.put(&mut rgba, 4, 2)
            })
        };
        // Long enough never to be reached: the picture's arrival ends the wait.
        assert_eq!(slot.wait_for_size(Duration::from_secs(60)), Some((4, 2)));
        assert!(
            !decoder.join().unwrap(),
            "the first picture found no unshown one"
        );
    }
}
