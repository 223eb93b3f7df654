//! Each subscriber's deliveries checked against what the publisher sent to
//! its station, message by message (by `ts`, which events carry as `changedAt`).

use std::collections::{HashMap, HashSet};

use crate::publisher::Sent;

use super::KILLED;
use super::follower::Trail;

/// Figures of one group of subscribers (those that moved, those that stayed).
#[derive(Debug, Default)]
pub struct Group {
    pub subscribers: usize,
    pub expected: u64,
    pub delivered: u64,
    pub missed: u64,
    /// Missed events that no subscriber of the station got either: lost before
    /// the event bus (broker or ingestion), not by the resume.
    pub missed_everywhere: u64,
    pub duplicates: u64,
    pub with_missed: usize,
    pub with_duplicates: usize,
    /// Deliveries of messages the publisher never sent to that station.
    pub foreign: u64,
    /// Reconnect (subscribe sent) → first replayed event, sorted, in µs.
    pub replay_us: Vec<i64>,
    /// Subscribers that resumed with nothing to catch up on.
    pub nothing_to_replay: usize,
    pub not_resumed: usize,
}

/// Checks every subscriber's deliveries against what was sent to its station.
pub(super) fn tally(log: &[Sent], trails: &[(u32, usize, Trail)]) -> (Group, Group) {
    let mut by_station: HashMap<u32, HashSet<i64>> = HashMap::new();
    for message in log {
        by_station
            .entry(message.station)
            .or_default()
            .insert(message.ts_us);
    }
    // Messages some subscriber of the station got: the rest never reached the bus.
    let mut reached: HashMap<u32, HashSet<i64>> = HashMap::new();
    for (station, _, trail) in trails {
        reached
            .entry(*station)
            .or_default()
            .extend(trail.got.iter().map(|g| g.ts_us));
    }
    let empty = HashSet::new();
    let (mut moved, mut stayed) = (Group::default(), Group::default());
    for (station, home, trail) in trails {
        let group = if *home == KILLED {
            &mut moved
        } else {
            &mut stayed
        };
        let expected = by_station.get(station).unwrap_or(&empty);
        let reached = reached.get(station).unwrap_or(&empty);
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for got in &trail.got {
            *counts.entry(got.ts_us).or_default() += 1;
        }
        let missed: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|ts| !counts.contains_key(ts))
            .collect();
        let duplicates: u64 = counts
            .iter()
            .filter(|(ts, _)| expected.contains(ts))
            .map(|(_, n)| n - 1)
            .sum();
        group.subscribers += 1;
        group.expected += expected.len() as u64;
        group.delivered += counts.keys().filter(|ts| expected.contains(ts)).count() as u64;
        group.foreign += counts
            .iter()
            .filter(|(ts, _)| !expected.contains(ts))
            .map(|(_, n)| n)
            .sum::<u64>();
        group.missed += missed.len() as u64;
        group.missed_everywhere += missed.iter().filter(|ts| !reached.contains(ts)).count() as u64;
        group.duplicates += duplicates;
        group.with_missed += usize::from(!missed.is_empty());
        group.with_duplicates += usize::from(duplicates > 0);
        if *home != KILLED {
            continue;
        }
        match trail.resumed {
            None => group.not_resumed += 1,
            Some(resumed) => {
                let after_seen = |ts: i64| resumed.last_seen_ts_us.is_none_or(|seen| ts > seen);
                let to_replay = expected
                    .iter()
                    .any(|&ts| after_seen(ts) && ts < resumed.subscribed_us);
                let first_replayed = trail.got.iter().find(|g| {
                    g.replica != KILLED
                        && g.received_us >= resumed.subscribed_us
                        && g.ts_us < resumed.subscribed_us
                        && after_seen(g.ts_us)
                });
                match first_replayed {
                    Some(got) => group
                        .replay_us
                        .push(got.received_us - resumed.subscribed_us),
                    None if !to_replay => group.nothing_to_replay += 1,
                    // Something to replay that never came: counted as missed above.
                    None => {}
                }
            }
        }
    }
    moved.replay_us.sort_unstable();
    (moved, stayed)
}

pub(super) fn percentile_ms(sorted_us: &[i64], p: f64) -> Option<f64> {
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    sorted_us
        .get(rank.clamp(1, sorted_us.len().max(1)) - 1)
        .map(|&us| us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::super::SURVIVOR;
    use super::super::follower::{Got, Resumption};
    use super::*;

    fn got(ts_us: i64, received_us: i64, replica: usize) -> Got {
        Got {
            ts_us,
            received_us,
            replica,
        }
    }

    #[test]
    fn deliveries_are_checked_message_by_message() {
        // Station 1 got messages 10, 20, 30, 40, 50; station 2 got 15.
        let log: Vec<Sent> = [(10, 1), (15, 2), (20, 1), (30, 1), (40, 1), (50, 1)]
            .into_iter()
            .map(|(ts_us, station)| Sent { ts_us, station })
            .collect();
        // Moved from A after 20, resumed on B at 35: 30 is replayed at 37, 40
        // comes twice, 50 never; 15 belongs to another station.
        let moved = Trail {
            got: vec![
                got(10, 11, KILLED),
                got(20, 21, KILLED),
                got(30, 37, SURVIVOR),
                got(40, 41, SURVIVOR),
                got(40, 42, SURVIVOR),
                got(15, 43, SURVIVOR),
            ],
            resumed: Some(Resumption {
                subscribed_us: 35,
                last_seen_ts_us: Some(20),
            }),
            ..Trail::default()
        };
        // Stayed on B: everything but 50, which no subscriber got.
        let stayed = Trail {
            got: [10, 20, 30, 40]
                .into_iter()
                .map(|ts| got(ts, ts + 1, SURVIVOR))
                .collect(),
            ..Trail::default()
        };
        let (moved, stayed) = tally(&log, &[(1, KILLED, moved), (1, SURVIVOR, stayed)]);
        assert_eq!((moved.expected, moved.delivered), (5, 4));
        assert_eq!((moved.missed, moved.missed_everywhere), (1, 1));
        assert_eq!((moved.duplicates, moved.with_duplicates), (1, 1));
        assert_eq!(moved.foreign, 1);
        assert_eq!(moved.replay_us, vec![2]);
        assert_eq!(
            (stayed.missed, stayed.duplicates, stayed.with_missed),
            (1, 0, 1)
        );
    }

    #[test]
    fn a_resume_with_nothing_missed_has_nothing_to_replay() {
        let log = vec![
            Sent {
                ts_us: 10,
                station: 1,
            },
            Sent {
                ts_us: 50,
                station: 1,
            },
        ];
        let trail = Trail {
            got: vec![got(10, 11, KILLED), got(50, 51, SURVIVOR)],
            resumed: Some(Resumption {
                subscribed_us: 30,
                last_seen_ts_us: Some(10),
            }),
            ..Trail::default()
        };
        let (moved, _) = tally(&log, &[(1, KILLED, trail)]);
        assert_eq!((moved.missed, moved.nothing_to_replay), (0, 1));
        assert!(moved.replay_us.is_empty());
    }
}
