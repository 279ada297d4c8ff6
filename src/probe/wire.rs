//! Bytes on the wire, shared by every prober: TCP connect with a deadline, reading an HTTP/2
//! answer, naming TLS alerts, telling what an I/O error says about the peer, describing bytes.

use std::net::SocketAddr;
use std::time::Instant;

use super::outcome::{Outcome, ProbeOutcome, Stage};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Connects with a deadline. A refused or timed-out connection proves nothing about mTLS: on
/// failure `out` becomes a final `inconclusive` record and `None` is returned.
pub(crate) async fn tcp_connect(
    addr: SocketAddr,
    started: Instant,
    deadline: Instant,
    out: &mut ProbeOutcome,
) -> Option<TcpStream> {
    let result = tokio::time::timeout_at(deadline.into(), TcpStream::connect(addr)).await;
    let failure = match result {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            out.timings.connect_us = micros(started);
            out.stage = Stage::Handshake;
            return Some(tcp);
        }
        Ok(Err(e)) => format!("TCP connect to {addr} failed: {e}"),
        Err(_) => format!("TCP connect to {addr} timed out"),
    };
    out.outcome = Outcome::Inconclusive;
    out.detail = failure;
    out.timings.total_us = micros(started);
    None
}

/// What a peer sent back after an HTTP/2 preface.
pub(crate) enum H2Answer {
    /// Its own SETTINGS frame: it speaks HTTP/2 to us.
    Settings,
    /// At least a frame header's worth of bytes that are not SETTINGS.
    Other(Vec<u8>),
    /// The connection closed (after these bytes, possibly none).
    Closed(Vec<u8>),
    /// Nothing conclusive before the deadline (after these bytes, possibly none).
    Silent(Vec<u8>),
    /// A read error.
    Failed(std::io::Error),
}

/// Reads until the first 9 bytes (one frame header) decide whether the peer answered with SETTINGS.
pub(crate) async fn read_h2_answer<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> H2Answer {
    read_h2_answer_after(stream, Vec::new(), deadline).await
}

/// [`read_h2_answer`], with `seen` already read.
pub(crate) async fn read_h2_answer_after<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    mut seen: Vec<u8>,
    deadline: Instant,
) -> H2Answer {
    let mut buf = [0u8; 4096];
    if seen.len() >= 9 {
        return if starts_with_h2_settings(&seen) {
            H2Answer::Settings
        } else {
            H2Answer::Other(seen)
        };
    }
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return H2Answer::Silent(seen),
            Ok(Ok(0)) => return H2Answer::Closed(seen),
            Ok(Err(e)) => return H2Answer::Failed(e),
            Ok(Ok(n)) => {
                seen.extend_from_slice(&buf[..n]);
                if seen.len() >= 9 {
                    return if starts_with_h2_settings(&seen) {
                        H2Answer::Settings
                    } else {
                        H2Answer::Other(seen)
                    };
                }
            }
        }
    }
}

/// The first bytes of `seen`, as hex, for evidence.
fn first_bytes(seen: &[u8]) -> String {
    hex::encode(&seen[..seen.len().min(16)])
}

/// A TLS alert, by its description code (RFC 8446 §6, RFC 5246 §7.2): the fact a refusal
/// carries. It reads, prints and serializes as its RFC name (`certificate_required`); a code
/// without one as `alert_N`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Alert(pub u8);

/// Every alert with an RFC name, by code.
const ALERT_NAMES: [(u8, &str); 25] = [
    (0, "close_notify"),
    (10, "unexpected_message"),
    (20, "bad_record_mac"),
    (22, "record_overflow"),
    (40, "handshake_failure"),
    (42, "bad_certificate"),
    (43, "unsupported_certificate"),
    (44, "certificate_revoked"),
    (45, "certificate_expired"),
    (46, "certificate_unknown"),
    (47, "illegal_parameter"),
    (48, "unknown_ca"),
    (49, "access_denied"),
    (50, "decode_error"),
    (51, "decrypt_error"),
    (70, "protocol_version"),
    (71, "insufficient_security"),
    (80, "internal_error"),
    (86, "inappropriate_fallback"),
    (90, "user_canceled"),
    (109, "missing_extension"),
    (110, "unsupported_extension"),
    (112, "unrecognized_name"),
    (116, "certificate_required"),
    (120, "no_application_protocol"),
];

