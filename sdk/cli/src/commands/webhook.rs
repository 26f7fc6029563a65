//! `trace webhook ...`: register and list webhook endpoints.

use trace_common::api::{CreateWebhook, Webhook};

use crate::{Cli, Error};

/// `trace webhook ...`.
#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Register an endpoint; prints its signing secret once.
    Create {
        /// The endpoint URL.
        url: String,
        /// A `whsec_...` secret to use instead of a generated one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// List your endpoints.
    List,
}

pub(super) async fn run(cli: &Cli, command: &WebhookCommand) -> Result<(), Error> {
    let client = cli.client()?;
    match command {
        WebhookCommand::Create { url, secret } => {
            let body = CreateWebhook {
                url: url.clone(),
                secret: secret.clone(),
            };
            let hook: Webhook = client.post("/v1/webhooks", &body).await?;
            crate::outln!("webhook {} -> {}", hook.id, hook.url);
            if let Some(secret) = hook.secret {
                crate::outln!("signing secret (shown once): {secret}");
            }
        }
        WebhookCommand::List => {
            let hooks: Vec<Webhook> = client.get("/v1/webhooks").await?;
            for hook in hooks {
                crate::outln!("{}  {}", hook.id, hook.url);
            }
        }
    }
    Ok(())
}
