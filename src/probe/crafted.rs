//! A hand-built TLS 1.3 client without a certificate, for the doors rustls cannot open: a
//! ClientHello whose bytes the harness chooses (a server name with a trailing dot or longer than
//! DNS allows, GREASE values in every list, another client's fingerprint). The handshake is the
//! real one (RFC 8446 §7 key schedule; the engine's three suites, in its order): the server's
//! encrypted flight is read and its Finished checked, an empty
//! Certificate answers its CertificateRequest, and the connection is handed on as a stream the
//! acceptance proof reads like any other. The client's own failures (a key schedule the server
//! disagrees with, a record it cannot open) are errors, never refusals.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use ring::{aead, agreement, digest, hkdf, hmac};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::client::{Connected, TicketWatch, chain_facts};
use super::legacy::{Record, extension, hello_record, push_u16, read_record, sni_extension};
use super::{Alert, Craft, Outcome, ProbeOutcome, ProbeRequest, Stage, micros, tcp_connect};

/// A TLS 1.3 cipher suite the crafted client can complete: its hash and record protection.
#[derive(Clone, Copy)]
struct Suite {
    id: u16,
    name: &'static str,
    hash: &'static digest::Algorithm,
    hmac: hmac::Algorithm,
    hkdf: hkdf::Algorithm,
    aead: &'static aead::Algorithm,
}

/// The suites offered, in the engine's order (so a server picks as it would for the engine).
const SUITES: [Suite; 3] = [
    Suite {
        id: 0x1302,
        name: "TLS13_AES_256_GCM_SHA384",
        hash: &digest::SHA384,
        hmac: hmac::HMAC_SHA384,
        hkdf: hkdf::HKDF_SHA384,
        aead: &aead::AES_256_GCM,
    },
    Suite {
        id: 0x1301,
        name: "TLS13_AES_128_GCM_SHA256",
        hash: &digest::SHA256,
        hmac: hmac::HMAC_SHA256,
        hkdf: hkdf::HKDF_SHA256,
        aead: &aead::AES_128_GCM,
    },
    Suite {
        id: 0x1303,
        name: "TLS13_CHACHA20_POLY1305_SHA256",
        hash: &digest::SHA256,
        hmac: hmac::HMAC_SHA256,
        hkdf: hkdf::HKDF_SHA256,
        aead: &aead::CHACHA20_POLY1305,
    },
];

impl Suite {
    fn hash_len(&self) -> usize {
        self.hash.output_len()
    }

    fn hash(&self, bytes: &[u8]) -> Vec<u8> {
        digest::digest(self.hash, bytes).as_ref().to_vec()
    }

    /// HKDF-Extract (RFC 5869 §2.2): HMAC(salt, ikm).
    fn extract(&self, salt: &[u8], ikm: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac, salt), ikm)
            .as_ref()
            .to_vec()
    }

    /// HKDF-Expand-Label (RFC 8446 §7.1).
    fn expand_label(&self, secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
        let full = format!("tls13 {label}");
        let info = [
            &(len as u16).to_be_bytes()[..],
            &[full.len() as u8],
            full.as_bytes(),
            &[context.len() as u8],
            context,
        ];
        let prk = hkdf::Prk::new_less_safe(self.hkdf, secret);
        let mut out = vec![0u8; len];
        if let Ok(okm) = prk.expand(&info, Len(len)) {
            let _ = okm.fill(&mut out);
        }
        out
    }

    /// Derive-Secret (RFC 8446 §7.1): over the transcript `messages`.
    fn derive_secret(&self, secret: &[u8], label: &str, messages: &[u8]) -> Vec<u8> {
        self.expand_label(secret, label, &self.hash(messages), self.hash_len())
    }

    /// The Finished verify_data under `secret` over the transcript `messages`.
    fn finished(&self, secret: &[u8], messages: &[u8]) -> Vec<u8> {
        let key = self.expand_label(secret, "finished", &[], self.hash_len());
        hmac::sign(&hmac::Key::new(self.hmac, &key), &self.hash(messages))
            .as_ref()
            .to_vec()
    }
}
/// The ServerHello random that makes it a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// A GREASE value (RFC 8701 §2): 0x?a?a.
const GREASE: u16 = 0x3a3a;
/// Alerts that say the server could not follow this client's cryptography: the fault is ours.
const OUR_FAULT: [Alert; 4] = [
    Alert::BAD_RECORD_MAC,
    Alert::DECODE_ERROR,
    Alert::DECRYPT_ERROR,
    Alert::ILLEGAL_PARAMETER,
];

