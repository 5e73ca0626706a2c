//! S-GMP messages on the wire: one enum of kinds, an encoder writing into a
//! preallocated buffer and a decoder filling a preallocated [`Msg`].
//!
//! Every message starts with a common header that carries the sender's view version
//! and its suspicions (the paper's *Gossip*: "every message carries the sender's
//! suspicions"). Layout (little endian) in `docs/PROTOCOL.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::tags::{TagError, TagTable};
use crate::view::{ClientOp, ClientOpKind, Member, Proposal, Update};
use crate::{NodeId, ProcessId};

/// Version of the membership message format.
pub const MSG_FORMAT: u8 = 3;

/// Message kinds, named as in the paper's Appendix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgKind {
    /// M-sub(±v, x): the mgr submits update v for version x.
    MSub = 1,
    /// ack(M-sub): an outer member acknowledges a submit (mgr's or piggy-backed).
    MSubAck = 2,
    /// M-com(±v1) : M-sub(±v2): the mgr commits v1, optionally submitting v2.
    MCom = 3,
    /// Join: State-Xfer: the initiator gives joiners the new view and the application state.
    StateXfer = 4,
    /// ack(Join) : NextUpdate: a joiner answers State-Xfer, reporting any pending proposal.
    StateXferAck = 5,
    /// R-int(state(r)): a reconfigurer interrogates its local view.
    RInt = 6,
    /// state(p): a member's answer to R-int.
    RIntResp = 7,
    /// R-sub(<v, x>): the reconfigurer's submit.
    RSub = 8,
    /// ack(R-sub).
    RSubAck = 9,
    /// R-com(<v, x>) : R-sub(v2): the reconfigurer's commit, optionally submitting v2.
    RCom = 10,
    /// A process outside the group asks to join (sent to any member, forwarded to the mgr).
    JoinReq = 11,
    /// A member asks to be removed (graceful leave).
    LeaveReq = 12,
    /// Ring-monitoring heartbeat; like every message it gossips suspicions.
    Heartbeat = 13,
    /// Client changes (registrations, deregistrations, client failures) forwarded by a
    /// core member to the mgr, which batches them into its next update.
    ClientOps = 14,
    /// A member asks the mgr to commit new tags for it (a tag change is an update,
    /// `docs/PROTOCOL.md` D25).
    TagReq = 15,
}

/// Number of message kinds (for per-kind counter arrays; index = kind as usize).
pub const KIND_COUNT: usize = 16;

impl MsgKind {
    /// All kinds, in wire order.
    pub const ALL: [MsgKind; 15] = [
        MsgKind::MSub,
        MsgKind::MSubAck,
        MsgKind::MCom,
        MsgKind::StateXfer,
        MsgKind::StateXferAck,
        MsgKind::RInt,
        MsgKind::RIntResp,
        MsgKind::RSub,
        MsgKind::RSubAck,
        MsgKind::RCom,
        MsgKind::JoinReq,
        MsgKind::LeaveReq,
        MsgKind::Heartbeat,
        MsgKind::ClientOps,
        MsgKind::TagReq,
    ];

    /// The kind with this wire code.
    pub fn from_u8(b: u8) -> Option<MsgKind> {
        MsgKind::ALL.get((b as usize).wrapping_sub(1)).copied()
    }

    /// The paper's name for it.
    pub fn name(self) -> &'static str {
        match self {
            MsgKind::MSub => "M-sub",
            MsgKind::MSubAck => "ack(M-sub)",
            MsgKind::MCom => "M-com",
            MsgKind::StateXfer => "State-Xfer",
            MsgKind::StateXferAck => "ack(State-Xfer)",
            MsgKind::RInt => "R-int",
            MsgKind::RIntResp => "state",
            MsgKind::RSub => "R-sub",
            MsgKind::RSubAck => "ack(R-sub)",
            MsgKind::RCom => "R-com",
            MsgKind::JoinReq => "join-request",
            MsgKind::LeaveReq => "leave-request",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::ClientOps => "client-ops",
            MsgKind::TagReq => "tag-request",
        }
    }

    /// True for the kinds the paper counts in its message-complexity formulas.
    pub fn is_protocol(self) -> bool {
        !matches!(
            self,
            MsgKind::JoinReq
                | MsgKind::LeaveReq
                | MsgKind::Heartbeat
                | MsgKind::ClientOps
                | MsgKind::TagReq
        )
    }
}

