//! The client protocol: small datagrams carried as transport probes (unreliable, by
//! address, no per-peer state), so that thousands of clients cost a core member no
//! channel each. Layout (little endian), after the probe header of `docs/WIRE.md`:
//!
//! ```text
//! hello    = 0xC5 1 0x10 flags:u8 last_version:u64 n:u16 n × (pid state:u8)
//!            flags bit 0: send me a snapshot; state bit 0: member (else registering),
//!            bit 1: core-eligible, bit 2: deregistering
//! chunk    = 0xC5 1 0x11 flags:u8 version:u64 part:u16 parts:u16 update-set
//!            flags bit 0: snapshot (a delta from the empty view) else delta from
//!            version-1; the parts' update sets, concatenated list by list, are the
//!            whole delta (docs/PROTOCOL.md for the update-set layout)
//! promote  = 0xC5 1 0x12 0 pid seeds:u8 seeds × member
//! ```
//!
//! The first two bytes are the discovery probes' magic and version
//! (`node::coldstart`); the type byte tells them apart.

use crate::msg::{self, MsgError, Writer};
use crate::view::{Member, Update};
use crate::ProcessId;

/// Magic byte shared with discovery probes.
pub const MAGIC: u8 = 0xC5;
/// Version of this layout.
pub const VERSION: u8 = 1;
/// Type byte of a hello.
pub const T_HELLO: u8 = 0x10;
/// Type byte of a chunk.
pub const T_CHUNK: u8 = 0x11;
/// Type byte of a promotion.
pub const T_PROMOTE: u8 = 0x12;
/// Largest payload (the transport's probe limit).
pub const MAX_PAYLOAD: usize = sgmp_transport::wire::MAX_PROBE_PAYLOAD;
/// Most process ids in one hello.
pub const MAX_HELLO_PIDS: usize = 64;
const HELLO_HEADER: usize = 4 + 8 + 2;
const CHUNK_HEADER: usize = 4 + 8 + 2 + 2;

/// True if `payload` is a service datagram (rather than a discovery probe).
pub fn is_service(payload: &[u8]) -> bool {
    payload.len() >= 3
        && payload[0] == MAGIC
        && payload[1] == VERSION
        && matches!(payload[2], T_HELLO | T_CHUNK | T_PROMOTE)
}

/// One entry of a hello: a client of the sending endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloEntry {
    /// The client.
    pub id: ProcessId,
    /// It has seen itself in the system view (a heartbeat), else it asks to register.
    pub member: bool,
    /// It may be promoted into the core.
    pub core_eligible: bool,
    /// It deregisters: remove it from the system view.
    pub leaving: bool,
}

/// Part of a delta or snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// A snapshot (from the empty view) rather than a delta from `version - 1`.
    pub snapshot: bool,
    /// The version the delta forms.
    pub version: u64,
    /// This part's index.
    pub part: u16,
    /// Number of parts.
    pub parts: u16,
    /// This part's share of the update set.
    pub update: Update,
}

/// A decoded service datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceMsg {
    /// Client endpoint to core member: registrations and heartbeats, and the version
    /// the endpoint has (the core member sends what it lacks).
    Hello {
        /// Wants a snapshot rather than deltas.
        want_snapshot: bool,
        /// The endpoint's system view version (0: none).
        last_version: u64,
        /// Its clients.
        entries: Vec<HelloEntry>,
    },
    /// Core member to client endpoint: part of a delta or snapshot.
    Chunk(Chunk),
    /// mgr to a core-eligible client: join the core now.
    Promote {
        /// The client to promote.
        id: ProcessId,
        /// Core members to join through.
        seeds: Vec<Member>,
    },
}

/// Writes a hello into `out` with as many of `entries` as fit one datagram (at most
/// [`MAX_HELLO_PIDS`]); returns how many it took.
pub fn encode_hello(
    out: &mut Vec<u8>,
    want_snapshot: bool,
    last_version: u64,
    entries: &[HelloEntry],
) -> usize {
    let mut n = 0;
    let mut len = HELLO_HEADER;
    for e in entries.iter().take(MAX_HELLO_PIDS) {
        let l = msg::pid_len(e.id) + 1;
        if len + l > MAX_PAYLOAD {
            break;
        }
        len += l;
        n += 1;
    }
    out.clear();
    out.extend_from_slice(&[MAGIC, VERSION, T_HELLO, want_snapshot as u8]);
    let mut w = Writer::continue_at(out);
    w.u64(last_version);
    w.u16(n as u16);
    for e in &entries[..n] {
        w.pid(e.id);
        w.u8(e.member as u8 | (e.core_eligible as u8) << 1 | (e.leaving as u8) << 2);
    }
    n
}

