//! The invariants the proofs rely on, checked after every input in debug builds (tests
//! and the simulator's scripted runs), in the spirit of TigerBeetle's TIGER_STYLE: a
//! broken invariant stops the run where it broke, not three views later.

use super::{Engine, Role, Status};

impl Engine {
    /// Checks [`Engine::check_invariants`] in debug builds; nothing in release builds.
    #[inline]
    pub(super) fn debug_check_invariants(&self) {
        if cfg!(debug_assertions) {
            if let Err(what) = self.check_invariants() {
                panic!("engine invariant broken at {}: {what}", self.me.id);
            }
        }
    }

    /// The state invariants of one process (`Err` names the first one broken):
    /// - a member's view holds itself, within `max_members`, without duplicates, with
    ///   a version of at least 1;
    /// - FAULTY_p holds members of the view only, never the process itself (Gossip
    ///   and Disconnect act on the current view; a process never suspects itself);
    /// - a member follows a leader; an initiator leads itself, within its view (an
    ///   outer member may still follow a mgr that has just committed its own removal,
    ///   D9, until it takes the next one);
    /// - NextUpdate_p, when set, proposes the version after the installed one;
    /// - an excluded process has no role but Outer and follows nobody.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let me = self.me.id;
        match self.status {
            Status::Member => {
                if !self.view.contains(me) {
                    return Err("a member's view holds the member");
                }
                if self.view.len() > self.cfg.max_members {
                    return Err("a view holds at most max_members");
                }
                if self.view.version == 0 {
                    return Err("a member's view has a version of at least 1");
                }
                if crate::view::names_a_process_twice(&self.view.members) {
                    return Err("a view names each process once");
                }
                if self.faulty.contains(&me) {
                    return Err("a process never believes itself faulty");
                }
                if self.faulty.iter().any(|f| !self.view.contains(*f)) {
                    return Err("FAULTY_p holds members of the current view only");
                }
                match self.leader {
                    Some(l) if self.view.contains(l) || self.role.is_outer() => {}
                    // An outer member may follow a mgr that just removed itself until
                    // its commit is applied; an initiator always leads its own view.
                    _ => return Err("a member follows a leader of its view"),
                }
                if self.role == Role::Initiator && self.leader != Some(me) {
                    return Err("an initiator leads itself");
                }
                if let Some(p) = self.next_update.get() {
                    if p.version != self.view.version + 1 {
                        return Err("NextUpdate_p proposes the version after the view");
                    }
                }
            }
            Status::Excluded(_) => {
                if !self.role.is_outer() || self.leader.is_some() {
                    return Err("an excluded process follows nobody and leads nothing");
                }
            }
            Status::Idle | Status::Joining => {
                if self.role != Role::Outer(super::OuterPhase::Follow) {
                    return Err("a process outside the group runs no task");
                }
            }
        }
        Ok(())
    }
}