/// X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem): ML-KEM-768 and X25519 together.
const X25519MLKEM768: u16 = 0x11ec;
/// The ECDH groups the crafted hello can complete, by id, in the order it lists them.
pub(super) const ECDH: [(u16, &agreement::Algorithm); 3] = [
    (0x001d, &agreement::X25519),
    (0x0017, &agreement::ECDH_P256),
    (0x0018, &agreement::ECDH_P384),
];
/// ML-KEM-768's ciphertext, the first part of the server's hybrid share.
const MLKEM768_CIPHERTEXT: usize = 1088;

/// The client's key share of one group, and what completes it.
pub(super) enum Share {
    Ecdh {
        id: u16,
        private: agreement::EphemeralPrivateKey,
        alg: &'static agreement::Algorithm,
        public: Vec<u8>,
    },
    /// ML-KEM-768's encapsulation key then X25519's public key; the secret is ML-KEM's shared
    /// key then X25519's.
    Hybrid {
        decapsulation: Box<ml_kem::DecapsulationKey768>,
        x25519: agreement::EphemeralPrivateKey,
        public: Vec<u8>,
    },
}

impl Share {
    /// A fresh share of group `id`, if the client can make one.
    pub(super) fn new(id: u16) -> Option<Share> {
        use ml_kem::KeyExport;
        let rng = ring::rand::SystemRandom::new();
        if id == X25519MLKEM768 {
            let mut seed = [0u8; 64];
            getrandom::fill(&mut seed).ok()?;
            let decapsulation =
                ml_kem::DecapsulationKey768::from_seed(ml_kem::Seed::try_from(&seed[..]).ok()?);
            let x25519 = agreement::EphemeralPrivateKey::generate(&agreement::X25519, &rng).ok()?;
            let mut public = decapsulation.encapsulation_key().to_bytes().to_vec();
            public.extend_from_slice(x25519.compute_public_key().ok()?.as_ref());
            return Some(Share::Hybrid {
                decapsulation: Box::new(decapsulation),
                x25519,
                public,
            });
        }
        let (id, alg) = ECDH.into_iter().find(|(g, _)| *g == id)?;
        let private = agreement::EphemeralPrivateKey::generate(alg, &rng).ok()?;
        let public = private.compute_public_key().ok()?.as_ref().to_vec();
        Some(Share::Ecdh {
            id,
            private,
            alg,
            public,
        })
    }

    fn id(&self) -> u16 {
        match self {
            Share::Ecdh { id, .. } => *id,
            Share::Hybrid { .. } => X25519MLKEM768,
        }
    }

    pub(super) fn public(&self) -> &[u8] {
        match self {
            Share::Ecdh { public, .. } | Share::Hybrid { public, .. } => public,
        }
    }

    /// The shared secret with the server's share, if it is one.
    pub(super) fn agree(self, peer: &[u8]) -> Option<Vec<u8>> {
        let ecdh = |private, alg, peer: &[u8]| {
            agreement::agree_ephemeral(
                private,
                &agreement::UnparsedPublicKey::new(alg, peer),
                |s| s.to_vec(),
            )
            .ok()
        };
        match self {
            Share::Ecdh { private, alg, .. } => ecdh(private, alg, peer),
            Share::Hybrid {
                decapsulation,
                x25519,
                ..
            } => {
                use ml_kem::Decapsulate;
                let (ct, x) = peer.split_at_checked(MLKEM768_CIPHERTEXT)?;
                let ct = ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(ct).ok()?;
                let mut secret = decapsulation.decapsulate(&ct).to_vec();
                secret.extend(ecdh(x25519, &agreement::X25519, x)?);
                Some(secret)
            }
        }
    }
}

/// Why the crafted handshake did not reach a session.
pub(super) enum Stop {
    /// The server ended it: the outcome says how.
    Server(Box<ProbeOutcome>),
    /// It asked for a key share in another group.
    Retry(u16),
}

/// Connects with a crafted ClientHello of `craft` and completes the client side of a TLS 1.3
/// handshake without a certificate. On failure the returned outcome is final.
pub(super) async fn connect(
    req: &ProbeRequest,
    craft: Craft,
) -> Result<Connected<CraftedStream>, ProbeOutcome> {
    let started = Instant::now();
    let mut group = match craft {
        Craft::MlKem => X25519MLKEM768,
        _ => ECDH[0].0,
    };
    // A HelloRetryRequest for another group the client can complete is answered on a new
    // connection that offers that group's share: at most once.
    for _ in 0..2 {
        match handshake(req, craft, group, started).await {
            Ok(c) => return Ok(c),
            Err(Stop::Server(out)) => return Err(*out),
            Err(Stop::Retry(id)) if id != group && Share::new(id).is_some() => group = id,
            Err(Stop::Retry(id)) => {
                let mut out = ProbeOutcome::new(req);
                out.outcome = Outcome::Error;
                out.tls_version = Some("tls1.3".into());
                out.detail = format!(
                    "the server asked the crafted ClientHello for a key share of group 0x{id:04x}, which it cannot make"
                );
                out.timings.total_us = micros(started);
                return Err(out);
            }
        }
    }
    let mut out = ProbeOutcome::new(req);
    out.outcome = Outcome::Error;
    out.detail = "the server asked for another key share twice".into();
    Err(out)
}

