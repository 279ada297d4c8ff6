//! `config/*` cases on the Secret `argocd-repo-server-mtls` itself: its keys, whether its
//! certificates parse, chain and match their key, and how long they stay valid. Secret *data*
//! never leaves this file: only key names and public certificate facts appear in a finding.

use k8s_openapi::api::core::v1::Secret;

use super::Finding;
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::KubeCase;
use crate::x509::CertFacts;

/// Certificates of one Secret key, or why they are unusable.
pub(super) fn certs_in(secret: &Secret, key: &str) -> Option<Result<Vec<Vec<u8>>, String>> {
    let bytes = &secret.data.as_ref()?.get(key)?.0;
    Some(certs_from(bytes, key))
}

/// The PEM certificates of `bytes` (the value of Secret key `key`), or why they are unusable.
pub(super) fn certs_from(bytes: &[u8], key: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Result<Vec<Vec<u8>>, String> = CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.to_vec()).map_err(|e| e.to_string()))
        .collect();
    match certs {
        Ok(v) if v.is_empty() => Err(format!("key `{key}` holds no PEM certificate")),
        other => other,
    }
}

/// Days below which a certificate's remaining validity is flagged.
pub const EXPIRY_HORIZON_DAYS: i64 = 30;

/// Audits `argocd-repo-server-mtls` (or its absence): the client CA key, `server-ca.crt`, keys no
/// component reads, the client CA's parsing and validity. `ca.crt` in place of `client-ca.crt` is
/// the failure that matters most: the repo-server then finds no client CA and silently accepts
/// anyone. `ca_key` is the key the repo-server's mount maps onto its client CA file (a remap by
/// `items`; `client-ca.crt` when it reads none of this Secret); `read_keys` are the keys any
/// discovered component's mTLS file comes from. The client pairs are judged per component
/// (`identities`).
pub fn judge_mtls_secret(
    secret: Option<&Secret>,
    ca_key: &str,
    read_keys: &std::collections::BTreeSet<String>,
) -> Vec<Finding> {
    const KEYS: KubeCase = KubeCase::MtlsSecretKeys;
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
    if !keys.contains(&ca_key) {
        let cert_manager = ["tls.crt", "tls.key", "ca.crt"]
            .iter()
            .all(|k| keys.contains(k));
        let misnamed = [
            "ca.crt",
            "client_ca.crt",
            "clientca.crt",
            "client-ca.pem",
            "ca.pem",
        ]
        .into_iter()
        .find(|k| keys.contains(k));
        out.push(Finding::fail(KEYS, match (cert_manager, misnamed) {
            (true, _) => format!(
                "Secret `{MTLS_SECRET}` has the keys a cert-manager Certificate writes (tls.crt, tls.key, ca.crt) but no `{ca_key}`: the repo-server finds no client CA, so mTLS is silently OFF, and the clients find no `client.crt`/`client.key`, so they present nothing. Remap with volume items: on the repo-server `ca.crt` -> path `client-ca.crt`; on each client `tls.crt` -> `client.crt` and `tls.key` -> `client.key` (or a projected volume / trust-manager bundle)"
            ),
            (false, Some(k)) => format!(
                "Secret `{MTLS_SECRET}` has key `{k}` but no `{ca_key}`: the repo-server reads only `{ca_key}`, so mTLS is silently OFF and any TLS client is accepted"
            ),
            (false, None) => format!(
                "Secret `{MTLS_SECRET}` has no `{ca_key}` (keys: {}): mTLS is silently OFF",
                if keys.is_empty() { "none".to_owned() } else { keys.join(", ") }
            ),
        }));
    } else {
        out.push(Finding::pass(
            KEYS,
            if ca_key == mtls_keys::CLIENT_CA {
                format!("Secret `{MTLS_SECRET}` has `{ca_key}`")
            } else {
                format!(
                    "Secret `{MTLS_SECRET}` has `{ca_key}`, which the repo-server's volume items map onto its client CA file"
                )
            },
        ));
    }
    out.push(if keys.contains(&mtls_keys::SERVER_CA) {
        Finding::pass(
            KubeCase::ServerCaPresent,
            format!(
                "Secret `{MTLS_SECRET}` has `{}`: the components can verify the repo-server",
                mtls_keys::SERVER_CA
            ),
        )
    } else {
        Finding::fail(KubeCase::ServerCaPresent, format!(
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
        .filter(|k| !known.contains(k) && *k != ca_key && !read_keys.contains(*k))
        .collect();
    out.push(if extra.is_empty() {
        Finding::pass(
            KubeCase::MtlsSecretExtraKeys,
            format!("Secret `{MTLS_SECRET}` has only keys the components read"),
        )
    } else {
        Finding::fail(
            KubeCase::MtlsSecretExtraKeys,
            format!(
                "Secret `{MTLS_SECRET}` has keys no component reads: {}",
                extra.join(", ")
            ),
        )
    });

    let ca = certs_in(secret, ca_key);
    match &ca {
        Some(Err(e)) => out.push(Finding::fail(
            KubeCase::ClientCaParses,
            format!(
                "Secret `{MTLS_SECRET}`: {e}: the repo-server does not start with it (it fails at startup with \"invalid cert data\", it does not fall back to open)"
            ),
        )),
        Some(Ok(certs)) => out.push(Finding::pass(
            KubeCase::ClientCaParses,
            format!(
                "Secret `{MTLS_SECRET}`: `{ca_key}` holds {} certificate(s)",
                certs.len()
            ),
        )),
        None => {}
    }
    if let Some(Ok(ders)) = &ca {
        for der in ders {
            if let Ok(f) = CertFacts::from_der(der) {
                out.extend(judge_expiry(ca_key, &f));
            }
        }
    }
    out
}

pub(super) fn judge_expiry(key: &str, f: &CertFacts) -> [Finding; 2] {
    let expired = if f.days_left < 0 {
        Finding::fail(
            KubeCase::CertNotExpired,
            format!("`{key}` ({}) expired {} days ago", f.subject, -f.days_left),
        )
    } else {
        Finding::pass(
            KubeCase::CertNotExpired,
            format!("`{key}` ({}) has not expired", f.subject),
        )
    };
    let horizon = if f.days_left < EXPIRY_HORIZON_DAYS {
        Finding::fail(
            KubeCase::CertExpiryHorizon,
            format!(
                "`{key}` ({}) is valid for {} more days, less than the {EXPIRY_HORIZON_DAYS}-day horizon",
                f.subject, f.days_left
            ),
        )
    } else {
        Finding::pass(
            KubeCase::CertExpiryHorizon,
            format!(
                "`{key}` ({}) valid for {} more days",
                f.subject, f.days_left
            ),
        )
    };
    [expired, horizon]
}