/// Writes a promotion into `out`.
pub fn encode_promote(out: &mut Vec<u8>, id: ProcessId, seeds: &[Member]) {
    out.clear();
    out.extend_from_slice(&[MAGIC, VERSION, T_PROMOTE, 0]);
    let mut w = Writer::continue_at(out);
    w.pid(id);
    let n = seeds.len().min(8);
    w.u8(n as u8);
    for m in &seeds[..n] {
        w.member(m);
    }
}

/// Splits `u` (the delta forming `version`, or a snapshot) into datagrams of at most
/// [`MAX_PAYLOAD`] bytes, left in `out` (one buffer per part). Parts carry consecutive
/// runs of the update's lists, in order: core removes, core adds, client changes.
///
/// The buffers already in `out` are reused (cleared, their capacity kept; `out` is
/// truncated to the parts written), so re-encoding into a recycled `out` allocates
/// nothing when it has as many buffers as parts.
pub fn encode_chunks(u: &Update, version: u64, snapshot: bool, out: &mut Vec<Vec<u8>>) {
    let mut parts = 0u16;
    for_each_part(u, |_| parts += 1);
    let mut k = 0usize;
    for_each_part(u, |p| {
        if k == out.len() {
            out.push(Vec::with_capacity(MAX_PAYLOAD));
        }
        let buf = &mut out[k];
        buf.clear();
        buf.extend_from_slice(&[MAGIC, VERSION, T_CHUNK, snapshot as u8]);
        let mut w = Writer::continue_at(buf);
        w.u64(version);
        w.u16(k as u16);
        w.u16(parts);
        w.u16((p[0].1 - p[0].0) as u16);
        for r in &u.removes[p[0].0..p[0].1] {
            w.pid(*r);
        }
        w.members(&u.adds[p[1].0..p[1].1]);
        w.client_ops(&u.clients[p[2].0..p[2].1]);
        debug_assert!(buf.len() <= MAX_PAYLOAD, "chunk of {} bytes", buf.len());
        k += 1;
    });
    debug_assert_eq!(k, parts as usize);
    out.truncate(k);
}

/// Calls `f` with each part of `u`'s encoding, in order: the (start, end) ranges of
/// core removes, core adds and client changes it carries (at least one part, empty for
/// an empty update).
fn for_each_part(u: &Update, mut f: impl FnMut([(usize, usize); 3])) {
    let budget = MAX_PAYLOAD - CHUNK_HEADER - 6;
    let mut cur = [(0usize, 0usize); 3];
    let mut used = 0usize;
    let lens = [u.removes.len(), u.adds.len(), u.clients.len()];
    for list in 0..3 {
        cur[list] = (0, 0);
        let mut i = 0;
        while i < lens[list] {
            let len = match list {
                0 => msg::pid_len(u.removes[i]),
                1 => msg::member_len(&u.adds[i]),
                _ => msg::client_op_len(&u.clients[i]),
            };
            if used + len > budget && used > 0 {
                f(cur);
                cur = [(0, 0); 3];
                used = 0;
            }
            if cur[list] == (0, 0) || cur[list].1 == 0 {
                cur[list] = (i, i + 1);
            } else {
                cur[list].1 = i + 1;
            }
            used += len;
            i += 1;
        }
    }
    f(cur);
}

