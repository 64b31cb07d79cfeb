//! The tokio shell: one task owns the UDP sockets and the [`Session`], and moves datagrams,
//! timers and messages between them and the application. It never waits for a codec: frames
//! come through the latest-wins slot and leave through a bounded queue with `try_send`.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Channel, PeerConfig};
use crate::gather::bind_addresses;
use crate::session::{PeerEvent, Session};
use crate::video::{VideoReceiver, VideoSender, VideoSlot};
use crate::Error;

/// Datagrams read from the sockets per wake-up before timers and the application get a turn.
const RECEIVE_BATCH: usize = 64;

enum Command {
    CreateOffer(oneshot::Sender<Result<String, Error>>),
    AcceptOffer(String, oneshot::Sender<Result<String, Error>>),
    AcceptAnswer(String, oneshot::Sender<Result<(), Error>>),
    AddRemoteCandidate(String, oneshot::Sender<Result<(), Error>>),
    RequestKeyframe,
    Close,
}

/// A running session: the handle to drive it, its events, and where received video comes out.
#[derive(Debug)]
pub struct Peer {
    /// Signaling, sending and closing; clone it freely.
    pub handle: PeerHandle,
    /// Candidates, lifecycle, data and stats, in order. Read it continuously: when it is full
    /// the network loop waits for you.
    pub events: mpsc::Receiver<PeerEvent>,
    /// Whole received video frames, for the decoder.
    pub video: VideoReceiver,
}

/// Controls one session from any task; every method is cheap and none waits on the network.
#[derive(Debug, Clone)]
pub struct PeerHandle {
    commands: mpsc::Sender<Command>,
    data: mpsc::Sender<(Channel, Vec<u8>)>,
    video: VideoSender,
    local_addresses: Vec<SocketAddr>,
}

impl Peer {
    /// Binds the sockets, builds the session and spawns its task on the current tokio runtime.
    /// Host candidates are ready at once; STUN queries start with the local description.
    pub fn start(config: PeerConfig) -> Result<Peer, Error> {
        crate::install_crypto_provider();
        let mut sockets = Vec::new();
        for addr in bind_addresses(config.bind)? {
            let std_socket = match std::net::UdpSocket::bind(addr) {
                Ok(socket) => socket,
                Err(e) if config.bind.is_none() => {
                    tracing::debug!(%addr, "not binding: {e}");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            set_buffer_sizes(&std_socket, config.socket_buffer_bytes);
            std_socket.set_nonblocking(true)?;
            let local = std_socket.local_addr()?;
            sockets.push((local, UdpSocket::from_std(std_socket)?));
        }
        if sockets.is_empty() {
            return Err(Error::NoInterface);
        }
        let local_addresses: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();
        let session = Session::new(&config, &local_addresses, Instant::now());

        let (command_tx, command_rx) = mpsc::channel(64);
        let (data_tx, data_rx) = mpsc::channel(config.data_queue.max(1));
        let (event_tx, event_rx) = mpsc::channel(config.event_queue.max(1));
        let (video_tx, video_rx) = mpsc::channel(config.video_receive_queue.max(1));
        let slot = Arc::new(VideoSlot::default());
        let driver = Driver {
            session,
            sockets,
            commands: command_rx,
            data: data_rx,
            slot: slot.clone(),
            events: event_tx,
            video: video_tx,
            pending_data: None,
        };
        tokio::spawn(driver.run());
        Ok(Peer {
            handle: PeerHandle {
                commands: command_tx,
                data: data_tx,
                video: VideoSender { slot },
                local_addresses,
            },
            events: event_rx,
            video: VideoReceiver { frames: video_rx },
        })
    }
}

impl PeerHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.commands
            .send(make(reply_tx))
            .await
            .map_err(|_| Error::Closed)?;
        reply_rx.await.map_err(|_| Error::Closed)?
    }

    /// The offerer's SDP offer: AV1 video, send only, and the three data channels.
    pub async fn create_offer(&self) -> Result<String, Error> {
        self.ask(Command::CreateOffer).await
    }

    /// The answerer's reply to a remote offer (plain SDP text), as SDP text.
    pub async fn accept_offer(&self, offer_sdp: String) -> Result<String, Error> {
        self.ask(|reply| Command::AcceptOffer(offer_sdp, reply))
            .await
    }

    /// The offerer applies the remote answer.
    pub async fn accept_answer(&self, answer_sdp: String) -> Result<(), Error> {
        self.ask(|reply| Command::AcceptAnswer(answer_sdp, reply))
            .await
    }

