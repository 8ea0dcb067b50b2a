//! `Id`: the opaque identifier of PROTOCOL.md (1 to 64 characters from `[A-Za-z0-9_.:-]`).

use compact_str::CompactString;
use serde::Serialize;
use std::fmt;

/// Longest id the wire accepts.
pub const MAX_ID_LEN: usize = 64;

/// A validated id. Ids of up to 24 bytes live inline (no allocation).
#[derive(Clone, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Id(CompactString);

/// Byte equality, as the text's. Written out because the aggregator compares ids on
/// every event (map keys, a session's viewer): the text's `==` calls `memcmp`, whose
/// call and set-up cost more than the comparison of an id of up to 24 bytes.
impl PartialEq for Id {
    #[inline]
    fn eq(&self, other: &Id) -> bool {
        same_bytes(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// The text's hash, as `CompactString` gives it (a manual `PartialEq` needs its `Hash`
/// beside it; the value is the one it always was).
impl std::hash::Hash for Id {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

/// `a == b`: up to 24 bytes in two or three 8-byte words (the last one overlapping),
/// longer slices by the slice comparison.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_ne_bytes)
    };
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=24 => {
            word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
}

impl Id {
    /// Checks `s` against the id rule; the error says what was expected and what came.
    pub fn parse(s: &str) -> Result<Id, String> {
        if s.is_empty() {
            return Err("expected an id of 1 to 64 characters, got an empty string".into());
        }
        if s.len() > MAX_ID_LEN {
            return Err(format!(
                "expected an id of 1 to 64 characters, got {} characters",
                s.chars().count()
            ));
        }
        // Bytes, not chars: every allowed character is ASCII, so any byte outside the
        // table (a multi-byte character's included) is a refusal; the message then
        // names the character it belongs to.
        if !s.bytes().all(|b| ID_BYTES[usize::from(b)]) {
            let bad = s.chars().find(|c| !is_id_char(*c)).unwrap_or('\u{fffd}');
            return Err(format!(
                "expected only characters from [A-Za-z0-9_.:-], got {bad:?}"
            ));
        }
        Ok(Id(CompactString::new(s)))
    }

    /// Builds an id the caller has already checked (tests, the simulator, stored rows).
    /// Panics in debug builds if the rule is broken.
    pub fn new_unchecked(s: &str) -> Id {
        debug_assert!(Id::parse(s).is_ok(), "invalid id {s:?}");
        Id(CompactString::new(s))
    }

    /// Inlined across crates: the aggregator reads ids on every event.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// True when the id's text is on the heap (longer than fits inline): dropping it
    /// then frees memory; otherwise dropping it does nothing.
    #[inline]
    pub fn is_heap_allocated(&self) -> bool {
        self.0.is_heap_allocated()
    }
}

/// `ID_BYTES[b]`: byte `b` is an id character.
static ID_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = is_id_char(b as u8 as char);
        b += 1;
    }
    t
};

const fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl AsRef<str> for Id {
    #[inline]
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(Id::parse("a-Z_0.9:x").is_ok());
        assert!(Id::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(Id::parse("").unwrap_err().contains("empty"));
        assert!(
            Id::parse(&"x".repeat(65))
                .unwrap_err()
                .contains("65 characters")
        );
        assert!(Id::parse("a b").unwrap_err().contains("' '"));
        assert!(Id::parse("é").is_err());
        assert!(Id::parse("ab\u{e9}c").unwrap_err().contains("'é'"));
        assert!(Id::parse("a/b").unwrap_err().contains("'/'"));
    }

    /// `same_bytes` answers the slice comparison for every length up to past 24 and a
    /// difference at every position (the words it skips or overlaps included).
    #[test]
    fn id_equality_is_byte_equality() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "len {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] = b'Z';
                assert!(!same_bytes(&a, &b), "len {n}, differing at {at}");
            }
            let mut longer = a.clone();
            longer.push(b'a');
            assert!(!same_bytes(&a, &longer), "len {n} against {}", n + 1);
        }
        let (x, y) = (
            Id::new_unchecked("sess-00000001-a"),
            Id::new_unchecked("sess-00000001-b"),
        );
        assert!(x != y && x == x.clone());
    }

    #[test]
    fn the_byte_table_is_the_character_rule() {
        for c in (0..=0x24f).filter_map(char::from_u32) {
            let one = c.to_string();
            assert_eq!(Id::parse(&one).is_ok(), is_id_char(c), "{c:?}");
        }
    }
}
