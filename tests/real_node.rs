//! The Kubernetes half of the product on a real node: Kubernetes v1.34.4 built from its Go module,
//! Debian's containerd and runc, real pods of Argo CD v3.5.1 (the `argocd` binary built from
//! Argo CD's Go module) from the UNMODIFIED pinned install.yaml, all brought up by
//! `tests/rig/node/up.sh` (the README's test command does it). No mock anywhere in this file.
//!
//! Each scenario of the node rig is one test. The node holds two Argo CDs at once, each in a
//! namespace of its own (a `Lane`: the unmodified install.yaml in `argocd`, the unmodified
//! namespace-install.yaml in `argocd-ns`), so two scenarios run side by side; within a lane they
//! take turns (a lock), and each sets up the state it needs from scratch. The one scenario that
//! deletes what both share (s8: the CRDs) takes the whole node.
//!
//! Over 500 lines on purpose: the scenarios share one node, its lanes and one set of helpers
//! (install, verify, read the report); one file keeps their turns and their setup visible.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{OPEN_SERVER_FAILS, Run, pki_init_with, run_from_output, tempdir, verdicts};

const REPO_SERVER: &str = "app.kubernetes.io/name=argocd-repo-server";
/// Every workload of the pinned install that mounts argocd-repo-server-mtls.
const MOUNTING: [&str; 5] = [
    "deployment/argocd-repo-server",
    "deployment/argocd-server",
    "deployment/argocd-applicationset-controller",
    "deployment/argocd-notifications-controller",
    "statefulset/argocd-application-controller",
];

/// Where a scenario's Argo CD lives. The node holds two at once, each in a namespace of its own,
/// so two scenarios run side by side (`tests/run` gives the harness the threads); within a lane
/// they take turns, and each sets up the state it needs from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Namespace `argocd`, the unmodified install.yaml with its cluster-scoped RBAC: the product's
    /// own `--install`, an Application really reconciled, the layouts rewritten from install.yaml
    /// (Helm's names in `gitops`, the controller as a Deployment), the in-cluster probe and the
    /// fleet example.
    Cluster,
    /// Namespace `argocd-ns`, the unmodified namespace-install.yaml (Argo CD without any
    /// cluster-scoped object; the CRDs come from install.yaml): the scenarios about the
    /// repo-server and its clients inside one namespace, and the Operator's layout (namespace
    /// `ops`, no cluster-wide RBAC), which only balances the lanes.
    Namespaced,
}

