//! The organizer back office: organizers (staff), events and dates, teams,
//! members and API tokens, the catalog, and order changes. Every mutation
//! checks the team permission for the organizer or event at hand in its
//! service (`ticketing::access`).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};

use super::types::{
    Event, Order, Organizer, Product, ProductCategory, ProductKind, ProductVariation, Quota,
    SubEvent, Team, TeamApiToken, TeamPermission,
};
use crate::auth::guards::principal;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::money::parse_minor;
use crate::ticketing::{catalog, orders, organizers};

#[derive(InputObject)]
pub struct CreateOrganizerInput {
    pub name: String,
    /// Unique across organizers.
    pub slug: String,
    /// An account to put in the organizer's "Administrators" team.
    pub admin_user_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct OrganizerPayload {
    pub organizer: Organizer,
}

#[derive(InputObject)]
pub struct CreateEventInput {
    pub organizer_id: ID,
    pub name: String,
    /// Unique within the organizer.
    pub slug: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    pub date_from: DateTime,
    pub date_to: Option<DateTime>,
    pub presale_start: Option<DateTime>,
    pub presale_end: Option<DateTime>,
    pub location: Option<String>,
    /// IANA time zone name; `UTC` when not given.
    pub time_zone: Option<String>,
    /// Opens the shop (not live when not given).
    pub live: Option<bool>,
    pub testmode: Option<bool>,
    pub sales_channels: Option<Vec<String>>,
    /// How long carts hold quota (30 minutes when not given).
    pub cart_hold_minutes: Option<i32>,
    /// Until when buyers may change their answers; the event's start when not given.
    pub last_order_modification_date: Option<DateTime>,
}

#[derive(InputObject)]
pub struct UpdateEventInput {
    pub event_id: ID,
    pub name: Option<String>,
    pub slug: Option<String>,
    pub date_from: Option<DateTime>,
    pub date_to: Option<DateTime>,
    pub presale_start: Option<DateTime>,
    pub presale_end: Option<DateTime>,
    pub location: Option<String>,
    pub time_zone: Option<String>,
    pub live: Option<bool>,
    pub testmode: Option<bool>,
    pub sales_channels: Option<Vec<String>>,
    pub cart_hold_minutes: Option<i32>,
    /// Until when buyers may change their answers.
    pub last_order_modification_date: Option<DateTime>,
}

#[derive(SimpleObject)]
pub struct EventPayload {
    pub event: Event,
}

#[derive(InputObject)]
pub struct CreateSubEventInput {
    pub event_id: ID,
    pub name: String,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default = true)]
    pub is_public: bool,
    pub date_from: DateTime,
    pub date_to: Option<DateTime>,
    pub presale_start: Option<DateTime>,
    pub presale_end: Option<DateTime>,
    pub location: Option<String>,
}

#[derive(SimpleObject)]
pub struct SubEventPayload {
    pub sub_event: SubEvent,
}

#[derive(InputObject)]
pub struct CreateTeamInput {
    pub organizer_id: ID,
    pub name: String,
    /// Works on all the organizer's events; otherwise on `eventIds`.
    #[graphql(default)]
    pub all_events: bool,
    #[graphql(default)]
    pub event_ids: Vec<ID>,
    pub permissions: Vec<TeamPermission>,
}

#[derive(SimpleObject)]
pub struct TeamPayload {
    pub team: Team,
}

#[derive(InputObject)]
pub struct TeamMemberInput {
    pub team_id: ID,
    pub user_id: ID,
}

#[derive(InputObject)]
pub struct CreateTeamApiTokenInput {
    pub team_id: ID,
    pub name: String,
}

#[derive(SimpleObject)]
pub struct CreateTeamApiTokenPayload {
    pub token: TeamApiToken,
    /// Shown once: send it as `Authorization: Token <secret>`.
    pub secret: String,
}

