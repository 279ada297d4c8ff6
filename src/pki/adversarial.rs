//! Client identities an intruder would try. Each is built to be wrong in exactly one respect, so a
//! rejection can be attributed to that respect alone.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Identity, KeyType, PkiError, ProbePki, backdated_now, keys, random_serial};
use crate::x509::CertFacts;

/// The kinds of adversarial client identity.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// Same subject as the real client, issued by an unrelated CA.
    WrongCa,
    /// Issued under the trusted CA's exact subject name (and key identifier, when it has one) but
    /// signed with another key: only a verifier that checks signatures, not names, refuses it.
    LookalikeCa,
    /// Issued by the trusted CA, notAfter in the past.
    Expired,
    /// Issued by the trusted CA, notBefore in the future.
    NotYetValid,
    /// Issued by the trusted CA with extendedKeyUsage serverAuth only.
    ServerAuthOnly,
    /// Self-signed forgery of the repo-server's ephemeral health-check certificate (same subject,
    /// SAN and extensions as Argo CD generates, different key).
    HealthCheckImpostor,
    /// The trusted CA certificate itself, presented as a client certificate with the CA key.
    CaAsClient,
    /// The real client certificate, with a private key that is not its own.
    StolenWithoutKey,
    /// A leaf from an unrelated CA, sent followed by the trusted CA's own certificate: a verifier
    /// that accepts when any certificate presented (or the last one) is trusted admits it.
    UntrustedLeafWithCa,
    /// A leaf from an unrelated CA, sent followed by the legitimate client's certificate (and its
    /// chain) and the trusted CA: only the leaf must be judged, not what follows it.
    UntrustedLeafWithClientChain,
    /// A forgery of the legitimate client's certificate: its exact subject and serial, issued
    /// under its issuer's name, signed with another key. A verifier that remembers certificates
    /// it verified by issuer and serial admits it.
    ForgedIssuerSerial,
}

impl Adversary {
    /// Every kind, in a stable order.
    pub const ALL: [Adversary; 11] = [
        Adversary::WrongCa,
        Adversary::LookalikeCa,
        Adversary::Expired,
        Adversary::NotYetValid,
        Adversary::ServerAuthOnly,
        Adversary::HealthCheckImpostor,
        Adversary::CaAsClient,
        Adversary::StolenWithoutKey,
        Adversary::UntrustedLeafWithCa,
        Adversary::UntrustedLeafWithClientChain,
        Adversary::ForgedIssuerSerial,
    ];

    /// Stable name, used as the identity label and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Adversary::WrongCa => "wrong-ca",
            Adversary::LookalikeCa => "lookalike-ca",
            Adversary::Expired => "expired",
            Adversary::NotYetValid => "not-yet-valid",
            Adversary::ServerAuthOnly => "server-auth-only",
            Adversary::HealthCheckImpostor => "health-check-impostor",
            Adversary::CaAsClient => "ca-as-client",
            Adversary::StolenWithoutKey => "stolen-without-key",
            Adversary::UntrustedLeafWithCa => "untrusted-leaf-with-ca",
            Adversary::UntrustedLeafWithClientChain => "untrusted-leaf-with-client-chain",
            Adversary::ForgedIssuerSerial => "forged-issuer-serial",
        }
    }

    /// Whether minting it needs the trusted CA's private key. Such an identity proves something
    /// only next to its own positive control: a valid leaf minted with the same key and sent with
    /// the same chain ([`mint_control`]) must be admitted, else the key is not one the server
    /// trusts and a refusal may be for the issuer, not for what the case tests.
    pub fn needs_ca_key(self) -> bool {
        matches!(
            self,
            Adversary::Expired
                | Adversary::NotYetValid
                | Adversary::ServerAuthOnly
                | Adversary::CaAsClient
        )
    }
}

/// Subject of the health-check certificate Argo CD 3.5 generates at startup (no CommonName).
pub const HEALTH_CHECK_ORGANIZATION: &str = "Argo CD Health Check";
/// DNS SAN of that certificate.
pub const HEALTH_CHECK_SAN: &str = "argocd-repo-server-healthcheck";

/// Parameters of a certificate shaped like Argo CD's ephemeral health-check certificate.
pub fn health_check_params() -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(vec![HEALTH_CHECK_SAN.to_owned()])?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, HEALTH_CHECK_ORGANIZATION);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = backdated_now();
    params.not_after = params.not_before + Duration::days(3650);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// The real client's subject, copied attribute by attribute.
