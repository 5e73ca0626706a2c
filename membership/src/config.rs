//! Engine configuration: limits that size every buffer at construction, and timeouts.

/// Settings of one S-GMP engine. Every buffer of the engine is sized from these at
/// construction, so that a view change allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest view the engine can hold (core members). Views, update sets and
    /// suspicion sets are preallocated to this size.
    pub max_members: usize,
    /// Largest application snapshot carried by State-Xfer, in bytes.
    pub max_snapshot: usize,
    /// How often a member sends a heartbeat to the member that watches it (ring monitoring).
    pub heartbeat_interval_us: u64,
    /// Silence after which the watched member is suspected faulty.
    pub suspect_timeout_us: u64,
    /// How long an initiator waits for a response (ack, state) before suspecting the
    /// silent member, and how long an outer member waits for a reconfigurer before
    /// suspecting it.
    pub protocol_timeout_us: u64,
    /// How often a joining process repeats its join request (to the next contact).
    pub join_retry_us: u64,
    /// Commit-submit compression (paper §5.2): piggy-back the next submit on the commit.
    /// Off sends the submit as a message of its own, so both costs can be measured.
    pub compression: bool,
    /// Most join requests queued at the mgr; later ones are dropped and counted.
    pub max_pending_joins: usize,
    /// Most client changes one update carries (the membership service,
    /// docs/SERVICE.md); 0 turns the service off. More queued changes wait for the next
    /// update, so under churn every view change carries a batch.
    pub max_client_ops: usize,
    /// Most client changes queued at a member (waiting to be forwarded) or at the mgr
    /// (waiting for an update); later ones are dropped and counted (clients repeat them).
    pub max_pending_client_ops: usize,
    /// How long an idle mgr lets client changes gather before it proposes them (core
    /// changes are proposed at once). Failures of clients detected by different
    /// watchers a little apart then share one view change (docs/SERVICE.md).
    pub client_linger_us: u64,
    /// The driver reports transport-level signs of life ([`crate::Engine::peer_alive`])
    /// for every datagram it accepts, acknowledgements included, so a member hears its
    /// ring watcher as well as the member it watches. Turns on D21 (docs/PROTOCOL.md):
    /// a process that hears no member but the one it would suspect waits, and if that
    /// lasts, stops instead of spreading the suspicion. Off for an engine driven
    /// without the transport's reports, where a member hears only the member it watches.
    pub local_health: bool,
    /// Largest encoded tags of one member, bytes (`crate::tags`; at most
    /// [`crate::tags::MAX_TAG_BYTES`], 0 turns tags off). Every view and update holds
    /// room for `max_members` times this much, allocated at construction.
    pub max_tag_bytes: usize,
    /// The tags this process starts with, encoded ([`crate::TagSet::encode`]): sent
    /// with its join request, or asked of the mgr once it founded or recovered a view
    /// (`docs/PROTOCOL.md`, D25). Change them later with [`crate::Engine::set_tags`].
    pub tags: Vec<u8>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_members: 64,
            max_snapshot: 64 * 1024,
            heartbeat_interval_us: 100_000,
            suspect_timeout_us: 500_000,
            protocol_timeout_us: 1_000_000,
            join_retry_us: 500_000,
            compression: true,
            max_pending_joins: 64,
            max_client_ops: 0,
            max_pending_client_ops: 0,
            client_linger_us: 0,
            local_health: false,
            max_tag_bytes: crate::tags::MAX_TAG_BYTES,
            tags: Vec::new(),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_members` is outside 1..=[`EngineConfig::MAX_MEMBERS`].
    #[error("max_members must be between 1 and 1024 (got {0})")]
    MaxMembers(usize),
    /// A timeout or interval is zero.
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    /// `max_tag_bytes` is above [`crate::tags::MAX_TAG_BYTES`].
    #[error("max_tag_bytes must be at most 512 (got {0})")]
    MaxTagBytes(usize),
    /// The initial tags are malformed or larger than `max_tag_bytes`.
    #[error("tags: {0}")]
    Tags(crate::TagError),
    /// The suspicion timeout is not longer than the heartbeat interval.
    #[error(
        "suspect_timeout_us ({suspect}) must be longer than heartbeat_interval_us ({heartbeat})"
    )]
    SuspectBelowHeartbeat {
        /// The suspicion timeout.
        suspect: u64,
        /// The heartbeat interval.
        heartbeat: u64,
    },
}

impl EngineConfig {
    /// Largest `max_members` accepted by [`EngineConfig::validate`].
    pub const MAX_MEMBERS: usize = 1024;

    /// Checks the settings for values the engine cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_members == 0 || self.max_members > Self::MAX_MEMBERS {
            return Err(ConfigError::MaxMembers(self.max_members));
        }
        if self.max_tag_bytes > crate::tags::MAX_TAG_BYTES {
            return Err(ConfigError::MaxTagBytes(self.max_tag_bytes));
        }
        crate::tags::validate(&self.tags, self.max_tag_bytes).map_err(ConfigError::Tags)?;
        for (name, v) in [
            ("heartbeat_interval_us", self.heartbeat_interval_us),
            ("suspect_timeout_us", self.suspect_timeout_us),
            ("protocol_timeout_us", self.protocol_timeout_us),
            ("join_retry_us", self.join_retry_us),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroTimeout(name));
            }
        }
        if self.suspect_timeout_us <= self.heartbeat_interval_us {
            return Err(ConfigError::SuspectBelowHeartbeat {
                suspect: self.suspect_timeout_us,
                heartbeat: self.heartbeat_interval_us,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: impl FnOnce(&mut EngineConfig)) -> Result<(), ConfigError> {
        let mut c = EngineConfig::default();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(EngineConfig::default().validate(), Ok(()));
    }

    #[test]
    fn max_members_within_its_bounds() {
        assert_eq!(
            check(|c| c.max_members = 0),
            Err(ConfigError::MaxMembers(0))
        );
        let over = EngineConfig::MAX_MEMBERS + 1;
        assert_eq!(
            check(|c| c.max_members = over),
            Err(ConfigError::MaxMembers(over))
        );
        assert_eq!(check(|c| c.max_members = 1), Ok(()));
        assert_eq!(check(|c| c.max_members = EngineConfig::MAX_MEMBERS), Ok(()));
        assert_eq!(
            ConfigError::MaxMembers(0).to_string(),
            format!(
                "max_members must be between 1 and {} (got 0)",
                EngineConfig::MAX_MEMBERS
            )
        );
    }

    #[test]
    fn every_timeout_is_positive() {
        type Set = fn(&mut EngineConfig);
        let zeroes: [(&str, Set); 4] = [
            ("heartbeat_interval_us", |c| c.heartbeat_interval_us = 0),
            ("suspect_timeout_us", |c| c.suspect_timeout_us = 0),
            ("protocol_timeout_us", |c| c.protocol_timeout_us = 0),
            ("join_retry_us", |c| c.join_retry_us = 0),
        ];
        for (name, set) in zeroes {
            assert_eq!(check(set), Err(ConfigError::ZeroTimeout(name)));
        }
    }

    #[test]
    fn suspicion_outlasts_the_heartbeat() {
        let e = check(|c| {
            c.heartbeat_interval_us = 100;
            c.suspect_timeout_us = 100;
        });
        assert_eq!(
            e,
            Err(ConfigError::SuspectBelowHeartbeat {
                suspect: 100,
                heartbeat: 100
            })
        );
        assert_eq!(
            check(|c| c.suspect_timeout_us = c.heartbeat_interval_us + 1),
            Ok(())
        );
    }
}
