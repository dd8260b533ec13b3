//! QR codes of share links, as SVG (for the touchscreen app to scale) or PNG (a fixed
//! size), drawn by the `qrcode` crate; the PNG is encoded by the `image` crate the
//! capture path already uses. Both keep the standard quiet zone of 4 modules.

use qrcode::render::svg;
use qrcode::QrCode;

/// The PNG sizes accepted, in pixels (a side).
pub const MIN_PNG_SIZE: u32 = 64;
pub const MAX_PNG_SIZE: u32 = 2048;
/// The PNG size when none is asked for.
pub const DEFAULT_PNG_SIZE: u32 = 512;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the link cannot be encoded as a QR code: {0}")]
    Encode(String),
    #[error("size must be between {MIN_PNG_SIZE} and {MAX_PNG_SIZE} pixels")]
    InvalidSize,
    #[error("cannot write the PNG: {0}")]
    Png(String),
}

fn code(data: &str) -> Result<QrCode, QrError> {
    QrCode::new(data.as_bytes()).map_err(|e| QrError::Encode(e.to_string()))
}

/// The QR code of `data` as an SVG document.
pub fn svg(data: &str) -> Result<String, QrError> {
    Ok(code(data)?
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// Checks a PNG size asked for.
pub fn check_size(size: u32) -> Result<u32, QrError> {
    if (MIN_PNG_SIZE..=MAX_PNG_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(QrError::InvalidSize)
    }
}

/// The QR code of `data` as a grey-scale PNG at most `size` pixels wide (whole pixels per
/// module, so the code stays sharp).
pub fn png(data: &str, size: u32) -> Result<Vec<u8>, QrError> {
    use image::ImageEncoder as _;
    let size = check_size(size)?;
    let img = code(data)?
        .render::<image::Luma<u8>>()
        .max_dimensions(size, size)
        .build();
    let mut out = Vec::with_capacity(4096);
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn svg_and_png_are_made_and_sizes_bounded() {
        let url = "https://vps.example.com/uploads/0123456789abcdef0123456789abcdef.html";
        let s = svg(url).unwrap();
        assert!(s.contains("<svg") && s.contains("</svg>"), "{s}");
        let p = png(url, 300).unwrap();
        assert_eq!(&p[1..4], b"PNG");
        let img = image::load_from_memory(&p).unwrap();
        assert!(img.width() <= 300 && img.width() >= 200, "{}", img.width());
        assert!(matches!(png(url, 63), Err(QrError::InvalidSize)));
        assert!(matches!(png(url, 2049), Err(QrError::InvalidSize)));
        assert!(png(url, 2048).is_ok());
    }
}
