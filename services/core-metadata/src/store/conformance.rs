//! One conformance suite for every [`MetadataStore`] backend.
//!
//! Each test is an async function taking the store; the `conformance!` macro at the end runs
//! each one against a real SQLite file in a temporary directory and against a real Redis
//! server (under a unique key prefix). The Redis server is `OXEDGE_TEST_REDIS_URL` if set,
//! else one answering on `redis://127.0.0.1:6379`, else a `redis-server` this suite starts on
//! a free loopback port and stops when the last test using it ends. Without any, the Redis
//! tests fail — unless `OXEDGE_SKIP_REDIS=1`.

use std::sync::Arc;

use oxedge_testkit::redis::{test_redis, TestRedis};

use super::redis::RedisStore;
use super::sqlite::SqliteStore;
use super::{Filter, Kind, MetadataStore, Page, Record, StoreError};

type Store = Arc<dyn MetadataStore>;

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
        let store = SqliteStore::open(&dir.path().join("nested/metadata.db")).expect("open SQLite store");
        Harness { store: Arc::new(store), _dir: Some(dir), _redis: None }
    }

    /// A Redis store under a fresh prefix, or `None` when `OXEDGE_SKIP_REDIS=1`.
    async fn redis() -> Option<Harness> {
        let redis = test_redis("oxedge:test").await?;
        let store = RedisStore::connect_with_prefix(&redis.url, &redis.prefix).await.expect("connect Redis store");
        Some(Harness { store: Arc::new(store), _dir: None, _redis: Some(redis) })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn rec(name: &str, created: i64) -> Record {
    Record {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created,
        body: serde_json::json!({ "name": name, "created": created }).to_string(),
        ..Record::default()
    }
}

fn device(name: &str, created: i64, service: &str, profile: &str) -> Record {
    Record { service: Some(service.to_owned()), profile: Some(profile.to_owned()), ..rec(name, created) }
}

fn device_requires(r: &Record) -> Vec<(Kind, String)> {
    let mut req = Vec::new();
    if let Some(s) = &r.service {
        req.push((Kind::Service, s.clone()));
    }
    if let Some(p) = &r.profile {
        req.push((Kind::Profile, p.clone()));
    }
    if let Some(p) = &r.parent {
        req.push((Kind::Device, p.clone()));
    }
    req
}

/// Adds service `svc` and profile `prof`.
async fn seed(store: &dyn MetadataStore) {
    store.insert(Kind::Service, rec("svc", 1), vec![]).await.expect("insert service");
    store.insert(Kind::Profile, rec("prof", 1), vec![]).await.expect("insert profile");
}

async fn add_device(store: &dyn MetadataStore, r: Record) -> Record {
    store.insert(Kind::Device, r.clone(), device_requires(&r)).await.expect("insert device");
    r
}

const ALL: Page = Page { offset: 0, limit: None };

async fn names(store: &dyn MetadataStore, kind: Kind, filter: Filter) -> Vec<String> {
    let (records, total) = store.query(kind, &filter, ALL).await.expect("query");
    assert_eq!(total, records.len() as u64, "total count of an unpaged query");
    records.into_iter().map(|r| r.name).collect()
}

fn in_use(kind: Kind, name: &str, by: &str) -> StoreError {
    StoreError::InUse { kind, name: name.to_owned(), by: by.to_owned() }
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn an_inserted_record_reads_back_unchanged_by_name_and_by_id(store: Store) {
    seed(&*store).await;
    let r = Record {
        labels: vec!["a".into(), "b c".into()],
        parent: None,
        manufacturer: Some("".into()),
        model: Some("m1".into()),
        body: r#"{"name":"d1","x":[1,2,{"y":"ü"}]}"#.into(),
        ..device("d1", 42, "svc", "prof")
    };
    add_device(&*store, r.clone()).await;
    assert_eq!(store.get_by_name(Kind::Device, "d1").await.unwrap(), Some(r.clone()));
    assert_eq!(store.get_by_id(Kind::Device, &r.id).await.unwrap(), Some(r));
}

async fn reading_an_unknown_name_or_id_answers_none(store: Store) {
    assert_eq!(store.get_by_name(Kind::Device, "nope").await.unwrap(), None);
    assert_eq!(store.get_by_id(Kind::Device, "nope").await.unwrap(), None);
}

async fn kinds_are_separate_namespaces(store: Store) {
    let s = rec("same", 1);
    let p = Record { id: s.id.clone(), ..rec("same", 2) };
    store.insert(Kind::Service, s.clone(), vec![]).await.unwrap();
    store.insert(Kind::Profile, p.clone(), vec![]).await.unwrap();
    assert_eq!(store.get_by_name(Kind::Service, "same").await.unwrap(), Some(s));
    assert_eq!(store.get_by_name(Kind::Profile, "same").await.unwrap(), Some(p));
    assert_eq!(store.get_by_name(Kind::Device, "same").await.unwrap(), None);
}

async fn inserting_a_duplicate_name_answers_duplicate(store: Store) {
    let first = rec("svc", 1);
    store.insert(Kind::Service, first.clone(), vec![]).await.unwrap();
    let err = store.insert(Kind::Service, rec("svc", 2), vec![]).await.unwrap_err();
    assert_eq!(err, StoreError::Duplicate { kind: Kind::Service, name: "svc".into() });
    assert_eq!(store.get_by_name(Kind::Service, "svc").await.unwrap(), Some(first));
}

async fn inserting_a_duplicate_id_answers_duplicate(store: Store) {
    let first = rec("one", 1);
    store.insert(Kind::Service, first.clone(), vec![]).await.unwrap();
    let again = Record { id: first.id.clone(), ..rec("two", 2) };
    let err = store.insert(Kind::Service, again, vec![]).await.unwrap_err();
    assert_eq!(err, StoreError::Duplicate { kind: Kind::Service, name: first.id.clone() });
    assert_eq!(store.get_by_name(Kind::Service, "two").await.unwrap(), None);
    assert_eq!(store.get_by_id(Kind::Service, &first.id).await.unwrap(), Some(first));
}

async fn inserting_a_record_that_requires_a_missing_one_answers_not_found_and_writes_nothing(store: Store) {
    store.insert(Kind::Service, rec("svc", 1), vec![]).await.unwrap();
    let d = device("d1", 1, "svc", "ghost");
    let err = store.insert(Kind::Device, d.clone(), device_requires(&d)).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Profile, name: "ghost".into() });
    assert_eq!(store.get_by_name(Kind::Device, "d1").await.unwrap(), None);
    assert_eq!(store.get_by_id(Kind::Device, &d.id).await.unwrap(), None);
    assert!(names(&*store, Kind::Device, Filter::default()).await.is_empty());
    assert!(names(&*store, Kind::Device, Filter { service: Some("svc".into()), ..Filter::default() }).await.is_empty());
    // Nothing half-written blocks the service either.
    store.delete_by_name(Kind::Service, "svc").await.unwrap();
}

