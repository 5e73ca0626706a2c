//! Engine tests written for mutation testing (issue 17, `make mutants`): each one kills
//! mutants that survived the scenario tests of `tests.rs` by asserting, through the
//! engine's public API and the [`Cluster`] testkit only, what the mutated code's name
//! promises. The mutants each test catches are named in its comment
//! (`docs/VERIFICATION.md`, "Mutation testing", has the table).

use crate::engine::{Event, ExcludeReason, Status};
use crate::msg::{MsgKind, Writer};
use crate::testkit::Cluster;
use crate::view::{Proposal, Update};
use crate::{EngineConfig, ProcessId, Time};

pub(super) fn cfg() -> EngineConfig {
    EngineConfig {
        max_members: 16,
        max_snapshot: 1024,
        ..EngineConfig::default()
    }
}

/// A group of `n` founders with [`cfg`], run until nothing is in flight: the set-up of
/// most tests here.
pub(super) fn settled(n: usize) -> Cluster {
    let mut c = Cluster::new(n, 0, cfg());
    c.run_until_quiet(10_000);
    c
}

pub(super) fn id(c: &Cluster, i: usize) -> ProcessId {
    c.engines[i].me().id
}

/// The tests' engine configuration with the ring detector quiet for a minute: only
/// the timeouts a test is about act.
fn quiet_detector_cfg() -> EngineConfig {
    EngineConfig {
        suspect_timeout_us: 60_000_000,
        ..cfg()
    }
}

/// `n` founders with [`quiet_detector_cfg`], settled.
fn quiet_cluster(n: usize, extra: usize) -> Cluster {
    let mut c = Cluster::new(n, extra, quiet_detector_cfg());
    c.run_until_quiet(10_000);
    c
}

/// Hands engine `to` a message of `kind` from `from` (empty gossip) whose body is
/// written by `body`, then returns how much `stats().ignored` grew.
pub(super) fn ignored_by(
    c: &mut Cluster,
    to: usize,
    from: ProcessId,
    kind: MsgKind,
    body: impl FnOnce(&mut Writer<'_>),
) -> u64 {
    let before = c.engines[to].stats().ignored;
    let mut buf = Vec::new();
    let version = c.engines[to].view().version;
    let mut w = Writer::start(&mut buf, kind, version, &[]);
    body(&mut w);
    let now = c.now;
    c.engines[to]
        .handle_message(now, from, &buf)
        .expect("a well-formed message");
    c.flush(to);
    c.engines[to].stats().ignored - before
}

/// An R-int answer `state(ver, no proposal, empty LastCommit)`.
fn state(ver: u64) -> impl FnOnce(&mut Writer<'_>) {
    move |w| w.state(ver, None, &Update::with_capacity(1))
}

/// Catches `self_pre_commit -> ()` and its `durable_seq += 1` mutants
/// (`initiator.rs`): DoPreCommit at the initiator itself records its own submit as
/// NextUpdate (what it answers in a recovery, D23) and changes the durable state,
/// before any acknowledgement; the commit clears it.
#[test]
fn an_initiator_pre_commits_its_own_submit() {
    // The mgr's M-sub.
    let mut c = settled(5);
    assert!(c.engines[0].next_update().is_none());
    let seq = c.engines[0].durable_seq();
    c.crash(4);
    c.suspect(0, 4);
    let p = c.engines[0].next_update().expect("the mgr's own submit");
    assert_eq!(p.version, 2);
    assert_eq!(p.initiator, id(&c, 0));
    assert_eq!(p.initiator_index, 0);
    assert_eq!(p.update.removes, [id(&c, 4)]);
    assert!(p.update.adds.is_empty());
    assert!(
        c.engines[0].durable_seq() > seq,
        "NextUpdate is durable state"
    );
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 2);
    assert!(
        c.engines[0].next_update().is_none(),
        "cleared by the commit"
    );

    // A reconfigurer's R-sub (D3: it removes the crashed mgr).
    let mut c = settled(5);
    c.crash(0);
    let mgr = id(&c, 0);
    c.suspect(1, 0);
    let seq = c.engines[1].durable_seq();
    let mut submitted = false;
    for _ in 0..1_000 {
        if c.events[1]
            .iter()
            .any(|e| matches!(e, Event::Submitted { version: 2 }))
        {
            submitted = true;
            break;
        }
        assert!(c.deliver_one(), "R-int answered");
    }
    assert!(submitted, "n1 submitted version 2");
    let p = c.engines[1]
        .next_update()
        .expect("the reconfigurer's own submit");
    assert_eq!(p.version, 2);
    assert_eq!(p.initiator, id(&c, 1));
    assert_eq!(p.initiator_index, 1);
    assert_eq!(p.update.removes, [mgr]);
    assert!(c.engines[1].durable_seq() > seq);
}

/// Catches the `stats.ignored += 1` mutants (`+=` -> `*=`, which leaves the counter at
/// zero) in `on_response` (`initiator.rs`), `on_outer_message` (`outer.rs`),
/// `on_message_joining` and `on_state_xfer_as_member` (`join.rs`) and `dispatch`
/// (`mod.rs`): every message that does not fit the receiver's state is counted once,
/// and changes nothing else.
#[test]
fn each_message_that_fits_no_state_is_counted_as_ignored() {
    let stranger = ProcessId::named("stranger", 1);
    let mut c = Cluster::new(5, 1, cfg());
    c.run_until_quiet(10_000);
    let (n0, n1, n2) = (id(&c, 0), id(&c, 1), id(&c, 2));

    // on_response, not an initiator: an ack reaching an outer member.
    assert_eq!(ignored_by(&mut c, 1, n2, MsgKind::MSubAck, |w| w.u64(2)), 1);
    // on_response, an idle mgr: an R-int answer nobody asked for.
    assert_eq!(ignored_by(&mut c, 0, n1, MsgKind::RIntResp, state(1)), 1);
    // on_outer_message at the mgr (not an outer member): an M-sub.
    let empty = Update::with_capacity(1);
    assert_eq!(
        ignored_by(&mut c, 0, n1, MsgKind::MSub, |w| {
            w.u64(2);
            w.update(&empty);
        }),
        1
    );
    // on_outer_message from a member that is not the leader: an M-sub from n1 at n2.
    assert_eq!(
        ignored_by(&mut c, 2, n1, MsgKind::MSub, |w| {
            w.u64(2);
            w.update(&empty);
        }),
        1
    );
    // on_outer_message, the leader's M-sub for a version too far ahead.
    assert_eq!(
        ignored_by(&mut c, 2, n0, MsgKind::MSub, |w| {
            w.u64(5);
            w.update(&empty);
        }),
        1
    );
    // on_outer_message, the leader's M-com for a version too far ahead.
    assert_eq!(
        ignored_by(&mut c, 2, n0, MsgKind::MCom, |w| {
            w.u64(5);
            w.update(&empty);
            w.flag(false);
        }),
        1
    );
    // on_state_xfer_as_member, a State-Xfer for another version.
    let members: Vec<_> = c.engines[2].view().members.clone();
    assert_eq!(
        ignored_by(&mut c, 2, n0, MsgKind::StateXfer, |w| {
            w.u64(7);
            w.update(&empty);
            w.members(&members);
            w.u16(0); // no view tags
            w.bytes(b"");
        }),
        1
    );
    // on_message_joining: a joiner hears something other than its State-Xfer.
    c.join(5, 0);
    assert_eq!(c.engines[5].status(), Status::Joining);
    assert_eq!(ignored_by(&mut c, 5, n0, MsgKind::Heartbeat, |_| {}), 1);
    assert_eq!(c.engines[5].status(), Status::Joining);
    // Nothing above changed a view.
    for i in 0..5 {
        assert_eq!(c.engines[i].view().version, 1, "n{i}");
    }

    // on_response while the mgr collects acks (Submit): an ack from a stranger.
    let mut c = settled(5);
    c.set_cut_one_way(&[1, 2, 3, 4], &[0], true);
    c.crash(4);
    c.suspect(0, 4);
    assert_eq!(
        ignored_by(&mut c, 0, stranger, MsgKind::MSubAck, |w| w.u64(2)),
        1
    );

    // on_response while a reconfigurer interrogates: an answer from a stranger.
    let mut c = settled(5);
    c.crash(0);
    c.set_cut_one_way(&[2, 3, 4], &[1], true);
    c.suspect(1, 0);
    assert_eq!(
        ignored_by(&mut c, 1, stranger, MsgKind::RIntResp, state(1)),
        1
    );

    // dispatch: an excluded process ignores everything.
    let mut c = settled(3);
    c.leave(2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].status(), Status::Excluded(ExcludeReason::Left));
    let n0 = id(&c, 0);
    assert_eq!(ignored_by(&mut c, 2, n0, MsgKind::Heartbeat, |_| {}), 1);
}

/// Catches the `stats.ignored += 1` mutant of `on_response`'s State-Xfer arm
/// (`initiator.rs`): while the mgr waits for its joiners' ack(Join), an ack from a
/// process it did not add is counted as ignored and does not end the wait.
#[test]
fn a_state_xfer_ack_from_a_process_not_added_is_ignored() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    // n3's ack(Join) never reaches the mgr: it stays in Xfer for version 2.
    c.set_cut_one_way(&[3], &[0], true);
    c.join(3, 1);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 2, "the add of n3 is committed");
    assert_eq!(c.engines[3].status(), Status::Member);
    let n1 = id(&c, 1);
    let ignored = ignored_by(&mut c, 0, n1, MsgKind::StateXferAck, |w| {
        w.u64(2);
        w.state(2, None, &Update::with_capacity(1));
    });
    assert_eq!(ignored, 1);
    // Still waiting for n3: the commit of version 2 has not been multicast yet, so n1
    // is still at version 1.
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].view().version, 1);
}

/// Catches `Initiator::become_mgr -> ()` (`initiator.rs`) where it is not a no-op:
/// DetermineProposal finds nothing to commit (every answer reports version x+1
/// committed with an empty update, which only a forged answer can do), so the
/// reconfigurer takes over as mgr of its current view and GetUpdate proposes what it
/// believes (the crashed mgr's removal) as an M-sub. Its other callers find the task
/// already mgr and idle: `bootstrap_at`, and `commit` when a leaving mgr's successor is
/// this process (a process that never initiated keeps the initial mgr/idle state).
/// With the mutant the reconfigurer determines its proposal again and again (the test
/// hangs: cargo-mutants counts a timeout).
#[test]
fn a_reconfigurer_with_nothing_to_commit_takes_over_as_mgr() {
    let mut c = settled(3);
    c.crash(0);
    c.set_cut_one_way(&[2], &[1], true);
    c.suspect(1, 0);
    assert!(!c.engines[1].is_mgr(), "interrogating");
    let sent_msub = c.engines[1].stats().sent[MsgKind::MSub as usize];
    let n2 = id(&c, 2);
    let ignored = ignored_by(&mut c, 1, n2, MsgKind::RIntResp, state(2));
    assert_eq!(ignored, 0);
    assert!(c.engines[1].is_mgr());
    assert_eq!(c.engines[1].status(), Status::Member);
    assert_eq!(c.engines[1].view().version, 1);
    assert_eq!(
        c.engines[1].stats().sent[MsgKind::MSub as usize],
        sent_msub + 1,
        "an M-sub to n2 (not to n0, believed faulty)"
    );
    let p = c.engines[1].next_update().expect("its own M-sub");
    assert_eq!((p.version, p.initiator), (2, id(&c, 1)));
    assert_eq!(p.update.removes, [id(&c, 0)]);
}

/// Catches GetUpdate's queue re-check mutant (`initiator.rs`, `get_update`: the match
/// guard `old.incarnation >= j.incarnation` replaced with `false`): a joiner's retry
/// that reaches the mgr while the update adding it is in flight is queued again (it is
/// not in the view yet); once the add is committed, GetUpdate finds that same
/// incarnation in the view and drops the queued request instead of taking the new
/// member for a restarted one and removing it.
#[test]
fn a_join_retry_during_its_own_add_is_dropped_not_taken_for_a_restart() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    c.join(3, 0);
    while !c.events[0]
        .iter()
        .any(|e| matches!(e, Event::Submitted { version: 2 }))
    {
        assert!(c.deliver_one(), "the mgr submits the add of n3");
    }
    // n3 retries its request (no State-Xfer yet) while the add is in flight.
    let retry_at = c.now + c.engines[3].config().join_retry_us;
    c.engines[3].handle_timeout(retry_at);
    c.flush(3);
    let refused = c.engines[0].stats().joins_refused;
    c.advance(2_000_000, 10_000);
    assert_eq!(c.engines[3].status(), Status::Member);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    assert_eq!(c.engines[0].view().version, 2, "no second update");
    assert!(c.agreed());
    assert!(
        !c.events[0]
            .iter()
            .any(|e| matches!(e, Event::Suspected { .. })),
        "{:?}",
        c.events[0]
    );
    assert_eq!(c.engines[0].stats().joins_refused, refused + 1);
    c.check_safety().unwrap();
}

/// Hands the mgr (engine 0) a JoinReq for `joiner`; returns how much
/// `stats().joins_refused` grew.
fn join_request(c: &mut Cluster, joiner: crate::view::Member) -> u64 {
    join_request_to(c, 0, joiner)
}

/// [`join_request`] to engine `to`.
fn join_request_to(c: &mut Cluster, to: usize, joiner: crate::view::Member) -> u64 {
    let before = c.engines[to].stats().joins_refused;
    let mut buf = Vec::new();
    let mut w = Writer::start(&mut buf, MsgKind::JoinReq, 0, &[]);
    w.member(&joiner);
    w.tags(&[]); // no tags
    let now = c.now;
    c.engines[to]
        .handle_message(now, joiner.id, &buf)
        .expect("a well-formed JoinReq");
    c.flush(to);
    c.engines[to].stats().joins_refused - before
}

