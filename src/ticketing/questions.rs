//! Questions and answers (pretix `Question`, `QuestionAnswer`): an event asks
//! questions for some of its products; buyers answer them on their cart
//! positions, checkout copies the answers to the order positions, and the
//! team reads and changes them there.
//!
//! Questions change with the team permission `ChangeItems`, an order
//! position's answers with `ChangeOrders`; every team change is in the audit
//! log. A question applies to a position when it is asked for the position's
//! product and, if it depends on another question, that question applies and
//! its answer is one of `dependency_values`. Checkout refuses a cart where a
//! required question that applies (and that buyers are asked: not hidden, not
//! asked at check-in) is unanswered. The checks of a checkout read the
//! questions and answers of all its positions at once.
//!
//! After checkout, buyers (the order's account, or anyone with the order's
//! code and secret) change their answers as at checkout while the order is
//! pending or paid and until the event's last date of modifications
//! ([`answers_deadline`]). The door asks the questions marked
//! `ask_during_checkin` that a ticket has not answered ([`at_the_door`]); the
//! check-in domain stores the answers when it admits the ticket.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use serde_json::json;

use super::audit::{Audited, Change};
use crate::auth::{Principal, TeamPermission};
use crate::entities::order::OrderStatus;
use crate::entities::question::QuestionType;
use crate::entities::{
    cart_position, event, order, order_position, product, question, question_answer,
    question_product, sub_event,
};
use crate::error::{AppError, Reason};

/// The longest question text, in characters.
pub const QUESTION_MAX: usize = 1000;
/// The longest one-line answer or option, in characters.
pub const LINE_MAX: usize = 1000;
/// The longest multi-line answer, in characters.
pub const TEXT_MAX: usize = 10_000;
/// The most options of a choice question.
pub const OPTIONS_MAX: usize = 100;

/// What a question is created with.
#[derive(Debug, Clone)]
pub struct QuestionInput {
    pub question: String,
    pub question_type: QuestionType,
    pub required: bool,
    pub product_ids: Vec<i32>,
    pub ask_during_checkin: bool,
    pub hidden: bool,
    /// Generated when not given.
    pub identifier: Option<String>,
    pub dependency_question_id: Option<i32>,
    pub dependency_values: Vec<String>,
    pub options: Vec<String>,
    pub position: i32,
}

/// A change of a question; what is `None` is kept. A dependency is replaced
/// by `Some(Some(..))` and removed by `Some(None)`.
#[derive(Debug, Clone, Default)]
pub struct QuestionChange {
    pub question: Option<String>,
    pub required: Option<bool>,
    pub product_ids: Option<Vec<i32>>,
    pub ask_during_checkin: Option<bool>,
    pub hidden: Option<bool>,
    pub identifier: Option<String>,
    pub dependency: Option<Option<(i32, Vec<String>)>>,
    pub options: Option<Vec<String>>,
    pub position: Option<i32>,
}

fn parse_question(text: &str) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > QUESTION_MAX {
        return Err(AppError::bad_input("question", "1 to 1000 characters"));
    }
    Ok(text.to_owned())
}

/// pretix's identifier rule: letters, digits, `.`, `-` and `_`.
fn parse_identifier(identifier: &str) -> Result<String, AppError> {
    let ok = (1..=190).contains(&identifier.len())
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(identifier.to_owned())
    } else {
        Err(AppError::bad_input(
            "identifier",
            "1 to 190 letters, digits, dots, dashes and underscores",
        ))
    }
}

/// A random identifier, as pretix makes one: eight capitals and digits.
fn generated_identifier() -> Result<String, AppError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0_u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

fn is_choice(kind: QuestionType) -> bool {
    matches!(kind, QuestionType::Choice | QuestionType::ChoiceMultiple)
}

fn parse_options(kind: QuestionType, options: Vec<String>) -> Result<Vec<String>, AppError> {
    let options: Vec<String> = options.into_iter().map(|o| o.trim().to_owned()).collect();
    if !is_choice(kind) {
        return if options.is_empty() {
            Ok(options)
        } else {
            Err(AppError::bad_input(
                "options",
                "only choice questions have options",
            ))
        };
    }
    let distinct: HashSet<&String> = options.iter().collect();
    let ok = !options.is_empty()
        && options.len() <= OPTIONS_MAX
        && distinct.len() == options.len()
        && options
            .iter()
            .all(|o| !o.is_empty() && o.chars().count() <= 200);
    if ok {
        Ok(options)
    } else {
        Err(AppError::bad_input(
            "options",
            "1 to 100 distinct options of 1 to 200 characters",
        ))
    }
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn taken(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::Conflict("the event has a question with this identifier already".to_owned())
        }
        _ => AppError::from(err),
    }
}

/// Checks the products belong to `event_id` and returns them without duplicates.
async fn event_products(
    db: &impl ConnectionTrait,
    event_id: i32,
    ids: &[i32],
) -> Result<Vec<i32>, AppError> {
    let wanted: HashSet<i32> = ids.iter().copied().collect();
    let found = product::Entity::find()
        .filter(product::Column::Id.is_in(wanted.iter().copied()))
        .filter(product::Column::EventId.eq(event_id))
        .all(db)
        .await?;
    if found.len() != wanted.len() {
        return Err(AppError::bad_input(
            "productIds",
            "no such product in this event",
        ));
    }
    let mut ids: Vec<i32> = wanted.into_iter().collect();
    ids.sort_unstable();
    Ok(ids)
}

async fn link_products(
    db: &impl ConnectionTrait,
    question_id: i32,
    product_ids: &[i32],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    question_product::Entity::delete_many()
        .filter(question_product::Column::QuestionId.eq(question_id))
        .exec(db)
        .await?;
    if product_ids.is_empty() {
        return Ok(());
    }
    question_product::Entity::insert_many(product_ids.iter().map(|id| {
        question_product::ActiveModel {
            question_id: Set(question_id),
            product_id: Set(*id),
            added_at: Set(now),
        }
    }))
    .exec(db)
    .await?;
    Ok(())
}