/// Decodes a service datagram. Never panics; lists are bounded by the datagram size.
pub fn decode(b: &[u8]) -> Result<ServiceMsg, MsgError> {
    if b.len() < 4 {
        return Err(MsgError::Truncated);
    }
    if b[0] != MAGIC || b[1] != VERSION {
        return Err(MsgError::BadFormat(b[1]));
    }
    let flags = b[3];
    let rest = &b[4..];
    match b[2] {
        T_HELLO => {
            let mut r = msg::Reader::new(rest, 0, 0);
            let last_version = r.version()?;
            let n = r.u16()? as usize;
            if n > MAX_HELLO_PIDS {
                return Err(MsgError::TooMany {
                    what: "hello entries",
                    n,
                    max: MAX_HELLO_PIDS,
                });
            }
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let id = r.pid()?;
                let s = r.u8()?;
                entries.push(HelloEntry {
                    id,
                    member: s & 1 != 0,
                    core_eligible: s & 2 != 0,
                    leaving: s & 4 != 0,
                });
            }
            r.end()?;
            Ok(ServiceMsg::Hello {
                want_snapshot: flags & 1 != 0,
                last_version,
                entries,
            })
        }
        T_CHUNK => {
            let mut r = msg::Reader::new(rest, 0, 0);
            let version = r.version()?;
            let part = r.u16()?;
            let parts = r.u16()?;
            if part >= parts {
                return Err(MsgError::TooMany {
                    what: "chunk part",
                    n: part as usize,
                    max: parts as usize,
                });
            }
            // Sized by what the datagram holds, not preallocated: a reassembly keeps
            // every part until the last, so a part's memory must follow its bytes (a
            // forged run of tiny parts must not pin kilobytes each).
            let mut update = Update::default();
            msg::decode_update(r.rest(), MAX_PAYLOAD, MAX_PAYLOAD, &mut update)?;
            // Only a whole that is empty is sent as an empty part (`for_each_part`).
            if parts > 1 && update.is_empty() {
                return Err(MsgError::EmptyPart);
            }
            Ok(ServiceMsg::Chunk(Chunk {
                snapshot: flags & 1 != 0,
                version,
                part,
                parts,
                update,
            }))
        }
        T_PROMOTE => {
            let mut r = msg::Reader::new(rest, 0, 0);
            let id = r.pid()?;
            let n = r.u8()? as usize;
            let mut seeds = Vec::with_capacity(n);
            for _ in 0..n {
                seeds.push(r.member()?);
            }
            r.end()?;
            Ok(ServiceMsg::Promote { id, seeds })
        }
        t => Err(MsgError::UnknownKind(t)),
    }
}

/// Appends a part's lists to the delta being reassembled.
pub fn append_part(into: &mut Update, part: &Update) {
    into.removes.extend_from_slice(&part.removes);
    into.adds.extend_from_slice(&part.adds);
    into.clients.extend_from_slice(&part.clients);
}

