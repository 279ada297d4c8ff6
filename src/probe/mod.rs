//! One handshake attempt, one classified [`ProbeOutcome`].
//!
//! The rule that matters most: under TLS 1.3 the client's handshake completes *before* the server
//! has judged the client certificate, and a rejection arrives as an alert on the first read. So an
//! attempt is only `accepted` once the server has shown it, and the outcome records on what basis
//! ([`AcceptanceBasis`]): for h2 its SETTINGS frame, for HTTPS its HTTP response, for plain TLS 1.3
//! application data or a session ticket (servers issue one only after the client's Finished, i.e.
//! after they judged its certificate), and only failing all of those, silence: no alert for the
//! whole silence window while the connection stayed open. A timeout or a TCP failure proves nothing
//! and is `inconclusive`, never a pass.

pub mod legacy;
pub mod plaintext;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::pki::Identity;
use crate::x509::fingerprint_sha256;

/// TLS protocol version an attempt is forced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0 (legacy prober only).
    #[serde(rename = "tls1.0")]
    Tls10,
    /// TLS 1.1 (legacy prober only).
    #[serde(rename = "tls1.1")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "tls1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "tls1.3")]
    Tls13,
}

impl TlsVersion {
    /// `tls1.2` style name, used as the check id suffix.
    pub fn id(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "tls1.0",
            TlsVersion::Tls11 => "tls1.1",
            TlsVersion::Tls12 => "tls1.2",
            TlsVersion::Tls13 => "tls1.3",
        }
    }

    /// Parses `1.2`, `tls1.2`, `TLSv1.2`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        let v = s.trim_start_matches("tlsv").trim_start_matches("tls");
        match v {
            "1.0" => Some(TlsVersion::Tls10),
            "1.1" => Some(TlsVersion::Tls11),
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// How an attempt proves the server accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcceptanceProof {
    /// Send the HTTP/2 preface and wait for the server's SETTINGS frame (gRPC servers).
    H2Settings,
    /// HTTPS: send `GET /` and read the status line. A refusal status (400, 401, 403, 495, 496:
    /// what nginx's `ssl_verify_client` and its kin answer) is a refusal before protected content.
    Https,
    /// Plain TLS: under TLS 1.3, application data or a session ticket, else silence for the
    /// whole silence window.
    Tls,
}

/// What the server did that made an attempt count as accepted. Reports print it, so a reader can
/// weigh the evidence: everything but [`AcceptanceBasis::Silence`] is the server's own act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AcceptanceBasis {
    /// The server sent its HTTP/2 SETTINGS frame.
    H2Settings,
    /// The server answered the HTTP request with a status that is not a refusal.
    HttpResponse,
    /// The server sent application data.
    ApplicationData,
    /// The server issued a TLS 1.3 session ticket, which it does after the client's Finished.
    SessionTicket,
    /// TLS 1.2: the server's Finished comes after it verified the client's certificate.
    Tls12Finished,
    /// Nothing but silence: no alert and no close for the whole silence window. Weak evidence.
    Silence,
}

impl AcceptanceBasis {
    /// Whether the server did something that shows acceptance (everything but silence).
    pub fn is_positive(self) -> bool {
        self != AcceptanceBasis::Silence
    }
}

impl std::fmt::Display for AcceptanceBasis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AcceptanceBasis::H2Settings => "the server's HTTP/2 SETTINGS frame",
            AcceptanceBasis::HttpResponse => "an HTTP response that is not a refusal",
            AcceptanceBasis::ApplicationData => "application data from the server",
            AcceptanceBasis::SessionTicket => {
                "a TLS 1.3 session ticket issued after the client's Finished"
            }
            AcceptanceBasis::Tls12Finished => {
                "the server's TLS 1.2 Finished, sent after it verified the client"
            }
            AcceptanceBasis::Silence => {
                "silence only: no alert and no close during the whole silence window"
            }
        })
    }
}

/// The server name indication an attempt sends. A server may enforce client certificates only for
/// some names (or only when a name is sent), so refusals are tried under several.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sni {
    /// The configured server name (no SNI when it is an IP address, as TLS requires).
    Configured,
    /// No SNI extension at all.
    Absent,
    /// This name, which the server does not expect.
    Other(String),
}

