//! DataLoader keys of ticketing.

use sea_orm::{EntityTrait as _, QueryOrder as _};

use super::catalog;
use crate::entities::{
    order_fee, order_payment, order_position, product, quota, ticket_block, voucher_product,
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

/// The quotas counting a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotasOfProduct(pub i32);

impl async_graphql::dataloader::Loader<QuotasOfProduct> for DbLoader {
    type Value = Vec<quota::Model>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[QuotasOfProduct],
    ) -> LoadResult<QuotasOfProduct, Vec<quota::Model>> {
        let ids: Vec<i32> = keys.iter().map(|k| k.0).collect();
        let quotas = catalog::quotas_of_products(self.db(), &ids).await?;
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
