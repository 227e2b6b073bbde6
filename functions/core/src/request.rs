//! The request as the protocol sees it, and body parsing for the three
//! encodings clients send: JSON, urlencoded forms and multipart.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::fields::Fields;

/// Bodies above this size are refused with `413` before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// An HTTP request reduced to what the operations need.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: http::Method,
    /// The path below `/api/v1/`, split into segments, trailing slash ignored.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// `scheme://host` the client used (for absolute pagination links).
    pub origin: String,
    /// The full path the client requested, for pagination links.
    pub path: String,
    pub body: Bytes,
    /// When the request must have been answered (wall-clock microseconds):
    /// the Lambda invocation's deadline; `None` where there is none (the
    /// local router), which gives [`crate::retry::DEFAULT_BUDGET`].
    pub deadline_us: Option<crate::time::Micros>,
    /// The client's address as API Gateway saw it (`requestContext.http.
    /// sourceIp`; the local router: the peer). Counted, never stored.
    pub source_ip: Option<String>,
}

impl ApiRequest {
    /// Splits a request path at `/api/v1/` (a stage prefix before it is fine)
    /// and percent-decodes each segment once (API Gateway and the local
    /// router both hand over the path as the client encoded it, so
    /// `accounts/j%C3%B6rg/` names the user `jörg`). A segment that does not
    /// decode to UTF-8 stays as sent and matches nothing. Returns `None` for
    /// paths outside the API.
    pub fn segments_of(path: &str) -> Option<Vec<String>> {
        let idx = path.find("/api/v1")?;
        let rest = &path[idx + "/api/v1".len()..];
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(
            rest.split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map_or_else(|_| s.to_string(), |d| d.into_owned())
                })
                .collect(),
        )
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request body as named fields, whatever its encoding.
    pub async fn fields(&self) -> Result<Fields, ApiError> {
        parse_body(self.content_type.as_deref(), &self.body)
            .await
            .map(Fields::new)
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses a body into a JSON object. Form values become JSON strings.
pub async fn parse_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let media = content_type.map(media_type).unwrap_or_default();
    match media.as_str() {
        _ if body.iter().all(|b| b.is_ascii_whitespace()) && media != "multipart/form-data" => {
            Ok(Map::new())
        }
        "" | "application/json" => parse_json(body),
        m if m.ends_with("+json") => parse_json(body),
        "application/x-www-form-urlencoded" => parse_form(body),
        "multipart/form-data" => parse_multipart(content_type.unwrap_or(""), body).await,
        other => Err(ApiError::UnsupportedMediaType(other.to_string())),
    }
}

fn parse_json(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::non_field("Invalid data. Expected a dictionary.")),
        Err(err) => Err(ApiError::BadRequest(format!("JSON parse error - {err}"))),
    }
}

fn parse_form(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    // serde_urlencoded decodes invalid UTF-8 lossily; a client sending it has a
    // bug we should report rather than silently store U+FFFD.
    let valid = body.split(|b| *b == b'&').all(|pair| {
        let plus_as_space: Vec<u8> = pair
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_encoding::percent_decode(&plus_as_space)
            .decode_utf8()
            .is_ok()
    });
    if !valid {
        return Err(ApiError::BadRequest(
            "Form parse error - invalid UTF-8".into(),
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|err| ApiError::BadRequest(format!("Form parse error - {err}")))?;
    let mut map = Map::new();
    for (key, value) in pairs {
        // The first value of a repeated key wins, as in Django's QueryDict.get.
        map.entry(key).or_insert(Value::String(value));
    }
    Ok(map)
}

async fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let bad =
        |err: multer::Error| ApiError::BadRequest(format!("Multipart form parse error - {err}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let data = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(MAX_BODY_BYTES as u64));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut map = Map::new();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let Some(name) = field.name().map(str::to_string) else {
            continue;
        };
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await.map_err(bad)?;
        if is_file {
            continue;
        }
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ApiError::BadRequest(format!("Multipart field \"{name}\" is not valid UTF-8."))
        })?;
        map.entry(name).or_insert(Value::String(text));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn segments_ignore_trailing_slash_and_stage() {
        assert_eq!(
            ApiRequest::segments_of("/api/v1/tokens/abc"),
            Some(vec!["tokens".into(), "abc".into()])
        );
        assert_eq!(
            ApiRequest::segments_of("/prod/api/v1/messages/"),
            Some(vec!["messages".into()])
        );
        assert_eq!(ApiRequest::segments_of("/api/v1"), Some(vec![]));
        assert_eq!(ApiRequest::segments_of("/api/v10/x"), None);
        assert_eq!(ApiRequest::segments_of("/other"), None);
    }

    #[test]
    fn three_encodings_give_the_same_fields() {
        let json = block(parse_body(
            Some("application/json"),
            br#"{"token":"t","priority":"high"}"#,
        ))
        .unwrap();
        let form = block(parse_body(
            Some("application/x-www-form-urlencoded"),
            b"token=t&priority=high",
        ))
        .unwrap();
        let multipart_body = b"--XyZ\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nt\r\n--XyZ\r\nContent-Disposition: form-data; name=\"priority\"\r\n\r\nhigh\r\n--XyZ--\r\n";
        let multipart = block(parse_body(
            Some("multipart/form-data; boundary=XyZ"),
            multipart_body,
        ))
        .unwrap();
        assert_eq!(json, form);
        assert_eq!(json, multipart);
    }

    #[test]
    fn bad_bodies_are_client_errors() {
        for (ct, body) in [
            (Some("application/json"), &b"{\"a\": "[..]),
            (Some("application/json"), &b"[1,2]"[..]),
            (Some("application/json"), &b"\xff\xfe"[..]),
            (Some("application/x-www-form-urlencoded"), &b"a=%ff"[..]),
            (Some("multipart/form-data"), &b"garbage"[..]),
            (Some("multipart/form-data; boundary=X"), &b"garbage"[..]),
            (Some("text/plain"), &b"hello"[..]),
        ] {
            let err = block(parse_body(ct, body)).unwrap_err();
            assert!(err.status().is_client_error(), "{ct:?} {body:?} -> {err:?}");
        }
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(block(parse_body(None, &big)).unwrap_err().status(), 413);
    }
}
