//! `run --target kind` and `run --target container` for real: kind v0.33.0 built from its Go module, on the kind rig's own
//! dockerd (tests/rig/kind), a node image built with `kind build node-image` from the node rig's
//! Kubernetes v1.34.4, the unmodified pinned v3.5.1 install.yaml, the real `argocd` image. The
//! product creates the cluster, installs, records the baseline, provisions, restarts, verifies,
//! reports and deletes the cluster: nothing in this file does any of that for it.
//!
//! The README's test command starts the engine (`tests/rig/kind/engine.sh up`) and runs this
//! target after the node's. The scenarios share the engine, so they run one at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{OPEN_SERVER_FAILS, Run, pki_init, run_from_output, tempdir, verdicts};

static ENGINE: Mutex<()> = Mutex::new(());

/// The rig's engine and kind, and the right to use them until dropped.
struct Rig {
    _turn: MutexGuard<'static, ()>,
    out: PathBuf,
    _clock: common::ScenarioClock,
}

fn rig() -> Rig {
    let turn = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let rig = Rig {
        _turn: turn,
        out: common::rig::root().join("target/rig/kind"),
        _clock: common::ScenarioClock(std::time::Instant::now()),
    };
    let up = rig
        .tool("docker", &["version", "--format", "{{.Server.Version}}"])
        .status
        .success();
    assert!(
        up && rig.out.join("bin/kind").exists(),
        "the kind rig is not up: run `tests/rig/kind/build.sh && tests/rig/kind/engine.sh up` as root \
         (tests/run does both, after tests/rig/node/build.sh)"
    );
    rig
}

