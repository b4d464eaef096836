//! Base64 as LXD's Go code reads it.

use base64::Engine;

/// Decodes standard padded base64 the way Go's `base64.StdEncoding` does: line breaks (`\r`,
/// `\n`) anywhere are skipped, so a PEM body with a break every 64 characters (what pylxd
/// sends as a certificate) decodes. Spaces around the text are ignored too.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let text = text.trim();
    if !text.contains(['\r', '\n']) {
        return base64::engine::general_purpose::STANDARD.decode(text);
    }
    let joined: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    base64::engine::general_purpose::STANDARD.decode(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_are_skipped_as_go_does() {
        let body = base64::engine::general_purpose::STANDARD.encode([7u8; 100]);
        let wrapped: String = body
            .as_bytes()
            .chunks(64)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(decode_base64(&wrapped).unwrap(), vec![7u8; 100]);
        assert_eq!(
            decode_base64(&wrapped.replace('\n', "\r\n")).unwrap(),
            vec![7u8; 100]
        );
        assert!(
            decode_base64("ab c=").is_err(),
            "inner spaces are not skipped"
        );
        assert!(decode_base64("not base64!").is_err());
    }
}
