//! The customer portal in a real browser: runs the Node browser tests in
//! `tests/portal-e2e/` (headless Debian Chromium driven by playwright-core,
//! against the `portal` example as a real server).
//!
//! They need Node 20+, `/usr/bin/chromium` and `npm ci` in
//! `tests/portal-e2e/`, so they run only when `HOOKBUS_TEST_BROWSER=1`;
//! otherwise this test says it was skipped and passes. With the variable set,
//! anything missing fails the test. `.ci/portal-e2e` installs what they need
//! and runs them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const ENV: &str = "HOOKBUS_TEST_BROWSER";
const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn portal_in_a_real_browser() {
    if std::env::var(ENV).as_deref() != Ok("1") {
        // Straight to stderr: the test harness captures println!, and this
        // line must show in a plain `cargo test`.
        let _ = writeln!(
            std::io::stderr(),
            "portal_e2e skipped: set {ENV}=1 (needs node + {CHROMIUM})"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("tests").join("portal-e2e");

    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => panic!("{ENV}=1 but `node --version` failed: {}", out.status),
        Err(e) => panic!("{ENV}=1 but node is missing: {e}"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("{ENV}=1 but node says its version is {version:?}"));
    assert!(major >= 20, "{ENV}=1 but node {version} is older than 20");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{ENV}=1 but {CHROMIUM} is missing: apt-get install -y chromium"
    );
    assert!(
        suite.join("node_modules").join("playwright-core").exists(),
        "{ENV}=1 but playwright-core is not installed: run `npm ci` in {}",
        suite.display()
    );

    // The tests start this binary themselves; build it with the same
    // target directory the tests read.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--example", "portal", "--features", "portal"])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "building the portal example failed");

    let status = Command::new("node")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir(root))
        .args(["--test", "--test-concurrency=1"])
        .arg(&suite)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the browser tests failed (see their output above)"
    );
}

/// Where cargo puts what it builds, as the Node tests must find it.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}
