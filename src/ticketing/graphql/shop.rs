//! The shop: anyone may look at a live event, fill a cart and check out; a
//! buyer without an account reaches their order with its code and secret.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt as _};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};

use super::types::{CartPosition, Event, Order, Organizer, ProductAvailability};
use crate::auth::guards::principal;
use crate::bus::{DomainEvent, Topic};
use crate::entities::organizer;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::realtime::follow::follow;
use crate::services::services;
use crate::ticketing::{carts, live, orders, organizers, rush};

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
    /// A position of this cart to add the product to as an add-on (its
    /// product needs an add-on rule for the product's category).
    pub addon_to: Option<ID>,
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
        let addon_to = input
            .addon_to
            .as_ref()
            .map(|id| ids::decode(id, Kind::CART_POSITION, "addonTo"))
            .transpose()?;
        let (cart_id, positions) = rush::add_to_cart(
            services,
            principal(ctx),
            carts::CartAdd {
                cart_id: input.cart_id,
                product_id,
                variation_id,
                sub_event_id,
                quantity: input.quantity,
                voucher_code: input.voucher_code,
                addon_to,
            },
        )
        .await?;
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
        let (order, _) = rush::checkout(
            services,
            principal(ctx),
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

/// A change of an event's availability: each quota's state and what is left.
pub struct AvailabilityChange {
    event: live::AvailabilityChanged,
    cursor: String,
}

#[Object]
impl AvailabilityChange {
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.event.event_id)
    }
    async fn quotas(&self) -> Vec<QuotaAvailability> {
        self.event
            .quotas
            .iter()
            .map(|q| QuotaAvailability {
                counters: q.clone(),
                event_id: self.event.event_id,
            })
            .collect()
    }
    /// Pass as `after` to resume from this change.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
}

/// A quota as storefronts see it: its state and what is left, not who holds it.
pub struct QuotaAvailability {
    counters: live::QuotaCounters,
    event_id: i32,
}

#[Object]
impl QuotaAvailability {
    async fn quota_id(&self) -> ID {
        ids::encode(Kind::QUOTA, self.counters.id)
    }
    async fn sub_event_id(&self) -> Option<ID> {
        self.counters
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    async fn availability(&self) -> ProductAvailability {
        let quota = self.counters.quota(self.event_id);
        ProductAvailability::of(quota.availability(), quota.remaining())
    }
    /// The products it counts.
    async fn product_ids(&self) -> Vec<ID> {
        self.counters
            .product_ids
            .iter()
            .map(|id| ids::encode(Kind::PRODUCT, *id))
            .collect()
    }
    /// The variations of those products it counts; empty: all of them. A
    /// product none of whose variations is listed counts with all of them.
    async fn variation_ids(&self) -> Vec<ID> {
        self.counters
            .variation_ids
            .iter()
            .map(|id| ids::encode(Kind::PRODUCT_VARIATION, *id))
            .collect()
    }
}

#[derive(Default)]
pub struct ShopSubscription;

#[Subscription]
impl ShopSubscription {
    /// Public for a live event (teams with `CHANGE_EVENTS` before): its
    /// quotas' states and remaining counts, live, after every change that
    /// takes or releases units (carts, checkouts, payments, cancellations,
    /// expiries). With `after` (the last `cursor` received), the changes
    /// missed since come first.
    async fn availability_changed(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<AvailabilityChange>> + use<>> {
        let services = services(ctx)?;
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        live::watchable_event(&services.db, principal(ctx), event_id).await?;
        let steps = follow(
            services.bus.as_ref(),
            Topic::Availability(event_id),
            after.as_deref(),
        )
        .await?;
        Ok(steps.filter_map(|step| {
            let item = match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    DomainEvent::AvailabilityChanged(changed) => Some(Ok(AvailabilityChange {
                        event: changed.clone(),
                        cursor: step.cursor,
                    })),
                    _ => None,
                },
            };
            async move { item }
        }))
    }
}
