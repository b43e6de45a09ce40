//! Extractors whose errors name the offending parameter.

use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use oxedge_contracts::EdgeXError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `actix_web::web::Query`, but a bad parameter is a 400 naming it
/// (`query parameter limit: invalid digit found in string`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parsed parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Parses a query string into `T`; the error names the parameter that failed.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, EdgeXError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." {
            EdgeXError::invalid(format!("query: {}", e.inner()))
        } else {
            EdgeXError::invalid(format!("query parameter {path}: {}", e.inner()))
        }
    })
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(Query).map_err(ApiError))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        offset: Option<u32>,
        limit: u32,
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = parse_query::<Page>("offset=1&limit=ten").unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.message.contains("limit"), "{}", err.message);
        let err = parse_query::<Page>("offset=x&limit=1").unwrap_err();
        assert!(err.message.contains("offset"), "{}", err.message);
        let err = parse_query::<Page>("offset=1").unwrap_err();
        assert!(err.message.contains("limit"), "{}", err.message);
        assert_eq!(parse_query::<Page>("limit=5").unwrap().limit, 5);
    }
}