impl Lane {
    fn namespace(self) -> &'static str {
        match self {
            Lane::Cluster => "argocd",
            Lane::Namespaced => "argocd-ns",
        }
    }

    fn lock(self) -> &'static Mutex<()> {
        static CLUSTER: Mutex<()> = Mutex::new(());
        static NAMESPACED: Mutex<()> = Mutex::new(());
        match self {
            Lane::Cluster => &CLUSTER,
            Lane::Namespaced => &NAMESPACED,
        }
    }

    fn turn(self) -> MutexGuard<'static, ()> {
        self.lock().lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lane's turn if nobody has it now.
    fn free_turn(self) -> Option<MutexGuard<'static, ()>> {
        match self.lock().try_lock() {
            Ok(turn) => Some(turn),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// The running node, and the right to change a lane of it (or all of it) until dropped.
struct Node {
    _turns: Vec<MutexGuard<'static, ()>>,
    lane: Lane,
    /// The lane's namespace.
    ns: &'static str,
    kubeconfig: PathBuf,
    kubectl: PathBuf,
    audit_log: PathBuf,
    _clock: common::ScenarioClock,
}

/// The node, for a scenario of `lane`.
fn node(lane: Lane) -> Node {
    on_node(lane, vec![lane.turn()])
}

/// The whole node, every lane idle and emptied: for a scenario that changes what every lane
/// shares (the CRDs, the cluster-scoped RBAC). Both turns are taken only when both are free, so
/// no lane idles while the other finishes its queue (bounded: 60 min).
fn whole_node() -> Node {
    let mut turns = Vec::new();
    for _ in 0..3600 {
        if let Some(cluster) = Lane::Cluster.free_turn()
            && let Some(namespaced) = Lane::Namespaced.free_turn()
        {
            turns = vec![cluster, namespaced];
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(turns.len(), 2, "both lanes still busy after 60 min");
    let node = on_node(Lane::Cluster, turns);
    node.reset_namespace(Lane::Namespaced.namespace());
    node
}

fn on_node(lane: Lane, turns: Vec<MutexGuard<'static, ()>>) -> Node {
    let out = common::rig::root().join("target/rig/node");
    let node = Node {
        _clock: common::ScenarioClock(std::time::Instant::now()),
        _turns: turns,
        lane,
        ns: lane.namespace(),
        kubeconfig: out.join("state/kubeconfig"),
        kubectl: out.join("bin/kubectl"),
        audit_log: out.join("state/log/audit.log"),
    };
    let ready =
        node.kubeconfig.exists() && node.kubectl(&["get", "--raw", "/readyz"]).status.success();
    assert!(
        ready,
        "no running node at {}: build and start it with `tests/rig/node/build.sh && tests/rig/node/up.sh` \
         (tests/run does both, as root, after .ci/run installed the Debian packages)",
        node.kubeconfig.display()
    );
    node
}

/// The pinned manifest rewritten into another installer's layout by `tests/rig/node/layout.py`
/// (`args` after the script: the mode and its arguments).
fn relayout(args: &[&str]) -> String {
    let script = common::rig::root().join("tests/rig/node/layout.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::fs::File::open(common::pinned_manifest()).unwrap())
        .output()
        .expect("python3 runs the layout script");
    assert!(
        out.status.success(),
        "layout.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl Node {
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("the rig's kubectl")
    }

    fn k(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command line the product printed, run verbatim by `sh` with the rig's kubectl first on
    /// PATH and this node's kubeconfig; it must succeed.
    fn shell(&self, command: &str) {
        let bin = self.kubectl.parent().unwrap();
        let out = Command::new("sh")
            .args(["-c", command])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn apply(&self, yaml: &str) {
        self.kubectl_with_stdin(&["apply", "-n", self.ns, "-f", "-"], yaml);
    }

    /// `kubectl ARGS...` with `input` on its standard input; it must succeed.
    fn kubectl_with_stdin(&self, args: &[&str], input: &str) {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// No Argo CD: the namespace and everything in it deleted (cluster-scoped objects stay; the
    /// next install applies them again).
    fn reset(&self) {
        self.reset_namespace(self.ns);
    }

    fn reset_namespace(&self, ns: &str) {
        // An Application left by a scenario that failed half-way keeps Argo CD's finalizer, which
        // nothing runs once its controller is deleted: the namespace would never go. (No
        // Applications, or no CRD after s8: nothing to release.)
        let left = self.kubectl(&["get", "applications.argoproj.io", "-n", ns, "-o", "name"]);
        for app in String::from_utf8_lossy(&left.stdout).lines() {
            self.kubectl(&[
                "patch",
                "-n",
                ns,
                app,
                "--type",
                "merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
        self.k(&[
            "delete",
            "namespace",
            ns,
            "--ignore-not-found",
            "--wait",
            "--timeout=300s",
        ]);
    }

    /// The pinned manifest applied as an operator would, no mTLS Secret; waits for the workloads
    /// that matter (Dex has no image on the node and is never waited for).
    fn install_without_mtls(&self) {
        self.install_pinned(None);
    }

    /// The pinned manifest applied into a fresh namespace where the bundle's Secrets (if any) are
    /// already, so every workload starts with them; the workloads that matter waited for.
    fn install_pinned(&self, secrets: Option<&Path>) {
        self.reset();
        self.k(&["create", "namespace", self.ns]);
        if let Some(pki) = secrets {
            self.apply_bundle_secrets(pki);
        }
        let install = common::pinned_manifest();
        let manifest = match self.lane {
            Lane::Cluster => install,
            Lane::Namespaced => {
                // namespace-install.yaml leaves the CRDs to the cluster's admin: install.yaml's.
                let text = std::fs::read_to_string(&install).unwrap();
                let crds: Vec<&str> = text
                    .split("\n---\n")
                    .filter(|doc| doc.contains("\nkind: CustomResourceDefinition\n"))
                    .collect();
                assert_eq!(crds.len(), 3, "install.yaml's three CRDs");
                self.kubectl_with_stdin(
                    &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                    &crds.join("\n---\n"),
                );
                self.wait_crds_established();
                let namespaced = install.with_file_name("namespace-install.yaml");
                let digest = argocd_mtls_verify::kubernetes::versions::sha256_hex(
                    &std::fs::read(&namespaced).unwrap(),
                );
                let pinned = argocd_mtls_verify::kubernetes::versions::pinned_by_digest(&digest);
                assert_eq!(
                    pinned.map(|m| (m.version, m.file)),
                    Some(("v3.5.1".into(), "manifests/namespace-install.yaml".into())),
                    "{} is the pinned v3.5.1 namespace-install.yaml",
                    namespaced.display()
                );
                namespaced
            }
        };
        self.k(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            self.ns,
            "-f",
            manifest.to_str().unwrap(),
        ]);
        self.wait_rollouts();
    }

    /// Argo CD's three CRDs report Established. Polled (bounded, 60 s): `kubectl wait` fails at
    /// once on a CRD so new that it has no conditions yet, as one is right after s8 deleted them.
    fn wait_crds_established(&self) {
        self.wait_established(&[
            "applications.argoproj.io",
            "applicationsets.argoproj.io",
            "appprojects.argoproj.io",
        ]);
    }

    /// Waits until each CRD is Established (bounded: 60 s), also through the moment a CRD is so
    /// new that it has no conditions yet, where `kubectl wait` fails at once.
    fn wait_established(&self, crds: &[&str]) {
        let mut seen = String::new();
        for _ in 0..120 {
            seen = crds
                .iter()
                .map(|crd| {
                    let out = self.kubectl(&[
                        "get",
                        &format!("crd/{crd}"),
                        "-o",
                        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
                    ]);
                    format!("{crd}={}", String::from_utf8_lossy(&out.stdout).trim())
                })
                .collect::<Vec<_>>()
                .join(" ");
            if seen.split(' ').all(|c| c.ends_with("=True")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("CRDs not Established after 60 s: {seen}");
    }

    /// `pki init --namespace <the lane's> ARGS`: a bundle whose Secrets and server names are this
    /// lane's.
    fn pki(&self, args: &[&str]) -> tempfile::TempDir {
        let mut all = vec!["--namespace", self.ns];
        all.extend_from_slice(args);
        pki_init_with(&all)
    }

    fn wait_rollouts(&self) {
        for w in MOUNTING {
            self.k(&["rollout", "status", "-n", self.ns, w, "--timeout=300s"]);
        }
    }

    /// The repo-server restarted and its rollout waited out, old pods gone.
    fn restart_repo_server(&self) {
        self.k(&[
            "rollout",
            "restart",
            "-n",
            self.ns,
            "deployment/argocd-repo-server",
        ]);
        self.k(&[
            "rollout",
            "status",
            "-n",
            self.ns,
            "deployment/argocd-repo-server",
            "--timeout=300s",
        ]);
        self.wait_no_terminating();
    }

    fn restart_all(&self) {
        for w in MOUNTING {
            self.k(&["rollout", "restart", "-n", self.ns, w]);
        }
        self.wait_rollouts();
        self.wait_no_terminating();
    }

    /// Old pods of a rollout linger while they terminate; scenarios that count pods wait them out.
    fn wait_no_terminating(&self) {
        self.settled_pods(self.ns, None, "");
    }

    /// `yaml` (a whole installation) applied from scratch into `ns`, every Deployment and
    /// StatefulSet but Dex (no image on the node) waited for.
    fn install_yaml_in(&self, ns: &str, yaml: &str) {
        self.k(&[
            "delete",
            "namespace",
            ns,
            "--ignore-not-found",
            "--wait",
            "--timeout=300s",
        ]);
        self.k(&["create", "namespace", ns]);
        self.install_yaml_in_existing(ns, yaml);
    }

    /// Applies `yaml` into the namespace as it is (server-side) and waits for every workload's
    /// rollout (Dex has no image on the node and is never waited for).
    fn install_yaml_in_existing(&self, ns: &str, yaml: &str) {
        self.kubectl_with_stdin(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-n",
                ns,
                "-f",
                "-",
            ],
            yaml,
        );
        for w in self
            .k(&["get", "deployments,statefulsets", "-n", ns, "-o", "name"])
            .lines()
        {
            if !w.contains("dex") {
                self.k(&["rollout", "status", "-n", ns, w, "--timeout=300s"]);
            }
        }
    }

    /// A merge patch of Secret `secret`'s `data` (values: raw bytes, base64-encoded here).
    fn patch_secret_data(&self, secret: &str, data: &[(&str, Vec<u8>)]) {
        use base64::Engine;
        let data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    base64::engine::general_purpose::STANDARD.encode(v).into(),
                )
            })
            .collect();
        self.k(&[
            "patch",
            "secret",
            secret,
            "-n",
            self.ns,
            "--type",
            "merge",
            "-p",
            &serde_json::json!({ "data": data }).to_string(),
        ]);
    }

    /// Secret `secret`'s client pair replaced by `client.crt`/`client.key` of bundle `dir`.
    fn patch_secret_pair(&self, secret: &str, dir: &Path) {
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        self.patch_secret_data(
            secret,
            &[
                ("client.crt", read("client.crt")),
                ("client.key", read("client.key")),
            ],
        );
    }

    /// The install with the bundle's two Secrets (as `pki init` wrote them) created before the
    /// manifest is applied: mTLS on from every workload's first start, set up by hand as an
    /// operator would (one rollout, not an install and then a restart of everything; the
    /// scenarios that need a restart after the Secret, s1, s2 and s3, make it themselves).
    fn install_with_mtls(&self, pki: &Path) {
        self.install_pinned(Some(pki));
    }

    fn apply_bundle_secrets(&self, pki: &Path) {
        for file in [
            "argocd-repo-server-tls.yaml",
            "argocd-repo-server-mtls.yaml",
        ] {
            self.apply(&std::fs::read_to_string(pki.join(file)).unwrap());
        }
    }

    /// `argocd-mtls-verify ARGS... --report-dir <fresh>` with this node's kubeconfig.
    fn product(&self, args: &[&str]) -> Run {
        self.product_as(&self.kubeconfig, args)
    }

    fn product_as(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let mut cmd = Command::new(common::bin());
        cmd.args(args).env("KUBECONFIG", kubeconfig);
        // The default namespace (argocd) is the Cluster lane's: the other lane says its own.
        if self.lane != Lane::Cluster
            && args.first() == Some(&"run")
            && !args.contains(&"--namespace")
            && !args.contains(&"-n")
        {
            cmd.args(["--namespace", self.ns]);
        }
        common::run_with_reports(cmd)
    }

    /// `run --target cluster --pki DIR`: the read-only verification of what is installed.
    fn verify(&self, pki: &Path) -> Run {
        self.product(&["run", "--target", "cluster", "--pki", pki.to_str().unwrap()])
    }

    fn repo_server_pods(&self) -> Vec<String> {
        self.repo_server_pods_with("")
    }

    /// One line per repo-server pod: its name, then `fields` (a jsonpath fragment), once no
    /// repo-server pod is terminating (see `settled_pods`).
    fn repo_server_pods_with(&self, fields: &str) -> Vec<String> {
        self.settled_pods(self.ns, Some(REPO_SERVER), fields)
    }

    /// The pods matching `selector` in `ns`, one line each (its name, then `fields`), read when
    /// none of them is terminating: a rollout's old pod lingers after the rollout completes, and
    /// a count taken then sees it. Waits (bounded, 60 s) for that condition, never for a count.
    fn settled_pods(&self, ns: &str, selector: Option<&str>, fields: &str) -> Vec<String> {
        let jsonpath = format!(
            "jsonpath={{range .items[*]}}{{.metadata.deletionTimestamp}}|{{.metadata.name}}{fields}{{\"\\n\"}}{{end}}"
        );
        let mut args = vec!["get", "pods", "-n", ns, "-o", &jsonpath];
        if let Some(selector) = selector {
            args.extend(["-l", selector]);
        }
        let mut listed = String::new();
        for _ in 0..120 {
            listed = self.k(&args);
            if listed.lines().all(|l| l.starts_with('|')) {
                return listed
                    .lines()
                    .map(|l| l.trim_start_matches('|').to_owned())
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let which = selector.unwrap_or("(all)");
        panic!("pods `{which}` in {ns} still terminating after 60 s:\n{listed}");
    }
}

/// The command a fix prints, from `start` (its first words) to the quote that closes its `-p '…'`
/// patch; panics with the reason when it holds no such command.
fn printed_command(reason: &str, start: &str) -> String {
    let command = reason.find(start).map(|at| &reason[at..]).and_then(|rest| {
        let open = rest.find("-p '")? + 4;
        Some(&rest[..=open + rest[open..].find('\'')?])
    });
    command
        .unwrap_or_else(|| panic!("no `{start}…-p '…'` in: {reason}"))
        .to_owned()
}

fn reason_on(run: &Run, id: &str, endpoint: &str) -> String {
    run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id && c["endpoint"] == endpoint)
        .unwrap_or_else(|| panic!("no {id} on {endpoint}; the run said:\n{}", run.said))["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Scenario 1: fresh install, baseline before the Secret, the seed's Secrets provisioned, every
/// mounting workload restarted (the StatefulSet included), every replica verified at its pod IP
/// (`--connect auto`: this host routes the pod network; scenario 6 goes through port-forwards):
/// exit 0 with before and after in one report.
#[test]
fn s1_install_baseline_provision_verify_passes_with_before_and_after() {
    let node = node(Lane::Cluster);
    node.reset();
    let pki = node.pki(&[]);
    let manifest = common::pinned_manifest();
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "--install",
        "--install-manifest",
        manifest.to_str().unwrap(),
        "--pki",
        pki.path().to_str().unwrap(),
        "--grpc-log-info",
    ]);
    run.assert_exit(0);
    let pods = node.repo_server_pods();
    assert_eq!(pods.len(), 1, "{pods:?}");
    let after = &pods[0];
    // Before: the replica that existed before the Secret admitted a client with no certificate.
    let before = verdicts(&run, "baseline/no-cert-accepted-before-mtls");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].1, "pass");
    assert_ne!(
        &before[0].0, after,
        "the baseline is the pod from before the restart"
    );
    // After: the restarted replica refuses it, and everything required passes on it.
    for id in OPEN_SERVER_FAILS {
        assert_eq!(
            verdicts(&run, id),
            vec![(after.clone(), "pass".into())],
            "{id}"
        );
    }
    assert_eq!(
        verdicts(&run, "log/rejections-logged"),
        vec![(after.clone(), "pass".into())]
    );
    assert!(
        run.said
            .contains(&format!("pod/{after}: reached directly at its pod IP")),
        "{}",
        run.said
    );
    assert_eq!(
        verdicts(&run, "transport/port-forward"),
        vec![(after.clone(), "skip".into())]
    );
    for id in [
        "config/mtls-client-pair/argocd-server",
        "config/client-cert-chains/argocd-application-controller",
        "config/client-ca-parses",
        "config/server-ca-present",
        "config/mtls-secret-extra-keys",
    ] {
        assert_eq!(
            verdicts(&run, id),
            vec![(format!("namespace/{}", node.ns), "pass".into())],
            "{id}"
        );
    }
    for id in [
        "config/restarted-after-secret/argocd-repo-server",
        "config/client-restarted-after-secret/argocd-application-controller",
    ] {
        assert_eq!(
            verdicts(&run, id).first().map(|v| v.1.as_str()),
            Some("pass"),
            "{id}"
        );
    }
    let kube = &run.report["subject"]["kubernetes"];
    assert_eq!(kube["server_version"], "v1.34.4");
    let changes = kube["changes"].to_string();
    assert!(
        changes.contains("restarted StatefulSet/argocd-application-controller"),
        "{changes}"
    );
    assert_eq!(
        kube["provenance"]["manifest_matches"],
        "v3.5.1 manifests/install.yaml"
    );
    // report.html has the cluster's views: the replica, and each component's results.
    let html = std::fs::read_to_string(common::report_dir(&run).join("report.html")).unwrap();
    assert!(
        html.contains("id=\"replicas\"") && html.contains(&format!("<td>{after}</td>")),
        "per replica"
    );
    assert!(
        html.contains("id=\"components\"")
            && html.contains("<th>argocd-application-controller</th>"),
        "per component"
    );
}

/// Scenario 2: the Secret carries `ca.crt` instead of `client-ca.crt`: the repo-server stays
/// silently open. Exit 1, the audit names the key, the probes show the no-certificate client in.
#[test]
fn s2_misnamed_client_ca_key_leaves_the_server_open() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_without_mtls();
    let dir = pki.path();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    node.apply(&std::fs::read_to_string(dir.join("argocd-repo-server-tls.yaml")).unwrap());
    node.k(&[
        "create",
        "secret",
        "generic",
        "argocd-repo-server-mtls",
        "-n",
        node.ns,
        &format!("--from-file=ca.crt={}", file("ca.crt")),
        &format!("--from-file=client.crt={}", file("client.crt")),
        &format!("--from-file=client.key={}", file("client.key")),
    ]);
    node.restart_all();
    let run = node.verify(dir);
    common::assert_misnamed_client_ca(&run);
    // Without --pki the Secret's pair cannot serve (no client-ca.crt): a stand-in client probes,
    // and the server's certificate is verified against the installation's own server CA
    // (argocd-repo-server-tls's ca.crt), so server/identity is still judged, on the real server.
    let run = node.product(&["run", "--target", "cluster"]);
    run.assert_exit(1);
    assert_eq!(
        run.verdict("server/identity"),
        "pass",
        "{}",
        run.reason("server/identity")
    );
    assert_eq!(run.verdict("handshake/valid-client-cert/tls1.3"), "skip");
}

/// Scenario 3: the Secret created, nothing restarted: the running pods are still open. Exit 1,
/// and the report says a restart is needed, and of which workloads.
#[test]
fn s3_secret_without_restart_is_still_open_and_names_the_workloads_to_restart() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_without_mtls();
    // Before the Secret, and with no --pki: nothing to present as the valid client, yet the open
    // server is caught (a stand-in identity probes; the valid-client case is not judged).
    let before = node.product(&["run", "--target", "cluster"]);
    before.assert_exit(1);
    for id in OPEN_SERVER_FAILS {
        assert_eq!(before.verdict(id), "fail", "{id}");
    }
    assert_eq!(before.verdict("handshake/valid-client-cert/tls1.3"), "skip");
    let why = before.reason("handshake/valid-client-cert/tls1.3");
    assert!(why.contains("no client identity"), "{why}");
    // Start times have a one-second grain: the Secret's change must fall in a later second.
    std::thread::sleep(Duration::from_millis(1100));
    node.apply_bundle_secrets(pki.path());
    let run = node.verify(pki.path());
    run.assert_exit(1);
    for id in OPEN_SERVER_FAILS {
        assert_eq!(run.verdict(id), "fail", "{id}");
    }
    let scope = format!("namespace/{}", node.ns);
    // Judged per replica, from what each announces.
    let pods = node.repo_server_pods();
    assert_eq!(
        verdicts(&run, "config/restarted-after-secret/argocd-repo-server"),
        pods.iter()
            .map(|p| (p.clone(), "fail".to_owned()))
            .collect::<Vec<_>>()
    );
    let repo = reason_on(
        &run,
        "config/restarted-after-secret/argocd-repo-server",
        &pods[0],
    );
    assert!(
        repo.contains("RESTART NEEDED")
            && repo.contains("asks for no client certificate")
            && repo.contains(&format!(
                "kubectl -n {} rollout restart deployment/argocd-repo-server",
                node.ns
            )),
        "{repo}"
    );
    let controller = reason_on(
        &run,
        "config/client-restarted-after-secret/argocd-application-controller",
        &scope,
    );
    // A client reloads its pair when the file changes: no restart is asked of it (advice), and
    // until it logs the reload the report says that is not yet proven.
    assert!(
        controller.contains("no restart needed")
            && controller.contains("statefulset/argocd-application-controller"),
        "{controller}"
    );
}

/// Scenario 5: two repo-server pods behind the same Service, one without the client CA (a
/// hand-made pod with the repo-server's labels): only that pod fails, by name. A third one, being
/// deleted (held in Terminating by a finalizer, as a rollout's old pod is for its grace period),
/// is no replica: it is not judged at all.
#[test]
fn s5_a_leftover_pod_without_the_client_ca_fails_alone_by_name() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_with_mtls(pki.path());
    let good = node.repo_server_pods();
    assert_eq!(good.len(), 1, "{good:?}");
    let template: serde_json::Value =
        serde_json::from_str(&node.k(&["get", "pod", "-n", node.ns, &good[0], "-o", "json"]))
            .unwrap();
    // The running pod as a bare pod with the same labels, but no ReplicaSet would adopt it.
    let bare = |name: &str| {
        let mut pod = template.clone();
        // Without `pod-template-hash` the ReplicaSet does not adopt (and delete) it; the Service
        // and the harness select by app.kubernetes.io/name, which it keeps.
        let mut labels = pod["metadata"]["labels"].clone();
        labels.as_object_mut().unwrap().remove("pod-template-hash");
        pod["metadata"] =
            serde_json::json!({ "name": name, "namespace": node.ns, "labels": labels });
        pod.as_object_mut().unwrap().remove("status");
        pod
    };
    let terminating = "argocd-repo-server-terminating";
    let mut held = bare(terminating);
    held["metadata"]["finalizers"] = serde_json::json!(["argocd-mtls-verify.test/hold"]);
    node.apply(&held.to_string());
    node.k(&[
        "wait",
        "-n",
        node.ns,
        "--for=condition=Ready",
        &format!("pod/{terminating}"),
        "--timeout=180s",
    ]);
    node.k(&["delete", "pod", "-n", node.ns, terminating, "--wait=false"]);
    // The leftover: minus the mTLS Secret volume, so it has no client CA.
    let mut pod = bare("argocd-repo-server-leftover");
    let leftover = "argocd-repo-server-leftover";
    let spec = pod["spec"].as_object_mut().unwrap();
    let volumes = spec["volumes"].as_array_mut().unwrap();
    let mtls_volume: Vec<String> = volumes
        .iter()
        .filter(|v| v["secret"]["secretName"] == "argocd-repo-server-mtls")
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        mtls_volume.len(),
        1,
        "the repo-server mounts the mTLS Secret"
    );
    volumes.retain(|v| v["secret"]["secretName"] != "argocd-repo-server-mtls");
    for c in spec["containers"].as_array_mut().unwrap() {
        if let Some(mounts) = c["volumeMounts"].as_array_mut() {
            mounts.retain(|m| m["name"] != mtls_volume[0].as_str());
        }
    }
    node.apply(&pod.to_string());
    node.k(&[
        "wait",
        "-n",
        node.ns,
        "--for=condition=Ready",
        &format!("pod/{leftover}"),
        "--timeout=180s",
    ]);
    let run = node.verify(pki.path());
    node.k(&["delete", "pod", "-n", node.ns, leftover, "--wait=false"]);
    node.k(&[
        "patch",
        "pod",
        "-n",
        node.ns,
        terminating,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    run.assert_exit(1);
    let judged_terminating = run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["endpoint"] == terminating)
        .count();
    assert_eq!(
        judged_terminating, 0,
        "a pod being deleted is not a replica"
    );
    for id in OPEN_SERVER_FAILS {
        let mut got = verdicts(&run, id);
        got.sort();
        assert_eq!(
            got,
            vec![
                (good[0].clone(), "pass".to_owned()),
                (leftover.to_owned(), "fail".to_owned())
            ],
            "{id}"
        );
    }
    let failing_endpoints: std::collections::BTreeSet<String> = run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail" && c["severity"] == "required")
        .map(|c| c["endpoint"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        failing_endpoints,
        [leftover.to_owned()].into_iter().collect(),
        "only the leftover pod fails"
    );
}

/// The README's read-only Role, as the README prints it.
fn readme_role() -> String {
    let readme = std::fs::read_to_string(common::rig::root().join("README.md")).unwrap();
    let start = readme
        .find("kind: Role\n")
        .expect("README shows the read-only Role");
    let block_start = readme[..start].rfind("```yaml\n").unwrap() + "```yaml\n".len();
    let end = block_start + readme[block_start..].find("```").unwrap();
    readme[block_start..end].to_owned()
}

/// Scenario 6: read-only mode as a ServiceAccount that may not read Secrets (the README's Role
/// without its optional Secret rule): the Secret checks are skipped with the reason, everything
/// else is judged, and the API server's audit log shows no write request from that identity.
#[test]
fn s6_read_only_without_secret_access_writes_nothing() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_with_mtls(pki.path());
    // The README's Role names namespace argocd: an operator of another namespace edits that.
    let role: String = readme_role()
        .replace("namespace: argocd }", &format!("namespace: {} }}", node.ns))
        .lines()
        .filter(|l| !l.contains("resources: [secrets]"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(role.contains("pods/portforward"), "{role}");
    node.apply(&role);
    node.k(&["create", "serviceaccount", "-n", node.ns, "auditor"]);
    node.k(&[
        "create",
        "rolebinding",
        "-n",
        node.ns,
        "auditor",
        "--role=argocd-mtls-verify-readonly",
        &format!("--serviceaccount={}:auditor", node.ns),
    ]);
    let token = node.k(&["create", "token", "-n", node.ns, "auditor", "--duration=1h"]);
    let server = node.k(&[
        "config",
        "view",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let ca = node.k(&[
        "config",
        "view",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority}",
    ]);
    let dir = tempdir();
    let kubeconfig = dir.path().join("auditor.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rig\n  cluster: {{server: \"{server}\", certificate-authority: \"{ca}\"}}\n\
             users:\n- name: auditor\n  user: {{token: \"{}\"}}\ncontexts:\n- name: rig\n  context: {{cluster: rig, user: auditor, namespace: {}}}\ncurrent-context: rig\n",
            token.trim(),
            node.ns
        ),
    )
    .unwrap();
    let audit_before = std::fs::metadata(&node.audit_log)
        .map(|m| m.len())
        .unwrap_or(0);
    let run = node.product_as(
        &kubeconfig,
        &[
            "run",
            "--target",
            "cluster",
            "--pki",
            pki.path().to_str().unwrap(),
            // The auditor's role leaves the Secret out on purpose: the narrowing is declared.
            "--partial",
            // An auditor outside the cluster network reaches the replicas this way; the other
            // scenarios reach them at their pod IPs (this host routes the pod network).
            "--connect",
            "port-forward",
        ],
    );
    run.assert_exit(0);
    // What the run took, for the README's figures (a measurement, never asserted).
    eprintln!(
        "s6: read-only run through port-forwards, phases {}",
        run.report["run"]["phases"]
    );
    let pods = node.repo_server_pods();
    assert_eq!(
        verdicts(&run, "transport/port-forward"),
        pods.iter()
            .map(|p| (p.clone(), "pass".to_owned()))
            .collect::<Vec<_>>()
    );
    for id in [
        "config/mtls-secret-keys",
        "config/mtls-client-pair",
        "config/restarted-after-secret",
    ] {
        assert_eq!(run.verdict(id), "skip", "{id}");
        assert!(
            run.reason(id).contains("secrets"),
            "{id}: {}",
            run.reason(id)
        );
    }
    for id in OPEN_SERVER_FAILS {
        assert_eq!(run.verdict(id), "pass", "{id}");
    }
    assert_eq!(run.ids("pass", "config/mount/").len(), 5);

    // The audit log, from where it stood before the run: this identity's requests.
    let log = std::fs::read(&node.audit_log).unwrap();
    let who = format!("system:serviceaccount:{}:auditor", node.ns);
    let mut reads = 0;
    // Port-forward requests by audit id (an upgraded request is logged when its response
    // starts and again when it completes).
    let mut forwards = std::collections::BTreeSet::new();
    let mut writes = Vec::new();
    for line in log[audit_before as usize..].split(|b| *b == b'\n') {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if event["user"]["username"] != who.as_str() {
            continue;
        }
        let verb = event["verb"].as_str().unwrap_or_default();
        let object = &event["objectRef"];
        // Opening a port-forward is a `create` on pods/portforward in RBAC terms; it changes nothing.
        let connect = object["resource"] == "pods" && object["subresource"] == "portforward";
        if connect {
            forwards.insert(event["auditID"].to_string());
        }
        if matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) && !connect
        {
            writes.push(format!(
                "{verb} {} {}",
                object["resource"], event["requestURI"]
            ));
        } else {
            reads += 1;
        }
    }
    assert!(reads > 10, "the audit log shows the run's reads ({reads})");
    // Hundreds of attempts, one SPDY port-forward per replica and port (gRPC, health) carrying
    // them all: a port-forward request per attempt would be hundreds.
    assert!(
        (1..=2 * pods.len()).contains(&forwards.len()),
        "{} port-forward requests for {} replicas: one per replica and port carries every attempt",
        forwards.len(),
        pods.len()
    );
    assert_eq!(writes, Vec::<String>::new(), "write requests from {who}");
}

/// Scenario 7: the upgrade hazard. `reposerver.disable.tls: "true"` (kept from a mesh setup) makes
/// the 3.5 repo-server exit at startup; the report says why and what to change, not just
/// "not ready".
#[test]
fn s7_disable_tls_crash_loop_is_reported_with_its_cause_and_fix() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_with_mtls(pki.path());
    node.k(&[
        "patch",
        "configmap",
        "argocd-cmd-params-cm",
        "-n",
        node.ns,
        "--type",
        "merge",
        "-p",
        r#"{"data":{"reposerver.disable.tls":"true"}}"#,
    ]);
    let before = node.repo_server_pods();
    node.k(&[
        "rollout",
        "restart",
        "-n",
        node.ns,
        "deployment/argocd-repo-server",
    ]);
    // The new pod crashes at once; wait until the kubelet has restarted it at least once.
    let mut crashed = None;
    for _ in 0..120 {
        let pods = node.repo_server_pods_with(" {.status.containerStatuses[0].restartCount}");
        crashed = pods.iter().find_map(|l| {
            let (name, restarts) = l.split_once(' ')?;
            (!before.contains(&name.to_owned()) && restarts.trim().parse::<u32>().ok()? >= 1)
                .then(|| name.to_owned())
        });
        if crashed.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let crashed = crashed.expect("the new repo-server pod restarts within 60 s");
    let run = node.verify(pki.path());
    run.assert_exit(1);
    let why = reason_on(&run, "pod/ready", &crashed);
    for words in [
        "--client-ca-path cannot be used when --disable-tls is enabled",
        "reposerver.disable.tls",
        "ARGOCD_REPO_SERVER_CLIENT_CA_PATH=\"\"",
    ] {
        assert!(why.contains(words), "`{words}` in: {why}");
    }
    assert_eq!(run.verdict("config/repo-server-tls"), "fail");
    // The old replica, still serving while the rollout is stuck, is judged as before.
    assert_eq!(
        verdicts(&run, "handshake/no-client-cert/tls1.3"),
        vec![(before[0].clone(), "pass".to_owned())]
    );

    // The remedy the report prints, applied exactly as printed (the JSON patch between the
    // quotes, on the repo-server Deployment): the new repo-server starts and stays up. (The empty
    // env var the earlier advice gave does not: Argo CD falls back to the default path.)
    let patch = why
        .split_once("--type json -p '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(patch, _)| patch.to_owned())
        .unwrap_or_else(|| panic!("a JSON patch in: {why}"));
    node.k(&[
        "patch",
        "deployment",
        "argocd-repo-server",
        "-n",
        node.ns,
        "--type",
        "json",
        "-p",
        &patch,
    ]);
    node.k(&[
        "rollout",
        "status",
        "-n",
        node.ns,
        "deployment/argocd-repo-server",
        "--timeout=180s",
    ]);
    let running = node.repo_server_pods_with(
        " {.status.containerStatuses[0].ready} {.status.containerStatuses[0].restartCount}",
    );
    // A pod of the patched template: neither the replica from before nor the one that crashed.
    assert!(
        running.iter().any(|l| {
            let name = l.split(' ').next().unwrap_or_default();
            name != crashed && !before.iter().any(|b| b == name) && l.ends_with(" true 0")
        }),
        "a new repo-server runs with the printed fix: {running:?}"
    );
}

/// Scenario 8: Ctrl-C in the middle of `run --target cluster --install`: what the run created (the
/// namespace with everything in it, the manifest's cluster-scoped objects, the Secrets) is
/// deleted again, the partial report is marked incomplete, exit 2.
#[test]
fn s8_ctrl_c_mid_install_cleans_up_and_reports_incomplete() {
    use std::io::{BufRead, BufReader};
    let node = whole_node();
    let manifest = common::pinned_manifest();
    let manifest = manifest.to_str().unwrap();
    // Nothing of Argo CD on the node: every object the run applies is one it creates.
    node.reset();
    node.k(&[
        "delete",
        "-n",
        node.ns,
        "-f",
        manifest,
        "--ignore-not-found",
        "--wait",
        "--timeout=120s",
    ]);
    let pki = node.pki(&[]);
    let reports = tempdir();
    let mut child = Command::new(common::bin())
        .args([
            "run",
            "--target",
            "cluster",
            "--install",
            "--install-manifest",
            manifest,
            "--pki",
        ])
        .arg(pki.path())
        .arg("--report-dir")
        .arg(reports.path())
        .env("KUBECONFIG", &node.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the install is in and the run is recording the baseline or provisioning.
    let stderr = child.stderr.take().unwrap();
    let mut said = String::new();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.starts_with("== baseline") || line.starts_with("== provision") {
            break;
        }
    }
    assert!(
        said.contains("== baseline") || said.contains("== provision"),
        "{said}"
    );
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    for line in lines {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    let mut run = run_from_output(out, reports);
    run.said = format!("{said}{}", run.said);
    run.assert_exit(2);
    assert_eq!(run.report["run"]["incomplete"], true);
    // The interrupted phase and the clean-up are both in the report's phases (phase guards).
    let phases = run.report["run"]["phases"].to_string();
    assert!(
        phases.contains("\"clean up\"")
            && (phases.contains("\"baseline\"") || phases.contains("\"provision\"")),
        "{phases}"
    );
    let changes = run.report["subject"]["kubernetes"]["changes"].to_string();
    assert!(
        changes.contains("stopped early: deleted"),
        "{changes}\n{}",
        run.said
    );
    // Gone: the namespace (the API server finishes deleting it in the background) and the
    // manifest's cluster-scoped objects.
    node.k(&[
        "wait",
        "--for=delete",
        &format!("namespace/{}", node.ns),
        "--timeout=300s",
    ]);
    for object in [
        "customresourcedefinition/applications.argoproj.io",
        "clusterrole/argocd-server",
        "clusterrolebinding/argocd-application-controller",
    ] {
        let out = node.kubectl(&["get", object]);
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"),
            "{object} is still there"
        );
    }
}

/// An Application whose source the repo-server must try to fetch (from the rig's own bridge
/// address, where nothing listens): the application controller has to call the repo-server.
const DIAL_APPLICATION: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: mtls-dial, namespace: argocd}
spec:
  project: default
  source: {repoURL: "https://10.88.0.1:9/none.git", path: ".", targetRevision: HEAD}
  destination: {server: "https://kubernetes.default.svc", namespace: default}
"#;

impl Node {
    /// Waits (bounded) until the controller has reconciled the Application, and returns its
    /// condition messages.
    fn reconciled(&self) -> String {
        for _ in 0..120 {
            let status = self.k(&[
                "get",
                "application",
                "-n",
                self.ns,
                "mtls-dial",
                "-o",
                "jsonpath={.status.reconciledAt} {.status.conditions[*].message}",
            ]);
            if !status.trim().is_empty() && !status.starts_with(' ') {
                return status;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the application controller did not reconcile mtls-dial within 60 s");
    }
}

/// Scenario 4: a client component really dials the repo-server after the restart. With the right
/// certificate its log shows the certificate loaded and no handshake error; with a client
/// certificate from another CA its call is refused, and the harness names that component.
#[test]
fn s4_a_real_client_call_goes_through_and_a_foreign_client_cert_is_named() {
    let node = node(Lane::Cluster);
    let pki = node.pki(&[]);
    node.install_with_mtls(pki.path());
    node.apply(DIAL_APPLICATION);
    let status = node.reconciled();
    assert!(!status.contains("Unavailable"), "{status}");
    let run = node.verify(pki.path());
    run.assert_exit(0);
    let scope = format!("namespace/{}", node.ns);
    for id in [
        "log/client-cert-loaded/argocd-application-controller",
        "log/client-handshake-errors/argocd-application-controller",
        "client/reaches-repo-server/argocd-application-controller",
    ] {
        assert_eq!(
            verdicts(&run, id),
            vec![(scope.clone(), "pass".into())],
            "{id}"
        );
    }

    // The components' pair replaced by one from another CA; the controller restarted with it.
    let foreign = node.pki(&[]);
    node.patch_secret_pair("argocd-repo-server-mtls", foreign.path());
    node.k(&[
        "rollout",
        "restart",
        "-n",
        node.ns,
        "statefulset/argocd-application-controller",
    ]);
    node.k(&[
        "rollout",
        "status",
        "-n",
        node.ns,
        "statefulset/argocd-application-controller",
        "--timeout=300s",
    ]);
    node.k(&[
        "delete",
        "application",
        "-n",
        node.ns,
        "mtls-dial",
        "--wait",
    ]);
    node.apply(DIAL_APPLICATION);
    let status = node.reconciled();
    assert!(
        status.contains("Unavailable"),
        "the refusal reaches the Application: {status}"
    );
    let run = node.verify(pki.path());
    run.assert_exit(1);
    let id = "client/reaches-repo-server/argocd-application-controller";
    assert_eq!(verdicts(&run, id), vec![(scope.clone(), "fail".into())]);
    let why = reason_on(&run, id, &scope);
    assert!(
        why.contains("application controller") && why.contains("mtls-dial"),
        "{why}"
    );
    // The probes with the right identity still pass: the server is fine, the client is not.
    assert_eq!(run.verdict("handshake/valid-client-cert/tls1.3"), "pass");
}

/// Scenario 9: Argo CD laid out as the Helm chart lays it out, in namespace `gitops`: workloads
/// `prod-argocd-<component>`, containers named by component, instance and component labels. The
/// harness finds every component by role: `--provision --grpc-log-info` patches the renamed
/// repo-server's `repo-server` container (no container added), restarts the renamed workloads,
/// reads the log of the right container and passes the mount audit, exit 0.
#[test]
fn s9_helm_names_in_another_namespace_are_found_by_role() {
    let node = node(Lane::Cluster);
    let ns = "gitops";
    let pki = pki_init_with(&["--namespace", ns]);
    node.install_yaml_in(ns, &relayout(&["helm", ns, "prod"]));
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "--namespace",
        ns,
        "--pki",
        pki.path().to_str().unwrap(),
        "--provision",
        "--grpc-log-info",
    ]);
    let scope = format!("namespace/{ns}");
    let mount = reason_on(&run, "config/mount/argocd-repo-server", &scope);
    assert!(
        mount.contains("deployment/prod-argocd-repo-server (container repo-server)"),
        "{mount}"
    );
    run.assert_exit(0);
    for role in [
        "argocd-server",
        "argocd-application-controller",
        "argocd-applicationset-controller",
        "argocd-notifications-controller",
    ] {
        assert_eq!(
            verdicts(&run, &format!("config/mount/{role}")),
            vec![(scope.clone(), "pass".into())],
            "{role}"
        );
    }
    // The restart's old pod may still be terminating when the run ends: counted once it is gone.
    let pods = node.settled_pods(ns, Some(REPO_SERVER), "");
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(
        verdicts(&run, "log/rejections-logged"),
        vec![(pods[0].clone(), "pass".into())],
        "the log of container repo-server was read"
    );
    let containers = node.k(&[
        "get",
        "deployment/prod-argocd-repo-server",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.template.spec.containers[*].name}",
    ]);
    assert_eq!(
        containers.trim(),
        "repo-server",
        "the patch added no container"
    );
    let changes = run.report["subject"]["kubernetes"]["changes"].to_string();
    assert!(
        changes.contains("deployment/prod-argocd-repo-server: GRPC_GO_LOG_SEVERITY_LEVEL=info on container repo-server")
            && changes.contains("restarted StatefulSet/prod-argocd-application-controller"),
        "{changes}"
    );
    node.k(&["delete", "namespace", ns, "--wait", "--timeout=300s"]);
}

/// Scenario 17: Argo CD as the community Helm chart ships it for 3.5 (argo-cd 10.2.3 rendered by
/// layout.py: its labels, Helm's release annotations, argocd-repo-server-mtls mounted nowhere).
/// `--provision` says that nothing mounts the mTLS Secret, restarts the repo-server because it
/// mounts the TLS Secret it wrote (it then serves that certificate), and neither asks for a
/// restart that cannot help nor calls the client pair "not observed". The run fails (exit 1):
/// every `config/mount/*` names the Helm
/// release and gives the values that mount the Secret for that component, in the chart's own keys,
/// as one line to save as a values file; no fix says `kubectl edit`. Those lines, saved verbatim
/// and given to the chart as `helm upgrade -f` would (layout.py appends them as the chart's
/// templates do), make the next run pass (exit 0).
#[test]
fn s17_the_helm_chart_as_shipped_gets_its_fix_in_values_and_the_values_make_it_pass() {
    let node = node(Lane::Cluster);
    let ns = "gitops";
    let pki = pki_init_with(&["-n", ns]);
    node.install_yaml_in(ns, &relayout(&["chart", ns, "prod"]));
    // --provision writes both Secrets. Nothing mounts the mTLS one, and the run says so; the
    // chart's repo-server mounts argocd-repo-server-tls, so it restarts and serves the new
    // certificate. No restart could help the mTLS Secret, and no client mounts a pair: both
    // say so instead of asking for a restart or saying "not observed".
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "-n",
        ns,
        "--pki",
        pki.path().to_str().unwrap(),
        "--provision",
    ]);
    run.assert_exit(1);
    assert!(
        run.said.contains(
            "no workload mounts `argocd-repo-server-mtls`: creating it changes nothing until the installer mounts it"
        ),
        "{}",
        run.said
    );
    let changes = run.report["subject"]["kubernetes"]["changes"].to_string();
    assert!(
        changes.contains("restarted Deployment/prod-argocd-repo-server"),
        "{changes}"
    );
    let identity = verdicts(&run, "server/identity");
    assert!(
        !identity.is_empty() && identity.iter().all(|(_, v)| v == "pass"),
        "the restarted repo-server serves the written certificate: {identity:?}"
    );
    for check in run.report["checks"].as_array().unwrap() {
        let id = check["id"].as_str().unwrap();
        let reason = check["reason"].as_str().unwrap_or_default();
        if id.starts_with("config/restarted-after-secret") {
            assert_eq!(check["verdict"], "skip", "{id}: {reason}");
            assert!(
                reason.starts_with(
                    "no restart helps: deployment/prod-argocd-repo-server does not mount"
                ),
                "{reason}"
            );
        }
        if id.starts_with("config/mtls-client-pair") {
            assert!(
                reason.contains("no client of the repo-server mounts a certificate and key"),
                "{id}: {reason}"
            );
        }
    }
    let verify = || {
        node.product(&[
            "run",
            "--target",
            "cluster",
            "-n",
            ns,
            "--pki",
            pki.path().to_str().unwrap(),
        ])
    };
    let run = verify();
    run.assert_exit(1);
    let scope = format!("namespace/{ns}");
    let mut values = String::new();
    for (role, key) in [
        ("argocd-repo-server", "repoServer"),
        ("argocd-server", "server"),
        ("argocd-application-controller", "controller"),
        ("argocd-applicationset-controller", "applicationSet"),
        ("argocd-notifications-controller", "notifications"),
    ] {
        let reason = reason_on(&run, &format!("config/mount/{role}"), &scope);
        assert!(
            reason.contains("Helm release `prod` (chart argo-cd-10.2.3) made "),
            "{role}: {reason}"
        );
        assert!(!reason.contains("kubectl edit"), "{reason}");
        let line = reason
            .split_once("Save this line as mtls-values.yaml: ")
            .and_then(|(_, rest)| rest.split_once(" then: helm upgrade prod "))
            .unwrap_or_else(|| panic!("{role}: no values line in {reason}"))
            .0;
        assert!(line.starts_with(&format!("{{\"{key}\":")), "{role}: {line}");
        // One values file for the five components: each line is one top-level key.
        values.push_str(&format!("{}\n", &line[1..line.len() - 1]));
    }
    let file = pki.path().join("mtls-values.yaml");
    std::fs::write(
        &file,
        format!("{{{}}}\n", values.trim_end().replace('\n', ",")),
    )
    .unwrap();
    node.install_yaml_in_existing(
        ns,
        &relayout(&["chart", ns, "prod", file.to_str().unwrap()]),
    );
    let run = verify();
    run.assert_exit(0);
    for role in [
        "argocd-repo-server",
        "argocd-server",
        "argocd-application-controller",
        "argocd-applicationset-controller",
        "argocd-notifications-controller",
    ] {
        assert_eq!(
            verdicts(&run, &format!("config/mount/{role}")),
            vec![(scope.clone(), "pass".into())],
            "{role}"
        );
    }
    node.k(&["delete", "namespace", ns, "--wait", "--timeout=300s"]);
}

/// Scenario 18: Argo CD as the Argo CD Operator lays it out from an `ArgoCD` resource named
/// `example` (the Operator's own CRD, v0.18.0, from its Go module; layout.py renders what its
/// reconcile makes: `example-<component>` controlled by the resource, the mTLS Secret mounted
/// nowhere). The run fails (exit 1): each `config/mount/*` names the Operator and prints a
/// `kubectl patch` of the ArgoCD resource (the Operator reverts patches of its Deployments); for
/// the notifications controller, which the resource gives no volumes, it says so and prints the
/// patch that switches it off. Every printed command, run verbatim, is accepted by the real CRD's
/// schema; rendered again from the patched resource, the next run passes (exit 0).
#[test]
fn s18_the_operator_gets_its_fix_in_the_argocd_resource_and_the_resource_makes_it_pass() {
    // Its own namespace and no cluster-wide object of Argo CD's: it takes the namespaced lane's
    // turn only to balance the two lanes.
    let node = node(Lane::Namespaced);
    let ns = "ops";
    let pki = pki_init_with(&["-n", ns]);
    let crd = "argocds.argoproj.io";
    node.crd(
        &common::rig::root().join("target/rig/node/crds/argoproj.io_argocds.yaml"),
        crd,
    );
    node.k(&[
        "delete",
        "namespace",
        ns,
        "--ignore-not-found",
        "--wait",
        "--timeout=300s",
    ]);
    node.k(&["create", "namespace", ns]);
    for file in [
        "argocd-repo-server-tls.yaml",
        "argocd-repo-server-mtls.yaml",
    ] {
        node.kubectl_with_stdin(
            &["apply", "-n", ns, "-f", "-"],
            &std::fs::read_to_string(pki.path().join(file)).unwrap(),
        );
    }
    node.kubectl_with_stdin(
        &["apply", "-n", ns, "-f", "-"],
        "apiVersion: argoproj.io/v1beta1\nkind: ArgoCD\nmetadata:\n  name: example\nspec: {}\n",
    );
    // What the Operator's reconcile makes of the resource as it is now.
    let reconcile = || {
        let resource = pki.path().join("argocd.json");
        std::fs::write(
            &resource,
            node.k(&[
                "get",
                "-n",
                ns,
                "argocds.argoproj.io",
                "example",
                "-o",
                "json",
            ]),
        )
        .unwrap();
        relayout(&["operator", ns, resource.to_str().unwrap()])
    };
    node.install_yaml_in_existing(ns, &reconcile());
    // With kubectl's flags: -n, and --kubeconfig over a KUBECONFIG that leads nowhere.
    let verify = || {
        node.product_as(
            &pki.path().join("no-kubeconfig-here"),
            &[
                "run",
                "--target",
                "cluster",
                "-n",
                ns,
                "--kubeconfig",
                node.kubeconfig.to_str().unwrap(),
                "--pki",
                pki.path().to_str().unwrap(),
            ],
        )
    };
    let run = verify();
    run.assert_exit(1);
    let scope = format!("namespace/{ns}");
    let mut commands = Vec::new();
    for (role, workload) in [
        ("argocd-repo-server", "deployment/example-repo-server"),
        ("argocd-server", "deployment/example-server"),
        (
            "argocd-application-controller",
            "statefulset/example-application-controller",
        ),
        (
            "argocd-applicationset-controller",
            "deployment/example-applicationset-controller",
        ),
        (
            "argocd-notifications-controller",
            "deployment/example-notifications-controller",
        ),
    ] {
        let reason = reason_on(&run, &format!("config/mount/{role}"), &scope);
        assert!(
            reason.contains(&format!(
                "the Argo CD Operator made {workload} from ArgoCD `example`"
            )),
            "{role}: {reason}"
        );
        assert!(!reason.contains("kubectl edit"), "{reason}");
        if role == "argocd-notifications-controller" {
            assert!(
                reason.contains("has no volumes for the notifications controller"),
                "{reason}"
            );
        }
        commands.push(printed_command(
            &reason,
            "kubectl -n ops patch argocds.argoproj.io example --type merge -p '",
        ));
    }
    // Each printed command, verbatim.
    for command in &commands {
        node.shell(command);
    }
    // The Operator's next reconcile: the patched resource rendered again; notifications off
    // removes its Deployment.
    node.k(&[
        "delete",
        "-n",
        ns,
        "deployment/example-notifications-controller",
        "--wait=true",
    ]);
    node.install_yaml_in_existing(ns, &reconcile());
    let run = verify();
    run.assert_exit(0);
    for role in [
        "argocd-repo-server",
        "argocd-server",
        "argocd-application-controller",
        "argocd-applicationset-controller",
    ] {
        assert_eq!(
            verdicts(&run, &format!("config/mount/{role}")),
            vec![(scope.clone(), "pass".into())],
            "{role}"
        );
    }
    node.k(&["delete", "namespace", ns, "--wait", "--timeout=300s"]);
    node.k(&["delete", "crd", crd, "--wait=true", "--timeout=60s"]);
}

/// Scenario 10: the application controller shipped as a Deployment (Argo CD's own
/// dynamic-cluster-distribution variant, which mounts no argocd-repo-server-mtls volume): once mTLS
/// is on it presents no certificate. Discovery by role sees it although it mounts nothing, and
/// `config/mount/argocd-application-controller` fails naming the Deployment and the fix; the
/// other clients pass. Exit 1. The fix (a strategic-merge patch of the Deployment: these are
/// plain manifests), run verbatim, makes the next run pass.
#[test]
fn s10_a_controller_deployment_without_the_mount_fails_by_name() {
    let node = node(Lane::Cluster);
    let pki = node.pki(&[]);
    let variant = common::pinned_manifest().parent().unwrap().join(
        "base/application-controller-deployment/argocd-application-controller-deployment.yaml",
    );
    node.install_yaml_in(
        node.ns,
        &relayout(&["controller-deployment", node.ns, variant.to_str().unwrap()]),
    );
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "--pki",
        pki.path().to_str().unwrap(),
        "--provision",
    ]);
    run.assert_exit(1);
    let scope = format!("namespace/{}", node.ns);
    let id = "config/mount/argocd-application-controller";
    assert_eq!(verdicts(&run, id), vec![(scope.clone(), "fail".into())]);
    let why = reason_on(&run, id, &scope);
    assert!(
        why.contains("deployment/argocd-application-controller")
            && why.contains("WITHOUT a client certificate")
            && why.contains(
                "Fix: kubectl -n argocd patch deployment argocd-application-controller -p '"
            ),
        "{why}"
    );
    assert_eq!(
        verdicts(&run, "config/mount/argocd-server"),
        vec![(scope.clone(), "pass".into())]
    );
    // The server itself is right: the valid client passes.
    assert_eq!(run.verdict("handshake/valid-client-cert/tls1.3"), "pass");
    // The printed patch (plain manifests: a strategic merge of the workload), run verbatim,
    // mounts the Secret: the next run passes.
    node.shell(&printed_command(&why, "kubectl -n argocd patch deployment"));
    node.k(&[
        "rollout",
        "status",
        "-n",
        node.ns,
        "deployment/argocd-application-controller",
        "--timeout=300s",
    ]);
    let run = node.verify(pki.path());
    run.assert_exit(0);
    assert_eq!(verdicts(&run, id), vec![(scope.clone(), "pass".into())]);
    node.reset();
}

