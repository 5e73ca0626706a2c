//! Member tags in the engine (`crate::tags`, `docs/PROTOCOL.md` D25): a tag change is
//! an update, formed by the mgr like a join or a removal and committed by the same
//! submit / ack / commit rounds, so every member has the same tags at a version.
//!
//! Each process keeps the tags it wants (`wanted`). A joiner's join request carries
//! them and the update that adds it sets them. A member whose tags in the installed
//! view differ from what it wants (it changed them, or it founded or recovered a view,
//! which carries no tags) asks the mgr with a `TagReq`, and again every protocol
//! timeout until a view shows them (requests are lost when the mgr changes). The mgr
//! queues the latest request per member (`pending`) and GetUpdate puts them in its
//! next update. Everything is sized at construction: no allocation.

use super::{Engine, Role, Status};
use crate::msg::{MsgKind, Writer};
use crate::tags::{TagError, TagTable, Tags};
use crate::view::Update;
use crate::{ProcessId, Time};

/// The engine's tag state.
#[derive(Debug)]
pub(super) struct TagState {
    /// The tags this process wants (encoded, validated).
    pub(super) wanted: Vec<u8>,
    /// (mgr) Tag changes asked for by members, waiting for an update.
    pending: TagTable,
    /// (mgr) Tags of queued joiners.
    joiners: TagTable,
    /// When to compare the view's tags with `wanted` again (and ask the mgr).
    check_at: Option<Time>,
}

impl TagState {
    /// Room for everything `cfg` allows; starts wanting `cfg.tags` (if valid).
    pub(super) fn new(cfg: &crate::EngineConfig) -> Self {
        let (max_members, max_pending_joins, max_tag_bytes) =
            (cfg.max_members, cfg.max_pending_joins, cfg.max_tag_bytes);
        let mut wanted = Vec::with_capacity(max_tag_bytes);
        if crate::tags::validate(&cfg.tags, max_tag_bytes).is_ok() {
            wanted.extend_from_slice(&cfg.tags);
        }
        TagState {
            wanted,
            pending: TagTable::with_capacity(max_members, max_tag_bytes),
            joiners: TagTable::with_capacity(max_pending_joins, max_tag_bytes),
            check_at: None,
        }
    }
}

impl Engine {
    /// Sets the tags this process wants (encoded by [`crate::TagSet::encode`]): carried
    /// by its join request, or, once a member, committed by the mgr as an update (a
    /// view change) and retried until a view shows them. Refused when malformed or
    /// larger than `max_tag_bytes`.
    pub fn set_tags(&mut self, now: Time, tags: &[u8]) -> Result<(), TagError> {
        crate::tags::validate(tags, self.cfg.max_tag_bytes)?;
        self.tag.wanted.clear();
        self.tag.wanted.extend_from_slice(tags);
        if self.status == Status::Member {
            self.tag.check_at = None;
            self.request_tags(now);
        }
        Ok(())
    }

