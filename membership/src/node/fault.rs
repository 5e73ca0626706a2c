//! Run-time fault injection ([`FaultCommand`]) applied to the driver's fault layer.

use std::net::SocketAddr;

use sgmp_transport::{FaultLayer, LinkFaults};

/// Fault injection at run time (the driver's fault layer).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultCommand {
    /// Lose outgoing datagrams with this probability (every link).
    Loss(f64),
    /// Block both directions to these peers: node names, `NAME#INC` or addresses.
    Partition(Vec<String>),
    /// Block only what this node sends to these peers (a one-way cut; what they send
    /// still arrives). Same peer syntax as `Partition`; undone by `Heal`.
    Cut(Vec<String>),
    /// Send a second copy of outgoing datagrams with this probability (every link).
    Duplicate(f64),
    /// Hold back outgoing datagrams with this probability by up to `max_delay_us`, so
    /// that later ones overtake them (every link).
    Reorder {
        /// Probability that a datagram is held back.
        p: f64,
        /// Largest extra delay, µs.
        max_delay_us: u64,
    },
    /// Remove every partition and cut (loss, duplication and reordering stay).
    Heal,
    /// Remove every partition and the loss, duplication and reordering.
    Clear,
}

/// Applies `cmd` to `faults` on behalf of the node at `local`; `resolve` turns a peer
/// name (`NAME`, `NAME#INC` or an address) into addresses. Returns what was done, or why
/// nothing was.
pub(crate) fn apply(
    faults: Option<&mut FaultLayer>,
    local: SocketAddr,
    cmd: FaultCommand,
    resolve: impl Fn(&str) -> Vec<SocketAddr>,
) -> Result<String, String> {
    let mut addrs = Vec::new();
    if let FaultCommand::Partition(peers) | FaultCommand::Cut(peers) = &cmd {
        for p in peers {
            let a = resolve(p);
            if a.is_empty() {
                return Err(format!("unknown peer {p:?}"));
            }
            addrs.extend(a);
        }
    }
    let Some(f) = faults else {
        return Err("fault injection is off".into());
    };
    // The node sets no per-link faults, so any link shows the default.
    let current = f.link(local, local);
    let msg = match cmd {
        FaultCommand::Loss(p) => {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("loss must be in [0, 1] (got {p})"));
            }
            f.set_default(LinkFaults { loss: p, ..current });
            format!("loss set to {p}")
        }
        FaultCommand::Duplicate(p) => {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("duplication must be in [0, 1] (got {p})"));
            }
            f.set_default(LinkFaults {
                duplicate: p,
                ..current
            });
            format!("duplication set to {p}")
        }
        FaultCommand::Reorder { p, max_delay_us } => {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("reordering must be in [0, 1] (got {p})"));
            }
            f.set_default(current.with_reorder(p, max_delay_us));
            format!("reordering set to {p} (up to {max_delay_us} us)")
        }
        FaultCommand::Heal => {
            f.heal_all();
            "partitions healed".into()
        }
        FaultCommand::Partition(_) => {
            for &a in &addrs {
                f.partition_both(local, a);
            }
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            format!("partitioned from {}", list.join(", "))
        }
        FaultCommand::Cut(_) => {
            for &a in &addrs {
                f.partition(local, a);
            }
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            format!("cut off sending to {}", list.join(", "))
        }
        FaultCommand::Clear => {
            f.heal_all();
            f.set_default(LinkFaults::PERFECT);
            "faults cleared".into()
        }
    };
    tracing::warn!(%local, "fault injection: {msg}");
    Ok(msg)
}
