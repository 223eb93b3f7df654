//! Ticketing's GraphQL types, each wrapping its entity row and exposing its
//! fields on purpose. Team-only fields check the team permission for the
//! event at hand; money is `Money` (a decimal string and the currency).

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use crate::auth::TeamPermission as StoredPermission;
use crate::auth::guards::principal;
use crate::entities::{
    self, cart_position, event, order, order_position, organizer, product, product_category,
    product_variation, quota, sub_event, team, team_api_token, ticketing_log,
};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::loaders::{
    AddOnRulesOfProduct, AddonsOfCartPosition, AddonsOfOrderPosition, AnswersOfCartPosition,
    AnswersOfOrderPosition, PositionsOfOrder, ProductById, QuotasOfProduct,
};
use crate::ticketing::money::format_minor;
use crate::ticketing::{access, catalog, orders, organizers};

/// pretix's team permissions.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "StoredPermission")]
pub enum TeamPermission {
    CreateEvents,
    ChangeTeams,
    ChangeOrganizerSettings,
    ManageCustomers,
    ChangeEvents,
    ChangeItems,
    ViewOrders,
    ChangeOrders,
    ViewVouchers,
    ChangeVouchers,
    CheckIn,
}

/// What a product is.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::product::ProductKind")]
pub enum ProductKind {
    Admission,
    Addon,
    Merchandise,
}

/// An order's state.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::order::OrderStatus")]
pub enum OrderStatus {
    Pending,
    Paid,
    Canceled,
    Expired,
}

/// pretix's availability states, best first.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::quota::Availability")]
pub enum AvailabilityState {
    /// Something is left.
    Ok,
    /// Nothing is left because of cart holds (which may still expire).
    Reserved,
    /// Nothing is left because of pending orders (which may still expire).
    Ordered,
    /// Sold out to paid orders.
    Gone,
}

/// An amount: an exact decimal string (two places) and its currency.
#[derive(SimpleObject, Clone)]
pub struct Money {
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
}

impl Money {
    pub fn new(minor: i64, currency: &str) -> Self {
        Self {
            amount: format_minor(minor),
            currency: currency.to_owned(),
        }
    }
}

/// Availability of a product or quota.
#[derive(SimpleObject, Clone)]
pub struct ProductAvailability {
    pub state: AvailabilityState,
    /// What is left; null when unlimited.
    pub remaining_quantity: Option<i32>,
    /// Whether one more can be bought now.
    pub is_available: bool,
}

impl ProductAvailability {
    pub(crate) fn of(state: entities::quota::Availability, remaining: Option<i32>) -> Self {
        Self {
            state: state.into(),
            remaining_quantity: remaining,
            is_available: state == entities::quota::Availability::Ok,
        }
    }
}

async fn event_row(ctx: &Context<'_>, event_id: i32) -> Result<event::Model> {
    use sea_orm::EntityTrait as _;
    Ok(event::Entity::find_by_id(event_id)
        .one(&services(ctx)?.db)
        .await
        .map_err(crate::error::AppError::from)?
        .ok_or(crate::error::AppError::not_found("event"))?)
}

/// An organizer.
pub struct Organizer(pub organizer::Model);

