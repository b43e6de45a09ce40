//! How each DTO maps to a store [`Record`]: its kind, its indexed fields and its references.

use oxedge_contracts::{Device, DeviceProfile, DeviceService, EdgeXError, ProvisionWatcher};
use serde::{de::DeserializeOwned, Serialize};

use crate::store::{Kind, Record, Requires};

/// A DTO core-metadata stores.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// Its kind in the store.
    const KIND: Kind;
    /// Its id.
    fn id(&self) -> &str;
    /// Its name.
    fn name(&self) -> &str;
    /// Sets id and timestamps on creation.
    fn stamp(&mut self, id: String, created: i64, modified: i64);
    /// Sets the modification time.
    fn touch(&mut self, modified: i64);
    /// Its creation time.
    fn created(&self) -> i64;
    /// The records it refers to, which must exist.
    fn requires(&self) -> Requires {
        Vec::new()
    }
    /// Fills the indexed fields of its record.
    fn index(&self, rec: &mut Record);
    /// Clears fields computed for answers, which are never stored.
    fn strip_computed(&mut self) {}

    /// The record to store.
    fn to_record(&self) -> Result<Record, EdgeXError> {
        let body = serde_json::to_string(self).map_err(|e| EdgeXError::server(format!("encoding failed: {e}")))?;
        let mut rec = Record {
            id: self.id().to_owned(),
            name: self.name().to_owned(),
            created: self.created(),
            body,
            ..Default::default()
        };
        self.index(&mut rec);
        Ok(rec)
    }

    /// The DTO from a stored record.
    fn from_record(rec: &Record) -> Result<Self, EdgeXError> {
        serde_json::from_str(&rec.body)
            .map_err(|e| EdgeXError::server(format!("stored {} '{}' is unreadable: {e}", Self::KIND.label(), rec.name)))
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The identity and timestamps of DTOs with top-level `id`, `name`, `created`, `modified`.
macro_rules! stamps {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn created(&self) -> i64 {
            self.created
        }
        fn stamp(&mut self, id: String, created: i64, modified: i64) {
            self.id = id;
            self.created = created;
            self.modified = modified;
        }
        fn touch(&mut self, modified: i64) {
            self.modified = modified;
        }
    };
}

impl Entity for DeviceService {
    const KIND: Kind = Kind::Service;
    stamps!();
    fn index(&self, rec: &mut Record) {
        rec.labels = self.labels.clone();
    }
}

impl Entity for DeviceProfile {
    const KIND: Kind = Kind::Profile;
    fn strip_computed(&mut self) {
        self.info.linked_device_count = None;
    }
    fn id(&self) -> &str {
        &self.info.id
    }
    fn name(&self) -> &str {
        &self.info.name
    }
    fn created(&self) -> i64 {
        self.created
    }
    fn stamp(&mut self, id: String, created: i64, modified: i64) {
        self.info.id = id;
        self.created = created;
        self.modified = modified;
    }
    fn touch(&mut self, modified: i64) {
        self.modified = modified;
    }
    fn index(&self, rec: &mut Record) {
        rec.labels = self.info.labels.clone();
        rec.manufacturer = non_empty(&self.info.manufacturer);
        rec.model = non_empty(&self.info.model);
    }
}

impl Entity for Device {
    const KIND: Kind = Kind::Device;
    stamps!();
    fn requires(&self) -> Requires {
        let mut r = vec![(Kind::Service, self.service_name.clone()), (Kind::Profile, self.profile_name.clone())];
        if !self.parent.is_empty() {
            r.push((Kind::Device, self.parent.clone()));
        }
        r
    }
    fn index(&self, rec: &mut Record) {
        rec.labels = self.labels.clone();
        rec.service = non_empty(&self.service_name);
        rec.profile = non_empty(&self.profile_name);
        rec.parent = non_empty(&self.parent);
    }
}

impl Entity for ProvisionWatcher {
    const KIND: Kind = Kind::Watcher;
    stamps!();
    fn requires(&self) -> Requires {
        let mut r = vec![(Kind::Service, self.service_name.clone())];
        if !self.discovered_device.profile_name.is_empty() {
            r.push((Kind::Profile, self.discovered_device.profile_name.clone()));
        }
        r
    }
    fn index(&self, rec: &mut Record) {
        rec.labels = self.labels.clone();
        rec.service = non_empty(&self.service_name);
        rec.profile = non_empty(&self.discovered_device.profile_name);
    }
}
