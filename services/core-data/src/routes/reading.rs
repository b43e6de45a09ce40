//! `/reading…`: readings by device, resource and time, counts, and SQL-style aggregates
//! (`aggregateFunc=MIN|MAX|COUNT|SUM|AVG`).

use std::collections::HashMap;

use actix_web::web;
use oxedge_contracts::{EdgeXError, ValueType};
use oxedge_runtime::reply::QueryMap;
use oxedge_runtime::{json, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{count, page, paged, time_range, Limits};
use crate::data::{store_error, CoreData};
use crate::store::{AggregateFunc, AggregateRow, ReadingFilter};

/// Registers the reading routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/reading/all", web::get().to(all))
        .route("/reading/count", web::get().to(count_all))
        .route("/reading/count/device/name/{name}", web::get().to(count_by_device))
        .route("/reading/device/name/{name}", web::get().to(by_device))
        .route("/reading/resourceName/{resource}", web::get().to(by_resource))
        .route("/reading/device/name/{name}/resourceName/{resource}", web::get().to(by_device_resource))
        .route("/reading/start/{start}/end/{end}", web::get().to(by_time))
        .route("/reading/resourceName/{resource}/start/{start}/end/{end}", web::get().to(by_resource_time))
        .route(
            "/reading/device/name/{name}/resourceName/{resource}/start/{start}/end/{end}",
            web::get().to(by_device_resource_time),
        )
        .route("/reading/device/name/{name}/start/{start}/end/{end}", web::get().to(by_device_time));
}

type Data = web::Data<CoreData>;
type Lim = web::Data<Limits>;

/// Parses `aggregateFunc` (case-insensitive), if given.
fn aggregate_func(q: &HashMap<String, String>) -> Result<Option<AggregateFunc>, EdgeXError> {
    let Some(s) = q.get("aggregateFunc").filter(|s| !s.is_empty()) else { return Ok(None) };
    Ok(Some(match s.to_ascii_uppercase().as_str() {
        "MIN" => AggregateFunc::Min,
        "MAX" => AggregateFunc::Max,
        "COUNT" => AggregateFunc::Count,
        "SUM" => AggregateFunc::Sum,
        "AVG" => AggregateFunc::Avg,
        _ => return Err(EdgeXError::invalid(format!("aggregateFunc: '{s}' is not one of MIN, MAX, COUNT, SUM, AVG"))),
    }))
}

/// One aggregated reading as EdgeX answers it: the value as a JSON number, typed `Int64`
/// for counts and integer sums/extremes, `Float64` for averages and float sums/extremes,
/// and `""` with the readings' own type when they are not numeric.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedReading {
    device_name: String,
    resource_name: String,
    profile_name: String,
    value_type: ValueType,
    value: Value,
}

fn aggregated(row: AggregateRow, func: AggregateFunc) -> AggregatedReading {
    let integer = row.value_type.is_numeric() && !matches!(row.value_type, ValueType::Float32 | ValueType::Float64);
    let (int64, float64) = (ValueType::Int64, ValueType::Float64);
    let (value_type, value) = match row.value {
        None if func != AggregateFunc::Count => (row.value_type, Value::String(String::new())),
        None => (int64, Value::from(0)),
        Some(v) if func == AggregateFunc::Count || (integer && func != AggregateFunc::Avg) => {
            (int64, Value::from(v.round() as i64))
        }
        Some(v) => (float64, serde_json::Number::from_f64(v).map_or(Value::String(String::new()), Value::Number)),
    };
    AggregatedReading {
        device_name: row.device,
        resource_name: row.resource,
        profile_name: row.profile,
        value_type,
        value,
    }
}

/// Answers the page of readings `filter` selects, or their aggregate when asked.
async fn answer(data: &CoreData, limits: Limits, q: &QueryMap, filter: ReadingFilter) -> ApiResult {
    if let Some(func) = aggregate_func(q)? {
        let rows = data.store().aggregate(&filter, func).await.map_err(store_error)?;
        let readings: Vec<AggregatedReading> = rows.into_iter().map(|r| aggregated(r, func)).collect();
        let name = format!("{func:?}").to_ascii_uppercase();
        return Ok(json(
            200,
            &serde_json::json!({
                "apiVersion": oxedge_contracts::API_VERSION,
                "statusCode": 200,
                "aggregateFunc": name,
                "readings": readings,
            }),
        ));
    }
    let page = page(q, limits)?;
    let (readings, total) = data.store().readings(&filter, page).await.map_err(store_error)?;
    paged("readings", &readings, total, page, q)
}

