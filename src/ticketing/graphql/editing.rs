//! Changing and deleting what organizers created: categories, products,
//! variations and quotas (`CHANGE_ITEMS`), dates (`CHANGE_EVENTS`), vouchers
//! (`CHANGE_VOUCHERS`) and teams (`CHANGE_TEAMS`), each checked in its
//! service for the event or organizer at hand.
//!
//! Updates are partial: a member left out is unchanged; an optional member
//! set to `null` is cleared. Deleting what sold or is held is refused with
//! `CONFLICT` (`IN_USE`); quota changes and deletions, and deleted dates,
//! are announced on `availabilityChanged` after their commit.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::back_office::{
    ProductCategoryPayload, ProductPayload, ProductVariationPayload, QuotaPayload, SubEventPayload,
    TeamPayload, event_currency, id_list, parse_tax_rate,
};
use super::types::{
    Product, ProductCategory, ProductKind, ProductVariation, Quota, SubEvent, Team, TeamPermission,
};
use super::vouchers::{Voucher, VoucherPriceMode, parse_percent};
use crate::auth::guards::principal;
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::catalog_edits::{
    self, CategoryPatch, ProductPatch, QuotaPatch, VariationPatch,
};
use crate::ticketing::live;
use crate::ticketing::money::parse_minor;
use crate::ticketing::organizer_edits::{self, SubEventPatch, TeamPatch};
use crate::ticketing::vouchers::{self, VoucherPatch};

/// An optional member of a change: absent keeps it, `null` clears it, a value
/// is parsed.
fn clearable<T, U>(
    value: MaybeUndefined<T>,
    parse: impl FnOnce(T) -> Result<U, AppError>,
) -> Result<Option<Option<U>>, AppError> {
    Ok(value.map_value(parse).transpose()?.into())
}

fn decode(kind: Kind, field: &'static str) -> impl Fn(ID) -> Result<i32, AppError> {
    move |id| ids::decode(&id, kind, field)
}

fn time(value: DateTime) -> Result<chrono::DateTime<chrono::Utc>, AppError> {
    Ok(value.0)
}

fn same<T>(value: T) -> Result<T, AppError> {
    Ok(value)
}

