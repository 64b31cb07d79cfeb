//! X11 screen capture through scrap (MIT-SHM), with our own change detection: scrap returns a
//! fresh copy on every call and never says "unchanged". The X DAMAGE extension, watched on a
//! connection of our own, says when the screen changed, so a still screen is not grabbed; on a
//! server without it the screen is polled.

use std::ffi::CString;
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scrap::x11::{Capturer, Display, Server};
use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::{ConnectError, ConnectionError, ReplyOrIdError};
use x11rb::protocol::damage::{self, ConnectionExt as _, ReportLevel};
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, Window,
    WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, NONE};

use super::{changed_region, Capture};
use crate::error::{Error, Result};
use crate::frame::{unix_micros_now, Frame, Rect};

/// How often the screen size is checked (one RandR round trip) to follow resolution changes.
const SIZE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Grabs in a row, not preceded by a damage notice, that found the screen changed, after which
/// DAMAGE is taken as unreliable on this server (some drivers' page flips report none) and the
/// screen is polled. One could be a change whose notice was still on its way.
const MISSES_BEFORE_POLLING: u32 = 2;

/// Captures the primary monitor of an X display. Not `Send` (scrap's capturer is not): open it
/// on the thread that grabs, e.g. inside [`super::CaptureThread::spawn`].
pub struct X11Capture {
    server: Rc<Server>,
    capturer: Capturer,
    width: u32,
    height: u32,
    previous: Vec<u8>,
    has_previous: bool,
    frame_number: u64,
    last_size_check: Instant,
    changes: ChangeSignal,
}

impl X11Capture {
    /// Opens the display named `display` (such as `":1"`), or the one in `DISPLAY` when `None`.
    pub fn open(display: Option<&str>) -> Result<X11Capture> {
        let unavailable = || Error::DisplayUnavailable {
            display: display.map(str::to_string),
        };
        let server = match display {
            Some(name) => {
                let name = CString::new(name).map_err(|_| unavailable())?;
                // scrap passes the name straight to xcb_connect, which copies it.
                Server::connect(name.as_ptr())
            }
            None => Server::default(),
        }
        .map_err(|_| unavailable())?;
        let server = Rc::new(server);
        let monitor = primary_monitor(&server)?;
        let (width, height) = monitor_size(&monitor);
        let capturer = Capturer::new(monitor).map_err(|e| Error::Capture(e.to_string()))?;
        let damage = match DamageWatch::start(display) {
            Ok(Some(watch)) => Some(watch),
            Ok(None) => {
                tracing::info!("the X server has no DAMAGE extension; polling the screen");
                None
            }
            Err(error) => {
                tracing::info!(%error, "cannot watch X DAMAGE events; polling the screen");
                None
            }
        };
        Ok(X11Capture {
            server,
            capturer,
            width,
            height,
            previous: Vec::new(),
            has_previous: false,
            frame_number: 0,
            last_size_check: Instant::now(),
            changes: ChangeSignal {
                damage,
                signalled: false,
                misses: 0,
            },
        })
    }

    /// Whether the screen's changes are signalled (X DAMAGE) rather than found by polling.
    pub fn signals_changes(&self) -> bool {
        self.changes.damage.is_some()
    }

    /// Re-reads the monitor size and makes a new capturer when it changed.
    fn follow_size_change(&mut self) -> Result<()> {
        let monitor = primary_monitor(&self.server)?;
        let size = monitor_size(&monitor);
        if size != (self.width, self.height) && size.0 > 0 && size.1 > 0 {
            self.capturer = Capturer::new(monitor).map_err(|e| Error::Capture(e.to_string()))?;
            (self.width, self.height) = size;
            self.has_previous = false;
        }
        Ok(())
    }
}

fn primary_monitor(server: &Rc<Server>) -> Result<Display> {
    let mut displays = Server::displays(server.clone());
    let first = displays
        .next()
        .ok_or_else(|| Error::Capture("the X server reports no monitor".into()))?;
    if first.is_default() {
        return Ok(first);
    }
    Ok(displays.find(Display::is_default).unwrap_or(first))
}

/// Copies the BGRX pixels of `rect` from `source` into `target`, both `stride` bytes a row.
fn copy_rect(target: &mut [u8], source: &[u8], rect: Rect, stride: usize) {
    let (x, width) = (rect.x as usize * 4, rect.width as usize * 4);
    for y in rect.y as usize..(rect.y + rect.height) as usize {
        let row = y * stride + x..y * stride + x + width;
        target[row.clone()].copy_from_slice(&source[row]);
    }
}

fn monitor_size(display: &Display) -> (u32, u32) {
    let rect = display.rect();
    (rect.w as u32, rect.h as u32)
}

