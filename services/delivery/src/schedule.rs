//! Creating pending deliveries: one row per stored alert and endpoint.
//!
//! Alerts live in the data database and endpoints in the state database, so
//! the two cannot be joined; the scheduler pages through alerts by
//! `(created_at, id)` from a cursor it keeps in memory and inserts a
//! `pending` delivery for each of the tenant's endpoints, keeping existing
//! rows. Each pass starts [`OVERLAP`] before the cursor so that an alert
//! whose transaction committed late is still seen, and when a tenant's
//! endpoint set changes the cursor goes back to the start so the new
//! endpoint receives earlier alerts too. A restart rescans every alert once
//! (the inserts are idempotent); a persisted cursor would avoid that.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// How far before the cursor each pass starts again.
pub const OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

/// Alerts read per page.
const PAGE: i64 = 1000;

/// The scheduler's memory between passes.
#[derive(Debug, Default)]
pub struct Scheduler {
    since: Option<DateTime<Utc>>,
    endpoints_seen: BTreeSet<Uuid>,
}

impl Scheduler {
    /// One pass: returns how many delivery rows it created.
    pub async fn run(&mut self, state: &PgPool, data: &PgPool) -> Result<u64, sqlx::Error> {
        let endpoints = endpoints(state).await?;
        let ids: BTreeSet<Uuid> = endpoints.values().flatten().copied().collect();
        if !ids.is_subset(&self.endpoints_seen) {
            self.since = None;
        }
        self.endpoints_seen = ids;
        if endpoints.is_empty() {
            return Ok(0);
        }

        let start = self
            .since
            .map(|t| t - OVERLAP)
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut cursor = (start, String::new());
        let mut created = 0;
        loop {
            let rows = sqlx::query(
                "select id, tenant_id, job_id, created_at from alerts \
                 where (created_at, id) > ($1, $2) order by created_at, id limit $3",
            )
            .bind(cursor.0)
            .bind(&cursor.1)
            .bind(PAGE)
            .fetch_all(data)
            .await?;
            let (mut alert_ids, mut endpoint_ids, mut tenants, mut jobs) =
                (vec![], vec![], vec![], vec![]);
            for row in &rows {
                let tenant: String = row.get("tenant_id");
                for endpoint in endpoints.get(&tenant).into_iter().flatten() {
                    alert_ids.push(row.get::<String, _>("id"));
                    endpoint_ids.push(*endpoint);
                    tenants.push(tenant.clone());
                    jobs.push(row.get::<Uuid, _>("job_id"));
                }
            }
            if !alert_ids.is_empty() {
                created += sqlx::query(
                    "insert into deliveries (alert_id, endpoint_id, tenant_id, job_id, state) \
                     select a, e, t, j, 'pending' \
                     from unnest($1::text[], $2::uuid[], $3::text[], $4::uuid[]) as u(a, e, t, j) \
                     on conflict (alert_id, endpoint_id) do nothing",
                )
                .bind(&alert_ids)
                .bind(&endpoint_ids)
                .bind(&tenants)
                .bind(&jobs)
                .execute(state)
                .await?
                .rows_affected();
            }
            let Some(last) = rows.last() else { break };
            cursor = (last.get("created_at"), last.get("id"));
            self.since = Some(self.since.map_or(cursor.0, |s| s.max(cursor.0)));
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
        Ok(created)
    }
}

/// Every tenant's endpoint ids.
async fn endpoints(state: &PgPool) -> Result<BTreeMap<String, Vec<Uuid>>, sqlx::Error> {
    let rows = sqlx::query("select id, tenant_id from webhook_endpoints order by created_at, id")
        .fetch_all(state)
        .await?;
    let mut by_tenant: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for row in rows {
        by_tenant
            .entry(row.get("tenant_id"))
            .or_default()
            .push(row.get("id"));
    }
    Ok(by_tenant)
}
