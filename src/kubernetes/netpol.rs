//! What the namespace's NetworkPolicy objects say about a connection to the repo-server, read
//! from the objects themselves (the same rules a CNI that enforces them applies). This is what the
//! policies *allow*; what actually reached the port is observed by the intruder pods, and the two
//! are reported side by side: a CNI that does not enforce NetworkPolicy shows as a difference.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// A pod as a policy sees it: its labels and its namespace's labels.
#[derive(Debug, Clone)]
pub struct PodView<'a> {
    /// The pod's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its namespace's name.
    pub namespace: &'a str,
}

/// The port a connection is made to, as the target pod's container declares it.
#[derive(Debug, Clone, Copy)]
pub struct TargetPort<'a> {
    /// The number.
    pub number: u16,
    /// The name the container gives it, if any (a policy may name the port).
    pub name: Option<&'a str>,
}

/// What the policies say about one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "says", rename_all = "kebab-case")]
pub enum Admission {
    /// No policy of type Ingress selects the target pod: every connection is allowed.
    NoPolicy,
    /// A policy selecting the target allows it.
    Allowed {
        /// The policy whose rule admits it.
        by: String,
    },
    /// Policies select the target, and none of their rules admits this peer on this port.
    Denied {
        /// The policies that select the target.
        selected_by: Vec<String>,
    },
}

impl Admission {
    /// Whether the connection may be made, by the policies.
    pub fn allows(&self) -> bool {
        !matches!(self, Admission::Denied { .. })
    }

    /// In words.
    pub fn describe(&self) -> String {
        match self {
            Admission::NoPolicy => {
                "no NetworkPolicy selects the repo-server: every pod may connect".to_owned()
            }
            Admission::Allowed { by } => format!("networkpolicy/{by} allows it"),
            Admission::Denied { selected_by } => format!(
                "denied: networkpolicy/{} select(s) the repo-server and no rule admits this pod on this port",
                selected_by.join(", networkpolicy/")
            ),
        }
    }
}

/// What `policies` (the target's namespace's) say about `source` connecting to `target` on `port`.
/// The namespace labels of the source are its `kubernetes.io/metadata.name` (which the API server
/// sets on every namespace); `namespaceSelector`s asking for other labels do not match.
pub fn admission(
    policies: &[NetworkPolicy],
    target: &PodView<'_>,
    port: TargetPort<'_>,
    source: &PodView<'_>,
) -> Admission {
    let mut selected_by = Vec::new();
    for p in policies {
        let Some(spec) = &p.spec else { continue };
        if p.metadata
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != target.namespace)
        {
            continue;
        }
        // policyTypes unset: Ingress, plus Egress only when egress rules are given.
        let ingress = spec
            .policy_types
            .as_ref()
            .is_none_or(|t| t.iter().any(|t| t == "Ingress"));
        if !ingress
            || !spec
                .pod_selector
                .as_ref()
                .is_none_or(|s| selects(s, target.labels))
        {
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let admits = spec.ingress.iter().flatten().any(|rule| {
            let port_ok = rule.ports.as_ref().is_none_or(|ports| {
                ports.is_empty() || ports.iter().any(|p| port_matches(p, port))
            });
            let peer_ok = rule.from.as_ref().is_none_or(|from| {
                from.is_empty() || from.iter().any(|f| peer_matches(f, target, source))
            });
            port_ok && peer_ok
        });
        if admits {
            return Admission::Allowed { by: name };
        }
        selected_by.push(name);
    }
    if selected_by.is_empty() {
        Admission::NoPolicy
    } else {
        Admission::Denied { selected_by }
    }
}

fn port_matches(p: &NetworkPolicyPort, port: TargetPort<'_>) -> bool {
    if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
        return false;
    }
    match &p.port {
        None => true,
        Some(IntOrString::Int(n)) => {
            let end = p.end_port.unwrap_or(*n);
            (*n..=end).contains(&i32::from(port.number))
        }
        Some(IntOrString::String(name)) => port.name == Some(name.as_str()),
    }
}

fn peer_matches(peer: &NetworkPolicyPeer, target: &PodView<'_>, source: &PodView<'_>) -> bool {
    if peer.ip_block.is_some() {
        // Policies apply ipBlock to traffic from outside the cluster's pod network; a pod's own
        // traffic is judged by the selectors (the Kubernetes API's stated semantics for pods).
        return false;
    }
    let namespace_ok = match &peer.namespace_selector {
        None => source.namespace == target.namespace,
        Some(sel) => {
            let ns_labels = BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                source.namespace.to_owned(),
            )]);
            selects(sel, &ns_labels)
        }
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|sel| selects(sel, source.labels));
    namespace_ok && pod_ok
}

