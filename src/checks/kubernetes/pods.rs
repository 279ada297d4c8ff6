//! `pod/*`, `transport/port-forward` and `baseline/*` cases on the repo-server replicas: still
//! Ready and not restarted after the probes, no failed health probes, every port-forward
//! relayed, why a replica that cannot run stopped, and the no-mTLS baseline.

use super::Finding;
use crate::kubernetes::observed::{Baseline, BaselineAttempt, ReplicaObservation, StoppedReplica};
use crate::probe::Outcome;
use crate::suite::KubeCase;

/// A probed replica after the probes: still Ready, no restarts, no `Unhealthy` events, and every
/// connection relayed by its port-forwards.
pub fn judge_replica(replica: &ReplicaObservation) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = &replica.before.name;
    match &replica.after {
        Ok(Some(now)) => {
            out.push(if now.ready {
                Finding::pass(KubeCase::PodReady, format!("pod/{name} is Ready"))
            } else {
                Finding::fail(KubeCase::PodReady, format!("pod/{name} is not Ready"))
            });
            out.push(if now.restarts == replica.before.restarts {
                Finding::pass(
                    KubeCase::PodRestartsUnchanged,
                    format!("pod/{name}: {} restarts before and after", now.restarts),
                )
            } else {
                Finding::fail(
                    KubeCase::PodRestartsUnchanged,
                    format!(
                        "pod/{name} restarted during the run ({} -> {} restarts): a failing liveness probe (GET /healthz?full=true) shows up exactly like this",
                        replica.before.restarts, now.restarts
                    ),
                )
            });
        }
        Ok(None) => out.push(Finding::fail(
            KubeCase::PodReady,
            format!("pod/{name} is gone: it was replaced during the run"),
        )),
        Err(e) => out.push(Finding::inconclusive(KubeCase::PodReady, e.to_string())),
    }
    match &replica.probe_failures {
        Ok(events) if events.is_empty() => out.push(Finding::pass(
            KubeCase::PodNoProbeFailures,
            format!("pod/{name}: no Unhealthy events since the rollout"),
        )),
        Ok(events) => out.push(Finding::fail(
            KubeCase::PodNoProbeFailures,
            format!("pod/{name}: {}", events.join("; ")),
        )),
        Err(e) => out.push(Finding::inconclusive(
            KubeCase::PodNoProbeFailures,
            e.to_string(),
        )),
    }
    if let Some(addrs) = &replica.direct {
        out.push(Finding::not_applicable(
            KubeCase::PortForward,
            format!("pod/{name} was reached directly at {addrs}: no relay in between"),
        ));
    }
    for relay in &replica.relays {
        out.push(match &relay.failure {
            None => Finding::pass(
                KubeCase::PortForward,
                match relay.peer_closed {
                    0 => format!("{}: every connection was relayed", relay.label),
                    n => format!(
                        "{}: every connection was relayed ({n} closed by the server under the relay, as refusals are)",
                        relay.label
                    ),
                },
            ),
            Some(failed) => Finding::inconclusive(
                KubeCase::PortForward,
                format!("{failed}; a refusal seen through it may be the relay's"),
            ),
        });
    }
    out
}

/// A replica whose containers do not run cannot serve: `pod/ready` fails, in words an operator
/// can act on: the containers' state, the last error its previous run logged, and for a known
/// startup failure what to change.
pub fn judge_stopped(stopped: &StoppedReplica) -> Finding {
    let pod = &stopped.pod;
    let mut words = format!(
        "pod/{} cannot serve: {}",
        pod.name,
        if pod.state.is_empty() {
            "its containers are not running"
        } else {
            &pod.state
        }
    );
    if let Some(last) = &stopped.last_error {
        words.push_str(&format!("; its last run logged: {last}"));
        if let Some(fix) = startup_failure_fix(last) {
            words.push_str(&format!(". {fix}"));
        }
    }
    Finding::fail(KubeCase::PodReady, words)
}

