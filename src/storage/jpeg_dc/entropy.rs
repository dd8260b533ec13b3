//! The entropy-coded data: Huffman tables, the bit reader, and the skip over a block's
//! AC coefficients.

use super::{DcError, Result};

/// Bits peeked at once by the Huffman lookup table.
pub(super) const FAST_BITS: u32 = 11;
/// Bits peeked at once by the table that skips several AC coefficients in one look-up.
const MULTI_BITS: u32 = 14;

/// One Huffman table (JPEG F.2.2.3): a lookup on the next [`FAST_BITS`] bits for short
/// codes, the canonical-code limits for the longer ones.
pub(super) struct Huffman {
    /// `(length << 8) | symbol`, 0 when the code is longer than `FAST_BITS`.
    fast: Box<[u16; 1 << FAST_BITS]>,
    /// For skipping AC coefficients (all zeros in a DC table): `(advance << 8) | bits`,
    /// where `bits` is the code's length plus its value's (when both fit in `FAST_BITS`,
    /// else 0) and `advance` how far the coefficient index moves (0: end of block).
    skip: Box<[u16; 1 << FAST_BITS]>,
    /// For skipping several AC coefficients at once (all zeros in a DC table), indexed by
    /// the next [`MULTI_BITS`] bits: `(end_of_block << 11) | (advance << 4) | bits` for the
    /// whole codes and values those bits hold, in order, up to and including an end of
    /// block; `bits` 0 when not even the first one fits.
    multi: Box<[u16; 1 << MULTI_BITS]>,
    /// For DC differences (all zeros in an AC table): `(difference << 8) | bits`, where
    /// `bits` is the code's length plus its value's, when both fit in `FAST_BITS` (else 0).
    dc: Box<[i32; 1 << FAST_BITS]>,
    /// Per length 1..=16: the largest code of that length (-1: none), and where its
    /// symbols start in `symbols`, minus the smallest code.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    /// The table of `counts` codes per length and their `symbols`; `ac`: one that codes
    /// AC coefficients, which gets the tables that skip them.
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Result<Huffman> {
        let mut fast = Box::new([0u16; 1 << FAST_BITS]);
        let (mut max_code, mut offset) = ([-1i32; 17], [0i32; 17]);
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let n = i32::from(counts[len as usize - 1]);
            offset[len as usize] = k as i32 - code;
            for _ in 0..n {
                if len <= FAST_BITS {
                    let shift = FAST_BITS - len;
                    let first = (code as usize) << shift;
                    let entry = ((len as u16) << 8) | u16::from(symbols[k]);
                    fast.get_mut(first..first + (1 << shift))
                        .ok_or(DcError::Corrupt("a Huffman table has too many codes"))?
                        .fill(entry);
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                max_code[len as usize] = code - 1;
            }
            if code > 1 << len {
                return Err(DcError::Corrupt("a Huffman table has too many codes"));
            }
            code <<= 1;
        }
        let mut skip = Box::new([0u16; 1 << FAST_BITS]);
        let mut multi = Box::new([0u16; 1 << MULTI_BITS]);
        let mut dc = Box::new([0i32; 1 << FAST_BITS]);
        if !ac {
            for (pattern, d) in (0u32..).zip(dc.iter_mut()) {
                *d = dc_entry(fast[pattern as usize], pattern);
            }
        } else {
            for (s, &e) in skip.iter_mut().zip(fast.iter()) {
                *s = skip_entry(e);
            }
            for (pattern, m) in (0u32..).zip(multi.iter_mut()) {
                *m = multi_entry(&fast, pattern);
            }
        }
        Ok(Huffman {
            fast,
            skip,
            multi,
            dc,
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }
}

/// The [`Huffman::dc`] entry of the [`FAST_BITS`] bits `pattern`, whose one-code entry is `e`.
fn dc_entry(e: u16, pattern: u32) -> i32 {
    let (len, size) = (u32::from(e >> 8), u32::from(e & 0xFF));
    if e == 0 || len + size > FAST_BITS {
        return 0;
    }
    let bits = (pattern >> (FAST_BITS - len - size)) & ((1 << size) - 1);
    (extend(bits, size) << 8) | (len + size) as i32
}

/// JPEG's EXTEND (F.2.2.1): the signed value of the `size` bits `v`.
#[inline]
fn extend(v: u32, size: u32) -> i32 {
    let v = v as i32;
    if size == 0 {
        0
    } else if v < 1 << (size - 1) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// The [`Huffman::skip`] entry of the one-code entry `e`.
fn skip_entry(e: u16) -> u16 {
    let (len, rs) = (e >> 8, e & 0xFF);
    let (run, size) = (rs >> 4, rs & 15);
    let advance = match (run, size) {
        (15, 0) => 16,
        (_, 0) => 0,
        _ => run + 1,
    };
    if e == 0 || len + size > FAST_BITS as u16 {
        0
    } else {
        (advance << 8) | (len + size)
    }
}

/// What the [`MULTI_BITS`] bits `pattern` hold (see [`Huffman::multi`]): code after code,
/// each read from the one-code table with the bits past the pattern taken as zeros, which
/// gives the right code whenever its length is within the bits left.
fn multi_entry(fast: &[u16; 1 << FAST_BITS], pattern: u32) -> u16 {
    let (mut used, mut advance) = (0u32, 0u32);
    while used < MULTI_BITS {
        let left = MULTI_BITS - used;
        let index = ((pattern << used) & ((1 << MULTI_BITS) - 1)) >> (MULTI_BITS - FAST_BITS);
        let e = fast[index as usize];
        let (len, rs) = (u32::from(e >> 8), u32::from(e & 0xFF));
        let (run, size) = (rs >> 4, rs & 15);
        if e == 0 || len + size > left {
            break;
        }
        used += len + size;
        match (run, size) {
            (15, 0) => advance += 16,
            (_, 0) => return ((1 << 11) | (advance << 4) | used) as u16,
            _ => advance += run + 1,
        }
    }
    ((advance << 4) | used) as u16
}

/// The entropy-coded bits, with `FF 00` unstuffed; zeros once a marker (or the end) is
/// reached, so a truncated scan ends in bad codes rather than a read past the data.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            at_marker: false,
        }
    }

