//! Shared by the `sgmp-load` smoke tests: run the binary with a time budget and parse
//! its one JSON line.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `sgmp-load ARGS`, checks it succeeds within `budget` and printed exactly one
/// line holding one JSON object; returns that object and the raw text.
pub fn run_json(
    args: &[&str],
    budget: Duration,
) -> (serde_json::Map<String, serde_json::Value>, String) {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_sgmp-load"))
        .args(args)
        .output()
        .expect("run sgmp-load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(start.elapsed() < budget, "{:?}", start.elapsed());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(text.trim().lines().count(), 1, "exactly one line: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
    let obj = v.as_object().expect("an object").clone();
    (obj, text)
}