async fn requirements_are_checked_before_uniqueness(store: Store) {
    seed(&*store).await;
    add_device(&*store, device("d1", 1, "svc", "prof")).await;
    let d = device("d1", 2, "svc", "ghost");
    let err = store.insert(Kind::Device, d.clone(), device_requires(&d)).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Profile, name: "ghost".into() });
}

async fn updating_a_record_replaces_it_and_its_indexes(store: Store) {
    seed(&*store).await;
    store.insert(Kind::Service, rec("svc2", 2), vec![]).await.unwrap();
    let d = add_device(&*store, Record { labels: vec!["old".into()], ..device("d1", 5, "svc", "prof") }).await;
    let new = Record { labels: vec!["new".into()], body: r#"{"name":"d2"}"#.into(), ..device("d2", 5, "svc2", "prof") };
    let new = Record { id: d.id.clone(), ..new };
    store.update(Kind::Device, new.clone(), device_requires(&new)).await.unwrap();

    assert_eq!(store.get_by_id(Kind::Device, &d.id).await.unwrap(), Some(new.clone()));
    assert_eq!(store.get_by_name(Kind::Device, "d2").await.unwrap(), Some(new));
    assert_eq!(store.get_by_name(Kind::Device, "d1").await.unwrap(), None);
    let by = |f: Filter| names(&*store, Kind::Device, f);
    assert!(by(Filter { service: Some("svc".into()), ..Filter::default() }).await.is_empty());
    assert_eq!(by(Filter { service: Some("svc2".into()), ..Filter::default() }).await, ["d2"]);
    assert!(by(Filter { labels: vec!["old".into()], ..Filter::default() }).await.is_empty());
    assert_eq!(by(Filter { labels: vec!["new".into()], ..Filter::default() }).await, ["d2"]);
    // The old name is free again, and the old service no longer in use.
    add_device(&*store, device("d1", 6, "svc2", "prof")).await;
    store.delete_by_name(Kind::Service, "svc").await.unwrap();
}

async fn updating_an_unknown_id_answers_not_found(store: Store) {
    let r = rec("svc", 1);
    let err = store.update(Kind::Service, r.clone(), vec![]).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Service, name: r.id });
    assert_eq!(store.get_by_name(Kind::Service, "svc").await.unwrap(), None);
}

