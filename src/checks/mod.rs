//! The checks. Two steps, kept apart: [`observe`] runs every probe the selected checks need
//! (concurrently, bounded) and [`evaluate`] judges each check against those observations. A
//! negative handshake proves nothing without the positive control on the same endpoint and TLS
//! version, so the valid client is always observed, even when its own check is filtered out.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;

use crate::grpc::{self, CallError, GrpcTarget, HealthAnswer, NoCertRpc};
use crate::pki::{self, Adversary, Identity, Minted, ProbePki};
use crate::probe::{
    self, AcceptanceBasis, AcceptanceProof, Outcome, ProbeOutcome, ProbeRequest, Sni, TlsVersion,
};
use crate::report::{CheckResult, SkipKind, Verdict};
use crate::suite::{CaseKind, Check, Expect, Presented};
use crate::target::audit::Finding;
use crate::target::{Endpoint, HttpAnswer, Protocol, grpc_refusal_lines, logrus_message};

/// Probe settings.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Per-attempt time limit.
    pub timeout: Duration,
    /// Plain TLS 1.3: how long silence must last to count as acceptance when the server gives no
    /// other sign. `None`: the whole timeout, so a slow refusal is never taken for acceptance.
    pub silence: Option<Duration>,
    /// At most this many attempts at once.
    pub concurrency: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            timeout: Duration::from_secs(5),
            silence: None,
            concurrency: 16,
        }
    }
}

/// Which handshake attempt: the identity presented, the TLS version, the SNI sent.
pub type AttemptKey = (String, TlsVersion, Sni);

/// Everything observed at one endpoint.
#[derive(Debug, Default)]
pub struct Observations {
    /// Handshake attempts by (presented label, version, SNI).
    pub handshakes: HashMap<AttemptKey, ProbeOutcome>,
    /// Identities that could not be minted, with the reason.
    pub unavailable: HashMap<String, String>,
    /// Identities that were minted, but prove less than intended, with the reason.
    pub caveats: HashMap<String, String>,
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
    /// Set when the endpoint speaks something other than `--protocol` says: then no check can
    /// be judged, and the reason says what was seen.
    pub protocol_mismatch: Option<String>,
    /// Wall time of the observation phase, ms.
    pub elapsed_ms: f64,
}

/// The key of the valid client's attempt under `v` (configured SNI): the positive control.
fn control_key(v: TlsVersion) -> AttemptKey {
    ("client".to_owned(), v, Sni::Configured)
}

impl Observations {
    /// The valid client's attempt under `v`.
    pub fn control(&self, v: TlsVersion) -> Option<&ProbeOutcome> {
        self.handshakes.get(&control_key(v))
    }
}

/// The SNIs a refusal must hold under: the configured name, none, and a name the server does not
/// expect (a server may enforce client certificates only for one name, or only when SNI is sent).
/// Variants that would send the same ClientHello are tried once.
pub fn sni_variants(server_name: &str) -> Vec<Sni> {
    let mut variants = vec![Sni::Configured];
    if server_name.parse::<std::net::IpAddr>().is_err() {
        variants.push(Sni::Absent);
    }
    variants.push(Sni::Other(probe::UNEXPECTED_SNI.to_owned()));
    variants
}

fn identity_for(
    presented: Presented,
    pki: &ProbePki,
    minted: &HashMap<Adversary, Result<Minted, String>>,
) -> Result<Option<Identity>, String> {
    match presented {
        Presented::None => Ok(None),
        Presented::Client => Ok(Some(pki.client.clone())),
        Presented::Adversary(a) => match minted.get(&a) {
            Some(Ok(m)) => Ok(Some(m.identity.clone())),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not minted".into()),
        },
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
            | CaseKind::TlsPolicy
            | CaseKind::GrpcHealth
            | CaseKind::GrpcVersion
            | CaseKind::GrpcNoCertRpc => versions.extend([TlsVersion::Tls12, TlsVersion::Tls13]),
            _ => {}
        }
    }
    versions
}