/// What to change for a startup failure the repo-server is known for.
pub fn startup_failure_fix(message: &str) -> Option<&'static str> {
    // An empty or non-PEM client CA file: Argo CD's LoadX509CertPool refuses it ("invalid cert
    // data in <path>") and the repo-server exits; it does not fall back to open.
    if message.contains("invalid cert data in") {
        return Some(
            "The client CA file exists but holds no PEM certificate (an empty or garbled `client-ca.crt` in Secret argocd-repo-server-mtls): \
             the repo-server refuses to start rather than run open. Put the PEM of the client CA(s) in `client-ca.crt` (config/client-ca-parses names the Secret's problem)",
        );
    }
    // Argo CD 3.5 gives --client-ca-path a default, so a repo-server that had TLS turned off
    // (reposerver.disable.tls, common behind a mesh) refuses to start after the upgrade.
    message
        .contains("--client-ca-path cannot be used when --disable-tls is enabled")
        .then_some(
            "This is the Argo CD 3.5 upgrade hazard: reposerver.disable.tls is \"true\" and 3.5 sets a client CA path by default. \
             Either remove reposerver.disable.tls from argocd-cmd-params-cm (mTLS needs TLS), or, to keep TLS off behind a mesh, \
             add the container argument `--client-ca-path=` to the repo-server (Helm: repoServer.extraArgs; the Operator: spec.repo.extraRepoCommandArgs; plain manifests), e.g. \
             kubectl patch deployment <repo-server> --type json -p '[{\"op\":\"add\",\"path\":\"/spec/template/spec/containers/0/args/-\",\"value\":\"--client-ca-path=\"}]'. \
             Setting ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" does NOT work: Argo CD treats an empty value as unset and falls back to the default path",
        )
}

/// The migration baseline (`baseline/no-cert-accepted-before-mtls`), per pod: each must have
/// admitted a client without a certificate before mTLS was configured, or later refusals cannot
/// be credited to mTLS. Nothing seen through a failing port-forward counts. An installation found
/// running has no "before": not applicable, which does not hold the gate.
pub fn judge_baseline(baseline: &Baseline) -> Vec<(Option<&str>, Finding)> {
    const ID: KubeCase = KubeCase::BaselineNoCertAccepted;
    match baseline {
        Baseline::ExistingInstallation => vec![(
            None,
            Finding::not_applicable(
                ID,
                "existing installation: there is no 'before' state to record (--install and the kind target record it)",
            ),
        )],
        Baseline::Attempts(attempts) => attempts
            .iter()
            .map(|a| (Some(a.pod.as_str()), judge_baseline_attempt(a)))
            .collect(),
    }
}

fn judge_baseline_attempt(attempt: &BaselineAttempt) -> Finding {
    const ID: KubeCase = KubeCase::BaselineNoCertAccepted;
    let what = attempt.describe();
    match attempt.outcome.outcome {
        _ if attempt.relay_failed => {
            Finding::inconclusive(ID, format!("{what}; the port-forward failed"))
        }
        Outcome::Accepted => Finding::pass(ID, what),
        Outcome::Rejected => Finding::fail(
            ID,
            format!(
                "{what}: already refused before mTLS was configured, so later refusals cannot be attributed to it"
            ),
        ),
        _ => Finding::inconclusive(ID, what),
    }
}

/// Whether the TLS peer on the replica's 8081 is the repo-server itself: it announces its own
/// health-check certificate (`O=Argo CD Health Check`) among its acceptable client CAs; a mesh
/// proxy or another TLS server there does not. A peer that asks for no certificate is not judged
/// here (the handshake cases judge an open server); no handshake is no verdict.
pub fn judge_peer(replica: &ReplicaObservation) -> Finding {
    let id = KubeCase::PeerIsRepoServer;
    let pod = &replica.before.name;
    let a = &replica.announcement;
    let health = format!("O={}", crate::pki::HEALTH_CHECK_ORGANIZATION);
    if a.tls_version.is_none() {
        return Finding::inconclusive(
            id,
            format!("pod/{pod}: no TLS handshake on 8081 to read: {}", a.detail),
        );
    }
    if !a.client_cert_requested {
        return Finding::not_applicable(
            id,
            format!(
                "pod/{pod} asks for no client certificate, so it announces no CA names to tell the repo-server from a proxy (the handshake cases judge a server that admits anyone)"
            ),
        );
    }
    if a.acceptable_ca_names.contains(&health) {
        Finding::pass(
            id,
            format!(
                "pod/{pod}: the peer on 8081 announces `{health}`: it is the repo-server itself (reached through a port-forward, which enters the pod past any mesh proxy)"
            ),
        )
    } else {
        Finding::fail(
            id,
            format!(
                "pod/{pod}: the peer on 8081 asks for a client certificate but does not announce `{health}` (it announces {}): it is not the repo-server itself (a mesh proxy or another TLS server in its place); the other verdicts on this pod are about that peer",
                if a.acceptable_ca_names.is_empty() {
                    "no CA names".to_owned()
                } else {
                    a.acceptable_ca_names.join("; ")
                }
            ),
        )
    }
}
