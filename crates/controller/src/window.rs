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
//! **Keyboard release:** pressing Ctrl+Alt+Shift together releases the keyboard to the local
//! desktop: every key and button held on the puppet is released and key presses stay local
//! (pointer input still goes to the puppet). The same combination takes the keyboard back.
//! Losing focus also releases everything held.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use pixels::{Pixels, PixelsBuilder, ScalingMode, SurfaceTexture};
use rtcdesk_input::window::{PictureRect, WindowInput};
use rtcdesk_media::frame::unix_micros_now;
use winit::application::ApplicationHandler;
use winit::dpi::PhysicalSize;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoopProxy};
use winit::keyboard::ModifiersState;
use winit::window::{Window, WindowId};

use crate::decode::{DecodedPicture, FrameSink};
use crate::{stats, ControllerEvent, InputSender, KeyboardMode, SessionStats};

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
    sender: InputSender,
    files: Option<crate::FileCommands>,
    clipboard: Option<crate::window_clipboard::WindowClipboard>,
    /// Live transfers for the title ("↑ report.pdf 37%"), from the last progress event.
    transfers: Option<String>,
    window: Option<Arc<Window>>,
    pixels: Option<Pixels<'static>>,
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
        Self {
            puppet,
            slot,
            input: WindowInput::new(keyboard),
            sender,
            files: None,
            clipboard: None,
            transfers: None,
            window: None,
            pixels: None,
            video_size: None,
            stats: None,
            keyboard_released: false,
            modifiers: ModifiersState::empty(),
            interrupted: false,
            exit_code: None,
            error: None,
        }
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
        while let Some(message) = self.input.poll_message() {
            match self.sender.try_send(&message) {
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
            self.update_picture();
        }
        self.render(event_loop);
    }

    fn render(&mut self, event_loop: &ActiveEventLoop) {
        if let Some(pixels) = &self.pixels {
            if let Err(error) = pixels.render() {
                self.fail(event_loop, format!("cannot draw the window: {error}"));
            }
        }
    }

    fn toggle_keyboard_release(&mut self) {
        self.keyboard_released = !self.keyboard_released;
        if self.keyboard_released {
            self.input.release_all(unix_micros_now());
            self.send_pending_input();
        }
        self.update_title();
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
        let attributes = Window::default_attributes()
            .with_title(stats::window_title(&self.puppet, None, None))
            .with_inner_size(initial_window_size(video_size));
        let window = match event_loop.create_window(attributes) {
            Ok(window) => Arc::new(window),
            Err(error) => return self.fail(event_loop, format!("cannot open a window: {error}")),
        };
        window.set_ime_allowed(true);
        let inner = window.inner_size();
        let (buffer_w, buffer_h) = video_size.unwrap_or((16, 9));
        let surface = SurfaceTexture::new(inner.width.max(1), inner.height.max(1), window.clone());
        let pixels = PixelsBuilder::new(buffer_w, buffer_h, surface)
            .clear_color(pixels::wgpu::Color::BLACK)
            .build();
        let mut pixels = match pixels {
            Ok(pixels) => pixels,
            Err(error) => {
                return self.fail(
                    event_loop,
                    format!("cannot draw into the window (no Vulkan driver? install mesa-vulkan-drivers): {error}"),
                )
            }
        };
        pixels.set_scaling_mode(ScalingMode::Fill);
        self.pixels = Some(pixels);
        self.video_size = video_size;
        self.window = Some(window);
        self.update_picture();
        // Show what is already waiting (the slot keeps it fresh until then).
        self.show_newest(event_loop);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: UserEvent) {
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
            UserEvent::Quit => {
                let now = unix_micros_now();
                self.input.release_all(now);
                self.send_pending_input();
                self.exit_code = Some(crate::EXIT_OK);
                event_loop.exit();
            }
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
        match &event {
            WindowEvent::CloseRequested => {
                self.input.release_all(now);
                self.send_pending_input();
                self.exit_code = Some(crate::EXIT_OK);
                event_loop.exit();
                return;
            }
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
