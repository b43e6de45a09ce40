//! The Redis backend: one string per event, lexicographic sorted sets as indexes, one Lua
//! script per batch.
//!
//! Layout, with `{p}` the key prefix:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:seq` | string | the last storage sequence number handed out |
//! | `{p}:ids` | sorted set | event ids scored by storage sequence (`seq`): idempotency, lookup, trim order |
//! | `{p}:ev:{seq}` | string | the event with its readings, as EdgeX JSON |
//! | `{p}:events`, `{p}:events:dev:{device}` | sorted set | event index entries |
//! | `{p}:readings`, `{p}:readings:dev:{device}`, `{p}:readings:res:{resource}`, `{p}:readings:devres:{len(device)}:{device}:{resource}` | sorted set | reading index entries |
//!
//! Index entries all have score 0 and are ordered by their bytes (`ZRANGE … BYLEX`): an
//! event's entry is `origin ‖ seq`, a reading's `origin ‖ seq ‖ position in its event`, each
//! number big-endian (the origin with its sign bit flipped), so byte order is origin order,
//! then storage order. Origins are nanoseconds, too large for a sorted set's float score to
//! hold exactly; as bytes, inclusive time bounds are exact. Every query is one `ZRANGE`
//! (or one per resource, merged) plus one `MGET` of the events on the page; every count a
//! `ZLEXCOUNT`.
//!
//! A batch is written by one Lua script, which skips (and reports) events whose id is in
//! `{p}:ids` already, so redelivery stores nothing twice and a batch is atomic. Deletes find
//! events through an index (`ZRANGE … LIMIT 0 max`), compute their index entries here from
//! the stored events, and remove everything in one Lua script; nothing scans the keyspace.
//! The scripts get every key name as an argument, which a single Redis server allows but
//! Redis Cluster does not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use oxedge_contracts::{Event, Reading, ValueType};
use redis::aio::ConnectionManager;
use redis::Script;

use super::{
    numeric_value, AddOutcome, AggregateFunc, AggregateRow, EventFilter, EventStore, Page, ReadingFilter, StoreError,
};

/// The key prefix [`RedisStore::connect`] uses.
pub const DEFAULT_PREFIX: &str = "oxedge:data";

/// Index entries are added and removed in commands of at most this many members.
const CHUNK: usize = 1000;

/// Arguments shared by both scripts: `ARGV[1]` the ids key, `ARGV[2]` the event key prefix,
/// `ARGV[3]` the number `n` of index keys, `ARGV[4..4+n)` the index keys; then per event its
/// id, seq, (add only) JSON, the number `m` of its index entries and `m` pairs (key number,
/// member).
const LUA_COMMON: &str = r#"
local ids, evp, nkeys = ARGV[1], ARGV[2], tonumber(ARGV[3])
local members, counts = {}, {}
for k = 1, nkeys do members[k], counts[k] = {}, 0 end
local function collect(i, m, with_score)
  for j = i, i + 2 * m - 1, 2 do
    local k = tonumber(ARGV[j])
    local t, c = members[k], counts[k]
    if with_score then c = c + 1; t[c] = 0 end
    c = c + 1; t[c] = ARGV[j + 1]
    counts[k] = c
  end
  return i + 2 * m
end
local function flush(cmd, step)
  for k = 1, nkeys do
    local t, c = members[k], counts[k]
    for s = 1, c, step do
      redis.call(cmd, ARGV[3 + k], unpack(t, s, math.min(s + step - 1, c)))
    end
  end
end
"#;

const LUA_ADD: &str = r#"
local dups, i = {}, 4 + nkeys
while i <= #ARGV do
  local id, seq, json, m = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  if redis.call('ZADD', ids, 'NX', seq, id) == 1 then
    redis.call('SET', evp .. seq, json)
    i = collect(i + 4, m, true)
  else
    dups[#dups + 1] = id
    i = i + 4 + 2 * m
  end
end
flush('ZADD', 2 * CHUNK)
return dups
"#;

const LUA_DELETE: &str = r#"
local deleted, i = 0, 4 + nkeys
while i <= #ARGV do
  local id, seq, m = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('DEL', evp .. seq) == 1 then
    redis.call('ZREM', ids, id)
    deleted = deleted + 1
    i = collect(i + 3, m, false)
  else
    i = i + 3 + 2 * m
  end
end
flush('ZREM', CHUNK)
return deleted
"#;

/// An [`EventStore`] in Redis.
///
/// Cheap to clone; clones share one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: Arc<Scripts>,
}

