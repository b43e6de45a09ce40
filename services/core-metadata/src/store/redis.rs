//! The Redis backend: hashes, sets and one Lua script per write.
//!
//! Layout, with `{p}` the key prefix and `{k}` the kind (`service`, `profile`, …):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:{k}:rec:{id}` | hash | `id`, `name`, `created`, `body`, `labels` (JSON) and the present ones of `service`, `profile`, `parent`, `manufacturer`, `model` |
//! | `{p}:{k}:names` | hash | name → id |
//! | `{p}:{k}:all` | sorted set | ids, scored by `created` |
//! | `{p}:{k}:svc:{v}`, `:prof:{v}`, `:parent:{v}`, `:mfr:{v}`, `:model:{v}`, `:label:{v}` | set | ids of the records with that value |
//!
//! Inserts, updates and deletes each run as one Lua script that checks the rules (existence,
//! uniqueness, references) and writes, so they are atomic. The scripts compute key names from
//! the prefix, which a single Redis server allows but Redis Cluster does not.
//!
//! Checks run in this order, the same as the SQLite backend: the record itself (update,
//! delete), then `requires`, then name and id uniqueness, then references (in use).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::Script;

use super::{Filter, Kind, MetadataStore, Page, Record, Requires, StoreError};

/// The key prefix [`RedisStore::connect`] uses.
pub const DEFAULT_PREFIX: &str = "oxedge:md";

/// Lua helpers shared by the write scripts. `ARGV[1]` is the prefix, `ARGV[2]` the kind.
const LUA_COMMON: &str = r#"
local P, K = ARGV[1], ARGV[2]
local function key(kind, ...) return P .. ':' .. kind .. ':' .. table.concat({...}, ':') end
local INDEXED = {service = 'svc', profile = 'prof', parent = 'parent', manufacturer = 'mfr', model = 'model'}

