//! Kubernetes operations of the kind and cluster targets, on kube-rs, in two files that never mix:
//! [`read`] only ever sends GET (cluster mode is read-only by default, and a test fails if any other
//! verb leaves it); [`write`] is reached only when the user asked for changes.

mod read;
mod write;

pub use read::*;
pub use write::*;

use crate::kubernetes::workloads::WorkloadKind;

/// Why a Kubernetes call failed, with the permission to grant when that is the reason.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// RBAC refused the call.
    #[error(
        "forbidden: the harness needs `{verb}` on `{resource}` in namespace `{namespace}` ({message})"
    )]
    Forbidden {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// Any other API error.
    #[error("{verb} {resource} in `{namespace}`: {}", describe(source))]
    Api {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The error.
        source: kube::Error,
    },
    /// The API server did not answer at all (no connection, TLS, timeout): the run stops before
    /// it installs, changes or downloads anything.
    #[error(
        "the API server of `{cluster}` cannot be reached: {why}; nothing was installed, changed or downloaded (check the kubeconfig's server address and the network)"
    )]
    ApiServerUnreachable {
        /// The cluster, as the run names it (its kubeconfig context).
        cluster: String,
        /// What the request met.
        why: String,
    },
    /// Discovery found no workload of a role the run needs.
    #[error(
        "no {role} found in namespace `{namespace}`: looked for a Deployment or StatefulSet whose container runs `{binary}`, labelled app.kubernetes.io/name={role} (or ending in -{component}) or app.kubernetes.io/component={component}, or named *-{component}; is Argo CD installed in this namespace (--namespace)?"
    )]
    NoRole {
        /// The role's upstream name.
        role: &'static str,
        /// Its component label value.
        component: &'static str,
        /// Its binary.
        binary: &'static str,
        /// The namespace searched.
        namespace: String,
    },
    /// Something did not become ready in time.
    #[error("{what} did not become ready within {seconds} s")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The limit.
        seconds: u64,
    },
    /// A replica cannot be reached the way the run was told to reach it.
    #[error("cannot reach pod/{pod}: {why}")]
    Unreachable {
        /// The pod.
        pod: String,
        /// Why (no pod IP for `--connect pod-ip`, no local listener for a port-forward).
        why: String,
    },
    /// Inside the cluster, a Service that routes to the repo-server has no address the cluster's
    /// resolver gives.
    #[error("service/{service}: `{host}` does not resolve from this pod: {why}")]
    Unresolved {
        /// The Service.
        service: String,
        /// The name looked up.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// `--policy-report` (with `--policy-report-api` naming one API) on a cluster that does not
    /// serve it.
    #[error(
        "the cluster does not serve {api} for namespace `{namespace}`: {hint}",
        hint = install_hint(*api)
    )]
    NoReportResource {
        /// The API asked for.
        api: crate::report::policyreport::ReportApi,
        /// The namespace written to.
        namespace: String,
    },
    /// `--policy-report` on a cluster that serves neither report API.
    #[error(
        "the cluster serves neither reports.openreports.io/v1alpha1 nor policyreports.wgpolicyk8s.io/v1alpha2, so there is nowhere to write the report for namespace `{namespace}`: {} Or {}",
        install_hint(crate::report::policyreport::ReportApi::OpenReports),
        install_hint(crate::report::policyreport::ReportApi::PolicyReport)
    )]
    NoReportApi {
        /// The namespace written to.
        namespace: String,
    },
    /// A pod the in-cluster probe started did not run to its end.
    #[error("the in-cluster probe's job/{job}: {why}")]
    ProbePod {
        /// The Job.
        job: String,
        /// What happened.
        why: String,
    },
    /// Provisioning would replace an object this tool did not create.
    #[error(
        "`{resource}` already exists in namespace `{namespace}` and was not created by argocd-mtls-verify: refusing to overwrite it (delete it yourself, or run read-only without --provision)"
    )]
    WouldOverwrite {
        /// The object.
        resource: String,
        /// The namespace.
        namespace: String,
    },
    /// A rollout did not finish.
    #[error("rollout of {kind:?}/{name} {state}")]
    Rollout {
        /// Workload kind.
        kind: WorkloadKind,
        /// Workload name.
        name: String,
        /// What went wrong.
        state: String,
    },
}

/// An API error in words: the API server's own message and status, never a Debug dump.
pub(crate) fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!(
            "{} (HTTP {}{})",
            status.message,
            status.code,
            if status.reason.is_empty() {
                String::new()
            } else {
                format!(" {}", status.reason)
            }
        ),
        other => crate::error_chain(other),
    }
}

/// How a cluster gets the report resource `api`.
fn install_hint(api: crate::report::policyreport::ReportApi) -> &'static str {
    use crate::report::policyreport::ReportApi;
    match api {
        ReportApi::OpenReports => {
            "install OpenReports' CRD (config/crd/openreports.io_reports.yaml of openreports/reports-api; Kubewarden installs it, Kyverno 1.15+ with its openreports option)."
        }
        ReportApi::PolicyReport => {
            "install the PolicyReport CRD (Kyverno, Trivy Operator and kubescape bring one; or kubectl apply -f deploy/policyreport-crd.yaml)."
        }
    }
}

/// Maps an API error onto [`ClusterError`], naming the verb and resource (RBAC refusals apart).
pub(crate) fn api_error(
    verb: &str,
    resource: &str,
    namespace: &str,
    e: kube::Error,
) -> ClusterError {
    if let kube::Error::Api(status) = &e
        && status.code == 403
    {
        return ClusterError::Forbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            message: status.message.clone(),
        };
    }
    ClusterError::Api {
        verb: verb.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        source: e,
    }
}
