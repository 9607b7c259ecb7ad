//! Operations: Prometheus metrics, request ids, JSON logs and graceful shutdown.
//!
//! Nothing here knows about accounts or tokens; the rest of the service calls into
//! [`metrics`] where things happen, and `routes::metrics` exposes them.

pub mod http;
pub mod json_log;
pub mod metrics;
pub mod request_id;
pub mod shutdown;
