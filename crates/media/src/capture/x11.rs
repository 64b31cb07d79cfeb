//! X11 screen capture through scrap (MIT-SHM), with our own change detection: scrap returns a
//! fresh copy on every call and never says "unchanged".

use std::ffi::CString;
use std::rc::Rc;
use std::time::{Duration, Instant};

use scrap::x11::{Capturer, Display, Server};

use super::{changed_region, Capture};
use crate::error::{Error, Result};
use crate::frame::{unix_micros_now, Frame};

/// How often the screen size is checked (one RandR round trip) to follow resolution changes.
const SIZE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

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
        Ok(X11Capture {
            server,
            capturer,
            width,
            height,
            previous: Vec::new(),
            has_previous: false,
            frame_number: 0,
            last_size_check: Instant::now(),
        })
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
            match changed_region(&self.previous, pixels, width, height, stride) {
                None => return Ok(false),
                Some(rect) => Some(rect),
            }
        } else {
            None
        };
        self.previous.clear();
        self.previous.extend_from_slice(pixels);
        self.has_previous = true;
        self.frame_number += 1;
        frame.width = width;
        frame.height = height;
        frame.stride = stride;
        frame.data.clear();
        frame.data.extend_from_slice(&self.previous);
        frame.number = self.frame_number;
        frame.captured_at = captured_at;
        frame.captured_unix_micros = captured_unix_micros;
        frame.changed = changed;
        Ok(true)
    }
}
