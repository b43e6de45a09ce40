//! One conformance suite for the store-and-forward stores, run against SQLite and Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use oxedge_app_sdk::export::Outgoing;
use oxedge_app_sdk::forward::redis::RedisStore;
use oxedge_app_sdk::forward::sqlite::SqliteStore;
use oxedge_app_sdk::forward::{QueueStats, Record, Store};

fn record(n: usize, created_ms: i64) -> Record {
    Record {
        created_ms,
        message: Outgoing {
            payload: Bytes::from(format!("payload-{n}").into_bytes()),
            content_type: "application/json".to_owned(),
            destination: format!("factory/dev-{}", n % 3),
            key: format!("dev-{}", n % 3),
            attributes: BTreeMap::from([("n".to_owned(), n.to_string())]),
        },
    }
}

fn payloads(loaded: &[oxedge_app_sdk::forward::StoredMessage]) -> Vec<String> {
    loaded.iter().map(|m| String::from_utf8(m.record.message.payload.to_vec()).unwrap()).collect()
}

async fn conformance(store: Arc<dyn Store>) {
    let records: Vec<Record> = (0..10).map(|n| record(n, 1000 + n as i64)).collect();
    let bytes: u64 = records.iter().map(Record::size).sum();
    let ids = store.append("a", &records).await.unwrap();
    assert_eq!(ids.len(), 10);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow in append order: {ids:?}");
    assert_eq!(store.append("a", &[]).await.unwrap(), Vec::<u64>::new());
    store.append("b", &[record(99, 1)]).await.unwrap();
    assert_eq!(store.stats("a").await.unwrap(), QueueStats { count: 10, bytes });

    // Loading keeps order, pages by id, and returns the message whole.
    let first = store.load("a", 0, 4).await.unwrap();
    assert_eq!(payloads(&first), ["payload-0", "payload-1", "payload-2", "payload-3"]);
    assert_eq!(first[1].record, records[1]);
    let next = store.load("a", first[3].id, 100).await.unwrap();
    assert_eq!(next.len(), 6);
    assert_eq!(next[0].record, records[4]);

    // Removing: ids of another queue or removed already count for nothing.
    let removed = store.remove("a", &[ids[0], ids[1], ids[1]]).await.unwrap();
    assert_eq!(removed, QueueStats { count: 2, bytes: records[0].size() + records[1].size() });
    let b_id = store.load("b", 0, 10).await.unwrap()[0].id;
    assert_eq!(store.remove("a", &[b_id]).await.unwrap().count, 0);
    assert_eq!(store.stats("b").await.unwrap().count, 1);

    // The oldest after a cursor: ids 2..=3 are "in memory", so 4 and 5 go.
    let removed = store.remove_oldest("a", ids[3], 2).await.unwrap();
    assert_eq!(removed.count, 2);
    assert_eq!(payloads(&store.load("a", 0, 100).await.unwrap()), [2, 3, 6, 7, 8, 9].map(|n| format!("payload-{n}")));

    // By age, from the oldest after the cursor, stopping at the first young one.
    let removed = store.remove_older_than("a", ids[2], 1008).await.unwrap();
    assert_eq!(removed.count, 3, "3, 6 and 7 were submitted before 1008");
    assert_eq!(payloads(&store.load("a", 0, 100).await.unwrap()), ["payload-2", "payload-8", "payload-9"]);
    let stats = store.stats("a").await.unwrap();
    assert_eq!(stats, QueueStats { count: 3, bytes: records[2].size() + records[8].size() + records[9].size() });

    // New ids stay above every earlier one, even once the queue is emptied.
    let left: Vec<u64> = store.load("a", 0, 100).await.unwrap().iter().map(|m| m.id).collect();
    store.remove("a", &left).await.unwrap();
    assert_eq!(store.stats("a").await.unwrap(), QueueStats::default());
    let again = store.append("a", &[record(42, 5)]).await.unwrap();
    assert!(again[0] > ids[9]);
}

#[tokio::test]
async fn sqlite_store_conforms_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forward.db");
    conformance(Arc::new(SqliteStore::open(&path).await.unwrap())).await;
    let store = SqliteStore::open(&path).await.unwrap();
    store.append("c", &[record(1, 1), record(2, 2)]).await.unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(payloads(&reopened.load("c", 0, 10).await.unwrap()), ["payload-1", "payload-2"]);
}

#[tokio::test]
async fn redis_store_conforms_and_survives_reconnecting() {
    let Some(redis) = oxedge_testkit::redis::test_redis("oxedge:test:forward").await else { return };
    conformance(Arc::new(RedisStore::connect(&redis.url, &redis.prefix).await.unwrap())).await;
    let store = RedisStore::connect(&redis.url, &redis.prefix).await.unwrap();
    store.append("c", &[record(1, 1), record(2, 2)]).await.unwrap();
    drop(store);
    let reconnected = RedisStore::connect(&redis.url, &redis.prefix).await.unwrap();
    assert_eq!(payloads(&reconnected.load("c", 0, 10).await.unwrap()), ["payload-1", "payload-2"]);
}
