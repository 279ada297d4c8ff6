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
                    let results = runner::execute(std::slice::from_ref(&endpoint), material, &checks, &settings, false).await.results;
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
                        identity: id.clone(),
                        server_roots: material.server_ca.clone(),
                        proof: AcceptanceProof::H2Settings,
                        timeout: Duration::from_secs(5),
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
            pki::fsio::write_atomic(&dir.path().join(format!("{name}.key")), key.as_bytes(), pki::fsio::SECRET_MODE).unwrap();
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

        println!("argocd-mtls-verify endpoint benchmark ({iterations} iterations, loopback, reference server)");
        println!("{:<58} {:>10}", "measure", "median ms");
        println!("{:<58} {:>10.2}", format!("full endpoint suite ({} checks)", full.len()), median(full_walls));
        println!("{:<58} {:>10.2}", format!("core matrix ({} checks; target < 150 ms)", core.len()), median(core_walls));
        println!("{:<58} {:>10.3}", "per attempt: TLS handshake (client side)", median(handshakes));
        println!("{:<58} {:>10.3}", "per attempt: whole attempt incl. acceptance proof", median(totals));
        println!("{:<58} {:>10.2}", "core matrix as 8 sequential `openssl s_client` processes", median(s_client_walls));
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