/// Whether `selector` selects `labels` (an empty selector selects everything).
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            // An operator the API server would have refused: selects nothing.
            _ => false,
        }
    });
    pairs && expressions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Argo CD v3.5.1's `argocd-repo-server-network-policy`, as its install.yaml ships it.
    fn upstream() -> NetworkPolicy {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "argocd-repo-server-network-policy", "namespace": "argocd"},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-repo-server"}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-server"}}},
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-application-controller"}}},
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-notifications-controller"}}},
                        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "argocd-applicationset-controller"}}}
                    ], "ports": [{"port": 8081, "protocol": "TCP"}]},
                    {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8084}]}
                ]
            }
        }))
        .expect("a NetworkPolicy")
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_upstream_policy_admits_clients_and_denies_others() {
        let repo = labels(&[("app.kubernetes.io/name", "argocd-repo-server")]);
        let server = labels(&[("app.kubernetes.io/name", "argocd-server"), ("x", "y")]);
        let stranger = labels(&[("app", "intruder")]);
        let target = PodView {
            labels: &repo,
            namespace: "argocd",
        };
        let grpc = TargetPort {
            number: 8081,
            name: Some("server"),
        };
        let health = TargetPort {
            number: 8084,
            name: Some("metrics"),
        };
        let from = |l, ns| PodView {
            labels: l,
            namespace: ns,
        };
        let policies = [upstream()];
        let allowed = Admission::Allowed {
            by: "argocd-repo-server-network-policy".into(),
        };
        let denied = Admission::Denied {
            selected_by: vec!["argocd-repo-server-network-policy".into()],
        };
        // (source, namespace, port, expected)
        let rows: [(&BTreeMap<String, String>, &str, TargetPort<'_>, &Admission); 5] = [
            (&server, "argocd", grpc, &allowed),
            (&stranger, "argocd", grpc, &denied),
            // The client labels in another namespace: podSelector alone means this namespace.
            (&server, "other", grpc, &denied),
            // 8084 is open to every namespace.
            (&stranger, "other", health, &allowed),
            (
                &stranger,
                "argocd",
                TargetPort {
                    number: 9999,
                    name: None,
                },
                &denied,
            ),
        ];
        for (source, ns, port, want) in rows {
            assert_eq!(
                &admission(&policies, &target, port, &from(source, ns)),
                want,
                "{source:?} {ns} {}",
                port.number
            );
        }
        // No policy, or one selecting other pods: open.
        assert_eq!(
            admission(&[], &target, grpc, &from(&stranger, "argocd")),
            Admission::NoPolicy
        );
        let other = labels(&[("app.kubernetes.io/name", "argocd-redis")]);
        assert_eq!(
            admission(
                &policies,
                &PodView {
                    labels: &other,
                    namespace: "argocd"
                },
                grpc,
                &from(&stranger, "argocd")
            ),
            Admission::NoPolicy
        );
    }

    #[test]
    fn selectors_follow_the_api_semantics() {
        let sel = |v: serde_json::Value| -> LabelSelector { serde_json::from_value(v).unwrap() };
        let l = labels(&[("a", "1"), ("b", "2")]);
        let rows = [
            (serde_json::json!({}), true),
            (serde_json::json!({"matchLabels": {"a": "1"}}), true),
            (serde_json::json!({"matchLabels": {"a": "2"}}), false),
            (
                serde_json::json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}),
                true,
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}),
                false,
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "c", "operator": "NotIn", "values": ["1"]}]}),
                true,
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]}),
                true,
            ),
            (
                serde_json::json!({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}),
                false,
            ),
        ];
        for (s, want) in rows {
            assert_eq!(selects(&sel(s.clone()), &l), want, "{s}");
        }
        // A named port matches only the container's name for it.
        let p: NetworkPolicyPort =
            serde_json::from_value(serde_json::json!({"port": "server"})).unwrap();
        assert!(port_matches(
            &p,
            TargetPort {
                number: 8081,
                name: Some("server")
            }
        ));
        assert!(!port_matches(
            &p,
            TargetPort {
                number: 8081,
                name: None
            }
        ));
        let range: NetworkPolicyPort =
            serde_json::from_value(serde_json::json!({"port": 8000, "endPort": 8090})).unwrap();
        assert!(port_matches(
            &range,
            TargetPort {
                number: 8081,
                name: None
            }
        ));
    }
}
