//! Unattended access over loopback: a puppet registered under its permanent device ID, reached
//! with the right password (no one asked), refused with a wrong one, locked out after the
//! limit and let in again once its owner unlocks it; and every byte through the signaling
//! server is free of the password and its key.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rtcdesk_controller::{ConnectError, Controller, ControllerConfig};
use rtcdesk_pake::{DeviceKey, PakeError};
use rtcdesk_puppet::attempts::AttemptPolicy;
use rtcdesk_puppet::unattended::{AttemptLog, DeviceStore};
use rtcdesk_puppet::{AcceptPolicy, Puppet, PuppetEvent, Signaling, UnattendedSetup};
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const PASSWORD: &str = "correct horse battery staple";

/// A config folder set up as `puppet set-password` leaves it.
fn store() -> (tempfile::TempDir, DeviceStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = DeviceStore::new(dir.path().join("rtcdesk"));
    let claim = store.device_or_create(false).unwrap();
    store
        .set_key(claim.id, &DeviceKey::derive(claim.id, PASSWORD))
        .unwrap();
    (dir, store)
}

/// No backoff (its timing is the attempt guard's and the book's unit tests), and a lockout
/// after three wrong passwords, so the test reaches it at once.
fn quick_policy() -> AttemptPolicy {
    AttemptPolicy {
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        lock_after: 3,
    }
}

async fn unattended_puppet(store: &DeviceStore, signaling: Option<String>) -> Puppet {
    let store = store.clone();
    start_puppet_with(move |config| {
        // The prompt policy would wait for a person: an unattended puppet never asks it.
        config.accept = AcceptPolicy::Callback(Arc::new(|_| panic!("nobody is asked")));
        config.unattended = Some(UnattendedSetup {
            store,
            policy: quick_policy(),
        });
        if let Some(url) = signaling {
            config.signaling = Signaling::Url(url);
        }
    })
    .await
}

fn device_config(puppet: &Puppet, password: &str) -> ControllerConfig {
    let id = puppet.control_code();
    let mut config =
        ControllerConfig::for_device(puppet.signal_url(), id, DeviceKey::derive(id, password));
    config.name = "home".into();
    config.bind = Some("127.0.0.1:0".parse().expect("address"));
    config.decoder_threads = 1;
    config
}

