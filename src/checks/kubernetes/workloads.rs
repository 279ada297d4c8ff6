//! `config/*` cases on the workloads and settings around the Secret: which components mount it
//! and project the right keys, whether they started after it last changed, whether the
//! repo-server serves TLS at all, and whether each client verifies the repo-server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::Finding;
use crate::kubernetes::cluster::PodStart;
use crate::kubernetes::observed::{ComponentLog, ReplicaObservation};
use crate::kubernetes::workloads::{
    FileSource, Role, SERVER_VERIFICATION_KEYS, Workload, secret_changed_at,
};
use crate::pki::secrets::{MTLS_SECRET, mtls_keys};
use crate::suite::KubeCase;

/// Whether each component reads its mTLS files from a Secret, found by role (whatever the
/// installation calls the workload or container): the file the repo-server takes its client CA
/// from, and the certificate and key each client presents, are each followed from the effective
/// path setting (flag, env, argocd-cmd-params-cm, default) through the container's volume mounts
/// and `items` to a Secret key. A path no Secret volume provides means the file does not exist:
/// the repo-server then runs without mTLS, a client connects without a certificate (logged only at
/// Debug) and is refused on every call. A role nobody runs is not applicable.
pub fn judge_mounts(
    workloads: &[Workload],
    cmd_params: Option<&ConfigMap>,
    namespace: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for role in Role::ALL {
        let found: Vec<&Workload> = workloads.iter().filter(|w| w.role == Some(role)).collect();
        if found.is_empty() {
            out.push(Finding::not_applicable(KubeCase::Mount,
                format!(
                    "no workload in namespace `{namespace}` runs {} (looked by container binary, app.kubernetes.io/name|component, name)",
                    role.binary()
                ),
            ).about(role.upstream()));
            continue;
        }
        for w in found {
            out.push(judge_mount(role, w, cmd_params, namespace).about(role.upstream()));
        }
    }
    out
}

fn judge_mount(
    role: Role,
    w: &Workload,
    cmd_params: Option<&ConfigMap>,
    namespace: &str,
) -> Finding {
    let container = w.container.as_deref().unwrap_or(role.upstream());
    let at = format!("{} (container {container})", w.reference());
    if w.replicas == Some(0) {
        return Finding::not_applicable(KubeCase::Mount, format!("{at} is scaled to 0 replicas"));
    }
    let reads = w.mtls_reads(cmd_params);
    let mut read = Vec::new();
    let mut missing = Vec::new();
    for r in &reads {
        let what = r.file.words();
        let setting = &r.setting;
        if setting.value.is_empty() {
            missing.push(format!(
                "its {what} path is empty ({}): {}",
                setting.from,
                if role == Role::RepoServer {
                    "mTLS is switched off"
                } else {
                    "it presents no certificate"
                }
            ));
            continue;
        }
        match &r.source {
            FileSource::SecretKey { secret, key } => read.push(format!(
                "{what} {} ({}) from Secret `{secret}` key `{key}`",
                setting.value, setting.from
            )),
            FileSource::NotMounted => missing.push(format!(
                "its {what} path {} ({}) is not provided by any Secret volume mounted in container {container}",
                setting.value, setting.from
            )),
        }
    }
    if missing.is_empty() {
        return Finding::pass(KubeCase::Mount, format!("{at} reads {}", read.join("; ")));
    }
    let consequence = if role == Role::RepoServer {
        "the file does not exist, so the repo-server skips mTLS and admits any TLS client"
    } else {
        "the file does not exist, so it connects WITHOUT a client certificate (Argo CD logs that only at Debug) and the repo-server refuses every call it makes"
    };
    let mut fix = super::remedy::mount(role, w, container, namespace);
    // The fix mounts where the components look by default; a path set elsewhere stays unserved.
    let elsewhere: Vec<String> = reads
        .iter()
        .filter(|r| {
            !r.setting
                .value
                .starts_with(&format!("{}/", super::remedy::MOUNT_PATH))
        })
        .map(|r| match r.setting.value.as_str() {
            "" => format!(
                "its {} path is set empty ({})",
                r.file.words(),
                r.setting.from
            ),
            path => format!(
                "its {} path is `{path}` ({})",
                r.file.words(),
                r.setting.from
            ),
        })
        .collect();
    if !elsewhere.is_empty() {
        fix.push_str(&format!(
            ". That mount serves the default paths under {}, but {}: remove that setting, or mount the Secret where it points",
            super::remedy::MOUNT_PATH,
            elsewhere.join(", ")
        ));
    }
    Finding::fail(
        KubeCase::Mount,
        format!("{at}: {}; {consequence}. Fix: {fix}", missing.join("; ")),
    )
}

