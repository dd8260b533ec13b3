//! The entropy-coded data: Huffman tables, the bit reader, and the skip over a block's
//! AC coefficients.

use super::{DcError, Result};

/// Bits peeked at once by the Huffman lookup table.
pub(super) const FAST_BITS: u32 = 11;

/// One Huffman table (JPEG F.2.2.3): a lookup on the next [`FAST_BITS`] bits for short
/// codes, the canonical-code limits for the longer ones.
pub(super) struct Huffman {
    /// `(length << 8) | symbol`, 0 when the code is longer than `FAST_BITS`.
    fast: Vec<u16>,
    /// For skipping AC coefficients: `(advance << 8) | bits`, where `bits` is the code's
    /// length plus its value's (when both fit in `FAST_BITS`, else 0) and `advance` how
    /// far the coefficient index moves (0: end of block).
    skip: Vec<u16>,
    /// Per length 1..=16: the largest code of that length (-1: none), and where its
    /// symbols start in `symbols`, minus the smallest code.
    max_code: [i32; 17],
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Huffman> {
        let mut fast = vec![0u16; 1 << FAST_BITS];
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
        let skip = fast
            .iter()
            .map(|&e| {
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
            })
            .collect();
        Ok(Huffman {
            fast,
            skip,
            max_code,
            offset,
            symbols: symbols.to_vec(),
        })
    }
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

    /// At least 32 bits in `acc` (a code and its value bits take at most 27).
    #[inline]
    fn fill(&mut self) {
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
        let v = self.peek(size) as i32;
        self.consume(size);
        if v < 1 << (size - 1) {
            v - (1 << size) + 1
        } else {
            v
        }
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

/// Reads past a block's 63 AC coefficients without keeping them.
#[inline]
pub(super) fn skip_ac(bits: &mut Bits<'_>, ac: &Huffman) -> Result<()> {
    let mut k = 1;
    while k < 64 {
        // The common case: code and value bits in one look-up, one shift.
        if bits.n < 32 {
            bits.fill();
        }
        let e = ac.skip[bits.peek(FAST_BITS) as usize];
        if e != 0 {
            bits.consume(u32::from(e & 0xFF));
            match e >> 8 {
                0 => return Ok(()),
                advance => k += u32::from(advance),
            }
            continue;
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
