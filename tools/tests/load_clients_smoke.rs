//! `sgmp-load clients` at a small scale (a core of three `sgmpd` processes, 300
//! clients on two endpoints, two seconds of churn) stops on its own within the time
//! bound and prints one JSON object with the documented keys; every endpoint agrees on
//! the final system view. The timing figures are not checked: this machine may be
//! anything.

mod common;

use std::time::Duration;

#[test]
fn clients_json_has_the_keys_and_agrees() {
    let (obj, text) = common::run_json(
        &[
            "clients",
            "--clients",
            "300",
            "--core",
            "3",
            "--endpoints",
            "2",
            "--seconds",
            "2",
            "--churn",
            "100",
            "--hold",
            "1",
            "--json",
        ],
        Duration::from_secs(120),
    );
    for k in [
        "clients_registered",
        "system_views",
        "final_version_agreed",
        "churn_per_s",
        "removal_p50_ms",
        "removal_p99_ms",
        "bootstrap_views_seen",
        "bootstrap_same_sequence",
        "correlated_views",
        "correlated_removal_ms",
        "messages_per_change",
        "messages_per_change_formula",
        "churn_in_window_per_s",
        "core_rss_per_client_bytes",
        "core_rss_mib",
    ] {
        assert!(obj.contains_key(k), "missing {k}: {text}");
    }
    assert_eq!(obj["clients_registered"], 300, "{text}");
    assert_eq!(obj["final_version_agreed"], true, "{text}");
    assert_eq!(obj["bootstrap_same_sequence"], true, "{text}");
    assert_eq!(obj["hold_false_removals"], 0, "{text}");
}
