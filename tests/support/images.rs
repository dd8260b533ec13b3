//! Test images, generated (nothing large checked in).

use std::io::Cursor;

/// A small JPEG whose pixels depend on `seed` (distinct seeds → distinct bytes).
pub fn jpeg(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = x.wrapping_mul(31) ^ y.wrapping_mul(17) ^ seed.wrapping_mul(2654435761);
        image::Rgb([
            (v & 0xff) as u8,
            ((v >> 8) & 0xff) as u8,
            (x + y + seed) as u8,
        ])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 85,
    ))
    .expect("encode jpeg");
    out
}

/// A PNG with transparency.
pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x + seed) as u8, y as u8, 99, (x * 3) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

pub fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

// ---------------------------------------------------------------------------------------
// Photo-like JPEGs of a chosen size (examples/bench_link.rs).

/// A 2048×1536 JPEG of about `target` bytes (within 2 %): smooth gradients and waves
/// like a lit scene, plus sensor-like grain whose amplitude is tuned until the size fits.
/// Distinct seeds give distinct bytes.
pub fn photo_like(seed: u32, target: usize) -> Vec<u8> {
    let (w, h) = (2048u32, 1536u32);
    let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let (fx, fy) = (3.0 + seed as f32 % 5.0, 2.0 + seed as f32 % 3.0);
    let mut base = Vec::with_capacity((w * h * 3) as usize);
    let mut grain = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let (tx, ty) = (x as f32 / w as f32, y as f32 / h as f32);
            let wave = 30.0
                * (tx * fx * std::f32::consts::PI).sin()
                * (ty * fy * std::f32::consts::PI).cos();
            let l = next();
            for c in 0..3 {
                let c = c as f32;
                base.push(60.0 + 120.0 * (tx * 0.6 + ty * 0.4) + wave * (1.0 - 0.3 * c) + 20.0 * c);
                grain.push(1.6 * l + 0.9 * next());
            }
        }
    }
    let render = |amp: f32| {
        let px: Vec<u8> = base
            .iter()
            .zip(&grain)
            .map(|(b, g)| (b + amp * g).round().clamp(0.0, 255.0) as u8)
            .collect();
        let mut out = Vec::with_capacity(target + target / 4);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode(&px, w, h, image::ExtendedColorType::Rgb8)
            .expect("encode jpeg");
        out
    };
    let (mut lo, mut hi) = (0.0f32, 64.0f32);
    let mut best = render(hi);
    for _ in 0..14 {
        let amp = (lo + hi) / 2.0;
        let jpeg = render(amp);
        if jpeg.len().abs_diff(target) < best.len().abs_diff(target) {
            best = jpeg.clone();
        }
        if best.len().abs_diff(target) * 50 < target {
            break;
        }
        if jpeg.len() < target {
            lo = amp;
        } else {
            hi = amp;
        }
    }
    best
}
