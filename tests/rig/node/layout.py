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

  layout.py chart NAMESPACE RELEASE [VALUES]
      The helm layout as the community chart ships for Argo CD 3.5 (argo-cd 10.2.3): its labels and
      Helm's release annotations on the five workloads (`helm.sh/chart`, `app.kubernetes.io/
      managed-by: Helm`, `meta.helm.sh/release-name|namespace`), and argocd-repo-server-mtls mounted
      nowhere. With VALUES (a YAML file: what a user would pass with `helm upgrade -f`), each
      component's extra volumes and volume mounts (`repoServer.volumes`/`.volumeMounts`, `server`,
      `controller`, `applicationSet.extraVolumes`/`.extraVolumeMounts`, `notifications`) are
      appended as the chart's templates append them: to the pod's volumes and to the component's
      own container.

  layout.py operator NAMESPACE ARGOCD_JSON
      As the Argo CD Operator lays Argo CD out from its ArgoCD resource (ARGOCD_JSON: the
      resource as `kubectl get -o json` prints it): the five workloads named `<cr>-<component>`,
      controlled by that resource (an owner reference with its uid), labelled
      `app.kubernetes.io/name: <cr>-<component>` (the Services' and NetworkPolicies' selectors
      follow), `managed-by: <cr>`, `part-of: argocd`; argocd-repo-server-mtls mounted nowhere
      (no Operator release mounts it), then what the resource's `spec.repo|server|controller|
      applicationSet` `volumes` and `volumeMounts` add, as the Operator's reconcile adds them (to
      the pod and its first container); no notifications controller when
      `spec.notifications.enabled` is false. install.yaml's ClusterRoles and bindings are left
      out (the namespaced Roles serve), so it disturbs no other Argo CD on the node. The Operator
      itself is not run.

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


CHART = "argo-cd-10.2.3"
# The chart's values key of each component, and its names for extra volumes and mounts.
CHART_VALUES = {
    "repo-server": ("repoServer", "volumes", "volumeMounts"),
    "server": ("server", "volumes", "volumeMounts"),
    "application-controller": ("controller", "volumes", "volumeMounts"),
    "applicationset-controller": ("applicationSet", "extraVolumes", "extraVolumeMounts"),
    "notifications-controller": ("notifications", "extraVolumes", "extraVolumeMounts"),
}
MTLS = "argocd-repo-server-mtls"


def unmount_mtls(pod):
    """The pod spec without the argocd-repo-server-mtls volume and its mounts."""
    pod["volumes"] = [v for v in pod.get("volumes") or [] if v["name"] != MTLS]
    for container in pod["containers"]:
        container["volumeMounts"] = [m for m in container.get("volumeMounts") or [] if m["name"] != MTLS]


def chart(docs, namespace, release, values):
    docs = helm(docs, namespace, release)
    for doc in docs:
        component = (doc["spec"]["template"]["metadata"].get("labels") or {}).get("app.kubernetes.io/component") \
            if doc.get("kind") in ("Deployment", "StatefulSet") else None
        if component not in CHART_VALUES:
            continue
        meta = doc["metadata"]
        meta.setdefault("labels", {}).update({
            "helm.sh/chart": CHART,
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/instance": release,
            "app.kubernetes.io/component": component,
        })
        meta.setdefault("annotations", {}).update({
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        })
        spec = doc["spec"]["template"]["spec"]
        unmount_mtls(spec)
        main = next(c for c in spec["containers"] if c["name"] == component)
        key, volumes, mounts = CHART_VALUES[component]
        given = (values or {}).get(key) or {}
        spec["volumes"] = (spec.get("volumes") or []) + (given.get(volumes) or [])
        main["volumeMounts"] = main["volumeMounts"] + (given.get(mounts) or [])
    return docs


# The ArgoCD resource's field for each component's pod (the notifications controller has none).
OPERATOR_FIELDS = {
    "repo-server": "repo",
    "server": "server",
    "application-controller": "controller",
    "applicationset-controller": "applicationSet",
    "notifications-controller": None,
}


def relabel(node, names):
    """Every label selector under `node` (matchLabels, a Service's selector) follows `names`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("matchLabels", "selector") and isinstance(value, dict):
                for k, v in list(value.items()):
                    if k == "app.kubernetes.io/name" and v in names:
                        value[k] = names[v]
            relabel(value, names)
    elif isinstance(node, list):
        for item in node:
            relabel(item, names)


def operator(docs, namespace, argocd):
    cr = argocd["metadata"]["name"]
    spec = argocd.get("spec") or {}
    names = {upstream: f"{cr}-{component}" for upstream, component in COMPONENTS.items()}
    out = []
    for doc in docs:
        # No cluster-wide RBAC: binding install.yaml's ClusterRoles to NAMESPACE would take them
        # from the Argo CDs of the other scenarios (the namespaced Roles are enough here).
        if doc.get("kind") in ("ClusterRole", "ClusterRoleBinding"):
            continue
        into_namespace(doc, namespace)
        relabel(doc, names)
        name = doc["metadata"].get("name")
        if doc.get("kind") in ("Deployment", "StatefulSet") and name in COMPONENTS:
            component = COMPONENTS[name]
            if component == "notifications-controller" and (spec.get("notifications") or {}).get("enabled") is False:
                continue
            meta = doc["metadata"]
            meta["name"] = names[name]
            meta.setdefault("labels", {}).update({
                "app.kubernetes.io/name": names[name],
                "app.kubernetes.io/managed-by": cr,
                "app.kubernetes.io/part-of": "argocd",
            })
            meta["ownerReferences"] = [{
                "apiVersion": argocd["apiVersion"],
                "kind": "ArgoCD",
                "name": cr,
                "uid": argocd["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }]
            doc["spec"]["template"]["metadata"].setdefault("labels", {})["app.kubernetes.io/name"] = names[name]
            pod = doc["spec"]["template"]["spec"]
            unmount_mtls(pod)
            field = OPERATOR_FIELDS[component]
            given = (spec.get(field) or {}) if field else {}
            pod["volumes"] += given.get("volumes") or []
            pod["containers"][0]["volumeMounts"] += given.get("volumeMounts") or []
        out.append(doc)
    return out


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
    elif mode == "chart":
        values = None
        if len(sys.argv) > 4:
            with open(sys.argv[4]) as f:
                values = yaml.safe_load(f)
        docs = chart(docs, namespace, sys.argv[3], values)
    elif mode == "operator":
        with open(sys.argv[3]) as f:
            docs = operator(docs, namespace, yaml.safe_load(f))
    elif mode == "controller-deployment":
        docs = controller_deployment(docs, namespace, sys.argv[3])
    else:
        sys.exit(f"unknown layout {mode}")
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