/// Why a membership message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsgError {
    /// The message ended before a field it announces.
    #[error("message truncated")]
    Truncated,
    /// Unknown format version.
    #[error("unknown message format version {0}")]
    BadFormat(u8),
    /// Unknown message kind.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A list is longer than the configured limit.
    #[error("{what} list has {n} entries; the limit is {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Entries announced.
        n: usize,
        /// The limit.
        max: usize,
    },
    /// A node name is not valid.
    #[error("invalid node name on the wire")]
    BadName,
    /// An address family byte is neither 4 nor 6.
    #[error("invalid address family {0}")]
    BadAddrFamily(u8),
    /// A flag byte is neither 0 nor 1.
    #[error("invalid flag byte {0}")]
    BadFlag(u8),
    /// A client change kind byte is neither 1 (add) nor 2 (remove).
    #[error("invalid client change kind {0}")]
    BadClientOp(u8),
    /// Member tags that are malformed or larger than the bound.
    #[error("bad member tags: {0}")]
    BadTags(TagError),
    /// Bytes left over after the message.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A view version beyond [`MAX_VERSION`](crate::view::MAX_VERSION), which no group
    /// reaches.
    #[error("view version {0} is beyond the largest a group can reach (2^62)")]
    BadVersion(u64),
    /// A part of a split service update that carries nothing (only an empty whole is
    /// sent as one empty part).
    #[error("an empty part of an update split in several")]
    EmptyPart,
}

/// A reported local state, the paper's state(p) = [ver(p), NextUpdate_p, LastCommit_p].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireState {
    /// ver(p).
    pub ver: u64,
    /// Whether NextUpdate_p is defined (not ⊥).
    pub has_next: bool,
    /// NextUpdate_p when `has_next`.
    pub next: Proposal,
    /// LastCommit_p: the update that formed LocalView^{ver(p)}.
    pub last: Update,
}

impl WireState {
    /// NextUpdate_p as reported, or `None` for ⊥.
    pub fn next_proposal(&self) -> Option<&Proposal> {
        self.has_next.then_some(&self.next)
    }

    /// An empty state with room for `cap` members per update.
    pub fn with_capacity(cap: usize) -> WireState {
        WireState::with_limits(cap, 0)
    }

    /// An empty state with room for `cap` members and `client_ops` client changes per
    /// update.
    pub fn with_limits(cap: usize, client_ops: usize) -> WireState {
        WireState::with_tag_limits(cap, client_ops, 0)
    }

    /// An empty state with room for `cap` members, `client_ops` client changes and
    /// `cap` tag changes of up to `max_tag_bytes` bytes per update.
    pub fn with_tag_limits(cap: usize, client_ops: usize, max_tag_bytes: usize) -> WireState {
        WireState {
            ver: 0,
            has_next: false,
            next: Proposal::with_tag_limits(cap, client_ops, max_tag_bytes),
            last: Update::with_tag_limits(cap, client_ops, max_tag_bytes),
        }
    }
}

/// A decoded message. Preallocated once per engine and refilled by [`decode`]; only the
/// fields its kind uses are meaningful.
#[derive(Clone, Debug)]
pub struct Msg {
    /// The kind.
    pub kind: MsgKind,
    /// The sender's local view version when it sent the message.
    pub sender_version: u64,
    /// The sender's suspicions (Gossip).
    pub gossip: Vec<ProcessId>,
    /// The version this message is about (submit, ack, commit, State-Xfer).
    pub version: u64,
    /// The update submitted or committed (for State-Xfer: the update that added the joiners).
    pub update: Update,
    /// Whether a submit is piggy-backed on a commit (commit-submit compression).
    pub has_next: bool,
    /// The piggy-backed submit's update (for version `version + 1`).
    pub next: Update,
    /// State-Xfer: the members of the new view.
    pub members: Vec<Member>,
    /// State-Xfer: the application snapshot.
    pub snapshot: Vec<u8>,
    /// R-int, state and ack(State-Xfer): the reported local state.
    pub state: WireState,
    /// Join request: the joining process.
    pub joiner: Member,
    /// Join request and tag request: the sender's tags (encoded, validated).
    pub tags: Vec<u8>,
    /// State-Xfer: the tags of the new view's members.
    pub view_tags: TagTable,
    /// Largest encoded tags of one member accepted (0: tags must be empty).
    pub max_tag_bytes: usize,
    /// ClientOps: the forwarded client changes.
    pub client_ops: Vec<ClientOp>,
    /// Most client changes accepted per update (and per ClientOps message).
    pub max_client_ops: usize,
}