async fn updating_with_a_missing_requirement_answers_not_found_and_changes_nothing(store: Store) {
    seed(&*store).await;
    let d = add_device(&*store, device("d1", 1, "svc", "prof")).await;
    let changed = Record { id: d.id.clone(), ..device("d1", 1, "ghost", "prof") };
    let err = store.update(Kind::Device, changed.clone(), device_requires(&changed)).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Service, name: "ghost".into() });
    assert_eq!(store.get_by_id(Kind::Device, &d.id).await.unwrap(), Some(d));
}

async fn renaming_onto_an_existing_name_answers_duplicate(store: Store) {
    let a = rec("a", 1);
    let b = rec("b", 2);
    store.insert(Kind::Profile, a.clone(), vec![]).await.unwrap();
    store.insert(Kind::Profile, b.clone(), vec![]).await.unwrap();
    let renamed = Record { id: a.id.clone(), ..rec("b", 1) };
    let err = store.update(Kind::Profile, renamed, vec![]).await.unwrap_err();
    assert_eq!(err, StoreError::Duplicate { kind: Kind::Profile, name: "b".into() });
    assert_eq!(store.get_by_id(Kind::Profile, &a.id).await.unwrap(), Some(a));
    assert_eq!(store.get_by_name(Kind::Profile, "b").await.unwrap(), Some(b));
}

