//! Suites are data: `suites/*.toml` lists the cases, what each does (`action`), the MUST it checks
//! (`requirement`), what is expected, and the controls it serves. The built-in suites are compiled
//! into the binary, so the tool works from any directory; `--suite PATH.toml` loads another.
//!
//! Over 500 lines on purpose: loading, validation (every id, spec and control checked at load)
//! and the Kubernetes ids belong to one contract, with its tests beside it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::controls::Evidence;
use crate::pki::Adversary;
use crate::probe::{Alert, TlsVersion};

/// Built-in suites: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("endpoint", include_str!("../suites/endpoint.toml")),
    ("kubernetes", include_str!("../suites/kubernetes.toml")),
    ("in-cluster", include_str!("../suites/in-cluster.toml")),
];

/// Why a suite could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// No built-in suite by that name, and no such file.
    #[error("unknown suite `{name}` (built-in: {}; or give a path to a .toml file)", BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown {
        /// The requested name.
        name: String,
    },
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The suite file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a case is inconsistent.
    #[error("suite `{suite}`: {detail}")]
    Invalid {
        /// The suite name or path.
        suite: String,
        /// What is wrong.
        detail: String,
    },
}

/// Who the client claims to be in a handshake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presented {
    /// No certificate.
    None,
    /// The configured legitimate client.
    Client,
    /// A valid client leaf minted with the CA key the run was given, sent with the same chain as
    /// the identities minted with that key: their positive control.
    MintedClient,
    /// An adversarial identity.
    #[serde(untagged)]
    Adversary(Adversary),
}

impl Presented {
    /// Stable label (`none`, `client`, or the adversary name).
    pub fn label(self) -> &'static str {
        match self {
            Presented::None => "none",
            Presented::Client => "client",
            Presented::MintedClient => crate::pki::MINTED_CONTROL,
            Presented::Adversary(a) => a.name(),
        }
    }
}

/// What the server must do with the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Refuse before any application data.
    Rejected,
    /// Let the client through (and, for gRPC, answer Health/Check with SERVING).
    Accepted,
}

/// The kind of observation a case is judged on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum CaseKind {
    /// A TLS handshake presenting `present`, run once per TLS version in `versions`.
    Handshake {
        /// Identity presented.
        present: Presented,
        /// Expected outcome.
        expect: Expect,
    },
    /// A hand-built ClientHello offering only a legacy version; must be refused.
    LegacyHello,
    /// Plaintext HTTP/2 against the TLS port; must not be answered with HTTP/2.
    PlaintextH2c,
    /// The server chain verifies against the server CA for the expected name.
    ServerIdentity,
    /// What each TLS version did for the valid client (negotiated, not offered, no shared cipher).
    TlsPolicy,
    /// The CA names the server's CertificateRequest advertises are all approved ones.
    TrustStore,
    /// `grpc.health.v1.Health/Check` over the authenticated connection returns SERVING.
    GrpcHealth,
    /// `version.VersionService/Version` answers; the build is recorded.
    GrpcVersion,
    /// An RPC without a certificate fails before any response.
    GrpcNoCertRpc,
    /// Sessions handed to refused connections do not let a client without a certificate in
    /// when offered again (TLS 1.3 tickets, TLS 1.2 session IDs and tickets).
    SessionResumption,
    /// `GET path` on the health port answers 200.
    HttpProbe {
        /// Path and query, e.g. `/healthz?full=true`.
        path: String,
    },
    /// A log line with this message prefix is present.
    LogLine {
        /// The message prefix to find.
        prefix: String,
    },
    /// The refused handshakes of this run were logged (grpc-go `ServerHandshake(...) failed:`).
    LogRejections,
    /// Judged on the Kubernetes target's findings (configuration audit, pod state, component
    /// logs) for `case`, one result per subject (a component, a pod). In a suite file the case is
    /// named by the case's `id` alone: [`Suite::parse`] binds it.
    Finding {
        /// The judge's case, bound from the id.
        #[serde(skip_serializing)]
        case: KubeCase,
    },
}

