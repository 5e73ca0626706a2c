//! Unit tests of `detector.rs` written for mutation testing (issue 17, `make mutants`):
//! each asserts what a function's name and doc promise, where the other tests would not
//! notice (docs/VERIFICATION.md, "Mutation testing").

use super::*;
use crate::testkit::member_of;

fn view(ids: &[usize]) -> View {
    let mut v = View::with_capacity(8);
    v.members.extend(ids.iter().map(|&i| member_of(i, 1)));
    v
}

fn pid(i: usize) -> ProcessId {
    member_of(i, 1).id
}

/// Catches `RingDetector::clear -> ()`: once cleared (this process is no longer a
/// member) the detector watches nobody, owes nobody heartbeats and has nothing to do.
#[test]
fn a_cleared_detector_watches_nobody_and_has_nothing_to_do() {
    let mut d = RingDetector::new(10, 50);
    d.reset(Time(0), &view(&[0, 1, 2]), pid(1), |_| false);
    assert!(d.watched().is_some() && d.watcher().is_some());
    d.clear();
    assert_eq!((d.watched(), d.watcher()), (None, None));
    assert_eq!(d.next_deadline(), None);
    assert_eq!(d.poll(Time(1_000)), None);
    // The same through reset, for a view without this process.
    d.reset(Time(0), &view(&[0, 1, 2]), pid(1), |_| false);
    d.reset(Time(5), &view(&[0, 2]), pid(1), |_| false);
    assert_eq!((d.watched(), d.watcher()), (None, None));
    assert_eq!(d.poll(Time(1_000)), None);
}

/// Catches the match guards `t == old` and `w == old` replaced with `false` in
/// `RingDetector::reset`: a reset that keeps the same watched member keeps its silence
/// (the suspicion deadline is not pushed back), and one that keeps the same watcher
/// keeps the heartbeat schedule (no extra heartbeat).
#[test]
fn a_reset_that_keeps_the_ring_keeps_its_deadlines() {
    let v = view(&[0, 1, 2, 3]);
    let mut d = RingDetector::new(10, 50);
    d.reset(Time(0), &v, pid(1), |_| false);
    assert_eq!(d.watched(), Some(pid(0)));
    assert_eq!(d.watcher(), Some(pid(2)));
    assert_eq!(d.poll(Time(0)), Some(DetectorAction::Heartbeat(pid(2))));
    assert_eq!(d.poll(Time(0)), None);
    // n3 becomes faulty: n1 still watches n0 and is watched by n2.
    d.reset(Time(5), &v, pid(1), |p| p == pid(3));
    assert_eq!(d.poll(Time(5)), None, "no extra heartbeat");
    assert_eq!(
        d.next_deadline(),
        Some(Time(10)),
        "the next heartbeat as before"
    );
    assert_eq!(d.poll(Time(10)), Some(DetectorAction::Heartbeat(pid(2))));
    // n0 has been silent since 0: suspected at 50, not at 55.
    let mut actions = Vec::new();
    while let Some(a) = d.poll(Time(50)) {
        actions.push(a);
    }
    assert!(
        actions.contains(&DetectorAction::Suspect(pid(0))),
        "{actions:?}"
    );
}

/// All actions due at `now`.
fn due(d: &mut RingDetector, now: u64) -> Vec<DetectorAction> {
    let mut out = Vec::new();
    while let Some(a) = d.poll(Time(now)) {
        out.push(a);
    }
    out
}

/// Catches `at > *last` -> `>=` in `RingDetector::heard_at`: a sign of life no newer
/// than the last one counted changes nothing, so it does not give back the
/// postponements already used.
#[test]
fn a_sign_of_life_no_newer_than_the_last_changes_nothing() {
    let mut d = RingDetector::new(10, 50);
    d.reset(Time(0), &view(&[0, 1, 2]), pid(1), |_| false);
    assert!(due(&mut d, 50).contains(&DetectorAction::Suspect(pid(0))));
    assert!(d.postpone(Time(50), pid(0), 1));
    d.heard_at(Time(50), pid(0));
    assert!(due(&mut d, 100).contains(&DetectorAction::Suspect(pid(0))));
    assert!(
        !d.postpone(Time(100), pid(0), 1),
        "the one postponement is used"
    );
}