async fn renaming_a_referenced_record_answers_in_use(store: Store) {
    seed(&*store).await;
    let parent = add_device(&*store, device("parent", 1, "svc", "prof")).await;
    add_device(&*store, Record { parent: Some("parent".into()), ..device("child", 2, "svc", "prof") }).await;

    let svc = store.get_by_name(Kind::Service, "svc").await.unwrap().unwrap();
    let err = store.update(Kind::Service, Record { name: "svc2".into(), ..svc.clone() }, vec![]).await.unwrap_err();
    assert_eq!(err, in_use(Kind::Service, "svc", "device 'parent'"));

    let prof = store.get_by_name(Kind::Profile, "prof").await.unwrap().unwrap();
    let err = store.update(Kind::Profile, Record { name: "prof2".into(), ..prof }, vec![]).await.unwrap_err();
    assert_eq!(err, in_use(Kind::Profile, "prof", "device 'parent'"));

    let renamed = Record { name: "parent2".into(), ..parent.clone() };
    let err = store.update(Kind::Device, renamed, device_requires(&parent)).await.unwrap_err();
    assert_eq!(err, in_use(Kind::Device, "parent", "device 'child'"));
    assert_eq!(store.get_by_id(Kind::Device, &parent.id).await.unwrap(), Some(parent));

    // Keeping the name while changing the rest is fine.
    let body = Record { body: r#"{"changed":true}"#.into(), ..svc };
    store.update(Kind::Service, body.clone(), vec![]).await.unwrap();
    assert_eq!(store.get_by_name(Kind::Service, "svc").await.unwrap(), Some(body));
}

async fn deleting_a_service_in_use_answers_in_use(store: Store) {
    seed(&*store).await;
    let w = Record { service: Some("svc".into()), ..rec("w1", 1) };
    store.insert(Kind::Watcher, w, vec![(Kind::Service, "svc".into())]).await.unwrap();
    let err = store.delete_by_name(Kind::Service, "svc").await.unwrap_err();
    assert_eq!(err, in_use(Kind::Service, "svc", "provision watcher 'w1'"));
    // Devices are named before watchers.
    add_device(&*store, device("d1", 9, "svc", "prof")).await;
    let svc = store.get_by_name(Kind::Service, "svc").await.unwrap().expect("service still there");
    let err = store.delete_by_id(Kind::Service, &svc.id).await.unwrap_err();
    assert_eq!(err, in_use(Kind::Service, "svc", "device 'd1'"));
    assert_eq!(store.get_by_name(Kind::Service, "svc").await.unwrap(), Some(svc));
}

async fn deleting_a_profile_in_use_answers_in_use(store: Store) {
    seed(&*store).await;
    add_device(&*store, device("d2", 2, "svc", "prof")).await;
    add_device(&*store, device("d1", 2, "svc", "prof")).await;
    let err = store.delete_by_name(Kind::Profile, "prof").await.unwrap_err();
    assert_eq!(err, in_use(Kind::Profile, "prof", "device 'd1'"));
    assert!(store.get_by_name(Kind::Profile, "prof").await.unwrap().is_some());

    let w = Record { profile: Some("prof2".into()), ..rec("w1", 1) };
    store.insert(Kind::Profile, rec("prof2", 3), vec![]).await.unwrap();
    store.insert(Kind::Watcher, w, vec![(Kind::Profile, "prof2".into())]).await.unwrap();
    let err = store.delete_by_name(Kind::Profile, "prof2").await.unwrap_err();
    assert_eq!(err, in_use(Kind::Profile, "prof2", "provision watcher 'w1'"));
}

async fn deleting_a_parent_device_answers_in_use(store: Store) {
    seed(&*store).await;
    add_device(&*store, device("parent", 1, "svc", "prof")).await;
    add_device(&*store, Record { parent: Some("parent".into()), ..device("child", 2, "svc", "prof") }).await;
    let err = store.delete_by_name(Kind::Device, "parent").await.unwrap_err();
    assert_eq!(err, in_use(Kind::Device, "parent", "device 'child'"));
    assert!(store.get_by_name(Kind::Device, "parent").await.unwrap().is_some());
    // A child goes first; then the parent may.
    store.delete_by_name(Kind::Device, "child").await.unwrap();
    store.delete_by_name(Kind::Device, "parent").await.unwrap();
}

async fn deleting_the_last_referrer_frees_the_referenced_record(store: Store) {
    seed(&*store).await;
    let d = add_device(&*store, device("d1", 1, "svc", "prof")).await;
    assert!(store.delete_by_name(Kind::Service, "svc").await.is_err());
    store.delete_by_id(Kind::Device, &d.id).await.unwrap();
    store.delete_by_name(Kind::Service, "svc").await.unwrap();
    store.delete_by_name(Kind::Profile, "prof").await.unwrap();
}

async fn deleting_returns_the_record_and_removes_it_everywhere(store: Store) {
    seed(&*store).await;
    let a = add_device(&*store, Record { labels: vec!["l".into()], ..device("a", 1, "svc", "prof") }).await;
    let b = add_device(&*store, Record { labels: vec!["l".into()], ..device("b", 2, "svc", "prof") }).await;
    assert_eq!(store.delete_by_name(Kind::Device, "a").await.unwrap(), a);
    assert_eq!(store.delete_by_id(Kind::Device, &b.id).await.unwrap(), b);
    for r in [&a, &b] {
        assert_eq!(store.get_by_name(Kind::Device, &r.name).await.unwrap(), None);
        assert_eq!(store.get_by_id(Kind::Device, &r.id).await.unwrap(), None);
    }
    assert!(names(&*store, Kind::Device, Filter::default()).await.is_empty());
    assert!(names(&*store, Kind::Device, Filter { labels: vec!["l".into()], ..Filter::default() }).await.is_empty());
    // The name and id are free again.
    store.insert(Kind::Device, a.clone(), device_requires(&a)).await.unwrap();
}

async fn deleting_an_unknown_record_answers_not_found(store: Store) {
    let err = store.delete_by_name(Kind::Device, "ghost").await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Device, name: "ghost".into() });
    let err = store.delete_by_id(Kind::Watcher, "no-such-id").await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { kind: Kind::Watcher, name: "no-such-id".into() });
}

