//! Tunables of the transport core.

use crate::{wire, Keyring, TransportConfigError};

/// Tunables of an [`Endpoint`](crate::Endpoint).
///
/// Every buffer of the endpoint is sized from these numbers once, in
/// [`Endpoint::new`](crate::Endpoint::new); nothing grows afterwards. All members of a
/// cluster must use the same `mtu` (it fixes the largest fragment a peer may send) and
/// the same `cluster_id`.
///
/// Windows are counted in *frames*: a message that fits one datagram is one frame, a
/// larger one takes one frame per fragment (see [`TransportConfig::frames_for`]).
///
/// [`TransportConfig::validate`] checks every bound below and names the one a setting
/// breaks; [`Driver::bind`](crate::Driver::bind) refuses a config that fails it. The
/// sans-IO [`Endpoint::new`](crate::Endpoint::new) takes any config and uses its
/// [`normalized`](TransportConfig::normalized) form (values moved to their bounds), so
/// that tests and the simulator may pass partial settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Identifies the cluster; datagrams carrying another id are dropped
    /// ([`DropReason::ForeignCluster`](crate::DropReason::ForeignCluster)).
    pub cluster_id: u64,
    /// Largest datagram we emit, in bytes (default 1400; within
    /// [`TransportConfig::MIN_MTU`]..=[`TransportConfig::MAX_MTU`]).
    pub mtu: usize,
    /// Largest message accepted by [`Endpoint::send`](crate::Endpoint::send), in bytes
    /// (default 64 KiB). Larger messages are fragmented and reassembled.
    pub max_message: usize,
    /// Peer table capacity (distinct node names), preallocated (default 256; within
    /// 1..=[`TransportConfig::MAX_PEERS`]).
    pub max_peers: usize,
    /// Frames in flight (queued or unacknowledged) per peer (default 256). At least one
    /// maximal message plus one frame ([`TransportConfig::min_window`]).
    pub send_window: usize,
    /// Frames buffered on receipt per peer, out of order or not yet delivered (default 256).
    /// At least one maximal message plus one frame ([`TransportConfig::min_window`]).
    pub recv_window: usize,
    /// Retransmission timeout before the first RTT sample, µs (default 200 ms; RFC 6298
    /// says 1 s, which is too slow for a LAN). Within `min_rto_us..=max_rto_us`.
    pub initial_rto_us: u64,
    /// Lower bound of the retransmission timeout, µs (default 2 ms; at least 1).
    pub min_rto_us: u64,
    /// Upper bound of the retransmission timeout and of its exponential backoff, µs
    /// (default 2 s; at least `min_rto_us`).
    pub max_rto_us: u64,
    /// Consecutive retransmission timeouts without any acknowledgement progress after
    /// which the peer is reported unreachable (default 8; at least 1).
    pub max_retries: u32,
    /// Time without acknowledgement progress, while data or a keepalive is outstanding,
    /// after which the peer is reported unreachable, µs (default 5 s).
    pub unreachable_after_us: u64,
    /// Longest delay of an acknowledgement when no datagram to piggy-back it on leaves,
    /// µs (default 1 ms).
    pub delayed_ack_us: u64,
    /// A channel with nothing outstanding sends a keepalive after this much time without
    /// reliable traffic, µs (default 1 s; at least 1). Keepalives are echoed, giving RTT
    /// samples and detecting silent peers.
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
    /// take the entries this process needs to reach its own peers. At most `max_peers`.
    pub reserved_for_sends: usize,
    /// Probes queued in each direction (sent-not-transmitted, received-not-polled),
    /// preallocated (default [`PROBE_QUEUE`](crate::endpoint::PROBE_QUEUE) = 64); a
    /// probe arriving at a full queue is dropped and counted. The membership service
    /// raises it, since its clients speak in probes.
    pub probe_queue: usize,
    /// Peer-table entries in use above which the endpoint keeps a schedule of its
    /// entries' deadlines and pending work (a heap and two bit sets, updated as each
    /// entry changes) instead of passing every entry on each poll (default 16; 0:
    /// from the first entry). The pass reads a line or two of every entry per poll;
    /// the schedule adds its own code to every step. Above a few dozen entries (a mgr
    /// of a large group) the schedule reads far less; below, the pass costs less
    /// (docs/bench/view_change_perf.md §17). It changes no datagram and no delivery.
    pub schedule_above: usize,
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
            schedule_above: 16,
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

    /// Smallest `send_window` and `recv_window`: the frames of one maximal message
    /// (`max_message` bytes) plus one.
    pub fn min_window(&self) -> usize {
        self.frames_for(self.max_message) + 1
    }

    /// Checks every setting against its bound (see the fields); the first one broken is
    /// named in the error. A config that passes is its own
    /// [`normalized`](Self::normalized) form.
    pub fn validate(&self) -> Result<(), TransportConfigError> {
        let small = |field, got: usize, min: usize, bound| TransportConfigError::TooSmall {
            field,
            got: got as u64,
            min: min as u64,
            bound,
        };
        let large = |field, got: usize, max: usize, bound| TransportConfigError::TooLarge {
            field,
            got: got as u64,
            max: max as u64,
            bound,
        };
        if self.mtu < Self::MIN_MTU {
            return Err(small(
                "mtu",
                self.mtu,
                Self::MIN_MTU,
                "TransportConfig::MIN_MTU",
            ));
        }
        if self.mtu > Self::MAX_MTU {
            return Err(large(
                "mtu",
                self.mtu,
                Self::MAX_MTU,
                "TransportConfig::MAX_MTU",
            ));
        }
        if self.max_peers < 1 {
            return Err(small("max_peers", self.max_peers, 1, "at least one peer"));
        }
        if self.max_peers > Self::MAX_PEERS {
            return Err(large(
                "max_peers",
                self.max_peers,
                Self::MAX_PEERS,
                "TransportConfig::MAX_PEERS",
            ));
        }
        let need = self.min_window();
        let window_bound = "the frames of one max_message, plus one";
        if self.send_window < need {
            return Err(small("send_window", self.send_window, need, window_bound));
        }
        if self.recv_window < need {
            return Err(small("recv_window", self.recv_window, need, window_bound));
        }
        let small_us = |field, got: u64, min: u64, bound| TransportConfigError::TooSmall {
            field,
            got,
            min,
            bound,
        };
        if self.min_rto_us < 1 {
            return Err(small_us("min_rto_us", self.min_rto_us, 1, "at least 1 µs"));
        }
        if self.max_rto_us < self.min_rto_us {
            return Err(small_us(
                "max_rto_us",
                self.max_rto_us,
                self.min_rto_us,
                "min_rto_us",
            ));
        }
        if self.initial_rto_us < self.min_rto_us {
            return Err(small_us(
                "initial_rto_us",
                self.initial_rto_us,
                self.min_rto_us,
                "min_rto_us",
            ));
        }
        if self.initial_rto_us > self.max_rto_us {
            return Err(TransportConfigError::TooLarge {
                field: "initial_rto_us",
                got: self.initial_rto_us,
                max: self.max_rto_us,
                bound: "max_rto_us",
            });
        }
        if self.max_retries < 1 {
            return Err(small_us(
                "max_retries",
                self.max_retries.into(),
                1,
                "at least one retransmission",
            ));
        }
        if self.keepalive_us < 1 {
            return Err(small_us(
                "keepalive_us",
                self.keepalive_us,
                1,
                "at least 1 µs",
            ));
        }
        if self.reserved_for_sends > self.max_peers {
            return Err(large(
                "reserved_for_sends",
                self.reserved_for_sends,
                self.max_peers,
                "max_peers",
            ));
        }
        Ok(())
    }

    /// The config an [`Endpoint`](crate::Endpoint) actually uses, whatever it was given:
    /// `mtu` clamped to its bounds, windows raised to hold at least one maximal message
    /// (plus one frame), RTO bounds put in order, at least one peer. The identity on a
    /// config that passes [`validate`](Self::validate), and always a config that passes.
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
        c.max_peers
            .saturating_mul(c.send_window.saturating_add(c.recv_window))
            .saturating_mul(c.frame_capacity())
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

    /// The frame storage is a slot per window entry per peer, computed without
    /// overflow (a size beyond a `usize` reads as `usize::MAX`, for a bound to refuse).
    #[test]
    fn reserved_bytes_count_a_slot_per_window_entry_per_peer() {
        let c = TransportConfig::default();
        assert_eq!(
            c.reserved_bytes(),
            c.max_peers * (c.send_window + c.recv_window) * c.frame_capacity()
        );
        let huge = TransportConfig {
            max_peers: usize::MAX / 2,
            send_window: usize::MAX / 2,
            ..TransportConfig::default()
        };
        let n = huge.normalized();
        let want = (n.max_peers as u128)
            .saturating_mul((n.send_window + n.recv_window) as u128)
            .saturating_mul(n.frame_capacity() as u128)
            .min(usize::MAX as u128);
        assert_eq!(huge.reserved_bytes() as u128, want);
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

    /// `validate` on the default config changed by `f`.
    fn check(f: impl FnOnce(&mut TransportConfig)) -> Result<(), TransportConfigError> {
        let mut c = TransportConfig::default();
        f(&mut c);
        c.validate()
    }

    fn too_small(field: &str, got: u64, min: u64) -> impl Fn(TransportConfigError) -> bool + '_ {
        move |e| {
            matches!(e, TransportConfigError::TooSmall { field: f, got: g, min: m, .. }
                if f == field && g == got && m == min)
        }
    }

    fn too_large(field: &str, got: u64, max: u64) -> impl Fn(TransportConfigError) -> bool + '_ {
        move |e| {
            matches!(e, TransportConfigError::TooLarge { field: f, got: g, max: m, .. }
                if f == field && g == got && m == max)
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(TransportConfig::default().validate(), Ok(()));
    }

    #[test]
    fn mtu_within_its_bounds() {
        let min = TransportConfig::MIN_MTU as u64;
        let max = TransportConfig::MAX_MTU as u64;
        assert!(check(|c| c.mtu = 10).is_err_and(too_small("mtu", 10, min)));
        assert!(check(|c| c.mtu = 70_000).is_err_and(too_large("mtu", 70_000, max)));
        // A smaller mtu means more frames per maximal message: larger windows.
        assert_eq!(
            check(|c| {
                c.mtu = TransportConfig::MIN_MTU;
                c.send_window = 512;
                c.recv_window = 512;
            }),
            Ok(())
        );
        assert_eq!(check(|c| c.mtu = TransportConfig::MAX_MTU), Ok(()));
    }

    #[test]
    fn max_peers_within_its_bounds() {
        let max = TransportConfig::MAX_PEERS as u64;
        assert!(check(|c| c.max_peers = 0).is_err_and(too_small("max_peers", 0, 1)));
        assert!(check(|c| c.max_peers = 1 << 21).is_err_and(too_large("max_peers", 1 << 21, max)));
        assert_eq!(check(|c| c.max_peers = 1), Ok(()));
    }

    #[test]
    fn windows_hold_a_maximal_message_plus_one_frame() {
        let need = TransportConfig::default().min_window();
        assert_eq!(need, TransportConfig::default().frames_for(64 * 1024) + 1);
        let n = need as u64;
        assert!(check(|c| c.send_window = need - 1).is_err_and(too_small("send_window", n - 1, n)));
        assert!(check(|c| c.recv_window = 0).is_err_and(too_small("recv_window", 0, n)));
        assert_eq!(
            check(|c| {
                c.send_window = need;
                c.recv_window = need;
            }),
            Ok(())
        );
        // The bound follows max_message and mtu.
        assert_eq!(
            check(|c| {
                c.max_message = 100;
                c.send_window = 2;
                c.recv_window = 2;
            }),
            Ok(())
        );
    }

    #[test]
    fn rto_bounds_in_order() {
        assert!(check(|c| c.min_rto_us = 0).is_err_and(too_small("min_rto_us", 0, 1)));
        assert!(check(|c| c.max_rto_us = 1_000).is_err_and(too_small("max_rto_us", 1_000, 2_000)));
        assert!(check(|c| c.initial_rto_us = 1_000).is_err_and(too_small(
            "initial_rto_us",
            1_000,
            2_000
        )));
        assert!(
            check(|c| c.initial_rto_us = 3_000_000).is_err_and(too_large(
                "initial_rto_us",
                3_000_000,
                2_000_000
            ))
        );
        assert_eq!(
            check(|c| {
                c.min_rto_us = 5;
                c.initial_rto_us = 5;
                c.max_rto_us = 5;
            }),
            Ok(())
        );
    }

    #[test]
    fn retries_keepalive_and_reservation() {
        assert!(check(|c| c.max_retries = 0).is_err_and(too_small("max_retries", 0, 1)));
        assert!(check(|c| c.keepalive_us = 0).is_err_and(too_small("keepalive_us", 0, 1)));
        assert!(check(|c| c.reserved_for_sends = 257).is_err_and(too_large(
            "reserved_for_sends",
            257,
            256
        )));
        assert_eq!(check(|c| c.reserved_for_sends = 256), Ok(()));
    }

    #[test]
    fn errors_name_the_field_and_the_bound() {
        let e = check(|c| c.mtu = 10).unwrap_err();
        assert_eq!(e.field(), "mtu");
        assert_eq!(
            e.to_string(),
            "mtu = 10 is below 256 (TransportConfig::MIN_MTU)"
        );
        let e = check(|c| c.initial_rto_us = 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "initial_rto_us = 1 is below 2000 (min_rto_us)"
        );
    }

    proptest::proptest! {
        /// `normalized` always gives a valid config, and is the identity on valid ones.
        #[test]
        fn normalized_is_valid_and_valid_is_normalized(
            mtu in 0usize..70_000,
            max_message in 0usize..200_000,
            max_peers in 0usize..2_000,
            send_window in 0usize..400,
            recv_window in 0usize..400,
            rto in proptest::array::uniform3(0u64..5_000_000),
            max_retries in 0u32..10,
            keepalive_us in 0u64..3,
            reserved_for_sends in 0usize..3_000,
        ) {
            let c = TransportConfig {
                mtu,
                max_message,
                max_peers,
                send_window,
                recv_window,
                initial_rto_us: rto[0],
                min_rto_us: rto[1],
                max_rto_us: rto[2],
                max_retries,
                keepalive_us,
                reserved_for_sends,
                ..TransportConfig::default()
            };
            let n = c.normalized();
            proptest::prop_assert_eq!(n.validate(), Ok(()));
            proptest::prop_assert_eq!(n.normalized(), n);
            if c.validate().is_ok() {
                proptest::prop_assert_eq!(n, c);
            }
        }
    }
}
