//! A TCP stream that acknowledges every read at once, so a client that leaves Nagle's algorithm
//! on never waits for the server's delayed ACK.
//!
//! Why: some messages get no answer on their own connection (a puppet's `accept` is answered
//! with `accepted` to the controller, not to the puppet). Linux then delays its ACK (40 ms
//! minimum) hoping to piggyback it on a reply, and a client with Nagle on holds its next small
//! frame (the offer) until that ACK comes: a ~43 ms stall in the middle of every pairing.
//! `TCP_QUICKACK` is not sticky on Linux (the kernel drops back to delayed ACKs by itself), so it
//! is set again after every read that returned data; setting it also sends a pending ACK now.
//! Elsewhere the wrapper is a plain pass-through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// An accepted connection that turns on `TCP_QUICKACK` after each read (see the module docs).
#[derive(Debug)]
pub struct QuickAck {
    stream: TcpStream,
}

impl QuickAck {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream) -> Self {
        Self { stream }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn ack_now(&self) {
        // Best effort: a failure only means the old (delayed) behaviour.
        let _ = socket2::SockRef::from(&self.stream).set_tcp_quickack(true);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn ack_now(&self) {}
}

impl AsyncRead for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.ack_now();
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
