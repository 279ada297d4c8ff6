//! What the client components and the settings they read say: whether each verifies the
//! repo-server, whether the repo-server's TLS is on, whether each loaded its certificate, and
//! whether the application controller's calls got through.

use k8s_openapi::api::core::v1::ConfigMap;

use super::Finding;
use crate::suite::kube_ids as ids;

/// Per client component: the argocd-cmd-params-cm keys that make it verify the repo-server.
pub const SERVER_VERIFICATION_KEYS: [(&str, &str, &str); 4] = [
    (
        "argocd-server",
        "server.repo.server.ca.cert.path",
        "server.repo.server.strict.tls",
    ),
    (
        "argocd-application-controller",
        "controller.repo.server.ca.cert.path",
        "controller.repo.server.strict.tls",
    ),
    (
        "argocd-applicationset-controller",
        "applicationsetcontroller.repo.server.ca.cert.path",
        "applicationsetcontroller.repo.server.strict.tls",
    ),
    (
        "argocd-notifications-controller",
        "notificationscontroller.repo.server.ca.cert.path",
        "notificationscontroller.repo.server.strict.tls",
    ),
];

/// Whether the repo-server serves TLS at all: `reposerver.disable.tls: "true"` means no mTLS, and on
/// 3.5.x a repo-server that cannot start (DOMAIN: the upgrade hazard) unless its client CA path
/// is also emptied. A pre-migration check.
pub fn audit_repo_server_tls(cmd_params: Option<&ConfigMap>) -> Finding {
    let id = ids::REPO_SERVER_TLS;
    let disabled = cmd_params
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("reposerver.disable.tls"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled {
        Finding::fail(
            id,
            "argocd-cmd-params-cm sets reposerver.disable.tls: \"true\": the repo-server serves no TLS, so there is no mTLS; \
             on 3.5.x it also exits at startup (--client-ca-path cannot be used with --disable-tls) unless \
             ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" is set. Remove the key to migrate to native mTLS",
        )
    } else {
        Finding::pass(
            id,
            "argocd-cmd-params-cm does not disable the repo-server's TLS (reposerver.disable.tls unset or false)",
        )
    }
}

/// Whether each client verifies the repo-server's certificate (off unless a CA path or strict TLS is set).
pub fn audit_server_verification(cmd_params: Option<&ConfigMap>) -> Vec<Finding> {
    let data = cmd_params.and_then(|c| c.data.clone()).unwrap_or_default();
    SERVER_VERIFICATION_KEYS
        .iter()
        .map(|(component, ca_key, strict_key)| {
            let id = format!("{}/{}", ids::CLIENT_VERIFIES_SERVER, component);
            let ca = data.get(*ca_key).filter(|v| !v.trim().is_empty());
            let strict = data.get(*strict_key).is_some_and(|v| v.trim() == "true");
            match (ca, strict) {
                (Some(path), _) => Finding::advise(&id, true, format!("{component} verifies the repo-server against {path} ({ca_key})")),
                (None, true) => Finding::advise(&id, true, format!("{component} verifies the repo-server ({strict_key}=true, deprecated)")),
                (None, false) => Finding::advise(&id, false, format!(
                    "{component} does not verify the repo-server certificate: set `{ca_key}` in argocd-cmd-params-cm; server-ca.crt in the Secret alone does not make authentication mutual"
                )),
            }
        })
        .collect()
}

/// The message a client component logs when it (re)loads its client certificate.
pub const CLIENT_CERT_LOADED: &str = "Client certificate reloaded from ";

/// Text a client logs when the repo-server refuses its handshake.
pub const CLIENT_HANDSHAKE_ERRORS: [&str; 2] =
    ["authentication handshake failed", "remote error: tls:"];

/// Whether the application controller's calls to the repo-server went through, as the
/// Applications it reconciled report them. A refused client certificate does not always reach the
/// controller's log (under TLS 1.3 the refusal arrives on the first write, as a reset), but the
/// Application's ComparisonError always carries the failed call (`rpc error: code = Unavailable`).
pub fn audit_repo_server_calls(
    applications: usize,
    conditions: &[crate::kubernetes::cluster::AppCondition],
) -> Finding {
    let id = format!(
        "{}/argocd-application-controller",
        ids::CLIENT_REACHES_REPO_SERVER
    );
    if applications == 0 {
        return Finding::not_applicable(
            &id,
            "no Application exists, so the application controller has had no reason to call the repo-server",
        );
    }
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
    match failed.first() {
        None => Finding::pass(
            &id,
            format!(
                "{applications} Application(s) report no failed call from the application controller to the repo-server"
            ),
        ),
        Some(first) => Finding::fail(
            &id,
            format!(
                "the application controller could not call the repo-server for {} Application(s) (a client certificate the repo-server does not trust is refused exactly like this); first: {first}",
                failed.len()
            ),
        ),
    }
}

/// Audits one client component's log: it loaded its certificate, and no handshake with the
/// repo-server failed.
pub fn audit_client_log(component: &str, lines: &[String]) -> Vec<Finding> {
    let loaded = lines.iter().find_map(|l| {
        crate::endpoint::logrus_message(l)
            .and_then(|m| m.strip_prefix(CLIENT_CERT_LOADED).map(str::to_owned))
    });
    let loaded = match loaded {
        Some(rest) => Finding::pass(
            &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
            format!(
                "{component} loaded its client certificate from {}",
                rest.trim_end_matches(" (mtime changed)")
            ),
        ),
        // Clients load the certificate when they first dial the repo-server, so a component that
        // has not needed it since its restart has no such line yet: reported, not failed.
        None => Finding::advise(
            &format!("{}/{}", ids::CLIENT_CERT_LOADED, component),
            false,
            format!(
                "{component} has not logged `{CLIENT_CERT_LOADED}...` in {} lines: either it has not dialed the repo-server since its restart (the certificate loads on the first connection) or it connects without a certificate",
                lines.len()
            ),
        ),
    };
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| CLIENT_HANDSHAKE_ERRORS.iter().any(|e| l.contains(e)))
        .collect();
    let handshakes = match errors.first() {
        None => Finding::pass(
            &format!("{}/{}", ids::CLIENT_HANDSHAKE_ERRORS, component),
            format!(
                "{component}: no TLS handshake errors in {} lines",
                lines.len()
            ),
        ),
        Some(first) => Finding::fail(
            &format!("{}/{}", ids::CLIENT_HANDSHAKE_ERRORS, component),
            format!(
                "{component}: {} lines report failed handshakes, first: {first}",
                errors.len()
            ),
        ),
    };
    vec![loaded, handshakes]
}
