//! Writing a report: a fresh folder per run (never reusing one), report.json with its SHA-256,
//! junit.xml, report.md, report.html and (asked for) the OSCAL export, all written under temporary
//! names and renamed into place together.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Report;
use crate::fsio;

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// report.json and report.json.sha256.
    pub json: bool,
    /// junit.xml.
    pub junit: bool,
    /// report.md.
    pub markdown: bool,
    /// report.html.
    pub html: bool,
    /// oscal-assessment-results.json (needs json: it cites report.json and its SHA-256).
    pub oscal: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            json: true,
            junit: true,
            markdown: true,
            html: true,
            oscal: false,
        }
    }
}

impl Formats {
    /// Parses `json,junit,md,html,oscal`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut f = Formats {
            json: false,
            junit: false,
            markdown: false,
            html: false,
            oscal: false,
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "json" => f.json = true,
                "junit" => f.junit = true,
                "md" | "markdown" => f.markdown = true,
                "html" => f.html = true,
                "oscal" => f.oscal = true,
                other => {
                    return Err(format!(
                        "--format: unknown format `{other}` (json, junit, md, html, oscal)"
                    ));
                }
            }
        }
        if !(f.json || f.junit || f.markdown || f.html) {
            return Err("--format: name at least one of json, junit, md, html".into());
        }
        if f.oscal && !f.json {
            return Err(
                "--format: oscal cites report.json and its SHA-256: add json (e.g. --format json,oscal)"
                    .into(),
            );
        }
        Ok(f)
    }
}

/// One of the report's text renderings.
type Render = fn(&Report) -> String;

/// Writes the report into `parent/<run id>/`, a folder that must not exist yet. Returns the folder.
pub fn write(report: &Report, parent: &Path, formats: Formats) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(parent)?;
    let dir = parent.join(&report.run.id);
    // create_dir (not _all) fails if the folder exists: an earlier run is never overwritten.
    std::fs::create_dir(&dir)?;
    let mut staged = fsio::StagedFiles::default();
    if formats.json {
        let json = report.to_json();
        let digest = hex::encode(Sha256::digest(json.as_bytes()));
        if formats.oscal {
            staged.stage(
                &dir.join("oscal-assessment-results.json"),
                super::oscal::render(report, &digest).as_bytes(),
                fsio::PUBLIC_MODE,
            )?;
        }
        staged.stage(&dir.join("report.json"), json.as_bytes(), fsio::PUBLIC_MODE)?;
        staged.stage(
            &dir.join("report.json.sha256"),
            format!("{digest}  report.json\n").as_bytes(),
            fsio::PUBLIC_MODE,
        )?;
    }
    let documents: [(bool, &str, Render); 3] = [
        (formats.junit, "junit.xml", Report::to_junit),
        (formats.markdown, "report.md", Report::to_markdown),
        (formats.html, "report.html", Report::to_html),
    ];
    for (wanted, name, render) in documents {
        if wanted {
            staged.stage(
                &dir.join(name),
                render(report).as_bytes(),
                fsio::PUBLIC_MODE,
            )?;
        }
    }
    staged.commit()?;
    Ok(dir)
}

/// A run id: UTC timestamp plus a random suffix, sortable and unique.
pub fn new_run_id(now: time::OffsetDateTime) -> String {
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "run".into());
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    format!("{stamp}-{suffix}")
}
