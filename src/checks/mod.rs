//! The checks. Two steps, kept apart: [`observe`] runs every probe the selected checks need
//! (concurrently, bounded) and [`evaluate`] judges each check against those observations. A
//! negative handshake proves nothing without the positive control on the same endpoint and TLS
//! version, so the valid client is always observed, even when its own check is filtered out.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;

use crate::grpc::{self, CallError, GrpcTarget, HealthAnswer, NoCertRpc};
use crate::pki::{self, Adversary, Identity, ProbePki};
use crate::probe::{self, AcceptanceProof, Outcome, ProbeOutcome, ProbeRequest, TlsVersion};
use crate::report::{CheckResult, Verdict};
use crate::suite::{CaseKind, Check, Expect, Presented};
use crate::target::audit::Finding;
use crate::target::{Endpoint, HttpAnswer, Protocol, logrus_message};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Per-attempt time limit.
    pub timeout: Duration,
    /// Grace period for plain-TLS 1.3 acceptance.
    pub grace: Duration,
    /// At most this many attempts at once.
    pub concurrency: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            timeout: Duration::from_secs(5),
            grace: Duration::from_millis(300),
            concurrency: 16,
        }
    }
}

/// Everything observed at one endpoint.
#[derive(Debug, Default)]
pub struct Observations {
    /// Handshake attempts by (presented label, version).
    pub handshakes: HashMap<(String, TlsVersion), ProbeOutcome>,
    /// Identities that could not be minted, with the reason.
    pub unavailable: HashMap<String, String>,
    /// Legacy ClientHello attempts.
    pub legacy: HashMap<TlsVersion, ProbeOutcome>,
    /// Plaintext h2c attempt.
    pub plaintext: Option<ProbeOutcome>,
    /// Health/Check with the valid client, per version.
    pub grpc_health: HashMap<TlsVersion, Result<HealthAnswer, CallError>>,
    /// VersionService answer.
    pub grpc_version: Option<Result<serde_json::Value, CallError>>,
    /// RPC without a certificate.
    pub no_cert_rpc: Option<NoCertRpc>,
    /// HTTP answers by path.
    pub http: HashMap<String, Result<HttpAnswer, String>>,
    /// The log lines, or why they could not be read.
    pub logs: Option<Result<Vec<String>, String>>,
    /// Wall time of the observation phase, ms.
    pub elapsed_ms: f64,
}

fn identity_for(
    presented: Presented,
    pki: &ProbePki,
    minted: &HashMap<Adversary, Result<Identity, String>>,
) -> Result<Option<Identity>, String> {
    match presented {
        Presented::None => Ok(None),
        Presented::Client => Ok(Some(pki.client.clone())),
        Presented::Adversary(a) => minted
            .get(&a)
            .cloned()
            .unwrap_or_else(|| Err("not minted".into()))
            .map(Some),
    }
}

/// Versions under which the valid client is the positive control: every version any handshake
/// check in `checks` runs under.
fn control_versions(checks: &[Check]) -> BTreeSet<TlsVersion> {
    let mut versions = BTreeSet::new();
    for check in checks {
        match check.case.kind {
            CaseKind::Handshake { .. } => versions.extend(check.version),
            // Judged on an authenticated TLS 1.3 (fallback 1.2) connection.
            CaseKind::ServerIdentity
            | CaseKind::GrpcHealth
            | CaseKind::GrpcVersion
            | CaseKind::GrpcNoCertRpc => versions.extend([TlsVersion::Tls12, TlsVersion::Tls13]),
            _ => {}
        }
    }
    versions
}