/// The write scripts.
struct Scripts {
    add: Script,
    delete: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Index entries

/// Big-endian bytes of `origin` whose byte order is numeric order.
fn origin_bytes(origin: i64) -> [u8; 8] {
    ((origin as u64) ^ (1 << 63)).to_be_bytes()
}

fn event_member(origin: i64, seq: u64) -> Vec<u8> {
    [&origin_bytes(origin)[..], &seq.to_be_bytes()].concat()
}

fn reading_member(origin: i64, seq: u64, pos: u32) -> Vec<u8> {
    [&origin_bytes(origin)[..], &seq.to_be_bytes(), &pos.to_be_bytes()].concat()
}

/// The event sequence number and reading position in an index entry.
fn parse_member(member: &[u8]) -> Result<(u64, usize), StoreError> {
    let bad = || StoreError::Backend(format!("malformed index entry of {} bytes", member.len()));
    let seq = member.get(8..16).ok_or_else(bad)?;
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| bad())?);
    let pos = match member.get(16..20) {
        Some(pos) => u32::from_be_bytes(pos.try_into().map_err(|_| bad())?) as usize,
        None => 0,
    };
    Ok((seq, pos))
}

/// The `ZRANGE … BYLEX` bounds selecting entries with `start <= origin <= end`.
fn lex_bounds(start: Option<i64>, end: Option<i64>) -> (Vec<u8>, Vec<u8>) {
    let min = match start {
        Some(s) => [&b"["[..], &origin_bytes(s)].concat(),
        None => b"-".to_vec(),
    };
    let max = match end.and_then(|e| e.checked_add(1)) {
        Some(e) => [&b"("[..], &origin_bytes(e)].concat(),
        None => b"+".to_vec(),
    };
    (min, max)
}

/// Key names under a prefix.
struct Keys<'a>(&'a str);

impl Keys<'_> {
    fn ids(&self) -> String {
        format!("{}:ids", self.0)
    }
    fn seq(&self) -> String {
        format!("{}:seq", self.0)
    }
    fn event_prefix(&self) -> String {
        format!("{}:ev:", self.0)
    }
    fn event(&self, seq: u64) -> String {
        format!("{}:ev:{seq}", self.0)
    }
    fn events(&self, device: Option<&str>) -> String {
        match device {
            Some(d) => format!("{}:events:dev:{d}", self.0),
            None => format!("{}:events", self.0),
        }
    }
    /// The reading index of `device` and/or `resource`, or of all readings.
    fn readings(&self, device: Option<&str>, resource: Option<&str>) -> String {
        match (device, resource) {
            (None, None) => format!("{}:readings", self.0),
            (Some(d), None) => format!("{}:readings:dev:{d}", self.0),
            (None, Some(r)) => format!("{}:readings:res:{r}", self.0),
            (Some(d), Some(r)) => format!("{}:readings:devres:{}:{d}:{r}", self.0, d.len()),
        }
    }
}

/// The arguments of a write script: a table of index keys, then per event its fields and
/// its index entries as (key number, member).
struct Batch<'a> {
    keys: &'a Keys<'a>,
    key_numbers: HashMap<String, usize>,
    key_names: Vec<String>,
    args: Vec<Vec<u8>>,
}

impl<'a> Batch<'a> {
    fn new(keys: &'a Keys<'a>) -> Self {
        Batch { keys, key_numbers: HashMap::new(), key_names: Vec::new(), args: Vec::new() }
    }

    fn key_number(&mut self, key: String) -> usize {
        let next = self.key_names.len() + 1;
        *self.key_numbers.entry(key).or_insert_with_key(|key| {
            self.key_names.push(key.clone());
            next
        })
    }

    fn arg(&mut self, value: impl redis::ToRedisArgs) {
        self.args.extend(value.to_redis_args());
    }

