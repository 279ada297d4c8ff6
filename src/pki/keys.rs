//! Private keys: generation, PEM reading with precise errors, and public-key extraction.
//!
//! ring (our one crypto backend) signs with RSA but cannot generate RSA keys, so RSA keys are
//! generated with RustCrypto's `rsa` crate and handed to rcgen/ring as PKCS#8. Keys read from disk
//! may be PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); rcgen on ring accepts only
//! PKCS#8, so the other two are wrapped into PKCS#8 here.

use std::path::Path;

use rcgen::KeyPair;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{KeyType, PkiError};

/// Generates a fresh key pair of the given type.
pub(crate) fn generate(key_type: KeyType) -> Result<KeyPair, PkiError> {
    match key_type {
        KeyType::EcdsaP256 => generate_ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256"),
        KeyType::Rsa2048 => generate_rsa(2048),
    }
}

/// Generates a fresh key of the same algorithm and size as the certificate key `like`, so that a
/// certificate signed (or presented) with it differs from the genuine one in the key alone.
pub(crate) fn generate_like(like: &crate::x509::KeyFacts) -> Result<KeyPair, PkiError> {
    match (like.algorithm.as_str(), like.curve.as_deref()) {
        ("RSA", _) => generate_rsa(like.bits),
        ("ECDSA", Some("P-256")) => generate_ec(&rcgen::PKCS_ECDSA_P256_SHA256, "P-256"),
        ("ECDSA", Some("P-384")) => generate_ec(&rcgen::PKCS_ECDSA_P384_SHA384, "P-384"),
        ("Ed25519", _) => KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .map_err(|e| PkiError::Generate(format!("Ed25519 key: {e}"))),
        _ => Err(PkiError::Generate(format!(
            "cannot generate a key like `{like}` (supported: RSA, ECDSA P-256/P-384, Ed25519)"
        ))),
    }
}

fn generate_ec(alg: &'static rcgen::SignatureAlgorithm, curve: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(alg).map_err(|e| PkiError::Generate(format!("ECDSA {curve} key: {e}")))
}

fn generate_rsa(bits: usize) -> Result<KeyPair, PkiError> {
    use rsa::pkcs8::EncodePrivateKey;
    if !(2048..=8192).contains(&bits) {
        return Err(PkiError::Generate(format!(
            "RSA {bits} key: only 2048 to 8192 bits are generated"
        )));
    }
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
        .map_err(|e| PkiError::Generate(format!("RSA {bits} key: {e}")))?;
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|e| PkiError::Generate(format!("RSA key encoding: {e}")))?;
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| PkiError::Generate(format!("RSA key import: {e}")))
}

/// The PEM labels that may hold a private key we can use.
const SUPPORTED_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// The `-----BEGIN X-----` labels in `text`, in order.
pub(crate) fn pem_labels(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .collect()
}

/// Reads the one private key in `path`, refusing encrypted and unsupported keys by name.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    let bytes = super::read_file(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let labels = pem_labels(&text);
    if labels.is_empty() {
        return Err(PkiError::NotPem {
            path: path.to_owned(),
        });
    }
    if labels.contains(&"ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(PkiError::EncryptedKey {
            path: path.to_owned(),
        });
    }
    let key_labels: Vec<&str> = labels
        .iter()
        .copied()
        .filter(|l| l.ends_with("PRIVATE KEY"))
        .collect();
    match key_labels.as_slice() {
        [] => Err(PkiError::NoPrivateKey {
            path: path.to_owned(),
            found: labels.iter().map(|s| s.to_string()).collect(),
        }),
        [label] if !SUPPORTED_KEY_LABELS.contains(label) => Err(PkiError::UnsupportedKey {
            path: path.to_owned(),
            detail: format!("PEM block `{label}` (supported: PKCS#8, PKCS#1 RSA, SEC1 EC)"),
        }),
        [_] => {
            let key = rustls_pki_types::pem::PemObject::from_pem_slice(&bytes).map_err(|e| {
                PkiError::UnsupportedKey {
                    path: path.to_owned(),
                    detail: format!("the key block does not decode: {e}"),
                }
            })?;
            // Refuse keys ring cannot sign with now, rather than at handshake time.
            public_key_spki(&key).map_err(|detail| PkiError::UnsupportedKey {
                path: path.to_owned(),
                detail,
            })?;
            Ok(key)
        }
        more => Err(PkiError::UnsupportedKey {
            path: path.to_owned(),
            detail: format!(
                "{} private keys in one file; expected exactly one",
                more.len()
            ),
        }),
    }
}

/// The DER SubjectPublicKeyInfo of a private key's public half, computed by the TLS stack itself,
/// so "key matches certificate" means exactly what rustls will find at handshake time.
pub fn public_key_spki(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, String> {
    let signing_key = rustls::crypto::ring::sign::any_supported_type(key)
        .map_err(|e| format!("not a key the TLS stack can sign with: {e}"))?;
    signing_key
        .public_key()
        .map(|spki| spki.as_ref().to_vec())
        .ok_or_else(|| "the TLS stack cannot derive this key's public half".to_owned())
}

/// Converts any supported private key into an rcgen key pair (for signing certificates).
pub(crate) fn to_key_pair(key: &PrivateKeyDer<'_>) -> Result<KeyPair, String> {
    let pkcs8: Vec<u8> = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(k) => wrap_pkcs8(&RSA_ENCRYPTION_ALG_ID, k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => {
            // SEC1 keys usually name their curve, but the wrapper must too; try the curves ring signs with.
            return [EC_P256_ALG_ID.as_slice(), EC_P384_ALG_ID.as_slice()]
                .iter()
                .find_map(|alg| {
                    KeyPair::try_from(wrap_pkcs8(alg, k.secret_sec1_der()).as_slice()).ok()
                })
                .ok_or_else(|| "EC key on a curve other than P-256/P-384".to_owned());
        }
        _ => return Err("unsupported key encoding".to_owned()),
    };
    KeyPair::try_from(pkcs8.as_slice()).map_err(|e| e.to_string())
}

// AlgorithmIdentifier DER for rsaEncryption with NULL parameters.
const RSA_ENCRYPTION_ALG_ID: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
// AlgorithmIdentifier DER for id-ecPublicKey on prime256v1.
const EC_P256_ALG_ID: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];
// AlgorithmIdentifier DER for id-ecPublicKey on secp384r1.
const EC_P384_ALG_ID: [u8; 18] = [
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04,
    0x00, 0x22,
];

/// PrivateKeyInfo ::= SEQUENCE { version 0, algorithm, privateKey OCTET STRING }.
fn wrap_pkcs8(alg_id: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(alg_id);
    body.push(0x04);
    push_der_len(&mut body, key.len());
    body.extend_from_slice(key);
    let mut out = vec![0x30];
    push_der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
}