/// How an attempt at this endpoint proves acceptance.
fn proof_for(protocol: Protocol) -> AcceptanceProof {
    match protocol {
        Protocol::Grpc => AcceptanceProof::H2Settings,
        Protocol::Https => AcceptanceProof::Https,
        Protocol::Tls => AcceptanceProof::Tls,
    }
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
    let proof = proof_for(endpoint.protocol);

    // Which (identity, version, SNI) handshakes: the checks' own, plus the positive controls.
    // Refusals must hold under every SNI variant; the valid client uses the configured name.
    let mut wanted: BTreeSet<AttemptKey> = BTreeSet::new();
    let mut presented_by_label: HashMap<String, Presented> = HashMap::new();
    let controls = control_versions(checks);
    for &v in &controls {
        wanted.insert(control_key(v));
        presented_by_label.insert("client".into(), Presented::Client);
    }
    let variants = sni_variants(&endpoint.server_name);
    for c in checks {
        if let (CaseKind::Handshake { present, expect }, Some(v)) = (&c.case.kind, c.version) {
            let label = present.label().to_owned();
            presented_by_label.insert(label.clone(), *present);
            match expect {
                Expect::Rejected => {
                    wanted.extend(variants.iter().map(|sni| (label.clone(), v, sni.clone())))
                }
                Expect::Accepted => {
                    wanted.insert((label, v, Sni::Configured));
                }
            }
        }
    }
    let adversaries: BTreeSet<Adversary> = presented_by_label
        .values()
        .filter_map(|p| match p {
            Presented::Adversary(a) => Some(*a),
            _ => None,
        })
        .collect();
    // Key generation (RSA above all) dominates a run's CPU time: one thread per identity.
    let minted: HashMap<Adversary, Result<Minted, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = adversaries
            .iter()
            .map(|&a| {
                (
                    a,
                    scope.spawn(move || pki::mint(pki, a).map_err(|e| e.to_string())),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(a, h)| {
                let minted = h
                    .join()
                    .unwrap_or_else(|_| Err(format!("minting `{}` panicked", a.name())));
                (a, minted)
            })
            .collect()
    });
    for (adversary, m) in &minted {
        if let Ok(Minted {
            caveat: Some(why), ..
        }) = m
        {
            obs.caveats.insert(adversary.name().to_owned(), why.clone());
        }
    }
    let mut requests = Vec::new();
    let mut keys = Vec::new();
    for key in &wanted {
        let (label, version, sni) = key;
        match identity_for(presented_by_label[label], pki, &minted) {
            Ok(identity) => {
                keys.push(key.clone());
                requests.push(ProbeRequest {
                    addr: endpoint.addr,
                    server_name: endpoint.server_name.clone(),
                    sni: sni.clone(),
                    version: *version,
                    identity,
                    server_roots: pki.server_ca.clone(),
                    proof,
                    timeout: settings.timeout,
                    silence: settings.silence,
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
    // Probed as plain TLS or HTTPS, a gRPC server gives wrong verdicts both ways: find out.
    let speaks_grpc = async {
        if grpc {
            return None;
        }
        for v in [TlsVersion::Tls13, TlsVersion::Tls12] {
            match grpc::health_check(&grpc_target(v)).await {
                Ok(a) => return Some(format!("Health/Check answered {} under {v}", a.status)),
                Err(e @ grpc::GrpcError::Status { .. }) => {
                    return Some(format!("a gRPC call got `{e}` under {v}"));
                }
                Err(grpc::GrpcError::Connect(_)) => continue,
                Err(_) => return None,
            }
        }
        None
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
    let (handshakes, legacy, plaintext, health, version, no_cert, speaks_grpc, http) = tokio::join!(
        handshakes,
        legacy,
        plaintext,
        health,
        version,
        no_cert,
        speaks_grpc,
        http
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
    obs.protocol_mismatch = match speaks_grpc {
        Some(seen) => Some(format!(
            "the endpoint speaks gRPC ({seen}), but was probed with --protocol {}: probe it with --protocol grpc",
            endpoint.protocol.name()
        )),
        None => protocol_mismatch(endpoint.protocol, &obs),
    };
    if wants(&|k| matches!(k, CaseKind::LogLine { .. } | CaseKind::LogRejections)) {
        // Read last, after every probe: the refusals this run caused are in it.
        obs.logs = match &endpoint.logs {
            Some(source) => Some(source.read().await),
            None => None,
        };
    }
    obs.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    obs
}

/// What the valid client's own attempts say about a `--protocol` that does not fit the endpoint.
fn protocol_mismatch(protocol: Protocol, obs: &Observations) -> Option<String> {
    let mut controls = obs
        .handshakes
        .iter()
        .filter(|(k, _)| k.0 == "client" && k.2 == Sni::Configured)
        .map(|(_, o)| o);
    let other_speech =
        |o: &&ProbeOutcome| o.outcome == Outcome::Error && o.stage == probe::Stage::Application;
    let alpn_refused = obs
        .handshakes
        .iter()
        .any(|(k, o)| k.0 == "client" && o.alert.as_deref() == Some("no_application_protocol"));
    if alpn_refused && protocol != Protocol::Tls {
        let (offered, instead) = if protocol == Protocol::Grpc {
            (
                "h2",
                "it is not a gRPC server: probe it with --protocol https or --protocol tls",
            )
        } else {
            (
                "http/1.1",
                "probe it with --protocol grpc or --protocol tls",
            )
        };
        return Some(format!(
            "the endpoint refused ALPN `{offered}` (alert no_application_protocol to the valid client), so it does not speak what --protocol {} expects; {instead}",
            protocol.name()
        ));
    }
    match protocol {
        Protocol::Grpc => {
            let not_grpc = obs
                .grpc_health
                .values()
                .filter_map(|r| r.as_ref().err())
                .find(|e| e.not_grpc);
            if let Some(e) = not_grpc {
                return Some(format!(
                    "the endpoint is not a gRPC server ({e}): probe it with --protocol https or --protocol tls"
                ));
            }
            controls.find(other_speech).map(|o| {
                format!(
                    "the endpoint does not answer HTTP/2 as gRPC servers do ({}): probe it with --protocol https or --protocol tls",
                    o.detail
                )
            })
        }
        Protocol::Https => controls.find(other_speech).map(|o| {
            format!(
                "the endpoint does not answer HTTP/1.1 ({}): probe it with --protocol tls, or --protocol grpc for a gRPC server",
                o.detail
            )
        }),
        Protocol::Tls => None,
    }
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
    /// For a skip: whether the case does not apply here, or was not judged for want of input.
    skip: Option<SkipKind>,
    reason: String,
    observed: serde_json::Value,
    evidence: Vec<String>,
    duration_ms: f64,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            skip: None,
            reason: reason.into(),
            observed: serde_json::Value::Null,
            evidence: vec![],
            duration_ms: 0.0,
        }
    }
    /// A skip: the case does not apply to this server (its TLS policy, the protocol chosen).
    fn not_applicable(reason: impl Into<String>) -> Self {
        let mut j = Judgement::new(Verdict::Skip, reason);
        j.skip = Some(SkipKind::NotApplicable);
        j
    }
    /// A skip: the case applies, but the input it needs was not given (CA key, health URL, log).
    fn not_judged(reason: impl Into<String>) -> Self {
        let mut j = Judgement::new(Verdict::Skip, reason);
        j.skip = Some(SkipKind::MissingInput);
        j
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

/// How an attempt's SNI reads in evidence.
fn sni_words(o: &ProbeOutcome) -> String {
    match &o.sni {
        Some(name) => format!("SNI `{name}`"),
        None => "no SNI".to_owned(),
    }
}

fn attempt_evidence(o: &ProbeOutcome) -> Vec<String> {
    let mut e = vec![format!(
        "{} presenting `{}` with {}: {} {} ({})",
        o.requested_version,
        o.presented.as_deref().unwrap_or("no certificate"),
        sni_words(o),
        o.outcome,
        o.stage,
        o.detail
    )];
    if let Some(basis) = o.accepted_by {
        e.push(format!("accepted on the basis of {basis}"));
    }
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

/// Why TLS version `v` cannot carry the mTLS checks at this endpoint, from the valid client's
/// attempt: the server does not offer it, or cannot negotiate it before client authentication is
/// even reached (no cipher suite in common). `None`: `v` was negotiated, or failed for a reason
/// that is the checks' business.
pub fn version_refusal(obs: &Observations, v: TlsVersion) -> Option<String> {
    let o = obs.control(v)?;
    match o.alert.as_deref() {
        Some("protocol_version") => Some(format!(
            "the server does not offer {v} (protocol_version alert to the valid client)"
        )),
        Some(alert @ ("handshake_failure" | "insufficient_security"))
            if !o.client_cert_requested && o.server_chain.sha256.is_empty() =>
        {
            let key = obs
                .handshakes
                .values()
                .find_map(|other| other.server_chain.leaf_key.clone());
            let hint = match (v, key.as_deref()) {
                (TlsVersion::Tls12, Some(k)) if !k.starts_with("RSA") => format!(
                    " The server's certificate key is {k}; Argo CD's default TLS 1.2 cipher list (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 only) needs an RSA key: use an RSA server certificate (`pki init` default) or set reposerver.tls.ciphers."
                ),
                (_, Some(k)) => format!(" The server's certificate key is {k}."),
                _ => String::new(),
            };
            Some(format!(
                "{v} cannot be negotiated: the server answered the valid client's ClientHello with `{alert}` before sending its certificate or a CertificateRequest, so no cipher suite is shared and client authentication is never reached under {v}.{hint}"
            ))
        }
        _ => None,
    }
}

/// The valid client's positive control under `v`: `Ok(basis)` if it was admitted.
fn positive_control(
    obs: &Observations,
    v: TlsVersion,
    grpc: bool,
) -> Result<AcceptanceBasis, String> {
    let Some(o) = obs.control(v) else {
        return Err(format!("the valid client was not tried under {v}"));
    };
    let basis = match (o.outcome, o.accepted_by) {
        (Outcome::Accepted, Some(basis)) => basis,
        _ => {
            return Err(format!(
                "the valid client was not admitted under {v} ({}: {})",
                o.outcome, o.detail
            ));
        }
    };
    if grpc {
        match obs.grpc_health.get(&v) {
            Some(Ok(a)) if a.status == "SERVING" => {}
            Some(Ok(a)) => return Err(format!("Health/Check under {v} answered {}", a.status)),
            Some(Err(e)) => return Err(format!("Health/Check under {v} failed: {e}")),
            None => return Err(format!("Health/Check was not tried under {v}")),
        }
    }
    Ok(basis)
}

/// The version to judge connection-level checks on: 1.3 when the server speaks it, else 1.2.
fn preferred_version(obs: &Observations) -> TlsVersion {
    if version_refusal(obs, TlsVersion::Tls13).is_some() {
        TlsVersion::Tls12
    } else {
        TlsVersion::Tls13
    }
}

/// Whether `o` counts as an acceptance. Silence does not, when the server showed the valid client
/// a positive sign (a ticket, data) on the same endpoint and version: this client got neither that
/// sign nor a refusal, so the server's verdict on it was never seen.
fn accepted(o: &ProbeOutcome, control: Option<AcceptanceBasis>) -> Result<bool, String> {
    match (o.outcome, o.accepted_by, control) {
        (Outcome::Accepted, Some(AcceptanceBasis::Silence), Some(c)) if c.is_positive() => {
            Err(format!(
                "no alert, but also no sign of acceptance: the server showed the valid client {c}, and this client neither that nor a refusal ({})",
                o.detail
            ))
        }
        (Outcome::Accepted, _, _) => Ok(true),
        _ => Ok(false),
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
    let label = present.label();
    if let Some(reason) = obs.unavailable.get(label) {
        return Judgement::not_judged(format!("identity `{label}` not available: {reason}"));
    }
    if let Some(reason) = version_refusal(obs, v) {
        return Judgement::not_applicable(reason);
    }
    match expect {
        Expect::Rejected => judge_refusal(check, label, v, obs, grpc),
        Expect::Accepted => judge_admission(label, v, obs, grpc),
    }
}

/// A negative case: every SNI variant must be refused, and the valid client admitted.
fn judge_refusal(
    check: &Check,
    label: &str,
    v: TlsVersion,
    obs: &Observations,
    grpc: bool,
) -> Judgement {
    let mut attempts: Vec<&ProbeOutcome> = obs
        .handshakes
        .iter()
        .filter(|(k, _)| k.0 == label && k.1 == v)
        .map(|(_, o)| o)
        .collect();
    if attempts.is_empty() {
        return Judgement::new(Verdict::Error, "attempt was not run");
    }
    attempts.sort_by_key(|o| o.sni.clone());
    let control = positive_control(obs, v, grpc);
    let control_basis = control.as_ref().ok().copied();
    let evidence: Vec<String> = attempts.iter().flat_map(|o| attempt_evidence(o)).collect();
    let observed = json!({ "attempts": attempts });
    let duration_ms = attempts
        .iter()
        .map(|o| o.timings.total_us as f64 / 1000.0)
        .fold(0.0, f64::max);
    let done = |j: Judgement| {
        let mut j = j.observed(observed.clone()).evidence(evidence.clone());
        j.duration_ms = duration_ms;
        j
    };

    let mut unseen = Vec::new();
    for o in &attempts {
        match accepted(o, control_basis) {
            Ok(true) => {
                return done(Judgement::new(
                    Verdict::Fail,
                    format!("ACCEPTED with {}: {}", sni_words(o), o.detail),
                ));
            }
            Ok(false) => {}
            Err(why) => unseen.push(format!("with {}: {why}", sni_words(o))),
        }
    }
    if let Some(o) = attempts
        .iter()
        .find(|o| matches!(o.outcome, Outcome::Inconclusive | Outcome::Error))
    {
        let what = if o.outcome == Outcome::Error {
            "could not classify"
        } else {
            "inconclusive"
        };
        return done(Judgement::new(
            Verdict::Error,
            format!("{what} with {}: {}", sni_words(o), o.detail),
        ));
    }
    if !unseen.is_empty() {
        return done(Judgement::new(
            Verdict::Error,
            format!("inconclusive {}", unseen.join("; ")),
        ));
    }
    if let Err(why) = control {
        return done(Judgement::new(
            Verdict::Error,
            format!(
                "inconclusive: rejected, but the positive control failed ({why}), so the refusal proves nothing"
            ),
        ));
    }
    if let Some(want) = check.case.pinned_alert(v)
        && let Some(o) = attempts.iter().find(|o| o.alert.as_deref() != Some(want))
    {
        return done(Judgement::new(
            Verdict::Fail,
            format!(
                "rejected with {} under {}, but the suite pins alert `{want}`",
                refusal_words(o),
                sni_words(o)
            ),
        ));
    }
    let hows: BTreeSet<String> = attempts.iter().map(|o| refusal_words(o)).collect();
    let snis: Vec<String> = attempts.iter().map(|o| sni_words(o)).collect();
    let mut reason = format!(
        "rejected {} with {} under each of {}; the valid client was admitted on the same endpoint",
        attempts[0].stage,
        hows.into_iter().collect::<Vec<_>>().join(" / "),
        snis.join(", ")
    );
    if let Some(caveat) = obs.caveats.get(label) {
        reason.push_str(&format!(". WEAKER EVIDENCE: {caveat}"));
    }
    done(Judgement::new(Verdict::Pass, reason))
}

fn refusal_words(o: &ProbeOutcome) -> String {
    match (&o.alert, o.reset, o.http_status) {
        (Some(a), _, _) => format!("alert `{a}`"),
        (None, _, Some(status)) => format!("HTTP status {status}"),
        (None, true, _) => "the connection closed without an alert".to_owned(),
        (None, false, _) => "a refusal".to_owned(),
    }
}

/// The valid client's case: admitted, and for gRPC served by Health/Check.
fn judge_admission(label: &str, v: TlsVersion, obs: &Observations, grpc: bool) -> Judgement {
    let Some(o) = obs.handshakes.get(&(label.to_owned(), v, Sni::Configured)) else {
        return Judgement::new(Verdict::Error, "attempt was not run");
    };
    let mut evidence = attempt_evidence(o);
    let health = obs.grpc_health.get(&v);
    let observed = json!({ "attempt": o, "grpc_health": health.map(|r| match r {
        Ok(a) => json!({"status": a.status, "rpc_us": a.rpc_us}),
        Err(e) => json!({"error": e}),
    })});
    let mut j = match o.outcome {
        Outcome::Accepted if !grpc => {
            let basis = o.accepted_by.unwrap_or(AcceptanceBasis::Silence);
            let weak = if basis.is_positive() {
                ""
            } else {
                " (weak evidence: the server gave no positive sign of acceptance)"
            };
            Judgement::new(
                Verdict::Pass,
                format!("accepted on the basis of {basis}{weak}"),
            )
        }
        Outcome::Accepted => match health {
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
    let expected = expected_text(&check.case.kind, endpoint.protocol);
    let j = if let Some(why) = &obs.protocol_mismatch {
        Judgement::new(Verdict::Error, format!("no verdict: {why}"))
    } else if check.case.grpc_only && !grpc {
        Judgement::not_applicable(format!(
            "gRPC check; the endpoint was probed with --protocol {}",
            endpoint.protocol.name()
        ))
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
        skip_kind: j.skip,
        expected,
        reason: j.reason,
        observed: j.observed,
        evidence: j.evidence,
        duration_ms: j.duration_ms,
        endpoint: endpoint.label.clone(),
    }
}

fn expected_text(kind: &CaseKind, protocol: Protocol) -> String {
    match kind {
        CaseKind::Handshake {
            expect: Expect::Rejected,
            ..
        } => match protocol {
            Protocol::Https => "refused (alert, reset, or an HTTP refusal status) before any protected content, under every SNI tried".into(),
            _ => "rejected (alert or reset) before any application data, under every SNI tried".into(),
        },
        CaseKind::Handshake {
            expect: Expect::Accepted,
            ..
        } => match protocol {
            Protocol::Grpc => "accepted, and gRPC Health/Check answers SERVING".into(),
            Protocol::Https => "accepted: an HTTP answer that is not a refusal".into(),
            Protocol::Tls => "accepted: the server shows it (data, session ticket, TLS 1.2 Finished)".into(),
        },
        CaseKind::LegacyHello => "the legacy-only ClientHello is refused".into(),
        CaseKind::PlaintextH2c => "no HTTP/2 answer without TLS".into(),
        CaseKind::ServerIdentity => {
            "the server chain verifies against the server CA for the server name".into()
        }
        CaseKind::TlsPolicy => {
            "the valid client negotiates at least one of TLS 1.2 and 1.3; what each version did is recorded".into()
        }
        CaseKind::GrpcHealth => "SERVING".into(),
        CaseKind::GrpcVersion => "VersionService answers with the build".into(),
        CaseKind::GrpcNoCertRpc => "the server ends the connection before any response".into(),
        CaseKind::HttpProbe { path } => format!("GET {path} answers 200"),
        CaseKind::LogLine { prefix } => format!("a log line starting `{prefix}`"),
        CaseKind::LogRejections => {
            "a grpc-go `ServerHandshake(...) failed: ...` line for the refused handshakes".into()
        }
        CaseKind::Finding => "the Kubernetes objects, pods and logs hold as required".into(),
    }
}

fn judge(check: &Check, obs: &Observations, endpoint: &Endpoint, grpc: bool) -> Judgement {
    match &check.case.kind {
        CaseKind::Finding => Judgement::not_judged(
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
        CaseKind::ServerIdentity => judge_server_identity(obs, endpoint),
        CaseKind::TlsPolicy => judge_tls_policy(obs),
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
                        .observed(json!({ "error": e }))
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
            Some(Err(e)) if e.message.contains("UNIMPLEMENTED") || e.message.contains("(12)") => {
                Judgement::not_applicable("the server has no version.VersionService")
            }
            Some(Err(e)) if e.inconclusive => {
                Judgement::new(Verdict::Error, format!("inconclusive: {e}"))
            }
            Some(Err(e)) => {
                Judgement::new(Verdict::Fail, format!("VersionService call failed: {e}"))
                    .observed(json!({ "error": e }))
            }
            None => Judgement::new(Verdict::Error, "VersionService was not called"),
        },
        CaseKind::GrpcNoCertRpc => judge_no_cert_rpc(obs),
        CaseKind::HttpProbe { path } => match (&endpoint.health, obs.http.get(path)) {
            (None, _) => Judgement::not_judged("no health endpoint given (--health-url)"),
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
            (None, _) | (_, None) => Judgement::not_judged("no repo-server log given (--log-file)"),
            (Some(_), Some(Err(e))) => {
                Judgement::new(Verdict::Error, format!("could not read the log: {e}"))
            }
            (Some(src), Some(Ok(lines))) => judge_log(prefix, lines, &src.origin()),
        },
        CaseKind::LogRejections => match (&endpoint.logs, &obs.logs) {
            (None, _) | (_, None) => Judgement::not_judged("no repo-server log given (--log-file)"),
            (Some(_), Some(Err(e))) => {
                Judgement::new(Verdict::Error, format!("could not read the log: {e}"))
            }
            (Some(src), Some(Ok(lines))) => judge_rejections_logged(obs, lines, &src.origin()),
        },
    }
}

fn judge_server_identity(obs: &Observations, endpoint: &Endpoint) -> Judgement {
    let v = preferred_version(obs);
    match obs.control(v) {
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
                None => Judgement::not_judged("no server CA configured"),
            };
            j.observed(json!({ "server_chain": chain, "tls_version": o.tls_version }))
                .evidence(evidence)
        }
        None => Judgement::new(Verdict::Error, "no valid-client handshake was run"),
    }
}

/// Records what each TLS version did for the valid client; fails to reach a verdict only when
/// neither version can carry the checks.
fn judge_tls_policy(obs: &Observations) -> Judgement {
    let mut lines = Vec::new();
    let mut observed = serde_json::Map::new();
    let mut usable = 0;
    for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let Some(o) = obs.control(v) else { continue };
        let line = match (version_refusal(obs, v), &o.cipher_suite, &o.tls_version) {
            (Some(why), _, _) => why,
            (None, Some(cipher), _) => {
                usable += 1;
                format!("{v} negotiated with {cipher}")
            }
            // The ServerHello chose the version; the valid client was then judged.
            (None, None, Some(_)) => {
                usable += 1;
                format!(
                    "{v} reached client authentication ({} {})",
                    o.outcome, o.stage
                )
            }
            (None, None, None) => format!("{v}: no conclusion ({})", o.detail),
        };
        observed.insert(
            v.id().to_owned(),
            json!({ "line": line, "alert": o.alert, "cipher_suite": o.cipher_suite }),
        );
        lines.push(line);
    }
    if lines.is_empty() {
        return Judgement::new(Verdict::Error, "the valid client was not tried");
    }
    let verdict = if usable > 0 {
        Verdict::Pass
    } else {
        Verdict::Error
    };
    Judgement::new(verdict, lines.join("; "))
        .observed(serde_json::Value::Object(observed))
        .evidence(lines)
}

fn judge_no_cert_rpc(obs: &Observations) -> Judgement {
    let control = positive_control(obs, preferred_version(obs), true);
    match (&obs.no_cert_rpc, control) {
        (Some(NoCertRpc::Answered { answer }), _) => Judgement::new(
            Verdict::Fail,
            format!("the server ANSWERED an unauthenticated RPC: {answer}"),
        )
        .observed(json!(obs.no_cert_rpc)),
        (Some(NoCertRpc::Inconclusive { reason }), _) => {
            Judgement::new(Verdict::Error, format!("inconclusive: {reason}"))
        }
        (Some(r @ NoCertRpc::RefusedInHandshake { connection }), Ok(_)) => Judgement::new(
            Verdict::Pass,
            format!(
                "refused during the handshake ({}); the RPC was never sent",
                refusal_words(connection)
            ),
        )
        .observed(json!(r))
        .evidence(attempt_evidence(connection)),
        (Some(r @ NoCertRpc::DiedBeforeResponse { connection, error }), Ok(_)) => {
            Judgement::new(Verdict::Pass, format!("no response: {error}"))
                .observed(json!(r))
                .evidence(attempt_evidence(connection))
        }
        (Some(_), Err(why)) => Judgement::new(
            Verdict::Error,
            format!("inconclusive: the RPC failed, but so does the positive control ({why})"),
        ),
        (None, _) => Judgement::new(Verdict::Error, "the RPC was not attempted"),
    }
}

fn judge_log(prefix: &str, lines: &[String], origin: &str) -> Judgement {
    let found = lines.iter().find_map(|l| {
        logrus_message(l)
            .filter(|m| m.starts_with(prefix))
            .map(|m| (l, m))
    });
    let evidence = vec![format!("searched {} lines of {origin}", lines.len())];
    match found {
        Some((line, msg)) => {
            let rest = &msg[prefix.len()..];
            // For the health-check line, record the CN actually printed (Argo CD 3.5.1 prints it empty).
            let value = rest.strip_suffix(')').unwrap_or(rest).to_owned();
            let printed = if value.is_empty() {
                "found; the value after the prefix is empty (Argo CD 3.5.1's health-check certificate has no CommonName)".to_owned()
            } else {
                format!("found; value printed: `{value}`")
            };
            let mut evidence = evidence;
            evidence.push(format!("line: {line}"));
            Judgement::new(Verdict::Pass, printed)
                .observed(json!({ "line": line, "value": value }))
                .evidence(evidence)
        }
        None => Judgement::new(
            Verdict::Fail,
            format!("no log line starting `{prefix}` in {origin}: the repo-server did not report this at startup"),
        )
        .observed(json!({ "lines": lines.len() }))
        .evidence(evidence),
    }
}

/// grpc-go (v1.81, in Argo CD 3.5.1) logs one `ServerHandshake(...) failed: <cause>` line per
/// refused handshake, and only at INFO: passes when the refusals this run caused left lines.
fn judge_rejections_logged(obs: &Observations, lines: &[String], origin: &str) -> Judgement {
    let refused = obs
        .handshakes
        .values()
        .filter(|o| o.outcome == Outcome::Rejected)
        .count();
    let logged = grpc_refusal_lines(lines);
    let mut causes: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &logged {
        *causes.entry(r.cause.as_str()).or_default() += 1;
    }
    let mut evidence = vec![format!(
        "searched {} lines of {origin}; this run saw {refused} refused attempts",
        lines.len()
    )];
    evidence.extend(causes.iter().map(|(c, n)| format!("{n} × `{c}`")));
    let observed =
        json!({ "refused_attempts": refused, "logged_refusals": logged.len(), "causes": causes });
    if refused == 0 {
        return Judgement::not_applicable(
            "the server refused no attempt of this run, so there was nothing to log",
        )
        .observed(observed)
        .evidence(evidence);
    }
    if logged.is_empty() {
        return Judgement::new(
            Verdict::Fail,
            format!("the server refused {refused} attempts and logged none: grpc-go logs refused handshakes only with GRPC_GO_LOG_SEVERITY_LEVEL=info on the repo-server (warning is not enough)"),
        )
        .observed(observed)
        .evidence(evidence);
    }
    Judgement::new(
        Verdict::Pass,
        format!(
            "{} refused handshakes logged (this run caused {refused})",
            logged.len()
        ),
    )
    .observed(observed)
    .evidence(evidence)
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
            |id: String, endpoint: &str, verdict: Verdict, reason: String, evidence, advisory| {
                CheckResult {
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
                    skip_kind: (verdict == Verdict::Skip).then_some(SkipKind::MissingInput),
                    expected: expected_text(&check.case.kind, Protocol::Grpc),
                    observed: json!({ "findings": evidence }),
                    reason,
                    evidence,
                    duration_ms: 0.0,
                    endpoint: endpoint.to_owned(),
                }
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
        let summary = crate::report::Summary::of(&results, false, false);
        assert_eq!(summary.exit_code(), 1, "required failures fail the run");
    }
}
