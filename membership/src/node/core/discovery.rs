//! Discovery, cold start and rejoin in [`NodeCore`]: queries and probes, the answers
//! to refused senders and D24's exclusion notice, founding, joining, and starting over
//! as a new incarnation.

use super::*;

impl NodeCore {
    /// Starts (or restarts) discovery: queries to the seeds and the members known.
    pub(super) fn begin_discovery(&mut self, now: Time) {
        let has_targets = !self.targets().is_empty();
        // D29: a majority of the seed set (the other seeds and this one; the core's
        // seed list leaves out its own address) must be heard cold-starting before a
        // fresh seed founds.
        let mut seeds = self.cfg.seeds.clone();
        seeds.sort_unstable();
        seeds.dedup();
        let seed_set = seeds.len() + 1;
        self.discovery = Some(
            Discovery::new(
                self.me,
                self.fresh,
                has_targets,
                self.cfg.coldstart_rounds,
                self.cfg.coldstart_round_us,
                now,
            )
            .with_seed_quorum(seed_set / 2 + 1),
        );
        self.phase = NodePhase::Discovering;
        if self.durable.view.version > 0 {
            // With a view: recover. With a group that ended: take part only to tell
            // recovering processes it ended (they adopt the empty view and cold-start).
            self.recovery = Some(Recovery::new(
                self.me,
                self.addr,
                self.cfg.coldstart_round_us,
                now,
                &self.durable,
            ));
            if !self.durable.ended {
                self.phase = NodePhase::Recovering;
            }
        }
        self.push_event(CoreEvent::Started);
    }

    pub(super) fn targets(&self) -> Vec<SocketAddr> {
        let mut t: Vec<SocketAddr> = self.cfg.seeds.clone();
        t.extend(self.last_members.iter().map(|m| m.addr));
        t.retain(|a| *a != self.addr);
        t.sort();
        t.dedup();
        t
    }

    pub(super) fn probe(&mut self, now: Time, addr: SocketAddr, p: &Probe) {
        p.encode(&mut self.probe_out);
        match self.endpoint.send_probe(now, addr, &self.probe_out) {
            Ok(()) => {
                self.stats.probes_sent += 1;
                self.queued = true;
            }
            Err(e) => tracing::debug!(node = %self.me, %addr, "probe not sent: {e}"),
        }
    }

    pub(super) fn on_probe(&mut self, now: Time, from: ProcessId, addr: SocketAddr, p: Probe) {
        // D24 rule 7: a member of the view runs and reaches this process.
        if self.engine.member_alive(now, from) {
            tracing::info!(node = %self.me, peer = %from, "the network heals but beliefs leave no majority: recovering");
        }
        if let Probe::Member { contacts, .. } = &p {
            for c in contacts {
                if self.known.len() < KNOWN_CAP {
                    self.known.insert(c.id, c.addr);
                }
            }
        }
        if self.known.len() < KNOWN_CAP || self.known.contains_key(&from) {
            self.known.insert(from, addr);
        }
        if let Probe::Query { .. } = p {
            let answer = match self.engine.status() {
                Status::Member => Some(Probe::Member {
                    version: self.engine.view().version,
                    contacts: self
                        .engine
                        .view()
                        .members
                        .iter()
                        .filter(|m| !self.engine.faulty().contains(&m.id))
                        .take(coldstart::MAX_CONTACTS)
                        .copied()
                        .collect(),
                }),
                _ if self.recovery.is_some() && !self.durable.ended => Some(Probe::Recovering {
                    version: self.durable.view.version,
                }),
                Status::Joining => Some(Probe::Member {
                    version: 0,
                    contacts: self
                        .join_contacts
                        .iter()
                        .take(coldstart::MAX_CONTACTS)
                        .copied()
                        .collect(),
                }),
                _ => match &self.discovery {
                    Some(d) if d.is_cold() => Some(Probe::ColdStarting { round: d.round() }),
                    _ => None,
                },
            };
            if let Some(a) = answer {
                self.probe(now, addr, &a);
            }
            // D24: a querier outside this member's view may be a process that was
            // removed and withholds (it believes it is still a member): tell it.
            if self.engine.status() == Status::Member && !self.engine.view().contains(from) {
                self.answer_refused(now, from, addr);
            }
        }
        if let Probe::Recovering { version } = p {
            if let Some(r) = &mut self.recovery {
                r.on_peer(now, from, addr);
            }
            // D24 rule 5: a later view than this member's was installed, and the
            // group is being recovered: a member that hears no majority stops
            // withholding and takes part in the recovery as a new incarnation.
            if version > self.engine.view().version && self.engine.stop_withholding(now) {
                tracing::info!(node = %self.me, peer = %from, version, "a later view is being recovered while this process hears no majority: recovering");
            }
        }
        if let Probe::Excluded {
            you,
            version,
            contacts,
        } = &p
        {
            if *you == self.me {
                self.on_excluded_notice(now, from, *version, contacts);
            }
            return;
        }
        if let Probe::Query { .. } = p {
            // D24: a newer process of a name of this member's view, or of the view it
            // accepted for the next version (a joiner it would need), is looking for
            // the group, so the old one is gone; a member that hears no majority stops
            // withholding and takes part in the recovery as a new incarnation (where
            // its acceptance may prove that next view chosen, D23 *Learning*).
            let newer = |m: &crate::view::Member| {
                m.id.node == from.node && m.id.incarnation < from.incarnation
            };
            let replaced = self.engine.view().members.iter().any(newer)
                || self
                    .durable
                    .accepted
                    .as_ref()
                    .is_some_and(|a| a.view.members.iter().any(newer));
            if replaced && self.engine.stop_withholding(now) {
                tracing::info!(node = %self.me, peer = %from, "a name of the view restarted while this process hears no majority: recovering");
            }
        }
        if matches!(p, Probe::Member { version, .. } if version > 0) {
            // D29: a member answered, so a group exists: this node only ever joins
            // from now on. (A cold-starter outranked at the start and then cut off
            // from the founder for longer than its join timeout must not count
            // towards, or be, a second founder.)
            self.fresh = false;
            if let Some(d) = &mut self.discovery {
                d.stop_founding();
            }
        }
        // A recovering process joins only through members: another joiner's contacts
        // (version 0) may be as gone as its own.
        let from_joiner = matches!(p, Probe::Member { version: 0, .. });
        if let Some(d) = self
            .discovery
            .as_mut()
            .filter(|_| !(from_joiner && self.recovery.is_some()))
        {
            match d.on_probe(now, from, &p) {
                Decision::Join(c) => self.join(now, c),
                Decision::Bootstrap => self.bootstrap(now),
                Decision::Query | Decision::Wait => {}
            }
        }
    }

