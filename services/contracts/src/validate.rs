//! Validation as EdgeX does it: every problem found, each naming its field.

use crate::error::EdgeXError;

/// The longest name Oxedge accepts (EdgeX sets none; unbounded names hurt storage and topics).
pub const MAX_NAME_LEN: usize = 256;

/// Characters EdgeX forbids in entity names (`edgex-dto-no-reserved-chars`).
const RESERVED_CHARS: &[char] = &['/', '#', '+', '$'];

/// Collects validation problems; `finish` turns them into one 400 error.
#[derive(Debug, Default)]
pub struct Validator {
    problems: Vec<String>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`.
    pub fn fail(&mut self, field: &str, problem: impl AsRef<str>) {
        self.problems.push(format!("{field}: {}", problem.as_ref()));
    }

    /// Records a problem with `field` when `ok` is false.
    pub fn check(&mut self, ok: bool, field: &str, problem: &str) {
        if !ok {
            self.fail(field, problem);
        }
    }

    /// A required entity name: not blank, not over-long, none of `/#+$`.
    pub fn name(&mut self, field: &str, value: &str) {
        if let Err(p) = check_name(value) {
            self.fail(field, p);
        }
    }

    /// An optional name: empty is fine, otherwise as [`Validator::name`].
    pub fn optional_name(&mut self, field: &str, value: &str) {
        if !value.is_empty() {
            self.name(field, value);
        }
    }

    /// A device service name: EdgeX allows only RFC 3986 unreserved characters and `:;=`.
    pub fn service_name(&mut self, field: &str, value: &str) {
        if let Err(p) = check_name(value) {
            self.fail(field, p);
        } else if !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_~:;=".contains(c)) {
            self.fail(field, "only letters, digits and -_~:;= are allowed");
        }
    }

    /// A list of labels: each not blank and not over-long.
    pub fn labels(&mut self, field: &str, labels: &[String]) {
        for (i, l) in labels.iter().enumerate() {
            if l.trim().is_empty() {
                self.fail(&format!("{field}[{i}]"), "must not be empty");
            } else if l.len() > MAX_NAME_LEN {
                self.fail(&format!("{field}[{i}]"), format!("longer than {MAX_NAME_LEN} bytes"));
            }
        }
    }

    /// A Go-style duration (`100ms`, `1h30m`).
    pub fn duration(&mut self, field: &str, value: &str) {
        if parse_duration(value).is_none() {
            self.fail(field, format!("'{value}' is not a duration such as 100ms, 10s or 1h30m"));
        }
    }

    /// True when nothing failed so far.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// `Ok` when nothing failed, else a 400 listing every problem.
    pub fn finish(self) -> Result<(), EdgeXError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(EdgeXError::invalid(self.problems.join("; ")))
        }
    }
}

/// An update must name its target by `id` (a UUID) or by `name`.
pub fn check_identity(v: &mut Validator, prefix: &str, id: Option<&str>, name: Option<&str>) {
    let id = id.filter(|s| !s.trim().is_empty());
    let name = name.filter(|s| !s.trim().is_empty());
    match (id, name) {
        (None, None) => v.fail(&format!("{prefix}.id"), "id or name is required"),
        (Some(id), _) if uuid::Uuid::parse_str(id).is_err() => v.fail(&format!("{prefix}.id"), "must be a UUID"),
        _ => {}
    }
}

/// Checks one entity name; the error says what is wrong with it.
pub fn check_name(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else if value.len() > MAX_NAME_LEN {
        Err(format!("longer than {MAX_NAME_LEN} bytes"))
    } else if value.contains(RESERVED_CHARS) {
        Err("must not contain any of the reserved characters /#+$".into())
    } else if value.chars().any(char::is_control) {
        Err("must not contain control characters".into())
    } else {
        Ok(())
    }
}

/// Parses a Go `time.ParseDuration` string (units ns, us, µs, ms, s, m, h; decimals allowed;
/// a bare `0`), exactly, in integer nanoseconds; `None` for anything else, a negative value
/// or one that overflows.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let whole_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (whole, after) = rest.split_at(whole_end);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len())),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let nanos_per_unit: u64 = match &after[..unit_end] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
        let mut part = whole.checked_mul(nanos_per_unit)?;
        // The fraction's digits beyond the unit's precision add nothing, as in Go.
        let mut scale = nanos_per_unit;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            part = part.checked_add(u64::from(digit - b'0') * scale)?;
        }
        total = total.checked_add(part)?;
        rest = &after[unit_end..];
    }
    Some(std::time::Duration::from_nanos(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_follow_edgex_rules() {
        assert!(check_name("Random-Integer-Device").is_ok());
        assert!(check_name("device 1.ä").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("   ").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("a#b").is_err());
        assert!(check_name("a+b").is_err());
        assert!(check_name("a$b").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_name("a\nb").is_err());
    }

    #[test]
    fn service_names_allow_only_unreserved_characters() {
        let mut v = Validator::new();
        v.service_name("service.name", "device-virtual_1:~;=");
        assert!(v.is_ok());
        v.service_name("service.name", "device.virtual");
        let err = v.finish().unwrap_err();
        assert!(err.message.starts_with("service.name:"), "{}", err.message);
    }

    #[test]
    fn durations_parse_as_go_does() {
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration(".5s"), Some(Duration::from_millis(500)));
        // Exact in nanoseconds where floating point was not (a property test found it).
        assert_eq!(parse_duration("14128849.009324721s"), Some(Duration::from_nanos(14_128_849_009_324_721)));
        assert_eq!(parse_duration("1.0000000001s"), Some(Duration::from_secs(1)), "beyond ns: dropped");
        for bad in ["", "+", ".s", "10", "s", "1x", "-1s", "1..2s", "ms10", "99999999999999999999h", "5124096h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let mut v = Validator::new();
        v.name("device.name", "");
        v.duration("device.autoEvents[0].interval", "often");
        let msg = v.finish().unwrap_err().message;
        assert!(msg.contains("device.name: must not be empty"), "{msg}");
        assert!(msg.contains("device.autoEvents[0].interval"), "{msg}");
    }
}
