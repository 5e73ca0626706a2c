//! Cold start (paper §4.2.4) and rejoin discovery over transport probes.
//!
//! A process that is not a member queries the seeds (and, when rejoining, the members
//! it knew) by address, once per round. A member answers with its view version and
//! contacts (the members of its view, most senior first); a process that is itself
//! cold-starting answers with its process id. On any member answer the process joins
//! through the contacts. Otherwise it goes on only if it outranks every concurrent
//! cold-starter it has heard of in the last two rounds and those cold-starters and
//! itself are a majority of the seed set (D29, [`Discovery::with_seed_quorum`]); after
//! `rounds` such rounds in a row it founds the group alone (a singleton view, version 1), and the others, which
//! keep querying, then join it. Only a process starting fresh may found a group: one
//! coming back after exclusion (or whose join timed out after it was a member) only
//! ever joins, so a partitioned minority can never start a second group.
//!
//! Rank among cold-starters: the smaller node name (bytewise) wins, then the smaller
//! incarnation. See `docs/PROTOCOL.md`, "Cold start".

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::view::Member;
use crate::{NodeId, ProcessId, Time};

/// Most contacts carried by a `Member` answer (they fit one probe).
pub const MAX_CONTACTS: usize = 12;

const MAGIC: u8 = 0xC5;
const VERSION: u8 = 1;
const T_QUERY: u8 = 1;
const T_MEMBER: u8 = 2;
const T_COLD: u8 = 3;
const T_RECOVERING: u8 = 4;
const T_EXCLUDED: u8 = 5;

/// A discovery message carried in a transport probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// "Is there a group?" `cold`: the sender may found a group (fresh start).
    Query {
        /// The sender is cold-starting (it may found the group).
        cold: bool,
    },
    /// "I am a member (or joining): here are contacts." `version` 0 while joining.
    Member {
        /// The answering member's view version (0: it is itself joining).
        version: u64,
        /// Members to send a join request to, most senior first.
        contacts: Vec<Member>,
    },
    /// "I am cold-starting too" (the sender's id comes with the probe).
    ColdStarting {
        /// How many quiet rounds the sender has counted.
        round: u32,
    },
    /// "I am not a member, and I hold durable state of view `version`: I am taking
    /// part in a recovery" (`docs/PROTOCOL.md`, D23). A cold-starter that hears it does
    /// not found a group.
    Recovering {
        /// The version of the last view the sender's node installed.
        version: u64,
    },
    /// "You were excluded" (`docs/PROTOCOL.md`, D24): a member answers a process whose
    /// datagram its transport refused (one it disconnected, or one addressing an older
    /// incarnation of it) and that is not in its view. The addressee, if it is `you`
    /// and still a member of a view below `version`, was removed and can never install
    /// another view: it stops and rejoins at once as a new incarnation through
    /// `contacts`.
    Excluded {
        /// The process told it is out.
        you: ProcessId,
        /// The version of the sender's installed view, which does not hold `you`.
        version: u64,
        /// Members to join through: the sender first, then the most senior members it
        /// does not believe faulty.
        contacts: Vec<Member>,
    },
}

impl Probe {
    /// Encodes into `out` (cleared first).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&[MAGIC, VERSION]);
        match self {
            Probe::Query { cold } => out.extend_from_slice(&[T_QUERY, *cold as u8]),
            Probe::ColdStarting { round } => {
                out.push(T_COLD);
                out.extend_from_slice(&round.to_le_bytes());
            }
            Probe::Recovering { version } => {
                out.push(T_RECOVERING);
                out.extend_from_slice(&version.to_le_bytes());
            }
            Probe::Excluded {
                you,
                version,
                contacts,
            } => {
                out.push(T_EXCLUDED);
                put_pid(out, *you);
                out.extend_from_slice(&version.to_le_bytes());
                put_contacts(out, contacts);
            }
            Probe::Member { version, contacts } => {
                out.push(T_MEMBER);
                out.extend_from_slice(&version.to_le_bytes());
                put_contacts(out, contacts);
            }
        }
    }

    /// Decodes; `None` for anything malformed (never panics).
    pub fn decode(b: &[u8]) -> Option<Probe> {
        let mut r = Reader { b, at: 0 };
        if r.u8()? != MAGIC || r.u8()? != VERSION {
            return None;
        }
        let p = match r.u8()? {
            T_QUERY => Probe::Query { cold: r.u8()? != 0 },
            T_COLD => Probe::ColdStarting {
                round: u32::from_le_bytes(r.take(4)?.try_into().ok()?),
            },
            T_RECOVERING => Probe::Recovering {
                version: r.version()?,
            },
            T_EXCLUDED => {
                let you = r.pid()?;
                let version = r.version()?;
                let contacts = r.contacts()?;
                Probe::Excluded {
                    you,
                    version,
                    contacts,
                }
            }
            T_MEMBER => {
                let version = r.version()?;
                let contacts = r.contacts()?;
                Probe::Member { version, contacts }
            }
            _ => return None,
        };
        (r.at == b.len()).then_some(p)
    }
}

