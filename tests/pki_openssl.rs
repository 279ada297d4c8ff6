//! The PKI toolkit checked against openssl: every fact we state about a certificate must be what
//! openssl says about it.
//!
//! Over 500 lines on purpose: one file per peer (openssl) keeps every certificate fact and its
//! openssl counterpart side by side.

mod common;

use std::path::Path;

use argocd_mtls_verify::pki::{self, Adversary, InitOptions, KeyType, Layout, PkiPaths, ProbePki};
use argocd_mtls_verify::x509::CertFacts;
use common::{openssl, openssl_ok, write_cert_pem};
use time::OffsetDateTime;

fn init_bundle(dir: &Path, key_type: KeyType, layout: Layout) {
    let opts = InitOptions {
        key_type,
        layout,
        ..InitOptions::default()
    };
    pki::write_bundle(dir, &pki::generate(&opts).unwrap(), false).unwrap();
}

/// openssl verify agrees that every generated leaf chains to ca.crt and is valid now, for both key types.
#[test]
fn generated_bundle_verifies_with_openssl() {
    for key_type in [KeyType::EcdsaP256, KeyType::Rsa2048] {
        let dir = common::tempdir();
        init_bundle(dir.path(), key_type, Layout::PerComponent);
        let leaves = [
            ("server.crt", "sslserver"),
            ("client.crt", "sslclient"),
            ("client-server.crt", "sslclient"),
            ("client-controller.crt", "sslclient"),
            ("client-appsetcontroller.crt", "sslclient"),
            ("client-notifications.crt", "sslclient"),
        ];
        for (leaf, purpose) in leaves {
            let out = openssl_ok(
                dir.path(),
                &["verify", "-CAfile", "ca.crt", "-purpose", purpose, leaf],
            );
            assert!(out.contains(": OK"), "{key_type:?} {leaf}: {out}");
            // -checkend 0: still valid now; exit 0.
            assert!(
                openssl(
                    dir.path(),
                    &["x509", "-in", leaf, "-noout", "-checkend", "0"]
                )
                .status
                .success(),
                "{leaf} must be valid now"
            );
        }
        let facts = CertFacts::from_der(
            &pki::read_certificates(&dir.path().join("server.crt")).unwrap()[0],
        )
        .unwrap();
        let want_key = match key_type {
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::Rsa2048 => "RSA 2048",
        };
        assert_eq!(facts.key.to_string(), want_key);
        // openssl names the key the same way.
        let text = openssl_ok(
            dir.path(),
            &["x509", "-in", "server.crt", "-noout", "-text"],
        );
        match key_type {
            KeyType::EcdsaP256 => assert!(text.contains("NIST CURVE: P-256")),
            KeyType::Rsa2048 => assert!(text.contains("Public-Key: (2048 bit)")),
        }
    }
}