impl Capture for X11Capture {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn grab(&mut self, frame: &mut Frame) -> Result<bool> {
        if self.last_size_check.elapsed() >= SIZE_CHECK_INTERVAL {
            self.last_size_check = Instant::now();
            self.follow_size_change()?;
        }
        let (width, height) = (self.width, self.height);
        let stride = width as usize * 4;
        let captured_at = Instant::now();
        let captured_unix_micros = unix_micros_now();
        let pixels = self.capturer.frame();
        if pixels.len() < stride * height as usize {
            return Err(Error::Capture("short frame from the X server".into()));
        }
        let pixels = &pixels[..stride * height as usize];
        let changed = if self.has_previous {
            let found = changed_region(&self.previous, pixels, width, height, stride);
            self.changes.grabbed(found.is_some());
            let Some(rect) = found else {
                return Ok(false);
            };
            // Outside `rect` the two are equal already: copying the rest is wasted time.
            copy_rect(&mut self.previous, pixels, rect, stride);
            Some(rect)
        } else {
            self.changes.signalled = false;
            self.previous.clear();
            self.previous.extend_from_slice(pixels);
            self.has_previous = true;
            None
        };
        self.frame_number += 1;
        frame.width = width;
        frame.height = height;
        frame.stride = stride;
        frame.data.clear();
        frame.data.extend_from_slice(pixels);
        frame.number = self.frame_number;
        frame.captured_at = captured_at;
        frame.captured_unix_micros = captured_unix_micros;
        frame.changed = changed;
        Ok(true)
    }

    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool> {
        Ok(self.changes.wait(timeout))
    }
}

/// Says when the screen changed: from DAMAGE while the server has it and it proves reliable,
/// otherwise "maybe" at every poll.
struct ChangeSignal {
    /// `None` when the server lacks DAMAGE, lost it or missed changes: then we poll.
    damage: Option<DamageWatch>,
    /// Whether DAMAGE signalled a change since the last grab.
    signalled: bool,
    /// Unsignalled grabs in a row that found a change.
    misses: u32,
}

impl ChangeSignal {
    /// Waits up to `timeout` for a change; returns whether a grab is worth doing.
    fn wait(&mut self, timeout: Duration) -> bool {
        let Some(watch) = &self.damage else {
            std::thread::sleep(timeout);
            return true;
        };
        match watch.wait(timeout) {
            Ok(changed) => {
                self.signalled |= changed;
                changed
            }
            Err(error) => {
                tracing::warn!(%error, "lost X DAMAGE events; polling the screen");
                self.damage = None;
                true
            }
        }
    }

    /// Notes what a grab found: a change DAMAGE did not signal is a miss, and after a few misses
    /// in a row the screen is polled.
    fn grabbed(&mut self, changed: bool) {
        let signalled = std::mem::take(&mut self.signalled);
        if self.damage.is_none() || signalled {
            return;
        }
        if !changed {
            self.misses = 0;
            return;
        }
        self.misses += 1;
        if self.misses >= MISSES_BEFORE_POLLING {
            tracing::info!("X DAMAGE missed screen changes; polling the screen");
            self.damage = None;
        }
    }
}

/// What the DAMAGE watcher thread reports.
enum Notice {
    /// The screen changed since the damage was last subtracted.
    Damaged,
    /// The watch connection failed; no more notices will come.
    Lost(ConnectionError),
}

