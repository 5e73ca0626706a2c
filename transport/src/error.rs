//! Typed errors and drop reasons.

use std::fmt;

use crate::ProcessId;

/// Why [`Endpoint::send`](crate::Endpoint::send) refused a message. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The send window to this peer is full: back off until acknowledgements free it
    /// (drive the endpoint, then retry).
    #[error("send window to the peer is full; retry once acknowledgements have arrived")]
    WindowFull,
    /// The message is larger than `max_message`.
    #[error("message of {len} bytes is larger than the {max}-byte limit")]
    TooLarge {
        /// Length of the refused message.
        len: usize,
        /// The configured `max_message`.
        max: usize,
    },
    /// The channel to this incarnation was closed for good with
    /// [`Endpoint::disconnect`](crate::Endpoint::disconnect).
    #[error("the channel to {0} is closed for good (disconnected)")]
    Disconnected(ProcessId),
    /// A newer incarnation of this node is known; the older one can never be reached again.
    #[error("{peer} is an old incarnation: its node is now at incarnation {current}")]
    StaleIncarnation {
        /// The refused destination.
        peer: ProcessId,
        /// The newest incarnation known for the node.
        current: u64,
    },
    /// Every slot of the peer table is taken by other nodes.
    #[error("the peer table is full; no channel can be opened to a new node")]
    PeerTableFull,
}

/// Why a [`TransportConfig`](crate::TransportConfig) cannot be used as it is
/// ([`TransportConfig::validate`](crate::TransportConfig::validate)): the setting, its
/// value, and the bound it breaks, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportConfigError {
    /// A setting is below its smallest allowed value.
    #[error("{field} = {got} is below {min} ({bound})")]
    TooSmall {
        /// The setting (a field of `TransportConfig`).
        field: &'static str,
        /// Its value.
        got: u64,
        /// The smallest allowed value.
        min: u64,
        /// What the bound is.
        bound: &'static str,
    },
    /// A setting is above its largest allowed value.
    #[error("{field} = {got} is above {max} ({bound})")]
    TooLarge {
        /// The setting (a field of `TransportConfig`).
        field: &'static str,
        /// Its value.
        got: u64,
        /// The largest allowed value.
        max: u64,
        /// What the bound is.
        bound: &'static str,
    },
}

impl TransportConfigError {
    /// The setting at fault.
    pub fn field(&self) -> &'static str {
        match self {
            TransportConfigError::TooSmall { field, .. }
            | TransportConfigError::TooLarge { field, .. } => field,
        }
    }
}

/// Why a received datagram (or all of its data) was dropped. Each reason is counted in
/// [`Stats::drops`](crate::Stats::drops), indexed by [`DropReason::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The CRC32 trailer does not match.
    Checksum,
    /// The datagram does not decode: too short, bad magic, bad kind, bad lengths, a frame
    /// larger than our slots, an acknowledgement of data never sent, ...
    Malformed,
    /// Another cluster id.
    ForeignCluster,
    /// A protocol version we do not speak.
    BadVersion,
    /// From an older incarnation of a node whose newer incarnation we know.
    StaleIncarnation,
    /// Addressed to another incarnation of this node.
    WrongReceiver,
    /// From an incarnation whose channel was closed with `disconnect`.
    Disconnected,
    /// Data frames beyond the receive window (the sender retransmits them later).
    WindowFull,
    /// Data frames all received before (the acknowledgement it carries is still used).
    Duplicate,
    /// From a new node while the peer table is full (or while only the entries reserved
    /// for sends are left, see `TransportConfig::reserved_for_sends`).
    PeerTableFull,
    /// The receiver holds cluster keys and the datagram carries no authentication tag.
    Unauthenticated,
    /// The authentication tag does not verify under any key the receiver holds
    /// (tampered with, forged, or signed with a key this node does not hold).
    BadTag,
}

impl DropReason {
    /// Number of reasons (length of [`Stats::drops`](crate::Stats::drops)).
    pub const COUNT: usize = 12;
    /// Every reason, in [`index`](DropReason::index) order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Checksum,
        DropReason::Malformed,
        DropReason::ForeignCluster,
        DropReason::BadVersion,
        DropReason::StaleIncarnation,
        DropReason::WrongReceiver,
        DropReason::Disconnected,
        DropReason::WindowFull,
        DropReason::Duplicate,
        DropReason::PeerTableFull,
        DropReason::Unauthenticated,
        DropReason::BadTag,
    ];

    /// Position of this reason in [`Stats::drops`](crate::Stats::drops).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Checksum => "checksum",
            DropReason::Malformed => "malformed",
            DropReason::ForeignCluster => "foreign_cluster",
            DropReason::BadVersion => "bad_version",
            DropReason::StaleIncarnation => "stale_incarnation",
            DropReason::WrongReceiver => "wrong_receiver",
            DropReason::Disconnected => "disconnected",
            DropReason::WindowFull => "window_full",
            DropReason::Duplicate => "duplicate",
            DropReason::PeerTableFull => "peer_table_full",
            DropReason::Unauthenticated => "unauthenticated",
            DropReason::BadTag => "bad_tag",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(DropReason::Checksum.to_string(), "checksum");
        assert!(SendError::TooLarge { len: 5, max: 4 }
            .to_string()
            .contains("5 bytes"));
    }
}
