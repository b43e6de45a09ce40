//! [`Forwarder`]: the task in front of one export's sink.
//!
//! The task owns every message an export holds in memory, in submission order (`seq`):
//! waiting in `queue` or sent and awaiting the sink's answer (`inflight`). Stored messages
//! (`stored: Some(id)`) are in the store too and are removed from it once delivered.
//!
//! Order with a store: messages not yet stored exist in memory only while the store holds
//! nothing waiting beyond what is in memory; the first message that must go to the store
//! (memory full, sink down, or older messages stored) first writes every unstored message in
//! memory, in order, so the store's ids are always submission order. Stored messages are
//! loaded back in id order, and only while nothing unstored is in memory.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::metrics::{DropReason, ExportMetrics, Place};
use super::store::{Record, Store};
use super::{DropPolicy, Limits};
use crate::context::Confirmation;
use crate::export::{Outgoing, Sink, SinkError};

/// Messages on their way to the store at most (their submitters wait beyond that), and at
/// most `memory_capacity`.
const SPILL_QUEUE: usize = 4096;
/// Stored messages loaded back at once.
const LOAD_BATCH: usize = 256;
/// Delivered stored messages removed from the store at once.
const REMOVE_BATCH: usize = 256;
/// How often the task flushes removals, purges old messages and updates its gauges.
const TICK: Duration = Duration::from_millis(50);
/// How often a down sink's connection is looked at.
const WATCH: Duration = Duration::from_millis(20);
/// How often a store that failed is tried again.
const STORE_RETRY: Duration = Duration::from_secs(1);

type Reply = oneshot::Sender<Result<(), String>>;
type SendFuture = Pin<Box<dyn Future<Output = (u64, Result<(), SinkError>)> + Send>>;

/// The memory a message takes in its export's budget, given back when dropped.
struct MemoryPermit {
    _items: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// An export's memory budget (`memory_capacity` messages, `memory_max_bytes` bytes), shared
/// by what is submitted and what is loaded back from the store.
#[derive(Clone)]
struct Memory {
    items: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
}

impl Memory {
    fn new(limits: &Limits) -> Self {
        Self {
            items: Arc::new(Semaphore::new(limits.memory_capacity)),
            bytes: Arc::new(Semaphore::new(limits.memory_max_bytes)),
            max_bytes: limits.memory_max_bytes,
        }
    }

    /// What a message of `size` bytes costs: at least 1, at most the whole byte budget.
    fn cost(&self, size: u64) -> u32 {
        (size as usize).clamp(1, self.max_bytes) as u32
    }

    /// Room for a message of `size` bytes if there is some now.
    fn try_take(&self, size: u64) -> Option<MemoryPermit> {
        let items = self.items.clone().try_acquire_owned().ok()?;
        let bytes = self.bytes.clone().try_acquire_many_owned(self.cost(size)).ok()?;
        Some(MemoryPermit { _items: items, _bytes: bytes })
    }

