//! Warnings about failures that would otherwise be silent (issue 18, defect 3): a
//! process whose discovery hears nothing (unreachable seeds, a firewall, a key that is
//! not the group's), and datagrams dropped for a bad authentication tag or a foreign
//! cluster id. The runtime feeds [`Alerts::check`] what the core counts, a few times a
//! second, and logs what it returns with `tracing::warn!`; each kind of warning is
//! repeated at most once per [`Alerts::every`].

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::core::NodePhase;

/// Discovery rounds without any answer before the first warning.
pub const QUIET_ROUNDS: u32 = 5;
/// The shortest silence warned about, whatever the round length.
pub const MIN_QUIET: Duration = Duration::from_secs(1);
/// The shortest interval between two warnings of the same kind.
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// What the runtime reads from the core for [`Alerts::check`].
#[derive(Clone, Debug)]
pub struct Observed {
    /// The node's phase.
    pub phase: NodePhase,
    /// Discovery answers received so far (the transport's `probes_received`; reset
    /// with a new incarnation).
    pub probes_received: u64,
    /// Datagrams dropped for a bad tag so far (reset with a new incarnation).
    pub bad_tag: u64,
    /// The sender of the last of them.
    pub bad_tag_from: Option<SocketAddr>,
    /// Datagrams dropped for a foreign cluster id so far.
    pub foreign: u64,
    /// The sender of the last of them.
    pub foreign_from: Option<SocketAddr>,
    /// The length of a discovery round.
    pub round: Duration,
    /// The seeds discovery queries.
    pub seeds: Vec<SocketAddr>,
}

/// A warning for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alert {
    /// Discovery has heard nothing for `quiet`.
    NoSeedAnswered {
        /// How long.
        quiet: Duration,
        /// The seeds queried.
        seeds: Vec<SocketAddr>,
    },
    /// `count` more datagrams failed authentication, the last from `from`.
    BadTag {
        /// How many since the last warning.
        count: u64,
        /// The sender of the last one.
        from: Option<SocketAddr>,
    },
    /// `count` more datagrams carried another cluster id, the last from `from`.
    ForeignCluster {
        /// How many since the last warning.
        count: u64,
        /// The sender of the last one.
        from: Option<SocketAddr>,
    },
}

fn addr(a: &Option<SocketAddr>) -> String {
    a.map_or_else(|| "an unknown address".into(), |a| a.to_string())
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Alert::NoSeedAnswered { quiet, seeds } => write!(
                f,
                "no seed answered for {:.1} s (seeds: {}): check --seeds, firewalls, and that \
                 --key-file matches the group's",
                quiet.as_secs_f64(),
                if seeds.is_empty() {
                    "none".to_string()
                } else {
                    seeds
                        .iter()
                        .map(SocketAddr::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            Alert::BadTag { count, from } => write!(
                f,
                "{count} datagrams with a bad tag from {}: key mismatch? Check that every \
                 node's --key-file holds the group's key",
                addr(from)
            ),
            Alert::ForeignCluster { count, from } => write!(
                f,
                "{count} datagrams of another cluster id from {}: check --cluster-id on both \
                 sides",
                addr(from)
            ),
        }
    }
}

/// A counter warned about at most once per interval.
#[derive(Debug, Default)]
struct Counted {
    /// The counter at the last warning (or reset).
    reported: u64,
    /// The counter last seen (to notice a reset).
    seen: u64,
    warned_at: Option<Instant>,
}

impl Counted {
    /// The growth to warn about now, if any.
    fn check(&mut self, now: Instant, value: u64, every: Duration) -> Option<u64> {
        if value < self.seen {
            // A new incarnation: a fresh endpoint counts from zero.
            self.reported = 0;
        }
        self.seen = value;
        if value <= self.reported || self.warned_at.is_some_and(|t| now - t < every) {
            return None;
        }
        let count = value - self.reported;
        self.reported = value;
        self.warned_at = Some(now);
        Some(count)
    }
}

/// The runtime's warning state. See the [module docs](self).
#[derive(Debug)]
pub struct Alerts {
    /// The shortest interval between two warnings of the same kind.
    pub every: Duration,
    quiet_since: Option<Instant>,
    probes_seen: u64,
    discovery_warned_at: Option<Instant>,
    bad_tag: Counted,
    foreign: Counted,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            every: WARN_EVERY,
            quiet_since: None,
            probes_seen: 0,
            discovery_warned_at: None,
            bad_tag: Counted::default(),
            foreign: Counted::default(),
        }
    }
}

