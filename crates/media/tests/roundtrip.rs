//! Encode → decode round trips of the synthetic desktop with each encoder, through the public API.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rtcdesk_media::{
    bgra_to_i420, find_pointer, psnr_y, read_stamp, Capture, Decoder, EncodedFrame, EncoderConfig,
    EncoderKind, Error, Frame, SyntheticDesktop, VideoEncoder, I420,
};

/// Types a character (and moves the pointer) per frame; checks every decoded picture's quality,
/// stamp and pointer marker against its source.
fn round_trip(kind: EncoderKind, width: u32, height: u32, frames: u32) {
    let mut desktop = SyntheticDesktop::new(width, height);
    let mut encoder = VideoEncoder::new(kind, EncoderConfig::new(width, height)).unwrap();
    let mut decoder = Decoder::new(2).unwrap();
    let mut frame = Frame::new(width, height);
    let mut sources: HashMap<u64, (I420, (u32, u32))> = HashMap::new();
    let mut packets: Vec<EncodedFrame> = Vec::new();
    for i in 0..frames {
        desktop.text(&((b'a' + (i % 26) as u8) as char).to_string());
        desktop.pointer_to((i * 3000) as u16, 20000);
        assert!(desktop.grab(&mut frame).unwrap());
        let mut image = I420::new(width, height);
        bgra_to_i420(&frame, &mut image);
        sources.insert(frame.number, (image, desktop.pointer()));
        assert!(encoder.encode(&frame).unwrap());
        while let Some(packet) = encoder.poll_packet().unwrap() {
            packets.push(packet);
        }
    }
    encoder.flush().unwrap();
    while let Some(packet) = encoder.poll_packet().unwrap() {
        packets.push(packet);
    }
    assert!(packets[0].keyframe, "the first packet is a keyframe");
    let mut checked = 0;
    for packet in &packets {
        let picture = decoder
            .decode(&packet.data, packet.meta.number as i64)
            .unwrap()
            .expect("a picture per packet");
        assert_eq!((picture.width(), picture.height()), (width, height));
        let stamp = read_stamp(picture.view()).expect("the stamp survives coding");
        assert_eq!(stamp.frame_number as u64, packet.meta.number);
        if packet.repeat {
            continue;
        }
        let (source, pointer) = &sources[&packet.meta.number];
        let psnr = psnr_y(source.view(), picture.view());
        assert!(
            psnr >= 38.0,
            "{kind} {width}x{height} frame {}: PSNR {psnr:.1} dB",
            packet.meta.number
        );
        let found = find_pointer(picture.view()).expect("pointer marker");
        assert!(
            found.0.abs_diff(pointer.0) <= 3 && found.1.abs_diff(pointer.1) <= 3,
            "pointer at {pointer:?}, found {found:?}"
        );
        checked += 1;
    }
    assert_eq!(checked, frames, "every frame came out exactly once");
}

#[test]
fn aom_round_trip_640x360() {
    round_trip(EncoderKind::Aom, 640, 360, 12);
}

#[test]
fn aom_round_trip_1280x720() {
    round_trip(EncoderKind::Aom, 1280, 720, 8);
}

#[test]
fn rav1e_round_trip_640x360() {
    round_trip(EncoderKind::Rav1e, 640, 360, 4);
}

#[test]
fn rav1e_round_trip_1280x720() {
    round_trip(EncoderKind::Rav1e, 1280, 720, 2);
}

/// A still screen costs nothing until the refresh is due, and the refresh is a keyframe.
fn still_screen(kind: EncoderKind) {
    let mut desktop = SyntheticDesktop::new(320, 180);
    let mut encoder = VideoEncoder::new(kind, EncoderConfig::new(320, 180)).unwrap();
    let mut frame = Frame::new(320, 180);
    assert!(desktop.grab(&mut frame).unwrap());
    assert!(encoder.encode(&frame).unwrap());
    let first: Vec<_> = std::iter::from_fn(|| encoder.poll_packet().unwrap()).collect();
    assert!(!first.is_empty() && first[0].keyframe);
    let start = Instant::now();
    for tick in 1..20 {
        assert!(!desktop.grab(&mut frame).unwrap(), "nothing changed");
        // The same picture handed over again is dropped before the encoder.
        assert!(!encoder.encode(&frame).unwrap());
        assert!(!encoder
            .tick(start + Duration::from_millis(tick * 33))
            .unwrap());
        assert!(
            encoder.poll_packet().unwrap().is_none(),
            "a still screen produces no packets"
        );
    }
    assert!(encoder
        .tick(start + encoder.refresh_interval() + Duration::from_secs(1))
        .unwrap());
    let refresh: Vec<_> = std::iter::from_fn(|| encoder.poll_packet().unwrap()).collect();
    assert!(
        refresh.iter().any(|p| p.keyframe && !p.repeat),
        "the refresh is a keyframe"
    );
}

