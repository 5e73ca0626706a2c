//! Cluster keys: datagram authentication with a keyed BLAKE3 MAC, and the key file format.
//!
//! A [`Keyring`] holds up to two 32-byte keys: the *primary*, which signs every outgoing
//! datagram, and an optional *secondary*, also accepted on receipt. Holding two keys at
//! once lets a cluster rotate its key without a partition (as memberlist's keyring
//! does): install `[old, new]` then `[new, old]` then `[new]`, one step on every node at
//! a time (see `docs/SECURITY.md`).
//!
//! The tag of a datagram is the keyed BLAKE3 hash (`blake3::keyed_hash`) of every byte
//! before it, truncated to [`TAG_LEN`] bytes; it is compared in constant time. Signing
//! and checking work on the caller's buffer and never allocate.
//!
//! Key file format ([`Keyring::parse`]): either exactly 32 raw bytes (one key), or text
//! with one key per line as 64 hexadecimal digits, the primary first and an optional
//! secondary second; blank lines and lines starting with `#` are ignored.

use std::fmt;

/// Length of a key, bytes.
pub const KEY_LEN: usize = 32;
/// Length of a datagram's authentication tag, bytes (a truncated BLAKE3 keyed hash).
pub const TAG_LEN: usize = 16;

/// One or two cluster keys, or none (authentication off).
///
/// `Debug` never prints key material, only how many keys are held and a short
/// fingerprint of each (the first 4 bytes of the BLAKE3 hash of the key), so that logs
/// can tell which keys a node holds.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Keyring {
    keys: [[u8; KEY_LEN]; 2],
    count: u8,
}

impl Keyring {
    /// No keys: datagrams are neither signed nor checked.
    pub const NONE: Keyring = Keyring {
        keys: [[0; KEY_LEN]; 2],
        count: 0,
    };

    /// A keyring signing with `primary` and accepting `primary` or `secondary`.
    pub fn new(primary: [u8; KEY_LEN], secondary: Option<[u8; KEY_LEN]>) -> Keyring {
        Keyring {
            keys: [primary, secondary.unwrap_or([0; KEY_LEN])],
            count: if secondary.is_some() { 2 } else { 1 },
        }
    }

    /// Authentication is on (at least one key).
    pub fn is_enabled(&self) -> bool {
        self.count > 0
    }

    /// Number of keys held (0, 1 or 2).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// No keys held (same as `!is_enabled()`).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The signing key, if any.
    pub fn primary(&self) -> Option<&[u8; KEY_LEN]> {
        (self.count > 0).then_some(&self.keys[0])
    }

    /// The keys accepted on receipt, primary first.
    pub fn accepted(&self) -> &[[u8; KEY_LEN]] {
        &self.keys[..self.count as usize]
    }

    /// The same keys with primary and secondary swapped (a rotation step); unchanged
    /// with fewer than two keys.
    pub fn swapped(&self) -> Keyring {
        let mut k = *self;
        if k.count == 2 {
            k.keys.swap(0, 1);
        }
        k
    }

    /// The tag under `key` of `bytes` sent to the process named `receiver` (empty: to
    /// whoever listens, a probe). The receiver's name is bound into the tag (its
    /// length, then its bytes, before the datagram's): a datagram tagged for one node
    /// does not verify at another, even one with the same incarnation number.
    pub fn tag_for(key: &[u8; KEY_LEN], receiver: &[u8], bytes: &[u8]) -> [u8; TAG_LEN] {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(&[receiver.len() as u8]);
        h.update(receiver);
        h.update(bytes);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&h.finalize().as_bytes()[..TAG_LEN]);
        tag
    }

    /// The tag of `bytes` under `key`, for no receiver in particular
    /// ([`Keyring::tag_for`] with an empty name).
    pub fn tag_with(key: &[u8; KEY_LEN], bytes: &[u8]) -> [u8; TAG_LEN] {
        Self::tag_for(key, &[], bytes)
    }

    /// The tag of `bytes` under the primary key; `None` without keys.
    pub fn sign(&self, bytes: &[u8]) -> Option<[u8; TAG_LEN]> {
        self.primary().map(|k| Self::tag_with(k, bytes))
    }

    /// `tag` is the tag of `bytes` under one of the accepted keys (constant-time
    /// comparison). Always `false` without keys.
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        self.verify_for(&[], bytes, tag)
    }

    /// [`Keyring::verify`] of a tag made for the process named `receiver`
    /// ([`Keyring::tag_for`]).
    pub fn verify_for(&self, receiver: &[u8], bytes: &[u8], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let mut ok = false;
        for key in self.accepted() {
            let want = Self::tag_for(key, receiver, bytes);
            let diff = want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            ok |= diff == 0;
        }
        ok
    }

    /// Parses the contents of a key file (see the [module docs](self)).
    pub fn parse(contents: &[u8]) -> Result<Keyring, KeyError> {
        if contents.len() == KEY_LEN {
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(contents);
            return Ok(Keyring::new(k, None));
        }
        let text = std::str::from_utf8(contents).map_err(|_| KeyError::NotText)?;
        let mut keys = Vec::with_capacity(2);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if keys.len() == 2 {
                return Err(KeyError::TooManyKeys);
            }
            keys.push(parse_hex_key(line).map_err(|reason| KeyError::BadLine {
                line: n + 1,
                reason,
            })?);
        }
        match keys[..] {
            [] => Err(KeyError::Empty),
            [p] => Ok(Keyring::new(p, None)),
            [p, s] => Ok(Keyring::new(p, Some(s))),
            _ => Err(KeyError::TooManyKeys),
        }
    }

    /// Encodes this keyring in the key file's text format (the inverse of
    /// [`Keyring::parse`]): one line of 64 hex digits per key, primary first.
    pub fn to_key_file(&self) -> String {
        let mut s = String::with_capacity(self.len() * (2 * KEY_LEN + 1));
        for k in self.accepted() {
            for b in k {
                s.push_str(&format!("{b:02x}"));
            }
            s.push('\n');
        }
        s
    }

    /// A short public fingerprint of key `i` (first 4 bytes of its BLAKE3 hash), for logs.
    pub fn fingerprint(&self, i: usize) -> Option<u32> {
        let k = self.accepted().get(i)?;
        let h = blake3::hash(k);
        let b = h.as_bytes();
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for i in 0..self.len() {
            l.entry(&format_args!(
                "key:{:08x}",
                self.fingerprint(i).unwrap_or(0)
            ));
        }
        l.finish()
    }
}

