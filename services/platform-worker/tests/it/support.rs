//! The ingest stack for one test, and independent readers of the raw files.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::ObjectStore;
use serde_json::Value;
use sqlx::PgPool;
use trace_platform_worker::RpcClient;
use trace_rpc_gateway::{Config as GatewayConfig, ProviderSpec};

/// The recorded data directory: `TRACE_DATA_DIR` or `<repo>/../shared/data/mainnet`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRACE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mainnet")
        })
}

/// A raw recorded file, `kind/<n>.json.gz`, parsed.
pub fn raw(kind: &str, number: u64) -> Value {
    let path = data_dir().join(kind).join(format!("{number}.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("open raw file"))
        .read_to_string(&mut text)
        .expect("gunzip raw file");
    serde_json::from_str(&text).expect("raw file is JSON")
}

/// A hex quantity as a decimal string, through `u128` (every recorded
/// value and fee fits).
pub fn hex_to_decimal(hex: &str) -> String {
    u128::from_str_radix(hex.trim_start_matches("0x"), 16)
        .expect("hex quantity")
        .to_string()
}

/// A replay provider behind an rpc-gateway, a data database and an object store.
pub struct Stack {
    pub rpc: RpcClient,
    pub data: PgPool,
    pub objects: Arc<dyn ObjectStore>,
    pub objects_dir: tempfile::TempDir,
}

/// A replay provider and an rpc-gateway in front of it; the gateway's URL.
pub async fn chain_gateway() -> String {
    let store = trace_replay_provider::Store::load(&data_dir()).expect("load data dir");
    let provider = spawn(trace_replay_provider::router(Arc::new(store))).await;
    let url = format!("{provider}/");
    let config = GatewayConfig {
        providers: vec![ProviderSpec { chain_id: 1, url }],
        timeout_ms: 30_000,
    };
    spawn(trace_rpc_gateway::router(&config).expect("gateway router")).await
}

/// Rows of `chain.<table>` for chain 1 in `data`.
pub async fn count(data: &PgPool, table: &str) -> i64 {
    let sql = format!("select count(*) from chain.{table} where chain_id = 1");
    sqlx::query_scalar(&sql)
        .fetch_one(data)
        .await
        .expect("count")
}

impl Stack {
    pub async fn start() -> Self {
        let gateway = chain_gateway().await;
        let (_state, data) = trace_common::db::testing::fresh_pools().await;
        let objects_dir = tempfile::tempdir().expect("temp dir");
        let objects = trace_common::objects::local(objects_dir.path()).expect("object store");
        Self {
            rpc: RpcClient::new(&gateway, 1),
            data,
            objects,
            objects_dir,
        }
    }

    /// Rows of `table` (`chain.<table>`) for chain 1.
    pub async fn count(&self, table: &str) -> i64 {
        count(&self.data, table).await
    }

    /// The rows of a lake file, or `None` when it does not exist.
    pub fn parquet_rows(&self, key: &str) -> Option<(usize, arrow::datatypes::SchemaRef)> {
        let path = self.objects_dir.path().join(key);
        let file = std::fs::File::open(path).ok()?;
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let schema = builder.schema().clone();
        let rows = builder
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        Some((rows, schema))
    }
}

async fn spawn(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
