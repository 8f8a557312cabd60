//! Request bodies: reading with a cap, and JSON parsing that names the field at fault.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use signalbox_protocol::http::ApiErrorCode;
use signalbox_protocol::ws::describe_field_error;
use warp::http::HeaderMap;

use super::ApiFailure;

/// Reads a body, failing with 413 `PAYLOAD_TOO_LARGE` as soon as it exceeds `cap` bytes.
pub async fn read_capped<S, B>(stream: S, cap: usize) -> Result<Bytes, ApiFailure>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut stream = std::pin::pin!(stream);
    let mut out = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| ApiFailure::bad_request("the body could not be read"))?;
        if out.len() + chunk.remaining() > cap {
            return Err(ApiFailure::new(
                ApiErrorCode::PayloadTooLarge,
                format!("the body exceeds {cap} bytes"),
            ));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            out.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}

/// Parses a JSON body into `T` (every request body of the API is a JSON object). An empty body
/// reads as `{}`. A body with a content type other than `application/json` is refused with 415;
/// an array or a scalar with 400 `INVALID_BODY` (serde would otherwise map an array onto the
/// fields by position); malformed JSON, a missing field or a wrong type with 400, naming the
/// field by its JSON path and the expected type, in at most
/// [`signalbox_protocol::ws::MAX_FIELD_ERROR_BYTES`] bytes (the same wording as the realtime
/// transports).
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiFailure> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        if let Some(content_type) = headers.get(warp::http::header::CONTENT_TYPE) {
            let is_json = content_type
                .to_str()
                .map(|v| {
                    v.trim()
                        .to_ascii_lowercase()
                        .starts_with("application/json")
                })
                .unwrap_or(false);
            if !is_json {
                return Err(ApiFailure::new(
                    ApiErrorCode::UnsupportedMediaType,
                    "the body must be application/json",
                ));
            }
        }
        body
    };
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => return Err(not_an_object("an array")),
        Some(_) if serde_json::from_slice::<serde_json::Value>(body).is_ok() => {
            return Err(not_an_object("a scalar"));
        }
        _ => {}
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        let described = describe_field_error(&path, &reason);
        if path == "." {
            ApiFailure::bad_request(format!("invalid JSON body: {described}"))
        } else {
            ApiFailure::bad_request(described)
        }
    })?;
    de.end()
        .map_err(|e| ApiFailure::bad_request(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

fn not_an_object(what: &str) -> ApiFailure {
    ApiFailure::new(
        ApiErrorCode::InvalidBody,
        format!("the body must be a JSON object (`{{...}}`), not {what}"),
    )
}

/// Decodes `%XX` escapes of a path segment; `None` if malformed or not UTF-8.
pub fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use signalbox_protocol::http::CreateServerRequest;

    #[test]
    fn errors_name_the_field() {
        let h = HeaderMap::new();
        let e = parse_json::<CreateServerRequest>(&h, br#"{"name": 5}"#).expect_err("type");
        assert!(e.message.contains("`name`"), "{}", e.message);
        let e = parse_json::<CreateServerRequest>(&h, br#"{}"#).expect_err("missing");
        assert!(e.message.contains("name"), "{}", e.message);
        let e = parse_json::<CreateServerRequest>(&h, br#"{"name": "x""#).expect_err("eof");
        assert_eq!(e.code, ApiErrorCode::BadRequest);
        let e = parse_json::<CreateServerRequest>(&h, br#"{"tags": ["a", 1]}"#).expect_err("x");
        assert!(e.message.contains("tags[1]"), "{}", e.message);
    }

    #[test]
    fn arrays_and_scalars_are_not_objects() {
        let h = HeaderMap::new();
        for body in [
            &br#"["arr-id","arr-name"]"#[..],
            b"\n [1]",
            b"\"x\"",
            b"5",
            b"null",
        ] {
            let e = parse_json::<CreateServerRequest>(&h, body).expect_err("not an object");
            assert_eq!(e.code, ApiErrorCode::InvalidBody, "{body:?}");
            assert!(e.message.contains("JSON object"), "{}", e.message);
        }
        let long = format!(r#"{{"name": ["{}"]}}"#, "z".repeat(10_000));
        let e = parse_json::<CreateServerRequest>(&h, long.as_bytes()).expect_err("type");
        assert!(e.message.contains("`name`"), "{}", e.message);
        assert!(e.message.len() < 300, "bounded: {}", e.message.len());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
