//! Member tags: a small, bounded key-value map per member (memberlist's metadata,
//! Serf's tags), agreed on like the membership itself.
//!
//! A member's tags travel in its join request and in every view: changing them is an
//! update committed by the mgr (`docs/PROTOCOL.md`, D25), so every member sees the same
//! tags at the same view version. Three types:
//!
//! - [`TagSet`]: an owned, validated map, for building tags (configuration, API);
//! - [`Tags`]: a borrowed view of one member's *encoded* tags, as the engine keeps them;
//! - [`TagTable`]: process id → encoded tags, in one preallocated arena (a view's tags,
//!   an update's tag changes), so that a view change allocates nothing.
//!
//! Encoding of one member's tags (its *encoded size* is what [`MAX_TAG_BYTES`] bounds):
//! no tags is zero bytes; otherwise `count (u8, ≥ 1)`, then per tag, keys strictly
//! ascending: `key length (u8, 1..=64), key, value length (u16, little endian), value`.
//! Keys are ASCII letters, digits, `_`, `.` and `-`; values are UTF-8.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ProcessId;

/// Ceiling of a member's encoded tags, bytes ([`crate::EngineConfig::max_tag_bytes`]
/// may set a lower bound, not a higher one).
pub const MAX_TAG_BYTES: usize = 512;

/// Longest tag key, bytes.
pub const MAX_KEY_LEN: usize = 64;

/// Why tags were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A key is empty.
    #[error("a tag key must not be empty")]
    EmptyKey,
    /// A key is longer than [`MAX_KEY_LEN`].
    #[error("tag key '{key}' is {len} bytes long; the limit is 64")]
    KeyTooLong {
        /// The key (shortened).
        key: String,
        /// Its length.
        len: usize,
    },
    /// A key holds a character other than ASCII letters, digits, `_`, `.` and `-`.
    #[error("tag key '{key}' has the character {ch:?}; keys use only A-Z a-z 0-9 _ . -")]
    BadKeyChar {
        /// The key.
        key: String,
        /// The first character refused.
        ch: char,
    },
    /// The tags take more bytes encoded than the bound.
    #[error("the tags take {bytes} bytes encoded; the limit is {max} (fewer or shorter tags)")]
    TooLarge {
        /// Their encoded size.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// A `KEY=VALUE` argument has no `=`.
    #[error("tag '{0}' is not of the form KEY=VALUE")]
    NotAPair(String),
    /// Encoded tags are malformed (from the network or a caller's bytes).
    #[error("malformed encoded tags: {0}")]
    Malformed(&'static str),
}

fn check_key(key: &str) -> Result<(), TagError> {
    if key.is_empty() {
        return Err(TagError::EmptyKey);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(TagError::KeyTooLong {
            key: key.chars().take(MAX_KEY_LEN).collect::<String>() + "...",
            len: key.len(),
        });
    }
    if let Some(ch) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(TagError::BadKeyChar {
            key: key.to_string(),
            ch,
        });
    }
    Ok(())
}

/// An owned, validated tag map (keys sorted). Serializes as a plain map
/// (`tags = { role = "db" }` in TOML, `{"role":"db"}` in JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, String>",
    into = "BTreeMap<String, String>"
)]
pub struct TagSet {
    map: BTreeMap<String, String>,
}

impl TryFrom<BTreeMap<String, String>> for TagSet {
    type Error = TagError;
    fn try_from(map: BTreeMap<String, String>) -> Result<TagSet, TagError> {
        for k in map.keys() {
            check_key(k)?;
        }
        let t = TagSet { map };
        t.check_size(MAX_TAG_BYTES)?;
        Ok(t)
    }
}

impl From<TagSet> for BTreeMap<String, String> {
    fn from(t: TagSet) -> Self {
        t.map
    }
}

impl TagSet {
    /// No tags.
    pub fn new() -> TagSet {
        TagSet::default()
    }

