//! The 1/8-scale image of a baseline JPEG, read from its DC coefficients alone.
//!
//! The DC coefficient of an 8×8 block is the block's mean, so the picture made of the
//! blocks' DCs is the photo shrunk 8 times with a box filter: what a thumbnail wants. It
//! skips what costs most in a full decode (dequantization, IDCT, upsampling, colour
//! conversion of every pixel); what it cannot skip is the entropy decoding, because a
//! Huffman-coded scan has no way to jump over a block's AC coefficients but reading them.
//! That reading is made cheap (`entropy`): bits loaded eight bytes at a time, a block's
//! DC difference (code and value) in one table look-up, and its AC coefficients skipped
//! several at a time, a 14-bit look-up giving how many bits the whole codes and values in
//! them take and how far they move in the block.
//!
//! Only what touchscreen cameras and phones write is read here: baseline or extended
//! sequential Huffman, 8-bit, one interleaved scan (grey or YCbCr, any sampling factors),
//! restart intervals. Anything else is [`DcError::Unsupported`] and the caller decodes the
//! photo fully instead. A corrupt stream is an error, never a panic or an endless loop:
//! every read is bounds-checked and the work is bounded by the frame's block count.

/// The blocks' means, as RGB, `width × height` = the photo's size / 8, rounded up.
pub struct Small {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DcError {
    #[error("not read at 1/8 scale: {0}")]
    Unsupported(&'static str),
    #[error("corrupt JPEG: {0}")]
    Corrupt(&'static str),
}

mod entropy;
mod scan;
#[cfg(test)]
mod tests;

use entropy::Huffman;
use scan::Scan;

type Result<T> = std::result::Result<T, DcError>;

/// Beyond this many pixels the file is not a photo; left to the full decoder's limits.
const MAX_PIXELS: usize = 100_000_000;

struct Component {
    id: u8,
    h: usize,
    v: usize,
    dc_quant: i32,
    table: u8,
    dc_table: usize,
    ac_table: usize,
}

fn u16_at(d: &[u8], i: usize) -> Result<usize> {
    match d.get(i..i + 2) {
        Some(b) => Ok(usize::from(u16::from_be_bytes([b[0], b[1]]))),
        None => Err(DcError::Corrupt("the file ends inside a header")),
    }
}

/// The 1/8-scale RGB image of the JPEG `data`.
pub fn decode(data: &[u8]) -> Result<Small> {
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(DcError::Corrupt("no start-of-image marker"));
    }
    let mut quant = [None::<i32>; 4];
    let mut tables: [[Option<Huffman>; 4]; 2] = Default::default();
    let mut frame: Option<(usize, usize, Vec<Component>)> = None;
    let mut restart_interval = 0usize;
    let mut adobe_rgb = false;
    let mut pos = 2;
    loop {
        // A marker, perhaps after fill bytes.
        if data.get(pos) != Some(&0xFF) {
            return Err(DcError::Corrupt("a marker is expected"));
        }
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *data.get(pos).ok_or(DcError::Corrupt("the file ends"))?;
        pos += 1;
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if marker == 0xD9 {
            return Err(DcError::Corrupt("no scan before the end"));
        }
        let len = u16_at(data, pos)?;
        let seg = data
            .get(pos + 2..pos + len.max(2))
            .ok_or(DcError::Corrupt("the file ends inside a header"))?;
        pos += len.max(2);
        match marker {
            0xDB => {
                let mut s = seg;
                while let Some((&pq_tq, rest)) = s.split_first() {
                    let (wide, id) = (pq_tq >> 4 != 0, usize::from(pq_tq & 3));
                    let n = if wide { 128 } else { 64 };
                    let t = rest.get(..n).ok_or(DcError::Corrupt("a short DQT"))?;
                    quant[id] = Some(if wide {
                        i32::from(u16::from_be_bytes([t[0], t[1]]))
                    } else {
                        i32::from(t[0])
                    });
                    s = &rest[n..];
                }
            }
            0xC4 => {
                let mut s = seg;
                while let Some((&tc_th, rest)) = s.split_first() {
                    let counts: [u8; 16] = rest
                        .get(..16)
                        .and_then(|c| c.try_into().ok())
                        .ok_or(DcError::Corrupt("a short DHT"))?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let syms = rest
                        .get(16..16 + total)
                        .ok_or(DcError::Corrupt("a short DHT"))?;
                    let class = usize::from(tc_th >> 4).min(1);
                    tables[class][usize::from(tc_th & 3)] =
                        Some(Huffman::new(&counts, syms, class == 1)?);
                    s = &rest[16 + total..];
                }
            }
            0xC0 | 0xC1 => {
                if seg.first() != Some(&8) {
                    return Err(DcError::Unsupported("not 8-bit"));
                }
                let (height, width) = (u16_at(seg, 1)?, u16_at(seg, 3)?);
                if height == 0 || width == 0 {
                    return Err(DcError::Unsupported("the height comes after the scan"));
                }
                // The planes take 6 bytes a pixel / 64 at most: 10 MB at this size.
                if width * height > MAX_PIXELS {
                    return Err(DcError::Unsupported("larger than a photo"));
                }
                let n = usize::from(*seg.get(5).ok_or(DcError::Corrupt("a short SOF"))?);
                if n != 1 && n != 3 {
                    return Err(DcError::Unsupported("neither grey nor three components"));
                }
                let mut comps = Vec::with_capacity(n);
                for c in seg
                    .get(6..6 + 3 * n)
                    .ok_or(DcError::Corrupt("a short SOF"))?
                    .chunks_exact(3)
                {
                    let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return Err(DcError::Corrupt("a bad sampling factor"));
                    }
                    comps.push(Component {
                        id: c[0],
                        h,
                        v,
                        dc_quant: 0,
                        table: c[2] & 3,
                        dc_table: 0,
                        ac_table: 0,
                    });
                }
                frame = Some((width, height, comps));
            }
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(DcError::Unsupported("progressive, lossless or arithmetic"));
            }
            0xDD => restart_interval = u16_at(seg, 0)?,
            // Adobe APP14: transform 0 with three components is RGB, not YCbCr.
            0xEE if seg.starts_with(b"Adobe") && seg.get(11) == Some(&0) => adobe_rgb = true,
            0xDA => {
                let (width, height, mut comps) =
                    frame.ok_or(DcError::Corrupt("a scan before the frame header"))?;
                let ns = usize::from(*seg.first().ok_or(DcError::Corrupt("a short SOS"))?);
                if ns != comps.len() {
                    return Err(DcError::Unsupported("one scan per component"));
                }
                if comps.len() == 3 && (adobe_rgb || comps.iter().map(|c| c.id).eq(*b"RGB")) {
                    return Err(DcError::Unsupported("RGB, not YCbCr"));
                }
                for s in seg
                    .get(1..1 + 2 * ns)
                    .ok_or(DcError::Corrupt("a short SOS"))?
                    .chunks_exact(2)
                {
                    let c = comps
                        .iter_mut()
                        .find(|c| c.id == s[0])
                        .ok_or(DcError::Corrupt("a scan names an unknown component"))?;
                    (c.dc_table, c.ac_table) = (usize::from(s[1] >> 4), usize::from(s[1] & 3));
                }
                let mut coders = Vec::with_capacity(comps.len());
                for c in &mut comps {
                    c.dc_quant = quant[usize::from(c.table)]
                        .ok_or(DcError::Corrupt("a quantization table is missing"))?;
                    let dc = tables[0].get(c.dc_table).and_then(Option::as_ref);
                    match (dc, tables[1][c.ac_table].as_ref()) {
                        (Some(dc), Some(ac)) => coders.push((dc, ac)),
                        _ => return Err(DcError::Corrupt("a Huffman table is missing")),
                    }
                }
                let scan = Scan {
                    width,
                    height,
                    comps,
                    restart_interval,
                };
                return scan.decode(data, pos, &coders);
            }
            _ => {}
        }
    }
}
