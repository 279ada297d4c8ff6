#!/usr/bin/env python3
"""Rewrites Argo CD's pinned install.yaml (stdin) into the layouts other installers produce, for
the real-node scenarios of tests/real_node.rs (stdout). Test-only: the product never runs this.

  layout.py helm NAMESPACE RELEASE
      As the community Helm chart lays Argo CD out: every namespaced object in NAMESPACE (and the
      ClusterRoleBindings' subjects with it), the five mTLS workloads named
      `<RELEASE>-argocd-<component>` (`<RELEASE>-<component>` when RELEASE contains "argocd"),
      their containers named by component (`repo-server`, `server`, ...), pod labels
      `app.kubernetes.io/instance: RELEASE` and `app.kubernetes.io/component: <component>` beside
      the upstream name label (which the Services and the NetworkPolicy select on).

  layout.py controller-deployment NAMESPACE DEPLOYMENT_YAML
      As the dynamic-cluster-distribution overlay: the application controller StatefulSet replaced
      by Argo CD's own Deployment variant (DEPLOYMENT_YAML, from the same Go module), which mounts
      no argocd-repo-server-mtls volume; namespaced objects in NAMESPACE.
"""
import sys

import yaml

COMPONENTS = {
    "argocd-repo-server": "repo-server",
    "argocd-server": "server",
    "argocd-application-controller": "application-controller",
    "argocd-applicationset-controller": "applicationset-controller",
    "argocd-notifications-controller": "notifications-controller",
}
CLUSTER_SCOPED = {
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
}


def into_namespace(doc, namespace):
    if doc.get("kind") not in CLUSTER_SCOPED:
        doc.setdefault("metadata", {})["namespace"] = namespace
    for subject in doc.get("subjects") or []:
        if "namespace" in subject:
            subject["namespace"] = namespace


def helm(docs, namespace, release):
    for doc in docs:
        into_namespace(doc, namespace)
        name = doc["metadata"].get("name")
        if doc.get("kind") not in ("Deployment", "StatefulSet") or name not in COMPONENTS:
            continue
        component = COMPONENTS[name]
        new_name = f"{release}-{component}" if "argocd" in release else f"{release}-argocd-{component}"
        doc["metadata"]["name"] = new_name
        labels = doc["spec"]["template"]["metadata"].setdefault("labels", {})
        labels["app.kubernetes.io/instance"] = release
        labels["app.kubernetes.io/component"] = component
        selector = doc["spec"]["selector"]["matchLabels"]
        selector["app.kubernetes.io/instance"] = release
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if container["name"] == name:
                container["name"] = component
    return docs


def controller_deployment(docs, namespace, deployment_yaml):
    with open(deployment_yaml) as f:
        variant = yaml.safe_load(f)
    out = []
    for doc in docs:
        if doc.get("kind") == "StatefulSet" and doc["metadata"].get("name") == "argocd-application-controller":
            # The base file names `argocd:latest`; the install's own image is what the node has.
            pinned = doc["spec"]["template"]["spec"]["containers"][0]
            for container in variant["spec"]["template"]["spec"]["containers"]:
                container["image"] = pinned["image"]
                container["imagePullPolicy"] = pinned.get("imagePullPolicy", "IfNotPresent")
            doc = variant
        into_namespace(doc, namespace)
        out.append(doc)
    return out


def main():
    mode, namespace = sys.argv[1], sys.argv[2]
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    if mode == "helm":
        docs = helm(docs, namespace, sys.argv[3])
    elif mode == "controller-deployment":
        docs = controller_deployment(docs, namespace, sys.argv[3])
    else:
        sys.exit(f"unknown layout {mode}")
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
