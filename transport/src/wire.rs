//! The datagram format: encoding and strict, panic-free decoding.
//!
//! The exact byte layout is documented in `docs/WIRE.md`. In short, all integers are
//! big-endian:
//!
//! ```text
//! magic u16 | version u8 | kind u8 | cluster u64 | sender_inc u64 | receiver_inc u64 |
//! ack u64 | sack_offset u32 | sack u64 | name_len u8 | name [name_len] | body |
//! [tag [16]] | crc32 u32
//! ```
//!
//! with body `count u16, count × (seq u64 | len u16 | flags u8 | payload [len])` for
//! [`Kind::Data`], `echo u64` for [`Kind::Ack`], `ts u64` for [`Kind::Keepalive`] and
//! `reserved u64 | len u16 | payload [len]` for [`Kind::Probe`] (unreliable, unsequenced, outside any
//! channel: used to discover peers by address before their process id is known).
//! The CRC32 (IEEE, `crc32fast`) covers every byte before it.
//!
//! When the sender holds a cluster key, bit 7 of the kind byte ([`KIND_TAGGED`]) is set
//! and a 16-byte tag ([`TAG_LEN`]), a keyed BLAKE3 MAC of every byte before it, sits
//! between the body and the CRC (see [`crate::keyring`]). [`decode`] parses tagged
//! datagrams without checking the tag; [`check_tag`] checks it.

pub use crate::keyring::TAG_LEN;
use crate::keyring::{Keyring, KEY_LEN};
use crate::{DropReason, NodeId, ProcessId, MAX_NODE_NAME};

/// First two bytes of every datagram: `"SG"`.
pub const MAGIC: u16 = 0x5347;
/// The protocol version this code speaks.
pub const VERSION: u8 = 1;
/// Header bytes before the node name.
pub const FIXED_HEADER_LEN: usize = 49;
/// Longest header (with a [`MAX_NODE_NAME`]-byte name).
pub const MAX_HEADER_LEN: usize = FIXED_HEADER_LEN + MAX_NODE_NAME;
/// Length of the CRC32 trailer.
pub const CRC_LEN: usize = 4;
/// Length of a data body's frame count.
pub const DATA_PREFIX_LEN: usize = 2;
/// Bytes before each frame's payload: seq, len, flags.
pub const FRAME_HEADER_LEN: usize = 11;
/// Length of the ack and keepalive bodies.
pub const STAMP_LEN: usize = 8;
/// Shortest valid datagram (one-byte name, ack body).
pub const MIN_DATAGRAM_LEN: usize = FIXED_HEADER_LEN + 1 + STAMP_LEN + CRC_LEN;
/// Bit of the kind byte telling that a [`TAG_LEN`]-byte authentication tag follows the
/// body (just before the CRC).
pub const KIND_TAGGED: u8 = 0x80;
/// Frame flag: this frame ends its message.
pub const FLAG_END: u8 = 0x01;
/// Largest payload of a [`Kind::Probe`] datagram.
pub const MAX_PROBE_PAYLOAD: usize = 1024;
/// Bytes of a probe body before its payload: a reserved `u64` (sent as 0, ignored; it
/// also keeps the shortest probe above [`MIN_DATAGRAM_LEN`]) and the payload length `u16`.
pub const PROBE_PREFIX_LEN: usize = 10;
/// Number of frames after the cumulative ack covered by the selective-ack bitmap.
pub const SACK_BITS: u64 = 64;

/// Payload bytes of one frame in a datagram of at most `mtu` bytes (for the longest
/// header, and room for an authentication tag whether or not one is sent, so that keyed
/// and unkeyed endpoints agree on it).
pub const fn frame_capacity(mtu: usize) -> usize {
    mtu.saturating_sub(MAX_HEADER_LEN + DATA_PREFIX_LEN + FRAME_HEADER_LEN + TAG_LEN + CRC_LEN)
}

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One or more frames (whole small messages or fragments of large ones).
    Data = 1,
    /// Acknowledgement only, possibly echoing a keepalive.
    Ack = 2,
    /// A probe of an idle channel; answered at once by an [`Kind::Ack`] echoing its stamp.
    Keepalive = 3,
    /// An unreliable, unsequenced datagram outside any channel, carrying a small
    /// payload (up to [`MAX_PROBE_PAYLOAD`] bytes); its ack fields are 0 and ignored.
    Probe = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Ack),
            3 => Some(Kind::Keepalive),
            4 => Some(Kind::Probe),
            _ => None,
        }
    }
}

/// The fixed part of every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the body holds.
    pub kind: Kind,
    /// The sender's cluster id.
    pub cluster_id: u64,
    /// The sending process.
    pub sender: ProcessId,
    /// The incarnation of the receiver the datagram is meant for (0: any).
    pub receiver_incarnation: u64,
    /// Cumulative ack: every frame of the reverse channel with a lower sequence number
    /// was received.
    pub ack: u64,
    /// Where the selective-ack bitmap starts: bit 0 is frame `ack + 1 + sack_offset`.
    /// The receiver moves it past a long hole so that the bitmap shows received frames.
    pub sack_offset: u32,
    /// Selective ack: bit `i` set means frame `ack + 1 + sack_offset + i` was received;
    /// a clear bit below the highest set one means that frame is missing.
    pub sack: u64,
}

impl Header {
    /// Encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + self.sender.node.as_bytes().len()
    }
}

