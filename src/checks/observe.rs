//! Observation: every probe the selected checks need, run concurrently (bounded) against one
//! endpoint. Facts only; [`super`]'s judges turn them into verdicts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;

use crate::endpoint::{Endpoint, HttpAnswer, HttpError, LogReadError, Protocol};
use crate::grpc::{self, CallError, GrpcTarget, HealthAnswer, NoCertRpc};
use crate::pki::{self, Adversary, Identity, Minted, ProbePki};
use crate::probe::{
    self, AcceptanceProof, Outcome, ProbeOutcome, ProbeRequest, Resume, Session, SessionJar,
    TlsVersion,
};
use crate::suite::{CaseKind, Check, Expect, Presented};

pub use super::doors::{AlpnOffer, Door};
use super::doors::{Dimension, DoorSpace};
use crate::report::{Coverage, DoorClass};

/// The pause between two GETs of one health path that got no answer.
const HTTP_RETRY_PAUSE: Duration = Duration::from_secs(1);

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
    /// Draws the ids no registry holds (the unregistered ALPN id): the same seed, the same doors.
    pub seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            timeout: Duration::from_secs(5),
            silence: None,
            concurrency: 16,
            seed: 0,
        }
    }
}

/// Which handshake attempt: the identity presented, the TLS version, the door knocked on.
pub type AttemptKey = (Presented, TlsVersion, Door);

/// Everything observed at one endpoint.
#[derive(Debug, Default)]
pub struct Observations {
    /// Handshake attempts by (identity presented, version, SNI).
    pub handshakes: HashMap<AttemptKey, ProbeOutcome>,
    /// Identities that could not be minted, with the reason.
    pub unavailable: HashMap<Presented, String>,
    /// Identities that were minted, but prove less than intended, with the reason.
    pub caveats: HashMap<Adversary, String>,
    /// Legacy ClientHello attempts.
    pub legacy: HashMap<TlsVersion, ProbeOutcome>,
    /// Plaintext HTTP/2 with prior knowledge (RFC 7540 §3.4).
    pub plaintext: Option<ProbeOutcome>,
    /// The identity tried at every door (the cheapest refusal: no certificate), whose attempts
    /// found the behaviour classes the other refusals were tried at.
    pub explorer: Option<Presented>,
    /// What its attempts covered, per TLS version: each dimension's variants and behaviours.
    pub coverage: BTreeMap<TlsVersion, Vec<Coverage>>,
    /// Sessions handed to refused attempts, offered again without a certificate.
    pub resumption: Option<grpc::Resumption>,
    /// Plaintext HTTP/1.1 `Upgrade: h2c` and a gRPC call on the switched connection (§3.2).
    pub plaintext_upgrade: Option<ProbeOutcome>,
    /// Health/Check with the valid client, per version.
    pub grpc_health: HashMap<TlsVersion, Result<HealthAnswer, CallError>>,
    /// VersionService answer.
    pub grpc_version: Option<Result<serde_json::Value, CallError>>,
    /// The RPC without a certificate, under each TLS version it was tried.
    pub no_cert_rpc: BTreeMap<TlsVersion, NoCertRpc>,
    /// HTTP answers by path.
    pub http: HashMap<String, Result<HttpAnswer, HttpError>>,
    /// The log lines, or why they could not be read.
    pub logs: Option<Result<Vec<String>, LogReadError>>,
    /// Set when the endpoint speaks something other than `--protocol` says: then no check can
    /// be judged, and the reason says what was seen.
    pub protocol_mismatch: Option<String>,
    /// Set when no attempt of the positive controls met a TLS server (none got a certificate from
    /// it, under any version): then nothing that needs a session can be judged, the refusals at
    /// the other doors are not tried, and the reason says what the port did instead.
    pub no_session: Option<String>,
    /// Wall time of the observation phase, ms.
    pub elapsed_ms: f64,
    /// Why the client identity presented as "valid" is a stand-in (see [`ProbePki::stand_in`]).
    pub stand_in: Option<String>,
    /// With a stand-in: where the installation's server CA the server was verified against came
    /// from (`None`: there was none, and the stand-in's CA is nobody's server CA).
    pub stand_in_server_ca: Option<String>,
    /// Subjects of the client CAs the run was given: the names the server may advertise.
    pub operator_cas: Vec<String>,
    /// Subjects of the server CA(s) the run verifies the server's certificate against.
    pub server_cas: Vec<String>,
    /// What the server answered to a TLS 1.2 ClientHello offering every suite any client could
    /// use (tried whenever TLS 1.2 is judged): whether it speaks TLS 1.2 to someone.
    pub tls12_suites: Option<probe::suites::SuiteOffer>,
}

