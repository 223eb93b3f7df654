//! Demo check-in data for `voltgate seed --demo`: a list and a scanner for
//! the first event, when there is one (ticketing's demo data brings events).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::auth::tokens::{random_token, sha256_hex};
use crate::entities::{checkin_list, event, scanner_device};

/// What the demo added: the event's name and the scanner credential, shown
/// once (only its hash is stored).
#[derive(Debug, Clone)]
pub struct DemoCheckin {
    pub event_name: String,
    pub gate: String,
    pub credential: String,
}

/// Adds a "Main entrance" list admitting every admission product and a
/// scanner at gate "Main" to the first event, unless it has lists already.
///
/// # Errors
/// When the database refuses the inserts; nothing is written then.
pub async fn seed(db: &DatabaseConnection) -> anyhow::Result<Option<DemoCheckin>> {
    let txn = db.begin().await?;
    let Some(event) = event::Entity::find()
        .order_by_asc(event::Column::Id)
        .one(&txn)
        .await?
    else {
        return Ok(None);
    };
    let lists = checkin_list::Entity::find()
        .filter(checkin_list::Column::EventId.eq(event.id))
        .count(&txn)
        .await?;
    if lists > 0 {
        return Ok(None);
    }
    let now = Utc::now();
    checkin_list::ActiveModel {
        event_id: Set(event.id),
        sub_event_id: Set(None),
        name: Set("Main entrance".to_owned()),
        all_products: Set(true),
        include_pending: Set(false),
        allow_multiple_entries: Set(false),
        allow_entry_after_exit: Set(true),
        questions: Set("[]".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let credential = format!(
        "vgs_{}",
        random_token().map_err(|e| anyhow::anyhow!("{e:?}"))?
    );
    scanner_device::ActiveModel {
        event_id: Set(event.id),
        name: Set("Demo scanner".to_owned()),
        gate: Set("Main".to_owned()),
        secret_hash: Set(sha256_hex(&credential)),
        active: Set(true),
        created_at: Set(now),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Some(DemoCheckin {
        event_name: event.name,
        gate: "Main".to_owned(),
        credential,
    }))
}
