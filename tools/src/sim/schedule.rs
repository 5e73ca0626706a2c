//! Schedules: what happens when. A schedule is a time-ordered list of [`Action`]s;
//! [`random`] draws one from a seed, and the figure tests write theirs by hand.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_membership::msg::MsgKind;
use sgmp_membership::Time;

use super::net::LinkFaults;

/// A process designated by node index, or resolved when the action runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Node `i` (its current incarnation).
    Node(usize),
    /// Whichever live node currently acts as mgr (the most advanced one if several think so).
    Mgr,
}

/// One scripted or random step of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The node crashes: it stops, its messages not yet sent are lost.
    Crash(Target),
    /// The node crashes in the middle of a multicast: as soon as its engine hands the
    /// transport a message of `kind` (any kind if `None`), only `after` more datagrams
    /// leave the node, then it crashes.
    CrashDuring {
        /// The node.
        target: Target,
        /// The message kind that arms the crash.
        kind: Option<MsgKind>,
        /// Datagrams let out after arming.
        after: u32,
    },
    /// `by` comes to believe `peer` faulty (a false suspicion if `peer` is alive).
    Suspect {
        /// The suspecting node.
        by: Target,
        /// The suspected node.
        peer: Target,
    },
    /// The mgr crashes and the `k` most senior live members of its view suspect it and
    /// each other at once, so that several of them initiate reconfiguration.
    ConcurrentReconfig {
        /// How many reconfigurers.
        k: usize,
    },
    /// Cuts the network into sides (nodes not listed form one more side).
    Partition(Vec<Vec<usize>>),
    /// One-way block `from → to`.
    Block {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
    },
    /// Removes every partition and block.
    Heal,
    /// "Majorities ring": the started nodes, in an order drawn from `seed`, stand on a
    /// ring; each stays connected only to itself and its nearest neighbours on both
    /// sides, so that it sees a majority, but no two nodes see the same one.
    MajoritiesRing {
        /// Seed of the ring order.
        seed: u64,
    },
    /// Clogs every link to and from the node: datagrams sent on them take `delay_us`
    /// more (they pile up and arrive late, and are overtaken once unclogged).
    Clog {
        /// The node.
        node: usize,
        /// Extra delay, µs.
        delay_us: u64,
    },
    /// Restores the links of a clogged node to the default faults.
    Unclog(usize),
    /// The node stops processing (like SIGSTOP) for `us`: no timer runs, arriving
    /// datagrams wait in its socket buffer (up to [`PAUSE_BUFFER`]); then it resumes.
    Pause {
        /// The node.
        target: Target,
        /// How long, µs.
        us: u64,
    },
    /// Start of the liveness phase (right after [`Action::EndFaults`]): a majority
    /// core of the live members of the most advanced view, drawn from `seed`, stays up
    /// and fully connected; with `isolate`, some of the other live nodes are cut off
    /// for good (both directions of all their links).
    LivenessCore {
        /// Seed of the choice.
        seed: u64,
        /// Cut off the live nodes outside the core (some of them).
        isolate: bool,
    },
    /// Sets the faults of every link.
    SetLinks(LinkFaults),
    /// Sets the faults of one one-way link.
    SetLink {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// Its faults.
        faults: LinkFaults,
    },
    /// The node (crashed or excluded; a live member is crashed first) restarts as
    /// incarnation + 1 and joins through the members of the most advanced live view.
    Rejoin(usize),
    /// Like `Rejoin`, for the first node that is down or excluded (nothing if none).
    RejoinAny,
    /// A node that never ran joins through the members of the most advanced live view.
    Join(usize),
    /// The node leaves gracefully.
    Leave(Target),
    /// Every link down (both directions, every node) until the next [`Action::Heal`]:
    /// a switch reboot. Every process is alone.
    TotalOutage,
    /// Every running process crashes at once (a power cut); disks survive.
    CrashAll,
    /// Every node that ran and is down restarts from its disk (a new incarnation that
    /// recovers or rejoins).
    RestartAll,
    /// The node's disk is lost: it crashes, its durable state is wiped, and it restarts
    /// with none (it may only join).
    DiskLoss(usize),
    /// End of the fault phase: heal everything, turn loss off; from now on the run
    /// must converge (GMP-4) within the configured bound.
    EndFaults,
}