/// Why DAMAGE cannot be watched (any more); the capture then polls, so this is only logged.
#[derive(Debug, thiserror::Error)]
enum DamageError {
    #[error("cannot connect to the X server: {0}")]
    Connect(#[from] ConnectError),
    #[error("X request failed: {0}")]
    Request(#[from] ReplyOrIdError),
    #[error("the X connection failed: {0}")]
    Lost(#[from] ConnectionError),
    #[error("the X server reports no screen")]
    NoScreen,
    #[error("cannot start the damage thread: {0}")]
    Thread(std::io::Error),
    #[error("the damage thread ended")]
    ThreadEnded,
}

/// Watches DAMAGE on the root window from a connection of our own (scrap's is not reachable).
///
/// A thread blocks on the connection's events and passes damage notices on; with the
/// `NonEmpty` report level the server sends one notice when the screen goes from undamaged to
/// damaged, and [`DamageWatch::wait`] subtracts the damage before the grab, so a change made
/// during or after that grab is reported again. Dropping the watch ends the thread by sending
/// its connection an event (a blocked `wait_for_event` has no other way out).
struct DamageWatch {
    connection: Arc<RustConnection>,
    damage: damage::Damage,
    wake_window: Window,
    notices: mpsc::Receiver<Notice>,
}

impl DamageWatch {
    /// Starts watching display `display` (`None`: `DISPLAY`). `Ok(None)` when the server has no
    /// DAMAGE extension.
    fn start(display: Option<&str>) -> Result<Option<DamageWatch>, DamageError> {
        let (connection, screen) = RustConnection::connect(display)?;
        if connection
            .extension_information(damage::X11_EXTENSION_NAME)?
            .is_none()
        {
            return Ok(None);
        }
        // The protocol asks for the version to be agreed before any other DAMAGE request.
        connection
            .damage_query_version(1, 1)?
            .reply()
            .map_err(ReplyOrIdError::from)?;
        let root = connection
            .setup()
            .roots
            .get(screen)
            .ok_or(DamageError::NoScreen)?
            .root;
        let damage = connection.generate_id()?;
        connection
            .damage_create(damage, root, ReportLevel::NON_EMPTY)?
            .check()
            .map_err(ReplyOrIdError::from)?;
        // An unmapped window of ours: events sent to it with an empty mask come back to us.
        let wake_window = connection.generate_id()?;
        connection
            .create_window(
                COPY_DEPTH_FROM_PARENT,
                wake_window,
                root,
                0,
                0,
                1,
                1,
                0,
                WindowClass::INPUT_ONLY,
                COPY_FROM_PARENT,
                &CreateWindowAux::new(),
            )?
            .check()
            .map_err(ReplyOrIdError::from)?;
        let connection = Arc::new(connection);
        // One notice pending is enough: more damage before the subtract is the same change.
        let (notify, notices) = mpsc::sync_channel(1);
        let watched = connection.clone();
        std::thread::Builder::new()
            .name("capture-damage".into())
            .spawn(move || watch(&watched, wake_window, &notify))
            .map_err(DamageError::Thread)?;
        Ok(Some(DamageWatch {
            connection,
            damage,
            wake_window,
            notices,
        }))
    }

    /// Waits up to `timeout` for damage; on damage, subtracts it so the next change is reported
    /// again, and returns `true`. An `Err` means no notices will come any more.
    fn wait(&self, timeout: Duration) -> Result<bool, DamageError> {
        match self.notices.recv_timeout(timeout) {
            Ok(Notice::Damaged) => {
                self.connection.damage_subtract(self.damage, NONE, NONE)?;
                self.connection.flush()?;
                Ok(true)
            }
            Ok(Notice::Lost(error)) => Err(error.into()),
            Err(RecvTimeoutError::Disconnected) => Err(DamageError::ThreadEnded),
            Err(RecvTimeoutError::Timeout) => Ok(false),
        }
    }
}

impl Drop for DamageWatch {
    fn drop(&mut self) {
        let wake = ClientMessageEvent::new(32, self.wake_window, AtomEnum::NONE, [0u32; 5]);
        // If this fails the connection is broken, and the thread has ended on that already.
        let _ = self
            .connection
            .send_event(false, self.wake_window, EventMask::NO_EVENT, wake);
        let _ = self.connection.flush();
    }
}

/// The damage thread: passes damage notices on until woken by `wake_window`, the receiver is
/// gone, or the connection fails.
fn watch(connection: &RustConnection, wake_window: Window, notify: &SyncSender<Notice>) {
    loop {
        match connection.wait_for_event() {
            Ok(Event::DamageNotify(_)) => match notify.try_send(Notice::Damaged) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            },
            Ok(Event::ClientMessage(message)) if message.window == wake_window => return,
            Ok(Event::Error(error)) => {
                tracing::debug!(?error, "X error on the damage connection");
            }
            Ok(_) => {}
            Err(error) => {
                // Blocks only while a notice is pending, which the capture takes at its next wait.
                let _ = notify.send(Notice::Lost(error));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rect_copies_that_rectangle_only() {
        let (width, height, stride) = (8, 6, 8 * 4);
        let source: Vec<u8> = (0..stride * height).map(|i| i as u8 | 1).collect();
        let mut target = vec![0u8; stride * height];
        let rect = Rect {
            x: 2,
            y: 1,
            width: 3,
            height: 4,
        };
        copy_rect(&mut target, &source, rect, stride);
        for y in 0..height {
            for x in 0..width {
                let inside = (2..5).contains(&x) && (1..5).contains(&y);
                let pixel = y * stride + x * 4..y * stride + x * 4 + 4;
                let expected = if inside {
                    &source[pixel.clone()]
                } else {
                    &[0; 4][..]
                };
                assert_eq!(&target[pixel], expected, "({x}, {y})");
            }
        }
    }
}
