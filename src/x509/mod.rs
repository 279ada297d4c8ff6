//! Facts about X.509 certificates, read with x509-parser.
//!
//! [`CertFacts`] is the one shape in which a certificate appears anywhere in the harness: the
//! output of `pki inspect`, and the `certificates` section of every report. The formats match what
//! `openssl x509` prints (uppercase colon-separated SHA-256 fingerprint, uppercase hex serial) so an
//! auditor can cross-check a report with openssl alone.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// Why a certificate could not be read.
#[derive(Debug, thiserror::Error)]
pub enum X509Error {
    /// The bytes are not a DER-encoded X.509 certificate.
    #[error("not a valid X.509 certificate: {0}")]
    Malformed(String),
}

/// The public key of a certificate, without any secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFacts {
    /// `RSA`, `ECDSA`, `Ed25519`, or the key algorithm's OID when unknown.
    pub algorithm: String,
    /// Key size in bits (modulus size for RSA, field size for ECDSA).
    pub bits: usize,
    /// Named curve for ECDSA keys (`P-256`, `P-384`, `P-521`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub curve: Option<String>,
}

impl std::fmt::Display for KeyFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.curve {
            Some(curve) => write!(f, "{} {}", self.algorithm, curve),
            None => write!(f, "{} {}", self.algorithm, self.bits),
        }
    }
}

/// The basicConstraints extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicConstraintsFacts {
    /// `CA:TRUE`.
    pub ca: bool,
    /// The pathLenConstraint, when present.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub path_len: Option<u32>,
}

/// Everything the harness records about one certificate. Contains no secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    /// What the certificate is for in this run (`ca`, `server`, `client`, `wrong-ca-client`...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// Where it was read from, when it came from a file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub source: Option<String>,
    /// Subject distinguished name, RFC 4514 style (`CN=..., O=...`).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number as uppercase hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// SHA-256 of the DER encoding, uppercase colon-separated (`openssl x509 -fingerprint -sha256`).
    pub sha256: String,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days from the moment the facts were read until notAfter (negative once expired).
    pub days_left: i64,
    /// Subject public key.
    pub key: KeyFacts,
    /// Signature algorithm short name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`).
    pub signature_algorithm: String,
    /// basicConstraints, when the extension is present.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub basic_constraints: Option<BasicConstraintsFacts>,
    /// keyUsage bits by name (`Digital Signature`, `Key Cert Sign`...).
    pub key_usage: Vec<String>,
    /// extendedKeyUsage purposes (`serverAuth`, `clientAuth`, or OIDs).
    pub eku: Vec<String>,
    /// subjectAltName entries as `DNS:name`, `IP:addr`, `URI:...`, `email:...`.
    pub san: Vec<String>,
    /// Issuer equals subject and the signature verifies with the certificate's own key.
    pub self_signed: bool,
}

impl CertFacts {
    /// Reads the facts of one DER-encoded certificate, with `now` as the reference for `days_left`.
    pub fn from_der_at(der: &[u8], now: OffsetDateTime) -> Result<Self, X509Error> {
        let cert = parse(der)?;
        let not_before = cert.validity().not_before.to_datetime();
        let not_after = cert.validity().not_after.to_datetime();
        let basic_constraints = cert
            .basic_constraints()
            .map_err(|e| X509Error::Malformed(format!("basicConstraints: {e}")))?
            .map(|ext| BasicConstraintsFacts {
                ca: ext.value.ca,
                path_len: ext.value.path_len_constraint,
            });
        let key_usage = cert
            .key_usage()
            .map_err(|e| X509Error::Malformed(format!("keyUsage: {e}")))?
            .map(|ext| {
                ext.value
                    .to_string()
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let eku = cert
            .extended_key_usage()
            .map_err(|e| X509Error::Malformed(format!("extendedKeyUsage: {e}")))?
            .map(|ext| {
                let u = ext.value;
                let mut out = Vec::new();
                for (set, name) in [
                    (u.any, "anyExtendedKeyUsage"),
                    (u.server_auth, "serverAuth"),
                    (u.client_auth, "clientAuth"),
                    (u.code_signing, "codeSigning"),
                    (u.email_protection, "emailProtection"),
                    (u.time_stamping, "timeStamping"),
                    (u.ocsp_signing, "OCSPSigning"),
                ] {
                    if set {
                        out.push(name.to_owned());
                    }
                }
                out.extend(u.other.iter().map(|oid| oid.to_id_string()));
                out
            })
            .unwrap_or_default();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| X509Error::Malformed(format!("subjectAltName: {e}")))?
            .map(|ext| ext.value.general_names.iter().map(general_name).collect())
            .unwrap_or_default();
        let self_signed = cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok();
        Ok(CertFacts {
            role: None,
            source: None,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial: serial_hex(cert.raw_serial()),
            sha256: fingerprint_sha256(der),
            not_before,
            not_after,
            days_left: (not_after - now).whole_days(),
            key: key_facts(&cert),
            signature_algorithm: oid_name(&cert.signature_algorithm.algorithm),
            basic_constraints,
            key_usage,
            eku,
            san,
            self_signed,
        })
    }

    /// Reads the facts of one DER-encoded certificate as of now.
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        Self::from_der_at(der, OffsetDateTime::now_utc())
    }

