//! The component registry: publish, list and show component versions.
//!
//! A version is immutable. Publishing checks the bytes with
//! `trace_host::check_component`, stores them in object storage under their
//! digest first and only then writes the metadata row, so a row never points
//! at missing bytes. Publishing the same bytes again is a no-op answered 200;
//! other bytes under a published version are refused with 409.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use object_store::ObjectStoreExt as _;
use sha2::{Digest as _, Sha256};
use trace_common::ApiError;
use trace_common::api::ComponentVersion;

use crate::state::audit;
use crate::{AppState, Principal};

type Row = (
    String,
    String,
    String,
    i64,
    String,
    Vec<String>,
    chrono::DateTime<chrono::Utc>,
);

const COLUMNS: &str = "name, version, digest, size_bytes, world, imports, created_at";

/// `PUT /v1/components/{name}/{version}` with the component bytes as the body.
pub(crate) async fn publish(
    principal: Principal,
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ComponentVersion>), ApiError> {
    validate_name(&name)?;
    validate_version(&version)?;
    let bytes = read_limited(&headers, body, state.max_component_bytes).await?;

    let info = check(bytes.clone()).await?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));

    if let Some(existing) = find(&state, &principal.tenant, &name, &version).await? {
        return same_or_conflict(existing, &digest);
    }

    let key = object_store::path::Path::from(trace_common::objects::component_key(&digest));
    state
        .store
        .put(&key, bytes.clone().into())
        .await
        .map_err(ApiError::internal)?;

    let inserted: Option<Row> = sqlx::query_as(&format!(
        "insert into components \
         (tenant_id, name, version, digest, size_bytes, world, imports) \
         values ($1, $2, $3, $4, $5, $6, $7) \
         on conflict (tenant_id, name, version) do nothing returning {COLUMNS}"
    ))
    .bind(&principal.tenant)
    .bind(&name)
    .bind(&version)
    .bind(&digest)
    .bind(bytes.len() as i64)
    .bind(&info.world)
    .bind(&info.imports)
    .fetch_optional(&state.pool)
    .await?;
    let Some(row) = inserted else {
        // Another publish of this version won the race.
        let existing = find(&state, &principal.tenant, &name, &version).await?;
        let existing = existing.ok_or_else(|| ApiError::internal("component row vanished"))?;
        return same_or_conflict(existing, &digest);
    };

    let detail = serde_json::json!({ "digest": digest, "size_bytes": bytes.len() });
    audit(
        &state.pool,
        &principal,
        "component.publish",
        &format!("{name}@{version}"),
        detail,
    )
    .await?;
    tracing::info!(tenant = %principal.tenant, %name, %version, %digest, "component published");
    Ok((StatusCode::CREATED, Json(to_version(row))))
}

/// `GET /v1/components`: the tenant's component versions, newest first.
pub(crate) async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<ComponentVersion>>, ApiError> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS} from components where tenant_id = $1 order by created_at desc, name"
    ))
    .bind(&principal.tenant)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(to_version).collect()))
}

/// `GET /v1/components/{name}/{version}`.
pub(crate) async fn show(
    principal: Principal,
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ComponentVersion>, ApiError> {
    let row = find(&state, &principal.tenant, &name, &version).await?;
    row.map(|r| Json(to_version(r)))
        .ok_or_else(|| unknown(&name, &version))
}

/// Resolves `name@version` for `tenant` to its stored version.
pub(crate) async fn resolve(
    state: &AppState,
    tenant: &str,
    reference: &str,
) -> Result<ComponentVersion, ApiError> {
    let (name, version) = reference.split_once('@').ok_or_else(|| {
        ApiError::bad_request(
            "invalid_component_ref",
            format!("component `{reference}` must be written `name@version`"),
        )
    })?;
    let row = find(state, tenant, name, version).await?;
    row.map(to_version).ok_or_else(|| unknown(name, version))
}

fn unknown(name: &str, version: &str) -> ApiError {
    ApiError::not_found(
        "unknown_component",
        format!("component `{name}@{version}` is not published for this tenant"),
    )
}

async fn find(
    state: &AppState,
    tenant: &str,
    name: &str,
    version: &str,
) -> Result<Option<Row>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from components where tenant_id = $1 and name = $2 and version = $3"
    ))
    .bind(tenant)
    .bind(name)
    .bind(version)
    .fetch_optional(&state.pool)
    .await
}

fn same_or_conflict(
    existing: Row,
    digest: &str,
) -> Result<(StatusCode, Json<ComponentVersion>), ApiError> {
    let existing = to_version(existing);
    if existing.digest == digest {
        return Ok((StatusCode::OK, Json(existing)));
    }
    Err(ApiError::conflict(
        "version_exists",
        format!(
            "component `{}@{}` is already published with digest `{}`; versions are immutable, \
             publish a new version instead",
            existing.name, existing.version, existing.digest
        ),
    ))
}

fn to_version(row: Row) -> ComponentVersion {
    let (name, version, digest, size, world, imports, created_at) = row;
    ComponentVersion {
        name,
        version,
        digest,
        size_bytes: size.max(0) as u64,
        world,
        imports,
        created_at,
    }
}

/// Runs the import check on a blocking thread: it is CPU work over up to
/// the size limit, and a panic inside it must not take the server down.
async fn check(bytes: bytes::Bytes) -> Result<trace_host::ComponentInfo, ApiError> {
    let checked = tokio::task::spawn_blocking(move || trace_host::check_component(&bytes))
        .await
        .map_err(ApiError::internal)?;
    checked.map_err(|e| ApiError::bad_request("invalid_component", e.to_string()))
}

/// Reads the body, refusing with 413 anything over `limit` bytes.
async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a component may be at most {limit} bytes"),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Reading stops at the limit; a body cut short by the client is reported
    // the same way, which is a known imprecision.
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

/// Names: a lowercase letter, then up to 63 of `[a-z0-9-]`.
fn validate_name(name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_name",
        format!(
            "component name `{name}` is invalid: use a lowercase letter then up to 63 of \
             [a-z0-9-]"
        ),
    ))
}

/// Versions: semantic versions `MAJOR.MINOR.PATCH[-pre][+build]`.
fn validate_version(version: &str) -> Result<(), ApiError> {
    if is_semver(version) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_version",
        format!("version `{version}` is not a semantic version such as `1.2.3`"),
    ))
}

fn is_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    numbers.len() == 3
        && numbers.iter().all(number_ok)
        && pre.is_none_or(ident_ok)
        && build.is_none_or(ident_ok)
        && version.len() <= 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_versions_are_accepted_and_others_refused() {
        for ok in [
            "0.1.0",
            "1.2.3",
            "10.0.1-rc.1",
            "1.0.0+build.5",
            "1.0.0-alpha-1+x",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "1.2", "1.2.3.4", "01.2.3", "v1.2.3", "1.2.3-", "1..3", "", "1.2.x",
        ] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_the_registry_rule() {
        assert!(validate_name("erc20-transfers").is_ok());
        assert!(validate_name("a").is_ok());
        assert!(validate_name(&format!("a{}", "b".repeat(63))).is_ok());
        assert!(validate_name(&format!("a{}", "b".repeat(64))).is_err());
        assert!(validate_name("Erc20").is_err());
        assert!(validate_name("1abc").is_err());
        assert!(validate_name("a_b").is_err());
    }
}