#[derive(InputObject)]
pub struct RevokeTeamApiTokenInput {
    pub token_id: ID,
}

#[derive(SimpleObject)]
pub struct TeamApiTokenPayload {
    pub token: TeamApiToken,
}

#[derive(InputObject)]
pub struct CreateProductCategoryInput {
    pub event_id: ID,
    pub name: String,
    #[graphql(default)]
    pub position: i32,
    #[graphql(default)]
    pub is_addon: bool,
}

#[derive(SimpleObject)]
pub struct ProductCategoryPayload {
    pub category: ProductCategory,
}

#[derive(InputObject)]
pub struct CreateProductInput {
    pub event_id: ID,
    pub category_id: Option<ID>,
    pub name: String,
    #[graphql(default)]
    pub description: String,
    pub kind: ProductKind,
    /// Lowercase letters, digits and dashes; unique within the event.
    pub slug: Option<String>,
    /// Decimal string, tax included, e.g. `"49.00"`.
    pub price: String,
    /// Percent as a decimal string, e.g. `"19.00"`.
    #[graphql(default_with = "String::from(\"0\")")]
    pub tax_rate: String,
    #[graphql(default = true)]
    pub active: bool,
    pub available_from: Option<DateTime>,
    pub available_until: Option<DateTime>,
    pub min_per_order: Option<i32>,
    pub max_per_order: Option<i32>,
    pub limit_per_user: Option<i32>,
    #[graphql(default)]
    pub require_voucher: bool,
    #[graphql(default)]
    pub hide_without_voucher: bool,
    #[graphql(default)]
    pub require_approval: bool,
    #[graphql(default)]
    pub personalized: bool,
    #[graphql(default)]
    pub checkin_attention: bool,
    #[graphql(default)]
    pub position: i32,
    /// Creates a quota of this size for the product alone.
    pub total_quantity: Option<i32>,
}

#[derive(SimpleObject)]
pub struct ProductPayload {
    pub product: Product,
}

#[derive(InputObject)]
pub struct CreateProductVariationInput {
    pub product_id: ID,
    pub value: String,
    /// Its own price, when it differs from the product's.
    pub price: Option<String>,
}

#[derive(SimpleObject)]
pub struct ProductVariationPayload {
    pub variation: ProductVariation,
}

#[derive(InputObject)]
pub struct CreateQuotaInput {
    pub event_id: ID,
    pub name: String,
    /// Null: unlimited.
    pub size: Option<i32>,
    pub sub_event_id: Option<ID>,
    pub product_ids: Vec<ID>,
    /// Variations of those products it counts: a product none of whose
    /// variations is named here counts with all of them.
    #[graphql(default)]
    pub variation_ids: Vec<ID>,
}

#[derive(SimpleObject)]
pub struct QuotaPayload {
    pub quota: Quota,
}

#[derive(InputObject)]
pub struct OrderChangeInput {
    pub order_id: ID,
}

#[derive(SimpleObject)]
pub struct OrderPayload {
    pub order: Order,
}

pub fn id_list(list: &[ID], kind: Kind, field: &'static str) -> Result<Vec<i32>> {
    Ok(list
        .iter()
        .map(|id| ids::decode(id, kind, field))
        .collect::<Result<Vec<_>, _>>()?)
}

#[derive(Default)]
pub struct BackOfficeMutation;

