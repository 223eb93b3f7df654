//! Counts of devices for dashboards.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::entities::{DeviceStatus, device};
use crate::error::AppResult;

/// Devices reporting in: online, idle or charging.
pub async fn online(db: &impl ConnectionTrait) -> AppResult<u64> {
    Ok(device::Entity::find()
        .filter(device::Column::Status.is_in([
            DeviceStatus::Online,
            DeviceStatus::Idle,
            DeviceStatus::Charging,
        ]))
        .count(db)
        .await?)
}