/// Checks a dependency of `question_id` (`None` for a new question) on
/// `on`: a question of the same event, without a cycle, with values its
/// answers can take.
async fn check_dependency(
    db: &impl ConnectionTrait,
    event_id: i32,
    question_id: Option<i32>,
    on: i32,
    values: &[String],
) -> Result<(), AppError> {
    let questions: HashMap<i32, question::Model> = question::Entity::find()
        .filter(question::Column::EventId.eq(event_id))
        .all(db)
        .await?
        .into_iter()
        .map(|q| (q.id, q))
        .collect();
    let Some(target) = questions.get(&on) else {
        return Err(AppError::bad_input(
            "dependencyQuestionId",
            "no such question in this event",
        ));
    };
    // Following the chain from the question depended on must never come back.
    let mut seen = HashSet::new();
    let mut next = Some(on);
    while let Some(id) = next {
        if Some(id) == question_id || !seen.insert(id) {
            return Err(AppError::bad_input(
                "dependencyQuestionId",
                "the dependencies would go round in a circle",
            ));
        }
        next = questions.get(&id).and_then(|q| q.dependency_question_id);
    }
    if values.is_empty() {
        return Err(AppError::bad_input(
            "dependencyValues",
            "give the answers the question depends on",
        ));
    }
    let valid = match target.question_type {
        QuestionType::Boolean => values.iter().all(|v| v == "True" || v == "False"),
        QuestionType::Choice | QuestionType::ChoiceMultiple => {
            let options = target.options();
            values.iter().all(|v| options.contains(v))
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(AppError::bad_input(
            "dependencyValues",
            "a question may depend on a yes/no question (True, False) or on options of a choice question",
        ))
    }
}

/// Creates a question for the event's products (team permission `ChangeItems`).
///
/// # Errors
/// `BAD_USER_INPUT` on bad members, products or a dependency of another
/// event, or a dependency cycle; `CONFLICT` when the identifier is taken; as
/// [`super::access::on_event`].
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    event_id: i32,
    input: QuestionInput,
) -> Result<question::Model, AppError> {
    let (change, event) =
        Audited::on_event(db, principal, now, TeamPermission::ChangeItems, event_id).await?;
    let txn = change.txn();
    let text = parse_question(&input.question)?;
    let identifier = match &input.identifier {
        Some(identifier) => parse_identifier(identifier)?,
        None => generated_identifier()?,
    };
    let options = parse_options(input.question_type, input.options)?;
    let products = event_products(txn, event.id, &input.product_ids).await?;
    if let Some(on) = input.dependency_question_id {
        check_dependency(txn, event.id, None, on, &input.dependency_values).await?;
    }
    let row = question::ActiveModel {
        event_id: Set(event.id),
        question: Set(text),
        question_type: Set(input.question_type),
        required: Set(input.required),
        ask_during_checkin: Set(input.ask_during_checkin),
        hidden: Set(input.hidden),
        identifier: Set(identifier),
        dependency_question_id: Set(input.dependency_question_id),
        dependency_values: Set(to_json(if input.dependency_question_id.is_some() {
            &input.dependency_values
        } else {
            &[]
        })),
        options: Set(to_json(&options)),
        position: Set(input.position),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(taken)?;
    link_products(txn, row.id, &products, now).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.question.added",
            "question",
            row.id,
            json!({ "question": row.question, "type": row.question_type, "identifier": row.identifier, "products": products }),
        ))
        .await?;
    Ok(row)
}

/// Opens a change of question `question_id`: one that does not exist is
/// refused like one the caller may not change.
async fn question_for_change(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    question_id: i32,
) -> Result<(Audited, question::Model, event::Model), AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let row = question::Entity::find_by_id(question_id)
        .one(change.txn())
        .await?;
    let (event, row) = change
        .check_found(
            principal,
            TeamPermission::ChangeItems,
            row,
            |q| q.event_id,
            "question",
        )
        .await?;
    Ok((change, row, event))
}

/// Changes a question (team permission `ChangeItems`); its type stays.
///
/// # Errors
/// As [`create`]; `NOT_FOUND` for staff on an unknown question.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    question_id: i32,
    input: QuestionChange,
) -> Result<question::Model, AppError> {
    let (change, current, event) = question_for_change(db, principal, now, question_id).await?;
    let txn = change.txn();
    let kind = current.question_type;
    let mut row: question::ActiveModel = current.clone().into();
    if let Some(text) = &input.question {
        row.question = Set(parse_question(text)?);
    }
    if let Some(identifier) = &input.identifier {
        row.identifier = Set(parse_identifier(identifier)?);
    }
    if let Some(options) = input.options.clone() {
        row.options = Set(to_json(&parse_options(kind, options)?));
    }
    if let Some(required) = input.required {
        row.required = Set(required);
    }
    if let Some(ask) = input.ask_during_checkin {
        row.ask_during_checkin = Set(ask);
    }
    if let Some(hidden) = input.hidden {
        row.hidden = Set(hidden);
    }
    if let Some(position) = input.position {
        row.position = Set(position);
    }
    match &input.dependency {
        Some(Some((on, values))) => {
            check_dependency(txn, event.id, Some(current.id), *on, values).await?;
            row.dependency_question_id = Set(Some(*on));
            row.dependency_values = Set(to_json(values));
        }
        Some(None) => {
            row.dependency_question_id = Set(None);
            row.dependency_values = Set("[]".to_owned());
        }
        None => {}
    }
    let products = match &input.product_ids {
        Some(ids) => Some(event_products(txn, event.id, ids).await?),
        None => None,
    };
    let row = row.update(txn).await.map_err(taken)?;
    if let Some(products) = &products {
        link_products(txn, row.id, products, now).await?;
    }
    change
        .commit(Change::on_event(
            &event,
            "voltgate.question.changed",
            "question",
            row.id,
            json!({
                "question": input.question, "identifier": input.identifier,
                "required": input.required, "hidden": input.hidden,
                "ask_during_checkin": input.ask_during_checkin, "position": input.position,
                "options": input.options, "products": products,
                "dependency": input.dependency.map(|d| d.map(|(on, values)| json!({ "question": on, "values": values }))),
            }),
        ))
        .await?;
    Ok(row)
}

