//! A hand-built TLS 1.0 / 1.1 ClientHello. rustls cannot speak these versions, so the bytes are
//! assembled here and only the server's first record is read: an alert (or a close) means the
//! version was refused; a ServerHello choosing the offered version means it was accepted.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Alert, Outcome, ProbeOutcome, Stage, TlsVersion, tcp_connect};

/// Cipher suites a TLS 1.0/1.1 client of that era offers (ECDHE and RSA key exchange, AES-CBC).
const LEGACY_SUITES: [u16; 6] = [0xc014, 0xc00a, 0xc013, 0xc009, 0x0035, 0x002f];

fn wire_version(version: TlsVersion) -> [u8; 2] {
    match version {
        TlsVersion::Tls10 => [3, 1],
        TlsVersion::Tls11 => [3, 2],
        TlsVersion::Tls12 => [3, 3],
        TlsVersion::Tls13 => [3, 4],
    }
}

pub(super) fn push_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

pub(super) fn extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    push_u16(out, body.len());
    out.extend_from_slice(body);
}

/// The server_name extension for `server_name` (none for an IP address, as TLS requires).
pub(super) fn sni_extension(exts: &mut Vec<u8>, server_name: &str) {
    if server_name.parse::<std::net::IpAddr>().is_err() {
        let mut sni = Vec::new();
        push_u16(&mut sni, server_name.len() + 3);
        sni.push(0); // host_name
        push_u16(&mut sni, server_name.len());
        sni.extend_from_slice(server_name.as_bytes());
        extension(exts, 0x0000, &sni);
    }
}

