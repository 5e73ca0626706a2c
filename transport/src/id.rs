//! Process identity shared by the transport and the membership engine.
//!
//! A process is a node name plus an incarnation number. A node that restarts
//! comes back with a higher incarnation, which makes it a *different* process:
//! the paper's excluded processes may only return under a new identifier.

use std::fmt;

/// Longest node name, in bytes. Names are stored inline so that ids are `Copy`
/// and never allocate.
pub const MAX_NODE_NAME: usize = 31;

/// A node name: up to [`MAX_NODE_NAME`] bytes of printable ASCII, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    len: u8,
    bytes: [u8; MAX_NODE_NAME],
}

/// Why a string cannot be a [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// The name is empty.
    #[error("node name is empty")]
    Empty,
    /// The name is longer than [`MAX_NODE_NAME`] bytes.
    #[error("node name is {0} bytes long; the limit is {MAX_NODE_NAME}")]
    TooLong(usize),
    /// The name holds a byte outside printable ASCII, or `#` (which separates the incarnation).
    #[error(
        "node name may hold only printable ASCII other than '#' and space (found byte {0:#04x})"
    )]
    BadByte(u8),
}

impl NodeId {
    /// Builds a node id from a name, checking its length and characters.
    pub fn new(name: &str) -> Result<Self, NodeIdError> {
        Self::from_bytes(name.as_bytes())
    }

    /// Builds a node id from raw bytes (as found on the wire), with the same checks as [`NodeId::new`].
    pub fn from_bytes(name: &[u8]) -> Result<Self, NodeIdError> {
        if name.is_empty() {
            return Err(NodeIdError::Empty);
        }
        if name.len() > MAX_NODE_NAME {
            return Err(NodeIdError::TooLong(name.len()));
        }
        let bad = |b: u8| !(0x21..0x7f).contains(&b) || b == b'#';
        // Every received datagram's sender name is checked: one branch-free pass (which
        // the compiler vectorizes), then a search for the culprit only if there is one.
        if name.iter().fold(false, |any, &b| any | bad(b)) {
            if let Some(&b) = name.iter().find(|&&b| bad(b)) {
                return Err(NodeIdError::BadByte(b));
            }
        }
        let mut bytes = [0u8; MAX_NODE_NAME];
        bytes[..name.len()].copy_from_slice(name);
        Ok(NodeId {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The whole inline name (length, then the bytes, zero-padded) as four words: equal
    /// names give equal words. For hashing a word at a time.
    pub(crate) fn words(&self) -> [u64; 4] {
        let mut b = [0u8; 32];
        b[0] = self.len;
        b[1..].copy_from_slice(&self.bytes);
        let w = |i: usize| {
            u64::from_le_bytes([
                b[i],
                b[i + 1],
                b[i + 2],
                b[i + 3],
                b[i + 4],
                b[i + 5],
                b[i + 6],
                b[i + 7],
            ])
        };
        [w(0), w(8), w(16), w(24)]
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A process: a node name plus an incarnation. Printed as `NAME#INCARNATION`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId {
    /// The node's name.
    pub node: NodeId,
    /// Which life of that node this is; a restart or rejoin takes a higher one.
    pub incarnation: u64,
}

impl ProcessId {
    /// Builds a process id.
    pub fn new(node: NodeId, incarnation: u64) -> Self {
        ProcessId { node, incarnation }
    }

    /// Convenience for tests and tools: `ProcessId::named("a", 1)`.
    ///
    /// # Panics
    /// If `name` is not a valid node name; use [`NodeId::new`] for untrusted input.
    pub fn named(name: &str, incarnation: u64) -> Self {
        ProcessId {
            node: NodeId::new(name).expect("valid node name"),
            incarnation,
        }
    }

    /// Parses `NAME#INCARNATION`.
    pub fn parse(s: &str) -> Option<Self> {
        let (name, inc) = s.rsplit_once('#')?;
        Some(ProcessId {
            node: NodeId::new(name).ok()?,
            incarnation: inc.parse().ok()?,
        })
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node, self.incarnation)
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node, self.incarnation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(NodeId::new(""), Err(NodeIdError::Empty));
        assert!(matches!(
            NodeId::new(&"x".repeat(32)),
            Err(NodeIdError::TooLong(32))
        ));
        assert!(matches!(
            NodeId::new("a#b"),
            Err(NodeIdError::BadByte(b'#'))
        ));
        assert!(matches!(
            NodeId::new("a b"),
            Err(NodeIdError::BadByte(b' '))
        ));
        assert_eq!(NodeId::new("node-1").unwrap().as_str(), "node-1");
    }

    #[test]
    fn pid_round_trips_through_text() {
        let p = ProcessId::named("alpha", 7);
        assert_eq!(p.to_string(), "alpha#7");
        assert_eq!(ProcessId::parse("alpha#7"), Some(p));
        assert_eq!(ProcessId::parse("alpha"), None);
        assert!(ProcessId::named("a", 2) > ProcessId::named("a", 1));
    }
}
