//! Reading a real window off a private Xvfb and comparing it with what egui's kittest harness
//! draws of the same screen: where to click comes from the harness (same fonts, same layout),
//! and the harness's picture is what the window must show there before a test clicks. For the
//! window tests of both programs (feature `screen`); `import` and `xdotool` do the looking and
//! the clicking, as a person would.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;

use crate::Xvfb;

/// How long a window may take to show what is waited for.
pub const SHOWN_WITHIN: Duration = Duration::from_secs(10);

/// The harness's frame adds this margin around the ui it is given.
pub const HARNESS_MARGIN: f32 = 8.0;

/// An RGB picture: the window's screenshot or the harness's render.
pub struct Rgb {
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    data: Vec<[u8; 3]>,
}

impl Rgb {
    /// The pixels, row by row.
    pub fn pixels(&self) -> &[[u8; 3]] {
        &self.data
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        self.data[(y * self.width + x) as usize]
    }
}

/// A screenshot of one window (`import`), as RGB.
pub fn screenshot(xvfb: &Xvfb, window: &str, path: &Path) -> Option<Rgb> {
    let status = xvfb
        .command("import")
        .args(["-window", window])
        .arg(format!("png24:{}", path.display()))
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let mut reader = decoder.read_info().ok()?;
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buffer).ok()?;
    let channels = info.color_type.samples();
    let mut data = Vec::with_capacity((info.width * info.height) as usize);
    for y in 0..info.height as usize {
        for x in 0..info.width as usize {
            let p = &buffer[y * info.line_size + x * channels..][..3];
            data.push([p[0], p[1], p[2]]);
        }
    }
    Some(Rgb {
        width: info.width,
        height: info.height,
        data,
    })
}

/// A harness whose ui is `width` × `height` points, like a window of that size (the
/// harness's frame adds [`HARNESS_MARGIN`] around it).
pub fn harness_of_size<S>(
    width: u32,
    height: u32,
    state: S,
    mut ui: impl FnMut(&mut egui::Ui, &mut S) + 'static,
) -> Harness<'static, S> {
    let size = egui::vec2(
        width as f32 + 2.0 * HARNESS_MARGIN,
        height as f32 + 2.0 * HARNESS_MARGIN,
    );
    let mut harness = Harness::builder()
        .with_size(size)
        .wgpu()
        .build_ui_state(move |u, s: &mut S| ui(u, s), state);
    // A fixed number of passes, enough for the layout to settle: a screen with a countdown
    // asks for frames without end.
    harness.run_steps(3);
    harness
}

/// Where a pointer at `at` in the window is in the harness.
pub fn in_harness(at: egui::Pos2) -> egui::Pos2 {
    at + egui::vec2(HARNESS_MARGIN, HARNESS_MARGIN)
}

/// The widget labelled `label`, in window coordinates.
pub fn rect_of<S>(harness: &Harness<'_, S>, label: &str) -> egui::Rect {
    window_rect(harness.get_by_label(label).rect())
}

/// A harness rectangle in window coordinates.
pub fn window_rect(rect: egui::Rect) -> egui::Rect {
    rect.translate(-egui::vec2(HARNESS_MARGIN, HARNESS_MARGIN))
}

/// What the harness draws, cut to the window's `width` × `height`.
pub fn render<S>(harness: &mut Harness<'_, S>, width: u32, height: u32) -> Rgb {
    let image = harness.render().expect("the screen renders on wgpu");
    let m = HARNESS_MARGIN as u32;
    let mut data = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            let p = image.get_pixel(x + m, y + m).0;
            data.push([p[0], p[1], p[2]]);
        }
    }
    Rgb {
        width,
        height,
        data,
    }
}

/// Mean absolute difference per channel of the two pictures inside `rect`.
pub fn difference(a: &Rgb, b: &Rgb, rect: egui::Rect) -> f64 {
    let (x0, y0) = (rect.min.x.max(0.0) as u32, rect.min.y.max(0.0) as u32);
    let x1 = (rect.max.x as u32).min(a.width).min(b.width);
    let y1 = (rect.max.y as u32).min(a.height).min(b.height);
    let mut sum = 0u64;
    let mut count = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            let (p, q) = (a.at(x, y), b.at(x, y));
            for c in 0..3 {
                sum += u64::from(p[c].abs_diff(q[c]));
            }
            count += 3;
        }
    }
    sum as f64 / count.max(1) as f64
}

/// Where the window tests keep their screenshots: `target/ui-screenshots/` (a test binary
/// runs from `target/<profile>/deps/`), beside the ui crate's own.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(std::env::temp_dir);
    let dir = target.join("ui-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Waits until the window shows, inside `rect`, what the harness drew there (an external
/// program's window: no event says it was drawn, so the screen is read until it does). The
/// last screenshot is kept as `name.png` in [`screenshot_dir`].
pub async fn wait_until_shown(xvfb: &Xvfb, window: &str, want: &Rgb, rect: egui::Rect, name: &str) {
    let path = screenshot_dir().join(format!("{name}.png"));
    let path = path.as_path();
    let mut last = f64::MAX;
    let shown = tokio::time::timeout(SHOWN_WITHIN, async {
        loop {
            if let Some(shot) = screenshot(xvfb, window, path) {
                last = difference(&shot, want, rect);
                if last < 10.0 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        shown.is_ok(),
        "{name}: the window does not show the overlay at {rect:?} (mean difference {last:.1})"
    );
}

pub fn xdotool(xvfb: &Xvfb, args: &[&str]) {
    let status = xvfb
        .command("xdotool")
        .args(args)
        .status()
        .expect("xdotool runs");
    assert!(status.success(), "xdotool {args:?}");
}

pub fn click(xvfb: &Xvfb, window: &str, at: egui::Pos2) {
    let (x, y) = (at.x.round().to_string(), at.y.round().to_string());
    xdotool(xvfb, &["mousemove", "--window", window, &x, &y]);
    xdotool(xvfb, &["click", "1"]);
}

/// Waits until `xvfb` answers a client (`xdpyinfo`): a program started right after the server
/// (the connect window opens at once) must not race the server's start on a loaded machine.
pub async fn wait_answering(xvfb: &Xvfb) {
    let answered = tokio::time::timeout(SHOWN_WITHIN, async {
        loop {
            let status = xvfb
                .command("xdpyinfo")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(answered.is_ok(), "Xvfb {} does not answer", xvfb.display());
}

/// The first visible window whose title contains `title`.
pub fn find_window(xvfb: &Xvfb, title: &str) -> Option<String> {
    let output = xvfb
        .command("xdotool")
        .args(["search", "--onlyvisible", "--name", title])
        .output()
        .ok()?;
    String::from_utf8(output.stdout)
        .ok()?
        .lines()
        .next()
        .map(str::to_owned)
}

/// Waits for a visible window whose title contains `title` and gives its id.
pub async fn wait_for_window(xvfb: &Xvfb, title: &str) -> String {
    tokio::time::timeout(SHOWN_WITHIN, async {
        loop {
            if let Some(window) = find_window(xvfb, title) {
                return window;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no window titled {title:?} shows"))
}
