//! CPU accounting from Linux's `/proc`: the server's, its threads', the
//! harness's and everybody else's, so a run says where the CPU went and whether
//! a neighbour (a build, another benchmark) was competing for the 2 cores.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every
/// mainstream architecture (reading it would need libc's sysconf).
const TICKS_PER_SECOND: u64 = 100;

/// Cumulative CPU times at one instant.
pub struct CpuSnapshot {
    at: Instant,
    server: Option<Duration>,
    server_threads: BTreeMap<String, Duration>,
    harness: Option<Duration>,
    machine: Option<Duration>,
}

/// CPU used between two snapshots, in % of one core (200 % is all of 2 cores).
#[derive(Debug, Default)]
pub struct CpuUse {
    pub server: Option<f64>,
    /// CPU time the server used, in seconds (for the cost per message).
    pub server_secs: Option<f64>,
    pub harness: Option<f64>,
    /// Every other process of the machine.
    pub other: Option<f64>,
    /// The server's busiest threads, by name, busiest first.
    pub server_threads: Vec<(String, f64)>,
}

impl CpuSnapshot {
    pub fn take(server_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            server: cpu_time(&format!("/proc/{server_pid}/stat")),
            server_threads: thread_cpu_times(server_pid),
            harness: cpu_time("/proc/self/stat"),
            machine: machine_cpu_time(),
        }
    }

    /// What was used from `before` until this snapshot.
    pub fn since(&self, before: &Self) -> CpuUse {
        let wall = self.at.duration_since(before.at).as_secs_f64().max(1e-9);
        let share = |after: Option<Duration>, before: Option<Duration>| {
            Some(after?.saturating_sub(before?).as_secs_f64() / wall * 100.0)
        };
        let server = share(self.server, before.server);
        let server_secs = self
            .server
            .zip(before.server)
            .map(|(after, before)| after.saturating_sub(before).as_secs_f64());
        let harness = share(self.harness, before.harness);
        let machine = share(self.machine, before.machine);
        let mut server_threads: Vec<(String, f64)> = self
            .server_threads
            .iter()
            .map(|(name, &time)| {
                let earlier = before.server_threads.get(name).copied().unwrap_or_default();
                (
                    name.clone(),
                    time.saturating_sub(earlier).as_secs_f64() / wall * 100.0,
                )
            })
            .filter(|(_, share)| *share >= 1.0)
            .collect();
        server_threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        server_threads.truncate(6);
        CpuUse {
            server,
            server_secs,
            harness,
            other: other_processes(machine, server, harness),
            server_threads,
        }
    }
}

fn other_processes(machine: Option<f64>, server: Option<f64>, harness: Option<f64>) -> Option<f64> {
    Some((machine? - server? - harness?).max(0.0))
}

/// User plus system CPU time of a process, from a `/proc/<pid>/stat` file.
fn cpu_time(stat_path: &str) -> Option<Duration> {
    parse_cpu_time(&std::fs::read_to_string(stat_path).ok()?)
}

/// User plus system CPU time from the text of a `stat` file (process or thread).
fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may contain spaces; fields are counted after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

/// CPU time of a process's threads so far, summed by thread name (`comm`, which
/// Linux truncates to 15 bytes, e.g. `tokio-runtime-w`).
fn thread_cpu_times(pid: u32) -> BTreeMap<String, Duration> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        // A thread may exit between listing and reading: skip it.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name.to_owned());
        if let (Some(name), Some(time)) = (name, parse_cpu_time(&stat)) {
            *by_name.entry(name).or_default() += time;
        }
    }
    by_name
}

/// CPU time used by the whole machine so far (every process, user and system).
fn machine_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| ticks.get(i))
        .sum();
    Some(Duration::from_millis(busy * 1000 / TICKS_PER_SECOND))
}

/// Resident memory of a process, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The machine, for the report: logical CPUs and CPU model.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} logical CPUs, {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        // utime 250 and stime 50 ticks, after a command name holding spaces and a ')'.
        let stat = "42 (tokio (rt) w) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 8 0 1000";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_secs(3)));
        assert_eq!(parse_cpu_time("garbage"), None);
    }
}