    /// At least 32 bits in `acc` (a code and its value bits take at most 27). Called with
    /// fewer than 32.
    #[inline]
    fn fill(&mut self) {
        // The common case: the next eight bytes hold no 0xFF (so no stuffing and no
        // marker), and as many whole bytes as fit are taken from one load. The bits loaded
        // past those bytes are the next bytes' own, so the next fill ORs the same bits
        // over them.
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let word = u64::from_be_bytes(b);
            let inverse = !word;
            // Some byte of `word` is 0xFF exactly when that byte of `inverse` is zero.
            let has_ff =
                inverse.wrapping_sub(0x0101_0101_0101_0101) & !inverse & 0x8080_8080_8080_8080;
            if has_ff == 0 && !self.at_marker {
                let take = (63 - self.n) / 8;
                self.acc |= word >> self.n;
                self.pos += take as usize;
                self.n += take * 8;
                return;
            }
        }
        while self.n <= 56 {
            let mut byte = 0u8;
            if !self.at_marker {
                match self.data.get(self.pos) {
                    Some(&0xFF) => {
                        if self.data.get(self.pos + 1) == Some(&0) {
                            self.pos += 2;
                            byte = 0xFF;
                        } else {
                            self.at_marker = true;
                        }
                    }
                    Some(&b) => {
                        self.pos += 1;
                        byte = b;
                    }
                    None => self.at_marker = true,
                }
            }
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline]
    fn peek(&self, bits: u32) -> u32 {
        (self.acc >> (64 - bits)) as u32
    }

    #[inline]
    fn consume(&mut self, bits: u32) {
        self.acc <<= bits;
        self.n -= bits;
    }

    #[inline]
    pub(super) fn symbol(&mut self, h: &Huffman) -> Result<u8> {
        if self.n < 32 {
            self.fill();
        }
        let e = h.fast[self.peek(FAST_BITS) as usize];
        if e != 0 {
            self.consume(u32::from(e >> 8));
            return Ok(e as u8);
        }
        for len in FAST_BITS + 1..=16 {
            let code = self.peek(len) as i32;
            if code <= h.max_code[len as usize] {
                self.consume(len);
                let i = (h.offset[len as usize] + code) as usize;
                return h
                    .symbols
                    .get(i)
                    .copied()
                    .ok_or(DcError::Corrupt("a Huffman code has no symbol"));
            }
        }
        Err(DcError::Corrupt("a bad Huffman code"))
    }