async fn querying_filters_by_service_profile_parent_manufacturer_and_model(store: Store) {
    seed(&*store).await;
    store.insert(Kind::Service, rec("svc2", 1), vec![]).await.unwrap();
    store.insert(Kind::Profile, rec("prof2", 1), vec![]).await.unwrap();
    add_device(&*store, device("d1", 1, "svc", "prof")).await;
    add_device(&*store, device("d2", 2, "svc2", "prof")).await;
    add_device(&*store, Record { parent: Some("d1".into()), ..device("d3", 3, "svc", "prof2") }).await;
    let by = |f: Filter| names(&*store, Kind::Device, f);
    let f = Filter::default;
    assert_eq!(by(f()).await, ["d1", "d2", "d3"]);
    assert_eq!(by(Filter { service: Some("svc".into()), ..f() }).await, ["d1", "d3"]);
    assert_eq!(by(Filter { profile: Some("prof".into()), ..f() }).await, ["d1", "d2"]);
    assert_eq!(by(Filter { parent: Some("d1".into()), ..f() }).await, ["d3"]);
    assert_eq!(by(Filter { service: Some("svc".into()), profile: Some("prof".into()), ..f() }).await, ["d1"]);
    assert!(by(Filter { service: Some("svc2".into()), profile: Some("prof2".into()), ..f() }).await.is_empty());
    assert!(by(Filter { service: Some("ghost".into()), ..f() }).await.is_empty());

    let profile = |name: &str, created: i64, mfr: &str, model: &str| Record {
        manufacturer: Some(mfr.into()),
        model: Some(model.into()),
        ..rec(name, created)
    };
    store.insert(Kind::Profile, profile("p1", 5, "acme", "x1"), vec![]).await.unwrap();
    store.insert(Kind::Profile, profile("p2", 6, "acme", "x2"), vec![]).await.unwrap();
    store.insert(Kind::Profile, profile("p3", 7, "other", "x1"), vec![]).await.unwrap();
    let by = |f: Filter| names(&*store, Kind::Profile, f);
    assert_eq!(by(Filter { manufacturer: Some("acme".into()), ..f() }).await, ["p1", "p2"]);
    assert_eq!(by(Filter { model: Some("x1".into()), ..f() }).await, ["p1", "p3"]);
    assert_eq!(by(Filter { manufacturer: Some("acme".into()), model: Some("x1".into()), ..f() }).await, ["p1"]);
}

async fn querying_by_labels_matches_records_carrying_any_of_them(store: Store) {
    seed(&*store).await;
    store.insert(Kind::Service, rec("svc2", 1), vec![]).await.unwrap();
    let labelled = |name: &str, created: i64, service: &str, labels: &[&str]| Record {
        labels: labels.iter().map(|l| l.to_string()).collect(),
        ..device(name, created, service, "prof")
    };
    add_device(&*store, labelled("d1", 1, "svc", &["red", "big"])).await;
    add_device(&*store, labelled("d2", 2, "svc", &["blue"])).await;
    add_device(&*store, labelled("d3", 3, "svc2", &["red", "blue"])).await;
    add_device(&*store, labelled("d4", 4, "svc", &[])).await;
    let by = |f: Filter| names(&*store, Kind::Device, f);
    let labels = |ls: &[&str]| Filter { labels: ls.iter().map(|l| l.to_string()).collect(), ..Filter::default() };
    assert_eq!(by(labels(&["red"])).await, ["d1", "d3"]);
    assert_eq!(by(labels(&["big", "blue"])).await, ["d1", "d2", "d3"]);
    assert_eq!(by(labels(&["red", "blue", "red"])).await, ["d1", "d2", "d3"]);
    assert!(by(labels(&["green"])).await.is_empty());
    assert_eq!(by(Filter { service: Some("svc".into()), ..labels(&["red", "blue"]) }).await, ["d1", "d2"]);
}

async fn querying_lists_in_creation_order_then_name(store: Store) {
    for (name, created) in [("c", 20), ("b", 10), ("a", 20), ("z", 5), ("B", 10)] {
        store.insert(Kind::Service, rec(name, created), vec![]).await.unwrap();
    }
    assert_eq!(names(&*store, Kind::Service, Filter::default()).await, ["z", "B", "b", "a", "c"]);
}

async fn paging_applies_offset_and_limit_and_counts_all_matches(store: Store) {
    for i in 0..7 {
        let labels = if i % 2 == 0 { vec!["even".to_string()] } else { vec![] };
        store.insert(Kind::Service, Record { labels, ..rec(&format!("s{i}"), i) }, vec![]).await.unwrap();
    }
    let page = |offset, limit| Page { offset, limit };
    let run = |filter: Filter, p: Page| {
        let store = store.clone();
        async move {
            let (records, total) = store.query(Kind::Service, &filter, p).await.unwrap();
            (records.into_iter().map(|r| r.name).collect::<Vec<_>>(), total)
        }
    };
    let all = Filter::default;
    assert_eq!(run(all(), page(0, Some(3))).await, (vec!["s0".into(), "s1".into(), "s2".into()], 7));
    assert_eq!(run(all(), page(3, Some(3))).await, (vec!["s3".into(), "s4".into(), "s5".into()], 7));
    assert_eq!(run(all(), page(6, Some(3))).await, (vec!["s6".into()], 7));
    assert_eq!(run(all(), page(7, Some(3))).await, (vec![], 7));
    assert_eq!(run(all(), page(100, None)).await, (vec![], 7));
    assert_eq!(run(all(), page(5, None)).await, (vec!["s5".into(), "s6".into()], 7));
    assert_eq!(run(all(), page(0, Some(0))).await, (vec![], 7));
    let even = || Filter { labels: vec!["even".into()], ..Filter::default() };
    assert_eq!(run(even(), page(1, Some(2))).await, (vec!["s2".into(), "s4".into()], 4));
    assert_eq!(run(Filter { labels: vec!["none".into()], ..Filter::default() }, page(0, Some(5))).await, (vec![], 0));
}

