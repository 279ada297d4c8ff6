//! Plaintext HTTP/2 (h2c, prior knowledge) against the TLS port. A repo-server that answers with
//! an HTTP/2 SETTINGS frame is serving gRPC without TLS at all: every client-certificate check is
//! then moot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    H2_EMPTY_SETTINGS, H2_PREFACE, Outcome, ProbeOutcome, ServerChain, Stage, Timings, TlsVersion,
    starts_with_h2_settings,
};

/// Sends the h2c preface and a SETTINGS frame in the clear; `accepted` means the server spoke HTTP/2 back.
pub async fn attempt(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from(started + timeout);
    let mut out = ProbeOutcome {
        outcome: Outcome::Error,
        stage: Stage::Tcp,
        alert: None,
        reset: false,
        // Not a TLS attempt; the field records the highest version the port is expected to speak.
        requested_version: TlsVersion::Tls13,
        tls_version: None,
        cipher_suite: None,
        alpn: None,
        server_chain: ServerChain::default(),
        client_cert_requested: false,
        acceptable_ca_names: vec![],
        presented: None,
        timings: Timings::default(),
        detail: String::new(),
    };
    let mut tcp = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!("TCP connect to {addr} failed: {e}");
            return out;
        }
        Err(_) => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!("TCP connect to {addr} timed out");
            return out;
        }
    };
    out.timings.connect_us = started.elapsed().as_micros() as u64;
    out.stage = Stage::Handshake;
    let mut hello = H2_PREFACE.to_vec();
    hello.extend_from_slice(&H2_EMPTY_SETTINGS);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    if tcp.write_all(&hello).await.is_err() {
        out.outcome = Outcome::Rejected;
        out.reset = true;
        out.detail = "connection closed while sending the plaintext HTTP/2 preface".into();
    } else {
        loop {
            match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
                Err(_) if seen.is_empty() => {
                    // A TLS stack fails at once on byte 0x50 as a record type; silence proves nothing.
                    out.outcome = Outcome::Inconclusive;
                    out.detail = format!(
                        "no answer at all to a plaintext preface within {} ms",
                        timeout.as_millis()
                    );
                    break;
                }
                Err(_) => {
                    out.outcome = Outcome::Rejected;
                    out.detail = format!(
                        "server answered the plaintext preface with non-HTTP/2 bytes {}",
                        hex::encode(&seen[..seen.len().min(16)])
                    );
                    break;
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    out.outcome = Outcome::Rejected;
                    out.reset = seen.is_empty();
                    out.detail = if seen.is_empty() {
                        "server closed the connection on a plaintext HTTP/2 preface".into()
                    } else {
                        format!(
                            "server answered with non-HTTP/2 bytes {} and closed",
                            hex::encode(&seen[..seen.len().min(16)])
                        )
                    };
                    break;
                }
                Ok(Ok(n)) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.len() < 9 {
                        continue;
                    }
                    if starts_with_h2_settings(&seen) {
                        out.outcome = Outcome::Accepted;
                        out.stage = Stage::Application;
                        out.detail = "server answered a plaintext HTTP/2 preface with SETTINGS: gRPC is served without TLS".into();
                    } else {
                        out.outcome = Outcome::Rejected;
                        if seen[0] == 0x15 && seen.len() >= 7 {
                            out.alert = Some(super::alert_name(seen[6]));
                        }
                        out.detail = format!(
                            "server answered the plaintext preface with non-HTTP/2 bytes {}",
                            hex::encode(&seen[..seen.len().min(16)])
                        );
                    }
                    break;
                }
            }
        }
    }
    out.timings.total_us = started.elapsed().as_micros() as u64;
    out
}