/// The key of the valid client's attempt under `v` (the front door): the positive control.
pub(super) fn control_key(v: TlsVersion) -> AttemptKey {
    (Presented::Client, v, Door::FRONT)
}

/// The key of the minted positive control under `v`: a valid leaf minted with the CA key.
pub(super) fn minted_control_key(v: TlsVersion) -> AttemptKey {
    (Presented::MintedClient, v, Door::FRONT)
}

impl Observations {
    /// The valid client's attempt under `v`.
    pub fn control(&self, v: TlsVersion) -> Option<&ProbeOutcome> {
        self.handshakes.get(&control_key(v))
    }
}

fn identity_for(
    presented: Presented,
    pki: &ProbePki,
    minted: &HashMap<Adversary, Result<Minted, String>>,
    minted_control: &Result<Identity, String>,
) -> Result<Option<Identity>, String> {
    match presented {
        Presented::None => Ok(None),
        Presented::Client => Ok(Some(pki.client.clone())),
        Presented::MintedClient => minted_control.clone().map(Some),
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
            CaseKind::Handshake { .. } => versions.extend(
                check
                    .version
                    .filter(|v| matches!(v, TlsVersion::Tls12 | TlsVersion::Tls13)),
            ),
            // Judged on an authenticated TLS 1.3 (fallback 1.2) connection.
            CaseKind::ServerIdentity
            | CaseKind::TlsPolicy
            | CaseKind::TrustStore
            | CaseKind::GrpcHealth
            | CaseKind::GrpcVersion
            | CaseKind::GrpcNoCertRpc => versions.extend([TlsVersion::Tls12, TlsVersion::Tls13]),
            _ => {}
        }
    }
    versions
}

/// How an attempt at this endpoint proves acceptance.
pub(crate) fn proof_for(protocol: Protocol) -> AcceptanceProof {
    match protocol {
        Protocol::Grpc => AcceptanceProof::H2Settings,
        Protocol::Https => AcceptanceProof::Https,
        Protocol::Tls => AcceptanceProof::Tls,
    }
}