/// Catches the `joins_refused += 1` mutants (`+=` -> `*=`) and the incarnation
/// comparisons of `on_join_request` (`join.rs`): the mgr refuses, and counts, a join
/// request from itself, from a member, from a process removed before, from an older
/// incarnation than the one queued or the one in the view, and beyond its queue; a
/// newer incarnation replaces the queued request of the same node, a repeat of the
/// same incarnation (from any address) changes nothing (`<` -> `<=` in
/// `on_join_request`).
#[test]
fn the_mgr_refuses_and_counts_every_join_request_it_cannot_take() {
    let cfg = EngineConfig {
        max_pending_joins: 2,
        ..cfg()
    };
    let mut c = Cluster::new(4, 0, cfg);
    c.run_until_quiet(10_000);
    c.leave(3);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    let m = crate::testkit::member_of;
    assert_eq!(join_request(&mut c, m(0, 1)), 1, "the mgr itself");
    assert_eq!(join_request(&mut c, m(1, 1)), 1, "a member");
    assert_eq!(join_request(&mut c, m(3, 1)), 1, "removed before");
    assert_eq!(join_request(&mut c, m(1, 0)), 1, "older than the member");
    // Keep the mgr busy: the acks of its next submit do not arrive, so the requests
    // after the first wait in its queue.
    c.set_cut_one_way(&[1, 2], &[0], true);
    assert_eq!(join_request(&mut c, m(5, 2)), 0, "proposed at once");
    assert_eq!(join_request(&mut c, m(6, 2)), 0, "queued");
    assert_eq!(
        join_request(&mut c, m(6, 1)),
        1,
        "older than the queued one"
    );
    assert_eq!(join_request(&mut c, m(6, 3)), 0, "replaces the queued one");
    assert_eq!(join_request(&mut c, m(6, 3)), 0, "a repeat is not counted");
    let mut moved = m(6, 3);
    moved.addr = "10.9.9.9:1".parse().unwrap();
    assert_eq!(
        join_request(&mut c, moved),
        0,
        "nor a repeat from elsewhere"
    );
    assert_eq!(join_request(&mut c, m(7, 1)), 0, "queued");
    assert_eq!(join_request(&mut c, m(8, 1)), 1, "the queue is full");
    c.set_cut_one_way(&[1, 2], &[0], false);
    c.advance(3_000_000, 10_000);
    // The joiners are made-up processes that never answer State-Xfer: what matters is
    // which incarnations the mgr added.
    let mut added = Vec::new();
    for v in 2..=c.engines[0].view().version {
        if let Some(u) = c.engines[0].committed_update(v) {
            added.extend(u.adds.iter().map(|a| a.id));
            if let Some(a) = u.adds.iter().find(|a| a.id == m(6, 3).id) {
                assert_eq!(a.addr, m(6, 3).addr, "the queued request is kept as it was");
            }
        }
    }
    assert!(added.contains(&m(5, 2).id), "{added:?}");
    assert!(added.contains(&m(6, 3).id), "{added:?}");
    assert!(added.contains(&m(7, 1).id), "{added:?}");
    assert!(!added.contains(&m(6, 2).id), "{added:?}");
    assert!(!added.contains(&m(8, 1).id), "{added:?}");
}

use crate::testkit::client_op as client;

/// Catches the `client_ops_dropped` and `client_ops_committed` counter mutants and the
/// service-off test of `request_client_ops` (`clients.rs`): changes asked of a process
/// that is not a member, with the service off, beyond the mgr's queue, or forwarded to
/// an outer member are dropped and counted; committed ones are counted at every member;
/// no version 0 is ever logged.
#[test]
fn client_changes_dropped_and_committed_are_counted() {
    let svc = EngineConfig {
        max_client_ops: 4,
        max_pending_client_ops: 3,
        ..cfg()
    };
    // Service off at the mgr (`max_client_ops` 0, even with room for a queue):
    // dropped, nothing queued.
    let off = EngineConfig {
        max_pending_client_ops: 8,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, off);
    c.run_until_quiet(10_000);
    let now = c.now;
    c.engines[0].request_client_ops(now, &[client(1), client(2)]);
    assert_eq!(c.engines[0].stats().client_ops_dropped, 2);
    assert_eq!(c.engines[0].pending_client_ops(), 0);

    let mut c = Cluster::new(3, 1, svc);
    c.run_until_quiet(10_000);
    assert!(c.engines[0].committed_update(0).is_none());
    let now = c.now;
    // Not a member (engine 3 never joined).
    c.engines[3].request_client_ops(now, &[client(1)]);
    assert_eq!(c.engines[3].stats().client_ops_dropped, 1);
    // ClientOps reaching an outer member are not forwarded again.
    let mut buf = Vec::new();
    Writer::start(&mut buf, MsgKind::ClientOps, 1, &[]).client_ops(&[client(1), client(2)]);
    let n2 = id(&c, 2);
    c.engines[1].handle_message(now, n2, &buf).unwrap();
    assert_eq!(c.engines[1].stats().client_ops_dropped, 2);
    // Five changes at an idle mgr whose queue holds three: two dropped.
    let ops: Vec<_> = (1..=5).map(client).collect();
    c.engines[0].request_client_ops(now, &ops);
    c.flush(0);
    assert_eq!(c.engines[0].stats().client_ops_dropped, 2);
    c.run_until_quiet(10_000);
    for i in 0..3 {
        assert_eq!(c.engines[i].view().version, 2, "n{i}");
        assert_eq!(c.engines[i].stats().client_ops_committed, 3, "n{i}");
        assert_eq!(c.engines[i].committed_update(2).unwrap().clients, ops[..3]);
    }
}

/// Catches `EngineStats::protocol_logical -> 1`, its `+ -> *` mutants and
/// `protocol_sent -> 0` (`mod.rs`): the paper's count is the sum of the three tables,
/// protocol kinds only.
#[test]
fn protocol_logical_sums_sent_self_addressed_and_suppressed() {
    let mut s = crate::engine::EngineStats::default();
    s.sent[MsgKind::MSub as usize] = 3;
    s.self_addressed[MsgKind::MSubAck as usize] = 5;
    s.suppressed[MsgKind::MCom as usize] = 7;
    s.sent[MsgKind::ClientOps as usize] = 100;
    assert_eq!(s.protocol_logical(), 15);
    assert_eq!(s.protocol_sent(), 3, "ClientOps is not a protocol message");
    s.suppressed[MsgKind::MCom as usize] = 0;
    assert_eq!(s.protocol_logical(), 8);
    assert_eq!(crate::engine::EngineStats::default().protocol_logical(), 0);
}

/// Catches `Engine::leader -> None` and the `received[kind] += 1 -> *=` mutant of
/// `handle_message` (`mod.rs`): a member follows the mgr, the mgr itself; every
/// decoded message is counted once under its kind.
#[test]
fn members_follow_the_mgr_and_count_what_they_receive() {
    let mut c = settled(5);
    let mgr = id(&c, 0);
    for i in 0..5 {
        assert_eq!(c.engines[i].leader(), Some(mgr), "n{i}");
    }
    let before = c.engines[2].stats().received;
    let mut buf = Vec::new();
    let version = c.engines[2].view().version;
    Writer::start(&mut buf, MsgKind::Heartbeat, version, &[]);
    let now = c.now;
    c.engines[2].handle_message(now, mgr, &buf).unwrap();
    c.engines[2].handle_message(now, mgr, &buf).unwrap();
    let after = c.engines[2].stats().received;
    for k in MsgKind::ALL {
        let grew = after[k as usize] - before[k as usize];
        assert_eq!(grew, u64::from(k == MsgKind::Heartbeat) * 2, "{k:?}");
    }
}

/// Catches `Engine::suspect_all -> ()` and its `delete !` mutant (the minority check
/// applied only to members already believed faulty) (`mod.rs`): the mgr proposes
/// the batch as one update, and a suspicion that would leave it in a minority is
/// ignored and counted.
#[test]
fn suspect_all_removes_the_batch_in_one_update_but_never_a_majority() {
    let mut c = settled(5);
    let (n2, n3, n4) = (id(&c, 2), id(&c, 3), id(&c, 4));
    c.crash(3);
    c.crash(4);
    let now = c.now;
    c.engines[0].suspect_all(now, &[n3, n4, n2]);
    assert_eq!(
        c.engines[0].stats().suspicions_ignored,
        1,
        "n2 would be a third"
    );
    assert_eq!(c.engines[0].faulty(), [n3, n4]);
    let p = c.engines[0]
        .next_update()
        .expect("one update for the batch");
    assert_eq!(p.version, 2);
    assert_eq!(p.update.removes, [n3, n4]);
    c.flush(0);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2"]);
    assert!(c.agreed());
    c.check_safety().unwrap();
    // Not a member: nothing happens.
    let mut c = Cluster::new(3, 1, cfg());
    let n0 = id(&c, 0);
    let now = c.now;
    c.engines[3].suspect_all(now, &[n0]);
    assert!(c.engines[3].faulty().is_empty());
}

/// Catches the `&& -> ||` mutant of `suspect_all`'s outer loop (`mod.rs`): once an
/// outer member's batch made it the reconfigurer (its leader is in the batch), the
/// rest of the batch is not handled as an outer member's any more (no gossip
/// heartbeat to a leader it no longer follows).
#[test]
fn suspect_all_stops_acting_as_outer_member_once_it_reconfigures() {
    let mut c = settled(5);
    let (n0, n4) = (id(&c, 0), id(&c, 4));
    c.crash(0);
    c.crash(4);
    let before = *c.engines[1].stats();
    let now = c.now;
    c.engines[1].suspect_all(now, &[n0, n4]);
    let after = *c.engines[1].stats();
    assert_eq!(after.reconfigurations, before.reconfigurations + 1);
    let hb = MsgKind::Heartbeat as usize;
    assert_eq!(after.sent[hb], before.sent[hb], "no gossip heartbeat");
    assert_eq!(after.self_addressed[hb], before.self_addressed[hb]);
    c.flush(1);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(1), ["n1", "n2", "n3"]);
    c.check_safety().unwrap();
}

/// Catches the `|| -> &&` mutant of `Engine::leave`'s guard (`mod.rs`): a second
/// leave sends nothing more, and a process that is not a member cannot leave.
#[test]
fn leave_is_sent_once_and_only_by_a_member() {
    let mut c = Cluster::new(5, 1, cfg());
    c.run_until_quiet(10_000);
    let lr = MsgKind::LeaveReq as usize;
    c.leave(2);
    assert_eq!(c.engines[2].stats().sent[lr], 1);
    assert!(c.engines[2].is_leaving());
    c.leave(2);
    assert_eq!(
        c.engines[2].stats().sent[lr],
        1,
        "the second leave sends nothing"
    );
    // An idle process (engine 5, never started) is not leaving afterwards.
    c.leave(5);
    assert!(!c.engines[5].is_leaving());
    assert_eq!(c.engines[5].stats().sent[lr], 0);
    assert_eq!(c.engines[5].status(), Status::Idle);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n3", "n4"]);
}

/// Catches `Engine::removed_as_leaver -> false` (`mod.rs`): the mgr remembers a
/// member it removed because it asked to leave, and only that one.
#[test]
fn the_mgr_remembers_whom_it_removed_as_leaver() {
    let mut c = settled(5);
    let (n2, n4) = (id(&c, 2), id(&c, 4));
    c.leave(2);
    c.run_until_quiet(10_000);
    c.crash(4);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n3"]);
    assert!(c.engines[0].removed_as_leaver(n2));
    assert!(
        !c.engines[0].removed_as_leaver(n4),
        "n4 crashed, it did not leave"
    );
}

/// Catches the `delete !` mutant of `if !self.unverified_suspicion()` in
/// `handle_timeout` (`mod.rs`, D21, D24): a member that hears nobody withholds its
/// suspicions for as long as the silence lasts (D24 rule 1) — it neither stops at its
/// first unverified suspicion nor spreads one.
#[test]
fn a_deaf_member_withholds_its_suspicions_while_it_hears_nobody() {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let timeout = cfg.suspect_timeout_us;
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[0, 1, 2, 3], &[4], true);
    let cut = c.now.0;
    while c.now.0 - cut < (2 + u64::from(crate::engine::MAX_WITHHOLD)) * timeout {
        c.advance(10_000, 10_000);
        assert_eq!(
            c.engines[4].status(),
            Status::Member,
            "n4 stopped {} us after the cut",
            c.now.0 - cut
        );
    }
    assert!(
        !c.events[4]
            .iter()
            .any(|e| matches!(e, Event::Suspected { .. })),
        "n4 spread no suspicion: {:?}",
        c.events[4]
    );
}

/// Delivers to n2 an M-sub of version 2 with an empty update from `from` (view 1),
/// carrying `gossip`.
fn empty_msub_to_n2(c: &mut Cluster, from: ProcessId, gossip: &[ProcessId]) {
    let empty = Update::with_capacity(1);
    let mut buf = Vec::new();
    let mut w = Writer::start(&mut buf, MsgKind::MSub, 1, gossip);
    w.u64(2);
    w.update(&empty);
    let now = c.now;
    c.engines[2].handle_message(now, from, &buf).unwrap();
}

/// Catches the `&& -> ||` mutants of `Engine::commit_path` (`mod.rs`): only a submit
/// or commit from the leader an outer member follows bypasses D18; an M-sub from
/// another member whose gossip would leave the receiver in a minority is refused.
#[test]
fn only_the_leaders_submit_bypasses_the_minority_check_on_gossip() {
    let mut c = settled(5);
    let (n0, n1, n3, n4) = (id(&c, 0), id(&c, 1), id(&c, 3), id(&c, 4));
    empty_msub_to_n2(&mut c, n1, &[n0, n3, n4]);
    assert_eq!(c.engines[2].stats().gossip_refused, 1);
    assert_eq!(
        c.engines[2].faulty(),
        [n1],
        "its sender is suspected instead"
    );
}

