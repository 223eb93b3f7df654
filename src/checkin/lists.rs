//! Check-in lists: which tickets a door admits and its re-entry rules, and
//! the status of a list (checked in and inside now, per product). Changes are
//! made by team members with the check-in permission and written to the
//! ticketing audit log in their own transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde_json::json;

use super::access;
use crate::auth::Principal;
use crate::entities::order::OrderStatus;
use crate::entities::{
    checkin_list, checkin_list_product, order, order_position, product, sub_event,
};
use crate::error::AppError;
use crate::ticketing::access::Actor;
use crate::ticketing::audit::{self, Change};
use crate::ticketing::organizers::parse_name;

/// Most questions a list asks at entry.
const MAX_QUESTIONS: usize = 10;

/// A list's settings; `None` keeps the current value on update.
#[derive(Debug, Default, Clone)]
pub struct ListInput {
    pub name: Option<String>,
    /// `Some(ids)` admits only those products; `Some([])` on update admits all.
    pub product_ids: Option<Vec<i32>>,
    /// `Some(None)` admits every date.
    pub sub_event_id: Option<Option<i32>>,
    pub include_pending: Option<bool>,
    pub allow_multiple_entries: Option<bool>,
    pub allow_entry_after_exit: Option<bool>,
    pub questions: Option<Vec<String>>,
}

