//! Tunables of the transport core.

use crate::{wire, Keyring};

/// Tunables of an [`Endpoint`](crate::Endpoint).
///
/// Every buffer of the endpoint is sized from these numbers once, in
/// [`Endpoint::new`](crate::Endpoint::new); nothing grows afterwards. All members of a
/// cluster must use the same `mtu` (it fixes the largest fragment a peer may send) and
/// the same `cluster_id`.
///
/// Windows are counted in *frames*: a message that fits one datagram is one frame, a
/// larger one takes one frame per fragment (see [`TransportConfig::frames_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Identifies the cluster; datagrams carrying another id are dropped
    /// ([`DropReason::ForeignCluster`](crate::DropReason::ForeignCluster)).
    pub cluster_id: u64,
    /// Largest datagram we emit, in bytes (default 1400, clamped to
    /// [`TransportConfig::MIN_MTU`]..=[`TransportConfig::MAX_MTU`]).
    pub mtu: usize,
    /// Largest message accepted by [`Endpoint::send`](crate::Endpoint::send), in bytes
    /// (default 64 KiB). Larger messages are fragmented and reassembled.
    pub max_message: usize,
    /// Peer table capacity (distinct node names), preallocated (default 256).
    pub max_peers: usize,
    /// Frames in flight (queued or unacknowledged) per peer (default 256). Raised to at
    /// least one maximal message.
    pub send_window: usize,
    /// Frames buffered on receipt per peer, out of order or not yet delivered (default 256).
    /// Raised to at least one maximal message.
    pub recv_window: usize,
    /// Retransmission timeout before the first RTT sample, µs (default 200 ms; RFC 6298
    /// says 1 s, which is too slow for a LAN).
    pub initial_rto_us: u64,
    /// Lower bound of the retransmission timeout, µs (default 2 ms).
    pub min_rto_us: u64,
    /// Upper bound of the retransmission timeout and of its exponential backoff, µs
    /// (default 2 s).
    pub max_rto_us: u64,
    /// Consecutive retransmission timeouts without any acknowledgement progress after
    /// which the peer is reported unreachable (default 8).
    pub max_retries: u32,
    /// Time without acknowledgement progress, while data or a keepalive is outstanding,
    /// after which the peer is reported unreachable, µs (default 5 s).
    pub unreachable_after_us: u64,
    /// Longest delay of an acknowledgement when no datagram to piggy-back it on leaves,
    /// µs (default 1 ms).
    pub delayed_ack_us: u64,
    /// A channel with nothing outstanding sends a keepalive after this much time without
    /// reliable traffic, µs (default 1 s). Keepalives are echoed, giving RTT samples and
    /// detecting silent peers.
    pub keepalive_us: u64,
    /// Cluster keys (default none). With a key, every datagram sent is tagged with the
    /// primary key and every datagram received must carry a tag that verifies under
    /// one of the keys, or it is dropped before touching any state
    /// ([`DropReason::Unauthenticated`](crate::DropReason::Unauthenticated),
    /// [`DropReason::BadTag`](crate::DropReason::BadTag)). Without, tags are neither
    /// sent nor checked.
    pub keys: Keyring,
    /// Peer-table entries only [`Endpoint::send`](crate::Endpoint::send) may open
    /// (default 0): a datagram from an unknown node opens an entry only while more than
    /// this many are free, so that a flood of datagrams from made-up node names cannot
    /// take the entries this process needs to reach its own peers. Capped at `max_peers`.
    pub reserved_for_sends: usize,
    /// Probes queued in each direction (sent-not-transmitted, received-not-polled),
    /// preallocated (default [`PROBE_QUEUE`](crate::endpoint::PROBE_QUEUE) = 64); a
    /// probe arriving at a full queue is dropped and counted. The membership service
    /// raises it, since its clients speak in probes.
    pub probe_queue: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            cluster_id: 0,
            mtu: 1400,
            max_message: 64 * 1024,
            max_peers: 256,
            send_window: 256,
            recv_window: 256,
            initial_rto_us: 200_000,
            min_rto_us: 2_000,
            max_rto_us: 2_000_000,
            max_retries: 8,
            probe_queue: crate::endpoint::PROBE_QUEUE,
            unreachable_after_us: 5_000_000,
            delayed_ack_us: 1_000,
            keepalive_us: 1_000_000,
            keys: Keyring::NONE,
            reserved_for_sends: 0,
        }
    }
}

