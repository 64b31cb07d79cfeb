//! A recording written with `IvfWriter` plays in Debian's reference decoder, the `dav1d` CLI.

use std::fs::File;
use std::io::BufWriter;
use std::process::Command;

use rtcdesk_media::{
    Capture, Decoder, EncoderConfig, EncoderKind, Frame, IvfReader, IvfWriter, SyntheticDesktop,
    VideoEncoder,
};

fn record(kind: EncoderKind, frames: u32) -> (std::path::PathBuf, usize) {
    let dir = std::env::temp_dir().join(format!("rtcdesk-media-ivf-{}-{kind}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("screen.ivf");
    let mut desktop = SyntheticDesktop::new(320, 180);
    let mut encoder = VideoEncoder::new(kind, EncoderConfig::new(320, 180)).unwrap();
    let mut writer =
        IvfWriter::new(BufWriter::new(File::create(&path).unwrap()), 320, 180).unwrap();
    let mut frame = Frame::new(1, 1);
    let mut written = 0;
    for i in 0..frames {
        desktop.scroll(1);
        desktop.text(&i.to_string());
        assert!(desktop.grab(&mut frame).unwrap());
        encoder.encode(&frame).unwrap();
        while let Some(packet) = encoder.poll_packet().unwrap() {
            writer.write(&packet).unwrap();
            written += 1;
        }
    }
    encoder.flush().unwrap();
    while let Some(packet) = encoder.poll_packet().unwrap() {
        writer.write(&packet).unwrap();
        written += 1;
    }
    writer.finish().unwrap();
    (path, written)
}

fn dav1d_cli_decodes(kind: EncoderKind) {
    let (path, written) = record(kind, 6);
    let y4m = path.with_extension("y4m");
    let output = Command::new("dav1d")
        .arg("-i")
        .arg(&path)
        .arg("-o")
        .arg(&y4m)
        .output()
        .expect("the dav1d CLI runs (Debian package `dav1d`: cargo xtask deps)");
    assert!(
        output.status.success(),
        "dav1d failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoded = std::fs::read(&y4m).unwrap();
    let pictures = decoded.windows(6).filter(|w| w == b"FRAME\n").count();
    assert_eq!(pictures, written, "dav1d decoded every recorded frame");
    assert!(decoded.starts_with(b"YUV4MPEG2 W320 H180"));

    // Our own reader and decoder agree.
    let mut reader = IvfReader::new(File::open(&path).unwrap()).unwrap();
    let mut decoder = Decoder::new(1).unwrap();
    let mut count = 0;
    while let Some((data, _pts)) = reader.next_frame().unwrap() {
        assert!(decoder.decode(&data, 0).unwrap().is_some());
        count += 1;
    }
    assert_eq!(count, written);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn aom_recording_plays_in_the_dav1d_cli() {
    dav1d_cli_decodes(EncoderKind::Aom);
}

#[test]
fn rav1e_recording_plays_in_the_dav1d_cli() {
    dav1d_cli_decodes(EncoderKind::Rav1e);
}
