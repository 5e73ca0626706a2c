//! Stable-Rust equivalents of the cargo-fuzz targets in `tests/fuzz/` (which need
//! nightly): the same target bodies (`sgmp_tests::fuzz`), fed by proptest with random
//! and mutated inputs, plus a replay of every committed corpus file.
//!
//! Regenerate the seed corpora with
//! `cargo test -p sgmp-tests --test fuzz_equivalents -- --ignored write_seed_corpora`.

use std::path::PathBuf;

use proptest::prelude::*;
use sgmp_tests::fuzz::{
    engine_sequence_debug, membership_msg, node_payloads, sample_datagrams, sample_messages,
    sample_payloads, split_payloads, transport_datagram, Harness, Step, FOUNDERS,
};

const TARGETS: [&str; 4] = [
    "transport_datagram",
    "membership_msg",
    "engine_sequence",
    "node_payloads",
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn run_target(target: &str, data: &[u8]) {
    match target {
        "transport_datagram" => transport_datagram(data),
        "membership_msg" => membership_msg(data),
        "node_payloads" => node_payloads(data),
        _ => {
            let _ = engine_sequence_debug(data);
        }
    }
}

/// Byte-level mutations of a seed: xor at positions, then a truncation.
fn mutate(seed: &[u8], flips: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut v = seed.to_vec();
    if !v.is_empty() {
        let n = v.len();
        for &(at, x) in flips {
            v[at % n] ^= x;
        }
        v.truncate(n - cut % (n + 1) / 4);
    }
    v
}

/// A datagram seed with its CRC removed and the "append the CRC" mode set, so that
/// mutations reach past the checksum.
fn crc_mode(seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    v[0] = 1;
    v.truncate(v.len() - 4);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn transport_datagram_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        transport_datagram(&data);
    }

    #[test]
    fn transport_datagram_mutated(
        pick in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        cut in any::<usize>(),
    ) {
        let msgs = sample_messages();
        let seeds = sample_datagrams(&msgs[pick % msgs.len()]);
        let seed = crc_mode(&seeds[pick % seeds.len()]);
        transport_datagram(&mutate(&seed, &flips, cut));
    }

    #[test]
    fn membership_msg_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        membership_msg(&data);
    }

    #[test]
    fn membership_msg_mutated(
        pick in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        cut in any::<usize>(),
    ) {
        let msgs = sample_messages();
        membership_msg(&mutate(&msgs[pick % msgs.len()], &flips, cut));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn node_payloads_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        node_payloads(&data);
    }

    /// A valid payload of each kind, mutated (its length prefix kept).
    #[test]
    fn node_payloads_mutated(
        pick in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..), 0..4),
        cut in any::<usize>(),
    ) {
        let seeds = sample_payloads();
        let (_, seed) = &seeds[pick % seeds.len()];
        let body = mutate(&seed[2..], &flips, cut);
        let mut input = (body.len() as u16).to_le_bytes().to_vec();
        input.extend_from_slice(&body);
        node_payloads(&input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn engine_sequence_arbitrary(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert!(!engine_sequence_debug(&data));
    }
}

/// Honest runs only (no forged, duplicated or reordered message): the global
/// invariants (one view per version, removed processes stay out) are checked on every
/// step, and the harness must stay untainted. A tenth of the runs at least must commit
/// a view change: the invariants are about installs, and a strategy or harness that
/// stopped producing them would pass every case.
#[test]
fn engine_sequence_honest() {
    use proptest::test_runner::{Config, TestRunner};
    const CASES: u32 = 600;
    let changed = std::cell::Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(honest_step(), 0..200), |steps| {
            let mut h = Harness::new();
            for s in steps {
                h.run(s, &mut |_| {});
            }
            h.run(Step::DeliverAll, &mut |_| {});
            prop_assert!(!h.tainted);
            if h.highest_installed() >= 2 {
                changed.set(changed.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    println!(
        "{} of {CASES} honest runs committed a view change",
        changed.get()
    );
    assert!(
        changed.get() >= CASES / 10,
        "only {} of {CASES} honest runs committed a view change",
        changed.get()
    );
}

fn honest_step() -> impl Strategy<Value = Step> {
    let p = 0usize..FOUNDERS + 1;
    prop_oneof![
        8 => any::<usize>().prop_map(Step::Deliver),
        1 => Just(Step::DeliverAll),
        2 => p.clone().prop_map(Step::Timeout),
        1 => (p.clone(), p.clone()).prop_map(|(a, b)| Step::Suspect(a, b)),
        1 => p.clone().prop_map(Step::Crash),
        1 => Just(Step::Join),
        1 => p.clone().prop_map(Step::Leave),
        2 => (p, any::<usize>()).prop_map(|(a, k)| Step::ClientOps(a, k)),
    ]
}

/// Every committed corpus file goes through its target (regression for crashes found).
#[test]
fn committed_corpora_replay() {
    let mut total = 0;
    for t in TARGETS {
        let dir = corpus_dir(t);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
        let mut n = 0;
        for e in entries {
            let path = e.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            run_target(t, &data);
            n += 1;
        }
        assert!(n > 0, "no seeds for {t}");
        total += n;
    }
    println!("replayed {total} corpus files");
}

/// Seeds are valid inputs: messages of every kind decode, datagrams decode.
#[test]
fn seeds_are_valid() {
    let msgs = sample_messages();
    assert!(msgs.len() >= 10, "only {} kinds seen", msgs.len());
    let mut m = sgmp_membership::msg::Msg::with_capacity(8, 64);
    for b in &msgs {
        sgmp_membership::msg::decode(b, 8, 64, &mut m).expect("sample message decodes");
    }
    for d in sample_datagrams(&msgs[0]) {
        assert!(sgmp_transport::wire::decode(&d[1..], 4096).is_ok());
    }
    // Each node payload seed is one payload that one of the decoders takes.
    for (name, input) in sample_payloads() {
        let parts = split_payloads(&input);
        assert_eq!(parts.len(), 1, "{name}");
        let p = parts[0];
        let decoded = sgmp_membership::node::Probe::decode(p).is_some()
            || sgmp_membership::node::recovery::RecoveryMsg::decode(p).is_some()
            || sgmp_membership::service::wire::decode(p).is_ok()
            || sgmp_membership::tags::TagSet::decode(p).is_ok()
            || name.starts_with("durable");
        assert!(decoded, "{name} decodes");
    }
}

/// Writes the seed corpora (not run by default).
#[test]
#[ignore = "writes tests/fuzz/corpus"]
fn write_seed_corpora() {
    let msgs = sample_messages();
    let write = |t: &str, name: String, data: &[u8]| {
        let dir = corpus_dir(t);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join(name), data).expect("write");
    };
    for (name, input) in sample_payloads() {
        write("node_payloads", format!("seed-{name}"), &input);
    }
    for m in &msgs {
        let kind = sgmp_tests::model::kind_name(m).replace(['(', ')'], "_");
        write("membership_msg", format!("seed-{kind}"), m);
    }
    for (k, m) in msgs.iter().enumerate().take(4) {
        for (j, d) in sample_datagrams(m).into_iter().enumerate() {
            write("transport_datagram", format!("seed-{k}-{j}"), &d);
            if j == 0 {
                write(
                    "transport_datagram",
                    format!("seed-{k}-{j}-crc"),
                    &crc_mode(&d),
                );
            }
        }
    }
    // Engine sequences: op bytes as read by `parse_steps`.
    let seqs: [(&str, Vec<u8>); 5] = [
        ("deliver-all", [0u8, 0].repeat(40)),
        ("join", [vec![7, 0], [0u8, 0].repeat(40)].concat()),
        (
            "crash-mgr-reconfigure",
            [
                vec![6, 0, 5, 1, 0, 5, 2, 0],
                [0u8, 0, 4, 1, 4, 2].repeat(30),
            ]
            .concat(),
        ),
        (
            "false-suspicion",
            [vec![5, 0, 2], [0u8, 0].repeat(20), [4u8, 2].repeat(5)].concat(),
        ),
        (
            "leave-and-forge",
            [
                vec![8, 2],
                [0u8, 0].repeat(10),
                vec![9, 1, 20, 0xff, 10, 3, 11, 0, 1, 4, 1, 1, 0, 13],
            ]
            .concat(),
        ),
    ];
    for (name, s) in seqs {
        write("engine_sequence", format!("seed-{name}"), &s);
    }
}
