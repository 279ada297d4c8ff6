//! The TLS client of an attempt: rustls configured to present a chosen identity (or none) under
//! one TLS version and SNI, recording the server's chain, its CertificateRequest and its session
//! tickets, and never failing the handshake over the server's certificate.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::outcome::{Outcome, ProbeOutcome, ProbeRequest, ServerChain, Sni, Stage, TlsVersion};
use super::wire::{PeerSaid, Segmented, classify_io, micros, tcp_connect};
use crate::x509::fingerprint_sha256;

/// Records the server chain and verifies it against the configured anchors without ever failing
/// the handshake: server identity is its own check, and must not hide the client-auth verdict.
#[derive(Debug)]
struct RecordingServerVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    /// The signature algorithms the ClientHello offers, when not every one the provider verifies.
    offered: Option<&'static [SignatureScheme]>,
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
        let chain_ders: Vec<CertificateDer<'static>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|d| d.clone().into_owned())
            .collect();
        let mut chain = chain_facts(&chain_ders);
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
                chain.verify_failure = result.as_ref().err().map(super::ChainFailure::of);
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
        match self.offered {
            Some(schemes) => schemes.to_vec(),
            None => self
                .provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

/// What a presented chain shows, leaf first (not yet verified).
pub(super) fn chain_facts(ders: &[CertificateDer<'_>]) -> ServerChain {
    let mut chain = ServerChain::default();
    for der in ders {
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
    chain
}

/// Presents the configured identity (or none) and records the server's CertificateRequest.
#[derive(Debug)]
struct RecordingCertResolver {
    /// Emptied when a session handed to this attempt is offered again: that offer presents no
    /// certificate, also when the server declines it and asks for one.
    key: Mutex<Option<Arc<CertifiedKey>>>,
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
        self.key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn has_certs(&self) -> bool {
        // Always answer a CertificateRequest, with an empty Certificate message when there is no key.
        true
    }
}

/// A session a server handed out: a TLS 1.3 ticket (a PSK identity), or a TLS 1.2 session ID
/// or ticket. Kept from one attempt to be offered by another.
pub struct Session {
    value: SessionValue,
    /// The attempt's own verifier and certificate resolver, which an offer must reuse.
    verifier: Arc<RecordingServerVerifier>,
    resolver: Arc<RecordingCertResolver>,
}

enum SessionValue {
    Tls13(rustls::client::Tls13ClientSessionValue),
    Tls12(rustls::client::Tls12ClientSessionValue),
}

impl Session {
    /// The TLS version the session resumes.
    pub fn version(&self) -> TlsVersion {
        match self.value {
            SessionValue::Tls13(_) => TlsVersion::Tls13,
            SessionValue::Tls12(_) => TlsVersion::Tls12,
        }
    }

    /// What the server handed out, in words.
    pub fn kind_words(&self) -> &'static str {
        match self.value {
            SessionValue::Tls13(_) => "a TLS 1.3 session ticket",
            SessionValue::Tls12(_) => "a TLS 1.2 session (ID or ticket)",
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of every dump.
        f.write_str(self.kind_words())
    }
}

/// Where an attempt keeps the sessions it is handed.
pub type SessionJar = Arc<Mutex<Vec<Session>>>;

/// What an attempt does with sessions. Every attempt starts a fresh session unless told to offer
/// one; the sessions a server hands out are noticed always, and kept only when asked.
#[derive(Debug, Clone, Default)]
pub enum Resume {
    /// Offer none, keep none.
    #[default]
    Never,
    /// Keep every session the server hands out.
    Keep(SessionJar),
    /// Offer this session (taken on first use), under whatever name the attempt sends.
    Offer(Arc<Mutex<Option<Session>>>),
}

/// Notes the session tickets a server issues; keeps or offers sessions as [`Resume`] says.
#[derive(Debug, Default)]
pub(crate) struct TicketWatch {
    pub(crate) issued: tokio::sync::Notify,
    pub(crate) seen: std::sync::atomic::AtomicBool,
    resume: Resume,
    /// The attempt's verifier and resolver, kept with each session.
    owners: Option<(Arc<RecordingServerVerifier>, Arc<RecordingCertResolver>)>,
}

impl TicketWatch {
    fn keep(&self, value: SessionValue) {
        if let (Resume::Keep(kept), Some((verifier, resolver))) = (&self.resume, &self.owners) {
            kept.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Session {
                    value,
                    verifier: verifier.clone(),
                    resolver: resolver.clone(),
                });
        }
    }
    fn offer(&self, version: TlsVersion) -> Option<SessionValue> {
        let Resume::Offer(slot) = &self.resume else {
            return None;
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref()?.version() != version {
            return None;
        }
        slot.take().map(|s| s.value)
    }
}

impl rustls::client::ClientSessionStore for TicketWatch {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }
    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.keep(SessionValue::Tls12(value));
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        match self.offer(TlsVersion::Tls12)? {
            SessionValue::Tls12(value) => Some(value),
            SessionValue::Tls13(_) => None,
        }
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.keep(SessionValue::Tls13(value));
        self.seen.store(true, std::sync::atomic::Ordering::SeqCst);
        self.issued.notify_one();
    }
    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        match self.offer(TlsVersion::Tls13)? {
            SessionValue::Tls13(value) => Some(value),
            SessionValue::Tls12(_) => None,
        }
    }
}