const NO_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl Msg {
    /// The submit piggy-backed on a commit (commit-submit compression), if any.
    pub fn piggybacked(&self) -> Option<&Update> {
        self.has_next.then_some(&self.next)
    }

    /// A message buffer able to hold any message within these limits (no client changes).
    pub fn with_capacity(max_members: usize, max_snapshot: usize) -> Msg {
        Msg::with_limits(max_members, 0, max_snapshot)
    }

    /// A message buffer able to hold any message within these limits, including up to
    /// `max_client_ops` client changes per update.
    pub fn with_limits(max_members: usize, max_client_ops: usize, max_snapshot: usize) -> Msg {
        Msg::with_tag_limits(max_members, max_client_ops, 0, max_snapshot)
    }

    /// A message buffer able to hold any message within these limits, including up to
    /// `max_client_ops` client changes per update and member tags of up to
    /// `max_tag_bytes` bytes each.
    pub fn with_tag_limits(
        max_members: usize,
        max_client_ops: usize,
        max_tag_bytes: usize,
        max_snapshot: usize,
    ) -> Msg {
        let n = max_members;
        let c = max_client_ops;
        let t = max_tag_bytes;
        Msg {
            kind: MsgKind::Heartbeat,
            sender_version: 0,
            gossip: Vec::with_capacity(max_members),
            version: 0,
            update: Update::with_tag_limits(n, c, t),
            has_next: false,
            next: Update::with_tag_limits(n, c, t),
            members: Vec::with_capacity(n),
            snapshot: Vec::with_capacity(max_snapshot),
            state: WireState::with_tag_limits(n, c, t),
            joiner: Member {
                id: ProcessId::named("-", 0),
                addr: NO_ADDR,
            },
            client_ops: Vec::with_capacity(c),
            max_client_ops: c,
            tags: Vec::with_capacity(t),
            view_tags: TagTable::with_capacity(n, t),
            max_tag_bytes: t,
        }
    }
}

/// Largest encoding of one member (process id + address).
const MEMBER_LEN: usize = 1 + sgmp_transport::MAX_NODE_NAME + 8 + 1 + 16 + 2;
/// Largest encoding of one process id.
const PID_LEN: usize = 1 + sgmp_transport::MAX_NODE_NAME + 8;
/// Largest encoding of one client change (kind + member + flags).
const CLIENT_OP_LEN: usize = 1 + MEMBER_LEN + 1;

/// Upper bound on the encoded size of any message within these limits (no client
/// changes).
pub fn max_encoded_len(max_members: usize, max_snapshot: usize) -> usize {
    max_encoded_len_with_clients(max_members, 0, max_snapshot)
}

/// Upper bound on the encoded size of any message within these limits, with up to
/// `max_client_ops` client changes per update (a message carries at most four updates:
/// a state's NextUpdate and LastCommit, or a commit and its piggy-backed submit).
pub fn max_encoded_len_with_clients(
    max_members: usize,
    max_client_ops: usize,
    max_snapshot: usize,
) -> usize {
    max_encoded_len_with_tags(max_members, max_client_ops, 0, max_snapshot)
}

/// Upper bound on the encoded size of any message within these limits, with member
/// tags of up to `max_tag_bytes` bytes. A message carries at most two tag tables of at
/// most `max_members` entries each (a commit and its piggy-backed submit, a state's
/// NextUpdate and LastCommit, State-Xfer's update and view), or one member's tags.
pub fn max_encoded_len_with_tags(
    max_members: usize,
    max_client_ops: usize,
    max_tag_bytes: usize,
    max_snapshot: usize,
) -> usize {
    // header + gossip + three update sets + a member list + a proposal + snapshot.
    64 + max_members * (MEMBER_LEN * 8)
        + 4 * (2 + max_client_ops * CLIENT_OP_LEN)
        + 2 * (2 + max_members * (PID_LEN + 2 + max_tag_bytes))
        + (2 + max_tag_bytes)
        + max_snapshot
}