/// How much a failing check weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// A failure fails the run.
    #[default]
    Required,
    /// Recorded and reported, but does not fail the run (stacks legitimately differ).
    Advisory,
}

/// Keys a case may have (serde cannot deny unknown fields through `flatten`, so parse checks them).
const CASE_KEYS: &[&str] = &[
    "id",
    "title",
    "action",
    "requirement",
    "controls",
    "evidence",
    "severity",
    "spec",
    "versions",
    "alerts",
    "grpc_only",
    "kind",
    "present",
    "expect",
    "path",
    "prefix",
];

/// One case as written in a suite file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    /// Stable id, e.g. `handshake/wrong-ca` (the TLS version is appended per version).
    pub id: String,
    /// One line: what passing proves.
    pub title: String,
    /// What the harness does.
    pub action: String,
    /// The MUST being checked.
    pub requirement: String,
    /// The standard or document section the requirement comes from (`RFC 8446 §4.4.2`), as
    /// h2spec prints its section: where a reader checks that the requirement is real.
    #[serde(default)]
    pub spec: String,
    /// What the case proves, in the catalogue's terms: the controls it may name are those that
    /// accept one of these ([`crate::controls::check_mapping`]).
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// Control ids from the catalogue this case gives evidence toward.
    #[serde(default)]
    pub controls: Vec<String>,
    /// Required or advisory.
    #[serde(default)]
    pub severity: Severity,
    /// TLS versions to run it under (`1.2`, `1.3`; `1.0`/`1.1` for legacy hellos), parsed once
    /// when the suite is read (any of the spellings [`TlsVersion::parse`] knows).
    #[serde(default, deserialize_with = "tls_versions")]
    pub versions: Vec<TlsVersion>,
    /// Alerts a strict profile pins, per version (`"1.3" = "certificate_required"`).
    #[serde(default, deserialize_with = "pinned_alerts")]
    pub alerts: BTreeMap<TlsVersion, Alert>,
    /// Only for the gRPC protocol (skipped with `--protocol tls`).
    #[serde(default)]
    pub grpc_only: bool,
    /// What is observed.
    #[serde(flatten)]
    pub kind: CaseKind,
}

fn tls_version<E: serde::de::Error>(text: &str) -> Result<TlsVersion, E> {
    TlsVersion::parse(text).ok_or_else(|| E::custom(format!("unknown TLS version `{text}`")))
}

fn tls_versions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TlsVersion>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|v| tls_version(v))
        .collect()
}

/// Pinned alerts, checked when the suite is read: a name no RFC gives an alert is refused.
fn pinned_alerts<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<TlsVersion, Alert>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(v, name)| {
            let alert = Alert::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown TLS alert `{name}` (RFC 8446 §6 names, e.g. `certificate_required`)"
                ))
            })?;
            Ok((tls_version(&v)?, alert))
        })
        .collect()
}

impl Case {
    /// The alert a strict profile pins for `version`, whichever spelling the suite used (`1.3`, `tls1.3`).
    pub fn pinned_alert(&self, version: TlsVersion) -> Option<Alert> {
        self.alerts.get(&version).copied()
    }
}

/// A suite file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Suite name.
    pub name: String,
    /// What the suite establishes.
    pub title: String,
    /// Its cases.
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
}

/// A case expanded for one TLS version (or none): what the runner executes and reports.
#[derive(Debug, Clone)]
pub struct Check {
    /// Full id, e.g. `handshake/wrong-ca/tls1.3`.
    pub id: String,
    /// Suite it came from.
    pub suite: String,
    /// The case.
    pub case: Case,
    /// The version this expansion runs under.
    pub version: Option<TlsVersion>,
}

