//! The stream under a gRPC call, tapped: the first thing the server did to end the connection (an
//! alert, a close) is noted as it happens, so a failed call is blamed on what the server did and
//! never on what the HTTP/2 layer made of it; and what was already read is replayed first.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::probe::{self, PeerSaid};

/// The first thing the server did to end the connection, as seen by reads and writes.
#[derive(Debug, Default, Clone)]
pub(super) struct Tap(Arc<Mutex<Option<PeerSaid>>>);

impl Tap {
    pub(super) fn note(&self, said: PeerSaid) {
        let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(said);
        }
    }
    pub(super) fn first(&self) -> Option<PeerSaid> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A stream that tells its [`Tap`] how the server ended the connection, and first replays what
/// was already read from it (the server's first word).
pub(super) struct Tapped<S> {
    pub(super) inner: S,
    pub(super) tap: Tap,
    pub(super) replay: Vec<u8>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            buf.put_slice(&self.replay[..n]);
            self.replay.drain(..n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Err(e)) => self.tap.note(probe::classify_io(e)),
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => self
                .tap
                .note(PeerSaid::Reset("connection closed by the server".into())),
            _ => {}
        }
        polled
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Err(e)) = &polled {
            // A server that refused after the handshake sent an alert and closed; our write lost
            // the race, but the alert still waits in the receive queue: it is the better evidence.
            let mut scratch = [0u8; 512];
            let mut buf = ReadBuf::new(&mut scratch);
            if let Poll::Ready(Err(read)) = Pin::new(&mut self.inner).poll_read(cx, &mut buf)
                && let said @ PeerSaid::Alert(_) = probe::classify_io(&read)
            {
                self.tap.note(said);
            }
            self.tap.note(probe::classify_io(e));
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