fn parse_hex_key(line: &str) -> Result<[u8; KEY_LEN], &'static str> {
    let b = line.as_bytes();
    if b.len() != 2 * KEY_LEN {
        return Err("a key is 64 hexadecimal digits");
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err("not a hexadecimal digit"),
    };
    let mut k = [0u8; KEY_LEN];
    for (i, out) in k.iter_mut().enumerate() {
        *out = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Ok(k)
}

/// Why a key file's contents are not a keyring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No key in the file.
    #[error(
        "the key file holds no key (expected one or two lines of 64 hex digits, or 32 raw bytes)"
    )]
    Empty,
    /// Neither 32 raw bytes nor text.
    #[error("the key file is neither 32 raw bytes nor text lines of 64 hex digits")]
    NotText,
    /// A line is not a key.
    #[error("key file line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// More than two keys.
    #[error("the key file holds more than two keys (primary and secondary)")]
    TooManyKeys,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_rotation() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let a = Keyring::new(k1, None);
        let b = Keyring::new(k2, Some(k1));
        let tag = a.sign(b"hello").unwrap();
        assert!(a.verify(b"hello", &tag));
        assert!(b.verify(b"hello", &tag));
        assert!(!b.verify(b"hellO", &tag));
        assert!(!Keyring::new(k2, None).verify(b"hello", &tag));
        assert!(!Keyring::NONE.verify(b"hello", &tag));
        assert!(!a.verify(b"hello", &tag[..15]));
        assert_eq!(b.swapped().primary(), Some(&k1));
        assert_eq!(Keyring::NONE.sign(b"x"), None);
    }

    #[test]
    fn key_file_formats() {
        let k = Keyring::new([0xab; 32], Some([0x01; 32]));
        let text = k.to_key_file();
        assert_eq!(Keyring::parse(text.as_bytes()), Ok(k));
        let commented = format!("# cluster key\n\n{}", text.to_uppercase());
        assert_eq!(Keyring::parse(commented.as_bytes()), Ok(k));
        assert_eq!(Keyring::parse(&[7u8; 32]), Ok(Keyring::new([7; 32], None)));
        assert_eq!(Keyring::parse(b""), Err(KeyError::Empty));
        assert_eq!(Keyring::parse(b"# nothing\n"), Err(KeyError::Empty));
        assert!(matches!(
            Keyring::parse(b"abcd\n"),
            Err(KeyError::BadLine { line: 1, .. })
        ));
        let bad = format!("{}\n{}zz\n", "0".repeat(64), "0".repeat(62));
        assert!(matches!(
            Keyring::parse(bad.as_bytes()),
            Err(KeyError::BadLine { line: 2, .. })
        ));
        let three = format!("{0}\n{0}\n{0}\n", "1".repeat(64));
        assert_eq!(Keyring::parse(three.as_bytes()), Err(KeyError::TooManyKeys));
        assert_eq!(Keyring::parse(&[0xff; 33]), Err(KeyError::NotText));
    }

    #[test]
    fn debug_hides_keys() {
        let k = Keyring::new([0x5a; 32], None);
        let s = format!("{k:?}");
        assert!(!s.contains("5a5a") && !s.contains("90, 90"), "{s}");
        assert!(s.starts_with("[key:"), "{s}");
    }
}
