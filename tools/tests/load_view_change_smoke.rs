//! `sgmp-load view-change --nodes 3 --rounds 3 --json` (in-process nodes on 127.0.0.1)
//! forms a group, crashes and re-adds members, stops on its own within the time bound
//! and prints one JSON object with the documented keys. The figures themselves are not
//! checked: this machine may be anything.

mod common;

use std::process::Command;
use std::time::Duration;

/// Timings a loaded CI machine cannot trip (a false suspicion fails a round, and the
/// tests count rounds); the figures are not checked.
const CALM_SUSPECT_MS: &str = "300";
const CALM_TIMEOUT_MS: &str = "1000";

#[test]
fn view_change_json_has_the_keys() {
    let (obj, text) = common::run_json(
        &[
            "view-change",
            "--nodes",
            "3",
            "--rounds",
            "3",
            "--rtt-seconds",
            "0.2",
            "--suspect-ms",
            CALM_SUSPECT_MS,
            "--protocol-timeout-ms",
            CALM_TIMEOUT_MS,
            "--json",
        ],
        Duration::from_secs(30),
    );
    for k in [
        "udp_rtt_p50_us",
        "commit_p50_us",
        "commit_p99_us",
        "crash_to_view_p50_ms",
        "ratio_commit_to_rtt",
        "join_p50_ms",
    ] {
        let x = obj.get(k).unwrap_or_else(|| panic!("missing {k}: {text}"));
        assert!(x.as_f64().is_some_and(|x| x > 0.0), "{k} = {x}");
    }
    assert_eq!(obj["rounds_done"].as_u64(), Some(3), "{text}");
    assert_eq!(obj["nodes"].as_u64(), Some(3));
    every_removal_is_detected_by_the_mgr_or_reported(&obj, &text);
}

/// Every removal's commit is also counted under who detected the crash: the mgr itself
/// or a member that reported it (the nodes' suspicion events say which).
fn every_removal_is_detected_by_the_mgr_or_reported(
    obj: &serde_json::Map<String, serde_json::Value>,
    text: &str,
) {
    let n = |k: &str| {
        obj[k]
            .as_u64()
            .unwrap_or_else(|| panic!("missing {k}: {text}"))
    };
    assert_eq!(
        n("commit_mgr_detected_samples") + n("commit_reported_samples"),
        n("commit_samples"),
        "{text}"
    );
}

/// `--idle spin:US`: the nodes poll before parking (in-process here, `sgmpd --idle`
/// with `--backend process`), and the pattern is measured a second time with its
/// threads polling the same way.
#[test]
fn view_change_with_polling_nodes_measures_the_polling_pattern() {
    for backend in ["in-process", "process"] {
        let (obj, text) = common::run_json(
            &[
                "view-change",
                "--nodes",
                "3",
                "--rounds",
                "2",
                "--rtt-seconds",
                "0.1",
                "--pattern-rounds",
                "20",
                "--idle",
                "spin:100",
                "--backend",
                backend,
                "--suspect-ms",
                CALM_SUSPECT_MS,
                "--protocol-timeout-ms",
                CALM_TIMEOUT_MS,
                "--json",
            ],
            Duration::from_secs(40),
        );
        assert_eq!(obj["idle"].as_str(), Some("spin:100"), "{text}");
        assert_eq!(obj["rounds_done"].as_u64(), Some(2), "{backend}: {text}");
        every_removal_is_detected_by_the_mgr_or_reported(&obj, &text);
        for k in [
            "udp_pattern_p50_us",
            "udp_pattern_spin_p50_us",
            "ratio_commit_to_udp_pattern_spin",
        ] {
            let x = obj.get(k).unwrap_or_else(|| panic!("missing {k}: {text}"));
            assert!(x.as_f64().is_some_and(|x| x > 0.0), "{k} = {x}");
        }
    }
}

/// The raw pattern is sampled all at once before the view-change rounds by default (5
/// rounds here), between them with `--pattern-between-rounds` (a batch of
/// `ceil(pattern rounds / rounds)` before each: 2 × 3).
#[test]
fn the_pattern_is_sampled_up_front_or_between_the_rounds() {
    for (between, most) in [(false, 5), (true, 6)] {
        let mut args = vec!["view-change", "--nodes", "3", "--rounds", "2"];
        args.extend(["--rtt-seconds", "0.1", "--pattern-rounds", "5", "--json"]);
        args.extend(["--suspect-ms", CALM_SUSPECT_MS]);
        args.extend(["--protocol-timeout-ms", CALM_TIMEOUT_MS]);
        if between {
            args.push("--pattern-between-rounds");
        }
        let (obj, text) = common::run_json(&args, Duration::from_secs(30));
        assert_eq!(obj["rounds_done"].as_u64(), Some(2), "{text}");
        assert_eq!(obj["udp_pattern_between_rounds"].as_bool(), Some(between));
        // Every round counts: a pattern round is lost only to a loopback drop.
        let samples = obj["udp_pattern_samples"].as_u64().expect("samples");
        assert_eq!(samples, most, "between: {between}: {text}");
    }
}

#[test]
fn counts_match_the_closed_forms() {
    let out = Command::new(env!("CARGO_BIN_EXE_sgmp-load"))
        .args(["counts", "--nodes", "3,9", "--max-y", "3", "--json"])
        .output()
        .expect("run sgmp-load");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["all_match"], true, "{v}");
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(6));
}

/// `sgmp-load pattern`: the floor, the event loop with work per step, and the fitted
/// budget, as one JSON object (a short run: 2 passes of 20 rounds).
#[test]
fn the_pattern_mode_reports_the_floor_and_the_step_budget() {
    let out = Command::new(env!("CARGO_BIN_EXE_sgmp-load"))
        .args([
            "pattern",
            "--nodes",
            "4",
            "--rounds",
            "20",
            "--passes",
            "2",
            "--step-ns",
            "0,2000",
            "--json",
        ])
        .output()
        .expect("run sgmp-load");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for k in [
        "recv_p50_us",
        "epoll_step0ns_p50_us",
        "epoll_step2000ns_p50_us",
        "epoll_over_recv",
    ] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    // The fit is a timing: on a busy machine the slope may come out flat or falling, and
    // then the budget is `null` by contract. Assert the contract, not the timing.
    let slope = v["us_per_step_us"].as_f64().expect("a fitted slope");
    for k in ["step_budget_ns_ratio_1_3", "step_budget_ns_ratio_1_5"] {
        let budget = v.get(k).unwrap_or_else(|| panic!("missing {k}: {v}"));
        assert_eq!(budget.as_f64().is_some(), slope > 0.0, "{k}: {v}");
    }
}
