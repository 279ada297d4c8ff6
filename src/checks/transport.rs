//! The transport around the handshakes: legacy ClientHellos and plaintext HTTP/2 must be refused,
//! the server must prove its identity, and what each TLS version did for the valid client.

use super::handshake::{preferred_version, version_refusal, version_unspeakable};
use super::judgement::{Judgement, attempt_evidence};
use super::observe::Observations;
use crate::endpoint::Endpoint;
use crate::probe::{ChainFailure, Outcome, ProbeOutcome, TlsVersion};
use crate::report::{DoorClass, Observed, PolicyLine, Verdict};

pub(super) fn judge_expect_refusal(o: &ProbeOutcome, what: &str) -> Judgement {
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
        .observed(Observed::Attempt { attempt: o.clone() })
        .evidence(attempt_evidence(o));
    j.duration_ms = o.timings.total_us as f64 / 1000.0;
    j
}

/// Plaintext on the TLS port, every way a client may ask for it: HTTP/2 with prior knowledge
/// and an HTTP/1.1 upgrade to h2c followed by a gRPC call. Refused only when each way was.
pub(super) fn judge_plaintext(obs: &Observations) -> Judgement {
    let ways: Vec<(&str, &ProbeOutcome)> = [
        ("plaintext HTTP/2 (prior knowledge)", obs.plaintext.as_ref()),
        (
            "plaintext HTTP/1.1 Upgrade: h2c",
            obs.plaintext_upgrade.as_ref(),
        ),
    ]
    .into_iter()
    .filter_map(|(way, o)| Some((way, o?)))
    .collect();
    match ways.as_slice() {
        [] => return Judgement::new(Verdict::Error, "attempt was not run"),
        [(way, o)] => return judge_expect_refusal(o, way),
        _ => {}
    }
    let evidence: Vec<String> = ways
        .iter()
        .flat_map(|(way, o)| {
            attempt_evidence(o)
                .into_iter()
                .map(move |e| format!("{way}: {e}"))
        })
        .collect();
    let door_classes = DoorClass::group(ways.iter().map(|(way, o)| ((*way).to_owned(), *o)));
    let found = |outcomes: &[Outcome]| ways.iter().find(|(_, o)| outcomes.contains(&o.outcome));
    let (verdict, reason) = if let Some((way, o)) = found(&[Outcome::Accepted]) {
        (Verdict::Fail, format!("{way} ACCEPTED: {}", o.detail))
    } else if let Some((way, o)) = found(&[Outcome::Inconclusive, Outcome::Error]) {
        (
            Verdict::Error,
            format!("inconclusive ({way}): {}", o.detail),
        )
    } else {
        let each: Vec<String> = ways
            .iter()
            .map(|(way, o)| format!("{way}: {}", o.detail))
            .collect();
        (
            Verdict::Pass,
            format!("refused every way: {}", each.join("; ")),
        )
    };
    let mut j = Judgement::new(verdict, reason)
        .observed(Observed::Doors {
            door_classes,
            coverage: vec![],
        })
        .evidence(evidence);
    j.duration_ms = ways
        .iter()
        .map(|(_, o)| o.timings.total_us as f64 / 1000.0)
        .fold(0.0, f64::max);
    j
}