    /// Sets `key` to `value` (replacing an earlier value). Refuses a bad key, or tags
    /// that would exceed [`MAX_TAG_BYTES`] encoded (a node may bound them lower:
    /// [`TagSet::check_size`]).
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TagError> {
        check_key(key)?;
        let old = self.map.insert(key.to_string(), value.to_string());
        if let Err(e) = self.check_size(MAX_TAG_BYTES) {
            match old {
                Some(v) => self.map.insert(key.to_string(), v),
                None => self.map.remove(key),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Parses `KEY=VALUE` (the `--tag` flag) and sets it.
    pub fn insert_pair(&mut self, pair: &str) -> Result<(), TagError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| TagError::NotAPair(pair.to_string()))?;
        self.insert(k.trim(), v)
    }

    /// Removes `key`; its value, if it was set.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The tags, keys ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no tags.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Size of the encoding, bytes (0 without tags).
    pub fn encoded_len(&self) -> usize {
        if self.map.is_empty() {
            return 0;
        }
        1 + self
            .map
            .iter()
            .map(|(k, v)| 1 + k.len() + 2 + v.len())
            .sum::<usize>()
    }

    /// Ok if the encoding takes at most `max` bytes (and at most 255 tags).
    pub fn check_size(&self, max: usize) -> Result<(), TagError> {
        let bytes = self.encoded_len();
        if bytes > max || self.map.len() > 255 {
            return Err(TagError::TooLarge { bytes, max });
        }
        Ok(())
    }

    /// Appends the encoding to `out` (see the module docs).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if self.map.is_empty() {
            return;
        }
        out.push(self.map.len().min(255) as u8);
        for (k, v) in self.map.iter().take(255) {
            out.push(k.len() as u8);
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_le_bytes());
            out.extend_from_slice(&v.as_bytes()[..v.len().min(u16::MAX as usize)]);
        }
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut v);
        v
    }

    /// Decodes (and validates) an encoding.
    pub fn decode(bytes: &[u8]) -> Result<TagSet, TagError> {
        Ok(Tags::new(bytes, MAX_TAG_BYTES)?.to_set())
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for TagSet {
    /// Collects pairs, skipping any that [`TagSet::insert`] refuses.
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> TagSet {
        let mut t = TagSet::new();
        for (k, v) in iter {
            let _ = t.insert(k, v);
        }
        t
    }
}

impl fmt::Display for TagSet {
    /// `k1=v1,k2=v2` (empty without tags).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Tags::from_valid(&self.encode()).fmt(f)
    }
}

/// One member's tags, encoded and validated; borrowed from a view or an update.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Tags<'a>(&'a [u8]);

impl<'a> Tags<'a> {
    /// No tags.
    pub const EMPTY: Tags<'static> = Tags(&[]);

