//! The Redis [`Store`]: per queue, a sorted set of ids and one hash per message; every
//! change is one Lua script, so it is atomic.
//!
//! Layout, with `{q}` = `{prefix}:{queue}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{q}:seq` | string | the last id handed out |
//! | `{q}:ids` | sorted set | the ids of the stored messages, scored by id |
//! | `{q}:bytes` | string | the bytes stored, as [`Record::size`] counts them |
//! | `{q}:m:{id}` | hash | `c` submitted (ms), `s` size, `d` destination, `t` content type, `k` key, `a` attributes (JSON), `p` payload |

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::Script;

use super::store::{QueueStats, Record, Store, StoreError, StoredMessage};
use crate::export::Outgoing;

/// Removes the ids `ARGV[2..]` of the queue `ARGV[1]`; returns `{count, bytes}` removed.
const LUA_REMOVE_FN: &str = r#"
local function remove(q, ids)
  local count, bytes = 0, 0
  for _, id in ipairs(ids) do
    if redis.call('ZREM', q .. ':ids', id) == 1 then
      local size = tonumber(redis.call('HGET', q .. ':m:' .. id, 's') or '0')
      redis.call('DEL', q .. ':m:' .. id)
      count = count + 1
      bytes = bytes + size
    end
  end
  if bytes > 0 then redis.call('DECRBY', q .. ':bytes', bytes) end
  return {count, bytes}
end
"#;

const LUA_REMOVE: &str = r#"
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
return remove(ARGV[1], ids)
"#;

/// `ARGV[1]` queue, `ARGV[2]` after, `ARGV[3]` count.
const LUA_REMOVE_OLDEST: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. ':ids', '(' .. ARGV[2], '+inf', 'LIMIT', 0, tonumber(ARGV[3]))
return remove(ARGV[1], ids)
"#;

/// `ARGV[1]` queue, `ARGV[2]` after, `ARGV[3]` before (ms).
const LUA_REMOVE_OLDER: &str = r#"
local q, before = ARGV[1], tonumber(ARGV[3])
local ids, old = redis.call('ZRANGEBYSCORE', q .. ':ids', '(' .. ARGV[2], '+inf', 'LIMIT', 0, 1000), {}
for _, id in ipairs(ids) do
  if tonumber(redis.call('HGET', q .. ':m:' .. id, 'c') or '0') >= before then break end
  old[#old + 1] = id
end
return remove(q, old)
"#;

/// `ARGV[1]` queue, then 7 values per record: created, size, destination, content type, key,
/// attributes, payload. Returns the ids.
const LUA_APPEND: &str = r#"
local q, ids, bytes = ARGV[1], {}, 0
for i = 2, #ARGV, 7 do
  local id = redis.call('INCR', q .. ':seq')
  redis.call('HSET', q .. ':m:' .. id, 'c', ARGV[i], 's', ARGV[i + 1], 'd', ARGV[i + 2], 't', ARGV[i + 3],
    'k', ARGV[i + 4], 'a', ARGV[i + 5], 'p', ARGV[i + 6])
  redis.call('ZADD', q .. ':ids', id, id)
  bytes = bytes + tonumber(ARGV[i + 1])
  ids[#ids + 1] = id
end
redis.call('INCRBY', q .. ':bytes', bytes)
return ids
"#;

/// A [`Store`] in Redis. Cheap to clone; clones share one multiplexed, self-reconnecting
/// connection. The scripts get every key name as an argument, which a single Redis server
/// allows but Redis Cluster does not.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    url: String,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    append: Script,
    remove: Script,
    remove_oldest: Script,
    remove_older: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("url", &self.url).field("prefix", &self.prefix).finish()
    }
}

fn backend(e: redis::RedisError) -> StoreError {
    StoreError(format!("Redis: {e}"))
}