#[derive(InputObject)]
pub struct UpdateProductCategoryInput {
    pub category_id: ID,
    pub name: Option<String>,
    pub position: Option<i32>,
    pub is_addon: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteProductCategoryInput {
    pub category_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteProductCategoryPayload {
    pub deleted_category_id: ID,
}

#[derive(InputObject)]
pub struct UpdateProductInput {
    pub product_id: ID,
    /// `null`: in no category.
    pub category_id: MaybeUndefined<ID>,
    pub name: Option<String>,
    /// Unique within the event; `null`: none. Orders keep their products
    /// whatever the slug.
    pub slug: MaybeUndefined<String>,
    pub description: Option<String>,
    pub kind: Option<ProductKind>,
    /// Decimal string, tax included. Carts and orders keep their price.
    pub price: Option<String>,
    /// Percent as a decimal string.
    pub tax_rate: Option<String>,
    pub active: Option<bool>,
    pub available_from: MaybeUndefined<DateTime>,
    pub available_until: MaybeUndefined<DateTime>,
    pub min_per_order: MaybeUndefined<i32>,
    pub max_per_order: MaybeUndefined<i32>,
    pub limit_per_user: MaybeUndefined<i32>,
    pub require_voucher: Option<bool>,
    pub hide_without_voucher: Option<bool>,
    pub require_approval: Option<bool>,
    pub personalized: Option<bool>,
    pub checkin_attention: Option<bool>,
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteProductInput {
    pub product_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteProductPayload {
    pub deleted_product_id: ID,
}

#[derive(InputObject)]
pub struct UpdateProductVariationInput {
    pub variation_id: ID,
    pub value: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    /// `null`: the product's price.
    pub price: MaybeUndefined<String>,
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteProductVariationInput {
    pub variation_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteProductVariationPayload {
    pub deleted_variation_id: ID,
}

#[derive(InputObject)]
pub struct UpdateQuotaInput {
    pub quota_id: ID,
    pub name: Option<String>,
    /// `null`: unlimited. May be less than what is taken: nothing more is
    /// sold until units come back.
    pub size: MaybeUndefined<i32>,
    /// `null`: not for one date.
    pub sub_event_id: MaybeUndefined<ID>,
    /// Replaces the products it counts (the variations it names of products
    /// it no longer counts are dropped).
    pub product_ids: Option<Vec<ID>>,
    /// Replaces the variations it names (empty: all variations of its products).
    pub variation_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct DeleteQuotaInput {
    pub quota_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteQuotaPayload {
    pub deleted_quota_id: ID,
}

#[derive(InputObject)]
pub struct UpdateSubEventInput {
    pub sub_event_id: ID,
    pub name: Option<String>,
    pub active: Option<bool>,
    pub is_public: Option<bool>,
    pub date_from: Option<DateTime>,
    pub date_to: MaybeUndefined<DateTime>,
    pub presale_start: MaybeUndefined<DateTime>,
    pub presale_end: MaybeUndefined<DateTime>,
    pub location: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct DeleteSubEventInput {
    pub sub_event_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteSubEventPayload {
    pub deleted_sub_event_id: ID,
}

#[derive(InputObject)]
pub struct UpdateVoucherInput {
    pub voucher_id: ID,
    /// Letters, digits, `-`, `_`; unique in the event.
    pub code: Option<String>,
    /// Not below `redeemed`.
    pub max_usages: Option<i32>,
    pub min_usages: Option<i32>,
    pub valid_from: MaybeUndefined<DateTime>,
    pub valid_until: MaybeUndefined<DateTime>,
    pub active: Option<bool>,
    pub price_mode: Option<VoucherPriceMode>,
    /// With `SET` and `SUBTRACT`; `null` when changing to another mode.
    pub value: MaybeUndefined<String>,
    /// With `PERCENT`; `null` when changing to another mode.
    pub percent: MaybeUndefined<String>,
    /// Replaces the products it applies to (empty: any).
    pub product_ids: Option<Vec<ID>>,
    pub variation_id: MaybeUndefined<ID>,
    pub quota_id: MaybeUndefined<ID>,
    pub sub_event_id: MaybeUndefined<ID>,
    pub show_hidden_items: Option<bool>,
    /// Not supported yet: `true` is refused.
    pub block_quota: Option<bool>,
    pub allow_ignore_quota: Option<bool>,
    pub tag: MaybeUndefined<String>,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteVoucherInput {
    pub voucher_id: ID,
}

#[derive(SimpleObject)]
pub struct VoucherPayload {
    pub voucher: Voucher,
}

#[derive(SimpleObject)]
pub struct DeleteVoucherPayload {
    pub deleted_voucher_id: ID,
}

#[derive(InputObject)]
pub struct UpdateTeamInput {
    pub team_id: ID,
    pub name: Option<String>,
    pub all_events: Option<bool>,
    /// Replaces the events it works on (when not on all of them).
    pub event_ids: Option<Vec<ID>>,
    /// Replaces its permissions.
    pub permissions: Option<Vec<TeamPermission>>,
}

#[derive(InputObject)]
pub struct DeleteTeamInput {
    pub team_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteTeamPayload {
    pub deleted_team_id: ID,
}

#[derive(Default)]
pub struct EditingMutation;

#[Object]
impl EditingMutation {
    /// Team permission `CHANGE_ITEMS`: changes a product category.
    async fn update_product_category(
        &self,
        ctx: &Context<'_>,
        input: UpdateProductCategoryInput,
    ) -> Result<ProductCategoryPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.category_id, Kind::PRODUCT_CATEGORY, "categoryId")?;
        let category = catalog_edits::update_category(
            &services.db,
            principal(ctx),
            services.now(),
            id,
            CategoryPatch {
                name: input.name,
                position: input.position,
                is_addon: input.is_addon,
            },
        )
        .await?;
        Ok(ProductCategoryPayload {
            category: ProductCategory(category),
        })
    }

    /// Team permission `CHANGE_ITEMS`: deletes a product category; its
    /// products stay, in no category.
    async fn delete_product_category(
        &self,
        ctx: &Context<'_>,
        input: DeleteProductCategoryInput,
    ) -> Result<DeleteProductCategoryPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.category_id, Kind::PRODUCT_CATEGORY, "categoryId")?;
        catalog_edits::delete_category(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteProductCategoryPayload {
            deleted_category_id: input.category_id,
        })
    }

    /// Team permission `CHANGE_ITEMS`: changes a product. Carts and orders
    /// keep the price they were made with.
    async fn update_product(
        &self,
        ctx: &Context<'_>,
        input: UpdateProductInput,
    ) -> Result<ProductPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.product_id, Kind::PRODUCT, "productId")?;
        let patch = ProductPatch {
            name: input.name,
            slug: clearable(input.slug, same)?,
            description: input.description,
            kind: input.kind.map(Into::into),
            category_id: clearable(
                input.category_id,
                decode(Kind::PRODUCT_CATEGORY, "categoryId"),
            )?,
            price_minor: input
                .price
                .as_deref()
                .map(|p| parse_minor("price", p))
                .transpose()?,
            tax_rate_bp: input.tax_rate.as_deref().map(parse_tax_rate).transpose()?,
            active: input.active,
            available_from: clearable(input.available_from, time)?,
            available_until: clearable(input.available_until, time)?,
            min_per_order: clearable(input.min_per_order, same)?,
            max_per_order: clearable(input.max_per_order, same)?,
            limit_per_user: clearable(input.limit_per_user, same)?,
            require_voucher: input.require_voucher,
            hide_without_voucher: input.hide_without_voucher,
            require_approval: input.require_approval,
            personalized: input.personalized,
            checkin_attention: input.checkin_attention,
            position: input.position,
        };
        let product =
            catalog_edits::update_product(&services.db, principal(ctx), services.now(), id, patch)
                .await?;
        let currency = event_currency(ctx, product.event_id).await?;
        Ok(ProductPayload {
            product: Product(product, currency),
        })
    }

    /// Team permission `CHANGE_ITEMS`: deletes a product and its variations;
    /// refused (`IN_USE`) once it was ordered, while carts hold it or when
    /// vouchers apply to it.
    async fn delete_product(
        &self,
        ctx: &Context<'_>,
        input: DeleteProductInput,
    ) -> Result<DeleteProductPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.product_id, Kind::PRODUCT, "productId")?;
        catalog_edits::delete_product(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteProductPayload {
            deleted_product_id: input.product_id,
        })
    }

    /// Team permission `CHANGE_ITEMS`: changes a variation of a product.
    async fn update_product_variation(
        &self,
        ctx: &Context<'_>,
        input: UpdateProductVariationInput,
    ) -> Result<ProductVariationPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.variation_id, Kind::PRODUCT_VARIATION, "variationId")?;
        let patch = VariationPatch {
            value: input.value,
            description: input.description,
            active: input.active,
            price_minor: clearable(input.price, |p| parse_minor("price", &p))?,
            position: input.position,
        };
        let variation = catalog_edits::update_variation(
            &services.db,
            principal(ctx),
            services.now(),
            id,
            patch,
        )
        .await?;
        let product =
            crate::ticketing::catalog::product_of_variation(&services.db, &variation).await?;
        let currency = event_currency(ctx, product.event_id).await?;
        Ok(ProductVariationPayload {
            variation: ProductVariation(variation, currency),
        })
    }

    /// Team permission `CHANGE_ITEMS`: deletes a variation; refused
    /// (`IN_USE`) once it was ordered, while carts hold it, when vouchers
    /// apply to it or when a quota names it alone of its product (the quota
    /// would count every variation).
    async fn delete_product_variation(
        &self,
        ctx: &Context<'_>,
        input: DeleteProductVariationInput,
    ) -> Result<DeleteProductVariationPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.variation_id, Kind::PRODUCT_VARIATION, "variationId")?;
        catalog_edits::delete_variation(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteProductVariationPayload {
            deleted_variation_id: input.variation_id,
        })
    }

