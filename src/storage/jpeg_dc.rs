//! The 1/8-scale image of a baseline JPEG, read from its DC coefficients alone.
//!
//! The DC coefficient of an 8×8 block is the block's mean, so the picture made of the
//! blocks' DCs is the photo shrunk 8 times with a box filter: what a thumbnail wants. It
//! skips what costs most in a full decode (dequantization, IDCT, upsampling, colour
//! conversion of every pixel); what it cannot skip is the entropy decoding, because a
//! Huffman-coded scan has no way to jump over a block's AC coefficients but reading them.
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

type Result<T> = std::result::Result<T, DcError>;

/// Beyond this many pixels the file is not a photo; left to the full decoder's limits.
const MAX_PIXELS: usize = 100_000_000;

/// Bits peeked at once by the Huffman lookup table.
const FAST_BITS: u32 = 11;

/// One Huffman table (JPEG F.2.2.3): a lookup on the next [`FAST_BITS`] bits for short
/// codes, the canonical-code limits for the longer ones.
struct Huffman {
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
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Result<Huffman> {
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
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Bits<'a> {
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
    fn symbol(&mut self, h: &Huffman) -> Result<u8> {
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
    fn value(&mut self, size: u32) -> i32 {
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
    fn restart(&mut self) -> Result<()> {
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
                    tables[class][usize::from(tc_th & 3)] = Some(Huffman::new(&counts, syms)?);
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
                for c in &mut comps {
                    c.dc_quant = quant[usize::from(c.table)]
                        .ok_or(DcError::Corrupt("a quantization table is missing"))?;
                    if c.dc_table > 3
                        || tables[0][c.dc_table].is_none()
                        || tables[1][c.ac_table].is_none()
                    {
                        return Err(DcError::Corrupt("a Huffman table is missing"));
                    }
                }
                let scan = Scan {
                    width,
                    height,
                    comps,
                    restart_interval,
                };
                return scan.decode(data, pos, &tables);
            }
            _ => {}
        }
    }
}

struct Scan {
    width: usize,
    height: usize,
    comps: Vec<Component>,
    restart_interval: usize,
}

impl Scan {
    fn decode(self, data: &[u8], pos: usize, tables: &[[Option<Huffman>; 4]; 2]) -> Result<Small> {
        let hmax = self.comps.iter().map(|c| c.h).max().unwrap_or(1);
        let vmax = self.comps.iter().map(|c| c.v).max().unwrap_or(1);
        // One component alone is coded block by block; several, MCU by MCU.
        let single = self.comps.len() == 1;
        let (mcux, mcuy) = if single {
            (self.width.div_ceil(8), self.height.div_ceil(8))
        } else {
            (
                self.width.div_ceil(8 * hmax),
                self.height.div_ceil(8 * vmax),
            )
        };
        let layout: Vec<(usize, usize)> = self
            .comps
            .iter()
            .map(|c| if single { (1, 1) } else { (c.h, c.v) })
            .collect();
        let mut planes: Vec<Vec<i32>> = layout
            .iter()
            .map(|&(h, v)| vec![0; mcux * h * mcuy * v])
            .collect();
        let huff = |class: usize, id: usize| tables[class][id].as_ref();
        let mut bits = Bits::new(data, pos);
        let mut pred = vec![0i32; self.comps.len()];
        let total = mcux * mcuy;
        for m in 0..total {
            if self.restart_interval > 0 && m > 0 && m % self.restart_interval == 0 {
                bits.restart()?;
                pred.fill(0);
            }
            let (mx, my) = (m % mcux, m / mcux);
            for (ci, c) in self.comps.iter().enumerate() {
                let (dc, ac) = match (huff(0, c.dc_table), huff(1, c.ac_table)) {
                    (Some(dc), Some(ac)) => (dc, ac),
                    _ => return Err(DcError::Corrupt("a Huffman table is missing")),
                };
                let (h, v) = layout[ci];
                let stride = mcux * h;
                for by in 0..v {
                    for bx in 0..h {
                        let size = u32::from(bits.symbol(dc)?);
                        if size > 11 {
                            return Err(DcError::Corrupt("a DC difference too large"));
                        }
                        pred[ci] += bits.value(size);
                        skip_ac(&mut bits, ac)?;
                        planes[ci][(my * v + by) * stride + mx * h + bx] = pred[ci];
                    }
                }
            }
        }
        Ok(self.to_rgb(&planes, &layout, mcux, hmax, vmax))
    }