-- Byte-wise less-than (Lua's `<` on strings follows the locale).
local function lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The index sets a record (a table of its hash fields) belongs to.
local function index_keys(f)
  local keys = {}
  for field, short in pairs(INDEXED) do
    if f[field] then table.insert(keys, key(K, short, f[field])) end
  end
  for _, l in ipairs(cjson.decode(f.labels or '[]')) do table.insert(keys, key(K, 'label', l)) end
  return keys
end

-- The fields of a stored record, or nil.
local function load_rec(id)
  local flat = redis.call('HGETALL', key(K, 'rec', id))
  if #flat == 0 then return nil, flat end
  local f = {}
  for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
  return f, flat
end

-- The first referrer of the record of kind K named `name` as {kind, name}, or nil.
local REFERRERS = {
  service = {{'device', 'svc'}, {'watcher', 'svc'}},
  profile = {{'device', 'prof'}, {'watcher', 'prof'}},
  device = {{'device', 'parent'}},
  watcher = {},
}
local function referrer(name)
  for _, r in ipairs(REFERRERS[K]) do
    local best_c, best_n
    for _, id in ipairs(redis.call('SMEMBERS', key(r[1], r[2], name))) do
      local v = redis.call('HMGET', key(r[1], 'rec', id), 'created', 'name')
      local c = tonumber(v[1])
      if v[2] and (best_n == nil or c < best_c or (c == best_c and lt(v[2], best_n))) then
        best_c, best_n = c, v[2]
      end
    end
    if best_n then return {r[1], best_n} end
  end
  return nil
end

-- Reads the record's fields from ARGV[3] (count) and the pairs after it; returns the fields,
-- the flat HSET arguments and the index of the first `requires` argument.
local function args_record()
  local n = tonumber(ARGV[3])
  local f, flat = {}, {}
  for i = 0, n - 1 do
    local k, v = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
    f[k] = v
    table.insert(flat, k)
    table.insert(flat, v)
  end
  return f, flat, 4 + 2 * n
end

-- Nil when every (kind, name) pair from ARGV[first] on exists, else a 'notfound' reply.
local function check_requires(first)
  for i = first, #ARGV - 1, 2 do
    if redis.call('HEXISTS', key(ARGV[i], 'names'), ARGV[i + 1]) == 0 then
      return {'notfound', ARGV[i], ARGV[i + 1]}
    end
  end
  return nil
end

local function add(f, flat)
  redis.call('HSET', key(K, 'rec', f.id), unpack(flat))
  redis.call('HSET', key(K, 'names'), f.name, f.id)
  redis.call('ZADD', key(K, 'all'), f.created, f.id)
  for _, k in ipairs(index_keys(f)) do redis.call('SADD', k, f.id) end
end

local function remove(f)
  for _, k in ipairs(index_keys(f)) do redis.call('SREM', k, f.id) end
  redis.call('ZREM', key(K, 'all'), f.id)
  redis.call('HDEL', key(K, 'names'), f.name)
  redis.call('DEL', key(K, 'rec', f.id))
end
"#;

const LUA_INSERT: &str = r#"
local f, flat, first = args_record()
local missing = check_requires(first)
if missing then return missing end
if redis.call('HEXISTS', key(K, 'names'), f.name) == 1 then return {'duplicate', K, f.name} end
if redis.call('EXISTS', key(K, 'rec', f.id)) == 1 then return {'duplicate', K, f.id} end
add(f, flat)
return {'ok'}
"#;

const LUA_UPDATE: &str = r#"
local f, flat, first = args_record()
local old = load_rec(f.id)
if not old then return {'notfound', K, f.id} end
local missing = check_requires(first)
if missing then return missing end
if old.name ~= f.name then
  if redis.call('HEXISTS', key(K, 'names'), f.name) == 1 then return {'duplicate', K, f.name} end
  local by = referrer(old.name)
  if by then return {'inuse', K, old.name, by[1], by[2]} end
end
remove(old)
add(f, flat)
return {'ok'}
"#;

/// `ARGV[3]` is `name` or `id`, `ARGV[4]` the value.
const LUA_DELETE: &str = r#"
local id = ARGV[4]
if ARGV[3] == 'name' then
  id = redis.call('HGET', key(K, 'names'), ARGV[4])
  if not id then return {'notfound', K, ARGV[4]} end
end
local f, flat = load_rec(id)
if not f then return {'notfound', K, ARGV[4]} end
local by = referrer(f.name)
if by then return {'inuse', K, f.name, by[1], by[2]} end
remove(f)
local reply = {'ok'}
for _, v in ipairs(flat) do table.insert(reply, v) end
return reply
"#;

/// `KEYS[1]` is the names hash; `ARGV[1]` the prefix, `ARGV[2]` the kind, `ARGV[3]` the name.
const LUA_GET_BY_NAME: &str = r#"
local id = redis.call('HGET', KEYS[1], ARGV[3])
if not id then return {} end
return redis.call('HGETALL', ARGV[1] .. ':' .. ARGV[2] .. ':rec:' .. id)
"#;

/// A [`MetadataStore`] in Redis.
///
/// Cheap to clone; clones share one multiplexed, self-reconnecting connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    insert: Script,
    update: Script,
    delete: Script,
    get_by_name: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn kind_from_str(s: &str) -> Result<Kind, StoreError> {
    Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| StoreError::Backend(format!("script answered an unknown kind '{s}'")))
}

/// Turns a script's status reply into `Ok` (with the rest of the reply) or the error it names.
fn status(mut reply: Vec<String>) -> Result<Vec<String>, StoreError> {
    let word = if reply.is_empty() { String::new() } else { reply.remove(0) };
    let arg = |i: usize| reply.get(i).cloned().unwrap_or_default();
    match word.as_str() {
        "ok" => Ok(reply),
        "notfound" => Err(StoreError::NotFound { kind: kind_from_str(&arg(0))?, name: arg(1) }),
        "duplicate" => Err(StoreError::Duplicate { kind: kind_from_str(&arg(0))?, name: arg(1) }),
        "inuse" => Err(StoreError::InUse {
            kind: kind_from_str(&arg(0))?,
            name: arg(1),
            by: format!("{} '{}'", kind_from_str(&arg(2))?.label(), arg(3)),
        }),
        other => Err(StoreError::Backend(format!("script answered an unexpected status '{other}'"))),
    }
}

