//! Shared helpers for the tests that drive the real `puppet` binary.

#![allow(dead_code)]

use std::process::Child;
use std::time::Duration;

use rtcdesk_controller::{DecodedPicture, FrameSink};
use tokio::sync::mpsc;

/// How long a test waits for what the puppet should print or do.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The puppet process, killed when the test ends however it ends.
pub struct PuppetProcess(pub Child);

impl Drop for PuppetProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A controller sink that keeps no pictures.
pub struct NoPictures;

impl FrameSink for NoPictures {
    fn frame(&mut self, _picture: &DecodedPicture<'_>) {}
}

/// Waits (up to `deadline`) for the first stdout line of the puppet matching `want`.
pub async fn line_within(
    lines: &mut mpsc::UnboundedReceiver<String>,
    deadline: Duration,
    want: impl Fn(&str) -> bool,
) -> String {
    tokio::time::timeout(deadline, async {
        loop {
            match lines.recv().await {
                Some(line) if want(&line) => return line,
                Some(_) => {}
                None => panic!("the puppet's output ended"),
            }
        }
    })
    .await
    .expect("the line in time")
}

/// [`line_within`] [`DEADLINE`].
pub async fn line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    want: impl Fn(&str) -> bool,
) -> String {
    line_within(lines, DEADLINE, want).await
}
