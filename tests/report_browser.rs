//! report.html in a real browser, and the OSCAL export against the OSCAL models.
//!
//! Headless Chromium (Debian's `chromium`, installed by .ci/run) renders the demo's report.html
//! from a file URL with the network closed: the page it shows has the same verdict for every
//! check as report.md, and its screenshot is a real picture of the matrix (the refusal and
//! acceptance colours are in it), not a blank page. The OSCAL Assessment Results written beside
//! report.json load into compliance-trestle's OSCAL 1.1 models (PyPI `compliance-trestle`,
//! installed by .ci/run), which validate them: that test is in the `rig` tier (`tests/run`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium. Missing is a failure, never a skip: .ci/run installs it.
fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("no Chromium: install Debian's `chromium` (.ci/run does)")
}

/// Chromium, headless, offline, with a fresh profile; killed after 120 s (`timeout`).
fn headless(profile: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// (check id, endpoint, verdict word) of report.md's Checks table.
fn markdown_verdicts(md: &str) -> Vec<(String, Option<String>, String)> {
    let table = md
        .split("## Checks\n")
        .nth(1)
        .and_then(|rest| rest.trim_start().split("\n\n").next())
        .expect("a Checks table");
    // A report of one endpoint names it above the table, not in a column.
    let per_endpoint = table
        .lines()
        .next()
        .is_some_and(|h| h.contains("| Endpoint |"));
    table
        .lines()
        .skip(2)
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let id = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_owned();
            if per_endpoint {
                (
                    id,
                    Some(cells[1].to_owned()),
                    cells[2].trim_matches('*').to_owned(),
                )
            } else {
                (id, None, cells[1].trim_matches('*').to_owned())
            }
        })
        .collect()
}

/// The same from the DOM Chromium built: the rows of its checks table.
fn dom_verdicts(dom: &str) -> Vec<(String, String, String)> {
    let table = dom
        .split("id=\"checks-table\">")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the checks table in the DOM");
    let text = |cell: &str| {
        let mut out = String::new();
        let mut in_tag = false;
        for c in cell.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
    };
    table
        .split("<tr>")
        .filter(|row| row.contains("<td>"))
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td>")
                .skip(1)
                .map(|c| text(c.split("</td>").next().unwrap_or_default()))
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

/// How many of `pixels` are `rgb` (within a small tolerance, for anti-aliasing).
fn pixels_of(pixels: &[u8], channels: usize, rgb: [u8; 3]) -> usize {
    pixels
        .chunks(channels)
        .filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= 3))
        .count()
}