impl Rig {
    /// `program ARGS...` with the rig's engine and kind first on PATH.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.out.join("state/docker.sock").display()),
        )
        .env(
            "PATH",
            format!(
                "{}:{}",
                self.out.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("KIND_EXPERIMENTAL_PROVIDER")
        .env_remove("KUBECONFIG");
        cmd
    }

    fn tool(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap()
    }

    fn clusters(&self) -> Vec<String> {
        let out = self.tool("kind", &["get", "clusters"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn containers(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tool("docker", &["ps", "-a", "--format", "{{.Names}}"])
                .stdout,
        )
        .into_owned()
    }

    /// The arguments every kind run here takes: the rig's node image and config (no kindnetd),
    /// the preloaded images, the pinned manifest from the module cache, the bundle.
    fn kind_args(&self, pki: &Path) -> Vec<String> {
        [
            "run",
            "--target",
            "kind",
            "--preload-images",
            "--node-image",
            "argocd-mtls-verify.test/kind-node:v1.34.4",
            "--kind-config",
            common::rig::root()
                .join("tests/rig/kind/cluster.yaml")
                .to_str()
                .unwrap(),
            "--install-manifest",
            common::pinned_manifest().to_str().unwrap(),
            "--pki",
            pki.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn product(&self, args: &[String]) -> Run {
        let mut cmd = self.command(common::bin());
        cmd.args(args);
        common::run_with_reports(cmd)
    }
}

/// The bundle's mTLS Secret manifest with `ca.crt` where `client-ca.crt` belongs.
fn misname_client_ca(pki: &Path) {
    let mtls = pki.join("argocd-repo-server-mtls.yaml");
    let yaml = std::fs::read_to_string(&mtls).unwrap();
    assert!(yaml.contains("client-ca.crt:"), "{yaml}");
    std::fs::write(&mtls, yaml.replace("client-ca.crt:", "ca.crt:")).unwrap();
}

/// A cluster the test keeps on purpose, deleted when the scenario ends however it ends.
struct Kept<'a> {
    rig: &'a Rig,
    name: &'a str,
}

impl Drop for Kept<'_> {
    fn drop(&mut self) {
        let _ = self
            .rig
            .tool("kind", &["delete", "cluster", "--name", self.name]);
    }
}

/// k1, the product's first promise: create a kind cluster, install the pinned v3.5.1, baseline,
/// provision, restart, verify, report, delete. Exit 0 with the verdicts of the real node's
/// scenario 1, and no cluster or container left.
#[test]
fn k1_kind_create_install_provision_verify_delete_passes() {
    let rig = rig();
    let pki = pki_init("default");
    let mut args = rig.kind_args(pki.path());
    args.push("--grpc-log-info".into());
    let run = rig.product(&args);
    run.assert_exit(0);
    let kube = &run.report["subject"]["kubernetes"];
    let name = kube["run_cluster_name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("amv-"), "{name}");
    // Before: the replica from before the Secret admitted a client with no certificate.
    let before = verdicts(&run, "baseline/no-cert-accepted-before-mtls");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].1, "pass");
    let after = verdicts(&run, "handshake/no-client-cert/tls1.3");
    assert_eq!(after.len(), 1, "one replica: {after:?}");
    let replica = after[0].0.clone();
    assert_ne!(before[0].0, replica, "the baseline is the pod from before");
    for id in OPEN_SERVER_FAILS.iter().chain(&[
        "log/rejections-logged",
        "probe/liveness-full",
        "server/identity",
    ]) {
        assert_eq!(
            verdicts(&run, id),
            vec![(replica.clone(), "pass".into())],
            "{id}"
        );
    }
    for id in [
        "config/mtls-client-pair/argocd-server",
        "config/client-cert-chains/argocd-application-controller",
        "config/client-ca-parses",
        "config/server-ca-present",
    ] {
        assert_eq!(
            verdicts(&run, id),
            vec![("namespace/argocd".to_owned(), "pass".into())],
            "{id}"
        );
    }
    assert!(run.failing_required().is_empty(), "{}", run.said);
    assert_eq!(run.report["summary"]["verdict"], "pass");
    // The host cannot route kind's pod network: the replica was reached through port-forwards,
    // chosen because the pod IP did not present the pod's certificate here.
    assert_eq!(
        verdicts(&run, "transport/port-forward"),
        vec![(replica.clone(), "pass".into())]
    );
    assert_eq!(kube["server_version"], "v1.34.4");
    assert_eq!(
        kube["provenance"]["manifest_matches"],
        "v3.5.1 manifests/install.yaml"
    );
    assert!(
        kube["provenance"]["kind"]
            .as_str()
            .unwrap()
            .starts_with("kind v0.33.0"),
        "{}",
        kube["provenance"]
    );
    let changes = kube["changes"].to_string();
    assert!(
        changes.contains("restarted StatefulSet/argocd-application-controller"),
        "{changes}"
    );
    // Argo CD's manifest says imagePullPolicy Always: the preloaded images are used as loaded,
    // and the report says the manifest was changed that way (without it every pod here would
    // stay in ErrImagePull: there is no registry).
    assert!(
        changes.contains("imagePullPolicy IfNotPresent on 8 containers"),
        "{changes}"
    );
    assert!(
        run.said
            .contains("ghcr.io/dexidp/dex:v2.45.0 is not preloaded"),
        "{}",
        run.said
    );
    // Deleted, and nothing of it is left in the engine.
    assert!(
        run.said.contains(&format!("deleted kind cluster `{name}`")),
        "{}",
        run.said
    );
    assert!(!rig.clusters().contains(&name), "{:?}", rig.clusters());
    assert!(!rig.containers().contains(&name), "{}", rig.containers());
}

/// k2: the Secret manifest carries `ca.crt` instead of `client-ca.crt`: exit 1, the key named, the
/// probes show the no-certificate client in. The cluster is kept (--keep-cluster); the same name
/// again is refused without touching it; `--reuse-cluster` with a correct bundle runs in it,
/// exit 0, and never deletes it.
#[test]
fn k2_misnamed_key_fails_then_an_existing_cluster_is_reused_never_deleted() {
    let rig = rig();
    let name = "amv-k2-reuse";
    let kept = Kept { rig: &rig, name };
    let pki = pki_init("default");
    misname_client_ca(pki.path());
    let mut args = rig.kind_args(pki.path());
    args.extend(["--cluster-name", name, "--keep-cluster"].map(String::from));
    let run = rig.product(&args);
    common::assert_misnamed_client_ca(&run);
    assert!(rig.clusters().contains(&name.to_owned()));

    // The name exists: refused before anything is touched.
    let run = rig.product(&args);
    run.assert_exit(2);
    assert!(
        run.said.contains("already exists: pass --reuse-cluster"),
        "{}",
        run.said
    );
    assert!(rig.clusters().contains(&name.to_owned()));

    // Reused with a correct bundle: mTLS on, exit 0, and the cluster is still there.
    let good = pki_init("default");
    let mut args = rig.kind_args(good.path());
    args.extend(["--cluster-name", name, "--reuse-cluster"].map(String::from));
    let run = rig.product(&args);
    run.assert_exit(0);
    assert!(run.said.contains("not created by this run"), "{}", run.said);
    assert!(rig.clusters().contains(&name.to_owned()));
    drop(kept);
    assert!(!rig.clusters().contains(&name.to_owned()));
}

/// k3: Ctrl-C while kind creates the cluster: the product stops kind, deletes the cluster it
/// claimed (no node container survives), writes the partial report marked interrupted, exit 2.
/// And with the engine unreachable, the preflight fails fast, naming it.
#[test]
fn k3_ctrl_c_during_create_deletes_the_cluster_and_a_dead_engine_is_named() {
    let rig = rig();
    let pki = pki_init("default");
    let reports = tempdir();
    let child = rig
        .command(common::bin())
        .args(rig.kind_args(pki.path()))
        .arg("--report-dir")
        .arg(reports.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: until kind's node container exists (the create is under way), then SIGINT.
    let mut node = String::new();
    for _ in 0..300 {
        node = rig
            .containers()
            .lines()
            .find(|l| l.starts_with("amv-"))
            .unwrap_or_default()
            .to_owned();
        if !node.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!node.is_empty(), "kind never started a node container");
    std::thread::sleep(Duration::from_secs(2));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let run = run_from_output(child.wait_with_output().unwrap(), reports);
    run.assert_exit(2);
    assert_eq!(run.report["run"]["incomplete"], true);
    assert_eq!(run.report["run"]["stopped"], "interrupted (Ctrl-C)");
    let cluster = node.trim_end_matches("-control-plane");
    assert!(
        run.said
            .contains(&format!("deleted kind cluster `{cluster}`")),
        "{}",
        run.said
    );
    assert!(rig.clusters().is_empty(), "{:?}", rig.clusters());
    assert!(!rig.containers().contains(cluster), "{}", rig.containers());

    // The real docker CLI, its engine unreachable: exit 2 at once, naming what failed.
    let out = rig
        .command(common::bin())
        .args(["run", "--target", "kind"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("`docker info` failed") && said.contains("Cannot connect"),
        "{said}"
    );
}

/// The image as the container target runs it: the real `argocd` image the node rig built, on the
/// kind rig's engine (whose default bridge is off: the run attaches it to the `kind` network).
const IMAGE: &str = "quay.io/argoproj/argocd:v3.5.1";

impl Rig {
    fn container_args(&self, pki: &Path) -> Vec<String> {
        [
            "run",
            "--target",
            "container",
            "--image",
            IMAGE,
            "--container-network",
            "kind",
            "--grpc-log-info",
            "--pki",
            pki.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

/// c1: the real image started as a repo-server with the bundle's Secrets where the manifest
/// mounts them: the whole endpoint suite passes, its log checks read from the container's log,
/// exit 0, and the container is gone after the run.
#[test]
fn c1_the_real_image_with_the_bundles_secrets_passes_and_is_removed() {
    let rig = rig();
    let pki = pki_init("default");
    let run = rig.product(&rig.container_args(pki.path()));
    run.assert_exit(0);
    for id in OPEN_SERVER_FAILS.iter().chain(&[
        "log/mtls-enabled",
        "log/rejections-logged",
        "log/health-cert-generated",
        "probe/liveness-full",
        "server/identity",
    ]) {
        assert_eq!(run.verdict(id), "pass", "{id}: {}", run.reason(id));
    }
    assert_eq!(run.report["run"]["target"], "container");
    assert!(
        run.said.contains("removed the repo-server container"),
        "{}",
        run.said
    );
    assert_eq!(rig.containers().trim(), "", "nothing left");
}

/// c2: the bundle's mTLS Secret holds `ca.crt`, not `client-ca.crt`: the manifest's mount projects
/// only `client-ca.crt`, so the repo-server gets no client CA and admits anyone. Exit 1.
#[test]
fn c2_the_client_ca_missing_leaves_the_image_open() {
    let rig = rig();
    let pki = pki_init("default");
    misname_client_ca(pki.path());
    let run = rig.product(&rig.container_args(pki.path()));
    run.assert_exit(1);
    for id in OPEN_SERVER_FAILS {
        assert_eq!(run.verdict(id), "fail", "{id}");
    }
    assert_eq!(run.verdict("log/mtls-enabled"), "fail");
    assert_eq!(rig.containers().trim(), "", "nothing left");
}

/// c3: no engine answers (DOCKER_HOST at a socket nobody serves): exit 2 before anything starts,
/// naming it; an image without a tag is refused too.
#[test]
fn c3_no_engine_or_no_tag_is_exit_2_with_the_reason() {
    let rig = rig();
    let out = rig
        .command(common::bin())
        .args(["run", "--target", "container", "--image", IMAGE])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("no container engine answers"), "{said}");
    let out = rig
        .command(common::bin())
        .args([
            "run",
            "--target",
            "container",
            "--image",
            "quay.io/argoproj/argocd",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("with its tag or digest"), "{said}");
}

/// i1: the release's own image, deploy/image/Dockerfile as shipped, built for real on the rig's
/// engine from the static binary these tests ran (its .dockerignore, its rootfs): it runs
/// `--version` as user 65532, holds nothing but the binary, /etc/passwd, /etc/group and /tmp,
/// and is removed afterwards.
#[test]
fn i1_the_dockerfile_builds_an_image_that_runs_as_65532_and_holds_only_the_binary() {
    let rig = rig();
    let root = common::rig::root();
    let context = tempdir();
    let c = context.path();
    std::fs::create_dir_all(c.join("deploy/image")).unwrap();
    std::fs::create_dir_all(c.join("dist/linux-amd64")).unwrap();
    std::fs::copy(root.join(".dockerignore"), c.join(".dockerignore")).unwrap();
    std::fs::copy(
        root.join("deploy/image/Dockerfile"),
        c.join("deploy/image/Dockerfile"),
    )
    .unwrap();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(root.join("deploy/image/rootfs"))
        .arg(c.join("deploy/image/"))
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::copy(common::bin(), c.join("dist/linux-amd64/argocd-mtls-verify")).unwrap();
    // Something the .dockerignore must keep out of the image's context.
    std::fs::write(c.join("not-for-the-image.key"), "not a key").unwrap();
    let tag = "argocd-mtls-verify.test/tool:i1";
    let built = rig.tool(
        "docker",
        &[
            "build",
            "-f",
            c.join("deploy/image/Dockerfile").to_str().unwrap(),
            "-t",
            tag,
            c.to_str().unwrap(),
        ],
    );
    let said = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(built.status.success(), "docker build: {}", said(&built));
    let version = rig.tool(
        "docker",
        &["run", "--rm", "--network", "none", tag, "--version"],
    );
    let user = rig.tool(
        "docker",
        &["image", "inspect", "-f", "{{.Config.User}}", tag],
    );
    let created = rig.tool("docker", &["create", tag]);
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let listing = rig.tool(
        "sh",
        &[
            "-c",
            &format!("docker export {id} | tar -t | sort; docker rm -f {id} >/dev/null"),
        ],
    );
    let _ = rig.tool("docker", &["rmi", "-f", tag]);
    assert!(version.status.success(), "{}", said(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("argocd-mtls-verify {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532:65532");
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|f| !f.starts_with("dev/") && !f.starts_with("proc/") && !f.starts_with("sys/"))
        .collect();
    // The engine adds .dockerenv and the /etc files it bind-mounts into every container.
    assert_eq!(
        files,
        [
            ".dockerenv",
            "etc/",
            "etc/group",
            "etc/hostname",
            "etc/hosts",
            "etc/mtab",
            "etc/passwd",
            "etc/resolv.conf",
            "tmp/",
            "usr/",
            "usr/local/",
            "usr/local/bin/",
            "usr/local/bin/argocd-mtls-verify",
        ],
        "{}",
        said(&listing)
    );
}
