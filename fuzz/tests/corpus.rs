//! Every fuzz target over its whole seed corpus, so CI checks the targets even without libFuzzer
//! and a crash found once stays fixed (put the crashing input in the corpus).

use std::path::Path;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

fn run_corpus(target: &str, at_least: usize) {
    let files = corpus(target);
    assert!(
        files.len() >= at_least,
        "{target}: {} seeds, expected at least {at_least}",
        files.len()
    );
    for (name, data) in files {
        eprintln!("{target}: {name}");
        assert!(rtcdesk_fuzz::run(target, &data));
    }
}

#[test]
fn av1_unit_corpus() {
    run_corpus("av1_unit", 9);
}

#[test]
fn router_sequence_corpus() {
    run_corpus("router_sequence", 8);
}

#[test]
fn pake_message_corpus() {
    run_corpus("pake_message", 8);
}

#[test]
fn signal_message_corpus() {
    run_corpus("signal_message", 15);
}

#[test]
fn input_event_corpus() {
    run_corpus("input_event", 7);
}

#[test]
fn sdp_corpus() {
    run_corpus("sdp", 4);
}

#[test]
fn stun_message_corpus() {
    run_corpus("stun_message", 6);
}

#[test]
fn turn_message_corpus() {
    run_corpus("turn_message", 12);
}

#[test]
fn turn_seeds_captured_from_coturn_are_turn_traffic() {
    for (name, data) in corpus("turn_message") {
        if name.contains("coturn") {
            assert!(rtcdesk_stun::turn::is_turn_traffic(&data), "{name}");
        }
    }
}

#[test]
fn file_message_corpus() {
    run_corpus("file_message", 12);
}

#[test]
fn file_message_seeds_are_what_their_names_say() {
    for (name, data) in corpus("file_message") {
        let chunk = rtcdesk_proto::file::FileChunk::decode(&data);
        let control = std::str::from_utf8(&data)
            .map_err(|e| e.to_string())
            .and_then(|t| rtcdesk_proto::ControlMessage::parse(t).map_err(|e| e.to_string()));
        if name.contains("/chunk-") {
            assert!(chunk.is_ok(), "{name}: {chunk:?}");
        } else if name.contains("/control-") {
            assert!(control.is_ok(), "{name}: {control:?}");
        } else if name.contains("/bad-") {
            assert!(chunk.is_err() && control.is_err(), "{name}");
        }
    }
}

#[test]
fn stun_seeds_parse_and_rfc5769_responses_carry_the_vector_address() {
    for (name, data) in corpus("stun_message") {
        let message = rtcdesk_stun::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.contains("rfc5769-2.2") || name.contains("rfc5769-2.3") {
            let mapped = message.mapped_address().expect("mapped address");
            assert_eq!(mapped.port(), 32853, "{name}");
        }
    }
}

#[test]
fn browser_sdp_seeds_parse_as_the_peer_will_parse_them() {
    for (name, data) in corpus("sdp") {
        let text = String::from_utf8(data).unwrap();
        if name.ends_with("-offer.sdp") {
            str0m::change::SdpOffer::from_sdp_string(&text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.ends_with("-answer.sdp") {
            str0m::change::SdpAnswer::from_sdp_string(&text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        } else if name.ends_with("-offer.json") {
            serde_json::from_str::<str0m::change::SdpOffer>(&text)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// The fuzz targets: the names of the `[[bin]]` entries in this crate's manifest, the one list
/// of them (cargo-fuzz reads the same entries).
fn targets() -> Vec<String> {
    let manifest = include_str!("../Cargo.toml");
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
            if let (true, Some(name)) = (in_bin, value.strip_prefix('=')) {
                targets.push(name.trim().trim_matches('"').to_owned());
            }
        }
    }
    targets
}

#[test]
fn every_target_has_a_body_and_a_corpus_and_every_corpus_a_target() {
    let targets = targets();
    assert!(targets.len() >= 4, "{targets:?}");
    for target in &targets {
        assert!(
            rtcdesk_fuzz::run(target, b""),
            "{target} has no body in run()"
        );
        assert!(!corpus(target).is_empty(), "{target} has no seeds");
    }
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/fuzz");
    for entry in std::fs::read_dir(&seeds).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            targets.contains(&name),
            "testdata/fuzz/{name} belongs to no [[bin]] in fuzz/Cargo.toml"
        );
    }
}