    /// The blocks' means as pixels, chroma taken from the block that covers each one.
    fn to_rgb(
        &self,
        planes: &[Vec<i32>],
        layout: &[(usize, usize)],
        mcux: usize,
        hmax: usize,
        vmax: usize,
    ) -> Small {
        let (ow, oh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let single = self.comps.len() == 1;
        let sample = |ci: usize, x: usize, y: usize| -> i32 {
            let (h, _) = layout[ci];
            let c = &self.comps[ci];
            let (sx, sy) = if single {
                (x, y)
            } else {
                (x * c.h / hmax, y * c.v / vmax)
            };
            let dc = planes[ci][sy * mcux * h + sx];
            ((dc * c.dc_quant) >> 3) + 128
        };
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        let mut rgb = Vec::with_capacity(ow * oh * 3);
        for y in 0..oh {
            for x in 0..ow {
                let l = sample(0, x, y);
                if single {
                    let g = clamp(l);
                    rgb.extend_from_slice(&[g, g, g]);
                    continue;
                }
                let (cb, cr) = (sample(1, x, y) - 128, sample(2, x, y) - 128);
                rgb.extend_from_slice(&[
                    clamp(l + ((91_881 * cr) >> 16)),
                    clamp(l - ((22_554 * cb + 46_802 * cr) >> 16)),
                    clamp(l + ((116_130 * cb) >> 16)),
                ]);
            }
        }
        Small {
            width: ow as u32,
            height: oh as u32,
            rgb,
        }
    }
}

/// Reads past a block's 63 AC coefficients without keeping them.
#[inline]
fn skip_ac(bits: &mut Bits<'_>, ac: &Huffman) -> Result<()> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn encode(img: &image::RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    fn smooth(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            image::Rgb([
                (40.0 + 180.0 * fx) as u8,
                (200.0 - 150.0 * fy) as u8,
                (60.0 + 100.0 * (fx * fy)) as u8,
            ])
        })
    }

    /// The 1/8 image against the full decode averaged over each 8×8 block.
    fn compare(jpeg: &[u8]) -> (f64, u8) {
        let small = decode(jpeg).unwrap();
        let full = image::load_from_memory(jpeg).unwrap().to_rgb8();
        let (w, h) = (full.width(), full.height());
        assert_eq!((small.width, small.height), (w.div_ceil(8), h.div_ceil(8)));
        let (mut sum, mut worst, mut n) = (0u64, 0u8, 0u64);
        for by in 0..small.height {
            for bx in 0..small.width {
                for c in 0..3 {
                    let (mut acc, mut cnt) = (0u32, 0u32);
                    for y in by * 8..((by + 1) * 8).min(h) {
                        for x in bx * 8..((bx + 1) * 8).min(w) {
                            acc += u32::from(full.get_pixel(x, y)[c]);
                            cnt += 1;
                        }
                    }
                    let mean = (acc / cnt) as u8;
                    let got = small.rgb[((by * small.width + bx) * 3 + c as u32) as usize];
                    let d = mean.abs_diff(got);
                    sum += u64::from(d);
                    worst = worst.max(d);
                    n += 1;
                }
            }
        }
        (sum as f64 / n as f64, worst)
    }

    #[test]
    fn the_dc_image_is_the_photo_averaged_by_blocks() {
        // 4:2:0 (what the encoder writes for colour), sizes not a multiple of 16.
        for (w, h) in [(640, 480), (203, 117), (8, 8)] {
            let (mean, worst) = compare(&encode(&smooth(w, h), 90));
            assert!(
                mean < 2.0 && worst < 12,
                "{w}x{h}: mean {mean}, worst {worst}"
            );
        }
    }

    #[test]
    fn grey_photos_are_read() {
        let img = image::GrayImage::from_fn(96, 72, |x, _| image::Luma([(x * 2) as u8]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode(img.as_raw(), 96, 72, image::ExtendedColorType::L8)
            .unwrap();
        let small = decode(&jpeg).unwrap();
        assert_eq!((small.width, small.height), (12, 9));
        // Block column 5 covers x 40..48: a mean of about 2 × 43.5.
        let px = small.rgb[5 * 3];
        assert!(px.abs_diff(87) <= 3, "{px}");
    }

    #[test]
    fn camera_files_from_libjpeg_are_read() {
        // Written by ImageMagick (libjpeg): restart markers every 2 MCUs, 4:4:4 and 4:2:2
        // sampling, and a grey one with restart markers.
        for name in [
            "restart-420",
            "sampling-444",
            "sampling-422",
            "grey-restart",
        ] {
            let jpeg = fixture(name);
            let (mean, worst) = compare(&jpeg);
            assert!(
                mean < 2.0 && worst < 12,
                "{name}: mean {mean}, worst {worst}"
            );
        }
    }

    #[test]
    fn a_progressive_photo_is_left_to_the_full_decoder() {
        assert_eq!(
            decode(&fixture("progressive")).err(),
            Some(DcError::Unsupported("progressive, lossless or arithmetic"))
        );
    }

    #[test]
    fn corrupt_files_are_errors_at_every_cut_and_never_panic() {
        let jpeg = encode(&smooth(64, 48), 80);
        for cut in 0..jpeg.len() {
            let _ = decode(&jpeg[..cut]);
        }
        assert!(decode(&jpeg[..jpeg.len() / 3]).is_err() || decode(&jpeg[..3]).is_err());
        assert!(decode(b"not a jpeg").is_err());
        // Bytes flipped all over the scan: an error or some image, never a panic.
        let mut bad = jpeg.clone();
        for i in (jpeg.len() / 2..jpeg.len() - 2).step_by(7) {
            bad[i] ^= 0x5A;
            let _ = decode(&bad);
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jpeg")
            .join(format!("{name}.jpg"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}
