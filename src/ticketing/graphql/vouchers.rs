//! Vouchers in the back office: creating one or many (team permission
//! `CHANGE_VOUCHERS`) and reading them (`VIEW_VOUCHERS`, on `Event.vouchers`).
//! Buyers use a voucher by its code in `addToCart`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::types::Money;
use crate::auth::guards::principal;
use crate::entities::{self, event, voucher};
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::graphql::scalars::DateTime;
use crate::services::services;
use crate::ticketing::loaders::ProductsOfVoucher;
use crate::ticketing::money::{format_minor, parse_minor};
use crate::ticketing::vouchers::{self, Applies, VoucherInput};

impl Kind {
    pub const VOUCHER: Self = Self::named("Voucher");
}

/// How a voucher changes the price of what is bought with it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entities::voucher::PriceMode")]
pub enum VoucherPriceMode {
    /// The price stays: the voucher only unlocks products or skips quotas.
    None,
    /// The price becomes `value`.
    Set,
    /// `value` off the price, never below zero.
    Subtract,
    /// `percent` off the price.
    Percent,
    /// Free of charge.
    Complimentary,
}

/// A voucher (pretix's and django-program's, one model).
pub struct Voucher(pub voucher::Model, pub String);

#[Object]
impl Voucher {
    async fn id(&self) -> ID {
        ids::encode(Kind::VOUCHER, self.0.id)
    }
    /// Buyers enter it (case does not matter); stored in capitals.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn max_usages(&self) -> i32 {
        self.0.max_usages
    }
    /// Positions an order must use it for while fewer are redeemed.
    async fn min_usages(&self) -> i32 {
        self.0.min_usages
    }
    async fn redeemed(&self) -> i32 {
        self.0.redeemed
    }
    async fn valid_from(&self) -> Option<DateTime> {
        self.0.valid_from.map(Into::into)
    }
    async fn valid_until(&self) -> Option<DateTime> {
        self.0.valid_until.map(Into::into)
    }
    async fn price_mode(&self) -> VoucherPriceMode {
        self.0.price_mode.into()
    }
    /// With `SET` and `SUBTRACT`.
    async fn value(&self) -> Option<Money> {
        self.0.value_minor.map(|v| Money::new(v, &self.1))
    }
    /// With `PERCENT`: a decimal string, e.g. `"12.50"`.
    async fn percent(&self) -> Option<String> {
        self.0.percent_bp.map(|bp| format_minor(i64::from(bp)))
    }
    /// The products it applies to; any product of the event when empty.
    async fn product_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let links = loader(ctx)?
            .load_one(ProductsOfVoucher(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(links
            .iter()
            .map(|link| ids::encode(Kind::PRODUCT, link.product_id))
            .collect())
    }
    /// Only this variation.
    async fn variation_id(&self) -> Option<ID> {
        self.0
            .variation_id
            .map(|id| ids::encode(Kind::PRODUCT_VARIATION, id))
    }
    /// Only what this quota counts: its products (of those, the variations
    /// it names, when it names some).
    async fn quota_id(&self) -> Option<ID> {
        self.0.quota_id.map(|id| ids::encode(Kind::QUOTA, id))
    }
    /// Only this date of a series.
    async fn sub_event_id(&self) -> Option<ID> {
        self.0
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    /// An inactive voucher is refused.
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Unlocks products hidden without a voucher.
    async fn show_hidden_items(&self) -> bool {
        self.0.show_hidden_items
    }
    /// Keeps a unit of its quotas for each unused usage.
    async fn block_quota(&self) -> bool {
        self.0.block_quota
    }
    /// Usages it keeps quota for now (not redeemed, not in a cart; zero once
    /// its validity ended and the units were released).
    async fn blocked(&self) -> i32 {
        self.0.blocked
    }
    /// What is bought with it takes no quota.
    async fn allow_ignore_quota(&self) -> bool {
        self.0.allow_ignore_quota
    }
    async fn tag(&self) -> Option<&str> {
        self.0.tag.as_deref()
    }
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// The last change (its creation until it is changed).
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.unwrap_or(self.0.created_at).into()
    }
}