/// Catches `Engine::pre_commit -> ()`, its and `installed`'s `durable_seq += 1`
/// mutants and the
/// `delete !` of `!self.is_faulty(r)` in `commit` (`mod.rs`): an outer member that
/// acknowledges the mgr's M-sub believes the removed member faulty (once) and keeps
/// the submit as its durable NextUpdate until the commit.
#[test]
fn an_outer_member_pre_commits_the_mgrs_submit() {
    let mut c = settled(5);
    let (n0, n4) = (id(&c, 0), id(&c, 4));
    c.crash(4);
    c.suspect(0, 4);
    let sub = MsgKind::MSub as usize;
    let seq = c.engines[2].durable_seq();
    while c.engines[2].stats().received[sub] == 0 {
        assert!(c.deliver_one(), "the M-sub reaches n2");
    }
    assert_eq!(c.engines[2].faulty(), [n4]);
    assert!(
        c.engines[2].durable_seq() > seq,
        "NextUpdate is durable state"
    );
    let p = c.engines[2].next_update().expect("the mgr's submit");
    assert_eq!((p.version, p.initiator), (2, n0));
    assert_eq!(p.update.removes, [n4]);
    c.run_until_quiet(10_000);
    assert!(c.engines[2].next_update().is_none());
    assert_eq!(c.view_names(2), ["n0", "n1", "n2", "n3"]);
    assert!(
        c.engines[2].durable_seq() > seq + 1,
        "so is the view installed"
    );
    // Believed faulty since the M-sub: the commit does not suspect n4 a second time.
    let suspected = c.events[2]
        .iter()
        .filter(|e| matches!(e, Event::Suspected { peer, .. } if *peer == n4))
        .count();
    assert_eq!(suspected, 1);
}

/// Catches the `&& -> ||` mutant of the leaver ring in `Engine::commit` (`mod.rs`):
/// the mgr remembers every leaver it removed (up to `max_members`), not only the
/// last one.
#[test]
fn the_mgr_remembers_several_leavers() {
    let mut c = settled(6);
    let (n2, n3) = (id(&c, 2), id(&c, 3));
    c.leave(2);
    c.run_until_quiet(10_000);
    c.leave(3);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n4", "n5"]);
    assert!(c.engines[0].removed_as_leaver(n2));
    assert!(c.engines[0].removed_as_leaver(n3));
}

/// Catches the `!= -> ==` mutant in `Engine::commit` (`mod.rs`): when the mgr's own
/// removal (it left, D9) makes a member this process already believes faulty the
/// new mgr, the next in rank reconfigures at once.
#[test]
fn after_the_mgr_left_a_faulty_successor_is_reconfigured_around_at_once() {
    let mut c = settled(5);
    c.leave(0);
    let ack = MsgKind::MSubAck as usize;
    while c.engines[0].stats().received[ack] < 4 {
        assert!(c.deliver_one(), "every member acknowledges -n0");
    }
    assert_eq!(c.engines[2].view().version, 1);
    // n2 now suspects n1, and the mgr (gone) does not learn it.
    c.set_cut_one_way(&[2], &[0], true);
    c.suspect(2, 1);
    c.run_until_quiet(10_000);
    assert!(c.engines[2].view().version >= 2, "n2 installed -n0");
    assert!(
        c.events[2]
            .iter()
            .any(|e| matches!(e, Event::Reconfiguring { version: 2 })),
        "{:?}",
        c.events[2]
    );
    c.advance(5_000_000, 10_000);
    assert_eq!(c.view_names(2), ["n2", "n3", "n4"]);
    assert!(c.agreed());
    c.check_safety().unwrap();
}

/// Catches the `< -> <=` and `+ -> *` mutants of `Engine::remember_removed`
/// (`mod.rs`): the removed processes are kept in a ring of fixed capacity (no
/// growth), the oldest overwritten first, each process once.
#[test]
fn removed_processes_are_remembered_in_a_ring() {
    let cfg = EngineConfig {
        max_members: 2,
        ..cfg()
    };
    let mut e = crate::Engine::new(cfg, crate::testkit::member_of(0, 1));
    let cap = e.removed.capacity();
    assert_eq!(cap, 8);
    let p = |i: usize| crate::testkit::member_of(i + 1, 1).id;
    for i in 0..cap {
        e.remember_removed(p(i));
        e.remember_removed(p(i));
    }
    assert_eq!(e.removed.len(), cap);
    e.remember_removed(p(cap));
    e.remember_removed(p(cap + 1));
    assert_eq!((e.removed.len(), e.removed.capacity()), (cap, cap));
    assert!(!e.removed.contains(&p(0)) && !e.removed.contains(&p(1)));
    for i in 2..cap + 2 {
        assert!(e.removed.contains(&p(i)), "{i}");
    }
}

/// Catches the `&& -> ||` mutant of `Engine::local_suspicion_pending` (`mod.rs`, D18):
/// a member whose last suspicion of its own was acted on (the suspect is no longer in
/// its view) suspects the next crashed member it watches after one timeout, without
/// the postponements meant for a member that may be the one cut off.
#[test]
fn a_suspicion_the_group_acted_on_does_not_delay_the_next() {
    let mut c = settled(5);
    let timeout = cfg().suspect_timeout_us;
    let n4 = id(&c, 4);
    c.crash(4);
    c.advance(5_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    let i = (0..4)
        .find(|&i| c.engines[i].last_local_suspicion == Some(n4))
        .expect("n4's watcher suspected it");
    let q = c.engines[i].detector.watched().expect("i watches someone");
    let j = (0..4).find(|&j| id(&c, j) == q).unwrap();
    c.crash(j);
    let crashed = c.now.0;
    let mut took = None;
    for _ in 0..1_000 {
        c.advance(10_000, 10_000);
        if c.events[i]
            .iter()
            .any(|e| matches!(e, Event::Suspected { peer, .. } if *peer == q))
        {
            took = Some(c.now.0 - crashed);
            break;
        }
    }
    let took = took.expect("q suspected");
    assert!(took <= 2 * timeout, "n{i} suspected n{j} after {took} us");
}

/// Catches the `&& -> ||` mutants of `Engine::client_linger_due` (`clients.rs`): only
/// an idle mgr with nothing but client changes pending lingers; a suspicion is
/// proposed at once (with the changes), and a busy mgr has no linger deadline.
#[test]
fn only_an_idle_mgr_with_only_client_changes_lingers() {
    let linger = EngineConfig {
        max_client_ops: 4,
        max_pending_client_ops: 8,
        client_linger_us: 100_000,
        ..cfg()
    };
    let mut c = Cluster::new(5, 0, linger);
    c.run_until_quiet(10_000);
    let n4 = id(&c, 4);
    let now = c.now;
    c.engines[0].request_client_ops(now, &[client(1)]);
    c.flush(0);
    assert!(c.engines[0].next_update().is_none(), "the change lingers");
    assert_eq!(
        c.engines[0].client_linger_due(now),
        Some(Time(now.0 + 100_000))
    );
    // A suspicion: the mgr proposes at once, the change with it.
    c.crash(4);
    c.set_cut_one_way(&[1, 2, 3], &[0], true);
    c.suspect(0, 4);
    let p = c.engines[0].next_update().expect("proposed at once");
    assert_eq!(p.update.removes, [n4]);
    assert_eq!(p.update.clients, [client(1)]);
    c.set_cut_one_way(&[1, 2, 3], &[0], false);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    assert!(c.agreed());
    // Busy with a change alone (its acknowledgements held back): another change has
    // no linger deadline.
    c.set_cut_one_way(&[1, 2, 3], &[0], true);
    let now = c.now;
    c.engines[0].request_client_ops(now, &[client(2)]);
    c.flush(0);
    c.advance(150_000, 10_000);
    let p = c.engines[0]
        .next_update()
        .expect("proposed after lingering");
    assert_eq!(p.update.clients, [client(2)]);
    assert!(c.engines[0].faulty().is_empty());
    let now = c.now;
    c.engines[0].request_client_ops(now, &[client(3)]);
    c.flush(0);
    assert_eq!(c.engines[0].pending_client_ops(), 1);
    assert_eq!(c.engines[0].client_linger_due(now), None);
}

/// Catches `s + l` -> `s * l` in `Engine::model_fingerprint` and `debug_hash -> ()`
/// (`fingerprint.rs`): the bytes of every queued output are hashed, the first one's
/// (at the start of the output buffer) included, and so are the pending events.
#[test]
fn the_fingerprint_covers_the_bytes_of_queued_outputs() {
    use std::hash::{DefaultHasher, Hasher};
    fn fp(e: &crate::Engine) -> u64 {
        let mut h = DefaultHasher::new();
        e.model_fingerprint(&mut h);
        h.finish()
    }
    let mut c = settled(5);
    let n4 = id(&c, 4);
    let now = c.now;
    c.engines[0].suspect(now, n4);
    let e = &mut c.engines[0];
    assert!(!e.out_q.is_empty(), "the mgr's M-sub waits to be polled");
    let first = e.out_q.iter().map(|o| o.start).min().unwrap();
    assert_eq!(first, 0);
    let before = fp(e);
    assert_eq!(fp(e), before, "deterministic");
    e.out_buf[0] ^= 0xff;
    assert_ne!(fp(e), before);
    // The private parts hashed through their Debug rendering (`debug_hash`): the
    // events not yet polled, for one.
    let before = fp(e);
    e.events.push_back(Event::Joined { version: 9 });
    assert_ne!(fp(e), before);
}

/// Catches the `&& -> ||` mutants of `Engine::probe`'s filter (`health.rs`, D21): the
/// probe heartbeats every other member, neither itself nor the silent one it watches
/// nor one it believes faulty.
#[test]
fn a_probe_heartbeats_every_other_member_but_the_silent_one() {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    let (n0, n3, n4) = (id(&c, 0), id(&c, 3), id(&c, 4));
    let now = c.now;
    let e = &mut c.engines[0];
    e.faulty.push(n3);
    let queued = e.out_q.len();
    e.probe(now, n4);
    let to: Vec<ProcessId> = e.out_q.iter().skip(queued).map(|o| o.to).collect();
    assert_eq!(to, [id(&c, 1), id(&c, 2)]);
    assert!(!to.contains(&n0) && !to.contains(&n3) && !to.contains(&n4));
}

/// Catches `Engine::outside_suspicion_verified -> true` (`health.rs`, D21): with local
/// health on, an outside suspicion (the transport's) at a member that has not heard a
/// majority within the last suspicion timeout is ignored and counted; at a member that
/// hears the others it is taken.
#[test]
fn an_outside_suspicion_at_a_deaf_member_is_ignored() {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let timeout = cfg.suspect_timeout_us;
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    let (n0, n4) = (id(&c, 0), id(&c, 4));
    c.set_cut_one_way(&[0, 1, 2, 3], &[4], true);
    c.advance(timeout + 100_000, 10_000);
    assert_eq!(c.engines[4].status(), Status::Member);
    let ignored = c.engines[4].stats().suspicions_ignored;
    c.suspect(4, 0);
    assert_eq!(c.engines[4].stats().suspicions_ignored, ignored + 1);
    assert!(!c.engines[4].faulty().contains(&n0));
    c.suspect(1, 4);
    assert!(c.engines[1].faulty().contains(&n4));
}

/// Catches both `&& -> ||` mutants of `Engine::peer_alive` (`mod.rs`): a sign of life
/// of a process outside the view is ignored. Noted, it would take room in the heard
/// table (D21), which holds as many processes as a view may (`max_members`), so the
/// members heard after it would go unrecorded and a suspicion this process may take
/// (it hears a majority without the suspect) would be ignored.
#[test]
fn signs_of_life_of_non_members_leave_room_for_the_members() {
    let cfg = EngineConfig {
        local_health: true,
        max_members: 3,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, cfg);
    let (n1, n2) = (id(&c, 1), id(&c, 2));
    let now = c.now;
    for k in 1..=3 {
        c.engines[0].peer_alive(now, ProcessId::named("stranger", k));
    }
    c.engines[0].peer_alive(now, n1);
    c.suspect(0, 2);
    assert_eq!(c.engines[0].stats().suspicions_ignored, 0);
    assert_eq!(c.engines[0].faulty(), [n2], "n0 hears n1 and itself");
}

/// Catches `>` -> `>=` in `Engine::set_snapshot` (`mod.rs`): a snapshot of exactly
/// `max_snapshot` bytes is taken, and a joiner receives all of it.
#[test]
fn a_snapshot_of_exactly_max_snapshot_bytes_is_taken() {
    let mut c = Cluster::new(2, 1, cfg());
    c.run_until_quiet(10_000);
    let full: Vec<u8> = (0..1024).map(|i| i as u8).collect();
    assert!(c.engines[0].set_snapshot(&full).is_ok());
    assert!(c.engines[0].set_snapshot(&[0; 1025]).is_err());
    c.join(2, 0);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].status(), Status::Member);
    assert_eq!(c.engines[2].received_snapshot(), &full[..]);
}

/// D28 (found by mutating `<` -> `<=` in `Engine::on_leave_request`): no leave request
/// is dropped for want of room. While the mgr waits for the State-Xfer acks of an
/// update that removed three leavers and added three joiners, the leavers it removed
/// are still listed (until `finish_commit`) and the members of the new view ask to
/// leave too: with room for only `max_members`, the sixth request was dropped and that
/// member stayed in the view, leaving, for good. The list has room for the members of
/// two views, never more.
#[test]
fn no_leave_request_is_lost_while_the_mgrs_leavers_wait_for_state_xfer() {
    let cfg = EngineConfig {
        max_members: 5,
        ..cfg()
    };
    let mut c = Cluster::new(4, 4, cfg);
    c.run_until_quiet(10_000);
    // n4's join keeps the mgr busy while n1-n3's leave requests and n5-n7's joins
    // arrive: its next update removes the three and adds the three.
    c.join(4, 0);
    for i in 1..=3 {
        c.leave(i);
    }
    for j in 5..=7 {
        c.join(j, 0);
    }
    let mut left = 0;
    let mut most = 0;
    loop {
        // Each process added asks to leave as soon as it is a member.
        for j in 4..=7 {
            if c.engines[j].status() == Status::Member && !c.engines[j].is_leaving() {
                c.leave(j);
                left += 1;
            }
        }
        most = most.max(c.engines[0].leavers.len());
        assert!(most <= 10, "{:?}", c.engines[0].leavers);
        if !c.deliver_one() {
            break;
        }
    }
    assert_eq!(left, 4, "every joiner became a member and asked to leave");
    assert!(most > 5, "the case the list once had no room for: {most}");
    c.advance(2_000_000, 10_000);
    for i in 1..=7 {
        assert_eq!(
            c.engines[i].status(),
            Status::Excluded(ExcludeReason::Left),
            "n{i} left"
        );
    }
    assert_eq!(c.view_names(0), ["n0"]);
}

