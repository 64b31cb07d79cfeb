//! egui drawn over a `pixels` frame, on pixels' own wgpu device and queue.
//!
//! pixels owns the surface and scales the picture into it; this layer takes the window's
//! events (so egui sees the pointer and keys), runs one egui pass per frame and renders its
//! triangles in a second render pass onto the same surface texture, inside
//! `Pixels::render_with`. One device, one present, no second swapchain.

use std::time::Duration;

use egui_wgpu::{Renderer, RendererOptions, ScreenDescriptor};
use pixels::{wgpu, Pixels, PixelsContext};
use winit::event::WindowEvent;
use winit::window::Window;

pub use egui_winit::EventResponse;

/// The egui state beside a `Pixels`.
pub struct EguiLayer {
    ctx: egui::Context,
    state: egui_winit::State,
    renderer: Renderer,
    screen: ScreenDescriptor,
    paint_jobs: Vec<egui::ClippedPrimitive>,
    textures: egui::TexturesDelta,
    wants_pointer: bool,
    wants_keyboard: bool,
}

/// What one egui pass asked of the loop.
#[derive(Debug, Clone, Copy)]
pub struct PassOutput {
    /// When egui wants its next frame (`Duration::MAX`: only on input).
    pub repaint_after: Duration,
}

impl EguiLayer {
    /// A layer for `window`, drawing with `pixels`' device in its surface's format.
    pub fn new(window: &Window, pixels: &Pixels<'_>) -> Self {
        let ctx = egui::Context::default();
        let max_texture_side = pixels.device().limits().max_texture_dimension_2d as usize;
        let state = egui_winit::State::new(
            ctx.clone(),
            egui::ViewportId::ROOT,
            window,
            Some(window.scale_factor() as f32),
            None,
            Some(max_texture_side),
        );
        let renderer = Renderer::new(
            pixels.device(),
            pixels.render_texture_format(),
            RendererOptions::default(),
        );
        let size = window.inner_size();
        Self {
            ctx,
            state,
            renderer,
            screen: ScreenDescriptor {
                size_in_pixels: [size.width.max(1), size.height.max(1)],
                pixels_per_point: window.scale_factor() as f32,
            },
            paint_jobs: Vec::new(),
            textures: egui::TexturesDelta::default(),
            wants_pointer: false,
            wants_keyboard: false,
        }
    }

    /// The egui context (for styles and repaint requests from other threads).
    pub fn context(&self) -> &egui::Context {
        &self.ctx
    }

    /// Feeds a window event to egui; says whether egui used it (then it is not input for the
    /// picture underneath) and whether egui needs a new frame for it.
    pub fn handle_event(
        &mut self,
        window: &Window,
        event: &WindowEvent,
    ) -> egui_winit::EventResponse {
        match event {
            WindowEvent::Resized(size) if size.width > 0 && size.height > 0 => {
                self.screen.size_in_pixels = [size.width, size.height];
            }
            WindowEvent::ScaleFactorChanged { scale_factor, .. } => {
                self.screen.pixels_per_point = *scale_factor as f32;
            }
            _ => {}
        }
        self.state.on_window_event(window, event)
    }

    /// Whether egui was using the pointer or keyboard in its last pass (a widget under the
    /// pointer, a focused text field): input then stays local.
    pub fn wants_input(&self) -> (bool, bool) {
        (self.wants_pointer, self.wants_keyboard)
    }

    /// Drops the input gathered since the last pass, for a window that runs no pass while it
    /// draws nothing over its picture: without it, every pointer move over a bare picture
    /// would wait in egui's queue for the next pass, without bound.
    pub fn discard_input(&mut self, window: &Window) {
        drop(self.state.take_egui_input(window));
        self.wants_pointer = false;
        self.wants_keyboard = false;
    }

    /// Runs one egui pass with `ui` and keeps its output for [`EguiLayer::render`].
    pub fn run(&mut self, window: &Window, ui: impl FnMut(&mut egui::Ui)) -> PassOutput {
        let input = self.state.take_egui_input(window);
        let output = self.ctx.run_ui(input, ui);
        self.state
            .handle_platform_output(window, output.platform_output);
        self.wants_pointer = self.ctx.egui_wants_pointer_input();
        self.wants_keyboard = self.ctx.egui_wants_keyboard_input();
        self.textures.append(output.textures_delta);
        self.paint_jobs = self.ctx.tessellate(output.shapes, output.pixels_per_point);
        self.screen.pixels_per_point = output.pixels_per_point;
        let repaint_after = output
            .viewport_output
            .get(&egui::ViewportId::ROOT)
            .map_or(Duration::MAX, |v| v.repaint_delay);
        PassOutput { repaint_after }
    }

    /// Renders the last pass over what pixels drew; call inside `Pixels::render_with` after
    /// `context.scaling_renderer.render(..)`.
    pub fn render(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        context: &PixelsContext<'_>,
    ) {
        for (id, delta) in &self.textures.set {
            self.renderer
                .update_texture(&context.device, &context.queue, *id, delta);
        }
        let extra = self.renderer.update_buffers(
            &context.device,
            &context.queue,
            encoder,
            &self.paint_jobs,
            &self.screen,
        );
        if !extra.is_empty() {
            context.queue.submit(extra);
        }
        {
            let pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("egui"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: target,
                    resolve_target: None,
                    depth_slice: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Load,
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            let mut pass = pass.forget_lifetime();
            self.renderer
                .render(&mut pass, &self.paint_jobs, &self.screen);
        }
        for id in std::mem::take(&mut self.textures).free {
            self.renderer.free_texture(&id);
        }
    }
}