/// Deletes a question and its answers (team permission `ChangeItems`);
/// questions that depended on it no longer depend on anything.
///
/// # Errors
/// As [`update`].
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    now: DateTime<Utc>,
    question_id: i32,
) -> Result<question::Model, AppError> {
    let (change, row, event) = question_for_change(db, principal, now, question_id).await?;
    let txn = change.txn();
    question::Entity::update_many()
        .col_expr(
            question::Column::DependencyQuestionId,
            sea_orm::sea_query::Expr::value(Option::<i32>::None),
        )
        .col_expr(
            question::Column::DependencyValues,
            sea_orm::sea_query::Expr::value("[]"),
        )
        .filter(question::Column::DependencyQuestionId.eq(row.id))
        .exec(txn)
        .await?;
    // The foreign keys cascade too; deleting here does not depend on them.
    let answers = question_answer::Entity::delete_many()
        .filter(question_answer::Column::QuestionId.eq(row.id))
        .exec(txn)
        .await?
        .rows_affected;
    question_product::Entity::delete_many()
        .filter(question_product::Column::QuestionId.eq(row.id))
        .exec(txn)
        .await?;
    question::Entity::delete_by_id(row.id).exec(txn).await?;
    change
        .commit(Change::on_event(
            &event,
            "voltgate.question.deleted",
            "question",
            row.id,
            json!({ "identifier": row.identifier, "answers": answers }),
        ))
        .await?;
    Ok(row)
}

/// An event's questions in order (position, then id), with the products each
/// is asked for; hidden ones only when `with_hidden`.
///
/// # Errors
/// On database errors.
pub async fn of_event(
    db: &impl ConnectionTrait,
    event_id: i32,
    with_hidden: bool,
) -> Result<Vec<(question::Model, Vec<i32>)>, AppError> {
    let mut query = question::Entity::find().filter(question::Column::EventId.eq(event_id));
    if !with_hidden {
        query = query.filter(question::Column::Hidden.eq(false));
    }
    let rows = query
        .order_by_asc(question::Column::Position)
        .order_by_asc(question::Column::Id)
        .all(db)
        .await?;
    let mut products = products_of(db, rows.iter().map(|q| q.id)).await?;
    Ok(rows
        .into_iter()
        .map(|q| {
            let ids = products.remove(&q.id).unwrap_or_default();
            (q, ids)
        })
        .collect())
}

/// Whether the caller sees an event's hidden questions: teams with
/// `ChangeItems` or `ViewOrders` do.
///
/// # Errors
/// On database errors.
pub async fn sees_hidden(
    db: &impl ConnectionTrait,
    principal: &Principal,
    event_id: i32,
) -> Result<bool, AppError> {
    if matches!(principal, Principal::Anonymous) {
        return Ok(false);
    }
    for permission in [TeamPermission::ChangeItems, TeamPermission::ViewOrders] {
        match super::access::on_event(db, principal, permission, event_id).await {
            Ok(_) => return Ok(true),
            Err(AppError::Internal(err)) => return Err(AppError::Internal(err)),
            Err(_) => {}
        }
    }
    Ok(false)
}

/// The products each question is asked for.
///
/// # Errors
/// On database errors.
pub async fn products_of(
    db: &impl ConnectionTrait,
    question_ids: impl IntoIterator<Item = i32>,
) -> Result<HashMap<i32, Vec<i32>>, AppError> {
    let mut products: HashMap<i32, Vec<i32>> = HashMap::new();
    for link in question_product::Entity::find()
        .filter(question_product::Column::QuestionId.is_in(question_ids))
        .order_by_asc(question_product::Column::ProductId)
        .all(db)
        .await?
    {
        products
            .entry(link.question_id)
            .or_default()
            .push(link.product_id);
    }
    Ok(products)
}

/// An answer as given: one value, or several for a multiple choice question.
/// Nothing given removes the answer.
#[derive(Debug, Clone, Default)]
pub struct AnswerInput {
    pub question_id: i32,
    pub value: Option<String>,
    pub values: Option<Vec<String>>,
}

fn wrong(question: &question::Model, what: &str) -> AppError {
    AppError::bad_input("answers", format!("{}: {what}", question.question))
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.len() <= 30
        && fraction.len() <= 10
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty())
}

fn is_email(text: &str) -> bool {
    text.len() <= 254
        && !text.contains(char::is_whitespace)
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

/// A phone number in international form: `+`, then 7 to 15 digits (spaces,
/// dashes, dots and parentheses between them are dropped).
fn phone_number(text: &str) -> Option<String> {
    let rest = text.strip_prefix('+')?;
    let mut digits = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !" -.()".contains(c) {
            return None;
        }
    }
    (7..=15)
        .contains(&digits.len())
        .then(|| format!("+{digits}"))
}

