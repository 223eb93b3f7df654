//! Maintenance time windows: a planned or in-progress intervention
//! (`maintenances`) takes its station out of service for
//! `[planned_at, planned_at + VOLTGATE_MAINTENANCE_WINDOW_HOURS)` (the
//! reservation settings' `maintenance_window`). New
//! reservations overlapping such a window are refused (`BAY_UNAVAILABLE`,
//! [`blocking`]), the catalog shows its bays out of service for those slots,
//! and supervision calls [`apply`] whenever it creates or edits an
//! intervention, which cancels the station's waiting reservations overlapping
//! the window and tells each owner through the outbox.
//!
//! A reservation already in use (`ACTIVE`) is left alone: its session ends as
//! sessions do. Bay statuses follow through the `refresh_bay_statuses` job.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use serde_json::json;

use super::{outbox, reservations};
use crate::entities::bay;
use crate::entities::maintenance::{self, MaintenanceStatus};
use crate::entities::reservation::{self, ReservationStatus};
use crate::error::AppResult;

const BLOCKING: [MaintenanceStatus; 2] =
    [MaintenanceStatus::Planned, MaintenanceStatus::InProgress];

/// An intervention's window, in microseconds, when it blocks its station.
pub fn window_of(intervention: &maintenance::Model, length: TimeDelta) -> Option<(i64, i64)> {
    if !BLOCKING.contains(&intervention.status) {
        return None;
    }
    let start = intervention.planned_at.timestamp_micros();
    Some((start, start + length.num_microseconds().unwrap_or(0)))
}

/// Whether a blocking intervention on `station_id` overlaps `[start, end)`.
///
/// # Errors
/// On database errors.
pub async fn blocking(
    db: &impl ConnectionTrait,
    window: TimeDelta,
    station_id: i32,
    start: i64,
    end: i64,
) -> AppResult<bool> {
    let length = window.num_microseconds().unwrap_or(0);
    // planned_at < end and planned_at + length > start.
    let from = DateTime::<Utc>::from_timestamp_micros(start - length).unwrap_or_default();
    let until = DateTime::<Utc>::from_timestamp_micros(end).unwrap_or_default();
    Ok(maintenance::Entity::find()
        .filter(maintenance::Column::StationId.eq(station_id))
        .filter(maintenance::Column::Status.is_in(BLOCKING))
        .filter(maintenance::Column::PlannedAt.gt(from))
        .filter(maintenance::Column::PlannedAt.lt(until))
        .count(db)
        .await?
        > 0)
}

/// Cancels the waiting reservations of the intervention's station that
/// overlap its window, each owner notified; the cancelled reservations.
/// Supervision calls it after creating or editing an intervention.
///
/// # Errors
/// On database errors.
pub async fn apply(
    db: &impl ConnectionTrait,
    window: TimeDelta,
    intervention: &maintenance::Model,
    now: DateTime<Utc>,
) -> AppResult<Vec<reservation::Model>> {
    let Some((start, end)) = window_of(intervention, window) else {
        return Ok(Vec::new());
    };
    let bays: Vec<i32> = bay::Entity::find()
        .select_only()
        .column(bay::Column::Id)
        .filter(bay::Column::StationId.eq(intervention.station_id))
        .into_tuple()
        .all(db)
        .await?;
    let overlapping = reservation::Entity::find()
        .filter(reservation::Column::BayId.is_in(bays))
        .filter(
            reservation::Column::Status
                .is_in([ReservationStatus::Pending, ReservationStatus::Confirmed]),
        )
        .filter(reservation::Column::StartsAtUs.lt(end))
        .filter(reservation::Column::EndsAtUs.gt(start.max(now.timestamp_micros())))
        .all(db)
        .await?;
    let mut cancelled = Vec::new();
    for row in overlapping {
        // Conditional on the status read: a reservation changed meanwhile
        // (used, cancelled by its owner) is left as it is.
        let done = reservation::Entity::update_many()
            .col_expr(
                reservation::Column::Status,
                Expr::value(ReservationStatus::Cancelled),
            )
            .col_expr(
                reservation::Column::CancelledAtUs,
                Expr::value(now.timestamp_micros()),
            )
            .filter(reservation::Column::Id.eq(row.id))
            .filter(reservation::Column::Status.eq(row.status))
            .exec(db)
            .await?;
        if done.rows_affected != 1 {
            continue;
        }
        reservations::revoke_access(db, &row, now).await?;
        outbox::queue(
            db,
            row.user_id,
            outbox::template::RESERVATION_CANCELLED,
            &json!({
                "reference": row.reference_code,
                "reason": "maintenance",
                "maintenance": intervention.id,
            }),
        )
        .await?;
        cancelled.push(row);
    }
    if !cancelled.is_empty() {
        tracing::info!(
            maintenance = intervention.id,
            count = cancelled.len(),
            "reservations cancelled by a maintenance window"
        );
    }
    Ok(cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervention(status: MaintenanceStatus) -> maintenance::Model {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        maintenance::Model {
            id: 1,
            station_id: 1,
            technician_id: None,
            kind: "corrective".into(),
            description: String::new(),
            status,
            planned_at: at,
            done_at: None,
            created_at: at,
        }
    }

    #[test]
    fn planned_and_in_progress_interventions_block_their_window_only() {
        let hours = TimeDelta::hours(4);
        let start = 1_800_000_000_i64 * 1_000_000;
        assert_eq!(
            window_of(&intervention(MaintenanceStatus::Planned), hours),
            Some((start, start + 4 * 3_600_000_000))
        );
        assert!(window_of(&intervention(MaintenanceStatus::InProgress), hours).is_some());
        assert_eq!(
            window_of(&intervention(MaintenanceStatus::Done), hours),
            None
        );
        assert_eq!(
            window_of(&intervention(MaintenanceStatus::Cancelled), hours),
            None
        );
    }
}
