//! `sgmp-load clients --flap-percent` at a small scale (a core of three `sgmpd`
//! processes, 200 clients on two endpoints, 5% of them flapping with 3 s silent and
//! 3 s healthy half-cycles, two cycles): every flapper is removed once per cycle and
//! comes back as a new incarnation, no healthy client is ever removed, and every
//! endpoint agrees on the final system view. Bounded: the run stops on its own in well
//! under a minute.

mod common;

use std::time::Duration;

#[test]
fn flappers_come_back_and_no_healthy_client_is_removed() {
    let (obj, text) = common::run_json(
        &[
            "clients",
            "--clients",
            "200",
            "--core",
            "3",
            "--endpoints",
            "2",
            "--hold",
            "0.5",
            "--flap-percent",
            "5",
            "--flap-period-s",
            "3",
            "--flap-cycles",
            "2",
            "--correlated",
            "2",
            "--seconds",
            "1",
            "--churn",
            "20",
            "--json",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(obj["clients_registered"], 200, "{text}");
    assert_eq!(obj["flappers"], 10, "{text}");
    assert_eq!(obj["flap_cycles"], 2, "{text}");
    assert_eq!(obj["healthy_removed"], 0, "{text}");
    assert_eq!(
        obj["flap_removed"], 20,
        "each flapper once per cycle: {text}"
    );
    assert_eq!(
        obj["flap_rejoined"], 20,
        "a new incarnation per cycle: {text}"
    );
    let per_cycle = obj["views_per_flap_cycle"].as_f64().expect("a number");
    assert!(per_cycle >= 1.0, "{text}");
    assert_eq!(obj["final_version_agreed"], true, "{text}");
    assert!(obj.contains_key("core_rss_per_client_bytes"), "{text}");
}
