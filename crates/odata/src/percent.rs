//! Strict percent-decoding: `%zz`, a lone `%` and invalid UTF-8 are errors, not passed through.

use crate::ODataError;

/// Decodes one query-string key or value. `+` becomes a space, as ASP.NET (and so Graph) decodes query strings:
/// an unencoded `+` in an email (Node's client leaves it literal) reaches Graph as a space too; callers must send `%2B`.
pub(crate) fn decode_query_component(raw: &str) -> Result<String, ODataError> {
    decode(raw, true).map_err(|detail| ODataError::BadRequest(format!("The query string is not valid: {detail}.")))
}

/// Decodes one path segment such as `/users/{id or UPN}`; `+` stays `+` in paths.
pub fn decode_path_segment(seg: &str) -> Result<String, ODataError> {
    decode(seg, false).map_err(|detail| ODataError::BadRequest(format!("The request URL path is not valid: {detail}.")))
}

fn decode(raw: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|pair| Some((hex_value(pair[0])?, hex_value(pair[1])?)));
                let Some((high, low)) = hex else {
                    let shown: String = raw[i..].chars().take(3).collect();
                    return Err(format!("invalid percent-encoding '{shown}' at position {}", raw[..i].chars().count()));
                };
                out.push(high << 4 | low);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoded bytes are not valid UTF-8".to_string())
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
