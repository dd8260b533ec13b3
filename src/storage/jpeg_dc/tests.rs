//! The DC reader against the full decoder, on files from two encoders.
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

/// Noise at high quality: long blocks, many ending on their 63rd coefficient with no end
/// of block, zero runs of 16, large values; where the look-ups that skip several
/// coefficients at once must stop at the block's end.
#[test]
fn noisy_photos_with_full_blocks_are_read() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 58) as i32 - 32
    };
    // Whole blocks only: the encoder pads a partial one by repeating its edge, which
    // noise makes the block's mean differ from that of the pixels it covers.
    let smooth = smooth(336, 248);
    let img = image::RgbImage::from_fn(336, 248, |x, y| {
        let base = smooth.get_pixel(x, y).0;
        // Mid-range, so that no pixel is clamped and block means stay exact.
        image::Rgb(base.map(|c| (64 + i32::from(c) / 2 + noise()).clamp(0, 255) as u8))
    });
    for quality in [100, 95, 75] {
        let (mean, worst) = compare(&encode(&img, quality));
        assert!(
            mean < 2.0 && worst < 12,
            "quality {quality}: mean {mean}, worst {worst}"
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