/// Runs every probe the checks need against `endpoint`.
pub async fn observe(
    endpoint: &Endpoint,
    pki: &ProbePki,
    checks: &[Check],
    settings: &ProbeSettings,
) -> Observations {
    let started = std::time::Instant::now();
    let mut obs = Observations::default();
    let grpc = endpoint.protocol == Protocol::Grpc;
    let proof = if grpc {
        AcceptanceProof::H2Settings
    } else {
        AcceptanceProof::Grace
    };

    // Which (identity, version) handshakes: the checks' own, plus the positive controls.
    let mut wanted: BTreeSet<(String, TlsVersion)> = BTreeSet::new();
    let mut presented_by_label: HashMap<String, Presented> = HashMap::new();
    let controls = control_versions(checks);
    for &v in &controls {
        wanted.insert(("client".into(), v));
        presented_by_label.insert("client".into(), Presented::Client);
    }
    for c in checks {
        if let (CaseKind::Handshake { present, .. }, Some(v)) = (&c.case.kind, c.version) {
            wanted.insert((present.label().to_owned(), v));
            presented_by_label.insert(present.label().to_owned(), *present);
        }
    }
    let mut minted: HashMap<Adversary, Result<Identity, String>> = HashMap::new();
    for presented in presented_by_label.values() {
        if let Presented::Adversary(a) = presented {
            minted
                .entry(*a)
                .or_insert_with(|| pki::mint(pki, *a).map_err(|e| e.to_string()));
        }
    }
    let mut requests = Vec::new();
    let mut keys = Vec::new();
    for (label, version) in &wanted {
        match identity_for(presented_by_label[label], pki, &minted) {
            Ok(identity) => {
                keys.push((label.clone(), *version));
                requests.push(ProbeRequest {
                    addr: endpoint.addr,
                    server_name: endpoint.server_name.clone(),
                    version: *version,
                    identity,
                    server_roots: pki.server_ca.clone(),
                    proof,
                    timeout: settings.timeout,
                    grace: settings.grace,
                });
            }
            Err(reason) => {
                obs.unavailable.insert(label.clone(), reason);
            }
        }
    }

    let wants = |f: &dyn Fn(&CaseKind) -> bool| checks.iter().any(|c| f(&c.case.kind));
    let legacy_versions: Vec<TlsVersion> = checks
        .iter()
        .filter(|c| matches!(c.case.kind, CaseKind::LegacyHello))
        .filter_map(|c| c.version)
        .collect();
    let want_plaintext = wants(&|k| matches!(k, CaseKind::PlaintextH2c));
    let grpc_target = |version| GrpcTarget {
        addr: endpoint.addr,
        server_name: endpoint.server_name.clone(),
        identity: Some(pki.client.clone()),
        server_roots: pki.server_ca.clone(),
        version,
        timeout: settings.timeout,
    };
    let health_versions: Vec<TlsVersion> = if grpc {
        controls.iter().copied().collect()
    } else {
        vec![]
    };
    let want_version = grpc && wants(&|k| matches!(k, CaseKind::GrpcVersion));
    let want_no_cert = grpc && wants(&|k| matches!(k, CaseKind::GrpcNoCertRpc));
    let http_paths: Vec<String> = checks
        .iter()
        .filter_map(|c| match &c.case.kind {
            CaseKind::HttpProbe { path } => Some(path.clone()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let handshakes = probe::attempt_all(requests, settings.concurrency);
    let legacy = futures::future::join_all(legacy_versions.iter().map(|v| {
        probe::legacy::attempt(endpoint.addr, &endpoint.server_name, *v, settings.timeout)
    }));
    let plaintext = async {
        if want_plaintext {
            Some(probe::plaintext::attempt(endpoint.addr, settings.timeout).await)
        } else {
            None
        }
    };
    let health = futures::future::join_all(health_versions.iter().map(|v| {
        let t = grpc_target(*v);
        async move { grpc::health_check(&t).await.map_err(CallError::from) }
    }));
    let version = async {
        if !want_version {
            return None;
        }
        let mut last = None;
        for v in [TlsVersion::Tls13, TlsVersion::Tls12] {
            match grpc::version(&grpc_target(v)).await {
                Ok(msg) => return Some(Ok(version_json(&msg))),
                Err(e) => last = Some(Err(CallError::from(e))),
            }
        }
        last
    };
    let no_cert = async {
        if !want_no_cert {
            return None;
        }
        let first = grpc::no_cert_rpc(&grpc_target(TlsVersion::Tls13)).await;
        match &first {
            // A server without TLS 1.3 refuses the version, not the client: retry under 1.2.
            NoCertRpc::RefusedInHandshake { connection }
                if connection.alert.as_deref() == Some("protocol_version") =>
            {
                Some(grpc::no_cert_rpc(&grpc_target(TlsVersion::Tls12)).await)
            }
            _ => Some(first),
        }
    };
    let http = futures::future::join_all(http_paths.iter().map(|path| {
        let health = endpoint.health.clone();
        let timeout = settings.timeout;
        async move {
            match health {
                Some(authority) => Some(crate::target::http_get(&authority, path, timeout).await),
                None => None,
            }
        }
    }));
    let (handshakes, legacy, plaintext, health, version, no_cert, http) = tokio::join!(
        handshakes, legacy, plaintext, health, version, no_cert, http
    );

    obs.handshakes = keys.into_iter().zip(handshakes).collect();
    obs.legacy = legacy_versions.into_iter().zip(legacy).collect();
    obs.plaintext = plaintext;
    obs.grpc_health = health_versions.into_iter().zip(health).collect();
    obs.grpc_version = version;
    obs.no_cert_rpc = no_cert;
    obs.http = http_paths
        .into_iter()
        .zip(http)
        .filter_map(|(p, a)| a.map(|a| (p, a)))
        .collect();
    if wants(&|k| matches!(k, CaseKind::LogLine { .. })) {
        obs.logs = endpoint.logs.as_ref().map(|l| l.read());
    }
    obs.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    obs
}

fn version_json(msg: &crate::version_proto::VersionMessage) -> serde_json::Value {
    json!({
        "version": msg.version, "build_date": msg.build_date, "git_commit": msg.git_commit,
        "git_tag": msg.git_tag, "git_tree_state": msg.git_tree_state, "go_version": msg.go_version,
        "compiler": msg.compiler, "platform": msg.platform, "kustomize_version": msg.kustomize_version,
        "helm_version": msg.helm_version, "kubectl_version": msg.kubectl_version,
        "jsonnet_version": msg.jsonnet_version, "extra_build_info": msg.extra_build_info,
    })
}

/// A verdict with its one-line reason, observation and evidence.
struct Judgement {
    verdict: Verdict,
    reason: String,
    observed: serde_json::Value,
    evidence: Vec<String>,
    duration_ms: f64,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            reason: reason.into(),
            observed: serde_json::Value::Null,
            evidence: vec![],
            duration_ms: 0.0,
        }
    }
    fn observed(mut self, v: serde_json::Value) -> Self {
        self.observed = v;
        self
    }
    fn evidence(mut self, e: Vec<String>) -> Self {
        self.evidence = e;
        self
    }
}

fn attempt_evidence(o: &ProbeOutcome) -> Vec<String> {
    let mut e = vec![format!(
        "{} presenting `{}`: {:?} at stage {:?} ({})",
        o.requested_version,
        o.presented.as_deref().unwrap_or("no certificate"),
        o.outcome,
        o.stage,
        o.detail
    )];
    if let Some(a) = &o.alert {
        e.push(format!("alert received: {a}"));
    }
    if let (Some(v), Some(c)) = (&o.tls_version, &o.cipher_suite) {
        e.push(format!("negotiated {v} with {c}"));
    }
    if o.client_cert_requested {
        e.push(format!(
            "server sent a CertificateRequest naming CAs: {}",
            if o.acceptable_ca_names.is_empty() {
                "(none listed)".to_owned()
            } else {
                o.acceptable_ca_names.join("; ")
            }
        ));
    } else if o.stage != probe::Stage::Tcp {
        e.push("server did not request a client certificate".into());
    }
    e
}

/// Whether the server refused TLS version `v` itself (so checks under `v` do not apply).
fn version_unsupported(obs: &Observations, v: TlsVersion) -> bool {
    obs.handshakes
        .get(&("client".to_owned(), v))
        .is_some_and(|o| o.alert.as_deref() == Some("protocol_version"))
}

/// The valid client's positive control under `v`: `Ok(())` if it was admitted.
fn positive_control(obs: &Observations, v: TlsVersion, grpc: bool) -> Result<(), String> {
    let Some(o) = obs.handshakes.get(&("client".to_owned(), v)) else {
        return Err(format!("the valid client was not tried under {v}"));
    };
    if o.outcome != Outcome::Accepted {
        return Err(format!(
            "the valid client was not admitted under {v} ({:?}: {})",
            o.outcome, o.detail
        ));
    }
    if grpc {
        match obs.grpc_health.get(&v) {
            Some(Ok(a)) if a.status == "SERVING" => {}
            Some(Ok(a)) => return Err(format!("Health/Check under {v} answered {}", a.status)),
            Some(Err(e)) => return Err(format!("Health/Check under {v} failed: {e}")),
            None => return Err(format!("Health/Check was not tried under {v}")),
        }
    }
    Ok(())
}

/// The version to judge connection-level checks on: 1.3 when the server speaks it, else 1.2.
fn preferred_version(obs: &Observations) -> TlsVersion {
    if version_unsupported(obs, TlsVersion::Tls13) {
        TlsVersion::Tls12
    } else {
        TlsVersion::Tls13
    }
}

fn judge_handshake(
    check: &Check,
    present: Presented,
    expect: Expect,
    obs: &Observations,
    grpc: bool,
) -> Judgement {
    let v = check.version.expect("handshake checks are per version");
    if let Some(reason) = obs.unavailable.get(present.label()) {
        return Judgement::new(
            Verdict::Skip,
            format!("identity `{}` not available: {reason}", present.label()),
        );
    }
    if version_unsupported(obs, v) {
        return Judgement::new(
            Verdict::Skip,
            format!("the server does not offer {v} (protocol_version alert to the valid client)"),
        );
    }
    let Some(o) = obs.handshakes.get(&(present.label().to_owned(), v)) else {
        return Judgement::new(Verdict::Error, "attempt was not run");
    };
    let mut evidence = attempt_evidence(o);
    let observed = json!({ "attempt": o, "grpc_health": obs.grpc_health.get(&v).map(|r| match r {
        Ok(a) => json!({"status": a.status, "rpc_us": a.rpc_us}),
        Err(e) => json!({"error": e}),
    })});
    let mut j = match expect {
        Expect::Rejected => {
            let control = positive_control(obs, v, grpc);
            match (o.outcome, control) {
                (Outcome::Accepted, _) => {
                    Judgement::new(Verdict::Fail, format!("ACCEPTED: {}", o.detail))
                }
                (Outcome::Rejected, Ok(())) => {
                    let how = match (&o.alert, o.reset) {
                        (Some(a), _) => format!("alert `{a}`"),
                        (None, true) => "connection reset/closed".to_owned(),
                        (None, false) => "refused".to_owned(),
                    };
                    match check.case.pinned_alert(v) {
                        Some(want) if o.alert.as_deref() != Some(want) => Judgement::new(
                            Verdict::Fail,
                            format!("rejected with {how}, but the suite pins alert `{want}`"),
                        ),
                        _ => Judgement::new(
                            Verdict::Pass,
                            format!(
                                "rejected at {:?} with {how}; the valid client was admitted on the same endpoint",
                                o.stage
                            ),
                        ),
                    }
                }
                (Outcome::Rejected, Err(why)) => Judgement::new(
                    Verdict::Error,
                    format!(
                        "inconclusive: rejected, but the positive control failed ({why}), so the refusal proves nothing"
                    ),
                ),
                (Outcome::Inconclusive, _) => {
                    Judgement::new(Verdict::Error, format!("inconclusive: {}", o.detail))
                }
                (Outcome::Error, _) => {
                    Judgement::new(Verdict::Error, format!("could not classify: {}", o.detail))
                }
            }
        }
        Expect::Accepted => match o.outcome {
            Outcome::Accepted if !grpc => {
                Judgement::new(Verdict::Pass, format!("accepted: {}", o.detail))
            }
            Outcome::Accepted => match obs.grpc_health.get(&v) {
                Some(Ok(a)) if a.status == "SERVING" => {
                    evidence.push(format!(
                        "grpc.health.v1.Health/Check under {v}: SERVING in {} µs",
                        a.rpc_us
                    ));
                    Judgement::new(
                        Verdict::Pass,
                        format!(
                            "admitted (HTTP/2 SETTINGS seen) and Health/Check answered SERVING under {v}"
                        ),
                    )
                }
                Some(Ok(a)) => Judgement::new(
                    Verdict::Fail,
                    format!("admitted, but Health/Check answered {}", a.status),
                ),
                Some(Err(e)) if e.inconclusive => Judgement::new(
                    Verdict::Error,
                    format!("admitted, but Health/Check was inconclusive: {e}"),
                ),
                Some(Err(e)) => Judgement::new(
                    Verdict::Fail,
                    format!("admitted, but Health/Check failed: {e}"),
                ),
                None => Judgement::new(Verdict::Error, "Health/Check was not run"),
            },
            Outcome::Rejected => Judgement::new(
                Verdict::Fail,
                format!("REFUSED the legitimate client: {}", o.detail),
            ),
            Outcome::Error => Judgement::new(
                Verdict::Fail,
                format!("no TLS connection for the legitimate client: {}", o.detail),
            ),
            Outcome::Inconclusive => {
                Judgement::new(Verdict::Error, format!("inconclusive: {}", o.detail))
            }
        },
    };
    j.duration_ms = o.timings.total_us as f64 / 1000.0;
    j.observed(observed).evidence(evidence)
}

fn judge_expect_refusal(o: &ProbeOutcome, what: &str) -> Judgement {
    let verdict = match o.outcome {
        Outcome::Rejected => Verdict::Pass,
        Outcome::Accepted => Verdict::Fail,
        Outcome::Inconclusive | Outcome::Error => Verdict::Error,
    };
    let reason = match verdict {
        Verdict::Pass => format!("{what} refused: {}", o.detail),
        Verdict::Fail => format!("{what} ACCEPTED: {}", o.detail),
        _ => format!("inconclusive: {}", o.detail),
    };
    let mut j = Judgement::new(verdict, reason)
        .observed(json!({ "attempt": o }))
        .evidence(attempt_evidence(o));
    j.duration_ms = o.timings.total_us as f64 / 1000.0;
    j
}

/// Judges one check against the observations.
pub fn evaluate(check: &Check, obs: &Observations, endpoint: &Endpoint) -> CheckResult {
    let grpc = endpoint.protocol == Protocol::Grpc;
    let expected = expected_text(&check.case.kind);
    let j = if check.case.grpc_only && !grpc {
        Judgement::new(
            Verdict::Skip,
            "gRPC check; the endpoint was probed with --protocol tls",
        )
    } else {
        judge(check, obs, endpoint, grpc)
    };
    CheckResult {
        id: check.id.clone(),
        title: check.case.title.clone(),
        suite: check.suite.clone(),
        action: check.case.action.clone(),
        requirement: check.case.requirement.clone(),
        severity: check.case.severity,
        controls: check.case.controls.clone(),
        verdict: j.verdict,
        expected,
        reason: j.reason,
        observed: j.observed,
        evidence: j.evidence,
        duration_ms: j.duration_ms,
        endpoint: endpoint.label.clone(),
    }
}

fn expected_text(kind: &CaseKind) -> String {
    match kind {
        CaseKind::Handshake {
            expect: Expect::Rejected,
            ..
        } => "rejected (alert or reset) before any application data".into(),
        CaseKind::Handshake {
            expect: Expect::Accepted,
            ..
        } => "accepted, and gRPC Health/Check answers SERVING".into(),
        CaseKind::LegacyHello => "the legacy-only ClientHello is refused".into(),
        CaseKind::PlaintextH2c => "no HTTP/2 answer without TLS".into(),
        CaseKind::ServerIdentity => {
            "the server chain verifies against the server CA for the server name".into()
        }
        CaseKind::GrpcHealth => "SERVING".into(),
        CaseKind::GrpcVersion => "VersionService answers with the build".into(),
        CaseKind::GrpcNoCertRpc => "the RPC fails before any response".into(),
        CaseKind::HttpProbe { path } => format!("GET {path} answers 200"),
        CaseKind::LogLine { prefix } => format!("a log line starting `{prefix}`"),
        CaseKind::Finding => "the Kubernetes objects, pods and logs hold as required".into(),
    }
}

fn judge(check: &Check, obs: &Observations, endpoint: &Endpoint, grpc: bool) -> Judgement {
    match &check.case.kind {
        CaseKind::Finding => Judgement::new(
            Verdict::Skip,
            "judged on Kubernetes objects, pods and logs: needs --target kind or --target cluster",
        ),
        CaseKind::Handshake { present, expect } => {
            judge_handshake(check, *present, *expect, obs, grpc)
        }
        CaseKind::LegacyHello => {
            let v = check.version.expect("legacy checks are per version");
            match obs.legacy.get(&v) {
                Some(o) => judge_expect_refusal(o, &format!("{v} ClientHello")),
                None => Judgement::new(Verdict::Error, "attempt was not run"),
            }
        }
        CaseKind::PlaintextH2c => match &obs.plaintext {
            Some(o) => judge_expect_refusal(o, "plaintext HTTP/2"),
            None => Judgement::new(Verdict::Error, "attempt was not run"),
        },
        CaseKind::ServerIdentity => {
            let v = preferred_version(obs);
            match obs.handshakes.get(&("client".to_owned(), v)) {
                Some(o) if o.server_chain.sha256.is_empty() => Judgement::new(
                    Verdict::Error,
                    format!("no server certificate was seen ({})", o.detail),
                ),
                Some(o) => {
                    let chain = &o.server_chain;
                    let mut evidence = vec![format!(
                        "presented chain (leaf first): {}",
                        chain.subjects.join(" <- ")
                    )];
                    evidence.extend(chain.sha256.iter().map(|f| format!("sha256 {f}")));
                    let j = match chain.verified {
                        Some(true) => Judgement::new(
                            Verdict::Pass,
                            format!("the chain verifies for `{}`", endpoint.server_name),
                        ),
                        Some(false) => Judgement::new(
                            Verdict::Fail,
                            format!(
                                "the chain does NOT verify for `{}`: {}",
                                endpoint.server_name,
                                chain.verify_error.clone().unwrap_or_default()
                            ),
                        ),
                        None => Judgement::new(Verdict::Skip, "no server CA configured"),
                    };
                    j.observed(json!({ "server_chain": chain, "tls_version": o.tls_version }))
                        .evidence(evidence)
                }
                None => Judgement::new(Verdict::Error, "no valid-client handshake was run"),
            }
        }
        CaseKind::GrpcHealth => {
            let v = preferred_version(obs);
            match obs.grpc_health.get(&v) {
                Some(Ok(a)) if a.status == "SERVING" => Judgement::new(
                    Verdict::Pass,
                    format!("SERVING under {v} in {} µs", a.rpc_us),
                )
                .observed(json!(a)),
                Some(Ok(a)) => Judgement::new(Verdict::Fail, format!("answered {}", a.status))
                    .observed(json!(a)),
                Some(Err(e)) if e.inconclusive => {
                    Judgement::new(Verdict::Error, format!("inconclusive: {e}"))
                }
                Some(Err(e)) => {
                    Judgement::new(Verdict::Fail, format!("the authenticated call failed: {e}"))
                }
                None => Judgement::new(Verdict::Error, "Health/Check was not run"),
            }
        }
        CaseKind::GrpcVersion => match &obs.grpc_version {
            Some(Ok(v)) => Judgement::new(
                Verdict::Pass,
                format!(
                    "build `{}`",
                    v.get("version").and_then(|s| s.as_str()).unwrap_or("?")
                ),
            )
            .observed(v.clone()),
            Some(Err(e)) if e.message.contains("Unimplemented") => {
                Judgement::new(Verdict::Skip, "the server has no version.VersionService")
            }
            Some(Err(e)) if e.inconclusive => {
                Judgement::new(Verdict::Error, format!("inconclusive: {e}"))
            }
            Some(Err(e)) => {
                Judgement::new(Verdict::Fail, format!("VersionService call failed: {e}"))
            }
            None => Judgement::new(Verdict::Error, "VersionService was not called"),
        },
        CaseKind::GrpcNoCertRpc => {
            let control = positive_control(obs, preferred_version(obs), true);
            match (&obs.no_cert_rpc, control) {
                (Some(NoCertRpc::Answered { answer, connection }), _) => Judgement::new(
                    Verdict::Fail,
                    format!("the server ANSWERED an unauthenticated RPC: {answer}"),
                )
                .observed(json!(obs.no_cert_rpc))
                .evidence(attempt_evidence(connection)),
                (Some(NoCertRpc::Inconclusive { reason }), _) => {
                    Judgement::new(Verdict::Error, format!("inconclusive: {reason}"))
                }
                (Some(r), Ok(())) => {
                    let (reason, connection) = match r {
                        NoCertRpc::RefusedInHandshake { connection } => (
                            "refused during the handshake; the RPC was never sent".to_owned(),
                            connection,
                        ),
                        NoCertRpc::DiedBeforeResponse { connection, error } => (
                            format!("the connection died before any response: {error}"),
                            connection,
                        ),
                        _ => unreachable!("handled above"),
                    };
                    Judgement::new(Verdict::Pass, reason)
                        .observed(json!(r))
                        .evidence(attempt_evidence(connection))
                }
                (Some(_), Err(why)) => Judgement::new(
                    Verdict::Error,
                    format!(
                        "inconclusive: the RPC failed, but so does the positive control ({why})"
                    ),
                ),
                (None, _) => Judgement::new(Verdict::Error, "the RPC was not attempted"),
            }
        }
        CaseKind::HttpProbe { path } => match (&endpoint.health, obs.http.get(path)) {
            (None, _) => Judgement::new(Verdict::Skip, "no health endpoint given (--health-url)"),
            (Some(_), Some(Ok(a))) if a.status == 200 => Judgement::new(
                Verdict::Pass,
                format!("{} answered 200 in {} µs", a.url, a.us),
            )
            .observed(json!(a)),
            (Some(_), Some(Ok(a))) => Judgement::new(
                Verdict::Fail,
                format!("{} answered {}: {}", a.url, a.status, a.body),
            )
            .observed(json!(a)),
            (Some(_), Some(Err(e))) => Judgement::new(Verdict::Error, format!("inconclusive: {e}")),
            (Some(_), None) => Judgement::new(Verdict::Error, "the probe was not run"),
        },
        CaseKind::LogLine { prefix } => match (&endpoint.logs, &obs.logs) {
            (None, _) | (_, None) => {
                Judgement::new(Verdict::Skip, "no repo-server log given (--log-file)")
            }
            (Some(_), Some(Err(e))) => {
                Judgement::new(Verdict::Error, format!("could not read the log: {e}"))
            }
            (Some(src), Some(Ok(lines))) => judge_log(prefix, lines, &src.origin()),
        },
    }
}

fn judge_log(prefix: &str, lines: &[String], origin: &str) -> Judgement {
    let found = lines.iter().find_map(|l| {
        logrus_message(l)
            .filter(|m| m.starts_with(prefix))
            .map(|m| (l, m))
    });
    let handshake_errors = lines
        .iter()
        .filter(|l| l.contains("failed to complete security handshake"))
        .count();
    let mut evidence = vec![format!("searched {} lines of {origin}", lines.len())];
    if handshake_errors > 0 {
        evidence.push(format!("{handshake_errors} lines report `failed to complete security handshake` (rejected clients, logged at WARNING)"));
    }
    match found {
        Some((line, msg)) => {
            let rest = &msg[prefix.len()..];
            // For the health-check line, record the CN actually printed (Argo CD 3.5.1 prints it empty).
            let value = rest.strip_suffix(')').unwrap_or(rest).to_owned();
            evidence.push(format!("line: {line}"));
            Judgement::new(Verdict::Pass, format!("found; value printed: `{value}`"))
                .observed(json!({ "line": line, "value": value, "handshake_error_lines": handshake_errors }))
                .evidence(evidence)
        }
        None => Judgement::new(
            Verdict::Fail,
            format!("no log line starting `{prefix}` in {origin}: the repo-server did not report this at startup"),
        )
        .observed(json!({ "lines": lines.len(), "handshake_error_lines": handshake_errors }))
        .evidence(evidence),
    }
}

#[cfg(test)]
mod tests {
    use crate::target::logrus_message;

    #[test]
    fn logrus_messages_in_both_formats() {
        let cases = [
            (
                r#"time="2026-01-01T00:00:00Z" level=info msg="mTLS enabled for repo-server: requiring client certificates from CA=/x""#,
                Some("mTLS enabled for repo-server: requiring client certificates from CA=/x"),
            ),
            (
                r#"time="t" level=info msg="quoted \"inner\" text" extra=1"#,
                Some(r#"quoted "inner" text"#),
            ),
            (r#"time="t" level=info msg=bare other=1"#, Some("bare")),
            (
                r#"{"level":"info","msg":"Generated ephemeral health-check client certificate (CN=)","time":"t"}"#,
                Some("Generated ephemeral health-check client certificate (CN=)"),
            ),
            ("no structured message here", None),
            (r#"{"level":"info"}"#, None),
        ];
        for (line, want) in cases {
            assert_eq!(logrus_message(line).as_deref(), want, "{line}");
        }
    }
}

/// Findings about one scope: the namespace (configuration, components) or one repo-server pod.
#[derive(Debug, Clone, Default)]
pub struct ScopedFindings {
    /// `namespace/argocd` or the pod name; becomes the results' `endpoint`.
    pub scope: String,
    /// What the Kubernetes target found there.
    pub findings: Vec<Finding>,
}

fn finding_matches(case_id: &str, finding_id: &str) -> bool {
    finding_id == case_id
        || finding_id
            .strip_prefix(case_id)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Judges the finding-based checks: one result per (scope, finding id), several findings with one
/// id (e.g. two certificates' expiry) folded into one result that fails if any of them fails. A
/// check no finding answers is skipped (reported at `skip_scope`), with `not_observed`'s reason for
/// its id when there is one.
pub fn evaluate_findings(
    checks: &[Check],
    scopes: &[ScopedFindings],
    not_observed: &std::collections::BTreeMap<String, String>,
    skip_scope: &str,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for check in checks
        .iter()
        .filter(|c| matches!(c.case.kind, CaseKind::Finding))
    {
        let result =
            |id: String, endpoint: &str, verdict, reason: String, evidence, advisory| CheckResult {
                id,
                title: check.case.title.clone(),
                suite: check.suite.clone(),
                action: check.case.action.clone(),
                requirement: check.case.requirement.clone(),
                severity: if advisory {
                    crate::suite::Severity::Advisory
                } else {
                    check.case.severity
                },
                controls: check.case.controls.clone(),
                verdict,
                expected: expected_text(&check.case.kind),
                observed: json!({ "findings": evidence }),
                reason,
                evidence,
                duration_ms: 0.0,
                endpoint: endpoint.to_owned(),
            };
        let mut answered = false;
        for scoped in scopes {
            let mut ids: Vec<&str> = scoped
                .findings
                .iter()
                .filter(|f| finding_matches(&check.case.id, &f.id))
                .map(|f| f.id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                answered = true;
                let group: Vec<&Finding> = scoped.findings.iter().filter(|f| f.id == id).collect();
                let verdict = if group.iter().any(|f| f.inconclusive) {
                    Verdict::Error
                } else if group.iter().all(|f| f.ok) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                };
                // A group is advisory only if every finding that decides it is.
                let deciding: Vec<&&Finding> = group
                    .iter()
                    .filter(|f| verdict == Verdict::Pass || !f.ok)
                    .collect();
                let advisory = deciding.iter().all(|f| f.advisory);
                let reason = deciding
                    .iter()
                    .map(|f| f.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let evidence = group.iter().map(|f| f.detail.clone()).collect();
                out.push(result(
                    id.to_owned(),
                    &scoped.scope,
                    verdict,
                    reason,
                    evidence,
                    advisory,
                ));
            }
        }
        if !answered {
            let reason = not_observed
                .get(&check.case.id)
                .cloned()
                .unwrap_or_else(|| "not observed on this target".into());
            out.push(result(
                check.id.clone(),
                skip_scope,
                Verdict::Skip,
                reason,
                vec![],
                false,
            ));
        }
    }
    out
}

#[cfg(test)]
mod finding_tests {
    use super::*;
    use crate::suite::{Severity, Suite};

    fn kube_checks() -> Vec<Check> {
        Suite::load("kubernetes").unwrap().checks()
    }

    fn find<'a>(results: &'a [CheckResult], id: &str, endpoint: &str) -> &'a CheckResult {
        results
            .iter()
            .find(|r| r.id == id && r.endpoint == endpoint)
            .unwrap_or_else(|| panic!("no {id} [{endpoint}] in {results:#?}"))
    }

    /// One result per (scope, finding id); same-id findings fold (any failure fails); the
    /// deciding findings' advisory flag sets the severity; inconclusive means no verdict; an
    /// unanswered case is skipped with the reason given for it.
    #[test]
    fn findings_become_results() {
        let ns = ScopedFindings {
            scope: "namespace/argocd".into(),
            findings: vec![
                Finding::pass("config/mtls-secret-keys", "has client-ca.crt"),
                Finding::pass("config/cert-expiry-horizon", "client-ca.crt ok"),
                Finding::fail("config/cert-expiry-horizon", "client.crt expired"),
                Finding::pass("config/mount/argocd-server", "mounts"),
                Finding::fail("config/mount/argocd-repo-server", "no client-ca.crt"),
                Finding::advise("config/client-verifies-server/argocd-server", false, "off"),
                // Prefix matching is per path segment: this must not answer `config/mount`.
                Finding::fail("config/mountain", "unrelated"),
            ],
        };
        let pod = ScopedFindings {
            scope: "argocd-repo-server-0".into(),
            findings: vec![Finding::inconclusive("pod/ready", "API timeout")],
        };
        let not_observed = std::collections::BTreeMap::from([(
            "pod/no-probe-failures".to_owned(),
            "RBAC: list events".to_owned(),
        )]);
        let results = evaluate_findings(
            &kube_checks(),
            &[ns, pod],
            &not_observed,
            "namespace/argocd",
        );
        let n = "namespace/argocd";
        assert_eq!(
            find(&results, "config/mtls-secret-keys", n).verdict,
            Verdict::Pass
        );
        let expiry = find(&results, "config/cert-expiry-horizon", n);
        assert_eq!(expiry.verdict, Verdict::Fail);
        assert_eq!(expiry.reason, "client.crt expired");
        assert_eq!(expiry.evidence.len(), 2);
        assert_eq!(
            find(&results, "config/mount/argocd-server", n).verdict,
            Verdict::Pass
        );
        assert_eq!(
            find(&results, "config/mount/argocd-repo-server", n).verdict,
            Verdict::Fail
        );
        let verifies = find(&results, "config/client-verifies-server/argocd-server", n);
        assert_eq!(
            (verifies.verdict, verifies.severity),
            (Verdict::Fail, Severity::Advisory)
        );
        assert!(!results.iter().any(|r| r.id == "config/mountain"));
        assert_eq!(
            find(&results, "pod/ready", "argocd-repo-server-0").verdict,
            Verdict::Error
        );
        let skipped = find(&results, "pod/no-probe-failures", n);
        assert_eq!(
            (skipped.verdict, skipped.reason.as_str()),
            (Verdict::Skip, "RBAC: list events")
        );
        assert_eq!(
            find(&results, "pod/restarts-unchanged", n).reason,
            "not observed on this target"
        );
        let summary = crate::report::Summary::of(&results, false);
        assert_eq!(summary.exit_code(), 1, "required failures fail the run");
    }
}
