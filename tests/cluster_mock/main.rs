//! The Kubernetes layer against kube's mock service (tower-test), with objects shaped like the
//! v3.5.1 install.yaml and ha/install.yaml. Request shapes and error mapping only: the proof that
//! Kubernetes features work belongs on a real node.

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod cluster_mode;
mod discovery;
mod fixtures;
mod golden;
mod install;
mod rollout;
