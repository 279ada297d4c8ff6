//! What a port answers to a ClientHello, in words: asked when the valid client got no TLS session
//! there, so that the run's one reason says what the port is instead ("it answered `HTTP/1.0 400
//! Bad Request`", "it closed the connection without a byte").

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ProbeOutcome, TlsVersion, describe_bytes, tcp_connect};

/// The first answer of a port to a TLS 1.2 ClientHello offering every suite (the hello any TLS
/// server answers with a record of its own: a ServerHello or an alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloAnswer {
    /// No TCP connection (the connect's failure, in words).
    Unreachable(String),
    /// The connection closed (or was reset) before the server sent a byte.
    Closed,
    /// Nothing came back for this long.
    Silent(Duration),
    /// A TLS record (described: an alert by name, or a handshake record).
    Tls(String),
    /// Bytes that are not TLS (described: an HTTP status line, an HTTP/2 frame, text, hex).
    Other(String),
}

impl std::fmt::Display for HelloAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloAnswer::Unreachable(why) => write!(f, "no connection: {why}"),
            HelloAnswer::Closed => {
                f.write_str("it closed the connection on a ClientHello without sending a byte")
            }
            HelloAnswer::Silent(waited) => write!(
                f,
                "it sent nothing in the {} ms after a ClientHello",
                waited.as_millis()
            ),
            HelloAnswer::Tls(what) => write!(f, "it answered a ClientHello with {what}"),
            HelloAnswer::Other(what) => write!(f, "it answered a ClientHello with {what}"),
        }
    }
}

/// Sends one ClientHello to `addr` and reads what comes back within `timeout`.
pub async fn answer_to_hello(
    addr: SocketAddr,
    server_name: &str,
    timeout: Duration,
) -> HelloAnswer {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut scratch = ProbeOutcome::blank(TlsVersion::Tls12, None);
    let Some(mut tcp) = tcp_connect(addr, started, deadline, &mut scratch).await else {
        return HelloAnswer::Unreachable(scratch.detail);
    };
    if tcp
        .write_all(&super::suites::client_hello(server_name))
        .await
        .is_err()
    {
        return HelloAnswer::Closed;
    }
    // Enough for a status line or a frame header; what arrives in the first read is described.
    let mut seen = vec![0u8; 256];
    match tokio::time::timeout_at(deadline.into(), tcp.read(&mut seen)).await {
        Err(_) => HelloAnswer::Silent(timeout),
        Ok(Err(_)) | Ok(Ok(0)) => HelloAnswer::Closed,
        Ok(Ok(n)) => {
            seen.truncate(n);
            let words = describe_bytes(&seen);
            if matches!(seen.as_slice(), [0x15 | 0x16, 3, ..]) {
                HelloAnswer::Tls(words)
            } else {
                HelloAnswer::Other(words)
            }
        }
    }
}
