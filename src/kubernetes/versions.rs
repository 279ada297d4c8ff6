//! The pinned Argo CD install manifests (kind/argocd-versions.toml) and the version gate:
//! repo-server mTLS exists from v3.5.0 on, and older versions are refused with that reason.

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The table, compiled in.
pub const TABLE: &str = include_str!("../../kind/argocd-versions.toml");

/// One pinned manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PinnedManifest {
    /// Tag, e.g. `v3.5.1`.
    pub version: String,
    /// Path inside the repository, e.g. `manifests/install.yaml`.
    pub file: String,
    /// SHA-256 of the file bytes, lowercase hex.
    pub sha256: String,
}

#[derive(Deserialize)]
struct Table {
    url_template: String,
    manifest: Vec<PinnedManifest>,
}

/// Why a version or manifest is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// Not `vMAJOR.MINOR.PATCH`.
    #[error("--argocd-version `{0}`: expected a tag like v3.5.1")]
    Malformed(String),
    /// Older than the first release with repo-server mTLS.
    #[error(
        "Argo CD {0} has no repo-server mTLS (it arrived in v3.5.0): there is nothing to verify; use v3.5.0 or later"
    )]
    TooOld(String),
    /// Not in the pinned table.
    #[error(
        "Argo CD {version} `{file}` is not pinned in kind/argocd-versions.toml (pinned: {pinned}); pass --install-manifest PATH|URL to use another manifest"
    )]
    NotPinned {
        /// Requested version.
        version: String,
        /// Requested file.
        file: String,
        /// What is pinned.
        pinned: String,
    },
    /// Downloaded bytes do not match the pinned digest.
    #[error("{what}: SHA-256 {actual} does not match the pinned {expected}; refusing to apply it")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// Pinned digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
}

/// Parses `v3.5.1` (or `3.5.1`) into numbers.
pub fn parse_version(v: &str) -> Result<(u64, u64, u64), VersionError> {
    let core = v
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let parts: Vec<u64> = core
        .split('.')
        .map(|p| p.parse().map_err(|_| VersionError::Malformed(v.to_owned())))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [a, b, c] => Ok((*a, *b, *c)),
        _ => Err(VersionError::Malformed(v.to_owned())),
    }
}

/// Refuses versions without repo-server mTLS.
pub fn require_mtls_support(v: &str) -> Result<(), VersionError> {
    if parse_version(v)? < (3, 5, 0) {
        return Err(VersionError::TooOld(v.to_owned()));
    }
    Ok(())
}

/// The pinned entry and its download URL for `version` and `file`.
pub fn pinned(version: &str, file: &str) -> Result<(PinnedManifest, String), VersionError> {
    require_mtls_support(version)?;
    let table: Table = toml::from_str(TABLE).expect("kind/argocd-versions.toml is valid (tested)");
    let entry = table
        .manifest
        .iter()
        .find(|m| m.version == version && m.file == file)
        .cloned()
        .ok_or_else(|| VersionError::NotPinned {
            version: version.to_owned(),
            file: file.to_owned(),
            pinned: table
                .manifest
                .iter()
                .map(|m| format!("{} {}", m.version, m.file))
                .collect::<Vec<_>>()
                .join("; "),
        })?;
    let url = table
        .url_template
        .replace("{version}", &entry.version)
        .replace("{file}", &entry.file);
    Ok((entry, url))
}

/// The pinned entry whose digest is `sha256` (lowercase hex), if any: a manifest from anywhere
/// (a local file, the Go module cache, a mirror) with pinned bytes is as good as the pinned download.
pub fn pinned_by_digest(sha256: &str) -> Option<PinnedManifest> {
    let table: Table = toml::from_str(TABLE).expect("kind/argocd-versions.toml is valid (tested)");
    table.manifest.into_iter().find(|m| m.sha256 == sha256)
}

/// What this tool knows of the Argo CD version a server answered (VersionService), by the
/// releases it pins: what it knows of a release (its manifests, what DOMAIN.md observed of it)
/// comes from the pinned ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Knowledge {
    /// A release this tool pins.
    Pinned(String),
    /// Not pinned, older than the newest pinned release: the nearest pinned release below it.
    Between {
        /// The nearest pinned release below the answered one.
        nearest: String,
    },
    /// Newer than every pinned release.
    Newer {
        /// The newest pinned release.
        newest: String,
    },
    /// Before repo-server mTLS (v3.5.0).
    TooOld,
    /// Not a release version (a development build without a tag).
    Unknown,
}

impl std::fmt::Display for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Knowledge::Pinned(v) => write!(f, "{v} is a release this tool pins"),
            Knowledge::Between { nearest } => write!(
                f,
                "not a release this tool pins: the run used what it knows of {nearest}, the nearest pinned release below it"
            ),
            Knowledge::Newer { newest } => write!(
                f,
                "newer than every release this tool pins: the run used what it knows of {newest}, the newest (`kind/pin-version.sh VERSION` pins a release)"
            ),
            Knowledge::TooOld => {
                f.write_str("older than v3.5.0, the first release with repo-server mTLS")
            }
            Knowledge::Unknown => {
                f.write_str("not a release version: nothing pinned is known to match it")
            }
        }
    }
}

