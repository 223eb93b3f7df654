//! QR codes for what people scan: ticket secrets at the door, pairing tokens at
//! a kiosk. One place decides the error-correction level and the image sizes.

use std::io::Cursor;

use image::{ImageFormat, Luma};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::error::AppError;

/// Medium error correction: a code printed on paper or shown on a cracked
/// phone screen still scans, and the symbol stays small for a ticket secret.
const EC_LEVEL: EcLevel = EcLevel::M;
/// Smallest side of a rendered code, in pixels (a phone's camera needs a few
/// pixels per module).
const MIN_SIDE_PX: u32 = 240;

fn encode(content: &str) -> Result<QrCode, AppError> {
    QrCode::with_error_correction_level(content.as_bytes(), EC_LEVEL)
        .map_err(|err| AppError::internal(anyhow::anyhow!("QR encoding failed: {err}")))
}

/// An SVG document showing `content` as a QR code.
pub fn svg(content: &str) -> Result<String, AppError> {
    Ok(encode(content)?
        .render::<svg::Color<'_>>()
        .min_dimensions(MIN_SIDE_PX, MIN_SIDE_PX)
        .build())
}

/// A PNG image showing `content` as a QR code.
pub fn png(content: &str) -> Result<Vec<u8>, AppError> {
    let image = encode(content)?
        .render::<Luma<u8>>()
        .min_dimensions(MIN_SIDE_PX, MIN_SIDE_PX)
        .build();
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|err| AppError::internal(anyhow::anyhow!("PNG encoding failed: {err}")))?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_a_document_with_modules() {
        let doc = svg("voltgate-ticket-secret").expect("a short text encodes");
        assert!(doc.starts_with("<?xml"));
        assert!(doc.contains("<svg") && doc.contains("<path"));
    }

    #[test]
    fn png_has_the_png_signature_and_the_minimum_size() {
        let bytes = png("voltgate-ticket-secret").expect("a short text encodes");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoded = image::load_from_memory(&bytes).expect("the PNG decodes");
        assert!(decoded.width() >= MIN_SIDE_PX);
    }

    #[test]
    fn longer_content_needs_a_larger_symbol() {
        let short = encode("a").expect("encodes").width();
        let long = encode(&"a".repeat(200)).expect("encodes").width();
        assert!(long > short);
    }
}
