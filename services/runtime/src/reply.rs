//! What EdgeX routes share: `offset`/`limit` paging, boolean flags, and the 200 answers in
//! EdgeX's envelope.

use std::collections::HashMap;

use actix_web::HttpResponse;
use oxedge_contracts::{BaseResponse, EdgeXError, ErrorKind, API_VERSION};
use serde::Serialize;

use crate::json;

/// The raw query string parameters of a request.
pub type QueryMap = actix_web::web::Query<HashMap<String, String>>;

/// A page asked for by `offset` and `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// How many matches to skip.
    pub offset: u64,
    /// How many to return at most (already capped by `MaxResultCount`).
    pub limit: u64,
}

/// Reads `offset` and `limit` as EdgeX does: offset ≥ 0 (default 0), limit ≥ -1 (default
/// 20, -1 meaning up to `max_result_count`), limit not above `max_result_count`.
pub fn paging(q: &HashMap<String, String>, max_result_count: usize) -> Result<Paging, EdgeXError> {
    let offset = match q.get("offset") {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| EdgeXError::invalid(format!("offset: '{s}' is not an integer ≥ 0")))?,
    };
    let limit = match q.get("limit") {
        None => 20,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|l| *l >= -1)
            .ok_or_else(|| EdgeXError::invalid(format!("limit: '{s}' is not an integer ≥ -1")))?,
    };
    let max = max_result_count as u64;
    let limit = if limit == -1 { max } else { limit as u64 };
    if limit > max {
        return Err(EdgeXError::invalid(format!("limit: {limit} exceeds the maximum result count {max}")));
    }
    Ok(Paging { offset, limit })
}

/// EdgeX answers 416 when `offset` lies beyond the matches.
pub fn check_range(total: u64, offset: u64) -> Result<(), EdgeXError> {
    if total > 0 && offset > total {
        return Err(EdgeXError::new(
            ErrorKind::RangeNotSatisfiable,
            format!("offset {offset} is beyond the {total} matching entries"),
        ));
    }
    Ok(())
}

/// Reads a boolean query parameter, default false; accepts what EdgeX's Go `ParseBool`
/// accepts (`true`, `false`, `1`, `0`, `t`, `f`, `TRUE`, `False`…).
pub fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, EdgeXError> {
    match q.get(name).map(String::as_str) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(s) => Err(EdgeXError::invalid(format!("{name}: '{s}' is not true or false"))),
    }
}

/// A 200 answer with only the envelope.
pub fn ok() -> HttpResponse {
    json(200, &BaseResponse::new("", 200))
}

/// A 200 answer `{apiVersion, statusCode: 200, <field>: value}`.
pub fn ok_with(field: &str, value: serde_json::Value) -> HttpResponse {
    let mut body = serde_json::Map::new();
    body.insert("apiVersion".into(), API_VERSION.into());
    body.insert("statusCode".into(), 200.into());
    body.insert(field.into(), value);
    json(200, &body)
}

/// A 200 answer with a page: `{apiVersion, statusCode: 200, totalCount, <field>: [...]}`.
pub fn page_with<T: Serialize>(field: &str, items: &[T], total: u64) -> HttpResponse {
    let mut body = serde_json::Map::new();
    body.insert("apiVersion".into(), API_VERSION.into());
    body.insert("statusCode".into(), 200.into());
    body.insert("totalCount".into(), total.into());
    body.insert(field.into(), serde_json::to_value(items).unwrap_or_default());
    json(200, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn paging_follows_edgex() {
        assert_eq!(paging(&q(&[]), 100).unwrap(), Paging { offset: 0, limit: 20 });
        assert_eq!(paging(&q(&[("limit", "-1"), ("offset", "5")]), 100).unwrap(), Paging { offset: 5, limit: 100 });
        assert!(paging(&q(&[("limit", "101")]), 100).unwrap_err().message.contains("limit"));
        assert!(paging(&q(&[("offset", "-1")]), 100).unwrap_err().message.contains("offset"));
        assert_eq!(check_range(3, 4).unwrap_err().status_code(), 416);
        assert!(check_range(0, 4).is_ok());
        assert!(flag(&q(&[("numeric", "0")]), "numeric").is_ok_and(|b| !b));
        assert!(flag(&q(&[("numeric", "TRUE")]), "numeric").is_ok_and(|b| b));
        assert!(flag(&q(&[("numeric", "yes")]), "numeric").unwrap_err().message.contains("numeric"));
    }
}