/// Scenario 11: Option B, per-component Secrets (`pki init --layout per-component`), with
/// argocd-server's volume pointed at its own Secret `argocd-repo-server-mtls-server`. The harness
/// follows the volume: argocd-server's identity is read from its own Secret and judged, exit 0.
/// Then that Secret gets a pair from ANOTHER CA (the server's calls are all refused): exit 1,
/// `config/client-cert-chains/argocd-server` names the Deployment (the shared pair nobody mounts
/// there no longer hides it).
#[test]
fn s11_option_b_per_component_secret_is_the_identity_judged() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&["--layout", "per-component"]);
    node.install_with_mtls(pki.path());
    node.apply(
        &std::fs::read_to_string(pki.path().join("argocd-repo-server-mtls-server.yaml")).unwrap(),
    );
    let volumes = node.k(&[
        "get",
        "deployment/argocd-server",
        "-n",
        node.ns,
        "-o",
        "jsonpath={range .spec.template.spec.volumes[*]}{.name}{\"\\n\"}{end}",
    ]);
    let index = volumes
        .lines()
        .position(|v| v == "argocd-repo-server-mtls")
        .expect("the manifest's volume");
    node.k(&[
        "patch",
        "deployment/argocd-server",
        "-n",
        node.ns,
        "--type",
        "json",
        "-p",
        &format!(
            r#"[{{"op":"replace","path":"/spec/template/spec/volumes/{index}/secret/secretName","value":"argocd-repo-server-mtls-server"}}]"#
        ),
    ]);
    node.k(&[
        "rollout",
        "status",
        "-n",
        node.ns,
        "deployment/argocd-server",
        "--timeout=300s",
    ]);
    node.wait_no_terminating();
    let scope = format!("namespace/{}", node.ns);
    let run = node.verify(pki.path());
    let pair = reason_on(&run, "config/mtls-client-pair/argocd-server", &scope);
    assert!(
        pair.contains("Secret `argocd-repo-server-mtls-server`"),
        "{pair}"
    );
    run.assert_exit(0);
    let identities = reason_on(&run, "config/client-identities", &scope);
    assert!(
        identities.contains("authenticate but do not authorize"),
        "{identities}"
    );

    let foreign = node.pki(&[]);
    node.patch_secret_pair("argocd-repo-server-mtls-server", foreign.path());
    let run = node.verify(pki.path());
    run.assert_exit(1);
    let id = "config/client-cert-chains/argocd-server";
    assert_eq!(verdicts(&run, id), vec![(scope.clone(), "fail".into())]);
    let why = reason_on(&run, id, &scope);
    assert!(
        why.contains("deployment/argocd-server") && why.contains("refuses every call"),
        "{why}"
    );
    assert_eq!(
        verdicts(
            &run,
            "config/client-cert-chains/argocd-application-controller"
        ),
        vec![(scope, "pass".into())]
    );
}