impl Suite {
    /// Parses suite TOML and validates every case.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SuiteError> {
        let mut raw: toml::Table = toml::from_str(text).map_err(|e| SuiteError::Invalid {
            suite: origin.to_owned(),
            detail: e.to_string(),
        })?;
        let raw_cases = match raw.get_mut("case") {
            Some(toml::Value::Array(cases)) => cases,
            _ => &mut Vec::new(),
        };
        for case in raw_cases.iter_mut() {
            if let Some(table) = case.as_table_mut() {
                if let Some(unknown) = table.keys().find(|k| !CASE_KEYS.contains(&k.as_str())) {
                    return Err(SuiteError::Invalid {
                        suite: origin.to_owned(),
                        detail: format!(
                            "case `{}`: unknown key `{unknown}`",
                            table.get("id").and_then(|v| v.as_str()).unwrap_or("?")
                        ),
                    });
                }
                // A finding case's judge is named by its id: bind it.
                if table.get("kind").and_then(|k| k.as_str()) == Some("finding")
                    && let Some(id) = table.get("id").cloned()
                {
                    table.insert("case".to_owned(), id);
                }
            }
        }
        let raw_cases = raw_cases.clone();
        let suite: Suite = toml::Value::Table(raw)
            .try_into()
            .map_err(|e: toml::de::Error| {
                SuiteError::Invalid {
                    suite: origin.to_owned(),
                    // Name the case at fault, when it is one case's value (an unknown TLS version, ...).
                    detail: raw_cases
                        .iter()
                        .find_map(|case| {
                            let id = case.get("id").and_then(|v| v.as_str()).unwrap_or("?");
                            let error = case.clone().try_into::<Case>().err()?;
                            Some(format!("case `{id}`: {}", error.to_string().trim_end()))
                        })
                        .unwrap_or_else(|| e.to_string()),
                }
            })?;
        let mut seen = std::collections::HashSet::new();
        for case in &suite.cases {
            let bad = |detail: String| SuiteError::Invalid {
                suite: origin.to_owned(),
                detail: format!("case `{}`: {detail}", case.id),
            };
            if !seen.insert(case.id.clone()) {
                return Err(bad("duplicate id".into()));
            }
            for v in &case.versions {
                let modern = matches!(v, TlsVersion::Tls12 | TlsVersion::Tls13);
                // A legacy version's client authentication is read from its cleartext flight:
                // only for the refusal without a certificate.
                let fits = match case.kind {
                    CaseKind::LegacyHello => !modern,
                    CaseKind::Handshake {
                        present: Presented::None,
                        expect: Expect::Rejected,
                    } => true,
                    _ => modern,
                };
                if !fits {
                    return Err(bad(format!("version `{v}` does not fit this kind of case")));
                }
            }
            if matches!(
                case.kind,
                CaseKind::Handshake { .. } | CaseKind::LegacyHello
            ) && case.versions.is_empty()
            {
                return Err(bad("needs `versions`".into()));
            }
            for v in case.alerts.keys() {
                if !case.versions.contains(v) {
                    return Err(bad(format!(
                        "alert pinned for version `{v}` that the case does not run"
                    )));
                }
            }
            for control in &case.controls {
                crate::controls::check_mapping(
                    crate::controls::catalogue(),
                    &case.evidence,
                    control,
                )
                .map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(suite)
    }

    /// Loads a built-in suite by name, or a suite file by path.
    pub fn load(name_or_path: &str) -> Result<Self, SuiteError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::parse(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") {
            let text = crate::fsio::read_regular_text(path).map_err(|source| SuiteError::Io {
                path: name_or_path.to_owned(),
                source,
            })?;
            return Self::parse(&text, name_or_path);
        }
        Err(SuiteError::Unknown {
            name: name_or_path.to_owned(),
        })
    }

