//! One conformance suite for every [`EventStore`] backend.
//!
//! Each test is an async function taking the store; the `conformance!` macro at the end runs
//! each one against a real SQLite file in a temporary directory and against a real Redis
//! server under a unique key prefix (found or started by `oxedge_testkit::redis::test_redis`;
//! without one the Redis tests fail, unless `OXEDGE_SKIP_REDIS=1`).
//!
//! Expected answers come from a model: the events a test stored, in storage order, filtered
//! and sorted in plain Rust (newest origin first, later-stored first among equal origins).

use std::sync::Arc;

use oxedge_contracts::{Event, Reading, ValueType};
use oxedge_testkit::redis::{test_redis, TestRedis};
use serde_json::json;

use super::redis::RedisStore;
use super::sqlite::SqliteStore;
use super::{AddOutcome, AggregateFunc, AggregateRow, EventFilter, EventStore, Page, ReadingFilter};

type Store = Arc<dyn EventStore>;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A store under test and what must live as long as it.
struct Harness {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<TestRedis>,
}

impl Harness {
    fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("nested/events.db")).expect("open SQLite store");
        Harness { store: Arc::new(store), _dir: Some(dir), _redis: None }
    }

    /// A Redis store under a fresh prefix, or `None` when `OXEDGE_SKIP_REDIS=1`.
    async fn redis() -> Option<Harness> {
        let redis = test_redis("oxedge:test:data").await?;
        let store = RedisStore::connect_with_prefix(&redis.url, &redis.prefix).await.expect("connect Redis store");
        Some(Harness { store: Arc::new(store), _dir: None, _redis: Some(redis) })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A simple reading.
fn reading(device: &str, resource: &str, origin: i64, value_type: ValueType, value: &str) -> Reading {
    Reading {
        id: uuid(),
        origin,
        device_name: device.to_owned(),
        resource_name: resource.to_owned(),
        profile_name: "prof".to_owned(),
        value_type,
        units: String::new(),
        tags: Default::default(),
        value: Some(value.to_owned()),
        binary_value: None,
        media_type: String::new(),
        object_value: None,
    }
}

/// An event of `device` at `origin` with one Int32 reading per resource.
fn event(device: &str, origin: i64, resources: &[&str]) -> Event {
    let readings = resources.iter().map(|r| reading(device, r, origin, ValueType::Int32, "1")).collect();
    event_of(device, origin, readings)
}

fn event_of(device: &str, origin: i64, readings: Vec<Reading>) -> Event {
    Event {
        api_version: oxedge_contracts::API_VERSION.to_owned(),
        id: uuid(),
        device_name: device.to_owned(),
        profile_name: "prof".to_owned(),
        source_name: "src".to_owned(),
        origin,
        readings,
        tags: Default::default(),
    }
}

async fn add(store: &dyn EventStore, events: &[Event]) {
    let outcome = store.add_events(events).await.expect("add events");
    assert_eq!(outcome, AddOutcome { added: events.len(), duplicates: vec![] });
}

const ALL: Page = Page { offset: 0, limit: u64::MAX };

fn ids<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    items.into_iter().cloned().collect()
}

/// Sorts `(origin, storage position, id)` newest origin first, later-stored first among equal
/// origins, and returns the ids.
fn newest_first(mut items: Vec<(i64, usize, String)>) -> Vec<String> {
    items.sort_by_key(|&(origin, position, _)| std::cmp::Reverse((origin, position)));
    items.into_iter().map(|(_, _, id)| id).collect()
}

fn in_bounds(origin: i64, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| origin >= s) && end.is_none_or(|e| origin <= e)
}

/// The ids of the events of `stored` (in storage order) that `filter` selects, in query order.
fn model_events(stored: &[Event], filter: &EventFilter) -> Vec<String> {
    newest_first(
        stored
            .iter()
            .enumerate()
            .filter(|(_, e)| filter.device.as_ref().is_none_or(|d| *d == e.device_name))
            .filter(|(_, e)| in_bounds(e.origin, filter.start, filter.end))
            .map(|(i, e)| (e.origin, i, e.id.clone()))
            .collect(),
    )
}

/// The ids of the readings of `stored` that `filter` selects, in query order.
fn model_readings(stored: &[Event], filter: &ReadingFilter) -> Vec<String> {
    newest_first(
        stored
            .iter()
            .flat_map(|e| &e.readings)
            .enumerate()
            .filter(|(_, r)| filter.device.as_ref().is_none_or(|d| *d == r.device_name))
            .filter(|(_, r)| filter.resources.is_empty() || filter.resources.contains(&r.resource_name))
            .filter(|(_, r)| in_bounds(r.origin, filter.start, filter.end))
            .map(|(i, r)| (r.origin, i, r.id.clone()))
            .collect(),
    )
}