/// Writes messages into a byte buffer that never needs to grow when sized with
/// [`max_encoded_len`].
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Starts a message of `kind` at the end of `buf`: writes the common header.
    pub fn start(
        buf: &'a mut Vec<u8>,
        kind: MsgKind,
        sender_version: u64,
        gossip: &[ProcessId],
    ) -> Self {
        let mut w = Writer { buf };
        w.u8(MSG_FORMAT);
        w.u8(kind as u8);
        w.u64(sender_version);
        w.u16(gossip.len() as u16);
        for p in gossip {
            w.pid(*p);
        }
        w
    }
    /// Continues a message already started in `buf` (appends fields).
    pub fn continue_at(buf: &'a mut Vec<u8>) -> Self {
        Writer { buf }
    }
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A little-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A little-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A little-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A flag byte.
    pub fn flag(&mut self, v: bool) {
        self.u8(v as u8);
    }
    /// A process id: name length, name, incarnation.
    pub fn pid(&mut self, p: ProcessId) {
        let name = p.node.as_bytes();
        self.u8(name.len() as u8);
        self.buf.extend_from_slice(name);
        self.u64(p.incarnation);
    }
    /// A member: process id and address.
    pub fn member(&mut self, m: &Member) {
        self.pid(m.id);
        match m.addr.ip() {
            IpAddr::V4(ip) => {
                self.u8(4);
                self.buf.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.u8(6);
                self.buf.extend_from_slice(&ip.octets());
            }
        }
        self.u16(m.addr.port());
    }
    /// A member list.
    pub fn members(&mut self, ms: &[Member]) {
        self.u16(ms.len() as u16);
        for m in ms {
            self.member(m);
        }
    }
    /// An update set: removes, then adds, then client changes, then tag changes.
    pub fn update(&mut self, u: &Update) {
        self.update_lists(u);
        self.tag_table(&u.tags);
    }
    /// An update set without its tag changes (the membership service's deltas).
    pub fn update_lists(&mut self, u: &Update) {
        self.u16(u.removes.len() as u16);
        for p in &u.removes {
            self.pid(*p);
        }
        self.members(&u.adds);
        self.client_ops(&u.clients);
    }
    /// One member's encoded tags: u16 length, bytes.
    pub fn tags(&mut self, t: &[u8]) {
        self.u16(t.len() as u16);
        self.buf.extend_from_slice(t);
    }
    /// A tag table: count (u16), then per entry a process id and its encoded tags.
    pub fn tag_table(&mut self, t: &TagTable) {
        self.u16(t.len() as u16);
        for (id, tags) in t.iter() {
            self.pid(id);
            self.tags(tags.as_bytes());
        }
    }
    /// A list of client changes: count, then per change a kind byte (1 add, 2 remove),
    /// the process id, and for an add its address and a flags byte (bit 0: core-eligible).
    pub fn client_ops(&mut self, ops: &[ClientOp]) {
        self.u16(ops.len() as u16);
        for op in ops {
            match op.kind {
                ClientOpKind::Add => {
                    self.u8(1);
                    self.member(&Member {
                        id: op.id,
                        addr: op.addr,
                    });
                    self.u8(op.core_eligible as u8);
                }
                ClientOpKind::Remove => {
                    self.u8(2);
                    self.pid(op.id);
                }
            }
        }
    }
    /// A proposal (NextUpdate).
    pub fn proposal(&mut self, p: &Proposal) {
        self.u64(p.version);
        self.update(&p.update);
        self.pid(p.initiator);
        self.u32(p.initiator_index);
    }
    /// A reported state: ver, optional NextUpdate, LastCommit.
    pub fn state(&mut self, ver: u64, next: Option<&Proposal>, last: &Update) {
        self.u64(ver);
        self.flag(next.is_some());
        if let Some(p) = next {
            self.proposal(p);
        }
        self.update(last);
    }
    /// Raw bytes with a u32 length prefix.
    pub fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.buf.extend_from_slice(b);
    }
}