async fn dial(puppet: &Puppet, password: &str) -> Result<Controller, ConnectError> {
    let (sink, _pictures) = channel_sink();
    Controller::connect(device_config(puppet, password), sink).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_gets_in_without_anyone_asked_and_video_flows() {
    let (_dir, store) = store();
    let mut puppet = unattended_puppet(&store, None).await;
    let claim = store.device().unwrap().unwrap();
    assert_eq!(
        puppet.control_code(),
        claim.id,
        "registered under its device ID"
    );
    assert_eq!(puppet.pairing_code().secret, None);
    let (sink, mut pictures) = channel_sink();
    let controller = Controller::connect(device_config(&puppet, PASSWORD), sink)
        .await
        .expect("the right password connects");
    wait_puppet_event(&mut puppet, "the connected session", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;
    wait_picture(&mut pictures, "a picture", |_| true).await;
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_are_refused_counted_on_disk_and_lock_until_unlocked() {
    let (_dir, store) = store();
    let mut puppet = unattended_puppet(&store, None).await;
    let error = dial(&puppet, "Tr0ub4dor&3").await.expect_err("wrong");
    assert!(
        matches!(error, ConnectError::NotVerified(PakeError::WrongCode)),
        "{error}"
    );
    wait_puppet_event(&mut puppet, "the first failure", |e| {
        matches!(e, PuppetEvent::Attempts { consecutive: 1, .. })
    })
    .await;
    // Two more lock it.
    for n in 2..=3u32 {
        let error = dial(&puppet, "still wrong").await.expect_err("wrong");
        assert!(
            matches!(error, ConnectError::NotVerified(PakeError::WrongCode)),
            "{error}"
        );
        wait_puppet_event(
            &mut puppet,
            "the next failure",
            |e| matches!(e, PuppetEvent::Attempts { consecutive, .. } if *consecutive == n),
        )
        .await;
    }
    // The event came once the log was on disk.
    let log = store.attempts().unwrap();
    assert!(log.locked);
    assert_eq!((log.consecutive, log.unseen), (3, 3));
    assert!(log.summary().unwrap().contains("puppet unlock"));
    // Locked: even the right password is refused, with a reason that says what to do.
    match dial(&puppet, PASSWORD).await.expect_err("locked") {
        ConnectError::Rejected {
            reason: Some(reason),
        } => {
            assert!(reason.contains("locked"), "{reason}")
        }
        other => panic!("not a rejection: {other}"),
    }
    // `puppet unlock` writes a clear log; the running puppet notices at the next attempt.
    store.set_attempts(&AttemptLog::default()).unwrap();
    let controller = dial(&puppet, PASSWORD).await.expect("unlocked");
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_puppet_keeps_its_lock() {
    let (_dir, store) = store();
    store
        .set_attempts(&AttemptLog {
            consecutive: 3,
            locked: true,
            unseen: 3,
            last_failure_unix: Some(1),
        })
        .unwrap();
    let puppet = unattended_puppet(&store, None).await;
    assert!(matches!(
        dial(&puppet, PASSWORD).await.expect_err("still locked"),
        ConnectError::Rejected { .. }
    ));
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_or_a_one_time_code_cannot_reach_an_unattended_puppet() {
    let (_dir, store) = store();
    let puppet = unattended_puppet(&store, None).await;
    let mut config = ControllerConfig::new(puppet.signal_url(), puppet.control_code());
    config.bind = Some("127.0.0.1:0".parse().expect("address"));
    let (sink, _pictures) = channel_sink();
    match Controller::connect(config, sink)
        .await
        .expect_err("refused")
    {
        ConnectError::Rejected {
            reason: Some(reason),
        } => {
            assert!(reason.contains("device ID and password"), "{reason}")
        }
        other => panic!("not a rejection: {other}"),
    }
    puppet.shutdown().await;
}

/// Passes every frame between its clients and the server, and keeps a copy of each.
async fn recording_relay(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (upstream, record) = (upstream.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((mut server, _)) = tokio_tungstenite::connect_async(&upstream).await else {
                    return;
                };
                loop {
                    tokio::select! {
                        frame = client.next() => {
                            let Some(Ok(frame)) = frame else { return };
                            if let WsMessage::Text(text) = &frame {
                                record.lock().unwrap().push(text.to_string());
                            }
                            if server.send(frame).await.is_err() { return }
                        }
                        frame = server.next() => {
                            let Some(Ok(frame)) = frame else { return };
                            if let WsMessage::Text(text) = &frame {
                                record.lock().unwrap().push(text.to_string());
                            }
                            if client.send(frame).await.is_err() { return }
                        }
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signaling_server_never_sees_the_password_or_its_key() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let (relay, seen) = recording_relay(server.url()).await;
    let (_dir, store) = store();
    let puppet = unattended_puppet(&store, Some(relay)).await;
    let controller = dial(&puppet, PASSWORD).await.expect("connects");
    controller.close().await;
    puppet.shutdown().await;
    let id = store.device().unwrap().unwrap().id;
    let phc = DeviceKey::derive(id, PASSWORD).to_phc(id);
    let key_b64 = phc.rsplit('$').next().unwrap().to_string();
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().any(|m| m.contains("\"pake\"")),
        "the run went through this relay: {seen:?}"
    );
    for message in seen.iter() {
        assert!(!message.contains(PASSWORD), "{message}");
        assert!(!message.contains("horse"), "{message}");
        assert!(!message.contains(&key_b64), "{message}");
    }
}
