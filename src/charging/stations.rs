//! Reading stations.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Select};

use crate::entities::{StationStatus, bay, station};
use crate::error::AppResult;
use crate::pagination::{Page, PageRequest};

/// Which stations to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct StationFilter {
    pub status: Option<StationStatus>,
}

fn filtered(filter: StationFilter) -> Select<station::Entity> {
    let mut query = station::Entity::find();
    if let Some(status) = filter.status {
        query = query.filter(station::Column::Status.eq(status));
    }
    query
}

/// One page of stations in id order.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: StationFilter,
    page: PageRequest,
) -> AppResult<Page<station::Model>> {
    crate::db::page_by_id(db, filtered(filter), station::Column::Id, page).await
}

pub async fn get(db: &impl ConnectionTrait, id: i32) -> AppResult<Option<station::Model>> {
    Ok(station::Entity::find_by_id(id).one(db).await?)
}

/// How many stations there are.
pub async fn count_stations(db: &impl ConnectionTrait) -> AppResult<u64> {
    Ok(station::Entity::find().count(db).await?)
}

/// How many bays there are.
pub async fn count_bays(db: &impl ConnectionTrait) -> AppResult<u64> {
    Ok(bay::Entity::find().count(db).await?)
}
