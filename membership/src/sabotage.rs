//! Known-bad protocol changes, switched on one at a time in tests to prove that the
//! checkers catch them (`tools/tests/sim_sabotage.rs`, `tools/tests/chaos_sabotage.rs`,
//! `tests/tests/model_sabotage.rs`, `tools/tests/sim_batch.rs`).
//!
//! A checker that passes whatever the code does checks nothing. Each [`Sabotage`] is a
//! small, plausible edit of the protocol (the kind a refactor or an "optimization" could
//! make) that breaks one promise: agreement on every version, a minority never moving
//! on, GMP-1 (no removal without a belief that started somewhere), liveness, or the
//! protocol's economy (reconfiguring instead of restarting everyone). The
//! tests switch one on for their own thread (`with`), run the simulator or the model
//! checker, and fail unless the expected property is reported violated.
//!
//! Without the cargo feature `sabotage`, or without debug assertions (every release
//! build), [`active`] is the constant `false` and the hooks compile to nothing. The
//! feature is a dev-dependency feature of `sgmp-tools` and `sgmp-tests`, so builds that
//! unify those (`cargo test --workspace`, `--all-targets`) carry it; even there a
//! sabotage is active only inside `with`, on the calling thread, inside
//! `with_everywhere`, on every thread (for a test binary of its own), or after
//! [`from_env`] found [`ENV`] set.

/// One known-bad change of the protocol. Only `with`, `with_everywhere` or
/// [`from_env`] (feature `sabotage`, debug assertions) turns one on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sabotage {
    /// Every majority is one process (`View::majority` returns 1): a minority
    /// partition reconfigures and installs its own next view. Breaks agreement (GMP-2/3)
    /// and "a minority never moves on".
    QuorumOfOne,
    /// A reconfigurer ignores what its interrogation (R-int) reported, a partially
    /// committed next version and the members' NextUpdate alike, and proposes the
    /// removal of whom it believes faulty (DetermineProposal's last case, always): a
    /// view the crashed mgr committed at some member, or a submission a majority
    /// acknowledged, is contradicted. Breaks agreement.
    IgnoreInterrogation,
    /// The mgr also removes the most junior other member with every join, although
    /// nobody believes it faulty. Breaks GMP-1 (removals follow a belief).
    RemoveJuniorWithJoin,
    /// The mgr drops every join request: a restarted or new process never becomes a
    /// member although a majority can talk. Breaks liveness.
    DropJoins,
    /// A recovery's leader (D23) ignores the acceptances its promises report and
    /// proposes a fresh view of the names that promised, as if nothing had been
    /// accepted: a view S-GMP or an earlier recovery chose is contradicted. Breaks
    /// agreement across a total failure.
    RecoveryIgnoresAcceptances,
    /// A recovery needs one recovering name of the last view instead of a majority to
    /// lead, promise and decide: a minority restarted after a total failure decides a
    /// view on its own. Breaks agreement and "a minority never moves on".
    RecoveryQuorumOfOne,
    /// A process restarted from its durable state keeps the incarnation it had instead
    /// of taking the next one: the crashed process comes back as itself. Breaks "a
    /// process removed or crashed never acts as that member again".
    RestartAsTheSameProcess,
    /// No member ever starts a reconfiguration (INITIATE is ignored). The survivors of a
    /// crashed mgr then exclude themselves and come back through the recovery from
    /// total failure, so the group stays live: what breaks is the protocol's economy
    /// (every mgr crash a total failure), seen by `sim_batch`'s bound on exclusions and
    /// by figure 3.
    NeverReconfigure,
    /// A process restarted from its durable state forgets the view it had installed
    /// (the rest of the state is kept): it starts as if new.
    ForgetViewOnRestart,
    /// An initiator commits a second view in the step that installed one (D32 undone):
    /// the driver reads the second view's members for both installs.
    TwoInstallsPerStep,
}

impl Sabotage {
    /// Every sabotage, for tests that try them all.
    pub const ALL: [Sabotage; 10] = [
        Sabotage::QuorumOfOne,
        Sabotage::IgnoreInterrogation,
        Sabotage::RemoveJuniorWithJoin,
        Sabotage::DropJoins,
        Sabotage::RecoveryIgnoresAcceptances,
        Sabotage::RecoveryQuorumOfOne,
        Sabotage::RestartAsTheSameProcess,
        Sabotage::NeverReconfigure,
        Sabotage::ForgetViewOnRestart,
        Sabotage::TwoInstallsPerStep,
    ];
}

#[cfg(feature = "sabotage")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Sabotage>> = const { std::cell::Cell::new(None) };
}

