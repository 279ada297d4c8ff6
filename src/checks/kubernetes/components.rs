//! `log/*` and `client/*` cases on the client components: whether each loaded its certificate,
//! whether any handshake with the repo-server failed, and whether the application controller's
//! calls got through.

use super::Finding;
use crate::kubernetes::cluster::AppCondition;
use crate::kubernetes::workloads::Role;
use crate::suite::KubeCase;

/// The message a client component logs when it (re)loads its client certificate.
pub const CLIENT_CERT_LOADED: &str = "Client certificate reloaded from ";

/// Text a client logs when the repo-server refuses its handshake.
pub const CLIENT_HANDSHAKE_ERRORS: [&str; 2] =
    ["authentication handshake failed", "remote error: tls:"];

/// Whether the application controller's calls to the repo-server went through, as the
/// Applications it reconciled report them. A refused client certificate does not always reach the
/// controller's log (under TLS 1.3 the refusal arrives on the first write, as a reset), but the
/// Application's ComparisonError always carries the failed call (`rpc error: code = Unavailable`).
pub fn judge_repo_server_calls(applications: usize, conditions: &[AppCondition]) -> Finding {
    const CASE: KubeCase = KubeCase::ClientReachesRepoServer;
    let failed: Vec<String> = conditions
        .iter()
        .filter(|c| c.message.contains("rpc error: code = Unavailable"))
        .map(|c| {
            format!(
                "Application `{}` ({}): {}",
                c.application, c.kind, c.message
            )
        })
        .collect();
    let finding = match failed.first() {
        _ if applications == 0 => Finding::not_applicable(
            CASE,
            "no Application exists, so the application controller has had no reason to call the repo-server",
        ),
        None => Finding::pass(
            CASE,
            format!(
                "{applications} Application(s) report no failed call from the application controller to the repo-server"
            ),
        ),
        Some(first) => Finding::fail(
            CASE,
            format!(
                "the application controller could not call the repo-server for {} Application(s) (a client certificate the repo-server does not trust is refused exactly like this); first: {first}",
                failed.len()
            ),
        ),
    };
    finding.about(Role::ApplicationController.upstream())
}

/// Audits one client component's log: it loaded its certificate, and no handshake with the
/// repo-server failed.
pub fn judge_client_log(component: &str, lines: &[String]) -> Vec<Finding> {
    let loaded = lines.iter().find_map(|l| {
        crate::endpoint::logrus_message(l)
            .and_then(|m| m.strip_prefix(CLIENT_CERT_LOADED).map(str::to_owned))
    });
    let loaded = match loaded {
        Some(rest) => Finding::pass(KubeCase::ClientCertLoaded,
            format!(
                "{component} loaded its client certificate from {}",
                rest.trim_end_matches(" (mtime changed)")
            ),
        ).about(component),
        // Clients load the certificate when they first dial the repo-server, so a component that
        // has not needed it since its restart has no such line yet: reported, not failed.
        None => Finding::fail(KubeCase::ClientCertLoaded,
            format!(
                "{component} has not logged `{CLIENT_CERT_LOADED}...` in {} lines: either it has not dialed the repo-server since its restart (the certificate loads on the first connection) or it connects without a certificate",
                lines.len()
            ),
        ).about(component),
    };
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| CLIENT_HANDSHAKE_ERRORS.iter().any(|e| l.contains(e)))
        .collect();
    let handshakes = match errors.first() {
        None => Finding::pass(
            KubeCase::ClientHandshakeErrors,
            format!(
                "{component}: no TLS handshake errors in {} lines",
                lines.len()
            ),
        )
        .about(component),
        Some(first) => Finding::fail(
            KubeCase::ClientHandshakeErrors,
            format!(
                "{component}: {} lines report failed handshakes, first: {first}",
                errors.len()
            ),
        )
        .about(component),
    };
    vec![loaded, handshakes]
}