/// The body of a decoded datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// Validated frames.
    Data(Frames<'a>),
    /// An acknowledgement; `echo` is a keepalive stamp being answered (0: none).
    Ack {
        /// The echoed keepalive stamp, 0 if none.
        echo: u64,
    },
    /// A keepalive with the sender's stamp (never 0).
    Keepalive {
        /// Opaque to the receiver; echoed back in an ack.
        ts: u64,
    },
    /// A probe's payload.
    Probe(&'a [u8]),
}

/// A decoded, fully validated datagram borrowing the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The header.
    pub header: Header,
    /// The body.
    pub body: Body<'a>,
    /// The datagram carries an authentication tag ([`KIND_TAGGED`]); [`decode`] does not
    /// check it: see [`check_tag`].
    pub tagged: bool,
}

/// One frame: a whole message or one fragment of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Sequence number in the channel (one per frame).
    pub seq: u64,
    /// This frame ends its message.
    pub end: bool,
    /// The bytes.
    pub payload: &'a [u8],
}

/// Iterator over the frames of a data datagram. Built only by [`decode`], which has
/// validated every frame, so iteration cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frames<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Frames<'a> {
    /// Frames not yet yielded.
    pub fn len(&self) -> usize {
        self.left as usize
    }

    /// No frames left.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Frame<'a>;
    fn next(&mut self) -> Option<Frame<'a>> {
        if self.left == 0 {
            return None;
        }
        // [`decode`] checked every frame (flags, lengths): only the slicing is left.
        let (head, rest) = self.rest.split_first_chunk::<FRAME_HEADER_LEN>()?;
        let len = u16::from_be_bytes([head[8], head[9]]) as usize;
        let (payload, rest) = rest.split_at_checked(len)?;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&head[..8]);
        self.rest = rest;
        self.left -= 1;
        Some(Frame {
            seq: u64::from_be_bytes(seq),
            end: head[10] & FLAG_END != 0,
            payload,
        })
    }
}

/// Why a datagram does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the smallest datagram.
    #[error("datagram of {0} bytes is too short")]
    TooShort(usize),
    /// The CRC32 trailer does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
    /// Not our magic number.
    #[error("bad magic number {0:#06x}")]
    BadMagic(u16),
    /// Another protocol version.
    #[error("unsupported protocol version {0}")]
    BadVersion(u8),
    /// Unknown datagram kind.
    #[error("unknown datagram kind {0}")]
    BadKind(u8),
    /// The sender's node name is invalid.
    #[error("invalid sender node name")]
    BadName,
    /// A length or count points past the end of the datagram.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes left over after the body.
    #[error("{0} unexpected bytes after the body")]
    TrailingBytes(usize),
    /// A data datagram without frames.
    #[error("data datagram without frames")]
    NoFrames,
    /// A frame longer than the receiver's frame capacity.
    #[error("frame of {len} bytes exceeds the {max}-byte frame capacity")]
    FrameTooLong {
        /// The frame's length.
        len: usize,
        /// The receiver's capacity.
        max: usize,
    },
    /// Unknown frame flags, or an empty fragment that does not end its message.
    #[error("invalid frame flags {0:#04x}")]
    BadFlags(u8),
    /// A keepalive with a zero stamp.
    #[error("keepalive with a zero stamp")]
    ZeroStamp,
    /// A probe payload longer than [`MAX_PROBE_PAYLOAD`].
    #[error("probe payload of {0} bytes exceeds the limit")]
    ProbeTooLong(usize),
    /// The receiver holds cluster keys and the datagram has no tag.
    #[error("datagram without an authentication tag")]
    Unauthenticated,
    /// The tag does not verify under any key the receiver holds.
    #[error("authentication tag does not verify")]
    BadTag,
}

impl DecodeError {
    /// The counter this error is dropped under.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            DecodeError::Checksum => DropReason::Checksum,
            DecodeError::BadVersion(_) => DropReason::BadVersion,
            DecodeError::Unauthenticated => DropReason::Unauthenticated,
            DecodeError::BadTag => DropReason::BadTag,
            _ => DropReason::Malformed,
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn parse_frame(b: &[u8], max_len: usize) -> Result<(Frame<'_>, &[u8]), DecodeError> {
    if b.len() < FRAME_HEADER_LEN {
        return Err(DecodeError::Truncated("frame header"));
    }
    let seq = u64_at(b, 0).ok_or(DecodeError::Truncated("frame header"))?;
    let len = u16_at(b, 8).ok_or(DecodeError::Truncated("frame header"))? as usize;
    let flags = b[10];
    if flags & !FLAG_END != 0 || (len == 0 && flags & FLAG_END == 0) {
        return Err(DecodeError::BadFlags(flags));
    }
    if len > max_len {
        return Err(DecodeError::FrameTooLong { len, max: max_len });
    }
    let payload = b
        .get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len)
        .ok_or(DecodeError::Truncated("frame payload"))?;
    let frame = Frame {
        seq,
        end: flags & FLAG_END != 0,
        payload,
    };
    Ok((frame, &b[FRAME_HEADER_LEN + len..]))
}

/// The CRC32 of `bytes`, starting from `fresh`, a new [`crc32fast::Hasher`] kept by the
/// caller: cloning it skips the CPU feature detection `crc32fast::hash` repeats per call.
#[inline]
pub(crate) fn crc_with(fresh: &crc32fast::Hasher, bytes: &[u8]) -> u32 {
    let mut h = fresh.clone();
    h.update(bytes);
    h.finalize()
}

