//! Timing of the endpoint suite against the embedded reference server, on loopback.
//!
//! Run: `cargo bench --bench endpoint` (optionally `-- --iterations N`).
//! Reports the median wall time of the full endpoint suite and of the core matrix
//! (no cert, wrong CA, expired, valid; TLS 1.2 and 1.3), the median per-attempt handshake time,
//! and the same core cases run as separate `openssl s_client` processes. Target: the core matrix
//! under 150 ms on loopback. This is a measurement, not a test: nothing here asserts a time.

use std::time::{Duration, Instant};

use argocd_mtls_verify::checks::ProbeSettings;
use argocd_mtls_verify::pki::{self, Adversary, InitOptions, ProbePki};
use argocd_mtls_verify::probe::{self, AcceptanceProof, ProbeRequest, TlsVersion};
use argocd_mtls_verify::reference::{self, ReferenceConfig};
use argocd_mtls_verify::runner::{self, Selection};
use argocd_mtls_verify::suite::Suite;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    argocd_mtls_verify::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // ECDSA, as the figures in README were always measured; `--rsa` measures the RSA default
        // (two RSA key generations per run: the lookalike CA's and the stolen certificate's key).
        let key_type = if std::env::args().any(|a| a == "--rsa") { pki::KeyType::Rsa2048 } else { pki::KeyType::EcdsaP256 };
        let bundle = pki::generate(&InitOptions { key_type, ..InitOptions::default() }).unwrap();
        let material = ProbePki::from_generated(&bundle, std::path::Path::new("mem")).unwrap();
        let server = reference::start(ReferenceConfig::from_bundle(&bundle).unwrap()).await.unwrap();
        let endpoint = server.endpoint("reference");
        let suites = vec![Suite::load("endpoint").unwrap()];
        let settings = ProbeSettings::default();
        let full = runner::select(&suites, &Selection::default());
        let core = runner::select(&suites, &Selection {
            filters: ["handshake/no-client-cert/", "handshake/wrong-ca/", "handshake/expired-client-cert/", "handshake/valid-client-cert/"]
                .iter().map(|s| s.to_string()).collect(),
            ..Selection::default()
        });
        let time_suite = |checks: Vec<_>| {
            let endpoint = endpoint.clone();
            let material = &material;
            let settings = settings.clone();
            async move {
                let mut walls = Vec::new();
                // One warm-up run, not counted.
                for i in 0..=iterations {
                    let t = Instant::now();
                    let results = runner::execute(std::slice::from_ref(&endpoint), material, &checks, &settings, &argocd_mtls_verify::report::events::Events::silent()).await.results;
                    assert!(results.iter().all(|r| r.verdict == argocd_mtls_verify::report::Verdict::Pass), "bench server must pass");
                    if i > 0 {
                        walls.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                walls
            }
        };
        let full_walls = time_suite(full.clone()).await;
        let core_walls = time_suite(core.clone()).await;

        // Per attempt: the core identities, each version, sequentially.
        let wrong = pki::mint(&material, Adversary::WrongCa).unwrap().identity;
        let expired = pki::mint(&material, Adversary::Expired).unwrap().identity;
        let identities = [None, Some(wrong), Some(expired), Some(material.client.clone())];
        let (mut handshakes, mut totals) = (Vec::new(), Vec::new());
        for _ in 0..iterations {
            for id in &identities {
                for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
                    let o = probe::attempt(&ProbeRequest {
                        addr: server.grpc_addr,
                        server_name: "localhost".into(),
                        sni: probe::Sni::Configured,
                        version,
                        alpn: AcceptanceProof::H2Settings.front_alpn(),
                        identity: id.clone(),
                        server_roots: material.server_ca.clone(),
                        proof: AcceptanceProof::H2Settings,
                        timeout: Duration::from_secs(5),
                        resume: probe::Resume::Never,
                        kx_group: None,
                        sig_family: None,
                        framing: None,
                        craft: None,
                        silence: None,
                    }).await;
                    handshakes.push(o.timings.handshake_us as f64 / 1000.0);
                    totals.push(o.timings.total_us as f64 / 1000.0);
                }
            }
        }

        // The same 8 core attempts as separate openssl s_client processes, one after another.
        let dir = tempfile::tempdir().unwrap();
        pki::write_bundle(dir.path(), &bundle, false).unwrap();
        for (name, identity) in [("wrong", &identities[1]), ("expired", &identities[2])] {
            let identity = identity.as_ref().unwrap();
            let key = pem("PRIVATE KEY", identity.key.secret_der());
            argocd_mtls_verify::fsio::write_atomic(&dir.path().join(format!("{name}.key")), key.as_bytes(), argocd_mtls_verify::fsio::SECRET_MODE).unwrap();
            std::fs::write(dir.path().join(format!("{name}.crt")), pem("CERTIFICATE", &identity.chain[0])).unwrap();
        }
        let mut s_client_walls = Vec::new();
        let connect = server.grpc_addr.to_string();
        for _ in 0..iterations.min(10) {
            let t = Instant::now();
            for (cert, key) in [(None, None), (Some("wrong.crt"), Some("wrong.key")), (Some("expired.crt"), Some("expired.key")), (Some("client.crt"), Some("client.key"))] {
                for version in ["-tls1_2", "-tls1_3"] {
                    let mut cmd = std::process::Command::new("openssl");
                    cmd.current_dir(dir.path()).args(["s_client", "-connect", &connect, version, "-CAfile", "ca.crt", "-servername", "localhost", "-alpn", "h2"]);
                    if let (Some(c), Some(k)) = (cert, key) {
                        cmd.args(["-cert", c, "-key", k]);
                    }
                    let _ = cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
                }
            }
            s_client_walls.push(t.elapsed().as_secs_f64() * 1000.0);
        }

        // Plain TLS, as `--protocol tls` sees it: the full suite against `openssl s_server`
        // requiring client certificates, and the 8 core attempts as `openssl s_client` processes.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let accept = format!("127.0.0.1:{port}");
        let mut s_server = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(["s_server", "-accept", &accept, "-cert", "server.crt", "-key", "server.key", "-CAfile", "ca.crt", "-Verify", "1", "-verify_return_error", "-quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl");
        for _ in 0..200 {
            if std::net::TcpStream::connect(&accept).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let plain = argocd_mtls_verify::endpoint::Endpoint {
            relays: vec![],
            label: "s_server".into(),
            addr: accept.parse().unwrap(),
            server_name: "localhost".into(),
            protocol: argocd_mtls_verify::endpoint::Protocol::Tls,
            health: None,
            logs: None,
        };
        let mut plain_walls = Vec::new();
        for i in 0..=iterations.min(10) {
            let t = Instant::now();
            let results = runner::execute(std::slice::from_ref(&plain), &material, &full, &settings, &argocd_mtls_verify::report::events::Events::silent()).await.results;
            assert!(results.iter().all(|r| !matches!(r.verdict, argocd_mtls_verify::report::Verdict::Fail | argocd_mtls_verify::report::Verdict::Error) || r.severity == argocd_mtls_verify::suite::Severity::Advisory), "s_server must pass");
            if i > 0 {
                plain_walls.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let mut plain_s_client = Vec::new();
        for _ in 0..iterations.min(10) {
            let t = Instant::now();
            for (cert, key) in [(None, None), (Some("wrong.crt"), Some("wrong.key")), (Some("expired.crt"), Some("expired.key")), (Some("client.crt"), Some("client.key"))] {
                for version in ["-tls1_2", "-tls1_3"] {
                    let mut cmd = std::process::Command::new("openssl");
                    cmd.current_dir(dir.path()).args(["s_client", "-connect", &accept, version, "-CAfile", "ca.crt", "-servername", "localhost"]);
                    if let (Some(c), Some(k)) = (cert, key) {
                        cmd.args(["-cert", c, "-key", k]);
                    }
                    let _ = cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status();
                }
            }
            plain_s_client.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let _ = s_server.kill();
        let _ = s_server.wait();

        println!("argocd-mtls-verify endpoint benchmark ({iterations} iterations, loopback, reference server)");
        println!("{:<58} {:>10}", "measure", "median ms");
        println!("{:<58} {:>10.2}", format!("full endpoint suite ({} checks)", full.len()), median(full_walls));
        println!("{:<58} {:>10.2}", format!("core matrix ({} checks; target < 150 ms)", core.len()), median(core_walls));
        println!("{:<58} {:>10.3}", "per attempt: TLS handshake (client side)", median(handshakes));
        println!("{:<58} {:>10.3}", "per attempt: whole attempt incl. acceptance proof", median(totals));
        println!("{:<58} {:>10.2}", "core matrix as 8 sequential `openssl s_client` processes", median(s_client_walls));
        let plain_full = median(plain_walls);
        let plain_loop = median(plain_s_client);
        println!("{:<58} {:>10.2}", format!("plain TLS (s_server): full suite, --protocol tls ({} checks)", full.len()), plain_full);
        println!("{:<58} {:>10.2}", "plain TLS (s_server): 8 core attempts as `s_client` processes", plain_loop);
        println!("{:<58} {:>10.2}", "plain TLS target: 2 x (one 300 ms grace + the s_client loop)", 2.0 * (300.0 + plain_loop));
        println!("{:<58} {:>10.2}", "plain TLS: full suite / s_client loop (ratio)", plain_full / plain_loop);
    });
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}
