//! Plaintext HTTP/2 (h2c, prior knowledge) against the TLS port. A repo-server that answers with
//! an HTTP/2 SETTINGS frame is serving gRPC without TLS at all: every client-certificate check is
//! then moot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{
    H2_EMPTY_SETTINGS, H2_PREFACE, H2Answer, Outcome, ProbeOutcome, Stage, TlsVersion,
    read_h2_answer, tcp_connect,
};

/// Sends the h2c preface and a SETTINGS frame in the clear; `accepted` means the server spoke HTTP/2 back.
pub async fn attempt(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    // Not a TLS attempt; the field records the highest version the port is expected to speak.
    let mut out = ProbeOutcome::blank(TlsVersion::Tls13, None);
    let Some(mut tcp) = tcp_connect(addr, started, deadline, &mut out).await else {
        return out;
    };
    let mut hello = H2_PREFACE.to_vec();
    hello.extend_from_slice(&H2_EMPTY_SETTINGS);
    if tcp.write_all(&hello).await.is_err() {
        out.outcome = Outcome::Rejected;
        out.reset = true;
        out.detail = "connection closed while sending the plaintext HTTP/2 preface".into();
    } else {
        match read_h2_answer(&mut tcp, deadline).await {
            H2Answer::Settings => {
                out.outcome = Outcome::Accepted;
                out.stage = Stage::Application;
                out.detail = "server answered a plaintext HTTP/2 preface with SETTINGS: gRPC is served without TLS".into();
            }
            H2Answer::Silent(seen) if seen.is_empty() => {
                // A TLS stack fails at once on byte 0x50 as a record type; silence proves nothing.
                out.outcome = Outcome::Inconclusive;
                out.detail = format!(
                    "no answer at all to a plaintext preface within {} ms",
                    timeout.as_millis()
                );
            }
            H2Answer::Other(seen) | H2Answer::Silent(seen) | H2Answer::Closed(seen) => {
                out.outcome = Outcome::Rejected;
                out.reset = seen.is_empty();
                if seen.first() == Some(&0x15) && seen.len() >= 7 {
                    out.alert = Some(super::Alert(seen[6]));
                }
                out.detail = if seen.is_empty() {
                    "server closed the connection on a plaintext HTTP/2 preface".into()
                } else {
                    format!(
                        "server answered the plaintext preface with {}, not HTTP/2",
                        super::describe_bytes(&seen)
                    )
                };
            }
            H2Answer::Failed(e) => {
                out.outcome = Outcome::Rejected;
                out.reset = true;
                out.detail = format!("connection reset on a plaintext HTTP/2 preface ({e})");
            }
        }
    }
    out.timings.total_us = started.elapsed().as_micros() as u64;
    out
}
