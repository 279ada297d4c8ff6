//! `config/*` cases on the identity each client component presents: the certificate and key its
//! effective paths resolve to (through its mounts and `items`, to whichever Secret: the shared
//! `argocd-repo-server-mtls`, Option A's per-component keys, Option B's per-component Secrets),
//! audited against the client CA(s) the repo-server trusts. Secret data never leaves this file:
//! findings carry names, keys, subjects and fingerprints only.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::Finding;
use super::secret::{certs_from, judge_expiry};
use crate::kubernetes::workloads::{FileSource, MtlsFile, MtlsRead, Role, Workload};
use crate::suite::KubeCase;
use crate::x509::{self, CertFacts};

/// The words every identity finding ends with: what a certificate per component does and does
/// not buy.
pub const NO_AUTHORIZATION: &str = "per-component certificates authenticate but do not authorize: the repo-server accepts any certificate from its client CA for every call";

/// One client's pair as found: where each file comes from, and the bytes when the Secret and key
/// exist.
struct Pair<'a> {
    workload: &'a Workload,
    role: Role,
    cert: Located<'a>,
    key: Located<'a>,
}

struct Located<'a> {
    secret: String,
    key: String,
    bytes: Option<&'a [u8]>,
    /// Why there are no bytes.
    missing: Option<String>,
}

/// The Secrets of the namespace as this run could read them.
pub struct SecretsRead<'a> {
    /// Those that exist and were read, by name.
    pub found: &'a BTreeMap<String, Secret>,
    /// Those RBAC refused, with why.
    pub refused: &'a BTreeMap<String, String>,
}

fn locate<'a>(read: &MtlsRead, secrets: &SecretsRead<'a>) -> Option<Located<'a>> {
    let FileSource::SecretKey { secret, key } = &read.source else {
        return None;
    };
    let found = secrets.found.get(secret);
    let bytes = found
        .and_then(|s| s.data.as_ref()?.get(key))
        .map(|b| b.0.as_slice());
    let missing = match (found, bytes) {
        (None, _) if secrets.refused.contains_key(secret) => Some(format!(
            "Secret `{secret}` may not be read by this run ({})",
            secrets.refused[secret]
        )),
        (None, _) => Some(format!(
            "Secret `{secret}` does not exist (the volume is optional, so the file is simply absent)"
        )),
        (Some(_), None) => Some(format!("Secret `{secret}` has no key `{key}`")),
        _ => None,
    };
    Some(Located {
        secret: secret.clone(),
        key: key.clone(),
        bytes,
        missing,
    })
}

/// The client CA(s) the repo-server trusts: the certificates of the file its client CA path
/// resolves to. `Err` says why they are not known.
fn trusted_cas(
    workloads: &[Workload],
    cmd_params: Option<&ConfigMap>,
    secrets: &SecretsRead,
) -> Result<(String, Vec<Vec<u8>>), String> {
    let read = workloads
        .iter()
        .filter(|w| w.role == Some(Role::RepoServer))
        .flat_map(|w| w.mtls_reads(cmd_params))
        .find(|r| r.file == MtlsFile::ClientCa)
        .ok_or("no repo-server was found")?;
    let located = locate(&read, secrets).ok_or_else(|| {
        format!(
            "the repo-server's client CA path {} is not mounted from a Secret",
            read.setting.value
        )
    })?;
    if let Some(why) = located.missing {
        return Err(why);
    }
    let origin = format!("Secret `{}` key `{}`", located.secret, located.key);
    let certs = certs_from(located.bytes.unwrap_or_default(), &located.key)
        .map_err(|e| format!("{origin}: {e}"))?;
    Ok((origin, certs))
}