/// Appends `m` (name, incarnation, address) to `out`.
pub(crate) fn put_member(out: &mut Vec<u8>, m: &Member) {
    let name = m.id.node.as_bytes();
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&m.id.incarnation.to_le_bytes());
    put_addr(out, m.addr);
}

/// Appends a process id (name, incarnation) to `out`.
pub(crate) fn put_pid(out: &mut Vec<u8>, p: ProcessId) {
    let name = p.node.as_bytes();
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&p.incarnation.to_le_bytes());
}

/// Appends an address (family, octets, port) to `out`.
pub(crate) fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_le_bytes());
}

/// A contact list: the count, then at most [`MAX_CONTACTS`] members (the rest dropped).
fn put_contacts(out: &mut Vec<u8>, contacts: &[Member]) {
    let n = contacts.len().min(MAX_CONTACTS);
    out.push(n as u8);
    for c in &contacts[..n] {
        put_member(out, c);
    }
}

/// A bounds-checked reader: every method returns `None` past the end.
pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A view version (or a recovery ballot's round): at most
    /// [`MAX_VERSION`](crate::view::MAX_VERSION), so that the `+ 1` of the next one
    /// never overflows.
    pub(crate) fn version(&mut self) -> Option<u64> {
        self.u64().filter(|&v| v <= crate::view::MAX_VERSION)
    }
    pub(crate) fn member(&mut self) -> Option<Member> {
        let id = self.pid()?;
        Some(Member {
            id,
            addr: self.addr()?,
        })
    }
    /// A contact list: a count (at most [`MAX_CONTACTS`], else malformed), then the
    /// members.
    pub(crate) fn contacts(&mut self) -> Option<Vec<Member>> {
        let n = self.u8()? as usize;
        if n > MAX_CONTACTS {
            return None;
        }
        let mut contacts = Vec::with_capacity(n);
        for _ in 0..n {
            contacts.push(self.member()?);
        }
        Some(contacts)
    }
    pub(crate) fn pid(&mut self) -> Option<ProcessId> {
        let len = self.u8()? as usize;
        let node = NodeId::from_bytes(self.take(len)?).ok()?;
        Some(ProcessId::new(node, self.u64()?))
    }
    pub(crate) fn addr(&mut self) -> Option<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).ok()?)),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(self.take(16)?).ok()?)),
            _ => return None,
        };
        let port = u16::from_le_bytes(self.take(2)?.try_into().ok()?);
        Some(SocketAddr::new(ip, port))
    }
    /// True when everything was read.
    pub(crate) fn done(&self) -> bool {
        self.at == self.b.len()
    }
}

/// Rank among concurrent cold-starters: `Less` means `a` outranks `b` (the smaller name
/// bytewise, then the smaller incarnation).
pub fn coldstart_order(a: ProcessId, b: ProcessId) -> Ordering {
    a.node
        .as_bytes()
        .cmp(b.node.as_bytes())
        .then(a.incarnation.cmp(&b.incarnation))
}

/// What discovery decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep querying.
    Wait,
    /// Send a query to every target now (a new round began).
    Query,
    /// Found the group: a singleton first view.
    Bootstrap,
    /// Join through these members.
    Join(Vec<Member>),
}

