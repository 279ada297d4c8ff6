//! The handshake cases: a refusal must hold at every door tried (SNI and ALPN) and only counts next to the
//! valid client's admission (the positive control); the valid client must be admitted, and for
//! gRPC served. A TLS version the server cannot carry skips its cases with the cause.

use std::collections::BTreeSet;

use super::doors::Dimension;
use super::judgement::{Judgement, attempt_evidence, refusal_words};
use super::observe::Observations;
use super::observe::{AlpnOffer, Door};
use crate::grpc::ServingStatus;
use crate::probe::suites::SuiteOffer;
use crate::probe::{AcceptanceBasis, Alert, Outcome, ProbeOutcome, TlsVersion};
use crate::report::{DoorClass, HealthSeen, Observed, Verdict};
use crate::suite::{Check, Expect, Presented};

/// Why TLS version `v` cannot carry the mTLS checks at this endpoint, from the valid client's
/// attempt: the server does not offer it, or cannot negotiate it before client authentication is
/// even reached (no cipher suite in common). `None`: `v` was negotiated, or failed for a reason
/// that is the checks' business.
pub fn version_refusal(obs: &Observations, v: TlsVersion) -> Option<String> {
    let o = obs.control(v)?;
    match o.alert {
        Some(Alert::PROTOCOL_VERSION) => Some(format!(
            "the server does not offer {v} (protocol_version alert to the valid client)"
        )),
        Some(alert @ (Alert::HANDSHAKE_FAILURE | Alert::INSUFFICIENT_SECURITY))
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

/// Why TLS version `v` has no verdict at this endpoint: the prober's own client found no suite in
/// common with the server, yet a ClientHello offering every suite any client could use got a
/// ServerHello. The server speaks `v` to clients this prober cannot imitate, so nothing it does
/// under `v` can be judged here, and a run must not pass as if nobody could speak it.
pub fn version_unspeakable(obs: &Observations, v: TlsVersion) -> Option<String> {
    version_refusal(obs, v)?;
    if v != TlsVersion::Tls12 {
        return None;
    }
    match obs.tls12_suites.as_ref()? {
        SuiteOffer::Chosen {
            suite,
            certificate_request,
            ..
        } => {
            let asks = match certificate_request {
                Some(true) => "it asked for a client certificate under it",
                Some(false) => {
                    "it asked for NO client certificate under it: any client speaking this suite may be let in without one"
                }
                None => "whether it asks for a client certificate under it was not seen",
            };
            Some(format!(
                "no verdict under {v}: the server negotiates {v} with {suite}, a suite this prober's TLS engine (rustls: ECDHE with AES-GCM or ChaCha20-Poly1305 only) cannot speak; {asks}. Restrict the repo-server's TLS 1.2 suites to AEAD ones (reposerver.tls.ciphers) or its minimum version to 1.3 (reposerver.tls.minversion)"
            ))
        }
        _ => None,
    }
}

/// The suite under which TLS version `v` is open to a client without a certificate, shown by the
/// server's own flight: `v` is unspeakable for this prober ([`version_unspeakable`]), and the
/// all-suites offer's flight, read to its ServerHelloDone, held no CertificateRequest. Under TLS
/// 1.2 a server that does not send one cannot ask for a certificate later (RFC 5246 §7.4.4), so
/// any client that speaks that suite completes the handshake without one.
pub fn open_under_unspeakable_suite(obs: &Observations, v: TlsVersion) -> Option<&str> {
    version_unspeakable(obs, v)?;
    match obs.tls12_suites.as_ref()? {
        SuiteOffer::Chosen {
            suite,
            certificate_request: Some(false),
            ..
        } => Some(suite),
        _ => None,
    }
}

/// The valid client's positive control under `v`: `Ok(basis)` if it was admitted.
pub(super) fn positive_control(
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
            return Err(match &obs.stand_in {
                Some(why) => format!(
                    "the stand-in client was not admitted under {v} ({}: {}): {why}",
                    o.outcome, o.detail
                ),
                None => format!(
                    "the valid client was not admitted under {v} ({}: {})",
                    o.outcome, o.detail
                ),
            });
        }
    };
    if grpc {
        match obs.grpc_health.get(&v) {
            Some(Ok(a)) if a.status == ServingStatus::Serving => {}
            Some(Ok(a)) => return Err(format!("Health/Check under {v} answered {}", a.status)),
            Some(Err(e)) => return Err(format!("Health/Check under {v} failed: {e}")),
            None => return Err(format!("Health/Check was not tried under {v}")),
        }
    }
    Ok(basis)
}