/// Each client's identity: its pair exists (`config/mtls-client-pair/<role>`), its certificate
/// chains to a CA the repo-server trusts (`config/client-cert-chains/<role>`), its key belongs to
/// it (`config/client-key-matches/<role>`), its validity (`config/cert-not-expired`, `config/cert-expiry-horizon`); then
/// whether the identities are shared or unique, with what they do not buy
/// (`config/client-identities`, advice).
pub fn judge_identities(
    workloads: &[Workload],
    cmd_params: Option<&ConfigMap>,
    secrets: &SecretsRead,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let trusted = trusted_cas(workloads, cmd_params, secrets);
    let mut pairs = Vec::new();
    for w in workloads {
        let Some(role) = w.role.filter(|r| *r != Role::RepoServer) else {
            continue;
        };
        if w.replicas == Some(0) {
            continue;
        }
        let reads = w.mtls_reads(cmd_params);
        let find = |file| {
            reads
                .iter()
                .find(|r| r.file == file)
                .and_then(|r| locate(r, secrets))
        };
        // A file no Secret provides is config/mount's finding.
        if let (Some(cert), Some(key)) = (find(MtlsFile::ClientCert), find(MtlsFile::ClientKey)) {
            pairs.push(Pair {
                workload: w,
                role,
                cert,
                key,
            });
        }
    }
    if pairs.is_empty() {
        // Nothing to judge, and why: not a Secret that could not be read, but no pair mounted.
        for case in [
            KubeCase::MtlsClientPair,
            KubeCase::ClientCertChains,
            KubeCase::ClientKeyMatches,
        ] {
            out.push(Finding::not_applicable(
                case,
                "no client of the repo-server mounts a certificate and key from a Secret (config/mount/argocd-server and the other clients' say how to mount them): there is no client identity to judge",
            ));
        }
    }
    let mut presented: BTreeMap<String, Vec<Role>> = BTreeMap::new();
    for p in &pairs {
        let who = format!("{} ({})", p.role, p.workload.reference());
        let missing: Vec<&str> = [&p.cert, &p.key]
            .iter()
            .filter_map(|l| l.missing.as_deref())
            .collect();
        let refused = [&p.cert, &p.key]
            .iter()
            .any(|l| secrets.refused.contains_key(&l.secret));
        if refused {
            out.push(
                Finding::inconclusive(
                    KubeCase::MtlsClientPair,
                    format!("{who}: {}", missing.join("; ")),
                )
                .about(p.role.upstream()),
            );
            continue;
        }
        if !missing.is_empty() {
            out.push(Finding::fail(KubeCase::MtlsClientPair,
                format!(
                    "{who}: {}: it connects WITHOUT a client certificate and the repo-server refuses every call it makes",
                    missing.join("; ")
                ),
            ).about(p.role.upstream()));
            continue;
        }
        let leaf = match certs_from(p.cert.bytes.unwrap_or_default(), &p.cert.key) {
            Ok(certs) => certs,
            Err(e) => {
                out.push(
                    Finding::fail(
                        KubeCase::MtlsClientPair,
                        format!("{who}: Secret `{}`: {e}", p.cert.secret),
                    )
                    .about(p.role.upstream()),
                );
                continue;
            }
        };
        let Some(leaf_der) = leaf.first() else {
            continue;
        };
        let facts = CertFacts::from_der(leaf_der).ok();
        let subject = facts
            .as_ref()
            .map(|f| f.subject.clone())
            .unwrap_or_default();
        let fingerprint = x509::fingerprint_sha256(leaf_der);
        let short = fingerprint.get(..23).unwrap_or(&fingerprint).to_owned();
        out.push(
            Finding::pass(
                KubeCase::MtlsClientPair,
                format!(
                    "{who} presents `{subject}` (sha256 {short}) from Secret `{}` keys `{}`/`{}`",
                    p.cert.secret, p.cert.key, p.key.key
                ),
            )
            .about(p.role.upstream()),
        );
        presented
            .entry(fingerprint.clone())
            .or_default()
            .push(p.role);
        match &trusted {
            Ok((origin, cas)) => {
                let chains = cas
                    .iter()
                    .any(|ca| x509::is_signed_by(leaf_der, ca).unwrap_or(false));
                out.push(if chains {
                    Finding::pass(KubeCase::ClientCertChains,
                        format!("{who}: `{subject}` is issued by a CA in {origin}"),
                    ).about(p.role.upstream())
                } else {
                    Finding::fail(KubeCase::ClientCertChains,
                        format!(
                            "{who} presents `{subject}` (issuer `{}`), which no CA in {origin} issued: the repo-server refuses every call it makes",
                            facts.as_ref().map(|f| f.issuer.as_str()).unwrap_or_default()
                        ),
                    ).about(p.role.upstream())
                });
            }
            Err(why) => out.push(
                Finding::not_applicable(
                    KubeCase::ClientCertChains,
                    format!("{who}: the CA(s) the repo-server trusts are not known ({why})"),
                )
                .about(p.role.upstream()),
            ),
        }
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject;
        let matches = PrivateKeyDer::from_pem_slice(p.key.bytes.unwrap_or_default())
            .ok()
            .and_then(|k| crate::pki::public_key_spki(&k).ok())
            .zip(x509::spki_der(leaf_der).ok())
            .is_some_and(|(a, b)| a == b);
        out.push(if matches {
            Finding::pass(KubeCase::ClientKeyMatches,
                format!("{who}: `{}` belongs to `{}`", p.key.key, p.cert.key),
            ).about(p.role.upstream())
        } else {
            Finding::fail(KubeCase::ClientKeyMatches,
                format!(
                    "{who}: Secret `{}` key `{}` does not belong to its certificate `{}` (or does not parse): the handshake fails",
                    p.key.secret, p.key.key, p.cert.key
                ),
            ).about(p.role.upstream())
        });
        if let Some(f) = &facts {
            out.extend(judge_expiry(&format!("{} of {}", p.cert.key, p.role), f));
        }
    }
    if !presented.is_empty() {
        let clients = presented.values().map(Vec::len).sum::<usize>();
        let shared: Vec<String> = presented
            .values()
            .filter(|roles| roles.len() > 1)
            .map(|roles| {
                let mut roles = roles.clone();
                roles.sort();
                roles
                    .iter()
                    .map(|r| r.upstream())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        out.push(if shared.is_empty() {
            Finding::pass(
                KubeCase::ClientIdentities,
                format!(
                    "unique: each of the {clients} client component(s) presents its own certificate, so the repo-server's peers can be told apart; {NO_AUTHORIZATION}"
                ),
            )
        } else {
            Finding::fail(
                KubeCase::ClientIdentities,
                format!(
                    "shared: one certificate is presented by {}: the repo-server cannot tell these components apart (unique identification needs one certificate per component: pki init --layout per-component); {NO_AUTHORIZATION}",
                    shared.join("; and one by ")
                ),
            )
        });
    }
    out
}
