//! The only way out to user webhooks.
