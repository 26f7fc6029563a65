//! A JSON-RPC provider that serves recorded mainnet data.
