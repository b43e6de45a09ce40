//! A device service's answer turned into what core-command's caller gets: an HTTP response
//! for REST callers, a response envelope for bus callers.

use actix_web::http::header;
use actix_web::HttpResponse;
use base64::Engine as _;
use oxedge_bus::envelope::{CONTENT_TYPE_JSON, CONTENT_TYPE_TEXT};
use oxedge_bus::{Bytes, MessageEnvelope};
use oxedge_contracts::client::kind_of_status;
use oxedge_contracts::{BaseResponse, EdgeXError, ErrorKind};
use oxedge_runtime::{json, ApiError};
use serde_json::value::RawValue;

use crate::command::{Method, Outcome};

/// The HTTP answer for a REST caller: a device service's HTTP answer exactly as it came (an
/// error answer that is not JSON in EdgeX's error shape, with its text); a bus reply as 200
/// with its payload (no body for a read without an event, a `BaseResponse` for a write), or
/// its error text as an EdgeX error.
pub fn to_http(outcome: Outcome, method: Method) -> Result<HttpResponse, ApiError> {
    match outcome {
        Outcome::Http(answer) if answer.status >= 400 && !answer.content_type.starts_with(CONTENT_TYPE_JSON) => {
            let e = error_text(answer.status, &answer.body);
            Err(EdgeXError::new(e.kind, format!("device service answered {}: {}", answer.status, e.message)).into())
        }
        Outcome::Http(answer) => {
            let status = actix_web::http::StatusCode::from_u16(answer.status)
                .map_err(|_| EdgeXError::server(format!("device service answered status {}", answer.status)))?;
            let mut res = HttpResponse::build(status);
            if !answer.content_type.is_empty() {
                res.insert_header((header::CONTENT_TYPE, answer.content_type));
            }
            Ok(res.body(answer.body))
        }
        Outcome::Bus { service, reply } => {
            if reply.error_code != 0 {
                return Err(reply_error(&service, &reply).into());
            }
            let bytes = reply
                .payload_bytes()
                .map_err(|e| EdgeXError::server(format!("device service '{service}' sent a malformed reply: {e}")))?;
            if is_empty_payload(&reply) {
                return Ok(match method {
                    Method::Get => HttpResponse::Ok().finish(),
                    Method::Set => json(200, &BaseResponse::new("", 200)),
                });
            }
            let content_type = if reply.content_type.is_empty() { CONTENT_TYPE_JSON } else { &reply.content_type };
            Ok(HttpResponse::Ok().insert_header((header::CONTENT_TYPE, content_type.to_owned())).body(bytes))
        }
    }
}

/// The envelope for a bus caller of request `request_id`: a bus reply as it came; an HTTP
/// answer as its body (2xx) or an error envelope with its message.
pub fn to_envelope(outcome: Result<Outcome, EdgeXError>, request_id: &str, correlation_id: &str) -> MessageEnvelope {
    let error = |message: &str| MessageEnvelope::error(request_id, correlation_id, message);
    match outcome {
        Err(e) => error(&e.message),
        Ok(Outcome::Bus { mut reply, .. }) => {
            reply.request_id = request_id.to_owned();
            reply.received_topic.clear();
            reply
        }
        Ok(Outcome::Http(answer)) if !(200..300).contains(&answer.status) => {
            error(&error_text(answer.status, &answer.body).message)
        }
        Ok(Outcome::Http(answer)) => {
            let (payload, content_type) = envelope_payload(&answer.body, &answer.content_type);
            MessageEnvelope {
                api_version: oxedge_contracts::API_VERSION.to_owned(),
                received_topic: String::new(),
                correlation_id: correlation_id.to_owned(),
                request_id: request_id.to_owned(),
                error_code: 0,
                payload,
                content_type,
                query_params: Default::default(),
            }
        }
    }
}

/// An HTTP body as an envelope payload: nothing as `null`, JSON embedded, anything else as a
/// base64 string (as EdgeX carries CBOR).
fn envelope_payload(body: &Bytes, content_type: &str) -> (Box<RawValue>, String) {
    let json_type = || if content_type.is_empty() { CONTENT_TYPE_JSON.to_owned() } else { content_type.to_owned() };
    if body.is_empty() {
        return (RawValue::from_string("null".to_owned()).expect("null is JSON"), json_type());
    }
    if let Ok(raw) = serde_json::from_slice::<&RawValue>(body) {
        return (raw.to_owned(), json_type());
    }
    let text = base64::engine::general_purpose::STANDARD.encode(body);
    let raw = serde_json::value::to_raw_value(&text).expect("a string always serializes");
    (raw, if content_type.is_empty() { CONTENT_TYPE_TEXT.to_owned() } else { content_type.to_owned() })
}

