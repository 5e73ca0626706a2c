//! Forged messages (the project's rule: bad input never hurts): what no honest process
//! sends, handed to an engine from a member of its view, is ignored without a panic
//! (debug builds check every invariant after each input) and without corrupting the
//! engine's state.

use super::tests_mutants::{cfg, id, ignored_by, settled};
use crate::engine::Status;
use crate::msg::MsgKind;
use crate::testkit::Cluster;
use crate::view::{Member, Update};

/// An R-int whose LastCommit removes its own sender (the mgr, to the next member, or a
/// member between them, to a more junior one): refused before anything is committed.
/// Followed, it made the next member the mgr of a view the sender never installed and
/// then hit `set_outer_phase`'s assertion (a panic in release builds too).
#[test]
fn an_rint_whose_last_commit_removes_its_sender_is_refused() {
    for (from, to) in [(0, 1), (1, 3)] {
        let mut c = settled(5);
        let r = id(&c, from);
        let mut last = Update::with_capacity(4);
        last.removes.push(r);
        let answers = c.engines[to].stats().sent[MsgKind::RIntResp as usize];
        let ignored = ignored_by(&mut c, to, r, MsgKind::RInt, |w| w.state(2, None, &last));
        assert_eq!(ignored, 1, "n{from} to n{to}");
        let p = &c.engines[to];
        assert_eq!(p.status(), Status::Member);
        assert_eq!(p.view().version, 1, "nothing committed");
        assert_eq!(p.leader(), Some(id(&c, 0)), "still following the mgr");
        assert_eq!(
            p.stats().sent[MsgKind::RIntResp as usize],
            answers,
            "no answer"
        );
        p.check_invariants().unwrap();
    }
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
