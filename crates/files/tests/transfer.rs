//! Transfers between two session books driven in memory on a virtual clock: a 256 MiB file cut
//! mid-way and resumed in a new session, a corrupted chunk, senders that break the rules, cancel
//! from either side, limits.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rtcdesk_files::{
    hash_source, Direction, DownloadFolder, Ending, FileChunk, FileError, Limits, Sha256, Source,
    TransferEvent, Transfers,
};
use rtcdesk_proto::control::{ControlMessage, FileErrorCode, FileRole};

/// A file that exists only as a rule: deterministic bytes at any offset, no memory held beyond
/// one pseudo-random 1 MiB block. Each MiB is the block rotated by a different amount, so no two
/// MiBs are alike and a misplaced chunk changes the hash.
struct Generated {
    block: Vec<u8>,
    size: u64,
}

impl Generated {
    fn new(seed: u64, size: u64) -> Self {
        let mut state = seed;
        let block = (0..1 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        Generated { block, size }
    }
}

impl Source for Generated {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.size {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        let len = self.block.len() as u64;
        let mut filled = 0;
        while filled < buf.len() {
            let at = offset + filled as u64;
            let rotation = (at / len).wrapping_mul(7919) % len;
            let start = ((at % len + rotation) % len) as usize;
            let run = (self.block.len() - start).min(buf.len() - filled);
            // Never cross a MiB boundary within one run: the rotation changes there.
            let to_boundary = (len - at % len) as usize;
            let run = run.min(to_boundary);
            buf[filled..filled + run].copy_from_slice(&self.block[start..start + run]);
            filled += run;
        }
        Ok(())
    }
}

/// Two books and the messages between them. `file` holds chunks sent but not yet delivered, as
/// the data channel would.
struct Link {
    a: Transfers,
    b: Transfers,
    file: VecDeque<Vec<u8>>,
    now: Instant,
    /// Chunk bytes a sent.
    sent_bytes: u64,
    /// Errors b's book returned for a's chunks.
    b_errors: Vec<FileError>,
    events_a: Vec<TransferEvent>,
    events_b: Vec<TransferEvent>,
}

impl Link {
    fn new(limits: Limits, now: Instant) -> Self {
        Link {
            a: Transfers::new(limits),
            b: Transfers::new(limits),
            file: VecDeque::new(),
            now,
            sent_bytes: 0,
            b_errors: Vec::new(),
            events_a: Vec::new(),
            events_b: Vec::new(),
        }
    }