/// Checks `events`, `count_events` and every page of size 2 against the model.
async fn check_events(store: &dyn EventStore, stored: &[Event], filter: &EventFilter) {
    let expected = model_events(stored, filter);
    let (events, total) = store.events(filter, ALL).await.expect("events");
    assert_eq!(ids(events.iter().map(|e| &e.id)), expected, "events of {filter:?}");
    assert_eq!(total, expected.len() as u64, "total of {filter:?}");
    assert_eq!(store.count_events(filter).await.expect("count"), expected.len() as u64, "count of {filter:?}");
    for offset in (0..expected.len() + 2).step_by(2) {
        let (events, total) = store.events(filter, Page { offset: offset as u64, limit: 2 }).await.expect("page");
        let want: Vec<String> = expected.iter().skip(offset).take(2).cloned().collect();
        assert_eq!(ids(events.iter().map(|e| &e.id)), want, "page at {offset} of {filter:?}");
        assert_eq!(total, expected.len() as u64, "total of a page of {filter:?}");
    }
}

/// Checks `readings`, `count_readings` and every page of size 3 against the model.
async fn check_readings(store: &dyn EventStore, stored: &[Event], filter: &ReadingFilter) {
    let expected = model_readings(stored, filter);
    let (readings, total) = store.readings(filter, ALL).await.expect("readings");
    assert_eq!(ids(readings.iter().map(|r| &r.id)), expected, "readings of {filter:?}");
    assert_eq!(total, expected.len() as u64, "total of {filter:?}");
    assert_eq!(store.count_readings(filter).await.expect("count"), expected.len() as u64, "count of {filter:?}");
    for offset in (0..expected.len() + 3).step_by(3) {
        let (readings, total) = store.readings(filter, Page { offset: offset as u64, limit: 3 }).await.expect("page");
        let want: Vec<String> = expected.iter().skip(offset).take(3).cloned().collect();
        assert_eq!(ids(readings.iter().map(|r| &r.id)), want, "page at {offset} of {filter:?}");
        assert_eq!(total, expected.len() as u64, "total of a page of {filter:?}");
    }
}

/// Every device filter, `start`/`end` among `bounds`, combined.
fn event_filters(devices: &[&str], bounds: &[i64]) -> Vec<EventFilter> {
    let devices = std::iter::once(None).chain(devices.iter().map(|d| Some((*d).to_owned())));
    let bounds: Vec<Option<i64>> = std::iter::once(None).chain(bounds.iter().copied().map(Some)).collect();
    let mut filters = Vec::new();
    for device in devices {
        for start in &bounds {
            for end in &bounds {
                filters.push(EventFilter { device: device.clone(), start: *start, end: *end });
            }
        }
    }
    filters
}

