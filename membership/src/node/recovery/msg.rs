//! The recovery messages (D23) and their encoding: a leading [`RECOVERY_FORMAT`] byte,
//! then the kind and its fields; decoding is bounds-checked and never panics.

use super::*;

/// The first byte of every recovery message (engine messages start with
/// [`crate::msg::MSG_FORMAT`]).
pub const RECOVERY_FORMAT: u8 = 0xE7;

/// Recovery messages. See the [module docs](super::super::recovery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryMsg {
    /// The sender's installed view, and what it accepted for the next version (so
    /// that the others can learn a chosen view nobody running installed, D23).
    State {
        /// Its last installed view.
        view: View,
        /// Its durable acceptance for version `view.version + 1`, if any.
        accepted: Option<Accepted>,
    },
    /// Phase 1a.
    Prepare {
        /// The version being decided.
        version: u64,
        /// The leader's ballot.
        ballot: Ballot,
    },
    /// Phase 1b.
    Promise {
        /// The version.
        version: u64,
        /// The ballot promised.
        ballot: Ballot,
        /// The value accepted for `version`, if any.
        accepted: Option<Accepted>,
    },
    /// Phase 2a.
    Accept {
        /// The version.
        version: u64,
        /// The leader's ballot.
        ballot: Ballot,
        /// The proposed view (of `version`).
        view: View,
    },
    /// Phase 2b.
    Accepted {
        /// The version.
        version: u64,
        /// The ballot accepted.
        ballot: Ballot,
    },
    /// Refusal: the acceptor promised a higher ballot, or is at another version.
    Nack {
        /// The version asked about.
        version: u64,
        /// The acceptor's promise.
        promised: Ballot,
        /// The acceptor's installed version.
        installed: u64,
    },
    /// The view is decided.
    Decide {
        /// The decided view.
        view: View,
    },
}

const K_STATE: u8 = 1;
const K_PREPARE: u8 = 2;
const K_PROMISE: u8 = 3;
const K_ACCEPT: u8 = 4;
const K_ACCEPTED: u8 = 5;
const K_NACK: u8 = 6;
const K_DECIDE: u8 = 7;
/// Most members a view in a recovery message may hold.
const MAX_VIEW: usize = 4096;

fn put_view(out: &mut Vec<u8>, v: &View) {
    out.extend_from_slice(&v.version.to_le_bytes());
    out.extend_from_slice(&(v.members.len() as u32).to_le_bytes());
    for m in &v.members {
        put_member(out, m);
    }
}

fn put_ballot(out: &mut Vec<u8>, b: Ballot) {
    out.push(b.class);
    out.extend_from_slice(&b.round.to_le_bytes());
    out.extend_from_slice(&b.rank.to_le_bytes());
}

fn put_accepted(out: &mut Vec<u8>, a: Option<&Accepted>) {
    match a {
        Some(a) => {
            out.push(1);
            put_ballot(out, a.ballot);
            put_view(out, &a.view);
        }
        None => out.push(0),
    }
}

impl Reader<'_> {
    /// A view: a version, then at most [`MAX_VIEW`] members, no node twice.
    fn view(&mut self) -> Option<View> {
        let version = self.version()?;
        let n = self.u32()? as usize;
        if n > MAX_VIEW {
            return None;
        }
        let mut v = View::with_capacity(n);
        v.version = version;
        for _ in 0..n {
            v.members.push(self.member()?);
        }
        // Recovery counts names (one incarnation of each node in a view).
        let mut ids: Vec<NodeId> = v.members.iter().map(|m| m.id.node).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Some(v)
    }
    /// An optional acceptance: a 0/1 flag, then its ballot and view.
    fn accepted(&mut self) -> Option<Option<Accepted>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(Accepted {
                ballot: self.ballot()?,
                view: self.view()?,
            })),
            _ => None,
        }
    }
    /// A ballot of a known class (none, S-GMP or recovery).
    fn ballot(&mut self) -> Option<Ballot> {
        let b = Ballot {
            class: self.u8()?,
            round: self.version()?,
            rank: self.u32()?,
        };
        (b.class <= Ballot::RECOVERY_CLASS).then_some(b)
    }
}

