//! One ticket after the sale (team permission `CHANGE_ORDERS`): blocking it
//! at the doors and reissuing its secret, which revokes the old one.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::types::OrderPosition;
use crate::auth::guards::principal;
use crate::entities::{event, order, order_position};
use crate::graphql::ids::{self, Kind};
use crate::services::services;
use crate::ticketing::tickets;

#[derive(InputObject)]
pub struct TicketInput {
    /// The ticket (an order position).
    pub position_id: ID,
}

#[derive(SimpleObject)]
pub struct TicketPayload {
    pub ticket: OrderPosition,
}

async fn payload(ctx: &Context<'_>, row: order_position::Model) -> Result<TicketPayload> {
    use sea_orm::EntityTrait as _;
    let db = &services(ctx)?.db;
    let order = order::Entity::find_by_id(row.order_id)
        .one(db)
        .await?
        .ok_or(crate::error::AppError::not_found("order"))?;
    let event = event::Entity::find_by_id(order.event_id)
        .one(db)
        .await?
        .ok_or(crate::error::AppError::not_found("event"))?;
    Ok(TicketPayload {
        ticket: OrderPosition {
            row,
            currency: event.currency,
            order_paid: order.status == crate::entities::order::OrderStatus::Paid,
        },
    })
}

#[derive(Default)]
pub struct TicketMutation;

#[Object]
impl TicketMutation {
    /// Blocks a ticket: every door refuses it with `BLOCKED` until it is
    /// unblocked (pretix `OrderPosition.blocked`).
    async fn block_ticket(&self, ctx: &Context<'_>, input: TicketInput) -> Result<TicketPayload> {
        self.set_blocked(ctx, input, true).await
    }

    /// Lifts a ticket's block.
    async fn unblock_ticket(&self, ctx: &Context<'_>, input: TicketInput) -> Result<TicketPayload> {
        self.set_blocked(ctx, input, false).await
    }

    /// Gives a ticket a new secret; the old one is revoked, and scanning it
    /// answers `REVOKED`.
    async fn regenerate_ticket_secret(
        &self,
        ctx: &Context<'_>,
        input: TicketInput,
    ) -> Result<TicketPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.position_id, Kind::ORDER_POSITION, "positionId")?;
        let row =
            tickets::regenerate_secret(&services.db, principal(ctx), services.now(), id).await?;
        payload(ctx, row).await
    }
}

impl TicketMutation {
    async fn set_blocked(
        &self,
        ctx: &Context<'_>,
        input: TicketInput,
        blocked: bool,
    ) -> Result<TicketPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.position_id, Kind::ORDER_POSITION, "positionId")?;
        let row =
            tickets::set_blocked(&services.db, principal(ctx), services.now(), id, blocked).await?;
        payload(ctx, row).await
    }
}