/// Reads the fields written by [`Writer`], checking every count against the limits.
/// Shared with the membership service's datagrams (`service::wire`).
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    max_members: usize,
    max_client_ops: usize,
    /// Update sets carry a tag list (engine messages; not the service's deltas).
    with_tags: bool,
    max_tag_bytes: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `b` with these list limits (update sets without tag lists).
    pub(crate) fn new(b: &'a [u8], max_members: usize, max_client_ops: usize) -> Self {
        Reader {
            b,
            max_members,
            max_client_ops,
            with_tags: false,
            max_tag_bytes: 0,
        }
    }
    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.b
    }
    /// Ok if every byte was read.
    pub(crate) fn end(&self) -> Result<(), MsgError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(MsgError::Trailing(self.b.len()))
        }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MsgError> {
        if self.b.len() < n {
            return Err(MsgError::Truncated);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, MsgError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, MsgError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, MsgError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, MsgError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    /// A view version: at most [`MAX_VERSION`](crate::view::MAX_VERSION).
    pub(crate) fn version(&mut self) -> Result<u64, MsgError> {
        let v = self.u64()?;
        if v > crate::view::MAX_VERSION {
            return Err(MsgError::BadVersion(v));
        }
        Ok(v)
    }
    pub(crate) fn flag(&mut self) -> Result<bool, MsgError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(MsgError::BadFlag(b)),
        }
    }
    pub(crate) fn count(&mut self, what: &'static str) -> Result<usize, MsgError> {
        let n = self.u16()? as usize;
        if n > self.max_members {
            return Err(MsgError::TooMany {
                what,
                n,
                max: self.max_members,
            });
        }
        Ok(n)
    }
    pub(crate) fn pid(&mut self) -> Result<ProcessId, MsgError> {
        let len = self.u8()? as usize;
        let name = self.take(len)?;
        let node = NodeId::from_bytes(name).map_err(|_| MsgError::BadName)?;
        Ok(ProcessId::new(node, self.u64()?))
    }
    pub(crate) fn member(&mut self) -> Result<Member, MsgError> {
        let id = self.pid()?;
        let ip = match self.u8()? {
            4 => {
                let mut a = [0u8; 4];
                a.copy_from_slice(self.take(4)?);
                IpAddr::V4(Ipv4Addr::from(a))
            }
            6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            f => return Err(MsgError::BadAddrFamily(f)),
        };
        let port = self.u16()?;
        Ok(Member {
            id,
            addr: SocketAddr::new(ip, port),
        })
    }
    pub(crate) fn members(
        &mut self,
        out: &mut Vec<Member>,
        what: &'static str,
    ) -> Result<(), MsgError> {
        out.clear();
        for _ in 0..self.count(what)? {
            out.push(self.member()?);
        }
        Ok(())
    }
    pub(crate) fn update(&mut self, u: &mut Update) -> Result<(), MsgError> {
        u.removes.clear();
        for _ in 0..self.count("removes")? {
            u.removes.push(self.pid()?);
        }
        self.members(&mut u.adds, "adds")?;
        self.client_ops(&mut u.clients)?;
        if self.with_tags {
            self.tag_table(&mut u.tags)?;
        } else {
            u.tags.clear();
        }
        Ok(())
    }
    /// One member's encoded tags into `out`, validated against `max_tag_bytes`.
    pub(crate) fn tags(&mut self, out: &mut Vec<u8>) -> Result<(), MsgError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        crate::tags::validate(b, self.max_tag_bytes).map_err(MsgError::BadTags)?;
        out.clear();
        out.extend_from_slice(b);
        Ok(())
    }
    /// A tag table (count checked against `max_members`, each entry validated).
    pub(crate) fn tag_table(&mut self, out: &mut TagTable) -> Result<(), MsgError> {
        out.clear();
        for _ in 0..self.count("tags")? {
            let id = self.pid()?;
            let n = self.u16()? as usize;
            let b = self.take(n)?;
            crate::tags::validate(b, self.max_tag_bytes).map_err(MsgError::BadTags)?;
            if out.get(id).is_some() {
                return Err(MsgError::BadTags(TagError::Malformed(
                    "a process has two entries",
                )));
            }
            out.set(id, b);
        }
        Ok(())
    }
    pub(crate) fn client_ops(&mut self, out: &mut Vec<ClientOp>) -> Result<(), MsgError> {
        out.clear();
        let n = self.u16()? as usize;
        if n > self.max_client_ops {
            return Err(MsgError::TooMany {
                what: "client changes",
                n,
                max: self.max_client_ops,
            });
        }
        for _ in 0..n {
            let op = match self.u8()? {
                1 => {
                    let m = self.member()?;
                    let core_eligible = match self.u8()? {
                        0 => false,
                        1 => true,
                        b => return Err(MsgError::BadFlag(b)),
                    };
                    ClientOp::add(m.id, m.addr, core_eligible)
                }
                2 => ClientOp::remove(self.pid()?),
                k => return Err(MsgError::BadClientOp(k)),
            };
            out.push(op);
        }
        Ok(())
    }
    pub(crate) fn proposal(&mut self, p: &mut Proposal) -> Result<(), MsgError> {
        p.version = self.version()?;
        self.update(&mut p.update)?;
        p.initiator = self.pid()?;
        p.initiator_index = self.u32()?;
        Ok(())
    }
    pub(crate) fn state(&mut self, s: &mut WireState) -> Result<(), MsgError> {
        s.ver = self.version()?;
        s.has_next = self.flag()?;
        if s.has_next {
            self.proposal(&mut s.next)?;
        }
        self.update(&mut s.last)
    }
}

/// Decodes one update set without tag list (as written by [`Writer::update_lists`])
/// that fills `bytes` exactly, checking its lists against `max_members` and
/// `max_client_ops`. Used by the membership service, whose deltas are update sets.
pub fn decode_update(
    bytes: &[u8],
    max_members: usize,
    max_client_ops: usize,
    out: &mut Update,
) -> Result<(), MsgError> {
    let mut r = Reader::new(bytes, max_members, max_client_ops);
    r.update(out)?;
    if !r.b.is_empty() {
        return Err(MsgError::Trailing(r.b.len()));
    }
    Ok(())
}

/// Encoded length of a process id (as written by [`Writer::pid`]).
pub fn pid_len(p: ProcessId) -> usize {
    1 + p.node.as_bytes().len() + 8
}

/// Encoded length of a member (as written by [`Writer::member`]).
pub fn member_len(m: &Member) -> usize {
    pid_len(m.id) + 1 + if m.addr.is_ipv4() { 4 } else { 16 } + 2
}

