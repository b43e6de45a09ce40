//! EdgeX 4.x topics, MQTT wildcard matching and the mapping to NATS subjects.
//!
//! Topics are written as MQTT writes them (`/` between levels, `+` one level, `#` the
//! rest). Names inside topics are percent-encoded as EdgeX does, so a device called
//! `Room 1` publishes on `…/Room%201/…`. NATS backends map topics to subjects as EdgeX's
//! NATS client does: `/` → `.`, `+` → `*`, `#` → `>`.

/// The prefix of every EdgeX topic.
pub const BASE: &str = "edgex";

/// Where core-data (and app services) listen for device events.
pub const EVENTS_FILTER: &str = "edgex/events/device/#";

/// Where core-metadata's system events go.
pub const SYSTEM_EVENTS_FILTER: &str = "edgex/system-events/#";

/// `edgex/events/device/{service}/{profile}/{device}/{source}`: where a device service
/// publishes an event.
pub fn event(service: &str, profile: &str, device: &str, source: &str) -> String {
    join(&["edgex/events/device", &encode(service), &encode(profile), &encode(device), &encode(source)])
}

/// `edgex/events/core/{service}/{profile}/{device}/{source}`: where core-data forwards an
/// event it received over REST.
pub fn core_event(service: &str, profile: &str, device: &str, source: &str) -> String {
    join(&["edgex/events/core", &encode(service), &encode(profile), &encode(device), &encode(source)])
}

/// `edgex/device/command/request/{service}/{device}/{command}/{method}`: a command request
/// to a device service (`method` is `get` or `set`).
pub fn command_request(service: &str, device: &str, command: &str, method: &str) -> String {
    join(&["edgex/device/command/request", &encode(service), &encode(device), &encode(command), method])
}

/// `edgex/device/command/request/{service}/#`: every command request to `service`.
pub fn command_requests_of(service: &str) -> String {
    join(&["edgex/device/command/request", &encode(service), "#"])
}

/// `edgex/response/{service}/{requestId}`: where the answer to a request made by `service` goes.
pub fn response(service: &str, request_id: &str) -> String {
    join(&["edgex/response", &encode(service), request_id])
}

/// `edgex/core/command/request/{device}/{command}/{method}`: a command through core-command.
pub fn core_command_request(device: &str, command: &str, method: &str) -> String {
    join(&["edgex/core/command/request", &encode(device), &encode(command), method])
}

fn join(parts: &[&str]) -> String {
    parts.join("/")
}

/// Percent-encodes a name for use as one topic level: everything but `A-Z a-z 0-9 - . _ ~`.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded topic level back to the name (invalid escapes kept as they are).
pub fn decode(level: &str) -> String {
    let bytes = level.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| level.to_owned())
}

/// Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` this level and
/// all below, including none: `a/#` matches `a`).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether `filter` is a well-formed MQTT filter: not empty, `#` only as the whole last
/// level, `+` only as a whole level.
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == levels.len() - 1,
        "+" => true,
        l => !l.contains(['#', '+']),
    })
}

/// Whether `topic` is valid to publish on: not empty, no wildcards.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['#', '+'])
}

/// An MQTT topic or filter as a NATS subject, as EdgeX maps it.
pub fn to_nats_subject(topic: &str) -> String {
    topic
        .split('/')
        .map(|l| match l {
            "#" => ">",
            "+" => "*",
            l => l,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A NATS subject as the MQTT topic it stands for.
pub fn from_nats_subject(subject: &str) -> String {
    subject.replace('.', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_edgex() {
        assert_eq!(
            event("device-virtual", "Random-Integer-Device", "Int 1", "Int8"),
            "edgex/events/device/device-virtual/Random-Integer-Device/Int%201/Int8"
        );
        assert_eq!(command_request("ds", "d", "c", "get"), "edgex/device/command/request/ds/d/c/get");
        assert_eq!(response("core-command", "r1"), "edgex/response/core-command/r1");
        assert_eq!(decode("Int%201"), "Int 1");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn wildcards_match_as_in_mqtt() {
        assert!(matches("edgex/events/device/#", "edgex/events/device/a/b/c/d"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/d"));
        assert!(!matches("a/+", "a/b/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(matches("#", "x/y"));
        assert!(is_valid_filter("a/+/#"));
        assert!(!is_valid_filter("a/#/b"));
        assert!(!is_valid_filter("a/b+"));
        assert!(!is_valid_topic("a/+"));
    }

    #[test]
    fn nats_subjects_map_like_edgex() {
        assert_eq!(to_nats_subject("edgex/events/device/#"), "edgex.events.device.>");
        assert_eq!(to_nats_subject("edgex/+/x"), "edgex.*.x");
        assert_eq!(from_nats_subject("edgex.events.device.a"), "edgex/events/device/a");
    }
}
