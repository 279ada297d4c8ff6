//! Helpers shared by the integration tests: running openssl, writing PEM, temp dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs openssl with `args` in `dir`; returns the full output (never panics on non-zero exit).
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed (.ci/run installs it)")
}

/// Runs openssl and returns stdout, panicking with stderr if it fails.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let out = openssl(dir, args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes DER certificates as PEM to `path`.
pub fn write_cert_pem(path: &Path, ders: &[rustls_pki_types::CertificateDer<'_>]) {
    let mut pem = String::new();
    for der in ders {
        pem.push_str(&pem_block("CERTIFICATE", der.as_ref()));
    }
    std::fs::write(path, pem).unwrap();
}

/// A PEM block.
pub fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every required negative handshake case: ids without the version suffix.
pub const NEGATIVES: [&str; 11] = [
    "handshake/no-client-cert",
    "handshake/wrong-ca",
    "handshake/lookalike-ca",
    "handshake/expired-client-cert",
    "handshake/not-yet-valid-client-cert",
    "handshake/server-auth-only-eku",
    "handshake/health-check-impostor",
    "handshake/stolen-cert-without-key",
    "handshake/untrusted-leaf-with-trusted-ca",
    "handshake/untrusted-leaf-with-client-chain",
    "handshake/forged-issuer-serial",
];

/// The negative cases a server admits when it asks for a client certificate but ignores
/// verification errors: all but sending none, and the stolen certificate without its key (whose
/// CertificateVerify signature still fails).
pub const ADMITTED_WHEN_VERIFICATION_IS_IGNORED: [&str; 9] = [
    "handshake/wrong-ca",
    "handshake/lookalike-ca",
    "handshake/expired-client-cert",
    "handshake/not-yet-valid-client-cert",
    "handshake/server-auth-only-eku",
    "handshake/health-check-impostor",
    "handshake/untrusted-leaf-with-trusted-ca",
    "handshake/untrusted-leaf-with-client-chain",
    "handshake/forged-issuer-serial",
];

/// `id/version` for each id and version (`tls1.2`, `tls1.3`).
pub fn per_version<C: FromIterator<String>>(ids: &[&str], versions: &[&str]) -> C {
    ids.iter()
        .flat_map(|id| versions.iter().map(move |v| format!("{id}/{v}")))
        .collect()
}

/// `id/tls1.2` and `id/tls1.3` for each id.
pub fn both<C: FromIterator<String>>(ids: &[&str]) -> C {
    per_version(ids, &["tls1.2", "tls1.3"])
}

/// A fresh temporary directory that lives as long as the returned guard.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Path to the built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_argocd-mtls-verify"))
}

/// A generated bundle written to a temp dir, plus the loaded probe material.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bundle: argocd_mtls_verify::pki::GeneratedBundle,
    pub pki: argocd_mtls_verify::pki::ProbePki,
}

/// A fresh bundle (ECDSA, shared layout) on disk and in memory.
pub fn fixture() -> Fixture {
    use argocd_mtls_verify::pki::{self, InitOptions, PkiPaths, ProbePki};
    argocd_mtls_verify::install_crypto_provider();
    let dir = tempdir();
    let bundle = pki::generate(&InitOptions::default()).unwrap();
    pki::write_bundle(dir.path(), &bundle, false).unwrap();
    let pki = ProbePki::load(&PkiPaths::from_dir(dir.path()).unwrap()).unwrap();
    Fixture { dir, bundle, pki }
}

/// A TCP port on 127.0.0.1 that is free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An `openssl s_server` child process, killed on drop.
pub struct SServer {
    pub port: u16,
    child: std::process::Child,
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `openssl s_server` in `dir` with the bundle's server cert and `extra` flags; waits (bounded)
/// until it accepts TCP connections.
pub fn s_server(dir: &Path, extra: &[&str]) -> SServer {
    use std::process::Stdio;
    for _attempt in 0..5 {
        let port = free_port();
        let accept = format!("127.0.0.1:{port}");
        let mut args = vec![
            "s_server",
            "-accept",
            accept.as_str(),
            "-cert",
            "server.crt",
            "-key",
            "server.key",
            "-quiet",
        ];
        args.extend_from_slice(extra);
        let child = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl must be installed");
        let mut server = SServer { port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            if let Ok(Some(_)) = server.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = server.child.kill();
    }
    panic!("openssl s_server did not start with {extra:?}");
}

/// What a [`loopback`] server does with each connection it accepts. None of them speaks TLS.
#[derive(Clone, Copy)]
pub enum Plain {
    /// Holds it open, never reads, never writes.
    Silent,
    /// Closes it at once.
    CloseAtOnce,
    /// Reads what the client sent first, writes these bytes, closes (an HTTP/1.0 server).
    Answer(&'static [u8]),
}

/// A loopback port that never speaks TLS; it counts the connections it accepted and stops on drop.
pub struct Loopback {
    pub addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Loopback {
    /// The connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A port that accepts TCP connections and never answers (held open until drop).
pub fn blackhole() -> Loopback {
    loopback(Plain::Silent)
}

/// A loopback server that does `what` with every connection, on a thread of its own.
pub fn loopback(what: Plain) -> Loopback {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let (flag, count) = (stop.clone(), accepted.clone());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut c) = conn else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            match what {
                Plain::Silent => held.push(c),
                Plain::CloseAtOnce => drop(c),
                Plain::Answer(bytes) => {
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                    let _ = c.read(&mut [0u8; 4096]);
                    let _ = c.write_all(bytes);
                }
            }
        }
    });
    Loopback {
        addr,
        accepted,
        stop,
    }
}
pub mod golden;
pub mod prometheus;
pub mod rig;

/// One `run --target endpoint` of the CLI, with its report.
pub struct Run {
    pub code: Option<i32>,
    pub report: serde_json::Value,
    pub said: String,
    pub _reports: tempfile::TempDir,
}

impl Run {
    /// The check with this id (panics with the run's output when absent).
    pub fn check(&self, id: &str) -> &serde_json::Value {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| {
                panic!(
                    "no check `{id}` in the report; the run said:\n{}",
                    self.said
                )
            })
    }