/// Scenario 12: `client-ca.crt` present but not PEM. The real repo-server refuses to start (it
/// does not fall back to open): the report names the crash with its cause (the line the crashed
/// run logged, and what it means) and the Secret's own check fails on the same key. Exit 1.
#[test]
fn s12_a_garbled_client_ca_is_a_named_startup_failure() {
    let node = node(Lane::Namespaced);
    let pki = node.pki(&[]);
    node.install_without_mtls();
    let dir = pki.path();
    node.apply(&std::fs::read_to_string(dir.join("argocd-repo-server-tls.yaml")).unwrap());
    let garbage = tempdir();
    let garbled = garbage.path().join("client-ca.crt");
    std::fs::write(&garbled, "not a certificate\n").unwrap();
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    node.k(&[
        "create",
        "secret",
        "generic",
        "argocd-repo-server-mtls",
        "-n",
        node.ns,
        &format!("--from-file=client-ca.crt={}", garbled.to_str().unwrap()),
        &format!("--from-file=client.crt={}", file("client.crt")),
        &format!("--from-file=client.key={}", file("client.key")),
    ]);
    node.k(&[
        "rollout",
        "restart",
        "-n",
        node.ns,
        "deployment/argocd-repo-server",
    ]);
    // The new pod crashes; wait until it has (its last state is a terminated run).
    let mut crashed = false;
    for _ in 0..120 {
        let states = node
            .repo_server_pods_with(" {.status.containerStatuses[0].lastState.terminated.exitCode}");
        if states.iter().any(|l| l.split_whitespace().nth(1).is_some()) {
            crashed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        crashed,
        "the repo-server did not crash: {:?}",
        node.repo_server_pods()
    );
    let run = node.verify(dir);
    run.assert_exit(1);
    let ready: Vec<(String, String)> = verdicts(&run, "pod/ready")
        .into_iter()
        .filter(|(_, v)| v == "fail")
        .collect();
    assert!(!ready.is_empty(), "{}", run.said);
    let why = reason_on(&run, "pod/ready", &ready[0].0);
    assert!(
        why.contains("invalid cert data in /app/config/reposerver/mtls/client-ca.crt")
            && why.contains("refuses to start rather than run open"),
        "{why}"
    );
    assert_eq!(run.verdict("config/client-ca-parses"), "fail");
    node.reset();
}

/// A process started by the test, killed by its PID when dropped.
struct Spawned(std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        // SIGTERM first: the prober flushes and exits.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        for _ in 0..20 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client leaf `client.crt`/`client.key` in `out`, issued by `ca` (a bundle directory with
/// `ca.crt` and `ca.key`) with openssl: a routine renewal from the same CA.
fn renew_leaf(ca: &Path, out: &Path) {
    let ok = |args: &[&str]| {
        common::openssl_ok(out, args);
    };
    std::fs::write(out.join("ext.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
    ok(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        "/CN=argocd-core-clients-renewed",
    ]);
    let (ca_crt, ca_key) = (ca.join("ca.crt"), ca.join("ca.key"));
    ok(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        ca_crt.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "ext.cnf",
        "-out",
        "client.crt",
    ]);
}

/// Scenario 13: a whole rotation with a client calling the repo-server every 200 ms through its
/// Service for all of it (`tests/rig/node/prober.py`, presenting whatever pair the rotation has
/// reached). The harness judges every state from what the running server announces: (1) a leaf
/// renewal from the same CA: no restart asked, exit 0; (2) client-ca.crt = old + new CA: RESTART
/// NEEDED, exit 1; (3) repo-server restarted: exit 0; (4) new leaves from the new CA: exit 0;
/// (5) old CA dropped: RESTART NEEDED, exit 1; (6) restarted: exit 0. The prober's failed calls
/// are the measured error window, printed for the record.
#[test]
fn s13_a_rotation_is_judged_state_by_state_with_its_error_window() {
    let node = node(Lane::Namespaced);
    let old = node.pki(&[]);
    let new = node.pki(&[]);
    node.install_with_mtls(old.path());
    let ip = node.k(&[
        "get",
        "service",
        "argocd-repo-server",
        "-n",
        node.ns,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    // The prober's identity: the old pair now, replaced file by file as the rotation goes.
    let identity = tempdir();
    let install = |from: &Path| {
        for f in ["client.key", "client.crt"] {
            let staged = identity.path().join(format!(".{f}"));
            std::fs::copy(from.join(f), &staged).unwrap();
            std::fs::rename(&staged, identity.path().join(f)).unwrap();
        }
    };
    install(old.path());
    let log = tempdir();
    let log_path = log.path().join("prober.jsonl");
    let prober = Spawned(
        Command::new("python3")
            .arg(common::rig::root().join("tests/rig/node/prober.py"))
            .args([ip.trim(), "8081", identity.path().to_str().unwrap(), "0.2"])
            .stdout(std::fs::File::create(&log_path).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the prober"),
    );
    let restart = || node.restart_repo_server();
    let id = "config/restarted-after-secret/argocd-repo-server";
    let mut marks = vec![("installed", std::time::SystemTime::now())];
    // Each state judged read-only from the cluster's own Secret (no --pki, so no CA key: the
    // cases minted from it are skipped, a narrowing declared with --partial).
    let judge = |state: &str, exit: i32, restart_needed: bool| {
        let run = node.product(&["run", "--target", "cluster", "--partial"]);
        let pods = node.repo_server_pods();
        let reason = reason_on(&run, id, &pods[0]);
        assert_eq!(
            reason.contains("RESTART NEEDED"),
            restart_needed,
            "{state}: {reason}"
        );
        assert_eq!(run.code, Some(exit), "{state}: {}", run.said);
    };
    judge("start", 0, false);

    // (1) A routine renewal: a new leaf from the same CA, the pair replaced in the Secret.
    let renewed = tempdir();
    renew_leaf(old.path(), renewed.path());
    node.patch_secret_pair("argocd-repo-server-mtls", renewed.path());
    install(renewed.path());
    marks.push(("leaf renewed", std::time::SystemTime::now()));
    judge("leaf renewal", 0, false);

    // (2) The bundle: old and new CA.
    let old_ca = std::fs::read(old.path().join("ca.crt")).unwrap();
    let new_ca = std::fs::read(new.path().join("ca.crt")).unwrap();
    node.patch_secret_data(
        "argocd-repo-server-mtls",
        &[("client-ca.crt", [old_ca, new_ca.clone()].concat())],
    );
    marks.push(("bundle old+new", std::time::SystemTime::now()));
    judge("bundle before restart", 1, true);
    // (3) Restarted with the bundle.
    restart();
    marks.push(("restarted with the bundle", std::time::SystemTime::now()));
    judge("bundle after restart", 0, false);
    // (4) New leaves from the new CA.
    node.patch_secret_pair("argocd-repo-server-mtls", new.path());
    install(new.path());
    marks.push(("new leaves", std::time::SystemTime::now()));
    judge("new leaves", 0, false);
    // (5) The old CA dropped.
    node.patch_secret_data("argocd-repo-server-mtls", &[("client-ca.crt", new_ca)]);
    marks.push(("old CA dropped", std::time::SystemTime::now()));
    judge("old CA dropped before restart", 1, true);
    // (6) Restarted with the new CA only.
    restart();
    marks.push(("restarted with the new CA", std::time::SystemTime::now()));
    judge("new CA after restart", 0, false);
    drop(prober);

    let lines = std::fs::read_to_string(&log_path).unwrap();
    let attempts: Vec<serde_json::Value> = lines
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let failed: Vec<&serde_json::Value> = attempts.iter().filter(|a| a["ok"] != true).collect();
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };
    let start = secs(marks[0].1);
    eprintln!(
        "[rotation] {} calls every 200 ms over {:.0} s, {} failed",
        attempts.len(),
        attempts
            .last()
            .map(|a| a["t"].as_f64().unwrap() - start)
            .unwrap_or(0.0),
        failed.len()
    );
    for (name, at) in &marks {
        eprintln!("[rotation]   +{:>6.1} s {name}", secs(*at) - start);
    }
    for f in &failed {
        eprintln!(
            "[rotation]   failed at +{:.1} s: {}",
            f["t"].as_f64().unwrap() - start,
            f["why"].as_str().unwrap_or_default()
        );
    }
    assert!(
        attempts.len() > 50,
        "the prober ran the whole rotation: {} calls",
        attempts.len()
    );
    assert!(
        attempts.iter().any(|a| a["ok"] == true),
        "the prober's calls went through at all: {lines}"
    );
}

/// Scenario 14: a repo-server the scheduler cannot place (a node selector no node carries, as a
/// required anti-affinity with fewer nodes than replicas does). `--provision` restarts it, and the
/// rollout wait stops after 15 polls with the scheduler's own reason (exit 2, the workload named)
/// instead of waiting out its 10-minute limit; the report says which phase it stopped in.
#[test]
fn s14_an_unschedulable_repo_server_stops_the_rollout_wait_with_the_schedulers_reason() {
    let node = node(Lane::Cluster);
    let pki = node.pki(&[]);
    node.install_without_mtls();
    node.k(&[
        "patch",
        "deployment/argocd-repo-server",
        "-n",
        node.ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"template":{"spec":{"nodeSelector":{"mtls-verify.test/absent":"true"}}}}}"#,
    ]);
    let started = std::time::Instant::now();
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "--provision",
        "--pki",
        pki.path().to_str().unwrap(),
    ]);
    let took = started.elapsed();
    run.assert_exit(2);
    assert!(
        run.said.contains("deployment/argocd-repo-server")
            || run.said.contains("Deployment/argocd-repo-server"),
        "{}",
        run.said
    );
    // Given up on the scheduler's word, not at the rollout limit ("did not finish within").
    assert!(
        run.said
            .contains("cannot finish: a pod cannot be scheduled")
            && run
                .said
                .contains("didn't match Pod's node affinity/selector")
            && !run.said.contains("did not finish within"),
        "{}",
        run.said
    );
    let phases = run.report["run"]["phases"].to_string();
    assert!(phases.contains("\"restart\""), "{phases}");
    eprintln!(
        "[unschedulable] the run stopped after {:.0} s",
        took.as_secs_f64()
    );
    node.reset();
}