    /// Room for a message of `size` bytes, waiting for it; `None` once closed.
    async fn take(&self, size: u64) -> Option<MemoryPermit> {
        let items = self.items.clone().acquire_owned().await.ok()?;
        let bytes = self.bytes.clone().acquire_many_owned(self.cost(size)).await.ok()?;
        Some(MemoryPermit { _items: items, _bytes: bytes })
    }
}

/// What a message holds while on its way to the task.
enum Budget {
    Memory(MemoryPermit),
    Spill { _held: OwnedSemaphorePermit },
}

struct Submission {
    record: Record,
    reply: Reply,
    budget: Budget,
}

/// Store-and-forward in front of one export's sink: [`submit`](Self::submit) hands a message
/// over and returns its [`Confirmation`]. See the [module documentation](super).
pub struct Forwarder {
    name: Arc<str>,
    tx: mpsc::UnboundedSender<Submission>,
    memory: Memory,
    spill: Option<Arc<Semaphore>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").field("name", &self.name).field("persistent", &self.spill.is_some()).finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Forwarder {
    /// Starts the task for the export `name`; with a `store`, first counts what an earlier
    /// run left in it, to send before anything new.
    pub(crate) async fn start(
        name: String,
        sink: Arc<dyn Sink>,
        store: Option<Arc<dyn Store>>,
        limits: Limits,
        metrics: ExportMetrics,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<Forwarder, super::StoreError> {
        let name: Arc<str> = name.into();
        let stats = match &store {
            Some(store) => store.stats(&name).await?,
            None => Default::default(),
        };
        if stats.count > 0 {
            info!(export = %name, stored = stats.count, "Messages stored by an earlier run are sent first.");
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let spill = store.as_ref().map(|_| Arc::new(Semaphore::new(SPILL_QUEUE.min(limits.memory_capacity))));
        let memory = Memory::new(&limits);
        let task = Task {
            memory: memory.clone(),
            name: name.clone(),
            sink,
            store,
            retry_interval: limits.retry_interval,
            backoff: limits.retry_interval,
            limits: limits.clone(),
            metrics,
            rx,
            stop,
            accepting: true,
            next_seq: 0,
            queue: VecDeque::new(),
            inflight: BTreeMap::new(),
            sends: FuturesUnordered::new(),
            starting: Vec::new(),
            returned: Vec::new(),
            down: None,
            saw_disconnected: false,
            store_count: stats.count,
            store_bytes: stats.bytes,
            stored_in_memory: 0,
            cursor: 0,
            removals: Vec::new(),
            unstorable: VecDeque::new(),
            store_failed_at: None,
        };
        Ok(Forwarder { name, tx, memory, spill, task: tasks.spawn(task.run()) })
    }

    /// The export's name (its queue in the store, its metrics label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands `message` over. Waits while the export's memory is full and there is no store
    /// to spill to (backpressure), or while the store is slower than the input.
    pub async fn submit(&self, message: Outgoing) -> Confirmation {
        let (reply, confirmation) = oneshot::channel();
        let record = Record { created_ms: now_ms(), message };
        let budget = match &self.spill {
            Some(spill) => match self.memory.try_take(record.size()) {
                Some(permit) => Budget::Memory(permit),
                None => match spill.clone().acquire_owned().await {
                    Ok(permit) => Budget::Spill { _held: permit },
                    Err(_) => return confirmation,
                },
            },
            None => match self.memory.take(record.size()).await {
                Some(permit) => Budget::Memory(permit),
                None => return confirmation,
            },
        };
        // The task ends only once every handle is gone; a send error drops `reply`, which the
        // caller sees as "not taken".
        let _ = self.tx.send(Submission { record, reply, budget });
        confirmation
    }

    /// Stops taking messages, waits for the messages in flight to be answered and for the
    /// store to be brought up to date, and returns. Messages still in memory and not stored
    /// are not confirmed: their bus deliveries stay unacknowledged and come back.
    pub async fn shutdown(self) {
        let Forwarder { tx, task, .. } = self;
        drop(tx);
        let _ = task.await;
    }
}

struct Entry {
    seq: u64,
    message: Arc<Outgoing>,
    created_ms: i64,
    size: u64,
    stored: Option<u64>,
    reply: Option<Reply>,
    /// Its part of the memory budget, given back when it leaves memory.
    _memory: Option<MemoryPermit>,
    attempts: u32,
}

impl Entry {
    fn confirm(&mut self, result: Result<(), String>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

struct Task {
    name: Arc<str>,
    /// The budget every message in memory holds a part of, loaded ones too.
    memory: Memory,
    sink: Arc<dyn Sink>,
    store: Option<Arc<dyn Store>>,
    limits: Limits,
    metrics: ExportMetrics,
    rx: mpsc::UnboundedReceiver<Submission>,
    /// The service is stopping: take nothing more.
    stop: CancellationToken,
    accepting: bool,
    next_seq: u64,
    /// Waiting to be sent, by `seq`.
    queue: VecDeque<Entry>,
    /// Sent, awaiting the sink's answer, by `seq`.
    inflight: BTreeMap<u64, Entry>,
    /// Sends in flight. Each is polled once when dispatched, in dispatch order, so that a
    /// sink that keeps order (one MQTT connection) gets them in that order.
    sends: FuturesUnordered<SendFuture>,
    /// Sends dispatched, not yet polled.
    starting: Vec<SendFuture>,
    /// Answered "unavailable" while the sink is down, waiting to go back into `queue`.
    returned: Vec<Entry>,
    /// Since when the sink is down, and when to try again.
    down: Option<Instant>,
    saw_disconnected: bool,
    retry_interval: Duration,
    backoff: Duration,
    /// Messages in the store (including those loaded in memory), and their bytes.
    store_count: u64,
    store_bytes: u64,
    /// Stored messages that are in memory (loaded or spilled).
    stored_in_memory: u64,
    /// Every stored message with an id up to `cursor` is in memory or delivered.
    cursor: u64,
    /// Delivered stored messages to remove from the store.
    removals: Vec<u64>,
    /// Submissions the store could not take yet (it failed), in order.
    unstorable: VecDeque<Submission>,
    store_failed_at: Option<Instant>,
}

impl Task {
    fn backlog(&self) -> u64 {
        self.store_count.saturating_sub(self.stored_in_memory)
    }

    fn has_unstored(&self) -> bool {
        self.queue.iter().chain(self.inflight.values()).chain(self.returned.iter()).any(|e| e.stored.is_none())
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = tokio::time::interval(WATCH);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if !self.accepting && self.inflight.is_empty() {
                break;
            }
            self.load().await;
            self.dispatch();
            for mut send in std::mem::take(&mut self.starting) {
                let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
                match first {
                    Poll::Ready(out) => self.sends.push(Box::pin(std::future::ready(out))),
                    Poll::Pending => self.sends.push(send),
                }
            }
            let retry_at = self.down.unwrap_or_else(Instant::now);
            tokio::select! {
                submission = self.rx.recv(), if self.accepting => match submission {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < LOAD_BATCH {
                            match self.rx.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        self.accept(batch).await;
                    }
                    None => {
                        // Stopping: what is in flight is answered, nothing new is sent.
                        self.accepting = false;
                        self.store_pending().await;
                    }
                },
                () = self.stop.cancelled(), if self.accepting => {
                    self.accepting = false;
                    while let Ok(submission) = self.rx.try_recv() {
                        self.unstorable.push_back(submission);
                    }
                    if self.store.is_some() {
                        self.store_pending().await;
                    }
                }
                Some((seq, result)) = self.sends.next(), if !self.sends.is_empty() => self.answered(seq, result).await,
                () = tokio::time::sleep_until(retry_at), if self.down.is_some() && self.inflight.is_empty() => {
                    self.resume("retry interval elapsed");
                }
                _ = watch.tick(), if self.down.is_some() => {
                    if !self.sink.is_connected() {
                        self.saw_disconnected = true;
                    } else if self.saw_disconnected && self.inflight.is_empty() {
                        self.resume("connection back");
                    }
                }
                _ = tick.tick() => self.housekeeping().await,
            }
        }
        self.flush_removals().await;
        self.update_gauges();
        debug!(export = %self.name, "Export forwarder stopped.");
    }

    /// Takes new submissions: into memory while nothing is stored ahead of them and the sink
    /// is up, else into the store.
    async fn accept(&mut self, batch: Vec<Submission>) {
        let mut to_store = Vec::new();
        for submission in batch {
            let must_store = self.store.is_some()
                && (self.down.is_some()
                    || self.backlog() > 0
                    || !self.unstorable.is_empty()
                    || !to_store.is_empty()
                    || matches!(submission.budget, Budget::Spill { .. }));
            if must_store {
                to_store.push(submission);
            } else {
                let Submission { record, reply, budget } = submission;
                let permit = match budget {
                    Budget::Memory(permit) => Some(permit),
                    Budget::Spill { .. } => None,
                };
                let size = record.size();
                self.queue.push_back(Entry {
                    seq: self.next_seq,
                    message: Arc::new(record.message),
                    created_ms: record.created_ms,
                    size,
                    stored: None,
                    reply: Some(reply),
                    _memory: permit,
                    attempts: 0,
                });
                self.next_seq += 1;
            }
        }
        if !to_store.is_empty() {
            self.unstorable.extend(to_store);
            self.store_pending().await;
        }
    }

    /// Writes every unstored message in memory, then the pending submissions, to the store,
    /// in order, applying the store's bounds.
    async fn store_pending(&mut self) {
        loop {
            let before = self.unstorable.len();
            self.store_round().await;
            if self.unstorable.is_empty() || self.unstorable.len() == before || self.store_failed_at.is_some() {
                return;
            }
        }
    }

    /// One write of [`store_pending`](Self::store_pending): everything when it fits; one
    /// message at a time when the store is full and drops its oldest, so the newest are kept.
    async fn store_round(&mut self) {
        let Some(store) = self.store.clone() else { return };
        // Unstored messages in memory first: they were submitted before.
        let mut memory: Vec<(bool, u64)> = Vec::new(); // (in flight, seq)
        memory.extend(self.inflight.values().filter(|e| e.stored.is_none()).map(|e| (true, e.seq)));
        memory.extend(self.returned.iter().filter(|e| e.stored.is_none()).map(|e| (false, e.seq)));
        memory.extend(self.queue.iter().filter(|e| e.stored.is_none()).map(|e| (false, e.seq)));
        memory.sort_by_key(|(_, seq)| *seq);
        let mut records: Vec<Record> = Vec::new();
        for &(_, seq) in &memory {
            let entry = self.entry(seq).expect("listed from memory");
            records.push(Record { created_ms: entry.created_ms, message: (*entry.message).clone() });
        }
        let full = self.store_count + (records.len() + self.unstorable.len()) as u64 > self.limits.max_items;
        let pending = if full && self.limits.drop_policy == DropPolicy::DropOldest { 1 } else { self.unstorable.len() };
        records.extend(self.unstorable.iter().take(pending).map(|s| s.record.clone()));
        if records.is_empty() {
            return;
        }
        // Bounds: make room, or refuse what does not fit.
        let admitted = self.make_room(&store, &records).await;
        let ids = match store.append(&self.name, &records[..admitted]).await {
            Ok(ids) => ids,
            Err(e) => {
                if self.store_failed_at.is_none() {
                    error!(export = %self.name, error = %e, "Export store write failed; messages wait in memory.");
                }
                self.store_failed_at = Some(Instant::now());
                return;
            }
        };
        if self.store_failed_at.take().is_some() {
            info!(export = %self.name, "Export store writes again.");
        }
        let mut ids = ids.into_iter();
        // Answered once the counts and gauges say what the answers say.
        let mut replies: Vec<(Reply, Result<(), String>)> = Vec::new();
        for (index, &(_, seq)) in memory.iter().enumerate() {
            let size = records[index].size();
            let entry = self.entry_mut(seq).expect("listed from memory");
            if index < admitted {
                let id = ids.next().expect("one id per record");
                entry.stored = Some(id);
                replies.extend(entry.reply.take().map(|reply| (reply, Ok(()))));
                self.stored_in_memory += 1;
                self.store_count += 1;
                self.store_bytes += size;
                self.cursor = self.cursor.max(id);
            }
            // Beyond `admitted`: the store is full and holds nothing older to drop; the
            // message stays in memory and is sent from there.
        }
        let taken: Vec<Submission> = self.unstorable.drain(..pending.min(self.unstorable.len())).collect();
        for (offset, submission) in taken.into_iter().enumerate() {
            let index = memory.len() + offset;
            let size = records[index].size();
            if index < admitted {
                ids.next().expect("one id per record");
                self.store_count += 1;
                self.store_bytes += size;
                replies.push((submission.reply, Ok(())));
            } else {
                self.metrics.add_dropped(&self.name, DropReason::policy, 1);
                warn!(export = %self.name, "Export store full; message refused (drop policy refuse-newest).");
                let refused = Err("store-and-forward store full: message refused by the drop policy".into());
                replies.push((submission.reply, refused));
            }
        }
        self.update_gauges();
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    /// How many of `records` (from the first) fit in the store, after dropping the oldest
    /// stored messages not in memory if the policy says so.
    async fn make_room(&mut self, store: &Arc<dyn Store>, records: &[Record]) -> usize {
        let (max_items, max_bytes) = (self.limits.max_items, self.limits.max_bytes);
        let need_items = self.store_count + records.len() as u64;
        let need_bytes = self.store_bytes + records.iter().map(Record::size).sum::<u64>();
        if need_items <= max_items && need_bytes <= max_bytes {
            return records.len();
        }
        if self.limits.drop_policy == DropPolicy::DropOldest && self.backlog() > 0 {
            // Drop enough of the oldest waiting in the store (never those in memory).
            let excess_items = need_items.saturating_sub(max_items);
            let mut to_drop = excess_items.min(self.backlog());
            if need_bytes > max_bytes && self.store_count > 0 {
                let average = (self.store_bytes / self.store_count).max(1);
                to_drop = to_drop.max(need_bytes.saturating_sub(max_bytes).div_ceil(average)).min(self.backlog());
            }
            if to_drop > 0 {
                match store.remove_oldest(&self.name, self.cursor, to_drop).await {
                    Ok(removed) => {
                        self.store_count = self.store_count.saturating_sub(removed.count);
                        self.store_bytes = self.store_bytes.saturating_sub(removed.bytes);
                        self.metrics.add_dropped(&self.name, DropReason::policy, removed.count);
                        warn!(
                            export = %self.name,
                            dropped = removed.count,
                            "Export store full; oldest stored messages dropped (drop policy drop-oldest)."
                        );
                    }
                    Err(e) => error!(export = %self.name, error = %e, "Export store could not drop old messages."),
                }
            }
        }
        let mut bytes = self.store_bytes;
        records
            .iter()
            .zip(self.store_count + 1..)
            .take_while(|(record, count)| {
                bytes += record.size();
                *count <= max_items && bytes <= max_bytes
            })
            .count()
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        self.inflight
            .get(&seq)
            .or_else(|| self.returned.iter().find(|e| e.seq == seq))
            .or_else(|| self.queue.iter().find(|e| e.seq == seq))
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        if self.inflight.contains_key(&seq) {
            return self.inflight.get_mut(&seq);
        }
        if let Some(i) = self.returned.iter().position(|e| e.seq == seq) {
            return self.returned.get_mut(i);
        }
        self.queue.iter_mut().find(|e| e.seq == seq)
    }

    /// Loads stored messages back into memory while the sink is up, the store holds more
    /// than memory does, nothing unstored is in memory, and the memory budget has room.
    async fn load(&mut self) {
        let Some(store) = self.store.clone() else { return };
        let room = LOAD_BATCH.min(self.memory.items.available_permits());
        if self.down.is_some()
            || !self.accepting
            || self.backlog() == 0
            || room == 0
            || self.queue.len() + self.inflight.len() >= LOAD_BATCH
            || self.has_unstored()
        {
            return;
        }
        self.flush_removals().await;
        match store.load(&self.name, self.cursor, room).await {
            Ok(loaded) if loaded.is_empty() => {
                // The store holds less than counted (dropped by age meanwhile): recount.
                self.store_count = self.stored_in_memory;
                if let Ok(stats) = store.stats(&self.name).await {
                    self.store_bytes = stats.bytes;
                }
            }
            Ok(loaded) => {
                for stored in loaded {
                    let size = stored.record.size();
                    // Beyond the budget: loaded again once memory has room.
                    let Some(permit) = self.memory.try_take(size) else { break };
                    self.cursor = stored.id;
                    self.stored_in_memory += 1;
                    self.queue.push_back(Entry {
                        seq: self.next_seq,
                        message: Arc::new(stored.record.message),
                        created_ms: stored.record.created_ms,
                        size,
                        stored: Some(stored.id),
                        reply: None,
                        _memory: Some(permit),
                        attempts: 0,
                    });
                    self.next_seq += 1;
                }
            }
            Err(e) => {
                warn!(export = %self.name, error = %e, "Export store read failed; trying again.");
                self.down = Some(Instant::now() + STORE_RETRY);
            }
        }
    }

    /// Sends what may be sent: up to `max_in_flight`, one per key for sinks that do not keep
    /// order over many in flight.
    fn dispatch(&mut self) {
        if self.down.is_some() || !self.accepting {
            return;
        }
        let ordered = self.sink.keeps_order();
        let mut busy: HashSet<String> =
            if ordered { HashSet::new() } else { self.inflight.values().map(|e| e.message.key.clone()).collect() };
        let mut i = 0;
        let scan = self.limits.max_in_flight * 4;
        while self.inflight.len() < self.limits.max_in_flight && i < self.queue.len() && i < scan {
            if !ordered && busy.contains(&self.queue[i].message.key) {
                i += 1;
                continue;
            }
            let mut entry = self.queue.remove(i).expect("index checked");
            if let Some(max_age) = self.limits.max_age {
                if now_ms() - entry.created_ms > max_age.as_millis() as i64 {
                    self.metrics.add_dropped(&self.name, DropReason::age, 1);
                    debug!(export = %self.name, "Message older than max_age dropped unsent.");
                    entry.confirm(Err("older than store_and_forward.max_age: dropped unsent".into()));
                    self.forget_stored(&entry);
                    continue;
                }
            }
            if !ordered {
                busy.insert(entry.message.key.clone());
            }
            if entry.attempts > 0 {
                self.metrics.add_retried(&self.name);
            }
            let (sink, message, seq) = (self.sink.clone(), entry.message.clone(), entry.seq);
            self.starting.push(Box::pin(async move { (seq, sink.send(&message).await) }));
            self.inflight.insert(seq, entry);
        }
    }

    /// A delivered or rejected stored message leaves the store.
    fn forget_stored(&mut self, entry: &Entry) {
        if let Some(id) = entry.stored {
            self.removals.push(id);
            self.stored_in_memory = self.stored_in_memory.saturating_sub(1);
            self.store_count = self.store_count.saturating_sub(1);
            self.store_bytes = self.store_bytes.saturating_sub(entry.size);
        }
    }

    async fn answered(&mut self, seq: u64, result: Result<(), SinkError>) {
        let Some(mut entry) = self.inflight.remove(&seq) else { return };
        match result {
            Ok(()) => {
                self.metrics.add_sent(&self.name);
                entry.confirm(Ok(()));
                self.forget_stored(&entry);
                if self.down.is_none() {
                    self.backoff = self.retry_interval;
                }
            }
            Err(SinkError::Rejected(why)) => {
                self.metrics.add_failed(&self.name);
                warn!(export = %self.name, sink = %self.sink.describe(), error = %why, "Export destination rejected a message; dropped.");
                entry.confirm(Err(format!("rejected by {}: {why}", self.sink.describe())));
                self.forget_stored(&entry);
            }
            Err(SinkError::Unavailable(why)) => {
                if self.down.is_none() {
                    warn!(export = %self.name, sink = %self.sink.describe(), error = %why, retry_in = ?self.backoff, "Export destination unavailable; retrying.");
                    self.down = Some(Instant::now() + self.backoff);
                    self.saw_disconnected = !self.sink.is_connected();
                    self.backoff = (self.backoff * 2).min(self.limits.max_retry_interval);
                }
                entry.attempts += 1;
                self.returned.push(entry);
                if self.inflight.is_empty() {
                    self.requeue();
                    if self.store.is_some() && self.accepting {
                        self.store_pending().await;
                    }
                }
            }
        }
        if self.removals.len() >= REMOVE_BATCH {
            self.flush_removals().await;
        }
    }

    /// Puts the messages answered "unavailable" back in front, in submission order.
    fn requeue(&mut self) {
        if self.returned.is_empty() {
            return;
        }
        let mut all: Vec<Entry> = std::mem::take(&mut self.returned);
        all.extend(self.queue.drain(..));
        all.sort_by_key(|e| e.seq);
        self.queue = all.into();
    }

    fn resume(&mut self, why: &str) {
        self.requeue();
        debug!(export = %self.name, why, "Export retrying.");
        self.down = None;
        self.saw_disconnected = false;
    }

    async fn flush_removals(&mut self) {
        let Some(store) = &self.store else { return };
        if self.removals.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.removals);
        if let Err(e) = store.remove(&self.name, &ids).await {
            // They are delivered: at worst sent again after a restart.
            warn!(export = %self.name, error = %e, "Export store could not remove delivered messages.");
        }
    }

    async fn housekeeping(&mut self) {
        self.flush_removals().await;
        if !self.unstorable.is_empty() && self.store_failed_at.is_none_or(|t| t.elapsed() >= STORE_RETRY) {
            self.store_pending().await;
        }
        if let (Some(store), Some(max_age)) = (self.store.clone(), self.limits.max_age) {
            if self.backlog() > 0 {
                let before = now_ms() - max_age.as_millis() as i64;
                match store.remove_older_than(&self.name, self.cursor, before).await {
                    Ok(removed) if removed.count > 0 => {
                        self.store_count = self.store_count.saturating_sub(removed.count);
                        self.store_bytes = self.store_bytes.saturating_sub(removed.bytes);
                        self.metrics.add_dropped(&self.name, DropReason::age, removed.count);
                        warn!(export = %self.name, dropped = removed.count, "Stored messages older than max_age dropped.");
                    }
                    Ok(_) => {}
                    Err(e) => warn!(export = %self.name, error = %e, "Export store could not drop old messages."),
                }
            }
        }
        self.update_gauges();
    }

    fn update_gauges(&self) {
        let memory = self.queue.len() + self.inflight.len() + self.returned.len() + self.unstorable.len();
        self.metrics.set_queued(&self.name, Place::memory, memory as u64);
        self.metrics.set_queued(&self.name, Place::store, self.store_count);
    }
}
