//! The glue of [`NodeCore`]: after every input, the transport's deliveries and
//! suspicions to the engine, the engine's messages to the endpoint (or the backlog) and
//! its events, the recovery's and the service's outputs, the event queue.

use super::*;
use crate::SuspicionCause;

impl NodeCore {
    // ---- the glue ----

    /// After any input: probes, deliveries (the engine reacting to each), signs of
    /// life, transport suspicions, the engine's outputs, the service's, the leave.
    pub(super) fn after_input(&mut self, now: Time) {
        if self.phase == NodePhase::Stopped {
            return;
        }
        while let Some((from, addr, n)) = self.endpoint.poll_probe(&mut self.probe_buf) {
            self.timers_moved = true;
            let payload = &self.probe_buf[..n];
            if service_wire::is_service(payload) {
                if let Some(s) = &mut self.service {
                    if self.engine.status() == Status::Member {
                        s.on_datagram(now, addr, payload, &self.engine);
                    }
                }
            } else if let Some(p) = Probe::decode(payload) {
                self.on_probe(now, from, addr, p);
            } else {
                self.stats.probes_bad += 1;
            }
        }
        while let Some(r) = self.endpoint.poll_refused() {
            self.answer_refused(now, r.from, r.addr);
        }
        self.flush_backlog(now);
        while let Some((from, n)) = self.endpoint.poll_delivery(&mut self.rx_buf) {
            self.timers_moved = true;
            // Bookkeeping deferred by an earlier message of this input reads the state
            // that message left (an install copies the engine's view; it ends a
            // recovery): done before another message is handled, which could change
            // it (S-GMP installs at most one view per input at a member that stays —
            // the next commit waits for its acknowledgement — but the glue does not
            // rely on that).
            self.finish_deferred();
            let msg = &self.rx_buf[..n.min(self.rx_buf.len())];
            self.stats.delivered += 1;
            if msg.first() == Some(&RECOVERY_FORMAT) {
                if let Some((keep, t)) = &mut self.tap {
                    t.push(TapRecord {
                        sent: false,
                        peer: from,
                        kind: None,
                        bytes: if *keep { msg.to_vec() } else { Vec::new() },
                    });
                }
                self.on_recovery_message(now, from, n);
                continue;
            }
            if let Some((keep, t)) = &mut self.tap {
                t.push(TapRecord {
                    sent: false,
                    peer: from,
                    kind: msg.get(1).and_then(|b| MsgKind::from_u8(*b)),
                    bytes: if *keep { msg.to_vec() } else { Vec::new() },
                });
            }
            if self.engine.handle_message(now, from, msg).is_err() {
                self.stats.decode_errors += 1;
            }
            // Let the engine's reaction out before the next delivery.
            self.engine_outputs(now);
        }
        // Transport signs of life (D20): any datagram accepted from a member's current
        // incarnation, even one whose messages wait behind a lost datagram, defers the
        // ring detector's suspicion.
        for (peer, at) in self.endpoint.heard_since(self.heard_since) {
            self.engine.peer_alive(at, peer);
        }
        self.heard_since = now;
        while let Some(TransportEvent::PeerUnreachable(p)) = self.endpoint.poll_event() {
            tracing::debug!(node = %self.me, peer = %p, "transport: peer unreachable");
            self.timers_moved = true;
            // As before a message: the suspicion may make this process install (a mgr
            // alone in its view), and a deferred install's bookkeeping reads the view.
            self.finish_deferred();
            self.engine.suspect(now, p);
        }
        self.after_engine_input(now);
    }

    /// The tail of every input: the engine's outputs, the recovery's and the
    /// service's, and the leave. Skipped while an install waits for the step's
    /// datagrams (it runs when the install is finished).
    fn after_engine_input(&mut self, now: Time) {
        self.engine_outputs(now);
        if self.deferred.is_some() {
            return;
        }
        self.recovery_outputs(now);
        self.service_outputs(now);
        if let Some(until) = self.leaving {
            // Out once the removal is committed (the engine left, D9) and what it sent
            // last is acknowledged, or when the linger runs out.
            let left = matches!(self.engine.status(), Status::Excluded(_));
            if now >= until || (left && self.delivered_all()) {
                self.leaving = None;
                self.phase = NodePhase::Left;
                if !left {
                    // The removal did not commit in time: stop taking part, as a
                    // crash would (the group removes this process by suspicion). The
                    // channels close too, so that the transport's acknowledgements and
                    // keepalives stop vouching for it (D20).
                    self.engine = Engine::new(
                        self.cfg.engine.clone(),
                        Member {
                            id: self.me,
                            addr: self.addr,
                        },
                    );
                    self.saved_seq = 0;
                    for i in 0..self.last_members.len() {
                        let id = self.last_members[i].id;
                        if id != self.me {
                            self.endpoint.disconnect(id);
                        }
                    }
                    self.backlog.clear();
                }
                tracing::info!(node = %self.me, "left the group");
                self.push_event(CoreEvent::LeaveDone);
            }
        }
    }