/// The tool's own image, built by `tests/rig/node/tool-image.sh` from the very binary these tests
/// run (static: tests/run's one Rust build, tests/rust-build.sh; user 65532) and pushed into the
/// rig's registry, which the node pulls ghcr.io through; its name.
fn tool_image() -> String {
    let script = common::rig::root().join("tests/rig/node/tool-image.sh");
    let out = Command::new(&script)
        .arg(common::bin())
        .output()
        .expect("tool-image.sh runs");
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Every endpoint result of `run` as (check id, endpoint) -> verdict.
fn endpoint_verdicts(run: &Run) -> std::collections::BTreeMap<(String, String), String> {
    run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["suite"] == "endpoint")
        .map(|c| {
            (
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["endpoint"].as_str().unwrap().to_owned(),
                ),
                c["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Nothing a `--in-cluster` run created is left in the namespace (pods of a deleted Job go in
/// the background: they get their grace period).
fn assert_no_probe_objects(node: &Node) {
    let mut left = String::new();
    for _ in 0..60 {
        left = node.k(&[
            "get",
            "jobs,pods,secrets,serviceaccounts,roles,rolebindings",
            "-n",
            node.ns,
            "-l",
            "argocd-mtls-verify.io/run",
            "-o",
            "name",
        ]);
        if left.trim().is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("left behind: {left}");
}

/// Scenario 15: the in-cluster probe. On the healthy installation the tool's own image, started
/// as a Job in the namespace, judges every replica (its pod IP) and the Service (by its DNS name)
/// exactly as the run from outside through port-forwards judges the replica (exit 0); the intruder pods' evidence is in
/// the report, the unlabelled one's connection beside the NetworkPolicy that denies it (the rig's
/// bridge CNI does not enforce NetworkPolicy: observed, not assumed). On the open installation
/// (no client CA) the in-cluster path finds it open too (exit 1). Nothing is left behind.
#[test]
fn s15_the_in_cluster_probe_judges_as_the_outside_does_and_shows_the_intruders() {
    let node = node(Lane::Cluster);
    let image = tool_image();
    let pki = node.pki(&[]);
    node.install_with_mtls(pki.path());
    let pod = node.repo_server_pods()[0].clone();
    let in_cluster = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--target",
            "cluster",
            "--pki",
            pki.path().to_str().unwrap(),
            "--in-cluster",
            "--probe-image",
            &image,
        ];
        args.extend_from_slice(extra);
        node.product(&args)
    };
    // From outside through port-forwards (the path every other verdict takes), and from inside.
    let run = in_cluster(&["--connect", "port-forward"]);
    run.assert_exit(0);
    let all = endpoint_verdicts(&run);
    let outside: Vec<_> = all.iter().filter(|((_, e), _)| *e == pod).collect();
    assert!(outside.len() >= 30, "{outside:?}");
    // The same checks from inside, at the pod IP and through the Service, with the same verdicts.
    for inside in [
        format!("in-cluster {pod}"),
        "in-cluster service/argocd-repo-server".into(),
    ] {
        for ((id, _), verdict) in &outside {
            let theirs = all.get(&((*id).clone(), inside.clone()));
            assert_eq!(theirs, Some(*verdict), "{id} on {inside}\n{}", run.said);
        }
    }
    for c in run.report["checks"].as_array().unwrap() {
        if c["endpoint"].as_str().unwrap().starts_with("in-cluster ") {
            assert_eq!(c["path"], "in-cluster", "{c}");
        } else if c["suite"] == "endpoint" {
            assert_eq!(c["path"], "port-forward", "{c}");
        }
    }
    // The intruders: refused by mTLS whatever the network let through.
    for subject in ["unlabelled-pod", "client-labelled-pod"] {
        let id = format!("network/intruder-refused/{subject}");
        assert_eq!(run.verdict(&id), "pass", "{}", run.reason(&id));
        let reason = run.reason(&id);
        assert!(reason.contains("service/argocd-repo-server"), "{reason}");
        assert!(reason.contains(&format!("pod/{pod}")), "{reason}");
        assert!(reason.contains("mTLS: rejected"), "{reason}");
    }
    // The policy denies the unlabelled pod, the pod connected anyway: the bridge does not enforce.
    let policy = run.reason("network/policy-enforced");
    assert_eq!(run.verdict("network/policy-enforced"), "fail", "{policy}");
    assert!(policy.contains("NOT ENFORCED"), "{policy}");
    assert!(
        policy.contains("networkpolicy/argocd-repo-server-network-policy"),
        "{policy}"
    );
    let changes = run.report["subject"]["kubernetes"]["changes"].to_string();
    assert!(
        changes.contains("in-cluster probe: created and deleted"),
        "{changes}"
    );
    assert_no_probe_objects(&node);

    // The open installation: no client CA, every replica restarted; open from inside too.
    node.k(&["delete", "secret", "-n", node.ns, "argocd-repo-server-mtls"]);
    node.restart_all();
    let pod = node.repo_server_pods()[0].clone();
    let run = in_cluster(&[]);
    run.assert_exit(1);
    for id in OPEN_SERVER_FAILS {
        for endpoint in [
            format!("in-cluster {pod}"),
            "in-cluster service/argocd-repo-server".into(),
        ] {
            let got = verdicts(&run, id);
            assert!(
                got.contains(&(endpoint.clone(), "fail".into())),
                "{id} on {endpoint}: {got:?}"
            );
        }
    }
    for subject in ["unlabelled-pod", "client-labelled-pod"] {
        let id = format!("network/intruder-refused/{subject}");
        assert_eq!(run.verdict(&id), "fail", "{}", run.reason(&id));
        assert!(
            run.reason(&id).contains("got a session"),
            "{}",
            run.reason(&id)
        );
    }
    assert_no_probe_objects(&node);
}

/// `git daemon` serving one repository on the rig's bridge address (the pods reach the node
/// there), stopped by its PID when dropped.
struct GitDaemon {
    child: std::process::Child,
    url: String,
}

impl GitDaemon {
    /// Serves `base/NAME` as `git://<bridge>/NAME`. `git-daemon` itself is started (from git's
    /// exec path): `git daemon` would run it as a child of its own, which killing `git` leaves
    /// behind, holding the port.
    fn start(base: &Path, name: &str) -> GitDaemon {
        assert!(
            std::net::TcpStream::connect("10.88.0.1:9418").is_err(),
            "something already listens on 10.88.0.1:9418 (a git daemon left behind?)"
        );
        let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
        let daemon =
            Path::new(String::from_utf8(exec_path.stdout).unwrap().trim()).join("git-daemon");
        let child = Command::new(daemon)
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=10.88.0.1",
                "--port=9418",
            ])
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon");
        // Owned at once: a daemon that never listens is stopped (by Drop) when the test fails.
        let daemon = GitDaemon {
            child,
            url: format!("git://10.88.0.1/{name}"),
        };
        for _ in 0..50 {
            if std::net::TcpStream::connect("10.88.0.1:9418").is_ok() {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("git daemon did not listen on 10.88.0.1:9418 within 5 s");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `deploy/cronjob/` as the project ships it, in a git repository of its own, the image pointed
/// at `image` (what a user does with the example in a fork): the repository's folder.
fn cronjob_repository(image: &str) -> tempfile::TempDir {
    let base = tempdir();
    let repo = base.path().join("amv");
    let dir = repo.join("deploy/cronjob");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = common::rig::root().join("deploy/cronjob");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace(
            &format!(
                "ghcr.io/argocd-mtls-verify/argocd-mtls-verify:v{}",
                env!("CARGO_PKG_VERSION")
            ),
            image,
        );
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "deploy/cronjob"]);
    base
}

impl Node {
    /// Polls `kubectl ARGS` until its output is `want` (300 s at most).
    fn wait_output(&self, args: &[&str], want: &str) {
        let mut last = String::new();
        for _ in 0..600 {
            let out = self.kubectl(args);
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() && last.trim() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "kubectl {args:?}: wanted `{want}`, still `{}` after 300 s",
            last.trim()
        );
    }

    /// A Job made from the CronJob now (`kubectl create job --from`), waited for until it
    /// completes or fails; its pod's exit code, the pod's uid.
    fn trigger(&self, job: &str) -> (i32, String) {
        self.k(&[
            "create",
            "job",
            "-n",
            self.ns,
            job,
            "--from=cronjob/argocd-mtls-verify",
        ]);
        let selector = format!("batch.kubernetes.io/job-name={job}");
        for _ in 0..600 {
            let state = self.k(&[
                "get", "pods", "-n", self.ns, "-l", &selector, "-o",
                "jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode} {.items[0].metadata.uid}",
            ]);
            let mut words = state.split_whitespace();
            if let (Some(code), Some(uid)) = (words.next(), words.next()) {
                return (code.parse().unwrap(), uid.to_owned());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "job/{job} did not finish within 300 s: {}",
            self.k(&["describe", "job", "-n", self.ns, job])
        );
    }

    /// This run's report object of `resource` (`reports.openreports.io`,
    /// `policyreports.wgpolicyk8s.io`) as the API server stored it.
    fn policy_report(&self, resource: &str) -> serde_json::Value {
        serde_json::from_str(&self.k(&[
            "get",
            resource,
            "-n",
            self.ns,
            "argocd-mtls-verify",
            "-o",
            "json",
        ]))
        .unwrap()
    }

    /// Applies a CRD file and waits until it is served.
    fn crd(&self, file: &Path, name: &str) {
        self.k(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
        self.wait_established(&[name]);
    }

    /// Removes the policy-report CRDs (and so every report), and waits until they are gone.
    fn no_report_crds(&self) {
        self.k(&[
            "delete",
            "crd",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
            REPORT_CRDS[0],
            REPORT_CRDS[1],
        ]);
    }
}

/// The report resources `--policy-report` writes, by their CRDs' names.
const REPORT_CRDS: [&str; 2] = ["reports.openreports.io", "policyreports.wgpolicyk8s.io"];

/// What the API server stored of a report written with strict field validation: its results
/// are the run's checks and a gate, each still with every field written (none pruned), about
/// the repo-server's pods under the Deployment's scope.
fn assert_stored_report(stored: &serde_json::Value, run: &Run, kind: &str) {
    assert_eq!(stored["kind"], kind, "{stored}");
    assert_eq!(
        stored["scope"],
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "argocd-repo-server", "namespace": "argocd"}),
        "{stored}"
    );
    let results = stored["results"].as_array().unwrap();
    let checks = run.report["checks"].as_array().unwrap();
    assert_eq!(results.len(), checks.len() + 1, "{stored}");
    for (result, check) in results[1..].iter().zip(checks) {
        assert_eq!(result["rule"], check["id"]);
        for field in [
            "policy",
            "rule",
            "result",
            "severity",
            "category",
            "source",
            "scored",
            "message",
            "timestamp",
            "properties",
            "resources",
        ] {
            assert!(result.get(field).is_some(), "{field} pruned from {result}");
        }
        assert_eq!(result["resources"][0]["kind"], "Pod", "{result}");
        assert_eq!(
            result["properties"]["endpoint"], check["endpoint"],
            "{result}"
        );
    }
}

/// Scenario 16: the fleet example on one cluster, and the policy reports it writes. Without
/// either report CRD, `--policy-report` is a failed step named in every file. With OpenReports'
/// CRD as its project publishes it (from its Go module), the run writes a `Report`; asked for the
/// legacy PolicyReport there, it fails naming that API; with Kyverno's PolicyReport CRD beside it,
/// `--policy-report-api both` writes both, strictly validated and nothing pruned; the project's
/// own PolicyReport CRD (deploy/) takes the legacy report as well. Then the ApplicationSet as
/// shipped (cluster generator) renders an Application for the local cluster, Argo CD syncs
/// deploy/cronjob/ from a git repository, the CronJob is triggered once: its run from inside the
/// cluster passes, the `Report` it writes (with its RBAC as shipped) has one result per check and
/// a passing `run/gate`, the metrics file says pass, and so does the real Pushgateway the CronJob
/// was configured with (its Secret). With the client CA gone from the Secret the
/// next run fails the Job with exit code 1 and the report says which checks failed.
#[test]
fn s16_the_applicationset_installs_the_cronjob_whose_runs_write_policyreport_and_metrics() {
    let node = node(Lane::Cluster);
    let image = tool_image();
    let pki = node.pki(&[]);
    node.no_report_crds();
    node.install_with_mtls(pki.path());
    // Before the CRD: the PolicyReport cannot be written after the checks passed. The exit code
    // says no verdict, and so does every file written after that step: the metrics file, and
    // report.json, report.md and junit.xml, each naming the step and the cause.
    let scratch = common::tempdir();
    let metrics = scratch.path().join("m.prom");
    let run = node.product(&[
        "run",
        "--target",
        "cluster",
        "--pki",
        pki.path().to_str().unwrap(),
        "--policy-report",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    run.assert_exit(2);
    assert_eq!(run.report["summary"]["failed"], 0, "{}", run.said);
    assert_eq!(run.report["summary"]["verdict"], "error");
    let step = &run.report["run"]["failed_steps"][0];
    assert_eq!(step["step"], "policy-report", "{}", run.report["run"]);
    let why = step["error"].as_str().unwrap();
    assert!(
        why.contains(
            "serves neither reports.openreports.io/v1alpha1 nor policyreports.wgpolicyk8s.io/v1alpha2"
        ),
        "{why}"
    );
    assert!(
        run.said
            .contains("FAILED AFTER THE CHECKS: --policy-report: "),
        "{}",
        run.said
    );
    let dir = common::report_dir(&run);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("NO VERDICT — a step after the checks failed"),
        "{md}"
    );
    assert!(
        md.contains("| After the checks | **FAILED**: --policy-report: "),
        "{md}"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("a step after the checks failed: --policy-report: "),
        "{junit}"
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("step=\"--policy-report\"} 1") && prom.contains("verdict=\"error\"} 1"),
        "{prom}"
    );

    // OpenReports' CRD only: `auto` writes a Report. A narrowed run (two checks) is enough here.
    let crds = common::rig::root().join("target/rig/node/crds");
    node.crd(&crds.join("openreports.io_reports.yaml"), REPORT_CRDS[0]);
    let narrowed = |api: &str| {
        node.product(&[
            "run",
            "--target",
            "cluster",
            "--pki",
            pki.path().to_str().unwrap(),
            "--policy-report",
            "--policy-report-api",
            api,
            "handshake/no-client-cert",
        ])
    };
    let run = narrowed("auto");
    run.assert_exit(0);
    assert!(
        run.said
            .contains("wrote reports.openreports.io/argocd-mtls-verify in namespace argocd"),
        "{}",
        run.said
    );
    assert_stored_report(&node.policy_report(REPORT_CRDS[0]), &run, "Report");
    // `kubectl get -o wide` shows what the report is about (the CRD's Kind and Name columns).
    let listed = node.k(&["get", REPORT_CRDS[0], "-n", node.ns, "-o", "wide"]);
    assert!(
        listed.contains("Deployment") && listed.contains("argocd-repo-server"),
        "{listed}"
    );
    // The legacy API asked for where only OpenReports is served: a failed step naming it.
    let run = narrowed("policyreport");
    run.assert_exit(2);
    let why = run.report["run"]["failed_steps"][0]["error"].to_string();
    assert!(
        why.contains("does not serve policyreports.wgpolicyk8s.io/v1alpha2"),
        "{why}"
    );
    // Kyverno's PolicyReport CRD beside it: both written, both whole.
    node.crd(
        &crds.join("wgpolicyk8s.io_policyreports.yaml"),
        REPORT_CRDS[1],
    );
    let run = narrowed("both");
    run.assert_exit(0);
    assert_stored_report(&node.policy_report(REPORT_CRDS[0]), &run, "Report");
    assert_stored_report(&node.policy_report(REPORT_CRDS[1]), &run, "PolicyReport");
    // The project's own PolicyReport CRD (deploy/, for a cluster that has none) takes it too.
    let deploy = common::rig::root().join("deploy");
    node.k(&[
        "delete",
        "crd",
        REPORT_CRDS[1],
        "--wait=true",
        "--timeout=60s",
    ]);
    node.crd(&deploy.join("policyreport-crd.yaml"), REPORT_CRDS[1]);
    let run = narrowed("policyreport");
    run.assert_exit(0);
    assert_stored_report(&node.policy_report(REPORT_CRDS[1]), &run, "PolicyReport");
    // From here on the CronJob's runs choose for themselves (auto): OpenReports.
    node.k(&[
        "delete",
        "-n",
        node.ns,
        REPORT_CRDS[0],
        "argocd-mtls-verify",
    ]);

    let repos = cronjob_repository(&image);
    let daemon = GitDaemon::start(repos.path(), "amv");
    let appset = std::fs::read_to_string(deploy.join("applicationset.yaml"))
        .unwrap()
        .replace(
            "https://github.com/argocd-mtls-verify/argocd-mtls-verify.git",
            &daemon.url,
        );
    assert!(appset.contains(&daemon.url), "the example's repoURL moved");
    node.apply(&appset);
    // The generator rendered the local cluster's Application, and Argo CD synced it (through the
    // repo-server, with mTLS on).
    node.wait_output(
        &[
            "get",
            "application",
            "-n",
            node.ns,
            "argocd-mtls-verify-in-cluster",
            "-o",
            "jsonpath={.status.sync.status}",
        ],
        "Synced",
    );
    node.k(&["get", "cronjob", "-n", node.ns, "argocd-mtls-verify"]);
    // A Pushgateway on the node's bridge, configured as the CronJob's comment says.
    let gateway = common::prometheus::Pushgateway::start("10.88.0.1");
    node.k(&[
        "create",
        "secret",
        "generic",
        "-n",
        node.ns,
        "argocd-mtls-verify-pushgateway",
        &format!("--from-literal=url={}", gateway.url),
    ]);

    let (code, uid) = node.trigger("amv-now");
    assert_eq!(
        code,
        0,
        "{}",
        node.k(&["logs", "-n", node.ns, "job/amv-now", "--tail=40"])
    );
    let report = node.policy_report(REPORT_CRDS[0]);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results[0]["rule"], "run/gate");
    assert_eq!(results[0]["result"], "pass", "{}", results[0]);
    let rule = |id: &str| {
        results
            .iter()
            .find(|r| r["rule"] == id)
            .unwrap_or_else(|| panic!("no {id} in the PolicyReport"))
            .clone()
    };
    let no_cert = rule("handshake/no-client-cert/tls1.3");
    assert_eq!(no_cert["result"], "pass");
    assert_eq!(no_cert["properties"]["path"], "in-cluster");
    assert!(
        results
            .iter()
            .any(|r| r["properties"]["endpoint"] == "service/argocd-repo-server")
    );
    assert_eq!(report["summary"]["fail"], 0, "{}", report["summary"]);
    // The metrics file, in the pod's /reports volume on the node.
    let metrics = common::rig::root().join(format!(
        "target/rig/node/state/kubelet/root/pods/{uid}/volumes/kubernetes.io~empty-dir/reports/argocd-mtls-verify.prom"
    ));
    let metrics =
        std::fs::read_to_string(&metrics).unwrap_or_else(|e| panic!("{}: {e}", metrics.display()));
    assert!(
        metrics.contains("namespace=\"argocd\",verdict=\"pass\"} 1"),
        "{metrics}"
    );
    // The same run pushed them: the Pushgateway holds the namespace's group, passing.
    let pushed = gateway.metrics();
    assert!(
        pushed.contains("job=\"argocd-mtls-verify\",namespace=\"argocd\",verdict=\"pass\"} 1"),
        "{pushed}"
    );

    // The client CA gone, the repo-server restarted: open. The Job fails with the gate's code.
    node.k(&[
        "patch",
        "secret",
        "-n",
        node.ns,
        "argocd-repo-server-mtls",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/client-ca.crt"}]"#,
    ]);
    node.restart_repo_server();
    let (code, _) = node.trigger("amv-open");
    assert_eq!(
        code,
        1,
        "{}",
        node.k(&["logs", "-n", node.ns, "job/amv-open", "--tail=40"])
    );
    node.wait_output(
        &[
            "get",
            "job",
            "-n",
            node.ns,
            "amv-open",
            "-o",
            "jsonpath={.status.failed}",
        ],
        "1",
    );
    let gate = node.policy_report(REPORT_CRDS[0])["results"][0].clone();
    assert_eq!(gate["result"], "fail", "{gate}");
    assert!(
        gate["message"]
            .as_str()
            .unwrap()
            .contains("handshake/no-client-cert"),
        "{gate}"
    );
    node.k(&[
        "delete",
        "applicationset",
        "-n",
        node.ns,
        "argocd-mtls-verify",
    ]);
    // The failing run replaced the group: the Pushgateway now says fail.
    let pushed = gateway.metrics();
    assert!(
        pushed.contains("job=\"argocd-mtls-verify\",namespace=\"argocd\",verdict=\"fail\"} 1"),
        "{pushed}"
    );
    node.k(&[
        "delete",
        "secret",
        "-n",
        node.ns,
        "argocd-mtls-verify-pushgateway",
    ]);
    drop(daemon);
    // A later run on this node starts without the report CRDs again.
    node.no_report_crds();
}