/// The discovery state machine (sans-IO): rounds of queries, rivals heard of, and the
/// decision. See the module docs.
#[derive(Clone, Debug)]
pub struct Discovery {
    me: ProcessId,
    may_bootstrap: bool,
    rounds: u32,
    round_us: u64,
    quiet: u32,
    next_round: Time,
    started: bool,
    rivals: Vec<(ProcessId, Time)>,
    has_targets: bool,
    /// When a recovering process last answered: while one did in the last two rounds,
    /// a cold-starter does not found (the group may come back from durable state).
    recovering_seen: Option<Time>,
    /// D29: how many distinct seeds (this one included) must be heard cold-starting
    /// in the last two rounds before this process may found: a majority of the seed
    /// set, so that a fresh seed that hears nobody (a group it cannot reach, a total
    /// outage) never founds a second group.
    seed_quorum: usize,
}

impl Discovery {
    /// Starts discovery for `me`. `may_bootstrap`: a fresh start (it may found the
    /// group); `has_targets`: there is anyone to query (with no one to query, a fresh
    /// start founds the group at once).
    pub fn new(
        me: ProcessId,
        may_bootstrap: bool,
        has_targets: bool,
        rounds: u32,
        round_us: u64,
        now: Time,
    ) -> Discovery {
        Discovery {
            me,
            may_bootstrap,
            rounds: rounds.max(1),
            round_us: round_us.max(1),
            quiet: 0,
            next_round: now,
            started: false,
            rivals: Vec::new(),
            has_targets,
            recovering_seen: None,
            seed_quorum: 1,
        }
    }

    /// D29: founding needs `quorum` distinct seeds, this one included, heard
    /// cold-starting in the last two rounds (a majority of the seed set; 1, the
    /// default, keeps the older rule of founding alone after quiet rounds).
    pub fn with_seed_quorum(mut self, quorum: usize) -> Discovery {
        self.seed_quorum = quorum.max(1);
        self
    }

    /// Distinct cold-starting seeds heard in the last two rounds, this one included.
    fn cold_seeds_heard(&self, now: Time) -> usize {
        let horizon = 2 * self.round_us;
        let mut nodes: Vec<NodeId> = vec![self.me.node];
        for &(p, seen) in &self.rivals {
            if now.micros_since(seen) <= horizon && !nodes.contains(&p.node) {
                nodes.push(p.node);
            }
        }
        nodes.len()
    }

    /// True for a fresh start (answers queries with `ColdStarting`).
    pub fn is_cold(&self) -> bool {
        self.may_bootstrap
    }

    /// A group exists (a member answered): from now on only join (D29).
    pub fn stop_founding(&mut self) {
        self.may_bootstrap = false;
    }

    /// Quiet rounds counted so far.
    pub fn round(&self) -> u32 {
        self.quiet
    }

    /// When [`Discovery::on_timeout`] should next run.
    pub fn deadline(&self) -> Time {
        self.next_round
    }

    /// Rivals heard of recently that outrank this process.
    fn outranked(&self, now: Time) -> bool {
        let horizon = 2 * self.round_us;
        if self
            .recovering_seen
            .is_some_and(|t| now.micros_since(t) <= horizon)
        {
            return true;
        }
        self.rivals.iter().any(|&(p, seen)| {
            now.micros_since(seen) <= horizon && coldstart_order(p, self.me) == Ordering::Less
        })
    }

    /// Runs the round timer.
    pub fn on_timeout(&mut self, now: Time) -> Decision {
        if self.may_bootstrap && !self.has_targets {
            return Decision::Bootstrap;
        }
        if now < self.next_round {
            return Decision::Wait;
        }
        if self.started && self.may_bootstrap {
            if self.outranked(now) || self.cold_seeds_heard(now) < self.seed_quorum {
                self.quiet = 0;
            } else {
                self.quiet += 1;
                if self.quiet >= self.rounds {
                    return Decision::Bootstrap;
                }
            }
        }
        self.started = true;
        let horizon = 2 * self.round_us;
        self.rivals
            .retain(|&(_, seen)| now.micros_since(seen) <= horizon);
        self.next_round = now + self.round_us;
        Decision::Query
    }

