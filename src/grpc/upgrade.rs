//! Plaintext on the TLS port, the other way in: an HTTP/1.1 request asking to switch to HTTP/2
//! in the clear (`Upgrade: h2c` with `HTTP2-Settings`, RFC 7540 §3.2), then a gRPC call on the
//! upgraded connection. A front end that sniffs a connection's first bytes (a cmux-style
//! multiplexer) may refuse the HTTP/2 preface yet switch on an upgrade; an HTTP/1.x answer is a
//! refusal only when no switch came, and a switch counts as admission only when a call reached
//! gRPC on it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::tap::{Tap, Tapped};
use super::{CallStep, GrpcError, call_over};
use crate::probe::{self, Outcome, ProbeOutcome, Stage, TlsVersion};

/// The SETTINGS the upgrade request carries (RFC 7540 §3.2.1, base64url without padding):
/// SETTINGS_ENABLE_PUSH = 0.
const HTTP2_SETTINGS: &str = "AAIAAAAA";

/// The longest HTTP/1.x answer head read before giving up on it.
const MAX_HEAD: usize = 16 * 1024;

/// The upgrade request for `authority`, then `Health/Check` on stream 3 of the upgraded
/// connection. `Accepted`: the call reached gRPC (a message or a gRPC status); `Rejected`: the
/// server refused the switch (a TLS alert, a close, an HTTP/1.x answer other than 101) or the
/// call on the upgraded connection.
pub async fn h2c_upgrade(addr: SocketAddr, authority: &str, timeout: Duration) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    // Not a TLS attempt; the field records the highest version the port is expected to speak.
    let mut out = ProbeOutcome::blank(TlsVersion::Tls13, None);
    let Some(mut tcp) = probe::tcp_connect(addr, started, deadline, &mut out).await else {
        return out;
    };
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: {HTTP2_SETTINGS}\r\n\r\n"
    );
    let finish = |mut out: ProbeOutcome| {
        out.timings.total_us = started.elapsed().as_micros() as u64;
        out
    };
    if tcp.write_all(request.as_bytes()).await.is_err() {
        out.outcome = Outcome::Rejected;
        out.reset = true;
        out.detail = "connection closed while sending an HTTP/1.1 upgrade request".into();
        return finish(out);
    }
    let (seen, ended) = read_head(&mut tcp, deadline.into()).await;
    let head_end = seen.windows(4).position(|w| w == b"\r\n\r\n");
    let status_line = head_end
        .and_then(|end| std::str::from_utf8(&seen[..end]).ok())
        .and_then(|head| head.lines().next())
        .filter(|line| line.starts_with("HTTP/1."));
    match (status_line, head_end) {
        (Some(line), Some(end)) if line.split_whitespace().nth(1) == Some("101") => {
            let leftover = seen[end + 4..].to_vec();
            let line = line.to_owned();
            call_upgraded(tcp, leftover, authority, deadline, &line, &mut out).await;
        }
        (Some(line), _) => {
            out.outcome = Outcome::Rejected;
            out.stage = Stage::Application;
            out.http_status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
            out.detail = format!(
                "the server answered the HTTP/1.1 upgrade request with `{line}`, no switch to HTTP/2"
            );
        }
        (None, _) if seen.is_empty() && ended.is_none() => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!(
                "no answer at all to an HTTP/1.1 upgrade request within {} ms",
                timeout.as_millis()
            );
        }
        (None, _) if seen.is_empty() => {
            out.outcome = Outcome::Rejected;
            out.reset = true;
            out.detail = format!(
                "the server closed the connection on an HTTP/1.1 upgrade request ({})",
                ended.unwrap_or_default()
            );
        }
        (None, _) => {
            out.outcome = Outcome::Rejected;
            if seen.first() == Some(&0x15) && seen.len() >= 7 {
                out.alert = Some(probe::Alert(seen[6]));
            }
            out.detail = format!(
                "the server answered the HTTP/1.1 upgrade request with {}, not HTTP/1.1",
                probe::describe_bytes(&seen)
            );
        }
    }
    finish(out)
}

/// Reads until the end of an HTTP/1.x head, a close, [`MAX_HEAD`] bytes or the deadline: what
/// was read, and how the connection ended (`None`: it did not).
async fn read_head(
    tcp: &mut tokio::net::TcpStream,
    deadline: tokio::time::Instant,
) -> (Vec<u8>, Option<String>) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while seen.len() < MAX_HEAD && !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return (seen, None),
            Ok(Ok(0)) => return (seen, Some("closed".into())),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (seen, Some(e.to_string())),
        }
    }
    (seen, None)
}

/// `Health/Check` on stream 3 of a connection the server switched to h2c with `switched`.
async fn call_upgraded(
    tcp: tokio::net::TcpStream,
    leftover: Vec<u8>,
    authority: &str,
    deadline: Instant,
    switched: &str,
    out: &mut ProbeOutcome,
) {
    use prost::Message;
    use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
    out.stage = Stage::Application;
    let io = Tapped {
        inner: tcp,
        tap: Tap::default(),
        replay: leftover,
    };
    let request = HealthCheckRequest {
        service: String::new(),
    }
    .encode_to_vec();
    let uri = format!("http://{authority}/grpc.health.v1.Health/Check");
    let remaining = deadline.saturating_duration_since(Instant::now());
    let call = tokio::time::timeout(remaining, call_over(io, 3, uri, &request)).await;
    let reached = |out: &mut ProbeOutcome, what: String| {
        out.outcome = Outcome::Accepted;
        out.detail = format!(
            "the server switched an HTTP/1.1 upgrade request to HTTP/2 in the clear (`{switched}`) and {what}: gRPC is served without TLS"
        );
    };
    match call {
        Ok(Ok(message)) => {
            let status = HealthCheckResponse::decode(message)
                .map(|r| r.status().as_str_name().to_owned())
                .unwrap_or_else(|e| format!("an undecodable message ({e})"));
            reached(
                out,
                format!("answered Health/Check on the upgraded connection with {status}"),
            );
        }
        Ok(Err(CallStep::Status(e @ GrpcError::Status { .. }))) => reached(
            out,
            format!("answered a gRPC call on the upgraded connection: {e}"),
        ),
        Ok(Err(CallStep::Local(why))) => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!(
                "the server switched an HTTP/1.1 upgrade request to h2c (`{switched}`); the harness could not make the call on it: {why}"
            );
        }
        Ok(Err(step)) => {
            out.outcome = Outcome::Rejected;
            out.detail = format!(
                "the server switched an HTTP/1.1 upgrade request to h2c (`{switched}`), but no gRPC call was answered on it: {}",
                step_words(step)
            );
        }
        Err(_) => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!(
                "the server switched an HTTP/1.1 upgrade request to h2c (`{switched}`); the gRPC call on it got no answer in time"
            );
        }
    }
}

fn step_words(step: CallStep) -> String {
    match step {
        CallStep::H2(e) => format!("HTTP/2: {e}"),
        CallStep::Status(e) => e.to_string(),
        CallStep::NotGrpc(why) => format!("not gRPC: {why}"),
        CallStep::Local(why) => why,
        CallStep::Timeout => "no answer".into(),
    }
}
