//! Ticketing's GraphQL: its types (`types`), the organizer back office
//! (`back_office`: organizers, events, teams, tokens, catalog, order changes;
//! `editing`: changing and deleting the catalog, dates, vouchers and teams),
//! the shop (`shop`: storefront, carts, checkout, orders by code) and its part
//! of the shared `User` type (`UserTicketingPart`: one's own orders).

pub mod addons;
pub mod back_office;
pub mod dates;
pub mod editing;
pub mod invoices;
pub mod meta;
pub mod payments;
pub mod providers;
pub mod questions;
pub mod refunds;
pub mod sales;
pub mod shop;
pub mod tickets;
pub mod types;
pub mod vouchers;

use async_graphql::{Context, Object, Result};

use crate::auth::guards::principal;
use crate::graphql::ids::Kind;
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::services::services;
use types::Order;

pub use addons::AddOnMutation;
pub use back_office::BackOfficeMutation;
pub use dates::DateMutation;
pub use editing::EditingMutation;
pub use invoices::{InvoiceMutation, InvoiceQuery};
pub use meta::MetaMutation;
pub use payments::PaymentMutation;
pub use providers::{ProviderMutation, ProviderQuery};
pub use questions::QuestionMutation;
pub use refunds::{RefundMutation, StoreCreditQuery};
pub use sales::SalesQuery;
pub use shop::{ShopMutation, ShopQuery, ShopSubscription};
pub use tickets::TicketMutation;
pub use vouchers::VoucherMutation;

impl Kind {
    pub const ORGANIZER: Self = Self::named("Organizer");
    pub const EVENT: Self = Self::named("Event");
    pub const SUB_EVENT: Self = Self::named("SubEvent");
    pub const TEAM: Self = Self::named("Team");
    pub const TEAM_API_TOKEN: Self = Self::named("TeamApiToken");
    pub const PRODUCT_CATEGORY: Self = Self::named("ProductCategory");
    pub const PRODUCT: Self = Self::named("Product");
    pub const PRODUCT_VARIATION: Self = Self::named("ProductVariation");
    pub const QUOTA: Self = Self::named("Quota");
    pub const CART_POSITION: Self = Self::named("CartPosition");
    pub const ORDER: Self = Self::named("Order");
    pub const ORDER_POSITION: Self = Self::named("OrderPosition");
    pub const LOG_ENTRY: Self = Self::named("LogEntry");
}

/// Ticketing's part of `User`: the account's own orders.
pub struct UserTicketingPart {
    pub user_id: i32,
}

#[Object]
impl UserTicketingPart {
    /// The account's orders, oldest first (the user and staff only).
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Order>> {
        let principal = principal(ctx);
        principal.person()?;
        if !principal.accounts().allows(self.user_id) {
            return Err(crate::error::AppError::Forbidden.into());
        }
        let page = page_request(first, after.as_deref())?;
        let rows = super::orders::of_user(&services(ctx)?.db, self.user_id, page).await?;
        Ok(connection(page, rows, |o| o.id, Order))
    }
}
