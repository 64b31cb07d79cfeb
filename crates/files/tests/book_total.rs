//! Whatever the other side sends, in whatever order, the session book never panics, keeps its
//! limits, and writes nothing outside the download folder.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rtcdesk_files::{DownloadFolder, Limits, Sha256, TransferEvent, Transfers};
use rtcdesk_proto::control::{ControlMessage, FileErrorCode, FileRole};
use rtcdesk_proto::file::FileChunk;

#[derive(Debug, Clone)]
enum Step {
    /// A control message from the other side.
    Control(ControlMessage),
    /// A chunk from the other side.
    Chunk { id: u32, offset: u64, len: usize },
    /// Raw bytes on the `file` channel.
    Raw(Vec<u8>),
    /// This side's user accepts the oldest pending offer.
    Accept,
    /// This side's user cancels transfer `id` (incoming).
    Cancel(u32),
}

fn id() -> impl Strategy<Value = u32> {
    0u32..4
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..70_000, Just(u64::MAX - 1)]
}

fn role() -> impl Strategy<Value = FileRole> {
    prop_oneof![Just(FileRole::Sender), Just(FileRole::Receiver)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (id(), "[a-z./\\\\]{0,12}", 0u64..70_000, any::<u8>()).prop_map(|(id, name, size, h)| {
            Step::Control(ControlMessage::FileOffer {
                id,
                name,
                size,
                sha256: Sha256([h; 32]),
            })
        }),
        (id(), offset(), 16384u64..100_000).prop_map(|(id, offset, window)| Step::Control(
            ControlMessage::FileAccept { id, offset, window }
        )),
        (id(), offset())
            .prop_map(|(id, offset)| Step::Control(ControlMessage::FileAck { id, offset })),
        id().prop_map(|id| Step::Control(ControlMessage::FileDone { id })),
        id().prop_map(|id| Step::Control(ControlMessage::FileDecline {
            id,
            reason: "no".into()
        })),
        (id(), role()).prop_map(|(id, by)| Step::Control(ControlMessage::FileCancel {
            id,
            by,
            reason: "x".into()
        })),
        (id(), role()).prop_map(|(id, by)| Step::Control(ControlMessage::FileError {
            id,
            by,
            code: FileErrorCode::Protocol,
            message: "x".into()
        })),
        (id(), offset(), 1usize..20_000).prop_map(|(id, offset, len)| Step::Chunk {
            id,
            offset,
            len
        }),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Step::Raw),
        Just(Step::Accept),
        id().prop_map(Step::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_book_is_total_and_keeps_its_limits(steps in proptest::collection::vec(step(), 0..40)) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("in");
        let folder = DownloadFolder::new(&dir).unwrap();
        let limits = Limits { max_incoming: 2, max_outgoing: 2, window: 32768 };
        let mut book = Transfers::new(limits);
        let mut now = Instant::now();
        let mut pending = Vec::new();
        let data = vec![0xa5u8; 20_000];
        for step in steps {
            now += Duration::from_millis(3);
            match step {
                Step::Control(message) => { let _ = book.handle_control(&message, now); }
                Step::Chunk { id, offset, len } => {
                    let bytes = FileChunk { id, offset, data: &data[..len] }.to_bytes();
                    let _ = book.handle_file_message(&bytes, now);
                }
                Step::Raw(bytes) => { let _ = book.handle_file_message(&bytes, now); }
                Step::Accept => {
                    if let Some(offer) = pending.pop() {
                        if let Ok(part) = folder.prepare(&offer) {
                            let _ = book.accept(offer.id, part, now);
                        }
                    }
                }
                Step::Cancel(id) => { let _ = book.cancel(rtcdesk_files::Direction::Incoming, id, "user"); }
            }
            while let Some(event) = book.poll_event() {
                if let TransferEvent::Offered { offer, .. } = event {
                    pending.push(offer);
                }
            }
            while book.poll_control().is_some() {}
            prop_assert!(book.live().count() <= limits.max_incoming + limits.max_outgoing);
            for (direction, offer) in book.live() {
                let progress = book.progress(direction, offer.id, now).unwrap();
                prop_assert!(progress.bytes <= offer.size);
            }
        }
        book.close();
        // Nothing outside the folder.
        let outside: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        prop_assert_eq!(outside, vec![std::ffi::OsString::from("in")]);
    }
}