/// The sabotage active on every thread (`with_everywhere`, [`from_env`]): 0 for none,
/// else [`everywhere_code`] of it.
#[cfg(feature = "sabotage")]
static EVERYWHERE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether `s` is active on this thread: always `false` without the feature or
/// without debug assertions.
#[inline(always)]
pub fn active(s: Sabotage) -> bool {
    #[cfg(all(feature = "sabotage", debug_assertions))]
    {
        ACTIVE.with(|a| a.get() == Some(s))
            || EVERYWHERE.load(std::sync::atomic::Ordering::Relaxed) == everywhere_code(s)
    }
    #[cfg(not(all(feature = "sabotage", debug_assertions)))]
    {
        let _ = s;
        false
    }
}

/// How `EVERYWHERE` names `s` (never 0, which is none).
#[cfg(feature = "sabotage")]
fn everywhere_code(s: Sabotage) -> usize {
    s as usize + 1
}

/// Panics in a build whose hooks are compiled out (the feature without debug
/// assertions: `cargo test --release`): a sabotage test there would test nothing.
#[cfg(feature = "sabotage")]
fn assert_hooks_compiled() {
    if !cfg!(debug_assertions) {
        panic!("sabotage needs debug assertions: its hooks are compiled out of this build");
    }
}

/// Runs `f` with `s` active on this thread, and switches it off again afterwards (also
/// when `f` panics).
#[cfg(feature = "sabotage")]
pub fn with<R>(s: Sabotage, f: impl FnOnce() -> R) -> R {
    assert_hooks_compiled();
    struct Off(Option<Sabotage>);
    impl Drop for Off {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let _off = Off(ACTIVE.with(|a| a.replace(Some(s))));
    f()
}

/// Runs `f` with `s` active on every thread of the process (for a checker that runs
/// its own threads, such as stateright's), and switches it off afterwards (also when
/// `f` panics). Only for a test binary that runs nothing else meanwhile: every engine
/// of the process is sabotaged.
#[cfg(feature = "sabotage")]
pub fn with_everywhere<R>(s: Sabotage, f: impl FnOnce() -> R) -> R {
    assert_hooks_compiled();
    use std::sync::atomic::Ordering;
    struct Off(usize);
    impl Drop for Off {
        fn drop(&mut self) {
            EVERYWHERE.store(self.0, Ordering::SeqCst);
        }
    }
    let _off = Off(EVERYWHERE.swap(everywhere_code(s), Ordering::SeqCst));
    f()
}

/// The environment variable `from_env` reads: the name of a [`Sabotage`]
/// (`QuorumOfOne`, ...), for tests that run real processes (`sgmpd` in a chaos run).
pub const ENV: &str = "SGMP_SABOTAGE";

/// Switches on, for the whole process and for good, the sabotage named by
/// [`ENV`], and returns it; `Ok(None)` when the variable is unset or empty. Without
/// the feature or debug assertions nothing is ever switched on, and a set variable is
/// an error (a test that meant to sabotage a build that cannot be sabotaged must not
/// pass as if it had), as is a name that is no [`Sabotage`]. `sgmpd` calls this first.
pub fn from_env() -> Result<Option<Sabotage>, String> {
    let Some(name) = std::env::var_os(ENV).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    let Some(s) = Sabotage::ALL
        .iter()
        .copied()
        .find(|s| format!("{s:?}") == name)
    else {
        return Err(format!("{ENV}={name}: no such sabotage"));
    };
    #[cfg(all(feature = "sabotage", debug_assertions))]
    {
        EVERYWHERE.store(everywhere_code(s), std::sync::atomic::Ordering::SeqCst);
        Ok(Some(s))
    }
    #[cfg(not(all(feature = "sabotage", debug_assertions)))]
    {
        Err(format!(
            "{ENV}={s:?}: this build cannot be sabotaged (that needs the test-only cargo feature `sabotage` and debug assertions)"
        ))
    }
}

#[cfg(all(test, feature = "sabotage", debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn a_sabotage_is_active_only_inside_with_and_only_on_its_thread() {
        assert!(!active(Sabotage::QuorumOfOne));
        with(Sabotage::QuorumOfOne, || {
            assert!(active(Sabotage::QuorumOfOne));
            assert!(!active(Sabotage::DropJoins));
            std::thread::spawn(|| assert!(!active(Sabotage::QuorumOfOne)))
                .join()
                .unwrap();
        });
        assert!(!active(Sabotage::QuorumOfOne));
        let r = std::panic::catch_unwind(|| with(Sabotage::DropJoins, || panic!("boom")));
        assert!(r.is_err());
        assert!(!active(Sabotage::DropJoins));
        // `with_everywhere` is not tried here: the engine's unit tests run beside this
        // one in the same process and would be sabotaged. `tests/tests/model_sabotage.rs`
        // (a binary of its own) shows it reaching stateright's threads.
    }
}