/// A record from its hash fields.
fn record_from(mut f: HashMap<String, String>) -> Result<Record, StoreError> {
    let mut take = |name: &str| f.remove(name);
    let id = take("id").ok_or_else(|| StoreError::Backend("stored record has no id".into()))?;
    let created = take("created")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| StoreError::Backend(format!("stored record '{id}' has no valid created time")))?;
    let labels = match take("labels") {
        Some(l) => serde_json::from_str(&l)
            .map_err(|e| StoreError::Backend(format!("stored record '{id}' has invalid labels: {e}")))?,
        None => Vec::new(),
    };
    Ok(Record {
        name: take("name").unwrap_or_default(),
        created,
        labels,
        service: take("service"),
        profile: take("profile"),
        parent: take("parent"),
        manufacturer: take("manufacturer"),
        model: take("model"),
        body: take("body").unwrap_or_default(),
        id,
    })
}

/// A record from a flat `field, value, field, value…` list; `None` when the list is empty.
fn record_from_flat(flat: Vec<String>) -> Result<Option<Record>, StoreError> {
    if flat.is_empty() {
        return Ok(None);
    }
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    record_from(map).map(Some)
}

/// The hash fields of a record, as flat pairs.
fn record_fields(rec: &Record) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut fields = vec![
        ("id", rec.id.clone()),
        ("name", rec.name.clone()),
        ("created", rec.created.to_string()),
        ("body", rec.body.clone()),
        ("labels", serde_json::to_string(&rec.labels).map_err(backend)?),
    ];
    let optional = [
        ("service", &rec.service),
        ("profile", &rec.profile),
        ("parent", &rec.parent),
        ("manufacturer", &rec.manufacturer),
        ("model", &rec.model),
    ];
    fields.extend(optional.into_iter().filter_map(|(k, v)| v.clone().map(|v| (k, v))));
    Ok(fields)
}

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
        let common = |body: &str| Script::new(&format!("{LUA_COMMON}\n{body}"));
        Ok(RedisStore {
            conn,
            prefix: prefix.to_owned(),
            scripts: std::sync::Arc::new(Scripts {
                insert: common(LUA_INSERT),
                update: common(LUA_UPDATE),
                delete: common(LUA_DELETE),
                get_by_name: Script::new(LUA_GET_BY_NAME),
            }),
        })
    }

    fn key(&self, kind: Kind, rest: &str) -> String {
        format!("{}:{}:{rest}", self.prefix, kind.as_str())
    }

    /// Runs an insert or update script.
    async fn write(&self, script: &Script, kind: Kind, rec: &Record, requires: &Requires) -> Result<(), StoreError> {
        let fields = record_fields(rec)?;
        let mut inv = script.prepare_invoke();
        inv.arg(&self.prefix).arg(kind.as_str()).arg(fields.len());
        for (k, v) in &fields {
            inv.arg(*k).arg(v);
        }
        for (k, n) in requires {
            inv.arg(k.as_str()).arg(n);
        }
        let reply: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(backend)?;
        status(reply).map(drop)
    }

    async fn delete(&self, kind: Kind, by: &str, value: &str) -> Result<Record, StoreError> {
        let reply: Vec<String> = self
            .scripts
            .delete
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(kind.as_str())
            .arg(by)
            .arg(value)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        record_from_flat(status(reply)?)?.ok_or_else(|| StoreError::Backend("delete script answered no record".into()))
    }

    /// The ids matching `filter`.
    async fn candidates(&self, kind: Kind, filter: &Filter) -> Result<Vec<String>, StoreError> {
        let scalars: Vec<String> = [
            ("svc", &filter.service),
            ("prof", &filter.profile),
            ("parent", &filter.parent),
            ("mfr", &filter.manufacturer),
            ("model", &filter.model),
        ]
        .into_iter()
        .filter_map(|(short, v)| v.as_ref().map(|v| self.key(kind, &format!("{short}:{v}"))))
        .collect();
        let labels: Vec<String> = filter.labels.iter().map(|l| self.key(kind, &format!("label:{l}"))).collect();
        let mut conn = self.conn.clone();
        match (scalars.is_empty(), labels.is_empty()) {
            (true, true) => redis::cmd("ZRANGE")
                .arg(self.key(kind, "all"))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .map_err(backend),
            (false, true) => redis::cmd("SINTER").arg(&scalars).query_async(&mut conn).await.map_err(backend),
            (true, false) => redis::cmd("SUNION").arg(&labels).query_async(&mut conn).await.map_err(backend),
            (false, false) => {
                let (with_scalars, with_labels): (Vec<String>, HashSet<String>) = redis::pipe()
                    .atomic()
                    .cmd("SINTER")
                    .arg(&scalars)
                    .cmd("SUNION")
                    .arg(&labels)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
                Ok(with_scalars.into_iter().filter(|id| with_labels.contains(id)).collect())
            }
        }
    }
}