fn is_empty_payload(reply: &MessageEnvelope) -> bool {
    matches!(reply.payload.get().trim(), "null" | "\"\"" | "")
}

/// A bus reply with `errorCode` 1 as an error: the status an EdgeX error body in it names,
/// else 500, with the device service's text.
fn reply_error(service: &str, reply: &MessageEnvelope) -> EdgeXError {
    let text = reply.payload_bytes().unwrap_or_else(|_| reply.payload.get().as_bytes().to_vec());
    let e = error_text(500, &text);
    EdgeXError::new(e.kind, format!("device service '{service}': {}", e.message))
}

/// An error answer's kind and message: from an EdgeX error body when it is one, else `status`
/// and the text itself.
fn error_text(status: u16, body: &[u8]) -> EdgeXError {
    match serde_json::from_slice::<BaseResponse>(body) {
        Ok(b) if b.status_code >= 400 => EdgeXError::new(kind_of_status(b.status_code), b.message),
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(1024)]).trim().to_owned();
            let text = if text.is_empty() { format!("the device service answered {status}") } else { text };
            EdgeXError::new(if status >= 400 { kind_of_status(status) } else { ErrorKind::ServerError }, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_contracts::client::CommandAnswer;
    use serde_json::json;

    fn answer(status: u16, content_type: &str, body: &[u8]) -> Outcome {
        Outcome::Http(CommandAnswer { status, content_type: content_type.into(), body: Bytes::copy_from_slice(body) })
    }

    #[test]
    fn http_answers_become_envelopes() {
        let ok = to_envelope(Ok(answer(200, "application/json", br#"{"event":{"id":"e"}}"#)), "r", "c");
        assert_eq!((ok.error_code, ok.request_id.as_str()), (0, "r"));
        assert_eq!(ok.payload_as::<serde_json::Value>().unwrap(), json!({"event": {"id": "e"}}));
        let empty = to_envelope(Ok(answer(200, "", b"")), "r", "c");
        assert_eq!(empty.payload.get(), "null");
        let cbor = to_envelope(Ok(answer(200, "application/cbor", &[0xa1, 0x01, 0x02])), "r", "c");
        assert_eq!(cbor.payload_bytes().unwrap(), [0xa1, 0x01, 0x02]);
        let err = to_envelope(
            Ok(answer(423, "application/json", br#"{"statusCode":423,"message":"device d locked"}"#)),
            "r",
            "c",
        );
        assert_eq!((err.error_code, err.payload_bytes().unwrap()), (1, b"device d locked".to_vec()));
    }

    #[test]
    fn http_answers_are_relayed_and_plain_errors_keep_their_text() {
        let ok = to_http(answer(201, "application/x", b"raw"), Method::Get).unwrap();
        assert_eq!(
            (ok.status().as_u16(), ok.headers().get(header::CONTENT_TYPE).unwrap().to_str().unwrap()),
            (201, "application/x")
        );
        let plain = to_http(answer(502, "text/plain", b"bad gateway today"), Method::Get).unwrap_err();
        assert_eq!(plain.0.status_code(), 503);
        assert!(plain.0.message.contains("bad gateway today"), "{}", plain.0.message);
        let edgex = to_http(answer(500, "application/json", br#"{"statusCode":500}"#), Method::Get).unwrap();
        assert_eq!(edgex.status().as_u16(), 500);
    }

    #[test]
    fn bus_errors_keep_a_status_they_carry() {
        let plain = MessageEnvelope::error("r", "c", "driver failed");
        let e = reply_error("ds", &plain);
        assert_eq!((e.status_code(), e.message.as_str()), (500, "device service 'ds': driver failed"));
        let edgex =
            MessageEnvelope::error("r", "c", r#"{"apiVersion":"v3","statusCode":404,"message":"no such thing"}"#);
        assert_eq!(reply_error("ds", &edgex).status_code(), 404);
    }
}
