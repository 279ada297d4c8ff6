//! `--protocol https` against the real nginx (Debian's nginx-light): with `ssl_verify_client on`
//! nginx completes every handshake and refuses at the HTTP layer (400 "No required SSL certificate
//! was sent"), which plain TLS probing cannot tell from service.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::rig::Running;
use common::{pki_init, run_endpoint};

/// nginx serving "protected content" on 127.0.0.1 with `ssl_verify_client <verify>`.
struct Nginx {
    port: u16,
    _process: Running,
    _dir: tempfile::TempDir,
}

fn nginx(pki: &Path, verify: &str) -> Nginx {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("nginx is missing: install Debian's nginx-light (.ci/run does)");
    let dir = common::tempdir();
    let d = dir.path().display();
    let p = pki.display();
    let port = common::free_port();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {p}/server.crt; ssl_certificate_key {p}/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate {p}/ca.crt; ssl_verify_client {verify};
    location / {{ return 200 \"protected content\\n\"; }}
  }}
}}
"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let log = dir.path().join("stderr.log");
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut process = Running { child, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!(
                "nginx exited ({status}):\n{}{}",
                process.log_text(),
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = &mut process;
    Nginx {
        port,
        _process: process,
        _dir: dir,
    }
}

#[test]
fn nginx_refusing_at_the_http_layer() {
    let pki = pki_init("rsa2048");
    // nginx has no repo-server health port or log: those checks are left out on purpose.
    let https = [
        "--server-name",
        "localhost",
        "--protocol",
        "https",
        "--partial",
    ];

    // ssl_verify_client on: every bad client gets 400 before any protected content.
    let on = nginx(pki.path(), "on");
    let addr = format!("127.0.0.1:{}", on.port);
    let run = run_endpoint(&addr, pki.path(), &https);
    run.assert_exit(0);
    for id in [
        "handshake/no-client-cert/tls1.3",
        "handshake/wrong-ca/tls1.2",
        "handshake/expired-client-cert/tls1.3",
    ] {
        assert_eq!(run.verdict(id), "pass", "{id}: {}", run.reason(id));
        assert!(
            run.reason(id).contains("HTTP status 400"),
            "{id}: {}",
            run.reason(id)
        );
    }
    assert!(
        run.reason("handshake/valid-client-cert/tls1.3")
            .contains("HTTP response")
    );

    // The same server as plain TLS: the handshake completes, so the refusal is invisible.
    let plain = run_endpoint(
        &addr,
        pki.path(),
        &[
            "--server-name",
            "localhost",
            "--protocol",
            "tls",
            "--partial",
        ],
    );
    plain.assert_exit(1);
    assert_eq!(plain.verdict("handshake/no-client-cert/tls1.3"), "fail");

    // Probed as gRPC: nginx selects no h2, and the harness says so instead of judging.
    let grpc = run_endpoint(
        &addr,
        pki.path(),
        &["--server-name", "localhost", "--partial"],
    );
    grpc.assert_exit(2);
    assert!(
        grpc.reason("handshake/wrong-ca/tls1.3")
            .contains("not a gRPC server"),
        "{}",
        grpc.reason("handshake/wrong-ca/tls1.3")
    );

    // ssl_verify_client optional: a client without a certificate is served.
    let optional = nginx(pki.path(), "optional");
    let run = run_endpoint(&format!("127.0.0.1:{}", optional.port), pki.path(), &https);
    run.assert_exit(1);
    assert_eq!(run.verdict("handshake/no-client-cert/tls1.3"), "fail");
    assert!(
        run.reason("handshake/no-client-cert/tls1.3")
            .contains("HTTP status 200")
    );
    assert_eq!(
        run.verdict("handshake/wrong-ca/tls1.3"),
        "pass",
        "a presented certificate is still verified"
    );
}
