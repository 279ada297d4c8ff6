//! The hand-built client under TLS 1.2 (RFC 5246): the same ClientHellos as `crafted.rs` (a name
//! with a trailing dot or longer than DNS allows, GREASE values, another client's fingerprint),
//! offering TLS 1.2 alone. ECDHE with AES-GCM (RFC 5289, the engine's suites but ChaCha20), the
//! extended master secret when the server echoes it (RFC 7627). The server's flight is read to
//! ServerHelloDone; an empty Certificate answers its CertificateRequest; the server's Finished is
//! checked against the client's own key schedule. A refusal after the client's flight is the
//! server's judgement (`flight_read`), a refusal of the hello is not.

use std::sync::Arc;
use std::time::Instant;

use ring::{aead, digest, hmac};
use tokio::io::AsyncWriteExt;

use super::client::{Connected, TicketWatch, chain_facts};
use super::crafted::{
    CraftedStream, Direction, ECDH, SCHEMES, Share, Stop, alerted, alpn_extension, extensions,
    handshake_message, list16, take_message, u16_at, with_grease,
};
use super::legacy::{Record, extension, hello_record, push_u16, read_record, sni_extension};
use super::{Alert, Craft, Outcome, ProbeOutcome, ProbeRequest, Stage, micros, tcp_connect};

/// A TLS 1.2 suite the client completes: its PRF hash and record protection.
#[derive(Clone, Copy)]
struct Suite {
    id: u16,
    name: &'static str,
    hash: &'static digest::Algorithm,
    hmac: hmac::Algorithm,
    aead: &'static aead::Algorithm,
}

/// The suites offered, in the engine's order.
const SUITES: [Suite; 4] = [
    Suite {
        id: 0xc02c,
        name: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        hash: &digest::SHA384,
        hmac: hmac::HMAC_SHA384,
        aead: &aead::AES_256_GCM,
    },
    Suite {
        id: 0xc02b,
        name: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        hash: &digest::SHA256,
        hmac: hmac::HMAC_SHA256,
        aead: &aead::AES_128_GCM,
    },
    Suite {
        id: 0xc030,
        name: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        hash: &digest::SHA384,
        hmac: hmac::HMAC_SHA384,
        aead: &aead::AES_256_GCM,
    },
    Suite {
        id: 0xc02f,
        name: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        hash: &digest::SHA256,
        hmac: hmac::HMAC_SHA256,
        aead: &aead::AES_128_GCM,
    },
];

impl Suite {
    fn hash(&self, bytes: &[u8]) -> Vec<u8> {
        digest::digest(self.hash, bytes).as_ref().to_vec()
    }

    /// PRF(secret, label, seed) of RFC 5246 §5, `len` bytes.
    fn prf(&self, secret: &[u8], label: &str, seed: &[u8], len: usize) -> Vec<u8> {
        prf(self.hmac, secret, label, seed, len)
    }
}

