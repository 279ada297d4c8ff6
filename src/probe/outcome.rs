//! The model of one attempt: what it asks for ([`ProbeRequest`]) and how it ended
//! ([`ProbeOutcome`]: outcome, stage, alert, acceptance basis, what the server presented).

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::pki::Identity;

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

/// How an attempt proves the server accepted it (under the ALPN its protocol offers; under
/// another offer, any answer past TLS is the server's admission).
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

impl AcceptanceProof {
    /// The ALPN protocols the endpoint's own clients offer: `h2` for gRPC, `http/1.1` for HTTPS,
    /// none for plain TLS.
    pub fn front_alpn(self) -> Vec<&'static str> {
        match self {
            AcceptanceProof::H2Settings => vec!["h2"],
            AcceptanceProof::Https => vec!["http/1.1"],
            AcceptanceProof::Tls => vec![],
        }
    }
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
    /// TLS 1.2: the server sent its Finished. When it asked for a certificate, that comes after it
    /// verified the client's; when it did not ask, it verified nothing.
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
            AcceptanceBasis::Tls12Finished => "the server's TLS 1.2 Finished",
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

/// A key exchange group a ClientHello may offer alone (a server may branch on the groups a
/// client supports: a FIPS chain for P-384 clients, say). The prober's TLS engine has these three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KxGroup {
    /// X25519 (RFC 7748).
    X25519,
    /// NIST P-256.
    Secp256r1,
    /// NIST P-384.
    Secp384r1,
}

impl KxGroup {
    /// The IANA name.
    pub fn name(self) -> &'static str {
        match self {
            KxGroup::X25519 => "x25519",
            KxGroup::Secp256r1 => "secp256r1",
            KxGroup::Secp384r1 => "secp384r1",
        }
    }

    /// The TLS NamedGroup.
    pub fn named_group(self) -> rustls::NamedGroup {
        match self {
            KxGroup::X25519 => rustls::NamedGroup::X25519,
            KxGroup::Secp256r1 => rustls::NamedGroup::secp256r1,
            KxGroup::Secp384r1 => rustls::NamedGroup::secp384r1,
        }
    }
}

/// A family of signature algorithms a ClientHello may offer alone (`signature_algorithms`,
/// RFC 8446 §4.2.3): a server holding certificates of several key types picks the chain (and with
/// it, in some front ends, the client-authentication policy) from what the client can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SigFamily {
    /// ECDSA with P-256/SHA-256 and P-384/SHA-384.
    Ecdsa,
    /// RSASSA-PSS with an rsaEncryption key, SHA-256/384/512.
    RsaPss,
    /// RSASSA-PKCS1-v1_5, SHA-256/384/512: TLS 1.2 only (RFC 8446 §4.2.3 forbids it in 1.3's
    /// CertificateVerify).
    RsaPkcs1,
    /// Ed25519.
    Ed25519,
}

impl SigFamily {
    /// The name the door table and the evidence use.
    pub fn name(self) -> &'static str {
        match self {
            SigFamily::Ecdsa => "ecdsa",
            SigFamily::RsaPss => "rsa-pss",
            SigFamily::RsaPkcs1 => "rsa-pkcs1",
            SigFamily::Ed25519 => "ed25519",
        }
    }

    /// The schemes offered, all of which the prober's engine verifies.
    pub fn schemes(self) -> &'static [rustls::SignatureScheme] {
        use rustls::SignatureScheme as S;
        match self {
            SigFamily::Ecdsa => &[S::ECDSA_NISTP256_SHA256, S::ECDSA_NISTP384_SHA384],
            SigFamily::RsaPss => &[S::RSA_PSS_SHA256, S::RSA_PSS_SHA384, S::RSA_PSS_SHA512],
            SigFamily::RsaPkcs1 => &[
                S::RSA_PKCS1_SHA256,
                S::RSA_PKCS1_SHA384,
                S::RSA_PKCS1_SHA512,
            ],
            SigFamily::Ed25519 => &[S::ED25519],
        }
    }

    /// Whether a server may sign a handshake with it under `version`.
    pub fn usable_under(self, version: TlsVersion) -> bool {
        self != SigFamily::RsaPkcs1 || version == TlsVersion::Tls12
    }
}