#[derive(InputObject)]
pub struct CreateVouchersInput {
    pub event_id: ID,
    /// The codes to create, one voucher each (letters, digits, `-`, `_`).
    #[graphql(default)]
    pub codes: Vec<String>,
    /// Or how many vouchers with random codes (at most 1000 at once).
    pub count: Option<i32>,
    #[graphql(default = 1)]
    pub max_usages: i32,
    #[graphql(default = 1)]
    pub min_usages: i32,
    pub valid_from: Option<DateTime>,
    pub valid_until: Option<DateTime>,
    #[graphql(default_with = "VoucherPriceMode::None")]
    pub price_mode: VoucherPriceMode,
    /// With `SET` and `SUBTRACT`: a decimal amount, e.g. `"10.00"`.
    pub value: Option<String>,
    /// With `PERCENT`: a decimal percentage, e.g. `"12.50"`.
    pub percent: Option<String>,
    /// The products it applies to; any product of the event when empty.
    #[graphql(default)]
    pub product_ids: Vec<ID>,
    /// Only this variation (of one of `productIds`).
    pub variation_id: Option<ID>,
    /// Only what this quota counts: its products (of those, the variations
    /// it names, when it names some).
    pub quota_id: Option<ID>,
    /// Only this date of a series.
    pub sub_event_id: Option<ID>,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default)]
    pub show_hidden_items: bool,
    /// Keep a unit of each quota it applies to for every unused usage, so
    /// nobody else can buy them: needs `quotaId`, or one product (its
    /// variation when it has some, its date in a series); refused with
    /// `SOLD_OUT` when the quotas do not have that much left.
    #[graphql(default)]
    pub block_quota: bool,
    #[graphql(default)]
    pub allow_ignore_quota: bool,
    pub tag: Option<String>,
    #[graphql(default)]
    pub comment: String,
}

#[derive(SimpleObject)]
pub struct CreateVouchersPayload {
    pub vouchers: Vec<Voucher>,
}

/// A percentage as a decimal string, in hundredths of a percent.
///
/// # Errors
/// `BAD_USER_INPUT` on `percent`.
pub fn parse_percent(percent: &str) -> Result<i32, crate::error::AppError> {
    let bp = parse_minor("percent", percent)?;
    i32::try_from(bp).map_err(|_| crate::error::AppError::bad_input("percent", "from 0 to 100"))
}

fn optional_id(id: Option<&ID>, kind: Kind, field: &'static str) -> Result<Option<i32>> {
    Ok(id.map(|id| ids::decode(id, kind, field)).transpose()?)
}

#[derive(Default)]
pub struct VoucherMutation;

#[Object]
impl VoucherMutation {
    /// Team permission `CHANGE_VOUCHERS`: creates vouchers, one per code given
    /// or `count` with random codes; all or none.
    async fn create_vouchers(
        &self,
        ctx: &Context<'_>,
        input: CreateVouchersInput,
    ) -> Result<CreateVouchersPayload> {
        use sea_orm::EntityTrait as _;
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let count = input
            .count
            .map(|n| {
                usize::try_from(n)
                    .map_err(|_| crate::error::AppError::bad_input("count", "not negative"))
            })
            .transpose()?;
        let percent_bp = input.percent.as_deref().map(parse_percent).transpose()?;
        let voucher_input = VoucherInput {
            max_usages: input.max_usages,
            min_usages: input.min_usages,
            valid_from: input.valid_from.map(|d| d.0),
            valid_until: input.valid_until.map(|d| d.0),
            price_mode: input.price_mode.into(),
            value_minor: input
                .value
                .as_deref()
                .map(|v| parse_minor("value", v))
                .transpose()?,
            percent_bp,
            active: input.active,
            applies: Applies {
                product_ids: input
                    .product_ids
                    .iter()
                    .map(|id| ids::decode(id, Kind::PRODUCT, "productIds"))
                    .collect::<Result<_, _>>()?,
                variation_id: optional_id(
                    input.variation_id.as_ref(),
                    Kind::PRODUCT_VARIATION,
                    "variationId",
                )?,
                quota_id: optional_id(input.quota_id.as_ref(), Kind::QUOTA, "quotaId")?,
                sub_event_id: optional_id(
                    input.sub_event_id.as_ref(),
                    Kind::SUB_EVENT,
                    "subEventId",
                )?,
            },
            show_hidden_items: input.show_hidden_items,
            block_quota: input.block_quota,
            allow_ignore_quota: input.allow_ignore_quota,
            tag: input.tag,
            comment: input.comment,
        };
        let created = vouchers::create(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            voucher_input,
            input.codes,
            count,
        )
        .await?;
        if created.iter().any(|v| v.blocked > 0) {
            crate::ticketing::live::announce(services, [event_id]).await;
        }
        let currency = event::Entity::find_by_id(event_id)
            .one(&services.db)
            .await
            .map_err(crate::error::AppError::from)?
            .map(|e| e.currency)
            .unwrap_or_default();
        Ok(CreateVouchersPayload {
            vouchers: created
                .into_iter()
                .map(|v| Voucher(v, currency.clone()))
                .collect(),
        })
    }
}
