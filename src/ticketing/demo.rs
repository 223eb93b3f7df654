//! Demo ticketing data for `voltgate seed --demo`: an organizer selling a
//! live event, with a team working its doors, and a few orders.
//!
//! Everything goes through the ticketing services (permissions, audit log,
//! quotas, vouchers, checkout, payments) as a staff account, so the demo
//! holds nothing the API could not have produced.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::carts::{self, CartAdd};
use super::catalog::{self, ProductInput};
use super::catalog_edits::{self, QuotaPatch};
use super::organizers::{self, EventInput, TeamInput};
use super::vouchers::{self, Applies, VoucherInput};
use super::{orders, providers};
use crate::accounts::registration::{self, Registration};
use crate::accounts::roles;
use crate::auth::{Person, Principal, TeamPermission};
use crate::entities::product::ProductKind;
use crate::entities::voucher::PriceMode;
use crate::entities::{RoleName, order_position, organizer};
use crate::error::AppError;

/// The demo organizer's slug; its presence means the demo already ran.
pub const ORGANIZER_SLUG: &str = "voltgate-demo";

/// A demo account and its password, shown once.
#[derive(Clone)]
pub struct DemoAccount {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DemoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoAccount")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What the demo created.
#[derive(Debug, Clone)]
pub struct DemoTicketing {
    pub event_id: i32,
    pub event_name: String,
    /// A staff account, the organizer's administrator.
    pub admin: DemoAccount,
    /// A member of the "Door staff" team (check-in, viewing orders).
    pub door_staff: DemoAccount,
    pub voucher_codes: Vec<String>,
    pub orders: usize,
    /// The secrets of the tickets of paid orders.
    pub ticket_secrets: Vec<String>,
}

fn failed(what: &str, err: AppError) -> anyhow::Error {
    match err {
        AppError::Internal(cause) => cause.context(format!("demo ticketing: {what}")),
        other => anyhow::anyhow!("demo ticketing: {what}: {}", other.message()),
    }
}

pub(crate) async fn account(
    db: &DatabaseConnection,
    username: &str,
    full_name: &str,
) -> anyhow::Result<(i32, DemoAccount)> {
    let password = crate::auth::password::generate().map_err(|e| failed("password", e))?;
    let created = registration::register(
        db,
        Registration {
            username: username.to_owned(),
            email: format!("{username}@demo.voltgate.invalid"),
            password: password.clone(),
            phone: None,
            full_name: Some(full_name.to_owned()),
            accept_terms: true,
            accept_privacy_policy: true,
            accept_notifications: false,
        },
        None,
    )
    .await
    .map_err(|e| failed(username, e))?;
    Ok((
        created.id,
        DemoAccount {
            username: username.to_owned(),
            password,
        },
    ))
}

fn staff(user_id: i32, now: DateTime<Utc>) -> Principal {
    Principal::Person(Person {
        id: user_id,
        is_staff: true,
        is_superuser: false,
        roles: vec![RoleName::Administrator],
        stations: Vec::new(),
        observed: Vec::new(),
        expires_at: (now + TimeDelta::hours(1)).timestamp(),
        token_version: 0,
        password_change_required: false,
    })
}

fn product(name: &str, kind: ProductKind, price_minor: i64, quantity: i32) -> ProductInput {
    ProductInput {
        name: name.to_owned(),
        slug: None,
        description: String::new(),
        kind,
        category_id: None,
        price_minor,
        tax_rate_bp: 2_000,
        active: true,
        available_from: None,
        available_until: None,
        min_per_order: None,
        max_per_order: None,
        limit_per_user: None,
        require_voucher: false,
        hide_without_voucher: false,
        require_approval: false,
        personalized: false,
        checkin_attention: false,
        position: 0,
        total_quantity: Some(quantity),
    }
}

/// One line of a demo order: product, quantity, voucher code.
type Line<'a> = (i32, i32, Option<&'a str>);

