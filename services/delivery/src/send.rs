//! Posting due deliveries and recording what happened.
//!
//! Due `pending` rows are claimed by pushing their `next_attempt_at` past
//! the request timeout (so another delivery process skips them), posted
//! concurrently, and then marked `delivered` on a 2xx, rescheduled with
//! exponential backoff and jitter otherwise, or `failed` once they have
//! used `max_attempts` or when the target is refused by the egress rules.

use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::egress;
use crate::signing;

/// Deliveries claimed per pass.
const CLAIM: i64 = 100;

/// Posts in flight at once.
const IN_FLIGHT: usize = 8;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How sending behaves.
#[derive(Debug, Clone)]
pub struct Sender {
    pub max_attempts: u32,
    pub allow_private: bool,
    pub request_timeout: Duration,
    pub retry_base: Duration,
}

#[derive(Debug)]
struct Due {
    alert_id: String,
    endpoint_id: Uuid,
    attempts: i32,
    url: String,
    secret: String,
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    Delivered(u16),
    Retry { status: Option<u16>, error: String },
    Refused(String),
}

impl Sender {
    /// One pass: claims due deliveries, posts them and records the results.
    /// Returns how many were attempted.
    pub async fn run(&self, state: &PgPool, data: &PgPool) -> Result<usize, sqlx::Error> {
        let due = self.claim(state).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = due.iter().map(|d| d.alert_id.as_str()).collect();
        let alerts = sqlx::query(
            "select id, job_id, key, severity, title, payload, created_at from alerts \
             where id = any($1)",
        )
        .bind(&ids)
        .fetch_all(data)
        .await?;
        let bodies: std::collections::HashMap<String, Vec<u8>> = alerts
            .iter()
            .map(|row| (row.get("id"), body_of(row)))
            .collect();

        let attempted = due.len();
        let results: Vec<(Due, Attempt)> = futures::stream::iter(due)
            .map(|d| async {
                let attempt = match bodies.get(&d.alert_id) {
                    Some(body) => self.post(&d, body).await,
                    None => Attempt::Refused(format!("alert `{}` no longer exists", d.alert_id)),
                };
                (d, attempt)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for (due, attempt) in results {
            self.record(state, &due, attempt).await?;
        }
        Ok(attempted)
    }

    async fn claim(&self, state: &PgPool) -> Result<Vec<Due>, sqlx::Error> {
        let lease_ms = (self.request_timeout + Duration::from_secs(30)).as_millis() as i64;
        let rows = sqlx::query(
            "with due as ( \
               select alert_id, endpoint_id from deliveries \
               where state = 'pending' and next_attempt_at <= now() \
               order by next_attempt_at limit $1 for update skip locked) \
             update deliveries d \
             set next_attempt_at = now() + make_interval(secs => $2::double precision / 1000) \
             from due, webhook_endpoints e \
             where d.alert_id = due.alert_id and d.endpoint_id = due.endpoint_id \
               and e.id = d.endpoint_id \
             returning d.alert_id, d.endpoint_id, d.attempts, e.url, e.secret",
        )
        .bind(CLAIM)
        .bind(lease_ms)
        .fetch_all(state)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Due {
                alert_id: r.get("alert_id"),
                endpoint_id: r.get("endpoint_id"),
                attempts: r.get("attempts"),
                url: r.get("url"),
                secret: r.get("secret"),
            })
            .collect())
    }

    async fn post(&self, due: &Due, body: &[u8]) -> Attempt {
        let target = match egress::check(&due.url, self.allow_private).await {
            Ok(target) => target,
            Err(err @ egress::EgressError::Unresolved { .. }) => {
                return Attempt::Retry {
                    status: None,
                    error: err.to_string(),
                };
            }
            Err(err) => return Attempt::Refused(err.to_string()),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match signing::sign(&due.secret, &due.alert_id, timestamp, body) {
            Ok(signature) => signature,
            Err(err) => return Attempt::Refused(err.to_string()),
        };
        let client = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&target.host, target.addr)
            .build();
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                return Attempt::Retry {
                    status: None,
                    error: err.to_string(),
                };
            }
        };
        let response = client
            .post(target.url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.alert_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        match response {
            Ok(r) if r.status().is_success() => Attempt::Delivered(r.status().as_u16()),
            Ok(r) => Attempt::Retry {
                status: Some(r.status().as_u16()),
                error: format!("endpoint answered {}", r.status()),
            },
            Err(err) => Attempt::Retry {
                status: None,
                error: format!("request failed: {err}"),
            },
        }
    }

    async fn record(&self, state: &PgPool, due: &Due, attempt: Attempt) -> Result<(), sqlx::Error> {
        let attempts = due.attempts + 1;
        let (next_state, status, error, delay) = match attempt {
            Attempt::Delivered(status) => ("delivered", Some(status), None, Duration::ZERO),
            Attempt::Refused(error) => ("failed", None, Some(error), Duration::ZERO),
            Attempt::Retry { status, error } if attempts as u32 >= self.max_attempts => {
                ("failed", status, Some(error), Duration::ZERO)
            }
            Attempt::Retry { status, error } => (
                "pending",
                status,
                Some(error),
                self.backoff(attempts as u32),
            ),
        };
        tracing::debug!(alert_id = %due.alert_id, endpoint_id = %due.endpoint_id, attempts,
            state = next_state, status, "delivery attempted");
        let status_label = status.map_or("none".to_string(), |s| s.to_string());
        trace_common::metrics::counter!("trace_webhook_attempts_total",
            "result" => next_state, "status" => status_label)
        .increment(1);
        sqlx::query(
            "update deliveries set state = $3, attempts = $4, last_status = $5, \
               last_error = $6, \
               next_attempt_at = now() + make_interval(secs => $7::double precision / 1000), \
               delivered_at = case when $3 = 'delivered' then now() end \
             where alert_id = $1 and endpoint_id = $2",
        )
        .bind(&due.alert_id)
        .bind(due.endpoint_id)
        .bind(next_state)
        .bind(attempts)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(delay.as_millis() as i64)
        .execute(state)
        .await?;
        Ok(())
    }

    /// The wait before attempt `attempts + 1`: the base doubled per attempt,
    /// capped, with up to half of it added as jitter.
    fn backoff(&self, attempts: u32) -> Duration {
        let exp = self
            .retry_base
            .saturating_mul(1 << attempts.saturating_sub(1).min(16));
        let capped = exp.min(MAX_BACKOFF);
        let jitter = rand::thread_rng().gen_range(0.0..0.5);
        capped + capped.mul_f64(jitter)
    }
}

/// The webhook body of an alert row.
fn body_of(row: &sqlx::postgres::PgRow) -> Vec<u8> {
    let created: chrono::DateTime<chrono::Utc> = row.get("created_at");
    let body = serde_json::json!({
        "type": "alert",
        "timestamp": created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {
            "id": row.get::<String, _>("id"),
            "job_id": row.get::<Uuid, _>("job_id"),
            "key": row.get::<String, _>("key"),
            "severity": row.get::<String, _>("severity"),
            "title": row.get::<String, _>("title"),
            "payload": row.get::<serde_json::Value, _>("payload"),
        },
    });
    serde_json::to_vec(&body).expect("json values serialize")
}
