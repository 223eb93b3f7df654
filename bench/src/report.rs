//! Turning deliveries into per-phase figures, and printing them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::listeners::{Sample, Samples};
use crate::procfs::CpuUse;
use crate::publisher::Burst;

/// How long after a phase's last message its deliveries still count as on time.
pub const GRACE: Duration = Duration::from_secs(1);

/// Share of expected WebSocket deliveries a sustained rate must deliver on time.
const SUSTAINED_DELIVERY: f64 = 0.999;

/// WebSocket p99 a sustained rate must stay under, in ms.
const SUSTAINED_P99_MS: f64 = 100.0;

/// Sorted latencies of one phase, in µs.
#[derive(Debug, Default)]
pub struct Latencies(Vec<i64>);

impl Latencies {
    pub fn new(mut us: Vec<i64>) -> Self {
        us.sort_unstable();
        Self(us)
    }

    fn of(samples: &[Sample]) -> Self {
        Self::new(samples.iter().map(|s| s.received_us - s.sent_us).collect())
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile in ms; `None` without samples.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.0.len();
        // Nearest rank: the smallest value with at least p % of the samples at or below it.
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        self.0
            .get(rank.clamp(1, n.max(1)) - 1)
            .map(|&us| us as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.0.last().map(|&us| us as f64 / 1000.0)
    }

    fn summary(&self) -> String {
        format!(
            "n={} p50={} p90={} p99={} max={}",
            self.count(),
            ms(self.percentile_ms(50.0)),
            ms(self.percentile_ms(90.0)),
            ms(self.percentile_ms(99.0)),
            ms(self.max_ms()),
        )
    }
}

/// The figures of one publishing phase.
#[derive(Debug)]
pub struct Phase {
    pub label: String,
    /// Warm-up phases are measured (to catch stragglers) but not reported.
    pub reported: bool,
    pub target_rate: f64,
    pub burst: Burst,
    pub ws_expected: u64,
    pub ws: Latencies,
    /// For each message, its earliest WebSocket delivery.
    pub ws_first: Latencies,
    /// WebSocket deliveries that came after the grace period.
    pub ws_late: u64,
    pub mqtt: Latencies,
    pub mqtt_late: u64,
    /// CPU used during the phase and its grace period.
    pub cpu: CpuUse,
    /// The server's resident memory at the end of the grace period, in KiB.
    pub rss_kib: Option<u64>,
}

impl Phase {
    /// Every WebSocket delivery of the phase's messages, late ones included.
    pub fn ws_deliveries(&self) -> u64 {
        self.ws.count() as u64 + self.ws_late
    }

    /// Server CPU time per message sent, in µs.
    pub fn cpu_us_per_message(&self) -> Option<f64> {
        per(self.cpu.server_secs?, self.burst.sent)
    }

    /// Server CPU time per WebSocket delivery, in µs.
    pub fn cpu_us_per_delivery(&self) -> Option<f64> {
        per(self.cpu.server_secs?, self.ws_deliveries())
    }

    pub fn achieved_rate(&self) -> f64 {
        self.burst.sent as f64 / self.burst.elapsed.as_secs_f64().max(1e-9)
    }

    /// Share of expected WebSocket deliveries that arrived within the grace period.
    pub fn ws_delivered(&self) -> f64 {
        if self.ws_expected == 0 {
            1.0
        } else {
            self.ws.count() as f64 / self.ws_expected as f64
        }
    }

    pub fn p99_ratio(&self) -> Option<f64> {
        let (ws, mqtt) = (self.ws.percentile_ms(99.0)?, self.mqtt.percentile_ms(99.0)?);
        (mqtt > 0.0).then(|| ws / mqtt)
    }

    /// ≥ 99.9 % of WebSocket deliveries on time and a p99 under 100 ms.
    pub fn sustained(&self) -> bool {
        self.ws_delivered() >= SUSTAINED_DELIVERY
            && self
                .ws
                .percentile_ms(99.0)
                .is_some_and(|p99| p99 < SUSTAINED_P99_MS)
    }