/// The minted positive control under `v`: `Ok` if a valid leaf minted with the CA key (sent with
/// the same chain as the minted identities) was admitted.
pub(super) fn minted_control(obs: &Observations, v: TlsVersion) -> Result<(), String> {
    if let Some(why) = obs.unavailable.get(&Presented::MintedClient) {
        return Err(format!(
            "no valid certificate could be minted with the CA key ({why})"
        ));
    }
    match obs.handshakes.get(&super::observe::minted_control_key(v)) {
        Some(o) if o.outcome == Outcome::Accepted => Ok(()),
        Some(o) => Err(format!(
            "a valid client certificate minted with the same CA key and sent with the same chain was not admitted under {v} ({}: {})",
            o.outcome, o.detail
        )),
        None => Err(format!(
            "the certificate minted with the CA key was not tried under {v}"
        )),
    }
}

/// The version to judge connection-level checks on: 1.3 when the server speaks it, else 1.2.
pub(super) fn preferred_version(obs: &Observations) -> TlsVersion {
    if version_refusal(obs, TlsVersion::Tls13).is_some() {
        TlsVersion::Tls12
    } else {
        TlsVersion::Tls13
    }
}

/// Whether `o` counts as an acceptance. Silence does not, when the server showed the valid client
/// a positive sign (a ticket, data) on the same endpoint and version: this client got neither that
/// sign nor a refusal, so the server's verdict on it was never seen.
pub(super) fn accepted(o: &ProbeOutcome, control: Option<AcceptanceBasis>) -> Result<bool, String> {
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

pub(super) fn judge_handshake(
    check: &Check,
    present: Presented,
    expect: Expect,
    obs: &Observations,
    grpc: bool,
) -> Judgement {
    let v = check.version.expect("handshake checks are per version");
    if matches!(v, TlsVersion::Tls10 | TlsVersion::Tls11) {
        return super::transport::judge_legacy_client_auth(obs.legacy.get(&v), v);
    }
    if let Some(reason) = obs.unavailable.get(&present) {
        return Judgement::not_judged(format!(
            "identity `{}` not available: {reason}",
            present.label()
        ));
    }
    if expect == Expect::Rejected
        && let Some(suite) = open_under_unspeakable_suite(obs, v)
    {
        return Judgement::new(
            Verdict::Fail,
            format!(
                "OPEN under {v}: the server negotiates {suite} and its flight up to ServerHelloDone holds NO CertificateRequest, so a client speaking that suite completes the handshake without any certificate (RFC 5246 §7.4.4); this prober's TLS engine cannot speak the suite itself"
            ),
        )
        .evidence(vec![format!(
            "all-suites TLS 1.2 ClientHello: ServerHello chose {suite}; no CertificateRequest before ServerHelloDone"
        )]);
    }
    if let Some(reason) = version_unspeakable(obs, v) {
        return Judgement::new(Verdict::Error, reason);
    }
    if let Some(reason) = version_refusal(obs, v) {
        return Judgement::not_applicable(reason);
    }
    match expect {
        Expect::Rejected => judge_refusal(check, present, v, obs, grpc),
        Expect::Accepted => judge_admission(present, v, obs, grpc),
    }
}

/// A negative case: every SNI variant must be refused, and the valid client admitted.
pub(super) fn judge_refusal(
    check: &Check,
    present: Presented,
    v: TlsVersion,
    obs: &Observations,
    grpc: bool,
) -> Judgement {
    let mut at_doors: Vec<(&Door, &ProbeOutcome)> = obs
        .handshakes
        .iter()
        .filter(|(k, _)| k.0 == present && k.1 == v)
        .map(|(k, o)| (&k.2, o))
        .collect();
    if at_doors.is_empty() {
        return Judgement::new(Verdict::Error, "attempt was not run");
    }
    at_doors.sort_by(|a, b| a.0.cmp(b.0));
    let attempts: Vec<&ProbeOutcome> = at_doors.iter().map(|(_, o)| *o).collect();
    let control = positive_control(obs, v, grpc);
    let control_basis = control.as_ref().ok().copied();
    let door_classes = DoorClass::group(attempts.iter().map(|o| (o.door_words(), *o)));
    let evidence: Vec<String> = door_classes
        .iter()
        .map(|class| super::judgement::class_evidence(class, &attempts))
        .collect();
    // The identity tried at every door carries what its attempts covered.
    let coverage = match obs.explorer {
        Some(p) if p == present => obs.coverage.get(&v).cloned().unwrap_or_default(),
        _ => vec![],
    };
    let observed = Observed::Doors {
        door_classes,
        coverage,
    };
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
                    format!("ACCEPTED with {}: {}", o.door_words(), o.detail),
                ));
            }
            Ok(false) => {}
            Err(why) => unseen.push(format!("with {}: {why}", o.door_words())),
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
            format!("{what} with {}: {}", o.door_words(), o.detail),
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
    if let Presented::Adversary(adversary) = present
        && adversary.needs_ca_key()
        && let Err(why) = minted_control(obs, v)
    {
        return done(Judgement::new(
            Verdict::Error,
            format!(
                "no verdict: rejected, but {why}; the CA key given is then not one the server trusts for clients, so this refusal may be for the issuer, not for what the case tests (give the key of the CA or intermediate that issued the client certificate)"
            ),
        ));
    }
    // A pinned alert is the reason the case tests: it holds where legitimate clients come in
    // (another ALPN may be refused for the protocol alone, before the certificate is looked at).
    if let Some(want) = check.case.pinned_alert(v)
        && let Some((_, o)) = at_doors
            .iter()
            .find(|(d, o)| d.alpn == AlpnOffer::Front && d.craft.is_none() && o.alert != Some(want))
    {
        return done(Judgement::new(
            Verdict::Fail,
            format!(
                "rejected with {} under {}, but the suite pins alert `{want}`",
                refusal_words(o),
                o.door_words()
            ),
        ));
    }
    let hows: BTreeSet<String> = attempts.iter().map(|o| refusal_words(o)).collect();
    let mut kinds = vec![
        format!(
            "{} server names",
            attempts
                .iter()
                .map(|o| &o.sni)
                .collect::<BTreeSet<_>>()
                .len()
        ),
        format!(
            "{} ALPN offers",
            attempts
                .iter()
                .map(|o| &o.alpn_offered)
                .collect::<BTreeSet<_>>()
                .len()
        ),
    ];
    // The dimensions past the name and the ALPN offer, each door counted once by what it varies.
    for dimension in Dimension::ALL {
        let n = at_doors
            .iter()
            .filter(|(d, _)| d.dimension() == dimension)
            .count();
        if let (Some(what), 1..) = (dimension.counted(), n) {
            kinds.push(format!("{n} {what}"));
        }
    }
    let mut reason = format!(
        "rejected {} with {} at each of {} doors ({}); the valid client was admitted",
        attempts[0].stage,
        hows.into_iter().collect::<Vec<_>>().join(" / "),
        attempts.len(),
        kinds.join(", "),
    );
    if let Presented::Adversary(adversary) = present
        && let Some(caveat) = obs.caveats.get(&adversary)
    {
        reason.push_str(&format!(". WEAKER EVIDENCE: {caveat}"));
    }
    done(Judgement::new(Verdict::Pass, reason))
}

/// The valid client's case: admitted, and for gRPC served by Health/Check.
pub(super) fn judge_admission(
    present: Presented,
    v: TlsVersion,
    obs: &Observations,
    grpc: bool,
) -> Judgement {
    if let Some(why) = &obs.stand_in {
        return Judgement::not_judged(format!(
            "no client identity of this installation to present: {why}"
        ));
    }
    let Some(o) = obs.handshakes.get(&(present, v, Door::FRONT)) else {
        return Judgement::new(Verdict::Error, "attempt was not run");
    };
    let mut evidence = attempt_evidence(o);
    let health = obs.grpc_health.get(&v);
    let observed = Observed::Admission {
        attempt: o.clone(),
        grpc_health: health.map(|r| match r {
            Ok(a) => HealthSeen::Answer {
                status: a.status,
                rpc_us: a.rpc_us,
            },
            Err(e) => HealthSeen::Failed { error: e.clone() },
        }),
    };
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
            Some(Ok(a)) if a.status == ServingStatus::Serving => {
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
