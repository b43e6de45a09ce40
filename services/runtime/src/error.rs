//! Errors as HTTP answers in EdgeX's shape: `{"apiVersion":"v3","statusCode":N,"message":"…"}`.

use std::fmt;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use oxedge_contracts::{BaseResponse, EdgeXError, ErrorKind};
use serde::Serialize;

const JSON: &str = "application/json";

/// An [`EdgeXError`] that actix answers with its status code and the EdgeX error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub EdgeXError);

/// What a handler returns.
pub type ApiResult<T = HttpResponse> = Result<T, ApiError>;

impl From<EdgeXError> for ApiError {
    fn from(err: EdgeXError) -> Self {
        Self(err)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status(self.0.status_code())
    }

    fn error_response(&self) -> HttpResponse {
        json(self.0.status_code(), &BaseResponse::from_error("", &self.0))
    }
}

/// A response with `status` and `body` serialized as JSON.
pub fn json<T: Serialize>(status_code: u16, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status(status_code)).insert_header((header::CONTENT_TYPE, JSON)).body(bytes),
        Err(err) => {
            let err = EdgeXError::server(format!("failed to encode the response: {err}"));
            // Serializing a BaseResponse cannot fail.
            HttpResponse::InternalServerError()
                .insert_header((header::CONTENT_TYPE, JSON))
                .body(serde_json::to_vec(&BaseResponse::from_error("", &err)).unwrap_or_default())
        }
    }
}

/// The EdgeX error answer for `status` and `message`, whatever the status.
pub(crate) fn error_body(status_code: u16, message: impl Into<String>) -> BaseResponse {
    let mut body = BaseResponse::from_error("", &EdgeXError::new(ErrorKind::ServerError, message));
    body.status_code = status_code;
    body
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn api_error_answers_in_edgex_shape() {
        let res = ApiError::from(EdgeXError::not_found("device", "d1")).error_response();
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        let body = res.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"apiVersion": "v3", "statusCode": 404, "message": "device 'd1' does not exist"})
        );
    }
}
