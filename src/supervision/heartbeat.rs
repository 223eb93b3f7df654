//! The heartbeat timeout: a device in service that sends no state report for
//! longer than the configured timeout is marked offline and raises
//! `DEVICE_OFFLINE`, as its Last Will would have. Its next report brings it
//! back and resolves the alert (`sensors::device_state`).
//!
//! Safe with several replicas: each run is claimed by one replica
//! (`jobs::claim`), and each device is marked by a conditional `UPDATE` that
//! applies only if no report changed its state since it was read, so a device
//! that spoke up meanwhile is left alone and none is marked twice.

use anyhow::Context as _;
use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::sensors;
use crate::bus::{AlertChanged, BayStatusChanged, DomainEvent};
use crate::entities::{DeviceStatus, bay, device};
use crate::jobs::Job;
use crate::services::ServiceContext;

/// Devices looked at per run; the next run takes the rest.
const BATCH: u64 = 500;

pub struct DetectSilentDevices;

#[async_trait]
impl Job for DetectSilentDevices {
    fn name(&self) -> &'static str {
        "detect_silent_devices"
    }

    fn every(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(1)
    }

    async fn run(&self, services: &ServiceContext) -> anyhow::Result<()> {
        let Some(timeout) = services.supervision.heartbeat_timeout() else {
            return Ok(());
        };
        let now = services.now();
        let cutoff = now - timeout;
        let silent = device::Entity::find()
            .filter(device::Column::RetiredAt.is_null())
            .filter(device::Column::Status.is_in([
                DeviceStatus::Online,
                DeviceStatus::Idle,
                DeviceStatus::Charging,
                DeviceStatus::Error,
            ]))
            .filter(
                Condition::any()
                    .add(device::Column::LastHeardAt.is_null())
                    .add(device::Column::LastHeardAt.lt(cutoff)),
            )
            .order_by_asc(device::Column::Id)
            .limit(BATCH)
            .all(&services.db)
            .await
            .context("finding silent devices")?;
        let mut events = Vec::new();
        for found in silent {
            let txn = services.db.begin().await?;
            let unchanged = match found.state_order_us {
                Some(order) => device::Column::StateOrderUs.eq(order),
                None => device::Column::StateOrderUs.is_null(),
            };
            let marked = device::Entity::update_many()
                .col_expr(device::Column::Status, Expr::value(DeviceStatus::Offline))
                .filter(device::Column::Id.eq(found.id))
                .filter(device::Column::Status.eq(found.status))
                .filter(unchanged)
                .exec(&txn)
                .await
                .context("marking a silent device offline")?;
            if marked.rows_affected == 0 {
                continue;
            }
            // The bay as it stands, locked, with its next revision: the
            // announcement is then newer than any made of it before.
            let Some(bay) = bay::Entity::update_many()
                .col_expr(bay::Column::Revision, bay::next_revision())
                .filter(bay::Column::Id.eq(found.bay_id))
                .exec_with_returning(&txn)
                .await?
                .pop()
            else {
                continue;
            };
            let alert = sensors::device_state(&txn, &bay, found.id, true, now)
                .await
                .context("raising DEVICE_OFFLINE")?;
            txn.commit().await?;
            tracing::info!(
                device = found.id,
                bay = bay.id,
                "device silent past the heartbeat timeout: offline"
            );
            events.push(DomainEvent::BayStatusChanged(BayStatusChanged {
                bay,
                device_status: Some(DeviceStatus::Offline),
                changed_at: now,
                repeat: false,
            }));
            events.extend(
                alert.map(|(alert, change)| {
                    DomainEvent::AlertChanged(AlertChanged { alert, change })
                }),
            );
        }
        if !events.is_empty() {
            services
                .bus
                .publish_all(events)
                .await
                .context("devices marked offline but not announced")?;
        }
        Ok(())
    }
}
