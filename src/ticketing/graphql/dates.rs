//! Per-date product settings (pretix `SubEventItem`,
//! `SubEventItemVariation`): `setSubEventProductSettings` and
//! `clearSubEventProductSettings` (team permission `CHANGE_EVENTS`),
//! `SubEvent.productSettings` and the date's storefront, `SubEvent.products`.

use async_graphql::{Context, ID, InputObject, Object, Result};
use sea_orm::EntityTrait as _;

use super::back_office::SubEventPayload;
use super::types::{Money, Product, ProductAvailability, ProductVariation, SubEvent};
use crate::auth::guards::principal;
use crate::entities::{event, sub_event, sub_event_product_setting};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::dates::{self, DateSettings, ProductOnDate, VariationOnDate};
use crate::ticketing::money::parse_minor;

/// The currency of a date's event.
async fn currency_of(ctx: &Context<'_>, date: &sub_event::Model) -> Result<String> {
    Ok(event::Entity::find_by_id(date.event_id)
        .one(&services(ctx)?.db)
        .await
        .map_err(AppError::from)?
        .ok_or(AppError::not_found("event"))?
        .currency)
}

/// What a date changes for one product (`variationId` null) or variation.
pub struct SubEventProductSetting(pub sub_event_product_setting::Model, pub String);

#[Object]
impl SubEventProductSetting {
    async fn product_id(&self) -> ID {
        ids::encode(Kind::PRODUCT, self.0.product_id)
    }
    /// Null: the settings of the product, for all its variations.
    async fn variation_id(&self) -> Option<ID> {
        self.0
            .variation_id
            .map(|id| ids::encode(Kind::PRODUCT_VARIATION, id))
    }
    /// The price on this date; null: the product's (or variation's) own.
    async fn price(&self) -> Option<Money> {
        self.0.price_minor.map(|p| Money::new(p, &self.1))
    }
    /// Not sold on this date.
    async fn disabled(&self) -> bool {
        self.0.disabled
    }
    async fn available_from(&self) -> Option<DateTime> {
        self.0.available_from.map(Into::into)
    }
    async fn available_until(&self) -> Option<DateTime> {
        self.0.available_until.map(Into::into)
    }
}

/// A variation as a date sells it.
pub struct SubEventVariation(VariationOnDate, String);

#[Object]
impl SubEventVariation {
    async fn variation(&self) -> ProductVariation {
        ProductVariation(self.0.variation.clone(), self.1.clone())
    }
    /// The price on this date.
    async fn price(&self) -> Money {
        Money::new(self.0.terms.price_minor, &self.1)
    }
    /// Whether it can be bought on this date now: as its product, and
    /// something left in the date's quotas counting it.
    async fn on_sale(&self) -> bool {
        self.0.terms.on_sale
    }
    /// Over the date's quotas counting it (those of its product that name no
    /// variation of it, or name this one).
    async fn availability(&self) -> ProductAvailability {
        let mut availability = ProductAvailability::of(self.0.availability, self.0.remaining);
        availability.is_available = self.0.terms.on_sale;
        availability
    }
}

/// A product as a date sells it.
pub struct SubEventProduct(ProductOnDate, String);

#[Object]
impl SubEventProduct {
    async fn product(&self) -> Product {
        Product(self.0.product.clone(), self.1.clone())
    }
    /// The price on this date (the date's, else the product's own).
    async fn price(&self) -> Money {
        Money::new(self.0.terms.price_minor, &self.1)
    }
    /// Whether it can be bought on this date now: not disabled there, within
    /// its windows, something left in the date's quotas.
    async fn on_sale(&self) -> bool {
        self.0.terms.on_sale
    }
    /// Over the product's quotas of this date (when they name variations,
    /// that of its best variation).
    async fn availability(&self) -> ProductAvailability {
        let mut availability = ProductAvailability::of(self.0.availability, self.0.remaining);
        availability.is_available = self.0.terms.on_sale;
        availability
    }
    /// Its active variations, with their prices on this date.
    async fn variations(&self) -> Vec<SubEventVariation> {
        self.0
            .variations
            .iter()
            .map(|v| SubEventVariation(v.clone(), self.1.clone()))
            .collect()
    }
}