/// A DNS name no repo-server is configured for, sent as an unexpected SNI.
pub const UNEXPECTED_SNI: &str = "not-the-repo-server.invalid";

/// HTTP statuses that refuse a client before any protected content: nginx sends 400 ("No required
/// SSL certificate was sent") and 495/496 for certificate errors; 401/403 are the generic refusals.
pub const HTTP_REFUSAL_STATUSES: [u16; 5] = [400, 401, 403, 495, 496];

/// The classification of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The server let the client through to application data.
    Accepted,
    /// The server refused (alert or reset) before any application data.
    Rejected,
    /// Nothing can be concluded (timeout, TCP failure).
    Inconclusive,
    /// The prober itself could not run the attempt (bad configuration, local error).
    Error,
}

/// How far the attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// TCP connect.
    Tcp,
    /// Inside the TLS handshake.
    Handshake,
    /// After the client's handshake completed, before application data.
    PostHandshake,
    /// Application data from the server was seen.
    Application,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Error => "not classifiable",
        })
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Tcp => "at TCP connect",
            Stage::Handshake => "during the handshake",
            Stage::PostHandshake => "after the client's handshake completed",
            Stage::Application => "at the application layer",
        })
    }
}

/// One attempt's inputs.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The name the server certificate is checked against (and the configured SNI).
    pub server_name: String,
    /// The SNI to send.
    pub sni: Sni,
    /// Forced protocol version (1.2 or 1.3; older versions go through [`legacy`]).
    pub version: TlsVersion,
    /// Client certificate and key to present, if any.
    pub identity: Option<Identity>,
    /// Trust anchors for verifying the server; the result is recorded, never fatal.
    pub server_roots: Vec<CertificateDer<'static>>,
    /// How acceptance is proven.
    pub proof: AcceptanceProof,
    /// Overall time limit.
    pub timeout: Duration,
    /// With [`AcceptanceProof::Tls`] under TLS 1.3: how long silence must last before it counts as
    /// acceptance (bounded by the timeout). `None`: the whole timeout, so that a server that
    /// refuses slowly is never taken for one that accepts.
    pub silence: Option<Duration>,
}

impl ProbeRequest {
    /// The name the ClientHello carries as SNI, if any.
    pub fn sni_sent(&self) -> Option<String> {
        let name = match &self.sni {
            Sni::Absent => return None,
            Sni::Configured => &self.server_name,
            Sni::Other(name) => name,
        };
        // TLS sends no SNI for an IP address.
        name.parse::<std::net::IpAddr>()
            .is_err()
            .then(|| name.clone())
    }
}

/// Timings of an attempt, in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    /// TCP connect.
    pub connect_us: u64,
    /// TLS handshake (client side).
    pub handshake_us: u64,
    /// Whole attempt, including the acceptance proof.
    pub total_us: u64,
}

/// What the server presented and whether it verified.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerChain {
    /// SHA-256 fingerprints of the presented chain, leaf first.
    pub sha256: Vec<String>,
    /// Subjects of the presented chain, leaf first.
    pub subjects: Vec<String>,
    /// The leaf's public key (`RSA 2048`, `ECDSA P-256`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub leaf_key: Option<String>,
    /// Whether the chain verified against the configured server CA for the server name.
    pub verified: Option<bool>,
    /// Why it did not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// The leaf's DER, for the report's certificates section (not repeated in every attempt).
    #[serde(skip)]
    pub leaf_der: Option<Vec<u8>>,
}

