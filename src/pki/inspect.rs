//! `pki inspect`: certificate facts for files, and consistency checks for a bundle directory.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Component, PkiError, files, public_key_spki, read_certificates, read_private_key};
use crate::x509::{self, CertFacts};

/// One cross-check inside a bundle directory.
#[derive(Debug, Clone, Serialize)]
pub struct BundleCheck {
    /// What was checked, e.g. `server.crt chains to ca.crt`.
    pub statement: String,
    /// Whether it holds.
    pub ok: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What `pki inspect` found in one argument (a file, or a bundle directory).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The argument as given.
    pub path: PathBuf,
    /// Facts of every certificate found.
    pub certificates: Vec<CertFacts>,
    /// Bundle cross-checks (empty for a plain file).
    pub checks: Vec<BundleCheck>,
}

impl Inspection {
    /// Whether every cross-check holds.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Inspects a certificate file or a bundle directory.
pub fn inspect(path: &Path) -> Result<Inspection, PkiError> {
    if path.is_dir() {
        inspect_bundle(path)
    } else {
        let certificates = read_certificates(path)?
            .iter()
            .map(|der| {
                CertFacts::from_der(der)
                    .map(|f| f.with_source(path.display().to_string()))
                    .map_err(|e| PkiError::BadCertificate {
                        path: path.to_owned(),
                        index: 1,
                        detail: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Inspection {
            path: path.to_owned(),
            certificates,
            checks: vec![],
        })
    }
}

fn inspect_bundle(dir: &Path) -> Result<Inspection, PkiError> {
    let required = [
        files::CA_CERT,
        files::SERVER_CERT,
        files::SERVER_KEY,
        files::CLIENT_CERT,
        files::CLIENT_KEY,
    ];
    super::material::require_bundle_files(dir, &required)?;
    let ca = read_certificates(&dir.join(files::CA_CERT))?.remove(0);
    let mut pairs: Vec<(String, String, String)> = vec![
        ("ca".into(), files::CA_CERT.into(), files::CA_KEY.into()),
        (
            "server".into(),
            files::SERVER_CERT.into(),
            files::SERVER_KEY.into(),
        ),
        (
            "client".into(),
            files::CLIENT_CERT.into(),
            files::CLIENT_KEY.into(),
        ),
    ];
    for component in Component::ALL {
        let (crt, key) = component.file_names();
        if dir.join(&crt).is_file() {
            pairs.push((format!("client-{}", component.short_name()), crt, key));
        }
    }

    let mut certificates = Vec::new();
    let mut checks = Vec::new();
    let ca_not_after = CertFacts::from_der(&ca).ok().map(|f| f.not_after);
    for (role, crt_name, key_name) in &pairs {
        let crt_path = dir.join(crt_name);
        let mut ders = read_certificates(&crt_path)?;
        let der = ders.remove(0);
        let facts = CertFacts::from_der(&der)
            .map_err(|e| PkiError::BadCertificate {
                path: crt_path.clone(),
                index: 1,
                detail: e.to_string(),
            })?
            .with_role(role.clone())
            .with_source(crt_path.display().to_string());
        // What follows the leaf in the file is the chain this party presents, not CAs it trusts.
        if !ders.is_empty() {
            let chain: Vec<CertFacts> = ders
                .iter()
                .filter_map(|d| CertFacts::from_der(d).ok())
                .map(|f| {
                    f.with_role(format!("{role}-chain"))
                        .with_source(crt_path.display().to_string())
                })
                .collect();
            checks.push(BundleCheck {
                statement: format!(
                    "{crt_name}: the {} certificate(s) after the leaf are the chain it presents",
                    chain.len()
                ),
                ok: true,
                detail: Some(
                    chain
                        .iter()
                        .map(|f| f.subject.clone())
                        .collect::<Vec<_>>()
                        .join(" <- "),
                ),
            });
            certificates.extend(chain);
        }
        if role != "ca"
            && let Some(ca_until) = ca_not_after
        {
            let inside = facts.not_after <= ca_until;
            checks.push(BundleCheck {
                statement: format!("{crt_name} expires no later than {}", files::CA_CERT),
                ok: inside,
                detail: (!inside).then(|| {
                    format!(
                        "it outlives its CA by {} days: after the CA expires no verifier accepts it",
                        (facts.not_after - ca_until).whole_days()
                    )
                }),
            });
        }
        if role != "ca" {
            let chains = x509::is_signed_by(&der, &ca).unwrap_or(false);
            checks.push(BundleCheck {
                statement: format!("{crt_name} chains to {}", files::CA_CERT),
                ok: chains,
                detail: (!chains).then(|| {
                    format!(
                        "issued by `{}`, not signed by the CA in {}",
                        facts.issuer,
                        files::CA_CERT
                    )
                }),
            });
        }
        let key_path = dir.join(key_name);
        if role == "ca" && !key_path.exists() {
            checks.push(BundleCheck {
                statement: format!("{key_name} present"),
                ok: true,
                detail: Some(
                    "absent: cases that mint certificates from the CA will be skipped".into(),
                ),
            });
        } else {
            checks.push(key_check(&key_path, &der, key_name, crt_name)?);
        }
        let validity_ok = facts.days_left >= 0;
        checks.push(BundleCheck {
            statement: format!("{crt_name} is within its validity period"),
            ok: validity_ok && facts.is_valid_at(time::OffsetDateTime::now_utc()),
            detail: (!validity_ok).then(|| format!("expired {} days ago", -facts.days_left)),
        });
        certificates.push(facts);
    }
    Ok(Inspection {
        path: dir.to_owned(),
        certificates,
        checks,
    })
}

fn key_check(
    key_path: &Path,
    cert_der: &[u8],
    key_name: &str,
    crt_name: &str,
) -> Result<BundleCheck, PkiError> {
    let statement = format!("{key_name} matches {crt_name}");
    let key = match read_private_key(key_path) {
        Ok(k) => k,
        // A missing pair file is a bundle defect; unreadable keys are errors that name the file.
        Err(PkiError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BundleCheck {
                statement,
                ok: false,
                detail: Some(format!("{} does not exist", key_path.display())),
            });
        }
        Err(e) => return Err(e),
    };
    let key_spki = public_key_spki(&key).map_err(|detail| PkiError::UnsupportedKey {
        path: key_path.to_owned(),
        detail,
    })?;
    let matches = x509::spki_der(cert_der)
        .map(|s| s == key_spki)
        .unwrap_or(false);
    Ok(BundleCheck {
        statement,
        ok: matches,
        detail: (!matches).then(|| "the key's public half differs from the certificate's".into()),
    })
}

/// Renders inspections as the human-readable text `pki inspect` prints.
pub fn render_text(items: &[Inspection]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&format!("== {}\n", item.path.display()));
        for c in &item.certificates {
            out.push_str(&render_facts(c));
        }
        if !item.checks.is_empty() {
            out.push_str("  bundle checks:\n");
            for check in &item.checks {
                out.push_str(&format!(
                    "    [{}] {}{}\n",
                    if check.ok { " ok " } else { "FAIL" },
                    check.statement,
                    check
                        .detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out
}

fn render_facts(c: &CertFacts) -> String {
    let title = match (&c.role, &c.source) {
        (Some(role), Some(src)) => format!("{src} [{role}]"),
        (None, Some(src)) => src.clone(),
        (Some(role), None) => format!("[{role}]"),
        (None, None) => "certificate".into(),
    };
    let fmt_time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let bc = match &c.basic_constraints {
        Some(b) if b.ca => match b.path_len {
            Some(n) => format!("CA:TRUE, pathlen:{n}"),
            None => "CA:TRUE".into(),
        },
        Some(_) => "CA:FALSE".into(),
        None => "(absent)".into(),
    };
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(", ")
        }
    };
    let days = if c.days_left >= 0 {
        format!("{} days left", c.days_left)
    } else {
        format!("EXPIRED {} days ago", -c.days_left)
    };
    format!(
        "  {title}\n    subject:     {}\n    issuer:      {}\n    serial:      {}\n    sha256:      {}\n    not before:  {}\n    not after:   {} ({days})\n    key:         {}\n    signature:   {}\n    basic:       {bc}\n    key usage:   {}\n    ext usage:   {}\n    SANs:        {}\n",
        c.subject,
        c.issuer,
        c.serial,
        c.sha256,
        fmt_time(c.not_before),
        fmt_time(c.not_after),
        c.key,
        c.signature_algorithm,
        list(&c.key_usage),
        list(&c.eku),
        list(&c.san),
    )
}