/// Checks the CRC, the header and the whole body of `datagram`; frames longer than
/// `max_frame` bytes are refused. Never panics.
pub fn decode(datagram: &[u8], max_frame: usize) -> Result<Datagram<'_>, DecodeError> {
    let p = decode_with(datagram, max_frame, None, &crc32fast::Hasher::new())?;
    // `decode_with` checked the name.
    let node = NodeId::from_bytes(p.name).map_err(|_| DecodeError::BadName)?;
    Ok(Datagram {
        header: Header {
            kind: p.kind,
            cluster_id: p.cluster_id,
            sender: ProcessId::new(node, p.sender_incarnation),
            receiver_incarnation: p.receiver_incarnation,
            ack: p.ack,
            sack_offset: p.sack_offset,
            sack: p.sack,
        },
        body: p.body,
        tagged: p.tagged,
    })
}

/// A datagram checked by [`decode_with`]: the fields of a [`Datagram`], with the sender's
/// name left as the received bytes (no [`NodeId`] is built: the endpoint mostly
/// compares it with a name it holds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parsed<'a> {
    pub kind: Kind,
    pub tagged: bool,
    pub cluster_id: u64,
    pub sender_incarnation: u64,
    pub receiver_incarnation: u64,
    pub ack: u64,
    pub sack_offset: u32,
    pub sack: u64,
    /// The sender's node name, valid (a [`NodeId`]'s bytes).
    pub name: &'a [u8],
    /// `name` is the `known` name given to [`decode_with`].
    pub known: bool,
    pub body: Body<'a>,
}

/// [`decode`] for the endpoint, with the same checks in the same order: `fresh` is a new
/// hasher to clone for the CRC ([`crc_with`]), and a sender name equal to `known` (a
/// name the endpoint already holds, hence valid) is taken as it is instead of being
/// checked byte by byte.
pub(crate) fn decode_with<'a>(
    datagram: &'a [u8],
    max_frame: usize,
    known: Option<&[u8]>,
    fresh: &crc32fast::Hasher,
) -> Result<Parsed<'a>, DecodeError> {
    if datagram.len() < MIN_DATAGRAM_LEN {
        return Err(DecodeError::TooShort(datagram.len()));
    }
    let (content, trailer) = datagram.split_at(datagram.len() - CRC_LEN);
    let crc = u32::from_be_bytes(trailer.try_into().map_err(|_| DecodeError::Checksum)?);
    if crc_with(fresh, content) != crc {
        return Err(DecodeError::Checksum);
    }
    let magic = u16_at(content, 0).ok_or(DecodeError::TooShort(datagram.len()))?;
    if magic != MAGIC {
        return Err(DecodeError::BadMagic(magic));
    }
    if content[2] != VERSION {
        return Err(DecodeError::BadVersion(content[2]));
    }
    let tagged = content[3] & KIND_TAGGED != 0;
    let kind_byte = content[3] & !KIND_TAGGED;
    let kind = Kind::from_u8(kind_byte).ok_or(DecodeError::BadKind(content[3]))?;
    let b = if tagged {
        if content.len() < MIN_DATAGRAM_LEN - CRC_LEN + TAG_LEN {
            return Err(DecodeError::Truncated("authentication tag"));
        }
        &content[..content.len() - TAG_LEN]
    } else {
        content
    };
    // The fixed header, whole (the length checks above leave room for it): its fields
    // are read at constant offsets without further bounds checks.
    let fixed: &[u8; FIXED_HEADER_LEN] = b
        .get(..FIXED_HEADER_LEN)
        .and_then(|f| f.try_into().ok())
        .ok_or(DecodeError::Truncated("header"))?;
    let field = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&fixed[at..at + 8]);
        u64::from_be_bytes(w)
    };
    let cluster_id = field(4);
    let sender_incarnation = field(12);
    let receiver_incarnation = field(20);
    let ack = field(28);
    let sack_offset = u32::from_be_bytes([fixed[36], fixed[37], fixed[38], fixed[39]]);
    let sack = field(40);
    let name_len = fixed[48] as usize;
    let name = b
        .get(FIXED_HEADER_LEN..FIXED_HEADER_LEN + name_len)
        .ok_or(DecodeError::Truncated("node name"))?;
    let was_known = match known {
        Some(k) if k == name => true,
        _ => {
            NodeId::from_bytes(name).map_err(|_| DecodeError::BadName)?;
            false
        }
    };
    let body = &b[FIXED_HEADER_LEN + name_len..];
    let stamp = || -> Result<u64, DecodeError> {
        let v = u64_at(body, 0).ok_or(DecodeError::Truncated("body"))?;
        if body.len() > STAMP_LEN {
            return Err(DecodeError::TrailingBytes(body.len() - STAMP_LEN));
        }
        Ok(v)
    };
    let body = match kind {
        Kind::Ack => Body::Ack { echo: stamp()? },
        Kind::Keepalive => match stamp()? {
            0 => return Err(DecodeError::ZeroStamp),
            ts => Body::Keepalive { ts },
        },
        Kind::Probe => {
            let len = u16_at(body, 8).ok_or(DecodeError::Truncated("probe length"))? as usize;
            if len > MAX_PROBE_PAYLOAD {
                return Err(DecodeError::ProbeTooLong(len));
            }
            let payload = body
                .get(PROBE_PREFIX_LEN..PROBE_PREFIX_LEN + len)
                .ok_or(DecodeError::Truncated("probe payload"))?;
            if body.len() > PROBE_PREFIX_LEN + len {
                return Err(DecodeError::TrailingBytes(
                    body.len() - PROBE_PREFIX_LEN - len,
                ));
            }
            Body::Probe(payload)
        }
        Kind::Data => {
            let count = u16_at(body, 0).ok_or(DecodeError::Truncated("frame count"))?;
            if count == 0 {
                return Err(DecodeError::NoFrames);
            }
            let frames = &body[DATA_PREFIX_LEN..];
            let mut rest = frames;
            for _ in 0..count {
                rest = parse_frame(rest, max_frame)?.1;
            }
            if !rest.is_empty() {
                return Err(DecodeError::TrailingBytes(rest.len()));
            }
            Body::Data(Frames {
                rest: frames,
                left: count,
            })
        }
    };
    Ok(Parsed {
        kind,
        tagged,
        cluster_id,
        sender_incarnation,
        receiver_incarnation,
        ack,
        sack_offset,
        sack,
        name,
        known: was_known,
        body,
    })
}