/// The date's settings, for `SubEvent.productSettings`.
pub async fn product_settings(
    ctx: &Context<'_>,
    date: &sub_event::Model,
) -> Result<Vec<SubEventProductSetting>> {
    let currency = currency_of(ctx, date).await?;
    let rows = dates::settings_of(&services(ctx)?.db, date.id).await?;
    Ok(rows
        .into_iter()
        .map(|row| SubEventProductSetting(row, currency.clone()))
        .collect())
}

/// The date's storefront, for `SubEvent.products`.
pub async fn products(ctx: &Context<'_>, date: &sub_event::Model) -> Result<Vec<SubEventProduct>> {
    let services = services(ctx)?;
    let currency = currency_of(ctx, date).await?;
    let rows = dates::products_on_date(&services.db, principal(ctx), date, services.now()).await?;
    Ok(rows
        .into_iter()
        .map(|row| SubEventProduct(row, currency.clone()))
        .collect())
}

#[derive(InputObject)]
pub struct SetSubEventProductSettingsInput {
    pub sub_event_id: ID,
    /// A product of the date's event.
    pub product_id: ID,
    /// A variation of that product: the settings are the variation's (and
    /// win over the product's).
    pub variation_id: Option<ID>,
    /// The price on this date (a decimal like `"45.00"`); null keeps the
    /// product's (or variation's) own.
    pub price: Option<String>,
    /// Not sold on this date.
    #[graphql(default)]
    pub disabled: bool,
    pub available_from: Option<DateTime>,
    pub available_until: Option<DateTime>,
}

#[derive(InputObject)]
pub struct ClearSubEventProductSettingsInput {
    pub sub_event_id: ID,
    pub product_id: ID,
    pub variation_id: Option<ID>,
}

/// The ids a date's settings are addressed by.
fn addressed(
    sub_event_id: &ID,
    product_id: &ID,
    variation_id: Option<&ID>,
) -> Result<(i32, i32, Option<i32>)> {
    Ok((
        ids::decode(sub_event_id, Kind::SUB_EVENT, "subEventId")?,
        ids::decode(product_id, Kind::PRODUCT, "productId")?,
        variation_id
            .map(|id| ids::decode(id, Kind::PRODUCT_VARIATION, "variationId"))
            .transpose()?,
    ))
}

#[derive(Default)]
pub struct DateMutation;

#[Object]
impl DateMutation {
    /// Team permission `CHANGE_EVENTS`: sets a date's price, switch and sale
    /// window of a product or of one of its variations, replacing what the
    /// date had for it.
    async fn set_sub_event_product_settings(
        &self,
        ctx: &Context<'_>,
        input: SetSubEventProductSettingsInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let (date, product, variation) = addressed(
            &input.sub_event_id,
            &input.product_id,
            input.variation_id.as_ref(),
        )?;
        let settings = DateSettings {
            price_minor: input
                .price
                .as_deref()
                .map(|p| parse_minor("price", p))
                .transpose()?,
            disabled: input.disabled,
            available_from: input.available_from.map(|d| d.0),
            available_until: input.available_until.map(|d| d.0),
        };
        let date = dates::set(
            &services.db,
            principal(ctx),
            services.now(),
            date,
            product,
            variation,
            settings,
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }

    /// Team permission `CHANGE_EVENTS`: removes a date's settings of a
    /// product or variation, so its own price and window apply again.
    async fn clear_sub_event_product_settings(
        &self,
        ctx: &Context<'_>,
        input: ClearSubEventProductSettingsInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let (date, product, variation) = addressed(
            &input.sub_event_id,
            &input.product_id,
            input.variation_id.as_ref(),
        )?;
        let date = dates::clear(
            &services.db,
            principal(ctx),
            services.now(),
            date,
            product,
            variation,
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }
}
