//! The moving parts of a latency run, shared by `bay-latency` and `realtime`:
//! WebSocket subscribers on every station, and publishing phases with their figures.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::listeners::{self, Health, Samples};
use crate::procfs::CpuSnapshot;
use crate::publisher::Publisher;
use crate::report::{Closing, GRACE, Ledger, Phase};
use crate::server::Server;

/// WebSocket subscribers, each on `bayStatusChanged(stationId)` of one station.
pub struct Subscribers {
    tasks: Vec<JoinHandle<()>>,
    /// One buffer per subscriber, in the order they were opened.
    pub samples: Vec<Samples>,
    stop: watch::Sender<bool>,
}

impl Subscribers {
    /// Opens `per_station` subscribers on each of stations `1..=stations` of the
    /// server at `http`, a few dozen handshakes at a time.
    ///
    /// # Errors
    /// When a connection or subscription fails.
    pub async fn open(
        http: std::net::SocketAddr,
        stations: u32,
        per_station: u32,
        health: &Arc<Health>,
    ) -> anyhow::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let targets: Vec<(u32, Samples)> = (1..=stations)
            .flat_map(|station| (0..per_station).map(move |_| (station, Samples::default())))
            .collect();
        let samples = targets.iter().map(|(_, samples)| samples.clone()).collect();
        // A few dozen handshakes at a time: fast, without a connection storm on 2 cores.
        let tasks = futures_util::stream::iter(targets)
            .map(|(station, samples)| {
                listeners::subscribe_station(
                    http,
                    station,
                    samples,
                    Arc::clone(health),
                    stopped.clone(),
                )
            })
            .buffer_unordered(32)
            .try_collect()
            .await?;
        // graphql-transport-ws does not acknowledge a subscribe: give the server a moment to register them.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Self {
            tasks,
            samples,
            stop,
        })
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Closes every connection.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            // Each subscriber only sends a close frame; do not let a stuck one hang the exit.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

/// Everything a phase needs.
pub struct Bench<'a> {
    pub server: &'a mut Server,
    pub publisher: Publisher,
    pub ledger: Ledger,
    pub subscribers_per_station: u64,
}

/// Publishes one phase, waits out its grace period and computes its figures.
///
/// # Errors
/// When the server has exited or the publisher fails.
pub async fn phase<'b>(
    bench: &'b mut Bench<'_>,
    label: &str,
    rate: f64,
    duration: Duration,
    reported: bool,
) -> anyhow::Result<&'b Phase> {
    bench.server.ensure_running()?;
    let before = CpuSnapshot::take(bench.server.pid());
    let burst = bench.publisher.run(rate, duration).await?;
    // A little past the deadline, so deliveries stamped just before it are recorded.
    tokio::time::sleep_until(
        (burst.started + burst.elapsed + GRACE + Duration::from_millis(100)).into(),
    )
    .await;
    let closing = Closing {
        label: label.to_owned(),
        reported,
        target_rate: rate,
        burst,
        subscribers_per_station: bench.subscribers_per_station,
        cpu: CpuSnapshot::take(bench.server.pid()).since(&before),
        rss_kib: bench.server.rss_kib(),
    };
    bench.ledger.close(closing);
    let stragglers = bench.ledger.settle(Duration::from_secs(30)).await;
    bench.server.ensure_running()?;
    let phase = bench
        .ledger
        .phases
        .last()
        .ok_or_else(|| anyhow::anyhow!("the phase was not recorded"))?;
    println!("{}", phase.progress());
    if phase.ws_late + phase.mqtt_late > 0 || stragglers > 0 {
        println!(
            "{:<10} late deliveries (after the {GRACE:?} grace period): WS {}, MQTT {}",
            "", phase.ws_late, phase.mqtt_late
        );
    }
    Ok(phase)
}