    /// Expands cases into checks (one per TLS version where versions are given).
    pub fn checks(&self) -> Vec<Check> {
        let mut out = Vec::new();
        for case in &self.cases {
            if case.versions.is_empty() {
                out.push(Check {
                    id: case.id.clone(),
                    suite: self.name.clone(),
                    case: case.clone(),
                    version: None,
                });
            }
            for &version in &case.versions {
                out.push(Check {
                    id: format!("{}/{}", case.id, version.id()),
                    suite: self.name.clone(),
                    case: case.clone(),
                    version: Some(version),
                });
            }
        }
        out
    }
}

/// A case judged on what a Kubernetes target observed (kind `finding` in a suite): each is one
/// judge's, and a suite binds it by its id when it is read, so a case id no judge answers is
/// refused at load and a judge names its case by this type, never by a copied string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KubeCase {
    /// `baseline/no-cert-accepted-before-mtls`.
    BaselineNoCertAccepted,
    /// `config/mtls-secret-keys`.
    MtlsSecretKeys,
    /// `config/mtls-client-pair`.
    MtlsClientPair,
    /// `config/client-ca-parses`.
    ClientCaParses,
    /// `config/client-cert-chains`.
    ClientCertChains,
    /// `config/client-key-matches`.
    ClientKeyMatches,
    /// `config/client-identities`.
    ClientIdentities,
    /// `config/cert-not-expired`.
    CertNotExpired,
    /// `config/cert-expiry-horizon`.
    CertExpiryHorizon,
    /// `config/server-ca-present`.
    ServerCaPresent,
    /// `config/mtls-secret-extra-keys`.
    MtlsSecretExtraKeys,
    /// `config/mount`.
    Mount,
    /// `config/repo-server-tls`.
    RepoServerTls,
    /// `config/restarted-after-secret`.
    RestartedAfterSecret,
    /// `config/client-restarted-after-secret`.
    ClientRestartedAfterSecret,
    /// `config/client-verifies-server`.
    ClientVerifiesServer,
    /// `log/client-cert-loaded`.
    ClientCertLoaded,
    /// `client/reaches-repo-server`.
    ClientReachesRepoServer,
    /// `log/client-handshake-errors`.
    ClientHandshakeErrors,
    /// `pod/ready`.
    PodReady,
    /// `pod/restarts-unchanged`.
    PodRestartsUnchanged,
    /// `pod/no-probe-failures`.
    PodNoProbeFailures,
    /// `transport/port-forward`.
    PortForward,
    /// `transport/peer-is-repo-server`.
    PeerIsRepoServer,
    /// `config/mesh`.
    Mesh,
    /// `network/intruder-refused`.
    IntruderRefused,
    /// `network/policy-enforced`.
    PolicyEnforced,
}

impl KubeCase {
    /// Every Kubernetes case, in the built-in suite's order.
    pub const ALL: [KubeCase; 27] = [
        KubeCase::BaselineNoCertAccepted,
        KubeCase::MtlsSecretKeys,
        KubeCase::MtlsClientPair,
        KubeCase::ClientCaParses,
        KubeCase::ClientCertChains,
        KubeCase::ClientKeyMatches,
        KubeCase::ClientIdentities,
        KubeCase::CertNotExpired,
        KubeCase::CertExpiryHorizon,
        KubeCase::ServerCaPresent,
        KubeCase::MtlsSecretExtraKeys,
        KubeCase::Mount,
        KubeCase::RepoServerTls,
        KubeCase::RestartedAfterSecret,
        KubeCase::ClientRestartedAfterSecret,
        KubeCase::ClientVerifiesServer,
        KubeCase::ClientCertLoaded,
        KubeCase::ClientReachesRepoServer,
        KubeCase::ClientHandshakeErrors,
        KubeCase::PodReady,
        KubeCase::PodRestartsUnchanged,
        KubeCase::PodNoProbeFailures,
        KubeCase::PeerIsRepoServer,
        KubeCase::Mesh,
        KubeCase::PortForward,
        KubeCase::IntruderRefused,
        KubeCase::PolicyEnforced,
    ];