#[test]
fn aom_still_screen_produces_no_packets_after_the_first() {
    still_screen(EncoderKind::Aom);
}

#[test]
fn rav1e_still_screen_produces_no_packets_after_the_first() {
    still_screen(EncoderKind::Rav1e);
}

/// Keyframes come on request, and a bitrate change takes effect without breaking the stream.
fn keyframe_and_bitrate(kind: EncoderKind) {
    let mut desktop = SyntheticDesktop::new(320, 180);
    let mut encoder = VideoEncoder::new(kind, EncoderConfig::new(320, 180)).unwrap();
    let mut decoder = Decoder::new(1).unwrap();
    let mut frame = Frame::new(320, 180);
    let mut step = |encoder: &mut VideoEncoder, text: &str| -> Vec<EncodedFrame> {
        desktop.text(text);
        assert!(desktop.grab(&mut frame).unwrap());
        assert!(encoder.encode(&frame).unwrap());
        let packets: Vec<_> = std::iter::from_fn(|| encoder.poll_packet().unwrap()).collect();
        for p in &packets {
            assert!(decoder.decode(&p.data, 0).unwrap().is_some());
        }
        packets.into_iter().filter(|p| !p.repeat).collect()
    };
    assert!(step(&mut encoder, "a")[0].keyframe);
    assert!(!step(&mut encoder, "b")[0].keyframe);
    encoder.request_keyframe();
    assert!(step(&mut encoder, "c")[0].keyframe);
    assert!(!step(&mut encoder, "d")[0].keyframe);
    encoder.set_bitrate(150);
    assert_eq!(encoder.bitrate(), 150);
    let after = step(&mut encoder, "e");
    assert_eq!(after.len(), 1);
    assert!(!step(&mut encoder, "f").is_empty());
}

#[test]
fn aom_keyframe_on_request_and_bitrate_change() {
    keyframe_and_bitrate(EncoderKind::Aom);
}

#[test]
fn rav1e_keyframe_on_request_and_bitrate_change() {
    keyframe_and_bitrate(EncoderKind::Rav1e);
}

#[test]
fn a_screen_size_change_restarts_the_encoder_with_a_keyframe() {
    let mut encoder = VideoEncoder::new(EncoderKind::Aom, EncoderConfig::new(320, 180)).unwrap();
    let mut decoder = Decoder::new(1).unwrap();
    for (w, h) in [(320, 180), (640, 360)] {
        let mut desktop = SyntheticDesktop::new(w, h);
        let mut frame = Frame::new(1, 1);
        assert!(desktop.grab(&mut frame).unwrap());
        assert!(encoder.encode(&frame).unwrap());
        let packet = encoder.poll_packet().unwrap().unwrap();
        assert!(packet.keyframe);
        let picture = decoder.decode(&packet.data, 0).unwrap().unwrap();
        assert_eq!((picture.width(), picture.height()), (w, h));
    }
}

fn one_keyframe() -> Vec<u8> {
    let mut desktop = SyntheticDesktop::new(320, 180);
    let mut encoder = VideoEncoder::new(EncoderKind::Aom, EncoderConfig::new(320, 180)).unwrap();
    let mut frame = Frame::new(1, 1);
    desktop.grab(&mut frame).unwrap();
    encoder.encode(&frame).unwrap();
    encoder.poll_packet().unwrap().unwrap().data
}

#[test]
fn truncated_packets_give_decoder_errors() {
    let packet = one_keyframe();
    for cut in [
        1,
        2,
        5,
        packet.len() / 3,
        packet.len() / 2,
        packet.len() - 1,
    ] {
        let mut decoder = Decoder::new(1).unwrap();
        let result = decoder.decode(&packet[..cut], 0);
        assert!(
            matches!(result, Err(Error::CorruptData(_))),
            "cut at {cut} of {}: {:?}",
            packet.len(),
            result.map(|p| p.is_some())
        );
    }
}

#[test]
fn corrupt_packets_give_decoder_errors_not_panics() {
    let packet = one_keyframe();
    let mut decoder = Decoder::new(1).unwrap();
    assert!(matches!(decoder.decode(&[], 0), Err(Error::CorruptData(_))));
    let garbage: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(matches!(
        decoder.decode(&garbage, 0),
        Err(Error::CorruptData(_))
    ));
    // Flipped bytes inside a valid packet: never a panic; an error or a (damaged) picture.
    for at in (0..packet.len()).step_by(7) {
        let mut damaged = packet.clone();
        damaged[at] ^= 0x5a;
        let mut decoder = Decoder::new(1).unwrap();
        let _ = decoder.decode(&damaged, 0);
    }
    // The decoder still works on good data afterwards.
    let mut decoder = Decoder::new(1).unwrap();
    let _ = decoder.decode(&garbage, 0);
    assert!(decoder.decode(&packet, 0).unwrap().is_some());
}