/// Convenience for tests: a client add op.
#[cfg(test)]
fn add(name: &str, port: u16) -> crate::view::ClientOp {
    use crate::view::ClientOp;
    ClientOp::add(
        ProcessId::named(name, 1),
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ClientOp;

    #[test]
    fn big_deltas_split_into_parts_that_reassemble() {
        let mut u = Update::with_limits(8, 2000);
        u.removes.push(ProcessId::named("gone", 3));
        u.adds.push(Member {
            id: ProcessId::named("core9", 1),
            addr: "[::1]:5".parse().unwrap(),
        });
        for i in 0..1500 {
            u.clients
                .push(add(&format!("client-{i:05}"), 7000 + (i % 4) as u16));
        }
        for i in 0..100 {
            u.clients
                .push(ClientOp::remove(ProcessId::named(&format!("old{i}"), 2)));
        }
        let mut chunks = Vec::new();
        encode_chunks(&u, 42, false, &mut chunks);
        assert!(chunks.len() > 20);
        let mut back = Update::with_limits(8, 2000);
        for (k, c) in chunks.iter().enumerate() {
            assert!(c.len() <= MAX_PAYLOAD);
            assert!(is_service(c));
            match decode(c).unwrap() {
                ServiceMsg::Chunk(Chunk {
                    snapshot,
                    version,
                    part,
                    parts,
                    update,
                }) => {
                    assert!(!snapshot);
                    assert_eq!(
                        (version, part as usize, parts as usize),
                        (42, k, chunks.len())
                    );
                    append_part(&mut back, &update);
                }
                m => panic!("{m:?}"),
            }
        }
        assert_eq!(back, u);
        // An empty delta is one part.
        encode_chunks(&Update::default(), 7, true, &mut chunks);
        assert_eq!(chunks.len(), 1);
    }

    /// A forged part's memory follows its bytes: an empty part of a split update (no
    /// honest sender makes one) is refused, and a decoded part holds no room beyond
    /// what it carries (a run of tiny parts, kept until the last, must not pin
    /// kilobytes each); a version no group reaches is refused.
    #[test]
    fn chunks_hold_what_they_carry_and_empty_parts_are_refused() {
        let empty = |version: u64, parts: u16| {
            let mut b = vec![MAGIC, VERSION, T_CHUNK, 1];
            let mut w = Writer::continue_at(&mut b);
            w.u64(version);
            w.u16(0);
            w.u16(parts);
            w.update_lists(&Update::default());
            b
        };
        assert_eq!(decode(&empty(3, 2)), Err(MsgError::EmptyPart));
        assert_eq!(decode(&empty(3, u16::MAX)), Err(MsgError::EmptyPart));
        let over = crate::view::MAX_VERSION + 1;
        assert_eq!(decode(&empty(over, 1)), Err(MsgError::BadVersion(over)));
        match decode(&empty(3, 1)).unwrap() {
            ServiceMsg::Chunk(c) => {
                assert!(c.update.is_empty());
                let u = &c.update;
                assert_eq!(
                    u.removes.capacity() + u.adds.capacity() + u.clients.capacity(),
                    0
                );
            }
            m => panic!("{m:?}"),
        }
        let mut one = Update::default();
        one.removes.push(ProcessId::named("gone", 3));
        let mut chunks = Vec::new();
        encode_chunks(&one, 4, false, &mut chunks);
        match decode(&chunks[0]).unwrap() {
            ServiceMsg::Chunk(c) => assert!(c.update.removes.capacity() < 8),
            m => panic!("{m:?}"),
        }
    }

    #[test]
    fn re_encoding_reuses_the_buffers_it_is_given() {
        let mut big = Update::with_limits(8, 2000);
        for i in 0..500 {
            big.clients.push(add(&format!("client-{i:05}"), 7000));
        }
        let mut chunks = Vec::new();
        encode_chunks(&big, 9, false, &mut chunks);
        assert!(chunks.len() > 2);
        let first = chunks[0].as_ptr();
        // A one-part delta into the same buffers: the first is reused, the rest cut.
        let mut small = Update::default();
        small.removes.push(ProcessId::named("gone", 3));
        encode_chunks(&small, 10, false, &mut chunks);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].as_ptr(), first, "the buffer was reused");
        let mut fresh = Vec::new();
        encode_chunks(&small, 10, false, &mut fresh);
        assert_eq!(chunks, fresh, "same bytes as a fresh encoding");
        // And back up to many parts: same bytes as a fresh encoding again.
        encode_chunks(&big, 11, true, &mut chunks);
        encode_chunks(&big, 11, true, &mut fresh);
        assert_eq!(chunks, fresh);
    }

    #[test]
    fn hello_and_promote_round_trip_and_junk_is_refused() {
        let entries: Vec<_> = (0..100)
            .map(|i| HelloEntry {
                id: ProcessId::named(&format!("c{i}"), i as u64),
                member: i % 2 == 0,
                core_eligible: i % 3 == 0,
                leaving: i % 5 == 0,
            })
            .collect();
        let mut b = Vec::new();
        let n = encode_hello(&mut b, true, 99, &entries);
        assert_eq!(n, MAX_HELLO_PIDS);
        let entries = entries[..n].to_vec();
        assert!(b.len() <= MAX_PAYLOAD);
        assert_eq!(
            decode(&b).unwrap(),
            ServiceMsg::Hello {
                want_snapshot: true,
                last_version: 99,
                entries: entries.clone()
            }
        );
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err());
        }
        let seeds = [Member {
            id: ProcessId::named("n1", 1),
            addr: "127.0.0.1:1".parse().unwrap(),
        }];
        encode_promote(&mut b, ProcessId::named("c1", 4), &seeds);
        assert_eq!(
            decode(&b).unwrap(),
            ServiceMsg::Promote {
                id: ProcessId::named("c1", 4),
                seeds: seeds.to_vec()
            }
        );
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &proptest::collection::vec(any::<u8>(), 0..300),
                |mut bytes| {
                    if bytes.len() > 3 {
                        bytes[0] = MAGIC;
                        bytes[1] = VERSION;
                        bytes[2] = T_HELLO + bytes[2] % 3;
                    }
                    let _ = decode(&bytes);
                    Ok(())
                },
            )
            .unwrap();
    }
}