    /// The signed value of `size` bits (JPEG F.2.2.1, EXTEND); `size` ≤ 16 after `symbol`.
    #[inline]
    pub(super) fn value(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let v = self.peek(size);
        self.consume(size);
        extend(v, size)
    }

    /// A block's DC difference: its code and value bits in one look-up when they fit.
    #[inline]
    pub(super) fn dc_difference(&mut self, h: &Huffman) -> Result<i32> {
        if self.n < 32 {
            self.fill();
        }
        let e = h.dc[self.peek(FAST_BITS) as usize];
        if e & 0xFF != 0 {
            self.consume((e & 0xFF) as u32);
            return Ok(e >> 8);
        }
        let size = u32::from(self.symbol(h)?);
        if size > 11 {
            return Err(DcError::Corrupt("a DC difference too large"));
        }
        Ok(self.value(size))
    }

    /// After a restart interval: past the `RSTn` marker, bits and predictions afresh.
    pub(super) fn restart(&mut self) -> Result<()> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let at = rest
            .windows(2)
            .position(|w| w[0] == 0xFF && (0xD0..=0xD7).contains(&w[1]))
            .ok_or(DcError::Corrupt("a restart marker is missing"))?;
        self.pos += at + 2;
        self.acc = 0;
        self.n = 0;
        self.at_marker = false;
        Ok(())
    }
}

/// One look-up in [`Huffman::multi`] at coefficient `k`: `Some(true)` at the block's end,
/// `Some(false)` when `k` moved on, `None` when the bits there are not all this block's
/// whole codes.
#[inline(always)]
fn skip_several(bits: &mut Bits<'_>, ac: &Huffman, k: &mut u32) -> Option<bool> {
    let m = u32::from(ac.multi[bits.peek(MULTI_BITS) as usize]);
    let (used, advance, end) = (m & 15, (m >> 4) & 0x7F, m >> 11);
    if used == 0 || *k + advance + end > 64 {
        return None;
    }
    bits.consume(used);
    *k += advance;
    Some(end != 0)
}

/// One look-up in [`Huffman::skip`], one code and its value: answers as [`skip_several`].
#[inline(always)]
fn skip_one(bits: &mut Bits<'_>, ac: &Huffman, k: &mut u32) -> Option<bool> {
    let e = ac.skip[bits.peek(FAST_BITS) as usize];
    if e == 0 {
        return None;
    }
    bits.consume(u32::from(e & 0xFF));
    *k += u32::from(e >> 8);
    Some(e >> 8 == 0)
}

/// Reads past a block's 63 AC coefficients without keeping them.
#[inline]
pub(super) fn skip_ac(bits: &mut Bits<'_>, ac: &Huffman) -> Result<()> {
    let mut k = 1;
    while k < 64 {
        if bits.n < 32 {
            bits.fill();
        }
        // The common case: the next MULTI_BITS bits hold whole codes and values, all of
        // this block (its end of block included), skipped in one look-up; two look-ups per
        // check of the bits left, as each takes at most MULTI_BITS of the 32 there are.
        match skip_several(bits, ac, &mut k) {
            Some(true) => return Ok(()),
            Some(false) => {
                if skip_several(bits, ac, &mut k) == Some(true) {
                    return Ok(());
                }
                continue;
            }
            None => {}
        }
        // Near the block's end, or a long code: one code and value bits in one look-up,
        // two of them per check of the bits left (each takes at most FAST_BITS of 32).
        match skip_one(bits, ac, &mut k) {
            Some(true) => return Ok(()),
            Some(false) if k >= 64 => break,
            Some(false) => match skip_one(bits, ac, &mut k) {
                Some(true) => return Ok(()),
                Some(false) => continue,
                None => {}
            },
            None => {}
        }
        let rs = bits.symbol(ac)?;
        let (run, size) = (u32::from(rs >> 4), u32::from(rs & 15));
        if size == 0 {
            if run != 15 {
                return Ok(());
            }
            k += 16;
            continue;
        }
        bits.consume(size);
        k += run + 1;
    }
    Ok(())
}
