//! The Kubernetes layer: getting Argo CD into a cluster and reaching every repo-server replica.
//!
//! - [`versions`], [`manifest`]: the pinned install manifests and where their bytes come from;
//! - [`kind`]: the kind cluster lifecycle (create, reuse, delete only what this run made);
//! - [`install`]: server-side apply, CRDs first;
//! - [`connect`]: an API client, from a kubeconfig or the way kubectl picks one;
//! - [`cluster`]: API reads (snapshot, pods, logs, events) and the writes `--provision` makes;
//! - [`provision`]: the Secrets to provision, and the identity in a cluster's own Secret;
//! - [`session`]: one connected cluster: discovery, port-forwards per replica, and what the
//!   finding checks judge ([`observed`]);
//! - [`forward`]: the local relay behind each port-forward;
//! - [`workloads`]: what mounts the mTLS Secret, when it changed, why a crashed run stopped;
//! - [`incluster`]: the probe and intruder pods a run starts inside the cluster;
//! - [`netpol`]: what the namespace's NetworkPolicies allow, read from the objects;
//! - [`observed`]: the typed facts a Kubernetes run hands to `checks::kubernetes`.

pub mod cluster;
pub mod connect;
pub mod forward;
pub mod incluster;
pub mod install;
pub mod kind;
pub mod manifest;
pub mod netpol;
pub mod observed;
pub mod provision;
pub mod session;
pub mod spdy;
pub mod versions;
pub mod workloads;
