//! Headless mode: decoded pictures saved as PNG files, for scripts and tests.
//!
//! [`png_sink`] gives a [`FrameSink`] for the decoder thread and a [`PngWriter`] that writes on
//! its own thread (PNG compression is slower than decoding), so decoding never waits on the disk
//! for long: at most [`QUEUE`] pictures wait.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::decode::{DecodedPicture, FrameSink};

/// Pictures converted but not yet written.
pub const QUEUE: usize = 4;

/// What to save.
#[derive(Debug, Clone)]
pub struct HeadlessOptions {
    /// How many pictures to save before finishing.
    pub frames: u32,
    /// Save every k-th decoded picture (1: every one).
    pub every: u32,
    /// The folder to write `frame-00001.png`, … into (created if missing).
    pub out: PathBuf,
    /// When the stream ends before `frames` were saved, also save the newest picture decoded
    /// if `every` skipped it: a script stopping after a time limit (`--seconds`) then always
    /// has the screen as it last was.
    pub keep_latest: bool,
}

/// What headless mode saw, for its summary line.
#[derive(Debug, Clone, Default)]
pub struct HeadlessSummary {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Pictures decoded (saved or not).
    pub decoded: u64,
    /// Stamp glass-to-glass ages of the saved pictures that carried one.
    pub stamp_ages: Vec<Duration>,
    /// Size of the last picture.
    pub size: (u32, u32),
}

struct Picture {
    index: u64,
    width: u32,
    height: u32,
    rgba: Vec<u8>,
    stamp_age: Option<Duration>,
}

/// The decoder-thread half: converts chosen pictures to RGBA and queues them for writing.
pub struct PngSink {
    options: HeadlessOptions,
    queued: u32,
    decoded: u64,
    pictures: Option<std_mpsc::SyncSender<Picture>>,
    spare: std_mpsc::Receiver<Vec<u8>>,
    /// The newest picture `every` skipped, kept for [`HeadlessOptions::keep_latest`].
    latest: Option<Picture>,
}

/// The writer thread; [`PngWriter::done`] resolves when all pictures are written (or failed).
pub struct PngWriter {
    join: Option<JoinHandle<std::io::Result<HeadlessSummary>>>,
    done: Option<oneshot::Receiver<()>>,
}

/// A sink saving `options.frames` pictures into `options.out`, and its writer.
pub fn png_sink(options: HeadlessOptions) -> std::io::Result<(PngSink, PngWriter)> {
    std::fs::create_dir_all(&options.out)?;
    let (picture_tx, picture_rx) = std_mpsc::sync_channel::<Picture>(QUEUE);
    let (spare_tx, spare_rx) = std_mpsc::channel::<Vec<u8>>();
    let (done_tx, done_rx) = oneshot::channel();
    let out = options.out.clone();
    let join = std::thread::Builder::new()
        .name("rtcdesk-png".into())
        .spawn(move || {
            let mut summary = HeadlessSummary::default();
            let result = (|| {
                for picture in picture_rx {
                    let path = out.join(format!("frame-{:05}.png", picture.index));
                    write_png(&path, picture.width, picture.height, &picture.rgba)?;
                    summary.files.push(path);
                    summary.size = (picture.width, picture.height);
                    summary.stamp_ages.extend(picture.stamp_age);
                    let _ = spare_tx.send(picture.rgba);
                }
                Ok(())
            })();
            let _ = done_tx.send(());
            result.map(|()| summary)
        })?;
    let sink = PngSink {
        options,
        queued: 0,
        decoded: 0,
        pictures: Some(picture_tx),
        spare: spare_rx,
        latest: None,
    };
    Ok((
        sink,
        PngWriter {
            join: Some(join),
            done: Some(done_rx),
        },
    ))
}

impl FrameSink for PngSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        self.decoded += 1;
        let Some(pictures) = self.pictures.as_ref() else {
            return;
        };
        let chosen = picture
            .index
            .is_multiple_of(u64::from(self.options.every.max(1)));
        if !chosen && !self.options.keep_latest {
            return;
        }
        let mut rgba = match self.latest.take() {
            Some(latest) => latest.rgba,
            None => self.spare.try_recv().unwrap_or_default(),
        };
        picture.to_rgba(&mut rgba);
        let stamp_age = picture
            .stamp()
            .map(|stamp| stamp.age_at(rtcdesk_media::frame::unix_micros_now()));
        let copy = Picture {
            index: picture.index,
            width: picture.width(),
            height: picture.height(),
            rgba,
            stamp_age,
        };
        if !chosen {
            self.latest = Some(copy);
            return;
        }
        let sent = pictures.send(copy);
        self.queued += 1;
        if sent.is_err() || self.queued >= self.options.frames {
            // Closing the queue lets the writer finish.
            self.pictures = None;
        }
    }

    fn ended(&mut self) {
        if let (Some(pictures), Some(latest)) = (self.pictures.take(), self.latest.take()) {
            let _ = pictures.send(latest);
        }
    }
}

impl PngWriter {
    /// Resolves once every picture asked for is written, or the stream ended first.
    pub async fn done(&mut self) {
        // Cancel-safe: the receiver stays until it has resolved.
        if let Some(done) = self.done.as_mut() {
            let _ = done.await;
            self.done = None;
        }
    }

    /// Waits for the writer thread and returns what it wrote.
    pub fn finish(mut self) -> std::io::Result<HeadlessSummary> {
        match self.join.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the PNG writer panicked")),
            None => Ok(HeadlessSummary::default()),
        }
    }
}

/// Writes tightly packed RGBA as an 8-bit RGBA PNG.
pub fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> std::io::Result<()> {
    let file = BufWriter::new(File::create(path)?);
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    writer
        .write_image_data(rgba)
        .map_err(std::io::Error::other)?;
    writer.finish().map_err(std::io::Error::other)
}