    /// Adds an event stored at `seq`: its id, seq, `json` when given (adds), and its entries.
    fn push(&mut self, seq: u64, event: &Event, json: Option<Vec<u8>>) {
        let mut entries = Vec::with_capacity(2 + 4 * event.readings.len());
        let member = event_member(event.origin, seq);
        entries.push((self.key_number(self.keys.events(None)), member.clone()));
        entries.push((self.key_number(self.keys.events(Some(&event.device_name))), member));
        for (pos, r) in event.readings.iter().enumerate() {
            let member = reading_member(r.origin, seq, pos as u32);
            let (d, res) = (Some(r.device_name.as_str()), Some(r.resource_name.as_str()));
            for key in [self.keys.readings(None, None), self.keys.readings(d, None)] {
                entries.push((self.key_number(key), member.clone()));
            }
            for key in [self.keys.readings(None, res), self.keys.readings(d, res)] {
                entries.push((self.key_number(key), member.clone()));
            }
        }
        self.arg(&event.id);
        self.arg(seq);
        if let Some(json) = json {
            self.arg(json);
        }
        self.arg(entries.len());
        for (key, member) in entries {
            self.arg(key);
            self.arg(member);
        }
    }

    /// Runs `script` with these arguments.
    async fn invoke<T: redis::FromRedisValue>(
        self,
        script: &Script,
        conn: &ConnectionManager,
    ) -> Result<T, StoreError> {
        let mut inv = script.prepare_invoke();
        inv.arg(self.keys.ids()).arg(self.keys.event_prefix()).arg(self.key_names.len()).arg(&self.key_names);
        inv.arg(&self.args);
        inv.invoke_async(&mut conn.clone()).await.map_err(backend)
    }
}

// ---------------------------------------------------------------------------------------------
// The store

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://host:port/db`), with keys under
    /// [`DEFAULT_PREFIX`].
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// Connects to the Redis server at `url`, with every key under `prefix` (so several
    /// stores, or tests, can share one server).
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let conn = oxedge_redis::connect(url).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let script = |body: &str| Script::new(&format!("local CHUNK = {CHUNK}\n{LUA_COMMON}\n{body}"));
        let scripts = Arc::new(Scripts { add: script(LUA_ADD), delete: script(LUA_DELETE) });
        Ok(RedisStore { conn, prefix: prefix.to_owned(), scripts })
    }

    fn keys(&self) -> Keys<'_> {
        Keys(&self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        cmd.query_async(&mut self.conn.clone()).await.map_err(backend)
    }

    async fn pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        pipe.query_async(&mut self.conn.clone()).await.map_err(backend)
    }

    /// The storage sequence number of the event with this id.
    async fn seq_of(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let score: Option<f64> = self.query(redis::cmd("ZSCORE").arg(self.keys().ids()).arg(id)).await?;
        Ok(score.map(|s| s as u64))
    }

    /// The stored events at `seqs`, by seq; events deleted meanwhile are left out.
    async fn load(&self, seqs: impl IntoIterator<Item = u64>) -> Result<BTreeMap<u64, Event>, StoreError> {
        let seqs: Vec<u64> = seqs.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let mut events = BTreeMap::new();
        for chunk in seqs.chunks(CHUNK) {
            let keys: Vec<String> = chunk.iter().map(|s| self.keys().event(*s)).collect();
            let values: Vec<Option<Vec<u8>>> = self.query(redis::cmd("MGET").arg(keys)).await?;
            for (seq, json) in chunk.iter().zip(values) {
                if let Some(json) = json {
                    let event = serde_json::from_slice(&json)
                        .map_err(|e| StoreError::Backend(format!("stored event {seq} is not valid: {e}")))?;
                    events.insert(*seq, event);
                }
            }
        }
        Ok(events)
    }

    /// The readings the index entries `members` point at, in that order.
    async fn readings_at(&self, members: &[Vec<u8>]) -> Result<Vec<(Vec<u8>, Reading)>, StoreError> {
        let at = members.iter().map(|m| parse_member(m)).collect::<Result<Vec<_>, _>>()?;
        let events = self.load(at.iter().map(|(seq, _)| *seq)).await?;
        Ok(members
            .iter()
            .zip(at)
            .filter_map(|(m, (seq, pos))| Some((m.clone(), events.get(&seq)?.readings.get(pos)?.clone())))
            .collect())
    }

    /// Deletes the stored events at `seqs` with their index entries; returns how many were
    /// still there.
    async fn delete_seqs(&self, seqs: impl IntoIterator<Item = u64>) -> Result<usize, StoreError> {
        let events = self.load(seqs).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let keys = self.keys();
        let mut batch = Batch::new(&keys);
        for (seq, event) in &events {
            batch.push(*seq, event, None);
        }
        batch.invoke(&self.scripts.delete, &self.conn).await
    }

    /// The reading index keys a filter reads: one, or one per resource.
    fn reading_keys(&self, filter: &ReadingFilter) -> Vec<String> {
        let device = filter.device.as_deref();
        if filter.resources.is_empty() {
            return vec![self.keys().readings(device, None)];
        }
        let resources: BTreeSet<&str> = filter.resources.iter().map(String::as_str).collect();
        resources.into_iter().map(|r| self.keys().readings(device, Some(r))).collect()
    }

    /// The total of `ZLEXCOUNT` over `keys`.
    async fn lex_count(&self, keys: &[String], start: Option<i64>, end: Option<i64>) -> Result<u64, StoreError> {
        let (min, max) = lex_bounds(start, end);
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("ZLEXCOUNT").arg(key).arg(&min).arg(&max);
        }
        let counts: Vec<u64> = self.pipe(&pipe).await?;
        Ok(counts.into_iter().sum())
    }

    /// A page of the entries of `keys` within the bounds, newest first, merged across keys.
    async fn lex_page(
        &self,
        keys: &[String],
        start: Option<i64>,
        end: Option<i64>,
        page: Page,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        if page.limit == 0 {
            return Ok(Vec::new());
        }
        let (min, max) = lex_bounds(start, end);
        let clamp = |n: u64| n.min(i64::MAX as u64);
        // One key: the page itself. Several: the first offset + limit of each, merged.
        let (offset, limit) = match keys {
            [_] => (clamp(page.offset), clamp(page.limit)),
            _ => (0, clamp(page.offset.saturating_add(page.limit))),
        };
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("ZRANGE").arg(key).arg(&max).arg(&min).arg("BYLEX").arg("REV").arg("LIMIT").arg(offset).arg(limit);
        }
        let lists: Vec<Vec<Vec<u8>>> = self.pipe(&pipe).await?;
        if let [list] = &lists[..] {
            return Ok(list.clone());
        }
        let mut merged: Vec<Vec<u8>> = lists.into_iter().flatten().collect();
        merged.sort_unstable_by(|a, b| b.cmp(a));
        let (skip, take) = (usize::try_from(page.offset), usize::try_from(page.limit));
        Ok(merged.into_iter().skip(skip.unwrap_or(usize::MAX)).take(take.unwrap_or(usize::MAX)).collect())
    }
}