/// Encoded length of a client change (as written by [`Writer::client_ops`], per entry).
pub fn client_op_len(op: &ClientOp) -> usize {
    match op.kind {
        ClientOpKind::Add => {
            1 + member_len(&Member {
                id: op.id,
                addr: op.addr,
            }) + 1
        }
        ClientOpKind::Remove => 1 + pid_len(op.id),
    }
}

/// Decodes `bytes` into `out`, checking every count against `max_members` and the
/// snapshot against `max_snapshot`. Never panics; never grows `out`'s buffers when
/// `out` was made by [`Msg::with_capacity`] with the same limits.
pub fn decode(
    bytes: &[u8],
    max_members: usize,
    max_snapshot: usize,
    out: &mut Msg,
) -> Result<(), MsgError> {
    let mut r = Reader {
        b: bytes,
        max_members,
        max_client_ops: out.max_client_ops,
        with_tags: true,
        max_tag_bytes: out.max_tag_bytes,
    };
    let fmt = r.u8()?;
    if fmt != MSG_FORMAT {
        return Err(MsgError::BadFormat(fmt));
    }
    let k = r.u8()?;
    out.kind = MsgKind::from_u8(k).ok_or(MsgError::UnknownKind(k))?;
    out.sender_version = r.version()?;
    out.gossip.clear();
    for _ in 0..r.count("gossip")? {
        out.gossip.push(r.pid()?);
    }
    out.has_next = false;
    match out.kind {
        MsgKind::MSub | MsgKind::RSub => {
            out.version = r.version()?;
            r.update(&mut out.update)?;
        }
        MsgKind::MSubAck | MsgKind::RSubAck => {
            out.version = r.version()?;
        }
        MsgKind::MCom | MsgKind::RCom => {
            out.version = r.version()?;
            r.update(&mut out.update)?;
            out.has_next = r.flag()?;
            if out.has_next {
                r.update(&mut out.next)?;
            }
        }
        MsgKind::StateXfer => {
            out.version = r.version()?;
            r.update(&mut out.update)?;
            r.members(&mut out.members, "members")?;
            r.tag_table(&mut out.view_tags)?;
            let n = r.u32()? as usize;
            if n > max_snapshot {
                return Err(MsgError::TooMany {
                    what: "snapshot byte",
                    n,
                    max: max_snapshot,
                });
            }
            out.snapshot.clear();
            out.snapshot.extend_from_slice(r.take(n)?);
        }
        MsgKind::StateXferAck => {
            out.version = r.version()?;
            r.state(&mut out.state)?;
        }
        MsgKind::RInt | MsgKind::RIntResp => {
            r.state(&mut out.state)?;
            out.version = out.state.ver;
        }
        MsgKind::JoinReq => {
            out.joiner = r.member()?;
            r.tags(&mut out.tags)?;
        }
        MsgKind::TagReq => {
            r.tags(&mut out.tags)?;
        }
        MsgKind::ClientOps => {
            let mut ops = std::mem::take(&mut out.client_ops);
            let res = r.client_ops(&mut ops);
            out.client_ops = ops;
            res?;
        }
        MsgKind::LeaveReq | MsgKind::Heartbeat => {}
    }
    if !r.b.is_empty() {
        return Err(MsgError::Trailing(r.b.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, port: u16) -> Member {
        Member {
            id: ProcessId::named(name, 3),
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        }
    }

    fn sample_tags() -> Vec<u8> {
        let mut t = crate::tags::TagSet::new();
        t.insert("role", "db").unwrap();
        t.insert("zone", "eu").unwrap();
        t.encode()
    }

    fn sample_update() -> Update {
        let mut u = Update::with_tag_limits(8, 4, 64);
        u.tags.set(ProcessId::named("new", 3), &sample_tags());
        u.tags.set(ProcessId::named("old", 1), &[]);
        u.clients.push(ClientOp::add(
            ProcessId::named("c1", 1),
            member("x", 1).addr,
            true,
        ));
        u.clients.push(ClientOp::remove(ProcessId::named("c2", 7)));
        u.removes.push(ProcessId::named("gone", 1));
        u.adds.push(member("new", 9000));
        u.adds.push(Member {
            id: ProcessId::named("v6", 2),
            addr: "[::1]:7000".parse().unwrap(),
        });
        u
    }

    #[test]
    fn every_kind_round_trips() {
        let gossip = [ProcessId::named("sus", 4)];
        for kind in MsgKind::ALL {
            let mut buf = Vec::new();
            {
                let mut w = Writer::start(&mut buf, kind, 42, &gossip);
                match kind {
                    MsgKind::MSub | MsgKind::RSub => {
                        w.u64(43);
                        w.update(&sample_update());
                    }
                    MsgKind::MSubAck | MsgKind::RSubAck => w.u64(43),
                    MsgKind::MCom | MsgKind::RCom => {
                        w.u64(43);
                        w.update(&sample_update());
                        w.flag(true);
                        w.update(&sample_update());
                    }
                    MsgKind::StateXfer => {
                        w.u64(43);
                        w.update(&sample_update());
                        w.members(&[member("a", 1), member("b", 2)]);
                        let mut vt = TagTable::with_capacity(8, 64);
                        vt.set(member("b", 2).id, &sample_tags());
                        w.tag_table(&vt);
                        w.bytes(b"snap");
                    }
                    MsgKind::StateXferAck | MsgKind::RInt | MsgKind::RIntResp => {
                        if kind == MsgKind::StateXferAck {
                            w.u64(43);
                        }
                        let mut p = Proposal::with_capacity(8);
                        p.update = sample_update();
                        p.version = 44;
                        p.initiator = ProcessId::named("init", 1);
                        p.initiator_index = 2;
                        w.state(43, Some(&p), &sample_update());
                    }
                    MsgKind::JoinReq => {
                        w.member(&member("joiner", 5));
                        w.tags(&sample_tags());
                    }
                    MsgKind::TagReq => w.tags(&sample_tags()),
                    MsgKind::ClientOps => w.client_ops(&sample_update().clients),
                    MsgKind::LeaveReq | MsgKind::Heartbeat => {}
                }
            }
            let mut m = Msg::with_tag_limits(8, 4, 64, 64);
            decode(&buf, 8, 64, &mut m).unwrap();
            assert_eq!(m.kind, kind);
            assert_eq!(m.sender_version, 42);
            assert_eq!(m.gossip, gossip);
            match kind {
                MsgKind::MCom | MsgKind::RCom => {
                    assert!(m.has_next);
                    assert_eq!(m.next, sample_update());
                }
                MsgKind::StateXfer => {
                    assert_eq!(m.members.len(), 2);
                    assert_eq!(m.update, sample_update());
                    assert_eq!(
                        m.view_tags.get(member("b", 2).id).unwrap().get("role"),
                        Some("db")
                    );
                    assert_eq!(m.snapshot, b"snap");
                }
                MsgKind::RInt | MsgKind::RIntResp | MsgKind::StateXferAck => {
                    assert_eq!(m.state.ver, 43);
                    assert!(m.state.has_next);
                    assert_eq!(m.state.next.version, 44);
                    assert_eq!(m.state.last, sample_update());
                }
                MsgKind::JoinReq => {
                    assert_eq!(m.joiner, member("joiner", 5));
                    assert_eq!(m.tags, sample_tags());
                }
                MsgKind::TagReq => assert_eq!(m.tags, sample_tags()),
                MsgKind::ClientOps => assert_eq!(m.client_ops, sample_update().clients),
                MsgKind::MSub | MsgKind::RSub => assert_eq!(m.update, sample_update()),
                _ => {}
            }
            // Every truncation is rejected, never a panic.
            for cut in 0..buf.len() {
                assert!(decode(&buf[..cut], 8, 64, &mut m).is_err());
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        let mut buf = Vec::new();
        let gossip: Vec<_> = (0..5).map(|i| ProcessId::named("g", i)).collect();
        Writer::start(&mut buf, MsgKind::Heartbeat, 1, &gossip);
        let mut m = Msg::with_capacity(4, 0);
        assert!(matches!(
            decode(&buf, 4, 0, &mut m),
            Err(MsgError::TooMany { n: 5, max: 4, .. })
        ));
        buf.push(0);
        let mut m = Msg::with_capacity(8, 0);
        assert_eq!(decode(&buf, 8, 0, &mut m), Err(MsgError::Trailing(1)));
    }

    #[test]
    fn client_changes_beyond_the_limit_are_refused() {
        let mut buf = Vec::new();
        {
            let mut w = Writer::start(&mut buf, MsgKind::ClientOps, 1, &[]);
            w.client_ops(&sample_update().clients);
        }
        let mut m = Msg::with_limits(8, 1, 64);
        assert!(matches!(
            decode(&buf, 8, 64, &mut m),
            Err(MsgError::TooMany { n: 2, max: 1, .. })
        ));
        // A bad kind byte is an error, not a panic.
        let mut m = Msg::with_limits(8, 4, 64);
        let at = buf.len() - 1 - 1 - 2 - 8; // the second op's kind byte
        let mut bad = buf.clone();
        bad[at] = 9;
        assert!(decode(&bad, 8, 64, &mut m).is_err());
        assert!(m.client_ops.capacity() >= 4);
    }

    #[test]
    fn bad_tags_from_the_network_are_refused() {
        let encode = |tags: &[u8]| {
            let mut buf = Vec::new();
            let mut w = Writer::start(&mut buf, MsgKind::TagReq, 1, &[]);
            w.tags(tags);
            buf
        };
        let mut m = Msg::with_tag_limits(8, 0, 16, 64);
        // Good tags within the bound.
        let mut small = crate::tags::TagSet::new();
        small.insert("a", "1").unwrap();
        decode(&encode(&small.encode()), 8, 64, &mut m).unwrap();
        assert_eq!(m.tags, small.encode());
        // Larger than this engine's bound.
        assert!(matches!(
            decode(&encode(&sample_tags()), 8, 64, &mut m),
            Err(MsgError::BadTags(TagError::TooLarge { max: 16, .. }))
        ));
        // Malformed: a zero count, a bad key, bad UTF-8, a length past the end.
        let mut bad_key = small.encode();
        bad_key[2] = b'=';
        let mut bad_utf8 = small.encode();
        *bad_utf8.last_mut().unwrap() = 0xc3;
        for bad in [vec![0u8], bad_key, bad_utf8, vec![1, 5, b'a']] {
            assert!(
                matches!(
                    decode(&encode(&bad), 8, 64, &mut m),
                    Err(MsgError::BadTags(_))
                ),
                "{bad:?}"
            );
        }
        // A tag length that runs past the message is a truncation.
        let mut buf = encode(&small.encode());
        buf.truncate(buf.len() - 1);
        assert_eq!(decode(&buf, 8, 64, &mut m), Err(MsgError::Truncated));
        // Tags off (bound 0): any tags are refused, none are fine.
        let mut off = Msg::with_limits(8, 0, 64);
        assert!(decode(&encode(&small.encode()), 8, 64, &mut off).is_err());
        decode(&encode(&[]), 8, 64, &mut off).unwrap();
        // A tag table in an update with more entries than max_members.
        let mut u = Update::with_tag_limits(8, 0, 16);
        for i in 0..3 {
            u.tags.set(ProcessId::named("p", i), &small.encode());
        }
        let mut buf = Vec::new();
        {
            let mut w = Writer::start(&mut buf, MsgKind::MSub, 1, &[]);
            w.u64(2);
            w.update(&u);
        }
        let mut m2 = Msg::with_tag_limits(2, 0, 16, 64);
        assert!(matches!(
            decode(&buf, 2, 64, &mut m2),
            Err(MsgError::TooMany { what: "tags", .. })
        ));
        decode(&buf, 8, 64, &mut m).unwrap();
        assert_eq!(m.update.tags.len(), 3);
        // Every truncation of it is an error, never a panic.
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], 8, 64, &mut m).is_err());
        }
    }

    /// A version beyond [`MAX_VERSION`](crate::view::MAX_VERSION) in any version field
    /// (the header's, a submit's, a state's, a proposal's) is refused, so that no
    /// forged version makes the engine's `version + 1` overflow.
    #[test]
    fn versions_no_group_reaches_are_refused() {
        let over = crate::view::MAX_VERSION + 1;
        let max = crate::view::MAX_VERSION;
        let mut m = Msg::with_capacity(8, 64);
        let mut buf = Vec::new();
        Writer::start(&mut buf, MsgKind::Heartbeat, over, &[]);
        assert_eq!(decode(&buf, 8, 64, &mut m), Err(MsgError::BadVersion(over)));
        buf.clear();
        Writer::start(&mut buf, MsgKind::Heartbeat, max, &[]);
        decode(&buf, 8, 64, &mut m).unwrap();
        assert_eq!(m.sender_version, max);
        buf.clear();
        let mut w = Writer::start(&mut buf, MsgKind::MSubAck, 1, &[]);
        w.u64(over);
        assert_eq!(decode(&buf, 8, 64, &mut m), Err(MsgError::BadVersion(over)));
        buf.clear();
        let mut w = Writer::start(&mut buf, MsgKind::RInt, 1, &[]);
        w.state(over, None, &Update::with_capacity(1));
        assert_eq!(decode(&buf, 8, 64, &mut m), Err(MsgError::BadVersion(over)));
        let mut next = Proposal::with_limits(4, 4);
        next.version = over;
        buf.clear();
        let mut w = Writer::start(&mut buf, MsgKind::RIntResp, 1, &[]);
        w.state(1, Some(&next), &Update::with_capacity(1));
        assert_eq!(decode(&buf, 8, 64, &mut m), Err(MsgError::BadVersion(over)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..512), |bytes| {
                let mut m = Msg::with_capacity(8, 64);
                let _ = decode(&bytes, 8, 64, &mut m);
                prop_assert!(m.gossip.capacity() == 8);
                Ok(())
            })
            .unwrap();
    }
}