#[Object]
impl Organizer {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORGANIZER, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// The meta properties defined for the organizer's events, by name.
    async fn meta_properties(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::meta::EventMetaProperty>> {
        let rows = crate::ticketing::meta::properties_of(&services(ctx)?.db, self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(super::meta::EventMetaProperty)
            .collect())
    }
    /// Teams with `CHANGE_ORGANIZER_SETTINGS`: the exchange rates its
    /// invoices use, newest date first.
    async fn exchange_rates(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::invoices::ExchangeRate>> {
        let rows = crate::ticketing::exchange_rates::rates_of(
            &services(ctx)?.db,
            principal(ctx),
            self.0.id,
        )
        .await?;
        Ok(rows
            .into_iter()
            .map(super::invoices::ExchangeRate)
            .collect())
    }
}

/// A ticketed event.
pub struct Event(pub event::Model);

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ids::encode(Kind::EVENT, self.0.id)
    }
    async fn organizer_id(&self) -> ID {
        ids::encode(Kind::ORGANIZER, self.0.organizer_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn date_from(&self) -> DateTime {
        self.0.date_from.into()
    }
    async fn date_to(&self) -> Option<DateTime> {
        self.0.date_to.map(Into::into)
    }
    async fn presale_start(&self) -> Option<DateTime> {
        self.0.presale_start.map(Into::into)
    }
    async fn presale_end(&self) -> Option<DateTime> {
        self.0.presale_end.map(Into::into)
    }
    async fn presale_is_running(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.presale_is_running(services(ctx)?.now()))
    }
    async fn presale_has_ended(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.presale_has_ended(services(ctx)?.now()))
    }
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    /// IANA time zone name.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// The shop is open to the public.
    async fn live(&self) -> bool {
        self.0.live
    }
    async fn testmode(&self) -> bool {
        self.0.testmode
    }
    async fn has_subevents(&self) -> bool {
        self.0.has_subevents
    }
    async fn sales_channels(&self) -> Vec<&str> {
        self.0.sales_channels.split(',').collect()
    }
    /// How long a cart holds its products' quota.
    async fn cart_hold_minutes(&self) -> i32 {
        self.0.cart_hold_minutes
    }
    /// Until when buyers may change their orders' answers (pretix's last
    /// date of modifications); null means until the event starts (for a
    /// series, until the order's first date starts).
    async fn last_order_modification_date(&self) -> Option<DateTime> {
        self.0.last_order_modification_date.map(Into::into)
    }
    /// The fee paying with each provider adds to an order, by provider
    /// (none: no fee).
    async fn payment_provider_fees(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::providers::PaymentProviderFee>> {
        let fees =
            crate::ticketing::providers::fees::of_event(&services(ctx)?.db, self.0.id).await?;
        Ok(fees
            .into_iter()
            .map(super::providers::PaymentProviderFee)
            .collect())
    }
    /// Every meta property of the organizer, by name, with the event's value
    /// or else the property's default.
    async fn meta(&self, ctx: &Context<'_>) -> Result<Vec<super::meta::EventMetaEntry>> {
        let rows = crate::ticketing::meta::resolve(&services(ctx)?.db, &self.0, None).await?;
        Ok(super::meta::entries(rows))
    }
    /// The questions asked of buyers, in order (hidden ones only for teams
    /// with `CHANGE_ITEMS` or `VIEW_ORDERS`).
    async fn questions(&self, ctx: &Context<'_>) -> Result<Vec<super::questions::Question>> {
        super::questions::of_event(ctx, self.0.id).await
    }
    /// The dates of a series, by start.
    async fn sub_events(&self, ctx: &Context<'_>) -> Result<Vec<SubEvent>> {
        let dates = organizers::sub_events_of(&services(ctx)?.db, self.0.id).await?;
        Ok(dates.into_iter().map(SubEvent).collect())
    }
    /// The products on sale (teams with `CHANGE_ITEMS` see all).
    async fn products(&self, ctx: &Context<'_>) -> Result<Vec<Product>> {
        let rows = catalog::products_of(&services(ctx)?.db, principal(ctx), self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| Product(row, self.0.currency.clone()))
            .collect())
    }
    /// Teams with `CHANGE_ITEMS` or `VIEW_ORDERS`: the quotas and their counters.
    async fn quotas(&self, ctx: &Context<'_>) -> Result<Vec<Quota>> {
        let rows = catalog::quotas_of_event(&services(ctx)?.db, principal(ctx), self.0.id).await?;
        Ok(rows.into_iter().map(Quota).collect())
    }
    /// Teams with `VIEW_ORDERS`: the event's orders, oldest first.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Order>> {
        let page = page_request(first, after.as_deref())?;
        let rows = orders::of_event(&services(ctx)?.db, principal(ctx), self.0.id, page).await?;
        Ok(connection(page, rows, |o| o.id, Order))
    }
    /// Teams with `VIEW_VOUCHERS`: the event's vouchers, oldest first; only
    /// those with `tag` when given.
    async fn vouchers(
        &self,
        ctx: &Context<'_>,
        tag: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<super::vouchers::Voucher>> {
        let page = page_request(first, after.as_deref())?;
        let rows = crate::ticketing::vouchers::of_event(
            &services(ctx)?.db,
            principal(ctx),
            self.0.id,
            tag.as_deref(),
            page,
        )
        .await?;
        let currency = self.0.currency.clone();
        Ok(connection(
            page,
            rows,
            |v| v.id,
            |v| super::vouchers::Voucher(v, currency.clone()),
        ))
    }
    /// Teams with `CHANGE_EVENTS`: the audit log of the event, newest first.
    async fn log_entries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50, validator(minimum = 1, maximum = 100))] last: i32,
    ) -> Result<Vec<LogEntry>> {
        use sea_orm::{
            ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
        };
        let db = &services(ctx)?.db;
        access::on_event(
            db,
            principal(ctx),
            StoredPermission::ChangeEvents,
            self.0.id,
        )
        .await?;
        let rows = ticketing_log::Entity::find()
            .filter(ticketing_log::Column::EventId.eq(self.0.id))
            .order_by_desc(ticketing_log::Column::Id)
            .limit(u64::try_from(last).unwrap_or(50))
            .all(db)
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(rows.into_iter().map(LogEntry).collect())
    }
}