/// One attempt's classified result. Serializable as report evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeOutcome {
    /// The verdict on the connection.
    pub outcome: Outcome,
    /// How far it got.
    pub stage: Stage,
    /// TLS alert received, by RFC 8446 name (`certificate_required`, `unknown_ca`, ...).
    pub alert: Option<String>,
    /// The connection was reset or closed without an alert.
    pub reset: bool,
    /// Version requested.
    pub requested_version: TlsVersion,
    /// The SNI sent (`None`: no SNI extension).
    #[serde(default)]
    pub sni: Option<String>,
    /// Version negotiated: the server's ServerHello chose it (also when it refused the client later).
    pub tls_version: Option<String>,
    /// Cipher suite negotiated.
    pub cipher_suite: Option<String>,
    /// ALPN protocol negotiated.
    pub alpn: Option<String>,
    /// The server's certificate chain.
    pub server_chain: ServerChain,
    /// Whether the server sent a CertificateRequest at all.
    pub client_cert_requested: bool,
    /// The acceptable CA names the CertificateRequest advertised.
    pub acceptable_ca_names: Vec<String>,
    /// Identity presented (`client`, `wrong-ca`, ..., or none).
    pub presented: Option<String>,
    /// On what basis the attempt was called accepted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted_by: Option<AcceptanceBasis>,
    /// The HTTP status answered, with [`AcceptanceProof::Https`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    /// Whether the server issued a TLS 1.3 session ticket on this connection.
    #[serde(default)]
    pub session_ticket: bool,
    /// Timings.
    pub timings: Timings,
    /// One human-readable sentence of what happened.
    pub detail: String,
}

impl ProbeOutcome {
    fn new(req: &ProbeRequest) -> Self {
        let mut out = Self::blank(req.version, req.identity.as_ref().map(|i| i.label.clone()));
        out.sni = req.sni_sent();
        out
    }

    /// Marks the attempt accepted, on `basis`.
    fn accept(&mut self, basis: AcceptanceBasis, detail: String) {
        self.outcome = Outcome::Accepted;
        self.accepted_by = Some(basis);
        self.detail = detail;
    }

    /// A record for an attempt that has not connected yet.
    pub(crate) fn blank(requested_version: TlsVersion, presented: Option<String>) -> Self {
        ProbeOutcome {
            outcome: Outcome::Error,
            stage: Stage::Tcp,
            alert: None,
            reset: false,
            requested_version,
            sni: None,
            tls_version: None,
            cipher_suite: None,
            alpn: None,
            server_chain: ServerChain::default(),
            client_cert_requested: false,
            acceptable_ca_names: vec![],
            presented,
            accepted_by: None,
            http_status: None,
            session_ticket: false,
            timings: Timings::default(),
            detail: String::new(),
        }
    }
}

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
async fn read_h2_answer_after<S: tokio::io::AsyncRead + Unpin>(
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
pub(crate) fn first_bytes(seen: &[u8]) -> String {
    hex::encode(&seen[..seen.len().min(16)])
}

/// RFC 8446 / RFC 5246 name of an alert code.
pub fn alert_name(code: u8) -> String {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return format!("alert_{other}"),
    }
    .to_owned()
}

/// Records the server chain and verifies it against the configured anchors without ever failing
/// the handshake: server identity is its own check, and must not hide the client-auth verdict.
#[derive(Debug)]
struct RecordingServerVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<ServerChain>,
}

impl ServerCertVerifier for RecordingServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = ServerChain::default();
        for der in std::iter::once(end_entity).chain(intermediates) {
            chain.sha256.push(fingerprint_sha256(der));
            let facts = crate::x509::CertFacts::from_der(der).ok();
            if chain.leaf_der.is_none() {
                chain.leaf_der = Some(der.to_vec());
            }
            if chain.leaf_key.is_none() {
                chain.leaf_key = facts.as_ref().map(|f| f.key.to_string());
            }
            chain.subjects.push(
                facts
                    .map(|f| f.subject)
                    .unwrap_or_else(|| "<unparseable>".into()),
            );
        }
        match &self.webpki {
            Some(v) => {
                let result = v.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                );
                chain.verified = Some(result.is_ok());
                chain.verify_error = result.err().map(|e| e.to_string());
            }
            None => chain.verify_error = Some("no server CA configured".into()),
        }
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Presents the configured identity (or none) and records the server's CertificateRequest.
#[derive(Debug)]
struct RecordingCertResolver {
    key: Option<Arc<CertifiedKey>>,
    requested: Mutex<Option<Vec<Vec<u8>>>>,
}