fn client_subject(pki: &ProbePki) -> Result<DistinguishedName, PkiError> {
    let (_, cert) = X509Certificate::from_der(&pki.client.chain[0])
        .map_err(|e| PkiError::Generate(format!("client certificate: {e}")))?;
    let mut dn = DistinguishedName::new();
    for attr in cert.subject().iter_attributes() {
        let Some(arcs) = attr.attr_type().iter() else {
            continue;
        };
        let arcs: Vec<u64> = arcs.collect();
        if let Ok(value) = attr.as_str() {
            dn.push(DnType::from_oid(&arcs), value);
        }
    }
    Ok(dn)
}

fn client_like_params(pki: &ProbePki) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = client_subject(pki)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = backdated_now();
    params.not_after = params.not_before + Duration::days(1);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn identity(
    adversary: Adversary,
    cert: &rcgen::Certificate,
    key: &rcgen::KeyPair,
) -> Result<Identity, PkiError> {
    identity_with_chain(adversary.name(), cert, &[], key)
}

/// An identity presenting `cert` followed by `above`, signing with `key`.
fn identity_with_chain(
    label: &str,
    cert: &rcgen::Certificate,
    above: &[rustls_pki_types::CertificateDer<'static>],
    key: &rcgen::KeyPair,
) -> Result<Identity, PkiError> {
    let mut chain = vec![cert.der().clone()];
    chain.extend(above.iter().cloned());
    Ok(Identity {
        label: label.to_owned(),
        chain,
        key: private_key(key)?,
    })
}

fn private_key(key: &rcgen::KeyPair) -> Result<rustls_pki_types::PrivateKeyDer<'static>, PkiError> {
    rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| PkiError::Generate(e.to_owned()))
}

/// A leaf with the client's subject from a CA made for the occasion, which no server trusts.
fn untrusted_leaf(pki: &ProbePki) -> Result<(rcgen::Certificate, rcgen::KeyPair), PkiError> {
    let key = keys::generate(KeyType::EcdsaP256)?;
    let ca_key = keys::generate(KeyType::EcdsaP256)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "argocd-mtls-verify unrelated CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = backdated_now();
    ca.not_after = ca.not_before + Duration::days(1);
    ca.serial_number = Some(random_serial()?);
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let cert = client_like_params(pki)?.signed_by(&key, &issuer)?;
    Ok((cert, key))
}

/// A client-like leaf for the CA key at hand, its validity inside the issuer's: only what a case
/// changes afterwards is wrong with it.
fn minted_params(pki: &ProbePki) -> Result<CertificateParams, PkiError> {
    let minter = pki.minter(MINTED_CONTROL)?;
    let issuer = CertFacts::from_der(&minter.cert)
        .map_err(|e| PkiError::Generate(format!("issuing CA certificate: {e}")))?;
    let mut params = client_like_params(pki)?;
    params.not_before = params.not_before.max(issuer.not_before);
    params.not_after = params.not_after.min(issuer.not_after);
    Ok(params)
}

/// Label of the minted positive control.
pub const MINTED_CONTROL: &str = "minted-client";

/// The positive control of every identity minted with the CA key: a valid client leaf signed by
/// the same key and sent with the same chain as the minted adversaries. If the server does not
/// admit it, the key is not one it trusts, and their refusals prove nothing.
pub fn mint_control(pki: &ProbePki) -> Result<Identity, PkiError> {
    let minter = pki.minter(MINTED_CONTROL)?;
    let issuer = pki.ca_issuer(MINTED_CONTROL)?;
    let key = keys::generate(KeyType::EcdsaP256)?;
    let cert = minted_params(pki)?.signed_by(&key, &issuer)?;
    identity_with_chain(MINTED_CONTROL, &cert, &minter.chain_above, &key)
}

/// A minted adversarial identity, and why it proves less than it should when it does.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The identity to present.
    pub identity: Identity,
    /// Set when the material at hand made the certificate weaker evidence than intended (e.g. a
    /// CA too young to hold an expired leaf inside its own validity); the report carries it.
    pub caveat: Option<String>,
}

impl Minted {
    fn exact(identity: Identity) -> Self {
        Minted {
            identity,
            caveat: None,
        }
    }
}

/// How far in the past an expired certificate's notAfter lies (and in the future a not-yet-valid
/// certificate's notBefore), when the CA's validity leaves room: far beyond any clock-skew allowance.
const VALIDITY_MARGIN: Duration = Duration::days(1);
/// Below this, the validity window of a minted certificate is too short to mean anything.
const MIN_WINDOW: Duration = Duration::minutes(1);