    /// The case's id in a suite (its results' ids are this, or this and `/<subject>`).
    pub fn id(self) -> &'static str {
        match self {
            KubeCase::BaselineNoCertAccepted => "baseline/no-cert-accepted-before-mtls",
            KubeCase::MtlsSecretKeys => "config/mtls-secret-keys",
            KubeCase::MtlsClientPair => "config/mtls-client-pair",
            KubeCase::ClientCaParses => "config/client-ca-parses",
            KubeCase::ClientCertChains => "config/client-cert-chains",
            KubeCase::ClientKeyMatches => "config/client-key-matches",
            KubeCase::ClientIdentities => "config/client-identities",
            KubeCase::CertNotExpired => "config/cert-not-expired",
            KubeCase::CertExpiryHorizon => "config/cert-expiry-horizon",
            KubeCase::ServerCaPresent => "config/server-ca-present",
            KubeCase::MtlsSecretExtraKeys => "config/mtls-secret-extra-keys",
            KubeCase::Mount => "config/mount",
            KubeCase::RepoServerTls => "config/repo-server-tls",
            KubeCase::RestartedAfterSecret => "config/restarted-after-secret",
            KubeCase::ClientRestartedAfterSecret => "config/client-restarted-after-secret",
            KubeCase::ClientVerifiesServer => "config/client-verifies-server",
            KubeCase::ClientCertLoaded => "log/client-cert-loaded",
            KubeCase::ClientReachesRepoServer => "client/reaches-repo-server",
            KubeCase::ClientHandshakeErrors => "log/client-handshake-errors",
            KubeCase::PodReady => "pod/ready",
            KubeCase::PodRestartsUnchanged => "pod/restarts-unchanged",
            KubeCase::PodNoProbeFailures => "pod/no-probe-failures",
            KubeCase::PortForward => "transport/port-forward",
            KubeCase::PeerIsRepoServer => "transport/peer-is-repo-server",
            KubeCase::Mesh => "config/mesh",
            KubeCase::IntruderRefused => "network/intruder-refused",
            KubeCase::PolicyEnforced => "network/policy-enforced",
        }
    }

    /// The case a suite id names, if a judge answers it.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }
}

impl std::fmt::Display for KubeCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for KubeCase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for KubeCase {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = String::deserialize(d)?;
        Self::from_id(&id).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "no Kubernetes judge answers the id `{id}` (a `finding` case's id names its judge: one of the built-in kubernetes suite's ids)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in case names its spec and what it proves; its controls passed the mapping
    /// rule when it was read.
    #[test]
    fn builtin_suites_parse_and_declare_their_evidence() {
        for (name, _) in BUILTIN {
            let suite = Suite::load(name).unwrap();
            for case in &suite.cases {
                assert!(
                    !case.spec.is_empty(),
                    "{name}/{}: every built-in case names its spec",
                    case.id
                );
                assert!(
                    !case.evidence.is_empty(),
                    "{name}/{}: every built-in case says what it proves",
                    case.id
                );
            }
        }
    }

