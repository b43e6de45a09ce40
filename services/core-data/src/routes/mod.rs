//! The core-data REST API: events and readings, and what their routes share — time ranges,
//! the `numeric` rendering of values, and paged answers.

pub mod event;
pub mod reading;

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use oxedge_contracts::{EdgeXError, ValueType};
use oxedge_runtime::reply::{self, check_range, Paging};
use oxedge_runtime::{json, ApiResult};
use serde::Serialize;
use serde_json::{Map, Number, Value};

use crate::store::Page;

/// Limits the routes apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest `limit` a query may ask for (EdgeX's `MaxResultCount`).
    pub max_result_count: usize,
}

/// Registers every core-data route (under `/api/v3`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    event::configure(cfg);
    reading::configure(cfg);
}

/// The page the request's `offset`/`limit` ask for.
pub fn page(q: &HashMap<String, String>, limits: Limits) -> Result<Page, EdgeXError> {
    let Paging { offset, limit } = reply::paging(q, limits.max_result_count)?;
    Ok(Page { offset, limit })
}

/// Parses a `{start}`/`{end}` pair of nanosecond timestamps; start must not be after end.
pub fn time_range(start: &str, end: &str) -> Result<(i64, i64), EdgeXError> {
    let parse = |name: &str, s: &str| {
        s.parse::<i64>()
            .map_err(|_| EdgeXError::invalid(format!("{name}: '{s}' is not a Unix timestamp in nanoseconds")))
    };
    let (start, end) = (parse("start", start)?, parse("end", end)?);
    if start > end {
        return Err(EdgeXError::invalid(format!("start: {start} is after end {end}")));
    }
    Ok((start, end))
}

/// A number from its text form, as JSON can carry it; `None` for NaN, infinities or junk.
fn number(text: &str) -> Option<Number> {
    let t = text.trim();
    t.parse::<i64>()
        .map(Number::from)
        .or_else(|_| t.parse::<u64>().map(Number::from))
        .ok()
        .or_else(|| t.parse::<f64>().ok().and_then(Number::from_f64))
}

/// With `numeric`, turns the `value` of numeric readings from a string into a number, in a
/// reading object or in each reading of an event object.
fn numeric_values(item: &mut Value) {
    let fix = |r: &mut Map<String, Value>| {
        let vt = r.get("valueType").and_then(Value::as_str).and_then(ValueType::parse);
        if vt.is_some_and(ValueType::is_numeric) {
            if let Some(n) = r.get("value").and_then(Value::as_str).and_then(number) {
                r.insert("value".into(), Value::Number(n));
            }
        }
    };
    if let Some(obj) = item.as_object_mut() {
        match obj.get_mut("readings").and_then(Value::as_array_mut) {
            Some(readings) => readings.iter_mut().filter_map(Value::as_object_mut).for_each(fix),
            None => fix(obj),
        }
    }
}

/// A 200 page of `items` as the list `field`, with `totalCount`; 416 when `offset` lies
/// beyond the matches; values as numbers when the request says `numeric=true`.
pub fn paged<T: Serialize>(field: &str, items: &[T], total: u64, page: Page, q: &HashMap<String, String>) -> ApiResult {
    check_range(total, page.offset)?;
    if !reply::flag(q, "numeric")? {
        return Ok(reply::page_with(field, items, total));
    }
    let mut list: Vec<Value> = items.iter().map(|i| serde_json::to_value(i).unwrap_or_default()).collect();
    list.iter_mut().for_each(numeric_values);
    Ok(reply::page_with(field, &list, total))
}

/// A 200 answer with one item under `field`, values as numbers when `numeric=true`.
pub fn one<T: Serialize>(field: &str, item: &T, q: &HashMap<String, String>) -> ApiResult {
    let mut value = serde_json::to_value(item).map_err(|e| EdgeXError::server(e.to_string()))?;
    if reply::flag(q, "numeric")? {
        numeric_values(&mut value);
    }
    Ok(reply::ok_with(field, value))
}

/// A 202: the request was accepted and runs in the background.
pub fn accepted() -> HttpResponse {
    json(202, &oxedge_contracts::BaseResponse::new("", 202))
}

/// A `CountResponse`.
pub fn count(n: u64) -> HttpResponse {
    json(200, &oxedge_contracts::CountResponse { base: oxedge_contracts::BaseResponse::new("", 200), count: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_turns_numbers_only() {
        let mut event = json!({"readings": [
            {"valueType": "Int8", "value": "-5"},
            {"valueType": "Uint64", "value": "18446744073709551615"},
            {"valueType": "Float32", "value": "39.5"},
            {"valueType": "Float64", "value": "NaN"},
            {"valueType": "String", "value": "12"},
            {"valueType": "Bool", "value": "true"}
        ]});
        numeric_values(&mut event);
        let values: Vec<&Value> = event["readings"].as_array().unwrap().iter().map(|r| &r["value"]).collect();
        assert_eq!(
            values,
            [&json!(-5), &json!(18446744073709551615u64), &json!(39.5), &json!("NaN"), &json!("12"), &json!("true")]
        );
    }

    #[test]
    fn time_ranges_are_checked() {
        assert_eq!(time_range("1", "2").unwrap(), (1, 2));
        assert!(time_range("2", "1").unwrap_err().message.contains("start"));
        assert!(time_range("x", "1").unwrap_err().message.contains("start: 'x'"));
    }
}