    /// One line per listener kind, printed as each phase ends.
    pub fn progress(&self) -> String {
        let indent = "";
        let threads: Vec<String> = self
            .cpu
            .server_threads
            .iter()
            .map(|(name, share)| format!("{name} {share:.0} %"))
            .collect();
        format!(
            "{:<10} {:>6.0} msg/s sent ({} msgs), WS {}/{} on time: {}\n\
             {indent:<17} WS first delivery of each message: {}\n\
             {indent:<17} MQTT raw {}/{} on time: {}\n\
             {indent:<17} CPU: server {}, harness {}, other processes {}; busiest server threads: {}",
            self.label,
            self.achieved_rate(),
            self.burst.sent,
            self.ws.count(),
            self.ws_expected,
            self.ws.summary(),
            self.ws_first.summary(),
            self.mqtt.count(),
            self.burst.sent,
            self.mqtt.summary(),
            percent(self.cpu.server),
            percent(self.cpu.harness),
            percent(self.cpu.other),
            if threads.is_empty() {
                "–".to_owned()
            } else {
                threads.join(", ")
            },
        )
    }
}

/// Every phase's deliveries, attributed by the `ts` window each phase sent.
pub struct Ledger {
    ws: Vec<Samples>,
    mqtt: Samples,
    pub phases: Vec<Phase>,
}

/// Where a phase stands while its figures are computed.
pub struct Closing {
    pub label: String,
    pub reported: bool,
    pub target_rate: f64,
    pub burst: Burst,
    pub subscribers_per_station: u64,
    pub cpu: CpuUse,
    pub rss_kib: Option<u64>,
}

impl Ledger {
    pub fn new(ws: Vec<Samples>, mqtt: Samples) -> Self {
        Self {
            ws,
            mqtt,
            phases: Vec::new(),
        }
    }

    /// Closes a phase once its grace period is over: takes every delivery
    /// recorded so far and computes the phase's figures.
    pub fn close(&mut self, closing: Closing) {
        let (ws, mqtt) = self.take();
        let burst = closing.burst;
        let (ws, ws_late) = self.split(ws, &burst, true);
        let (mqtt, mqtt_late) = self.split(mqtt, &burst, false);
        // The first of a message's WebSocket deliveries bounds the server's path up
        // to its event bus; how far the others trail it is the fan-out's share.
        let mut first: HashMap<i64, i64> = HashMap::with_capacity(mqtt.len());
        for sample in &ws {
            let latency = sample.received_us - sample.sent_us;
            first
                .entry(sample.sent_us)
                .and_modify(|l| *l = (*l).min(latency))
                .or_insert(latency);
        }
        self.phases.push(Phase {
            label: closing.label,
            reported: closing.reported,
            target_rate: closing.target_rate,
            burst,
            ws_expected: burst.sent * closing.subscribers_per_station,
            ws: Latencies::of(&ws),
            ws_first: Latencies::new(first.into_values().collect()),
            ws_late,
            mqtt: Latencies::of(&mqtt),
            mqtt_late,
            cpu: closing.cpu,
            rss_kib: closing.rss_kib,
        });
    }

    /// Waits until deliveries stop arriving (at most `limit`), so a backlog of one
    /// phase does not spill into the next one's figures; returns how many came.
    pub async fn settle(&mut self, limit: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + limit;
        let mut stragglers = 0;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (ws, mqtt) = self.take();
            if ws.is_empty() && mqtt.is_empty() {
                break;
            }
            stragglers += (ws.len() + mqtt.len()) as u64;
            self.attribute_late(&ws, true);
            self.attribute_late(&mqtt, false);
        }
        stragglers
    }

    fn take(&self) -> (Vec<Sample>, Vec<Sample>) {
        let ws = self.ws.iter().flat_map(Samples::take).collect();
        (ws, self.mqtt.take())
    }

    /// This phase's on-time deliveries, and the count of late ones; deliveries
    /// of earlier phases are booked as late there.
    fn split(&mut self, samples: Vec<Sample>, burst: &Burst, ws: bool) -> (Vec<Sample>, u64) {
        let deadline_us = burst.ended_us + micros(GRACE);
        let (mut on_time, mut late, mut earlier) =
            (Vec::with_capacity(samples.len()), 0, Vec::new());
        for sample in samples {
            if !(burst.first_ts_us..=burst.last_ts_us).contains(&sample.sent_us) {
                earlier.push(sample);
            } else if sample.received_us <= deadline_us {
                on_time.push(sample);
            } else {
                late += 1;
            }
        }
        self.attribute_late(&earlier, ws);
        (on_time, late)
    }

    fn attribute_late(&mut self, samples: &[Sample], ws: bool) {
        for sample in samples {
            let owner = self
                .phases
                .iter_mut()
                .find(|p| (p.burst.first_ts_us..=p.burst.last_ts_us).contains(&sample.sent_us));
            if let Some(phase) = owner {
                if ws {
                    phase.ws_late += 1
                } else {
                    phase.mqtt_late += 1
                }
            }
        }
    }