/// Whether a running repo-server replica runs with the Secret's client CA, judged from what it
/// announces (the CA names of its CertificateRequest are its client-CA pool: the CAs it loaded at
/// startup plus `O=Argo CD Health Check`), never from timestamps: a routine renewal of the client
/// pair changes the Secret but needs no repo-server restart. A replica that asks for no
/// certificate while the Secret holds `client-ca.crt` still runs open; one that announces other CAs
/// than `client-ca.crt` holds runs with an old bundle: both need a restart.
pub fn judge_repo_server_restart(
    secret: &Secret,
    replica: &ReplicaObservation,
    workloads: &[Workload],
    namespace: &str,
) -> Finding {
    repo_server_restart(secret, replica, workloads, namespace).about(Role::RepoServer.upstream())
}

fn repo_server_restart(
    secret: &Secret,
    replica: &ReplicaObservation,
    workloads: &[Workload],
    namespace: &str,
) -> Finding {
    let bundle = match super::secret::certs_in(secret, mtls_keys::CLIENT_CA) {
        Some(Ok(ders)) => ders,
        // No usable client-ca.crt: a restart would not help; config/mtls-secret-keys and
        // config/client-ca-parses judge the Secret itself.
        _ => {
            return Finding::not_applicable(
                KubeCase::RestartedAfterSecret,
                format!(
                    "Secret `{MTLS_SECRET}` holds no usable `{}`: no restart makes the repo-server enforce mTLS (the Secret's own checks say why)",
                    mtls_keys::CLIENT_CA
                ),
            );
        }
    };
    // Compared as multisets: Go announces one name per CA of its pool, so an old and a new CA
    // of the same name (a common rotation) still differ by count.
    let mut expected: Vec<String> = bundle
        .iter()
        .filter_map(|der| {
            crate::x509::CertFacts::from_der(der)
                .ok()
                .map(|f| f.subject)
        })
        .collect();
    expected.sort();
    let health = format!("O={}", crate::pki::HEALTH_CHECK_ORGANIZATION);
    let unmounted: Vec<String> = workloads
        .iter()
        .filter(|w| w.role == Some(Role::RepoServer) && !w.mounts_mtls())
        .map(Workload::reference)
        .collect();
    if !unmounted.is_empty() {
        return Finding::not_applicable(
            KubeCase::RestartedAfterSecret,
            format!(
                "no restart helps: {} does not mount Secret `{MTLS_SECRET}`, so a restarted repo-server reads no client CA either (config/mount/argocd-repo-server says how its installer mounts it)",
                unmounted.join(", ")
            ),
        );
    }
    let restart = workloads
        .iter()
        .filter(|w| w.role == Some(Role::RepoServer))
        .map(|w| format!("kubectl -n {namespace} rollout restart {}", w.reference()))
        .collect::<Vec<_>>()
        .join("; ");
    let pod = &replica.before.name;
    let a = &replica.announcement;
    if a.tls_version.is_none() {
        return Finding::inconclusive(
            KubeCase::RestartedAfterSecret,
            format!(
                "could not read what pod/{pod} announces (no TLS handshake): {}",
                a.detail
            ),
        );
    }
    if !a.client_cert_requested {
        return Finding::fail(
            KubeCase::RestartedAfterSecret,
            format!(
                "RESTART NEEDED: pod/{pod} asks for no client certificate although Secret `{MTLS_SECRET}` holds `{}`: it still runs without mTLS (the repo-server reads its client CA only at startup): {restart} (if it still asks for none after the restart, see config/mount/argocd-repo-server)",
                mtls_keys::CLIENT_CA
            ),
        );
    }
    let mut announced: Vec<String> = a
        .acceptable_ca_names
        .iter()
        .filter(|n| **n != health)
        .cloned()
        .collect();
    announced.sort();
    if a.acceptable_ca_names.is_empty() {
        Finding::inconclusive(
            KubeCase::RestartedAfterSecret,
            format!(
                "pod/{pod} asks for a client certificate but names no acceptable CA, so what it loaded cannot be read from the handshake"
            ),
        )
    } else if announced == expected {
        Finding::pass(
            KubeCase::RestartedAfterSecret,
            format!(
                "pod/{pod} runs with the client CA(s) of `{}`: it announces {} (names only: a CA of the same name and another key would look the same; the valid client's admission proves the key)",
                mtls_keys::CLIENT_CA,
                announced.join("; ")
            ),
        )
    } else {
        Finding::fail(
            KubeCase::RestartedAfterSecret,
            format!(
                "RESTART NEEDED: pod/{pod} runs with client CA(s) {} but `{}` now holds {}; the repo-server reads its client CA only at startup: {restart}",
                list_or_none(&announced),
                mtls_keys::CLIENT_CA,
                list_or_none(&expected)
            ),
        )
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether each client's pods need a restart after the Secret changed (advice: a client reloads
/// its certificate and key when the file's mtime changes, at its next handshake, so a new client
/// pair needs none; the server CA it verifies the repo-server with is read once, so a client that
/// verifies the repo-server and started before the change is advised to restart). A reload is
/// proven by a `Client certificate reloaded` line logged at or after the change.
pub fn judge_client_restarts(
    secret: &Secret,
    workloads: &[Workload],
    pods: &BTreeMap<String, Vec<PodStart>>,
    logs: &[ComponentLog],
    cmd_params: Option<&ConfigMap>,
    namespace: &str,
) -> Vec<Finding> {
    let Some(changed) = secret_changed_at(secret) else {
        return vec![];
    };
    let mut out = Vec::new();
    for w in workloads.iter().filter(|w| w.mounts_mtls()) {
        let Some(role) = w.role.filter(|r| *r != Role::RepoServer) else {
            continue;
        };
        let started = pods.get(&w.name).map(Vec::as_slice).unwrap_or_default();
        let stale: Vec<String> = started
            .iter()
            .filter(|p| p.started.is_some_and(|t| t < changed))
            .map(|p| format!("pod/{}", p.pod))
            .collect();
        const CASE: KubeCase = KubeCase::ClientRestartedAfterSecret;
        if stale.is_empty() {
            out.push(
                Finding::pass(
                    CASE,
                    format!(
                        "{}: its {} pod(s) started after Secret `{MTLS_SECRET}` last changed ({changed})",
                        w.reference(),
                        started.len()
                    ),
                )
                .about(role.upstream()),
            );
            continue;
        }
        let restart = format!("kubectl -n {namespace} rollout restart {}", w.reference());
        let verifies = role.client_settings().and_then(|(env_prefix, _)| {
            let s = w.setting(
                "repo-server-ca-cert-path",
                &format!("ARGOCD_{env_prefix}REPO_SERVER_CA_CERT_PATH"),
                "",
                cmd_params,
            );
            (!s.value.is_empty()).then_some(s)
        });
        let reloaded = logs
            .iter()
            .filter(|l| l.component == role.upstream())
            .filter_map(|l| l.lines.as_ref().ok()?.as_ref())
            .flatten()
            .filter(|l| {
                crate::endpoint::logrus_message(l)
                    .is_some_and(|m| m.starts_with(super::components::CLIENT_CERT_LOADED))
            })
            .filter_map(|l| crate::endpoint::logrus_time(l))
            .filter(|t| *t >= changed)
            .max();
        let finding = match (verifies, reloaded) {
            (Some(ca), _) => Finding::fail(
                CASE,
                format!(
                    "restart advised: {} ({}) started before Secret `{MTLS_SECRET}` last changed ({changed}) and verifies the repo-server with {} ({}), which it reads only at startup: if the server CA changed, {restart}",
                    w.reference(),
                    stale.join(", "),
                    ca.value,
                    ca.from
                ),
            ),
            (None, Some(at)) => Finding::pass(
                CASE,
                format!(
                    "no restart needed: {} reloaded its client certificate at {at}, after Secret `{MTLS_SECRET}` last changed ({changed})",
                    w.reference()
                ),
            ),
            (None, None) => Finding::pass(
                CASE,
                format!(
                    "no restart needed for a new client pair ({} started before Secret `{MTLS_SECRET}` last changed ({changed}); a client reloads its certificate at its next handshake), but the reload is not yet proven: no `Client certificate reloaded` line since the change",
                    w.reference()
                ),
            ),
        };
        out.push(finding.about(role.upstream()));
    }
    out
}

/// Whether the repo-server serves TLS at all: `reposerver.disable.tls: "true"` means no mTLS, and on
/// 3.5.x a repo-server that cannot start (DOMAIN: the upgrade hazard) unless its client CA path
/// is also emptied. A pre-migration check.
pub fn judge_repo_server_tls(cmd_params: Option<&ConfigMap>) -> Finding {
    let id = KubeCase::RepoServerTls;
    let disabled = cmd_params
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get("reposerver.disable.tls"))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if disabled {
        Finding::fail(
            id,
            "argocd-cmd-params-cm sets reposerver.disable.tls: \"true\": the repo-server serves no TLS, so there is no mTLS; \
             on 3.5.x it also exits at startup (--client-ca-path cannot be used with --disable-tls) unless the repo-server \
             container gets the argument `--client-ca-path=` (ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\" does NOT do it: an empty value \
             falls back to the default). Remove the key to migrate to native mTLS",
        )
    } else {
        Finding::pass(
            id,
            "argocd-cmd-params-cm does not disable the repo-server's TLS (reposerver.disable.tls unset or false)",
        )
    }
}

/// Whether each client verifies the repo-server's certificate (off unless a CA path or strict TLS is set).
pub fn judge_server_verification(cmd_params: Option<&ConfigMap>) -> Vec<Finding> {
    let data = cmd_params.and_then(|c| c.data.clone()).unwrap_or_default();
    SERVER_VERIFICATION_KEYS
        .iter()
        .map(|(component, ca_key, strict_key)| {
            let ca = data.get(*ca_key).filter(|v| !v.trim().is_empty());
            let strict = data.get(*strict_key).is_some_and(|v| v.trim() == "true");
            match (ca, strict) {
                (Some(path), _) => Finding::pass(KubeCase::ClientVerifiesServer, format!("{component} verifies the repo-server against {path} ({ca_key})")).about(*component),
                (None, true) => Finding::pass(KubeCase::ClientVerifiesServer, format!("{component} verifies the repo-server ({strict_key}=true, deprecated)")).about(*component),
                (None, false) => Finding::fail(KubeCase::ClientVerifiesServer, format!(
                    "{component} does not verify the repo-server certificate: set `{ca_key}` in argocd-cmd-params-cm; server-ca.crt in the Secret alone does not make authentication mutual"
                )).about(*component),
            }
        })
        .collect()
}

/// Whether a service mesh is in the path of the repo-server or its clients (advice): proxies in
/// their pods, injection or ambient enrolment in their templates. The port-forward the probes
/// take enters the pod past any proxy, so the probes judge the repo-server itself; an in-cluster
/// client may reach the proxy instead.
pub fn judge_mesh(workloads: &[Workload], pods: &BTreeMap<String, Vec<PodStart>>) -> Finding {
    let mut seen = Vec::new();
    for w in workloads.iter().filter(|w| w.role.is_some()) {
        let mut what: Vec<String> = w.mesh.clone();
        for p in pods.get(&w.name).into_iter().flatten() {
            for proxy in &p.mesh_proxies {
                what.push(format!("{proxy} in pod/{}", p.pod));
            }
        }
        if !what.is_empty() {
            seen.push(format!("{}: {}", w.reference(), what.join(", ")));
        }
    }
    if seen.is_empty() {
        Finding::pass(
            KubeCase::Mesh,
            "no mesh proxy (istio-proxy, linkerd-proxy) in the pods of the repo-server and its clients, and no injection or ambient enrolment in their templates (a namespace-wide enrolment is not read)",
        )
    } else {
        Finding::fail(
            KubeCase::Mesh,
            format!(
                "a service mesh is in the path: {}. An in-cluster client may reach the proxy rather than the repo-server, and the mesh's mTLS is not Argo CD's; the port-forward these probes take enters the pod past the proxy, so they judge the repo-server itself. During a migration to native mTLS let 8081 through the proxy (Istio: traffic.sidecar.istio.io/excludeInboundPorts: \"8081\") and keep the mesh's policy until every client presents its certificate",
                seen.join("; ")
            ),
        )
    }
}
