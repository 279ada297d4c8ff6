//! Client identities an intruder would try. Each is built to be wrong in exactly one respect, so a
//! rejection can be attributed to that respect alone.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Identity, KeyType, PkiError, ProbePki, backdated_now, keys, random_serial};

/// The kinds of adversarial client identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adversary {
    /// Same subject as the real client, issued by an unrelated CA.
    WrongCa,
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
}

impl Adversary {
    /// Every kind, in a stable order.
    pub const ALL: [Adversary; 7] = [
        Adversary::WrongCa,
        Adversary::Expired,
        Adversary::NotYetValid,
        Adversary::ServerAuthOnly,
        Adversary::HealthCheckImpostor,
        Adversary::CaAsClient,
        Adversary::StolenWithoutKey,
    ];

    /// Stable name, used as the identity label and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Adversary::WrongCa => "wrong-ca",
            Adversary::Expired => "expired",
            Adversary::NotYetValid => "not-yet-valid",
            Adversary::ServerAuthOnly => "server-auth-only",
            Adversary::HealthCheckImpostor => "health-check-impostor",
            Adversary::CaAsClient => "ca-as-client",
            Adversary::StolenWithoutKey => "stolen-without-key",
        }
    }

    /// Whether minting it needs the trusted CA's private key.
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
    Ok(Identity {
        label: adversary.name().to_owned(),
        chain: vec![cert.der().clone()],
        key: rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| PkiError::Generate(e.to_owned()))?,
    })
}

/// Mints the identity for `adversary` from the loaded material. Kinds that need the CA key fail
/// with [`PkiError::NeedsCaKey`] when it is absent, so callers can skip with that reason.
pub fn mint(pki: &ProbePki, adversary: Adversary) -> Result<Identity, PkiError> {
    // Adversarial keys are always P-256: what is wrong with them is the certificate, not the key type.
    let key = keys::generate(KeyType::EcdsaP256)?;
    let what = adversary.name();
    match adversary {
        Adversary::WrongCa => {
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
            identity(adversary, &cert, &key)
        }
        Adversary::Expired | Adversary::NotYetValid | Adversary::ServerAuthOnly => {
            let issuer = pki.ca_issuer(what)?;
            let mut params = client_like_params(pki)?;
            let now = backdated_now();
            match adversary {
                Adversary::Expired => {
                    params.not_before = now - Duration::days(30);
                    params.not_after = now - Duration::days(1);
                }
                Adversary::NotYetValid => {
                    params.not_before = now + Duration::days(1);
                    params.not_after = now + Duration::days(30);
                }
                _ => params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth],
            }
            let cert = params.signed_by(&key, &issuer)?;
            identity(adversary, &cert, &key)
        }
        Adversary::HealthCheckImpostor => {
            let cert = health_check_params()?.self_signed(&key)?;
            identity(adversary, &cert, &key)
        }
        Adversary::CaAsClient => {
            pki.ca_issuer(what)?;
            let ca_key = pki.ca_key.as_ref().ok_or_else(|| PkiError::NeedsCaKey {
                what: what.to_owned(),
            })?;
            Ok(Identity {
                label: what.to_owned(),
                chain: vec![pki.ca_cert.clone()],
                key: rustls_pki_types::PrivateKeyDer::try_from(ca_key.serialize_der())
                    .map_err(|e| PkiError::Generate(e.to_owned()))?,
            })
        }
        Adversary::StolenWithoutKey => Ok(Identity {
            label: what.to_owned(),
            chain: pki.client.chain.clone(),
            key: rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| PkiError::Generate(e.to_owned()))?,
        }),
    }
}