impl Action {
    /// The fault-kind name counted in reports.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Action::Crash(Target::Mgr) => "crash_mgr",
            Action::Crash(_) => "crash",
            Action::CrashDuring { .. } => "crash_mid_multicast",
            Action::Suspect { .. } => "false_suspicion",
            Action::ConcurrentReconfig { .. } => "concurrent_reconfigurers",
            Action::Partition(_) => "partition",
            Action::Block { .. } => "one_way_partition",
            Action::Heal => "heal",
            Action::MajoritiesRing { .. } => "majorities_ring",
            Action::Clog { .. } => "swizzle_clog",
            Action::Unclog(_) => "swizzle_unclog",
            Action::Pause { .. } => "pause",
            Action::LivenessCore { .. } => "liveness_core",
            Action::SetLinks(_) | Action::SetLink { .. } => "link_faults",
            Action::Rejoin(_) | Action::RejoinAny => "rejoin_new_incarnation",
            Action::Join(_) => "join",
            Action::Leave(_) => "leave",
            Action::TotalOutage => "total_outage",
            Action::CrashAll => "full_restart",
            Action::RestartAll => "restart_all",
            Action::DiskLoss(_) => "disk_loss",
            Action::EndFaults => "end_faults",
        }
    }
}

/// Datagrams a paused node's socket buffer holds (more are dropped).
pub const PAUSE_BUFFER: usize = 256;

/// A time-ordered list of actions; actions at the same time run in insertion order.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    items: BTreeMap<(Time, u64), Action>,
    seq: u64,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Adds `action` at time `t`.
    pub fn at(&mut self, t: Time, action: Action) -> &mut Schedule {
        self.seq += 1;
        self.items.insert((t, self.seq), action);
        self
    }

    /// When the next action is due.
    pub fn next_time(&self) -> Option<Time> {
        self.items.keys().next().map(|k| k.0)
    }

    /// Removes and returns the next action due at or before `now`.
    pub fn pop_due(&mut self, now: Time) -> Option<Action> {
        let (&k, _) = self.items.iter().next()?;
        if k.0 > now {
            return None;
        }
        self.items.remove(&k)
    }

    /// The actions, in order (for printing).
    pub fn iter(&self) -> impl Iterator<Item = (Time, &Action)> {
        self.items.iter().map(|(k, a)| (k.0, a))
    }

    /// Number of actions left.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no action is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Shape of the random schedules.
#[derive(Clone, Copy, Debug)]
pub struct RandomShape {
    /// Founding members.
    pub nodes: usize,
    /// Extra nodes that may join later.
    pub spare: usize,
    /// End of the fault phase, µs.
    pub fault_phase_us: u64,
}

/// A crash in the middle of a multicast: of a random kind (or any message), by the mgr
/// with probability `mgr_bias` unless the kind is a reconfiguration message (those come
/// from a member that is not the mgr yet), after a random number of its copies went out.
/// The random mode draws with 0.8, the swarm with 0.7: both kept as they were so every
/// seed still reproduces its recorded schedule.
fn crash_during(rng: &mut ChaCha8Rng, n: usize, mgr_bias: f64) -> Action {
    let kind = *[
        Some(MsgKind::MCom),
        Some(MsgKind::MSub),
        Some(MsgKind::RCom),
        Some(MsgKind::RSub),
        Some(MsgKind::RInt),
        Some(MsgKind::StateXfer),
        None,
    ]
    .choose(rng)
    .unwrap_or(&None);
    let reconf = matches!(kind, Some(MsgKind::RInt | MsgKind::RSub | MsgKind::RCom));
    let target = if !reconf && rng.gen_bool(mgr_bias) {
        Target::Mgr
    } else {
        Target::Node(rng.gen_range(0..n))
    };
    let after = rng.gen_range(0..n as u32);
    Action::CrashDuring {
        target,
        kind,
        after,
    }
}

/// A false suspicion: a random node suspects the mgr (30 %) or another random node.
fn false_suspicion(rng: &mut ChaCha8Rng, n: usize) -> Action {
    let by = rng.gen_range(0..n);
    let peer = if rng.gen_bool(0.3) {
        Target::Mgr
    } else {
        Target::Node((by + rng.gen_range(1..n)) % n)
    };
    Action::Suspect {
        by: Target::Node(by),
        peer,
    }
}