/// The validity window of an expired (`past`) or not-yet-valid certificate, placed inside the CA's
/// own validity so that only the leaf's dates are wrong: a verifier that checks the chain at some
/// time inside the windows (ignoring expiry) must then accept it, and the check catches it. When
/// the CA's validity leaves too little room, the window is the best available and the caveat says
/// what the check can no longer prove.
fn window_inside_ca(
    past: bool,
    now: OffsetDateTime,
    ca_from: OffsetDateTime,
    ca_until: OffsetDateTime,
) -> (OffsetDateTime, OffsetDateTime, Option<String>) {
    let slack = MIN_WINDOW;
    if past {
        let wanted = (now - Duration::days(30), now - VALIDITY_MARGIN);
        let from = wanted.0.max(ca_from + slack);
        if wanted.1 - from >= MIN_WINDOW {
            return (from, wanted.1, None);
        }
        // A young CA: expire the leaf as long ago as its CA allows.
        let until = now - slack;
        if until - (ca_from + slack) >= MIN_WINDOW {
            return (
                ca_from + slack,
                until,
                Some(format!(
                    "the trusted CA became valid only at {ca_from}, so the expired certificate could expire no earlier than a minute ago: a verifier that tolerates clock skew may still be shown accepting it as if it ignored expiry; a CA valid since at least 2 days ago (as `pki init` makes) gives full evidence"
                )),
            );
        }
        (
            wanted.0,
            wanted.1,
            Some(format!(
                "the trusted CA became valid only at {ca_from}: the expired certificate predates its issuer, so a verifier that ignores expiry still rejects it for that reason and this check cannot prove that expiry is enforced; use a CA valid since at least 2 days ago (as `pki init` makes)"
            )),
        )
    } else {
        let wanted = (now + VALIDITY_MARGIN, now + Duration::days(30));
        let until = wanted.1.min(ca_until - slack);
        if until - wanted.0 >= MIN_WINDOW {
            return (wanted.0, until, None);
        }
        (
            wanted.0,
            wanted.1,
            Some(format!(
                "the trusted CA expires at {ca_until}, before a not-yet-valid certificate can start: it outlives its issuer, so a verifier that ignores validity periods still rejects it for that reason and this check cannot prove that notBefore is enforced"
            )),
        )
    }
}

