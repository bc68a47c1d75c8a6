//! What operators watch: `health` (liveness, readiness), `metrics` (Prometheus), `http` (the
//! listener serving both), `systemd` (notify, watchdog), `logging`.

pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod systemd;
