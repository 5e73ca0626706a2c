//! Forged recovery messages at a node core (docs/PROTOCOL.md D31): a view larger than
//! this node's `max_members` is dropped and counted where it arrives, before the
//! recovery or the member's answer could take it up (installed, it would be cut short
//! at `max_members`, `Engine::bootstrap_at`).

use super::core::NodeCore;
use super::exclusion_tests::{addr, core_config};
use super::recovery::RecoveryMsg;
use crate::view::{Member, View};
use crate::{ProcessId, Time};
use sgmp_transport::Endpoint;

fn view(version: u64, n: usize) -> View {
    let mut v = View::with_capacity(n);
    v.version = version;
    for i in 0..n {
        v.members.push(Member {
            id: ProcessId::named(&format!("v{i}"), 1),
            addr: addr(20 + i),
        });
    }
    v
}

#[test]
fn a_recovery_view_larger_than_max_members_is_dropped_and_counted() {
    let n = 3;
    let founders: Vec<Member> = (0..n)
        .map(|i| Member {
            id: ProcessId::named(&format!("n{i}"), 1),
            addr: addr(i),
        })
        .collect();
    let mut core = NodeCore::new(core_config(n), founders[0].id, addr(0));
    core.found_with(Time(1), &founders);
    let max = core.engine().config().max_members;
    // A sender from outside the view, over a channel of its own.
    let sender = ProcessId::named("x", 1);
    let mut ep = Endpoint::new(core_config(n).transport, sender);
    let (mut bytes, mut buf) = (Vec::new(), vec![0u8; 1500]);
    let mut now = Time(10);
    for (size, counted) in [(max, 0), (max + 1, 1), (max + 40, 1)] {
        let before = core.stats().decode_errors;
        let delivered = core.stats().delivered;
        let msgs = [
            RecoveryMsg::Decide {
                view: view(5, size),
            },
            RecoveryMsg::State {
                view: view(5, size),
                accepted: None,
            },
        ];
        for m in msgs {
            m.encode(addr(9), &mut bytes);
            ep.send(now, founders[0].id, addr(0), &bytes).unwrap();
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                core.handle_datagram(now, addr(9), &buf[..t.len]);
            }
            now = now + 1_000;
        }
        assert_eq!(core.stats().delivered - delivered, 2, "{size} members");
        assert_eq!(
            core.stats().decode_errors - before,
            2 * counted,
            "{size} members"
        );
        assert_eq!(
            core.engine().view().members.len(),
            n,
            "the view is untouched"
        );
    }
}
