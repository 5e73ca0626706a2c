//! A thread driving a [`ClientCore`] over its own UDP socket (the transport's
//! [`Driver`], probes only): the client side of the service for `sgmpd --client`,
//! embedding applications, and `sgmp-load clients` (which hosts thousands of clients
//! on a few of these).

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sgmp_transport::{Driver, DriverConfig, Keyring};

use super::client::{ClientCore, ClientEvent, ClientStats};
use super::wire;
use crate::view::Member;
use crate::ProcessId;

/// Settings of a client endpoint.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The endpoint's own process id at the transport (names its datagrams).
    pub endpoint: ProcessId,
    /// Where to listen (port 0: any).
    pub listen: SocketAddr,
    /// Core members to reach first.
    pub seeds: Vec<SocketAddr>,
    /// Hello (heartbeat) period, ms.
    pub heartbeat_ms: u64,
    /// Must match the core's `cluster_id`.
    pub cluster_id: u64,
    /// Cluster keys (must match the core's).
    pub keys: Keyring,
    /// The address the core reaches this endpoint at, when it is not the bound one
    /// (`listen` on every interface, `0.0.0.0:P`; a NAT): the watcher of each client
    /// is chosen from it, by the endpoint and by the core alike.
    pub advertise: Option<SocketAddr>,
}

impl ClientConfig {
    /// A client endpoint for `endpoint` on `listen`, reaching the core through `seeds`.
    pub fn new(endpoint: ProcessId, listen: SocketAddr, seeds: Vec<SocketAddr>) -> ClientConfig {
        ClientConfig {
            endpoint,
            listen,
            seeds,
            heartbeat_ms: 200,
            cluster_id: 0,
            keys: Keyring::NONE,
            advertise: None,
        }
    }
}

enum Command {
    Add(ProcessId, bool),
    Deregister(ProcessId),
    Crash(ProcessId),
    Shutdown,
}

/// A snapshot of the endpoint's state, refreshed by its thread.
#[derive(Clone, Debug, Default)]
pub struct ClientStatus {
    /// System view version (0: none yet).
    pub version: u64,
    /// System view size (core + clients).
    pub size: usize,
    /// Core members.
    pub core: Vec<Member>,
    /// Counters.
    pub stats: ClientStats,
}

/// Starts client endpoints.
#[derive(Debug)]
pub struct ClientNode;

impl ClientNode {
    /// Binds the socket and starts the endpoint's thread. Events (with the instant
    /// they were applied) go to the returned receiver.
    pub fn start(
        cfg: ClientConfig,
    ) -> std::io::Result<(ClientHandle, Receiver<(Instant, ClientEvent)>)> {
        let mut dc = DriverConfig::new(cfg.listen, cfg.endpoint);
        dc.transport.cluster_id = cfg.cluster_id;
        dc.transport.keys = cfg.keys;
        dc.transport.probe_queue = 8192;
        dc.transport.max_peers = 4;
        dc.transport.send_window = 16;
        dc.transport.recv_window = 16;
        dc.transport.max_message = 4096;
        let driver = Driver::bind(dc)?;
        let addr = driver.local_addr();
        let waker = driver.waker();
        let (tx, rx) = mpsc::channel();
        let (etx, erx) = mpsc::channel();
        let status = Arc::new(Mutex::new(ClientStatus::default()));
        let core = ClientCore::new(
            cfg.advertise.unwrap_or(addr),
            cfg.seeds.clone(),
            cfg.heartbeat_ms.saturating_mul(1000),
        );
        let st = Arc::clone(&status);
        let thread = std::thread::Builder::new()
            .name(format!("sgmp-client-{}", cfg.endpoint.node))
            .spawn(move || run(driver, core, rx, etx, st))?;
        Ok((
            ClientHandle {
                tx,
                waker,
                addr,
                status,
                thread: Mutex::new(Some(thread)),
            },
            erx,
        ))
    }
}

/// Controls a running client endpoint. Dropping it stops the endpoint.
pub struct ClientHandle {
    tx: Sender<Command>,
    waker: Arc<sgmp_transport::Waker>,
    addr: SocketAddr,
    status: Arc<Mutex<ClientStatus>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ClientHandle {
    fn command(&self, c: Command) {
        let _ = self.tx.send(c);
        let _ = self.waker.wake();
    }
    /// The endpoint's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Hosts client `id` here; it registers with the next hello.
    pub fn add_client(&self, id: ProcessId, core_eligible: bool) {
        self.command(Command::Add(id, core_eligible));
    }
    /// Deregisters client `id`: it asks to be removed; a `Removed` event follows.
    pub fn deregister(&self, id: ProcessId) {
        self.command(Command::Deregister(id));
    }
    /// Stops client `id`'s heartbeats, as a crash would.
    pub fn crash_client(&self, id: ProcessId) {
        self.command(Command::Crash(id));
    }
    /// The endpoint's current state.
    pub fn status(&self) -> ClientStatus {
        self.status.lock().clone()
    }
    /// Stops the thread and waits for it. Idempotent.
    pub fn shutdown(&self) {
        self.command(Command::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    mut driver: Driver,
    mut core: ClientCore,
    rx: Receiver<Command>,
    events: Sender<(Instant, ClientEvent)>,
    status: Arc<Mutex<ClientStatus>>,
) {
    let mut buf = vec![0u8; wire::MAX_PAYLOAD];
    let mut published = Instant::now();
    loop {
        loop {
            match rx.try_recv() {
                Ok(Command::Add(id, e)) => {
                    core.add_client(id, e);
                }
                Ok(Command::Crash(id)) => core.crash_client(id),
                Ok(Command::Deregister(id)) => {
                    core.deregister(id);
                    // Say it now rather than at the next heartbeat.
                    core.hello_now();
                }
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        let now = driver.now();
        while let Some((_, from, n)) = driver.poll_probe(&mut buf) {
            if wire::is_service(&buf[..n]) {
                core.on_datagram(now, from, &buf[..n]);
            }
        }
        core.on_timeout(now);
        send_all(&mut driver, &mut core);
        let mut changed = false;
        while let Some(ev) = core.poll_event() {
            changed = true;
            let _ = events.send((Instant::now(), ev));
        }
        if changed || published.elapsed() > Duration::from_millis(50) {
            published = Instant::now();
            let mut s = status.lock();
            s.version = core.view().version;
            s.size = core.view().size();
            s.core.clone_from(&core.view().core);
            s.stats = *core.stats();
        }
        let wait = Duration::from_micros(core.poll_timeout().micros_since(driver.now()))
            .min(Duration::from_millis(50));
        if driver.drive(Some(wait)).is_err() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Hands queued datagrams to the transport as probes; when its probe queue is full,
/// writes them out and tries again (a datagram still refused is dropped: clients
/// repeat their hellos).
fn send_all(driver: &mut Driver, core: &mut ClientCore) {
    while let Some((to, b)) = core.poll_datagram() {
        if driver.send_probe(to, &b).is_err() {
            driver.flush();
            let _ = driver.send_probe(to, &b);
        }
    }
}