impl ResolvesClientCert for RecordingCertResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *self.requested.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(root_hint_subjects.iter().map(|s| s.to_vec()).collect());
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        // Always answer a CertificateRequest, with an empty Certificate message when there is no key.
        true
    }
}

/// Notes the session tickets a server issues, and stores none: every probe is a fresh session.
#[derive(Debug, Default)]
struct TicketWatch {
    issued: tokio::sync::Notify,
    seen: std::sync::atomic::AtomicBool,
}

impl rustls::client::ClientSessionStore for TicketWatch {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls13ClientSessionValue,
    ) {
        self.seen.store(true, std::sync::atomic::Ordering::SeqCst);
        self.issued.notify_one();
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        None
    }
}

/// Decodes a CertificateRequest CA name (DER Name, with or without its outer SEQUENCE).
fn distinguished_name(bytes: &[u8]) -> String {
    use x509_parser::prelude::{FromDer, X509Name};
    if let Ok((_, name)) = X509Name::from_der(bytes) {
        return name.to_string();
    }
    let mut wrapped = vec![0x30];
    if bytes.len() < 0x80 {
        wrapped.push(bytes.len() as u8);
    } else {
        let len = (bytes.len() as u32).to_be_bytes();
        let len: Vec<u8> = len.into_iter().skip_while(|b| *b == 0).collect();
        wrapped.push(0x80 | len.len() as u8);
        wrapped.extend_from_slice(&len);
    }
    wrapped.extend_from_slice(bytes);
    X509Name::from_der(&wrapped)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|_| format!("<undecodable {} bytes>", bytes.len()))
}

/// The process crypto provider (installed at startup; the ring default otherwise).
pub fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// Everything needed to open a probing TLS connection and read back what happened.
struct Prepared {
    connector: TlsConnector,
    verifier: Arc<RecordingServerVerifier>,
    resolver: Arc<RecordingCertResolver>,
    tickets: Arc<TicketWatch>,
    server_name: ServerName<'static>,
}

