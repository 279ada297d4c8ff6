//! The real peers of the tests: argocd-repo-server (v3.5.1, v3.5.8, v3.6.2) built from Argo CD's Go
//! module, and `gotls`, a Go crypto/tls server with one mode per way of being wrong. Both are built by
//! `tests/run` (which README names as the test command); a test that needs one and does not find it
//! fails with the command that builds it, and never skips.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture binary: `$env` if set, else `target/rig/<name>`. Fails (never skips) when missing.
pub fn fixture_binary(env: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/rig").join(name));
    assert!(
        path.is_file(),
        "fixture `{}` is missing: build it with `tests/rig/build.sh` (the README's test command `tests/run` does), or point {env} at it",
        path.display()
    );
    path
}

/// A child process stopped by its PID (kill, then wait) when dropped.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test with the process log when it has exited.
    fn assert_alive(&mut self, what: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{what} exited ({status}) during start-up:\n{}",
                self.log_text()
            );
        }
    }
}

/// An Argo CD release the rig builds from Argo CD's Go module (`tests/rig/argocd/v<version>`, one
/// wrapper module each, all built by `tests/rig/build.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgoCd {
    /// The default: the version DOMAIN.md was read from, and the one the node rig runs.
    #[default]
    V3_5_1,
    /// The newest 3.5 release (only its repo-server command is built).
    V3_5_8,
    /// The newest 3.6 release (Go 1.27; only its repo-server command is built).
    V3_6_2,
}

impl ArgoCd {
    /// Every version the rig builds.
    pub const ALL: [ArgoCd; 3] = [ArgoCd::V3_5_1, ArgoCd::V3_5_8, ArgoCd::V3_6_2];

    /// `3.5.1`, `3.5.8`, `3.6.2`.
    pub fn version(self) -> &'static str {
        match self {
            ArgoCd::V3_5_1 => "3.5.1",
            ArgoCd::V3_5_8 => "3.5.8",
            ArgoCd::V3_6_2 => "3.6.2",
        }
    }

    /// Its argocd-repo-server: `$ARGOCD_REPO_SERVER_BIN` or `target/rig/argocd-repo-server` for
    /// v3.5.1, `$ARGOCD_REPO_SERVER_BIN_3_5_8` or `target/rig/v3.5.8/argocd-repo-server` for the
    /// others. Fails (never skips) when missing.
    pub fn repo_server_binary(self) -> PathBuf {
        match self {
            ArgoCd::V3_5_1 => fixture_binary("ARGOCD_REPO_SERVER_BIN", "argocd-repo-server"),
            other => fixture_binary(
                &format!(
                    "ARGOCD_REPO_SERVER_BIN_{}",
                    other.version().replace('.', "_")
                ),
                &format!("v{}/argocd-repo-server", other.version()),
            ),
        }
    }
}

/// How to run the real repo-server.
#[derive(Debug, Clone, Default)]
pub struct RepoServerConfig {
    /// Which build of it to start (default v3.5.1).
    pub argocd: ArgoCd,
    /// `server.crt`/`server.key` to install as `reposerver/tls/tls.crt|key`; `None`: the server
    /// makes its own self-signed certificate.
    pub server_pair: Option<(PathBuf, PathBuf)>,
    /// `--client-ca-path`: `None` leaves it at a path that does not exist (mTLS silently off).
    pub client_ca: Option<PathBuf>,
    /// Extra flags (`--tlsminversion 1.3`, `--logformat text`, `--disable-tls` ...).
    pub args: Vec<String>,
    /// Extra environment (`GRPC_GO_LOG_SEVERITY_LEVEL=info` ...).
    pub env: Vec<(String, String)>,
    /// Wait for the gRPC port only (a plaintext server answers no TLS health probe).
    pub plaintext: bool,
}

/// A running real argocd-repo-server on 127.0.0.1.
pub struct RepoServer {
    pub grpc_port: u16,
    pub health_port: u16,
    pub process: Running,
    _dir: tempfile::TempDir,
}

impl RepoServer {
    /// Starts it and waits (bounded) until `/healthz` answers 200. A port `free_port` handed out
    /// can be taken by another test's outgoing connection before the server binds it; then the
    /// server is started again on other ports (three tries).
    pub fn start(config: &RepoServerConfig) -> RepoServer {
        for _ in 0..2 {
            if let Some(server) = Self::try_start(config) {
                return server;
            }
        }
        Self::try_start(config).expect("a third start on fresh ports")
    }

