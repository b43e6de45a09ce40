//! Answering HTTP while a service still waits for a dependency (a broker, a store), so that
//! container health checks and readiness probes see a live service that is not ready yet
//! rather than a port that accepts connections and never answers.

use std::future::Future;
use std::net::TcpListener;

use actix_web::web;
use oxedge_contracts::{EdgeXError, ErrorKind};
use tokio_util::sync::CancellationToken;

use crate::config::ServiceSection;
use crate::error::ApiResult;
use crate::server::{serve, Common};

/// Runs `work` (connecting to `what`) while a stand-in server answers on `listener`:
/// `/api/v3/ping`, `version` and `config` as usual, `/api/v3/health` 503 with the check
/// `starting: waiting for {what}`, and every other `/api/v3` path 503 in EdgeX's error
/// envelope. Returns `work`'s output once it completes, `None` if `shutdown` comes first;
/// the stand-in has stopped by then and the listener is free for the service's own server.
pub async fn serve_while_starting<T>(
    service_name: &'static str,
    section: &ServiceSection,
    listener: &TcpListener,
    what: &str,
    shutdown: &CancellationToken,
    work: impl Future<Output = T>,
) -> Option<T> {
    let work = async {
        tokio::select! {
            output = work => Some(output),
            () = shutdown.cancelled() => None,
        }
    };
    let stand_in = match listener.try_clone() {
        Ok(stand_in) => stand_in,
        Err(error) => {
            tracing::warn!(%error, "Cannot answer HTTP while starting; the port stays silent until {what} is reachable.");
            return work.await;
        }
    };
    // Its port goes to the service's own server next: no connection may outlive it.
    let mut common = Common::new(service_name, serde_json::Value::Null).closing_connections();
    let waiting = format!("waiting for {what}");
    common.add_health_check("starting", {
        let waiting = waiting.clone();
        move || {
            let waiting = waiting.clone();
            Box::pin(async move { Err(waiting) })
        }
    });
    let section = ServiceSection { workers: 1, shutdown_grace: 1, ..section.clone() };
    let stop = CancellationToken::new();
    let server = serve(common, &section, stand_in, stop.clone(), move |cfg| {
        let waiting = waiting.clone();
        cfg.service(web::resource("/{tail:.*}").to(move || unavailable(waiting.clone())));
    });
    tokio::pin!(server, work);
    tokio::select! {
        output = &mut work => {
            stop.cancel();
            if let Err(error) = server.await {
                tracing::warn!(error = format!("{error:#}"), "The stand-in HTTP server failed while stopping.");
            }
            output
        }
        result = &mut server => {
            if let Err(error) = result {
                tracing::warn!(error = format!("{error:#}"), "Cannot answer HTTP while starting; the port stays silent until {what} is reachable.");
            }
            work.await
        }
    }
}

async fn unavailable(waiting: String) -> ApiResult {
    Err(EdgeXError::new(ErrorKind::ServiceUnavailable, format!("the service is starting: {waiting}")).into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn shutdown_ends_the_wait() {
        let section = ServiceSection { port: 0, ..Default::default() };
        let listener = section.bind().expect("bind");
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let never = std::future::pending::<()>();
        let output = tokio::time::timeout(
            Duration::from_secs(10),
            serve_while_starting("test-service", &section, &listener, "Redis", &shutdown, never),
        )
        .await
        .expect("returns");
        assert_eq!(output, None);
    }

    async fn get(port: u16, path: &str) -> (u16, serde_json::Value) {
        let res = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON body"))
    }

    #[tokio::test]
    async fn answers_not_ready_while_waiting_then_hands_the_listener_over() {
        let section = ServiceSection { port: 0, ..Default::default() };
        let listener = section.bind().expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (release, released) = tokio::sync::oneshot::channel::<u32>();
        let starting = tokio::spawn({
            let section = section.clone();
            async move {
                let output = serve_while_starting(
                    "test-service",
                    &section,
                    &listener,
                    "Redis",
                    &CancellationToken::new(),
                    released,
                )
                .await;
                (output, listener)
            }
        });

        let mut ping = None;
        for _ in 0..100 {
            if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/api/v3/ping")).await {
                ping = Some((res.status().as_u16(), res.json::<serde_json::Value>().await.expect("JSON body")));
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, ping) = ping.expect("the stand-in answers");
        assert_eq!(status, 200);
        // A client must not pool a connection to the stand-in: the handover would cut it.
        let res = reqwest::get(format!("http://127.0.0.1:{port}/api/v3/ping")).await.expect("request");
        assert_eq!(res.headers().get("connection").and_then(|v| v.to_str().ok()), Some("close"));
        assert_eq!(ping["serviceName"], "test-service");

        let (status, health) = get(port, "/api/v3/health").await;
        assert_eq!(status, 503);
        assert_eq!(health["status"], "DOWN");
        assert_eq!(health["checks"]["starting"], "waiting for Redis", "{health}");

        let (status, error) = get(port, "/api/v3/event/count").await;
        assert_eq!(status, 503);
        assert_eq!(error["statusCode"], 503);
        assert!(error["message"].as_str().is_some_and(|m| m.contains("waiting for Redis")), "{error}");

        release.send(7).expect("send");
        let (output, listener) =
            tokio::time::timeout(Duration::from_secs(10), starting).await.expect("stops").expect("joins");
        assert_eq!(output, Some(Ok(7)));

        // The service's own server takes the same listener over.
        let stop = CancellationToken::new();
        let server = tokio::spawn({
            let stop = stop.clone();
            async move {
                serve(Common::new("test-service", serde_json::Value::Null), &section, listener, stop, |_| {}).await
            }
        });
        let (status, health) = get(port, "/api/v3/health").await;
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["status"], "UP");
        stop.cancel();
        server.await.expect("joins").expect("serves");
    }
}
