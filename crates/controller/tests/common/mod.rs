//! Shared helpers for the end-to-end tests: an in-process puppet on loopback, a controller
//! config for it, a sink that hands decoded pictures to the test, and reference pictures.

#![allow(dead_code)]

#[allow(unused_imports)]
pub use rtcdesk_xvfb::screen;

use std::time::Duration;

use rtcdesk_controller::{
    Controller, ControllerConfig, ControllerEvent, DecodedPicture, FrameSink,
};
use rtcdesk_media::convert::to_i420;
use rtcdesk_media::stamp::draw_stamp;
use rtcdesk_media::{Capture, Frame, I420View, Stamp, SyntheticDesktop, I420};
use rtcdesk_puppet::{Puppet, PuppetConfig, PuppetEvent, Source};
use tokio::sync::mpsc;

/// Test desktop size: small, so the suite stays quick on 2 cores.
pub const WIDTH: u32 = 640;
/// Test desktop height.
pub const HEIGHT: u32 = 360;
/// Protocol deadline for anything the tests wait on.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A decoded picture, copied out of dav1d's buffers.
#[derive(Debug, Clone)]
pub struct Picture {
    pub image: I420,
    pub stamp: Option<Stamp>,
}

/// Copies each decoded picture into a channel.
pub struct ChannelSink(pub mpsc::UnboundedSender<Picture>);

impl FrameSink for ChannelSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        let _ = self.0.send(Picture {
            image: owned(picture.view),
            stamp: picture.stamp(),
        });
    }
}

/// A sink and the receiving end of its channel.
pub fn channel_sink() -> (Box<dyn FrameSink>, mpsc::UnboundedReceiver<Picture>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Box::new(ChannelSink(tx)), rx)
}

/// An owned copy of a picture.
pub fn owned(view: I420View<'_>) -> I420 {
    let mut image = I420::new(view.width, view.height);
    let (w, h) = (view.width as usize, view.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for row in 0..h {
        image.y[row * w..][..w].copy_from_slice(&view.y[row * view.y_stride..][..w]);
    }
    for row in 0..ch {
        image.u[row * cw..][..cw].copy_from_slice(&view.u[row * view.uv_stride..][..cw]);
        image.v[row * cw..][..cw].copy_from_slice(&view.v[row * view.uv_stride..][..cw]);
    }
    image
}

/// A puppet on loopback with a synthetic desktop, accepting everyone.
pub async fn start_puppet() -> Puppet {
    start_puppet_with(|_| {}).await
}

/// Like [`start_puppet`], with the config adjusted first.
pub async fn start_puppet_with(adjust: impl FnOnce(&mut PuppetConfig)) -> Puppet {
    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: WIDTH,
        height: HEIGHT,
    });
    adjust(&mut config);
    Puppet::start(config).await.expect("the puppet starts")
}

/// A controller connected to `puppet`, and the pictures it decodes.
pub async fn connect_controller(puppet: &Puppet) -> (Controller, mpsc::UnboundedReceiver<Picture>) {
    let (sink, pictures) = channel_sink();
    let controller = Controller::connect(controller_config(puppet), sink)
        .await
        .expect("connects");
    (controller, pictures)
}

/// A controller config for `puppet`, on loopback.
pub fn controller_config(puppet: &Puppet) -> ControllerConfig {
    // All twelve digits: every session of these tests is verified end to end.
    let mut config = ControllerConfig::for_pairing(puppet.signal_url(), puppet.pairing_code());
    config.name = "e2e controller".into();
    config.bind = Some("127.0.0.1:0".parse().expect("address"));
    config.decoder_threads = 1;
    config
}

/// Waits for the first puppet event matching `want`, failing after [`DEADLINE`].
pub async fn wait_puppet_event(
    puppet: &mut Puppet,
    what: &str,
    want: impl FnMut(&PuppetEvent) -> bool,
) -> PuppetEvent {
    wait_puppet_event_within(puppet, what, DEADLINE, want).await
}

/// Like [`wait_puppet_event`], failing after `deadline` (for big transfers).
pub async fn wait_puppet_event_within(
    puppet: &mut Puppet,
    what: &str,
    deadline: Duration,
    mut want: impl FnMut(&PuppetEvent) -> bool,
) -> PuppetEvent {
    tokio::time::timeout(deadline, async {
        loop {
            match puppet.next_event().await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!("the puppet stopped while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {deadline:?}"))
}

/// A child process killed when the test ends, however it ends.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The window with "rtcdesk" in its title on `xvfb`, once it is mapped.
pub fn find_window(xvfb: &rtcdesk_xvfb::Xvfb) -> Option<String> {
    rtcdesk_xvfb::screen::find_window(xvfb, CONTROLLER_TITLE)
}

/// What every controller window's title starts with.
pub const CONTROLLER_TITLE: &str = "rtcdesk";

/// Waits for the first picture matching `want`.
pub async fn wait_picture(
    pictures: &mut mpsc::UnboundedReceiver<Picture>,
    what: &str,
    mut want: impl FnMut(&Picture) -> bool,
) -> Picture {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match pictures.recv().await {
                Some(picture) if want(&picture) => return picture,
                Some(_) => {}
                None => panic!("the video ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no picture with {what} within {DEADLINE:?}"))
}

/// What the synthetic desktop draws for a state built by `setup`, stamped like `stamp`: the
/// reference a decoded picture is compared with.
pub fn reference(stamp: Stamp, setup: impl FnOnce(&SyntheticDesktop)) -> I420 {
    let mut desktop = SyntheticDesktop::new(WIDTH, HEIGHT);
    setup(&desktop);
    let mut frame = Frame::new(WIDTH, HEIGHT);
    assert!(desktop.grab(&mut frame).expect("synthetic grab"));
    draw_stamp(
        &mut frame,
        Stamp::new(
            u64::from(stamp.frame_number),
            stamp.captured_unix_micros_low,
        ),
    );
    to_i420(&frame)
}

/// Waits for the first controller event matching `want`.
pub async fn wait_controller_event(
    controller: &mut Controller,
    what: &str,
    mut want: impl FnMut(&ControllerEvent) -> bool,
) -> ControllerEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!("the session ended while waiting for {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {DEADLINE:?}"))
}