impl RedisStore {
    /// Connects to the Redis server at `url`, with every key under `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let conn = oxedge_redis::connect(url).await.map_err(|e| StoreError(e.to_string()))?;
        let script = |body: &str| Script::new(&format!("{LUA_REMOVE_FN}\n{body}"));
        let scripts = std::sync::Arc::new(Scripts {
            append: Script::new(LUA_APPEND),
            remove: script(LUA_REMOVE),
            remove_oldest: script(LUA_REMOVE_OLDEST),
            remove_older: script(LUA_REMOVE_OLDER),
        });
        Ok(RedisStore { conn, prefix: prefix.to_owned(), url: url.to_owned(), scripts })
    }

    fn queue(&self, queue: &str) -> String {
        format!("{}:{queue}", self.prefix)
    }

    async fn removal(&self, script: &Script, args: Vec<String>) -> Result<QueueStats, StoreError> {
        let mut conn = self.conn.clone();
        let mut invocation = script.prepare_invoke();
        for arg in args {
            invocation.arg(arg);
        }
        let (count, bytes): (u64, u64) = invocation.invoke_async(&mut conn).await.map_err(backend)?;
        Ok(QueueStats { count, bytes })
    }
}

fn field<'a>(fields: &'a HashMap<String, Vec<u8>>, name: &str) -> &'a [u8] {
    fields.get(name).map_or(&[], Vec::as_slice)
}

fn text(fields: &HashMap<String, Vec<u8>>, name: &str) -> String {
    String::from_utf8_lossy(field(fields, name)).into_owned()
}

#[async_trait]
impl Store for RedisStore {
    fn describe(&self) -> String {
        format!("{} ({})", self.url, self.prefix)
    }

    async fn append(&self, queue: &str, records: &[Record]) -> Result<Vec<u64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.append.prepare_invoke();
        invocation.arg(self.queue(queue));
        for record in records {
            let m = &record.message;
            let attributes = serde_json::to_string(&m.attributes).unwrap_or_else(|_| "{}".to_owned());
            invocation
                .arg(record.created_ms)
                .arg(record.size())
                .arg(&m.destination)
                .arg(&m.content_type)
                .arg(&m.key)
                .arg(attributes)
                .arg(&m.payload[..]);
        }
        invocation.invoke_async(&mut conn).await.map_err(backend)
    }

    async fn load(&self, queue: &str, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let q = self.queue(queue);
        let mut conn = self.conn.clone();
        let ids: Vec<u64> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{q}:ids"))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HGETALL").arg(format!("{q}:m:{id}"));
        }
        let hashes: Vec<HashMap<String, Vec<u8>>> = pipe.query_async(&mut conn).await.map_err(backend)?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, fields) in ids.into_iter().zip(hashes) {
            // Removed between the two commands: nothing to send.
            if fields.is_empty() {
                continue;
            }
            out.push(StoredMessage {
                id,
                record: Record {
                    created_ms: text(&fields, "c").parse().unwrap_or(0),
                    message: Outgoing {
                        payload: Bytes::copy_from_slice(field(&fields, "p")),
                        content_type: text(&fields, "t"),
                        destination: text(&fields, "d"),
                        key: text(&fields, "k"),
                        attributes: serde_json::from_slice::<BTreeMap<String, String>>(field(&fields, "a"))
                            .unwrap_or_default(),
                    },
                },
            });
        }
        Ok(out)
    }

    async fn remove(&self, queue: &str, ids: &[u64]) -> Result<QueueStats, StoreError> {
        if ids.is_empty() {
            return Ok(QueueStats::default());
        }
        let mut args = vec![self.queue(queue)];
        args.extend(ids.iter().map(u64::to_string));
        self.removal(&self.scripts.remove, args).await
    }

    async fn remove_oldest(&self, queue: &str, after: u64, count: u64) -> Result<QueueStats, StoreError> {
        self.removal(&self.scripts.remove_oldest, vec![self.queue(queue), after.to_string(), count.to_string()]).await
    }

    async fn remove_older_than(&self, queue: &str, after: u64, before_ms: i64) -> Result<QueueStats, StoreError> {
        self.removal(&self.scripts.remove_older, vec![self.queue(queue), after.to_string(), before_ms.to_string()])
            .await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let q = self.queue(queue);
        let mut conn = self.conn.clone();
        let (count, bytes): (u64, Option<u64>) = redis::pipe()
            .cmd("ZCARD")
            .arg(format!("{q}:ids"))
            .cmd("GET")
            .arg(format!("{q}:bytes"))
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(QueueStats { count, bytes: bytes.unwrap_or(0) })
    }
}