/// D28: a leave request goes to the mgr of its day only; when that mgr crashes before
/// removing the leaver, the leaver asks the next mgr once the reconfiguration's view
/// (which still holds it) is installed, and leaves.
#[test]
fn a_leave_request_lost_with_the_mgr_is_repeated_to_the_next() {
    let mut c = settled(5);
    let lr = MsgKind::LeaveReq as usize;
    c.crash(0);
    c.leave(2);
    assert_eq!(c.engines[2].stats().sent[lr], 1);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].status(), Status::Member, "its request is lost");
    for i in 1..=4 {
        c.suspect(i, 0);
    }
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].stats().sent[lr], 2, "asked again, once");
    assert_eq!(c.engines[2].status(), Status::Excluded(ExcludeReason::Left));
    assert_eq!(c.view_names(1), ["n1", "n3", "n4"]);
    c.check_safety().unwrap();
}

/// D28: a leave request from a member at a newer version than the receiver's (the
/// leaver installed a view the receiver, its new leader, has not yet) is ignored, not
/// taken as a failure report: believing the leaver faulty would cost the new view its
/// acknowledgement. From a member at the receiver's version it still is one.
#[test]
fn a_leave_request_from_a_newer_view_is_not_a_failure_report() {
    let mut c = settled(5);
    let n3 = id(&c, 3);
    let v = c.engines[2].view().version;
    let leave_req = |version: u64| {
        let mut buf = Vec::new();
        let _ = Writer::start(&mut buf, MsgKind::LeaveReq, version, &[]);
        buf
    };
    let ignored = c.engines[2].stats().ignored;
    let now = c.now;
    c.engines[2]
        .handle_message(now, n3, &leave_req(v + 1))
        .unwrap();
    assert!(c.engines[2].faulty().is_empty());
    assert_eq!(c.engines[2].stats().ignored, ignored + 1);
    c.engines[2].handle_message(now, n3, &leave_req(v)).unwrap();
    assert_eq!(c.engines[2].faulty(), [n3], "an outer member's old rule");
}

/// D28: a leaver whose request was lost asks its leader again once per protocol
/// timeout, even when no view is installed meanwhile, and leaves.
#[test]
fn a_lost_leave_request_is_repeated_after_a_protocol_timeout() {
    let cfg = cfg();
    let timeout = cfg.protocol_timeout_us;
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    let lr = MsgKind::LeaveReq as usize;
    c.set_cut_one_way(&[2], &[0], true);
    c.leave(2);
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[2], &[0], false);
    assert_eq!(
        c.engines[2].status(),
        Status::Member,
        "its request was lost"
    );
    c.advance(timeout + 100_000, 10_000);
    assert!(c.engines[2].stats().sent[lr] >= 2, "asked again");
    assert_eq!(c.engines[2].status(), Status::Excluded(ExcludeReason::Left));
    assert_eq!(c.view_names(0), ["n0", "n1", "n3", "n4"]);
}

/// D28, and the `&&` -> `||` and `>=` -> `<` mutants of the retry guard in
/// `Engine::handle_timeout` (`mod.rs`, the in-diff pass of session 9): a leaver asks
/// again once per protocol timeout, not at every timer tick (a heartbeat interval).
#[test]
fn a_leaver_asks_again_once_per_protocol_timeout() {
    let timeout = quiet_detector_cfg().protocol_timeout_us;
    let mut c = quiet_cluster(5, 0);
    let lr = MsgKind::LeaveReq as usize;
    c.set_cut_one_way(&[2], &[0], true);
    c.leave(2);
    c.advance(3 * timeout + timeout / 2, 10_000);
    let sent = c.engines[2].stats().sent[lr];
    assert_eq!(sent, 4, "the request and one per protocol timeout: {sent}");
    assert_eq!(c.engines[2].status(), Status::Member, "none got through");
}

/// Catches `views_installed += 1` -> `*=` in `Engine::installed` (`mod.rs`): every
/// view a process installs is counted, the one it bootstraps or joins with included.
#[test]
fn every_view_installed_is_counted() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].stats().views_installed, 1);
    c.join(3, 0);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].stats().views_installed, 2);
    assert_eq!(
        c.engines[3].stats().views_installed,
        1,
        "the view it joined"
    );
    c.crash(2);
    c.suspect(0, 2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].stats().views_installed, 3);
    assert_eq!(c.engines[3].stats().views_installed, 2);
}

/// Catches `slots.len() / 2` -> `* 2` in `BatchIndex::find_or_insert` (`clients.rs`):
/// past its room (a batch larger than the `max_client_ops` it was made for) the index
/// falls back to a scan and still finds every change. (Mutated, it keeps probing a
/// full table: the test hangs.)
#[test]
fn a_batch_index_past_its_room_still_finds_every_change() {
    let mut idx = super::clients::BatchIndex::new(2);
    let mut batch = Vec::new();
    idx.begin(&batch);
    for k in 0..12 {
        let op = client(k);
        assert_eq!(idx.find_or_insert(&batch, op.id), None, "change {k} is new");
        batch.push(op);
    }
    for k in 0..12 {
        assert_eq!(idx.find_or_insert(&batch, client(k).id), Some(k as usize));
    }
}

fn tag_set(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut t = crate::tags::TagSet::new();
    for (k, v) in pairs {
        t.insert(k, v).unwrap();
    }
    t.encode()
}

/// Catches the `|| -> &&` and `ignored += 1 -> *=` mutants of `Engine::on_tag_request`
/// (`tags.rs`): only an initiator takes a tag request, and only from a member of its
/// view; any other request is ignored and counted.
#[test]
fn only_an_initiator_takes_a_tag_request_and_only_from_a_member() {
    let mut c = settled(3);
    let n2 = id(&c, 2);
    let db = tag_set(&[("role", "db")]);
    let stranger = ProcessId::named("stranger", 1);
    assert_eq!(
        ignored_by(&mut c, 1, n2, MsgKind::TagReq, |w| w.tags(&db)),
        1
    );
    assert_eq!(
        c.engines[1].pending_tag_changes(),
        0,
        "n1 is an outer member"
    );
    assert_eq!(
        ignored_by(&mut c, 0, stranger, MsgKind::TagReq, |w| w.tags(&db)),
        1
    );
    assert_eq!(
        ignored_by(&mut c, 0, n2, MsgKind::TagReq, |w| w.tags(&db)),
        0
    );
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().tags_of(n2).get("role"), Some("db"));
    assert!(c.engines[0].view().tags_of(stranger).is_empty());
}

/// Catches `delete !` in `Engine::tags_after_install` and `|| -> &&` in
/// `Engine::request_tags` (`tags.rs`): a member whose tag request was lost asks again
/// after the next view that does not show its tags, until one does; then it asks no
/// more, even when the same tags are set again.
#[test]
fn a_member_asks_for_its_tags_until_a_view_shows_them_then_stops() {
    let cfg = cfg();
    let timeout = cfg.protocol_timeout_us;
    let mut c = Cluster::new(4, 0, cfg);
    c.run_until_quiet(10_000);
    let n2 = id(&c, 2);
    let tag_req = MsgKind::TagReq as usize;
    let db = tag_set(&[("role", "db")]);
    c.set_cut_one_way(&[2], &[0], true);
    let now = c.now;
    c.engines[2].set_tags(now, &db).unwrap();
    c.flush(2);
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[2], &[0], false);
    // A view change that does not show n2's tags.
    c.crash(3);
    c.suspect(0, 3);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].view().version, 2);
    assert!(c.engines[2].view().tags_of(n2).is_empty());
    c.advance(timeout / 2, 1_000);
    assert_eq!(c.engines[2].stats().sent[tag_req], 2, "asked again");
    assert_eq!(c.engines[0].view().tags_of(n2).get("role"), Some("db"));
    assert_eq!(c.engines[2].view().tags_of(n2).get("role"), Some("db"));
    let now = c.now;
    c.engines[2].set_tags(now, &db).unwrap();
    c.flush(2);
    c.advance(3 * timeout, 10_000);
    assert_eq!(
        c.engines[2].stats().sent[tag_req],
        2,
        "no request once shown"
    );
}

/// Catches `Engine::config -> &Default` (`mod.rs`): the engine reports the
/// configuration it was built with.
#[test]
fn the_engine_reports_its_configuration() {
    let c = Cluster::new(3, 0, cfg());
    assert_eq!(c.engines[1].config().max_members, 16);
    assert_eq!(c.engines[1].config().max_snapshot, 1024);
}

/// Catches `kind == MsgKind::RSub` -> `!=` in `begin_ack_wait` (`initiator.rs`) and
/// the `suppressed[kind] += 1` and `self_addressed[kind] += 1` -> `*=` mutants of
/// `mcast_view` (`mod.rs`): the mgr's own acknowledgement of its M-sub is counted as
/// a self-addressed ack(M-sub), a reconfigurer's of its R-sub as an ack(R-sub).
#[test]
fn an_initiators_own_ack_is_counted_under_its_kind() {
    let (ma, ra) = (MsgKind::MSubAck as usize, MsgKind::RSubAck as usize);
    let mut c = settled(5);
    c.crash(4);
    c.suspect(0, 4);
    let s = c.engines[0].stats();
    assert_eq!((s.self_addressed[ma], s.self_addressed[ra]), (1, 0));
    // The M-sub's copy to n4, believed faulty, is suppressed (Disconnect) and counted;
    // its copy to the mgr itself is self-addressed.
    let sub = MsgKind::MSub as usize;
    assert_eq!(
        (s.sent[sub], s.suppressed[sub], s.self_addressed[sub]),
        (3, 1, 1)
    );
    c.run_until_quiet(10_000);

    c.crash(0);
    c.suspect(1, 0);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(1), ["n1", "n2", "n3"]);
    let s = c.engines[1].stats();
    assert_eq!((s.self_addressed[ma], s.self_addressed[ra]), (0, 1));
}

/// Catches the `rx.version == self.init.sub_version -> true` match guard of
/// `on_response` (`initiator.rs`): an acknowledgement of another version is not an
/// acknowledgement of the current submit; it is ignored and counted.
#[test]
fn an_ack_of_another_version_is_ignored() {
    let mut c = settled(5);
    c.set_cut_one_way(&[1, 2, 3, 4], &[0], true);
    c.crash(4);
    c.suspect(0, 4);
    let n1 = id(&c, 1);
    assert_eq!(ignored_by(&mut c, 0, n1, MsgKind::MSubAck, |w| w.u64(1)), 1);
    assert_eq!(ignored_by(&mut c, 0, n1, MsgKind::MSubAck, |w| w.u64(3)), 1);
    assert_eq!(ignored_by(&mut c, 0, n1, MsgKind::MSubAck, |w| w.u64(2)), 0);
}

/// Catches `max_members - (len - removes)` -> `/` in `get_update` (`initiator.rs`):
/// the mgr adds as many queued joiners as the view has room for, in one update.
#[test]
fn the_mgr_adds_as_many_queued_joiners_as_fit() {
    let cfg = EngineConfig {
        max_members: 8,
        ..cfg()
    };
    let mut c = Cluster::new(5, 3, cfg);
    c.run_until_quiet(10_000);
    // n5's request starts an update at once; n6's and n7's wait for the next one.
    c.join(5, 0);
    c.join(6, 0);
    c.join(7, 0);
    c.run_until_quiet(10_000);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.view_names(0).len(), 8);
    let adds = |v: u64| c.engines[0].committed_update(v).map(|u| u.adds.len());
    assert_eq!((adds(2), adds(3), adds(4)), (Some(1), Some(2), None));
    assert!(c.agreed());
    c.check_safety().unwrap();
}

/// Catches `self.view.version + 1` -> `*` and `s.has_next && ..` -> `||` in
/// `on_response`'s State-Xfer arm (`initiator.rs`, Figure 4): a joiner's ack(Join)
/// reporting a NextUpdate for the version after the new view makes the initiator
/// submit it next; one for another version is not taken.
#[test]
fn a_joiners_reported_next_update_is_submitted_next() {
    use crate::engine::initiator::Phase;
    use crate::view::Proposal;
    for (version, taken) in [(3, true), (5, false)] {
        let mut c = Cluster::new(5, 1, cfg());
        c.run_until_quiet(10_000);
        let (n0, n4, n5) = (id(&c, 0), id(&c, 4), id(&c, 5));
        c.join(5, 0);
        while c.engines[0].init.phase != Phase::Xfer {
            assert!(c.deliver_one(), "the mgr commits +n5 and sends State-Xfer");
        }
        assert_eq!(c.engines[0].view().version, 2);
        let mut p = Proposal::with_capacity(4);
        p.version = version;
        p.initiator = n0;
        p.initiator_index = 0;
        p.update.removes.push(n4);
        let mut buf = Vec::new();
        let mut w = Writer::start(&mut buf, MsgKind::StateXferAck, 2, &[]);
        w.u64(2);
        w.state(2, Some(&p), &Update::with_capacity(1));
        let now = c.now;
        c.engines[0].handle_message(now, n5, &buf).unwrap();
        match c.engines[0].next_update() {
            Some(next) => {
                assert!(taken, "a NextUpdate for version {version} was taken");
                assert_eq!(next.version, 3);
                assert_eq!(next.update.removes, [n4]);
            }
            None => assert!(!taken, "the reported update was not submitted"),
        }
    }
}

/// Catches the `&& -> ||` mutant of `on_leave_request` (`mod.rs`): a repeated leave
/// request is recorded once (the list of leavers is bounded and holds each once).
#[test]
fn a_repeated_leave_request_is_recorded_once() {
    let mut c = settled(5);
    let n2 = id(&c, 2);
    for _ in 0..3 {
        ignored_by(&mut c, 0, n2, MsgKind::LeaveReq, |_| {});
    }
    assert_eq!(c.engines[0].leavers.len(), 1);
    assert_eq!(c.engines[0].leavers[0].id, n2);
}

