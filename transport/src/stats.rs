//! Counters: endpoint totals and per-peer snapshots.

use std::net::SocketAddr;

use crate::{DropReason, ProcessId, Time};

/// Totals of an endpoint since it was created. A plain `Copy` snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams fed to `handle_datagram`.
    pub datagrams_in: u64,
    /// Bytes fed to `handle_datagram`.
    pub bytes_in: u64,
    /// Datagrams produced by `poll_transmit`.
    pub datagrams_out: u64,
    /// Bytes produced by `poll_transmit`.
    pub bytes_out: u64,
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Messages handed out by `poll_delivery`.
    pub messages_delivered: u64,
    /// Data frames put on the wire, first transmissions and retransmissions.
    pub frames_sent: u64,
    /// Frames sent again (after a timeout or a fast retransmit).
    pub retransmissions: u64,
    /// Frames marked for retransmission because later frames were selectively acknowledged.
    pub fast_retransmits: u64,
    /// Retransmission timer expirations.
    pub timeouts: u64,
    /// Data frames received that had been received before.
    pub duplicates: u64,
    /// Ack-only datagrams sent.
    pub acks_sent: u64,
    /// Keepalive datagrams sent.
    pub keepalives_sent: u64,
    /// Keepalive datagrams received.
    pub keepalives_received: u64,
    /// `PeerUnreachable` events raised.
    pub unreachable_events: u64,
    /// Messages cut short because the buffer given to `poll_delivery` was too small.
    pub truncated_deliveries: u64,
    /// Probe datagrams produced by `poll_transmit`.
    pub probes_sent: u64,
    /// Probe datagrams received and queued for `poll_probe`.
    pub probes_received: u64,
    /// Probe datagrams received and dropped because the probe queue was full.
    pub probes_dropped: u64,
    /// Dropped datagrams by reason, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
}

impl Stats {
    /// Datagrams dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Datagrams dropped for any reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub(crate) fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }
}

/// Counters and state of one peer's channel (current incarnation), as a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer (incarnation the channel is open with).
    pub peer: ProcessId,
    /// Where we send to (last address given to `send` or seen on a valid datagram).
    pub addr: Option<SocketAddr>,
    /// The channel was closed with `disconnect`.
    pub disconnected: bool,
    /// A `PeerUnreachable` was raised and no progress was seen since.
    pub unreachable: bool,
    /// Smoothed round-trip time, µs (`None` before the first sample).
    pub srtt_us: Option<u64>,
    /// Round-trip time variation, µs.
    pub rttvar_us: u64,
    /// Current retransmission timeout, µs (with backoff).
    pub rto_us: u64,
    /// Frames queued or unacknowledged.
    pub frames_in_window: u64,
    /// Consecutive retransmission timeouts without progress.
    pub retries: u32,
    /// When the last datagram from this incarnation was accepted (any kind: data,
    /// ack, keepalive), even if its data still waits behind a gap; `None` before the
    /// first. See [`crate::Endpoint::last_heard`].
    pub last_heard: Option<Time>,
    /// Traffic counters of the channel.
    pub counters: PeerCounters,
}

/// Per-peer traffic counters kept by the endpoint (part of [`PeerStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    /// Datagrams received from this peer and accepted.
    pub datagrams_in: u64,
    /// Bytes of those datagrams.
    pub bytes_in: u64,
    /// Datagrams sent to this peer.
    pub datagrams_out: u64,
    /// Bytes of those datagrams.
    pub bytes_out: u64,
    /// Messages queued for this peer.
    pub messages_sent: u64,
    /// Messages delivered from this peer.
    pub messages_delivered: u64,
    /// Frames sent again.
    pub retransmissions: u64,
    /// Frames marked by fast retransmit.
    pub fast_retransmits: u64,
    /// Retransmission timer expirations.
    pub timeouts: u64,
    /// Duplicate data frames received.
    pub duplicates: u64,
    /// Ack-only datagrams sent.
    pub acks_sent: u64,
    /// Keepalives sent.
    pub keepalives_sent: u64,
}