    /// Sends what waited for room in a send window, in order per peer.
    pub(super) fn flush_backlog(&mut self, now: Time) {
        if self.backlog.is_empty() {
            return;
        }
        self.blocked.clear();
        let mut i = 0;
        while i < self.backlog.len() {
            let p = &self.backlog[i];
            if self.blocked.contains(&p.to) {
                i += 1;
                continue;
            }
            match self.endpoint.send(now, p.to, p.addr, &p.bytes) {
                Ok(()) => {
                    self.stats.messages += 1;
                    self.queued = true;
                    self.backlog.remove(i);
                }
                Err(SendError::WindowFull) => {
                    self.blocked.push(p.to);
                    i += 1;
                }
                Err(e) => {
                    self.count_refusal(&e);
                    self.backlog.remove(i);
                }
            }
        }
    }

    pub(super) fn count_refusal(&mut self, e: &SendError) {
        match e {
            SendError::Disconnected(_) | SendError::StaleIncarnation { .. } => {
                self.stats.send_refused += 1;
            }
            _ => {
                self.stats.send_errors += 1;
                tracing::error!(node = %self.me, "message refused by the transport: {e}");
            }
        }
    }

    /// The engine's messages to the endpoint (or the backlog), then its events.
    pub(super) fn engine_outputs(&mut self, now: Time) {
        loop {
            // D22: what the engine's messages depend on is durable before they leave;
            // a change that none of them reports is saved right after they left.
            if self.engine.durable_seq() != self.saved_seq && !self.save_after_send {
                if self.save_may_follow_send() {
                    self.save_after_send = true;
                } else if !self.sync_durable() {
                    return;
                }
            } else if self.save_after_send && !self.save_may_follow_send() && !self.sync_durable() {
                return;
            }
            while let Some(t) = self.engine.poll_transmit() {
                if let Some((keep, tap)) = &mut self.tap {
                    tap.push(TapRecord {
                        sent: true,
                        peer: t.to,
                        kind: t.payload.get(1).and_then(|b| MsgKind::from_u8(*b)),
                        bytes: if *keep {
                            t.payload.to_vec()
                        } else {
                            Vec::new()
                        },
                    });
                }
                let parked = !self.backlog.is_empty() && self.backlog.iter().any(|p| p.to == t.to);
                let res = if parked {
                    Err(SendError::WindowFull)
                } else {
                    self.endpoint.send(now, t.to, t.addr, t.payload)
                };
                match res {
                    Ok(()) => {
                        self.stats.messages += 1;
                        self.queued = true;
                    }
                    Err(SendError::WindowFull) => {
                        if self.backlog.len() >= BACKLOG_CAP {
                            self.stats.backlog_overflow += 1;
                            tracing::error!(node = %self.me, to = %t.to, "send backlog full: message lost");
                        } else {
                            self.stats.backlogged += 1;
                            self.backlog.push_back(Parked {
                                to: t.to,
                                addr: t.addr,
                                bytes: t.payload.to_vec(),
                            });
                            self.stats.max_backlog =
                                self.stats.max_backlog.max(self.backlog.len() as u64);
                        }
                    }
                    Err(e) => self.count_refusal(&e),
                }
            }
            if self.deferred.is_some() {
                // Later events wait behind the deferred install, in order.
                return;
            }
            let Some(ev) = self.engine.poll_event() else {
                return;
            };
            if !self.finishing && may_follow_send(&ev) {
                // The step's datagrams (the M-com, an acknowledgement) leave before the
                // bookkeeping, which sends nothing the engine's messages depend on, and
                // the runtime yields its core before the event poll that finishes it
                // (issue 19: 4-6 us off the mgr's commit step; a member's install no
                // longer delays the next member's read of the M-com, §18).
                self.deferred = Some((now, ev));
                return;
            }
            self.on_engine_event(now, ev);
        }
    }