    /// `pass`, `fail`, `skip` or `error`.
    pub fn verdict(&self, id: &str) -> String {
        self.check(id)["verdict"].as_str().unwrap().to_owned()
    }

    /// The one-line reason of a check.
    pub fn reason(&self, id: &str) -> String {
        self.check(id)["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Ids of the checks with this verdict (any severity) whose id starts with `prefix`.
    pub fn ids(&self, verdict: &str, prefix: &str) -> std::collections::BTreeSet<String> {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == verdict)
            .filter_map(|c| c["id"].as_str())
            .filter(|id| id.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    /// Ids of the required checks that failed.
    pub fn failing_required(&self) -> std::collections::BTreeSet<String> {
        self.report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail" && c["severity"] == "required")
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; the run said:\n{}",
            self.said
        );
    }
}

/// Runs the CLI with `args` and a fresh `--report-dir`, and reads the report it names.
pub fn run_cli(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    run_with_reports(cmd)
}

/// Runs `cmd` (the CLI, its arguments and environment set) with a fresh `--report-dir`, and
/// reads the report it names.
pub fn run_with_reports(mut cmd: Command) -> Run {
    let reports = tempdir();
    let out = cmd
        .arg("--report-dir")
        .arg(reports.path())
        .output()
        .unwrap();
    run_from_output(out, reports)
}

/// A finished CLI process as a [`Run`]: its output, exit code and the report it names.
pub fn run_from_output(out: Output, reports: tempfile::TempDir) -> Run {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = said
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("no report path in the output:\n{said}"));
    let report =
        serde_json::from_slice(&std::fs::read(Path::new(dir).join("report.json")).unwrap())
            .unwrap();
    Run {
        code: out.status.code(),
        report,
        said,
        _reports: reports,
    }
}

/// Runs `argocd-mtls-verify run --target endpoint --addr ADDR --pki PKI EXTRA...`.
pub fn run_endpoint(addr: &str, pki: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", "--target", "endpoint", "--addr", addr, "--pki"];
    let pki = pki.to_str().unwrap();
    args.push(pki);
    args.extend_from_slice(extra);
    run_cli(&args)
}

/// The folder of a run's report.
pub fn report_dir(run: &Run) -> PathBuf {
    PathBuf::from(
        run.said
            .lines()
            .find_map(|l| l.strip_prefix("report: "))
            .expect("a report path"),
    )
}

/// `pki init ARGS... --out DIR` through the CLI, as a user would.
pub fn pki_init_with(args: &[&str]) -> tempfile::TempDir {
    let dir = tempdir();
    let out = Command::new(bin())
        .args(["pki", "init"])
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pki init {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// `pki init --out DIR [--key-type KEY_TYPE]` through the CLI, as a user would ("default": no flag).
pub fn pki_init(key_type: &str) -> tempfile::TempDir {
    let dir = tempdir();
    let mut cmd = Command::new(bin());
    cmd.args(["pki", "init"]);
    if key_type != "default" {
        cmd.args(["--key-type", key_type]);
    }
    let out = cmd.arg("--out").arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "pki init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The handshake cases a repo-server without mTLS fails: it admits whoever connects.
pub const OPEN_SERVER_FAILS: [&str; 4] = [
    "handshake/no-client-cert/tls1.3",
    "handshake/no-client-cert/tls1.2",
    "handshake/wrong-ca/tls1.3",
    "grpc/no-cert-rpc-denied",
];

/// The results of one check id, by the endpoint (pod or scope) they were judged on.
pub fn verdicts(run: &Run, id: &str) -> Vec<(String, String)> {
    run.report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| {
            (
                c["endpoint"].as_str().unwrap_or_default().to_owned(),
                c["verdict"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The pinned v3.5.1 install.yaml, from the Go module cache the argocd build filled (the product
/// checks its digest against the pinned one).
pub fn pinned_manifest() -> PathBuf {
    let out = Command::new("go")
        .args(["env", "GOMODCACHE"])
        .output()
        .expect("go is required");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        .join("github.com/argoproj/argo-cd/v3@v3.5.1/manifests/install.yaml");
    assert!(
        path.exists(),
        "{} is missing: tests/rig/build.sh fetches Argo CD's module",
        path.display()
    );
    path
}

/// Prints a scenario's wall time when dropped (the rig tests show it with --nocapture).
pub struct ScenarioClock(pub std::time::Instant);

impl Drop for ScenarioClock {
    fn drop(&mut self) {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        eprintln!("[scenario] {name}: {:.0} s", self.0.elapsed().as_secs_f64());
    }
}

/// What a run says of a Secret carrying `ca.crt` where `client-ca.crt` belongs: the key named,
/// and the server open (every case an open server fails, failed).
pub fn assert_misnamed_client_ca(run: &Run) {
    run.assert_exit(1);
    assert_eq!(run.verdict("config/mtls-secret-keys"), "fail");
    let why = run.reason("config/mtls-secret-keys");
    assert!(
        why.contains("`ca.crt`") && why.contains("client-ca.crt"),
        "{why}"
    );
    for id in OPEN_SERVER_FAILS {
        assert_eq!(run.verdict(id), "fail", "{id}");
    }
}