    /// A trickled remote candidate (`candidate:…` as a browser gives it). The empty string is
    /// end-of-candidates. All media are bundled, so the candidate's mid does not matter here.
    pub async fn add_remote_candidate(&self, candidate: String) -> Result<(), Error> {
        self.ask(|reply| Command::AddRemoteCandidate(candidate, reply))
            .await
    }

    /// Queues a message on a data channel, waiting while the queue is full (backpressure:
    /// reliable messages are never dropped). Messages wait until the channel is open.
    /// On [`Channel::Pointer`] a message the network cannot take at once is dropped.
    pub async fn send_data(&self, channel: Channel, bytes: Vec<u8>) -> Result<(), Error> {
        self.data
            .send((channel, bytes))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Like [`PeerHandle::send_data`] without waiting: [`Error::Full`] when the queue is full.
    pub fn try_send_data(&self, channel: Channel, bytes: Vec<u8>) -> Result<(), Error> {
        self.data.try_send((channel, bytes)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::Full,
            mpsc::error::TrySendError::Closed(_) => Error::Closed,
        })
    }

    /// Like [`PeerHandle::send_data`] from a plain thread (e.g. a window's event loop).
    /// Must not be called from inside an async task.
    pub fn blocking_send_data(&self, channel: Channel, bytes: Vec<u8>) -> Result<(), Error> {
        self.data
            .blocking_send((channel, bytes))
            .map_err(|_| Error::Closed)
    }

    /// A sender for the encoder thread, with the keyframe-request flag it should poll.
    pub fn video_sender(&self) -> VideoSender {
        self.video.clone()
    }

    /// Asks the remote sender for a keyframe (PLI), e.g. when the decoder failed.
    pub fn request_keyframe(&self) {
        let _ = self.commands.try_send(Command::RequestKeyframe);
    }

    /// Closes the session cleanly (DTLS close_notify, SCTP shutdown); [`PeerEvent::Closed`]
    /// follows on both sides.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close).await;
    }

    /// The local socket addresses (the host candidates' addresses).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }
}

struct Driver {
    session: Session,
    sockets: Vec<(SocketAddr, UdpSocket)>,
    commands: mpsc::Receiver<Command>,
    data: mpsc::Receiver<(Channel, Vec<u8>)>,
    slot: Arc<VideoSlot>,
    events: mpsc::Sender<PeerEvent>,
    video: mpsc::Sender<crate::ReceivedVideoFrame>,
    /// A reliable message SCTP could not take yet; nothing more is read from `data` until it goes.
    pending_data: Option<(Channel, Vec<u8>)>,
}

