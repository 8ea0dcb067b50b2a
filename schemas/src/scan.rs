//! The fast path of frame parsing: a strict scanner for the plain JSON players send.
//!
//! It reads an event object into the same `WireEvent` serde would build, and batches
//! (`[…]`, `{"seq":N,"events":[…]}`) around such objects, but only in the plain case:
//! strings without escapes or control characters, integers of at most 18 digits
//! without sign, fraction or exponent, `pos` with at most 15 digits and no exponent,
//! each known field at most once, no other field. Anything else (including every input
//! serde refuses) makes it give up (`None`) and the caller takes the serde path from
//! the start, so every rejection and message still comes from one place. The promise
//! each function keeps: when it says `Some`, serde reads the same input to the same
//! values (the proptests at the end check it on generated and mutated input).

#[cfg(doc)]
use crate::event::WIRE_FIELDS;
use crate::event::WireEvent;
use std::borrow::Cow;

/// `10^k` for the fraction digits of `pos`, all exact in an `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `STRING_STOP[b]`: byte `b` ends the plain part of a string (a quote, a backslash or
/// a control character).
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (little-endian) that is a string stop. Exact for
/// the lowest stop byte, which is all [`Scanner::string`] looks at (a borrow can only
/// flag bytes above a real stop).
fn string_stops(word: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))) | below_space
}