/// Catches `stats.sent[StateXfer] += 1` -> `*=` in `commit_submitted`
/// (`initiator.rs`): every State-Xfer to a joiner is counted as sent.
#[test]
fn state_xfers_are_counted() {
    let mut c = Cluster::new(3, 2, cfg());
    c.run_until_quiet(10_000);
    c.join(3, 0);
    c.join(4, 0);
    c.run_until_quiet(10_000);
    c.advance(2_000_000, 10_000);
    assert_eq!(c.view_names(0).len(), 5);
    let adds: usize = (2..=c.engines[0].view().version)
        .filter_map(|v| c.engines[0].committed_update(v))
        .map(|u| u.adds.len())
        .sum();
    assert_eq!(adds, 2);
    assert_eq!(c.engines[0].stats().sent[MsgKind::StateXfer as usize], 2);
}

/// Catches `Engine::resend_phase_message -> ()`, and `extensions < MAX_EXTENSIONS` ->
/// `<=` and `now < due` -> `<=` in `initiator_timeout` (`initiator.rs`, D16): an
/// initiator that has no majority of answers when its protocol timeout falls (at the
/// deadline itself) waits once more and re-sends its submit to every member not
/// believed faulty, at most `MAX_EXTENSIONS` times.
#[test]
fn an_initiator_short_of_a_majority_resends_its_submit() {
    let mut c = settled(5);
    c.crash(4);
    c.set_cut_one_way(&[1, 2, 3], &[0], true);
    c.suspect(0, 4);
    let sub = MsgKind::MSub as usize;
    assert_eq!(c.engines[0].stats().sent[sub], 3);
    c.advance(cfg().protocol_timeout_us + 50_000, 10_000);
    assert_eq!(
        c.engines[0].stats().sent[sub],
        6,
        "the M-sub again, to n1..n3"
    );
    assert_eq!(c.engines[0].view().version, 1);
    c.set_cut_one_way(&[1, 2, 3], &[0], false);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    assert!(c.agreed());

    // At the deadline itself, not after it.
    let mut c = settled(5);
    c.crash(4);
    c.set_cut_one_way(&[1, 2, 3], &[0], true);
    c.suspect(0, 4);
    let due = c.engines[0]
        .init
        .deadline(cfg().protocol_timeout_us)
        .expect("a protocol deadline");
    c.engines[0].handle_timeout(due);
    assert_eq!(c.engines[0].stats().sent[sub], 6);

    // Never answered: MAX_EXTENSIONS waits (and re-sends), no more.
    let mut c = settled(5);
    c.crash(4);
    c.set_cut_one_way(&[1, 2, 3], &[0], true);
    c.suspect(0, 4);
    c.advance(10 * cfg().protocol_timeout_us, 10_000);
    let resent = u64::from(super::initiator::MAX_EXTENSIONS);
    assert_eq!(c.engines[0].stats().sent[sub], 3 * (1 + resent));
}

/// Catches `JoinRate::per_sec -> 1` (`join.rs`): the rate reports what it was built
/// with.
#[test]
fn the_join_rate_reports_its_rate() {
    assert_eq!(super::join::JoinRate::new(7).per_sec(), 7);
    assert_eq!(super::join::JoinRate::new(0).per_sec(), 0);
}

/// Catches the `delete !` of `!self.view.contains(self.me.id)` in
/// `on_state_xfer_as_member` (`join.rs`, Figure 4): a member that receives a
/// State-Xfer for its current view from a new initiator follows it and answers.
#[test]
fn a_member_answers_a_state_xfer_for_its_view() {
    let mut c = settled(5);
    let n1 = id(&c, 1);
    let members: Vec<_> = c.engines[2].view().members.clone();
    let acks = c.engines[2].stats().sent[MsgKind::StateXferAck as usize];
    let empty = Update::with_capacity(1);
    let ignored = ignored_by(&mut c, 2, n1, MsgKind::StateXfer, |w| {
        w.u64(1);
        w.update(&empty);
        w.members(&members);
        w.u16(0); // no view tags
        w.bytes(b"");
    });
    assert_eq!(ignored, 0);
    assert_eq!(c.engines[2].leader(), Some(n1));
    assert_eq!(
        c.engines[2].stats().sent[MsgKind::StateXferAck as usize],
        acks + 1
    );
}

/// Catches the `&& -> ||` mutant of `on_join_request`'s forwarding filter
/// (`join.rs`): a member does not forward a join request to a leader it believes
/// faulty.
#[test]
fn a_join_request_is_not_forwarded_to_a_faulty_leader() {
    let mut c = settled(5);
    let n0 = id(&c, 0);
    c.crash(0);
    c.set_cut_one_way(&[2], &[1, 3, 4], true);
    c.suspect(2, 0);
    assert_eq!(c.engines[2].leader(), Some(n0));
    let jr = MsgKind::JoinReq as usize;
    let before = *c.engines[2].stats();
    let joiner = crate::testkit::member_of(6, 1);
    let mut buf = Vec::new();
    let mut w = Writer::start(&mut buf, MsgKind::JoinReq, 0, &[]);
    w.member(&joiner);
    w.tags(&[]); // no tags
    let now = c.now;
    c.engines[2].handle_message(now, joiner.id, &buf).unwrap();
    let after = *c.engines[2].stats();
    assert_eq!(after.sent[jr], before.sent[jr]);
    assert_eq!(after.suppressed[jr], before.suppressed[jr]);
}

/// Catches `senior_to_me -> true` (`mod.rs`): an R-int from a more junior member means
/// it believes this process faulty: it stops (Superseded) instead of following it.
#[test]
fn an_rint_from_a_junior_member_supersedes_this_one() {
    assert_rint_at_n1_from_supersedes(3);
}

/// n1 of a group of five gets an R-int from member `from`, whom it must not follow:
/// it stops (Superseded).
fn assert_rint_at_n1_from_supersedes(from: usize) {
    let mut c = settled(5);
    let sender = id(&c, from);
    ignored_by(&mut c, 1, sender, MsgKind::RInt, state(1));
    assert_eq!(
        c.engines[1].status(),
        Status::Excluded(ExcludeReason::Superseded)
    );
}

/// Catches the `&& -> ||` mutant of `!(is_r && rx.version <= x)` in
/// `on_outer_message` (`outer.rs`): only a reconfigurer may resubmit a version the
/// member already holds; the mgr's M-sub for an installed version is ignored and not
/// acknowledged.
#[test]
fn a_stale_m_sub_from_the_mgr_is_ignored() {
    let mut c = settled(5);
    let n0 = id(&c, 0);
    let empty = Update::with_capacity(1);
    let acks = c.engines[2].stats().sent[MsgKind::MSubAck as usize];
    let ignored = ignored_by(&mut c, 2, n0, MsgKind::MSub, |w| {
        w.u64(1);
        w.update(&empty);
    });
    assert_eq!(ignored, 1);
    assert_eq!(c.engines[2].stats().sent[MsgKind::MSubAck as usize], acks);
}

/// Catches `durable_seq += 1` -> `-=` in `on_rint` (`outer.rs`): a member one version
/// behind a reconfigurer catches up from its R-int (DoCommit of its LastCommit) and
/// that changes its durable state.
#[test]
fn a_member_catching_up_from_an_rint_changes_its_durable_state() {
    let mut c = settled(5);
    let (n1, n4) = (id(&c, 1), id(&c, 4));
    let seq = c.engines[2].durable_seq();
    let mut last = Update::with_capacity(4);
    last.removes.push(n4);
    ignored_by(&mut c, 2, n1, MsgKind::RInt, |w| w.state(2, None, &last));
    assert_eq!(c.engines[2].view().version, 2);
    assert_eq!(c.engines[2].leader(), Some(n1));
    assert!(
        c.engines[2].durable_seq() >= seq + 2,
        "installed, then state(r)"
    );
}

/// Catches `client_ops_dropped += n` -> `-=` in `request_client_ops` (`clients.rs`):
/// an outer member that knows no mgr to forward to drops and counts the changes.
#[test]
fn client_changes_with_no_mgr_to_forward_to_are_dropped() {
    let svc = EngineConfig {
        max_client_ops: 4,
        max_pending_client_ops: 8,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, svc);
    c.run_until_quiet(10_000);
    c.engines[2].leader = None;
    let now = c.now;
    c.engines[2].request_client_ops(now, &[client(1), client(2)]);
    assert_eq!(c.engines[2].stats().client_ops_dropped, 2);
    assert_eq!(c.engines[2].stats().sent[MsgKind::ClientOps as usize], 0);
}

/// Catches `decode_errors += 1` -> `*=` in `handle_message` (`mod.rs`): a message that
/// fails to decode is refused and counted.
#[test]
fn a_message_that_fails_to_decode_is_counted() {
    let mut c = settled(3);
    let n0 = id(&c, 0);
    let now = c.now;
    assert!(c.engines[1].handle_message(now, n0, &[0xff, 1, 2]).is_err());
    assert!(c.engines[1].handle_message(now, n0, &[]).is_err());
    assert_eq!(c.engines[1].stats().decode_errors, 2);
}

/// Catches `ver > x + 1` -> `<` in `record_state` (`initiator.rs`): an answer to R-int
/// two versions ahead (Prop. 5.1 says none exists) makes the reconfigurer stop
/// (Superseded) once every member answered; an answer from a member one version
/// behind the others does not.
#[test]
fn an_rint_answer_too_far_ahead_stops_the_reconfigurer() {
    for (ver, stops) in [(3, true), (0, false)] {
        let mut c = Cluster::new(5, 0, cfg());
        c.run_until_quiet(10_000);
        c.crash(0);
        c.set_cut_one_way(&[2, 3, 4], &[1], true);
        c.suspect(1, 0);
        let (n2, n3, n4) = (id(&c, 2), id(&c, 3), id(&c, 4));
        ignored_by(&mut c, 1, n2, MsgKind::RIntResp, state(ver));
        ignored_by(&mut c, 1, n3, MsgKind::RIntResp, state(1));
        ignored_by(&mut c, 1, n4, MsgKind::RIntResp, state(1));
        let stopped = c.engines[1].status() == Status::Excluded(ExcludeReason::Superseded);
        assert_eq!(stopped, stops, "answer with version {ver}");
    }
}

/// Catches `len - removes` -> `+` in `get_update` (`initiator.rs`): the room for
/// joiners counts the members the same update removes.
#[test]
fn the_room_for_joiners_counts_the_members_removed() {
    let cfg = EngineConfig {
        max_members: 6,
        ..cfg()
    };
    let mut c = Cluster::new(5, 2, cfg);
    c.run_until_quiet(10_000);
    let (n4, n6) = (id(&c, 4), id(&c, 6));
    // +n5 in flight; then n4 crashes and n6 asks to join: the next update takes both.
    c.join(5, 0);
    while c.engines[0].next_update().is_none() {
        assert!(c.deliver_one(), "the mgr submits +n5");
    }
    c.crash(4);
    c.suspect(0, 4);
    c.join(6, 0);
    c.run_until_quiet(10_000);
    c.advance(3_000_000, 10_000);
    let u = c.engines[0].committed_update(3).expect("version 3");
    assert_eq!(u.removes, [n4]);
    assert_eq!(u.adds.iter().map(|m| m.id).collect::<Vec<_>>(), [n6]);
    assert!(c.agreed());
}

/// Catches `||` -> `&&` in `Engine::join`'s guard (`join.rs`): only an idle process
/// starts joining; a member asked to join stays a member and sends nothing.
#[test]
fn a_member_does_not_join_again() {
    let mut c = settled(3);
    let contact = *c.engines[0].me();
    let now = c.now;
    c.engines[1].join(now, &[contact]);
    assert_eq!(c.engines[1].status(), Status::Member);
    assert_eq!(c.engines[1].stats().sent[MsgKind::JoinReq as usize], 0);
}

/// Catches `2 * protocol_timeout_us` -> `+` in `outer_wait_us` and `rx.version <= x`
/// -> `>` in `on_outer_message` (`outer.rs`): a member bound to a reconfigurer waits
/// two protocol timeouts for it, acknowledges its R-sub of a version it already holds
/// (Ahead) and ignores one beyond the next version.
#[test]
fn a_member_bound_to_a_reconfigurer() {
    let mut c = settled(5);
    let n1 = id(&c, 1);
    c.crash(0);
    c.suspect(1, 0);
    while c.engines[2].leader() != Some(n1) {
        assert!(c.deliver_one(), "n1's R-int reaches n2");
    }
    let wait = 2 * cfg().protocol_timeout_us;
    assert_eq!(c.engines[2].outer_deadline(), Some(Time(c.now.0 + wait)));
    let rsub = |v: u64| {
        move |w: &mut Writer<'_>| {
            w.u64(v);
            w.update(&Update::with_capacity(1));
        }
    };
    let acks = |c: &Cluster| c.engines[2].stats().sent[MsgKind::RSubAck as usize];
    let before = acks(&c);
    assert_eq!(ignored_by(&mut c, 2, n1, MsgKind::RSub, rsub(1)), 0);
    assert_eq!(acks(&c), before + 1, "an Ahead resubmit is acknowledged");
    assert_eq!(ignored_by(&mut c, 2, n1, MsgKind::RSub, rsub(3)), 1);
    assert_eq!(acks(&c), before + 1);
}

/// Catches `Engine::poll_timeout -> Some(Default)` and the deleted `Status::Joining`
/// arm of `poll_timeout` (`mod.rs`): a member's next timer is a real time (its
/// detector's next heartbeat), not zero; an idle process has none; a joiner's is its
/// join retry.
#[test]
fn poll_timeout_is_a_real_deadline_or_none() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    let t = c.engines[1]
        .poll_timeout()
        .expect("a member's detector runs");
    assert_ne!(t, Time::default(), "a real deadline");
    assert_eq!(c.engines[3].poll_timeout(), None);
    c.join(3, 0);
    assert_eq!(
        c.engines[3].poll_timeout(),
        Some(c.now + cfg().join_retry_us),
        "the join retry"
    );
}