    /// The tags this process wants (what [`Engine::set_tags`] set); the agreed ones are
    /// in the view ([`crate::View::tags_of`]).
    pub fn tags(&self) -> Tags<'_> {
        Tags::from_valid(&self.tag.wanted)
    }

    /// Tag changes queued at this process (as mgr) and not yet in an update.
    pub fn pending_tag_changes(&self) -> usize {
        self.tag.pending.len()
    }

    fn tags_settled(&self) -> bool {
        self.view.tags_of(self.me.id).as_bytes() == self.tag.wanted.as_slice()
    }

    /// After a view is installed: if it does not show the tags this process wants,
    /// ask at the next timeout, a microsecond later: not within the input that
    /// installed the view (the commit being handled must finish first, and a driver
    /// sees one view installed per input even when the mgr is alone and commits at
    /// once).
    pub(super) fn tags_after_install(&mut self, now: Time) {
        self.tag.check_at = (!self.tags_settled()).then_some(now + 1);
    }

    /// When [`Engine::tags_timeout`] wants to run.
    pub(super) fn tags_deadline(&self) -> Option<Time> {
        self.tag.check_at
    }

    /// Timer: ask again if the view still does not show our tags.
    pub(super) fn tags_timeout(&mut self, now: Time) {
        if self.tag.check_at.is_some_and(|t| now >= t) {
            self.tag.check_at = None;
            self.request_tags(now);
        }
    }

    /// Asks the mgr (or, as mgr, queues) for the tags this process wants, unless the
    /// view shows them already; retries after a protocol timeout.
    fn request_tags(&mut self, now: Time) {
        if self.status != Status::Member || self.leaving || self.tags_settled() {
            self.tag.check_at = None;
            return;
        }
        self.tag.check_at = Some(now + self.cfg.protocol_timeout_us);
        if self.role == Role::Initiator {
            let me = self.me.id;
            self.tag.pending.set(me, &self.tag.wanted);
            return self.maybe_start_update(now);
        }
        let Some(leader) = self
            .leader
            .filter(|l| !self.is_faulty(*l))
            .and_then(|l| self.member_in_view(l))
        else {
            return;
        };
        let start = self.begin(MsgKind::TagReq);
        Writer::continue_at(&mut self.out_buf).tags(&self.tag.wanted);
        self.push_out(MsgKind::TagReq, leader, start);
    }

    /// A member asks for new tags: an initiator queues the request (the latest per
    /// member counts) for its next update; others ignore it (the member repeats it).
    pub(super) fn on_tag_request(&mut self, now: Time, from: ProcessId, tags: &[u8]) {
        if self.role != Role::Initiator || !self.in_view(from) {
            self.stats.ignored += 1;
            return;
        }
        self.tag.pending.set(from, tags);
        self.maybe_start_update(now);
    }

    /// The mgr queued a joiner: keep its tags until GetUpdate adds it.
    pub(super) fn queue_joiner_tags(&mut self, joiner: ProcessId, tags: &[u8]) {
        // One entry per node: a newer incarnation replaces an older one.
        self.tag.joiners.retain(|p| p.node != joiner.node);
        if !tags.is_empty() && self.tag.joiners.len() < self.pending_joins.capacity() {
            self.tag.joiners.set(joiner, tags);
        }
    }

    /// GetUpdate's tag part: the tags of the joiners `u` adds, then the queued tag
    /// changes of members `u` keeps (changes that would change nothing are dropped).
    pub(super) fn take_tag_changes(&mut self, u: &mut Update) {
        for a in &u.adds {
            if let Some(t) = self.tag.joiners.get(a.id) {
                u.tags.set(a.id, t.as_bytes());
            }
        }
        let joins = &self.pending_joins;
        self.tag.joiners.retain(|p| joins.iter().any(|m| m.id == p));
        for (id, t) in self.tag.pending.iter() {
            if self.in_view(id) && !u.removes.contains(&id) && self.view.tags_of(id) != t {
                u.tags.set(id, t.as_bytes());
            }
        }
        self.tag.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EngineConfig;
    use crate::tags::TagSet;
    use crate::testkit::Cluster;

    fn tags(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut t = TagSet::new();
        for (k, v) in pairs {
            t.insert(k, v).unwrap();
        }
        t.encode()
    }

    #[test]
    fn a_tag_change_is_committed_identically_at_every_member() {
        let mut c = Cluster::new(4, 0, EngineConfig::default());
        c.run_until_quiet(10_000);
        let v0 = c.engines[0].view().version;
        let id2 = c.engines[2].me().id;
        let db = tags(&[("role", "db"), ("zone", "eu-1")]);
        let now = c.now;
        // Asked at an outer member: a TagReq to the mgr, then one view change.
        c.engines[2].set_tags(now, &db).unwrap();
        c.flush(2);
        c.run_until_quiet(10_000);
        for e in &c.engines {
            assert_eq!(e.view().version, v0 + 1, "one view change");
            assert_eq!(e.view().tags_of(id2).as_bytes(), db.as_slice());
            assert_eq!(e.view().tags_of(id2).get("role"), Some("db"));
            assert_eq!(e.view().digest(), c.engines[0].view().digest());
            let u = e.committed_update(v0 + 1).expect("logged");
            assert!(u.removes.is_empty() && u.adds.is_empty());
            assert_eq!(u.tags.get(id2).unwrap().as_bytes(), db.as_slice());
        }
        // The mgr changes its own tags, and the same member clears its tags.
        let id0 = c.engines[0].me().id;
        let web = tags(&[("role", "web")]);
        let now = c.now;
        c.engines[0].set_tags(now, &web).unwrap();
        c.engines[2].set_tags(now, &[]).unwrap();
        c.flush(0);
        c.flush(2);
        c.run_until_quiet(10_000);
        let v = c.engines[0].view().version;
        assert!(v > v0 + 1);
        for e in &c.engines {
            assert_eq!(e.view().version, v);
            assert_eq!(e.view().tags_of(id0).get("role"), Some("web"));
            assert!(e.view().tags_of(id2).is_empty());
            assert_eq!(e.view(), c.engines[0].view());
        }
        // Setting the same tags again changes nothing.
        let now = c.now;
        c.engines[0].set_tags(now, &web).unwrap();
        c.run_until_quiet(10_000);
        assert_eq!(c.engines[0].view().version, v);
    }

    #[test]
    fn tags_outside_the_bound_are_refused() {
        let cfg = EngineConfig {
            max_tag_bytes: 8,
            ..EngineConfig::default()
        };
        let mut c = Cluster::new(2, 0, cfg);
        c.run_until_quiet(10_000);
        let now = c.now;
        let e = c.engines[1]
            .set_tags(now, &tags(&[("role", "database")]))
            .unwrap_err();
        assert!(matches!(e, crate::TagError::TooLarge { max: 8, .. }));
        assert!(c.engines[1].set_tags(now, &[0]).is_err());
        assert!(c.engines[1].tags().is_empty());
    }

    #[test]
    fn a_joiner_brings_its_tags_in_the_update_that_adds_it() {
        let mut c = Cluster::new(3, 1, EngineConfig::default());
        c.run_until_quiet(10_000);
        let db = tags(&[("role", "db")]);
        let now = c.now;
        c.engines[3].set_tags(now, &db).unwrap();
        c.join(3, 1);
        c.run_until_quiet(10_000);
        let j = c.engines[3].me().id;
        let v = c.engines[0].view().version;
        for e in &c.engines {
            assert_eq!(e.view().version, v);
            assert!(e.view().contains(j));
            assert_eq!(e.view().tags_of(j).get("role"), Some("db"));
            assert_eq!(e.view(), c.engines[0].view());
        }
        let u = c.engines[0].committed_update(v).unwrap();
        assert_eq!(u.adds.len(), 1, "the join and its tags are one update");
        assert!(u.tags.get(j).is_some());
    }
}
