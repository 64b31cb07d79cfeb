//! The puppet's injection shell: a dedicated thread that carries out actions (enigo blocks on
//! the X server), fed through a bounded queue, and [`PuppetInput`], which joins one session's
//! policy to that queue.
//!
//! # Flood policy
//!
//! The queue is shared by every session on the puppet, and each session may have at most
//! `capacity` actions and [`MAX_QUEUED_TEXT`] bytes of text in it (typing is the slowest action),
//! so one controller's flood never ends another's session. Pointer moves coalesce: a move
//! replaces the same session's move at the tail of the queue (latest wins), and when the
//! session's share is full a move is dropped. Keys,
//! buttons, wheel and text are never dropped silently: when one finds the queue full, the
//! session is ended on the spot (its queued actions discarded, every key and button it held
//! released; other sessions' actions stay) and [`Error::Overloaded`] tells the caller to close
//! it. The producer never blocks, so a flood
//! cannot stall the network side, and the injector thread never holds more than `capacity`
//! actions plus one session's releases, so it cannot fall unboundedly behind either.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtcdesk_proto::InputMessage;

use crate::{Action, Error, Injector, InputSession, SessionConfig, SessionStats};

/// Queue capacity for one interactive session. The input benchmark measured 30-60 µs per event
/// on Xvfb, so a full queue is tens of milliseconds of work; a real desktop with slow clients
/// can take longer per event, and a controller 512 events ahead is flooding.
pub const DEFAULT_QUEUE_CAPACITY: usize = 512;

/// Bytes of text the queue holds at most: at the tens of thousands of characters per second the
/// X typist manages, well under a second of typing. Longer pastes belong on the clipboard.
pub const MAX_QUEUED_TEXT: usize = 16 * 1024;

/// Counts kept by the injector thread and its queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Actions carried out (including ones the injector reported an error for).
    pub applied: u64,
    /// Actions the injector reported an error for.
    pub failed: u64,
    /// Pointer moves replaced by a newer move before they were injected.
    pub coalesced_moves: u64,
    /// Pointer moves dropped because the queue was full.
    pub dropped_moves: u64,
    /// Sessions ended because a must-deliver event found the queue full.
    pub overloads: u64,
}

/// Whose an action is: each [`PuppetInput`] has its own; [`InjectorHandle::push`] uses 0.
type Owner = u64;

/// Hands out owners to sessions.
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, Default)]
struct QueueState {
    actions: VecDeque<(Owner, Action)>,
    /// The worker is carrying out an action it has taken off the queue.
    busy: bool,
    closed: bool,
    stopped: bool,
    stats: QueueStats,
}

#[derive(Debug)]
struct Shared {
    capacity: usize,
    state: Mutex<QueueState>,
    /// Signalled when actions arrive or the queue closes (wakes the worker).
    work: Condvar,
    /// Signalled when the worker finishes an action (wakes [`InjectorHandle::wait_idle`]).
    progress: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The thread that owns an [`Injector`] and carries out queued actions in order. Dropping it
/// closes the queue, lets the thread finish what is queued (releases included), and joins it.
#[derive(Debug)]
pub struct InjectorThread {
    handle: InjectorHandle,
    thread: Option<JoinHandle<()>>,
}

/// A cloneable sender into an [`InjectorThread`]'s queue.
#[derive(Debug, Clone)]
pub struct InjectorHandle {
    shared: Arc<Shared>,
}

impl InjectorThread {
    /// Starts the thread and builds the injector on it with `make` (enigo's connection is then
    /// created and used on one thread). Returns `make`'s error if it fails.
    pub fn spawn<I, F>(capacity: usize, make: F) -> Result<Self, Error>
    where
        I: Injector,
        F: FnOnce() -> Result<I, Error> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            capacity: capacity.max(1),
            state: Mutex::new(QueueState::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let (ready_tx, ready_rx) = mpsc::channel();
        let worker_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("rtcdesk-inject".into())
            .spawn(move || match make() {
                Ok(injector) => {
                    let _ = ready_tx.send(Ok(()));
                    run_worker(&worker_shared, injector);
                }
                Err(error) => {
                    worker_shared.lock().stopped = true;
                    let _ = ready_tx.send(Err(error));
                }
            })
            .map_err(|_| Error::InjectorStopped)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                handle: InjectorHandle { shared },
                thread: Some(thread),
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::InjectorStopped)
            }
        }
    }

    /// A sender into this thread's queue, for sessions.
    pub fn handle(&self) -> InjectorHandle {
        self.handle.clone()
    }
}