impl RecoveryMsg {
    /// Encodes into `out` (cleared first), with the sender's address.
    pub fn encode(&self, from: SocketAddr, out: &mut Vec<u8>) {
        out.clear();
        out.push(RECOVERY_FORMAT);
        put_addr(out, from);
        match self {
            RecoveryMsg::State { view, accepted } => {
                out.push(K_STATE);
                put_view(out, view);
                put_accepted(out, accepted.as_ref());
            }
            RecoveryMsg::Prepare { version, ballot } => {
                out.push(K_PREPARE);
                out.extend_from_slice(&version.to_le_bytes());
                put_ballot(out, *ballot);
            }
            RecoveryMsg::Promise {
                version,
                ballot,
                accepted,
            } => {
                out.push(K_PROMISE);
                out.extend_from_slice(&version.to_le_bytes());
                put_ballot(out, *ballot);
                put_accepted(out, accepted.as_ref());
            }
            RecoveryMsg::Accept {
                version,
                ballot,
                view,
            } => {
                out.push(K_ACCEPT);
                out.extend_from_slice(&version.to_le_bytes());
                put_ballot(out, *ballot);
                put_view(out, view);
            }
            RecoveryMsg::Accepted { version, ballot } => {
                out.push(K_ACCEPTED);
                out.extend_from_slice(&version.to_le_bytes());
                put_ballot(out, *ballot);
            }
            RecoveryMsg::Nack {
                version,
                promised,
                installed,
            } => {
                out.push(K_NACK);
                out.extend_from_slice(&version.to_le_bytes());
                put_ballot(out, *promised);
                out.extend_from_slice(&installed.to_le_bytes());
            }
            RecoveryMsg::Decide { view } => {
                out.push(K_DECIDE);
                put_view(out, view);
            }
        }
    }

    /// The most members a view in the message holds (0 if it carries none).
    pub fn largest_view(&self) -> usize {
        let acc = |a: &Option<Accepted>| a.as_ref().map_or(0, |a| a.view.members.len());
        match self {
            RecoveryMsg::State { view, accepted } => view.members.len().max(acc(accepted)),
            RecoveryMsg::Promise { accepted, .. } => acc(accepted),
            RecoveryMsg::Accept { view, .. } | RecoveryMsg::Decide { view } => view.members.len(),
            RecoveryMsg::Prepare { .. }
            | RecoveryMsg::Accepted { .. }
            | RecoveryMsg::Nack { .. } => 0,
        }
    }

