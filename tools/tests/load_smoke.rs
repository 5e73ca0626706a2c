//! `sgmp-load transport --seconds 1 --json` runs, stops on its own and prints one JSON
//! object with every documented key. (The figures themselves are not checked: this
//! machine may be anything.)

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn transport_json_has_every_key() {
    // The budget plus a margin for thread start-up and tear-down (debug build).
    let (obj, text) = common::run_json(
        &["transport", "--seconds", "1", "--json"],
        Duration::from_secs(15),
    );
    for p in ["", "spin_"] {
        for k in [
            "raw_udp_rtt_p50_us",
            "tcp_rtt_p50_us",
            "sgmp_rtt_p50_us",
            "sgmp_rtt_p99_us",
            "raw_udp_msgs_per_s",
            "sgmp_msgs_per_s",
            "raw_udp_msgs_per_s_1k",
            "sgmp_msgs_per_s_1k",
            "ratio_sgmp_to_udp_rtt",
            "ratio_sgmp_to_tcp_rtt",
            "ratio_sgmp_to_udp_throughput",
            "ratio_sgmp_to_udp_throughput_1k",
        ] {
            let key = format!("{p}{k}");
            let x = obj
                .get(&key)
                .unwrap_or_else(|| panic!("missing {key}: {text}"));
            // Present and a number (`null` would mean no sample at all).
            assert!(x.as_f64().is_some_and(|x| x >= 0.0), "{key} = {x}");
        }
    }
    assert!(obj["sgmp_rtt_samples"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(obj["park"], "recv", "{text}");
}

#[test]
fn transport_parks_in_the_poll_on_request() {
    let (obj, text) = common::run_json(
        &[
            "transport",
            "--seconds",
            "0.5",
            "--json",
            "--park",
            "poll",
            "--mode",
            "block",
            "--only",
            "sgmp-rtt",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(obj["park"], "poll", "{text}");
    assert!(
        obj["sgmp_rtt_samples"].as_u64().is_some_and(|n| n > 0),
        "{text}"
    );
}

#[test]
fn bad_flags_are_refused() {
    for args in [
        &["transport", "--seconds", "0"][..],
        &["transport", "--seconds", "x"],
        &["transport", "--size", "4"],
        &["transport", "--size", "70000"],
        &["nosuchmode"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sgmp-load"))
            .args(args)
            .output()
            .expect("run sgmp-load");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
