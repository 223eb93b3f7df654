//! Add-on rules (pretix `ItemAddOn`): which add-on categories a product's
//! positions may carry add-ons from, and how many (team permission
//! `CHANGE_ITEMS`); `Product.addOnRules`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::EntityTrait as _;

use super::types::ProductCategory;
use crate::auth::guards::principal;
use crate::entities::{product_addon_rule, product_category};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::services::services;
use crate::ticketing::addons;

impl Kind {
    pub const PRODUCT_ADD_ON_RULE: Self = Self::named("ProductAddOnRule");
}

/// A rule of a base product: each of its positions carries between
/// `minCount` and `maxCount` add-ons from the products of an add-on category.
pub struct ProductAddOnRule(pub product_addon_rule::Model);

#[Object]
impl ProductAddOnRule {
    async fn id(&self) -> ID {
        ids::encode(Kind::PRODUCT_ADD_ON_RULE, self.0.id)
    }
    async fn base_product_id(&self) -> ID {
        ids::encode(Kind::PRODUCT, self.0.base_product_id)
    }
    async fn addon_category_id(&self) -> ID {
        ids::encode(Kind::PRODUCT_CATEGORY, self.0.addon_category_id)
    }
    async fn addon_category(&self, ctx: &Context<'_>) -> Result<Option<ProductCategory>> {
        let row = product_category::Entity::find_by_id(self.0.addon_category_id)
            .one(&services(ctx)?.db)
            .await
            .map_err(AppError::from)?;
        Ok(row.map(ProductCategory))
    }
    async fn min_count(&self) -> i32 {
        self.0.min_count
    }
    async fn max_count(&self) -> i32 {
        self.0.max_count
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
}

#[derive(InputObject)]
pub struct CreateProductAddOnRuleInput {
    /// The base product.
    pub product_id: ID,
    /// An add-on category of the same event.
    pub addon_category_id: ID,
    #[graphql(default = 0)]
    pub min_count: i32,
    /// 1 to 100, at least `minCount`.
    #[graphql(default = 1)]
    pub max_count: i32,
    #[graphql(default)]
    pub position: i32,
}

#[derive(InputObject)]
pub struct UpdateProductAddOnRuleInput {
    pub rule_id: ID,
    pub min_count: Option<i32>,
    pub max_count: Option<i32>,
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteProductAddOnRuleInput {
    pub rule_id: ID,
}

#[derive(SimpleObject)]
pub struct ProductAddOnRulePayload {
    pub rule: ProductAddOnRule,
}

#[derive(SimpleObject)]
pub struct DeleteProductAddOnRulePayload {
    pub deleted_rule_id: ID,
}

#[derive(Default)]
pub struct AddOnMutation;

#[Object]
impl AddOnMutation {
    /// Team permission `CHANGE_ITEMS`: lets a product's positions carry
    /// add-ons from an add-on category.
    async fn create_product_add_on_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateProductAddOnRuleInput,
    ) -> Result<ProductAddOnRulePayload> {
        let services = services(ctx)?;
        let product_id = ids::decode(&input.product_id, Kind::PRODUCT, "productId")?;
        let category_id = ids::decode(
            &input.addon_category_id,
            Kind::PRODUCT_CATEGORY,
            "addonCategoryId",
        )?;
        let row = addons::create_rule(
            &services.db,
            principal(ctx),
            services.now(),
            product_id,
            category_id,
            (input.min_count, input.max_count),
            input.position,
        )
        .await?;
        Ok(ProductAddOnRulePayload {
            rule: ProductAddOnRule(row),
        })
    }

    /// Team permission `CHANGE_ITEMS`: changes a rule's counts or position.
    async fn update_product_add_on_rule(
        &self,
        ctx: &Context<'_>,
        input: UpdateProductAddOnRuleInput,
    ) -> Result<ProductAddOnRulePayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.rule_id, Kind::PRODUCT_ADD_ON_RULE, "ruleId")?;
        let row = addons::update_rule(
            &services.db,
            principal(ctx),
            services.now(),
            id,
            input.min_count,
            input.max_count,
            input.position,
        )
        .await?;
        Ok(ProductAddOnRulePayload {
            rule: ProductAddOnRule(row),
        })
    }

    /// Team permission `CHANGE_ITEMS`: removes a rule.
    async fn delete_product_add_on_rule(
        &self,
        ctx: &Context<'_>,
        input: DeleteProductAddOnRuleInput,
    ) -> Result<DeleteProductAddOnRulePayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.rule_id, Kind::PRODUCT_ADD_ON_RULE, "ruleId")?;
        addons::delete_rule(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteProductAddOnRulePayload {
            deleted_rule_id: input.rule_id,
        })
    }
}
