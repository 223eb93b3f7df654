//! When readings and reports raise alerts (pure).

use crate::entities::{AlertKind, AlertSeverity};

/// Thresholds of the alert rules (configuration, `docs/supervision.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A temperature reading above this (°C) raises `OVER_TEMPERATURE`.
    pub max_temperature_c: f64,
    /// The alert resolves itself once a reading is this far back below the limit.
    pub temperature_hysteresis_c: f64,
    /// A smoke reading at or above this raises `SMOKE` (resolved by a person only).
    pub smoke_threshold: f64,
    /// A telemetry sample above this current (A) raises `OVER_CURRENT`.
    pub max_current_a: f64,
    /// A telemetry sample outside `[min_voltage_v, max_voltage_v]` raises
    /// `VOLTAGE_OUT_OF_RANGE`.
    pub min_voltage_v: f64,
    pub max_voltage_v: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_temperature_c: 60.0,
            temperature_hysteresis_c: 5.0,
            smoke_threshold: 0.5,
            max_current_a: 40.0,
            min_voltage_v: 207.0,
            max_voltage_v: 253.0,
        }
    }
}

/// What a reading means for its alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The condition holds: raise (or refresh) the alert.
    Raise {
        kind: AlertKind,
        severity: AlertSeverity,
        message: String,
    },
    /// The condition is over: resolve the open alert, if any.
    Recover(AlertKind),
    Nothing,
}

/// Judges one sensor reading of `kind` (the sensor's topic name).
pub fn judge_reading(kind: &str, value: f64, unit: &str, limits: &Thresholds) -> Verdict {
    match kind {
        "temperature" if value > limits.max_temperature_c => Verdict::Raise {
            kind: AlertKind::OverTemperature,
            severity: if value > limits.max_temperature_c + 15.0 {
                AlertSeverity::Critical
            } else {
                AlertSeverity::High
            },
            message: format!(
                "temperature {value:.1} {unit} above the {:.1} limit",
                limits.max_temperature_c
            ),
        },
        "temperature" if value <= limits.max_temperature_c - limits.temperature_hysteresis_c => {
            Verdict::Recover(AlertKind::OverTemperature)
        }
        "smoke" if value >= limits.smoke_threshold => Verdict::Raise {
            kind: AlertKind::Smoke,
            severity: AlertSeverity::Critical,
            message: format!("smoke detected ({value:.2} {unit})"),
        },
        _ => Verdict::Nothing,
    }
}

/// Judges one telemetry sample: its current, then its voltage. Both end by
/// themselves once a sample is back within the limits.
pub fn judge_sample(current_a: f64, voltage_v: f64, limits: &Thresholds) -> [Verdict; 2] {
    let current = if current_a > limits.max_current_a {
        Verdict::Raise {
            kind: AlertKind::OverCurrent,
            severity: if current_a > limits.max_current_a * 1.25 {
                AlertSeverity::Critical
            } else {
                AlertSeverity::High
            },
            message: format!(
                "current {current_a:.1} A above the {:.1} A limit",
                limits.max_current_a
            ),
        }
    } else {
        Verdict::Recover(AlertKind::OverCurrent)
    };
    let voltage = if voltage_v < limits.min_voltage_v || voltage_v > limits.max_voltage_v {
        Verdict::Raise {
            kind: AlertKind::VoltageOutOfRange,
            severity: AlertSeverity::High,
            message: format!(
                "voltage {voltage_v:.1} V outside {:.1}–{:.1} V",
                limits.min_voltage_v, limits.max_voltage_v
            ),
        }
    } else {
        Verdict::Recover(AlertKind::VoltageOutOfRange)
    };
    [current, voltage]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Thresholds = Thresholds {
        max_temperature_c: 60.0,
        temperature_hysteresis_c: 5.0,
        smoke_threshold: 0.5,
        max_current_a: 40.0,
        min_voltage_v: 207.0,
        max_voltage_v: 253.0,
    };

    #[test]
    fn samples_raise_over_current_and_voltage_out_of_range_and_recover_within_limits() {
        let [current, voltage] = judge_sample(45.0, 200.0, &LIMITS);
        assert_eq!(
            raised(&current),
            Some((AlertKind::OverCurrent, AlertSeverity::High))
        );
        assert_eq!(
            raised(&voltage),
            Some((AlertKind::VoltageOutOfRange, AlertSeverity::High))
        );
        let [current, _] = judge_sample(60.0, 230.0, &LIMITS);
        assert_eq!(
            raised(&current),
            Some((AlertKind::OverCurrent, AlertSeverity::Critical))
        );
        assert_eq!(
            judge_sample(32.0, 230.0, &LIMITS),
            [
                Verdict::Recover(AlertKind::OverCurrent),
                Verdict::Recover(AlertKind::VoltageOutOfRange)
            ]
        );
        let [_, high] = judge_sample(10.0, 260.0, &LIMITS);
        assert!(raised(&high).is_some());
    }

    fn raised(verdict: &Verdict) -> Option<(AlertKind, AlertSeverity)> {
        match verdict {
            Verdict::Raise { kind, severity, .. } => Some((*kind, *severity)),
            _ => None,
        }
    }

    #[test]
    fn temperature_raises_above_the_limit_and_recovers_below_the_hysteresis() {
        let judge = |value| judge_reading("temperature", value, "C", &LIMITS);
        assert_eq!(
            raised(&judge(61.0)),
            Some((AlertKind::OverTemperature, AlertSeverity::High))
        );
        assert_eq!(
            raised(&judge(80.0)),
            Some((AlertKind::OverTemperature, AlertSeverity::Critical))
        );
        assert_eq!(judge(58.0), Verdict::Nothing, "inside the hysteresis band");
        assert_eq!(judge(55.0), Verdict::Recover(AlertKind::OverTemperature));
    }

    #[test]
    fn smoke_raises_and_never_recovers_by_itself() {
        let judge = |value| judge_reading("smoke", value, "", &LIMITS);
        assert_eq!(
            raised(&judge(0.9)),
            Some((AlertKind::Smoke, AlertSeverity::Critical))
        );
        assert_eq!(judge(0.0), Verdict::Nothing);
        assert_eq!(
            judge_reading("humidity", 99.0, "%", &LIMITS),
            Verdict::Nothing
        );
    }
}