/// Catches `Engine::commit_path -> false` (`mod.rs`): the gossip of the leader's own
/// submit is adopted even when it names a majority (its suspicions include what it
/// removes, D18); no refusal, and the leader is not suspected.
#[test]
fn the_leaders_submit_gossip_is_adopted() {
    let mut c = settled(5);
    let (n0, n1, n3, n4) = (id(&c, 0), id(&c, 1), id(&c, 3), id(&c, 4));
    empty_msub_to_n2(&mut c, n0, &[n1, n3, n4]);
    assert_eq!(c.engines[2].stats().gossip_refused, 0);
    assert!(!c.engines[2].faulty().contains(&n0));
}

/// An R-int answer `state(ver, p, empty LastCommit)` reporting proposal `p`.
fn state_with(ver: u64, p: Proposal) -> impl FnOnce(&mut Writer<'_>) {
    move |w| w.state(ver, Some(&p), &Update::with_capacity(1))
}

/// A proposal for `version` by `initiator` (index `index`) removing `removes`.
fn proposal(version: u64, initiator: ProcessId, index: u32, removes: ProcessId) -> Proposal {
    let mut p = Proposal::with_capacity(4);
    p.version = version;
    p.initiator = initiator;
    p.initiator_index = index;
    p.update.removes.push(removes);
    p
}

/// Catches the comparison mutant of `keep_least_ranked` (`initiator.rs`, the shard 2/4
/// `>` -> `<`, mutation (a); on main the guard `p.initiator_index <= b.initiator_index`
/// -> `>=`): of two proposals for the next version reported in Phase I,
/// GetStableProposal keeps the one of the least-ranked initiator (largest index), in
/// either order of arrival, and the reconfigurer submits it.
#[test]
fn the_reconfigurer_submits_the_least_ranked_initiators_proposal() {
    for junior_first in [false, true] {
        let mut c = Cluster::new(5, 0, cfg());
        c.run_until_quiet(10_000);
        c.crash(0);
        c.set_cut_one_way(&[2, 3, 4], &[1], true);
        c.suspect(1, 0);
        let (n0, n2, n3, n4) = (id(&c, 0), id(&c, 2), id(&c, 3), id(&c, 4));
        let senior = proposal(2, n0, 0, n3);
        let junior = proposal(2, n2, 2, n4);
        let (a, b) = if junior_first {
            (junior, senior)
        } else {
            (senior, junior)
        };
        ignored_by(&mut c, 1, n2, MsgKind::RIntResp, state_with(1, a));
        ignored_by(&mut c, 1, n3, MsgKind::RIntResp, state_with(1, b));
        ignored_by(&mut c, 1, n4, MsgKind::RIntResp, state(1));
        assert_eq!(c.engines[1].status(), Status::Member);
        let p = c.engines[1]
            .next_update()
            .expect("the reconfigurer's submit");
        assert_eq!(p.version, 2);
        assert_eq!(p.update.removes, [n4], "junior first: {junior_first}");
    }
}

/// Catches `senior_to_me` `i < me` -> `i <= me` (`mod.rs`): an R-int that names this
/// process itself as the reconfigurer does not come from a more senior member, so it
/// is not followed: the process stops (Superseded), as for a junior's R-int.
#[test]
fn an_rint_from_this_process_itself_is_not_from_a_senior() {
    assert_rint_at_n1_from_supersedes(1);
}

/// Catches `collecting && answered(i)` -> `||` in `in_minority_with` (`mod.rs`): an
/// initiator collecting acknowledgements counts only the members that answered, not
/// every member, so a suspicion that leaves it short of a majority is still ignored.
#[test]
fn a_collecting_mgr_ignores_a_suspicion_that_leaves_it_in_a_minority() {
    let mut c = settled(5);
    c.crash(4);
    c.suspect(0, 4);
    assert!(c.engines[0].next_update().is_some(), "submitting -n4");
    let ignored = c.engines[0].stats().suspicions_ignored;
    // No acknowledgement delivered yet: n0, n1, n2 are a majority, n0, n1 are not.
    c.suspect(0, 3);
    assert_eq!(c.engines[0].stats().suspicions_ignored, ignored);
    c.suspect(0, 2);
    assert_eq!(c.engines[0].stats().suspicions_ignored, ignored + 1);
}

/// Catches `role == Initiator && init.collecting()` -> `||` in `in_minority_with`
/// (`mod.rs`): an idle mgr does not count the answers of its last, finished phase, so
/// a batch of suspicions that would leave it in a minority is cut short.
#[test]
fn an_idle_mgr_does_not_count_the_answers_of_its_last_update() {
    let mut c = settled(5);
    c.crash(4);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 2);
    let (n1, n2) = (id(&c, 1), id(&c, 2));
    let ignored = c.engines[0].stats().suspicions_ignored;
    let now = c.now;
    // View n0..n3: n0, n2, n3 are a majority, n0, n3 are not.
    c.engines[0].suspect_all(now, &[n1, n2]);
    c.flush(0);
    assert_eq!(c.engines[0].stats().suspicions_ignored, ignored + 1);
}

/// Catches `delete !` in `!ahead.same_as(last)` in `record_state` (`initiator.rs`,
/// shard 2/4 `initiator.rs:136`): two answers one version ahead that report the same
/// LastCommit agree (Theorem 5.1 holds); the reconfigurer submits that value
/// instead of stopping.
#[test]
fn two_answers_ahead_with_the_same_last_commit_agree() {
    let mut c = settled(5);
    c.crash(0);
    c.set_cut_one_way(&[2, 3, 4], &[1], true);
    c.suspect(1, 0);
    let (n0, n2, n3, n4) = (id(&c, 0), id(&c, 2), id(&c, 3), id(&c, 4));
    let ahead = |w: &mut Writer<'_>| {
        let mut last = Update::with_capacity(1);
        last.removes.push(n0);
        w.state(2, None, &last);
    };
    ignored_by(&mut c, 1, n2, MsgKind::RIntResp, ahead);
    ignored_by(&mut c, 1, n3, MsgKind::RIntResp, ahead);
    ignored_by(&mut c, 1, n4, MsgKind::RIntResp, state(1));
    assert_eq!(c.engines[1].status(), Status::Member);
    let p = c.engines[1].next_update().expect("submits the value ahead");
    assert_eq!(p.version, 2);
    assert_eq!(p.update.removes, [n0]);
}

/// Catches `self_addressed[RIntResp] += 1` -> `*=` (`initiator.rs`,
/// `start_reconfiguration`): the reconfigurer's own state(r), folded in without a
/// message, is counted as a self-addressed R-int answer.
#[test]
fn a_reconfigurers_own_state_is_counted_as_self_addressed() {
    let mut c = settled(5);
    let k = MsgKind::RIntResp as usize;
    let before = c.engines[1].stats().self_addressed[k];
    c.crash(0);
    c.suspect(1, 0);
    assert_eq!(c.engines[1].stats().reconfigurations, 1);
    assert_eq!(c.engines[1].stats().self_addressed[k], before + 1);
}

/// Catches `s.ver > x + 1` -> `==` in `on_rint` (`outer.rs`, shard 2/4
/// `outer.rs:114:25`): a member more than one version behind a senior reconfigurer
/// cannot catch up safely (Prop. 5.1 says it cannot happen) and stops.
#[test]
fn an_rint_two_versions_ahead_stops_the_member() {
    let mut c = settled(5);
    let n0 = id(&c, 0);
    ignored_by(&mut c, 1, n0, MsgKind::RInt, state(3));
    assert_eq!(
        c.engines[1].status(),
        Status::Excluded(ExcludeReason::Superseded)
    );
}

/// Catches `now < due` -> `now <= due` in `outer_timeout` (`outer.rs`, shard 2/4
/// `outer.rs:194`): a member bound to a reconfigurer suspects it at its deadline,
/// not one tick later (and not before).
#[test]
fn a_bound_member_suspects_its_reconfigurer_at_the_deadline() {
    // The ring detector stays quiet for the whole wait: only the outer timeout acts.
    let mut c = quiet_cluster(5, 0);
    let n1 = id(&c, 1);
    c.crash(0);
    c.suspect(1, 0);
    while c.engines[2].leader() != Some(n1) {
        assert!(c.deliver_one(), "n1's R-int reaches n2");
    }
    c.crash(1);
    let due = c.engines[2].outer_deadline().expect("bound to n1");
    c.engines[2].handle_timeout(Time(due.0 - 1));
    c.flush(2);
    assert!(
        !c.engines[2].faulty().contains(&n1),
        "not before the deadline"
    );
    c.engines[2].handle_timeout(due);
    c.flush(2);
    assert!(c.engines[2].faulty().contains(&n1), "at the deadline");
}

/// Three founders and three joiners: n3's request starts an update at once, n4 and n5
/// are added together next, and n5 never answers the State-Xfer (its link to the mgr is
/// cut). The ring detector stays quiet: only the protocol timeout acts. Returns the
/// cluster and n4, n5.
fn three_joiners_n5_silent() -> (Cluster, ProcessId, ProcessId) {
    let mut c = quiet_cluster(3, 3);
    let (n4, n5) = (id(&c, 4), id(&c, 5));
    c.join(3, 0);
    c.join(4, 0);
    c.join(5, 0);
    let jr = MsgKind::JoinReq as usize;
    while c.engines[0].stats().received[jr] < 3 {
        assert!(c.deliver_one(), "the join requests reach the mgr");
    }
    c.set_cut_one_way(&[5], &[0], true);
    c.run_until_quiet(10_000);
    (c, n4, n5)
}

/// Catches `delete !` in `!responded[i]` of the State-Xfer timeout in
/// `initiator_timeout` (`initiator.rs`, shard 2/4 `initiator.rs:683`): when the
/// State-Xfer handshake times out, the mgr suspects the joiner that did not answer,
/// not the one that did.
#[test]
fn a_state_xfer_timeout_suspects_only_the_silent_joiner() {
    let (mut c, n4, n5) = three_joiners_n5_silent();
    c.advance(5_000_000, 10_000);
    let adds = |v: u64| c.engines[0].committed_update(v).map(|u| u.adds.len());
    assert_eq!(
        (adds(2), adds(3)),
        (Some(1), Some(2)),
        "n4 and n5 in one update"
    );
    assert!(c.engines[0].view().contains(n4), "n4 answered");
    assert!(!c.engines[0].faulty().contains(&n4));
    assert!(!c.engines[0].view().contains(n5), "n5 did not");
}

/// Catches the version guard of the State-Xfer arm of `on_response` (`initiator.rs`,
/// shard 2/4 `initiator.rs:370`: `rx.version == view.version` -> `true` or `!=`): an
/// ack(State-Xfer) for another version does not count as the joiner's answer, so the
/// silent joiner is still removed at the timeout.
#[test]
fn a_state_xfer_ack_of_another_version_is_not_an_answer() {
    let (mut c, n4, n5) = three_joiners_n5_silent();
    assert_eq!(
        c.engines[0].view().version,
        3,
        "n4 and n5 added, State-Xfer sent"
    );
    let stale = |w: &mut Writer<'_>| {
        w.u64(2);
        w.state(3, None, &Update::with_capacity(1));
    };
    assert_eq!(ignored_by(&mut c, 0, n5, MsgKind::StateXferAck, stale), 1);
    c.advance(5_000_000, 10_000);
    assert!(c.engines[0].view().contains(n4));
    assert!(
        !c.engines[0].view().contains(n5),
        "n5 never answered for version 3"
    );
}

/// Hands engine `to` a heartbeat from `from` that says its sender is at view version
/// `sender_version`, at time `at`; returns how many catch-up commits (D27) `to` sent.
fn catch_ups_for(
    c: &mut Cluster,
    to: usize,
    from: ProcessId,
    sender_version: u64,
    at: Time,
) -> u64 {
    let before = c.engines[to].stats();
    let (offers, mcoms) = (before.catch_ups_sent, before.sent[MsgKind::MCom as usize]);
    let mut buf = Vec::new();
    Writer::start(&mut buf, MsgKind::Heartbeat, sender_version, &[]);
    c.engines[to]
        .handle_message(at, from, &buf)
        .expect("a well-formed message");
    c.flush(to);
    let after = c.engines[to].stats();
    assert_eq!(
        after.sent[MsgKind::MCom as usize] - mcoms,
        after.catch_ups_sent - offers,
        "each catch-up offer is one M-com"
    );
    after.catch_ups_sent - offers
}

/// Catches the guard and counter mutants of `Engine::offer_catch_up` (`mod.rs`, D27):
/// `now < catch_up_at` -> `==`, `>`, `<=`, both `||` -> `&&`, and
/// `catch_ups_sent += 1` -> `*=`. A member that hears a member of its view still at
/// the version before offers it the commit of its view not before a protocol timeout
/// after the install (exactly then, not a microsecond later), at most once per
/// heartbeat interval, each offer counted; and never for a view not formed by a commit
/// (a founded view has no commit to send).
#[test]
fn a_catch_up_is_offered_after_a_protocol_timeout_once_per_heartbeat_interval() {
    let cfg = cfg();
    let (pt, hb) = (cfg.protocol_timeout_us, cfg.heartbeat_interval_us);
    // A founded view: nothing to offer, even long after the install.
    let mut c = Cluster::new(5, 0, cfg.clone());
    c.run_until_quiet(10_000);
    let n1 = id(&c, 1);
    let late = c.now + 10 * pt;
    assert_eq!(catch_ups_for(&mut c, 2, n1, 0, late), 0, "founded view");

    // v2, committed by the mgr at `t0` (no clock moves while it runs).
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    c.crash(4);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[2].view().version, 2);
    let (n1, t0) = (id(&c, 1), c.now);
    // Too early: the commit may still be on its way.
    assert_eq!(catch_ups_for(&mut c, 2, n1, 1, t0), 0, "at the install");
    assert_eq!(catch_ups_for(&mut c, 2, n1, 1, t0 + (pt - 1)), 0);
    // Due exactly a protocol timeout after the install.
    assert_eq!(
        catch_ups_for(&mut c, 2, n1, 1, t0 + pt),
        1,
        "at the deadline"
    );
    // Then once per heartbeat interval.
    assert_eq!(catch_ups_for(&mut c, 2, n1, 1, t0 + pt), 0, "just offered");
    assert_eq!(catch_ups_for(&mut c, 2, n1, 1, t0 + (pt + hb - 1)), 0);
    assert_eq!(catch_ups_for(&mut c, 2, n1, 1, t0 + (pt + hb)), 1);
    assert_eq!(c.engines[2].stats().catch_ups_sent, 2);
    // A member at the same version is offered nothing.
    assert_eq!(catch_ups_for(&mut c, 2, n1, 2, t0 + 10 * pt), 0);
}

