//! core-data's configuration: defaults in code, YAML file, `OXEDGE_*` overrides.

use std::time::Duration;

use oxedge_bus::config::{BusConfig, BusType};
use oxedge_contracts::GoDuration;
use oxedge_runtime::config::{DatabaseSection, LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

/// The default port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59880;

/// What to do with the stored events of a device deleted from core-metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDeviceDelete {
    /// Keep them until retention removes them.
    Keep,
    /// Delete them (in the background, in bounded batches).
    Delete,
}

/// How events are taken from the bus and written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    /// Store events (`true`), or only accept and forward them (`false`), as EdgeX's
    /// `PersistData`.
    pub persist_data: bool,
    /// The most events written in one transaction.
    pub batch_size: usize,
    /// How long a batch waits for more events once none are waiting, as a Go duration;
    /// `0s` (the default) writes at once what is there. Events that arrive while a batch is
    /// being written make up the next one, so batches grow with the load by themselves; and
    /// a broker that sends only so many unacknowledged messages (the embedded one: 100)
    /// sends no more until this batch is written, so waiting would only stall it.
    pub batch_wait: GoDuration,
    /// How many received events core-data holds at once, from their arrival until they are
    /// written and acknowledged; at that many it stops taking messages from the broker
    /// (unacknowledged messages stay with the broker). This bounds its memory: about 2 KB
    /// per event of 10 readings, plus the events decoded for the batches in hand.
    pub queue_capacity: usize,
    /// The largest message accepted from the bus, in bytes; larger ones are counted and skipped.
    pub max_message_size: usize,
    /// What to do with the events of a device deleted from core-metadata.
    pub on_device_delete: OnDeviceDelete,
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            persist_data: true,
            batch_size: 250,
            batch_wait: GoDuration::ZERO,
            queue_capacity: 500,
            max_message_size: 8 * 1024 * 1024,
            on_device_delete: OnDeviceDelete::Keep,
        }
    }
}

/// How long events are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Delete events older than this (by origin), as a Go duration (`168h`); `0s` keeps them.
    pub max_age: GoDuration,
    /// Keep at most this many events, deleting the earliest stored; 0 keeps them all.
    pub max_events: u64,
    /// How often retention runs, as a Go duration; more than zero.
    pub interval: GoDuration,
    /// The most events deleted in one transaction, so that ingestion never waits long.
    pub batch: usize,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self { max_age: GoDuration::ZERO, max_events: 0, interval: Duration::from_secs(30).into(), batch: 2000 }
    }
}

/// The whole configuration of core-data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// Storage.
    pub database: DatabaseSection,
    /// The message bus events arrive on (an MQTT broker on localhost by default).
    pub bus: BusConfig,
    /// Taking events from the bus.
    pub ingest: IngestSection,
    /// How long events are kept.
    pub retention: RetentionSection,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            service: ServiceSection { port: DEFAULT_PORT, ..Default::default() },
            log: LogSection::default(),
            database: DatabaseSection::sqlite("oxedge-data/core-data.db"),
            bus: BusConfig { kind: BusType::Mqtt, ..BusConfig::default() },
            ingest: IngestSection::default(),
            retention: RetentionSection::default(),
        }
    }
}

impl IngestSection {
    /// `batch_wait` as a duration.
    pub fn batch_wait(&self) -> Duration {
        self.batch_wait.get()
    }
}

impl RetentionSection {
    /// `max_age` as a duration; `None` when events are kept whatever their age.
    pub fn max_age(&self) -> Option<Duration> {
        Some(self.max_age.get()).filter(|d| !d.is_zero())
    }

    /// `interval` as a duration.
    pub fn interval(&self) -> Duration {
        self.interval.get()
    }

    /// Whether retention has anything to do.
    pub fn enabled(&self) -> bool {
        self.max_age().is_some() || self.max_events > 0
    }
}

impl DataConfig {
    /// Checks what serde cannot, naming every bad key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if self.retention.interval.is_zero() {
            problems.push("retention.interval: must be more than 0s".to_owned());
        }
        if self.ingest.batch_size == 0 {
            problems.push("ingest.batch_size: must be at least 1".to_owned());
        }
        if self.ingest.queue_capacity < self.ingest.batch_size {
            problems.push("ingest.queue_capacity: must be at least ingest.batch_size".to_owned());
        }
        if self.retention.batch == 0 {
            problems.push("retention.batch: must be at least 1".to_owned());
        }
        oxedge_runtime::config::check_problems(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_are_valid() {
        let cfg = DataConfig::default();
        cfg.validate().unwrap();
        let yaml = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<DataConfig>(&yaml).unwrap(), cfg);
    }

    #[test]
    fn bad_values_are_named() {
        let mut cfg = DataConfig::default();
        cfg.retention.interval = "0s".into();
        cfg.ingest.batch_size = 0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("retention.interval") && err.contains("ingest.batch_size"), "{err}");
        let vars = [("OXEDGE_RETENTION_MAX_AGE".to_owned(), "a week".to_owned())];
        let err = format!("{:#}", oxedge_runtime::config::load_from::<DataConfig>(None, vars, "OXEDGE").unwrap_err());
        assert!(err.contains("retention.max_age") && err.contains("'a week' is not a duration"), "{err}");
    }
}
