//! The `pixels` surface both programs' windows draw on, set up the one way egui needs.
//!
//! No sRGB conversion anywhere: a picture's bytes are copied as they are (a unorm texture
//! sampled into a unorm target, the same identity as sRGB both ways), and egui, which blends in
//! gamma space, draws its true colours (on an sRGB target they wash out).

use std::sync::Arc;

use pixels::{wgpu, Pixels, PixelsBuilder, SurfaceTexture};
use winit::window::Window;

/// A `pixels` of `buffer` (width, height) pixels on `window`, with the formats egui's layer
/// expects; black where the picture does not cover the window.
pub fn window_pixels(window: Arc<Window>, buffer: (u32, u32)) -> Result<Pixels<'static>, String> {
    let inner = window.inner_size();
    let surface = SurfaceTexture::new(inner.width.max(1), inner.height.max(1), window);
    PixelsBuilder::new(buffer.0.max(1), buffer.1.max(1), surface)
        .clear_color(wgpu::Color::BLACK)
        .texture_format(wgpu::TextureFormat::Rgba8Unorm)
        .render_texture_format(wgpu::TextureFormat::Bgra8Unorm)
        .surface_texture_format(wgpu::TextureFormat::Bgra8Unorm)
        .build()
        .map_err(|error| {
            format!(
                "cannot draw into the window (no Vulkan driver? install mesa-vulkan-drivers): {error}"
            )
        })
}