/// Catches `Engine::note_removed -> ()` and its `&& -> ||` mutant (`mod.rs`): the
/// node core's report of a process a recovered view removed is remembered (finality),
/// unless it is this process or a member of the current view.
#[test]
fn note_removed_remembers_only_non_members() {
    let mut c = settled(3);
    let (n0, n1) = (id(&c, 0), id(&c, 1));
    let gone = ProcessId::named("gone", 1);
    c.engines[0].note_removed(gone);
    c.engines[0].note_removed(n1);
    c.engines[0].note_removed(n0);
    assert!(c.engines[0].removed.contains(&gone));
    assert!(!c.engines[0].removed.contains(&n1), "n1 is a member");
    assert!(!c.engines[0].removed.contains(&n0), "n0 is this process");
}

/// Catches `Role::is_outer -> true` (`mod.rs`): the mgr is no outer member, so a
/// State-Xfer for its own view (from a member: an initiator's message it never waits
/// for) is ignored, not answered as Figure 4's member added by an earlier initiator;
/// it stays the mgr and still removes a crashed member.
#[test]
fn the_mgr_does_not_answer_a_state_xfer_as_an_outer_member() {
    let mut c = settled(5);
    let (n0, n1, n4) = (id(&c, 0), id(&c, 1), id(&c, 4));
    let empty = Update::with_capacity(1);
    let members: Vec<_> = c.engines[0].view().members.clone();
    let acks = MsgKind::StateXferAck as usize;
    assert_eq!(
        ignored_by(&mut c, 0, n1, MsgKind::StateXfer, |w| {
            w.u64(1);
            w.update(&empty);
            w.members(&members);
            w.u16(0); // no view tags
            w.bytes(b"");
        }),
        1
    );
    assert_eq!(c.engines[0].stats().sent[acks], 0, "no State-Xfer ack");
    assert_eq!(c.engines[0].leader(), Some(n0));
    c.crash(4);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    assert!(!c.engines[0].view().contains(n4));
}

/// Catches the `&& -> ||` mutant of `note_faulty(now, p) && first.is_none()` in
/// `suspect_all` (`mod.rs`): a batch that holds no new suspicion (a process outside
/// the view, this process itself) changes nothing; an outer member does not gossip
/// it to its mgr.
#[test]
fn a_batch_with_no_new_suspicion_changes_nothing() {
    let mut c = settled(5);
    let n2 = id(&c, 2);
    let before = *c.engines[2].stats();
    let now = c.now;
    c.engines[2].suspect_all(now, &[ProcessId::named("stranger", 1), n2]);
    c.flush(2);
    let after = *c.engines[2].stats();
    let hb = MsgKind::Heartbeat as usize;
    assert_eq!(after.sent[hb], before.sent[hb], "no gossip heartbeat");
    assert!(c.engines[2].faulty().is_empty());
    assert!(c.events[2]
        .iter()
        .all(|e| !matches!(e, Event::Suspected { .. })));
}

/// Catches the `&& -> ||` mutant of `status == Member && role.is_outer()` in
/// `suspect_all`'s outer loop (`mod.rs`): once the batch made this process the
/// reconfigurer, the rest of the batch is not handled as an outer member's, even a
/// name the reconfigurer now leads itself (this process: mutated, it starts its
/// reconfiguration a second time).
#[test]
fn a_reconfigurer_does_not_reconfigure_again_for_the_rest_of_its_batch() {
    let mut c = settled(5);
    let (n0, n1) = (id(&c, 0), id(&c, 1));
    c.crash(0);
    let now = c.now;
    c.engines[1].suspect_all(now, &[n0, n1]);
    assert_eq!(c.engines[1].stats().reconfigurations, 1);
    c.flush(1);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(1), ["n1", "n2", "n3", "n4"]);
    c.check_safety().unwrap();
}

/// Catches the `|| -> &&` mutant of `cut_off_by_beliefs(now) || withheld_too_long(now)`
/// in `handle_timeout` (`mod.rs`, D24 rule 7) and `withheld_too_long`'s own (`-> false`,
/// `> MAX_WITHHOLD` -> `==`, `>=`, `m.id != me` -> `==`, `delete !`; `health.rs`): a
/// member that hears one other member but no majority (inbound cut from the rest, the
/// member it watches included) stops once it has withheld more than `MAX_WITHHOLD`
/// suspicions in a row, though no other path reaches it (its beliefs are not what cuts
/// it off).
#[test]
fn a_member_hearing_a_minority_stops_after_max_withhold_suspicions() {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let timeout = cfg.suspect_timeout_us;
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    let q = c.engines[4].detector.watched().expect("n4 watches someone");
    let keep = (0..4).find(|&j| id(&c, j) != q).unwrap();
    let cut: Vec<usize> = (0..4).filter(|&j| j != keep).collect();
    c.set_cut_one_way(&cut, &[4], true);
    let since = c.now.0;
    let limit = (4 + u64::from(crate::engine::MAX_WITHHOLD)) * timeout;
    while c.engines[4].status() == Status::Member {
        assert!(
            c.now.0 - since < limit,
            "n4 still withholds after {limit} us"
        );
        c.advance(10_000, 10_000);
    }
    assert_eq!(
        c.engines[4].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
    assert!(c.engines[4].withheld_suspicions() > crate::engine::MAX_WITHHOLD);
}

/// Catches the `&& -> ||` mutant of `role == Initiator && init.is_mgr()` in
/// `on_leave_request`, `Engine::add_faulty -> ()`, and `dropped_from_faulty += 1` ->
/// `*=` in `dispatch` (`mod.rs`): a leave request reaching a member that is not the
/// mgr is `faulty_p(sender)` (an outer member's initiator record still says mgr: the
/// role decides), not a leaver recorded; from then on the sender's messages are
/// dropped, each counted.
#[test]
fn a_leave_request_at_an_outer_member_is_a_suspicion_of_its_sender() {
    let mut c = settled(5);
    let n3 = id(&c, 3);
    ignored_by(&mut c, 2, n3, MsgKind::LeaveReq, |_| {});
    assert_eq!(c.engines[2].faulty(), [n3]);
    assert!(c.engines[2].leavers.is_empty());
    let dropped = c.engines[2].stats().dropped_from_faulty;
    ignored_by(&mut c, 2, n3, MsgKind::Heartbeat, |_| {});
    ignored_by(&mut c, 2, n3, MsgKind::Heartbeat, |_| {});
    assert_eq!(c.engines[2].stats().dropped_from_faulty, dropped + 2);
}

/// Catches `Heard::installed -> ()` (`health.rs`, D24): installing a view ends a
/// withholding: the count of suspicions withheld in a row starts again from zero (else
/// rule 7's `MAX_WITHHOLD` would count the silences of earlier views).
#[test]
fn a_view_installed_resets_the_withheld_suspicions() {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let timeout = cfg.suspect_timeout_us;
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[0, 1, 2, 3], &[4], true);
    c.advance(4 * timeout, 10_000);
    assert_eq!(c.engines[4].status(), Status::Member);
    assert!(c.engines[4].withheld_suspicions() >= 2, "n4 withholds");
    c.set_cut_one_way(&[0, 1, 2, 3], &[4], false);
    c.crash(3);
    c.suspect(0, 3);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(4), ["n0", "n1", "n2", "n4"]);
    assert_eq!(c.engines[4].withheld_suspicions(), 0);
}

/// Catches the `|| -> &&` mutant of `|| !self.view.contains(p)` in
/// `Engine::member_alive` (`health.rs`): as for `peer_alive`, another path's sign of
/// life from a process outside the view is ignored; noted, it would take room in the
/// heard table meant for the members (D21).
#[test]
fn other_paths_signs_of_life_of_non_members_leave_room_for_the_members() {
    let cfg = EngineConfig {
        local_health: true,
        max_members: 3,
        ..cfg()
    };
    let mut c = Cluster::new(3, 0, cfg);
    let (n1, n2) = (id(&c, 1), id(&c, 2));
    let now = c.now;
    for k in 1..=3 {
        assert!(!c.engines[0].member_alive(now, ProcessId::named("stranger", k)));
    }
    assert!(!c.engines[0].member_alive(now, n1));
    c.suspect(0, 2);
    assert_eq!(c.engines[0].stats().suspicions_ignored, 0);
    assert_eq!(c.engines[0].faulty(), [n2], "n0 hears n1 and itself");
}

/// Suspect timeouts of n4, cut off from everyone's messages (local health on), until
/// it has withheld exactly `withheld` suspicions; returns the cluster.
fn n4_deaf_until_withheld(withheld: u32) -> Cluster {
    let cfg = EngineConfig {
        local_health: true,
        ..cfg()
    };
    let mut c = Cluster::new(5, 0, cfg);
    c.run_until_quiet(10_000);
    c.set_cut_one_way(&[0, 1, 2, 3], &[4], true);
    for _ in 0..10_000 {
        if c.engines[4].withheld_suspicions() >= withheld {
            break;
        }
        c.advance(10_000, 10_000);
    }
    assert_eq!(c.engines[4].withheld_suspicions(), withheld);
    assert_eq!(c.engines[4].status(), Status::Member);
    c
}

/// Catches `unverified < MAX_POSTPONE` -> `<=` and the `&& -> ||` mutant of
/// `!is_faulty(m) && heard_since(m)` in `Engine::cut_off_by_beliefs` (`health.rs`, D24
/// rule 7): a member that has withheld exactly `MAX_POSTPONE` suspicions stops as soon
/// as a majority of its view runs and reaches it while the members it trusts are no
/// majority; a member heard but since believed faulty is not trusted.
#[test]
fn cut_off_by_beliefs_after_max_postpone_withheld_suspicions() {
    let mut c = n4_deaf_until_withheld(crate::engine::MAX_POSTPONE);
    let (n1, n2) = (id(&c, 1), id(&c, 2));
    let now = c.now;
    // Heard from n1 and n2 (by other paths), trusted: a majority, not cut off.
    assert!(!c.engines[4].member_alive(now, n1));
    assert!(!c.engines[4].member_alive(now, n2));
    assert_eq!(c.engines[4].status(), Status::Member);
    // Then believed faulty (after a split, say): still heard, no longer trusted.
    c.engines[4].add_faulty_for_test(n1);
    c.engines[4].add_faulty_for_test(n2);
    assert!(c.engines[4].member_alive(now, n1), "it stops");
    assert_eq!(
        c.engines[4].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
}

/// Catches `Engine::stop_withholding -> false` (`health.rs`, D24 rule 5): a member
/// that withholds its suspicions stops when told its group is being recovered without
/// it, and says so.
#[test]
fn a_withholding_member_stops_withholding_by_stopping() {
    let mut c = n4_deaf_until_withheld(1);
    let now = c.now;
    assert!(c.engines[4].withholding(now));
    assert!(c.engines[4].stop_withholding(now));
    assert_eq!(
        c.engines[4].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
}

/// Catches `max_members - (len - removes)` -> `+` in `get_update` (`initiator.rs`): a
/// joiner queued while the view is full waits (no update adds it), and the update that
/// makes room adds it.
#[test]
fn a_joiner_waits_while_the_view_is_full() {
    let cfg = EngineConfig {
        max_members: 4,
        ..cfg()
    };
    let mut c = Cluster::new(4, 1, cfg);
    c.run_until_quiet(10_000);
    c.join(4, 0);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 1, "no room: no update");
    assert_eq!(c.engines[4].status(), Status::Joining);
    c.crash(3);
    c.suspect(0, 3);
    c.run_until_quiet(10_000);
    c.advance(1_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n4"]);
    assert_eq!(c.engines[4].status(), Status::Member);
    c.check_safety().unwrap();
}

/// Catches `delete !` in `if !piggyback` of `finish_commit` (`initiator.rs`): with
/// commit-submit compression the next submit rides on the commit and is not sent
/// again on its own; without it, it is sent on its own after the commit.
#[test]
fn the_next_submit_is_sent_once_with_or_without_compression() {
    for compression in [true, false] {
        let cfg = EngineConfig {
            compression,
            ..cfg()
        };
        let mut c = Cluster::new(5, 0, cfg);
        c.run_until_quiet(10_000);
        c.crash(4);
        c.suspect(0, 4);
        // While v2 (-n4) waits for its acks, n3 crashes: v3 (-n3) is the next submit.
        c.crash(3);
        c.suspect(0, 3);
        c.run_until_quiet(10_000);
        assert_eq!(c.view_names(0), ["n0", "n1", "n2"], "{compression}");
        assert!(c.agreed());
        let sub = MsgKind::MSub as usize;
        // v2's M-sub to n1, n2, n3; v3's to n1, n2 unless it rode on v2's M-com.
        let (sent, at_n1) = if compression { (3, 1) } else { (5, 2) };
        assert_eq!(c.engines[0].stats().sent[sub], sent, "{compression}");
        assert_eq!(c.engines[1].stats().received[sub], at_n1, "{compression}");
    }
}

/// Catches the mutants of `replaces_a_member` in `on_join_request` (`join.rs`, D24
/// rule 5: `m.id.node == joiner.id.node && m.id.incarnation < joiner.id.incarnation`,
/// `==` -> `!=`, `&&` -> `||`, `<` -> `==`, `>`): a withholding member that hears a
/// join request from a newer incarnation of a member of its view stops; one from a new
/// node (of any incarnation) or from an older incarnation changes nothing.
#[test]
fn a_withholding_member_stops_when_a_member_rejoins_as_a_newer_incarnation() {
    let mut c = n4_deaf_until_withheld(1);
    let m = crate::testkit::member_of;
    join_request_to(&mut c, 4, m(9, 2));
    join_request_to(&mut c, 4, m(1, 0));
    assert_eq!(c.engines[4].status(), Status::Member, "nothing replaced");
    assert!(c.engines[4].withholding(c.now));
    join_request_to(&mut c, 4, m(1, 2));
    assert_eq!(
        c.engines[4].status(),
        Status::Excluded(ExcludeReason::IsolatedMinority)
    );
}

/// Catches `check_invariants -> Ok(())`, its leader guard -> `true`, the `|| -> &&`
/// mutant of its excluded branch and `debug_check_invariants -> ()`
/// (`invariants.rs`): shown a broken state (set up by hand), the checker names the
/// invariant broken, and in debug builds a broken invariant stops the run.
#[test]
fn the_invariant_checker_names_what_is_broken() {
    let mut c = settled(3);
    let (n0, now) = (id(&c, 0), c.now);
    let stranger = ProcessId::named("stranger", 1);
    // The mgr (an initiator) following a process outside its view.
    assert_eq!(c.engines[0].check_invariants(), Ok(()));
    c.engines[0].leader = Some(stranger);
    assert_eq!(
        c.engines[0].check_invariants(),
        Err("a member follows a leader of its view")
    );
    // An outer member may (a mgr that just committed its own removal, D9).
    c.engines[1].leader = Some(stranger);
    assert_eq!(c.engines[1].check_invariants(), Ok(()));
    // An excluded process that still follows someone.
    c.engines[2].exclude(now, ExcludeReason::Removed);
    assert_eq!(c.engines[2].check_invariants(), Ok(()));
    c.engines[2].leader = Some(n0);
    assert_eq!(
        c.engines[2].check_invariants(),
        Err("an excluded process follows nobody and leads nothing")
    );
    let e = &c.engines[2];
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        e.debug_check_invariants();
    }));
    // Release builds (`cargo test --release`) check nothing on the path.
    assert_eq!(
        stopped.is_err(),
        cfg!(debug_assertions),
        "a broken invariant panics in debug builds (only)"
    );
}