pub(super) fn judge_server_identity(obs: &Observations, endpoint: &Endpoint) -> Judgement {
    // The stand-in's CA is nobody's server CA: verifying against it would blame the server.
    // The installation's own server CA (from its Secrets) verifies it without a client identity.
    if let (Some(why), None) = (&obs.stand_in, &obs.stand_in_server_ca) {
        return Judgement::not_judged(format!(
            "no server CA of this installation to verify against (give --server-ca or --pki; neither the Secret's server-ca.crt nor argocd-repo-server-tls's ca.crt could be read): {why}"
        ));
    }
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
                Some(false) => {
                    let error = chain.verify_error.clone().unwrap_or_default();
                    let issuer = chain
                        .leaf_der
                        .as_deref()
                        .and_then(|d| crate::x509::CertFacts::from_der(d).ok())
                        .map(|f| f.issuer);
                    // Another CA than the bundle's (a client-CA-only rotation leaves the server
                    // certificate with its old CA): say so, and how to give the right one.
                    let other_ca = match issuer {
                        Some(issuer)
                            if matches!(
                                chain.verify_failure,
                                Some(ChainFailure::UnknownIssuer | ChainFailure::BadSignature)
                            ) =>
                        {
                            format!(
                                "; the server certificate (issuer `{issuer}`) was not signed by the server CA this run verifies against ({}{}): if the repo-server's certificate comes from another CA than the bundle's (e.g. only the client CA was rotated), give that CA with --server-ca",
                                if obs.server_cas.contains(&issuer) {
                                    "a CA of the same name but another key: "
                                } else {
                                    ""
                                },
                                obs.server_cas
                                    .iter()
                                    .map(|n| format!("`{n}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                        _ => String::new(),
                    };
                    Judgement::new(
                        Verdict::Fail,
                        format!(
                            "the chain does NOT verify for `{}`: {error}{other_ca}",
                            endpoint.server_name,
                        ),
                    )
                }
                None => Judgement::not_judged("no server CA configured"),
            };
            j.observed(Observed::ServerIdentity {
                server_chain: chain.clone(),
                tls_version: o.tls_version.clone(),
            })
            .evidence(evidence)
        }
        None => Judgement::new(Verdict::Error, "no valid-client handshake was run"),
    }
}

/// Records what each TLS version did for the valid client; fails to reach a verdict only when
/// neither version can carry the checks.
pub(super) fn judge_tls_policy(obs: &Observations) -> Judgement {
    let mut lines = Vec::new();
    let mut observed = std::collections::BTreeMap::new();
    let mut usable = 0;
    for v in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let Some(o) = obs.control(v) else { continue };
        let line = match (version_refusal(obs, v), &o.cipher_suite, &o.tls_version) {
            (Some(_), _, _) if let Some(why) = version_unspeakable(obs, v) => why,
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
            PolicyLine {
                line: line.clone(),
                alert: o.alert,
                cipher_suite: o.cipher_suite.clone(),
            },
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
        .observed(Observed::TlsPolicy(observed))
        .evidence(lines)
}

/// The CA names the server announced in its CertificateRequests (Go sends its whole client-CA
/// pool) against the operator's: any other name is a trust anchor nobody approved.
pub(super) fn judge_trust_store(obs: &Observations) -> Judgement {
    if let Some(why) = &obs.stand_in {
        return Judgement::not_judged(format!(
            "the operator's client CAs are not known to this run: {why}"
        ));
    }
    let requests: Vec<&ProbeOutcome> = obs
        .handshakes
        .values()
        .filter(|o| o.client_cert_requested)
        .collect();
    let advertised: std::collections::BTreeSet<String> = requests
        .iter()
        .flat_map(|o| o.acceptable_ca_names.iter().cloned())
        .collect();
    let mut approved = obs.operator_cas.clone();
    approved.push(format!("O={}", crate::pki::HEALTH_CHECK_ORGANIZATION));
    let observed = Observed::TrustStore {
        advertised_ca_names: advertised.iter().cloned().collect(),
        approved_ca_names: approved.clone(),
    };
    if requests.is_empty() {
        return Judgement::not_applicable(
            "the server sent no CertificateRequest: it announced no client CAs (the handshake checks judge a server that asks for no certificate)",
        )
        .observed(observed);
    }
    if advertised.is_empty() {
        return Judgement::not_applicable(
            "not advertised: the server's CertificateRequest names no CA, so its trust store cannot be read from the handshake",
        )
        .observed(observed);
    }
    let evidence: Vec<String> = advertised
        .iter()
        .map(|n| format!("advertised: {n}"))
        .collect();
    let unapproved: Vec<&String> = advertised
        .iter()
        .filter(|n| !approved.contains(n))
        .collect();
    let j = if unapproved.is_empty() {
        Judgement::new(
            Verdict::Pass,
            format!(
                "the server advertises only approved client CAs: {}",
                advertised.iter().cloned().collect::<Vec<_>>().join("; ")
            ),
        )
    } else {
        Judgement::new(
            Verdict::Fail,
            format!(
                "the server trusts client CAs nobody approved: {} (approved: {}); a client holding a certificate from any of them gets in",
                unapproved
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                approved.join("; ")
            ),
        )
    };
    j.observed(observed).evidence(evidence)
}

/// A client without a certificate under TLS 1.0 or 1.1, from the legacy hello's cleartext flight
/// (RFC 4346 §7.4.4): a server that refuses the version gives no such client a session; one that
/// speaks it and asks for a certificate passes (the version policy fails it on its own); one whose
/// flight ends without a CertificateRequest lets a client without any certificate complete the
/// handshake.
pub(super) fn judge_legacy_client_auth(attempt: Option<&ProbeOutcome>, v: TlsVersion) -> Judgement {
    let Some(o) = attempt else {
        return Judgement::new(Verdict::Error, "attempt was not run");
    };
    let evidence = attempt_evidence(o);
    let j = match (o.outcome, o.client_cert_requested, o.flight_read) {
        (Outcome::Rejected, ..) => Judgement::new(
            Verdict::Pass,
            format!(
                "the server refuses {v} itself ({}): no client gets a {v} session, with a certificate or without",
                o.detail
            ),
        ),
        (Outcome::Accepted, true, _) => Judgement::new(
            Verdict::Pass,
            format!(
                "the server speaks {v} and its flight asks for a client certificate ({} CA names); speaking {v} at all is tls/versions/{v}'s matter",
                o.acceptable_ca_names.len(),
            ),
        ),
        (Outcome::Accepted, false, Some(true)) => Judgement::new(
            Verdict::Fail,
            format!(
                "OPEN under {v}: the server speaks it and its flight up to ServerHelloDone holds NO CertificateRequest, so a client without any certificate completes a {v} handshake (RFC 4346 §7.4.4)"
            ),
        ),
        (Outcome::Accepted, false, _) => Judgement::new(
            Verdict::Error,
            format!(
                "the server speaks {v}, but its flight was not read to its end: whether it asks for a client certificate was not seen ({})",
                o.detail
            ),
        ),
        _ => Judgement::new(
            Verdict::Error,
            format!("no answer to judge under {v}: {}", o.detail),
        ),
    };
    j.evidence(evidence)
}
