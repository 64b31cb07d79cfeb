//! The puppet's user's say over sessions through [`PuppetControls`], between a real puppet and
//! real controllers over loopback: a request answered by the application, control moved from
//! one controller to another (both told), a session disconnected, and a new code that retires
//! the old one at once.

use std::time::Duration;

use rtcdesk_controller::{ConnectError, Controller, ControllerConfig, ControllerEvent, EndReason};
use rtcdesk_proto::input::{InputEvent, InputMessage};
use rtcdesk_proto::signal::SessionId;
use rtcdesk_puppet::{
    AcceptPolicy, Decision, Puppet, PuppetConfig, PuppetEvent, SessionState, Source,
};

mod common;

use common::{NoPictures, DEADLINE};

async fn puppet_event(
    puppet: &mut Puppet,
    mut want: impl FnMut(&PuppetEvent) -> bool,
) -> PuppetEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match puppet.next_event().await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!("the puppet stopped"),
            }
        }
    })
    .await
    .expect("the puppet's event in time")
}

async fn controller_event(
    controller: &mut Controller,
    mut want: impl FnMut(&ControllerEvent) -> bool,
) -> ControllerEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!("the controller's session ended"),
            }
        }
    })
    .await
    .expect("the controller's event in time")
}

/// Types `text` on the puppet as `controller`'s user.
fn type_text(controller: &Controller, text: &str) {
    let message = InputMessage {
        seq: 1,
        timestamp_us: 0,
        event: InputEvent::Text(text.into()),
    };
    controller
        .input_sender()
        .try_send(&message)
        .expect("input queued");
}

/// Dials the puppet as `name`; the application answers with `decision`.
async fn connect_as(
    puppet: &mut Puppet,
    name: &str,
    decision: Decision,
) -> (Controller, SessionId) {
    let mut config = ControllerConfig::for_pairing(puppet.signal_url(), puppet.pairing_code());
    config.name = name.into();
    config.decoder_threads = 1;
    let dialling = tokio::spawn(Controller::connect(config, Box::new(NoPictures)));
    let asked = puppet_event(puppet, |e| matches!(e, PuppetEvent::Incoming { .. })).await;
    let PuppetEvent::Incoming {
        session,
        from,
        verified,
    } = asked
    else {
        unreachable!()
    };
    assert_eq!(from, name);
    assert!(verified, "all twelve digits were given");
    puppet
        .controls()
        .decide(session.clone(), decision)
        .expect("answer taken");
    let controller = dialling
        .await
        .expect("the dialling task")
        .expect("the controller connects");
    (controller, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_puppets_user_moves_control_disconnects_and_renews_the_code() {
    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: 320,
        height: 180,
    });
    config.fps = 10;
    config.accept = AcceptPolicy::Application {
        timeout: Duration::from_secs(30),
    };
    let mut puppet = Puppet::start(config).await.expect("the puppet starts");
    let controls = puppet.controls();

    let (mut first, first_id) = connect_as(&mut puppet, "first", Decision::Control).await;
    let (mut second, second_id) = connect_as(&mut puppet, "second", Decision::Control).await;
    // One controls at a time: the second only watches, and is told so.
    controller_event(&mut second, |e| *e == ControllerEvent::ViewOnly(true)).await;
    puppet_event(
        &mut puppet,
        |e| matches!(e, PuppetEvent::SessionConnected { session } if *session == second_id),
    )
    .await;
    let roles = |controls: &rtcdesk_puppet::PuppetControls| -> Vec<(String, bool)> {
        let mut roles: Vec<(String, bool)> = controls
            .sessions()
            .into_iter()
            .filter(|s| s.state == SessionState::Connected)
            .map(|s| (s.name, s.view_only))
            .collect();
        roles.sort();
        roles
    };
    assert_eq!(
        roles(&controls),
        vec![("first".to_owned(), false), ("second".to_owned(), true)]
    );

    // Given control to the second, then the first only watches: both are told.
    controls
        .set_view_only(second_id.clone(), false)
        .expect("taken");
    controller_event(&mut first, |e| *e == ControllerEvent::ViewOnly(true)).await;
    controller_event(&mut second, |e| *e == ControllerEvent::ViewOnly(false)).await;
    puppet_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::RoleChanged { session, view_only: false } if *session == second_id)
    })
    .await;
    assert_eq!(
        roles(&controls),
        vec![("first".to_owned(), true), ("second".to_owned(), false)]
    );
    // And the puppet acts on it: what the first types is refused, what the second types lands.
    let desktop = puppet.synthetic_desktop().expect("a synthetic desktop");
    type_text(&first, "from first ");
    type_text(&second, "from second");
    let typed = tokio::task::spawn_blocking(move || {
        desktop.wait_typed(DEADLINE, |typed| typed.contains("from second"))
    })
    .await
    .expect("the waiting thread");
    assert!(
        typed.contains("from second"),
        "the one in control types: {typed:?}"
    );
    assert!(
        !typed.contains("from first"),
        "the one watching does not: {typed:?}"
    );

    // Disconnected by the puppet's user: the first's session ends as the puppet's doing.
    controls.disconnect(first_id.clone()).expect("taken");
    let ended = controller_event(&mut first, |e| matches!(e, ControllerEvent::Ended(_))).await;
    assert_eq!(ended, ControllerEvent::Ended(EndReason::PuppetLeft));
    puppet_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SessionEnded { session, reason: rtcdesk_puppet::EndReason::Disconnected } if *session == first_id)
    })
    .await;

    // A new code: the old one is refused at once, the running session goes on.
    let old = puppet.pairing_code();
    controls.new_code().expect("taken");
    let PuppetEvent::Registered { pairing, .. } =
        puppet_event(&mut puppet, |e| matches!(e, PuppetEvent::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_ne!(pairing.route, old.route);
    assert_eq!(puppet.pairing_code(), pairing);
    let mut stale = ControllerConfig::for_pairing(puppet.signal_url(), old);
    stale.decoder_threads = 1;
    match Controller::connect(stale, Box::new(NoPictures)).await {
        Err(ConnectError::UnknownCode(code)) => assert_eq!(code, old.route),
        Err(other) => panic!("expected the old code to be unknown, got {other}"),
        Ok(_) => panic!("the old code still connects"),
    }
    assert_eq!(roles(&controls), vec![("second".to_owned(), false)]);

    second.close().await;
    puppet.shutdown().await;
}