/// Runs every probe the checks need against `endpoint`, telling `progress` (attempts done,
/// attempts planned so far) as handshake attempts finish.
pub async fn observe(
    endpoint: &Endpoint,
    pki: &ProbePki,
    checks: &[Check],
    settings: &ProbeSettings,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Observations {
    let started = std::time::Instant::now();
    let mut obs = Observations {
        stand_in: pki.stand_in.clone(),
        stand_in_server_ca: pki.server_ca_origin.clone(),
        operator_cas: pki
            .client_cas
            .iter()
            .filter_map(|c| crate::x509::CertFacts::from_der(c).ok().map(|f| f.subject))
            .collect(),
        server_cas: pki
            .server_ca
            .iter()
            .filter_map(|c| crate::x509::CertFacts::from_der(c).ok().map(|f| f.subject))
            .collect(),
        ..Observations::default()
    };
    let grpc = endpoint.protocol == Protocol::Grpc;
    let proof = proof_for(endpoint.protocol);

    // The handshakes: the positive controls and the admissions at the front door (first
    // wave), then every refusal at every door (second wave, once the server's certificate has
    // named the names it answers to).
    let mut front: BTreeSet<(Presented, TlsVersion)> = BTreeSet::new();
    let mut refusals: BTreeSet<(Presented, TlsVersion)> = BTreeSet::new();
    let controls = control_versions(checks);
    front.extend(controls.iter().map(|&v| (Presented::Client, v)));
    for c in checks {
        if let (CaseKind::Handshake { present, expect }, Some(v)) = (&c.case.kind, c.version) {
            // TLS 1.0 and 1.1 are read from the legacy hello's flight, not tried at the doors.
            if matches!(v, TlsVersion::Tls10 | TlsVersion::Tls11) {
                continue;
            }
            match expect {
                Expect::Rejected => refusals.insert((*present, v)),
                Expect::Accepted => front.insert((*present, v)),
            };
            // Every identity minted with the CA key needs its own positive control, per version.
            if let Presented::Adversary(a) = present
                && a.needs_ca_key()
            {
                front.insert((Presented::MintedClient, v));
            }
        }
    }
    let adversaries: BTreeSet<Adversary> = front
        .iter()
        .chain(&refusals)
        .filter_map(|(p, _)| match p {
            Presented::Adversary(a) => Some(*a),
            _ => None,
        })
        .collect();
    // Key generation (RSA above all) dominates a run's CPU time: one thread per identity.
    let (minted, minted_control) = std::thread::scope(|scope| {
        let control = front
            .iter()
            .any(|k| k.0 == Presented::MintedClient)
            .then(|| scope.spawn(|| pki::mint_control(pki).map_err(|e| e.to_string())));
        let handles: Vec<_> = adversaries
            .iter()
            .map(|&a| {
                (
                    a,
                    scope.spawn(move || pki::mint(pki, a).map_err(|e| e.to_string())),
                )
            })
            .collect();
        let minted: HashMap<Adversary, Result<Minted, String>> = handles
            .into_iter()
            .map(|(a, h)| {
                let minted = h
                    .join()
                    .unwrap_or_else(|_| Err(format!("minting `{}` panicked", a.name())));
                (a, minted)
            })
            .collect();
        let control = match control {
            Some(h) => h
                .join()
                .unwrap_or_else(|_| Err("minting the control panicked".to_owned())),
            None => Err("not minted".to_owned()),
        };
        (minted, control)
    });
    for (adversary, m) in &minted {
        if let Ok(Minted {
            caveat: Some(why), ..
        }) = m
        {
            obs.caveats.insert(*adversary, why.clone());
        }
    }
    let mut identities: HashMap<Presented, Option<Identity>> = HashMap::new();
    for (present, _) in front.iter().chain(&refusals) {
        match identity_for(*present, pki, &minted, &minted_control) {
            Ok(identity) => {
                identities.insert(*present, identity);
            }
            Err(reason) => {
                obs.unavailable.insert(*present, reason);
            }
        }
    }
    // With the resumption case: the sessions each attempt is handed are kept, by attempt.
    let want_resumption = grpc
        && checks
            .iter()
            .any(|c| c.case.kind == CaseKind::SessionResumption);
    let jars: std::sync::Mutex<Vec<(AttemptKey, SessionJar)>> = Default::default();
    let request = |key: &AttemptKey| -> Option<ProbeRequest> {
        let (present, version, door) = key;
        let resume = if want_resumption {
            let jar = SessionJar::default();
            jars.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((key.clone(), jar.clone()));
            Resume::Keep(jar)
        } else {
            Resume::Never
        };
        Some(ProbeRequest {
            addr: endpoint.addr,
            server_name: endpoint.server_name.clone(),
            sni: door.sni.clone(),
            version: *version,
            alpn: door.alpn.protocols(proof),
            identity: identities.get(present)?.clone(),
            server_roots: pki.server_ca.clone(),
            proof,
            timeout: settings.timeout,
            silence: settings.silence,
            resume,
            kx_group: door.kx,
            sig_family: door.sigs,
            framing: door.framing,
            craft: door.craft,
        })
    };

    let wants = |f: &dyn Fn(&CaseKind) -> bool| checks.iter().any(|c| f(&c.case.kind));
    // The legacy hellos: for the version policy, and for the client authentication of a
    // legacy version (read from the same flight).
    let legacy_versions: Vec<TlsVersion> = checks
        .iter()
        .filter_map(|c| c.version)
        .filter(|v| matches!(v, TlsVersion::Tls10 | TlsVersion::Tls11))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let want_plaintext = wants(&|k| matches!(k, CaseKind::PlaintextH2c));
    let grpc_target = |version| GrpcTarget {
        addr: endpoint.addr,
        server_name: endpoint.server_name.clone(),
        identity: Some(pki.client.clone()),
        server_roots: pki.server_ca.clone(),
        version,
        timeout: settings.timeout,
        resume: Resume::Never,
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

    let done = std::sync::atomic::AtomicUsize::new(0);
    let planned = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        use std::sync::atomic::Ordering::SeqCst;
        progress(done.fetch_add(1, SeqCst) + 1, planned.load(SeqCst));
    };
    let run = |keys: Vec<AttemptKey>| async {
        let (keys, requests): (Vec<AttemptKey>, Vec<ProbeRequest>) = keys
            .into_iter()
            .filter_map(|k| request(&k).map(|r| (k, r)))
            .unzip();
        planned.fetch_add(requests.len(), std::sync::atomic::Ordering::SeqCst);
        let outcomes = probe::attempt_all_counted(requests, settings.concurrency, &tick).await;
        keys.into_iter().zip(outcomes).collect::<Vec<_>>()
    };
    // First the front door: a control's answer is the premise of each refusal, and a server
    // that remembers what it verified (by issuer and serial, or by client address) must have
    // met the legitimate client before the forgery of it, or a client without a certificate,
    // arrives.
    let front_wave = run(front.iter().map(|&(p, v)| (p, v, Door::FRONT)).collect());
    let legacy = futures::future::join_all(legacy_versions.iter().map(|v| {
        probe::legacy::attempt(endpoint.addr, &endpoint.server_name, *v, settings.timeout)
    }));
    let all_suites = async {
        if controls.contains(&TlsVersion::Tls12) {
            Some(
                probe::suites::offer_all(endpoint.addr, &endpoint.server_name, settings.timeout)
                    .await,
            )
        } else {
            None
        }
    };
    let plaintext = async {
        if want_plaintext {
            let (prior, upgrade) = tokio::join!(
                probe::plaintext::attempt(endpoint.addr, settings.timeout),
                grpc::h2c_upgrade(endpoint.addr, &endpoint.server_name, settings.timeout)
            );
            (Some(prior), Some(upgrade))
        } else {
            (None, None)
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
    // Under every version: a server may authenticate clients under one and not the other.
    let no_cert_versions: Vec<TlsVersion> = if want_no_cert {
        vec![TlsVersion::Tls12, TlsVersion::Tls13]
    } else {
        vec![]
    };
    let no_cert = futures::future::join_all(
        no_cert_versions
            .iter()
            .map(|v| async move { grpc::no_cert_rpc(&grpc_target(*v)).await }),
    );
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
    // The positive controls first, on every route: the valid client's handshakes (and the minted
    // control's) and its gRPC calls complete before anything without its certificate is tried.
    let (mut handshakes, health, version, speaks_grpc) =
        tokio::join!(front_wave, health, version, speaks_grpc);
    // No session, no claim: a port where no control met a TLS server is not asked the rest, but
    // whether it answers HTTP/2 in plaintext (a finding of its own).
    let (no_session, legacy, plaintext, no_cert, all_suites) = if !handshakes.is_empty()
        && !handshakes.iter().any(|(_, o)| o.tls_version.is_some())
    {
        drop((legacy, no_cert, all_suites));
        let (answer, plaintext) = tokio::join!(
            probe::speech::answer_to_hello(endpoint.addr, &endpoint.server_name, settings.timeout),
            plaintext
        );
        let why = no_session_reason(&endpoint.label, &handshakes, &answer);
        (Some(why), vec![], plaintext, vec![], None)
    } else {
        // The names the server's certificate answers to are doors too.
        let names: Vec<String> = handshakes
            .iter()
            .find_map(|(_, o)| o.server_chain.leaf_der.as_deref())
            .and_then(|der| crate::x509::CertFacts::from_der(der).ok())
            .map(|facts| {
                facts
                    .san
                    .iter()
                    .filter_map(|n| n.strip_prefix("DNS:"))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let doors = DoorSpace::shipped().doors(
            &endpoint.server_name,
            endpoint.protocol,
            &names,
            settings.seed,
        );
        // Economy by behaviour: the cheapest refusal at every door first; every other refusal
        // at the base doors and at one door of each behaviour the cheapest found elsewhere.
        let explorer = refusals
            .iter()
            .map(|k| k.0)
            .find(|p| *p == Presented::None)
            .or_else(|| refusals.iter().next().map(|k| k.0));
        let explore = async {
            let first: Vec<AttemptKey> = refusals
                .iter()
                .filter(|k| Some(k.0) == explorer)
                .flat_map(|&(p, v)| {
                    doors
                        .iter()
                        .filter(move |(d, _)| d.admits(p, v))
                        .map(move |(d, _)| (p, v, d.clone()))
                })
                .collect::<Vec<_>>();
            // The doors that take longest (a cut hello waits between its segments, a hand-built
            // one may be asked for another key share) start first, under the others.
            let (slow, quick): (Vec<AttemptKey>, Vec<AttemptKey>) = first
                .into_iter()
                .partition(|k| k.2.framing.is_some() || k.2.craft.is_some());
            let mut explored = run(slow.into_iter().chain(quick).collect()).await;
            let unjudged = hand_built_premise(&mut explored);
            let reps = class_doors(&explored, &doors);
            let rest: Vec<AttemptKey> = refusals
                .iter()
                .filter(|k| Some(k.0) != explorer)
                .flat_map(|&(p, v)| {
                    doors
                        .iter()
                        .filter(|(_, base)| *base)
                        .map(|(d, _)| d)
                        .chain(reps.iter().filter(|(rv, _)| *rv == v).map(|(_, d)| d))
                        .map(move |d| (p, v, d.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let mut all = explored;
            all.extend(run(rest).await);
            (all, unjudged)
        };
        let ((refused, unjudged), legacy, plaintext, no_cert, all_suites) =
            tokio::join!(explore, legacy, plaintext, no_cert, all_suites);
        if let Some(p) = explorer {
            obs.coverage = coverage(p, &refused, &doors, &unjudged);
            obs.explorer = Some(p);
        }
        handshakes.extend(refused);
        if want_resumption {
            let jars = std::mem::take(&mut *jars.lock().unwrap_or_else(|e| e.into_inner()));
            obs.resumption = Some(resume_sessions(jars, &handshakes, &grpc_target).await);
        }
        (None, legacy, plaintext, no_cert, all_suites)
    };
    // After the handshakes, not among them: `/healthz?full=true` makes the server dial itself,
    // and a server busy refusing this run's handshakes is no evidence about its liveness probe.
    // A GET without an answer is sent again, as the kubelet does before it acts.
    let mut http = Vec::with_capacity(http_paths.len());
    for path in &http_paths {
        http.push(match &endpoint.health {
            Some(authority) => Some(
                crate::endpoint::http_probe(
                    authority,
                    path,
                    settings.timeout,
                    crate::endpoint::HTTP_ATTEMPTS,
                    HTTP_RETRY_PAUSE,
                )
                .await,
            ),
            None => None,
        });
    }
    obs.tls12_suites = all_suites;

    obs.handshakes = handshakes.into_iter().collect();
    obs.no_session = no_session;
    obs.legacy = legacy_versions.into_iter().zip(legacy).collect();
    (obs.plaintext, obs.plaintext_upgrade) = plaintext;
    obs.grpc_health = health_versions.into_iter().zip(health).collect();
    obs.grpc_version = version;
    obs.no_cert_rpc = no_cert_versions.into_iter().zip(no_cert).collect();
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

/// The one reason every session check of a port without a TLS session gives: what the port
/// answered a ClientHello, and when it spoke TLS, what each control met.
fn no_session_reason(
    label: &str,
    controls: &[(AttemptKey, ProbeOutcome)],
    answer: &probe::speech::HelloAnswer,
) -> String {
    use probe::speech::HelloAnswer;
    match answer {
        HelloAnswer::Other(_) => format!("{label} does not speak TLS: {answer}"),
        HelloAnswer::Tls(_) => {
            let met: Vec<String> = controls
                .iter()
                .filter(|(k, _)| k.0 == Presented::Client)
                .map(|((_, v, _), o)| format!("{v}: {}", o.detail))
                .collect();
            format!(
                "{label} speaks TLS but gave the valid client no session ({}): {answer}",
                met.join("; ")
            )
        }
        _ => format!("{label} gave the valid client no TLS session: {answer}"),
    }
}

/// What the valid client's own attempts say about a `--protocol` that does not fit the endpoint.
fn protocol_mismatch(protocol: Protocol, obs: &Observations) -> Option<String> {
    let mut controls = obs
        .handshakes
        .iter()
        .filter(|(k, _)| k.0 == Presented::Client && k.2 == Door::FRONT)
        .map(|(_, o)| o);
    let other_speech =
        |o: &&ProbeOutcome| o.outcome == Outcome::Error && o.stage == probe::Stage::Application;
    let alpn_refused = obs.handshakes.iter().any(|(k, o)| {
        k.0 == Presented::Client
            && k.2 == Door::FRONT
            && o.alert == Some(probe::Alert::NO_APPLICATION_PROTOCOL)
    });
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

/// The sessions handed to refused attempts, each attempt's first offered again without a
/// certificate (at most [`grpc::MAX_RESUMPTION_TRIES`]); the valid client's own session, offered
/// the same way, is each version's control and goes first.
async fn resume_sessions(
    jars: Vec<(AttemptKey, SessionJar)>,
    handshakes: &[(AttemptKey, ProbeOutcome)],
    grpc_target: &dyn Fn(TlsVersion) -> GrpcTarget,
) -> grpc::Resumption {
    let mut resumption = grpc::Resumption::default();
    // Each handed session ranked within its identity and version: the first of every pair is
    // offered before a second of any.
    let mut offers: Vec<(usize, String, Session)> = Vec::new();
    let mut ranks: HashMap<(Presented, TlsVersion), usize> = HashMap::new();
    let mut control: HashMap<TlsVersion, Session> = HashMap::new();
    // An identity the server admitted at some door under a version holds a session it
    // authenticated there: resuming it is that identity's own case (which fails), not a way
    // around client authentication. Only identities refused at every door are origins.
    let admitted: BTreeSet<(Presented, TlsVersion)> = handshakes
        .iter()
        .filter(|(_, o)| o.outcome == Outcome::Accepted)
        .map(|(k, _)| (k.0, k.1))
        .collect();
    // The engine's own hellos first: a cut one was started first for speed, not to be the origin.
    let mut jars = jars;
    jars.sort_by_key(|(k, _)| k.2.framing.is_some());
    for (key, jar) in jars {
        let sessions = std::mem::take(&mut *jar.lock().unwrap_or_else(|e| e.into_inner()));
        let Some((_, o)) = handshakes.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        if key.0 == Presented::Client {
            for s in sessions {
                control.entry(s.version()).or_insert(s);
            }
            continue;
        }
        if o.outcome != Outcome::Rejected || admitted.contains(&(key.0, key.1)) {
            continue;
        }
        resumption.refused += 1;
        let Some(session) = sessions.into_iter().next() else {
            continue;
        };
        resumption.handed += 1;
        let rank = ranks.entry((key.0, key.1)).or_default();
        let origin = format!(
            "`{}` under {} with {}",
            key.0.label(),
            key.1,
            o.door_words()
        );
        offers.push((*rank, origin, session));
        *rank += 1;
    }
    offers.sort_by_key(|(rank, _, _)| *rank);
    offers.truncate(grpc::MAX_RESUMPTION_TRIES);
    let offers: Vec<(String, Session)> = offers.into_iter().map(|(_, o, s)| (o, s)).collect();
    let versions: BTreeSet<TlsVersion> = offers.iter().map(|(_, s)| s.version()).collect();
    resumption.controls = futures::future::join_all(versions.into_iter().filter_map(|v| {
        let session = control.remove(&v)?;
        Some(async move {
            grpc::resumed_call(&grpc_target(v), "the valid client".into(), session).await
        })
    }))
    .await;
    resumption.tries = futures::future::join_all(offers.into_iter().map(|(origin, session)| {
        let target = grpc_target(session.version());
        async move { grpc::resumed_call(&target, origin, session).await }
    }))
    .await;
    resumption
}

/// One door of each behaviour the explorer's attempts showed at the doors that are not base,
/// per version: a behaviour a base door showed too is tried there already.
pub(super) fn class_doors(
    explored: &[(AttemptKey, ProbeOutcome)],
    doors: &[(Door, bool)],
) -> Vec<(TlsVersion, Door)> {
    let is_base = |d: &Door| doors.iter().any(|(door, base)| door == d && *base);
    // The base doors' behaviours first: a behaviour one of them showed is tried there already.
    let (base, others): (Vec<_>, Vec<_>) = explored.iter().partition(|(k, _)| is_base(&k.2));
    let mut classes: Vec<(TlsVersion, DoorClass)> = Vec::new();
    let mut reps: Vec<(TlsVersion, Door)> = Vec::new();
    for ((_, v, door), o) in base.into_iter().chain(others) {
        if classes.iter().any(|(cv, c)| cv == v && c.holds(o)) {
            continue;
        }
        classes.extend(
            DoorClass::group([(o.door_words(), o)])
                .into_iter()
                .map(|c| (*v, c)),
        );
        // A hand-built door carries no certificate: the other refusals cannot be tried there.
        if !is_base(door) && door.craft.is_none() && !shut_at_hello(o) {
            reps.push((*v, door.clone()));
        }
    }
    reps
}

/// Whether the server refused the attempt before its own certificate went out, so before any
/// client could have sent one: on the ClientHello alone (no chain for the signature algorithms
/// offered, an ALPN it does not speak). Every identity sends the same engine hello at a door, so
/// the door is shut to all of them: no other refusal is tried there.
pub(super) fn shut_at_hello(o: &ProbeOutcome) -> bool {
    o.outcome == Outcome::Rejected
        && o.stage == probe::Stage::Handshake
        && o.server_chain.sha256.is_empty()
        && !o.client_cert_requested
        && o.crafted.is_none()
}

/// The hand-built client's premise, per TLS version: at the front door its handshake must reach
/// the server's judgement (admitted; refused after its handshake, or under TLS 1.2 after its
/// flight, the empty Certificate included). Otherwise that version's hand-built doors judge
/// nothing: their attempts are dropped, and why is returned for the coverage to say.
pub(super) fn hand_built_premise(
    explored: &mut Vec<(AttemptKey, ProbeOutcome)>,
) -> BTreeMap<TlsVersion, String> {
    let mut unjudged = BTreeMap::new();
    for (key, front) in explored.iter().filter(|(k, _)| k.2 == Door::CRAFTED_FRONT) {
        let held = match front.outcome {
            Outcome::Accepted => true,
            Outcome::Rejected => {
                front.stage != probe::Stage::Handshake || front.flight_read == Some(true)
            }
            _ => false,
        };
        if !held {
            unjudged.insert(
                key.1,
                format!(
                    "the hand-built client's own handshake at the front door did not reach the server's judgement ({}), so its doors were not judged",
                    front.detail
                ),
            );
        }
    }
    explored.retain(|(k, _)| k.2.craft.is_none() || !unjudged.contains_key(&k.1));
    unjudged
}

/// What `explorer`'s attempts covered, per version and dimension: the variants tried, the
/// distinct behaviours among them and the front door, and the doors that behaved unlike it.
pub(super) fn coverage(
    explorer: Presented,
    attempts: &[(AttemptKey, ProbeOutcome)],
    doors: &[(Door, bool)],
    unjudged: &BTreeMap<TlsVersion, String>,
) -> BTreeMap<TlsVersion, Vec<Coverage>> {
    let mut out: BTreeMap<TlsVersion, Vec<Coverage>> = BTreeMap::new();
    let versions: BTreeSet<TlsVersion> = attempts
        .iter()
        .filter(|(k, _)| k.0 == explorer)
        .map(|(k, _)| k.1)
        .collect();
    for v in versions {
        let at = |d: &Door| {
            attempts
                .iter()
                .find(|(k, _)| k.0 == explorer && k.1 == v && k.2 == *d)
                .map(|(_, o)| o)
        };
        let front = at(&Door::FRONT);
        for dimension in Dimension::ALL {
            let tried: Vec<&ProbeOutcome> = doors
                .iter()
                .filter(|(d, _)| d.dimension() == dimension)
                .filter_map(|(d, _)| at(d))
                .collect();
            if tried.is_empty() {
                if let (Dimension::HandBuilt, Some(why)) = (dimension, unjudged.get(&v)) {
                    out.entry(v).or_default().push(Coverage {
                        dimension: dimension.words().to_owned(),
                        variants: 0,
                        behaviours: 0,
                        apart: vec![],
                        unjudged: Some(why.to_owned()),
                    });
                }
                continue;
            }
            let classes = DoorClass::group(
                front
                    .into_iter()
                    .chain(tried.iter().copied())
                    .map(|o| (o.door_words(), o)),
            );
            // Each behaviour unlike the front door's, once: how many doors, the first, what.
            let apart: Vec<String> = classes
                .iter()
                .filter(|c| front.is_some_and(|f| !c.holds(f)))
                .map(|c| {
                    let o = &c.attempt;
                    let what = super::judgement::behaviour_words(o);
                    let chosen = match &o.alpn {
                        Some(p) => format!("ALPN `{p}` chosen"),
                        None => "no ALPN chosen".to_owned(),
                    };
                    match c.doors.len() {
                        1 => format!("{}: {what}, {chosen}", c.doors[0]),
                        n => format!("{n} doors, the first {}: {what}, {chosen}", c.doors[0]),
                    }
                })
                .collect();
            out.entry(v).or_default().push(Coverage {
                dimension: dimension.words().to_owned(),
                variants: tried.len(),
                behaviours: classes.len(),
                apart,
                unjudged: None,
            });
        }
    }
    out
}