/// Checks the authentication of a received `datagram` (which [`decode`] accepted)
/// against `keys`, as received by the process named `me`: without keys anything
/// passes (the tag, if any, is not checked); with keys the datagram must be tagged
/// ([`DecodeError::Unauthenticated`]) with a tag that verifies under one of them for
/// `me` (for no one in particular if it is a probe; [`DecodeError::BadTag`]
/// otherwise). No allocation.
pub fn check_tag(datagram: &[u8], keys: &Keyring, me: &NodeId) -> Result<(), DecodeError> {
    if !keys.is_enabled() {
        return Ok(());
    }
    let n = datagram.len();
    if n < 4 || datagram[3] & KIND_TAGGED == 0 {
        return Err(DecodeError::Unauthenticated);
    }
    if n < TAG_LEN + CRC_LEN {
        return Err(DecodeError::BadTag);
    }
    let at = n - CRC_LEN - TAG_LEN;
    let to = if datagram[3] & !KIND_TAGGED == Kind::Probe as u8 {
        &[][..]
    } else {
        me.as_bytes()
    };
    if keys.verify_for(to, &datagram[..at], &datagram[at..n - CRC_LEN]) {
        Ok(())
    } else {
        Err(DecodeError::BadTag)
    }
}

/// The constant part of the headers one endpoint sends on one channel, encoded once:
/// `magic`, `version`, `cluster_id`, `sender_incarnation`, `receiver_incarnation`,
/// `name_len` and `name` in place, the kind byte and the acknowledgement fields
/// (`ack`, `sack_offset`, `sack`) zero, as are the bytes after the name.
/// [`Writer::from_template`] copies it into a datagram and writes the rest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderTemplate {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
    /// The receiver's name, bound into the tag (not sent): `None` for a probe's.
    receiver: Option<NodeId>,
}

impl HeaderTemplate {
    /// The template of datagrams from `sender` in cluster `cluster_id` to the process
    /// with incarnation `receiver_incarnation` (0: any).
    pub(crate) fn new(cluster_id: u64, sender: ProcessId, receiver_incarnation: u64) -> Self {
        let name = sender.node.as_bytes();
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        bytes[2] = VERSION;
        bytes[4..12].copy_from_slice(&cluster_id.to_be_bytes());
        bytes[12..20].copy_from_slice(&sender.incarnation.to_be_bytes());
        bytes[48] = name.len() as u8;
        bytes[FIXED_HEADER_LEN..FIXED_HEADER_LEN + name.len()].copy_from_slice(name);
        let mut t = HeaderTemplate {
            bytes,
            len: (FIXED_HEADER_LEN + name.len()) as u8,
            receiver: None,
        };
        t.set_receiver_incarnation(receiver_incarnation);
        t
    }

    /// Readdresses the template to another incarnation of the receiver.
    pub(crate) fn set_receiver_incarnation(&mut self, incarnation: u64) {
        self.bytes[20..28].copy_from_slice(&incarnation.to_be_bytes());
    }

    /// Addresses the template to process `to`: its incarnation in the header, its
    /// name in the tag.
    pub(crate) fn set_receiver(&mut self, to: ProcessId) {
        self.set_receiver_incarnation(to.incarnation);
        self.receiver = Some(to.node);
    }

    /// The header's encoded length.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

impl std::fmt::Debug for HeaderTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderTemplate")
            .field("bytes", &&self.bytes[..self.len()])
            .finish()
    }
}

/// Builds one datagram in place in a caller's buffer.
///
/// Usage: [`Writer::new`], then either frames ([`Writer::push_frame`], data only) or
/// nothing, then [`Writer::finish`] with the body stamp (ack / keepalive) which appends
/// the CRC and returns the length.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    kind: Kind,
    frames: u16,
    count_at: usize,
    /// The signing key, when the datagram is tagged.
    key: Option<&'a [u8; KEY_LEN]>,
    /// The receiver's name, bound into the tag (`None`: a probe's, to anyone).
    receiver: Option<NodeId>,
    /// A probe body was written by [`encode_probe_keyed`].
    body_done: bool,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pos", &self.pos)
            .field("kind", &self.kind)
            .field("frames", &self.frames)
            .field("tagged", &self.key.is_some())
            .finish()
    }
}