    /// Finishes the bookkeeping left for the event poll (an install's, a suspicion's, a
    /// submission's or a reconfiguration's), then the rest of the step that waited
    /// behind it (later engine events, the recovery's and the service's outputs, the
    /// leave), at the step's time.
    pub(in crate::node) fn finish_deferred(&mut self) {
        let Some((at, ev)) = self.deferred.take() else {
            return;
        };
        // Everything behind it is done now, in order: nothing is deferred again (the
        // step's datagrams are out, or an input or a reader is waiting).
        self.finishing = true;
        self.on_engine_event(at, ev);
        self.timers_moved = true;
        self.after_engine_input(at);
        self.finishing = false;
        debug_assert!(self.deferred.is_none(), "a finished step defers nothing");
    }

    pub(super) fn on_engine_event(&mut self, now: Time, ev: Event) {
        match ev {
            Event::ViewInstalled { version, .. } => {
                let mut slot = if self.recent.len() >= RECENT_VIEWS {
                    self.recent.pop_front().expect("recent views are full")
                } else {
                    self.spare_views.pop().unwrap_or_else(|| {
                        View::with_tags(self.cfg.engine.max_members, self.cfg.engine.max_tag_bytes)
                    })
                };
                slot.clone_from(self.engine.view());
                debug_assert_eq!(slot.version, version);
                self.recent.push_back(slot);
                tracing::debug!(node = %self.me, version, "view installed");
                // Every member of the last view is known already (`last_members` is
                // always a subset of `known`, up to KNOWN_CAP): only the others are
                // hashed (at 63 members the table's inserts were half the cost of an
                // install).
                let view = &self.engine.view().members;
                for m in crate::view::members_missing_from(view, &self.last_members) {
                    if self.known.len() < KNOWN_CAP || self.known.contains_key(&m.id) {
                        self.known.insert(m.id, m.addr);
                    }
                }
                self.last_members.clear();
                self.last_members
                    .extend_from_slice(&self.engine.view().members);
                if let Some(s) = &mut self.service {
                    s.on_view_installed(now, version, &self.engine);
                }
                self.fresh = false;
                // A member (by joining or a recovery) takes no further part in one.
                self.recovery = None;
                self.discovery = None;
                if !matches!(
                    self.phase,
                    NodePhase::Leaving | NodePhase::Left | NodePhase::Stopped
                ) {
                    self.phase = NodePhase::Member;
                }
                self.stats.views_installed += 1;
                self.push_event(CoreEvent::ViewInstalled { version });
            }
            Event::Suspected { peer, cause } => {
                self.endpoint.disconnect(peer);
                if !self.backlog.is_empty() {
                    self.backlog.retain(|p| p.to != peer);
                }
                tracing::info!(node = %self.me, peer = %peer, cause = cause.as_str(), "suspect");
                self.push_event(CoreEvent::Suspected { peer, cause });
            }
            Event::Joined { version } => {
                if let Some(s) = &mut self.service {
                    s.on_joined(version);
                }
                tracing::info!(node = %self.me, version, "joined");
                let snapshot = self.engine.received_snapshot().to_vec();
                self.push_event(CoreEvent::Joined { version, snapshot });
            }
            Event::Excluded { reason } => {
                if reason == ExcludeReason::Left {
                    if self.engine.group_ended() {
                        // The last members left: the committed update removed everyone
                        // (or the last member left its view of one), so view x+1 is
                        // empty. The next start may found again, at the version after
                        // it. x is the engine's view: its install may not be saved yet
                        // (D22 saves an install after the step's datagrams), and an
                        // empty view at the saved version would be a second view with
                        // the version of the installed one.
                        self.durable.view.version = self.engine.view().version + 1;
                        self.durable.view.members.clear();
                        self.durable.accepted = None;
                        self.durable.ended = true;
                        self.save();
                    }
                    self.push_event(CoreEvent::Left);
                    return;
                }
                if self.leaving.is_some() || self.engine.is_leaving() {
                    // Excluded while leaving: it is out, as it asked.
                    tracing::info!(node = %self.me, ?reason, "excluded while leaving");
                    self.push_event(CoreEvent::Left);
                    return;
                }
                tracing::warn!(node = %self.me, ?reason, "excluded from the group");
                self.push_event(CoreEvent::Excluded { reason });
                if self.cfg.auto_rejoin && self.leaving.is_none() && self.phase != NodePhase::Left {
                    self.new_incarnation(now, false);
                } else {
                    self.phase = NodePhase::Excluded;
                    // Out for good: close the channels, so that the transport's
                    // acknowledgements and keepalives stop vouching for this process
                    // (D20) and the ring detector can report it.
                    for i in 0..self.last_members.len() {
                        let id = self.last_members[i].id;
                        if id != self.me {
                            self.endpoint.disconnect(id);
                        }
                    }
                    self.backlog.clear();
                }
            }
            Event::Reconfiguring { version } => {
                tracing::info!(node = %self.me, version, "reconfiguring");
                self.push_event(CoreEvent::Reconfiguring { version });
            }
            Event::Submitted { version } => self.push_event(CoreEvent::Submitted { version }),
        }
    }

