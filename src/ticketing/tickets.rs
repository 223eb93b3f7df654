//! What an organizer does to one ticket (an admission position) after the
//! sale: block it at the doors, reissue its secret, show its QR code.
//!
//! - Blocking (pretix `OrderPosition.blocked`): a blocked ticket is refused at
//!   every door with `BLOCKED` until unblocked. The block is a row of
//!   `ticket_blocks`, kept with `blocked = false` when lifted.
//! - Regenerating the secret (pretix `RevokedTicketSecret`): the ticket gets a
//!   new random secret and the old one is kept in `revoked_ticket_secrets`, so
//!   a door scanning it answers `REVOKED` (not `INVALID`): a copied or leaked
//!   code is told apart from a made-up one.
//!
//! Both need team permission `CHANGE_ORDERS`, are audit-logged, and touch the
//! order's `updated_at` in the same transaction, which is what puts the
//! ticket into the next offline delta of every check-in list.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use serde_json::json;

use super::audit::Change;
use super::orders::order_for_change;
use crate::auth::Principal;
use crate::auth::tokens::random_token;
use crate::entities::{order, order_position, revoked_ticket_secret, ticket_block};
use crate::error::AppError;

/// The image formats of a ticket's QR code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    Svg,
    Png,
}

/// The QR code of a ticket's secret: an SVG document, or a PNG image as a
/// `data:image/png;base64,…` URL (usable as an `<img src>` as it is).
///
/// # Errors
/// `INTERNAL` when the code cannot be rendered (a secret never is too long).
pub fn qr_code(secret: &str, format: QrFormat) -> Result<String, AppError> {
    use base64::Engine as _;
    match format {
        QrFormat::Svg => crate::qr::svg(secret),
        QrFormat::Png => Ok(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(crate::qr::png(secret)?)
        )),
    }
}

/// Blocks or unblocks a ticket at the doors (team permission `CHANGE_ORDERS`).
/// Setting the state it already has changes nothing but the audit log.
///
/// # Errors
/// `NOT_FOUND` for an unknown position (staff; others get `FORBIDDEN`); as
/// [`super::access::on_event`].
pub async fn set_blocked(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    position_id: i32,
    blocked: bool,
) -> Result<order_position::Model, AppError> {
    let position = order_position::Entity::find_by_id(position_id)
        .one(db)
        .await?;
    let (change, order, event) = order_for_change(
        db,
        principal,
        now,
        position.as_ref().map_or(0, |p| p.order_id),
    )
    .await?;
    let position = position.ok_or(AppError::not_found("ticket"))?;
    let txn = change.txn();
    ticket_block::Entity::insert(ticket_block::ActiveModel {
        position_id: Set(position.id),
        event_id: Set(event.id),
        blocked: Set(blocked),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(ticket_block::Column::PositionId)
            .update_columns([
                ticket_block::Column::Blocked,
                ticket_block::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    touch(txn, &order, now).await?;
    let action = if blocked {
        "voltgate.order.position.blocked"
    } else {
        "voltgate.order.position.unblocked"
    };
    change
        .commit(Change::on_event(
            &event,
            action,
            "order",
            order.id,
            json!({ "code": order.code, "position": position.positionid }),
        ))
        .await?;
    Ok(position)
}

/// Gives a ticket a new secret and revokes the old one (team permission
/// `CHANGE_ORDERS`). The olympic ticket key is derived from the purchase,
/// not the secret, and stays.
///
/// # Errors
/// As [`set_blocked`].
pub async fn regenerate_secret(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    position_id: i32,
) -> Result<order_position::Model, AppError> {
    let position = order_position::Entity::find_by_id(position_id)
        .one(db)
        .await?;
    let (change, order, event) = order_for_change(
        db,
        principal,
        now,
        position.as_ref().map_or(0, |p| p.order_id),
    )
    .await?;
    let position = position.ok_or(AppError::not_found("ticket"))?;
    let txn = change.txn();
    revoked_ticket_secret::ActiveModel {
        event_id: Set(event.id),
        position_id: Set(position.id),
        secret: Set(position.secret.clone()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let mut row: order_position::ActiveModel = position.clone().into();
    row.secret = Set(random_token()?);
    let position = row.update(txn).await?;
    touch(txn, &order, now).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.secret.changed",
            "order",
            order.id,
            json!({ "code": order.code, "position": position.positionid }),
        ))
        .await?;
    Ok(position)
}

/// Marks the order changed, for offline deltas.
async fn touch(
    db: &impl ConnectionTrait,
    order: &order::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    order::Entity::update_many()
        .col_expr(order::Column::UpdatedAt, Expr::value(now))
        .filter(order::Column::Id.eq(order.id))
        .exec(db)
        .await?;
    Ok(())
}

/// Which of `position_ids` are blocked now.
///
/// # Errors
/// On database errors.
pub async fn blocked_among(
    db: &impl ConnectionTrait,
    position_ids: &[i32],
) -> Result<HashSet<i32>, AppError> {
    if position_ids.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<i32> = ticket_block::Entity::find()
        .select_only()
        .column(ticket_block::Column::PositionId)
        .filter(ticket_block::Column::PositionId.is_in(position_ids.to_vec()))
        .filter(ticket_block::Column::Blocked.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The blocked tickets of an event.
///
/// # Errors
/// On database errors.
pub async fn blocked_of_event(
    db: &impl ConnectionTrait,
    event_id: i32,
) -> Result<HashSet<i32>, AppError> {
    let ids: Vec<i32> = ticket_block::Entity::find()
        .select_only()
        .column(ticket_block::Column::PositionId)
        .filter(ticket_block::Column::EventId.eq(event_id))
        .filter(ticket_block::Column::Blocked.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// The ticket whose revoked secret `secret` is, if it is one.
///
/// # Errors
/// On database errors.
pub async fn revoked_owner(
    db: &impl ConnectionTrait,
    secret: &str,
) -> Result<Option<i32>, AppError> {
    Ok(revoked_ticket_secret::Entity::find()
        .filter(revoked_ticket_secret::Column::Secret.eq(secret))
        .one(db)
        .await?
        .map(|r| r.position_id))
}

/// The secrets of an event revoked after `since` (all of them without).
///
/// # Errors
/// On database errors.
pub async fn revoked_since(
    db: &impl ConnectionTrait,
    event_id: i32,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<String>, AppError> {
    let mut query = revoked_ticket_secret::Entity::find()
        .select_only()
        .column(revoked_ticket_secret::Column::Secret)
        .filter(revoked_ticket_secret::Column::EventId.eq(event_id));
    if let Some(at) = since {
        query = query.filter(revoked_ticket_secret::Column::CreatedAt.gt(at));
    }
    Ok(query.into_tuple().all(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_codes_are_data_urls_and_svg_codes_documents() {
        let png = qr_code("Zm9vYmFyYmF6cXV4LWZvb2Jhcl9iYXpxdXg", QrFormat::Png).expect("renders");
        let encoded = png
            .strip_prefix("data:image/png;base64,")
            .expect("a PNG data URL");
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let svg = qr_code("Zm9vYmFyYmF6cXV4LWZvb2Jhcl9iYXpxdXg", QrFormat::Svg).expect("renders");
        assert!(svg.contains("<svg"));
    }
}
