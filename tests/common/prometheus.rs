//! Prometheus's own programs from Debian's packages (.ci/run installs them): `promtool`
//! (`prometheus`) and the Pushgateway (`prometheus-pushgateway`). A missing one fails the test
//! that needs it, naming the package.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `/usr/bin/NAME`, from Debian's `package`.
pub fn debian_tool(name: &str, package: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: install Debian's {package} (.ci/run does)",
        path.display()
    );
    path
}

/// A real Pushgateway (Debian's), listening on `host` at a free port, stopped by its PID when
/// dropped.
pub struct Pushgateway {
    child: Child,
    /// `http://HOST:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    pub fn start(host: &str) -> Self {
        let dir = super::tempdir();
        let port = super::free_port();
        let child = Command::new(debian_tool(
            "prometheus-pushgateway",
            "prometheus-pushgateway",
        ))
        .arg(format!("--web.listen-address={host}:{port}"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        let gateway = Pushgateway {
            child,
            url: format!("http://{host}:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while gateway.get("/-/ready").is_none() {
            assert!(
                Instant::now() < deadline,
                "the Pushgateway on port {port} was not ready within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        gateway
    }

    /// The body of an HTTP/1.0 GET of `path`, if it answered 200.
    pub fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut tcp = std::net::TcpStream::connect(addr).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(tcp, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        (head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"))
            .then(|| body.to_owned())
    }

    pub fn metrics(&self) -> String {
        self.get("/metrics").expect("the Pushgateway's /metrics")
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
