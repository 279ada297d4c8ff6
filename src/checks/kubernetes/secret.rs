//! `config/*` cases on the Secret `argocd-repo-server-mtls` itself: its keys, whether its
//! certificates parse, chain and match their key, and how long they stay valid. Secret *data*
//! never leaves this file: only key names and public certificate facts appear in a finding.

use k8s_openapi::api::core::v1::Secret;

use super::Finding;
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::kube_ids as ids;
use crate::x509::{self, CertFacts};

/// Certificates of one Secret key, or why they are unusable.
pub(super) fn certs_in(secret: &Secret, key: &str) -> Option<Result<Vec<Vec<u8>>, String>> {
    let bytes = &secret.data.as_ref()?.get(key)?.0;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<Vec<u8>>, String> = CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| e.to_string()))
        .collect();
    Some(match certs {
        Ok(v) if v.is_empty() => Err(format!("key `{key}` holds no PEM certificate")),
        other => other,
    })
}

/// Days below which a certificate's remaining validity is flagged.
pub const EXPIRY_HORIZON_DAYS: i64 = 30;

/// Audits `argocd-repo-server-mtls` (or its absence). `ca.crt` in place of `client-ca.crt` is the
/// failure that matters most: the repo-server then finds no client CA and silently accepts anyone.
pub fn judge_mtls_secret(secret: Option<&Secret>) -> Vec<Finding> {
    const KEYS: &str = ids::MTLS_SECRET_KEYS;
    let Some(secret) = secret else {
        return vec![Finding::fail(
            KEYS,
            format!(
                "Secret `{MTLS_SECRET}` does not exist: the repo-server has no client CA and mTLS is OFF"
            ),
        )];
    };
    let keys: Vec<&str> = secret
        .data
        .as_ref()
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    if !keys.contains(&mtls_keys::CLIENT_CA) {
        let misnamed = [
            "ca.crt",
            "client_ca.crt",
            "clientca.crt",
            "client-ca.pem",
            "ca.pem",
        ]
        .into_iter()
        .find(|k| keys.contains(k));
        out.push(Finding::fail(KEYS, match misnamed {
            Some(k) => format!(
                "Secret `{MTLS_SECRET}` has key `{k}` but no `{}`: the repo-server reads only `{}`, so mTLS is silently OFF and any TLS client is accepted",
                mtls_keys::CLIENT_CA, mtls_keys::CLIENT_CA
            ),
            None => format!(
                "Secret `{MTLS_SECRET}` has no `{}` (keys: {}): mTLS is silently OFF",
                mtls_keys::CLIENT_CA,
                if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
            ),
        }));
    } else {
        out.push(Finding::pass(
            KEYS,
            format!("Secret `{MTLS_SECRET}` has `{}`", mtls_keys::CLIENT_CA),
        ));
    }
    let missing_pair: Vec<&str> = [mtls_keys::CLIENT_CERT, mtls_keys::CLIENT_KEY]
        .into_iter()
        .filter(|key| !keys.contains(key))
        .collect();
    out.push(if missing_pair.is_empty() {
        Finding::pass(
            ids::MTLS_CLIENT_PAIR,
            format!(
                "Secret `{MTLS_SECRET}` has `{}` and `{}`",
                mtls_keys::CLIENT_CERT,
                mtls_keys::CLIENT_KEY
            ),
        )
    } else {
        Finding::fail(ids::MTLS_CLIENT_PAIR, format!(
            "Secret `{MTLS_SECRET}` has no `{}`: the components connect without a certificate and an mTLS repo-server refuses them",
            missing_pair.join("` or `")
        ))
    });
    out.push(if keys.contains(&mtls_keys::SERVER_CA) {
        Finding::advise(
            ids::SERVER_CA_PRESENT,
            true,
            format!(
                "Secret `{MTLS_SECRET}` has `{}`: the components can verify the repo-server",
                mtls_keys::SERVER_CA
            ),
        )
    } else {
        Finding::advise(ids::SERVER_CA_PRESENT, false, format!(
            "Secret `{MTLS_SECRET}` has no `{}`: the components cannot verify the repo-server (one-way authentication)",
            mtls_keys::SERVER_CA
        ))
    });
    let known = [
        mtls_keys::CLIENT_CA,
        mtls_keys::CLIENT_CERT,
        mtls_keys::CLIENT_KEY,
        mtls_keys::SERVER_CA,
    ];
    let extra: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !known.contains(k))
        .collect();
    out.push(if extra.is_empty() {
        Finding::advise(
            ids::MTLS_SECRET_EXTRA_KEYS,
            true,
            format!("Secret `{MTLS_SECRET}` has only keys the components read"),
        )
    } else {
        Finding::advise(
            ids::MTLS_SECRET_EXTRA_KEYS,
            false,
            format!(
                "Secret `{MTLS_SECRET}` has keys no component reads: {}",
                extra.join(", ")
            ),
        )
    });

    // The client pair must chain to the client CA and belong together.
    let ca = certs_in(secret, mtls_keys::CLIENT_CA);
    let client = certs_in(secret, mtls_keys::CLIENT_CERT);
    match &ca {
        Some(Err(e)) => out.push(Finding::fail(
            ids::CLIENT_CA_PARSES,
            format!("Secret `{MTLS_SECRET}`: {e}"),
        )),
        Some(Ok(certs)) => out.push(Finding::pass(
            ids::CLIENT_CA_PARSES,
            format!(
                "Secret `{MTLS_SECRET}`: `{}` holds {} certificate(s)",
                mtls_keys::CLIENT_CA,
                certs.len()
            ),
        )),
        None => {}
    }
    if let (Some(Ok(ca)), Some(Ok(client))) = (&ca, &client) {
        let chains = ca
            .iter()
            .any(|c| x509::is_signed_by(&client[0], c).unwrap_or(false));
        out.push(if chains {
            Finding::pass(ids::CLIENT_CERT_CHAINS, "client.crt is issued by a CA in client-ca.crt")
        } else {
            Finding::fail(ids::CLIENT_CERT_CHAINS, format!(
                "Secret `{MTLS_SECRET}`: client.crt is not issued by any CA in client-ca.crt: every component would be refused"
            ))
        });
        if let Some(key_bytes) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(mtls_keys::CLIENT_KEY))
        {
            use rustls_pki_types::PrivateKeyDer;
            use rustls_pki_types::pem::PemObject;
            let matches = PrivateKeyDer::from_pem_slice(&key_bytes.0)
                .ok()
                .and_then(|k| crate::pki::public_key_spki(&k).ok())
                .zip(x509::spki_der(&client[0]).ok())
                .is_some_and(|(a, b)| a == b);
            out.push(if matches {
                Finding::pass(ids::CLIENT_KEY_MATCHES, "client.key belongs to client.crt")
            } else {
                Finding::fail(ids::CLIENT_KEY_MATCHES, format!(
                    "Secret `{MTLS_SECRET}`: client.key does not belong to client.crt (or does not parse)"
                ))
            });
        }
    }
    for (key, certs) in [
        (mtls_keys::CLIENT_CA, &ca),
        (mtls_keys::CLIENT_CERT, &client),
    ] {
        if let Some(Ok(ders)) = certs {
            for der in ders {
                if let Ok(f) = CertFacts::from_der(der) {
                    out.push(judge_expiry(key, &f));
                }
            }
        }
    }
    out
}

fn judge_expiry(key: &str, f: &CertFacts) -> Finding {
    let id = ids::CERT_EXPIRY_HORIZON;
    if f.days_left < 0 {
        Finding::fail(
            id,
            format!("`{key}` ({}) expired {} days ago", f.subject, -f.days_left),
        )
    } else if f.days_left < EXPIRY_HORIZON_DAYS {
        Finding::advise(
            id,
            false,
            format!("`{key}` ({}) expires in {} days", f.subject, f.days_left),
        )
    } else {
        Finding::pass(
            id,
            format!(
                "`{key}` ({}) valid for {} more days",
                f.subject, f.days_left
            ),
        )
    }
}