/// Draws a random schedule from `seed`. Faults fall in `[50 ms, fault_phase_us)`;
/// [`Action::EndFaults`] comes at `fault_phase_us`.
pub fn random(seed: u64, shape: RandomShape) -> Schedule {
    // A stream independent of the network's (which is seeded with `seed` directly).
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5347_4d50_5343_4844);
    let mut s = Schedule::new();
    let n = shape.nodes;
    let end = shape.fault_phase_us;
    // Half of the runs pack their faults into a burst of 50..400 ms, so that they
    // overlap with the reconfigurations they cause.
    let (t0, t1) = if rng.gen_bool(0.5) {
        let len = rng.gen_range(50_000..400_000u64);
        let start = rng.gen_range(50_000..end.saturating_sub(len).max(50_001));
        (start, (start + len).min(end))
    } else {
        (50_000u64, end)
    };
    let at = |rng: &mut ChaCha8Rng| Time(rng.gen_range(t0..t1.max(t0 + 1)));

    // Link faults for the whole fault phase.
    let loss = *[0.0, 0.0, 0.01, 0.03, 0.1].choose(&mut rng).unwrap_or(&0.0);
    let dup = *[0.0, 0.01, 0.05].choose(&mut rng).unwrap_or(&0.0);
    let reorder = *[0.0, 0.05, 0.2].choose(&mut rng).unwrap_or(&0.0);
    let links = LinkFaults {
        loss,
        duplicate: dup,
        reorder,
        reorder_delay_us: rng.gen_range(0..3_000),
        delay_us: rng.gen_range(50..500),
        jitter_us: rng.gen_range(0..400),
    };
    s.at(Time(0), Action::SetLinks(links));
    if rng.gen_bool(0.1) && n >= 2 {
        // One slow link.
        let from = rng.gen_range(0..n);
        let to = (from + rng.gen_range(1..n)) % n;
        let slow = LinkFaults {
            delay_us: rng.gen_range(2_000..30_000),
            ..links
        };
        s.at(
            at(&mut rng),
            Action::SetLink {
                from,
                to,
                faults: slow,
            },
        );
    }

    let count = rng.gen_range(1..=6);
    let mut partitioned = false;
    // Crashes, false suspicions, concurrent reconfigurations and leaves each cost the
    // group a member; most runs stay within a minority so that GMP-4 can be checked,
    // one in eight may lose the majority (then only safety is checked).
    let mut crashes = 0usize;
    let max_crashes = if rng.gen_bool(0.125) { n } else { (n - 1) / 2 };
    for _ in 0..count {
        let t = at(&mut rng);
        let live = |rng: &mut ChaCha8Rng| rng.gen_range(0..n);
        match rng.gen_range(0..100) {
            0..=11 if crashes < max_crashes => {
                crashes += 1;
                s.at(t, Action::Crash(Target::Node(live(&mut rng))));
            }
            12..=23 if crashes < max_crashes => {
                crashes += 1;
                s.at(t, Action::Crash(Target::Mgr));
            }
            24..=37 if crashes < max_crashes => {
                crashes += 1;
                s.at(t, crash_during(&mut rng, n, 0.8));
            }
            38..=51 if crashes < max_crashes => {
                crashes += 1;
                s.at(t, false_suspicion(&mut rng, n));
            }
            52..=63 if crashes < max_crashes => {
                crashes += 1;
                let k = if n >= 7 { rng.gen_range(2..=3) } else { 2 };
                s.at(t, Action::ConcurrentReconfig { k });
            }
            64..=77 if !partitioned && n >= 3 => {
                partitioned = true;
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let small = rng.gen_range(1..=(n - 1) / 2);
                let mut minority = order[..small].to_vec();
                minority.sort_unstable();
                let dur = rng.gen_range(100_000..700_000);
                s.at(t, Action::Partition(vec![minority]));
                s.at(Time((t.0 + dur).min(end)), Action::Heal);
            }
            78..=83 if n >= 2 => {
                let from = live(&mut rng);
                let to = (from + rng.gen_range(1..n)) % n;
                let dur = rng.gen_range(50_000..400_000);
                s.at(t, Action::Block { from, to });
                if !partitioned {
                    s.at(Time((t.0 + dur).min(end)), Action::Heal);
                }
            }
            84..=89 => {
                // A join while the group reconfigures.
                if crashes < max_crashes {
                    crashes += 1;
                    s.at(t, Action::Crash(Target::Mgr));
                }
                let d = rng.gen_range(0..250_000);
                let a = if shape.spare > 0 && rng.gen_bool(0.5) {
                    Action::Join(n + rng.gen_range(0..shape.spare))
                } else {
                    Action::RejoinAny
                };
                s.at(t + d, a);
            }
            90..=94 => {
                s.at(t, Action::RejoinAny);
            }
            95..=97 if shape.spare > 0 => {
                s.at(t, Action::Join(n + rng.gen_range(0..shape.spare)));
            }
            _ if crashes < max_crashes => {
                crashes += 1;
                let target = if rng.gen_bool(0.3) {
                    Target::Mgr
                } else {
                    Target::Node(live(&mut rng))
                };
                s.at(t, Action::Leave(target));
            }
            _ => {
                // Over budget: a heavier network instead.
                let f = LinkFaults { loss: 0.2, ..links };
                s.at(t, Action::SetLinks(f));
                s.at(t + rng.gen_range(20_000..200_000), Action::SetLinks(links));
            }
        }
    }
    s.at(Time(end), Action::EndFaults);
    s
}

