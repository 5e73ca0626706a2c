//! A readable trace of a run: messages (time, from, to, kind), faults and views.

use std::fmt::Write as _;

use sgmp_membership::msg::{self, Msg, MsgKind};
use sgmp_membership::{ProcessId, Time};

/// Collects trace lines when enabled; costs nothing when disabled.
#[derive(Debug)]
pub struct Trace {
    lines: Option<Vec<String>>,
    /// Each line is also written to stderr as it is made (`SGMP_SIM_TRACE_ECHO` set):
    /// the trace of a seed whose assertion fails is otherwise lost with the run.
    echo: bool,
    rx: Msg,
    max_members: usize,
    max_snapshot: usize,
}

/// Formats a time as seconds with microsecond precision.
pub fn secs(t: Time) -> String {
    format!("{}.{:06}", t.0 / 1_000_000, t.0 % 1_000_000)
}

impl Trace {
    /// A trace (enabled or not) able to decode messages within these limits.
    pub fn new(enabled: bool, max_members: usize, max_snapshot: usize) -> Trace {
        Trace {
            lines: enabled.then(Vec::new),
            echo: enabled && std::env::var_os("SGMP_SIM_TRACE_ECHO").is_some(),
            rx: Msg::with_tag_limits(
                max_members,
                0,
                sgmp_membership::tags::MAX_TAG_BYTES,
                max_snapshot,
            ),
            max_members,
            max_snapshot,
        }
    }

    /// True when lines are collected.
    pub fn enabled(&self) -> bool {
        self.lines.is_some()
    }

    /// Adds a line at time `t`.
    pub fn line(&mut self, t: Time, text: impl FnOnce() -> String) {
        if let Some(l) = &mut self.lines {
            let line = format!("{} {}", secs(t), text());
            if self.echo {
                eprintln!("{line}");
            }
            l.push(line);
        }
    }

    /// Describes a membership message: its kind and the fields that matter.
    pub fn describe(&mut self, bytes: &[u8]) -> String {
        if let Some((_, m)) = sgmp_membership::node::recovery::RecoveryMsg::decode(bytes) {
            return format!("recovery {m:?}");
        }
        if msg::decode(bytes, self.max_members, self.max_snapshot, &mut self.rx).is_err() {
            return match bytes.get(1).and_then(|b| MsgKind::from_u8(*b)) {
                Some(k) => format!("{} (undecodable)", k.name()),
                None => "undecodable".to_string(),
            };
        }
        let m = &self.rx;
        let mut s = format!("{} sv={}", m.kind.name(), m.sender_version);
        match m.kind {
            MsgKind::MSub | MsgKind::RSub | MsgKind::MCom | MsgKind::RCom => {
                let _ = write!(s, " v={} {}", m.version, upd(&m.update));
                if m.has_next {
                    let _ = write!(s, " : sub v={} {}", m.version + 1, upd(&m.next));
                }
            }
            MsgKind::MSubAck | MsgKind::RSubAck => {
                let _ = write!(s, " v={}", m.version);
            }
            MsgKind::StateXfer => {
                let _ = write!(
                    s,
                    " v={} members={}",
                    m.version,
                    ids(m.members.iter().map(|x| x.id))
                );
            }
            MsgKind::RInt | MsgKind::RIntResp | MsgKind::StateXferAck => {
                let st = &m.state;
                let _ = write!(s, " ver={} last={}", st.ver, upd(&st.last));
                if st.has_next {
                    let _ = write!(
                        s,
                        " next=<{},{}> by {}",
                        upd(&st.next.update),
                        st.next.version,
                        st.next.initiator
                    );
                }
            }
            MsgKind::JoinReq => {
                let _ = write!(s, " joiner={}", m.joiner.id);
            }
            MsgKind::ClientOps => {
                let _ = write!(s, " client-changes={}", m.client_ops.len());
            }
            MsgKind::TagReq => {
                let _ = write!(s, " tags={}", m.tags.len());
            }
            MsgKind::LeaveReq | MsgKind::Heartbeat => {}
        }
        if !m.gossip.is_empty() {
            let _ = write!(s, " gossip={}", ids(m.gossip.iter().copied()));
        }
        s
    }

    /// The lines collected (empty when disabled).
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }
}

fn ids(it: impl Iterator<Item = ProcessId>) -> String {
    let v: Vec<String> = it.map(|p| p.to_string()).collect();
    format!("[{}]", v.join(" "))
}

fn upd(u: &sgmp_membership::Update) -> String {
    let mut s = String::new();
    for r in &u.removes {
        let _ = write!(s, "-{r} ");
    }
    for a in &u.adds {
        let _ = write!(s, "+{} ", a.id);
    }
    if s.is_empty() {
        "nil".to_string()
    } else {
        s.pop();
        format!("({s})")
    }
}