    /// Checks `bytes` as an encoding of at most `max` bytes.
    pub fn new(bytes: &'a [u8], max: usize) -> Result<Tags<'a>, TagError> {
        validate(bytes, max)?;
        Ok(Tags(bytes))
    }

    /// Bytes already validated (what the engine stores).
    pub(crate) fn from_valid(bytes: &'a [u8]) -> Tags<'a> {
        Tags(bytes)
    }

    /// The encoding.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// True without tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags, keys ascending.
    pub fn iter(&self) -> TagIter<'a> {
        TagIter {
            b: self.0.get(1..).unwrap_or(&[]),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// An owned copy.
    pub fn to_set(&self) -> TagSet {
        TagSet {
            map: self
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl fmt::Debug for Tags<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl fmt::Display for Tags<'_> {
    /// `k1=v1,k2=v2` (empty without tags).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Iterator over encoded tags (only ever built over validated bytes).
#[derive(Clone, Debug)]
pub struct TagIter<'a> {
    b: &'a [u8],
}

impl<'a> Iterator for TagIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let (k, v, rest) = split_entry(self.b).ok()?;
        self.b = rest;
        Some((k, v))
    }
}

/// One entry off the front of `b`: key, value, the rest.
fn split_entry(b: &[u8]) -> Result<(&str, &str, &[u8]), TagError> {
    let (&kl, b) = b.split_first().ok_or(TagError::Malformed("truncated"))?;
    let kl = kl as usize;
    if b.len() < kl + 2 {
        return Err(TagError::Malformed("truncated"));
    }
    let (k, b) = b.split_at(kl);
    let vl = u16::from_le_bytes([b[0], b[1]]) as usize;
    let b = &b[2..];
    if b.len() < vl {
        return Err(TagError::Malformed("truncated"));
    }
    let (v, rest) = b.split_at(vl);
    let k = std::str::from_utf8(k).map_err(|_| TagError::Malformed("key is not ASCII"))?;
    let v = std::str::from_utf8(v).map_err(|_| TagError::Malformed("value is not UTF-8"))?;
    Ok((k, v, rest))
}

/// Checks that `bytes` is a canonical encoding of at most `max` bytes (no allocation).
pub fn validate(bytes: &[u8], max: usize) -> Result<(), TagError> {
    if bytes.len() > max {
        return Err(TagError::TooLarge {
            bytes: bytes.len(),
            max,
        });
    }
    let Some((&n, mut b)) = bytes.split_first() else {
        return Ok(());
    };
    if n == 0 {
        return Err(TagError::Malformed("zero tags must be encoded as no bytes"));
    }
    let mut prev: &str = "";
    for i in 0..n {
        let (k, _, rest) = split_entry(b)?;
        if k.is_empty()
            || k.len() > MAX_KEY_LEN
            || !k
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        {
            return Err(TagError::Malformed("bad key"));
        }
        if i > 0 && k <= prev {
            return Err(TagError::Malformed("keys not strictly ascending"));
        }
        prev = k;
        b = rest;
    }
    if !b.is_empty() {
        return Err(TagError::Malformed("trailing bytes"));
    }
    Ok(())
}

/// Process id → encoded tags, in one arena sized at construction (`entries` ×
/// `max_bytes`): setting, removing and copying allocate nothing within that bound.
/// Entries keep their insertion order (an update's tag changes are applied in order).
#[derive(Clone, Debug, Default, Eq)]
pub struct TagTable {
    ids: Vec<ProcessId>,
    /// End offset in `bytes` of each entry (entry i starts where i - 1 ends).
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl PartialEq for TagTable {
    /// Same entries, in any order.
    fn eq(&self, other: &TagTable) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(id, t)| other.get(id).is_some_and(|o| o == t))
    }
}

impl TagTable {
    /// Room for `entries` entries of at most `max_bytes` each.
    pub fn with_capacity(entries: usize, max_bytes: usize) -> TagTable {
        TagTable {
            ids: Vec::with_capacity(entries),
            ends: Vec::with_capacity(entries),
            bytes: Vec::with_capacity(entries * max_bytes),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Removes every entry, keeping the capacity.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.ends.clear();
        self.bytes.clear();
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        start..self.ends[i] as usize
    }

    /// The entry of `id`.
    pub fn get(&self, id: ProcessId) -> Option<Tags<'_>> {
        let i = self.ids.iter().position(|p| *p == id)?;
        Some(Tags(&self.bytes[self.range(i)]))
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (ProcessId, Tags<'_>)> + '_ {
        (0..self.ids.len()).map(move |i| (self.ids[i], Tags(&self.bytes[self.range(i)])))
    }

    /// Removes the entry of `id`, if any.
    pub fn remove(&mut self, id: ProcessId) {
        if let Some(i) = self.ids.iter().position(|p| *p == id) {
            let r = self.range(i);
            let len = r.len() as u32;
            self.bytes.drain(r);
            self.ids.remove(i);
            self.ends.remove(i);
            for e in &mut self.ends[i..] {
                *e -= len;
            }
        }
    }

    /// Sets the entry of `id` to `tags` (replacing an earlier one, which moves to the
    /// end of the order). The caller has validated `tags`.
    pub fn set(&mut self, id: ProcessId, tags: &[u8]) {
        self.remove(id);
        self.ids.push(id);
        self.bytes.extend_from_slice(tags);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Keeps only the entries of ids `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(ProcessId) -> bool) {
        let mut i = 0;
        while i < self.ids.len() {
            if keep(self.ids[i]) {
                i += 1;
            } else {
                let id = self.ids[i];
                self.remove(id);
            }
        }
    }

    /// Copies `other` into `self` without reallocating (capacity permitting).
    pub fn copy_from(&mut self, other: &TagTable) {
        self.ids.clear();
        self.ids.extend_from_slice(&other.ids);
        self.ends.clear();
        self.ends.extend_from_slice(&other.ends);
        self.bytes.clear();
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// True if both hold the same entries in the same order.
    pub fn same_order(&self, other: &TagTable) -> bool {
        self.ids == other.ids && self.ends == other.ends && self.bytes == other.bytes
    }

    /// Encoded tag bytes held (all entries).
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_round_trips_and_reads_back() {
        let mut t = TagSet::new();
        t.insert("role", "db").unwrap();
        t.insert("zone", "eu-1").unwrap();
        t.insert_pair("dc=ams").unwrap();
        t.insert("role", "web").unwrap();
        let b = t.encode();
        assert_eq!(b.len(), t.encoded_len());
        let v = Tags::new(&b, MAX_TAG_BYTES).unwrap();
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            [("dc", "ams"), ("role", "web"), ("zone", "eu-1")]
        );
        assert_eq!(v.get("role"), Some("web"));
        assert_eq!(v.get("x"), None);
        assert_eq!(v.to_set(), t);
        assert_eq!(TagSet::decode(&b).unwrap(), t);
        assert_eq!(t.to_string(), "dc=ams,role=web,zone=eu-1");
        assert!(TagSet::new().encode().is_empty());
        assert!(Tags::new(&[], 0).unwrap().is_empty());
    }

    #[test]
    fn bad_keys_and_oversized_sets_are_typed_errors() {
        let mut t = TagSet::new();
        assert_eq!(t.insert("", "x"), Err(TagError::EmptyKey));
        assert!(matches!(
            t.insert("a b", "x"),
            Err(TagError::BadKeyChar { ch: ' ', .. })
        ));
        assert!(matches!(
            t.insert(&"k".repeat(65), "x"),
            Err(TagError::KeyTooLong { len: 65, .. })
        ));
        assert_eq!(
            t.insert_pair("novalue"),
            Err(TagError::NotAPair("novalue".into()))
        );
        t.insert("big", &"x".repeat(400)).unwrap();
        let e = t.insert("more", &"y".repeat(200)).unwrap_err();
        assert!(matches!(e, TagError::TooLarge { max: 512, .. }), "{e}");
        assert_eq!(t.len(), 1, "a refused insert leaves the set as it was");
        assert!(e.to_string().contains("limit is 512"));
        assert!(t.check_size(100).is_err());
        // UTF-8 values are fine.
        t.insert("city", "Zürich").unwrap();
        // Serde refuses bad maps with the same errors.
        let bad: Result<TagSet, _> = serde_json::from_str(r#"{"a b":"x"}"#);
        assert!(bad.unwrap_err().to_string().contains("A-Z a-z 0-9"));
        let good: TagSet = serde_json::from_str(r#"{"role":"db"}"#).unwrap();
        assert_eq!(good.get("role"), Some("db"));
    }

    #[test]
    fn malformed_encodings_are_refused_never_a_panic() {
        let mut t = TagSet::new();
        t.insert("a", "1").unwrap();
        t.insert("b", "22").unwrap();
        let b = t.encode();
        for cut in 1..b.len() {
            assert!(validate(&b[..cut], 512).is_err(), "cut {cut}");
        }
        assert!(validate(&[0], 512).is_err(), "zero count");
        let mut swapped = TagSet::new();
        swapped.insert("b", "1").unwrap();
        let mut bytes = vec![2];
        bytes.extend_from_slice(&swapped.encode()[1..]);
        bytes.extend_from_slice(&t.encode()[1..5]); // "a" after "b"
        assert!(validate(&bytes, 512).is_err());
        let mut bad_key = b.clone();
        bad_key[2] = b' ';
        assert!(validate(&bad_key, 512).is_err());
        let mut bad_utf8 = b.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(validate(&bad_utf8, 512).is_err());
        assert!(matches!(
            validate(&b, 3),
            Err(TagError::TooLarge { max: 3, .. })
        ));
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&proptest::collection::vec(any::<u8>(), 0..64), |bytes| {
                if validate(&bytes, 512).is_ok() {
                    let v = Tags::from_valid(&bytes);
                    prop_assert_eq!(v.to_set().encode(), bytes.clone());
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn the_table_sets_replaces_removes_and_copies_in_place() {
        let a = ProcessId::named("a", 1);
        let b = ProcessId::named("b", 1);
        let c = ProcessId::named("c", 1);
        let mut t = TagTable::with_capacity(4, 16);
        t.set(a, b"aa");
        t.set(b, b"bbbb");
        t.set(c, b"c");
        t.set(a, b"AAA");
        assert_eq!(t.get(a).unwrap().as_bytes(), b"AAA");
        assert_eq!(t.get(b).unwrap().as_bytes(), b"bbbb");
        t.remove(b);
        assert_eq!(t.get(b), None);
        assert_eq!(t.get(c).unwrap().as_bytes(), b"c");
        assert_eq!(t.iter().map(|(p, _)| p).collect::<Vec<_>>(), [c, a]);
        let mut u = TagTable::with_capacity(4, 16);
        u.copy_from(&t);
        assert_eq!(u, t);
        assert!(u.same_order(&t));
        u.retain(|p| p != c);
        assert_eq!(u.len(), 1);
        assert_ne!(u, t);
    }
}