/// The schedule of a random run: [`swarm`] or the classic [`random`].
pub fn for_seed(seed: u64, shape: RandomShape, swarm: bool) -> Schedule {
    if swarm {
        self::swarm(seed, shape).0
    } else {
        random(seed, shape)
    }
}

/// Fault kinds a swarm run may draw (its mix enables a random subset of them).
pub const SWARM_KINDS: [&str; 16] = [
    "crash",
    "crash_mgr",
    "crash_mid_multicast",
    "false_suspicion",
    "concurrent_reconfigurers",
    "leave",
    "pause",
    "partition",
    "one_way_partition",
    "one_way_node",
    "majorities_ring",
    "swizzle_clog",
    "loss_spike",
    "join",
    "rejoin_new_incarnation",
    "slow_link",
];

/// The fault mix of one swarm run: link settings and the weight of each enabled kind.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmMix {
    /// Link faults for the whole fault phase.
    pub links: LinkFaults,
    /// Enabled kinds with their weights (1..=4).
    pub weights: Vec<(&'static str, u32)>,
    /// Number of events.
    pub events: usize,
    /// The events are packed into `[t0, t1)`.
    pub window: (u64, u64),
    /// Destructive events (crashes, suspicions, leaves, pauses) allowed.
    pub budget: usize,
    /// Network cuts (partitions, one-way cuts, rings, clogs) allowed: overlapping
    /// cuts can leave no connected majority, and then the members rightly exclude
    /// themselves (`NoMajority`) and the group is gone.
    pub cuts: usize,
    /// A BUGGIFY scenario ([`Buggify`]) that replaces the random events of this seed
    /// (drawn from a stream of its own, so the other seeds' mixes are unchanged).
    pub buggify: Option<Buggify>,
}

