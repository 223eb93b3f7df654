//! GraphQL of telemetry and sensors: a charging session's series (raw or
//! downsampled), the latest values per bay, a device's sensors and a
//! sensor's readings. Staff see all; technicians their stations; a customer
//! the telemetry of their own sessions.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::{sensors, telemetry};
use crate::auth::guards::principal;
use crate::entities::{RoleName, sensor, sensor_reading, session_telemetry};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;

impl Kind {
    pub const SENSOR: Self = Self::named("Sensor");
}

/// Most points or readings one query returns.
const MAX_POINTS: i32 = 5000;

fn limit(first: Option<i32>) -> Result<u64> {
    match first.unwrap_or(1000) {
        n @ 1..=MAX_POINTS => Ok(n as u64),
        _ => Err(AppError::bad_input("first", format!("between 1 and {MAX_POINTS}")).into()),
    }
}

/// Average, least and greatest value over a point.
#[derive(SimpleObject)]
pub struct Range {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// One sample of a session, or the summary of a bucket of samples.
#[derive(SimpleObject)]
pub struct TelemetryPoint {
    /// The sample's device time, or the start of the bucket.
    pub at: DateTime,
    /// How many samples the point summarizes (1 for a raw sample).
    pub samples: i64,
    pub current_a: Range,
    pub voltage_v: Range,
    /// The session's energy at the end of the point.
    pub energy_kwh: f64,
}

impl From<telemetry::Point> for TelemetryPoint {
    fn from(p: telemetry::Point) -> Self {
        Self {
            at: p.at().into(),
            samples: p.samples,
            current_a: Range {
                avg: p.current_avg,
                min: p.current_min,
                max: p.current_max,
            },
            voltage_v: Range {
                avg: p.voltage_avg,
                min: p.voltage_min,
                max: p.voltage_max,
            },
            energy_kwh: p.energy_kwh,
        }
    }
}

/// The latest sample of a bay.
pub struct BayTelemetry(pub session_telemetry::Model);

#[Object]
impl BayTelemetry {
    async fn bay_id(&self) -> ID {
        ids::encode(Kind::BAY, self.0.bay_id)
    }
    async fn session_id(&self) -> ID {
        ids::encode(Kind::CHARGING_SESSION, self.0.session_id)
    }
    async fn current_a(&self) -> f64 {
        self.0.current_a
    }
    async fn voltage_v(&self) -> f64 {
        self.0.voltage_v
    }
    async fn energy_kwh(&self) -> f64 {
        self.0.energy_kwh
    }
    /// Device time of the sample.
    async fn at(&self) -> DateTime {
        self.0.ts.into()
    }
    async fn received_at(&self) -> DateTime {
        self.0.received_at.into()
    }
}

/// A sensor of a device, created on its first reading of a kind.
pub struct Sensor(pub sensor::Model);

#[Object]
impl Sensor {
    async fn id(&self) -> ID {
        ids::encode(Kind::SENSOR, self.0.id)
    }
    async fn device_id(&self) -> ID {
        ids::encode(Kind::DEVICE, self.0.device_id)
    }
    /// Its topic name: `temperature`, `smoke`, …
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn unit(&self) -> &str {
        &self.0.unit
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// One reading of a sensor.
pub struct SensorReading(pub sensor_reading::Model);

#[Object]
impl SensorReading {
    async fn value(&self) -> f64 {
        self.0.value
    }
    /// Device time of the reading.
    async fn at(&self) -> DateTime {
        self.0.ts.into()
    }
    async fn received_at(&self) -> DateTime {
        self.0.received_at.into()
    }
}

#[derive(Default)]
pub struct TelemetryQuery;

#[Object]
impl TelemetryQuery {
    /// A charging session's telemetry measured in `[from, to)`, oldest first:
    /// raw samples, or with `bucketSeconds` one point per bucket (average,
    /// least and greatest current and voltage). At most `first` points
    /// (1000 by default, 5000 at most).
    #[graphql(complexity = "first.unwrap_or(1000).max(0) as usize * child_complexity / 10 + 1")]
    async fn session_telemetry(
        &self,
        ctx: &Context<'_>,
        session_id: ID,
        from: Option<DateTime>,
        to: Option<DateTime>,
        bucket_seconds: Option<i32>,
        first: Option<i32>,
    ) -> Result<Vec<TelemetryPoint>> {
        let principal = principal(ctx);
        principal.person()?;
        let session_id = ids::decode(&session_id, Kind::CHARGING_SESSION, "sessionId")?;
        let bucket = match bucket_seconds {
            None => None,
            Some(secs @ 1..=86_400) => Some(chrono::TimeDelta::seconds(secs.into())),
            Some(_) => {
                return Err(AppError::bad_input("bucketSeconds", "between 1 and 86400").into());
            }
        };
        let window = telemetry::Window {
            from: from.map(|d| d.0),
            to: to.map(|d| d.0),
            bucket,
            limit: limit(first)?,
        };
        let db = &services(ctx)?.db;
        telemetry::readable_session(db, principal, session_id).await?;
        let points = telemetry::series(db, session_id, window)
            .await
            .map_err(AppError::from)?;
        Ok(points.into_iter().map(Into::into).collect())
    }

    /// The latest sample of each bay the caller supervises (of one station
    /// when `stationId` is given).
    async fn latest_telemetry(
        &self,
        ctx: &Context<'_>,
        station_id: Option<ID>,
    ) -> Result<Vec<BayTelemetry>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let station = ids::decode_opt(station_id.as_ref(), Kind::STATION, "stationId")?;
        let rows = telemetry::latest_per_bay(&services(ctx)?.db, principal, station)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(BayTelemetry).collect())
    }

    /// The sensors of a device the caller supervises.
    async fn device_sensors(&self, ctx: &Context<'_>, device_id: ID) -> Result<Vec<Sensor>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let device = ids::decode(&device_id, Kind::DEVICE, "deviceId")?;
        let rows = sensors::of_device(&services(ctx)?.db, principal, device).await?;
        Ok(rows.into_iter().map(Sensor).collect())
    }

    /// Readings of a sensor measured in `[from, to)`, newest first, at most
    /// `first` (1000 by default, 5000 at most).
    #[graphql(complexity = "first.unwrap_or(1000).max(0) as usize * child_complexity / 10 + 1")]
    async fn sensor_readings(
        &self,
        ctx: &Context<'_>,
        sensor_id: ID,
        from: Option<DateTime>,
        to: Option<DateTime>,
        first: Option<i32>,
    ) -> Result<Vec<SensorReading>> {
        let principal = principal(ctx);
        principal.require(RoleName::Technician)?;
        let sensor = ids::decode(&sensor_id, Kind::SENSOR, "sensorId")?;
        let (_, rows) = sensors::readings(
            &services(ctx)?.db,
            principal,
            sensor,
            from.map(|d| d.0),
            to.map(|d| d.0),
            limit(first)?,
        )
        .await?;
        Ok(rows.into_iter().map(SensorReading).collect())
    }
}
