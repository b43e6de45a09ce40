//! The Redis connection behind every Redis-backed store (core-metadata, core-data,
//! store-and-forward): one URL check, one connection setup and one timeout policy.
//!
//! [`connect`] returns a [`ConnectionManager`], which reconnects by itself after a lost
//! connection; commands fail after [`RESPONSE_TIMEOUT`] instead of hanging on a server that
//! stopped answering. [`check_url`] tells a configuration error (which waiting will not fix)
//! from a server that is not up yet.

use std::time::Duration;

pub use redis::aio::ConnectionManager;
use redis::aio::ConnectionManagerConfig;

/// How long opening one connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one command may wait for its answer (a store's largest batched script included).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times the connection manager retries a connection before the call fails.
pub const RETRIES: usize = 3;

/// What went wrong reaching Redis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The URL cannot work, however long one waits.
    #[error("{0}")]
    InvalidUrl(String),
    /// The server did not answer (not up yet, or gone).
    #[error("cannot connect to Redis at {url}: {reason}")]
    Unreachable {
        /// The server's URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Checks that `url` is a Redis URL this build can connect to: `redis://` or `redis+unix://`
/// (`rediss://` needs TLS, which this build leaves out), with a valid host, port and
/// database number. Does not connect.
pub fn check_url(url: &str) -> Result<(), Error> {
    if url.starts_with("rediss://") {
        return Err(Error::InvalidUrl(format!(
            "'{}': rediss:// (TLS) is not supported; use redis:// on a trusted network or a TLS tunnel",
            redact(url)
        )));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| Error::InvalidUrl(format!("'{}' is not a Redis URL (redis://host:port/db): {e}", redact(url))))
}

/// Connects to the Redis server at `url` with the one timeout policy.
pub async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    check_url(url)?;
    let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(RETRIES);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| Error::Unreachable { url: redact(url), reason: e.to_string() })
}

/// `url` with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_cannot_work_are_named_as_such() {
        assert_eq!(check_url("redis://127.0.0.1:6379/0"), Ok(()));
        assert_eq!(check_url("redis+unix:///run/redis.sock"), Ok(()));
        for bad in ["http://127.0.0.1:6379", "redis://127.0.0.1:6379/abc", "rediss://:secret@cache:6380", "6379"] {
            let Err(Error::InvalidUrl(why)) = check_url(bad) else { panic!("{bad} accepted") };
            assert!(!why.contains("secret"), "the password is shown: {why}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://default:hunter2@cache:6379/1"), "redis://default:***@cache:6379/1");
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
    }

    #[tokio::test]
    async fn connects_to_a_real_server_and_names_an_absent_one() {
        let port = oxedge_testkit::free_port();
        let absent = connect(&format!("redis://127.0.0.1:{port}")).await;
        assert!(matches!(absent, Err(Error::Unreachable { .. })), "{:?}", absent.err());
        let Some(redis) = oxedge_testkit::redis::private_redis().await else { return };
        let mut conn = connect(&format!("redis://127.0.0.1:{}", redis.port())).await.expect("connects");
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.expect("PING");
        assert_eq!(pong, "PONG");
    }
}