impl SwarmMix {
    /// Draws the mix of a run (swarm testing: each seed its own fault mix and rates,
    /// with about half of the kinds switched off, so that rare combinations and heavy
    /// doses of a single kind are both reached).
    pub fn draw(rng: &mut ChaCha8Rng, shape: RandomShape) -> SwarmMix {
        let n = shape.nodes;
        let end = shape.fault_phase_us;
        let loss = if rng.gen_bool(0.6) {
            rng.gen_range(0.0..0.30)
        } else {
            0.0
        };
        let duplicate = if rng.gen_bool(0.5) {
            rng.gen_range(0.0..0.15)
        } else {
            0.0
        };
        let reorder = if rng.gen_bool(0.5) {
            rng.gen_range(0.0..0.4)
        } else {
            0.0
        };
        let links = LinkFaults {
            loss,
            duplicate,
            reorder,
            reorder_delay_us: rng.gen_range(0..5_000),
            delay_us: rng.gen_range(50..500),
            jitter_us: {
                let hi = rng.gen_range(1..2_000);
                rng.gen_range(0..hi)
            },
        };
        let mut weights: Vec<(&'static str, u32)> = Vec::new();
        for k in SWARM_KINDS {
            if rng.gen_bool(0.5) {
                weights.push((k, rng.gen_range(1..=4)));
            }
        }
        if weights.is_empty() {
            let k = SWARM_KINDS[rng.gen_range(0..SWARM_KINDS.len())];
            weights.push((k, 1));
        }
        let events = rng.gen_range(1..=12);
        let window = if rng.gen_bool(0.5) {
            let len = rng.gen_range(30_000..400_000u64);
            let start = rng.gen_range(50_000..end.saturating_sub(len).max(50_001));
            (start, (start + len).min(end))
        } else {
            (50_000u64, end)
        };
        let (budget, cuts) = if rng.gen_bool(0.125) {
            (n, 12)
        } else {
            ((n - 1) / 2, rng.gen_range(1..=2))
        };
        SwarmMix {
            links,
            weights,
            events,
            window,
            budget,
            cuts,
            buggify: None,
        }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> &'static str {
        let total: u32 = self.weights.iter().map(|w| w.1).sum();
        let mut x = rng.gen_range(0..total.max(1));
        for &(k, w) in &self.weights {
            if x < w {
                return k;
            }
            x -= w;
        }
        self.weights[0].0
    }
}

/// Draws a swarm schedule from `seed` (see [`SwarmMix`]): its own link faults, then
/// events of the enabled kinds, then [`Action::EndFaults`] and
/// [`Action::LivenessCore`] at `fault_phase_us`.
pub fn swarm(seed: u64, shape: RandomShape) -> (Schedule, SwarmMix) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d53_4348);
    let mut mix = SwarmMix::draw(&mut rng, shape);
    let mut brng = ChaCha8Rng::seed_from_u64(seed ^ 0x4255_4747_4946_5921);
    mix.buggify = Buggify::draw(&mut brng, shape);
    if mix.buggify.is_some() {
        // The scenario needs its messages to arrive in the order it sets up: no random
        // loss, duplication or reordering, a small jitter.
        mix.links = LinkFaults {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            jitter_us: mix.links.jitter_us.min(300),
            ..mix.links
        };
        mix.events = 0;
    }
    let mut s = Schedule::new();
    let n = shape.nodes;
    let total = n + shape.spare;
    let end = shape.fault_phase_us;
    let (t0, t1) = mix.window;
    let at = |rng: &mut ChaCha8Rng| Time(rng.gen_range(t0..t1.max(t0 + 1)));
    let clip = |t: u64| Time(t.min(end));
    let links = mix.links;
    s.at(Time(0), Action::SetLinks(links));
    let mut spent = 0usize;
    let mut cuts = 0usize;
    for _ in 0..mix.events {
        let t = at(&mut rng);
        let node = |rng: &mut ChaCha8Rng| rng.gen_range(0..n);
        let kind = mix.pick(&mut rng);
        let destructive = matches!(
            kind,
            "crash"
                | "crash_mgr"
                | "crash_mid_multicast"
                | "false_suspicion"
                | "concurrent_reconfigurers"
                | "leave"
                | "pause"
        );
        if destructive {
            if spent >= mix.budget {
                continue;
            }
            spent += 1;
        }
        let cut = matches!(
            kind,
            "partition" | "one_way_partition" | "one_way_node" | "majorities_ring" | "swizzle_clog"
        );
        if cut {
            if cuts >= mix.cuts {
                continue;
            }
            cuts += 1;
        }
        match kind {
            "crash" => {
                s.at(t, Action::Crash(Target::Node(node(&mut rng))));
            }
            "crash_mgr" => {
                s.at(t, Action::Crash(Target::Mgr));
            }
            "crash_mid_multicast" => {
                s.at(t, crash_during(&mut rng, n, 0.7));
            }
            "false_suspicion" if n >= 2 => {
                s.at(t, false_suspicion(&mut rng, n));
            }
            "concurrent_reconfigurers" => {
                let k = if n >= 7 { rng.gen_range(2..=3) } else { 2 };
                s.at(t, Action::ConcurrentReconfig { k });
            }
            "leave" => {
                let target = if rng.gen_bool(0.3) {
                    Target::Mgr
                } else {
                    Target::Node(node(&mut rng))
                };
                s.at(t, Action::Leave(target));
            }
            "pause" => {
                // Below and above the suspicion timeout (100 ms).
                let us = rng.gen_range(10_000..600_000);
                let target = if rng.gen_bool(0.3) {
                    Target::Mgr
                } else {
                    Target::Node(node(&mut rng))
                };
                s.at(t, Action::Pause { target, us });
            }
            "partition" if n >= 3 => {
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                let small = rng.gen_range(1..=(n - 1) / 2);
                let mut minority = order[..small].to_vec();
                minority.sort_unstable();
                let dur = rng.gen_range(50_000..700_000);
                s.at(t, Action::Partition(vec![minority]));
                s.at(clip(t.0 + dur), Action::Heal);
            }
            "one_way_partition" if n >= 2 => {
                let from = node(&mut rng);
                let to = (from + rng.gen_range(1..n)) % n;
                s.at(t, Action::Block { from, to });
                s.at(clip(t.0 + rng.gen_range(50_000..400_000)), Action::Heal);
            }
            "one_way_node" if n >= 2 => {
                // A node that hears but cannot speak, or speaks but cannot hear.
                let x = node(&mut rng);
                let out = rng.gen_bool(0.5);
                for j in (0..total).filter(|&j| j != x) {
                    let (from, to) = if out { (x, j) } else { (j, x) };
                    s.at(t, Action::Block { from, to });
                }
                s.at(clip(t.0 + rng.gen_range(50_000..500_000)), Action::Heal);
            }
            "majorities_ring" if n >= 4 => {
                s.at(t, Action::MajoritiesRing { seed: rng.gen() });
                s.at(clip(t.0 + rng.gen_range(100_000..800_000)), Action::Heal);
            }
            "swizzle_clog" => {
                // Clog a random subset one by one, then unclog in another order.
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut rng);
                order.truncate(rng.gen_range(1..=n));
                let step = rng.gen_range(5_000..60_000);
                // Mostly below the suspicion timeout (100 ms); a long clog of a
                // majority makes everyone suspect everyone and the group is lost.
                let delay_us = if rng.gen_bool(0.2) {
                    rng.gen_range(100_000..600_000)
                } else {
                    rng.gen_range(2_000..90_000)
                };
                let mut when = t.0;
                for &x in &order {
                    s.at(clip(when), Action::Clog { node: x, delay_us });
                    when += step;
                }
                when += rng.gen_range(0..300_000);
                order.shuffle(&mut rng);
                for &x in &order {
                    s.at(clip(when), Action::Unclog(x));
                    when += step;
                }
            }
            "loss_spike" => {
                let f = LinkFaults {
                    loss: rng.gen_range(0.2..0.5),
                    ..links
                };
                s.at(t, Action::SetLinks(f));
                s.at(
                    clip(t.0 + rng.gen_range(20_000..300_000)),
                    Action::SetLinks(links),
                );
            }
            "join" if shape.spare > 0 => {
                s.at(t, Action::Join(n + rng.gen_range(0..shape.spare)));
            }
            "rejoin_new_incarnation" => {
                s.at(t, Action::RejoinAny);
            }
            "slow_link" if n >= 2 => {
                let from = node(&mut rng);
                let to = (from + rng.gen_range(1..n)) % n;
                let slow = LinkFaults {
                    delay_us: rng.gen_range(2_000..60_000),
                    ..links
                };
                s.at(
                    t,
                    Action::SetLink {
                        from,
                        to,
                        faults: slow,
                    },
                );
            }
            _ => {}
        }
    }
    if let Some(b) = mix.buggify {
        b.schedule(&mut s, shape, &mut brng);
    }
    add_total_failures(&mut s, seed, shape);
    s.at(Time(end), Action::EndFaults);
    s.at(
        Time(end),
        Action::LivenessCore {
            seed: rng.gen(),
            isolate: rng.gen_bool(0.3),
        },
    );
    (s, mix)
}