fn device(name: String) -> ReadingFilter {
    ReadingFilter { device: Some(name), ..Default::default() }
}

fn resource(name: String) -> ReadingFilter {
    ReadingFilter { resources: vec![name], ..Default::default() }
}

async fn all(data: Data, limits: Lim, q: QueryMap) -> ApiResult {
    answer(&data, **limits, &q, ReadingFilter::default()).await
}

async fn count_all(data: Data) -> ApiResult {
    Ok(count(data.store().count_readings(&ReadingFilter::default()).await.map_err(store_error)?))
}

async fn count_by_device(data: Data, name: web::Path<String>) -> ApiResult {
    Ok(count(data.store().count_readings(&device(name.into_inner())).await.map_err(store_error)?))
}

async fn by_device(data: Data, limits: Lim, q: QueryMap, name: web::Path<String>) -> ApiResult {
    answer(&data, **limits, &q, device(name.into_inner())).await
}

async fn by_resource(data: Data, limits: Lim, q: QueryMap, name: web::Path<String>) -> ApiResult {
    answer(&data, **limits, &q, resource(name.into_inner())).await
}

async fn by_device_resource(data: Data, limits: Lim, q: QueryMap, path: web::Path<(String, String)>) -> ApiResult {
    let (d, r) = path.into_inner();
    answer(&data, **limits, &q, ReadingFilter { device: Some(d), ..resource(r) }).await
}

fn timed(filter: ReadingFilter, start: &str, end: &str) -> Result<ReadingFilter, EdgeXError> {
    let (start, end) = time_range(start, end)?;
    Ok(ReadingFilter { start: Some(start), end: Some(end), ..filter })
}

async fn by_time(data: Data, limits: Lim, q: QueryMap, path: web::Path<(String, String)>) -> ApiResult {
    answer(&data, **limits, &q, timed(ReadingFilter::default(), &path.0, &path.1)?).await
}

async fn by_resource_time(
    data: Data,
    limits: Lim,
    q: QueryMap,
    path: web::Path<(String, String, String)>,
) -> ApiResult {
    let (r, start, end) = path.into_inner();
    answer(&data, **limits, &q, timed(resource(r), &start, &end)?).await
}

async fn by_device_resource_time(
    data: Data,
    limits: Lim,
    q: QueryMap,
    path: web::Path<(String, String, String, String)>,
) -> ApiResult {
    let (d, r, start, end) = path.into_inner();
    answer(&data, **limits, &q, timed(ReadingFilter { device: Some(d), ..resource(r) }, &start, &end)?).await
}

/// The optional body of `GET /reading/device/name/{name}/start/{start}/end/{end}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResourceNames {
    #[serde(default)]
    resource_names: Vec<String>,
}

async fn by_device_time(
    data: Data,
    limits: Lim,
    q: QueryMap,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
) -> ApiResult {
    let (d, start, end) = path.into_inner();
    let names: ResourceNames = if body.iter().all(u8::is_ascii_whitespace) {
        ResourceNames::default()
    } else {
        oxedge_contracts::from_json(&body)?
    };
    let filter = ReadingFilter { device: Some(d), resources: names.resource_names, ..Default::default() };
    answer(&data, **limits, &q, timed(filter, &start, &end)?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(vt: ValueType, value: Option<f64>) -> AggregateRow {
        AggregateRow { device: "d".into(), resource: "r".into(), profile: "p".into(), value_type: vt, value }
    }

    #[test]
    fn aggregates_are_typed_as_edgex_types_them() {
        let sum = aggregated(row(ValueType::Int8, Some(75.0)), AggregateFunc::Sum);
        assert_eq!((sum.value_type, sum.value), (ValueType::Int64, Value::from(75)));
        let avg = aggregated(row(ValueType::Int8, Some(75.24)), AggregateFunc::Avg);
        assert_eq!((avg.value_type, avg.value), (ValueType::Float64, Value::from(75.24)));
        let text = aggregated(row(ValueType::String, None), AggregateFunc::Sum);
        assert_eq!((text.value_type, text.value), (ValueType::String, Value::from("")));
        assert!(aggregate_func(&[("aggregateFunc".to_owned(), "median".to_owned())].into()).is_err());
        assert_eq!(
            aggregate_func(&[("aggregateFunc".to_owned(), "avg".to_owned())].into()).unwrap(),
            Some(AggregateFunc::Avg)
        );
    }
}