    /// The results as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| phase | target msg/s | sent msg/s | WS delivered | WS p50 | WS p90 | WS p99 | WS max | WS 1st p50 | WS 1st p99 | MQTT p50 | MQTT p99 | MQTT max | p99 WS/MQTT | server CPU | harness CPU | other CPU | sustained |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|\n",
        );
        for p in self.phases.iter().filter(|p| p.reported) {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.2} % | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                p.label,
                p.target_rate,
                p.achieved_rate(),
                p.ws_delivered() * 100.0,
                ms(p.ws.percentile_ms(50.0)),
                ms(p.ws.percentile_ms(90.0)),
                ms(p.ws.percentile_ms(99.0)),
                ms(p.ws.max_ms()),
                ms(p.ws_first.percentile_ms(50.0)),
                ms(p.ws_first.percentile_ms(99.0)),
                ms(p.mqtt.percentile_ms(50.0)),
                ms(p.mqtt.percentile_ms(99.0)),
                ms(p.mqtt.max_ms()),
                p.p99_ratio()
                    .map_or_else(|| "–".to_owned(), |r| format!("{r:.1}×")),
                percent(p.cpu.server),
                percent(p.cpu.harness),
                percent(p.cpu.other),
                if p.sustained() { "yes" } else { "no" },
            );
        }
        out
    }
}

/// `secs` of CPU shared by `count` items, in µs each; `None` for no items.
pub fn per(secs: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| secs * 1e6 / count as f64)
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

pub fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2} ms"))
}

/// A CPU cost in µs, or a dash.
pub fn micros_text(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} µs"))
}

pub fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0} %"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let latencies = Latencies::new((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!(latencies.percentile_ms(50.0), Some(50.0));
        assert_eq!(latencies.percentile_ms(99.0), Some(99.0));
        assert_eq!(latencies.percentile_ms(100.0), Some(100.0));
        assert_eq!(latencies.max_ms(), Some(100.0));
        assert_eq!(Latencies::default().percentile_ms(50.0), None);
    }

    fn burst(first_ts_us: i64, last_ts_us: i64) -> Burst {
        Burst {
            sent: 2,
            first_ts_us,
            last_ts_us,
            started: std::time::Instant::now(),
            elapsed: Duration::from_secs(1),
            ended_us: last_ts_us,
        }
    }

    fn closing(label: &str, burst: Burst) -> Closing {
        Closing {
            label: label.to_owned(),
            reported: true,
            target_rate: 2.0,
            burst,
            subscribers_per_station: 2,
            cpu: CpuUse::default(),
            rss_kib: None,
        }
    }

    #[test]
    fn deliveries_are_booked_to_the_phase_that_sent_them() {
        let (ws_a, ws_b, mqtt) = (Samples::default(), Samples::default(), Samples::default());
        let mut ledger = Ledger::new(vec![ws_a.clone(), ws_b.clone()], mqtt.clone());
        let grace = micros(GRACE);
        let at = |sent_us, received_us| Sample {
            sent_us,
            received_us,
        };
        // Message 100 reaches both subscribers (the second one later), message
        // 200 only one, and one delivery of it comes after the grace period.
        ws_a.push(at(100, 1_100));
        ws_b.push(at(100, 3_100));
        ws_a.push(at(200, 1_200));
        ws_b.push(at(200, 200 + grace + 1));
        mqtt.push(at(100, 150));
        mqtt.push(at(200, 250));
        ledger.close(closing("one", burst(100, 200)));

        let one = &ledger.phases[0];
        assert_eq!((one.ws.count(), one.ws_late, one.ws_expected), (3, 1, 4));
        assert_eq!(one.ws.max_ms(), Some(3.0));
        // The earliest delivery of each message: 1 ms for both.
        assert_eq!(
            (one.ws_first.count(), one.ws_first.max_ms()),
            (2, Some(1.0))
        );
        assert_eq!(one.mqtt.count(), 2);
        assert!(!one.sustained(), "3 of 4 deliveries is not sustained");

        // A straggler of phase one, collected while closing phase two.
        ws_a.push(at(150, 9_000_000));
        ws_a.push(at(300, 1_300));
        ledger.close(closing("two", burst(300, 400)));
        assert_eq!(ledger.phases[0].ws_late, 2);
        assert_eq!(ledger.phases[1].ws.count(), 1);
    }
}