#[async_trait]
impl MetadataStore for RedisStore {
    async fn insert(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError> {
        self.write(&self.scripts.insert, kind, &rec, &requires).await
    }

    async fn update(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError> {
        self.write(&self.scripts.update, kind, &rec, &requires).await
    }

    async fn get_by_name(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError> {
        let flat: Vec<String> = self
            .scripts
            .get_by_name
            .key(self.key(kind, "names"))
            .arg(&self.prefix)
            .arg(kind.as_str())
            .arg(name)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        record_from_flat(flat)
    }

    async fn get_by_id(&self, kind: Kind, id: &str) -> Result<Option<Record>, StoreError> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key(kind, &format!("rec:{id}")))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        if fields.is_empty() {
            return Ok(None);
        }
        record_from(fields).map(Some)
    }

    async fn delete_by_name(&self, kind: Kind, name: &str) -> Result<Record, StoreError> {
        self.delete(kind, "name", name).await
    }

    async fn delete_by_id(&self, kind: Kind, id: &str) -> Result<Record, StoreError> {
        self.delete(kind, "id", id).await
    }

    async fn query(&self, kind: Kind, filter: &Filter, page: Page) -> Result<(Vec<Record>, u64), StoreError> {
        let ids = self.candidates(kind, filter).await?;
        let mut conn = self.conn.clone();

        // Order the candidates by (created, name); a record deleted meanwhile drops out.
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET").arg(self.key(kind, &format!("rec:{id}"))).arg("created").arg("name");
        }
        let keys: Vec<(Option<i64>, Option<String>)> =
            if ids.is_empty() { Vec::new() } else { pipe.query_async(&mut conn).await.map_err(backend)? };
        let mut order: Vec<(i64, String, String)> =
            ids.into_iter().zip(keys).filter_map(|(id, (created, name))| Some((created?, name?, id))).collect();
        order.sort_unstable();
        let total = order.len() as u64;

        let page_ids: Vec<String> =
            order.into_iter().skip(page.offset).take(page.limit.unwrap_or(usize::MAX)).map(|(_, _, id)| id).collect();
        if page_ids.is_empty() {
            return Ok((Vec::new(), total));
        }
        let mut pipe = redis::pipe();
        for id in &page_ids {
            pipe.cmd("HGETALL").arg(self.key(kind, &format!("rec:{id}")));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await.map_err(backend)?;
        let records = hashes.into_iter().filter(|h| !h.is_empty()).map(record_from).collect::<Result<Vec<_>, _>>()?;
        Ok((records, total))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await.map_err(backend)?;
        Ok(())
    }
}