async fn handshake(
    req: &ProbeRequest,
    craft: Craft,
    group: u16,
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
    let Some(share) = Share::new(group) else {
        return Err(fail(out, Outcome::Error, "key generation failed".into()));
    };
    let sni = req.sni_sent();
    let hello = client_hello(craft, sni.as_deref(), &req.alpn, group, share.public());
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

    // The ServerHello, in the clear.
    let mut plain = Vec::new();
    let server_hello = loop {
        if let Some((msg, rest)) = take_message(&plain) {
            plain = rest;
            break msg;
        }
        match read_record(&mut tcp, deadline).await {
            Record::Read { header, body } if header[0] == 0x16 => plain.extend_from_slice(&body),
            Record::Read { header, body } if header[0] == 0x15 && body.len() >= 2 => {
                let alert = Alert(body[1]);
                out.alert = Some(alert);
                return Err(fail(
                    out,
                    Outcome::Rejected,
                    format!("server refused the crafted ClientHello with alert `{alert}`"),
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
                        "no answer to the crafted ClientHello within {} ms",
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
    let sh = match parse_server_hello(&server_hello) {
        Ok(sh) => sh,
        Err(why) => return Err(fail(out, Outcome::Error, why)),
    };
    if sh.retry {
        return match sh.group {
            Some(id) => Err(Stop::Retry(id)),
            None => Err(fail(
                out,
                Outcome::Error,
                "the server's HelloRetryRequest named no group".into(),
            )),
        };
    }
    if sh.version != 0x0304 {
        out.tls_version = Some(format!("0x{:04x}", sh.version));
        return Err(fail(
            out,
            Outcome::Rejected,
            "server answered the TLS 1.3-only crafted ClientHello with an older version".into(),
        ));
    }
    out.tls_version = Some("tls1.3".into());
    let Some(suite) = SUITES.iter().find(|s| s.id == sh.suite).copied() else {
        return Err(fail(
            out,
            Outcome::Error,
            format!(
                "the server's ServerHello chose suite 0x{:04x}, which was not offered",
                sh.suite
            ),
        ));
    };
    out.cipher_suite = Some(suite.name.into());
    if sh.group != Some(share.id()) {
        return Err(fail(
            out,
            Outcome::Error,
            format!(
                "the server's ServerHello chose key share group {:?}, not the one offered",
                sh.group
            ),
        ));
    }
    let Some(shared) = share.agree(&sh.key_share) else {
        return Err(fail(
            out,
            Outcome::Error,
            "the server's key share does not complete the client's".into(),
        ));
    };
    transcript.extend_from_slice(&server_hello);

    let zeros = vec![0u8; suite.hash_len()];
    let early = suite.extract(&zeros, &zeros);
    let hs_secret = suite.extract(&suite.derive_secret(&early, "derived", &[]), &shared);
    let c_hs = suite.derive_secret(&hs_secret, "c hs traffic", &transcript);
    let s_hs = suite.derive_secret(&hs_secret, "s hs traffic", &transcript);
    let mut reader = Direction::new(&suite, &s_hs);

    // The server's encrypted flight: EncryptedExtensions .. Finished.
    let mut request_context: Option<Vec<u8>> = None;
    loop {
        let msg = loop {
            if let Some((msg, rest)) = take_message(&plain) {
                plain = rest;
                break msg;
            }
            let (header, body) = match read_record(&mut tcp, deadline).await {
                Record::Read { header, body } => (header, body),
                Record::TimedOut => {
                    return Err(fail(
                        out,
                        Outcome::Inconclusive,
                        "the server's encrypted flight did not end in time".into(),
                    ));
                }
                Record::Ended(e) => {
                    out.reset = true;
                    return Err(fail(
                        out,
                        Outcome::Rejected,
                        format!("server closed the connection during its flight ({e})"),
                    ));
                }
            };
            match header[0] {
                0x14 => continue, // change_cipher_spec, for middleboxes
                0x15 if body.len() >= 2 => return Err(alerted(out, body[1], started)),
                0x17 => match reader.open(&header, body) {
                    Some((22, data)) => plain.extend_from_slice(&data),
                    Some((21, data)) if data.len() >= 2 => {
                        return Err(alerted(out, data[1], started));
                    }
                    _ => {
                        return Err(fail(
                            out,
                            Outcome::Error,
                            "the crafted client could not open the server's encrypted flight"
                                .into(),
                        ));
                    }
                },
                _ => {
                    return Err(fail(
                        out,
                        Outcome::Error,
                        "the server sent an unexpected record in its flight".into(),
                    ));
                }
            }
        };
        let body = &msg[4..];
        match msg[0] {
            8 => out.alpn = alpn_of(body),
            13 => {
                let ctx_len = usize::from(*body.first().unwrap_or(&0));
                request_context = Some(body.get(1..1 + ctx_len).unwrap_or_default().to_vec());
                out.client_cert_requested = true;
                out.acceptable_ca_names = ca_names(body.get(1 + ctx_len..).unwrap_or_default());
            }
            11 => out.server_chain = chain_facts(&certificates(body)),
            20 => {
                if suite.finished(&s_hs, &transcript) != body {
                    return Err(fail(
                        out,
                        Outcome::Error,
                        "the server's Finished does not match the crafted client's key schedule"
                            .into(),
                    ));
                }
                transcript.extend_from_slice(&msg);
                break;
            }
            _ => {}
        }
        transcript.extend_from_slice(&msg);
    }
    out.timings.handshake_us = micros(hs_start);

    let master = suite.extract(&suite.derive_secret(&hs_secret, "derived", &[]), &zeros);
    let c_ap = suite.derive_secret(&master, "c ap traffic", &transcript);
    let s_ap = suite.derive_secret(&master, "s ap traffic", &transcript);
    let mut writer = Direction::new(&suite, &c_hs);
    let mut flight = vec![0x14, 3, 3, 0, 1, 1]; // change_cipher_spec, as middlebox-compatible clients send
    if let Some(ctx) = request_context {
        // An empty Certificate: no certificate at all (RFC 8446 §4.4.2).
        let mut body = vec![ctx.len() as u8];
        body.extend_from_slice(&ctx);
        body.extend_from_slice(&[0, 0, 0]);
        let msg = handshake_message(11, &body);
        transcript.extend_from_slice(&msg);
        flight.extend(writer.seal(22, &msg));
    }
    let verify = suite.finished(&c_hs, &transcript);
    flight.extend(writer.seal(22, &handshake_message(20, &verify)));
    if let Err(e) = tcp.write_all(&flight).await {
        out.reset = true;
        return Err(fail(
            out,
            Outcome::Rejected,
            format!("connection closed while sending the client's Finished ({e})"),
        ));
    }
    out.stage = Stage::PostHandshake;
    out.outcome = Outcome::Inconclusive;
    out.detail = "crafted handshake completed; the server's verdict is not yet seen".into();
    let tickets = Arc::new(TicketWatch::default());
    Ok(Connected {
        stream: CraftedStream::new(
            tcp,
            Direction::new(&suite, &s_ap),
            Direction::new(&suite, &c_ap),
            Vec::new(),
            tickets.clone(),
        ),
        outcome: out,
        started,
        tickets,
    })
}

/// An alert during the server's flight: a refusal, unless it says the server could not follow
/// this client's cryptography.
pub(super) fn alerted(mut out: ProbeOutcome, code: u8, started: Instant) -> Stop {
    let alert = Alert(code);
    out.alert = Some(alert);
    if OUR_FAULT.contains(&alert) {
        out.outcome = Outcome::Error;
        out.detail = format!(
            "server sent alert `{alert}` during the crafted handshake: it could not follow the crafted client"
        );
    } else {
        out.outcome = Outcome::Rejected;
        out.detail = format!("server sent alert `{alert}` during the crafted handshake");
    }
    out.timings.total_us = micros(started);
    Stop::Server(Box::new(out))
}

/// The ClientHello record: TLS 1.3 only, the engine's suites, one key share; `sni` as given
/// (any bytes); with [`Craft::Grease`], a GREASE value first in every list and two GREASE
/// extensions (RFC 8701 §3).
fn client_hello(
    craft: Craft,
    sni: Option<&str>,
    alpn: &[&str],
    group: u16,
    share: &[u8],
) -> Vec<u8> {
    let grease = craft == Craft::Grease;
    let mut random = [0u8; 64];
    let _ = getrandom::fill(&mut random);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&random[..32]);
    hello.push(32); // a legacy session id, as middlebox-compatible clients send
    hello.extend_from_slice(&random[32..]);
    let with_grease = |values: &[u16]| with_grease(grease, values);
    hello.extend(list16(&with_grease(
        &SUITES.iter().map(|s| s.id).collect::<Vec<_>>(),
    )));
    hello.extend_from_slice(&[1, 0]);

    let mut exts = Vec::new();
    if grease {
        extension(&mut exts, 0x0a0a, &[]);
    }
    if let Some(name) = sni {
        sni_extension(&mut exts, name);
    }
    let pq: &[u16] = if craft == Craft::MlKem {
        &[X25519MLKEM768]
    } else {
        &[]
    };
    let mut groups = vec![group];
    for id in pq.iter().copied().chain(ECDH.map(|(id, _)| id)) {
        if !groups.contains(&id) {
            groups.push(id);
        }
    }
    extension(&mut exts, 0x000a, &list16(&with_grease(&groups)));
    extension(&mut exts, 0x000d, &list16(&SCHEMES));
    alpn_extension(&mut exts, alpn, grease);
    let versions = with_grease(&[0x0304]);
    let mut body = vec![(versions.len() * 2) as u8];
    for v in versions {
        body.extend_from_slice(&v.to_be_bytes());
    }
    extension(&mut exts, 0x002b, &body);
    extension(&mut exts, 0x002d, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
    let mut shares = Vec::new();
    if grease {
        shares.extend_from_slice(&GREASE.to_be_bytes());
        shares.extend_from_slice(&[0, 1, 0]);
    }
    shares.extend_from_slice(&group.to_be_bytes());
    push_u16(&mut shares, share.len());
    shares.extend_from_slice(share);
    let mut body = Vec::new();
    push_u16(&mut body, shares.len());
    body.extend_from_slice(&shares);
    extension(&mut exts, 0x0033, &body);
    if grease {
        extension(&mut exts, 0x1a1a, &[0]);
    }
    push_u16(&mut hello, exts.len());
    hello.extend_from_slice(&exts);
    hello_record(&hello)
}

/// The signature schemes both hand-built hellos offer: ecdsa_secp256r1_sha256,
/// ecdsa_secp384r1_sha384, rsa_pss_rsae_sha256/384/512, ed25519, rsa_pkcs1_sha256/384/512.
pub(super) const SCHEMES: [u16; 9] = [
    0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401, 0x0501, 0x0601,
];

/// `values` as a TLS list of u16 (its length in bytes first).
pub(super) fn list16(values: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    push_u16(&mut v, values.len() * 2);
    for x in values {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

/// `values`, with a GREASE value first when `grease`.
pub(super) fn with_grease(grease: bool, values: &[u16]) -> Vec<u16> {
    grease
        .then_some(GREASE)
        .into_iter()
        .chain(values.iter().copied())
        .collect()
}

/// The ALPN extension offering `alpn` (a GREASE id first when `grease`); none when empty.
pub(super) fn alpn_extension(exts: &mut Vec<u8>, alpn: &[&str], grease: bool) {
    if alpn.is_empty() {
        return;
    }
    let mut ids = Vec::new();
    let grease_id: &[&str] = if grease { &["\u{1a}\u{1a}"] } else { &[] };
    for id in grease_id.iter().chain(alpn) {
        ids.push(id.len() as u8);
        ids.extend_from_slice(id.as_bytes());
    }
    let mut body = Vec::new();
    push_u16(&mut body, ids.len());
    body.extend_from_slice(&ids);
    extension(exts, 0x0010, &body);
}

/// What a ServerHello (or HelloRetryRequest) said.
struct ServerHello {
    retry: bool,
    version: u16,
    suite: u16,
    group: Option<u16>,
    key_share: Vec<u8>,
}

fn parse_server_hello(msg: &[u8]) -> Result<ServerHello, String> {
    let bad = || "the server's ServerHello is malformed".to_owned();
    if msg.first() != Some(&2) {
        return Err(format!(
            "the server answered the crafted ClientHello with handshake message {} instead of a ServerHello",
            msg.first().copied().unwrap_or(0)
        ));
    }
    let b = &msg[4..];
    let random = b.get(2..34).ok_or_else(bad)?;
    let sid = usize::from(*b.get(34).ok_or_else(bad)?);
    let at = 35 + sid;
    let suite = u16_at(b, at).ok_or_else(bad)?;
    let mut sh = ServerHello {
        retry: random == HRR_RANDOM,
        version: u16_at(b, 0).ok_or_else(bad)?,
        suite,
        group: None,
        key_share: Vec::new(),
    };
    for (kind, data) in extensions(b.get(at + 3..).ok_or_else(bad)?) {
        match kind {
            0x002b => sh.version = u16_at(data, 0).ok_or_else(bad)?,
            0x0033 => {
                sh.group = u16_at(data, 0);
                if let Some(n) = u16_at(data, 2) {
                    sh.key_share = data.get(4..4 + usize::from(n)).unwrap_or_default().to_vec();
                }
            }
            _ => {}
        }
    }
    Ok(sh)
}

pub(super) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The extensions of a block that opens with its two-byte length: each one's type and data, up
/// to the block's end or the first that does not fit in it.
pub(super) fn extensions(block: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let end = u16_at(block, 0).map_or(0, |n| 2 + usize::from(n));
    let block = block.get(..end).unwrap_or(block);
    let mut at = 2;
    std::iter::from_fn(move || {
        let kind = u16_at(block, at)?;
        let len = usize::from(u16_at(block, at + 2)?);
        let data = block.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        Some((kind, data))
    })
}

/// The first complete handshake message of `bytes` (header included) and the rest.
pub(super) fn take_message(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let len = u32::from_be_bytes([0, *bytes.get(1)?, *bytes.get(2)?, *bytes.get(3)?]) as usize;
    let msg = bytes.get(..4 + len)?;
    Some((msg.to_vec(), bytes[4 + len..].to_vec()))
}

pub(super) fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![kind];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    msg
}

/// The protocol EncryptedExtensions' ALPN extension names.
pub(super) fn alpn_of(body: &[u8]) -> Option<String> {
    let (_, data) = extensions(body).find(|(kind, _)| *kind == 0x0010)?;
    let n = usize::from(*data.get(2)?);
    Some(String::from_utf8_lossy(data.get(3..3 + n)?).into_owned())
}

/// The CA names of a TLS 1.3 CertificateRequest's certificate_authorities extension.
fn ca_names(exts: &[u8]) -> Vec<String> {
    extensions(exts)
        .filter(|(kind, _)| *kind == 0x002f)
        .flat_map(|(_, data)| super::client::distinguished_names(data))
        .collect()
}

/// The certificates of a TLS 1.3 Certificate message.
fn certificates(body: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let mut out = Vec::new();
    let ctx = usize::from(*body.first().unwrap_or(&0));
    let mut at = 1 + ctx + 3;
    while let Some(len) = body
        .get(at..at + 3)
        .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    {
        let Some(der) = body.get(at + 3..at + 3 + len) else {
            break;
        };
        out.push(rustls_pki_types::CertificateDer::from(der.to_vec()));
        at += 3 + len;
        let Some(ext) = u16_at(body, at) else { break };
        at += 2 + usize::from(ext);
    }
    out
}

/// A length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// One direction's record protection: its key, IV and sequence number (RFC 8446 §5.2-5.3), or
/// under TLS 1.2 an AES-GCM key, its 4-byte salt and the explicit nonce (RFC 5288 §3).
pub(super) struct Direction {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls12: bool,
}

impl Direction {
    fn new(suite: &Suite, secret: &[u8]) -> Self {
        let key = suite.expand_label(secret, "key", &[], suite.aead.key_len());
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&suite.expand_label(secret, "iv", &[], 12));
        Direction {
            key: aead::LessSafeKey::new(
                aead::UnboundKey::new(suite.aead, &key).expect("a key of the suite's length"),
            ),
            iv,
            seq: 0,
            tls12: false,
        }
    }

    /// TLS 1.2 AES-GCM protection from the key block's `key` and `salt`.
    pub(super) fn tls12(alg: &'static aead::Algorithm, key: &[u8], salt: &[u8]) -> Self {
        let mut iv = [0u8; 12];
        iv[..4].copy_from_slice(salt);
        Direction {
            key: aead::LessSafeKey::new(
                aead::UnboundKey::new(alg, key).expect("a key of the suite's length"),
            ),
            iv,
            seq: 0,
            tls12: true,
        }
    }

    /// The TLS 1.2 nonce (the salt, then `explicit`) and additional data of record `seq`.
    fn tls12_nonce_aad(&self, explicit: [u8; 8], kind: u8, len: usize) -> (aead::Nonce, [u8; 13]) {
        let mut nonce = self.iv;
        nonce[4..].copy_from_slice(&explicit);
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8] = kind;
        aad[9..11].copy_from_slice(&[3, 3]);
        aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
        (aead::Nonce::assume_unique_for_key(nonce), aad)
    }

    fn nonce(&mut self) -> aead::Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        aead::Nonce::assume_unique_for_key(nonce)
    }

    /// One protected record of inner content type `kind` (under TLS 1.2, of that type).
    pub(super) fn seal(&mut self, kind: u8, data: &[u8]) -> Vec<u8> {
        if self.tls12 {
            let explicit = self.seq.to_be_bytes();
            let (nonce, aad) = self.tls12_nonce_aad(explicit, kind, data.len());
            self.seq += 1;
            let mut body = data.to_vec();
            let _ = self
                .key
                .seal_in_place_append_tag(nonce, aead::Aad::from(aad), &mut body);
            let len = 8 + body.len();
            return [
                &[kind, 3, 3, (len >> 8) as u8, len as u8][..],
                &explicit,
                &body,
            ]
            .concat();
        }
        let mut body = data.to_vec();
        body.push(kind);
        let len = body.len() + self.key.algorithm().tag_len();
        let header = [0x17, 3, 3, (len >> 8) as u8, len as u8];
        let nonce = self.nonce();
        let _ = self
            .key
            .seal_in_place_append_tag(nonce, aead::Aad::from(header), &mut body);
        [&header[..], &body].concat()
    }

    /// Opens one protected record: its inner content type (under TLS 1.2, its type) and data.
    pub(super) fn open(&mut self, header: &[u8; 5], mut body: Vec<u8>) -> Option<(u8, Vec<u8>)> {
        if self.tls12 {
            let tag = self.key.algorithm().tag_len();
            let explicit: [u8; 8] = body.get(..8)?.try_into().ok()?;
            let len = body.len().checked_sub(8 + tag)?;
            let (nonce, aad) = self.tls12_nonce_aad(explicit, header[0], len);
            self.seq += 1;
            let plain = self
                .key
                .open_in_place(nonce, aead::Aad::from(aad), &mut body[8..])
                .ok()?;
            return Some((header[0], plain.to_vec()));
        }
        let nonce = self.nonce();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(*header), &mut body)
            .ok()?;
        let end = plain.iter().rposition(|b| *b != 0)?;
        Some((plain[end], plain[..end].to_vec()))
    }
}

/// The application-data phase of a crafted connection: reads and writes TLS 1.3 records. An
/// alert reads as rustls's `AlertReceived` error, a close_notify as the end of the stream, a
/// session ticket wakes the attempt's ticket watch.
pub struct CraftedStream {
    tcp: TcpStream,
    read: Direction,
    write: Direction,
    raw: Vec<u8>,
    plain: Vec<u8>,
    plain_at: usize,
    pending: Vec<u8>,
    pending_at: usize,
    tickets: Arc<TicketWatch>,
}

impl CraftedStream {
    /// The application-data phase over `tcp`, with what is left of the handshake's reads.
    pub(super) fn new(
        tcp: TcpStream,
        read: Direction,
        write: Direction,
        raw: Vec<u8>,
        tickets: Arc<TicketWatch>,
    ) -> Self {
        CraftedStream {
            tcp,
            read,
            write,
            raw,
            plain: Vec::new(),
            plain_at: 0,
            pending: Vec::new(),
            pending_at: 0,
            tickets,
        }
    }

    /// The next complete record of `raw`, if one is there.
    fn take_record(&mut self) -> Option<([u8; 5], Vec<u8>)> {
        let len = usize::from(u16_at(&self.raw, 3)?);
        if self.raw.len() < 5 + len {
            return None;
        }
        let mut header = [0u8; 5];
        header.copy_from_slice(&self.raw[..5]);
        let body = self.raw[5..5 + len].to_vec();
        self.raw.drain(..5 + len);
        Some((header, body))
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.pending_at < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.pending[self.pending_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pending_at += n;
        }
        self.pending.clear();
        self.pending_at = 0;
        Poll::Ready(Ok(()))
    }
}

/// An alert after the client's Finished, as the engine reports one; an alert saying the server
/// could not follow this client's records or Finished is this client's failure, not a refusal.
fn alert_error(code: u8) -> std::io::Error {
    if OUR_FAULT.contains(&Alert(code)) {
        return std::io::Error::other(format!(
            "the server could not follow the crafted client (alert `{}`)",
            Alert(code)
        ));
    }
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(rustls::AlertDescription::from(code)),
    )
}

impl AsyncRead for CraftedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_at < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.plain_at);
                buf.put_slice(&this.plain[this.plain_at..this.plain_at + n]);
                this.plain_at += n;
                return Poll::Ready(Ok(()));
            }
            if let Some((header, body)) = this.take_record() {
                match header[0] {
                    0x14 => continue,
                    0x15 if body.len() >= 2 && !this.read.tls12 => {
                        return Poll::Ready(match body[1] {
                            0 => Ok(()),
                            code => Err(alert_error(code)),
                        });
                    }
                    // Under TLS 1.2 every record after the handshake is protected, of its own type.
                    0x15..=0x17 if this.read.tls12 || header[0] == 0x17 => {
                        match this.read.open(&header, body) {
                            Some((23, data)) => {
                                this.plain = data;
                                this.plain_at = 0;
                            }
                            Some((22, data)) => {
                                if data.first() == Some(&4) && !this.read.tls12 {
                                    this.tickets
                                        .seen
                                        .store(true, std::sync::atomic::Ordering::SeqCst);
                                    this.tickets.issued.notify_one();
                                }
                            }
                            Some((21, data)) if data.len() >= 2 => {
                                return Poll::Ready(match data[1] {
                                    0 => Ok(()),
                                    code => Err(alert_error(code)),
                                });
                            }
                            _ => {
                                return Poll::Ready(Err(std::io::Error::other(
                                    "the crafted client could not open a record of the server's",
                                )));
                            }
                        }
                    }
                    _ => {
                        return Poll::Ready(Err(std::io::Error::other(
                            "the server sent a record of an unexpected type",
                        )));
                    }
                }
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(if this.raw.is_empty() {
                    Ok(())
                } else {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
            this.raw.extend_from_slice(read.filled());
        }
    }
}