impl TransportConfig {
    /// Smallest usable `mtu`: room for the largest header plus a useful payload.
    pub const MIN_MTU: usize = 256;
    /// Largest usable `mtu`: the largest UDP payload over IPv4.
    pub const MAX_MTU: usize = 65_507;
    /// Most peers an endpoint can track (indices are stored in 32 bits).
    pub const MAX_PEERS: usize = 1 << 20;

    /// Payload bytes carried by one frame at this config's `mtu`, computed for the
    /// longest possible header so that every node name fits.
    pub fn frame_capacity(&self) -> usize {
        wire::frame_capacity(self.mtu.clamp(Self::MIN_MTU, Self::MAX_MTU))
    }

    /// Frames taken by a message of `len` bytes (an empty message takes one).
    pub fn frames_for(&self, len: usize) -> usize {
        len.div_ceil(self.frame_capacity()).max(1)
    }

    /// The config actually used by an endpoint: `mtu` clamped to its bounds, windows
    /// raised to hold at least one maximal message (plus one frame), RTO bounds put in
    /// order, at least one peer.
    pub fn normalized(&self) -> TransportConfig {
        let mut c = *self;
        c.mtu = c.mtu.clamp(Self::MIN_MTU, Self::MAX_MTU);
        c.max_peers = c.max_peers.clamp(1, Self::MAX_PEERS);
        let need = c.frames_for(c.max_message) + 1;
        c.send_window = c.send_window.max(need);
        c.recv_window = c.recv_window.max(need);
        c.min_rto_us = c.min_rto_us.max(1);
        c.max_rto_us = c.max_rto_us.max(c.min_rto_us);
        c.initial_rto_us = c.initial_rto_us.clamp(c.min_rto_us, c.max_rto_us);
        c.max_retries = c.max_retries.max(1);
        c.keepalive_us = c.keepalive_us.max(1);
        c.reserved_for_sends = c.reserved_for_sends.min(c.max_peers);
        c
    }

    /// Bytes of frame storage the endpoint reserves: one slot of
    /// [`frame_capacity`](Self::frame_capacity) bytes per window entry per peer. The
    /// storage is allocated zeroed in one block, so the operating system only backs the
    /// pages that traffic actually touches.
    pub fn reserved_bytes(&self) -> usize {
        let c = self.normalized();
        c.max_peers * (c.send_window + c.recv_window) * c.frame_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_hold_a_max_message() {
        let c = TransportConfig::default();
        assert_eq!(c.normalized(), c);
        assert!(c.frames_for(c.max_message) < c.send_window);
        assert_eq!(c.frames_for(0), 1);
        assert_eq!(c.frames_for(c.frame_capacity()), 1);
        assert_eq!(c.frames_for(c.frame_capacity() + 1), 2);
    }

    #[test]
    fn normalization_fixes_nonsense() {
        let c = TransportConfig {
            mtu: 10,
            send_window: 1,
            recv_window: 0,
            max_peers: 0,
            min_rto_us: 0,
            max_rto_us: 0,
            ..TransportConfig::default()
        }
        .normalized();
        assert_eq!(c.mtu, TransportConfig::MIN_MTU);
        assert!(c.send_window > c.frames_for(c.max_message));
        assert!(c.recv_window > c.frames_for(c.max_message));
        assert_eq!(c.max_peers, 1);
        assert!(c.min_rto_us >= 1 && c.max_rto_us >= c.min_rto_us);
    }
}
