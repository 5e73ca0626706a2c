//! `sgmpd --client`: a client of the membership service (docs/SERVICE.md) instead of a
//! core member. It registers with the core through `--seeds`, sends heartbeats, and
//! appends every system view to the event log (`kind: "system_view"`); it logs
//! `joined` when it first sees itself in a system view and `excluded` when a view
//! removes it, and then comes back as a new incarnation (unless `--no-auto-rejoin`).
//! SIGTERM/SIGINT deregisters the client (logged `left` once removed) before exiting;
//! SIGHUP reopens the event log (after a rotation renamed it).
//! With `--core-eligible`, a promotion from the mgr ends client mode: the daemon then
//! runs as a core member with the same process id, joining through the core.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sgmp_membership::node::{unix_micros, EventLog, NodeConfig};
use sgmp_membership::service::{ClientConfig, ClientEvent, ClientNode};
use sgmp_membership::ProcessId;

use crate::daemon::DaemonError;

/// Runs client mode until a stop signal (`Ok(None)`) or a promotion into the core
/// (`Ok(Some(config))`: the configuration to run the core member with).
pub fn run(
    core_eligible: bool,
    cfg: NodeConfig,
    stop: &AtomicBool,
    reopen: &AtomicBool,
) -> Result<Option<NodeConfig>, DaemonError> {
    let mut me = ProcessId::new(
        cfg.node_id()?,
        cfg.incarnation.unwrap_or_else(unix_micros).max(1),
    );
    let mut log = match &cfg.event_log {
        Some(p) => Some(EventLog::open(p).map_err(DaemonError::Client)?),
        None => None,
    };
    let keys = cfg.keyring()?;
    loop {
        let mut cc = ClientConfig::new(me, cfg.listen, cfg.seeds.clone());
        cc.heartbeat_ms = cfg.client_heartbeat_ms;
        cc.cluster_id = cfg.cluster_id;
        cc.keys = keys;
        cc.advertise = cfg.advertise;
        let (handle, events) = ClientNode::start(cc).map_err(DaemonError::Client)?;
        handle.add_client(me, core_eligible);
        if let Some(l) = &mut log {
            l.start(me, handle.local_addr());
        }
        tracing::info!(client = %me, addr = %handle.local_addr(), "client started");
        let mut removed = false;
        while !stop.load(Ordering::Relaxed) && !removed {
            if reopen.swap(false, Ordering::Relaxed) {
                // Logged either way; a failure keeps the old file.
                let _ = log.as_mut().map(EventLog::reopen);
            }
            let Ok((_, ev)) = events.recv_timeout(Duration::from_millis(50)) else {
                continue;
            };
            match ev {
                ClientEvent::SystemView(ch) => {
                    if let Some(l) = &mut log {
                        l.system_view(me, &ch);
                    }
                }
                ClientEvent::Registered(p) if p == me => {
                    let v = handle.status().version;
                    tracing::info!(client = %me, version = v, "registered");
                    if let Some(l) = &mut log {
                        l.joined(me, v);
                    }
                }
                ClientEvent::Removed(p) if p == me => {
                    tracing::warn!(client = %me, "removed from the system view");
                    if let Some(l) = &mut log {
                        l.excluded(me);
                    }
                    removed = true;
                }
                ClientEvent::Promoted { id, seeds } if id == me => {
                    tracing::info!(client = %me, "promoted into the core");
                    handle.shutdown();
                    let mut core = cfg.clone();
                    core.incarnation = Some(me.incarnation);
                    core.seeds = seeds.iter().map(|m| m.addr).collect();
                    return Ok(Some(core));
                }
                _ => {}
            }
        }
        if !removed {
            // Stopped: deregister, and wait a little for the removal to be committed.
            handle.deregister(me);
            let until = std::time::Instant::now() + Duration::from_secs(2);
            while std::time::Instant::now() < until {
                if let Ok((_, ClientEvent::Removed(p))) =
                    events.recv_timeout(Duration::from_millis(50))
                {
                    if p == me {
                        if let Some(l) = &mut log {
                            l.left(me);
                        }
                        break;
                    }
                }
            }
            handle.shutdown();
            return Ok(None);
        }
        handle.shutdown();
        if !cfg.auto_rejoin {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(None);
        }
        me = ProcessId::new(me.node, me.incarnation + 1);
    }
}