/// Running aggregate of one group.
struct Acc {
    /// Index entry of the latest-stored reading without its origin: (seq, position).
    last: Vec<u8>,
    value_type: ValueType,
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Acc {
    fn value(&self, func: AggregateFunc) -> Option<f64> {
        (self.count > 0).then_some(match func {
            AggregateFunc::Min => self.min,
            AggregateFunc::Max => self.max,
            AggregateFunc::Count => self.count as f64,
            AggregateFunc::Sum => self.sum,
            AggregateFunc::Avg => self.sum / self.count as f64,
        })
    }
}

#[async_trait]
impl EventStore for RedisStore {
    async fn add_events(&self, events: &[Event]) -> Result<AddOutcome, StoreError> {
        if events.is_empty() {
            return Ok(AddOutcome::default());
        }
        let keys = self.keys();
        let last: u64 = self.query(redis::cmd("INCRBY").arg(keys.seq()).arg(events.len())).await?;
        let first = last - events.len() as u64 + 1;
        let mut batch = Batch::new(&keys);
        for (seq, event) in (first..).zip(events) {
            batch.push(seq, event, Some(serde_json::to_vec(event).map_err(backend)?));
        }
        let duplicates: Vec<String> = batch.invoke(&self.scripts.add, &self.conn).await?;
        Ok(AddOutcome { added: events.len() - duplicates.len(), duplicates })
    }

    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let Some(seq) = self.seq_of(id).await? else { return Ok(None) };
        Ok(self.load([seq]).await?.remove(&seq))
    }