impl Drop for InjectorThread {
    fn drop(&mut self) {
        self.handle.shared.lock().closed = true;
        self.handle.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Marks the queue stopped when the worker exits, also by a panic in an injector, so producers
/// get `InjectorStopped` instead of filling a queue nobody reads.
struct StopOnExit<'a>(&'a Shared);

impl Drop for StopOnExit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.stopped = true;
        state.busy = false;
        drop(state);
        self.0.progress.notify_all();
    }
}

/// Bytes of text an action adds to the queue.
fn text_len(action: &Action) -> usize {
    match action {
        Action::Text(text) => text.len(),
        _ => 0,
    }
}

fn run_worker<I: Injector>(shared: &Shared, mut injector: I) {
    let _stop = StopOnExit(shared);
    loop {
        let action = {
            let mut state = shared.lock();
            state.busy = false;
            shared.progress.notify_all();
            loop {
                if let Some((_, action)) = state.actions.pop_front() {
                    state.busy = true;
                    break action;
                }
                if state.closed {
                    return;
                }
                state = shared
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let result = injector.apply(&action);
        let mut state = shared.lock();
        state.stats.applied += 1;
        if let Err(error) = result {
            state.stats.failed += 1;
            drop(state);
            tracing::warn!(?action, %error, "input injection failed");
        }
    }
}

impl InjectorHandle {
    /// Queues one action under the flood policy (see the module docs); `Err(Overloaded)` means a
    /// must-deliver action found the queue full and was not queued.
    pub fn push(&self, action: Action) -> Result<(), Error> {
        self.push_from(0, action)
    }

    fn push_from(&self, owner: Owner, action: Action) -> Result<(), Error> {
        let mut state = self.shared.lock();
        if state.stopped {
            return Err(Error::InjectorStopped);
        }
        let (queued, text_bytes) = state
            .actions
            .iter()
            .filter(|(o, _)| *o == owner)
            .fold((0, 0), |(n, bytes), (_, action)| {
                (n + 1, bytes + text_len(action))
            });
        if matches!(action, Action::MoveTo { .. }) {
            if let Some((o, tail @ Action::MoveTo { .. })) = state.actions.back_mut() {
                if *o == owner {
                    *tail = action;
                    state.stats.coalesced_moves += 1;
                    return Ok(());
                }
            }
            if queued >= self.shared.capacity {
                state.stats.dropped_moves += 1;
                return Ok(());
            }
        } else if queued >= self.shared.capacity || text_bytes + text_len(&action) > MAX_QUEUED_TEXT
        {
            return Err(Error::Overloaded {
                capacity: self.shared.capacity,
            });
        }
        state.actions.push_back((owner, action));
        drop(state);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Replaces what `owner` has queued with `releases`, which bypass the capacity (there are
    /// at most one per key and button); other sessions' actions stay. Used when a session ends.
    fn replace_with(&self, owner: Owner, releases: Vec<Action>, overloaded: bool) {
        let mut state = self.shared.lock();
        state.actions.retain(|(o, _)| *o != owner);
        state
            .actions
            .extend(releases.into_iter().map(|action| (owner, action)));
        if overloaded {
            state.stats.overloads += 1;
        }
        drop(state);
        self.shared.work.notify_one();
    }

    /// Waits until every queued action has been carried out (or the thread stopped), at most
    /// `timeout`; returns whether it got there. For tests and benchmarks: after it, an enigo
    /// injector's events have reached the X server.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while !state.stopped && (state.busy || !state.actions.is_empty()) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            state = self
                .shared
                .progress
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Actions waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.shared.lock().actions.len()
    }

    /// The queue's and the thread's counts so far.
    pub fn stats(&self) -> QueueStats {
        self.shared.lock().stats
    }
}

/// One controller's input on the puppet: the session policy ([`InputSession`]) feeding an
/// injector thread. Ending it, explicitly or by dropping it, releases every key and button the
/// session left pressed; keep the [`InjectorThread`] alive longer than its sessions so those
/// releases are carried out.
#[derive(Debug)]
pub struct PuppetInput {
    session: InputSession,
    injector: InjectorHandle,
    /// Marks this session's actions in the shared queue.
    owner: Owner,
}

impl PuppetInput {
    /// A new session on `injector`, which other sessions may share.
    pub fn new(config: SessionConfig, injector: InjectorHandle) -> Self {
        Self {
            session: InputSession::new(config),
            injector,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Takes one decoded message from the controller. `Err(Overloaded)` and
    /// `Err(InjectorStopped)` mean the session has been ended (everything released) and should
    /// be closed; `Err(SessionEnded)` that it was already.
    pub fn handle_message(&mut self, message: &InputMessage) -> Result<(), Error> {
        if self.session.has_ended() {
            return Err(Error::SessionEnded);
        }
        self.session.handle_message(message);
        while let Some(action) = self.session.poll_action() {
            if let Err(error) = self.injector.push_from(self.owner, action) {
                self.finish(matches!(error, Error::Overloaded { .. }));
                return Err(error);
            }
        }
        Ok(())
    }

    /// Ends the session: drops what is not injected yet and releases everything held. Later
    /// messages get `Err(SessionEnded)`.
    pub fn end(&mut self) {
        if !self.session.has_ended() {
            self.finish(false);
        }
    }

    fn finish(&mut self, overloaded: bool) {
        self.session.end();
        let releases: Vec<Action> = std::iter::from_fn(|| self.session.poll_action()).collect();
        self.injector.replace_with(self.owner, releases, overloaded);
    }

    /// The captured screen changed size or place (a resolution change); later positions map
    /// onto the new area.
    pub fn set_screen(&mut self, screen: crate::ScreenArea) {
        self.session.set_screen(screen);
    }

    /// The session's counts.
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// The session policy, to inspect what it holds.
    pub fn session(&self) -> &InputSession {
        &self.session
    }
}

impl Drop for PuppetInput {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Recorder, ScreenArea};
    use rtcdesk_proto::input::{InputEvent, Modifiers, MouseButton};
    use rtcdesk_proto::KeyCode;

    const WAIT: Duration = Duration::from_secs(5);

    /// An injector that holds each action until the test lets it go, to fill the queue.
    #[derive(Clone)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        inner: Recorder,
    }

    impl Gate {
        fn new(inner: Recorder) -> Self {
            Self {
                open: Arc::new((Mutex::new(false), Condvar::new())),
                inner,
            }
        }

        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    impl Injector for Gate {
        fn apply(&mut self, action: &Action) -> Result<(), Error> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.inner.apply(action)
        }
    }

    fn message(seq: u32, event: InputEvent) -> InputMessage {
        InputMessage {
            seq,
            timestamp_us: 0,
            event,
        }
    }

    fn key(code: KeyCode, pressed: bool) -> InputEvent {
        InputEvent::Key {
            code,
            pressed,
            modifiers: Modifiers::NONE,
        }
    }

    #[test]
    fn dropping_the_session_releases_what_it_held() {
        let recorder = Recorder::new();
        let thread = InjectorThread::spawn(8, {
            let recorder = recorder.clone();
            move || Ok(recorder)
        })
        .unwrap();
        let mut input = PuppetInput::new(
            SessionConfig::new(ScreenArea::at_origin(100, 100)),
            thread.handle(),
        );
        input
            .handle_message(&message(1, key(KeyCode::ControlLeft, true)))
            .unwrap();
        input
            .handle_message(&message(
                2,
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: true,
                    x: 10,
                    y: 10,
                    modifiers: Modifiers::CONTROL,
                },
            ))
            .unwrap();
        assert!(thread.handle().wait_idle(WAIT));
        assert_eq!(recorder.pressed_keys().len(), 1);
        assert_eq!(recorder.pressed_buttons().len(), 1);
        drop(input);
        assert!(thread.handle().wait_idle(WAIT));
        assert!(recorder.pressed_keys().is_empty());
        assert!(recorder.pressed_buttons().is_empty());
    }

    #[test]
    fn a_flood_coalesces_moves_and_ends_the_session_rather_than_drop_a_key() {
        let recorder = Recorder::new();
        let gate = Gate::new(recorder.clone());
        let thread = InjectorThread::spawn(4, {
            let gate = gate.clone();
            move || Ok(gate)
        })
        .unwrap();
        let handle = thread.handle();
        let mut input = PuppetInput::new(
            SessionConfig::new(ScreenArea::at_origin(65536, 100)),
            handle.clone(),
        );
        let mut seq = 0;
        let mut send = |input: &mut PuppetInput, event| {
            seq += 1;
            input.handle_message(&message(seq, event))
        };
        // A shift goes down, then the injector stalls (the gate holds the first action).
        send(&mut input, key(KeyCode::ShiftLeft, true)).unwrap();
        // Thousands of moves: they collapse into one queued move.
        for x in 0..5000u16 {
            send(&mut input, InputEvent::PointerMove { x, y: 0 }).unwrap();
        }
        assert!(handle.queued() <= 2, "{} queued", handle.queued());
        // Keys fill the queue; the one that finds it full ends the session.
        let mut outcome = Ok(());
        for pressed in [true, false].into_iter().cycle().take(8) {
            outcome = send(&mut input, key(KeyCode::KeyA, pressed));
            if outcome.is_err() {
                break;
            }
        }
        assert!(
            matches!(outcome, Err(Error::Overloaded { capacity: 4 })),
            "{outcome:?}"
        );
        assert!(matches!(
            send(&mut input, key(KeyCode::KeyB, true)),
            Err(Error::SessionEnded)
        ));
        gate.open();
        assert!(handle.wait_idle(WAIT));
        assert!(
            recorder.pressed_keys().is_empty(),
            "{:?}",
            recorder.actions()
        );
        let stats = handle.stats();
        assert!(stats.coalesced_moves >= 4990, "{stats:?}");
        assert_eq!(stats.overloads, 1);
    }

    #[test]
    fn one_session_ending_or_flooding_leaves_another_sessions_input_alone() {
        let recorder = Recorder::new();
        let gate = Gate::new(recorder.clone());
        let thread = InjectorThread::spawn(4, {
            let gate = gate.clone();
            move || Ok(gate)
        })
        .unwrap();
        let config = || SessionConfig::new(ScreenArea::at_origin(100, 100));
        let mut steady = PuppetInput::new(config(), thread.handle());
        let mut flooder = PuppetInput::new(config(), thread.handle());
        // The injector stalls on the first action; the steady session queues a shift press
        // and a key tap behind it.
        steady
            .handle_message(&message(1, key(KeyCode::ShiftLeft, true)))
            .unwrap();
        steady
            .handle_message(&message(2, key(KeyCode::KeyA, true)))
            .unwrap();
        steady
            .handle_message(&message(3, key(KeyCode::KeyA, false)))
            .unwrap();
        // The other floods its own share of the queue and is ended for it.
        let mut seq = 0;
        let outcome = loop {
            seq += 1;
            let pressed = seq % 2 == 1;
            if let Err(error) = flooder.handle_message(&message(seq, key(KeyCode::KeyB, pressed))) {
                break error;
            }
        };
        assert!(matches!(outcome, Error::Overloaded { .. }), "{outcome:?}");
        // The steady session is still taken, and its queued actions were not thrown away.
        steady
            .handle_message(&message(4, key(KeyCode::ShiftLeft, false)))
            .unwrap();
        gate.open();
        assert!(thread.handle().wait_idle(WAIT));
        let actions = recorder.actions();
        let taps_of_a = actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Key {
                        code: KeyCode::KeyA,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(taps_of_a, 2, "{actions:?}");
        assert!(recorder.pressed_keys().is_empty(), "{actions:?}");
        assert!(!steady.session().has_ended());
    }

    #[test]
    fn after_a_resolution_change_positions_map_onto_the_new_screen() {
        let recorder = Recorder::new();
        let thread = InjectorThread::spawn(8, {
            let recorder = recorder.clone();
            move || Ok(recorder)
        })
        .unwrap();
        let mut input = PuppetInput::new(
            SessionConfig::new(ScreenArea::at_origin(1280, 720)),
            thread.handle(),
        );
        let corner = InputEvent::PointerMove { x: 65535, y: 65535 };
        input.handle_message(&message(1, corner.clone())).unwrap();
        // Carried out before the next move, which would otherwise replace it in the queue.
        assert!(thread.handle().wait_idle(WAIT));
        input.set_screen(ScreenArea::at_origin(1920, 1080));
        input.handle_message(&message(2, corner)).unwrap();
        assert!(thread.handle().wait_idle(WAIT));
        let moves: Vec<(i32, i32)> = recorder
            .actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::MoveTo { x, y, .. } => Some((x, y)),
                _ => None,
            })
            .collect();
        assert_eq!(moves, vec![(1279, 719), (1919, 1079)]);
    }

    #[test]
    fn queued_text_is_bounded_in_bytes_as_well_as_in_events() {
        let gate = Gate::new(Recorder::new());
        let thread = InjectorThread::spawn(1000, {
            let gate = gate.clone();
            move || Ok(gate)
        })
        .unwrap();
        let handle = thread.handle();
        let chunk = "x".repeat(rtcdesk_proto::input::MAX_TEXT);
        let mut accepted = 0;
        let outcome = loop {
            match handle.push(Action::Text(chunk.clone())) {
                Ok(()) => accepted += 1,
                Err(error) => break error,
            }
        };
        assert!(matches!(outcome, Error::Overloaded { .. }), "{outcome:?}");
        // The worker may hold one chunk while the gate is shut; the queue holds the budget.
        assert!((16..=17).contains(&accepted), "{accepted} chunks accepted");
        gate.open();
        assert!(handle.wait_idle(WAIT));
        handle.push(Action::Text(chunk)).unwrap();
    }

    #[test]
    fn a_panicking_injector_stops_the_queue_instead_of_filling_it() {
        struct Panics;
        impl Injector for Panics {
            fn apply(&mut self, _: &Action) -> Result<(), Error> {
                panic!("injector bug");
            }
        }
        let thread = InjectorThread::spawn(4, || Ok(Panics)).unwrap();
        let handle = thread.handle();
        handle.push(Action::Text("x".into())).unwrap();
        assert!(handle.wait_idle(WAIT));
        assert!(matches!(
            handle.push(Action::Text("y".into())),
            Err(Error::InjectorStopped)
        ));
    }

    #[test]
    fn a_failing_constructor_is_reported() {
        let result = InjectorThread::spawn(4, || -> Result<Recorder, Error> {
            Err(Error::InjectorStopped)
        });
        assert!(matches!(result, Err(Error::InjectorStopped)));
    }
}