async fn assert_empty(store: &dyn EventStore) {
    assert_eq!(store.count_events(&EventFilter::default()).await.unwrap(), 0);
    assert_eq!(store.count_readings(&ReadingFilter::default()).await.unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn an_event_with_every_kind_of_value_reads_back_unchanged(store: Store) {
    let t = 1_700_000_000_123_456_789;
    let mut readings: Vec<Reading> = ValueType::ALL
        .iter()
        .map(|vt| {
            let value = match vt {
                ValueType::Bool => "true",
                ValueType::String => "héllo, \"world\" 'quoted' % * :",
                ValueType::Float32 | ValueType::Float64 => "-39.50",
                ValueType::BoolArray => "[true, false]",
                ValueType::StringArray => r#"["a","b c"]"#,
                ValueType::Float32Array | ValueType::Float64Array => "[1.5, -2]",
                vt if vt.as_str().ends_with("Array") => "[1, 2, 3]",
                _ => "42",
            };
            reading("dev", vt.as_str(), t, *vt, value)
        })
        .collect();
    for r in &mut readings {
        match r.value_type {
            ValueType::Binary => {
                r.value = None;
                r.binary_value = Some(vec![0, 1, 2, 255, 254, b'\n', 0]);
                r.media_type = "application/octet-stream".into();
            }
            ValueType::Object => {
                r.value = None;
                r.object_value = Some(json!({"a": 1, "b": [true, null, "x"], "c": {"d": 1.5}}));
            }
            ValueType::ObjectArray => {
                r.value = None;
                r.object_value = Some(json!([{"a": 1}, {"b": "ü"}]));
            }
            _ => {}
        }
    }
    readings[0].units = "°C".into();
    readings[0].tags = json!({"site": "b1", "nested": {"n": [1, 2]}}).as_object().unwrap().clone();
    readings[1].id = "not-a-uuid: 'x' %".into();
    readings[2].id = uuid().to_uppercase();
    readings[3].id = String::new();
    readings[4].origin = t + 1;
    readings[4].device_name = "other".into();
    readings[4].profile_name = "other-prof".into();
    let mut e = event_of("dev", t, readings);
    e.tags = json!({"gateway": "g1", "n": 1}).as_object().unwrap().clone();
    add(&*store, std::slice::from_ref(&e)).await;

    assert_eq!(store.event(&e.id).await.unwrap(), Some(e.clone()));
    let (events, total) = store.events(&EventFilter::default(), ALL).await.unwrap();
    assert_eq!((events, total), (vec![e.clone()], 1));
    let (mut got, total) = store.readings(&ReadingFilter::default(), ALL).await.unwrap();
    assert_eq!(total, e.readings.len() as u64);
    let mut want = e.readings.clone();
    got.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    want.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    assert_eq!(got, want);
}

async fn an_unknown_event_id_reads_as_none_and_deletes_as_false(store: Store) {
    add(&*store, &[event("d", 1, &["r"])]).await;
    assert_eq!(store.event(&uuid()).await.unwrap(), None);
    assert_eq!(store.event("no such id").await.unwrap(), None);
    assert!(!store.delete_event(&uuid()).await.unwrap());
    assert_eq!(store.count_events(&EventFilter::default()).await.unwrap(), 1);
}

async fn redelivered_events_are_skipped_and_reported_not_doubled(store: Store) {
    let a = event("d", 1, &["r1", "r2"]);
    let b = event("d", 2, &["r1", "r2"]);
    let c = event("d", 3, &["r1", "r2"]);
    add(&*store, &[a.clone(), b.clone()]).await;

    // A redelivered event carries the same id, perhaps different content: the first one stays.
    let mut b_again = event("other", 9, &["x"]);
    b_again.id = b.id.clone();
    let outcome = store.add_events(&[b_again, c.clone(), c.clone(), a.clone()]).await.unwrap();
    assert_eq!(outcome, AddOutcome { added: 1, duplicates: vec![b.id.clone(), c.id.clone(), a.id.clone()] });

    assert_eq!(store.event(&b.id).await.unwrap(), Some(b.clone()));
    check_events(&*store, &[a.clone(), b.clone(), c.clone()], &EventFilter::default()).await;
    check_readings(&*store, &[a, b, c], &ReadingFilter::default()).await;
    assert_eq!(
        store.count_events(&EventFilter { device: Some("other".into()), ..Default::default() }).await.unwrap(),
        0
    );
}

async fn an_empty_batch_adds_nothing(store: Store) {
    assert_eq!(store.add_events(&[]).await.unwrap(), AddOutcome::default());
    assert_empty(&*store).await;
}

async fn events_filter_by_device_and_inclusive_time_bounds_newest_first_with_paging(store: Store) {
    let mut stored = Vec::new();
    for (i, origin) in [10, 20, 20, 30, 40, 40, 40, 50].into_iter().enumerate() {
        let device = if i % 3 == 0 { "d1" } else { "d2" };
        stored.push(event(device, origin, &["r"]));
    }
    // Stored in two batches, the second one out of origin order.
    add(&*store, &stored[..4]).await;
    stored[4..].reverse();
    add(&*store, &stored[4..]).await;
    for filter in event_filters(&["d1", "d2", "d3"], &[9, 10, 20, 40, 51]) {
        check_events(&*store, &stored, &filter).await;
    }
}

async fn readings_filter_by_device_resources_and_inclusive_time_bounds_newest_first_with_paging(store: Store) {
    let mut stored = Vec::new();
    for (i, origin) in [100, 200, 200, 300, 300, 400].into_iter().enumerate() {
        let device = if i % 2 == 0 { "d1" } else { "d2" };
        let mut e = event(device, origin, &["r1", "r2", "r3"]);
        // One reading taken later than its event.
        e.readings[2].origin = origin + 50;
        stored.push(e);
    }
    add(&*store, &stored).await;
    let resource_lists: [&[&str]; 5] = [&[], &["r1"], &["r2", "r3"], &["r1", "nope"], &["nope"]];
    for base in event_filters(&["d1", "d2", "d9"], &[100, 250, 300, 350]) {
        for resources in resource_lists {
            let filter = ReadingFilter {
                device: base.device.clone(),
                resources: resources.iter().map(|r| (*r).to_owned()).collect(),
                start: base.start,
                end: base.end,
            };
            check_readings(&*store, &stored, &filter).await;
        }
    }
}

async fn paging_keeps_a_stable_order_among_equal_origins(store: Store) {
    let stored: Vec<Event> = (0..7).map(|_| event("d", 5, &["a", "b"])).collect();
    for e in &stored {
        add(&*store, std::slice::from_ref(e)).await;
    }
    check_events(&*store, &stored, &EventFilter::default()).await;
    check_readings(&*store, &stored, &ReadingFilter::default()).await;
    check_readings(&*store, &stored, &ReadingFilter { resources: vec!["a".into(), "b".into()], ..Default::default() })
        .await;
    let (page, total) = store.events(&EventFilter::default(), Page { offset: 100, limit: 10 }).await.unwrap();
    assert_eq!((page.len(), total), (0, 7));
    let (page, total) = store.readings(&ReadingFilter::default(), Page { offset: 0, limit: 0 }).await.unwrap();
    assert_eq!((page.len(), total), (0, 14));
}

async fn aggregates_compute_each_function_per_device_resource_and_profile(store: Store) {
    let num =
        |device: &str, resource: &str, origin: i64, vt: ValueType, v: &str| reading(device, resource, origin, vt, v);
    let e1 = event_of(
        "d1",
        10,
        vec![
            num("d1", "temp", 10, ValueType::Float64, "1.5"),
            num("d1", "count", 10, ValueType::Int32, "-4"),
            num("d1", "label", 10, ValueType::String, "7"),
            num("d1", "on", 10, ValueType::Bool, "true"),
        ],
    );
    let e2 = event_of(
        "d1",
        20,
        vec![num("d1", "temp", 20, ValueType::Float64, "2.5"), num("d1", "count", 20, ValueType::Int32, "10")],
    );
    let e3 = event_of("d2", 30, vec![num("d2", "temp", 30, ValueType::Float64, "-8")]);
    let mut e4 = event_of("d0", 40, vec![num("d0", "temp", 40, ValueType::Uint8, "4")]);
    e4.readings[0].profile_name = "p2".into();
    add(&*store, &[e1, e2, e3, e4]).await;

    let row = |device: &str, resource: &str, profile: &str, value_type, value| AggregateRow {
        device: device.into(),
        resource: resource.into(),
        profile: profile.into(),
        value_type,
        value,
    };
    let all = ReadingFilter::default();
    let cases = [
        (AggregateFunc::Min, [Some(4.0), Some(-4.0), None, None, Some(1.5), Some(-8.0)]),
        (AggregateFunc::Max, [Some(4.0), Some(10.0), None, None, Some(2.5), Some(-8.0)]),
        (AggregateFunc::Count, [Some(1.0), Some(2.0), None, None, Some(2.0), Some(1.0)]),
        (AggregateFunc::Sum, [Some(4.0), Some(6.0), None, None, Some(4.0), Some(-8.0)]),
        (AggregateFunc::Avg, [Some(4.0), Some(3.0), None, None, Some(2.0), Some(-8.0)]),
    ];
    for (func, values) in cases {
        let want = vec![
            row("d0", "temp", "p2", ValueType::Uint8, values[0]),
            row("d1", "count", "prof", ValueType::Int32, values[1]),
            row("d1", "label", "prof", ValueType::String, values[2]),
            row("d1", "on", "prof", ValueType::Bool, values[3]),
            row("d1", "temp", "prof", ValueType::Float64, values[4]),
            row("d2", "temp", "prof", ValueType::Float64, values[5]),
        ];
        assert_eq!(store.aggregate(&all, func).await.unwrap(), want, "{func:?}");
    }

    let filter =
        ReadingFilter { device: Some("d1".into()), resources: vec!["temp".into()], start: Some(11), end: None };
    let want = vec![row("d1", "temp", "prof", ValueType::Float64, Some(2.5))];
    assert_eq!(store.aggregate(&filter, AggregateFunc::Sum).await.unwrap(), want);
    let filter = ReadingFilter { start: Some(41), ..Default::default() };
    assert_eq!(store.aggregate(&filter, AggregateFunc::Max).await.unwrap(), vec![]);
}

async fn deleting_an_event_removes_it_and_its_readings_and_nothing_else(store: Store) {
    let stored = vec![event("d", 1, &["a", "b"]), event("d", 2, &["a", "b"]), event("d", 3, &["a"])];
    add(&*store, &stored).await;
    assert!(store.delete_event(&stored[1].id).await.unwrap());
    assert!(!store.delete_event(&stored[1].id).await.unwrap());
    assert_eq!(store.event(&stored[1].id).await.unwrap(), None);
    let left = [stored[0].clone(), stored[2].clone()];
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter { resources: vec!["b".into()], ..Default::default() }).await;
    assert_eq!(store.event(&stored[2].id).await.unwrap(), Some(stored[2].clone()));
}

async fn deleting_by_device_goes_oldest_first_in_batches_and_touches_no_other_device(store: Store) {
    let mut stored = Vec::new();
    for origin in [50, 10, 40, 20, 30] {
        stored.push(event("gone", origin, &["a", "b"]));
        stored.push(event("kept", origin, &["a", "b"]));
    }
    add(&*store, &stored).await;
    let filter = EventFilter { device: Some("gone".into()), ..Default::default() };
    assert_eq!(store.delete_events(&filter, 2).await.unwrap(), 2);
    let left: Vec<Event> = stored.iter().filter(|e| e.device_name == "kept" || e.origin > 20).cloned().collect();
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter { resources: vec!["a".into()], ..Default::default() }).await;

    assert_eq!(store.delete_events(&filter, 2).await.unwrap(), 2);
    assert_eq!(store.delete_events(&filter, 2).await.unwrap(), 1);
    assert_eq!(store.delete_events(&filter, 2).await.unwrap(), 0);
    let left: Vec<Event> = stored.iter().filter(|e| e.device_name == "kept").cloned().collect();
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter { device: Some("gone".into()), ..Default::default() }).await;
}

