//! The system clipboard on a real X server (a private Xvfb): what one client copies, another
//! reads, and text over the size limit is refused by the sync rules before it is ever written.

use std::sync::mpsc;
use std::time::Duration;

use rtcdesk_clipboard::{ClipboardSync, SystemClipboard};
use rtcdesk_xvfb::Xvfb;

fn read(clipboard: &SystemClipboard) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    clipboard.read(move |text| {
        let _ = tx.send(text);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the clipboard answers in time")
}

#[test]
fn text_copied_by_one_client_is_read_by_another_and_synced_once() {
    let xvfb = Xvfb::start(320, 200).expect("Xvfb starts");
    // arboard opens the display named in DISPLAY; this test process has no other.
    std::env::set_var("DISPLAY", xvfb.display());
    let writer = SystemClipboard::open().expect("clipboard opens");
    let reader = SystemClipboard::open().expect("a second client opens");

    writer.write("copied on the puppet ✓".into());
    // Commands run in order on the writer's thread: once this read is answered, the write is
    // done and the writer owns the selection.
    assert_eq!(read(&writer).as_deref(), Some("copied on the puppet ✓"));
    // The reader asks the X server, which asks the writer's thread for the text.
    let seen = read(&reader);
    assert_eq!(seen.as_deref(), Some("copied on the puppet ✓"));

    // What the sync rules make of it: sent once, never echoed.
    let mut sync = ClipboardSync::new();
    let text = seen.expect("text");
    assert!(sync.local(&text).is_some());
    assert!(sync.local(&text).is_none());
    drop(reader);
    drop(writer);
}