#[Object]
impl BackOfficeMutation {
    /// Staff: creates an organizer and its "Administrators" team (every
    /// permission, all events), with `adminUserId` as its member.
    async fn create_organizer(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizerInput,
    ) -> Result<OrganizerPayload> {
        let principal = principal(ctx);
        principal.staff()?;
        let services = services(ctx)?;
        let admin = input
            .admin_user_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::USER, "adminUserId"))
            .transpose()?;
        let organizer = organizers::create_organizer(
            &services.db,
            principal,
            services.now(),
            &input.name,
            &input.slug,
            admin,
        )
        .await?;
        Ok(OrganizerPayload {
            organizer: Organizer(organizer),
        })
    }

    /// Team permission `CREATE_EVENTS`: creates an event (not live until made so).
    async fn create_event(
        &self,
        ctx: &Context<'_>,
        input: CreateEventInput,
    ) -> Result<EventPayload> {
        let services = services(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, Kind::ORGANIZER, "organizerId")?;
        let event = organizers::create_event(
            &services.db,
            principal(ctx),
            services.now(),
            organizer_id,
            organizers::EventInput {
                name: Some(input.name),
                slug: Some(input.slug),
                currency: Some(input.currency),
                date_from: Some(input.date_from.0),
                date_to: input.date_to.map(|d| d.0),
                presale_start: input.presale_start.map(|d| d.0),
                presale_end: input.presale_end.map(|d| d.0),
                location: input.location,
                time_zone: input.time_zone,
                live: input.live,
                testmode: input.testmode,
                has_subevents: None,
                sales_channels: input.sales_channels,
                cart_hold_minutes: input.cart_hold_minutes,
                last_order_modification_date: input.last_order_modification_date.map(|d| d.0),
            },
        )
        .await?;
        Ok(EventPayload {
            event: Event(event),
        })
    }

    /// Team permission `CHANGE_EVENTS`: changes an event's settings (making it
    /// live opens its shop).
    async fn update_event(
        &self,
        ctx: &Context<'_>,
        input: UpdateEventInput,
    ) -> Result<EventPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let event = organizers::update_event(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            organizers::EventInput {
                name: input.name,
                slug: input.slug,
                currency: None,
                date_from: input.date_from.map(|d| d.0),
                date_to: input.date_to.map(|d| d.0),
                presale_start: input.presale_start.map(|d| d.0),
                presale_end: input.presale_end.map(|d| d.0),
                location: input.location,
                time_zone: input.time_zone,
                live: input.live,
                testmode: input.testmode,
                has_subevents: None,
                sales_channels: input.sales_channels,
                cart_hold_minutes: input.cart_hold_minutes,
                last_order_modification_date: input.last_order_modification_date.map(|d| d.0),
            },
        )
        .await?;
        Ok(EventPayload {
            event: Event(event),
        })
    }

    /// Team permission `CHANGE_EVENTS`: adds a date to an event series.
    async fn create_sub_event(
        &self,
        ctx: &Context<'_>,
        input: CreateSubEventInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let date = organizers::create_sub_event(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            organizers::SubEventInput {
                name: input.name,
                active: input.active,
                is_public: input.is_public,
                date_from: input.date_from.0,
                date_to: input.date_to.map(|d| d.0),
                presale_start: input.presale_start.map(|d| d.0),
                presale_end: input.presale_end.map(|d| d.0),
                location: input.location,
            },
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }

    /// Team permission `CHANGE_TEAMS`: creates a team of the organizer.
    async fn create_team(&self, ctx: &Context<'_>, input: CreateTeamInput) -> Result<TeamPayload> {
        let services = services(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, Kind::ORGANIZER, "organizerId")?;
        let event_ids = id_list(&input.event_ids, Kind::EVENT, "eventIds")?;
        let team = organizers::create_team(
            &services.db,
            principal(ctx),
            services.now(),
            organizer_id,
            organizers::TeamInput {
                name: input.name,
                all_events: input.all_events,
                event_ids,
                permissions: input.permissions.into_iter().map(Into::into).collect(),
            },
        )
        .await?;
        Ok(TeamPayload { team: Team(team) })
    }

    /// Team permission `CHANGE_TEAMS`: adds an account to a team.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        input: TeamMemberInput,
    ) -> Result<TeamPayload> {
        let services = services(ctx)?;
        let team_id = ids::decode(&input.team_id, Kind::TEAM, "teamId")?;
        let user_id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let team = organizers::add_team_member(
            &services.db,
            principal(ctx),
            services.now(),
            team_id,
            user_id,
        )
        .await?;
        Ok(TeamPayload { team: Team(team) })
    }

    /// Team permission `CHANGE_TEAMS`: removes an account from a team.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        input: TeamMemberInput,
    ) -> Result<TeamPayload> {
        let services = services(ctx)?;
        let team_id = ids::decode(&input.team_id, Kind::TEAM, "teamId")?;
        let user_id = ids::decode(&input.user_id, Kind::USER, "userId")?;
        let team = organizers::remove_team_member(
            &services.db,
            principal(ctx),
            services.now(),
            team_id,
            user_id,
        )
        .await?;
        Ok(TeamPayload { team: Team(team) })
    }

    /// Team permission `CHANGE_TEAMS`: issues an API token acting with the
    /// team's permissions; its secret is shown once.
    async fn create_team_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateTeamApiTokenInput,
    ) -> Result<CreateTeamApiTokenPayload> {
        let services = services(ctx)?;
        let team_id = ids::decode(&input.team_id, Kind::TEAM, "teamId")?;
        let (token, secret) = organizers::create_team_token(
            &services.db,
            principal(ctx),
            services.now(),
            team_id,
            &input.name,
        )
        .await?;
        tracing::info!(
            team = team_id,
            token = token.id,
            security = true,
            "team API token issued"
        );
        Ok(CreateTeamApiTokenPayload {
            token: TeamApiToken(token),
            secret,
        })
    }

    /// Team permission `CHANGE_TEAMS`: revokes a team API token at once.
    async fn revoke_team_api_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeTeamApiTokenInput,
    ) -> Result<TeamApiTokenPayload> {
        let services = services(ctx)?;
        let token_id = ids::decode(&input.token_id, Kind::TEAM_API_TOKEN, "tokenId")?;
        let token =
            organizers::revoke_team_token(&services.db, principal(ctx), services.now(), token_id)
                .await?;
        tracing::info!(token = token.id, security = true, "team API token revoked");
        Ok(TeamApiTokenPayload {
            token: TeamApiToken(token),
        })
    }

    /// Team permission `CHANGE_ITEMS`: creates a product category.
    async fn create_product_category(
        &self,
        ctx: &Context<'_>,
        input: CreateProductCategoryInput,
    ) -> Result<ProductCategoryPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let category = catalog::create_category(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            &input.name,
            input.position,
            input.is_addon,
        )
        .await?;
        Ok(ProductCategoryPayload {
            category: ProductCategory(category),
        })
    }

    /// Team permission `CHANGE_ITEMS`: creates a product (with a quota of its
    /// total quantity when given).
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: CreateProductInput,
    ) -> Result<ProductPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let category_id = input
            .category_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::PRODUCT_CATEGORY, "categoryId"))
            .transpose()?;
        let price_minor = parse_minor("price", &input.price)?;
        let tax_rate_bp = parse_tax_rate(&input.tax_rate)?;
        let product = catalog::create_product(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            catalog::ProductInput {
                name: input.name,
                slug: input.slug,
                description: input.description,
                kind: input.kind.into(),
                category_id,
                price_minor,
                tax_rate_bp,
                active: input.active,
                available_from: input.available_from.map(|d| d.0),
                available_until: input.available_until.map(|d| d.0),
                min_per_order: input.min_per_order,
                max_per_order: input.max_per_order,
                limit_per_user: input.limit_per_user,
                require_voucher: input.require_voucher,
                hide_without_voucher: input.hide_without_voucher,
                require_approval: input.require_approval,
                personalized: input.personalized,
                checkin_attention: input.checkin_attention,
                position: input.position,
                total_quantity: input.total_quantity,
            },
        )
        .await?;
        let currency = event_currency(ctx, product.event_id).await?;
        Ok(ProductPayload {
            product: Product(product, currency),
        })
    }

    /// Team permission `CHANGE_ITEMS`: adds a variation to a product.
    async fn create_product_variation(
        &self,
        ctx: &Context<'_>,
        input: CreateProductVariationInput,
    ) -> Result<ProductVariationPayload> {
        let services = services(ctx)?;
        let product_id = ids::decode(&input.product_id, Kind::PRODUCT, "productId")?;
        let price = input
            .price
            .as_deref()
            .map(|p| parse_minor("price", p))
            .transpose()?;
        let variation = catalog::create_variation(
            &services.db,
            principal(ctx),
            services.now(),
            product_id,
            &input.value,
            price,
        )
        .await?;
        use sea_orm::EntityTrait as _;
        let product = crate::entities::product::Entity::find_by_id(variation.product_id)
            .one(&services.db)
            .await
            .map_err(crate::error::AppError::from)?;
        let currency = match product {
            Some(p) => event_currency(ctx, p.event_id).await?,
            None => String::new(),
        };
        Ok(ProductVariationPayload {
            variation: ProductVariation(variation, currency),
        })
    }

    /// Team permission `CHANGE_ITEMS`: creates a quota over products of the
    /// event, or over chosen variations of them (`variationIds`).
    async fn create_quota(
        &self,
        ctx: &Context<'_>,
        input: CreateQuotaInput,
    ) -> Result<QuotaPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let product_ids = id_list(&input.product_ids, Kind::PRODUCT, "productIds")?;
        let sub_event_id = input
            .sub_event_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::SUB_EVENT, "subEventId"))
            .transpose()?;
        let variation_ids = id_list(
            &input.variation_ids,
            Kind::PRODUCT_VARIATION,
            "variationIds",
        )?;
        let quota = catalog::create_quota(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            catalog::QuotaInput {
                name: input.name,
                size: input.size,
                sub_event_id,
                product_ids,
                variation_ids,
            },
        )
        .await?;
        Ok(QuotaPayload {
            quota: Quota(quota),
        })
    }

    /// Team permission `CHANGE_ORDERS`: marks a pending order paid.
    async fn mark_order_paid(
        &self,
        ctx: &Context<'_>,
        input: OrderChangeInput,
    ) -> Result<OrderPayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&input.order_id, Kind::ORDER, "orderId")?;
        let order =
            orders::mark_paid(&services.db, principal(ctx), services.now(), order_id).await?;
        crate::ticketing::live::announce(services, [order.event_id]).await;
        Ok(OrderPayload {
            order: Order(order),
        })
    }

    /// Team permission `CHANGE_ORDERS`: cancels an order and releases its quota.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        input: OrderChangeInput,
    ) -> Result<OrderPayload> {
        let services = services(ctx)?;
        let order_id = ids::decode(&input.order_id, Kind::ORDER, "orderId")?;
        let order = orders::cancel(&services.db, principal(ctx), services.now(), order_id).await?;
        crate::ticketing::live::announce(services, [order.event_id]).await;
        Ok(OrderPayload {
            order: Order(order),
        })
    }
}

/// A tax rate as a decimal string, in hundredths of a percent.
///
/// # Errors
/// `BAD_USER_INPUT` on `taxRate`.
pub fn parse_tax_rate(rate: &str) -> Result<i32, crate::error::AppError> {
    i32::try_from(parse_minor("taxRate", rate)?)
        .map_err(|_| crate::error::AppError::bad_input("taxRate", "between 0 and 100 percent"))
}

/// The currency of an event's money.
pub async fn event_currency(ctx: &Context<'_>, event_id: i32) -> Result<String> {
    use sea_orm::EntityTrait as _;
    Ok(crate::entities::event::Entity::find_by_id(event_id)
        .one(&services(ctx)?.db)
        .await
        .map_err(crate::error::AppError::from)?
        .map(|e| e.currency)
        .unwrap_or_default())
}