/// A date of an event series.
pub struct SubEvent(pub sub_event::Model);

#[Object]
impl SubEvent {
    async fn id(&self) -> ID {
        ids::encode(Kind::SUB_EVENT, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn is_public(&self) -> bool {
        self.0.is_public
    }
    async fn date_from(&self) -> DateTime {
        self.0.date_from.into()
    }
    async fn date_to(&self) -> Option<DateTime> {
        self.0.date_to.map(Into::into)
    }
    async fn presale_start(&self) -> Option<DateTime> {
        self.0.presale_start.map(Into::into)
    }
    async fn presale_end(&self) -> Option<DateTime> {
        self.0.presale_end.map(Into::into)
    }
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    /// Every meta property of the organizer, by name, with the date's value,
    /// else the event's, else the property's default.
    async fn meta(&self, ctx: &Context<'_>) -> Result<Vec<super::meta::EventMetaEntry>> {
        use sea_orm::EntityTrait as _;
        let db = &services(ctx)?.db;
        let event = event::Entity::find_by_id(self.0.event_id)
            .one(db)
            .await
            .map_err(crate::error::AppError::from)?
            .ok_or(crate::error::AppError::not_found("event"))?;
        let rows = crate::ticketing::meta::resolve(db, &event, Some(self.0.id)).await?;
        Ok(super::meta::entries(rows))
    }
    /// What this date changes for products and variations (pretix's
    /// `SubEventItem` and `SubEventItemVariation`), by product.
    async fn product_settings(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::dates::SubEventProductSetting>> {
        super::dates::product_settings(ctx, &self.0).await
    }
    /// The products the shop shows for this date, with their price on it and
    /// whether they can be bought now (teams with `CHANGE_ITEMS` see all).
    async fn products(&self, ctx: &Context<'_>) -> Result<Vec<super::dates::SubEventProduct>> {
        super::dates::products(ctx, &self.0).await
    }
}

/// An organizer's team.
pub struct Team(pub team::Model);

#[Object]
impl Team {
    async fn id(&self) -> ID {
        ids::encode(Kind::TEAM, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Works on all the organizer's events (otherwise on the ones it was given).
    async fn all_events(&self) -> bool {
        self.0.all_events
    }
    async fn permissions(&self) -> Vec<TeamPermission> {
        self.0.permissions().into_iter().map(Into::into).collect()
    }
    /// The events it works on when not on all of them.
    async fn event_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _, QueryOrder as _};
        let links = crate::entities::team_event::Entity::find()
            .filter(crate::entities::team_event::Column::TeamId.eq(self.0.id))
            .order_by_asc(crate::entities::team_event::Column::EventId)
            .all(&services(ctx)?.db)
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(links
            .iter()
            .map(|link| ids::encode(Kind::EVENT, link.event_id))
            .collect())
    }
}

/// A team's API token; the token itself is shown only when it is created.
pub struct TeamApiToken(pub team_api_token::Model);

#[Object]
impl TeamApiToken {
    async fn id(&self) -> ID {
        ids::encode(Kind::TEAM_API_TOKEN, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// A category of products.
pub struct ProductCategory(pub product_category::Model);

#[Object]
impl ProductCategory {
    async fn id(&self) -> ID {
        ids::encode(Kind::PRODUCT_CATEGORY, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    async fn is_addon(&self) -> bool {
        self.0.is_addon
    }
}

/// A product: an admission ticket, an add-on or merchandise (with its event's currency).
pub struct Product(pub product::Model, pub String);

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ids::encode(Kind::PRODUCT, self.0.id)
    }
    async fn category_id(&self) -> Option<ID> {
        self.0
            .category_id
            .map(|id| ids::encode(Kind::PRODUCT_CATEGORY, id))
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Unique within the event when set.
    async fn slug(&self) -> Option<&str> {
        self.0.slug.as_deref()
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn kind(&self) -> ProductKind {
        self.0.kind.into()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Grants admission: each one bought is a ticket.
    async fn admission(&self) -> bool {
        self.0.admission
    }
    /// Price, tax included.
    async fn price(&self) -> Money {
        Money::new(self.0.price_minor, &self.1)
    }
    /// Tax rate in percent, as a decimal string (`"19.00"`).
    async fn tax_rate(&self) -> String {
        format_minor(i64::from(self.0.tax_rate_bp))
    }
    async fn available_from(&self) -> Option<DateTime> {
        self.0.available_from.map(Into::into)
    }
    async fn available_until(&self) -> Option<DateTime> {
        self.0.available_until.map(Into::into)
    }
    async fn min_per_order(&self) -> Option<i32> {
        self.0.min_per_order
    }
    async fn max_per_order(&self) -> Option<i32> {
        self.0.max_per_order
    }
    async fn limit_per_user(&self) -> Option<i32> {
        self.0.limit_per_user
    }
    async fn require_voucher(&self) -> bool {
        self.0.require_voucher
    }
    async fn hide_without_voucher(&self) -> bool {
        self.0.hide_without_voucher
    }
    async fn require_approval(&self) -> bool {
        self.0.require_approval
    }
    async fn personalized(&self) -> bool {
        self.0.personalized
    }
    async fn checkin_attention(&self) -> bool {
        self.0.checkin_attention
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Which add-on categories its positions carry add-ons from, and how many.
    async fn add_on_rules(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::addons::ProductAddOnRule>> {
        let rows = loader(ctx)?
            .load_one(AddOnRulesOfProduct(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(super::addons::ProductAddOnRule)
            .collect())
    }
    async fn variations(&self, ctx: &Context<'_>) -> Result<Vec<ProductVariation>> {
        let rows = catalog::variations_of(&services(ctx)?.db, self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(|row| ProductVariation(row, self.1.clone()))
            .collect())
    }
    /// Availability over the product's quotas (for events without dates): the
    /// worst state and the least left. When its quotas name variations, that
    /// of its best active variation (it is bought as one of them). A product
    /// in no quota is `GONE`.
    async fn availability(&self, ctx: &Context<'_>) -> Result<ProductAvailability> {
        let quotas = loader(ctx)?
            .load_one(QuotasOfProduct(self.0.id))
            .await?
            .unwrap_or_default();
        let active = if quotas.names_variations(None) {
            catalog::variations_of(&services(ctx)?.db, self.0.id)
                .await?
                .into_iter()
                .filter(|v| v.active)
                .collect()
        } else {
            Vec::new()
        };
        let (state, remaining) = quotas.of_product(&active, None);
        let on_sale = self.0.on_sale_at(services(ctx)?.now());
        let mut availability = ProductAvailability::of(state, remaining);
        availability.is_available &= on_sale;
        Ok(availability)
    }
}

/// A variation of a product.
pub struct ProductVariation(pub product_variation::Model, pub String);

#[Object]
impl ProductVariation {
    async fn id(&self) -> ID {
        ids::encode(Kind::PRODUCT_VARIATION, self.0.id)
    }
    async fn value(&self) -> &str {
        &self.0.value
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
    /// Its own price, when it differs from the product's.
    async fn price(&self) -> Option<Money> {
        self.0.price_minor.map(|p| Money::new(p, &self.1))
    }
    /// Availability over the quotas counting it (for events without dates):
    /// its product's quotas that name no variation of it or name this one.
    async fn availability(&self, ctx: &Context<'_>) -> Result<ProductAvailability> {
        let quotas = loader(ctx)?
            .load_one(QuotasOfProduct(self.0.product_id))
            .await?
            .unwrap_or_default();
        let product = loader(ctx)?
            .load_one(ProductById(self.0.product_id))
            .await?;
        let (state, remaining) = quotas.of_variation(self.0.id, None);
        let now = services(ctx)?.now();
        let on_sale = self.0.active && product.is_some_and(|p| p.on_sale_at(now));
        let mut availability = ProductAvailability::of(state, remaining);
        availability.is_available &= on_sale;
        Ok(availability)
    }
}

/// A quota and what takes it.
pub struct Quota(pub quota::Model);

#[Object]
impl Quota {
    async fn id(&self) -> ID {
        ids::encode(Kind::QUOTA, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Null: unlimited.
    async fn size(&self) -> Option<i32> {
        self.0.size
    }
    async fn sub_event_id(&self) -> Option<ID> {
        self.0
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    /// The products it counts.
    async fn product_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let products = catalog::products_of_quota(&services(ctx)?.db, self.0.id).await?;
        Ok(products
            .into_iter()
            .map(|id| ids::encode(Kind::PRODUCT, id))
            .collect())
    }
    /// The variations of its products it names; a product none of whose
    /// variations is named counts with all of them.
    async fn variation_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let variations = catalog::variations_of_quota(&services(ctx)?.db, self.0.id).await?;
        Ok(variations
            .into_iter()
            .map(|v| ids::encode(Kind::PRODUCT_VARIATION, v.id))
            .collect())
    }
    /// The variations it names (pretix's `Quota.variations`), as
    /// `variationIds`.
    async fn variations(&self, ctx: &Context<'_>) -> Result<Vec<ProductVariation>> {
        let variations = catalog::variations_of_quota(&services(ctx)?.db, self.0.id).await?;
        let currency = event_row(ctx, self.0.event_id).await?.currency;
        Ok(variations
            .into_iter()
            .map(|v| ProductVariation(v, currency.clone()))
            .collect())
    }
    /// Units in paid orders.
    async fn paid(&self) -> i32 {
        self.0.paid
    }
    /// Units in pending orders.
    async fn pending(&self) -> i32 {
        self.0.pending
    }
    /// Units held by carts.
    async fn in_carts(&self) -> i32 {
        self.0.in_carts
    }
    /// Units vouchers keep for their unused usages (shown as reserved).
    async fn blocked(&self) -> i32 {
        self.0.blocked
    }
    async fn availability(&self) -> ProductAvailability {
        ProductAvailability::of(self.0.availability(), self.0.remaining())
    }
}

/// A position in a cart, holding its quota until it expires.
pub struct CartPosition(pub cart_position::Model);

#[Object]
impl CartPosition {
    async fn id(&self) -> ID {
        ids::encode(Kind::CART_POSITION, self.0.id)
    }
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let product = loader(ctx)?
            .load_one(ProductById(self.0.product_id))
            .await?;
        let event = event_row(ctx, self.0.event_id).await?;
        Ok(product.map(|p| Product(p, event.currency)))
    }
    async fn variation_id(&self) -> Option<ID> {
        self.0
            .variation_id
            .map(|id| ids::encode(Kind::PRODUCT_VARIATION, id))
    }
    async fn sub_event_id(&self) -> Option<ID> {
        self.0
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    /// The price in minor units is fixed when the position is added.
    async fn price(&self, ctx: &Context<'_>) -> Result<Money> {
        let event = event_row(ctx, self.0.event_id).await?;
        Ok(Money::new(self.0.price_minor, &event.currency))
    }
    /// The voucher it was added with.
    async fn voucher_id(&self) -> Option<ID> {
        self.0.voucher_id.map(|id| ids::encode(Kind::VOUCHER, id))
    }
    async fn expires(&self) -> DateTime {
        self.0.expires.into()
    }
    /// The position of the cart it is an add-on to.
    async fn addon_to(&self) -> Option<ID> {
        self.0
            .addon_to
            .map(|id| ids::encode(Kind::CART_POSITION, id))
    }
    /// Its add-ons.
    async fn addons(&self, ctx: &Context<'_>) -> Result<Vec<CartPosition>> {
        let rows = loader(ctx)?
            .load_one(AddonsOfCartPosition(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(rows.into_iter().map(CartPosition).collect())
    }
    /// The buyer's answers to its questions.
    async fn answers(&self, ctx: &Context<'_>) -> Result<Vec<super::questions::QuestionAnswer>> {
        let rows = loader(ctx)?
            .load_one(AnswersOfCartPosition(self.0.id))
            .await?
            .unwrap_or_default();
        let event_id = self.0.event_id;
        super::questions::visible_answers(ctx, async || Ok(event_id), rows).await
    }
}

/// An order.
pub struct Order(pub order::Model);

#[Object]
impl Order {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORDER, self.0.id)
    }
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.0.event_id)
    }
    /// Unique within the event.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn total(&self, ctx: &Context<'_>) -> Result<Money> {
        let event = event_row(ctx, self.0.event_id).await?;
        Ok(Money::new(self.0.total_minor, &event.currency))
    }
    async fn testmode(&self) -> bool {
        self.0.testmode
    }
    async fn sales_channel(&self) -> &str {
        &self.0.sales_channel
    }
    /// When it was placed.
    async fn datetime(&self) -> DateTime {
        self.0.datetime.into()
    }
    /// Payment deadline of a pending order.
    async fn expires(&self) -> DateTime {
        self.0.expires.into()
    }
    /// Its positions; admission positions are tickets.
    async fn positions(&self, ctx: &Context<'_>) -> Result<Vec<OrderPosition>> {
        let rows = loader(ctx)?
            .load_one(PositionsOfOrder(self.0.id))
            .await?
            .unwrap_or_default();
        let event = event_row(ctx, self.0.event_id).await?;
        let paid = self.0.status == entities::order::OrderStatus::Paid;
        Ok(rows
            .into_iter()
            .map(|row| OrderPosition {
                row,
                currency: event.currency.clone(),
                order_paid: paid,
            })
            .collect())
    }
    /// Its payments, by number.
    async fn payments(&self, ctx: &Context<'_>) -> Result<Vec<super::payments::OrderPayment>> {
        let rows = loader(ctx)?
            .load_one(crate::ticketing::loaders::PaymentsOfOrder(self.0.id))
            .await?
            .unwrap_or_default();
        let event = event_row(ctx, self.0.event_id).await?;
        Ok(rows
            .into_iter()
            .map(|row| super::payments::OrderPayment(row, event.currency.clone()))
            .collect())
    }
    /// Its invoices and cancellation invoices, oldest first.
    async fn invoices(&self, ctx: &Context<'_>) -> Result<Vec<super::invoices::Invoice>> {
        super::invoices::of_order(ctx, self).await
    }
    /// The address its invoices are issued to.
    async fn invoice_address(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::invoices::InvoiceAddress>> {
        super::invoices::address_of(ctx, self).await
    }
    /// Its refunds, by number.
    async fn refunds(&self, ctx: &Context<'_>) -> Result<Vec<super::refunds::OrderRefund>> {
        super::refunds::of_order(ctx, self).await
    }
    /// Whether its buyer may still change its answers now
    /// (`setOrderPositionAnswers`): pending or paid, before the event's
    /// `lastOrderModificationDate` (pretix `Order.can_modify_answers`).
    async fn can_modify_answers(&self, ctx: &Context<'_>) -> Result<bool> {
        let services = services(ctx)?;
        let event = event_row(ctx, self.0.event_id).await?;
        match crate::ticketing::questions::buyer_may_change(
            &services.db,
            &self.0,
            &event,
            services.now(),
        )
        .await
        {
            Ok(()) => Ok(true),
            Err(crate::error::AppError::Refused { .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
    /// Its fees (a payment's fee is one); canceled ones do not count in the total.
    async fn fees(&self, ctx: &Context<'_>) -> Result<Vec<super::payments::OrderFee>> {
        let rows = loader(ctx)?
            .load_one(crate::ticketing::loaders::FeesOfOrder(self.0.id))
            .await?
            .unwrap_or_default();
        let event = event_row(ctx, self.0.event_id).await?;
        Ok(rows
            .into_iter()
            .map(|row| super::payments::OrderFee(row, event.currency.clone()))
            .collect())
    }
}

/// A position of an order; an admission position is a ticket.
pub struct OrderPosition {
    pub row: order_position::Model,
    pub currency: String,
    pub order_paid: bool,
}

#[Object]
impl OrderPosition {
    async fn id(&self) -> ID {
        ids::encode(Kind::ORDER_POSITION, self.row.id)
    }
    /// The voucher it was bought with.
    async fn voucher_id(&self) -> Option<ID> {
        self.row.voucher_id.map(|id| ids::encode(Kind::VOUCHER, id))
    }
    /// 1, 2, … within the order.
    async fn positionid(&self) -> i32 {
        self.row.positionid
    }
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let product = loader(ctx)?
            .load_one(ProductById(self.row.product_id))
            .await?;
        Ok(product.map(|p| Product(p, self.currency.clone())))
    }
    async fn price(&self) -> Money {
        Money::new(self.row.price_minor, &self.currency)
    }
    async fn tax_rate(&self) -> String {
        format_minor(i64::from(self.row.tax_rate_bp))
    }
    /// The tax included in the price.
    async fn tax_value(&self) -> Money {
        Money::new(self.row.tax_value_minor, &self.currency)
    }
    /// What the ticket's QR code holds.
    async fn secret(&self) -> &str {
        &self.row.secret
    }
    /// The olympic ticket's unique key: hex SHA-256 of buyer, purchase date and id
    /// (admission positions only).
    async fn ticket_key(&self) -> Option<&str> {
        self.row.ticket_key.as_deref()
    }
    async fn canceled(&self) -> bool {
        self.row.canceled
    }
    /// A ticket admits: its order is paid and it is not canceled.
    async fn valid(&self) -> bool {
        self.order_paid && !self.row.canceled
    }
    /// Blocked by the organizer: refused at every door (`BLOCKED`).
    async fn blocked(&self, ctx: &Context<'_>) -> Result<bool> {
        let block = loader(ctx)?
            .load_one(crate::ticketing::loaders::BlockOfTicket(self.row.id))
            .await?;
        Ok(block.is_some_and(|b| b.blocked))
    }
    /// The position of the order it is an add-on to.
    async fn addon_to(&self) -> Option<ID> {
        self.row
            .addon_to
            .map(|id| ids::encode(Kind::ORDER_POSITION, id))
    }
    /// Its add-ons.
    async fn addons(&self, ctx: &Context<'_>) -> Result<Vec<OrderPosition>> {
        let rows = loader(ctx)?
            .load_one(AddonsOfOrderPosition(self.row.id))
            .await?
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|row| OrderPosition {
                row,
                currency: self.currency.clone(),
                order_paid: self.order_paid,
            })
            .collect())
    }
    /// The answers to its questions (to hidden questions, only for the team).
    async fn answers(&self, ctx: &Context<'_>) -> Result<Vec<super::questions::QuestionAnswer>> {
        let rows = loader(ctx)?
            .load_one(AnswersOfOrderPosition(self.row.id))
            .await?
            .unwrap_or_default();
        let order_id = self.row.order_id;
        let event_of_order = async || -> Result<i32> {
            use sea_orm::EntityTrait as _;
            let order = order::Entity::find_by_id(order_id)
                .one(&services(ctx)?.db)
                .await
                .map_err(crate::error::AppError::from)?
                .ok_or(crate::error::AppError::not_found("order"))?;
            Ok(order.event_id)
        };
        super::questions::visible_answers(ctx, event_of_order, rows).await
    }
    /// The QR code of `secret`: an SVG document, or a PNG image as a
    /// `data:image/png;base64,…` URL.
    async fn qr_code(&self, format: Option<QrCodeFormat>) -> Result<String> {
        let format = match format.unwrap_or(QrCodeFormat::Svg) {
            QrCodeFormat::Svg => crate::ticketing::tickets::QrFormat::Svg,
            QrCodeFormat::Png => crate::ticketing::tickets::QrFormat::Png,
        };
        Ok(crate::ticketing::tickets::qr_code(
            &self.row.secret,
            format,
        )?)
    }
}

/// The image format of a ticket's QR code.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum QrCodeFormat {
    Svg,
    Png,
}

/// An audit log entry: who (an account or a team API token) did what, when.
pub struct LogEntry(pub ticketing_log::Model);

#[Object]
impl LogEntry {
    async fn id(&self) -> ID {
        ids::encode(Kind::LOG_ENTRY, self.0.id)
    }
    async fn datetime(&self) -> DateTime {
        self.0.datetime.into()
    }
    /// e.g. `voltgate.order.placed`.
    async fn action_type(&self) -> &str {
        &self.0.action_type
    }
    async fn object_type(&self) -> &str {
        &self.0.object_type
    }
    async fn object_id(&self) -> i32 {
        self.0.object_id
    }
    /// The account that acted, if a person did.
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ids::encode(Kind::USER, id))
    }
    /// The team API token that acted, if one did.
    async fn team_api_token_id(&self) -> Option<ID> {
        self.0
            .team_api_token_id
            .map(|id| ids::encode(Kind::TEAM_API_TOKEN, id))
    }
    /// JSON.
    async fn data(&self) -> &str {
        &self.0.data
    }
}