/// How `answered` (`v3.6.3+4f1c2d9`, as VersionService says it) stands to the pinned releases.
pub fn knowledge_of(answered: &str) -> Knowledge {
    let Ok(version) = parse_version(answered) else {
        return Knowledge::Unknown;
    };
    if version < (3, 5, 0) {
        return Knowledge::TooOld;
    }
    let table: Table = toml::from_str(TABLE).expect("kind/argocd-versions.toml is valid (tested)");
    let mut pinned: Vec<((u64, u64, u64), String)> = table
        .manifest
        .into_iter()
        .filter_map(|m| parse_version(&m.version).ok().map(|v| (v, m.version)))
        .collect();
    pinned.sort();
    pinned.dedup();
    if let Some((_, tag)) = pinned.iter().find(|(v, _)| *v == version) {
        return Knowledge::Pinned(tag.clone());
    }
    match pinned.iter().rev().find(|(v, _)| *v < version) {
        Some((_, tag)) if pinned.last().is_some_and(|(newest, _)| version > *newest) => {
            Knowledge::Newer {
                newest: tag.clone(),
            }
        }
        Some((_, tag)) => Knowledge::Between {
            nearest: tag.clone(),
        },
        None => Knowledge::Unknown,
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Verifies downloaded bytes against the pinned digest.
pub fn verify(bytes: &[u8], entry: &PinnedManifest) -> Result<(), VersionError> {
    let actual = sha256_hex(bytes);
    if actual == entry.sha256 {
        Ok(())
    } else {
        Err(VersionError::DigestMismatch {
            what: format!("{} {}", entry.version, entry.file),
            expected: entry.sha256.clone(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version a server answers, against the pinned table: pinned (build suffix aside),
    /// between pinned releases (the nearest below), newer than all (the newest), too old, no
    /// version at all.
    #[test]
    fn an_answered_version_is_placed_among_the_pinned_releases() {
        let newest = "v3.6.2";
        let cases = [
            ("v3.5.1+abc1234", Knowledge::Pinned("v3.5.1".into())),
            ("v3.6.2", Knowledge::Pinned("v3.6.2".into())),
            (
                "v3.5.3+def",
                Knowledge::Between {
                    nearest: "v3.5.1".into(),
                },
            ),
            (
                "v3.6.3+0a1b2c3",
                Knowledge::Newer {
                    newest: newest.into(),
                },
            ),
            (
                "v4.0.0",
                Knowledge::Newer {
                    newest: newest.into(),
                },
            ),
            ("v3.4.9", Knowledge::TooOld),
            ("?", Knowledge::Unknown),
        ];
        for (answered, want) in cases {
            assert_eq!(knowledge_of(answered), want, "{answered}");
        }
        assert!(
            Knowledge::Newer {
                newest: newest.into()
            }
            .to_string()
            .contains("used what it knows of v3.6.2")
        );
    }

    #[test]
    fn table_pins_the_domain_digests() {
        let (m, url) = pinned("v3.5.1", "manifests/install.yaml").unwrap();
        assert_eq!(
            m.sha256,
            "795a3a972224da6a7f9d32c3e946445f062b60fb46028476715affeb688236e3"
        );
        assert_eq!(
            url,
            "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/install.yaml"
        );
        let (ha, _) = pinned("v3.5.0", "manifests/ha/install.yaml").unwrap();
        assert_eq!(
            ha.sha256,
            "65d9d4ff520ddb40bad2c39b1f44188ceecfe96b5dd29c8ead569b52d6c6b8c6"
        );
    }

    #[test]
    fn versions_before_3_5_are_refused_with_the_reason() {
        let cases = [
            ("v3.4.9", Some("has no repo-server mTLS")),
            ("v2.14.0", Some("has no repo-server mTLS")),
            ("v3.5.0", None),
            ("v3.5.1", None),
            ("3.6.0-rc1", None),
            ("latest", Some("expected a tag")),
        ];
        for (v, err) in cases {
            match (require_mtls_support(v), err) {
                (Ok(()), None) => {}
                (Err(e), Some(needle)) => assert!(e.to_string().contains(needle), "{v}: {e}"),
                (got, want) => panic!("{v}: got {got:?}, want error {want:?}"),
            }
        }
        assert!(matches!(
            pinned("v3.5.2", "manifests/install.yaml"),
            Err(VersionError::NotPinned { .. })
        ));
    }

    /// The newest releases (v3.5.8 and v3.6.2, 2026-11-18, added by kind/pin-version.sh) are
    /// pinned, and any pinned digest is recognised whatever the bytes' origin.
    #[test]
    fn newest_releases_are_pinned_and_found_by_digest() {
        for (v, sha) in [
            (
                "v3.5.7",
                "09bfbb9041b4a8503c6e4fa22cf41c403fa62be17526de353648a4551f5beb77",
            ),
            (
                "v3.6.0",
                "c1d7ec243fa63ce675d71e564775ae42bf11608d35436d5c5951365b6c86fa6a",
            ),
            (
                "v3.6.1",
                "7be23ca7d9ca3d3074dee8332f1ca92a933b990cee7c9cf22cf3843ee8c2913e",
            ),
            (
                "v3.5.8",
                "948e7e3a70b03130f70e4c02ee2357c1cc97fb766674b6bddaed0f537cd5a00f",
            ),
            (
                "v3.6.2",
                "c948064d38294d857712ef78444768749a14293613098932f8533e37d067a2a2",
            ),
        ] {
            assert_eq!(pinned(v, "manifests/install.yaml").unwrap().0.sha256, sha);
            let found = pinned_by_digest(sha).unwrap();
            assert_eq!(
                (found.version.as_str(), found.file.as_str()),
                (v, "manifests/install.yaml")
            );
        }
        assert_eq!(pinned_by_digest(&sha256_hex(b"not a manifest")), None);
    }

    #[test]
    fn digest_mismatch_is_refused() {
        let (m, _) = pinned("v3.5.1", "manifests/install.yaml").unwrap();
        let err = verify(b"not the manifest", &m).unwrap_err().to_string();
        assert!(
            err.contains("does not match the pinned") && err.contains("refusing"),
            "{err}"
        );
    }
}