    #[test]
    fn invalid_suites_are_refused_with_the_case_named() {
        let base = r#"name = "t"
title = "t"
"#;
        // Every row's first case starts so; the row adds what is wrong with it.
        let case_a = r#"[[case]]
id = "a"
title = "t"
action = "a"
requirement = "r"
"#;
        let cases = [
            (
                r#"kind = "handshake"
present = "none"
expect = "rejected"
versions = ["1.2"]
expct = "typo""#,
                "unknown key `expct`",
            ),
            (
                r#"kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.1"]"#,
                "does not fit",
            ),
            (
                r#"kind = "handshake"
present = "none"
expect = "accepted"
versions = ["1.0"]"#,
                "does not fit",
            ),
            (
                r#"kind = "handshake"
present = "none"
expect = "rejected""#,
                "needs `versions`",
            ),
            (
                r#"kind = "plaintext-h2c"
[[case]]
id = "a"
title = "t"
action = "a"
requirement = "r"
kind = "plaintext-h2c""#,
                "duplicate id",
            ),
            (
                r#"kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.3"]
alerts = { "1.2" = "unknown_ca" }"#,
                "alert pinned for version `tls1.2`",
            ),
            (
                r#"kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.3"]
alerts = { "1.3" = "unknown-ca" }"#,
                "unknown TLS alert `unknown-ca`",
            ),
            (
                r#"kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.3", "1.4"]"#,
                "unknown TLS version `1.4`",
            ),
            (
                r#"kind = "server-identity"
evidence = ["server-authentication"]
controls = ["SOC2-CC6.6"]"#,
                "does not apply here",
            ),
            (
                r#"kind = "server-identity"
evidence = ["server-authentication"]
controls = ["PCI-DSS-4.0-12.3.3"]"#,
                "accepts evidence of cryptographic-protocols",
            ),
            (
                r#"kind = "server-identity"
controls = ["NIST-800-53-SC-23"]"#,
                "this case proves nothing",
            ),
            (
                r#"kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.3"]
alerts = { "1.5" = "unknown_ca" }"#,
                "unknown TLS version `1.5`",
            ),
        ];
        for (text, needle) in cases {
            let err = Suite::parse(&format!("{base}{case_a}{text}"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(needle) && err.contains("case `a`"),
                "`{needle}` not in `{err}`"
            );
        }
    }

    #[test]
    fn pinned_alerts_resolve_in_any_spelling() {
        let text = r#"name = "t"
title = "t"
[[case]]
id = "a"
title = "t"
action = "a"
requirement = "r"
kind = "handshake"
present = "wrong-ca"
expect = "rejected"
versions = ["1.2", "tls1.3"]
alerts = { "TLSv1.3" = "unknown_ca" }
"#;
        let suite = Suite::parse(text, "t.toml").unwrap();
        assert_eq!(
            suite.cases[0].pinned_alert(TlsVersion::Tls13),
            Some(Alert(48))
        );
        assert_eq!(suite.cases[0].pinned_alert(TlsVersion::Tls12), None);
    }

    /// Every judge's case is in the built-in suite once, bound to it; a `finding` case whose id
    /// no judge answers is refused when the suite is read.
    #[test]
    fn kubernetes_cases_are_bound_by_id() {
        let bound: Vec<KubeCase> = ["kubernetes", "in-cluster"]
            .into_iter()
            .flat_map(|name| Suite::load(name).unwrap().cases)
            .map(|c| match c.kind {
                CaseKind::Finding { case } => {
                    assert_eq!(case.id(), c.id);
                    case
                }
                other => panic!("{}: {other:?}", c.id),
            })
            .collect();
        assert_eq!(bound, KubeCase::ALL);
        let err = Suite::parse(
            r#"name = "t"
title = "t"
[[case]]
id = "config/mounts"
title = "t"
action = "a"
requirement = "r"
kind = "finding"
"#,
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("case `config/mounts`") && err.contains("no Kubernetes judge answers"),
            "{err}"
        );
    }

    #[test]
    fn checks_expand_per_version() {
        let suite = Suite::load("endpoint").unwrap();
        let ids: Vec<String> = suite.checks().into_iter().map(|c| c.id).collect();
        assert!(ids.contains(&"handshake/no-client-cert/tls1.2".to_owned()));
        assert!(ids.contains(&"tls/versions/tls1.0".to_owned()));
        assert!(ids.contains(&"server/identity".to_owned()));
        // The refusal without a certificate under TLS 1.0 and 1.1 too (read from the flight).
        assert!(ids.contains(&"handshake/no-client-cert/tls1.0".to_owned()));
        assert_eq!(ids.len(), 43);
    }
}