impl<'a> Writer<'a> {
    /// Starts an untagged datagram with `header` in `buf`, which bounds its size. `None`
    /// if `buf` cannot hold the header, body and trailer.
    pub fn new(buf: &'a mut [u8], header: &Header) -> Option<Writer<'a>> {
        Self::new_keyed(buf, header, &Keyring::NONE)
    }

    /// Starts a datagram with `header` in `buf`, tagged with the primary key of `keys`
    /// if it has one (untagged otherwise). `None` if `buf` cannot hold the header, body,
    /// tag and trailer.
    pub fn new_keyed(buf: &'a mut [u8], header: &Header, keys: &'a Keyring) -> Option<Writer<'a>> {
        let template = HeaderTemplate::new(
            header.cluster_id,
            header.sender,
            header.receiver_incarnation,
        );
        Self::from_template(
            buf,
            &template,
            header.kind,
            (header.ack, header.sack_offset, header.sack),
            keys,
        )
    }

    /// [`new_keyed`](Self::new_keyed) for a header whose constant part is encoded in
    /// `template`: the template is copied in one piece (a fixed-size copy when `buf`
    /// holds [`MAX_HEADER_LEN`] bytes, as a transmit buffer of at least the minimum
    /// `mtu` does), then the kind byte and `acks` (`ack`, `sack_offset`, `sack`) are
    /// written over it. The bytes are those `new_keyed` writes for the same header.
    pub(crate) fn from_template(
        buf: &'a mut [u8],
        template: &HeaderTemplate,
        kind: Kind,
        acks: (u64, u32, u64),
        keys: &'a Keyring,
    ) -> Option<Writer<'a>> {
        let (ack, sack_offset, sack) = acks;
        let body_min = match kind {
            Kind::Data => DATA_PREFIX_LEN + FRAME_HEADER_LEN,
            Kind::Probe => PROBE_PREFIX_LEN,
            _ => STAMP_LEN,
        };
        let key = keys.primary();
        let tag_len = if key.is_some() { TAG_LEN } else { 0 };
        let header_len = template.len();
        if buf.len() < header_len + body_min + tag_len + CRC_LEN {
            return None;
        }
        // Bytes of the template past the header (zeros) land where the body goes, and
        // are overwritten or left out of the datagram.
        match buf.get_mut(..MAX_HEADER_LEN) {
            Some(head) => head.copy_from_slice(&template.bytes),
            None => buf[..header_len].copy_from_slice(&template.bytes[..header_len]),
        }
        buf[3] = kind as u8 | if key.is_some() { KIND_TAGGED } else { 0 };
        let acks = &mut buf[28..FIXED_HEADER_LEN - 1];
        acks[0..8].copy_from_slice(&ack.to_be_bytes());
        acks[8..12].copy_from_slice(&sack_offset.to_be_bytes());
        acks[12..20].copy_from_slice(&sack.to_be_bytes());
        let count_at = header_len;
        let pos = if kind == Kind::Data {
            header_len + DATA_PREFIX_LEN // the count is written by `finish`
        } else {
            header_len
        };
        Some(Writer {
            buf,
            pos,
            kind,
            frames: 0,
            count_at,
            key,
            receiver: template.receiver,
            body_done: false,
        })
    }

    fn tag_len(&self) -> usize {
        if self.key.is_some() {
            TAG_LEN
        } else {
            0
        }
    }

    /// Payload bytes a further frame could carry.
    pub fn frame_room(&self) -> usize {
        if self.kind != Kind::Data || self.frames == u16::MAX {
            return 0;
        }
        self.buf
            .len()
            .saturating_sub(self.pos + FRAME_HEADER_LEN + self.tag_len() + CRC_LEN)
    }

    /// Frames written so far.
    pub fn frames(&self) -> u16 {
        self.frames
    }

    /// Appends a frame; `false` (and nothing written) if it does not fit or the datagram
    /// is not a data datagram.
    pub fn push_frame(&mut self, seq: u64, end: bool, payload: &[u8]) -> bool {
        if payload.len() > self.frame_room() || payload.len() > u16::MAX as usize {
            return false;
        }
        let p = self.pos;
        let n = FRAME_HEADER_LEN + payload.len();
        // One bounds check for the whole frame; the writes below index inside it.
        let frame = &mut self.buf[p..p + n];
        frame[0..8].copy_from_slice(&seq.to_be_bytes());
        frame[8..10].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        frame[10] = if end { FLAG_END } else { 0 };
        frame[FRAME_HEADER_LEN..].copy_from_slice(payload);
        self.pos = p + n;
        self.frames += 1;
        true
    }

    /// Writes the body's stamp (ack echo or keepalive stamp; ignored for data), the tag
    /// (when keyed) and the CRC; returns the datagram's length.
    pub fn finish(self, stamp: u64) -> usize {
        self.finish_with(stamp, &crc32fast::Hasher::new())
    }

    /// [`finish`](Self::finish), the CRC computed from `fresh`, a new hasher (see
    /// [`crc_with`]).
    pub(crate) fn finish_with(self, stamp: u64, fresh: &crc32fast::Hasher) -> usize {
        let mut pos = self.pos;
        match self.kind {
            Kind::Data => {
                let at = self.count_at;
                self.buf[at..at + 2].copy_from_slice(&self.frames.to_be_bytes());
            }
            Kind::Ack | Kind::Keepalive => {
                self.buf[pos..pos + STAMP_LEN].copy_from_slice(&stamp.to_be_bytes());
                pos += STAMP_LEN;
            }
            Kind::Probe if self.body_done => {}
            Kind::Probe => {
                // An empty probe, unless written through `encode_probe`.
                self.buf[pos..pos + PROBE_PREFIX_LEN].fill(0);
                pos += PROBE_PREFIX_LEN;
            }
        }
        if let Some(key) = self.key {
            let to = self.receiver.as_ref().map_or(&[][..], NodeId::as_bytes);
            let tag = Keyring::tag_for(key, to, &self.buf[..pos]);
            self.buf[pos..pos + TAG_LEN].copy_from_slice(&tag);
            pos += TAG_LEN;
        }
        let crc = crc_with(fresh, &self.buf[..pos]);
        self.buf[pos..pos + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
        pos + CRC_LEN
    }
}

