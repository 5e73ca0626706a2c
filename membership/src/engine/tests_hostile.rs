//! Forged messages (the project's rule: bad input never hurts): what no honest process
//! sends, handed to an engine from a member of its view, is ignored without a panic
//! (debug builds check every invariant after each input) and without corrupting the
//! engine's state.

use super::tests_mutants::{cfg, id, ignored_by, settled};
use crate::engine::Status;
use crate::msg::MsgKind;
use crate::testkit::Cluster;
use crate::view::{Member, Update};

/// An R-int whose LastCommit removes its own sender (the mgr, to the next member): the
/// member catches up on the commit, which makes it the most senior member and so the
/// mgr, and does not follow the sender (it used to hit `set_outer_phase`'s assertion:
/// a panic in release builds too).
#[test]
fn an_rint_whose_last_commit_removes_its_sender_is_not_followed() {
    let mut c = settled(5);
    let n0 = id(&c, 0);
    let mut last = Update::with_capacity(4);
    last.removes.push(n0);
    let answers = c.engines[1].stats().sent[MsgKind::RIntResp as usize];
    let ignored = ignored_by(&mut c, 1, n0, MsgKind::RInt, |w| w.state(2, None, &last));
    assert_eq!(ignored, 1);
    let n1 = &c.engines[1];
    assert_eq!(n1.status(), Status::Member);
    assert_eq!(n1.view().version, 2);
    assert!(!n1.view().contains(n0));
    assert_ne!(n1.leader(), Some(n0));
    assert_eq!(
        n1.stats().sent[MsgKind::RIntResp as usize],
        answers,
        "no answer"
    );
    n1.check_invariants().unwrap();
}

/// A joiner's first view comes from a State-Xfer: one of version 0 ("no view") or one
/// that names a process twice (it would count twice toward every majority) is not
/// taken up; the joiner waits on, and the real one is.
#[test]
fn a_state_transfer_of_version_0_or_naming_a_process_twice_is_refused() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    c.join(3, 0);
    assert_eq!(c.engines[3].status(), Status::Joining);
    let (n0, me) = (*c.engines[0].me(), *c.engines[3].me());
    let xfer = |version: u64, members: Vec<Member>| {
        move |w: &mut crate::msg::Writer<'_>| {
            w.u64(version);
            w.update(&Update::with_capacity(1));
            w.members(&members);
            w.u16(0); // no view tags
            w.bytes(b"");
        }
    };
    let forged = [
        (0, vec![n0, me]),
        (2, vec![n0, me, n0]),
        (2, vec![n0, me, me]),
    ];
    for (version, members) in forged {
        let ignored = ignored_by(&mut c, 3, n0.id, MsgKind::StateXfer, xfer(version, members));
        assert_eq!(ignored, 1, "version {version}");
        assert_eq!(c.engines[3].status(), Status::Joining);
    }
    let ignored = ignored_by(&mut c, 3, n0.id, MsgKind::StateXfer, xfer(2, vec![n0, me]));
    assert_eq!(ignored, 0);
    assert_eq!(c.engines[3].status(), Status::Member);
    assert_eq!(c.engines[3].view().version, 2);
}