impl Alert {
    /// `bad_record_mac`: a record the peer could not open.
    pub const BAD_RECORD_MAC: Alert = Alert(20);
    /// `handshake_failure`: no acceptable set of parameters.
    pub const HANDSHAKE_FAILURE: Alert = Alert(40);
    /// `illegal_parameter`.
    pub const ILLEGAL_PARAMETER: Alert = Alert(47);
    /// `decode_error`: a message that could not be parsed.
    pub const DECODE_ERROR: Alert = Alert(50);
    /// `decrypt_error`: a signature or Finished that did not verify.
    pub const DECRYPT_ERROR: Alert = Alert(51);
    /// `protocol_version`: the version offered is refused.
    pub const PROTOCOL_VERSION: Alert = Alert(70);
    /// `insufficient_security`.
    pub const INSUFFICIENT_SECURITY: Alert = Alert(71);
    /// `certificate_required` (TLS 1.3): a client certificate was required and none came.
    pub const CERTIFICATE_REQUIRED: Alert = Alert(116);
    /// `no_application_protocol`: no ALPN id the server speaks.
    pub const NO_APPLICATION_PROTOCOL: Alert = Alert(120);

    /// The RFC name, or `alert_N`.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match ALERT_NAMES.iter().find(|(code, _)| *code == self.0) {
            Some((_, name)) => (*name).into(),
            None => format!("alert_{}", self.0).into(),
        }
    }

    /// The alert an RFC name (or `alert_N`) names.
    pub fn from_name(name: &str) -> Option<Alert> {
        if let Some((code, _)) = ALERT_NAMES.iter().find(|(_, n)| *n == name) {
            return Some(Alert(*code));
        }
        name.strip_prefix("alert_")?.parse().ok().map(Alert)
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::fmt::Debug for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Alert {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Alert::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("`{name}` is not a TLS alert name")))
    }
}

/// What an I/O error from the TLS stream says about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerSaid {
    /// The peer sent this TLS alert.
    Alert(Alert),
    /// The peer reset or closed the connection without an alert.
    Reset(String),
    /// Something else went wrong (possibly on our side).
    Other(String),
}

pub(crate) fn classify_io(err: &std::io::Error) -> PeerSaid {
    use std::io::ErrorKind;
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::AlertReceived(alert) => PeerSaid::Alert(Alert(u8::from(*alert))),
            other => PeerSaid::Other(format!("TLS error: {other}")),
        };
    }
    match err.kind() {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => PeerSaid::Reset(err.to_string()),
        _ => PeerSaid::Other(err.to_string()),
    }
}

pub(crate) fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

/// The 24-byte HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty HTTP/2 SETTINGS frame: length 0, type 0x4, flags 0, stream 0.
pub const H2_EMPTY_SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Whether `bytes` starts with an HTTP/2 SETTINGS frame header on stream 0 (not an ACK).
pub fn starts_with_h2_settings(bytes: &[u8]) -> bool {
    bytes.len() >= 9
        && bytes[3] == 0x04
        && bytes[4] & 0x01 == 0
        && bytes[5..9] == [0, 0, 0, 0]
        && (u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2])) % 6 == 0
}