/// The stored form of an answer to `question`, or `None` when nothing is
/// given (the answer is removed).
///
/// # Errors
/// `BAD_USER_INPUT` on `answers`, naming the question, when the answer does
/// not fit the question's type.
pub fn normalize(
    question: &question::Model,
    value: Option<&str>,
    values: Option<&[String]>,
) -> Result<Option<String>, AppError> {
    if question.question_type == QuestionType::ChoiceMultiple {
        let chosen: Vec<String> = match (values, value) {
            (Some(values), _) => values.iter().map(|v| v.trim().to_owned()).collect(),
            (None, Some(value)) if !value.trim().is_empty() => vec![value.trim().to_owned()],
            _ => Vec::new(),
        };
        if chosen.is_empty() {
            return Ok(None);
        }
        let options = question.options();
        if let Some(unknown) = chosen.iter().find(|c| !options.contains(c)) {
            return Err(wrong(question, &format!("{unknown} is not an option")));
        }
        // In the options' order, each once.
        let picked: Vec<String> = options.into_iter().filter(|o| chosen.contains(o)).collect();
        return Ok(Some(to_json(&picked)));
    }
    if values.is_some() {
        return Err(wrong(question, "takes one value"));
    }
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let stored = match question.question_type {
        QuestionType::Number => {
            if !is_number(value) {
                return Err(wrong(question, "not a number"));
            }
            value.to_owned()
        }
        QuestionType::String => {
            if value.chars().count() > LINE_MAX || value.contains('\n') {
                return Err(wrong(question, "one line of at most 1000 characters"));
            }
            value.to_owned()
        }
        QuestionType::Text => {
            if value.chars().count() > TEXT_MAX {
                return Err(wrong(question, "at most 10000 characters"));
            }
            value.to_owned()
        }
        QuestionType::Boolean => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" => "True".to_owned(),
            "false" | "no" => "False".to_owned(),
            _ => return Err(wrong(question, "true or false")),
        },
        QuestionType::Choice => {
            if !question.options().iter().any(|o| o == value) {
                return Err(wrong(question, &format!("{value} is not an option")));
            }
            value.to_owned()
        }
        QuestionType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_err(|_| wrong(question, "a date such as 2027-06-01"))?
            .format("%Y-%m-%d")
            .to_string(),
        QuestionType::Time => NaiveTime::parse_from_str(value, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(value, "%H:%M:%S"))
            .map_err(|_| wrong(question, "a time such as 18:30"))?
            .format("%H:%M")
            .to_string(),
        QuestionType::DateTime => DateTime::parse_from_rfc3339(value)
            .map_err(|_| wrong(question, "an RFC 3339 date and time"))?
            .with_timezone(&Utc)
            .to_rfc3339(),
        QuestionType::CountryCode => {
            let code = value.to_ascii_uppercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(wrong(question, "an ISO 3166-1 alpha-2 code such as DE"));
            }
            code
        }
        QuestionType::PhoneNumber => phone_number(value)
            .ok_or_else(|| wrong(question, "an international number such as +49 30 1234567"))?,
        QuestionType::Email => {
            if !is_email(value) {
                return Err(wrong(question, "not an email address"));
            }
            value.to_owned()
        }
        // Handled above, with its list of values.
        QuestionType::ChoiceMultiple => return Err(wrong(question, "takes a list of values")),
    };
    Ok(Some(stored))
}

/// Whether a stored answer is one of `values` (for multiple choice, whether
/// any option chosen is).
fn matches_any(question: &question::Model, answer: &str, values: &[String]) -> bool {
    if question.question_type == QuestionType::ChoiceMultiple {
        question::string_list(answer)
            .iter()
            .any(|chosen| values.contains(chosen))
    } else {
        values.iter().any(|v| v == answer)
    }
}

/// An event's questions with the products each is asked for.
struct Catalog {
    questions: HashMap<i32, question::Model>,
    products: HashMap<i32, Vec<i32>>,
}

impl Catalog {
    async fn of_event(db: &impl ConnectionTrait, event_id: i32) -> Result<Self, AppError> {
        let questions: HashMap<i32, question::Model> = question::Entity::find()
            .filter(question::Column::EventId.eq(event_id))
            .all(db)
            .await?
            .into_iter()
            .map(|q| (q.id, q))
            .collect();
        let products = if questions.is_empty() {
            HashMap::new()
        } else {
            products_of(db, questions.keys().copied()).await?
        };
        Ok(Self {
            questions,
            products,
        })
    }

    fn asked_for(&self, question_id: i32, product_id: i32) -> bool {
        self.products
            .get(&question_id)
            .is_some_and(|ids| ids.contains(&product_id))
    }

    /// Whether `question` applies to a position of `product_id` with `answers`
    /// (question id → stored answer). Dependencies are acyclic; the depth
    /// bound only guards against rows changed outside this module.
    fn applies(
        &self,
        question: &question::Model,
        product_id: i32,
        answers: &HashMap<i32, String>,
    ) -> bool {
        let mut current = question;
        for _ in 0..=self.questions.len() {
            if !self.asked_for(current.id, product_id) {
                return false;
            }
            let Some(on) = current.dependency_question_id else {
                return true;
            };
            let Some(parent) = self.questions.get(&on) else {
                return false;
            };
            let satisfied = answers
                .get(&on)
                .is_some_and(|a| matches_any(parent, a, &current.dependency_values()));
            if !satisfied {
                return false;
            }
            current = parent;
        }
        false
    }
}

/// Who answers: a buyer is asked only the questions that are not hidden and
/// not asked at check-in; the team may answer any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answerer {
    Buyer,
    Team,
}

/// Checks answers for a position of `product_id` and returns what to store
/// (`Some`) or remove (`None`) per question.
fn prepare(
    catalog: &Catalog,
    product_id: i32,
    answers: &[AnswerInput],
    who: Answerer,
) -> Result<Vec<(i32, Option<String>)>, AppError> {
    let mut seen = HashSet::new();
    let mut prepared = Vec::with_capacity(answers.len());
    for answer in answers {
        let question = catalog
            .questions
            .get(&answer.question_id)
            .filter(|q| catalog.asked_for(q.id, product_id))
            .ok_or_else(|| {
                AppError::bad_input("answers", "a question not asked for this product")
            })?;
        if who == Answerer::Buyer && (question.hidden || question.ask_during_checkin) {
            return Err(wrong(question, "not asked of buyers"));
        }
        if !seen.insert(question.id) {
            return Err(wrong(question, "answered twice"));
        }
        let stored = normalize(question, answer.value.as_deref(), answer.values.as_deref())?;
        prepared.push((question.id, stored));
    }
    Ok(prepared)
}