/// Failures that touch everyone at once, drawn from a stream of their own (so that
/// the rest of a seed's schedule is what it was before they existed): a total outage
/// of 1 to 20 suspicion timeouts (15% of seeds), a full restart after 50-500 ms down
/// (15%), and the loss of one node's disk (10%).
pub fn add_total_failures(s: &mut Schedule, seed: u64, shape: RandomShape) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x544f_5441_4c46_4149);
    let end = shape.fault_phase_us;
    let n = shape.nodes;
    let clip = |t: u64| Time(t.min(end));
    if rng.gen_bool(0.15) {
        let t = rng.gen_range(50_000..end);
        s.at(Time(t), Action::TotalOutage);
        s.at(clip(t + rng.gen_range(100_000..2_000_000)), Action::Heal);
    }
    if rng.gen_bool(0.15) {
        let t = rng.gen_range(50_000..end);
        s.at(Time(t), Action::CrashAll);
        s.at(clip(t + rng.gen_range(50_000..500_000)), Action::RestartAll);
    }
    if rng.gen_bool(0.10) && n >= 1 {
        let t = rng.gen_range(50_000..end);
        s.at(Time(t), Action::DiskLoss(rng.gen_range(0..n)));
    }
}

/// BUGGIFY-style scenarios (issue 17): schedules that reach the hard cases of
/// reconfiguration on purpose, as FoundationDB's BUGGIFY does, instead of waiting for
/// the random search to stumble on them. Each swarm seed runs one with a small
/// probability ([`Buggify::draw`]), in place of its random events; the timings, delays
/// and crash points are drawn from the seed, so different seeds cut the protocol at
/// different places. Roles are by node index: n0 is the first mgr, n1 and n2 the next
/// most senior founders, the spares join in index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buggify {
    /// Figure 5 with a committed R-sub (needs views of seven: five founders and two
    /// spares joined, a third spare joining): the mgr's M-sub(+joiner) reaches only the
    /// last member H (every other link out of the mgr is cut, and H -> n1 too); the mgr
    /// crashes; n1 reconfigures without hearing H and proposes -{mgr, H}; its R-sub
    /// reaches the others but n2 (n1 -> n2 is cut once its R-int is out), and it
    /// crashes during its R-com fan-out (0 or 1 copies leave), after installing. n2
    /// then hears both proposals: H's answer first (the others' answers to n2 are slowed
    /// down), and must propagate n1's, the least-ranked initiator's.
    Fig5,
    /// SubAhead: a leave and a join are pipelined (com(x+1):sub(x+2)), the joiner can
    /// speak only to the mgr (so n1 would not propose it itself); n1 stops hearing the mgr
    /// after it acknowledged x+1, so it misses com(x+1):sub(x+2); the mgr waits for n1
    /// until its protocol timeout and then commits x+2 (invisibly, since the others
    /// have turned to n1 by then; in some seeds the mgr also crashes during an M-com
    /// fan-out). n1, still at x, reconfigures: the others are at x+1 holding the mgr's
    /// x+2, which it must propagate (DetermineProposal's SubAhead).
    SubAhead,
    /// Several concurrent initiators (2 or 3) while a spare joins and a reconfigurer
    /// crashes during its R-sub or R-com fan-out.
    ConcurrentJoin,
    /// A crash of the mgr during the fan-out of a compressed M-com (a join pending),
    /// after 0..n copies, while n1 cannot hear the mgr.
    CommitFanout,
}