    /// Moves control messages both ways until both queues are empty.
    fn exchange_control(&mut self) {
        loop {
            let mut moved = false;
            while let Some(message) = self.a.poll_control() {
                let _ = self.b.handle_control(&message, self.now);
                moved = true;
            }
            while let Some(message) = self.b.poll_control() {
                let _ = self.a.handle_control(&message, self.now);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        self.events_a
            .extend(std::iter::from_fn(|| self.a.poll_event()));
        self.events_b
            .extend(std::iter::from_fn(|| self.b.poll_event()));
    }

    /// One round: a sends what its windows allow, b takes every chunk, control moves, 1 ms
    /// passes. `corrupt` may change a chunk on the way.
    fn round(&mut self, corrupt: &mut dyn FnMut(&mut Vec<u8>)) -> bool {
        let mut message = Vec::new();
        let mut progressed = false;
        while self.a.poll_file(&mut message) {
            self.sent_bytes += (message.len() - rtcdesk_proto::file::HEADER_LEN) as u64;
            self.file.push_back(std::mem::take(&mut message));
            progressed = true;
        }
        while let Some(mut chunk) = self.file.pop_front() {
            corrupt(&mut chunk);
            if let Err(error) = self.b.handle_file_message(&chunk, self.now) {
                self.b_errors.push(error);
            }
            progressed = true;
        }
        self.exchange_control();
        self.now += Duration::from_millis(1);
        progressed
    }

    fn run(&mut self) {
        while self.round(&mut |_| {}) {}
    }

    /// a offers, b's user accepts into `folder`.
    fn offer_and_accept(
        &mut self,
        name: &str,
        source: Generated,
        sha256: Sha256,
        folder: &DownloadFolder,
    ) -> (u32, u64) {
        let size = source.size;
        let id = self
            .a
            .send_file(name, size, sha256, Box::new(source), self.now)
            .unwrap();
        self.exchange_control();
        let offer = match self.events_b.pop() {
            Some(TransferEvent::Offered { offer, .. }) => offer,
            other => panic!("expected an offer, got {other:?}"),
        };
        let part = folder.prepare(&offer).unwrap();
        let offset = part.resume_offset();
        self.b.accept(offer.id, part, self.now).unwrap();
        self.exchange_control();
        (id, offset)
    }
}

fn sha_of(source: &mut Generated) -> Sha256 {
    let size = source.size;
    hash_source(source, size).unwrap()
}

fn sha_of_file(path: &Path) -> Sha256 {
    let size = std::fs::metadata(path).unwrap().len();
    let mut file = rtcdesk_files::SeekSource(std::fs::File::open(path).unwrap());
    hash_source(&mut file, size).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const MIB: u64 = 1 << 20;

/// Given a 256 MiB file offered and accepted, when the session is lost after about half of it
/// (chunks in flight lost with it) and the same file is offered again in a new session, then
/// the receiver resumes from at least the last acknowledged offset, only the rest is sent, and
/// the file kept has the offered SHA-256.
#[test]
fn a_256_mib_transfer_cut_mid_way_resumes_in_a_new_session() {
    let size = 256 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let sha256 = sha_of(&mut Generated::new(42, size));
    let start = Instant::now();

    // Session 1, cut after ~128 MiB.
    let mut link = Link::new(Limits::default(), start);
    let (id, offset) = link.offer_and_accept("big.bin", Generated::new(42, size), sha256, &folder);
    assert_eq!(offset, 0);
    while link
        .b
        .progress(Direction::Incoming, id, link.now)
        .unwrap()
        .bytes
        < size / 2
    {
        // Deliver only half of what is in flight per round, so some is always on the way.
        let mut message = Vec::new();
        while link.a.poll_file(&mut message) {
            link.file.push_back(std::mem::take(&mut message));
        }
        for _ in 0..link.file.len().div_ceil(2) {
            let chunk = link.file.pop_front().unwrap();
            link.b.handle_file_message(&chunk, link.now).unwrap();
        }
        link.exchange_control();
        link.now += Duration::from_millis(1);
    }
    let acked = link.a.progress(Direction::Outgoing, id, link.now).unwrap();
    let received = link.b.progress(Direction::Incoming, id, link.now).unwrap();
    assert!(!link.file.is_empty(), "nothing was in flight at the cut");
    assert!(acked.bytes > 0 && acked.bytes < size);
    assert!(acked.rate > 0.0 && acked.remaining.is_some(), "{acked:?}");
    assert!(received.bytes >= acked.bytes);
    assert_eq!(link.b.close(), 1, "the part file is kept");
    drop(link);
    assert_eq!(files_in(dir.path()), ["big.bin.part", "big.bin.part.state"]);

    // Session 2: the same file offered again.
    let mut link = Link::new(Limits::default(), start + Duration::from_secs(60));
    let (_, resumed) = link.offer_and_accept("big.bin", Generated::new(42, size), sha256, &folder);
    assert!(
        resumed >= acked.bytes && resumed <= received.bytes,
        "resumed at {resumed}, acked {}, received {}",
        acked.bytes,
        received.bytes
    );
    assert!(matches!(
        link.events_a.as_slice(),
        [TransferEvent::Accepted { offset, .. }] if *offset == resumed
    ));
    link.run();
    assert_eq!(link.sent_bytes, size - resumed, "only the rest is sent");
    let path = match link.events_b.as_slice() {
        [TransferEvent::Completed {
            path: Some(path), ..
        }] => path.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        link.events_a.last(),
        Some(TransferEvent::Completed {
            direction: Direction::Outgoing,
            ..
        })
    ));
    assert_eq!(path, dir.path().join("big.bin"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    assert_eq!(sha_of_file(&path), sha256);
    assert_eq!(files_in(dir.path()), ["big.bin"]);
}

/// Given a transfer whose receiver dies without a goodbye (no fsync of the last bytes), when the
/// file is offered again, then it resumes from the last checkpoint and the result is intact.
#[test]
fn a_receiver_that_dies_resumes_from_its_last_checkpoint() {
    let size = 20 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let sha256 = sha_of(&mut Generated::new(7, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    let (id, _) = link.offer_and_accept("crash.bin", Generated::new(7, size), sha256, &folder);
    while link
        .b
        .progress(Direction::Incoming, id, link.now)
        .unwrap()
        .bytes
        < 12 * MIB
    {
        link.round(&mut |_| {});
    }
    drop(link); // no close(): the part is left as a crash leaves it
    let mut link = Link::new(Limits::default(), Instant::now());
    let (_, resumed) = link.offer_and_accept("crash.bin", Generated::new(7, size), sha256, &folder);
    assert_eq!(
        resumed,
        rtcdesk_files::CHECKPOINT_EVERY,
        "the last checkpoint"
    );
    link.run();
    assert_eq!(sha_of_file(&dir.path().join("crash.bin")), sha256);
    assert_eq!(files_in(dir.path()), ["crash.bin"]);
}

/// Given a file on the way, when one byte of one chunk is changed in transit, then the receiver
/// finds the hash mismatch at the end, removes the part file, keeps nothing under the final name
/// and tells the sender `hash_mismatch`.
#[test]
fn a_corrupted_chunk_is_detected_and_the_part_removed() {
    let size = 3 * MIB + 123;
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let sha256 = sha_of(&mut Generated::new(1, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    link.offer_and_accept("photo.jpg", Generated::new(1, size), sha256, &folder);
    let mut seen = 0;
    while link.round(&mut |chunk: &mut Vec<u8>| {
        seen += 1;
        if seen == 100 {
            let last = chunk.len() - 1;
            chunk[last] ^= 0x01;
        }
    }) {}
    assert!(seen > 100);
    let failure = |events: &[TransferEvent]| match events.last() {
        Some(TransferEvent::Ended {
            ending: Ending::Failed { by, code, message },
            ..
        }) => (*by, *code, message.clone()),
        other => panic!("{other:?}"),
    };
    let (by, code, message) = failure(&link.events_b);
    assert_eq!(
        (by, code),
        (FileRole::Receiver, FileErrorCode::HashMismatch)
    );
    assert!(message.contains("SHA-256 mismatch"), "{message}");
    assert_eq!(failure(&link.events_a).1, FileErrorCode::HashMismatch);
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// The receiving book alone, fed by hand-made messages as a misbehaving sender would send them.
struct Rogue {
    book: Transfers,
    _dir: tempfile::TempDir,
    dir: PathBuf,
    now: Instant,
}

impl Rogue {
    fn offered(size: u64, limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let folder = DownloadFolder::new(&path).unwrap();
        let now = Instant::now();
        let mut book = Transfers::new(limits);
        let offer = ControlMessage::FileOffer {
            id: 9,
            name: "x.bin".into(),
            size,
            sha256: Sha256([0; 32]),
        };
        book.handle_control(&offer, now).unwrap();
        let Some(TransferEvent::Offered { offer, .. }) = book.poll_event() else {
            panic!()
        };
        book.accept(9, folder.prepare(&offer).unwrap(), now)
            .unwrap();
        assert!(matches!(
            book.poll_control(),
            Some(ControlMessage::FileAccept {
                id: 9,
                offset: 0,
                ..
            })
        ));
        Rogue {
            book,
            _dir: dir,
            dir: path,
            now,
        }
    }

    fn send(&mut self, offset: u64, len: usize) -> Result<(), FileError> {
        let data = vec![0xee; len];
        let message = FileChunk {
            id: 9,
            offset,
            data: &data,
        }
        .to_bytes();
        self.book.handle_file_message(&message, self.now)
    }

    /// The transfer was cut off with `file_error` `protocol` and its part file is gone.
    fn assert_cut_off(&mut self) {
        let messages: Vec<_> = std::iter::from_fn(|| self.book.poll_control()).collect();
        assert!(
            matches!(
                messages.last(),
                Some(ControlMessage::FileError {
                    id: 9,
                    by: FileRole::Receiver,
                    code: FileErrorCode::Protocol,
                    ..
                })
            ),
            "{messages:?}"
        );
        assert!(files_in(&self.dir).is_empty(), "{:?}", files_in(&self.dir));
        // Chunks still on the way after the cut are dropped quietly.
        assert!(self.send(0, 10).is_ok());
    }
}

#[test]
fn a_sender_that_sends_more_than_it_offered_is_cut_off() {
    let mut rogue = Rogue::offered(100, Limits::default());
    rogue.send(0, 60).unwrap();
    let error = rogue.send(60, 41).unwrap_err();
    assert!(
        matches!(
            error,
            FileError::PastSize {
                end: 101,
                size: 100,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "transfer 9: chunk ends at 101, past the offered size 100"
    );
    rogue.assert_cut_off();
}

#[test]
fn a_sender_that_sends_past_the_window_is_cut_off() {
    let window = 64 * 1024;
    let mut rogue = Rogue::offered(
        MIB,
        Limits {
            window,
            ..Limits::default()
        },
    );
    // The acks the receiver queues never reach this sender, which keeps going anyway.
    for n in 0..4 {
        rogue.send(n * 16384, 16384).unwrap();
    }
    let error = rogue.send(window, 1).unwrap_err();
    assert!(
        matches!(error, FileError::PastWindow { limit, .. } if limit == window),
        "{error}"
    );
    rogue.assert_cut_off();
}

#[test]
fn a_chunk_out_of_order_is_cut_off() {
    let mut rogue = Rogue::offered(MIB, Limits::default());
    rogue.send(0, 100).unwrap();
    let error = rogue.send(200, 100).unwrap_err();
    assert!(
        matches!(
            error,
            FileError::OutOfOrder {
                expected: 100,
                got: 200,
                ..
            }
        ),
        "{error}"
    );
    rogue.assert_cut_off();
}

#[test]
fn a_chunk_for_an_unknown_transfer_is_refused() {
    let mut rogue = Rogue::offered(MIB, Limits::default());
    let chunk = FileChunk {
        id: 77,
        offset: 0,
        data: b"x",
    }
    .to_bytes();
    assert!(matches!(
        rogue.book.handle_file_message(&chunk, rogue.now),
        Err(FileError::UnknownTransfer { id: 77 })
    ));
    assert!(matches!(
        rogue.book.handle_file_message(&[0x18, 1], rogue.now),
        Err(FileError::Wire(_))
    ));
    // The live transfer is untouched.
    rogue.send(0, 10).unwrap();
}

/// Given a transfer under way, when the sender's user cancels, then the receiver hears who
/// cancelled and why, its part file is removed, and chunks still on the way are dropped quietly.
#[test]
fn the_sender_cancels_mid_way() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = 8 * MIB;
    let sha256 = sha_of(&mut Generated::new(3, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    let (id, _) = link.offer_and_accept("movie.mkv", Generated::new(3, size), sha256, &folder);
    link.round(&mut |_| {});
    let mut message = Vec::new();
    assert!(link.a.poll_file(&mut message), "window left");
    link.file.push_back(message);
    link.a
        .cancel(Direction::Outgoing, id, "changed my mind")
        .unwrap();
    assert!(
        !link.a.poll_file(&mut Vec::new()),
        "nothing sent after a cancel"
    );
    // The control message overtakes the chunk still on the `file` channel.
    link.exchange_control();
    link.run();
    assert!(link.b_errors.is_empty(), "{:?}", link.b_errors);
    assert_eq!(
        link.events_b.last(),
        Some(&TransferEvent::Ended {
            direction: Direction::Incoming,
            id,
            ending: Ending::Cancelled {
                by: FileRole::Sender,
                reason: "changed my mind".into()
            }
        })
    );
    assert!(files_in(dir.path()).is_empty());
    assert!(link.a.live().next().is_none() && link.b.live().next().is_none());
}

/// Given a transfer under way, when the receiver's user cancels, then the sender stops sending
/// and hears who cancelled; the part file is removed.
#[test]
fn the_receiver_cancels_mid_way() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = 8 * MIB;
    let sha256 = sha_of(&mut Generated::new(4, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    let (id, _) = link.offer_and_accept("movie.mkv", Generated::new(4, size), sha256, &folder);
    link.round(&mut |_| {});
    link.b
        .cancel(Direction::Incoming, id, "no room for films")
        .unwrap();
    assert!(files_in(dir.path()).is_empty());
    link.exchange_control();
    let sent = link.sent_bytes;
    link.run();
    assert_eq!(link.sent_bytes, sent, "the sender stopped");
    assert!(link.sent_bytes < size);
    assert_eq!(
        link.events_a.last(),
        Some(&TransferEvent::Ended {
            direction: Direction::Outgoing,
            id,
            ending: Ending::Cancelled {
                by: FileRole::Receiver,
                reason: "no room for films".into()
            }
        })
    );
}

#[test]
fn a_declined_offer_ends_on_both_sides() {
    let mut link = Link::new(Limits::default(), Instant::now());
    let mut source = Generated::new(5, 1000);
    let sha256 = sha_of(&mut source);
    let id = link
        .a
        .send_file("a.txt", 1000, sha256, Box::new(source), link.now)
        .unwrap();
    link.exchange_control();
    link.b.decline(id, "not now").unwrap();
    link.exchange_control();
    assert_eq!(
        link.events_a,
        [TransferEvent::Ended {
            direction: Direction::Outgoing,
            id,
            ending: Ending::Declined {
                reason: "not now".into()
            }
        }]
    );
}

/// Given a receiver that allows two transfers in flight, when a third file is offered, then it
/// is refused with `too_many` at once and the first two go on.
#[test]
fn offers_over_the_limit_are_refused() {
    let limits = Limits {
        max_incoming: 2,
        ..Limits::default()
    };
    let mut link = Link::new(limits, Instant::now());
    for n in 0..3u64 {
        let mut source = Generated::new(n, 100);
        let sha256 = sha_of(&mut source);
        link.a
            .send_file(&format!("{n}.txt"), 100, sha256, Box::new(source), link.now)
            .unwrap();
    }
    link.exchange_control();
    let offered = link
        .events_b
        .iter()
        .filter(|e| matches!(e, TransferEvent::Offered { .. }))
        .count();
    assert_eq!(offered, 2);
    assert!(matches!(
        link.events_a.as_slice(),
        [TransferEvent::Ended {
            id: 3,
            ending: Ending::Failed {
                by: FileRole::Receiver,
                code: FileErrorCode::TooMany,
                ..
            },
            ..
        }]
    ));
    assert_eq!(link.a.live().count(), 2);
}

#[test]
fn an_empty_file_completes_on_accept() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let mut link = Link::new(Limits::default(), Instant::now());
    let mut source = Generated::new(0, 0);
    let sha256 = sha_of(&mut source);
    link.offer_and_accept("empty.txt", source, sha256, &folder);
    assert!(matches!(
        link.events_a.last(),
        Some(TransferEvent::Completed { .. })
    ));
    assert_eq!(std::fs::read(dir.path().join("empty.txt")).unwrap(), b"");
}

/// A source that stops being readable at `fail_at`, as a file truncated or on a lost disk.
struct Failing {
    inner: Generated,
    fail_at: u64,
}

impl Source for Failing {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.fail_at {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        self.inner.read_at(offset, buf)
    }
}

/// Given a file that becomes unreadable mid-way on the sending side, then the sender fails the
/// transfer with `read_failed`, the receiver removes its part, and both hear it once.
#[test]
fn a_sender_that_cannot_read_its_file_ends_the_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = 2 * MIB;
    let sha256 = sha_of(&mut Generated::new(6, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    let id = link
        .a
        .send_file(
            "gone.bin",
            size,
            sha256,
            Box::new(Failing {
                inner: Generated::new(6, size),
                fail_at: MIB,
            }),
            link.now,
        )
        .unwrap();
    link.exchange_control();
    let Some(TransferEvent::Offered { offer, .. }) = link.events_b.pop() else {
        panic!()
    };
    link.b
        .accept(offer.id, folder.prepare(&offer).unwrap(), link.now)
        .unwrap();
    link.exchange_control();
    link.run();
    let read_failed = |events: &[TransferEvent]| {
        events
            .iter()
            .filter(|e| {
                matches!(e, TransferEvent::Ended {
                    id: ended,
                    ending: Ending::Failed { by: FileRole::Sender, code: FileErrorCode::ReadFailed, .. },
                    ..
                } if *ended == id)
            })
            .count()
    };
    assert_eq!(read_failed(&link.events_a), 1, "{:?}", link.events_a);
    assert_eq!(read_failed(&link.events_b), 1, "{:?}", link.events_b);
    assert!(files_in(dir.path()).is_empty());
}

/// Given a transfer under way, when both users cancel at the same moment, then the crossing
/// cancels are no error and each side reports the end once, with its own reason.
#[test]
fn cancels_that_cross_end_the_transfer_once_on_each_side() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = 8 * MIB;
    let sha256 = sha_of(&mut Generated::new(8, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    let (id, _) = link.offer_and_accept("both.bin", Generated::new(8, size), sha256, &folder);
    link.round(&mut |_| {});
    link.a
        .cancel(Direction::Outgoing, id, "sender quits")
        .unwrap();
    link.b
        .cancel(Direction::Incoming, id, "receiver quits")
        .unwrap();
    link.exchange_control();
    link.run();
    assert!(link.b_errors.is_empty(), "{:?}", link.b_errors);
    let ends = |events: &[TransferEvent]| -> Vec<Ending> {
        events
            .iter()
            .filter_map(|e| match e {
                TransferEvent::Ended { ending, .. } => Some(ending.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        ends(&link.events_a),
        [Ending::Cancelled {
            by: FileRole::Sender,
            reason: "sender quits".into()
        }]
    );
    assert_eq!(
        ends(&link.events_b),
        [Ending::Cancelled {
            by: FileRole::Receiver,
            reason: "receiver quits".into()
        }]
    );
    assert!(files_in(dir.path()).is_empty());
}

/// Given a file being received, when the same file (same name, size and hash) is offered again
/// under another id, then the second offer is refused (both would write the same part file)
/// and the first goes on to completion.
#[test]
fn the_same_file_twice_at_once_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = 6 * MIB;
    let sha256 = sha_of(&mut Generated::new(9, size));
    let mut link = Link::new(Limits::default(), Instant::now());
    link.offer_and_accept("twice.bin", Generated::new(9, size), sha256, &folder);
    let second = link
        .a
        .send_file(
            "twice.bin",
            size,
            sha256,
            Box::new(Generated::new(9, size)),
            link.now,
        )
        .unwrap();
    link.exchange_control();
    assert!(matches!(
        link.events_a.last(),
        Some(TransferEvent::Ended { id, ending: Ending::Failed { code: FileErrorCode::Other, message, .. }, .. })
            if *id == second && message.contains("same file")
    ));
    link.run();
    assert_eq!(sha_of_file(&dir.path().join("twice.bin")), sha256);
    assert_eq!(files_in(dir.path()), ["twice.bin"]);
}

/// Given a transfer under way, when the sender offers a second file under the same id, then
/// both are cut off with `protocol`: the numbering can no longer be trusted.
#[test]
fn an_offer_reusing_a_live_id_cuts_the_transfer_off() {
    let mut rogue = Rogue::offered(MIB, Limits::default());
    rogue.send(0, 100).unwrap();
    let again = ControlMessage::FileOffer {
        id: 9,
        name: "y.bin".into(),
        size: 10,
        sha256: Sha256([1; 32]),
    };
    assert!(matches!(
        rogue.book.handle_control(&again, rogue.now),
        Err(FileError::DuplicateId { id: 9 })
    ));
    rogue.assert_cut_off();
}

/// Given a receiver that grants only the smallest window (one chunk), when a file is sent, then
/// the sender never has more than one chunk in flight and the file still arrives intact.
#[test]
fn the_smallest_window_still_moves() {
    let dir = tempfile::tempdir().unwrap();
    let folder = DownloadFolder::new(dir.path()).unwrap();
    let size = MIB + 5;
    let sha256 = sha_of(&mut Generated::new(10, size));
    let limits = Limits {
        window: rtcdesk_proto::control::MIN_FILE_WINDOW,
        ..Limits::default()
    };
    let mut link = Link::new(limits, Instant::now());
    link.offer_and_accept("small.bin", Generated::new(10, size), sha256, &folder);
    let mut rounds = 0;
    loop {
        let mut message = Vec::new();
        let mut in_flight = 0;
        while link.a.poll_file(&mut message) {
            in_flight += message.len() - rtcdesk_proto::file::HEADER_LEN;
            link.file.push_back(std::mem::take(&mut message));
        }
        assert!(in_flight <= 16384, "{in_flight} bytes in flight");
        if !link.round(&mut |_| {}) {
            break;
        }
        rounds += 1;
    }
    assert!(rounds >= 64, "{rounds} rounds");
    assert_eq!(sha_of_file(&dir.path().join("small.bin")), sha256);
}
