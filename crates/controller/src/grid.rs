//! The proctor's grid as a picture: one tile per room member, its newest picture scaled into
//! the tile, and a label with the member's name, state and the age of its last frame; a member
//! that is gone turns grey. Pure (pictures in, RGBA out), so the headless grid PNG and tests
//! share it with the window.

use std::time::{Duration, Instant};

use font8x8::UnicodeFonts;

/// A tile's picture area, in pixels (16:9).
pub const TILE_WIDTH: u32 = 320;
/// A tile's picture area, in pixels.
pub const TILE_HEIGHT: u32 = 180;
/// The label bar under each tile's picture.
pub const LABEL_HEIGHT: u32 = 16;
/// The most characters a label shows (8 pixels each, 4 of margin on each side).
const LABEL_CHARS: usize = ((TILE_WIDTH - 8) / 8) as usize;
/// Space between tiles and around the grid.
pub const GAP: u32 = 4;

const BACKGROUND: [u8; 4] = [24, 24, 28, 255];
const EMPTY_TILE: [u8; 4] = [48, 48, 56, 255];
const LABEL: [u8; 4] = [0, 0, 0, 255];
const TEXT: [u8; 4] = [235, 235, 235, 255];

/// Where a member stands, as the grid shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileState {
    /// Joined; no picture yet.
    Waiting,
    /// Pictures arrive.
    Live,
    /// The member's connection is quiet; it may come back.
    Reconnecting,
    /// The member left or was lost: the tile is grey.
    Lost,
}

impl TileState {
    fn word(self) -> &'static str {
        match self {
            TileState::Waiting => "waiting",
            TileState::Live => "live",
            TileState::Reconnecting => "reconnecting",
            TileState::Lost => "left",
        }
    }
}

/// One member's tile.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The member's name (from the network: shown, never interpreted).
    pub name: String,
    /// Where it stands.
    pub state: TileState,
    /// The newest picture, already scaled to fit the tile: width, height, RGBA.
    pub picture: Option<(u32, u32, Vec<u8>)>,
    /// When the newest picture arrived.
    pub last_frame: Option<Instant>,
}

impl Tile {
    /// A tile for a member that just joined.
    pub fn new(name: impl Into<String>) -> Tile {
        Tile {
            name: name.into(),
            state: TileState::Waiting,
            picture: None,
            last_frame: None,
        }
    }

    /// Takes a new picture (RGBA, `width`×`height`), scaling it down to fit the tile.
    pub fn set_picture(&mut self, width: u32, height: u32, rgba: &[u8], now: Instant) {
        self.picture = Some(fit_into_tile(width, height, rgba));
        self.last_frame = Some(now);
        if self.state == TileState::Waiting {
            self.state = TileState::Live;
        }
    }

    /// The label: name, state and how old the last frame is.
    pub fn label(&self, now: Instant) -> String {
        let name: String = self
            .name
            .chars()
            .filter(|c| !c.is_control())
            .take(24)
            .collect();
        let label = match self.last_frame {
            Some(at) => format!(
                "{name} - {} - {}",
                self.state.word(),
                age(now.saturating_duration_since(at))
            ),
            None => format!("{name} - {}", self.state.word()),
        };
        // As many 8-pixel glyphs as the bar holds.
        label.chars().take(LABEL_CHARS).collect()
    }
}

fn age(age: Duration) -> String {
    if age < Duration::from_secs(1) {
        format!("{} ms", age.as_millis())
    } else {
        format!("{} s", age.as_secs())
    }
}

/// Columns and rows for `tiles` tiles: as square as can be, wider than tall.
pub fn layout(tiles: usize) -> (u32, u32) {
    if tiles == 0 {
        return (1, 1);
    }
    let mut columns = 1;
    while columns * columns < tiles {
        columns += 1;
    }
    let rows = tiles.div_ceil(columns);
    (columns as u32, rows as u32)
}

/// Where tile `index` of `tiles` sits: its picture's top-left corner.
pub fn tile_origin(index: usize, tiles: usize) -> (u32, u32) {
    let (columns, _) = layout(tiles);
    let column = index as u32 % columns;
    let row = index as u32 / columns;
    (
        GAP + column * (TILE_WIDTH + GAP),
        GAP + row * (TILE_HEIGHT + LABEL_HEIGHT + GAP),
    )
}

