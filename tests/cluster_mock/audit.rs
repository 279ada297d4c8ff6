//! The configuration audit of the Secret and the components, and the client log audit.

use argocd_mtls_verify::checks::kubernetes::{Finding, components, secret};
use k8s_openapi::api::core::v1::Secret;

use super::common;
use super::fixtures::*;

/// The config audit on a correct Secret and on Secrets broken one way each. `ca.crt` instead of
/// `client-ca.crt` must be a failure that says mTLS is silently off. No finding echoes Secret data.
#[test]
fn config_audit_on_correct_and_broken_secrets() {
    let fx = common::fixture();
    let other = common::fixture();
    let f = |name: &str| std::fs::read(fx.dir.path().join(name)).unwrap();
    let ca = f("ca.crt");
    let crt = f("client.crt");
    let key = f("client.key");
    let other_key = std::fs::read(other.dir.path().join("client.key")).unwrap();
    let other_crt = std::fs::read(other.dir.path().join("client.crt")).unwrap();
    /// (case name, the Secret, the one required failure expected as (finding id, text))
    type AuditCase<'a> = (&'a str, Secret, Option<(&'a str, &'a str)>);
    let cases: Vec<AuditCase> = vec![
        (
            "correct",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            None,
        ),
        (
            "ca.crt instead of client-ca.crt",
            secret_with(&[
                ("ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/mtls-secret-keys",
                "has key `ca.crt` but no `client-ca.crt`: the repo-server reads only `client-ca.crt`, so mTLS is silently OFF",
            )),
        ),
        (
            "no client key",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("server-ca.crt", &ca),
            ]),
            Some(("config/mtls-client-pair", "has no `client.key`")),
        ),
        (
            "client from another CA",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &other_crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some((
                "config/client-cert-chains",
                "not issued by any CA in client-ca.crt",
            )),
        ),
        (
            "key of another cert",
            secret_with(&[
                ("client-ca.crt", &ca),
                ("client.crt", &crt),
                ("client.key", &other_key),
                ("server-ca.crt", &ca),
            ]),
            Some(("config/client-key-matches", "does not belong to client.crt")),
        ),
        (
            "CA not PEM",
            secret_with(&[
                ("client-ca.crt", b"not a certificate"),
                ("client.crt", &crt),
                ("client.key", &key),
            ]),
            Some(("config/client-ca-parses", "holds no PEM certificate")),
        ),
    ];
    let key_text = String::from_utf8(key.clone()).unwrap();
    let key_body: Vec<&str> = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (name, secret, want_failure) in cases {
        let findings = secret::judge_mtls_secret(Some(&secret));
        let required_failures: Vec<&Finding> = findings
            .iter()
            .filter(|f| !f.ok() && !f.advisory())
            .collect();
        match want_failure {
            None => assert!(
                required_failures.is_empty(),
                "{name}: {required_failures:?}"
            ),
            Some((id, text)) => {
                assert_eq!(
                    required_failures.len(),
                    1,
                    "{name}: exactly one required failure, got {required_failures:?}"
                );
                assert_eq!(required_failures[0].id, id, "{name}");
                assert!(
                    required_failures[0].detail.contains(text),
                    "{name}: {}",
                    required_failures[0].detail
                );
            }
        }
        let all = format!("{findings:?}");
        assert!(
            key_body.iter().all(|l| !all.contains(l)) && !all.contains("PRIVATE KEY"),
            "{name}: a finding leaks Secret data"
        );
    }
    // The advisory side: no server-ca.crt, and a key nobody reads.
    let findings = secret::judge_mtls_secret(Some(&secret_with(&[
        ("client-ca.crt", &ca),
        ("client.crt", &crt),
        ("client.key", &key),
        ("tls.crt", &crt),
    ])));
    let advisories: Vec<&str> = findings
        .iter()
        .filter(|f| f.advisory() && !f.ok())
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(
        advisories,
        ["config/server-ca-present", "config/mtls-secret-extra-keys"]
    );
}

/// Client logs on real-format text: the certificate-loaded line (text and JSON logrus) passes; a
/// log without it, or with refused handshakes, fails with the reason.
#[test]
fn client_log_audit_on_real_format_lines() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let good_text = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
    ]);
    let good_json = lines(&[
        r#"{"level":"info","msg":"Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)","time":"2026-11-23T10:00:02Z"}"#,
    ]);
    let no_cert = lines(&[
        r#"time="2026-11-23T10:00:01Z" level=info msg="Starting configmap/secret informers""#,
    ]);
    let refused = lines(&[
        r#"time="2026-11-23T10:00:02Z" level=info msg="Client certificate reloaded from /app/config/reposerver/mtls/client.crt (mtime changed)""#,
        r#"time="2026-11-23T10:00:05Z" level=error msg="Failed to get app details" error="rpc error: code = Unavailable desc = connection error: desc = \"transport: authentication handshake failed: remote error: tls: unknown certificate authority\"""#,
    ]);
    let cases: [(&[String], bool, bool, &str); 4] = [
        (
            &good_text,
            true,
            true,
            "loaded its client certificate from /app/config/reposerver/mtls/client.crt",
        ),
        (&good_json, true, true, "loaded its client certificate"),
        (&no_cert, false, true, "connects without a certificate"),
        (&refused, true, false, "1 lines report failed handshakes"),
    ];
    for (log, loaded_ok, handshakes_ok, needle) in cases {
        let findings = components::judge_client_log("argocd-server", log);
        assert_eq!(findings[0].ok(), loaded_ok, "{findings:?}");
        assert_eq!(findings[1].ok(), handshakes_ok, "{findings:?}");
        assert!(
            findings.iter().any(|f| f.detail.contains(needle)),
            "`{needle}` in {findings:?}"
        );
        assert_eq!(findings[0].id, "log/client-cert-loaded/argocd-server");
        // A missing line is advisory (the certificate loads on the first dial); refused handshakes fail the run.
        assert_eq!(findings[0].advisory(), !loaded_ok, "{findings:?}");
        assert!(!findings[1].advisory());
    }
}