/// The CA names of a CertificateRequest's DistinguishedName list, read from its two-byte total
/// length on: each entry's length and name, to the first that does not fit.
pub(super) fn distinguished_names(list: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 2;
    while let Some(len) = list
        .get(at..at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    {
        let Some(der) = list.get(at + 2..at + 2 + len) else {
            break;
        };
        names.push(distinguished_name(der));
        at += 2 + len;
    }
    names
}

/// Decodes a CertificateRequest CA name (DER Name, with or without its outer SEQUENCE).
pub(super) fn distinguished_name(bytes: &[u8]) -> String {
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
    let provider = match req.kx_group {
        Some(group) => {
            let mut only = (*provider()).clone();
            only.kx_groups.retain(|g| g.name() == group.named_group());
            Arc::new(only)
        }
        None => provider(),
    };
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
        offered: req.sig_family.map(|f| f.schemes()),
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
        key: Mutex::new(key),
        requested: Mutex::new(None),
    });
    // rustls resumes a session only under the verifier and the certificate resolver of the
    // connection it was handed to: an offer reuses both, the resolver disarmed, the record of
    // the server's chain cleared.
    let (verifier, resolver) = match &req.resume {
        Resume::Offer(slot) => match slot.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(session) => {
                *session
                    .resolver
                    .key
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                *session
                    .resolver
                    .requested
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                *session
                    .verifier
                    .seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = ServerChain::default();
                (session.verifier.clone(), session.resolver.clone())
            }
            None => (verifier, resolver),
        },
        _ => (verifier, resolver),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS config: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_client_cert_resolver(resolver.clone());
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if let Some(super::Framing::Records(size)) = req.framing {
        // Every record this size at most, the ClientHello's too (header included).
        config.max_fragment_size = Some(usize::from(size));
    }
    // Unless told otherwise, a store that keeps nothing: no session is ever resumed, but an
    // issued ticket is noticed.
    let tickets = Arc::new(TicketWatch {
        resume: req.resume.clone(),
        owners: Some((verifier.clone(), resolver.clone())),
        ..TicketWatch::default()
    });
    config.resumption =
        rustls::client::Resumption::store(tickets.clone()).tls12_resumption(match req.resume {
            Resume::Never => rustls::client::Tls12Resumption::Disabled,
            _ => rustls::client::Tls12Resumption::SessionIdOrTickets,
        });
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

/// A completed client handshake plus the outcome record so far.
pub struct Connected<S = TlsStream<Segmented>> {
    /// The TLS stream, ready for application data.
    pub stream: S,
    /// The record, with handshake facts filled in.
    pub outcome: ProbeOutcome,
    pub(crate) started: Instant,
    pub(crate) tickets: Arc<TicketWatch>,
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
    let tcp = Segmented::new(
        tcp,
        match req.framing {
            Some(super::Framing::Segments(first)) => Some(usize::from(first)),
            _ => None,
        },
    );
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
            out.resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
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
