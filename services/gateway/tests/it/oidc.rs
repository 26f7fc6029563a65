//! JWTs from a Cognito user pool on the local AWS emulator: the gateway
//! fetches the pool's JWKS and accepts its ID tokens, mapping the tenant
//! attribute and the admin group; tampered, expired, foreign
//! and unknown-tenant tokens are refused, saying why.

use base64::Engine as _;
use serde_json::Value;
use trace_common::aws::testing as moto;

use super::support::{Gateway, component};

/// The user pool and its tokens, for tenant `acme`.
async fn pool(moto: &moto::Moto) -> Value {
    moto::cognito_pool(moto, "acme").await
}

/// A gateway trusting the pool, with tenant `acme` known to it.
async fn gateway(moto: &moto::Moto, pool: &Value) -> Gateway {
    let (db, _data) = trace_common::db::testing::fresh_pools().await;
    sqlx::query("insert into tenants (id, name) values ('acme', 'Acme')")
        .execute(&db)
        .await
        .unwrap();
    let mut config = trace_gateway::Config {
        dispatcher_url: "http://127.0.0.1:9".into(),
        ..Default::default()
    };
    config.oidc.oidc_issuer = Some(pool["issuer"].as_str().unwrap().to_string());
    config.oidc.oidc_audience = Some(pool["client"].as_str().unwrap().to_string());
    config.oidc.oidc_jwks_url = Some(format!(
        "{}/{}/.well-known/jwks.json",
        moto.url,
        pool["pool"].as_str().unwrap()
    ));
    Gateway::serve(config, db).await
}

fn token<'a>(pool: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(pool, |v, k| &v[*k])
        .as_str()
        .expect("a token")
}

#[tokio::test]
async fn the_pools_id_tokens_reach_the_api_as_their_tenant_and_group() {
    let moto = moto::start().await;
    let pool = pool(&moto).await;
    let gw = gateway(&moto, &pool).await;

    let listed = gw
        .get(token(&pool, &["member", "id"]), "/v1/components")
        .await;
    assert_eq!((listed.status, &listed.body), (200, &serde_json::json!([])));
    // A Cognito access token is signed and for the client too, but carries
    // no custom attributes, so it names no tenant.
    let access = gw
        .get(token(&pool, &["member", "access"]), "/v1/components")
        .await;
    assert_eq!(
        (access.status, access.message()),
        (
            401,
            "the token does not name a tenant in claim `custom:tenant`"
        )
    );
    // The member may not list recorded blocks; the admin group may.
    let refused = gw
        .get(token(&pool, &["member", "id"]), "/v1/chains/1/recorded")
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.message().contains("this caller is a member"));
    // The admin's token verifies (keys are cached from here on), so what
    // the listing answers past authorisation is the service behind it.
    let admin = gw
        .get(token(&pool, &["admin", "id"]), "/v1/components")
        .await;
    assert_eq!(admin.status, 200, "{:?}", admin.body);
    let recorded = gw
        .get(token(&pool, &["admin", "id"]), "/v1/chains/1/recorded")
        .await;
    assert_ne!(recorded.status, 403, "{:?}", recorded.body);
    assert_ne!(recorded.status, 401, "{:?}", recorded.body);

    // What the caller does is audited under the token's subject.
    let published = gw
        .publish(
            token(&pool, &["member", "id"]),
            "noop",
            "0.1.0",
            component("oidc"),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let audited: Vec<(String, String, String)> =
        sqlx::query_as("select tenant_id, principal, action from audit_log")
            .fetch_all(&gw.pool)
            .await
            .unwrap();
    let sub = claims(token(&pool, &["member", "id"]))["sub"].clone();
    assert_eq!(
        audited,
        [(
            "acme".to_string(),
            format!("oidc:{}", sub.as_str().unwrap()),
            "component.publish".to_string()
        )]
    );
}

/// The claims of a JWT, read without checking it.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn tampered_expired_foreign_and_unknown_tenant_tokens_are_refused_saying_why() {
    let moto = moto::start().await;
    let pool = pool(&moto).await;
    let gw = gateway(&moto, &pool).await;

    // The member's token with its tenant changed, the signature kept.
    let real = token(&pool, &["member", "id"]);
    let mut parts: Vec<String> = real.split('.').map(str::to_string).collect();
    let mut changed = claims(real);
    changed["custom:tenant"] = "globex".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(changed.to_string());
    let tampered = parts.join(".");

    let cases = [
        (
            tampered.as_str(),
            401,
            "the token's signature does not verify",
        ),
        (token(&pool, &["expired"]), 401, "the token has expired"),
        (
            token(&pool, &["other_client"]),
            401,
            "the token was issued for another client",
        ),
        (
            token(&pool, &["other_issuer"]),
            401,
            "the token was not issued by the configured issuer",
        ),
        (
            token(&pool, &["unknown_tenant"]),
            403,
            "the token's tenant `globex` is not known here",
        ),
        (
            "not.a.jwt",
            401,
            "the bearer token is not a well-formed JWT",
        ),
    ];
    for (jwt, status, message) in cases {
        let answer = gw.get(jwt, "/v1/components").await;
        assert_eq!(
            (answer.status, answer.message()),
            (status, message),
            "{jwt}"
        );
    }
    // API keys still work beside the issuer.
    let key = gw.key("acme", "member").await;
    assert_eq!(gw.get(&key, "/v1/components").await.status, 200);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_unauthorised() {
    let moto = moto::start().await;
    let pool = pool(&moto).await;
    let gw = gateway(&moto, &pool).await;
    drop(moto);

    let answer = gw
        .get(token(&pool, &["member", "id"]), "/v1/components")
        .await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
}