impl Buggify {
    /// Draws the scenario of a seed, if any: about 14 % of the seeds run one (each
    /// kind with its own probability, where the shape allows it).
    pub fn draw(rng: &mut ChaCha8Rng, shape: RandomShape) -> Option<Buggify> {
        let n = shape.nodes;
        let x: f64 = rng.gen();
        if n >= 5 && shape.spare >= 3 && x < 0.05 {
            Some(Buggify::Fig5)
        } else if n >= 4 && shape.spare >= 1 && (0.05..0.09).contains(&x) {
            Some(Buggify::SubAhead)
        } else if n >= 5 && shape.spare >= 1 && (0.09..0.12).contains(&x) {
            Some(Buggify::ConcurrentJoin)
        } else if n >= 3 && shape.spare >= 1 && (0.12..0.14).contains(&x) {
            Some(Buggify::CommitFanout)
        } else {
            None
        }
    }

    /// Adds the scenario's actions to `s`.
    pub fn schedule(self, s: &mut Schedule, shape: RandomShape, rng: &mut ChaCha8Rng) {
        let n = shape.nodes;
        let ms = |x: u64| Time(x * 1_000);
        let slow = |us: u64| LinkFaults::PERFECT.with_delay(us, 0);
        match self {
            Buggify::Fig5 => {
                // Views of n + 2: n founders, then spares n and n+1; n+2 joins later.
                let (h, joiner) = (n + 1, n + 2);
                s.at(ms(20), Action::Join(n));
                s.at(ms(40), Action::Join(h));
                let t0 = rng.gen_range(150..350u64);
                let d = rng.gen_range(3_000..10_000u64);
                for from in (3..=n).filter(|&f| f != h) {
                    s.at(
                        ms(t0 - 50),
                        Action::SetLink {
                            from,
                            to: 2,
                            faults: slow(d),
                        },
                    );
                }
                for to in (1..=n).filter(|&t| t != h) {
                    s.at(ms(t0), Action::Block { from: 0, to });
                }
                s.at(ms(t0), Action::Block { from: h, to: 1 });
                s.at(ms(t0), Action::Join(joiner));
                s.at(ms(t0 + 10), Action::Crash(Target::Node(0)));
                // After n1's R-int (about 70 ms after the crash), before its R-sub.
                let off = t0 + rng.gen_range(75..110u64);
                s.at(ms(off), Action::Block { from: 1, to: 2 });
                s.at(
                    ms(off),
                    Action::CrashDuring {
                        target: Target::Node(1),
                        kind: Some(MsgKind::RCom),
                        after: rng.gen_range(0..2),
                    },
                );
                s.at(ms(off + rng.gen_range(400..900u64)), Action::Heal);
            }
            Buggify::SubAhead => {
                let t0 = rng.gen_range(100..400u64);
                let d = rng.gen_range(5_000..20_000u64);
                let leaver = n - 1;
                let joiner = n;
                // Acknowledgements to the mgr are slow, but n1's: the mgr's
                // com(x+1):sub(x+2) leaves about d after its M-sub(x+1).
                for from in (2..n).filter(|&f| f != leaver) {
                    s.at(
                        ms(t0 - 5),
                        Action::SetLink {
                            from,
                            to: 0,
                            faults: slow(d),
                        },
                    );
                }
                // x+1: the most junior founder leaves.
                s.at(ms(t0), Action::Leave(Target::Node(leaver)));
                // x+2: a join whose requests reach only the mgr (so nobody forwards
                // them to n1, and n1 would not propose it itself).
                let total = n + shape.spare;
                for to in (1..total).filter(|&t| t != joiner) {
                    s.at(ms(t0), Action::Block { from: joiner, to });
                }
                s.at(
                    Time(ms(t0).0 + rng.gen_range(200..d / 2)),
                    Action::Join(joiner),
                );
                // After n1 acknowledged M-sub(x+1), before the com(x+1):sub(x+2): n1
                // stays at x; the mgr waits for it until its protocol timeout, then
                // commits x+2 (invisibly: the others have turned to n1 by then).
                s.at(
                    Time(ms(t0).0 + rng.gen_range(1_500..d - 1_000)),
                    Action::Block { from: 0, to: 1 },
                );
                if rng.gen_bool(0.2) {
                    s.at(
                        ms(t0),
                        Action::CrashDuring {
                            target: Target::Node(0),
                            kind: Some(MsgKind::MCom),
                            after: rng.gen_range(0..n as u32),
                        },
                    );
                }
                s.at(ms(t0 + rng.gen_range(300..900u64)), Action::Heal);
            }
            Buggify::ConcurrentJoin => {
                let t0 = rng.gen_range(100..800u64);
                let k = rng.gen_range(2..=3);
                s.at(ms(t0), Action::ConcurrentReconfig { k });
                s.at(
                    Time(ms(t0).0 + rng.gen_range(0..30_000u64)),
                    Action::Join(n + rng.gen_range(0..shape.spare)),
                );
                let kind = if rng.gen_bool(0.5) {
                    MsgKind::RSub
                } else {
                    MsgKind::RCom
                };
                s.at(
                    ms(t0),
                    Action::CrashDuring {
                        target: Target::Node(rng.gen_range(1..=k)),
                        kind: Some(kind),
                        after: rng.gen_range(0..n as u32),
                    },
                );
            }
            Buggify::CommitFanout => {
                let t0 = rng.gen_range(100..800u64);
                if rng.gen_bool(0.5) {
                    s.at(ms(t0 - 1), Action::Block { from: 0, to: 1 });
                    s.at(ms(t0 + rng.gen_range(100..600u64)), Action::Heal);
                }
                s.at(ms(t0), Action::Join(n + rng.gen_range(0..shape.spare)));
                if shape.spare >= 2 && rng.gen_bool(0.5) {
                    s.at(
                        Time(ms(t0).0 + rng.gen_range(100..2_000u64)),
                        Action::Join(n + 1),
                    );
                }
                s.at(
                    ms(t0),
                    Action::CrashDuring {
                        target: Target::Mgr,
                        kind: Some(MsgKind::MCom),
                        after: rng.gen_range(0..n as u32),
                    },
                );
            }
        }
    }
}