impl AsyncWrite for CraftedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        let n = buf.len().min(16 * 1024);
        this.pending = this.write.seal(23, &buf[..n]);
        this.pending_at = 0;
        // The record is ours now: a later write or flush sends what is left of it.
        let _ = this.poll_pending(cx)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8448 §3 (a simple 1-RTT handshake): the handshake secrets from its shared secret and
    /// transcript hash.
    #[test]
    fn the_key_schedule_matches_rfc_8448() {
        let suite = SUITES[1];
        let early = suite.extract(&[0; 32], &[0; 32]);
        assert_eq!(
            hex::encode(&early),
            "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"
        );
        let derived = suite.derive_secret(&early, "derived", &[]);
        assert_eq!(
            hex::encode(&derived),
            "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"
        );
        let shared =
            hex::decode("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
                .unwrap();
        let hs = suite.extract(&derived, &shared);
        assert_eq!(
            hex::encode(&hs),
            "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"
        );
        let server =
            hex::decode("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
                .unwrap();
        assert_eq!(
            hex::encode(suite.expand_label(&server, "key", &[], 16)),
            "3fce516009c21727d0f2e4e86ee403bc"
        );
        assert_eq!(
            hex::encode(suite.expand_label(&server, "iv", &[], 12)),
            "5d313eb2671276ee13000b30"
        );
    }

    #[test]
    fn grease_goes_first_in_every_list_and_the_name_is_sent_as_given() {
        let share = [7u8; 32];
        let plain = client_hello(Craft::Plain, Some("host."), &["h2"], 0x001d, &share);
        let greased = client_hello(Craft::Grease, Some("host."), &["h2"], 0x001d, &share);
        let has = |hello: &[u8], needle: &[u8]| hello.windows(needle.len()).any(|w| w == needle);
        assert!(has(&plain, b"\x00\x05host."), "the trailing dot is kept");
        assert!(!has(&plain, &GREASE.to_be_bytes()));
        // cipher suites: GREASE before the engine's three
        assert!(has(
            &greased,
            &[0, 8, 0x3a, 0x3a, 0x13, 0x02, 0x13, 0x01, 0x13, 0x03]
        ));
        // supported_versions: GREASE before TLS 1.3
        assert!(has(&greased, &[4, 0x3a, 0x3a, 3, 4]));
        // ALPN: a GREASE id before h2
        assert!(has(&greased, &[2, 0x1a, 0x1a, 2, b'h', b'2']));
        // key_share: a GREASE share of one byte before x25519's
        assert!(has(&greased, &[0x3a, 0x3a, 0, 1, 0, 0, 0x1d]));
    }

    /// The hybrid share is ML-KEM-768's encapsulation key then X25519's public key (1184 + 32
    /// bytes), offered first; a server's share of the wrong length completes nothing.
    #[test]
    fn the_hybrid_share_is_ml_kem_then_x25519() {
        let share = Share::new(X25519MLKEM768).expect("a hybrid share");
        assert_eq!(share.public().len(), 1184 + 32);
        let hello = client_hello(
            Craft::MlKem,
            Some("localhost"),
            &[],
            share.id(),
            share.public(),
        );
        let has = |needle: &[u8]| hello.windows(needle.len()).any(|w| w == needle);
        // supported_groups: the hybrid first, then the ECDH groups
        assert!(has(&[0, 8, 0x11, 0xec, 0, 0x1d, 0, 0x17, 0, 0x18]));
        // key_share: the hybrid's 1216 bytes
        assert!(has(&[0x11, 0xec, 0x04, 0xc0]));
        assert!(share.agree(&[0u8; 40]).is_none());
        assert!(Share::new(0x0a0a).is_none());
    }
}