/// Creates a check-in list of `event_id`.
///
/// # Errors
/// `BAD_USER_INPUT` on a bad name, a product or date of another event, or bad
/// questions; as [`access::manage`].
pub async fn create(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: ListInput,
) -> Result<(checkin_list::Model, Vec<i32>), AppError> {
    let txn = db.begin().await?;
    let (event, actor) = access::manage(&txn, principal, event_id).await?;
    let name = parse_name(input.name.as_deref().unwrap_or_default())?;
    let products = input.product_ids.unwrap_or_default();
    check_products(&txn, event.id, &products).await?;
    let sub_event_id = input.sub_event_id.flatten();
    check_sub_event(&txn, event.id, sub_event_id).await?;
    let questions = parse_questions(input.questions.unwrap_or_default())?;
    let list = checkin_list::ActiveModel {
        event_id: Set(event.id),
        sub_event_id: Set(sub_event_id),
        name: Set(name),
        all_products: Set(products.is_empty()),
        include_pending: Set(input.include_pending.unwrap_or(false)),
        allow_multiple_entries: Set(input.allow_multiple_entries.unwrap_or(false)),
        allow_entry_after_exit: Set(input.allow_entry_after_exit.unwrap_or(true)),
        questions: Set(questions),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    set_products(&txn, list.id, &products, now).await?;
    log(
        &txn,
        actor,
        now,
        event.organizer_id,
        &list,
        "voltgate.checkinlist.added",
    )
    .await?;
    txn.commit().await?;
    Ok((list, products))
}

/// Changes a check-in list.
///
/// # Errors
/// `NOT_FOUND` for staff when the list does not exist; as [`create`].
pub async fn update(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    list_id: i32,
    input: ListInput,
) -> Result<(checkin_list::Model, Vec<i32>), AppError> {
    let txn = db.begin().await?;
    let (list, actor, organizer_id) = for_change(&txn, principal, list_id).await?;
    let mut row: checkin_list::ActiveModel = list.clone().into();
    if let Some(name) = &input.name {
        row.name = Set(parse_name(name)?);
    }
    if let Some(products) = &input.product_ids {
        check_products(&txn, list.event_id, products).await?;
        row.all_products = Set(products.is_empty());
    }
    if let Some(sub_event_id) = input.sub_event_id {
        check_sub_event(&txn, list.event_id, sub_event_id).await?;
        row.sub_event_id = Set(sub_event_id);
    }
    if let Some(flag) = input.include_pending {
        row.include_pending = Set(flag);
    }
    if let Some(flag) = input.allow_multiple_entries {
        row.allow_multiple_entries = Set(flag);
    }
    if let Some(flag) = input.allow_entry_after_exit {
        row.allow_entry_after_exit = Set(flag);
    }
    if let Some(questions) = input.questions {
        row.questions = Set(parse_questions(questions)?);
    }
    row.updated_at = Set(now);
    let list = row.update(&txn).await?;
    if let Some(products) = &input.product_ids {
        checkin_list_product::Entity::delete_many()
            .filter(checkin_list_product::Column::ListId.eq(list.id))
            .exec(&txn)
            .await?;
        set_products(&txn, list.id, products, now).await?;
    }
    log(
        &txn,
        actor,
        now,
        organizer_id,
        &list,
        "voltgate.checkinlist.changed",
    )
    .await?;
    let products = products_of(&txn, list.id).await?;
    txn.commit().await?;
    Ok((list, products))
}

/// Deletes a check-in list with its scans and states.
///
/// # Errors
/// As [`update`].
pub async fn delete(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    list_id: i32,
) -> Result<(), AppError> {
    let txn = db.begin().await?;
    let (list, actor, organizer_id) = for_change(&txn, principal, list_id).await?;
    checkin_list::Entity::delete_by_id(list.id)
        .exec(&txn)
        .await?;
    log(
        &txn,
        actor,
        now,
        organizer_id,
        &list,
        "voltgate.checkinlist.deleted",
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// The lists of `event_id`, oldest first, for whoever works its doors.
///
/// # Errors
/// As [`access::door`].
pub async fn of_event(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<Vec<checkin_list::Model>, AppError> {
    access::door(db, principal, event_id).await?;
    Ok(checkin_list::Entity::find()
        .filter(checkin_list::Column::EventId.eq(event_id))
        .order_by_asc(checkin_list::Column::Id)
        .all(db)
        .await?)
}

/// One list, for whoever works its event's doors.
///
/// # Errors
/// `NOT_FOUND` when it does not exist or the caller may not see it.
pub async fn get(
    db: &impl ConnectionTrait,
    principal: &Principal,
    list_id: i32,
) -> Result<checkin_list::Model, AppError> {
    let Some(list) = checkin_list::Entity::find_by_id(list_id).one(db).await? else {
        // Refused as anyone would be who may not work a door, before saying
        // that the list does not exist.
        let event_id = match principal {
            Principal::Scanner(scanner) => scanner.event_id,
            _ => 0,
        };
        access::door(db, principal, event_id).await?;
        return Err(AppError::not_found("check-in list"));
    };
    match access::door(db, principal, list.event_id).await {
        Ok(_) => Ok(list),
        Err(AppError::Forbidden) => Err(AppError::not_found("check-in list")),
        Err(err) => Err(err),
    }
}

/// The products a list admits (empty: all).
///
/// # Errors
/// On database errors.
pub async fn products_of(db: &impl ConnectionTrait, list_id: i32) -> Result<Vec<i32>, AppError> {
    Ok(checkin_list_product::Entity::find()
        .select_only()
        .column(checkin_list_product::Column::ProductId)
        .filter(checkin_list_product::Column::ListId.eq(list_id))
        .order_by_asc(checkin_list_product::Column::ProductId)
        .into_tuple()
        .all(db)
        .await?)
}

/// A product's figures on a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductStatus {
    pub product_id: i32,
    /// Valid tickets the list admits.
    pub positions: i64,
    /// Tickets entered at least once.
    pub checked_in: i64,
    /// Tickets inside now.
    pub inside: i64,
}

/// Checked-in and inside-now counts of a list, per product it admits.
///
/// # Errors
/// On database errors.
pub async fn status(
    db: &impl ConnectionTrait,
    list: &checkin_list::Model,
) -> Result<Vec<ProductStatus>, AppError> {
    // A list of chosen products counts those (add-ons and goods too); a list
    // of all products counts the admission ones.
    let products = if list.all_products {
        product::Entity::find()
            .select_only()
            .column(product::Column::Id)
            .filter(product::Column::EventId.eq(list.event_id))
            .filter(product::Column::Admission.eq(true))
            .order_by_asc(product::Column::Position)
            .order_by_asc(product::Column::Id)
            .into_tuple::<i32>()
            .all(db)
            .await?
    } else {
        products_of(db, list.id).await?
    };
    let mut figures: BTreeMap<i32, ProductStatus> = products
        .iter()
        .map(|&product_id| {
            (
                product_id,
                ProductStatus {
                    product_id,
                    ..ProductStatus::default()
                },
            )
        })
        .collect();
    let mut statuses = vec![OrderStatus::Paid];
    if list.include_pending {
        statuses.push(OrderStatus::Pending);
    }
    let mut valid = order_position::Entity::find()
        .select_only()
        .column(order_position::Column::ProductId)
        .column_as(order_position::Column::Id.count(), "n")
        .filter(order_position::Column::Canceled.eq(false))
        .filter(
            order_position::Column::OrderId.in_subquery(
                Query::select()
                    .column(order::Column::Id)
                    .from(order::Entity)
                    .and_where(Expr::col(order::Column::EventId).eq(list.event_id))
                    .and_where(Expr::col(order::Column::Status).is_in(statuses))
                    .to_owned(),
            ),
        )
        .group_by(order_position::Column::ProductId);
    if let Some(date) = list.sub_event_id {
        valid = valid.filter(order_position::Column::SubEventId.eq(date));
    }
    for (product_id, n) in valid.into_tuple::<(i32, i64)>().all(db).await? {
        if let Some(f) = figures.get_mut(&product_id) {
            f.positions = n;
        }
    }
    let counts = super::live::of_list(db, list.id, None).await?;
    for counted in counts {
        if let Some(f) = figures.get_mut(&counted.product_id) {
            f.checked_in = counted.checked_in;
            f.inside = counted.inside;
        }
    }
    Ok(figures.into_values().collect())
}

async fn for_change(
    db: &impl ConnectionTrait,
    principal: &Principal,
    list_id: i32,
) -> Result<(checkin_list::Model, Actor, i32), AppError> {
    let list = checkin_list::Entity::find_by_id(list_id).one(db).await?;
    // A list that does not exist is refused like one of another organizer.
    let event_id = list.as_ref().map_or(0, |l| l.event_id);
    let (event, actor) = access::manage(db, principal, event_id).await?;
    let list = list.ok_or(AppError::not_found("check-in list"))?;
    Ok((list, actor, event.organizer_id))
}

async fn check_products(
    db: &impl ConnectionTrait,
    event_id: i32,
    products: &[i32],
) -> Result<(), AppError> {
    if products.is_empty() {
        return Ok(());
    }
    let found = product::Entity::find()
        .filter(product::Column::Id.is_in(products.to_vec()))
        .filter(product::Column::EventId.eq(event_id))
        .count(db)
        .await?;
    let distinct: std::collections::BTreeSet<_> = products.iter().collect();
    if usize::try_from(found).ok() != Some(distinct.len()) {
        return Err(AppError::bad_input(
            "productIds",
            "every product must belong to the list's event",
        ));
    }
    Ok(())
}

async fn check_sub_event(
    db: &impl ConnectionTrait,
    event_id: i32,
    sub_event_id: Option<i32>,
) -> Result<(), AppError> {
    let Some(id) = sub_event_id else {
        return Ok(());
    };
    let found = sub_event::Entity::find_by_id(id).one(db).await?;
    if found.is_none_or(|d| d.event_id != event_id) {
        return Err(AppError::bad_input(
            "subEventId",
            "the date must belong to the list's event",
        ));
    }
    Ok(())
}

fn parse_questions(questions: Vec<String>) -> Result<String, AppError> {
    let questions: Vec<String> = questions.into_iter().map(|q| q.trim().to_owned()).collect();
    let ok = questions.len() <= MAX_QUESTIONS
        && questions
            .iter()
            .all(|q| !q.is_empty() && q.chars().count() <= 200);
    if !ok {
        return Err(AppError::bad_input(
            "questions",
            format!("up to {MAX_QUESTIONS} questions of 1 to 200 characters"),
        ));
    }
    Ok(serde_json::to_string(&questions).unwrap_or_else(|_| "[]".to_owned()))
}

async fn set_products(
    db: &impl ConnectionTrait,
    list_id: i32,
    products: &[i32],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let distinct: std::collections::BTreeSet<i32> = products.iter().copied().collect();
    if distinct.is_empty() {
        return Ok(());
    }
    checkin_list_product::Entity::insert_many(distinct.into_iter().map(|product_id| {
        checkin_list_product::ActiveModel {
            list_id: Set(list_id),
            product_id: Set(product_id),
            added_at: Set(now),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

async fn log(
    db: &impl ConnectionTrait,
    actor: Actor,
    now: DateTime<Utc>,
    organizer_id: i32,
    list: &checkin_list::Model,
    action: &str,
) -> Result<(), AppError> {
    audit::record(
        db,
        Some(actor),
        now,
        Change {
            organizer_id,
            event_id: Some(list.event_id),
            action,
            object_type: "checkinlist",
            object_id: list.id,
            data: json!({
                "name": list.name,
                "all_products": list.all_products,
                "sub_event": list.sub_event_id,
                "include_pending": list.include_pending,
                "allow_multiple_entries": list.allow_multiple_entries,
                "allow_entry_after_exit": list.allow_entry_after_exit,
            }),
        },
    )
    .await
}

/// The scans recorded on a list, oldest first (accepted, rejected and forced).
///
/// # Errors
/// As [`get`].
pub async fn history(
    db: &impl ConnectionTrait,
    principal: &Principal,
    list_id: i32,
    page: crate::pagination::PageRequest,
) -> Result<crate::pagination::Page<crate::entities::checkin::Model>, AppError> {
    use crate::entities::checkin;
    let list = get(db, principal, list_id).await?;
    crate::db::page_by_id(
        db,
        checkin::Entity::find().filter(checkin::Column::ListId.eq(list.id)),
        checkin::Column::Id,
        page,
    )
    .await
}