async fn deleting_by_age_removes_events_up_to_the_inclusive_bound_in_batches(store: Store) {
    let stored: Vec<Event> = [30, 10, 20, 20, 40, 50]
        .into_iter()
        .enumerate()
        .map(|(i, o)| event(&format!("d{}", i % 2), o, &["r"]))
        .collect();
    add(&*store, &stored).await;
    let old = EventFilter { end: Some(20), start: Some(15), ..Default::default() };
    assert_eq!(store.delete_events(&old, 2).await.unwrap(), 2);
    assert_eq!(store.delete_events(&old, 2).await.unwrap(), 1);
    assert_eq!(store.delete_events(&old, 2).await.unwrap(), 0);
    let left: Vec<Event> = stored.iter().filter(|e| e.origin > 20).cloned().collect();
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter::default()).await;

    let old_of_d0 = EventFilter { device: Some("d0".into()), end: Some(50), start: None };
    assert_eq!(store.delete_events(&old_of_d0, 100).await.unwrap(), 2);
    let left: Vec<Event> = left.into_iter().filter(|e| e.device_name == "d1").collect();
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter::default()).await;
}

async fn trimming_deletes_the_earliest_stored_events_beyond_the_newest_kept(store: Store) {
    // Storage order differs from origin order: trimming follows storage order.
    let stored: Vec<Event> = [5, 1, 4, 2, 3, 9, 0].into_iter().map(|o| event("d", o, &["r", "s"])).collect();
    for e in &stored {
        add(&*store, std::slice::from_ref(e)).await;
    }
    assert_eq!(store.trim_events(3, 2).await.unwrap(), 2);
    check_events(&*store, &stored[2..], &EventFilter::default()).await;
    assert_eq!(store.trim_events(3, 10).await.unwrap(), 2);
    assert_eq!(store.trim_events(3, 10).await.unwrap(), 0);
    check_events(&*store, &stored[4..], &EventFilter::default()).await;
    check_readings(&*store, &stored[4..], &ReadingFilter::default()).await;
    assert_eq!(store.trim_events(10, 10).await.unwrap(), 0);
    assert_eq!(store.trim_events(0, 10).await.unwrap(), 3);
    assert_empty(&*store).await;
}