    async fn events(&self, filter: &EventFilter, page: Page) -> Result<(Vec<Event>, u64), StoreError> {
        let keys = [self.keys().events(filter.device.as_deref())];
        let total = self.lex_count(&keys, filter.start, filter.end).await?;
        let members = self.lex_page(&keys, filter.start, filter.end, page).await?;
        let seqs = members.iter().map(|m| parse_member(m).map(|(seq, _)| seq)).collect::<Result<Vec<_>, _>>()?;
        let mut events = self.load(seqs.iter().copied()).await?;
        Ok((seqs.iter().filter_map(|seq| events.remove(seq)).collect(), total))
    }

    async fn count_events(&self, filter: &EventFilter) -> Result<u64, StoreError> {
        self.lex_count(&[self.keys().events(filter.device.as_deref())], filter.start, filter.end).await
    }

    async fn readings(&self, filter: &ReadingFilter, page: Page) -> Result<(Vec<Reading>, u64), StoreError> {
        let keys = self.reading_keys(filter);
        let total = self.lex_count(&keys, filter.start, filter.end).await?;
        let members = self.lex_page(&keys, filter.start, filter.end, page).await?;
        Ok((self.readings_at(&members).await?.into_iter().map(|(_, r)| r).collect(), total))
    }

    async fn count_readings(&self, filter: &ReadingFilter) -> Result<u64, StoreError> {
        self.lex_count(&self.reading_keys(filter), filter.start, filter.end).await
    }

    async fn aggregate(&self, filter: &ReadingFilter, func: AggregateFunc) -> Result<Vec<AggregateRow>, StoreError> {
        let keys = self.reading_keys(filter);
        let all = Page { offset: 0, limit: u64::MAX };
        let members = self.lex_page(&keys, filter.start, filter.end, all).await?;
        let mut groups: BTreeMap<(String, String, String), Acc> = BTreeMap::new();
        for (member, r) in self.readings_at(&members).await? {
            let stored_at = member[8..].to_vec();
            let acc =
                groups.entry((r.device_name.clone(), r.resource_name.clone(), r.profile_name.clone())).or_insert(Acc {
                    last: Vec::new(),
                    value_type: r.value_type,
                    count: 0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    sum: 0.0,
                });
            if stored_at > acc.last {
                acc.last = stored_at;
                acc.value_type = r.value_type;
            }
            if let Some(v) = numeric_value(&r) {
                acc.count += 1;
                acc.min = acc.min.min(v);
                acc.max = acc.max.max(v);
                acc.sum += v;
            }
        }
        Ok(groups
            .into_iter()
            .map(|((device, resource, profile), acc)| AggregateRow {
                device,
                resource,
                profile,
                value_type: acc.value_type,
                value: acc.value(func),
            })
            .collect())
    }

    async fn delete_event(&self, id: &str) -> Result<bool, StoreError> {
        let Some(seq) = self.seq_of(id).await? else { return Ok(false) };
        Ok(self.delete_seqs([seq]).await? > 0)
    }

    async fn delete_events(&self, filter: &EventFilter, max: usize) -> Result<usize, StoreError> {
        let (min, upper) = lex_bounds(None, filter.end);
        let cmd = redis::cmd("ZRANGE")
            .arg(self.keys().events(filter.device.as_deref()))
            .arg(min)
            .arg(upper)
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .to_owned();
        let members: Vec<Vec<u8>> = self.query(&cmd).await?;
        let seqs = members.iter().map(|m| parse_member(m).map(|(seq, _)| seq)).collect::<Result<Vec<_>, _>>()?;
        self.delete_seqs(seqs).await
    }

    async fn trim_events(&self, keep: u64, max: usize) -> Result<usize, StoreError> {
        let stored: u64 = self.query(redis::cmd("ZCARD").arg(self.keys().ids())).await?;
        let beyond = stored.saturating_sub(keep).min(max as u64);
        if beyond == 0 {
            return Ok(0);
        }
        let cmd = redis::cmd("ZRANGE").arg(self.keys().ids()).arg(0).arg(beyond - 1).arg("WITHSCORES").to_owned();
        let oldest: Vec<(String, f64)> = self.query(&cmd).await?;
        self.delete_seqs(oldest.into_iter().map(|(_, seq)| seq as u64)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }
}
