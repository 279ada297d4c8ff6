//! A hand-built TLS 1.2 ClientHello offering every cipher suite a client could use: ECDHE, DHE
//! and RSA key exchange, AES-GCM, ChaCha20-Poly1305, AES-CBC, 3DES. rustls speaks only the AEAD
//! ECDHE suites, so when its own TLS 1.2 attempt finds no suite in common, this offer tells
//! whether the server would have spoken TLS 1.2 to someone else: which suite it chose, and
//! whether it asked for a client certificate under it (the server's flight up to ServerHelloDone
//! is read in the clear). A version the prober cannot speak is then no verdict, never a version
//! nobody can speak.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::legacy::{Record, extension, hello_record, push_u16, read_record, sni_extension};
use super::{Alert, ProbeOutcome, TlsVersion, tcp_connect};

/// Every TLS 1.2 suite offered, by IANA value and name, and whether this prober can speak it.
pub const OFFERED: &[(u16, &str, bool)] = &[
    (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true),
    (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", true),
    (0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", true),
    (0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true),
    (0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", true),
    (
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        true,
    ),
    (0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", false),
    (0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", false),
    (0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", false),
    (0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", false),
    (0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", false),
    (0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", false),
    (0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false),
    (0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", false),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", false),
    (0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", false),
    (0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", false),
    (0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", false),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", false),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", false),
    (0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", false),
    (0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", false),
    (0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256", false),
    (0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256", false),
    (0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA", false),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", false),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", false),
];

/// What the server answered to the all-suites TLS 1.2 ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "answer")]
pub enum SuiteOffer {
    /// A ServerHello choosing TLS 1.2 with this suite.
    Chosen {
        /// The suite's IANA name (or its hex value when unknown).
        suite: String,
        /// Whether this prober can negotiate it.
        speakable: bool,
        /// Whether the server's flight held a CertificateRequest (`None`: the flight was not
        /// read to its end).
        certificate_request: Option<bool>,
    },
    /// Refused (an alert, or a close) before any ServerHello: no client can speak TLS 1.2 here.
    Refused {
        /// The alert, if one came.
        alert: Option<Alert>,
    },
    /// Nothing can be concluded (timeout, TCP failure, an answer in another protocol).
    Inconclusive {
        /// Why.
        reason: String,
    },
}

/// The full record (header + ClientHello) offering TLS 1.2 with every suite of [`OFFERED`].
pub fn client_hello(server_name: &str) -> Vec<u8> {
    let mut random = [0u8; 32];
    let _ = getrandom::fill(&mut random);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&random);
    hello.push(0); // empty session id
    push_u16(&mut hello, OFFERED.len() * 2);
    for (suite, _, _) in OFFERED {
        hello.extend_from_slice(&suite.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null only
    let mut exts = Vec::new();
    sni_extension(&mut exts, server_name);
    // supported_groups: x25519, secp256r1, secp384r1, secp521r1, ffdhe2048
    extension(
        &mut exts,
        0x000a,
        &[0, 10, 0, 0x1d, 0, 0x17, 0, 0x18, 0, 0x19, 1, 0],
    );
    extension(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    // signature_algorithms: ECDSA and RSA-PSS/PKCS#1 with SHA-256/384/512, then SHA-1.
    let schemes: [u16; 11] = [
        0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
    ];
    let mut sigs = Vec::new();
    push_u16(&mut sigs, schemes.len() * 2);
    for s in schemes {
        sigs.extend_from_slice(&s.to_be_bytes());
    }
    extension(&mut exts, 0x000d, &sigs);
    extension(&mut exts, 0x0017, &[]); // extended_master_secret
    extension(&mut exts, 0xff01, &[0]); // renegotiation_info
    push_u16(&mut hello, exts.len());
    hello.extend_from_slice(&exts);
    hello_record(&hello)
}

/// Offers every TLS 1.2 suite and reads the server's flight up to ServerHelloDone.
pub async fn offer_all(addr: SocketAddr, server_name: &str, timeout: Duration) -> SuiteOffer {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut scratch = ProbeOutcome::blank(TlsVersion::Tls12, None);
    let Some(mut tcp) = tcp_connect(addr, started, deadline, &mut scratch).await else {
        return SuiteOffer::Inconclusive {
            reason: scratch.detail,
        };
    };
    if tcp.write_all(&client_hello(server_name)).await.is_err() {
        return SuiteOffer::Refused { alert: None };
    }
    let deadline = tokio::time::Instant::from(deadline);
    // Handshake bytes of the server's flight, across records.
    let mut flight = Vec::new();
    let mut chosen: Option<(String, bool)> = None;
    loop {
        let (header, body) = match read_record(&mut tcp, deadline).await {
            Record::TimedOut => {
                return match chosen {
                    Some((suite, speakable)) => SuiteOffer::Chosen {
                        suite,
                        speakable,
                        certificate_request: None,
                    },
                    None => SuiteOffer::Inconclusive {
                        reason: format!(
                            "no answer to the all-suites TLS 1.2 ClientHello within {} ms",
                            timeout.as_millis()
                        ),
                    },
                };
            }
            Record::Ended(_) => {
                return match chosen {
                    Some((suite, speakable)) => SuiteOffer::Chosen {
                        suite,
                        speakable,
                        certificate_request: None,
                    },
                    None => SuiteOffer::Refused { alert: None },
                };
            }
            Record::Read { header, body } => (header, body),
        };
        match header[0] {
            0x15 if chosen.is_none() => {
                return SuiteOffer::Refused {
                    alert: body.get(1).map(|b| Alert(*b)),
                };
            }
            0x16 => flight.extend_from_slice(&body),
            _ if chosen.is_none() => {
                return SuiteOffer::Inconclusive {
                    reason: format!(
                        "the answer to the all-suites TLS 1.2 ClientHello is not TLS ({})",
                        super::describe_bytes(&[&header[..], &body].concat())
                    ),
                };
            }
            _ => {}
        }
        // Walk the complete handshake messages seen so far.
        let walked = super::legacy::walk_flight(&flight);
        if let Some(hello) = &walked.server_hello {
            chosen = server_hello_suite(hello);
        }
        if walked.done
            && let Some((suite, speakable)) = chosen.clone()
        {
            return SuiteOffer::Chosen {
                suite,
                speakable,
                certificate_request: Some(walked.certificate_request.is_some()),
            };
        }
        if flight.len() > 64 * 1024 {
            return SuiteOffer::Inconclusive {
                reason: "the server's TLS 1.2 flight did not end within 64 KiB".into(),
            };
        }
    }
}

/// The suite a ServerHello chose, by name, and whether this prober speaks it.
fn server_hello_suite(msg: &[u8]) -> Option<(String, bool)> {
    // version (2), random (32), session id (1 + n), cipher suite (2)
    let sid = usize::from(*msg.get(34)?);
    let at = 35 + sid;
    let suite = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
    Some(match OFFERED.iter().find(|(value, _, _)| *value == suite) {
        Some((_, name, speakable)) => ((*name).to_owned(), *speakable),
        None => (format!("0x{suite:04x}"), false),
    })
}