/// The TLS 1.2 PRF: P_hash over `label` and `seed` (RFC 5246 §5).
fn prf(alg: hmac::Algorithm, secret: &[u8], label: &str, seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    let seed = [label.as_bytes(), seed].concat();
    let mut a = hmac::sign(&key, &seed).as_ref().to_vec();
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        out.extend_from_slice(hmac::sign(&key, &[&a[..], &seed].concat()).as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

/// What the server's cleartext flight said, to ServerHelloDone.
#[derive(Default)]
struct Flight {
    server_random: Vec<u8>,
    suite: Option<u16>,
    ems: bool,
    alpn: Option<String>,
    curve: Option<u16>,
    point: Vec<u8>,
    certificates: Vec<rustls_pki_types::CertificateDer<'static>>,
    requested: Option<Vec<String>>,
}

/// Connects with a crafted TLS 1.2 ClientHello of `craft` and completes the client side of the
/// handshake without a certificate. On failure the returned outcome is final.
pub(super) async fn connect(
    req: &ProbeRequest,
    craft: Craft,
) -> Result<Connected<CraftedStream>, ProbeOutcome> {
    match handshake(req, craft, Instant::now()).await {
        Ok(c) => Ok(c),
        Err(Stop::Server(out)) => Err(*out),
        // TLS 1.2 has no HelloRetryRequest: the handshake above never asks for one.
        Err(Stop::Retry(group)) => {
            let mut out = ProbeOutcome::new(req);
            out.detail = format!("a TLS 1.2 server cannot ask for key share 0x{group:04x}");
            Err(out)
        }
    }
}

async fn handshake(
    req: &ProbeRequest,
    craft: Craft,
    started: Instant,
) -> Result<Connected<CraftedStream>, Stop> {
    let mut out = ProbeOutcome::new(req);
    let deadline = started + req.timeout;
    let fail = |mut out: ProbeOutcome, outcome: Outcome, detail: String| {
        out.outcome = outcome;
        out.detail = detail;
        out.timings.total_us = micros(started);
        Stop::Server(Box::new(out))
    };
    let mut client_random = [0u8; 32];
    let _ = getrandom::fill(&mut client_random);
    let hello = client_hello(craft, req.sni_sent().as_deref(), &req.alpn, &client_random);
    let Some(mut tcp) = tcp_connect(req.addr, started, deadline, &mut out).await else {
        return Err(Stop::Server(Box::new(out)));
    };
    let deadline = tokio::time::Instant::from(deadline);
    let hs_start = Instant::now();
    if let Err(e) = tcp.write_all(&hello).await {
        out.reset = true;
        return Err(fail(
            out,
            Outcome::Rejected,
            format!("connection closed while sending the crafted ClientHello ({e})"),
        ));
    }
    let mut transcript = hello[5..].to_vec();

    // The server's flight, in the clear, to ServerHelloDone.
    let mut flight = Flight::default();
    let mut plain = Vec::new();
    loop {
        let msg = loop {
            if let Some((msg, rest)) = take_message(&plain) {
                plain = rest;
                break msg;
            }
            match read_record(&mut tcp, deadline).await {
                Record::Read { header, body } if header[0] == 0x16 => {
                    plain.extend_from_slice(&body)
                }
                Record::Read { header, body } if header[0] == 0x15 && body.len() >= 2 => {
                    let alert = Alert(body[1]);
                    out.alert = Some(alert);
                    return Err(fail(
                        out,
                        Outcome::Rejected,
                        format!(
                            "server refused the crafted TLS 1.2 ClientHello with alert `{alert}`"
                        ),
                    ));
                }
                Record::Read { header, body } => {
                    return Err(fail(
                        out,
                        Outcome::Error,
                        format!(
                            "server answered the crafted ClientHello with a non-TLS record ({})",
                            super::describe_bytes(&[&header[..], &body].concat())
                        ),
                    ));
                }
                Record::TimedOut => {
                    return Err(fail(
                        out,
                        Outcome::Inconclusive,
                        format!(
                            "the server's TLS 1.2 flight did not end within {} ms",
                            req.timeout.as_millis()
                        ),
                    ));
                }
                Record::Ended(e) => {
                    out.reset = true;
                    return Err(fail(
                        out,
                        Outcome::Rejected,
                        format!("server closed the connection on the crafted ClientHello ({e})"),
                    ));
                }
            }
        };
        transcript.extend_from_slice(&msg);
        let body = &msg[4..];
        match msg[0] {
            2 => {
                if let Err(why) = read_server_hello(body, &mut flight) {
                    return Err(fail(out, Outcome::Error, why));
                }
            }
            11 => flight.certificates = certificates(body),
            12 if body.first() == Some(&3) => {
                flight.curve = u16_at(body, 1);
                let n = usize::from(*body.get(3).unwrap_or(&0));
                flight.point = body.get(4..4 + n).unwrap_or_default().to_vec();
            }
            13 => flight.requested = Some(ca_names(body)),
            14 => break,
            _ => {}
        }
    }
    out.tls_version = Some("tls1.2".into());
    out.server_chain = chain_facts(&flight.certificates);
    if let Some(names) = &flight.requested {
        out.client_cert_requested = true;
        out.acceptable_ca_names = names.clone();
    }
    let Some(suite) = SUITES.iter().find(|s| Some(s.id) == flight.suite).copied() else {
        return Err(fail(
            out,
            Outcome::Error,
            format!(
                "the server's ServerHello chose suite {:?}, which was not offered",
                flight.suite
            ),
        ));
    };
    let curve = flight.curve.unwrap_or(0);
    let Some(share) = ECDH
        .iter()
        .any(|(id, _)| *id == curve)
        .then(|| Share::new(curve))
        .flatten()
    else {
        return Err(fail(
            out,
            Outcome::Error,
            format!(
                "the server's key exchange is not ECDHE over a curve the crafted client offered (0x{curve:04x})"
            ),
        ));
    };
    let public = share.public().to_vec();
    let Some(premaster) = share.agree(&flight.point) else {
        return Err(fail(
            out,
            Outcome::Error,
            "the server's ECDHE share does not complete the client's".into(),
        ));
    };

    // The client's flight: an empty Certificate if asked, its key share, its Finished.
    let mut handshake_records = Vec::new();
    if flight.requested.is_some() {
        handshake_records.extend(handshake_message(11, &[0, 0, 0]));
    }
    let mut kx = vec![public.len() as u8];
    kx.extend_from_slice(&public);
    handshake_records.extend(handshake_message(16, &kx));
    transcript.extend_from_slice(&handshake_records);
    let randoms = |first: &[u8], second: &[u8]| [first, second].concat();
    let master = if flight.ems {
        suite.prf(
            &premaster,
            "extended master secret",
            &suite.hash(&transcript),
            48,
        )
    } else {
        suite.prf(
            &premaster,
            "master secret",
            &randoms(&client_random, &flight.server_random),
            48,
        )
    };
    let key_len = suite.aead.key_len();
    let block = suite.prf(
        &master,
        "key expansion",
        &randoms(&flight.server_random, &client_random),
        2 * key_len + 8,
    );
    let (client_key, rest) = block.split_at(key_len);
    let (server_key, salts) = rest.split_at(key_len);
    let mut writer = Direction::tls12(suite.aead, client_key, &salts[..4]);
    let mut reader = Direction::tls12(suite.aead, server_key, &salts[4..8]);
    let finished = handshake_message(
        20,
        &suite.prf(&master, "client finished", &suite.hash(&transcript), 12),
    );
    transcript.extend_from_slice(&finished);
    let mut records = Vec::new();
    records.extend_from_slice(&[0x16, 3, 3]);
    push_u16(&mut records, handshake_records.len());
    records.extend_from_slice(&handshake_records);
    records.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    records.extend(writer.seal(0x16, &finished));
    if let Err(e) = tcp.write_all(&records).await {
        out.reset = true;
        return Err(fail(
            out,
            Outcome::Rejected,
            format!("connection closed while sending the client's flight ({e})"),
        ));
    }
    // The server has what it judges a client on: from here an alert is its verdict.
    out.flight_read = Some(true);

    // The server's ChangeCipherSpec and Finished (a session ticket may come first).
    let mut changed = false;
    let mut plain = Vec::new();
    loop {
        if let Some((msg, rest)) = take_message(&plain) {
            plain = rest;
            if msg[0] == 20 {
                let want = suite.prf(&master, "server finished", &suite.hash(&transcript), 12);
                if msg[4..] != want[..] {
                    return Err(fail(
                        out,
                        Outcome::Error,
                        "the server's Finished does not match the crafted client's key schedule"
                            .into(),
                    ));
                }
                break;
            }
            transcript.extend_from_slice(&msg);
            continue;
        }
        let (header, body) = match read_record(&mut tcp, deadline).await {
            Record::Read { header, body } => (header, body),
            Record::TimedOut => {
                return Err(fail(
                    out,
                    Outcome::Inconclusive,
                    "the server did not finish the handshake in time".into(),
                ));
            }
            Record::Ended(e) => {
                out.reset = true;
                return Err(fail(
                    out,
                    Outcome::Rejected,
                    format!("server closed the connection after the client's flight ({e})"),
                ));
            }
        };
        match (header[0], changed) {
            (0x14, false) => changed = true,
            (0x15, false) if body.len() >= 2 => return Err(alerted(out, body[1], started)),
            (0x16, false) => plain.extend_from_slice(&body),
            (0x15 | 0x16, true) => match reader.open(&header, body) {
                Some((0x16, data)) => plain.extend_from_slice(&data),
                Some((0x15, data)) if data.len() >= 2 => {
                    return Err(alerted(out, data[1], started));
                }
                _ => {
                    return Err(fail(
                        out,
                        Outcome::Error,
                        "the crafted client could not open the server's Finished".into(),
                    ));
                }
            },
            _ => {
                return Err(fail(
                    out,
                    Outcome::Error,
                    "the server sent an unexpected record after the client's flight".into(),
                ));
            }
        }
    }
    // What was negotiated, once it was (as the engine records it).
    out.cipher_suite = Some(suite.name.into());
    out.alpn = flight.alpn;
    out.timings.handshake_us = micros(hs_start);
    out.stage = Stage::PostHandshake;
    out.outcome = Outcome::Inconclusive;
    out.detail = "crafted handshake completed; the server's verdict is not yet seen".into();
    let tickets = Arc::new(TicketWatch::default());
    Ok(Connected {
        stream: CraftedStream::new(tcp, reader, writer, Vec::new(), tickets.clone()),
        outcome: out,
        started,
        tickets,
    })
}

/// The ServerHello's random, suite and extensions (the extended master secret, ALPN).
fn read_server_hello(b: &[u8], flight: &mut Flight) -> Result<(), String> {
    let bad = || "the server's ServerHello is malformed".to_owned();
    if u16_at(b, 0) != Some(0x0303) {
        return Err(format!(
            "the server answered the TLS 1.2-only crafted ClientHello with version 0x{:04x}",
            u16_at(b, 0).unwrap_or(0)
        ));
    }
    flight.server_random = b.get(2..34).ok_or_else(bad)?.to_vec();
    let sid = usize::from(*b.get(34).ok_or_else(bad)?);
    flight.suite = Some(u16_at(b, 35 + sid).ok_or_else(bad)?);
    for (kind, data) in extensions(b.get(38 + sid..).unwrap_or_default()) {
        match kind {
            0x0017 => flight.ems = true,
            0x0010 => {
                let n = usize::from(*data.get(2).ok_or_else(bad)?);
                flight.alpn =
                    Some(String::from_utf8_lossy(data.get(3..3 + n).ok_or_else(bad)?).into_owned());
            }
            _ => {}
        }
    }
    Ok(())
}

/// The certificates of a TLS 1.2 Certificate message.
fn certificates(body: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let mut out = Vec::new();
    let mut at = 3;
    while let Some(len) = body
        .get(at..at + 3)
        .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    {
        let Some(der) = body.get(at + 3..at + 3 + len) else {
            break;
        };
        out.push(rustls_pki_types::CertificateDer::from(der.to_vec()));
        at += 3 + len;
    }
    out
}

/// The CA names of a TLS 1.2 CertificateRequest (RFC 5246 §7.4.4).
fn ca_names(body: &[u8]) -> Vec<String> {
    let types = usize::from(*body.first().unwrap_or(&0));
    let algs = 1 + types;
    let Some(n) = u16_at(body, algs) else {
        return Vec::new();
    };
    super::client::distinguished_names(body.get(algs + 2 + usize::from(n)..).unwrap_or_default())
}

/// The ClientHello record: TLS 1.2 only, the suites above, `sni` as given; with
/// [`Craft::Grease`], a GREASE value first in every list and two GREASE extensions.
fn client_hello(craft: Craft, sni: Option<&str>, alpn: &[&str], random: &[u8; 32]) -> Vec<u8> {
    let grease = craft == Craft::Grease;
    let with_grease = |values: &[u16]| with_grease(grease, values);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(random);
    hello.push(0);
    // The suites, and the empty renegotiation_info SCSV (RFC 5746 §3.3), as the engine sends.
    let suites = with_grease(
        &SUITES
            .iter()
            .map(|s| s.id)
            .chain([0x00ff])
            .collect::<Vec<_>>(),
    );
    hello.extend(list16(&suites));
    hello.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if grease {
        extension(&mut exts, 0x0a0a, &[]);
    }
    if let Some(name) = sni {
        sni_extension(&mut exts, name);
    }
    extension(
        &mut exts,
        0x000a,
        &list16(&with_grease(&ECDH.map(|(id, _)| id))),
    );
    extension(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    extension(&mut exts, 0x000d, &list16(&SCHEMES));
    alpn_extension(&mut exts, alpn, grease);
    extension(&mut exts, 0x0017, &[]); // extended_master_secret
    if grease {
        extension(&mut exts, 0x1a1a, &[0]);
    }
    push_u16(&mut hello, exts.len());
    hello.extend_from_slice(&exts);
    hello_record(&hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PRF is P_SHA256 of RFC 5246 §5: its first block is HMAC(secret, A(1) + seed), A(1)
    /// being HMAC(secret, seed), label prepended to the seed; and it is cut to any length.
    #[test]
    fn the_prf_is_p_hash_over_label_and_seed() {
        let (secret, label, seed) = (b"secret".as_slice(), "test label", b"seed".as_slice());
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let labelled = [label.as_bytes(), seed].concat();
        let a1 = hmac::sign(&key, &labelled);
        let first = hmac::sign(&key, &[a1.as_ref(), &labelled].concat());
        let a2 = hmac::sign(&key, a1.as_ref());
        let second = hmac::sign(&key, &[a2.as_ref(), &labelled].concat());
        let out = prf(hmac::HMAC_SHA256, secret, label, seed, 40);
        assert_eq!(&out[..32], first.as_ref());
        assert_eq!(&out[32..], &second.as_ref()[..8]);
    }

    /// A TLS 1.2 GCM record sealed by one side opens on the other, its type in the clear.
    #[test]
    fn tls12_records_round_trip() {
        let key = [7u8; 16];
        let mut writer = Direction::tls12(&aead::AES_128_GCM, &key, &[1, 2, 3, 4]);
        let mut reader = Direction::tls12(&aead::AES_128_GCM, &key, &[1, 2, 3, 4]);
        for data in [b"first".as_slice(), b"second"] {
            let record = writer.seal(0x17, data);
            let header: [u8; 5] = record[..5].try_into().unwrap();
            assert_eq!(header[0], 0x17);
            let opened = reader.open(&header, record[5..].to_vec());
            assert_eq!(opened, Some((0x17, data.to_vec())));
        }
    }
}