    /// One start; `None` when the server lost one of its ports to another process.
    fn try_start(config: &RepoServerConfig) -> Option<RepoServer> {
        let bin = config.argocd.repo_server_binary();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("app-config");
        let tls_dir = conf.join("reposerver/tls");
        std::fs::create_dir_all(&tls_dir).unwrap();
        if let Some((crt, key)) = &config.server_pair {
            std::fs::copy(crt, tls_dir.join("tls.crt")).unwrap();
            std::fs::copy(key, tls_dir.join("tls.key")).unwrap();
        }
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let log = dir.path().join("repo-server.log");
        let client_ca = config
            .client_ca
            .clone()
            .unwrap_or_else(|| dir.path().join("no-such-client-ca.crt"));
        let (grpc_port, health_port) = (super::free_port(), super::free_port());
        let mut cmd = Command::new(&bin);
        cmd.args(["--address", "127.0.0.1", "--metrics-address", "127.0.0.1"])
            .args(["--port", &grpc_port.to_string()])
            .args(["--metrics-port", &health_port.to_string()])
            .args(["--redis", "127.0.0.1:1"])
            .args(&config.args);
        if !config.args.iter().any(|a| a == "--client-ca-path") {
            cmd.arg("--client-ca-path").arg(&client_ca);
        }
        cmd.env("ARGOCD_APP_CONF_PATH", &conf)
            .env("ARGOCD_GPG_ENABLED", "false")
            .env("ARGOCD_ASK_PASS_SOCK", tmp.join("asksock"))
            .env("TMPDIR", &tmp)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        // One file for both streams, appended in order.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        let process = Running {
            child: cmd
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
            log,
        };
        let mut server = RepoServer {
            grpc_port,
            health_port,
            process,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = server.process.child.try_wait()
                && server
                    .process
                    .log_text()
                    .contains("bind: address already in use")
            {
                return None;
            }
            server.process.assert_alive("argocd-repo-server");
            let ready = if config.plaintext {
                std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_ok()
            } else {
                http_status(health_port, "/healthz") == Some(200)
            };
            if ready {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "argocd-repo-server not ready within 30 s:\n{}",
                server.process.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `--addr` for the harness.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// `--health-url` for the harness.
    pub fn health_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.health_port)
    }

    /// The harness flags that give it this server's name, health port and log.
    pub fn harness_flags(&self) -> Vec<String> {
        vec![
            "--server-name".into(),
            "localhost".into(),
            "--health-url".into(),
            self.health_url(),
            "--log-file".into(),
            self.process.log.display().to_string(),
        ]
    }
}

/// `GET path` on 127.0.0.1:port with plain std I/O; the status code, if any answer came.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A running `gotls` server (tests/rig/gotls).
pub struct GoTls {
    pub port: u16,
    pub process: Running,
    _dir: tempfile::TempDir,
}

impl GoTls {
    /// Starts `gotls -mode MODE` with the bundle in `pki` (server.crt/key, ca.crt as client CA).
    pub fn start(pki: &Path, mode: &str, extra: &[&str]) -> GoTls {
        let bin = fixture_binary("GOTLS_BIN", "gotls");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("gotls.log");
        let port = super::free_port();
        let mut child = Command::new(&bin)
            .args(["-mode", mode, "-listen", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(pki.join("server.crt"))
            .arg("-key")
            .arg(pki.join("server.key"))
            .arg("-client-ca")
            .arg(pki.join("ca.crt"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        // It prints "listening on ADDR" once the socket is bound.
        let mut stdout = child.stdout.take().unwrap();
        let mut process = Running { child, log };
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") && line.len() < 200 {
            match stdout.read(&mut byte) {
                Ok(1) => line.push(byte[0]),
                _ => {
                    process.assert_alive("gotls");
                    panic!(
                        "gotls -mode {mode} printed no address:\n{}",
                        process.log_text()
                    );
                }
            }
        }
        GoTls {
            port,
            process,
            _dir: dir,
        }
    }

    /// `--addr` for the harness.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