/// The grid's size in pixels for `tiles` tiles.
pub fn grid_size(tiles: usize) -> (u32, u32) {
    let (columns, rows) = layout(tiles);
    (
        GAP + columns * (TILE_WIDTH + GAP),
        GAP + rows * (TILE_HEIGHT + LABEL_HEIGHT + GAP),
    )
}

/// Draws every tile into a new RGBA picture; returns its width, height and pixels.
pub fn render(tiles: &[Tile], now: Instant) -> (u32, u32, Vec<u8>) {
    let (width, height) = grid_size(tiles.len());
    let mut rgba = Vec::with_capacity((width * height * 4) as usize);
    for _ in 0..width * height {
        rgba.extend_from_slice(&BACKGROUND);
    }
    let mut canvas = Canvas {
        width,
        height,
        rgba: &mut rgba,
    };
    for (index, tile) in tiles.iter().enumerate() {
        let (x, y) = tile_origin(index, tiles.len());
        canvas.fill(x, y, TILE_WIDTH, TILE_HEIGHT, EMPTY_TILE);
        if let Some((w, h, pixels)) = &tile.picture {
            // Centred in the tile, aspect kept.
            let (ox, oy) = (x + (TILE_WIDTH - w) / 2, y + (TILE_HEIGHT - h) / 2);
            canvas.blit(ox, oy, *w, *h, pixels, tile.state == TileState::Lost);
        }
        canvas.fill(x, y + TILE_HEIGHT, TILE_WIDTH, LABEL_HEIGHT, LABEL);
        canvas.text(x + 4, y + TILE_HEIGHT + 4, &tile.label(now), TEXT);
    }
    (width, height, rgba)
}

/// Renders `text` alone as [`render`] draws labels, into a `width`×[`LABEL_HEIGHT`] bar: tests
/// compare a tile's label with it.
pub fn render_label(text: &str, width: u32) -> Vec<u8> {
    let mut rgba = Vec::with_capacity((width * LABEL_HEIGHT * 4) as usize);
    for _ in 0..width * LABEL_HEIGHT {
        rgba.extend_from_slice(&LABEL);
    }
    let mut canvas = Canvas {
        width,
        height: LABEL_HEIGHT,
        rgba: &mut rgba,
    };
    canvas.text(4, 4, text, TEXT);
    rgba
}

/// Scales an RGBA picture down (nearest neighbour: thumbnails, not photos) to fit the tile.
fn fit_into_tile(width: u32, height: u32, rgba: &[u8]) -> (u32, u32, Vec<u8>) {
    if width == 0 || height == 0 || rgba.len() < (width * height * 4) as usize {
        return (0, 0, Vec::new());
    }
    let (w, h) = rtcdesk_media::scale::fit_within(width, height, TILE_WIDTH, TILE_HEIGHT);
    let (w, h) = (w.clamp(1, TILE_WIDTH), h.clamp(1, TILE_HEIGHT));
    let mut out = Vec::with_capacity((w * h * 4) as usize);
    for ty in 0..h {
        let sy = (u64::from(ty) * u64::from(height) / u64::from(h)) as u32;
        let row = (sy * width * 4) as usize;
        for tx in 0..w {
            let sx = (u64::from(tx) * u64::from(width) / u64::from(w)) as u32;
            let at = row + (sx * 4) as usize;
            out.extend_from_slice(&rgba[at..at + 4]);
        }
    }
    (w, h, out)
}

struct Canvas<'a> {
    width: u32,
    height: u32,
    rgba: &'a mut Vec<u8>,
}