/// How a ClientHello is cut on its way: front ends that peek at the SNI before they pick a policy
/// may read only its first record, or only its first TCP segment, and fall through to a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// Every record at most this many bytes (header included): the ClientHello spans several
    /// records (RFC 8446 §5.1 lets a handshake message span records).
    Records(u16),
    /// The ClientHello's first this many bytes in a TCP segment of their own, the rest after a
    /// pause.
    Segments(u16),
}

impl Framing {
    /// In words, for evidence.
    pub fn words(self) -> String {
        match self {
            Framing::Records(n) => format!("ClientHello in records of {n} bytes"),
            Framing::Segments(n) => {
                format!("ClientHello's first {n} bytes in a TCP segment of their own")
            }
        }
    }
}

/// A ClientHello built by hand (TLS 1.3, no certificate), for doors the TLS engine cannot open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Craft {
    /// The server name exactly as given (a trailing dot, a name longer than DNS allows), and a
    /// fingerprint that is not the engine's.
    Plain,
    /// GREASE values (RFC 8701) first in the cipher suites, groups, versions, key shares and
    /// ALPN ids, and two GREASE extensions.
    Grease,
    /// X25519MLKEM768 offered first, with its key share (Argo CD 3.6's `--tlscurvepreferences`
    /// may name it; a server may key a chain on post-quantum clients).
    MlKem,
}

impl Craft {
    /// In words, for evidence.
    pub fn words(self) -> &'static str {
        match self {
            Craft::Plain => "a hand-built ClientHello",
            Craft::Grease => "a hand-built ClientHello with GREASE values",
            Craft::MlKem => "a hand-built ClientHello offering X25519MLKEM768",
        }
    }
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
    /// The ALPN protocols offered (empty: no ALPN extension). Usually
    /// [`AcceptanceProof::front_alpn`]; another offer tries another door of the server.
    pub alpn: Vec<&'static str>,
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
    /// Whether sessions the server hands out are kept, or one is offered.
    pub resume: super::client::Resume,
    /// Offer this key exchange group alone (`None`: every group the engine has).
    pub kx_group: Option<KxGroup>,
    /// Offer these signature algorithms alone (`None`: every one the engine verifies).
    pub sig_family: Option<SigFamily>,
    /// Cut the ClientHello this way (`None`: one record, one write).
    pub framing: Option<Framing>,
    /// Build the ClientHello by hand (TLS 1.3, no certificate) instead of with the engine.
    pub craft: Option<Craft>,
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
    /// The same, as a kind a check can branch on.
    #[serde(skip)]
    pub verify_failure: Option<ChainFailure>,
    /// The leaf's DER, for the report's certificates section (not repeated in every attempt).
    #[serde(skip)]
    pub leaf_der: Option<Vec<u8>>,
}

/// Why a presented server chain did not verify, as the verifier named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFailure {
    /// No path to a trust anchor: another CA issued it.
    UnknownIssuer,
    /// A signature on the path does not verify (a CA of the same name with another key).
    BadSignature,
    /// Outside its validity.
    Expired,
    /// Not valid yet.
    NotYetValid,
    /// Valid, but not for the name the client asked for.
    NotValidForName,
    /// Anything else.
    Other,
}

impl ChainFailure {
    /// The kind of a verifier's error.
    pub fn of(error: &rustls::Error) -> ChainFailure {
        use rustls::CertificateError as E;
        match error {
            rustls::Error::InvalidCertificate(e) => match e {
                E::UnknownIssuer => ChainFailure::UnknownIssuer,
                E::BadSignature => ChainFailure::BadSignature,
                E::Expired | E::ExpiredContext { .. } => ChainFailure::Expired,
                E::NotValidYet | E::NotValidYetContext { .. } => ChainFailure::NotYetValid,
                E::NotValidForName | E::NotValidForNameContext { .. } => {
                    ChainFailure::NotValidForName
                }
                _ => ChainFailure::Other,
            },
            _ => ChainFailure::Other,
        }
    }
}