async fn names_with_separators_and_unicode_stay_apart(store: Store) {
    for name in ["a", "a:b", "a:svc:b", "Gerät ü", "a b", "*"] {
        store.insert(Kind::Service, rec(name, 1), vec![]).await.unwrap();
    }
    store.insert(Kind::Profile, rec("p", 1), vec![]).await.unwrap();
    let d = Record { labels: vec!["x:y".into(), "*".into()], ..device("dev:1", 2, "a:b", "p") };
    add_device(&*store, d.clone()).await;
    let by = |f: Filter| names(&*store, Kind::Device, f);
    assert!(by(Filter { service: Some("a".into()), ..Filter::default() }).await.is_empty());
    assert_eq!(by(Filter { service: Some("a:b".into()), ..Filter::default() }).await, ["dev:1"]);
    assert!(by(Filter { labels: vec!["x".into()], ..Filter::default() }).await.is_empty());
    assert_eq!(by(Filter { labels: vec!["*".into()], ..Filter::default() }).await, ["dev:1"]);
    assert_eq!(store.get_by_name(Kind::Device, "dev:1").await.unwrap(), Some(d));
    store.delete_by_name(Kind::Service, "a").await.unwrap();
    store.delete_by_name(Kind::Service, "Gerät ü").await.unwrap();
    assert!(matches!(store.delete_by_name(Kind::Service, "a:b").await, Err(StoreError::InUse { .. })));
}

async fn concurrent_inserts_of_one_name_let_exactly_one_succeed(store: Store) {
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.insert(Kind::Service, rec("racy", i), vec![]).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(e) => assert_eq!(e, StoreError::Duplicate { kind: Kind::Service, name: "racy".into() }),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(names(&*store, Kind::Service, Filter::default()).await, ["racy"]);
}

async fn concurrent_reads_and_writes_all_complete(store: Store) {
    seed(&*store).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                add_device(&*store, device(&format!("d{i:02}"), i, "svc", "prof")).await;
                let (_, total) = store.query(Kind::Device, &Filter::default(), ALL).await.expect("query");
                assert!(total >= 1);
                assert!(store.get_by_name(Kind::Device, &format!("d{i:02}")).await.unwrap().is_some());
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(names(&*store, Kind::Device, Filter::default()).await.len(), 16);
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
    an_inserted_record_reads_back_unchanged_by_name_and_by_id,
    reading_an_unknown_name_or_id_answers_none,
    kinds_are_separate_namespaces,
    inserting_a_duplicate_name_answers_duplicate,
    inserting_a_duplicate_id_answers_duplicate,
    inserting_a_record_that_requires_a_missing_one_answers_not_found_and_writes_nothing,
    requirements_are_checked_before_uniqueness,
    updating_a_record_replaces_it_and_its_indexes,
    updating_an_unknown_id_answers_not_found,
    updating_with_a_missing_requirement_answers_not_found_and_changes_nothing,
    renaming_onto_an_existing_name_answers_duplicate,
    renaming_a_referenced_record_answers_in_use,
    deleting_a_service_in_use_answers_in_use,
    deleting_a_profile_in_use_answers_in_use,
    deleting_a_parent_device_answers_in_use,
    deleting_the_last_referrer_frees_the_referenced_record,
    deleting_returns_the_record_and_removes_it_everywhere,
    deleting_an_unknown_record_answers_not_found,
    querying_filters_by_service_profile_parent_manufacturer_and_model,
    querying_by_labels_matches_records_carrying_any_of_them,
    querying_lists_in_creation_order_then_name,
    paging_applies_offset_and_limit_and_counts_all_matches,
    names_with_separators_and_unicode_stay_apart,
    concurrent_inserts_of_one_name_let_exactly_one_succeed,
    concurrent_reads_and_writes_all_complete,
    ping_answers,
);