fn prepare(req: &ProbeRequest, alpn: &[&[u8]]) -> Result<Prepared, String> {
    let provider = provider();
    let versions: &[&'static rustls::SupportedProtocolVersion] = match req.version {
        TlsVersion::Tls12 => &[&rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        other => {
            return Err(format!(
                "{other} is probed with the legacy prober, not rustls"
            ));
        }
    };
    let webpki = if req.server_roots.is_empty() {
        None
    } else {
        let mut roots = RootCertStore::empty();
        for der in &req.server_roots {
            roots
                .add(der.clone())
                .map_err(|e| format!("server CA is not a usable trust anchor: {e}"))?;
        }
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("server verifier: {e}"))?,
        )
    };
    let verifier = Arc::new(RecordingServerVerifier {
        webpki,
        provider: provider.clone(),
        seen: Mutex::new(ServerChain::default()),
    });
    let key = match &req.identity {
        Some(id) => {
            let signing = provider
                .key_provider
                .load_private_key(id.key.clone_key())
                .map_err(|e| format!("client key `{}` unusable: {e}", id.label))?;
            // Built by hand on purpose: a stolen certificate is presented with a key that is not its own.
            Some(Arc::new(CertifiedKey::new(id.chain.clone(), signing)))
        }
        None => None,
    };
    let resolver = Arc::new(RecordingCertResolver {
        key,
        requested: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(resolver.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // A store that keeps nothing: no session is ever resumed, but an issued ticket is noticed.
    let tickets = Arc::new(TicketWatch::default());
    config.resumption = rustls::client::Resumption::store(tickets.clone())
        .tls12_resumption(rustls::client::Tls12Resumption::Disabled);
    config.enable_sni = req.sni != Sni::Absent;
    let name = match &req.sni {
        Sni::Other(name) => name,
        Sni::Configured | Sni::Absent => &req.server_name,
    };
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| format!("--server-name `{name}`: {e}"))?;
    Ok(Prepared {
        connector: TlsConnector::from(Arc::new(config)),
        verifier,
        resolver,
        tickets,
        server_name,
    })
}

/// What an I/O error from the TLS stream says about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PeerSaid {
    /// The peer sent this TLS alert.
    Alert(String),
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
            rustls::Error::AlertReceived(alert) => PeerSaid::Alert(alert_name(u8::from(*alert))),
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

/// A completed client handshake plus the outcome record so far.
pub struct Connected {
    /// The TLS stream, ready for application data.
    pub stream: TlsStream<TcpStream>,
    /// The record, with handshake facts filled in.
    pub outcome: ProbeOutcome,
    started: Instant,
    tickets: Arc<TicketWatch>,
}

/// Connects and completes the client side of the handshake. On failure the returned outcome is
/// final (rejected, inconclusive or error).
pub async fn connect(req: &ProbeRequest, alpn: &[&[u8]]) -> Result<Connected, ProbeOutcome> {
    let mut out = ProbeOutcome::new(req);
    let started = Instant::now();
    let deadline = started + req.timeout;
    let prepared = match prepare(req, alpn) {
        Ok(p) => p,
        Err(e) => {
            out.detail = e;
            return Err(out);
        }
    };
    let Some(tcp) = tcp_connect(req.addr, started, deadline, &mut out).await else {
        return Err(out);
    };
    let hs_start = Instant::now();
    let result = tokio::time::timeout_at(
        deadline.into(),
        prepared
            .connector
            .connect(prepared.server_name.clone(), tcp),
    )
    .await;
    out.timings.handshake_us = micros(hs_start);
    record_handshake_facts(&mut out, &prepared);
    match result {
        Err(_) => {
            out.outcome = Outcome::Inconclusive;
            out.detail = format!(
                "no answer within {} ms during the handshake",
                req.timeout.as_millis()
            );
        }
        Ok(Err(e)) => match classify_io(&e) {
            PeerSaid::Alert(a) => {
                out.outcome = Outcome::Rejected;
                out.detail = format!("server sent alert `{a}` during the handshake");
                out.alert = Some(a);
            }
            PeerSaid::Reset(why) => {
                out.outcome = Outcome::Rejected;
                out.reset = true;
                out.detail =
                    format!("connection closed during the handshake without an alert ({why})");
            }
            PeerSaid::Other(why) => {
                // The server spoke, but not TLS we can follow (e.g. a plaintext port): no handshake,
                // hence no acceptance; recorded as an error so it is never mistaken for enforcement.
                out.outcome = Outcome::Error;
                out.detail = format!("handshake failed on the client side: {why}");
            }
        },
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            out.tls_version = conn.protocol_version().map(version_name);
            out.cipher_suite = conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()));
            out.alpn = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            out.stage = Stage::PostHandshake;
            // Not a verdict yet: under TLS 1.3 the server has not necessarily judged the client.
            out.outcome = Outcome::Inconclusive;
            out.detail = "client handshake completed; the server's verdict is not yet seen".into();
            return Ok(Connected {
                stream,
                outcome: out,
                started,
                tickets: prepared.tickets,
            });
        }
    }
    out.timings.total_us = micros(started);
    Err(out)
}

fn record_handshake_facts(out: &mut ProbeOutcome, prepared: &Prepared) {
    out.server_chain = prepared
        .verifier
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !out.server_chain.sha256.is_empty() {
        // The server sent its certificate, so its ServerHello took the one version offered,
        // even if the handshake then failed.
        out.tls_version = Some(out.requested_version.id().to_owned());
    }
    if let Some(hints) = prepared
        .resolver
        .requested
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        out.client_cert_requested = true;
        out.acceptable_ca_names = hints.iter().map(|h| distinguished_name(h)).collect();
    }
}

fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_2 => "tls1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "tls1.3".into(),
        other => format!("{other:?}"),
    }
}