    /// D24, the member's side: the transport refused a datagram from `from` (it was
    /// disconnected, or addressed an older incarnation of this process), or `from`
    /// queried it. If this process is a member and `from` is not in its view, tell it
    /// so, with contacts to rejoin through. At most one notice per address per
    /// discovery round; at most [`TOLD_CAP`] addresses remembered (a full table
    /// answers nobody new until an entry is a round old).
    pub(super) fn answer_refused(&mut self, now: Time, from: ProcessId, addr: SocketAddr) {
        if self.engine.status() != Status::Member || self.leaving.is_some() {
            return;
        }
        if self.engine.view().contains(from) {
            // Still a member here: behind (it addressed an older incarnation of this
            // node), or believed faulty with its removal under way. The group's own
            // messages catch it up or remove it (telling it now would exclude it
            // before the group decided: a reconfigurer may yet keep it). If this
            // process withholds, a believed-faulty member alive is what it lacks
            // (D24 rule 7).
            if self.engine.member_alive(now, from) {
                tracing::info!(node = %self.me, peer = %from, "the network heals but beliefs leave no majority: recovering");
            }
            return;
        }
        let view = self.engine.view();
        let round = self.cfg.coldstart_round_us;
        match self.told.iter().position(|(a, _)| *a == addr) {
            Some(i) if now.micros_since(self.told[i].1) < round => return,
            Some(i) => self.told[i].1 = now,
            None if self.told.len() < TOLD_CAP => self.told.push((addr, now)),
            None => {
                let (i, oldest) = self
                    .told
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(i, (_, t))| (i, *t))
                    .expect("the table is full");
                if now.micros_since(oldest) < round {
                    return;
                }
                self.told[i] = (addr, now);
            }
        }
        let me = Member {
            id: self.me,
            addr: self.addr,
        };
        let mut contacts = Vec::with_capacity(coldstart::MAX_CONTACTS);
        contacts.push(me);
        contacts.extend(
            view.members
                .iter()
                .filter(|m| {
                    m.id != self.me && m.id != from && !self.engine.faulty().contains(&m.id)
                })
                .take(coldstart::MAX_CONTACTS - 1)
                .copied(),
        );
        let notice = Probe::Excluded {
            you: from,
            version: view.version,
            contacts,
        };
        tracing::debug!(node = %self.me, to = %from, %addr, "telling a refused process it was excluded");
        self.stats.exclusions_told += 1;
        self.probe(now, addr, &notice);
    }

    /// D24, the excluded process's side: `by` says this process is out. A member
    /// stops if the notice proves it ([`Engine::told_excluded`]) and its next
    /// incarnation joins through `contacts` at once; a joiner whose request reached a
    /// stale contact starts over at once as a new incarnation through them.
    pub(super) fn on_excluded_notice(
        &mut self,
        now: Time,
        by: ProcessId,
        version: u64,
        contacts: &[Member],
    ) {
        let fresh: Vec<Member> = contacts
            .iter()
            .filter(|c| c.id.node != self.me.node)
            .copied()
            .collect();
        match self.engine.status() {
            Status::Member
                if self.leaving.is_none() && self.engine.told_excluded(now, by, version) =>
            {
                tracing::info!(node = %self.me, %by, version, "told it was excluded");
                self.stats.exclusions_heard += 1;
                if !fresh.is_empty() {
                    self.rejoin_contacts = Some(fresh);
                }
            }
            Status::Joining if version > 0 && !fresh.is_empty() => {
                // Only a newer incarnation of a join contact proves the contact gone:
                // any other member outside whose view this joiner is answers its
                // discovery queries with the notice too (D24 rule 6), which says
                // nothing about the join, and a joiner that started over on it
                // would leave its pending request to be committed for a process
                // that no longer runs (a cold start of seven lost its group so).
                if !self
                    .join_contacts
                    .iter()
                    .any(|c| c.id.node == by.node && c.id != by)
                {
                    return;
                }
                // The join request went to a process that is gone (a stale contact).
                // Start over at once through the member that answered, as a new
                // incarnation: the group may have added and removed this one already
                // (its State-Xfer lost), and a removed id must never come back.
                tracing::info!(node = %self.me, %by, "join contact refused: joining through the member that answered");
                self.rejoin_contacts = Some(fresh);
                self.new_incarnation(now, false);
            }
            _ => {}
        }
    }

    pub(super) fn bootstrap(&mut self, now: Time) {
        self.discovery = None;
        let me = Member {
            id: self.me,
            addr: self.addr,
        };
        // After a group that ended, versions go on (never two views with one version).
        let version = if self.durable.ended {
            self.durable.view.version + 1
        } else {
            1
        };
        tracing::info!(node = %self.me, version, "cold start: founding the group");
        self.engine.bootstrap_at(now, version, &[me]);
        self.on_founded();
    }

    pub(super) fn on_founded(&mut self) {
        if let Some(s) = &mut self.service {
            let v = self.engine.view();
            s.on_founded(v.version, &v.members);
        }
        self.push_event(CoreEvent::Founded);
    }

    pub(super) fn join(&mut self, now: Time, contacts: Vec<Member>) {
        // A recovery goes on while joining: the contacts may be gone too, and then the
        // recovery is what brings the group back.
        self.discovery = None;
        tracing::info!(node = %self.me, contacts = contacts.len(), "joining the group");
        for c in &contacts {
            if self.known.len() < KNOWN_CAP || self.known.contains_key(&c.id) {
                self.known.insert(c.id, c.addr);
            }
        }
        self.push_event(CoreEvent::Joining {
            contacts: contacts.len(),
        });
        self.join_contacts = contacts;
        self.join_started = now;
        self.engine.join(now, &self.join_contacts);
        self.phase = NodePhase::Joining;
    }

    /// Comes back as a new incarnation: fresh endpoint and engine, discovery again.
    /// What the old endpoint still had queued is dropped with it.
    pub(super) fn new_incarnation(&mut self, now: Time, join_timeout: bool) {
        let old = self.me;
        // Below MAX_INCARNATION + one per rejoin: never wraps.
        let me = ProcessId::new(old.node, old.incarnation + 1);
        self.reincarnate(me);
        self.service_out.clear();
        self.backlog.clear();
        self.heard_since = now;
        self.stats.rejoins += 1;
        self.recovery = None;
        self.durable.incarnation = me.incarnation;
        if !self.save() {
            return;
        }
        // `fresh` stays as it was: false once this node installed any view, so a
        // process that was a member only ever joins again.
        tracing::info!(old = %old, new = %me, "rejoining as a new incarnation");
        self.events.push_back((
            old,
            CoreEvent::Rejoining {
                old,
                new: me,
                join_timeout,
            },
        ));
        self.begin_discovery(now);
        if let Some(c) = self.rejoin_contacts.take() {
            // D24: told it was excluded, with contacts: join through them at once
            // (the recovery, if any, goes on meanwhile).
            self.join(now, c);
        }
    }
}