/// The handshake record around a ClientHello body.
pub(super) fn hello_record(hello: &[u8]) -> Vec<u8> {
    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(hello);
    let mut record = vec![0x16, 3, 1]; // handshake record, TLS 1.0 record version (as clients send)
    push_u16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// The full record (header + ClientHello) offering at most `version`.
pub fn client_hello(version: TlsVersion, server_name: &str) -> Vec<u8> {
    let mut random = [0u8; 32];
    let _ = getrandom::fill(&mut random);
    let mut hello = Vec::new();
    hello.extend_from_slice(&wire_version(version));
    hello.extend_from_slice(&random);
    hello.push(0); // empty session id
    push_u16(&mut hello, LEGACY_SUITES.len() * 2);
    for suite in LEGACY_SUITES {
        hello.extend_from_slice(&suite.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null only

    let mut exts = Vec::new();
    sni_extension(&mut exts, server_name);
    // supported_groups: x25519, secp256r1, secp384r1
    extension(&mut exts, 0x000a, &[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18]);
    // ec_point_formats: uncompressed
    extension(&mut exts, 0x000b, &[1, 0]);
    // renegotiation_info (empty), as real clients of the era send it
    extension(&mut exts, 0xff01, &[0]);
    push_u16(&mut hello, exts.len());
    hello.extend_from_slice(&exts);
    hello_record(&hello)
}

/// Offers only `version` (1.0 or 1.1) and classifies the server's first answer.
pub async fn attempt(
    addr: SocketAddr,
    server_name: &str,
    version: TlsVersion,
    timeout: Duration,
) -> ProbeOutcome {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut out = ProbeOutcome::blank(version, None);
    let finish = |mut out: ProbeOutcome| {
        out.timings.total_us = started.elapsed().as_micros() as u64;
        out
    };
    let Some(mut tcp) = tcp_connect(addr, started, deadline, &mut out).await else {
        return out;
    };
    let deadline = tokio::time::Instant::from(deadline);
    if let Err(e) = tcp.write_all(&client_hello(version, server_name)).await {
        out.outcome = Outcome::Rejected;
        out.reset = true;
        out.detail = format!("connection closed while sending the {version} ClientHello ({e})");
        return finish(out);
    }
    match read_record(&mut tcp, deadline).await {
        Record::TimedOut => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!(
                "no answer to the {version} ClientHello within {} ms",
                timeout.as_millis()
            );
        }
        Record::Ended(e) => {
            out.outcome = Outcome::Rejected;
            out.reset = true;
            out.detail = format!("server closed the connection on a {version} ClientHello ({e})");
        }
        Record::Read { header, body } => {
            classify_answer(&mut out, version, &header, &body);
            if out.outcome == Outcome::Accepted {
                read_rest_of_flight(&mut tcp, body, deadline, &mut out).await;
            }
        }
    }
    finish(out)
}

/// One TLS record as read, or how reading it ended.
pub(super) enum Record {
    /// Its header, and its body (at most 18 KiB, the most a TLS record holds; empty when the
    /// body was cut short).
    Read {
        /// Content type, version, length.
        header: [u8; 5],
        /// The body.
        body: Vec<u8>,
    },
    /// No header by the deadline.
    TimedOut,
    /// The connection ended (or failed) before a header: why.
    Ended(String),
}

/// Reads the server's next record by `deadline`.
pub(super) async fn read_record(
    tcp: &mut tokio::net::TcpStream,
    deadline: tokio::time::Instant,
) -> Record {
    let mut header = [0u8; 5];
    match tokio::time::timeout_at(deadline, tcp.read_exact(&mut header)).await {
        Err(_) => return Record::TimedOut,
        Ok(Err(e)) => return Record::Ended(e.to_string()),
        Ok(Ok(_)) => {}
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut body = vec![0u8; len.min(18 * 1024)];
    if !matches!(
        tokio::time::timeout_at(deadline, tcp.read_exact(&mut body)).await,
        Ok(Ok(_))
    ) {
        body.clear();
    }
    Record::Read { header, body }
}

/// What a server's cleartext flight (its handshake messages up to ServerHelloDone) showed.
#[derive(Debug, Default)]
pub(super) struct Flight {
    /// The ServerHello's body.
    pub(super) server_hello: Option<Vec<u8>>,
    /// The CertificateRequest's body, when one came.
    pub(super) certificate_request: Option<Vec<u8>>,
    /// ServerHelloDone came: the flight was read to its end.
    pub(super) done: bool,
}

/// Walks the complete handshake messages in `bytes` (a TLS 1.2-or-older server flight).
pub(super) fn walk_flight(bytes: &[u8]) -> Flight {
    let mut flight = Flight::default();
    let mut at = 0;
    while bytes.len() >= at + 4 {
        let kind = bytes[at];
        let len = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let Some(msg) = bytes.get(at + 4..at + 4 + len) else {
            break;
        };
        match kind {
            2 => flight.server_hello = Some(msg.to_vec()),
            13 => flight.certificate_request = Some(msg.to_vec()),
            14 => {
                flight.done = true;
                break;
            }
            _ => {}
        }
        at += 4 + len;
    }
    flight
}

/// The CA names of a TLS 1.0/1.1 CertificateRequest: certificate types, then the
/// DistinguishedNames (RFC 4346 §7.4.4; TLS 1.2 puts signature algorithms between them).
fn legacy_ca_names(body: &[u8]) -> Vec<String> {
    let types = usize::from(*body.first().unwrap_or(&0));
    super::client::distinguished_names(body.get(1 + types..).unwrap_or_default())
}

/// After a ServerHello that took the legacy version: the rest of the cleartext flight, up to
/// ServerHelloDone. Whether it holds a CertificateRequest is the client-authentication fact of
/// that version: without one, no client certificate is ever asked for (RFC 4346 §7.4.4).
async fn read_rest_of_flight(
    tcp: &mut tokio::net::TcpStream,
    first: Vec<u8>,
    deadline: tokio::time::Instant,
    out: &mut ProbeOutcome,
) {
    let mut bytes = first;
    let mut flight = walk_flight(&bytes);
    while !flight.done && bytes.len() < 64 * 1024 {
        match read_record(tcp, deadline).await {
            Record::Read { header, body } if header[0] == 0x16 && !body.is_empty() => {
                bytes.extend_from_slice(&body);
                flight = walk_flight(&bytes);
            }
            _ => break,
        }
    }
    let version = out.requested_version;
    out.flight_read = Some(flight.done);
    match (&flight.certificate_request, flight.done) {
        (Some(cr), _) => {
            out.client_cert_requested = true;
            out.acceptable_ca_names = legacy_ca_names(cr);
            out.detail.push_str(&format!(
                "; its flight asks for a client certificate under {version} ({} CA names)",
                out.acceptable_ca_names.len()
            ));
        }
        (None, true) => out.detail.push_str(&format!(
            "; its flight holds NO CertificateRequest: a client without any certificate completes a {version} handshake (RFC 4346 §7.4.4)"
        )),
        (None, false) => out.detail.push_str(
            "; whether it asks for a client certificate was not seen (the flight did not end)",
        ),
    }
}

fn classify_answer(out: &mut ProbeOutcome, offered: TlsVersion, header: &[u8; 5], body: &[u8]) {
    match header[0] {
        0x15 if body.len() >= 2 => {
            let alert = Alert(body[1]);
            out.outcome = Outcome::Rejected;
            out.detail = format!("server refused the {offered} ClientHello with alert `{alert}`");
            out.alert = Some(alert);
        }
        0x16 if body.len() >= 6 && body[0] == 2 => {
            let chosen = [body[4], body[5]];
            let name = match chosen {
                [3, 1] => "tls1.0",
                [3, 2] => "tls1.1",
                [3, 3] => "tls1.2",
                [3, 4] => "tls1.3",
                _ => "unknown",
            };
            out.tls_version = Some(name.to_owned());
            if chosen == wire_version(offered) {
                out.outcome = Outcome::Accepted;
                out.stage = Stage::Handshake;
                out.detail = format!(
                    "server answered with a ServerHello choosing {name}: {offered} is accepted"
                );
            } else {
                // A server that answers a 1.x-only hello with a higher version violates the protocol,
                // but it did not agree to speak the legacy version.
                out.outcome = Outcome::Rejected;
                out.detail = format!(
                    "server answered the {offered} ClientHello with a ServerHello for {name}"
                );
            }
        }
        0x15 => {
            out.outcome = Outcome::Rejected;
            out.detail = format!("server refused the {offered} ClientHello with a truncated alert");
        }
        _ => {
            out.outcome = Outcome::Error;
            out.detail = format!(
                "server answered the {offered} ClientHello with a non-TLS record ({})",
                super::describe_bytes(&[&header[..], body].concat())
            );
        }
    }
}