    /// Decodes a message and its sender's address; `None` for anything malformed.
    pub fn decode(b: &[u8]) -> Option<(SocketAddr, RecoveryMsg)> {
        let mut r = Reader { b, at: 0 };
        if r.u8()? != RECOVERY_FORMAT {
            return None;
        }
        let from = r.addr()?;
        let m = match r.u8()? {
            K_STATE => RecoveryMsg::State {
                view: r.view()?,
                accepted: r.accepted()?,
            },
            K_PREPARE => RecoveryMsg::Prepare {
                version: r.version()?,
                ballot: r.ballot()?,
            },
            K_PROMISE => {
                let version = r.version()?;
                let ballot = r.ballot()?;
                let accepted = r.accepted()?;
                RecoveryMsg::Promise {
                    version,
                    ballot,
                    accepted,
                }
            }
            K_ACCEPT => RecoveryMsg::Accept {
                version: r.version()?,
                ballot: r.ballot()?,
                view: r.view()?,
            },
            K_ACCEPTED => RecoveryMsg::Accepted {
                version: r.version()?,
                ballot: r.ballot()?,
            },
            K_NACK => RecoveryMsg::Nack {
                version: r.version()?,
                promised: r.ballot()?,
                installed: r.version()?,
            },
            K_DECIDE => RecoveryMsg::Decide { view: r.view()? },
            _ => return None,
        };
        r.done().then_some((from, m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Member;

    fn view(version: u64, names: &[&str]) -> View {
        let mut v = View::with_capacity(names.len());
        v.version = version;
        for (i, n) in names.iter().enumerate() {
            v.members.push(Member {
                id: ProcessId::named(n, 1),
                addr: format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
            });
        }
        v
    }

    #[test]
    fn every_message_round_trips_and_every_truncation_is_refused() {
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let acc = Accepted {
            ballot: Ballot::sgmp(1),
            view: view(4, &["a", "b", "c"]),
        };
        let msgs = [
            RecoveryMsg::State {
                view: view(3, &["a", "b"]),
                accepted: Some(acc.clone()),
            },
            RecoveryMsg::State {
                view: view(3, &["a", "b"]),
                accepted: None,
            },
            RecoveryMsg::Promise {
                version: 4,
                ballot: Ballot::recovery(2, 1),
                accepted: None,
            },
            RecoveryMsg::Prepare {
                version: 4,
                ballot: Ballot::recovery(2, 1),
            },
            RecoveryMsg::Promise {
                version: 4,
                ballot: Ballot::recovery(2, 1),
                accepted: Some(acc.clone()),
            },
            RecoveryMsg::Accept {
                version: 4,
                ballot: Ballot::recovery(2, 1),
                view: acc.view.clone(),
            },
            RecoveryMsg::Accepted {
                version: 4,
                ballot: Ballot::recovery(2, 1),
            },
            RecoveryMsg::Nack {
                version: 4,
                promised: Ballot::recovery(3, 0),
                installed: 3,
            },
            RecoveryMsg::Decide { view: acc.view },
        ];
        let mut out = Vec::new();
        for m in msgs {
            m.encode(from, &mut out);
            assert_eq!(RecoveryMsg::decode(&out), Some((from, m.clone())), "{m:?}");
            for n in 0..out.len() {
                assert_eq!(RecoveryMsg::decode(&out[..n]), None, "{m:?} cut at {n}");
            }
            let mut longer = out.clone();
            longer.push(0);
            assert_eq!(RecoveryMsg::decode(&longer), None, "{m:?} with a byte more");
        }
    }

    /// What no recovering process sends is malformed: a ballot of an unknown class (it
    /// would outrank every real one, and a durable promise to it would refuse every
    /// recovery after), a version or a round beyond `MAX_VERSION` (its `+ 1` would
    /// overflow), a view naming a process twice. `largest_view` gives the node its
    /// bound on the rest.
    #[test]
    fn unknown_ballots_huge_versions_and_doubled_members_are_refused() {
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let over = crate::view::MAX_VERSION + 1;
        let mut out = Vec::new();
        let refused = |m: RecoveryMsg, out: &mut Vec<u8>| {
            m.encode(from, out);
            RecoveryMsg::decode(out).is_none()
        };
        let ballot = |class, round| Ballot {
            class,
            round,
            rank: 0,
        };
        for class in [3, u8::MAX] {
            let m = RecoveryMsg::Prepare {
                version: 4,
                ballot: ballot(class, 1),
            };
            assert!(refused(m, &mut out), "class {class}");
        }
        let prepare = |version, round| RecoveryMsg::Prepare {
            version,
            ballot: ballot(Ballot::RECOVERY_CLASS, round),
        };
        assert!(refused(prepare(over, 1), &mut out));
        assert!(refused(prepare(4, over), &mut out));
        assert!(!refused(prepare(4, crate::view::MAX_VERSION), &mut out));
        let nack = RecoveryMsg::Nack {
            version: 4,
            promised: Ballot::NONE,
            installed: over,
        };
        assert!(refused(nack, &mut out));
        let state = |view: View| RecoveryMsg::State {
            view,
            accepted: None,
        };
        assert!(refused(state(view(over, &["a"])), &mut out));
        assert!(refused(state(view(3, &["a", "b", "a"])), &mut out));
        let decide = RecoveryMsg::Decide {
            view: view(3, &["a", "b"]),
        };
        assert_eq!(decide.largest_view(), 2);
        let promise = RecoveryMsg::Promise {
            version: 4,
            ballot: Ballot::recovery(1, 0),
            accepted: Some(Accepted {
                ballot: Ballot::sgmp(0),
                view: view(4, &["a", "b", "c"]),
            }),
        };
        assert_eq!(promise.largest_view(), 3);
        assert_eq!(prepare(4, 1).largest_view(), 0);
    }

    /// A view in a recovery message holds at most `MAX_VIEW` members: a view of
    /// exactly that many round-trips, one more is malformed.
    #[test]
    fn a_view_of_max_view_members_is_the_largest_a_message_carries() {
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let names: Vec<String> = (0..=MAX_VIEW).map(|i| format!("m{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let full = RecoveryMsg::Decide {
            view: view(3, &names[..MAX_VIEW]),
        };
        full.encode(from, &mut out);
        assert_eq!(RecoveryMsg::decode(&out), Some((from, full)));
        RecoveryMsg::Decide {
            view: view(3, &names),
        }
        .encode(from, &mut out);
        assert_eq!(RecoveryMsg::decode(&out), None);
    }

    #[test]
    fn a_bad_acceptance_flag_is_refused() {
        let from: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let mut out = Vec::new();
        RecoveryMsg::Promise {
            version: 4,
            ballot: Ballot::recovery(2, 1),
            accepted: None,
        }
        .encode(from, &mut out);
        *out.last_mut().unwrap() = 2;
        assert_eq!(RecoveryMsg::decode(&out), None);
    }
}