impl Driver {
    /// The loop: do everything that is ready without waiting, in priority order (application,
    /// data, due timers, datagrams, video), and only when nothing was ready, wait for anything.
    ///
    /// Due timers are handled here rather than through a tokio sleep: str0m's pacer asks for an
    /// immediate timeout after every paced packet, and tokio's timer wheel has 1 ms granularity,
    /// which would cap video at one packet per millisecond (~10 Mbit/s).
    async fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        loop {
            self.flush().await;
            if self.session.is_closed() {
                break;
            }
            let mut progressed = self.take_commands();
            progressed |= self.feed_data();
            if self.session.poll_timeout() <= Instant::now() {
                self.session.handle_timeout(Instant::now());
                progressed = true;
            }
            progressed |= self.receive_waiting(&mut buf);
            if let Some((frame, overwritten)) = self.slot.take() {
                self.session.send_video(frame, overwritten, Instant::now());
                progressed = true;
            }
            if progressed {
                continue;
            }
            let deadline = tokio::time::Instant::from_std(self.session.poll_timeout());
            let sockets = &self.sockets;
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    // Every handle is gone: nobody can use the session any more.
                    None => self.session.close(Instant::now()),
                },
                message = self.data.recv(), if self.pending_data.is_none() => {
                    if let Some(message) = message {
                        self.pending_data = Some(message);
                    }
                }
                () = tokio::time::sleep_until(deadline) => {}
                ready = recv_ready_any(sockets) => {
                    if let Err(e) = ready {
                        tracing::debug!("receive: {e}");
                    }
                }
                () = self.slot.wait() => {}
            }
        }
        self.slot.close();
        tracing::debug!("session task ends");
    }

    /// Handles the application's commands that are waiting. True if there were any.
    fn take_commands(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(mpsc::error::TryRecvError::Empty) => return any,
                // Every handle is gone: nobody can use the session any more.
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.session.close(Instant::now());
                    return true;
                }
            }
            any = true;
        }
    }

    /// Writes queued data messages while SCTP takes them. True if any went out.
    fn feed_data(&mut self) -> bool {
        let mut any = false;
        loop {
            if self.pending_data.is_none() {
                match self.data.try_recv() {
                    Ok(message) => self.pending_data = Some(message),
                    Err(_) => return any,
                }
            }
            self.retry_pending_data();
            if self.pending_data.is_some() {
                return any;
            }
            any = true;
        }
    }

    /// Reads the datagrams already waiting, up to a batch. True if there were any.
    fn receive_waiting(&mut self, buf: &mut [u8]) -> bool {
        let mut any = false;
        for _ in 0..RECEIVE_BATCH {
            let mut got_one = false;
            for (local, socket) in &self.sockets {
                if let Ok((len, source)) = socket.try_recv_from(buf) {
                    self.session
                        .handle_receive(Instant::now(), source, *local, &buf[..len]);
                    got_one = true;
                }
            }
            if !got_one {
                break;
            }
            any = true;
        }
        any
    }

    fn retry_pending_data(&mut self) {
        let Some((channel, bytes)) = self.pending_data.take() else {
            return;
        };
        match self.session.send_data(channel, &bytes, Instant::now()) {
            Ok(true) => {}
            Ok(false) if channel.is_reliable() || !self.session.is_open(channel) => {
                // Reliable: keep it until SCTP has room. Pointer before the channel opened:
                // keep it too, it is the first move.
                self.pending_data = Some((channel, bytes));
            }
            Ok(false) => tracing::trace!("pointer message dropped: SCTP buffer full"),
            Err(e) => tracing::debug!("data not sent: {e}"),
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::CreateOffer(reply) => {
                let _ = reply.send(self.session.create_offer(now));
            }
            Command::AcceptOffer(sdp, reply) => {
                let _ = reply.send(self.session.accept_offer(&sdp, now));
            }
            Command::AcceptAnswer(sdp, reply) => {
                let _ = reply.send(self.session.accept_answer(&sdp, now));
            }
            Command::AddRemoteCandidate(candidate, reply) => {
                let _ = reply.send(self.session.add_remote_candidate(&candidate, now));
            }
            Command::RequestKeyframe => self.session.request_keyframe(now),
            Command::Close => self.session.close(now),
        }
    }

    /// Sends queued datagrams and hands out frames and events, until the session has none left
    /// (handing out can queue more: a dropped frame queues a keyframe request).
    async fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(transmit) = self.session.poll_transmit() {
                moved = true;
                let socket = self
                    .sockets
                    .iter()
                    .find(|(local, _)| *local == transmit.source)
                    .or_else(|| self.sockets.first());
                if let Some((_, socket)) = socket {
                    if let Err(e) = socket
                        .send_to(&transmit.contents, transmit.destination)
                        .await
                    {
                        tracing::debug!(destination = %transmit.destination, "send: {e}");
                    }
                }
            }
            while let Some(frame) = self.session.poll_video() {
                moved = true;
                match self.video.try_send(frame) {
                    Ok(()) => self.session.received_frame_delivered(),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("decoder behind: frame dropped, asking for a keyframe");
                        self.session.received_frame_dropped(Instant::now());
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            // Published before the events go out, so whoever sees a stats event with an
            // estimate also finds it on the video sender.
            self.slot
                .set_bandwidth_estimate(self.session.bandwidth_estimate_bps());
            while let Some(event) = self.session.poll_event() {
                moved = true;
                if event == PeerEvent::KeyframeRequested {
                    self.slot.request_keyframe();
                }
                // A closed receiver means the application stopped listening; keep running.
                let _ = self.events.send(event).await;
            }
            if !moved {
                return;
            }
        }
    }
}

/// Best effort: a smaller buffer than asked (the kernel's cap) still works, just drops sooner.
fn set_buffer_sizes(socket: &std::net::UdpSocket, bytes: usize) {
    let socket = socket2::SockRef::from(socket);
    if let Err(e) = socket.set_recv_buffer_size(bytes) {
        tracing::debug!("receive buffer not enlarged: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(bytes) {
        tracing::debug!("send buffer not enlarged: {e}");
    }
}

/// Waits until any of the sockets has a datagram to read (without reading it).
async fn recv_ready_any(sockets: &[(SocketAddr, UdpSocket)]) -> std::io::Result<()> {
    poll_fn(|cx| {
        for (_, socket) in sockets {
            if let Poll::Ready(result) = socket.poll_recv_ready(cx) {
                return Poll::Ready(result);
            }
        }
        Poll::Pending
    })
    .await
}
