//! DataLoader keys of ticketing.

use sea_orm::{EntityTrait as _, QueryOrder as _};

use super::catalog;
use crate::entities::{
    cart_position, order_fee, order_payment, order_position, product, product_addon_rule, question,
    question_answer, ticket_block, voucher_product,
};
use crate::graphql::loaders::{DbLoader, LoadResult, many_per_key, one_per_key};

one_per_key!(ProductById: product by Id => id);
many_per_key!(
    /// An order's positions, in order.
    PositionsOfOrder: order_position by OrderId => order_id,
    order_position::Entity::find().order_by_asc(order_position::Column::Positionid)
);
many_per_key!(
    /// The products a voucher applies to.
    ProductsOfVoucher: voucher_product by VoucherId => voucher_id,
    voucher_product::Entity::find().order_by_asc(voucher_product::Column::ProductId)
);
many_per_key!(
    /// An order's payments, by number.
    PaymentsOfOrder: order_payment by OrderId => order_id,
    order_payment::Entity::find().order_by_asc(order_payment::Column::LocalId)
);
many_per_key!(
    /// An order's fees.
    FeesOfOrder: order_fee by OrderId => order_id,
    order_fee::Entity::find().order_by_asc(order_fee::Column::Id)
);

/// The quotas linked to a product, with the variations of it they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotasOfProduct(pub i32);

impl async_graphql::dataloader::Loader<QuotasOfProduct> for DbLoader {
    type Value = catalog::ProductQuotas;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[QuotasOfProduct],
    ) -> LoadResult<QuotasOfProduct, catalog::ProductQuotas> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let quotas = catalog::quotas_of_products(self.db(), &ids, false).await?;
        Ok(quotas
            .into_iter()
            .map(|(id, quotas)| (QuotasOfProduct(id), quotas))
            .collect())
    }
}

one_per_key!(
    /// A ticket's block, if it was ever blocked.
    BlockOfTicket: ticket_block by PositionId => position_id
);

one_per_key!(
    /// A question by id.
    QuestionById: question by Id => id
);
many_per_key!(
    /// A base product's add-on rules, by position.
    AddOnRulesOfProduct: product_addon_rule by BaseProductId => base_product_id,
    product_addon_rule::Entity::find()
        .order_by_asc(product_addon_rule::Column::Position)
        .order_by_asc(product_addon_rule::Column::Id)
);

/// Declares a key loading the rows of `query` under a nullable foreign key
/// (rows found by the key always have it set).
macro_rules! many_per_optional_key {
    ($(#[$doc:meta])* $key:ident: $entity:ident by $column:ident => $field:ident, $query:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub i32);

        impl async_graphql::dataloader::Loader<$key> for DbLoader {
            type Value = Vec<$entity::Model>;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, Vec<$entity::Model>> {
                crate::graphql::loaders::many_each(
                    self.db(),
                    $query,
                    $entity::Column::$column,
                    keys,
                    |k| k.0,
                    |row| $key(row.$field.unwrap_or_default()),
                )
                .await
            }
        }
    };
}

many_per_optional_key!(
    /// A cart position's answers.
    AnswersOfCartPosition: question_answer by CartPositionId => cart_position_id,
    question_answer::Entity::find().order_by_asc(question_answer::Column::QuestionId)
);
many_per_optional_key!(
    /// An order position's answers.
    AnswersOfOrderPosition: question_answer by OrderPositionId => order_position_id,
    question_answer::Entity::find().order_by_asc(question_answer::Column::QuestionId)
);
many_per_optional_key!(
    /// The add-ons of a cart position.
    AddonsOfCartPosition: cart_position by AddonTo => addon_to,
    cart_position::Entity::find().order_by_asc(cart_position::Column::Id)
);
many_per_optional_key!(
    /// The add-ons of an order position, in order.
    AddonsOfOrderPosition: order_position by AddonTo => addon_to,
    order_position::Entity::find().order_by_asc(order_position::Column::Positionid)
);
