//! Starting every service library on its own loopback listener, in the
//! order they depend on each other, and waiting for each to be healthy.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::databases::Databases;
use crate::{DevConfig, Error, Ports, bind};

/// Where each service of the running platform listens.
#[derive(Debug, Clone)]
pub struct ServiceUrls {
    /// The public API.
    pub gateway: String,
    /// The dispatcher, also the embedded queue endpoint.
    pub dispatcher: String,
    /// The query service.
    pub query: String,
    /// The broker.
    pub broker: String,
    /// The rpc-gateway.
    pub rpc_gateway: String,
    /// Delivery.
    pub delivery: String,
    /// The sinks.
    pub sinks: String,
    /// The replay provider, when one runs.
    pub replay_provider: Option<String>,
    /// The webhook receiver.
    pub webhook_receiver: String,
    /// The platform worker's health endpoint.
    pub platform_worker: String,
    /// The UDF worker's health endpoint.
    pub udf_worker: String,
}

type Task = (&'static str, JoinHandle<Result<(), String>>);

/// Port offsets from the base, as docs/architecture.md lists them.
fn port(ports: Ports, offset: u16) -> u16 {
    match ports {
        Ports::Base(base) => base + offset,
        Ports::Ephemeral => 0,
    }
}

/// Starts every service; answers their URLs, the receiver's secret and the
/// tasks to wait for at shutdown.
pub(crate) async fn start_all(
    config: &DevConfig,
    db: &Databases,
    objects_dir: &Path,
    shutdown: &CancellationToken,
) -> Result<(ServiceUrls, String, Vec<Task>), Error> {
    let mut tasks = Vec::new();
    let mut run = Runner {
        tasks: &mut tasks,
        shutdown,
    };
    let ports = config.ports;

    let replay_provider = match &config.rpc_url {
        Some(_) => None,
        None => {
            let listener = bind("replay provider", port(ports, 7)).await?;
            let cfg = trace_replay_provider::Config {
                data_dir: config.data_dir.clone(),
            };
            let url = run.spawn("replay provider", listener, |l, s| {
                trace_replay_provider::serve(cfg, l, s)
            });
            // Loading the recorded data takes a moment.
            run.healthy("replay provider", &url, Duration::from_secs(300))
                .await?;
            Some(url)
        }
    };
    let provider = match (&config.rpc_url, &replay_provider) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => format!("{url}/"),
        (None, None) => unreachable!("a replay provider runs when no rpc url is given"),
    };

    let listener = bind("rpc-gateway", port(ports, 4)).await?;
    let spec = format!("1={provider}")
        .parse()
        .map_err(|e: trace_rpc_gateway::SpecError| Error::Service {
            service: "rpc-gateway",
            message: e.to_string(),
        })?;
    let cfg = trace_rpc_gateway::Config {
        providers: vec![spec],
        timeout_ms: 30_000,
    };
    let rpc_gateway = run.spawn("rpc-gateway", listener, |l, s| {
        trace_rpc_gateway::serve(cfg, l, s)
    });

    let listener = bind("dispatcher", port(ports, 1)).await?;
    let cfg = trace_dispatcher::Config {
        relay_interval_ms: 200,
        migrate: false,
        ..trace_dispatcher::Config::new(db.state_url.clone())
    };
    let dispatcher = run.spawn("dispatcher", listener, |l, s| {
        trace_dispatcher::serve(cfg, l, s)
    });

    let listener = bind("query service", port(ports, 2)).await?;
    let cfg = trace_query::Config {
        data_database_url: db.data_url.clone(),
        objects_dir: objects_dir.to_path_buf(),
        objects_bucket: None,
        ..Default::default()
    };
    let query = run.spawn("query service", listener, |l, s| {
        trace_query::serve(cfg, l, s)
    });

    let listener = bind("broker", port(ports, 3)).await?;
    let cfg = trace_broker::Config::new(dispatcher.clone(), objects_dir);
    let broker = run.spawn("broker", listener, |l, s| trace_broker::serve(cfg, l, s));

    let listener = bind("sinks", port(ports, 6)).await?;
    let cfg = trace_sinks::Config {
        data_database_url: db.data_url.clone(),
        queue_url: dispatcher.clone(),
        ..Default::default()
    };
    let sinks = run.spawn("sinks", listener, |l, s| trace_sinks::serve(cfg, l, s));

    let listener = bind("delivery", port(ports, 5)).await?;
    let cfg = trace_delivery::Config {
        state_database_url: db.state_url.clone(),
        data_database_url: db.data_url.clone(),
        allow_private_targets: true,
        ..Default::default()
    };
    let delivery = run.spawn("delivery", listener, |l, s| {
        trace_delivery::serve(cfg, l, s)
    });

    let secret = webhook_secret();
    let listener = bind("webhook receiver", port(ports, 8)).await?;
    let cfg = trace_webhook_receiver::Config {
        secret: secret.clone(),
        tolerance_secs: 300,
    };
    let webhook_receiver = run.spawn("webhook receiver", listener, |l, s| {
        trace_webhook_receiver::serve(cfg, l, s)
    });

    let listener = bind("gateway", port(ports, 0)).await?;
    let cfg = trace_gateway::Config {
        listen: "127.0.0.1:0".into(),
        state_database_url: db.state_url.clone(),
        objects_dir: objects_dir.to_path_buf(),
        objects_bucket: None,
        dispatcher_url: dispatcher.clone(),
        query_url: query.clone(),
        sinks_url: sinks.clone(),
        delivery_url: delivery.clone(),
        rpc_gateway_url: rpc_gateway.clone(),
        max_component_bytes: trace_gateway::DEFAULT_MAX_COMPONENT_BYTES,
        oidc: trace_gateway::oidc::OidcConfig::off(),
    };
    let gateway = run.spawn("gateway", listener, |l, s| trace_gateway::serve(cfg, l, s));

    let listener = bind("platform worker", port(ports, 9)).await?;
    let cfg = trace_platform_worker::Config {
        rpc_url: rpc_gateway.clone(),
        dispatcher_url: dispatcher.clone(),
        data_database_url: db.data_url.clone(),
        objects_dir: objects_dir.to_path_buf(),
        objects_bucket: None,
        worker_id: "dev-platform-worker".into(),
        concurrency: 2,
    };
    let platform_worker = run.spawn("platform worker", listener, |l, s| {
        trace_platform_worker::serve(cfg, l, s)
    });

    let listener = bind("udf worker", port(ports, 10)).await?;
    let cfg = trace_udf_worker::Config {
        artifact_cache_dir: config.home.join("artifacts"),
        worker_id: "dev-udf-worker".into(),
        ..trace_udf_worker::Config::new(
            dispatcher.clone(),
            query.clone(),
            broker.clone(),
            objects_dir.to_path_buf(),
        )
    };
    let udf_worker = run.spawn("udf worker", listener, |l, s| {
        trace_udf_worker::serve(cfg, l, s)
    });

    let urls = ServiceUrls {
        gateway,
        dispatcher,
        query,
        broker,
        rpc_gateway,
        delivery,
        sinks,
        replay_provider,
        webhook_receiver,
        platform_worker,
        udf_worker,
    };
    for (service, url) in [
        ("rpc-gateway", &urls.rpc_gateway),
        ("dispatcher", &urls.dispatcher),
        ("query service", &urls.query),
        ("broker", &urls.broker),
        ("sinks", &urls.sinks),
        ("delivery", &urls.delivery),
        ("webhook receiver", &urls.webhook_receiver),
        ("gateway", &urls.gateway),
        ("platform worker", &urls.platform_worker),
        ("udf worker", &urls.udf_worker),
    ] {
        run.healthy(service, url, Duration::from_secs(60)).await?;
    }
    Ok((urls, secret, tasks))
}