    /// A recovery message delivered from `from` (its bytes are `rx_buf[..n]`).
    pub(super) fn on_recovery_message(&mut self, now: Time, from: ProcessId, n: usize) {
        let Some((addr, msg)) = RecoveryMsg::decode(&self.rx_buf[..n]) else {
            self.stats.decode_errors += 1;
            return;
        };
        // No group of this configuration has a larger view: one would be cut short
        // where it is installed (`Engine::bootstrap_at`).
        if msg.largest_view() > self.cfg.engine.max_members {
            self.stats.decode_errors += 1;
            return;
        }
        if let Some(r) = &mut self.recovery {
            r.on_message(now, from, addr, msg, &mut self.durable);
            return;
        }
        // A member answers a recovering process of its own view (one that missed the
        // decision) with the view: it starts from it, as a joiner from State-Xfer.
        if self.engine.status() == Status::Member && self.engine.view().contains(from) {
            if let RecoveryMsg::State { .. } = msg {
                let v = self.engine.view().clone();
                self.send_recovery(now, from, addr, &RecoveryMsg::Decide { view: v });
            }
        }
    }

    pub(super) fn send_recovery(
        &mut self,
        now: Time,
        to: ProcessId,
        addr: SocketAddr,
        msg: &RecoveryMsg,
    ) {
        msg.encode(self.addr, &mut self.rec_buf);
        if let Some((keep, tap)) = &mut self.tap {
            tap.push(TapRecord {
                sent: true,
                peer: to,
                kind: None,
                bytes: if *keep {
                    self.rec_buf.clone()
                } else {
                    Vec::new()
                },
            });
        }
        match self.endpoint.send(now, to, addr, &self.rec_buf) {
            Ok(()) => {
                self.stats.recovery_sent += 1;
                self.queued = true;
            }
            Err(e) => tracing::debug!(node = %self.me, %to, "recovery message not sent: {e}"),
        }
    }

    /// The recovery's outputs: the durable state saved first, then its messages, then
    /// a decision that makes this process a member.
    pub(super) fn recovery_outputs(&mut self, now: Time) {
        let Some(r) = &mut self.recovery else {
            return;
        };
        if r.take_dirty() && !self.save() {
            return;
        }
        if self.durable.view.version > 0
            && self.durable.view.members.is_empty()
            && !self.durable.ended
        {
            // The recovery decided (or adopted) the empty view: the group ended with
            // its last members' leave. A seed may found a new one, after it.
            tracing::info!(node = %self.me, version = self.durable.view.version, "the group ended: cold start");
            self.durable.ended = true;
            if !self.save() {
                return;
            }
            self.recovery = None;
            self.fresh = self.cfg.may_found;
            self.begin_discovery(now);
            return;
        }
        // GMP-1: a leader outside the view it decided believes the processes that
        // view removes faulty, before its `Decide` leaves (see `Recovery`).
        let removed = self
            .recovery
            .as_mut()
            .map(|r| r.take_removed_by_decision())
            .unwrap_or_default();
        for peer in removed {
            self.push_event(CoreEvent::Suspected {
                peer,
                cause: SuspicionCause::Observed,
            });
        }
        while let Some((to, addr, msg)) = self.recovery.as_mut().and_then(|r| r.poll_out()) {
            self.send_recovery(now, to, addr, &msg);
        }
        let Some((prev, view)) = self.recovery.as_mut().and_then(|r| r.take_decided()) else {
            return;
        };
        // GMP-1: the recovered view removes the processes of the view before it. Its
        // leader observed each (stopped, replaced by a new incarnation of its name, or
        // silent while a majority of names recovered); every other installer marks
        // them as the view removes them, as a commit does.
        let cause = if self.recovery.as_ref().is_some_and(|r| r.led_decision()) {
            SuspicionCause::Observed
        } else {
            SuspicionCause::Removed
        };
        for m in &prev.members {
            if !view.contains(m.id) && m.id != self.me {
                self.push_event(CoreEvent::Suspected { peer: m.id, cause });
            }
        }
        tracing::info!(node = %self.me, version = view.version, members = view.members.len(), "recovered: member of the view the recovery decided");
        self.recovery = None;
        self.discovery = None;
        if self.engine.status() != Status::Idle {
            // Joining meanwhile: a fresh engine for the same process. The endpoint
            // stays (its channels carry the decision to the others).
            self.engine = Engine::new(
                self.cfg.engine.clone(),
                Member {
                    id: self.me,
                    addr: self.addr,
                },
            )
            .with_max_joins_per_sec(self.cfg.max_joins_per_sec);
            if !self.snapshot.is_empty() {
                // Accepted by `set_snapshot` under the same bound.
                let _ = self.engine.set_snapshot(&self.snapshot);
            }
            self.saved_seq = 0;
        }
        self.stats.recoveries += 1;
        self.engine.bootstrap_at(now, view.version, &view.members);
        // Finality: the processes this view removes never come back under their ids
        // (one that never learned it was in the view before may ask to join as it is).
        for m in &prev.members {
            if !view.contains(m.id) {
                self.engine.note_removed(m.id);
            }
        }
        if let Some(s) = &mut self.service {
            s.on_founded(view.version, &view.members);
        }
        self.push_event(CoreEvent::Recovered {
            version: view.version,
        });
        self.engine_outputs(now);
    }