    /// Team permission `CHANGE_ITEMS`: changes a quota's name, size, date,
    /// products or variations; announced on `availabilityChanged`.
    async fn update_quota(
        &self,
        ctx: &Context<'_>,
        input: UpdateQuotaInput,
    ) -> Result<QuotaPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.quota_id, Kind::QUOTA, "quotaId")?;
        let patch = QuotaPatch {
            name: input.name,
            size: clearable(input.size, same)?,
            sub_event_id: clearable(input.sub_event_id, decode(Kind::SUB_EVENT, "subEventId"))?,
            product_ids: input
                .product_ids
                .map(|list| id_list(&list, Kind::PRODUCT, "productIds"))
                .transpose()?,
            variation_ids: input
                .variation_ids
                .map(|list| id_list(&list, Kind::PRODUCT_VARIATION, "variationIds"))
                .transpose()?,
        };
        let quota =
            catalog_edits::update_quota(&services.db, principal(ctx), services.now(), id, patch)
                .await?;
        live::announce(services, [quota.event_id]).await;
        Ok(QuotaPayload {
            quota: Quota(quota),
        })
    }

    /// Team permission `CHANGE_ITEMS`: deletes a quota; refused (`IN_USE`)
    /// while carts hold units of it or when vouchers apply to it. Announced
    /// on `availabilityChanged`.
    async fn delete_quota(
        &self,
        ctx: &Context<'_>,
        input: DeleteQuotaInput,
    ) -> Result<DeleteQuotaPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.quota_id, Kind::QUOTA, "quotaId")?;
        let quota =
            catalog_edits::delete_quota(&services.db, principal(ctx), services.now(), id).await?;
        live::announce(services, [quota.event_id]).await;
        Ok(DeleteQuotaPayload {
            deleted_quota_id: input.quota_id,
        })
    }

    /// Team permission `CHANGE_EVENTS`: changes a date of a series.
    async fn update_sub_event(
        &self,
        ctx: &Context<'_>,
        input: UpdateSubEventInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.sub_event_id, Kind::SUB_EVENT, "subEventId")?;
        let patch = SubEventPatch {
            name: input.name,
            active: input.active,
            is_public: input.is_public,
            date_from: input.date_from.map(|d| d.0),
            date_to: clearable(input.date_to, time)?,
            presale_start: clearable(input.presale_start, time)?,
            presale_end: clearable(input.presale_end, time)?,
            location: clearable(input.location, same)?,
        };
        let date = organizer_edits::update_sub_event(
            &services.db,
            principal(ctx),
            services.now(),
            id,
            patch,
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }

    /// Team permission `CHANGE_EVENTS`: deletes a date with its quotas;
    /// refused (`IN_USE`) when it has orders, carts hold it or vouchers apply
    /// to it.
    async fn delete_sub_event(
        &self,
        ctx: &Context<'_>,
        input: DeleteSubEventInput,
    ) -> Result<DeleteSubEventPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.sub_event_id, Kind::SUB_EVENT, "subEventId")?;
        let date =
            organizer_edits::delete_sub_event(&services.db, principal(ctx), services.now(), id)
                .await?;
        live::announce(services, [date.event_id]).await;
        Ok(DeleteSubEventPayload {
            deleted_sub_event_id: input.sub_event_id,
        })
    }

    /// Team permission `CHANGE_VOUCHERS`: changes a voucher; its maximum
    /// usages never go below what was redeemed.
    async fn update_voucher(
        &self,
        ctx: &Context<'_>,
        input: UpdateVoucherInput,
    ) -> Result<VoucherPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.voucher_id, Kind::VOUCHER, "voucherId")?;
        let patch = VoucherPatch {
            code: input.code,
            max_usages: input.max_usages,
            min_usages: input.min_usages,
            valid_from: clearable(input.valid_from, time)?,
            valid_until: clearable(input.valid_until, time)?,
            active: input.active,
            price_mode: input.price_mode.map(Into::into),
            value_minor: clearable(input.value, |v| parse_minor("value", &v))?,
            percent_bp: clearable(input.percent, |p| parse_percent(&p))?,
            product_ids: input
                .product_ids
                .map(|list| id_list(&list, Kind::PRODUCT, "productIds"))
                .transpose()?,
            variation_id: clearable(
                input.variation_id,
                decode(Kind::PRODUCT_VARIATION, "variationId"),
            )?,
            quota_id: clearable(input.quota_id, decode(Kind::QUOTA, "quotaId"))?,
            sub_event_id: clearable(input.sub_event_id, decode(Kind::SUB_EVENT, "subEventId"))?,
            show_hidden_items: input.show_hidden_items,
            block_quota: input.block_quota,
            allow_ignore_quota: input.allow_ignore_quota,
            tag: clearable(input.tag, same)?,
            comment: input.comment,
        };
        let voucher =
            vouchers::update(&services.db, principal(ctx), services.now(), id, patch).await?;
        let currency = event_currency(ctx, voucher.event_id).await?;
        Ok(VoucherPayload {
            voucher: Voucher(voucher, currency),
        })
    }

    /// Team permission `CHANGE_VOUCHERS`: deletes a voucher; refused
    /// (`IN_USE`) once it was redeemed or while carts use it; what a blocking
    /// voucher kept goes back to its quotas, announced on `availabilityChanged`.
    async fn delete_voucher(
        &self,
        ctx: &Context<'_>,
        input: DeleteVoucherInput,
    ) -> Result<DeleteVoucherPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.voucher_id, Kind::VOUCHER, "voucherId")?;
        let row = vouchers::delete(&services.db, principal(ctx), services.now(), id).await?;
        // The units it kept are back in its quotas.
        if row.block_quota && row.blocked > 0 {
            live::announce(services, [row.event_id]).await;
        }
        Ok(DeleteVoucherPayload {
            deleted_voucher_id: input.voucher_id,
        })
    }

    /// Team permission `CHANGE_TEAMS`: changes a team's name, permissions and
    /// events; refused (`WOULD_LOCK_OUT`) when no team that may change teams
    /// and has a member would be left.
    async fn update_team(&self, ctx: &Context<'_>, input: UpdateTeamInput) -> Result<TeamPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.team_id, Kind::TEAM, "teamId")?;
        let patch = TeamPatch {
            name: input.name,
            all_events: input.all_events,
            event_ids: input
                .event_ids
                .map(|list| id_list(&list, Kind::EVENT, "eventIds"))
                .transpose()?,
            permissions: input
                .permissions
                .map(|list| list.into_iter().map(Into::into).collect()),
        };
        let team =
            organizer_edits::update_team(&services.db, principal(ctx), services.now(), id, patch)
                .await?;
        Ok(TeamPayload { team: Team(team) })
    }

    /// Team permission `CHANGE_TEAMS`: deletes a team with its memberships and
    /// API tokens; refused (`WOULD_LOCK_OUT`) for the last team that may
    /// change teams and has a member.
    async fn delete_team(
        &self,
        ctx: &Context<'_>,
        input: DeleteTeamInput,
    ) -> Result<DeleteTeamPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.team_id, Kind::TEAM, "teamId")?;
        organizer_edits::delete_team(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteTeamPayload {
            deleted_team_id: input.team_id,
        })
    }
}