/// Renders `dir`'s report.html in Chromium and holds its checks table to report.md's; returns
/// the profile folder (for a screenshot) and the page's URL.
fn rendered_like_markdown(dir: &Path) -> (tempfile::TempDir, String, String) {
    let html = dir.join("report.html");
    let html_text = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch (URLs in the evidence text are text, not references).
    for needle in ["src=", "href=", "url(", "@import", "<script", "<link"] {
        assert!(!html_text.contains(needle), "report.html contains {needle}");
    }
    let profile = common::tempdir();
    let url = format!("file://{}", html.display());
    let dom = headless(profile.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let want = markdown_verdicts(&md);
    assert!(want.len() >= 40, "{} rows in report.md", want.len());
    let seen = dom_verdicts(&dom);
    assert_eq!(seen.len(), want.len(), "rows on the page and in report.md");
    // Without an Endpoint column in report.md, the page's rows are of one endpoint.
    if want.iter().all(|(_, endpoint, _)| endpoint.is_none()) {
        let endpoints: std::collections::BTreeSet<&String> = seen.iter().map(|r| &r.1).collect();
        assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    }
    let seen: Vec<(String, Option<String>, String)> = seen
        .into_iter()
        .zip(&want)
        .map(|((id, endpoint, verdict), (_, md_endpoint, _))| {
            (id, md_endpoint.as_ref().map(|_| endpoint), verdict)
        })
        .collect();
    assert_eq!(seen, want);
    assert!(dom.contains("Verdict matrix") && dom.contains("Control mapping"));
    (profile, url, dom)
}

/// A server wrong in many respects (`openssl s_server` asking for no certificate): failures,
/// skips and passes, each the same word in the browser as in report.md.
#[test]
fn report_html_shows_report_mds_verdicts_for_a_failing_server() {
    let fx = common::fixture();
    let server = common::s_server(fx.dir.path(), &[]);
    let run = common::run_endpoint(
        &format!("127.0.0.1:{}", server.port),
        fx.dir.path(),
        &["--protocol", "tls", "--partial", "--format", "json,md,html"],
    );
    assert_eq!(run.code, Some(1), "{}", run.said);
    let (_profile, _url, dom) = rendered_like_markdown(&common::report_dir(&run));
    assert!(dom.contains("Result: FAIL"), "the result line");
    for word in ["PASS", "FAIL", "SKIP"] {
        assert!(
            dom.contains(&format!("class=\"v {word}\">{word}<")),
            "a {word} badge"
        );
    }
}

/// The demo (every check passing): the page is the same story as report.md, and its screenshot
/// is a picture of the verdict matrix.
#[test]
fn report_html_renders_in_chromium_with_report_mds_verdicts() {
    let run = common::run_cli(&["demo", "--format", "json,md,html"]);
    assert_eq!(run.code, Some(0), "{}", run.said);
    let (profile, url, dom) = rendered_like_markdown(&common::report_dir(&run));
    assert!(dom.contains("Result: PASS"), "the result line");
    let shot = profile.path().join("report.png");
    headless(
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2400",
            &url,
        ],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert!(info.width >= 1000 && info.height >= 2000, "{info:?}");
    let channels = info.color_type.samples();
    pixels.truncate(info.buffer_size());
    // The matrix is on the page: refusal chips (green) and the valid client's acceptance (blue).
    let refused = pixels_of(&pixels, channels, [0xa5, 0xd6, 0xa7]);
    let accepted = pixels_of(&pixels, channels, [0x90, 0xca, 0xf9]);
    assert!(
        refused > 500 && accepted > 50,
        "matrix colours in the screenshot: {refused} refused, {accepted} accepted pixels"
    );
}

/// At 1400 px the demo's report.html needs no horizontal scroll: the page's width (laid out by
/// Chromium, measured by a line of script added to a copy) is its viewport's. A fingerprint or a
/// long reason wraps instead of widening a table.
#[test]
fn report_html_fits_1400_pixels_without_horizontal_scroll() {
    let run = common::run_cli(&["demo", "--format", "json,md,html"]);
    assert_eq!(run.code, Some(0), "{}", run.said);
    let html = std::fs::read_to_string(common::report_dir(&run).join("report.html")).unwrap();
    let measured = html.replace(
        "</body>",
        "<script>document.body.setAttribute('data-widths', \
         document.documentElement.scrollWidth + ' ' + document.documentElement.clientWidth)</script></body>",
    );
    assert_ne!(measured, html, "report.html has no </body>");
    let profile = common::tempdir();
    let page = profile.path().join("measured.html");
    std::fs::write(&page, measured).unwrap();
    let dom = headless(
        profile.path(),
        &[
            "--window-size=1400,900",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ],
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let widths = dom
        .split("data-widths=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the script measured the page");
    let (scroll, client) = widths.split_once(' ').unwrap();
    let (scroll, client): (u32, u32) = (scroll.parse().unwrap(), client.parse().unwrap());
    assert!(client > 1300 && client <= 1400, "viewport {client} px");
    assert!(
        scroll <= client,
        "report.html is {scroll} px wide in a {client} px window: it scrolls sideways"
    );
}

/// Loads `path` into compliance-trestle's OSCAL Assessment Results model (which validates it) and
/// prints what it read: the observation count, each finding's state, the first evidence href.
#[cfg(feature = "rig")]
fn trestle_read(path: &Path) -> std::process::Output {
    let script = r#"
import json, sys
from trestle.oscal.assessment_results import AssessmentResults
doc = AssessmentResults.oscal_read(__import__("pathlib").Path(sys.argv[1]))
result = doc.results[0]
print(json.dumps({
    "observations": len(result.observations),
    "findings": {f.target.target_id: f.target.status.state.value if hasattr(f.target.status.state, "value") else f.target.status.state for f in result.findings},
    "evidence": result.observations[0].relevant_evidence[0].href,
}))
"#;
    Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap()
}

/// In the `rig` tier: compliance-trestle comes from pip (.ci/run installs it), not from Debian.
#[cfg(feature = "rig")]
#[test]
fn oscal_export_validates_against_the_oscal_models() {
    let run = common::run_cli(&["demo", "--format", "json,oscal"]);
    assert_eq!(run.code, Some(0), "{}", run.said);
    let dir = common::report_dir(&run);
    let path = dir.join("oscal-assessment-results.json");
    let out = trestle_read(&path);
    assert!(
        out.status.success(),
        "compliance-trestle (pip install compliance-trestle; .ci/run does) refused the export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = run.report["checks"].as_array().unwrap().len();
    assert_eq!(seen["observations"], checks);
    assert_eq!(seen["evidence"], "report.json");
    // Statuses follow the report: a gap-free control is satisfied, one with a stated gap is not.
    assert_eq!(seen["findings"]["nist-800-53-sc-8_1"], "satisfied");
    assert_eq!(seen["findings"]["nist-800-53-ia-5_2"], "not-satisfied");
    // The evidence's digest is report.json's.
    let export = std::fs::read_to_string(&path).unwrap();
    let sha = std::fs::read_to_string(dir.join("report.json.sha256")).unwrap();
    let digest = sha.split_whitespace().next().unwrap();
    assert!(
        export.contains(digest),
        "the export cites report.json's SHA-256"
    );
    // Not vacuous: a broken export is refused by the same models.
    let mut broken: serde_json::Value = serde_json::from_str(&export).unwrap();
    broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
        "maybe".into();
    let bad = common::tempdir();
    let bad_path = bad.path().join("broken.json");
    std::fs::write(&bad_path, broken.to_string()).unwrap();
    let out = trestle_read(&bad_path);
    assert!(
        !out.status.success(),
        "a state of `maybe` must not validate"
    );
}
