//! [`GoDuration`]: a duration written as Go writes one (`500ms`, `10s`, `1h30m`), the way
//! EdgeX's configuration and DTOs spell intervals and timeouts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validate::parse_duration;

/// A duration that (de)serializes as a Go duration string. A configuration key of this type
/// refuses a malformed value when the configuration is read, with an error naming the key
/// (the loader reports the path), instead of falling back to a default later.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// Zero.
    pub const ZERO: GoDuration = GoDuration(Duration::ZERO);

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Whether it is zero (for keys where zero means "off").
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for GoDuration {
    fn from(duration: Duration) -> Self {
        GoDuration(duration)
    }
}

impl From<GoDuration> for Duration {
    fn from(duration: GoDuration) -> Self {
        duration.0
    }
}

/// A duration literal written in code (`"250ms".into()`), like `http::HeaderValue::from_static`.
///
/// # Panics
/// On a literal that is not a Go duration; values from users go through [`FromStr`] or serde.
impl From<&'static str> for GoDuration {
    fn from(text: &'static str) -> Self {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }
}

/// What is wrong with a duration's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a duration such as 500ms, 10s or 1h30m")]
pub struct BadDuration(pub String);

impl FromStr for GoDuration {
    type Err = BadDuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown: String = text.chars().take(64).collect();
        parse_duration(text).map(GoDuration).ok_or(BadDuration(shown))
    }
}

/// Go's `time.Duration.String()`: `0s`, `1.5µs`, `250ms`, `10s`, `1m30s`, `2h0m0s`.
impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        // Whole and fractional parts of `n / unit`, without trailing zeros.
        let fraction = |f: &mut fmt::Formatter<'_>, n: u128, unit: u128, suffix: &str| {
            let (whole, rest) = (n / unit, n % unit);
            if rest == 0 {
                return write!(f, "{whole}{suffix}");
            }
            let width = unit.ilog10() as usize;
            let digits = format!("{rest:0width$}");
            write!(f, "{whole}.{}{suffix}", digits.trim_end_matches('0'))
        };
        match nanos {
            0 => f.write_str("0s"),
            n if n < 1_000 => write!(f, "{n}ns"),
            n if n < 1_000_000 => fraction(f, n, 1_000, "µs"),
            n if n < 1_000_000_000 => fraction(f, n, 1_000_000, "ms"),
            n => {
                let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
                let (minutes, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
                if hours > 0 {
                    write!(f, "{hours}h{minutes}m")?;
                } else if minutes > 0 {
                    write!(f, "{minutes}m")?;
                }
                fraction(f, rest, 1_000_000_000, "s")
            }
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_as_go_does() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(2_500), "2.5ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(7_200), "2h0m0s"),
            (Duration::from_secs(168 * 3600), "168h0m0s"),
        ];
        for (duration, text) in cases {
            assert_eq!(GoDuration(duration).to_string(), text);
            assert_eq!(text.parse::<GoDuration>(), Ok(GoDuration(duration)), "{text}");
        }
    }

    #[test]
    fn a_bad_value_is_refused_naming_it() {
        for bad in ["", "5", "ten seconds", "-1s", "1d", "s"] {
            let err = bad.parse::<GoDuration>().unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        let yaml: Result<GoDuration, _> = serde_norway::from_str("soon");
        assert!(yaml.unwrap_err().to_string().contains("'soon' is not a duration"));
        let long = "9".repeat(10_000);
        assert!(long.parse::<GoDuration>().unwrap_err().to_string().len() < 120, "the echo is bounded");
    }

    proptest! {
        #[test]
        fn what_it_writes_it_reads_back(nanos in 0u64..u64::MAX / 4) {
            let d = GoDuration(Duration::from_nanos(nanos));
            let back: GoDuration = d.to_string().parse().unwrap();
            // Decimal seconds lose nothing here: the text keeps every nanosecond digit.
            prop_assert_eq!(back, d);
        }

        #[test]
        fn no_text_panics(text in ".{0,40}") {
            let _ = text.parse::<GoDuration>();
        }
    }
}