impl Canvas<'_> {
    fn put(&mut self, x: u32, y: u32, color: [u8; 4]) {
        if x < self.width && y < self.height {
            let at = ((y * self.width + x) * 4) as usize;
            self.rgba[at..at + 4].copy_from_slice(&color);
        }
    }

    fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, color: [u8; 4]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, color);
            }
        }
    }

    fn blit(&mut self, x: u32, y: u32, w: u32, h: u32, pixels: &[u8], grey: bool) {
        for yy in 0..h {
            for xx in 0..w {
                let at = ((yy * w + xx) * 4) as usize;
                let Some(p) = pixels.get(at..at + 4) else {
                    return;
                };
                let color = if grey {
                    let luma =
                        ((u32::from(p[0]) * 3 + u32::from(p[1]) * 6 + u32::from(p[2])) / 10) as u8;
                    let dim = luma / 2 + 40;
                    [dim, dim, dim, 255]
                } else {
                    [p[0], p[1], p[2], 255]
                };
                self.put(x + xx, y + yy, color);
            }
        }
    }

    /// 8×8 glyphs; characters the font lacks are drawn as `?`.
    fn text(&mut self, x: u32, y: u32, text: &str, color: [u8; 4]) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(c)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            let gx = x + i as u32 * 8;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.put(gx + col, y + row as u32, color);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, color: [u8; 4]) -> Vec<u8> {
        color.repeat((width * height) as usize)
    }

    fn pixel(rgba: &[u8], width: u32, x: u32, y: u32) -> [u8; 4] {
        let at = ((y * width + x) * 4) as usize;
        [rgba[at], rgba[at + 1], rgba[at + 2], rgba[at + 3]]
    }

    #[test]
    fn the_layout_is_as_square_as_can_be() {
        assert_eq!(layout(0), (1, 1));
        assert_eq!(layout(1), (1, 1));
        assert_eq!(layout(2), (2, 1));
        assert_eq!(layout(4), (2, 2));
        assert_eq!(layout(5), (3, 2));
        assert_eq!(layout(16), (4, 4));
        assert_eq!(layout(30), (6, 5));
    }

    #[test]
    fn each_tile_shows_its_picture_and_its_label_and_a_lost_one_is_grey() {
        let t0 = Instant::now();
        let mut red = Tile::new("alice");
        red.set_picture(640, 360, &solid(640, 360, [200, 0, 0, 255]), t0);
        let mut blue = Tile::new("bob");
        blue.set_picture(1280, 720, &solid(1280, 720, [0, 0, 200, 255]), t0);
        blue.state = TileState::Lost;
        let waiting = Tile::new("carol");
        let now = t0 + Duration::from_millis(1500);
        let tiles = vec![red, blue, waiting];
        let (width, height, rgba) = render(&tiles, now);
        assert_eq!((width, height), grid_size(3));
        let centre = |i: usize| {
            let (x, y) = tile_origin(i, 3);
            pixel(&rgba, width, x + TILE_WIDTH / 2, y + TILE_HEIGHT / 2)
        };
        assert_eq!(centre(0), [200, 0, 0, 255]);
        let grey = centre(1);
        assert!(grey[0] == grey[1] && grey[1] == grey[2], "{grey:?}");
        assert_eq!(centre(2), EMPTY_TILE);
        // Each label, pixel for pixel.
        for (i, tile) in tiles.iter().enumerate() {
            let (x, y) = tile_origin(i, 3);
            let expected = render_label(&tile.label(now), TILE_WIDTH);
            for ly in 0..LABEL_HEIGHT {
                for lx in 0..TILE_WIDTH {
                    assert_eq!(
                        pixel(&rgba, width, x + lx, y + TILE_HEIGHT + ly),
                        pixel(&expected, TILE_WIDTH, lx, ly),
                        "tile {i} label at {lx},{ly}"
                    );
                }
            }
        }
        assert_eq!(tiles[0].label(now), "alice - live - 1 s");
        assert_eq!(tiles[1].label(now), "bob - left - 1 s");
        assert_eq!(tiles[2].label(now), "carol - waiting");
    }

    #[test]
    fn hostile_names_and_pictures_cannot_break_the_grid() {
        let t0 = Instant::now();
        let mut tile =
            Tile::new("\u{1b}[31m\u{0}evil\nname that is far too long to fit in a tile label");
        // A picture shorter than its size claims is dropped, not read past its end.
        tile.set_picture(100, 100, &[1, 2, 3], t0);
        let label = tile.label(t0);
        assert!(!label.chars().any(char::is_control), "{label:?}");
        assert!(label.chars().count() < TILE_WIDTH as usize / 8, "{label:?}");
        let (_, _, rgba) = render(&[tile], t0);
        assert!(!rgba.is_empty());
    }
}