/// One attempt's classified result. Serializable as report evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeOutcome {
    /// The verdict on the connection.
    pub outcome: Outcome,
    /// How far it got.
    pub stage: Stage,
    /// TLS alert received, by RFC 8446 name (`certificate_required`, `unknown_ca`, ...).
    pub alert: Option<super::Alert>,
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
    /// ALPN protocols offered (empty: no ALPN extension).
    #[serde(default)]
    pub alpn_offered: Vec<String>,
    /// The one key exchange group offered, when the attempt offered one alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_offered: Option<KxGroup>,
    /// The one family of signature algorithms offered, when the attempt offered one alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_offered: Option<SigFamily>,
    /// How the ClientHello was cut, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framing: Option<Framing>,
    /// The ClientHello was built by hand, this way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crafted: Option<Craft>,
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
    /// A hand-read cleartext flight (TLS 1.0/1.1): whether it was read to its ServerHelloDone,
    /// so that the absence of a CertificateRequest in it is a fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight_read: Option<bool>,
    /// Whether the handshake resumed a session the client offered (no certificate is exchanged).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// Timings.
    pub timings: Timings,
    /// One human-readable sentence of what happened.
    pub detail: String,
}

impl ProbeOutcome {
    pub(crate) fn new(req: &ProbeRequest) -> Self {
        let mut out = Self::blank(req.version, req.identity.as_ref().map(|i| i.label.clone()));
        out.sni = req.sni_sent();
        out.alpn_offered = req.alpn.iter().map(|p| (*p).to_owned()).collect();
        out.group_offered = req.kx_group;
        out.signatures_offered = req.sig_family;
        out.framing = req.framing;
        out.crafted = req.craft;
        out
    }

    /// How the attempt's SNI reads in evidence: ``SNI `localhost` `` or `no SNI`.
    pub fn sni_words(&self) -> String {
        match &self.sni {
            // A name longer than DNS allows, by its ends.
            Some(name) if name.len() > 80 && name.is_ascii() => format!(
                "SNI `{}…{}` ({} characters)",
                &name[..8],
                &name[name.len() - 24..],
                name.len()
            ),
            Some(name) => format!("SNI `{name}`"),
            None => "no SNI".to_owned(),
        }
    }

    /// How the attempt's ALPN offer reads in evidence: ``ALPN `h2` `` or `no ALPN`.
    pub fn alpn_words(&self) -> String {
        if self.alpn_offered.is_empty() {
            "no ALPN".to_owned()
        } else {
            format!("ALPN `{}`", self.alpn_offered.join(","))
        }
    }

    /// The door the attempt knocked on, in words: its SNI and its ALPN offer (and the one key
    /// exchange group offered, how the hello was cut, how it was built, when it was so).
    pub fn door_words(&self) -> String {
        let mut words = format!("{}, {}", self.sni_words(), self.alpn_words());
        if let Some(g) = self.group_offered {
            words.push_str(&format!(", group `{}`", g.name()));
        }
        if let Some(s) = self.signatures_offered {
            words.push_str(&format!(", signatures `{}` alone", s.name()));
        }
        if let Some(f) = self.framing {
            words.push_str(&format!(", {}", f.words()));
        }
        if let Some(c) = self.crafted {
            words.push_str(&format!(", {}", c.words()));
        }
        words
    }

    /// Marks the attempt accepted, on `basis`.
    pub(crate) fn accept(&mut self, basis: AcceptanceBasis, detail: String) {
        self.outcome = Outcome::Accepted;
        self.accepted_by = Some(basis);
        self.detail = detail;
    }

    /// Marks the attempt accepted because the server answered at the application layer.
    pub(crate) fn accept_answer(&mut self, basis: AcceptanceBasis, detail: String) {
        self.stage = Stage::Application;
        self.accept(basis, detail);
    }

    /// Marks the attempt an error: after the handshake the server answered in another protocol
    /// than the one probed (`what` says so; the bytes seen follow), which is no verdict on
    /// client authentication.
    pub(crate) fn other_protocol(&mut self, what: &str, seen: &[u8]) {
        self.outcome = Outcome::Error;
        self.stage = Stage::Application;
        self.detail = format!("{what} ({})", super::wire::describe_bytes(seen));
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
            alpn_offered: vec![],
            group_offered: None,
            signatures_offered: None,
            framing: None,
            crafted: None,
            flight_read: None,
            server_chain: ServerChain::default(),
            client_cert_requested: false,
            acceptable_ca_names: vec![],
            presented,
            accepted_by: None,
            http_status: None,
            session_ticket: false,
            resumed: false,
            timings: Timings::default(),
            detail: String::new(),
        }
    }
}