/// Mints the identity for `adversary` from the loaded material. Kinds that need the CA key fail
/// with [`PkiError::NeedsCaKey`] when it is absent, so callers can skip with that reason.
pub fn mint(pki: &ProbePki, adversary: Adversary) -> Result<Minted, PkiError> {
    // Adversarial leaf keys are P-256 unless the case is about the key: what is wrong with them is
    // the certificate, not the key type.
    let key = keys::generate(KeyType::EcdsaP256)?;
    let what = adversary.name();
    match adversary {
        Adversary::WrongCa => {
            let (cert, key) = untrusted_leaf(pki)?;
            identity(adversary, &cert, &key).map(Minted::exact)
        }
        Adversary::UntrustedLeafWithCa => {
            let (cert, key) = untrusted_leaf(pki)?;
            identity_with_chain(what, &cert, std::slice::from_ref(&pki.ca_cert), &key)
                .map(Minted::exact)
        }
        Adversary::UntrustedLeafWithClientChain => {
            let (cert, key) = untrusted_leaf(pki)?;
            let mut above = pki.client.chain.clone();
            if !above.contains(&pki.ca_cert) {
                above.push(pki.ca_cert.clone());
            }
            identity_with_chain(what, &cert, &above, &key).map(Minted::exact)
        }
        Adversary::ForgedIssuerSerial => {
            // The client's issuer: an intermediate it sends, or the CA it chains to.
            let client = &pki.client.chain[0];
            let issuer_der = pki.client.chain[1..]
                .iter()
                .chain(std::iter::once(&pki.ca_cert))
                .find(|c| crate::x509::is_signed_by(client, c).unwrap_or(false))
                .unwrap_or(&pki.ca_cert);
            let issuer_facts = CertFacts::from_der(issuer_der)
                .map_err(|e| PkiError::Generate(format!("client's issuer: {e}")))?;
            let forged_key = keys::generate_like(&issuer_facts.key)?;
            let issuer = rcgen::Issuer::from_ca_cert_der(issuer_der, &forged_key)?;
            let (_, leaf) = X509Certificate::from_der(client)
                .map_err(|e| PkiError::Generate(format!("client certificate: {e}")))?;
            let mut params = client_like_params(pki)?;
            params.serial_number = Some(rcgen::SerialNumber::from_slice(leaf.raw_serial()));
            let cert = params.signed_by(&key, &issuer)?;
            identity_with_chain(what, &cert, &pki.client.chain[1..], &key).map(Minted::exact)
        }
        Adversary::LookalikeCa => {
            // The trusted CA's own name and key identifier, read from its certificate, with a key
            // of the same type and size that is not its key.
            let ca_facts = ca_facts(pki)?;
            let forged_ca_key = keys::generate_like(&ca_facts.key)?;
            let issuer = rcgen::Issuer::from_ca_cert_der(&pki.ca_cert, &forged_ca_key)?;
            let cert = client_like_params(pki)?.signed_by(&key, &issuer)?;
            let (_, leaf) = X509Certificate::from_der(cert.der())
                .map_err(|e| PkiError::Generate(format!("lookalike certificate: {e}")))?;
            let (_, ca) = X509Certificate::from_der(&pki.ca_cert)
                .map_err(|e| PkiError::Generate(format!("trusted CA: {e}")))?;
            if leaf.issuer().as_raw() != ca.subject().as_raw() {
                return Err(PkiError::Generate(format!(
                    "cannot reproduce the trusted CA's subject `{}` byte for byte (multi-valued or unusual name attributes)",
                    ca_facts.subject
                )));
            }
            identity(adversary, &cert, &key).map(Minted::exact)
        }
        Adversary::Expired | Adversary::NotYetValid | Adversary::ServerAuthOnly => {
            let minter = pki.minter(what)?;
            let issuer = pki.ca_issuer(what)?;
            let mut params = minted_params(pki)?;
            let mut caveat = None;
            if adversary == Adversary::ServerAuthOnly {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            } else {
                let ca = CertFacts::from_der(&minter.cert)
                    .map_err(|e| PkiError::Generate(format!("issuing CA certificate: {e}")))?;
                let (from, until, why) = window_inside_ca(
                    adversary == Adversary::Expired,
                    OffsetDateTime::now_utc(),
                    ca.not_before,
                    ca.not_after,
                );
                params.not_before = from;
                params.not_after = until;
                caveat = why;
            }
            let cert = params.signed_by(&key, &issuer)?;
            Ok(Minted {
                identity: identity_with_chain(what, &cert, &minter.chain_above, &key)?,
                caveat,
            })
        }
        Adversary::HealthCheckImpostor => {
            let cert = health_check_params()?.self_signed(&key)?;
            identity(adversary, &cert, &key).map(Minted::exact)
        }
        Adversary::CaAsClient => {
            // The certificate of the key at hand, with what the client sends above it.
            let minter = pki.minter(what)?;
            let chain = if minter.chain_above.is_empty() {
                vec![minter.cert.clone()]
            } else {
                minter.chain_above.clone()
            };
            Ok(Minted::exact(Identity {
                label: what.to_owned(),
                chain,
                key: private_key(&minter.key)?,
            }))
        }
        Adversary::StolenWithoutKey => {
            // A key of the stolen certificate's own type and size: the handshake then fails on
            // proof of possession alone, not on a key-type mismatch.
            let client = CertFacts::from_der(&pki.client.chain[0])
                .map_err(|e| PkiError::Generate(format!("client certificate: {e}")))?;
            let other = keys::generate_like(&client.key)?;
            Ok(Minted::exact(Identity {
                label: what.to_owned(),
                chain: pki.client.chain.clone(),
                key: rustls_pki_types::PrivateKeyDer::try_from(other.serialize_der())
                    .map_err(|e| PkiError::Generate(e.to_owned()))?,
            }))
        }
    }
}

fn ca_facts(pki: &ProbePki) -> Result<CertFacts, PkiError> {
    CertFacts::from_der(&pki.ca_cert)
        .map_err(|e| PkiError::Generate(format!("trusted CA certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_windows_sit_inside_the_ca_or_say_why_not() {
        let now = OffsetDateTime::now_utc();
        let years = Duration::days(3650);
        // (past?, CA from, CA until, expect a caveat)
        let cases = [
            (true, now - Duration::days(35), now + years, false),
            (true, now - Duration::days(3), now + years, false),
            (true, now - Duration::hours(2), now + years, true),
            (true, now - Duration::seconds(30), now + years, true),
            (false, now - Duration::days(35), now + years, false),
            (
                false,
                now - Duration::days(35),
                now + Duration::hours(3),
                true,
            ),
        ];
        for (past, from, until, caveat) in cases {
            let (nb, na, why) = window_inside_ca(past, now, from, until);
            assert!(na > nb, "empty window for {from}..{until}");
            assert_eq!(why.is_some(), caveat, "{past} {from} {until}: {why:?}");
            if past {
                assert!(na < now, "an expired certificate ends in the past");
            } else {
                assert!(nb > now, "a not-yet-valid certificate starts in the future");
            }
            if !caveat {
                assert!(nb > from && na < until, "inside the CA's validity");
                let margin = if past { now - na } else { nb - now };
                assert!(margin >= VALIDITY_MARGIN);
            }
        }
    }
}