fn micros(since: Instant) -> u64 {
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

/// Runs one attempt end to end: handshake, then the acceptance proof.
pub async fn attempt(req: &ProbeRequest) -> ProbeOutcome {
    let alpn: &[&[u8]] = match req.proof {
        AcceptanceProof::H2Settings => &[b"h2"],
        AcceptanceProof::Https => &[b"http/1.1"],
        AcceptanceProof::Tls => &[],
    };
    let connected = match connect(req, alpn).await {
        Ok(c) => c,
        Err(out) => return out,
    };
    prove_acceptance(req, connected).await
}

async fn prove_acceptance(req: &ProbeRequest, connected: Connected) -> ProbeOutcome {
    let Connected {
        mut stream,
        mut outcome,
        started,
        tickets,
    } = connected;
    let deadline = started + req.timeout;
    match req.proof {
        AcceptanceProof::H2Settings => {
            // Let the server speak first: HTTP/2 servers (grpc-go, Go, hyper) send SETTINGS right
            // after the handshake, and a refusing one its alert. Writing first races with the
            // refusal: the server closes with our bytes unread, its kernel resets the connection,
            // and the alert can be lost on our side.
            let first_word = (Instant::now() + FIRST_WORD_WINDOW).min(deadline);
            let answer = match read_h2_answer(&mut stream, first_word).await {
                H2Answer::Silent(seen) => {
                    // A server that waits for our preface before it says anything.
                    let mut hello = H2_PREFACE.to_vec();
                    hello.extend_from_slice(&H2_EMPTY_SETTINGS);
                    match stream.write_all(&hello).await {
                        Ok(()) => read_h2_answer_after(&mut stream, seen, deadline).await,
                        Err(e) => H2Answer::Failed(read_after_failed_write(&mut stream, e).await),
                    }
                }
                answer => answer,
            };
            {
                match answer {
                    H2Answer::Settings => {
                        outcome.stage = Stage::Application;
                        outcome.accept(
                            AcceptanceBasis::H2Settings,
                            "server sent its HTTP/2 SETTINGS frame: the client was admitted".into(),
                        );
                    }
                    H2Answer::Other(seen) => {
                        outcome.outcome = Outcome::Error;
                        outcome.stage = Stage::Application;
                        outcome.detail = format!(
                            "server sent application data that is not HTTP/2 SETTINGS ({})",
                            describe_bytes(&seen)
                        );
                    }
                    H2Answer::Closed(_) => closed_after_handshake(&mut outcome),
                    H2Answer::Silent(_) => {
                        outcome.outcome = Outcome::Inconclusive;
                        outcome.detail = format!(
                            "handshake completed but neither HTTP/2 SETTINGS nor an alert arrived within {} ms",
                            req.timeout.as_millis()
                        );
                    }
                    H2Answer::Failed(e) => apply_post_handshake_error(&mut outcome, &e),
                }
            }
        }
        AcceptanceProof::Https => {
            let request = format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nUser-Agent: argocd-mtls-verify\r\nConnection: close\r\n\r\n",
                req.server_name
            );
            if let Err(e) = stream.write_all(request.as_bytes()).await {
                let e = read_after_failed_write(&mut stream, e).await;
                apply_post_handshake_error(&mut outcome, &e);
            } else {
                judge_http_answer(&mut outcome, read_http_status(&mut stream, deadline).await);
            }
        }
        AcceptanceProof::Tls if req.version == TlsVersion::Tls12 => {
            // In TLS 1.2 the server's Finished comes after it judged the client certificate: a
            // completed client handshake is the server's acceptance.
            outcome.accept(
                AcceptanceBasis::Tls12Finished,
                "TLS 1.2 handshake completed: the server's Finished followed its check of the client".into(),
            );
        }
        AcceptanceProof::Tls => {
            let silence = req.silence.unwrap_or(req.timeout).min(req.timeout);
            let silence_end = (Instant::now() + silence).min(deadline);
            let mut buf = vec![0u8; 4096];
            tokio::select! {
                biased;
                _ = tickets.issued.notified() => outcome.accept(
                    AcceptanceBasis::SessionTicket,
                    "server issued a TLS 1.3 session ticket after the client's Finished: it accepted the client".into(),
                ),
                read = tokio::time::timeout_at(silence_end.into(), stream.read(&mut buf)) => match read {
                    Err(_) => outcome.accept(
                        AcceptanceBasis::Silence,
                        format!(
                            "no alert, data or session ticket for {} ms while the connection stayed open",
                            silence.as_millis()
                        ),
                    ),
                    Ok(Ok(0)) => closed_after_handshake(&mut outcome),
                    Ok(Ok(n)) => {
                        outcome.stage = Stage::Application;
                        outcome.accept(
                            AcceptanceBasis::ApplicationData,
                            format!("server sent {n} bytes of application data"),
                        );
                    }
                    Ok(Err(e)) => apply_post_handshake_error(&mut outcome, &e),
                },
            }
        }
    }
    outcome.session_ticket = tickets.seen.load(std::sync::atomic::Ordering::SeqCst);
    // Best effort: say goodbye properly so servers do not log a reset for accepted probes.
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.shutdown()).await;
    outcome.timings.total_us = micros(started);
    outcome
}

