//! Public REST API and authentication.
