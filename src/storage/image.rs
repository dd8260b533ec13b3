//! Image validation from headers, and PNG → JPEG conversion.
//!
//! A JPEG is checked by walking its marker segments up to the start of scan (dimensions
//! come from the SOFn segment, no decode) and by requiring the end-of-image marker at the
//! end, which is what a truncated upload lacks. A PNG is decoded and re-encoded as JPEG
//! (the kiosk serves `{id}.jpg` only); its header dimensions are checked first so a tiny
//! file claiming a gigapixel image is refused before any allocation.

use std::io::Cursor;

/// Largest accepted image, in pixels (a 48-megapixel phone photo fits).
pub const MAX_PIXELS: u64 = 64_000_000;
/// JPEG quality used when converting PNG captures.
pub const PNG_TO_JPEG_QUALITY: u8 = 92;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the data is not a JPEG or PNG image")]
    NotAnImage,
    #[error("the JPEG is truncated or corrupt: {0}")]
    BadJpeg(&'static str),
    #[error("the PNG is truncated or corrupt: {0}")]
    BadPng(String),
    #[error("the image is too large ({width}x{height} pixels; at most {MAX_PIXELS} pixels)")]
    TooManyPixels { width: u32, height: u32 },
}

/// Tells the format from the magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else {
        None
    }
}

/// Validates a JPEG's structure and returns its (width, height).
pub fn jpeg_dimensions(b: &[u8]) -> Result<(u32, u32), ImageError> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(ImageError::NotAnImage);
    }
    // End of image: FF D9, allowing trailing zero padding some encoders add.
    let end = b.iter().rposition(|&x| x != 0).unwrap_or(0);
    if end < 3 || b[end - 1] != 0xFF || b[end] != 0xD9 {
        return Err(ImageError::BadJpeg("no end-of-image marker"));
    }
    let mut i = 2usize;
    let mut dims: Option<(u32, u32)> = None;
    loop {
        // Markers may be preceded by fill bytes 0xFF.
        while i < b.len() && b[i] == 0xFF && i + 1 < b.len() && b[i + 1] == 0xFF {
            i += 1;
        }
        if i + 4 > b.len() {
            return Err(ImageError::BadJpeg("ends inside the header"));
        }
        if b[i] != 0xFF {
            return Err(ImageError::BadJpeg("bad marker"));
        }
        let marker = b[i + 1];
        match marker {
            // Standalone markers without a length.
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            0xD8 | 0xD9 => return Err(ImageError::BadJpeg("unexpected marker in header")),
            _ => {}
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if len < 2 || i + 2 + len > b.len() {
            return Err(ImageError::BadJpeg("segment runs past the end"));
        }
        let seg = &b[i + 4..i + 2 + len];
        match marker {
            // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err(ImageError::BadJpeg("short frame header"));
                }
                let h = u16::from_be_bytes([seg[1], seg[2]]) as u32;
                let w = u16::from_be_bytes([seg[3], seg[4]]) as u32;
                if w == 0 || h == 0 {
                    return Err(ImageError::BadJpeg("zero width or height"));
                }
                dims = Some((w, h));
            }
            0xDA => {
                let (w, h) = dims.ok_or(ImageError::BadJpeg("scan before frame header"))?;
                if i + 2 + len >= end - 1 {
                    return Err(ImageError::BadJpeg("no image data"));
                }
                if (w as u64) * (h as u64) > MAX_PIXELS {
                    return Err(ImageError::TooManyPixels {
                        width: w,
                        height: h,
                    });
                }
                return Ok((w, h));
            }
            _ => {}
        }
        i += 2 + len;
    }
}

/// PNG header dimensions (IHDR), checked before decoding.
pub fn png_dimensions(b: &[u8]) -> Result<(u32, u32), ImageError> {
    if b.len() < 33 || &b[12..16] != b"IHDR" {
        return Err(ImageError::BadPng("no IHDR header".into()));
    }
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    if w == 0 || h == 0 {
        return Err(ImageError::BadPng("zero width or height".into()));
    }
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(ImageError::TooManyPixels {
            width: w,
            height: h,
        });
    }
    Ok((w, h))
}

/// Decodes a PNG (flattening alpha onto white) and encodes it as JPEG.
pub fn png_to_jpeg(b: &[u8]) -> Result<(Vec<u8>, u32, u32), ImageError> {
    let (w, h) = png_dimensions(b)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(b), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| ImageError::BadPng(short_error(&e)))?;
    let rgb = flatten_to_rgb(img);
    let mut out = Vec::with_capacity((w as usize * h as usize) / 4);
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, PNG_TO_JPEG_QUALITY);
    rgb.write_with_encoder(enc)
        .map_err(|e| ImageError::BadPng(short_error(&e)))?;
    Ok((out, w, h))
}

fn flatten_to_rgb(img: image::DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut rgb = image::RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(rgb.pixels_mut()) {
        let a = src[3] as u32;
        for c in 0..3 {
            dst[c] = ((src[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
        }
    }
    rgb
}

fn short_error(e: &image::ImageError) -> String {
    let s = e.to_string();
    s.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    pub fn tiny_jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 80,
        ))
        .unwrap();
        out
    }

    #[test]
    fn reads_jpeg_dimensions() {
        let j = tiny_jpeg(33, 17);
        assert_eq!(sniff(&j), Some(Format::Jpeg));
        assert_eq!(jpeg_dimensions(&j).unwrap(), (33, 17));
    }

    #[test]
    fn rejects_truncated_jpeg_at_every_cut() {
        let j = tiny_jpeg(40, 30);
        for cut in [3, 10, 100, j.len() / 2, j.len() - 1] {
            assert!(jpeg_dimensions(&j[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn png_converts() {
        let img = image::RgbaImage::from_fn(20, 10, |x, _| image::Rgba([x as u8, 0, 0, 128]));
        let mut png = Vec::new();
        img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
            .unwrap();
        assert_eq!(sniff(&png), Some(Format::Png));
        let (jpg, w, h) = png_to_jpeg(&png).unwrap();
        assert_eq!((w, h), (20, 10));
        assert_eq!(jpeg_dimensions(&jpg).unwrap(), (20, 10));
        assert!(png_to_jpeg(&png[..png.len() - 20]).is_err());
    }

    #[test]
    fn refuses_pixel_bombs() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            png_dimensions(&png),
            Err(ImageError::TooManyPixels { .. })
        ));
    }
}