/// How long to let the server speak first after the handshake before writing to it.
pub(crate) const FIRST_WORD_WINDOW: Duration = Duration::from_millis(300);

/// A server that refuses right after the handshake sends its alert and closes; a write racing
/// with that fails (broken pipe, reset) while the alert still waits in the receive queue. Read it:
/// the alert, when there is one, is the server's own word and better evidence than our failed
/// write.
async fn read_after_failed_write<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    write_error: std::io::Error,
) -> std::io::Error {
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
        Ok(Err(e)) if matches!(classify_io(&e), PeerSaid::Alert(_)) => e,
        _ => write_error,
    }
}

fn closed_after_handshake(outcome: &mut ProbeOutcome) {
    outcome.outcome = Outcome::Rejected;
    outcome.reset = true;
    outcome.detail =
        "server closed the connection after the handshake, before any application data".into();
}

/// What came back for the HTTPS probe's request.
enum HttpStatus {
    /// A status line with this code.
    Status(u16),
    /// Bytes that are not an HTTP/1.x status line.
    NotHttp(Vec<u8>),
    /// The connection closed before a status line.
    Closed,
    /// Nothing before the deadline.
    Silent,
    /// A read error.
    Failed(std::io::Error),
}

async fn read_http_status<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> HttpStatus {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = seen.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&seen[..end]).into_owned();
            let mut parts = line.split(' ');
            return match (
                parts.next(),
                parts.next().and_then(|c| c.parse::<u16>().ok()),
            ) {
                (Some(v), Some(code)) if v.starts_with("HTTP/1.") => HttpStatus::Status(code),
                _ => HttpStatus::NotHttp(seen),
            };
        }
        if seen.len() > 512 {
            return HttpStatus::NotHttp(seen);
        }
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Err(_) => return HttpStatus::Silent,
            Ok(Ok(0)) if seen.is_empty() => return HttpStatus::Closed,
            Ok(Ok(0)) => return HttpStatus::NotHttp(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return HttpStatus::Failed(e),
        }
    }
}

fn judge_http_answer(outcome: &mut ProbeOutcome, answer: HttpStatus) {
    match answer {
        HttpStatus::Status(code) => {
            outcome.stage = Stage::Application;
            outcome.http_status = Some(code);
            if HTTP_REFUSAL_STATUSES.contains(&code) {
                outcome.outcome = Outcome::Rejected;
                outcome.detail = format!(
                    "server refused at the HTTP layer with status {code}, before any protected content"
                );
            } else {
                outcome.accept(
                    AcceptanceBasis::HttpResponse,
                    format!("server answered GET / with HTTP status {code}"),
                );
            }
        }
        HttpStatus::NotHttp(seen) => {
            outcome.outcome = Outcome::Error;
            outcome.stage = Stage::Application;
            outcome.detail = format!(
                "server answered GET / with something that is not HTTP/1.x ({})",
                describe_bytes(&seen)
            );
        }
        HttpStatus::Closed => closed_after_handshake(outcome),
        HttpStatus::Silent => {
            outcome.outcome = Outcome::Inconclusive;
            outcome.detail = "handshake completed but no HTTP answer and no alert arrived".into();
        }
        HttpStatus::Failed(e) => apply_post_handshake_error(outcome, &e),
    }
}

