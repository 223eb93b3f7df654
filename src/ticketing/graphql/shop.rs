//! The shop: anyone may look at a live event, fill a cart and check out; a
//! buyer without an account reaches their order with its code and secret.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use super::types::{CartPosition, Event, Order, Organizer};
use crate::auth::guards::principal;
use crate::entities::organizer;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::{carts, orders, organizers};

/// A cart: its id is the secret that reaches it.
pub struct Cart {
    pub id: String,
    pub positions: Vec<crate::entities::cart_position::Model>,
}

#[Object]
impl Cart {
    /// Present it to add more and to check out.
    async fn id(&self) -> &str {
        &self.id
    }
    async fn positions(&self) -> Vec<CartPosition> {
        self.positions.iter().cloned().map(CartPosition).collect()
    }
    /// When the first hold expires (null for an empty cart).
    async fn expires(&self) -> Option<DateTime> {
        self.positions
            .iter()
            .map(|p| p.expires)
            .min()
            .map(Into::into)
    }
}

#[derive(InputObject)]
pub struct AddToCartInput {
    /// The cart to add to; a new cart when not given.
    pub cart_id: Option<String>,
    pub product_id: ID,
    pub variation_id: Option<ID>,
    /// Required for an event series.
    pub sub_event_id: Option<ID>,
    #[graphql(default = 1)]
    pub quantity: i32,
    /// A voucher's code: its price applies, and it may unlock the product.
    pub voucher_code: Option<String>,
}

#[derive(SimpleObject)]
pub struct AddToCartPayload {
    pub cart: Cart,
}

#[derive(InputObject)]
pub struct CheckoutInput {
    pub cart_id: String,
    pub email: String,
    /// Makes retries safe: a checkout of the same cart with the same key
    /// returns the order the first one placed, never a second one.
    pub idempotency_key: Option<String>,
}

#[derive(SimpleObject)]
pub struct CheckoutPayload {
    pub order: Order,
    /// Reaches the order without an account (`order(eventId, code, secret)`).
    pub secret: String,
}

#[derive(Default)]
pub struct ShopQuery;

#[Object]
impl ShopQuery {
    /// Public: an organizer by its slug.
    async fn organizer(&self, ctx: &Context<'_>, slug: String) -> Result<Organizer> {
        let row = organizer::Entity::find()
            .filter(organizer::Column::Slug.eq(slug))
            .one(&services(ctx)?.db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::not_found("organizer"))?;
        Ok(Organizer(row))
    }

    /// Public: a live event by its organizer's slug and its own (teams with
    /// `CHANGE_EVENTS` also reach it before it is live).
    async fn event(
        &self,
        ctx: &Context<'_>,
        organizer_slug: String,
        slug: String,
    ) -> Result<Event> {
        let event =
            organizers::shop_event(&services(ctx)?.db, principal(ctx), &organizer_slug, &slug)
                .await?;
        Ok(Event(event))
    }

    /// Public: a cart by its id.
    async fn cart(&self, ctx: &Context<'_>, id: String) -> Result<Cart> {
        let positions = carts::positions(&services(ctx)?.db, &id).await?;
        Ok(Cart { id, positions })
    }

    /// Public: an order by its event, code and secret.
    async fn order(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        code: String,
        secret: String,
    ) -> Result<Order> {
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let order = orders::by_code(&services(ctx)?.db, event_id, &code, &secret).await?;
        Ok(Order(order))
    }
}

#[derive(Default)]
pub struct ShopMutation;

#[Object]
impl ShopMutation {
    /// Public: adds products to a cart, holding their quota for the event's
    /// cart hold time; `SOLD_OUT` when not enough is left.
    async fn add_to_cart(
        &self,
        ctx: &Context<'_>,
        input: AddToCartInput,
    ) -> Result<AddToCartPayload> {
        let services = services(ctx)?;
        let product_id = ids::decode(&input.product_id, Kind::PRODUCT, "productId")?;
        let variation_id = input
            .variation_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::PRODUCT_VARIATION, "variationId"))
            .transpose()?;
        let sub_event_id = input
            .sub_event_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::SUB_EVENT, "subEventId"))
            .transpose()?;
        let (cart_id, _) = carts::add(
            &services.db,
            principal(ctx),
            services.now(),
            carts::CartAdd {
                cart_id: input.cart_id,
                product_id,
                variation_id,
                sub_event_id,
                quantity: input.quantity,
                voucher_code: input.voucher_code,
            },
        )
        .await?;
        let positions = carts::positions(&services.db, &cart_id).await?;
        Ok(AddToCartPayload {
            cart: Cart {
                id: cart_id,
                positions,
            },
        })
    }

    /// Public: turns a cart into an order, all positions or none. A signed-in
    /// buyer's order is theirs.
    async fn checkout(&self, ctx: &Context<'_>, input: CheckoutInput) -> Result<CheckoutPayload> {
        let services = services(ctx)?;
        let (order, _) = orders::checkout(
            &services.db,
            principal(ctx),
            services.now(),
            &input.cart_id,
            &input.email,
            input.idempotency_key.as_deref(),
        )
        .await?;
        let secret = order.secret.clone();
        Ok(CheckoutPayload {
            order: Order(order),
            secret,
        })
    }
}