async fn a_batch_of_ten_thousand_readings_is_stored_in_one_call(store: Store) {
    let resources: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
    let stored: Vec<Event> = (0..1000).map(|i| event(&format!("d{}", i % 7), 1_000 + i, &resources)).collect();
    add(&*store, &stored).await;
    assert_eq!(store.count_readings(&ReadingFilter::default()).await.unwrap(), 10_000);
    let filter = ReadingFilter { device: Some("d3".into()), resources: vec!["r7".into()], ..Default::default() };
    let (page, total) = store.readings(&filter, Page { offset: 5, limit: 20 }).await.unwrap();
    let expected = model_readings(&stored, &filter);
    assert_eq!(total, expected.len() as u64);
    assert_eq!(ids(page.iter().map(|r| &r.id)), expected[5..25].to_vec());
    assert_eq!(store.delete_events(&EventFilter::default(), 10_000).await.unwrap(), 1000);
    assert_empty(&*store).await;
}

async fn hostile_names_match_exactly_and_stay_apart(store: Store) {
    let names = [
        "a",
        "a:b",
        "a:b:c",
        ":",
        "a*",
        "*",
        "%",
        "a%",
        "_",
        "it's",
        "say \"hi\"",
        "[x]",
        "(y",
        "-",
        "+",
        "\\",
        "ünï😀",
        "a b",
        "{p}",
        "x\u{0}y",
    ];
    let mut stored = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut e = event(n, i as i64 + 1, &[n, "plain"]);
        e.id = format!("id {n}");
        e.source_name = (*n).to_owned();
        e.profile_name = (*n).to_owned();
        stored.push(e);
    }
    add(&*store, &stored).await;
    for e in &stored {
        assert_eq!(store.event(&e.id).await.unwrap().as_ref(), Some(e), "event {:?}", e.id);
    }
    for n in names {
        let device = EventFilter { device: Some(n.into()), ..Default::default() };
        check_events(&*store, &stored, &device).await;
        let filter = ReadingFilter { resources: vec![n.into()], ..Default::default() };
        check_readings(&*store, &stored, &filter).await;
        let filter = ReadingFilter { device: Some(n.into()), resources: vec!["plain".into()], ..Default::default() };
        check_readings(&*store, &stored, &filter).await;
    }
    assert!(store.delete_event("id a:b").await.unwrap());
    assert_eq!(
        store.delete_events(&EventFilter { device: Some("*".into()), ..Default::default() }, 10).await.unwrap(),
        1
    );
    let left: Vec<Event> = stored.into_iter().filter(|e| e.device_name != "a:b" && e.device_name != "*").collect();
    check_events(&*store, &left, &EventFilter::default()).await;
    check_readings(&*store, &left, &ReadingFilter::default()).await;
}