    /// The membership service's outputs: its datagrams (as probes) and system views.
    pub(super) fn service_outputs(&mut self, now: Time) {
        let Some(s) = &mut self.service else {
            return;
        };
        while let Some(d) = s.poll_datagram() {
            if self.service_out.len() >= SERVICE_OUT_CAP {
                self.stats.service_out_dropped += 1;
                continue;
            }
            self.service_out.push_back(d);
        }
        while let Some(c) = self.service.as_mut().and_then(|s| s.poll_change()) {
            self.push_event(CoreEvent::SystemView { change: c });
        }
        self.move_service_out(now);
    }

    /// Moves waiting service datagrams into the endpoint's probe queue while it has
    /// room; true if any moved.
    pub(super) fn move_service_out(&mut self, now: Time) -> bool {
        let mut moved = false;
        while let Some((to, b)) = self.service_out.pop_front() {
            if self.endpoint.send_probe(now, to, &b).is_err() {
                self.service_out.push_front((to, b));
                break;
            }
            moved = true;
            self.queued = true;
        }
        moved
    }

    pub(super) fn push_event(&mut self, ev: CoreEvent) {
        if self.events.len() >= EVENT_QUEUE {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back((self.me, ev));
    }

    /// Every message sent to the members of the last view was acknowledged.
    pub(super) fn delivered_all(&self) -> bool {
        self.backlog.is_empty()
            && self.last_members.iter().all(|m| {
                m.id == self.me
                    || self
                        .endpoint
                        .peer_stats(m.id)
                        .map(|s| s.frames_in_window == 0 || s.disconnected)
                        .unwrap_or(true)
            })
    }
}

/// Whether the node's reaction to `ev` may wait past the step's datagrams for the event
/// poll (or the next input, whichever comes first):
/// an install (recent views, the service's system view, the node's event), a
/// submission or a reconfiguration (the node's event) send nothing the engine's
/// messages depend on, nor does a suspicion: closing the suspect's channel only stops
/// what the transport would still send it (a retransmission of a message sent before
/// the suspicion, which the channel would have delivered a moment earlier anyway) and
/// what it accepts from it; until then the engine drops the suspect's messages itself
/// (Disconnect: the rest of the datagram being delivered, at most), and no input is
/// taken before the deferred work is done. So the mgr's M-sub and each member's
/// acknowledgement leave before the suspicion's bookkeeping, as the M-com before the
/// install's (issue 19). A join or an exclusion (the group-ended marker, a new
/// incarnation) is not deferred itself, but waits, in order, behind a deferred event.
fn may_follow_send(ev: &Event) -> bool {
    matches!(
        ev,
        Event::ViewInstalled { .. }
            | Event::Suspected { .. }
            | Event::Submitted { .. }
            | Event::Reconfiguring { .. }
    )
}
