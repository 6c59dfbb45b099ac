//! The HTML report in a real browser: headless Chromium (Debian's `chromium`, which `.ci/run`
//! installs) loads each of three planted bugs' reports inside a small checking page whose
//! script measures, from the rendered DOM, that the sequence diagram, its arrows, the
//! violation mark and the violating object's history are there and visible; two screenshots of
//! each report (its top, and the diagram's end at the violation) are written under
//! `target/tmp/browser/` for a person to look at.
//!
//! Without Chromium the test says so and passes, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::report::{THREE_BUGS, on_bug, scratch};

/// The flags that let Chromium start on a machine with no display, no sandbox privileges and
/// no outside network (without the network ones it keeps trying to reach its services).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
];

/// The checking page: loads the report in a frame, writes what it measured into its own body
/// (which `--dump-dom` prints), and scrolls the frame to the violation (what the second
/// screenshot shows).
const CHECKER: &str = r#"<!DOCTYPE html><html><body>
<iframe id="report" src="REPORT" width="1400" height="1000"></iframe>
<script>
document.getElementById('report').addEventListener('load', function () {
  var doc = this.contentDocument;
  var visible = function (el) {
    if (!el) return false;
    var box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  var key = doc.querySelector('table.history[data-key]');
  var result = {
    diagram: visible(doc.getElementById('diagram')),
    lanes: doc.querySelectorAll('#diagram g.lane').length,
    arrows: Array.prototype.filter.call(doc.querySelectorAll('#diagram line.arrow'), visible).length,
    violation: visible(doc.getElementById('violation')),
    violation_text: (doc.getElementById('violation') || {}).textContent || '',
    history_key: key ? key.getAttribute('data-key') : '',
    history_visible: visible(key),
    history_columns: key ? key.querySelectorAll('th').length : 0,
    invariants: doc.querySelectorAll('#invariants tr').length
  };
  doc.getElementById('violation').scrollIntoView({block: 'center'});
  var out = document.createElement('pre');
  out.id = 'result';
  out.textContent = 'CHECK' + 'ED' + JSON.stringify(result) + 'DONE';
  document.body.appendChild(out);
});
</script></body></html>"#;

/// Chromium's path, if it is installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map_or_else(|| "chromium".into(), PathBuf::from);
    let found = Command::new(&path).arg("--version").output();
    found
        .is_ok_and(|output| output.status.success())
        .then_some(path)
}

/// Runs Chromium on `page` with `extra` flags and a fresh profile; returns its standard output.
fn run_chromium(chromium: &Path, profile: &Path, extra: &[&str], page: &Path) -> String {
    let output = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn each_report_renders_in_headless_chromium_with_diagram_violation_and_histories() {
    let Some(chromium) = chromium() else {
        let ci = std::env::var("CI").is_ok_and(|value| value == "true");
        assert!(
            !ci,
            "chromium is missing: .ci/run installs it (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium); CI runs this");
        return;
    };
    let dir = scratch("browser");
    for (scenario, bug, seed) in THREE_BUGS {
        let report = dir.join(format!("{bug}.html"));
        let path = report.to_str().expect("utf-8 path");
        let output = on_bug(&dir, "report", (scenario, bug, seed), &["-o", path]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let checker = dir.join(format!("check-{bug}.html"));
        let page = CHECKER.replace("REPORT", &format!("{bug}.html"));
        std::fs::write(&checker, page).expect("checking page");
        let profile = dir.join(format!("profile-{bug}"));
        let dom = run_chromium(
            &chromium,
            &profile,
            &["--dump-dom", "--virtual-time-budget=10000"],
            &checker,
        );
        let json = dom
            .split("CHECKED")
            .nth(1)
            .and_then(|rest| rest.split("DONE").next())
            .unwrap_or_else(|| panic!("{bug}: the checking page wrote no result:\n{dom}"));
        let result: serde_json::Value = serde_json::from_str(json).expect("result is JSON");
        assert_eq!(result["diagram"], true, "{bug}: {result}");
        assert!(result["lanes"].as_u64() >= Some(3), "{bug}: {result}");
        assert!(result["arrows"].as_u64() >= Some(3), "{bug}: {result}");
        assert_eq!(result["violation"], true, "{bug}: {result}");
        assert!(
            result["violation_text"]
                .as_str()
                .unwrap()
                .contains("✗ step"),
            "{bug}"
        );
        assert!(
            result["history_key"].as_str().unwrap().starts_with("ns-"),
            "{bug}: {result}"
        );
        assert_eq!(result["history_visible"], true, "{bug}: {result}");
        assert!(
            result["history_columns"].as_u64() >= Some(4),
            "{bug}: {result}"
        );
        assert!(result["invariants"].as_u64() > Some(20), "{bug}: {result}");
        for (name, page) in [("top", &report), ("violation", &checker)] {
            let screenshot = dir.join(format!("{bug}-{name}.png"));
            run_chromium(
                &chromium,
                &profile,
                &[
                    &format!("--screenshot={}", screenshot.display()),
                    "--window-size=1420,1040",
                    "--virtual-time-budget=10000",
                ],
                page,
            );
            let png = std::fs::read(&screenshot).expect("screenshot written");
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 10_000,
                "{bug}: a picture"
            );
        }
    }
}