/// Spawns services and checks on them.
struct Runner<'a> {
    tasks: &'a mut Vec<Task>,
    shutdown: &'a CancellationToken,
}

impl Runner<'_> {
    /// Spawns `serve(listener, token)` and answers the listener's URL.
    fn spawn<F, Fut, E>(
        &mut self,
        service: &'static str,
        listener: tokio::net::TcpListener,
        serve: F,
    ) -> String
    where
        F: FnOnce(tokio::net::TcpListener, CancellationToken) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::error::Error + 'static,
    {
        let url = match listener.local_addr() {
            Ok(addr) => format!("http://{addr}"),
            Err(_) => "http://127.0.0.1:0".to_string(),
        };
        let fut = serve(listener, self.shutdown.child_token());
        let handle = tokio::spawn(async move { fut.await.map_err(|e| chain(&e)) });
        self.tasks.push((service, handle));
        url
    }

    /// Waits until `url/healthz` answers `ok`, or the service's task ended.
    async fn healthy(
        &mut self,
        service: &'static str,
        url: &str,
        limit: Duration,
    ) -> Result<(), Error> {
        let health = format!("{url}/healthz");
        let client = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(message) = self.ended(service).await {
                return Err(Error::Service { service, message });
            }
            let answer = client
                .get(&health)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(resp) = answer
                && resp.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Error::NotReady {
            service,
            url: health,
            seconds: limit.as_secs(),
        })
    }

    /// The error of `service` if its task has already ended.
    async fn ended(&mut self, service: &'static str) -> Option<String> {
        let index = self.tasks.iter().position(|(name, _)| *name == service)?;
        if !self.tasks[index].1.is_finished() {
            return None;
        }
        let (_, handle) = self.tasks.remove(index);
        Some(match handle.await {
            Ok(Ok(())) => "it stopped".to_string(),
            Ok(Err(message)) => message,
            Err(e) => e.to_string(),
        })
    }
}

/// An error and its sources, joined by `: `.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A Standard Webhooks secret: `whsec_` and base64 of 24 random bytes.
fn webhook_secret() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