/// A position in a JSON text.
#[derive(Clone)]
pub(crate) struct Scanner<'a> {
    src: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Scanner {
            src,
            bytes: src.as_bytes(),
            at: 0,
        }
    }

    /// Skips JSON whitespace (the four characters serde_json skips).
    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The next byte, consumed.
    pub(crate) fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    pub(crate) fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    pub(crate) fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    /// After a member: `,` (and the whitespace after it) → `true`, `close` → `false`.
    pub(crate) fn more(&mut self, close: u8) -> Option<bool> {
        self.ws();
        match self.next()? {
            b',' => {
                self.ws();
                Some(true)
            }
            b if b == close => Some(false),
            _ => None,
        }
    }

    /// A key and its colon, with the whitespace after it.
    pub(crate) fn key(&mut self) -> Option<&'a str> {
        let key = self.string()?;
        self.colon()?;
        Some(key)
    }

    fn colon(&mut self) -> Option<()> {
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    /// The key of an event field, with its colon: the field's bit (its index in
    /// [`WIRE_FIELDS`]). The name and its closing quote are compared whole, so
    /// `"types"` or `"type\u0073"` are not taken for `"type"`.
    fn field(&mut self) -> Option<u32> {
        self.eat(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let (bit, len): (u32, usize) = match rest.first()? {
            b't' if rest.starts_with(b"type\"") => (0, 5),
            b't' if rest.starts_with(b"ts\"") => (1, 3),
            b'v' if rest.starts_with(b"viewer\"") => (2, 7),
            b'v' if rest.starts_with(b"vod\"") => (5, 4),
            b'c' if rest.starts_with(b"channel\"") => (3, 8),
            b'c' if rest.starts_with(b"clip\"") => (6, 5),
            b'c' if rest.starts_with(b"country\"") => (12, 8),
            b'c' if rest.starts_with(b"code\"") => (15, 5),
            b'c' if rest.starts_with(b"count\"") => (16, 6),
            b's' if rest.starts_with(b"stream\"") => (4, 7),
            b's' if rest.starts_with(b"session\"") => (7, 8),
            b's' if rest.starts_with(b"state\"") => (9, 6),
            b'p' if rest.starts_with(b"pos\"") => (8, 4),
            b'p' if rest.starts_with(b"player\"") => (13, 7),
            b'p' if rest.starts_with(b"platform\"") => (17, 9),
            b'b' if rest.starts_with(b"bitrate_kbps\"") => (10, 13),
            b'd' if rest.starts_with(b"device\"") => (11, 7),
            b'e' if rest.starts_with(b"embed\"") => (14, 6),
            _ => return None,
        };
        self.at += len;
        self.colon()?;
        Some(bit)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let mut end = start;
        // Eight bytes at a time while eight remain, then byte by byte.
        while let Some(chunk) = self.bytes.get(end..end + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            let stops = string_stops(word);
            if stops != 0 {
                end += (stops.trailing_zeros() / 8) as usize;
                return self.string_end(start, end);
            }
            end += 8;
        }
        while !STRING_STOP[usize::from(*self.bytes.get(end)?)] {
            end += 1;
        }
        self.string_end(start, end)
    }

    /// The string from `start` ends at the stop byte at `end`: plain if that is a quote.
    fn string_end(&mut self, start: usize, end: usize) -> Option<&'a str> {
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        self.src.get(start..end)
    }

    fn cow(&mut self) -> Option<Cow<'a, str>> {
        self.string().map(Cow::Borrowed)
    }

    /// Up to `max` decimal digits without a superfluous leading zero: (value, digits).
    fn digits(&mut self, max: usize) -> Option<(u64, usize)> {
        let start = self.at;
        let mut v = 0u64;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if self.at - start == max {
                return None;
            }
            v = v * 10 + u64::from(c - b'0');
            self.at += 1;
        }
        let n = self.at - start;
        if n == 0 || (n > 1 && self.bytes.get(start) == Some(&b'0')) {
            return None;
        }
        Some((v, n))
    }

    /// A non-negative integer of at most 18 digits (so it fits `i64` and `u64`).
    pub(crate) fn uint(&mut self) -> Option<u64> {
        let (v, _) = self.digits(18)?;
        match self.peek() {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(v),
        }
    }

    fn int(&mut self) -> Option<i64> {
        self.uint().and_then(|v| i64::try_from(v).ok())
    }

    /// A non-negative number of at most 15 digits without exponent. Both of serde_json's
    /// float readers give the correctly rounded value there, which is one exact integer
    /// divided by one exact power of ten.
    fn float(&mut self) -> Option<f64> {
        let (mut v, mut n) = self.digits(15)?;
        let mut frac = 0;
        if self.peek() == Some(b'.') {
            self.at += 1;
            while let Some(c @ b'0'..=b'9') = self.peek() {
                if n == 15 {
                    return None;
                }
                v = v * 10 + u64::from(c - b'0');
                n += 1;
                frac += 1;
                self.at += 1;
            }
            if frac == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            return None;
        }
        Some(v as f64 / POW10.get(frac)?)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.word(b"true") {
            Some(true)
        } else if self.word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    fn word(&mut self, w: &[u8]) -> bool {
        let hit = self.bytes.get(self.at..self.at + w.len()) == Some(w);
        if hit {
            self.at += w.len();
        }
        hit
    }

    /// An optional field: `null` is absent.
    fn opt<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.word(b"null") {
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// One event object, from its `{` to its `}`.
    pub(crate) fn event(&mut self) -> Option<WireEvent<'a>> {
        let mut w = WireEvent::default();
        self.event_into(&mut w)?;
        Some(w)
    }

    /// [`Self::event`] into `w`, which must come in as `WireEvent::default()`: the
    /// frame readers keep one on their stack, so the ~400-byte struct is not copied
    /// out of a return value (and again into `validate`) for every event.
    pub(crate) fn event_into(&mut self, w: &mut WireEvent<'a>) -> Option<()> {
        debug_assert!(
            *w == WireEvent::default(),
            "event_into needs a default WireEvent"
        );
        self.eat(b'{')?;
        self.ws();
        let mut seen = 0u32;
        loop {
            let bit = self.field()?;
            match bit {
                0 => w.kind = self.cow()?,
                1 => w.ts = self.int()?,
                2 => w.viewer = self.cow()?,
                3 => w.channel = self.cow()?,
                4 => w.stream = self.opt(Self::cow)?,
                5 => w.vod = self.opt(Self::cow)?,
                6 => w.clip = self.opt(Self::cow)?,
                7 => w.session = self.opt(Self::cow)?,
                8 => w.pos = self.opt(Self::float)?,
                9 => w.state = self.opt(Self::cow)?,
                10 => w.bitrate_kbps = self.opt(Self::int)?,
                11 => w.device = self.opt(Self::cow)?,
                12 => w.country = self.opt(Self::cow)?,
                13 => w.player = self.opt(Self::cow)?,
                14 => w.embed = self.opt(Self::boolean)?,
                15 => w.code = self.opt(Self::cow)?,
                16 => w.count = self.opt(Self::int)?,
                _ => w.platform = self.opt(Self::cow)?,
            }
            // serde refuses a field given twice.
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            if !self.more(b'}')? {
                break;
            }
        }
        // `type`, `ts`, `viewer` and `channel` are required.
        (seen & 0b1111 == 0b1111).then_some(())
    }
}

/// One event filling the whole text (whitespace around it allowed).
pub(crate) fn event(json: &str) -> Option<WireEvent<'_>> {
    let mut s = Scanner::new(json);
    s.ws();
    let w = s.event()?;
    s.ws();
    s.at_end().then_some(w)
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
