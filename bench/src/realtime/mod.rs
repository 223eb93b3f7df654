//! The realtime engine's benchmarks (`realtime`, `bench/run-realtime.sh`):
//! MQTT → subscriber latency and the highest sustained rate on both setups,
//! fan-out to many WebSocket subscribers against the stock async-graphql
//! handler, and resuming after a replica dies. `docs/performance.md` says what
//! each measures and how.

pub mod fanout;
pub mod latency;
pub mod resume;
pub mod setup;