/// Creates the demo organizer, its event and orders, unless it exists.
///
/// # Errors
/// When a service refuses (which the demo's own data never should) or the
/// database fails.
pub async fn seed(db: &DatabaseConnection) -> anyhow::Result<Option<DemoTicketing>> {
    let exists = organizer::Entity::find()
        .filter(organizer::Column::Slug.eq(ORGANIZER_SLUG))
        .one(db)
        .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let now = Utc::now();
    let (admin_id, admin) = account(db, "demo-admin", "Demo Administrator").await?;
    roles::set_staff(db, admin_id, true)
        .await
        .map_err(|e| failed("staff access", e))?;
    let (door_id, door_staff) = account(db, "demo-door", "Demo Door Staff").await?;
    let admin_principal = staff(admin_id, now);
    let by = &admin_principal;

    let organizer =
        organizers::create_organizer(db, by, now, "Voltgate Demo", ORGANIZER_SLUG, Some(admin_id))
            .await
            .map_err(|e| failed("organizer", e))?;
    let event = organizers::create_event(
        db,
        by,
        now,
        organizer.id,
        EventInput {
            name: Some("Voltgate Summit".to_owned()),
            slug: Some("summit".to_owned()),
            currency: Some("EUR".to_owned()),
            date_from: Some(now + TimeDelta::days(30)),
            date_to: Some(now + TimeDelta::days(32)),
            location: Some("Palais des Congrès, Paris".to_owned()),
            time_zone: Some("Europe/Paris".to_owned()),
            live: Some(true),
            ..EventInput::default()
        },
    )
    .await
    .map_err(|e| failed("event", e))?;
    let team = organizers::create_team(
        db,
        by,
        now,
        organizer.id,
        TeamInput {
            name: "Door staff".to_owned(),
            all_events: false,
            event_ids: vec![event.id],
            permissions: vec![TeamPermission::ViewOrders, TeamPermission::CheckIn],
        },
    )
    .await
    .map_err(|e| failed("team", e))?;
    organizers::add_team_member(db, by, now, team.id, door_id)
        .await
        .map_err(|e| failed("team member", e))?;

    let tickets = catalog::create_category(db, by, now, event.id, "Tickets", 0, false)
        .await
        .map_err(|e| failed("category", e))?;
    let extras = catalog::create_category(db, by, now, event.id, "Extras", 1, true)
        .await
        .map_err(|e| failed("category", e))?;
    let create = |input: ProductInput, category: i32| {
        let input = ProductInput {
            category_id: Some(category),
            ..input
        };
        catalog::create_product(db, by, now, event.id, input)
    };
    let full = create(
        product("Full pass", ProductKind::Admission, 19_900, 500),
        tickets.id,
    )
    .await
    .map_err(|e| failed("product", e))?;
    let day = create(
        product("Day pass", ProductKind::Admission, 8_900, 300),
        tickets.id,
    )
    .await
    .map_err(|e| failed("product", e))?;
    let workshop = create(
        product("Workshop: fast chargers", ProductKind::Addon, 4_900, 40),
        extras.id,
    )
    .await
    .map_err(|e| failed("product", e))?;
    let admissions = catalog::create_quota(
        db,
        by,
        now,
        event.id,
        catalog::QuotaInput {
            name: "All admissions".to_owned(),
            size: Some(700),
            sub_event_id: None,
            product_ids: vec![full.id, day.id],
            variation_ids: Vec::new(),
        },
    )
    .await
    .map_err(|e| failed("quota", e))?;
    // Each full pass may take one workshop, and every pass is asked its
    // T-shirt size.
    super::addons::create_rule(db, by, now, full.id, extras.id, (0, 1), 0)
        .await
        .map_err(|e| failed("add-on rule", e))?;
    let size = super::questions::create(
        db,
        by,
        now,
        event.id,
        super::questions::QuestionInput {
            question: "T-shirt size".to_owned(),
            question_type: crate::entities::question::QuestionType::Choice,
            required: false,
            product_ids: vec![full.id, day.id],
            ask_during_checkin: false,
            hidden: false,
            identifier: Some("tshirt".to_owned()),
            dependency_question_id: None,
            dependency_values: Vec::new(),
            options: vec!["S".to_owned(), "M".to_owned(), "L".to_owned()],
            position: 0,
        },
    )
    .await
    .map_err(|e| failed("question", e))?;
    // The venue confirmed fewer seats: the quota is resized (an edit in the log).
    catalog_edits::update_quota(
        db,
        by,
        now,
        admissions.id,
        QuotaPatch {
            size: Some(Some(650)),
            ..QuotaPatch::default()
        },
    )
    .await
    .map_err(|e| failed("quota change", e))?;
    let discount = vouchers::create(
        db,
        by,
        now,
        event.id,
        VoucherInput {
            max_usages: 10,
            min_usages: 1,
            valid_from: None,
            valid_until: Some(now + TimeDelta::days(29)),
            active: true,
            price_mode: PriceMode::Percent,
            value_minor: None,
            percent_bp: Some(2_500),
            applies: Applies {
                product_ids: vec![full.id],
                ..Applies::default()
            },
            show_hidden_items: false,
            block_quota: false,
            allow_ignore_quota: false,
            tag: Some("speakers".to_owned()),
            comment: "25 % off the full pass".to_owned(),
        },
        vec!["SPEAKER25".to_owned(), "PRESS25".to_owned()],
        None,
    )
    .await
    .map_err(|e| failed("vouchers", e))?;
    // Seats kept for invited guests: the quota counts them as reserved.
    let guests = vouchers::create(
        db,
        by,
        now,
        event.id,
        VoucherInput {
            max_usages: 2,
            min_usages: 1,
            valid_from: None,
            valid_until: Some(now + TimeDelta::days(29)),
            active: true,
            price_mode: PriceMode::Complimentary,
            value_minor: None,
            percent_bp: None,
            applies: Applies {
                product_ids: vec![full.id],
                ..Applies::default()
            },
            show_hidden_items: false,
            block_quota: true,
            allow_ignore_quota: false,
            tag: Some("guests".to_owned()),
            comment: "two seats kept for invited guests".to_owned(),
        },
        vec!["GUEST2".to_owned()],
        None,
    )
    .await
    .map_err(|e| failed("blocking voucher", e))?;

    let baskets: [(&str, &[Line<'_>], bool); 4] = [
        (
            "ada@demo.voltgate.invalid",
            &[(full.id, 2, None), (workshop.id, 1, None)],
            true,
        ),
        ("grace@demo.voltgate.invalid", &[(day.id, 3, None)], true),
        (
            "linus@demo.voltgate.invalid",
            &[(full.id, 1, Some("SPEAKER25"))],
            true,
        ),
        ("ken@demo.voltgate.invalid", &[(day.id, 1, None)], false),
    ];
    let buyer = Principal::Anonymous;
    let mut ticket_secrets = Vec::new();
    for (email, lines, paid) in baskets {
        let mut cart = None;
        let mut first_ticket = None;
        for &(product_id, quantity, voucher) in lines {
            let (id, added) = carts::add(
                db,
                &buyer,
                now,
                CartAdd {
                    cart_id: cart.clone(),
                    product_id,
                    variation_id: None,
                    sub_event_id: None,
                    quantity,
                    voucher_code: voucher.map(str::to_owned),
                    // The workshop rides on the basket's first ticket.
                    addon_to: first_ticket.filter(|_| product_id == workshop.id),
                },
            )
            .await
            .map_err(|e| failed("cart", e))?;
            if first_ticket.is_none()
                && let Some(ticket) = added.first()
            {
                let answer = super::questions::AnswerInput {
                    question_id: size.id,
                    value: Some("M".to_owned()),
                    values: None,
                };
                super::questions::set_cart_answers(db, &id, ticket.id, &[answer])
                    .await
                    .map_err(|e| failed("answers", e))?;
                first_ticket = Some(ticket.id);
            }
            cart = Some(id);
        }
        let cart = cart.unwrap_or_default();
        let (order, positions) = orders::checkout(db, &buyer, now, &cart, email, None)
            .await
            .map_err(|e| failed("checkout", e))?;
        if paid && email.starts_with("ada@") {
            // Paid the way a buyer pays: through a provider (the built-in test
            // one, settled by the team).
            let started = providers::service::start(
                db,
                &providers::Providers::default(),
                now,
                &buyer,
                providers::service::StartPayment {
                    event_id: event.id,
                    code: order.code.clone(),
                    secret: Some(order.secret.clone()),
                    provider: providers::test_provider::NAME.to_owned(),
                },
            )
            .await
            .map_err(|e| failed("provider payment", e))?;
            providers::service::simulate_test_payment(
                db,
                by,
                now,
                started.payment.id,
                providers::Outcome::Succeeded,
            )
            .await
            .map_err(|e| failed("provider payment", e))?;
            ticket_secrets.extend(admission_secrets(&positions, &[full.id, day.id]));
        } else if paid {
            orders::mark_paid(db, by, now, order.id)
                .await
                .map_err(|e| failed("payment", e))?;
            ticket_secrets.extend(admission_secrets(&positions, &[full.id, day.id]));
        }
    }
    Ok(Some(DemoTicketing {
        event_id: event.id,
        event_name: event.name,
        admin,
        door_staff,
        voucher_codes: discount.into_iter().chain(guests).map(|v| v.code).collect(),
        orders: baskets.len(),
        ticket_secrets,
    }))
}

fn admission_secrets(positions: &[order_position::Model], admissions: &[i32]) -> Vec<String> {
    positions
        .iter()
        .filter(|p| admissions.contains(&p.product_id))
        .map(|p| p.secret.clone())
        .collect()
}