async fn reads_and_writes_run_concurrently_and_all_complete(store: Store) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let batch: Vec<Event> = (0..20).map(|j| event(&format!("d{i}"), j, &["a", "b"])).collect();
                add(&*store, &batch).await;
                let filter = ReadingFilter { device: Some(format!("d{i}")), ..Default::default() };
                assert_eq!(store.count_readings(&filter).await.unwrap(), 40);
                store.events(&EventFilter::default(), Page { offset: 0, limit: 20 }).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(store.count_events(&EventFilter::default()).await.unwrap(), 160);
}

async fn ping_answers(store: Store) {
    store.ping().await.unwrap();
}

/// Runs every listed test against each backend.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let harness = super::Harness::sqlite();
                    super::$test(harness.store.clone()).await;
                }
            )*
        }
        mod redis_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(harness) = super::Harness::redis().await else { return };
                    super::$test(harness.store.clone()).await;
                }
            )*
        }
    };
}

conformance!(
    an_event_with_every_kind_of_value_reads_back_unchanged,
    an_unknown_event_id_reads_as_none_and_deletes_as_false,
    redelivered_events_are_skipped_and_reported_not_doubled,
    an_empty_batch_adds_nothing,
    events_filter_by_device_and_inclusive_time_bounds_newest_first_with_paging,
    readings_filter_by_device_resources_and_inclusive_time_bounds_newest_first_with_paging,
    paging_keeps_a_stable_order_among_equal_origins,
    aggregates_compute_each_function_per_device_resource_and_profile,
    deleting_an_event_removes_it_and_its_readings_and_nothing_else,
    deleting_by_device_goes_oldest_first_in_batches_and_touches_no_other_device,
    deleting_by_age_removes_events_up_to_the_inclusive_bound_in_batches,
    trimming_deletes_the_earliest_stored_events_beyond_the_newest_kept,
    a_batch_of_ten_thousand_readings_is_stored_in_one_call,
    hostile_names_match_exactly_and_stay_apart,
    reads_and_writes_run_concurrently_and_all_complete,
    ping_answers,
);