    /// Sets the role this certificate plays in the run.
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets where the certificate was read from.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The subject's CommonName, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .split(", ")
            .find_map(|rdn| rdn.strip_prefix("CN="))
    }

    /// Whether `moment` lies inside [notBefore, notAfter].
    pub fn is_valid_at(&self, moment: OffsetDateTime) -> bool {
        self.not_before <= moment && moment <= self.not_after
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, X509Error> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| X509Error::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(X509Error::Malformed(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// Uppercase colon-separated SHA-256 of `der`, the form `openssl x509 -fingerprint -sha256` prints.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial as openssl prints it: the integer's bytes without the DER sign padding, uppercase.
fn serial_hex(raw: &[u8]) -> String {
    let first_significant = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode_upper(&raw[first_significant..])
}

fn oid_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_owned)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn key_facts(cert: &X509Certificate<'_>) -> KeyFacts {
    let spki = cert.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| match oid.to_id_string().as_str() {
            "1.2.840.10045.3.1.7" => "P-256".to_owned(),
            "1.3.132.0.34" => "P-384".to_owned(),
            "1.3.132.0.35" => "P-521".to_owned(),
            other => other.to_owned(),
        });
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyFacts {
            algorithm: "RSA".into(),
            bits: rsa.key_size(),
            curve: None,
        },
        Ok(PublicKey::EC(point)) => KeyFacts {
            algorithm: "ECDSA".into(),
            bits: point.key_size(),
            curve,
        },
        Ok(other) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => KeyFacts {
            algorithm: "Ed25519".into(),
            bits: other.key_size(),
            curve: None,
        },
        Ok(other) => KeyFacts {
            algorithm: oid_name(&spki.algorithm.algorithm),
            bits: other.key_size(),
            curve: None,
        },
        Err(_) => KeyFacts {
            algorithm: oid_name(&spki.algorithm.algorithm),
            bits: 0,
            curve: None,
        },
    }
}

fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => format!(
                "IP:{}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).unwrap_or_default())
            ),
            16 => format!(
                "IP:{}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default())
            ),
            _ => format!("IP:{}", hex::encode(bytes)),
        },
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        other => format!("{other:?}"),
    }
}

/// Whether `leaf_der` was issued by `issuer_der`: the issuer name matches the CA's subject and the
/// signature verifies with the CA's public key. Validity dates are reported separately.
pub fn is_signed_by(leaf_der: &[u8], issuer_der: &[u8]) -> Result<bool, X509Error> {
    let leaf = parse(leaf_der)?;
    let issuer = parse(issuer_der)?;
    Ok(leaf.issuer() == issuer.subject()
        && leaf.verify_signature(Some(issuer.public_key())).is_ok())
}

/// The DER of the certificate's SubjectPublicKeyInfo, for comparing with a private key's public half.
pub fn spki_der(der: &[u8]) -> Result<Vec<u8>, X509Error> {
    Ok(parse(der)?.public_key().raw.to_vec())
}
