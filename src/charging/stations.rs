//! Reading stations.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::entities::{StationStatus, station};
use crate::error::AppResult;
use crate::graphql::pagination::{Page, PageRequest};

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
    let total_count = filtered(filter).count(db).await?;
    let mut query = filtered(filter).order_by_asc(station::Column::Id);
    if let Some(after) = page.after {
        query = query.filter(station::Column::Id.gt(after));
    }
    // One extra row tells whether another page follows.
    let mut items = query.limit(page.first + 1).all(db).await?;
    let has_next_page = items.len() as u64 > page.first;
    items.truncate(page.first as usize);
    Ok(Page {
        items,
        has_next_page,
        total_count,
    })
}

pub async fn get(db: &impl ConnectionTrait, id: i32) -> AppResult<Option<station::Model>> {
    Ok(station::Entity::find_by_id(id).one(db).await?)
}
