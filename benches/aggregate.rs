//! `aggregate` on a generated fleet: 100 clusters x 10 days, each report padded to the size of a
//! real one (~600 KB of evidence), with its `.sha256`. Prints the time for 250, 500 and 1,000
//! reports (the target: 1,000 in under 2 s, growing linearly). Figures go in the closing note;
//! nothing here asserts a time.
//!
//!   cargo bench --bench aggregate

use std::time::Instant;

use argocd_mtls_verify::report::fleet;

fn main() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let per_report = 600_000;
    let started = Instant::now();
    for n in 0..1000 {
        let (cluster, day) = (n % 100, n / 100);
        fleet::write_sample(
            &root.path().join(format!("{n:04}")),
            &format!("cluster-{cluster:03}"),
            &format!("2026-11-{:02}T02:00:00Z", day + 1),
            if n % 7 == 0 { "fail" } else { "pass" },
            if n % 7 == 0 {
                &["handshake/no-client-cert/tls1.3"]
            } else {
                &[]
            },
            per_report,
        )
        .expect("writing a sample report");
    }
    println!(
        "generated 1000 reports of ~{} KB in {:.1} s",
        per_report / 1000,
        started.elapsed().as_secs_f64()
    );
    for count in [250usize, 500, 1000] {
        let dirs: Vec<_> = (0..count)
            .map(|n| root.path().join(format!("{n:04}")))
            .collect();
        // Once to warm the page cache, then three timed runs; the best is printed.
        let _ = fleet::aggregate(&dirs).expect("aggregate");
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                let fleet = fleet::aggregate(&dirs).expect("aggregate");
                assert_eq!(fleet.reports_read, count);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "aggregate {count:>4} reports ({:.0} MB): {:.3} s ({:.2} ms per report)",
            count as f64 * per_report as f64 / 1e6,
            best,
            best * 1000.0 / count as f64
        );
    }
}