/// The server certificate carries exactly the SANs and EKU the repo-server needs; the client the CN and EKU.
#[test]
fn server_and_client_profiles_match_the_issue() {
    let dir = common::tempdir();
    let opts = InitOptions {
        namespace: "gitops".into(),
        ..InitOptions::default()
    };
    pki::write_bundle(dir.path(), &pki::generate(&opts).unwrap(), false).unwrap();
    let server =
        CertFacts::from_der(&pki::read_certificates(&dir.path().join("server.crt")).unwrap()[0])
            .unwrap();
    assert_eq!(
        server.san,
        [
            "DNS:argocd-repo-server",
            "DNS:argocd-repo-server.gitops",
            "DNS:argocd-repo-server.gitops.svc",
            "DNS:argocd-repo-server.gitops.svc.cluster.local",
            "DNS:localhost",
            "IP:127.0.0.1"
        ]
    );
    assert_eq!(server.eku, ["serverAuth"]);
    let san_text = openssl_ok(
        dir.path(),
        &[
            "x509",
            "-in",
            "server.crt",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(san_text.contains("DNS:argocd-repo-server.gitops.svc.cluster.local"));
    assert!(san_text.contains("IP Address:127.0.0.1"));

    let client =
        CertFacts::from_der(&pki::read_certificates(&dir.path().join("client.crt")).unwrap()[0])
            .unwrap();
    assert_eq!(client.common_name(), Some("argocd-core-clients"));
    assert_eq!(client.eku, ["clientAuth"]);
    let subject = openssl_ok(
        dir.path(),
        &["x509", "-in", "client.crt", "-noout", "-subject"],
    );
    assert!(subject.contains("CN = argocd-core-clients"), "{subject}");
}

/// How openssl judges one adversarial certificate.
struct AdversaryExpectation {
    adversary: Adversary,
    /// `openssl verify -CAfile ca.crt -purpose sslclient` must fail with this text, or pass when None.
    verify_error: Option<&'static str>,
    /// Whether `openssl x509 -checkend 0` says it is valid now.
    valid_now: bool,
}

/// Each adversarial certificate is wrong in exactly the respect it is named for, and openssl agrees.
#[test]
fn adversarial_certificates_are_wrong_in_exactly_one_respect() {
    let dir = common::tempdir();
    init_bundle(dir.path(), KeyType::EcdsaP256, Layout::Shared);
    let pki = ProbePki::load(&PkiPaths::from_dir(dir.path()).unwrap()).unwrap();
    let client_subject = CertFacts::from_der(&pki.client.chain[0]).unwrap().subject;
    let table = [
        AdversaryExpectation {
            adversary: Adversary::WrongCa,
            verify_error: Some("unable to get local issuer certificate"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::LookalikeCa,
            verify_error: Some("certificate signature failure"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::Expired,
            verify_error: Some("certificate has expired"),
            valid_now: false,
        },
        AdversaryExpectation {
            adversary: Adversary::NotYetValid,
            verify_error: Some("certificate is not yet valid"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::ServerAuthOnly,
            verify_error: Some("unsuitable certificate purpose"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::HealthCheckImpostor,
            verify_error: Some("self-signed certificate"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::CaAsClient,
            verify_error: None,
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::StolenWithoutKey,
            verify_error: None,
            valid_now: true,
        },
        // The certificates sent after the leaf are offered to openssl as untrusted
        // intermediates, as a server would use them: they do not make the leaf verify.
        AdversaryExpectation {
            adversary: Adversary::UntrustedLeafWithCa,
            verify_error: Some("unable to get local issuer certificate"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::UntrustedLeafWithClientChain,
            verify_error: Some("unable to get local issuer certificate"),
            valid_now: true,
        },
        AdversaryExpectation {
            adversary: Adversary::ForgedIssuerSerial,
            verify_error: Some("certificate signature failure"),
            valid_now: true,
        },
    ];
    let now = OffsetDateTime::now_utc();
    let ca = CertFacts::from_der(&pki.ca_cert).unwrap();
    for case in table {
        let minted = pki::mint(&pki, case.adversary).unwrap();
        assert_eq!(
            minted.caveat, None,
            "a `pki init` CA leaves room for every adversary"
        );
        let id = &minted.identity;
        let name = format!("{}.crt", case.adversary.name());
        write_cert_pem(&dir.path().join(&name), &id.chain);
        let facts = CertFacts::from_der(&id.chain[0]).unwrap();

        let mut args = vec!["verify", "-CAfile", "ca.crt", "-purpose", "sslclient"];
        let rest = format!("{}.rest.crt", case.adversary.name());
        if id.chain.len() > 1 {
            write_cert_pem(&dir.path().join(&rest), &id.chain[1..]);
            args.extend(["-untrusted", &rest]);
        }
        args.push(&name);
        let verify = openssl(dir.path(), &args);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        match case.verify_error {
            Some(err) => {
                assert!(!verify.status.success(), "{name} must not verify: {said}");
                assert!(said.contains(err), "{name}: expected `{err}` in: {said}");
            }
            None => assert!(verify.status.success(), "{name} should verify: {said}"),
        }
        let checkend = openssl(
            dir.path(),
            &["x509", "-in", &name, "-noout", "-checkend", "0"],
        );
        assert_eq!(
            checkend.status.success(),
            case.valid_now,
            "{name} -checkend 0"
        );
        assert_eq!(
            facts.days_left >= 0,
            case.valid_now,
            "{name}: our days_left {}",
            facts.days_left
        );

        // What each one keeps from the real client, and what it changes.
        match case.adversary {
            // Only the leaf's own dates are wrong: its window lies inside the CA's validity, so a
            // verifier that checks the chain at some time inside the windows would accept it.
            Adversary::Expired => assert!(
                !facts.is_valid_at(now)
                    && facts.not_after < now - time::Duration::hours(23)
                    && facts.not_before > ca.not_before
            ),
            Adversary::NotYetValid => assert!(
                !facts.is_valid_at(now)
                    && facts.not_before > now + time::Duration::hours(23)
                    && facts.not_after < ca.not_after
            ),
            Adversary::LookalikeCa => {
                // Same issuer name and authority key id as a genuine leaf; only the signature differs.
                assert_eq!(facts.issuer, ca.subject);
                let aki = |der: &[u8]| {
                    let out = openssl_ok(
                        dir.path(),
                        &[
                            "x509",
                            "-in",
                            der_to_path(dir.path(), der).to_str().unwrap(),
                            "-noout",
                            "-ext",
                            "authorityKeyIdentifier",
                        ],
                    );
                    out.lines().nth(1).unwrap_or_default().trim().to_owned()
                };
                assert_eq!(aki(&id.chain[0]), aki(&pki.client.chain[0]));
            }
            Adversary::ServerAuthOnly => assert_eq!(facts.eku, ["serverAuth"]),
            Adversary::WrongCa => assert_ne!(
                facts.issuer,
                CertFacts::from_der(&pki.ca_cert).unwrap().subject
            ),
            Adversary::HealthCheckImpostor => {
                assert_eq!(facts.subject, "O=Argo CD Health Check");
                assert_eq!(facts.common_name(), None);
                assert_eq!(facts.san, ["DNS:argocd-repo-server-healthcheck"]);
                assert_eq!(facts.eku, ["clientAuth"]);
                assert!(facts.self_signed && facts.basic_constraints.as_ref().unwrap().ca);
                assert_eq!(facts.key.to_string(), "ECDSA P-256");
            }
            Adversary::CaAsClient => assert!(facts.basic_constraints.as_ref().unwrap().ca),
            Adversary::UntrustedLeafWithCa => {
                assert_eq!(id.chain[1..], *std::slice::from_ref(&pki.ca_cert));
                assert_ne!(facts.issuer, ca.subject);
            }
            Adversary::UntrustedLeafWithClientChain => {
                assert_eq!(
                    id.chain[1..],
                    [pki.client.chain[0].clone(), pki.ca_cert.clone()]
                );
                assert_ne!(facts.issuer, ca.subject);
                let key_spki = pki::public_key_spki(&id.key).unwrap();
                assert_eq!(
                    key_spki,
                    argocd_mtls_verify::x509::spki_der(&id.chain[0]).unwrap(),
                    "the handshake is signed by the untrusted leaf's own key"
                );
            }
            Adversary::ForgedIssuerSerial => {
                let real = CertFacts::from_der(&pki.client.chain[0]).unwrap();
                assert_eq!(
                    (&facts.subject, &facts.serial, &facts.issuer),
                    (&real.subject, &real.serial, &real.issuer)
                );
                assert_ne!(facts.sha256, real.sha256);
            }
            Adversary::StolenWithoutKey => {
                assert_eq!(id.chain, pki.client.chain);
                let key_cert = argocd_mtls_verify::x509::CertFacts::from_der(
                    &pki::read_certificates(&dir.path().join("client.crt")).unwrap()[0],
                )
                .unwrap();
                assert_eq!(
                    facts.key, key_cert.key,
                    "signed with a key of the stolen certificate's own type and size"
                );
                let key_spki = pki::public_key_spki(&id.key).unwrap();
                let cert_spki = argocd_mtls_verify::x509::spki_der(&id.chain[0]).unwrap();
                assert_ne!(
                    key_spki, cert_spki,
                    "a stolen certificate is used with another key"
                );
            }
        }
        if matches!(
            case.adversary,
            Adversary::WrongCa
                | Adversary::Expired
                | Adversary::NotYetValid
                | Adversary::ServerAuthOnly
                | Adversary::StolenWithoutKey
                | Adversary::UntrustedLeafWithCa
                | Adversary::UntrustedLeafWithClientChain
                | Adversary::ForgedIssuerSerial
        ) {
            assert_eq!(
                facts.subject, client_subject,
                "{name} keeps the real client's subject"
            );
        }
    }
}

/// Without ca.key, kinds that need the trusted CA refuse with a reason; the others still mint.
#[test]
fn minting_without_the_ca_key_says_why() {
    let dir = common::tempdir();
    init_bundle(dir.path(), KeyType::EcdsaP256, Layout::Shared);
    std::fs::remove_file(dir.path().join("ca.key")).unwrap();
    let pki = ProbePki::load(&PkiPaths::from_dir(dir.path()).unwrap()).unwrap();
    assert!(!pki.has_ca_key());
    for adversary in Adversary::ALL {
        let minted = pki::mint(&pki, adversary);
        if adversary.needs_ca_key() {
            let err = minted.unwrap_err().to_string();
            assert!(err.contains("needs the CA private key"), "{err}");
        } else {
            minted.unwrap();
        }
    }
}

/// inspect's serial, fingerprint and validity equal openssl's for certificates openssl generated
/// (RSA and EC keys, serials with a high bit set and with leading zero nibbles).
#[test]
fn inspect_matches_openssl_on_openssl_certificates() {
    let dir = common::tempdir();
    let cases = [
        ("rsa", "rsa:2048", "0x00ABCDEF0123"),
        ("ec", "ec", "0x8F00000000000001"),
        ("small", "ec", "7"),
    ];
    for (name, newkey, serial) in cases {
        let mut args = vec![
            "req",
            "-x509",
            "-nodes",
            "-subj",
            "/CN=openssl-made/O=Test",
            "-days",
            "30",
            "-set_serial",
            serial,
        ];
        let key = format!("{name}.key");
        let crt = format!("{name}.crt");
        if newkey == "ec" {
            args.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        } else {
            args.extend(["-newkey", newkey]);
        }
        args.extend(["-keyout", &key, "-out", &crt]);
        openssl_ok(dir.path(), &args);

        let inspection = pki::inspect::inspect(&dir.path().join(&crt)).unwrap();
        let facts = &inspection.certificates[0];
        let o_serial = openssl_ok(dir.path(), &["x509", "-in", &crt, "-noout", "-serial"]);
        assert_eq!(
            o_serial.trim(),
            format!("serial={}", facts.serial),
            "{name}"
        );
        let o_fp = openssl_ok(
            dir.path(),
            &["x509", "-in", &crt, "-noout", "-fingerprint", "-sha256"],
        );
        assert_eq!(
            o_fp.trim(),
            format!("sha256 Fingerprint={}", facts.sha256),
            "{name}"
        );
        let dates = openssl_ok(
            dir.path(),
            &[
                "x509",
                "-in",
                &crt,
                "-noout",
                "-startdate",
                "-enddate",
                "-dateopt",
                "iso_8601",
            ],
        );
        let fmt =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
        let want_start = facts.not_before.format(&fmt).unwrap();
        let want_end = facts.not_after.format(&fmt).unwrap();
        assert!(
            dates.contains(&format!("notBefore={want_start}")),
            "{name}: {dates} vs {want_start}"
        );
        assert!(
            dates.contains(&format!("notAfter={want_end}")),
            "{name}: {dates} vs {want_end}"
        );
        assert!(
            (29..=30).contains(&facts.days_left),
            "{name}: {}",
            facts.days_left
        );
    }
}

/// Keys in PKCS#1 (RSA) and SEC1 (EC) encodings, as openssl writes them traditionally, load and
/// are matched to their certificates; a CA key in SEC1 form can mint.
#[test]
fn traditional_key_encodings_load_and_sign() {
    let dir = common::tempdir();
    let d = dir.path();
    openssl_ok(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl_ok(
        d,
        &[
            "req",
            "-x509",
            "-key",
            "ca.key",
            "-subj",
            "/CN=openssl CA",
            "-days",
            "30",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign,digitalSignature",
        ],
    );
    openssl_ok(d, &["genrsa", "-traditional", "-out", "client.key", "2048"]);
    openssl_ok(
        d,
        &[
            "req",
            "-new",
            "-key",
            "client.key",
            "-subj",
            "/CN=openssl client",
            "-out",
            "client.csr",
        ],
    );
    openssl_ok(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-days",
            "30",
            "-out",
            "client.crt",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("ca.key"))
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    assert!(
        std::fs::read_to_string(d.join("client.key"))
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );

    let pki = ProbePki::load(&PkiPaths::from_dir(d).unwrap()).unwrap();
    assert!(pki.has_ca_key());
    let expired = pki::mint(&pki, Adversary::Expired).unwrap().identity;
    write_cert_pem(&d.join("expired.crt"), &expired.chain);
    let verify = openssl(d, &["verify", "-CAfile", "ca.crt", "expired.crt"]);
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("certificate has expired")
            || String::from_utf8_lossy(&verify.stderr).contains("certificate has expired")
    );
}

/// The Secret manifests parse as YAML with exactly the documented keys, base64 of the bundle files.
#[test]
fn secret_yaml_round_trips_with_exact_keys() {
    use base64::Engine;
    let dir = common::tempdir();
    init_bundle(dir.path(), KeyType::EcdsaP256, Layout::PerComponent);
    let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    /// (manifest file, Secret name, Secret type, [(data key, bundle file it must hold)])
    type SecretCase<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: [SecretCase; 3] = [
        (
            "argocd-repo-server-mtls.yaml",
            "argocd-repo-server-mtls",
            "Opaque",
            vec![
                ("client-ca.crt", "ca.crt"),
                ("client.crt", "client.crt"),
                ("client.key", "client.key"),
                ("server-ca.crt", "ca.crt"),
            ],
        ),
        (
            "argocd-repo-server-tls.yaml",
            "argocd-repo-server-tls",
            "kubernetes.io/tls",
            vec![
                ("tls.crt", "server.crt"),
                ("tls.key", "server.key"),
                ("ca.crt", "ca.crt"),
            ],
        ),
        (
            "argocd-repo-server-mtls-controller.yaml",
            "argocd-repo-server-mtls-controller",
            "Opaque",
            vec![
                ("client.crt", "client-controller.crt"),
                ("client.key", "client-controller.key"),
                ("server-ca.crt", "ca.crt"),
            ],
        ),
    ];
    for (file, name, kind, keys) in cases {
        let text = String::from_utf8(read(file)).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(doc["apiVersion"], "v1", "{file}");
        assert_eq!(doc["kind"], "Secret", "{file}");
        assert_eq!(doc["metadata"]["name"], name, "{file}");
        assert_eq!(doc["metadata"]["namespace"], "argocd", "{file}");
        assert_eq!(doc["type"], kind, "{file}");
        let data = doc["data"].as_object().unwrap();
        let mut got: Vec<&str> = data.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{file}: exact key names");
        for (key, source) in keys {
            assert_eq!(
                data[key].as_str().unwrap(),
                b64(&read(source)),
                "{file}: {key} is base64 of {source}"
            );
        }
        // The typed Kubernetes object parses it too (what kube will send).
        let typed: k8s_openapi::api::core::v1::Secret = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(typed.data.unwrap().len(), want.len());
    }
}

/// Writes one DER certificate as PEM into `dir` (named by its fingerprint) and returns the path.
fn der_to_path(dir: &std::path::Path, der: &[u8]) -> std::path::PathBuf {
    let path = dir.join(format!(
        "{}.pem",
        &argocd_mtls_verify::x509::fingerprint_sha256(der).replace(':', "")[..16]
    ));
    std::fs::write(&path, common::pem_block("CERTIFICATE", der)).unwrap();
    path
}
