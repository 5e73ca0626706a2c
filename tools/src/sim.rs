//! The deterministic simulator behind `sgmp-sim`.
