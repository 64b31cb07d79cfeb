//! Roles at the puppet: the puppet's user lets a controller in to watch only, and the puppet
//! holds that session to it whatever the controller sends: no input injected, no file taken
//! (and no clipboard written: the viewer's tests check that against a clipboard).

mod common;

use std::sync::Arc;

use common::*;
use rtcdesk_controller::ControllerEvent;
use rtcdesk_files::{Ending, TransferEvent};
use rtcdesk_proto::input::{InputEvent, InputMessage};
use rtcdesk_puppet::{AcceptPolicy, Decision, PuppetEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_let_in_to_watch_only_can_never_inject_or_push_a_file() {
    let work = tempfile::tempdir().unwrap();
    let downloads = work.path().join("downloads");
    let mut puppet = start_puppet_with({
        let downloads = downloads.clone();
        move |config| {
            config.accept = AcceptPolicy::Callback(Arc::new(|_| Decision::ViewOnly));
            // Even with every file offer taken without asking.
            config.accept_files = true;
            config.download_dir = Some(downloads);
        }
    })
    .await;
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    let (mut controller, mut pictures) = connect_controller(&puppet).await;
    let started = wait_puppet_event(&mut puppet, "the session start", |e| {
        matches!(e, PuppetEvent::SessionStarted { .. })
    })
    .await;
    assert!(
        matches!(
            started,
            PuppetEvent::SessionStarted {
                view_only: true,
                ..
            }
        ),
        "{started:?}"
    );
    // The video flows: watching is what it may do.
    wait_picture(&mut pictures, "a picture", |_| true).await;
    // The puppet tells it, so its window shows it and sends nothing.
    wait_controller_event(&mut controller, "the view-only notice", |e| {
        matches!(e, ControllerEvent::ViewOnly(true))
    })
    .await;

    // It sends anyway: typed text, the clipboard, a file.
    controller
        .send_input(&InputMessage {
            seq: 1,
            timestamp_us: rtcdesk_media::frame::unix_micros_now(),
            event: InputEvent::Text("rm -rf ~".into()),
        })
        .await
        .expect("sent");
    // (The clipboard refusal itself is checked against a real clipboard in the viewer's
    // tests, `crates/puppet/src/viewer.rs`; here it must at least not disturb the session.)
    let _ = controller.clipboard_sender().try_send(
        &rtcdesk_proto::control::ControlMessage::Clipboard {
            text: "pasted by a watcher".into(),
        },
    );
    let file = work.path().join("payload.sh");
    std::fs::write(&file, b"#!/bin/sh\necho hi\n").unwrap();
    controller.files().send(&file).expect("offered");
    let refused = wait_controller_event(&mut controller, "the refused file", |e| {
        matches!(e, ControllerEvent::File(TransferEvent::Ended { .. }))
    })
    .await;
    match refused {
        ControllerEvent::File(TransferEvent::Ended {
            ending: Ending::Declined { reason },
            ..
        }) => assert!(reason.contains("view-only"), "{reason}"),
        other => panic!("not declined: {other:?}"),
    }
    assert_eq!(desktop.typed_text(), "", "no input reached the desktop");
    assert!(
        !downloads.join("payload.sh").exists(),
        "no file was written"
    );
    controller.close().await;
    puppet.shutdown().await;
}