/// Which position answers belong to.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Cart(i32),
    Order(i32),
}

/// Stores `prepared` answers of one position by one upsert, and removes the
/// emptied ones by one `DELETE`.
async fn store(
    db: &impl ConnectionTrait,
    holder: Holder,
    prepared: &[(i32, Option<String>)],
) -> Result<(), DbErr> {
    let removed: Vec<i32> = prepared
        .iter()
        .filter(|(_, a)| a.is_none())
        .map(|(q, _)| *q)
        .collect();
    let (column, id) = match holder {
        Holder::Cart(id) => (question_answer::Column::CartPositionId, id),
        Holder::Order(id) => (question_answer::Column::OrderPositionId, id),
    };
    if !removed.is_empty() {
        question_answer::Entity::delete_many()
            .filter(column.eq(id))
            .filter(question_answer::Column::QuestionId.is_in(removed))
            .exec(db)
            .await?;
    }
    let rows: Vec<question_answer::ActiveModel> = prepared
        .iter()
        .filter_map(|(question_id, answer)| {
            answer.as_ref().map(|answer| question_answer::ActiveModel {
                question_id: Set(*question_id),
                cart_position_id: Set(matches!(holder, Holder::Cart(_)).then_some(id)),
                order_position_id: Set(matches!(holder, Holder::Order(_)).then_some(id)),
                answer: Set(answer.clone()),
                ..Default::default()
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    question_answer::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([column, question_answer::Column::QuestionId])
                .update_column(question_answer::Column::Answer)
                .to_owned(),
        )
        .exec(db)
        .await?;
    Ok(())
}

/// Sets a cart position's answers (anyone holding the cart id): each given
/// answer replaces the position's answer to that question, an empty one
/// removes it.
///
/// # Errors
/// `BAD_USER_INPUT` on `cartId` for a malformed id, on `answers` (naming the
/// question) for an answer that does not fit, a question not asked for the
/// position's product or not asked of buyers; `NOT_FOUND` when the position
/// is not in that cart.
pub async fn set_cart_answers(
    db: &DatabaseConnection,
    cart_id: &str,
    position_id: i32,
    answers: &[AnswerInput],
) -> Result<cart_position::Model, AppError> {
    let cart_id = super::carts::parse_cart_id(cart_id)?;
    let txn = db.begin().await?;
    // Locked as a checkout locks its cart's positions: an answer is stored
    // before a checkout reads the cart, or finds the position gone after it.
    let position = cart_position::Entity::find_by_id(position_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .filter(|p| p.cart_id == cart_id)
        .ok_or(AppError::not_found("cart position"))?;
    let catalog = Catalog::of_event(&txn, position.event_id).await?;
    let prepared = prepare(&catalog, position.product_id, answers, Answerer::Buyer)?;
    store(&txn, Holder::Cart(position.id), &prepared)
        .await
        .map_err(|err| match err.sql_err() {
            // Checked out (or expired) meanwhile: the position is gone.
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => AppError::not_found("cart position"),
            _ => AppError::from(err),
        })?;
    txn.commit().await?;
    Ok(position)
}

/// Who changes an order position's answers.
#[derive(Debug, Clone, Copy)]
pub enum AnswerAuthor<'a> {
    /// The team (permission `ChangeOrders`), or the order's own account (as a buyer).
    Principal(&'a Principal),
    /// A buyer holding the order's code and secret.
    Buyer {
        event_id: i32,
        code: &'a str,
        secret: &'a str,
    },
}

/// Sets an order position's answers, as [`set_cart_answers`] does for a
/// cart position, each given answer replacing the position's answer to that
/// question and an empty one removing it.
///
/// The team (permission `ChangeOrders`) may answer any question of the
/// product, hidden ones and those asked at check-in too, at any time, and
/// required questions are not enforced (the team may remove an answer).
/// A buyer (the order's account, or the order's code and secret) answers as
/// at checkout: only questions buyers are asked, every required one that
/// applies still answered afterwards, answers to questions that no longer
/// apply removed; and only while the order is pending or paid, before
/// [`answers_deadline`].
///
/// # Errors
/// As [`set_cart_answers`]; `UNAUTHENTICATED` anonymously without the
/// order's code; `FORBIDDEN` for a principal that is neither on the event's
/// team with `ChangeOrders` nor the order's account; `NOT_FOUND` on a wrong
/// code or secret, or a position of another order (and for staff on an
/// unknown position); `INVALID_TRANSITION` (`CONFLICT`) for a buyer's
/// canceled or expired order; `EXPIRED` (`CONFLICT`) for a buyer after the
/// deadline.
pub async fn set_order_answers(
    db: &DatabaseConnection,
    author: AnswerAuthor<'_>,
    now: DateTime<Utc>,
    position_id: i32,
    answers: &[AnswerInput],
) -> Result<order_position::Model, AppError> {
    if matches!(author, AnswerAuthor::Principal(Principal::Anonymous)) {
        return Err(AppError::Unauthenticated);
    }
    let mut change = Audited::begin(db, None, now).await?;
    let position = order_position::Entity::find_by_id(position_id)
        .one(change.txn())
        .await?;
    let order = match &position {
        Some(p) => {
            order::Entity::find_by_id(p.order_id)
                .one(change.txn())
                .await?
        }
        None => None,
    };
    let (event, who) = match author {
        AnswerAuthor::Buyer {
            event_id,
            code,
            secret,
        } => {
            let by_code = super::orders::by_code(change.txn(), event_id, code, secret).await?;
            if order.as_ref().map(|o| o.id) != Some(by_code.id) {
                return Err(AppError::not_found("order position"));
            }
            (
                event_row(change.txn(), by_code.event_id).await?,
                Answerer::Buyer,
            )
        }
        AnswerAuthor::Principal(principal) => {
            let event_id = order.as_ref().map_or(0, |o| o.event_id);
            let own = order.as_ref().is_some_and(|o| {
                o.user_id.is_some() && o.user_id == principal.person().ok().map(|p| p.id)
            });
            // The team's rights first: a team member's own order is still theirs to manage.
            match change
                .check_event(principal, TeamPermission::ChangeOrders, event_id)
                .await
            {
                Ok(event) => (event, Answerer::Team),
                Err(AppError::Forbidden) if own => {
                    (event_row(change.txn(), event_id).await?, Answerer::Buyer)
                }
                Err(err) => return Err(err),
            }
        }
    };
    let position = position.ok_or(AppError::not_found("order position"))?;
    let order = order.ok_or(AppError::not_found("order"))?;
    let catalog = Catalog::of_event(change.txn(), event.id).await?;
    let mut prepared = prepare(&catalog, position.product_id, answers, who)?;
    if who == Answerer::Buyer {
        buyer_may_change(change.txn(), &order, &event, now).await?;
        prepared = as_at_checkout(change.txn(), &catalog, &position, prepared).await?;
    }
    store(change.txn(), Holder::Order(position.id), &prepared).await?;
    let logged: serde_json::Map<String, serde_json::Value> = prepared
        .iter()
        .map(|(q, a)| (q.to_string(), json!(a)))
        .collect();
    let by = if who == Answerer::Buyer {
        "buyer"
    } else {
        "team"
    };
    change
        .commit(Change::on_event(
            &event,
            "voltgate.order.answers.changed",
            "order",
            position.order_id,
            json!({ "position": position.id, "answers": logged, "by": by }),
        ))
        .await?;
    Ok(position)
}

async fn event_row(db: &impl ConnectionTrait, event_id: i32) -> Result<event::Model, AppError> {
    event::Entity::find_by_id(event_id)
        .one(db)
        .await?
        .ok_or(AppError::not_found("event"))
}

/// A buyer's change checked as checkout checks a cart: with the position's
/// stored answers, every required question buyers are asked that applies
/// must stay answered. Returns `prepared` with removals added for the
/// answers to buyers' questions that no longer apply.
async fn as_at_checkout(
    db: &impl ConnectionTrait,
    catalog: &Catalog,
    position: &order_position::Model,
    mut prepared: Vec<(i32, Option<String>)>,
) -> Result<Vec<(i32, Option<String>)>, AppError> {
    let mut answers: HashMap<i32, String> = question_answer::Entity::find()
        .filter(question_answer::Column::OrderPositionId.eq(position.id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.question_id, a.answer))
        .collect();
    for (question, answer) in &prepared {
        match answer {
            Some(answer) => answers.insert(*question, answer.clone()),
            None => answers.remove(question),
        };
    }
    let mut ordered: Vec<&question::Model> = catalog
        .questions
        .values()
        .filter(|q| !q.hidden && !q.ask_during_checkin)
        .collect();
    ordered.sort_by_key(|q| (q.position, q.id));
    for question in ordered {
        let applies = catalog.applies(question, position.product_id, &answers);
        if applies && question.required && !answers.contains_key(&question.id) {
            return Err(wrong(question, "required"));
        }
        if !applies && answers.contains_key(&question.id) {
            prepared.retain(|(q, _)| *q != question.id);
            prepared.push((question.id, None));
        }
    }
    Ok(prepared)
}

/// Until when buyers may change an order's answers: the event's last date of
/// modifications, or else the start of the order's first date (a series) or
/// of the event.
///
/// # Errors
/// On database errors.
pub async fn answers_deadline(
    db: &impl ConnectionTrait,
    event: &event::Model,
    order_id: i32,
) -> Result<DateTime<Utc>, AppError> {
    if let Some(deadline) = event.last_order_modification_date {
        return Ok(deadline);
    }
    if event.has_subevents {
        let dates: Vec<Option<i32>> = order_position::Entity::find()
            .select_only()
            .column(order_position::Column::SubEventId)
            .filter(order_position::Column::OrderId.eq(order_id))
            .into_tuple()
            .all(db)
            .await?;
        let first = sub_event::Entity::find()
            .filter(sub_event::Column::Id.is_in(dates.into_iter().flatten()))
            .order_by_asc(sub_event::Column::DateFrom)
            .one(db)
            .await?;
        if let Some(first) = first {
            return Ok(first.date_from);
        }
    }
    Ok(event.date_from)
}

/// Whether a buyer may still change `order`'s answers at `now`.
///
/// # Errors
/// `INVALID_TRANSITION` for a canceled or expired order, `EXPIRED` after
/// [`answers_deadline`]; on database errors.
pub async fn buyer_may_change(
    db: &impl ConnectionTrait,
    order: &order::Model,
    event: &event::Model,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if !matches!(order.status, OrderStatus::Pending | OrderStatus::Paid) {
        return Err(AppError::refused(
            Reason::InvalidTransition,
            "the answers of a canceled or expired order cannot be changed",
        ));
    }
    if now >= answers_deadline(db, event, order.id).await? {
        return Err(AppError::refused(
            Reason::Expired,
            "the answers of this order can no longer be changed",
        ));
    }
    Ok(())
}

/// What the door asks of a ticket, and the answers a scan gives, checked
/// (see [`at_the_door`]).
#[derive(Debug, Clone, Default)]
pub struct DoorAnswers {
    /// The questions asked at check-in that apply to the position and that
    /// it has not answered, in order.
    pub asked: Vec<question::Model>,
    /// Whether the scan leaves one of `asked` unanswered: not given at all,
    /// or given empty while required.
    pub incomplete: bool,
    /// The product the answers were checked for.
    product_id: i32,
    /// What to store once the ticket is admitted (question id, stored form).
    answers: Vec<(i32, String)>,
}

impl DoorAnswers {
    /// Nothing asked of a position of `product_id`: its event asks nothing
    /// at the door.
    pub fn none_asked(product_id: i32) -> Self {
        Self {
            product_id,
            ..Self::default()
        }
    }
}

impl DoorAnswers {
    /// Stores the answers on `position`, in the transaction that admits it.
    /// A unit of another product than the one asked about (a door check
    /// admitting through a different unit) keeps nothing.
    ///
    /// # Errors
    /// On database errors.
    pub async fn store(
        &self,
        db: &impl ConnectionTrait,
        position: &order_position::Model,
    ) -> Result<(), AppError> {
        if self.answers.is_empty() || position.product_id != self.product_id {
            return Ok(());
        }
        let prepared: Vec<(i32, Option<String>)> = self
            .answers
            .iter()
            .map(|(q, a)| (*q, Some(a.clone())))
            .collect();
        store(db, Holder::Order(position.id), &prepared).await?;
        Ok(())
    }
}

fn not_at_the_door() -> AppError {
    AppError::bad_input(
        "answers",
        "a question not asked at the door for this ticket",
    )
}

/// The questions asked at check-in (`ask_during_checkin`, hidden ones too:
/// the door is the team's) that apply to `position` and that it has not
/// answered, and `given` answers to them checked exactly as at checkout.
/// An answer in `by_text` whose text is a door question's answers it too
/// (for scanners that know only the texts). An empty answer to an optional
/// question skips it; answers are stored only for questions that apply.
///
/// Events without door questions cost one indexed read.
///
/// # Errors
/// `BAD_USER_INPUT` on `answers` for a question not asked at the door for
/// the ticket's product, a question answered twice, or an answer that does
/// not fit its question (naming it).
pub async fn at_the_door(
    db: &impl ConnectionTrait,
    event_id: i32,
    position: &order_position::Model,
    given: &[AnswerInput],
    by_text: &BTreeMap<String, String>,
) -> Result<DoorAnswers, AppError> {
    let product_id = position.product_id;
    let asks: Option<i32> = question::Entity::find()
        .select_only()
        .column(question::Column::Id)
        .filter(question::Column::EventId.eq(event_id))
        .filter(question::Column::AskDuringCheckin.eq(true))
        .into_tuple()
        .one(db)
        .await?;
    if asks.is_none() {
        if !given.is_empty() {
            return Err(not_at_the_door());
        }
        return Ok(DoorAnswers::none_asked(product_id));
    }
    let catalog = Catalog::of_event(db, event_id).await?;
    let stored: HashMap<i32, String> = question_answer::Entity::find()
        .filter(question_answer::Column::OrderPositionId.eq(position.id))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.question_id, a.answer))
        .collect();
    let mut door: Vec<&question::Model> = catalog
        .questions
        .values()
        .filter(|q| q.ask_during_checkin && catalog.asked_for(q.id, product_id))
        .collect();
    door.sort_by_key(|q| (q.position, q.id));
    let mut mentioned = HashSet::new();
    let mut checked = Vec::with_capacity(given.len());
    for answer in given {
        let question = door
            .iter()
            .find(|q| q.id == answer.question_id)
            .ok_or_else(not_at_the_door)?;
        if !mentioned.insert(question.id) {
            return Err(wrong(question, "answered twice"));
        }
        let value = normalize(question, answer.value.as_deref(), answer.values.as_deref())?;
        checked.push((question.id, value));
    }
    for question in &door {
        if let Some(value) = by_text.get(&question.question)
            && mentioned.insert(question.id)
        {
            checked.push((question.id, normalize(question, Some(value), None)?));
        }
    }
    let mut merged = stored.clone();
    for (id, answer) in &checked {
        if let Some(answer) = answer {
            merged.insert(*id, answer.clone());
        }
    }
    let asked: Vec<question::Model> = door
        .iter()
        .filter(|q| !stored.contains_key(&q.id) && catalog.applies(q, product_id, &merged))
        .map(|q| (*q).clone())
        .collect();
    let incomplete = asked
        .iter()
        .any(|q| !mentioned.contains(&q.id) || (q.required && !merged.contains_key(&q.id)));
    let answers = checked
        .into_iter()
        .filter_map(|(id, answer)| answer.map(|a| (id, a)))
        .filter(|(id, _)| {
            catalog
                .questions
                .get(id)
                .is_some_and(|q| catalog.applies(q, product_id, &merged))
        })
        .collect();
    Ok(DoorAnswers {
        asked,
        incomplete,
        product_id,
        answers,
    })
}

/// The answers of a checkout's cart positions that apply, to be copied to
/// the order's positions.
#[derive(Debug, Default)]
pub struct CheckoutAnswers {
    /// (index of the position in the cart, question id, stored answer).
    rows: Vec<(usize, i32, String)>,
}

/// What a batch of checkouts needs to check answers, read once for all of
/// them: each event's questions and every position's answers (three queries
/// at most, whatever the batch's size).
#[derive(Default)]
pub struct CheckoutQuestions {
    catalogs: HashMap<i32, Catalog>,
    /// Cart position id → question id → stored answer.
    given: HashMap<i32, HashMap<i32, String>>,
}

impl CheckoutQuestions {
    /// # Errors
    /// On database errors.
    pub async fn read<'a>(
        db: &impl ConnectionTrait,
        positions: impl IntoIterator<Item = &'a cart_position::Model>,
    ) -> Result<Self, AppError> {
        let positions: Vec<&cart_position::Model> = positions.into_iter().collect();
        let events: HashSet<i32> = positions.iter().map(|p| p.event_id).collect();
        let mut catalogs = HashMap::new();
        for event_id in events {
            let catalog = Catalog::of_event(db, event_id).await?;
            if !catalog.questions.is_empty() {
                catalogs.insert(event_id, catalog);
            }
        }
        let asked = positions
            .iter()
            .filter(|p| catalogs.contains_key(&p.event_id));
        let ids: Vec<i32> = asked.map(|p| p.id).collect();
        let mut given: HashMap<i32, HashMap<i32, String>> = HashMap::new();
        if !ids.is_empty() {
            for answer in question_answer::Entity::find()
                .filter(question_answer::Column::CartPositionId.is_in(ids))
                .all(db)
                .await?
            {
                if let Some(position) = answer.cart_position_id {
                    given
                        .entry(position)
                        .or_default()
                        .insert(answer.question_id, answer.answer);
                }
            }
        }
        Ok(Self { catalogs, given })
    }

    /// Checks the answers of a cart about to be checked out: every required
    /// question that applies to a position and that buyers are asked must be
    /// answered.
    ///
    /// # Errors
    /// `BAD_USER_INPUT` on `answers`, naming the question and the product.
    pub fn for_checkout(
        &self,
        cart: &[cart_position::Model],
        products: &HashMap<i32, product::Model>,
    ) -> Result<CheckoutAnswers, AppError> {
        let Some(catalog) = cart.first().and_then(|p| self.catalogs.get(&p.event_id)) else {
            return Ok(CheckoutAnswers::default());
        };
        let mut ordered: Vec<&question::Model> = catalog.questions.values().collect();
        ordered.sort_by_key(|q| (q.position, q.id));
        let none = HashMap::new();
        let mut rows = Vec::new();
        for (index, position) in cart.iter().enumerate() {
            let answers = self.given.get(&position.id).unwrap_or(&none);
            for question in &ordered {
                if !catalog.applies(question, position.product_id, answers) {
                    continue;
                }
                match answers.get(&question.id) {
                    Some(answer) => rows.push((index, question.id, answer.clone())),
                    None if question.required
                        && !question.hidden
                        && !question.ask_during_checkin =>
                    {
                        let product = products
                            .get(&position.product_id)
                            .map_or("a product", |p| p.name.as_str());
                        return Err(AppError::bad_input(
                            "answers",
                            format!("{}: required for {product}", question.question),
                        ));
                    }
                    None => {}
                }
            }
        }
        Ok(CheckoutAnswers { rows })
    }
}

/// How many answers one `INSERT` copies (four values each).
const COPY_CHUNK: usize = 500;

/// Copies the answers [`CheckoutQuestions::for_checkout`] kept to the order's positions, which
/// come in the cart's order (`positions[i]` was `cart[i]`), in one `INSERT`
/// per 500 answers.
///
/// # Errors
/// On database errors.
pub async fn copy_to_order(
    db: &impl ConnectionTrait,
    answers: CheckoutAnswers,
    positions: &[order_position::Model],
) -> Result<(), AppError> {
    let rows: Vec<question_answer::ActiveModel> = answers
        .rows
        .into_iter()
        .filter_map(|(index, question_id, answer)| {
            positions.get(index).map(|p| question_answer::ActiveModel {
                question_id: Set(question_id),
                cart_position_id: Set(None),
                order_position_id: Set(Some(p.id)),
                answer: Set(answer),
                ..Default::default()
            })
        })
        .collect();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(COPY_CHUNK).collect();
        question_answer::Entity::insert_many(chunk).exec(db).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(kind: QuestionType, options: &[&str]) -> question::Model {
        question::Model {
            id: 1,
            event_id: 1,
            question: "Q".into(),
            question_type: kind,
            required: false,
            ask_during_checkin: false,
            hidden: false,
            identifier: "Q".into(),
            dependency_question_id: None,
            dependency_values: "[]".into(),
            options: to_json(&options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>()),
            position: 0,
            created_at: Utc::now(),
        }
    }

    fn one(kind: QuestionType, value: &str) -> Option<String> {
        normalize(&asked(kind, &["S", "M", "L"]), Some(value), None).unwrap_or_default()
    }

    #[test]
    fn answers_are_stored_in_one_form_per_type() {
        assert_eq!(one(QuestionType::Boolean, "yes").as_deref(), Some("True"));
        assert_eq!(one(QuestionType::Number, "-12.5").as_deref(), Some("-12.5"));
        assert_eq!(one(QuestionType::Number, "1e5"), None);
        assert_eq!(
            one(QuestionType::Time, "18:30:00").as_deref(),
            Some("18:30")
        );
        assert_eq!(one(QuestionType::CountryCode, "de").as_deref(), Some("DE"));
        assert_eq!(
            one(QuestionType::PhoneNumber, "+49 (30) 123-4567").as_deref(),
            Some("+49301234567")
        );
        assert_eq!(one(QuestionType::Choice, "M").as_deref(), Some("M"));
        let multiple = normalize(
            &asked(QuestionType::ChoiceMultiple, &["S", "M", "L"]),
            None,
            Some(&["L".to_owned(), "S".to_owned()]),
        );
        assert_eq!(
            multiple.ok().flatten().as_deref(),
            Some("[\"S\",\"L\"]"),
            "in the options' order"
        );
    }

    #[test]
    fn answers_that_do_not_fit_name_the_question() {
        for (kind, value) in [
            (QuestionType::Number, "twelve"),
            (QuestionType::Boolean, "maybe"),
            (QuestionType::Choice, "XL"),
            (QuestionType::Date, "2027-02-30"),
            (QuestionType::Email, "nobody"),
            (QuestionType::PhoneNumber, "030 1234567"),
            (QuestionType::CountryCode, "DEU"),
        ] {
            let err = normalize(&asked(kind, &["S"]), Some(value), None);
            assert!(
                matches!(&err, Err(e) if e.message().starts_with("Q:")),
                "{kind:?} {value}"
            );
        }
    }
}