/// Writes a whole [`Kind::Probe`] datagram from `sender` into `buf`: receiver
/// incarnation 0, ack fields 0, then `payload`. Returns its length, or `None` if the
/// payload is longer than [`MAX_PROBE_PAYLOAD`] or `buf` cannot hold the datagram.
pub fn encode_probe(
    buf: &mut [u8],
    cluster_id: u64,
    sender: ProcessId,
    payload: &[u8],
) -> Option<usize> {
    encode_probe_keyed(buf, cluster_id, sender, payload, &Keyring::NONE)
}

/// [`encode_probe`], tagged with the primary key of `keys` if it has one.
pub fn encode_probe_keyed(
    buf: &mut [u8],
    cluster_id: u64,
    sender: ProcessId,
    payload: &[u8],
    keys: &Keyring,
) -> Option<usize> {
    if payload.len() > MAX_PROBE_PAYLOAD {
        return None;
    }
    let header = Header {
        kind: Kind::Probe,
        cluster_id,
        sender,
        receiver_incarnation: 0,
        ack: 0,
        sack_offset: 0,
        sack: 0,
    };
    let tag_len = if keys.is_enabled() { TAG_LEN } else { 0 };
    let need = header.encoded_len() + PROBE_PREFIX_LEN + payload.len() + tag_len + CRC_LEN;
    if buf.len() < need {
        return None;
    }
    let mut w = Writer::new_keyed(buf, &header, keys)?;
    let pos = w.pos;
    w.buf[pos..pos + 8].fill(0);
    w.buf[pos + 8..pos + PROBE_PREFIX_LEN].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    let pos = pos + PROBE_PREFIX_LEN;
    w.buf[pos..pos + payload.len()].copy_from_slice(payload);
    w.pos = pos + payload.len();
    w.body_done = true;
    Some(w.finish(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_round_trip() {
        let mut buf = [0u8; 1400];
        let me = ProcessId::named("node-a", 3);
        let len = encode_probe(&mut buf, 7, me, b"hello").unwrap();
        let d = decode(&buf[..len], 1303).unwrap();
        assert_eq!(d.header.kind, Kind::Probe);
        assert_eq!(d.header.sender, me);
        assert_eq!(d.header.receiver_incarnation, 0);
        assert_eq!(d.body, Body::Probe(b"hello"));
        let len = encode_probe(&mut buf, 7, me, &[]).unwrap();
        assert_eq!(decode(&buf[..len], 1303).unwrap().body, Body::Probe(b""));
        assert!(encode_probe(&mut buf, 7, me, &[0; MAX_PROBE_PAYLOAD + 1]).is_none());
        assert!(encode_probe(&mut buf[..60], 7, me, &[0; 10]).is_none());
        // A length pointing past the end is refused.
        let len = encode_probe(&mut buf, 7, me, b"abc").unwrap();
        let at = FIXED_HEADER_LEN + 6 + 8;
        buf[at..at + 2].copy_from_slice(&9u16.to_be_bytes());
        let crc = crc32fast::hash(&buf[..len - 4]);
        buf[len - 4..len].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode(&buf[..len], 1303),
            Err(DecodeError::Truncated(_))
        ));
    }

    fn header(kind: Kind) -> Header {
        Header {
            kind,
            cluster_id: 0xdead_beef,
            sender: ProcessId::named("node-a", 3),
            receiver_incarnation: 9,
            ack: 1234,
            sack_offset: 77,
            sack: 0b1011,
        }
    }

    #[test]
    fn data_round_trip() {
        let mut buf = [0u8; 1400];
        let h = header(Kind::Data);
        let mut w = Writer::new(&mut buf, &h).unwrap();
        assert!(w.push_frame(7, true, b"hello"));
        assert!(w.push_frame(8, false, &[1; 100]));
        assert!(w.push_frame(9, true, b""));
        let len = w.finish(0);
        let d = decode(&buf[..len], 1400).unwrap();
        assert_eq!(d.header, h);
        let Body::Data(frames) = d.body else {
            panic!("not data")
        };
        assert_eq!(frames.len(), 3);
        let v: Vec<_> = frames.collect();
        assert_eq!(
            v[0],
            Frame {
                seq: 7,
                end: true,
                payload: b"hello"
            }
        );
        assert_eq!(v[1].payload.len(), 100);
        assert!(!v[1].end);
        assert_eq!(v[2].payload, b"");
    }

    #[test]
    fn ack_and_keepalive_round_trip() {
        let mut buf = [0u8; 200];
        let len = Writer::new(&mut buf, &header(Kind::Ack))
            .unwrap()
            .finish(77);
        assert_eq!(len, MIN_DATAGRAM_LEN + 5);
        let d = decode(&buf[..len], 100).unwrap();
        assert_eq!(d.body, Body::Ack { echo: 77 });
        let len = Writer::new(&mut buf, &header(Kind::Keepalive))
            .unwrap()
            .finish(5);
        assert_eq!(
            decode(&buf[..len], 100).unwrap().body,
            Body::Keepalive { ts: 5 }
        );
        let len = Writer::new(&mut buf, &header(Kind::Keepalive))
            .unwrap()
            .finish(0);
        assert_eq!(decode(&buf[..len], 100), Err(DecodeError::ZeroStamp));
    }

    #[test]
    fn writer_respects_buffer_size() {
        let mut buf = [0u8; 120];
        let h = header(Kind::Data);
        let mut w = Writer::new(&mut buf, &h).unwrap();
        let room = w.frame_room();
        assert_eq!(room, 120 - h.encoded_len() - 2 - FRAME_HEADER_LEN - CRC_LEN);
        assert!(!w.push_frame(1, true, &vec![0; room + 1]));
        assert!(w.push_frame(1, true, &vec![0; room]));
        assert_eq!(w.frame_room(), 0);
        assert_eq!(w.finish(0), 120);
        assert!(decode(&buf, room).is_ok());
        assert_eq!(
            decode(&buf, room - 1),
            Err(DecodeError::FrameTooLong {
                len: room,
                max: room - 1
            })
        );
        assert!(Writer::new(&mut [0u8; 10], &h).is_none());
    }

    /// The header as `Writer::new_keyed` wrote it field by field before the template:
    /// the reference the template path must match byte for byte.
    fn reference_header(buf: &mut [u8], h: &Header, tagged: bool) -> usize {
        let name = h.sender.node.as_bytes();
        buf[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        buf[2] = VERSION;
        buf[3] = h.kind as u8 | if tagged { KIND_TAGGED } else { 0 };
        buf[4..12].copy_from_slice(&h.cluster_id.to_be_bytes());
        buf[12..20].copy_from_slice(&h.sender.incarnation.to_be_bytes());
        buf[20..28].copy_from_slice(&h.receiver_incarnation.to_be_bytes());
        buf[28..36].copy_from_slice(&h.ack.to_be_bytes());
        buf[36..40].copy_from_slice(&h.sack_offset.to_be_bytes());
        buf[40..48].copy_from_slice(&h.sack.to_be_bytes());
        buf[48] = name.len() as u8;
        buf[FIXED_HEADER_LEN..FIXED_HEADER_LEN + name.len()].copy_from_slice(name);
        FIXED_HEADER_LEN + name.len()
    }

    #[test]
    fn template_headers_match_the_field_by_field_encoding() {
        let keyed = Keyring::new([5; 32], None);
        for name in ["a", "node-a", &"n".repeat(MAX_NODE_NAME)] {
            for kind in [Kind::Data, Kind::Ack, Kind::Keepalive, Kind::Probe] {
                for keys in [&Keyring::NONE, &keyed] {
                    let h = Header {
                        kind,
                        cluster_id: 0x0102_0304_0506_0708,
                        sender: ProcessId::named(name, 0x1122_3344_5566_7788),
                        receiver_incarnation: 0x99aa_bbcc_ddee_ff00,
                        ack: u64::MAX - 3,
                        sack_offset: 0xdead_beef,
                        sack: 0x8000_0000_0000_0001,
                    };
                    let mut want = [0u8; 200];
                    let n = reference_header(&mut want, &h, keys.is_enabled());
                    // A buffer shorter than the longest header takes the short copy.
                    for size in [1400, n + 40, MAX_HEADER_LEN - 1] {
                        let mut buf = vec![0xeeu8; size];
                        let Some(mut w) = Writer::new_keyed(&mut buf, &h, keys) else {
                            assert!(size < n + 40, "{size}");
                            continue;
                        };
                        if kind == Kind::Data {
                            assert!(w.push_frame(1, true, b"x"));
                        }
                        let len = w.finish(7);
                        assert_eq!(buf[..n], want[..n], "{name} {kind:?} {size}");
                        let d = decode(&buf[..len], 1400).unwrap();
                        assert_eq!(d.header, h);
                        assert_eq!(d.tagged, keys.is_enabled());
                    }
                }
            }
        }
    }

    #[test]
    fn template_is_readdressed_to_a_new_receiver_incarnation() {
        let me = ProcessId::named("node-a", 3);
        let mut t = HeaderTemplate::new(7, me, 1);
        t.set_receiver_incarnation(42);
        assert_eq!(t, HeaderTemplate::new(7, me, 42));
        let mut buf = [0u8; 300];
        let len = Writer::from_template(&mut buf, &t, Kind::Ack, (9, 1, 2), &Keyring::NONE)
            .unwrap()
            .finish(0);
        let d = decode(&buf[..len], 100).unwrap();
        assert_eq!(d.header.receiver_incarnation, 42);
        assert_eq!(
            (d.header.ack, d.header.sack_offset, d.header.sack),
            (9, 1, 2)
        );
        assert_eq!(d.header.sender, me);
        assert_eq!(t.len(), d.header.encoded_len());
    }

    #[test]
    fn numbers_in_wire_md() {
        assert_eq!(MAX_HEADER_LEN, 80);
        assert_eq!(MIN_DATAGRAM_LEN, 62);
        assert_eq!(frame_capacity(1400), 1287);
    }

    #[test]
    fn frame_capacity_fits_the_longest_header() {
        let cap = frame_capacity(1400);
        let mut buf = [0u8; 1400];
        let h = Header {
            sender: ProcessId::named(&"n".repeat(MAX_NODE_NAME), 1),
            ..header(Kind::Data)
        };
        let keys = Keyring::new([1; 32], None);
        let mut w = Writer::new_keyed(&mut buf, &h, &keys).unwrap();
        assert_eq!(w.frame_room(), cap);
        assert!(w.push_frame(0, true, &vec![3; cap]));
        assert_eq!(w.finish(0), 1400);
        // Untagged, the same frame leaves the tag's room unused.
        let mut w = Writer::new(&mut buf, &h).unwrap();
        assert_eq!(w.frame_room(), cap + TAG_LEN);
        assert!(w.push_frame(0, true, &vec![3; cap]));
        assert_eq!(w.finish(0), 1400 - TAG_LEN);
    }

    #[test]
    fn rejects_garbage() {
        let mut buf = [0u8; 200];
        let len = Writer::new(&mut buf, &header(Kind::Ack)).unwrap().finish(1);
        assert_eq!(decode(&buf[..3], 10), Err(DecodeError::TooShort(3)));
        let mut bad = buf;
        bad[0] ^= 1;
        assert_eq!(decode(&bad[..len], 10), Err(DecodeError::Checksum));
        // Valid CRC over a bad version.
        let mut v = buf;
        v[2] = 9;
        let crc = crc32fast::hash(&v[..len - 4]);
        v[len - 4..len].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(decode(&v[..len], 10), Err(DecodeError::BadVersion(9)));
        assert_eq!(
            DecodeError::BadVersion(9).drop_reason(),
            DropReason::BadVersion
        );
        // Data with a count larger than the frames present.
        let h = header(Kind::Data);
        let mut w = Writer::new(&mut buf, &h).unwrap();
        w.push_frame(1, true, b"x");
        let len = w.finish(0);
        let at = h.encoded_len();
        buf[at..at + 2].copy_from_slice(&2u16.to_be_bytes());
        let crc = crc32fast::hash(&buf[..len - 4]);
        buf[len - 4..len].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode(&buf[..len], 100),
            Err(DecodeError::Truncated(_))
        ));
    }

    /// A channel's datagram to `to`, keyed: the receiver's name goes into the tag.
    fn keyed_to<'a>(buf: &'a mut [u8], h: &Header, to: ProcessId, keys: &'a Keyring) -> Writer<'a> {
        let mut t = HeaderTemplate::new(h.cluster_id, h.sender, 0);
        t.set_receiver(to);
        Writer::from_template(buf, &t, h.kind, (h.ack, h.sack_offset, h.sack), keys).unwrap()
    }

    #[test]
    fn tagged_datagrams() {
        let keys = Keyring::new([9; 32], None);
        let other = Keyring::new([8; 32], Some([7; 32]));
        let mut buf = [0u8; 1400];
        let h = header(Kind::Data);
        let b = ProcessId::named("node-b", h.receiver_incarnation);
        let mut w = keyed_to(&mut buf, &h, b, &keys);
        let room = w.frame_room();
        assert_eq!(
            room,
            1400 - h.encoded_len() - 2 - FRAME_HEADER_LEN - TAG_LEN - CRC_LEN
        );
        assert!(w.push_frame(1, true, b"hi"));
        let len = w.finish(0);
        let d = decode(&buf[..len], 1400).unwrap();
        assert!(d.tagged);
        assert_eq!(d.header, h);
        assert_eq!(check_tag(&buf[..len], &keys, &b.node), Ok(()));
        assert_eq!(check_tag(&buf[..len], &Keyring::NONE, &b.node), Ok(()));
        assert_eq!(
            check_tag(&buf[..len], &other, &b.node),
            Err(DecodeError::BadTag)
        );
        // Meant for node-b: another node, even with node-b's incarnation, refuses it
        // (a replay redirected there), as does node-b's tag of an empty name.
        let c = ProcessId::named("node-c", h.receiver_incarnation);
        assert_eq!(
            check_tag(&buf[..len], &keys, &c.node),
            Err(DecodeError::BadTag)
        );
        let mut w = Writer::new_keyed(&mut buf, &h, &keys).unwrap();
        assert!(w.push_frame(1, true, b"hi"));
        let len2 = w.finish(0);
        assert_eq!(
            check_tag(&buf[..len2], &keys, &b.node),
            Err(DecodeError::BadTag)
        );
        let mut w = keyed_to(&mut buf, &h, b, &keys);
        assert!(w.push_frame(1, true, b"hi"));
        assert_eq!(w.finish(0), len);
        // Tampering (CRC recomputed) breaks the tag.
        let mut bad = buf;
        bad[30] ^= 1;
        let crc = crc32fast::hash(&bad[..len - 4]);
        bad[len - 4..len].copy_from_slice(&crc.to_be_bytes());
        assert!(decode(&bad[..len], 1400).is_ok());
        assert_eq!(
            check_tag(&bad[..len], &keys, &b.node),
            Err(DecodeError::BadTag)
        );
        // Untagged datagrams are refused by a keyed receiver.
        let len = Writer::new(&mut buf, &header(Kind::Ack)).unwrap().finish(3);
        assert!(!decode(&buf[..len], 100).unwrap().tagged);
        assert_eq!(
            check_tag(&buf[..len], &keys, &b.node),
            Err(DecodeError::Unauthenticated)
        );
        // Tagged probes.
        let me = ProcessId::named("p", 1);
        let len = encode_probe_keyed(&mut buf, 7, me, b"q", &keys).unwrap();
        let d = decode(&buf[..len], 100).unwrap();
        assert_eq!(d.body, Body::Probe(b"q"));
        assert!(d.tagged);
        // A probe is for whoever listens: it verifies at any node.
        assert_eq!(check_tag(&buf[..len], &keys, &b.node), Ok(()));
        assert_eq!(check_tag(&buf[..len], &keys, &c.node), Ok(()));
        assert_eq!(DecodeError::BadTag.drop_reason(), DropReason::BadTag);
    }
}