/// Words for the first bytes a peer sent: a TLS record, HTTP, HTTP/2, or hex.
pub fn describe_bytes(seen: &[u8]) -> String {
    match seen {
        [0x15, 3, _, 0, 2, level, code, ..] => format!(
            "a TLS {} alert `{}`",
            if *level == 2 { "fatal" } else { "warning" },
            Alert(*code)
        ),
        [0x16, 3, ..] => "a TLS handshake record".into(),
        _ if seen.starts_with(b"HTTP/") => format!(
            "an HTTP/1.x response `{}`",
            String::from_utf8_lossy(seen.split(|b| *b == b'\r').next().unwrap_or_default())
        ),
        _ if starts_with_h2_settings(seen) => "an HTTP/2 SETTINGS frame".into(),
        _ => match h2_frame(seen) {
            Some(frame) => frame,
            None if printable(seen) => {
                let text = String::from_utf8_lossy(seen);
                let line = text.lines().next().unwrap_or_default().trim();
                format!("text `{}`", line.chars().take(120).collect::<String>())
            }
            None => format!("first bytes {}", first_bytes(seen)),
        },
    }
}

/// Whether `seen` reads as text (a plaintext protocol's answer): printable ASCII and line breaks.
fn printable(seen: &[u8]) -> bool {
    seen.len() >= 4
        && seen
            .iter()
            .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
}

/// An HTTP/2 frame other than SETTINGS, in words (`an HTTP/2 GOAWAY frame (PROTOCOL_ERROR)`),
/// when the first 9 bytes are a plausible frame header of a known type on stream 0 or 1.
fn h2_frame(seen: &[u8]) -> Option<String> {
    let header = seen.get(..9)?;
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    if len > 16_384 || stream > 1 {
        return None;
    }
    let kind = match header[3] {
        0 => "DATA",
        1 => "HEADERS",
        3 => "RST_STREAM",
        6 => "PING",
        7 => "GOAWAY",
        8 => "WINDOW_UPDATE",
        _ => return None,
    };
    // GOAWAY carries the last stream id (4 bytes), then the error code.
    let error = (header[3] == 7)
        .then(|| seen.get(13..17))
        .flatten()
        .map(|c| match u32::from_be_bytes([c[0], c[1], c[2], c[3]]) {
            0 => " (NO_ERROR)".to_owned(),
            1 => " (PROTOCOL_ERROR)".to_owned(),
            2 => " (INTERNAL_ERROR)".to_owned(),
            other => format!(" (error code {other})"),
        })
        .unwrap_or_default();
    Some(format!("an HTTP/2 {kind} frame{error}"))
}

/// A TCP stream whose first write may be cut: its first `first` bytes go out in a segment of
/// their own, the rest after a pause, so a front end that decides on one read of the
/// ClientHello sees only part of it. Every other write passes through.
pub struct Segmented {
    tcp: TcpStream,
    first: Option<usize>,
    pause: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

/// How long the rest of a cut ClientHello waits behind its first segment.
const SEGMENT_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

impl Segmented {
    /// `tcp`, its first write cut after `first` bytes (`None`: never cut).
    pub fn new(tcp: TcpStream, first: Option<usize>) -> Self {
        Segmented {
            tcp,
            first,
            pause: None,
        }
    }
}

impl tokio::io::AsyncRead for Segmented {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Segmented {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::{Poll, ready};
        let this = self.get_mut();
        if let Some(pause) = this.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            this.pause = None;
        }
        if let Some(first) = this.first {
            if buf.len() > first && first > 0 {
                let n = ready!(std::pin::Pin::new(&mut this.tcp).poll_write(cx, &buf[..first]))?;
                this.first = None;
                this.pause = Some(Box::pin(tokio::time::sleep(SEGMENT_PAUSE)));
                return Poll::Ready(Ok(n));
            }
            if !buf.is_empty() {
                this.first = None;
            }
        }
        std::pin::Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    /// The engine writes a flight's records in one vectored write: kept, so a flight is not cut
    /// into segments the server may answer one by one (an uncut connection is the plain socket).
    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.first.is_some() || this.pause.is_some() {
            let buf = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return std::pin::Pin::new(this).poll_write(cx, buf);
        }
        std::pin::Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