    /// Handles a probe from `from`.
    pub fn on_probe(&mut self, now: Time, from: ProcessId, probe: &Probe) -> Decision {
        match probe {
            Probe::Member { contacts, .. } => {
                let c: Vec<Member> = contacts
                    .iter()
                    .filter(|m| m.id != self.me)
                    .copied()
                    .collect();
                if c.is_empty() {
                    Decision::Wait
                } else {
                    Decision::Join(c)
                }
            }
            Probe::ColdStarting { .. } | Probe::Query { cold: true } => {
                if from != self.me {
                    match self.rivals.iter_mut().find(|(p, _)| *p == from) {
                        Some(r) => r.1 = now,
                        None => self.rivals.push((from, now)),
                    }
                }
                Decision::Wait
            }
            // The node core handles an exclusion notice (D24); discovery ignores it.
            Probe::Query { cold: false } | Probe::Excluded { .. } => Decision::Wait,
            Probe::Recovering { .. } => {
                self.recovering_seen = Some(now);
                Decision::Wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Member `name#inc` at 127.0.0.1:`port` (shared with `tests_mutants`).
    pub(super) fn m(name: &str, inc: u64, port: u16) -> Member {
        Member {
            id: ProcessId::named(name, inc),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    #[test]
    fn probes_round_trip_and_reject_garbage() {
        let v6 = Member {
            id: ProcessId::named("v6", 9),
            addr: "[::1]:99".parse().unwrap(),
        };
        for p in [
            Probe::Query { cold: true },
            Probe::Query { cold: false },
            Probe::ColdStarting { round: 3 },
            Probe::Recovering { version: 12 },
            Probe::Member {
                version: 7,
                contacts: vec![m("a", 1, 1), v6],
            },
            Probe::Excluded {
                you: ProcessId::named("zombie", 4),
                version: 9,
                contacts: vec![m("a", 1, 1), v6],
            },
            Probe::Excluded {
                you: ProcessId::named("z", 1),
                version: 2,
                contacts: vec![],
            },
        ] {
            let mut b = Vec::new();
            p.encode(&mut b);
            assert!(b.len() <= sgmp_transport::wire::MAX_PROBE_PAYLOAD);
            assert_eq!(Probe::decode(&b), Some(p.clone()));
            for cut in 0..b.len() {
                assert_eq!(Probe::decode(&b[..cut]), None);
            }
            let mut longer = b.clone();
            longer.push(0);
            assert_eq!(Probe::decode(&longer), None);
        }
        let full = Probe::Member {
            version: 1,
            contacts: (0..MAX_CONTACTS)
                .map(|i| Member {
                    id: ProcessId::named(&"x".repeat(31), i as u64),
                    addr: "[::1]:1".parse().unwrap(),
                })
                .collect(),
        };
        let mut b = Vec::new();
        full.encode(&mut b);
        assert!(b.len() <= sgmp_transport::wire::MAX_PROBE_PAYLOAD);
        assert_eq!(Probe::decode(&[1, 2, 3]), None);
        // A version no group reaches (D31) is malformed, whatever probe carries it.
        let over = crate::view::MAX_VERSION + 1;
        for p in [
            Probe::Recovering { version: over },
            Probe::Member {
                version: over,
                contacts: vec![],
            },
            Probe::Excluded {
                you: ProcessId::named("z", 1),
                version: over,
                contacts: vec![],
            },
        ] {
            let mut b = Vec::new();
            p.encode(&mut b);
            assert_eq!(Probe::decode(&b), None, "{p:?}");
        }
    }

    /// D29: a fresh seed of a set of five founds only once it hears two more seeds
    /// cold-starting (three of five); one that hears nobody — a group it cannot reach,
    /// a total outage — never founds.
    #[test]
    fn a_fresh_seed_founds_only_with_a_majority_of_the_seed_set_cold_starting() {
        let a = ProcessId::named("a", 1);
        let mut alone = Discovery::new(a, true, true, 2, 100, Time(0)).with_seed_quorum(3);
        let mut t = Time(0);
        for _ in 0..50 {
            assert_ne!(alone.on_timeout(t), Decision::Bootstrap, "hears nobody");
            t = t + 100;
        }
        let mut d = Discovery::new(a, true, true, 2, 100, Time(0)).with_seed_quorum(3);
        let (b, c) = (ProcessId::named("b", 1), ProcessId::named("c", 1));
        let mut t = Time(0);
        let mut booted = None;
        for i in 0..20 {
            let _ = d.on_probe(t, b, &Probe::ColdStarting { round: 0 });
            if i >= 5 {
                // c (and c again, as a new incarnation: one seed) from round 5 on.
                let _ = d.on_probe(t, c, &Probe::Query { cold: true });
                let _ = d.on_probe(t, ProcessId::named("c", 2), &Probe::Query { cold: true });
            }
            if d.on_timeout(t) == Decision::Bootstrap {
                booted = Some(i);
                break;
            }
            t = t + 100;
        }
        assert_eq!(
            booted,
            Some(6),
            "two quiet rounds once three seeds are heard"
        );
        // Once a member has answered (a group exists), it never founds (node core).
        let mut d = Discovery::new(a, true, true, 2, 100, Time(0)).with_seed_quorum(3);
        d.stop_founding();
        assert!(!d.is_cold());
        let mut t = Time(0);
        for _ in 0..20 {
            let _ = d.on_probe(t, b, &Probe::ColdStarting { round: 0 });
            let _ = d.on_probe(t, c, &Probe::ColdStarting { round: 0 });
            assert_ne!(d.on_timeout(t), Decision::Bootstrap);
            t = t + 100;
        }
        // Two incarnations of one node are one seed: b alone (twice) is not enough.
        let mut d = Discovery::new(a, true, true, 2, 100, Time(0)).with_seed_quorum(3);
        let mut t = Time(0);
        for _ in 0..20 {
            let _ = d.on_probe(t, b, &Probe::ColdStarting { round: 0 });
            let _ = d.on_probe(
                t,
                ProcessId::named("b", 2),
                &Probe::ColdStarting { round: 0 },
            );
            assert_ne!(d.on_timeout(t), Decision::Bootstrap);
            t = t + 100;
        }
    }

    #[test]
    fn lowest_name_wins_after_quiet_rounds() {
        let (a, b) = (ProcessId::named("a", 5), ProcessId::named("b", 1));
        assert_eq!(coldstart_order(a, b), Ordering::Less);
        let mut da = Discovery::new(a, true, true, 3, 100, Time(0));
        let mut db = Discovery::new(b, true, true, 3, 100, Time(0));
        let mut t = Time(0);
        let mut a_boot = None;
        for _ in 0..20 {
            for (d, other) in [(&mut da, b), (&mut db, a)] {
                let _ = d.on_probe(t, other, &Probe::ColdStarting { round: 0 });
            }
            if da.on_timeout(t) == Decision::Bootstrap && a_boot.is_none() {
                a_boot = Some(t);
            }
            assert_ne!(db.on_timeout(t), Decision::Bootstrap, "b is outranked");
            t = t + 100;
        }
        assert_eq!(a_boot, Some(Time(300)));
        // Once a answers as a member, b joins.
        assert_eq!(
            db.on_probe(
                t,
                a,
                &Probe::Member {
                    version: 1,
                    contacts: vec![m("a", 5, 1)]
                }
            ),
            Decision::Join(vec![m("a", 5, 1)])
        );
        // A rival not heard of for two rounds no longer holds b back.
        let mut t2 = t;
        let mut booted = false;
        for _ in 0..10 {
            if db.on_timeout(t2) == Decision::Bootstrap {
                booted = true;
                break;
            }
            t2 = t2 + 100;
        }
        assert!(booted);
    }

    #[test]
    fn rejoining_never_bootstraps_and_no_seeds_bootstraps_at_once() {
        let me = ProcessId::named("z", 1);
        let mut d = Discovery::new(me, false, true, 1, 10, Time(0));
        for i in 0..100 {
            assert_ne!(d.on_timeout(Time(i * 10)), Decision::Bootstrap);
        }
        let mut d = Discovery::new(me, true, false, 5, 10, Time(0));
        assert_eq!(d.on_timeout(Time(0)), Decision::Bootstrap);
    }
}

#[cfg(test)]
#[path = "coldstart_tests_mutants.rs"]
mod tests_mutants;