/// Words for the first bytes a peer sent: a TLS record, HTTP, HTTP/2, or hex.
pub fn describe_bytes(seen: &[u8]) -> String {
    match seen {
        [0x15, 3, _, 0, 2, level, code, ..] => format!(
            "a TLS {} alert `{}`",
            if *level == 2 { "fatal" } else { "warning" },
            alert_name(*code)
        ),
        [0x16, 3, ..] => "a TLS handshake record".into(),
        _ if seen.starts_with(b"HTTP/") => format!(
            "an HTTP/1.x response `{}`",
            String::from_utf8_lossy(seen.split(|b| *b == b'\r').next().unwrap_or_default())
        ),
        _ if starts_with_h2_settings(seen) => "an HTTP/2 SETTINGS frame".into(),
        _ => format!("first bytes {}", first_bytes(seen)),
    }
}

fn apply_post_handshake_error(outcome: &mut ProbeOutcome, e: &std::io::Error) {
    match classify_io(e) {
        PeerSaid::Alert(a) => {
            outcome.outcome = Outcome::Rejected;
            outcome.detail =
                format!("server sent alert `{a}` after the client's handshake completed");
            outcome.alert = Some(a);
        }
        PeerSaid::Reset(why) => {
            outcome.outcome = Outcome::Rejected;
            outcome.reset = true;
            outcome.detail = format!(
                "connection reset after the handshake, before any application data ({why})"
            );
        }
        PeerSaid::Other(why) => {
            outcome.outcome = Outcome::Error;
            outcome.detail = format!("after the handshake: {why}");
        }
    }
}

/// Runs attempts concurrently, at most `limit` at a time, preserving input order in the output.
pub async fn attempt_all(requests: Vec<ProbeRequest>, limit: usize) -> Vec<ProbeOutcome> {
    use futures::StreamExt;
    futures::stream::iter(requests)
        .map(|req| async move { attempt(&req).await })
        .buffered(limit.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_frame_detection() {
        let cases: [(&[u8], bool); 5] = [
            (&[0, 0, 0, 4, 0, 0, 0, 0, 0], true),
            (
                &[
                    0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0,
                ],
                true,
            ),
            (&[0, 0, 0, 4, 1, 0, 0, 0, 0], false), // SETTINGS ACK, not the server's own
            (&[0, 0, 8, 7, 0, 0, 0, 0, 0], false), // GOAWAY
            (&[0x15, 3, 3, 0, 2, 2, 48, 0, 0], false), // a TLS alert record
        ];
        for (bytes, want) in cases {
            assert_eq!(starts_with_h2_settings(bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn first_bytes_are_described_in_words() {
        let cases: [(&[u8], &str); 4] = [
            (
                &[0x15, 3, 3, 0, 2, 2, 50],
                "a TLS fatal alert `decode_error`",
            ),
            (
                b"HTTP/1.1 400 Bad Request\r\n",
                "an HTTP/1.x response `HTTP/1.1 400 Bad Request`",
            ),
            (&[0, 0, 0, 4, 0, 0, 0, 0, 0], "an HTTP/2 SETTINGS frame"),
            (&[1, 2, 3], "first bytes 010203"),
        ];
        for (bytes, want) in cases {
            assert_eq!(describe_bytes(bytes), want);
        }
    }

    #[test]
    fn alert_names_follow_the_rfcs() {
        assert_eq!(alert_name(116), "certificate_required");
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(45), "certificate_expired");
        assert_eq!(alert_name(42), "bad_certificate");
        assert_eq!(alert_name(200), "alert_200");
    }

    #[test]
    fn versions_parse_in_the_usual_spellings() {
        for (s, v) in [
            ("1.2", TlsVersion::Tls12),
            ("tls1.3", TlsVersion::Tls13),
            ("TLSv1.0", TlsVersion::Tls10),
        ] {
            assert_eq!(TlsVersion::parse(s), Some(v));
        }
        assert_eq!(TlsVersion::parse("1.4"), None);
    }
}