impl Alerts {
    /// What to warn about at `now`, given what the core counts.
    pub fn check(&mut self, now: Instant, o: &Observed) -> Vec<Alert> {
        let mut out = Vec::new();
        let looking = matches!(
            o.phase,
            NodePhase::Discovering | NodePhase::Joining | NodePhase::Recovering
        );
        if looking {
            if o.probes_received != self.probes_seen || self.quiet_since.is_none() {
                // An answer (or a new incarnation, or the start of discovery).
                self.probes_seen = o.probes_received;
                self.quiet_since = Some(now);
            }
            let quiet = now - self.quiet_since.unwrap_or(now);
            let limit = (o.round * QUIET_ROUNDS).max(MIN_QUIET);
            if quiet >= limit
                && self
                    .discovery_warned_at
                    .is_none_or(|t| now - t >= self.every)
            {
                self.discovery_warned_at = Some(now);
                out.push(Alert::NoSeedAnswered {
                    quiet,
                    seeds: o.seeds.clone(),
                });
            }
        } else {
            self.quiet_since = None;
            self.probes_seen = o.probes_received;
        }
        if let Some(count) = self.bad_tag.check(now, o.bad_tag, self.every) {
            out.push(Alert::BadTag {
                count,
                from: o.bad_tag_from,
            });
        }
        if let Some(count) = self.foreign.check(now, o.foreign, self.every) {
            out.push(Alert::ForeignCluster {
                count,
                from: o.foreign_from,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(phase: NodePhase, probes: u64, bad: u64) -> Observed {
        Observed {
            phase,
            probes_received: probes,
            bad_tag: bad,
            bad_tag_from: Some("10.0.0.9:7401".parse().unwrap()),
            foreign: 0,
            foreign_from: None,
            round: Duration::from_millis(100),
            seeds: vec!["10.0.0.1:7401".parse().unwrap()],
        }
    }

    #[test]
    fn a_silent_discovery_is_warned_once_per_interval() {
        let mut a = Alerts::default();
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        assert!(a.check(s(0), &obs(NodePhase::Discovering, 0, 0)).is_empty());
        assert!(a
            .check(s(900), &obs(NodePhase::Discovering, 0, 0))
            .is_empty());
        let w = a.check(s(1000), &obs(NodePhase::Discovering, 0, 0));
        assert!(matches!(&w[..], [Alert::NoSeedAnswered { .. }]), "{w:?}");
        let text = w[0].to_string();
        assert!(text.contains("no seed answered") && text.contains("--key-file"));
        assert!(text.contains("10.0.0.1:7401"), "{text}");
        // Rate-limited.
        assert!(a
            .check(s(5000), &obs(NodePhase::Discovering, 0, 0))
            .is_empty());
        assert_eq!(
            a.check(s(31_000), &obs(NodePhase::Discovering, 0, 0)).len(),
            1
        );
        // An answer restarts the silence; a member is never warned about.
        let mut b = Alerts::default();
        b.check(s(0), &obs(NodePhase::Discovering, 0, 0));
        assert!(b
            .check(s(800), &obs(NodePhase::Discovering, 1, 0))
            .is_empty());
        assert!(b.check(s(1500), &obs(NodePhase::Joining, 1, 0)).is_empty());
        assert!(b.check(s(9000), &obs(NodePhase::Member, 1, 0)).is_empty());
    }

    #[test]
    fn bad_tags_are_warned_with_the_sender_and_rate_limited() {
        let mut a = Alerts::default();
        let t0 = Instant::now();
        let s = |ms| t0 + Duration::from_millis(ms);
        assert!(a.check(s(0), &obs(NodePhase::Member, 0, 0)).is_empty());
        let w = a.check(s(10), &obs(NodePhase::Member, 0, 3));
        assert_eq!(
            w,
            [Alert::BadTag {
                count: 3,
                from: Some("10.0.0.9:7401".parse().unwrap())
            }]
        );
        assert!(w[0].to_string().contains("bad tag from 10.0.0.9:7401"));
        assert!(a.check(s(20), &obs(NodePhase::Member, 0, 50)).is_empty());
        let w = a.check(s(30_010), &obs(NodePhase::Member, 0, 60));
        assert_eq!(w.len(), 1);
        assert!(matches!(w[0], Alert::BadTag { count: 57, .. }), "{w:?}");
        // A new incarnation counts from zero again.
        assert!(a.check(s(30_020), &obs(NodePhase::Member, 0, 0)).is_empty());
        assert_eq!(a.check(s(60_020), &obs(NodePhase::Member, 0, 2)).len(), 1);
    }
}
