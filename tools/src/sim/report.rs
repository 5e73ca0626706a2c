//! Run and batch summaries (JSON through serde).

use std::collections::BTreeMap;

use serde::Serialize;

use super::checker::Violation;

/// The outcome of one seed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Violated properties (empty when the run is correct).
    #[serde(skip)]
    pub violations: Vec<Violation>,
    /// Views installed, summed over processes.
    pub views_installed: u64,
    /// Highest view version reached.
    pub max_version: u64,
    /// Engine messages handed to the transport.
    pub messages: u64,
    /// Datagrams offered to the network.
    pub datagrams: u64,
    /// Simulated time of the run, µs.
    pub sim_time_us: u64,
    /// Actions executed, by fault kind, plus network faults that happened.
    pub fault_kinds: BTreeMap<String, u64>,
    /// Whether the liveness precondition held (so GMP-4 was checked).
    pub liveness_checked: bool,
    /// Time from the end of the fault phase to convergence, µs.
    pub converged_after_us: Option<u64>,
    /// Largest per-node send backlog (WindowFull).
    pub max_backlog: usize,
}

/// One failing seed.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The seed (replay with `sgmp-sim --seed S`).
    pub seed: u64,
    /// The first violation.
    pub reason: String,
}

/// The summary of a batch of seeds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BatchReport {
    /// Seeds run.
    pub seeds: u64,
    /// First seed.
    pub start: u64,
    /// Founding nodes per run.
    pub nodes: usize,
    /// Safety violations found, over all seeds (0 expected); liveness ones are in
    /// `liveness_violations`.
    pub violations: u64,
    /// Views installed, over all seeds and processes.
    pub views_installed: u64,
    /// Engine messages handed to the transport.
    pub messages: u64,
    /// Datagrams offered to the network.
    pub datagrams: u64,
    /// Simulated time, summed over seeds, µs.
    pub sim_time_us: u64,
    /// Seeds whose liveness precondition held (GMP-4 checked).
    pub liveness_checked: u64,
    /// The same: seeds where a majority of the last view's names ran with their
    /// durable state, connected, in the liveness phase.
    pub liveness_eligible: u64,
    /// Eligible seeds that did not end with every live process in one view.
    pub liveness_violations: u64,

    /// Longest convergence time after the fault phase, µs.
    pub max_converge_us: u64,
    /// Largest per-node send backlog seen.
    pub max_backlog: usize,
    /// Fault kinds exercised, with counts.
    pub fault_kinds: BTreeMap<String, u64>,
    /// Failing seeds.
    pub failures: Vec<Failure>,
}

impl BatchReport {
    /// Folds one run in.
    pub fn add(&mut self, r: &RunReport) {
        self.seeds += 1;
        self.views_installed += r.views_installed;
        self.messages += r.messages;
        self.datagrams += r.datagrams;
        self.sim_time_us += r.sim_time_us;
        self.liveness_checked += r.liveness_checked as u64;
        self.liveness_eligible += r.liveness_checked as u64;
        let live = r
            .violations
            .iter()
            .filter(|v| v.property == "liveness")
            .count() as u64;
        self.liveness_violations += live;
        self.violations += r.violations.len() as u64 - live;
        self.max_converge_us = self.max_converge_us.max(r.converged_after_us.unwrap_or(0));
        self.max_backlog = self.max_backlog.max(r.max_backlog);
        for (k, v) in &r.fault_kinds {
            *self.fault_kinds.entry(k.clone()).or_insert(0) += v;
        }
        if let Some(v) = r.violations.first() {
            self.failures.push(Failure {
                seed: r.seed,
                reason: v.to_string(),
            });
        }
    }
}