/// Catches `delete !` in `outer_timeout`'s Wait-Reconfiguration arm (`outer.rs`, D10):
/// at its deadline a waiting member suspects the most senior member it does not yet
/// believe faulty (the one expected to initiate), and then initiates itself.
#[test]
fn a_waiting_member_suspects_the_expected_reconfigurer_at_the_deadline() {
    // The ring detector stays quiet for the whole wait: only the outer timeout acts.
    let mut c = quiet_cluster(5, 0);
    let (n0, n1) = (id(&c, 0), id(&c, 1));
    c.crash(0);
    c.crash(1);
    c.suspect(2, 0);
    assert_eq!(c.engines[2].faulty(), [n0]);
    let due = c.engines[2].outer_deadline().expect("n2 waits for n1");
    c.engines[2].handle_timeout(due);
    c.flush(2);
    assert_eq!(c.engines[2].faulty(), [n0, n1]);
    assert_eq!(c.engines[2].stats().reconfigurations, 1);
}

/// Catches the `&& -> ||` mutant of `role.is_outer() && leader == Some(from)` after a
/// commit in `on_outer_message` (`outer.rs`, D9): when the mgr's commit removes the mgr
/// and the next mgr is already believed faulty, the member's wait for a
/// reconfiguration that `commit` started stands (mutated, it follows the faulty mgr
/// with no deadline).
#[test]
fn a_commit_that_hands_over_to_a_faulty_mgr_leaves_the_member_waiting() {
    let mut c = settled(5);
    let (n0, n1) = (id(&c, 0), id(&c, 1));
    c.engines[3].add_faulty_for_test(n1);
    let mut u = Update::with_capacity(1);
    u.removes.push(n0);
    assert_eq!(
        ignored_by(&mut c, 3, n0, MsgKind::MCom, |w| {
            w.u64(2);
            w.update(&u);
            w.flag(false);
        }),
        0
    );
    assert_eq!(c.view_names(3), ["n1", "n2", "n3", "n4"]);
    assert_eq!(c.engines[3].leader(), Some(n1));
    assert!(
        c.engines[3].outer_deadline().is_some(),
        "waits for n2's reconfiguration"
    );
}

/// Catches the `&& -> ||` mutant of `p.version == x + 1 && p.update.same_as(..)` and
/// `ignored += 1` -> `-=`, `*=` in `on_catch_up` (`outer.rs`, D27): a member takes a
/// commit from a member other than its leader only if it is the proposal it
/// acknowledged; another one is ignored, and counted.
#[test]
fn a_catch_up_other_than_the_acknowledged_proposal_is_ignored() {
    let mut c = settled(5);
    let (n1, n3, n4) = (id(&c, 1), id(&c, 3), id(&c, 4));
    c.crash(4);
    c.suspect(0, 4);
    while c.engines[2].next_update().is_none() {
        assert!(c.deliver_one(), "the M-sub reaches n2");
    }
    let commit = |u: Update| {
        move |w: &mut Writer<'_>| {
            w.u64(2);
            w.update(&u);
            w.flag(false);
        }
    };
    let mut other = Update::with_capacity(1);
    other.removes.push(n1);
    assert_eq!(ignored_by(&mut c, 2, n3, MsgKind::MCom, commit(other)), 1);
    assert_eq!(c.engines[2].view().version, 1);
    let mut acked = Update::with_capacity(1);
    acked.removes.push(n4);
    assert_eq!(ignored_by(&mut c, 2, n3, MsgKind::MCom, commit(acked)), 0);
    assert_eq!(c.view_names(2), ["n0", "n1", "n2", "n3"]);
    assert_eq!(c.engines[2].stats().catch_ups, 1);
}

/// Catches `Engine::tags -> Default`, `tags_deadline -> None` and the `|| -> &&`
/// mutant of `status != Member || leaving` in `request_tags` (`tags.rs`): a member
/// reports the tags it wants, asks the driver for a timeout at its retry, and a
/// member that is leaving asks for no tags.
#[test]
fn a_member_reports_its_wanted_tags_and_their_retry_but_a_leaver_asks_for_none() {
    // Heartbeats far apart: the tag retry is the member's next deadline.
    let cfg = EngineConfig {
        heartbeat_interval_us: 5_000_000,
        suspect_timeout_us: 10_000_000,
        ..cfg()
    };
    let timeout = cfg.protocol_timeout_us;
    let mut c = Cluster::new(3, 0, cfg);
    c.run_until_quiet(10_000);
    c.advance(10_000, 10_000); // the first heartbeats
    let db = tag_set(&[("role", "db")]);
    let tag_req = MsgKind::TagReq as usize;
    let now = c.now;
    c.engines[2].set_tags(now, &db).unwrap();
    c.flush(2);
    assert_eq!(c.engines[2].tags().as_bytes(), &db[..]);
    assert_eq!(c.engines[2].stats().sent[tag_req], 1);
    assert_eq!(
        c.engines[2].poll_timeout(),
        Some(now + timeout),
        "the retry"
    );
    // A leaver.
    c.leave(1);
    c.engines[1].set_tags(now, &db).unwrap();
    c.flush(1);
    assert_eq!(c.engines[1].stats().sent[tag_req], 0);
    assert_eq!(c.engines[1].tags_deadline(), None);
}

/// Catches `Engine::pending_tag_changes -> 0` (`tags.rs`): a tag request reaching a
/// busy mgr is queued for its next update, and counted as pending until then.
#[test]
fn a_busy_mgr_reports_its_pending_tag_changes() {
    let mut c = settled(5);
    c.crash(4);
    // n0 waits for a majority of acks: n2's alone reaches it.
    c.set_cut_one_way(&[1, 3], &[0], true);
    c.suspect(0, 4);
    let now = c.now;
    c.engines[2]
        .set_tags(now, &tag_set(&[("role", "db")]))
        .unwrap();
    c.flush(2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 1, "still busy");
    assert_eq!(c.engines[0].pending_tag_changes(), 1);
    c.set_cut_one_way(&[1, 3], &[0], false);
    c.advance(3_000_000, 10_000);
    assert_eq!(c.engines[0].pending_tag_changes(), 0);
    assert_eq!(
        c.engines[0].view().tags_of(id(&c, 2)).get("role"),
        Some("db")
    );
}

/// Catches both `&& -> ||` mutants of `take_tag_changes`' filter (`tags.rs`): a tag
/// request that would change nothing (the view already shows those tags) is dropped:
/// no update follows.
#[test]
fn a_tag_request_that_changes_nothing_makes_no_update() {
    let mut c = settled(3);
    let n2 = id(&c, 2);
    let db = tag_set(&[("role", "db")]);
    let now = c.now;
    c.engines[2].set_tags(now, &db).unwrap();
    c.flush(2);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 2);
    assert_eq!(c.engines[0].view().tags_of(n2).get("role"), Some("db"));
    assert_eq!(
        ignored_by(&mut c, 0, n2, MsgKind::TagReq, |w| w.tags(&db)),
        0
    );
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 2, "nothing to change");
    assert_eq!(c.engines[0].pending_tag_changes(), 0);
}

/// Catches `p.node != joiner.node` -> `==` in `queue_joiner_tags` and `m.id == p` ->
/// `!=` in `take_tag_changes`' retain (`tags.rs`): the tags of every queued joiner
/// are kept while it waits (for room in the view), whatever else is queued or taken.
#[test]
fn queued_joiners_keep_their_tags_while_they_wait_for_room() {
    let cfg = EngineConfig {
        max_members: 5,
        ..cfg()
    };
    let mut c = Cluster::new(5, 2, cfg);
    c.run_until_quiet(10_000);
    let (n5, n6) = (id(&c, 5), id(&c, 6));
    let now = c.now;
    c.engines[5]
        .set_tags(now, &tag_set(&[("role", "a")]))
        .unwrap();
    c.engines[6]
        .set_tags(now, &tag_set(&[("role", "b")]))
        .unwrap();
    c.join(5, 0);
    c.join(6, 0);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[0].view().version, 1, "no room yet");
    c.crash(3);
    c.crash(4);
    c.suspect(0, 3);
    c.suspect(0, 4);
    c.run_until_quiet(10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n5", "n6"]);
    // Each joiner's tags come with the update that adds it (not from its own request
    // once a member, which would mend a loss later).
    for (v, joiner, role) in [(2, n5, "a"), (3, n6, "b")] {
        let u = c.engines[0].committed_update(v).expect("committed");
        assert_eq!(u.adds.iter().map(|m| m.id).collect::<Vec<_>>(), [joiner]);
        let t = u.tags.get(joiner).expect("the joiner's tags in its update");
        assert_eq!(t.get("role"), Some(role), "v{v}");
    }
}

/// Catches `!tags.is_empty() && ..` -> `||` in `queue_joiner_tags` (`tags.rs`): a
/// joiner without tags brings no tag entry into the update that adds it, nor into the
/// view.
#[test]
fn a_joiner_without_tags_adds_no_tag_entry() {
    let mut c = Cluster::new(3, 1, cfg());
    c.run_until_quiet(10_000);
    c.join(3, 0);
    c.run_until_quiet(10_000);
    c.advance(1_000_000, 10_000);
    assert_eq!(c.view_names(0), ["n0", "n1", "n2", "n3"]);
    let u = c.engines[0].committed_update(2).expect("v2 adds n3");
    assert!(u.tags.is_empty());
    assert!(c.engines[0].view().tags.is_empty());
}

/// `awaits_answer` is true exactly while a round this process takes part in is open:
/// the mgr from its M-sub until the commit, a member from its acknowledgement (or its
/// own suspicion of a member other than its mgr, which it reports) until the M-com;
/// false for a quiet group (the suspect being removed is not checked: it never hears
/// of the round). `open_round` names the round by the version it started from.
#[test]
fn a_round_is_awaited_from_the_submit_or_the_ack_until_the_commit() {
    let mut c = settled(4);
    let open = |c: &Cluster| {
        (0..4)
            .map(|i| c.engines[i].awaits_answer())
            .collect::<Vec<_>>()
    };
    assert_eq!(open(&c), [false; 4], "a quiet group awaits nothing");
    let x = c.engines[0].view().version;
    c.suspect(0, 3);
    c.flush(0);
    assert_eq!(
        open(&c),
        [true, false, false, false],
        "the mgr's M-sub is out"
    );
    // The M-sub reaches n1 and n2 (n3, suspected, is cut off by Disconnect anyway).
    let mut acked = 0;
    while acked < 2 && c.deliver_one() {
        acked = (1..3).filter(|&i| c.engines[i].awaits_answer()).count();
    }
    assert_eq!(open(&c)[..3], [true, true, true], "both acknowledged");
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].view().version, x + 1);
    assert_eq!(
        open(&c)[..3],
        [false, false, false],
        "committed: nothing awaited"
    );
    // An outer member's own suspicion: it awaits the M-sub that acts on its report.
    c.suspect(1, 2);
    assert_eq!(open(&c)[..3], [false, true, false], "n1 reported n2");
    assert_eq!(c.engines[1].open_round(), Some(x + 1), "named by its start");
    assert_eq!(c.engines[0].open_round(), None);
    c.run_until_quiet(10_000);
    assert_eq!(c.engines[1].view().version, x + 2);
    assert_eq!(open(&c)[..2], [false, false], "n2 removed: nothing awaited");
    assert_eq!(c.engines[1].open_round(), None);
}

/// A member that suspects its mgr awaits no M-sub: unless it initiates the
/// reconfiguration itself, it waits protocol timeouts for a more senior member to do
/// so, and a polling driver does not poll through that wait.
#[test]
fn a_member_suspecting_its_mgr_awaits_no_round() {
    let mut c = settled(5);
    c.suspect(2, 0);
    assert!(
        !c.engines[2].awaits_answer(),
        "n2 waits for n1 to reconfigure"
    );
    assert_eq!(c.engines[2].open_round(), None);
}
