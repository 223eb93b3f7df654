//! Questions and answers (pretix `Question`, `QuestionAnswer`): the event's
//! questions (team permission `CHANGE_ITEMS`), a buyer's answers on their
//! cart positions (public, with the cart id), the team's changes to an order
//! position's answers (`CHANGE_ORDERS`), and `Event.questions`,
//! `CartPosition.answers`, `OrderPosition.answers`.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use sea_orm::EntityTrait as _;

use super::types::{CartPosition, OrderPosition};
use crate::auth::guards::principal;
use crate::entities::{self, event, order, question, question_answer};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::loaders::loader;
use crate::services::services;
use crate::ticketing::loaders::QuestionById;
use crate::ticketing::questions::{self, AnswerInput as Answer, QuestionChange, QuestionInput};

impl Kind {
    pub const QUESTION: Self = Self::named("Question");
}

/// What kind of answer a question takes (pretix's types; no file uploads).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entities::question::QuestionType")]
pub enum QuestionType {
    /// A decimal number, e.g. `-12.5`.
    Number,
    /// One line of text.
    String,
    /// Several lines of text.
    Text,
    /// Yes or no: `true`/`false`, stored as `True`/`False`.
    Boolean,
    /// One of the options.
    Choice,
    /// Any of the options (`values`).
    ChoiceMultiple,
    /// `YYYY-MM-DD`.
    Date,
    /// `HH:MM`.
    Time,
    /// RFC 3339.
    DateTime,
    /// ISO 3166-1 alpha-2.
    CountryCode,
    /// International form, `+` and digits.
    PhoneNumber,
    Email,
}

/// A question asked of buyers for some of the event's products.
pub struct Question {
    pub row: question::Model,
    // Read with the event's questions; otherwise by the field.
    pub product_ids: Option<Vec<i32>>,
}

#[Object]
impl Question {
    async fn id(&self) -> ID {
        ids::encode(Kind::QUESTION, self.row.id)
    }
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.row.event_id)
    }
    /// The question's text.
    async fn question(&self) -> &str {
        &self.row.question
    }
    #[graphql(name = "type")]
    async fn question_type(&self) -> QuestionType {
        self.row.question_type.into()
    }
    /// A position of these products cannot be checked out without an answer
    /// (when the question applies and buyers are asked it).
    async fn required(&self) -> bool {
        self.row.required
    }
    /// The products it is asked for.
    async fn product_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let product_ids = match &self.product_ids {
            Some(ids) => ids.clone(),
            None => questions::products_of(&services(ctx)?.db, [self.row.id])
                .await?
                .remove(&self.row.id)
                .unwrap_or_default(),
        };
        Ok(product_ids
            .into_iter()
            .map(|id| ids::encode(Kind::PRODUCT, id))
            .collect())
    }
    /// Asked at check-in instead of at checkout.
    async fn ask_during_checkin(&self) -> bool {
        self.row.ask_during_checkin
    }
    /// Shown to the team only.
    async fn hidden(&self) -> bool {
        self.row.hidden
    }
    /// Unique within the event.
    async fn identifier(&self) -> &str {
        &self.row.identifier
    }
    /// Asked only when this question's answer is one of `dependencyValues`.
    async fn dependency_question_id(&self) -> Option<ID> {
        self.row
            .dependency_question_id
            .map(|id| ids::encode(Kind::QUESTION, id))
    }
    async fn dependency_values(&self) -> Vec<String> {
        self.row.dependency_values()
    }
    /// The options of a choice question.
    async fn options(&self) -> Vec<String> {
        self.row.options()
    }
    async fn position(&self) -> i32 {
        self.row.position
    }
}

/// The answer of a position to a question.
pub struct QuestionAnswer(pub question_answer::Model);

impl QuestionAnswer {
    fn is_multiple(question: Option<&question::Model>) -> bool {
        question
            .is_some_and(|q| q.question_type == entities::question::QuestionType::ChoiceMultiple)
    }
}

#[Object]
impl QuestionAnswer {
    async fn question_id(&self) -> ID {
        ids::encode(Kind::QUESTION, self.0.question_id)
    }
    async fn question(&self, ctx: &Context<'_>) -> Result<Option<Question>> {
        let row = loader(ctx)?
            .load_one(QuestionById(self.0.question_id))
            .await?;
        Ok(row.map(|row| Question {
            row,
            product_ids: None,
        }))
    }
    /// The answer as text (the options chosen, comma-separated, for multiple choice).
    async fn answer(&self, ctx: &Context<'_>) -> Result<String> {
        let question = loader(ctx)?
            .load_one(QuestionById(self.0.question_id))
            .await?;
        Ok(if Self::is_multiple(question.as_ref()) {
            question::string_list(&self.0.answer).join(", ")
        } else {
            self.0.answer.clone()
        })
    }
    /// The options chosen of a multiple choice question; the answer alone otherwise.
    async fn values(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let question = loader(ctx)?
            .load_one(QuestionById(self.0.question_id))
            .await?;
        Ok(if Self::is_multiple(question.as_ref()) {
            question::string_list(&self.0.answer)
        } else {
            vec![self.0.answer.clone()]
        })
    }
}

/// The answers shown: answers to hidden questions only to the event's team.
pub async fn visible_answers(
    ctx: &Context<'_>,
    event_id: impl AsyncFnOnce() -> Result<i32>,
    rows: Vec<question_answer::Model>,
) -> Result<Vec<QuestionAnswer>> {
    let questions = loader(ctx)?
        .load_many(rows.iter().map(|a| QuestionById(a.question_id)))
        .await?;
    let hidden = |a: &question_answer::Model| {
        questions
            .get(&QuestionById(a.question_id))
            .is_some_and(|q| q.hidden)
    };
    let team = if rows.iter().any(hidden) {
        questions::sees_hidden(&services(ctx)?.db, principal(ctx), event_id().await?).await?
    } else {
        true
    };
    Ok(rows
        .into_iter()
        .filter(|a| team || !hidden(a))
        .map(QuestionAnswer)
        .collect())
}

/// An event's questions as the caller sees them: hidden ones only for its team.
pub async fn of_event(ctx: &Context<'_>, event_id: i32) -> Result<Vec<Question>> {
    let db = &services(ctx)?.db;
    let with_hidden = questions::sees_hidden(db, principal(ctx), event_id).await?;
    let rows = questions::of_event(db, event_id, with_hidden).await?;
    Ok(rows
        .into_iter()
        .map(|(row, product_ids)| Question {
            row,
            product_ids: Some(product_ids),
        })
        .collect())
}

#[derive(InputObject)]
pub struct CreateQuestionInput {
    pub event_id: ID,
    /// 1 to 1000 characters.
    pub question: String,
    #[graphql(name = "type")]
    pub question_type: QuestionType,
    #[graphql(default)]
    pub required: bool,
    /// Products of the event it is asked for.
    #[graphql(default)]
    pub product_ids: Vec<ID>,
    #[graphql(default)]
    pub ask_during_checkin: bool,
    #[graphql(default)]
    pub hidden: bool,
    /// Letters, digits, `.`, `-`, `_`; unique within the event; generated when not given.
    pub identifier: Option<String>,
    /// A yes/no or choice question of the event.
    pub dependency_question_id: Option<ID>,
    /// Answers of the dependency question (`True`/`False`, or its options).
    #[graphql(default)]
    pub dependency_values: Vec<String>,
    /// Choice questions: 1 to 100 distinct options.
    #[graphql(default)]
    pub options: Vec<String>,
    #[graphql(default)]
    pub position: i32,
}

#[derive(InputObject)]
pub struct UpdateQuestionInput {
    pub question_id: ID,
    pub question: Option<String>,
    pub required: Option<bool>,
    /// Replaces the products it is asked for.
    pub product_ids: Option<Vec<ID>>,
    pub ask_during_checkin: Option<bool>,
    pub hidden: Option<bool>,
    pub identifier: Option<String>,
    /// With `dependencyValues`; `null` removes the dependency.
    pub dependency_question_id: MaybeUndefined<ID>,
    pub dependency_values: Option<Vec<String>>,
    pub options: Option<Vec<String>>,
    pub position: Option<i32>,
}

#[derive(InputObject)]
pub struct DeleteQuestionInput {
    pub question_id: ID,
}

#[derive(SimpleObject)]
pub struct QuestionPayload {
    pub question: Question,
}

#[derive(SimpleObject)]
pub struct DeleteQuestionPayload {
    pub deleted_question_id: ID,
}

/// An answer: `value`, or `values` for a multiple choice question; neither
/// (or an empty value) removes the answer.
#[derive(InputObject)]
pub struct AnswerInput {
    pub question_id: ID,
    pub value: Option<String>,
    pub values: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct SetCartPositionAnswersInput {
    pub cart_id: String,
    pub position_id: ID,
    pub answers: Vec<AnswerInput>,
}

#[derive(SimpleObject)]
pub struct SetCartPositionAnswersPayload {
    pub position: CartPosition,
}

#[derive(InputObject)]
pub struct SetOrderPositionAnswersInput {
    pub position_id: ID,
    pub answers: Vec<AnswerInput>,
    /// A buyer without the order's account: the order's code and secret.
    pub order: Option<super::invoices::OrderCodeInput>,
}

#[derive(SimpleObject)]
pub struct SetOrderPositionAnswersPayload {
    pub position: OrderPosition,
}

/// The most answers one call sets.
const MAX_ANSWERS: usize = 200;

fn answers(input: Vec<AnswerInput>) -> Result<Vec<Answer>> {
    if input.len() > MAX_ANSWERS {
        return Err(AppError::bad_input("answers", "at most 200 answers at once").into());
    }
    input
        .into_iter()
        .map(|a| {
            Ok(Answer {
                question_id: ids::decode(&a.question_id, Kind::QUESTION, "answers")?,
                value: a.value,
                values: a.values,
            })
        })
        .collect()
}

fn product_ids(input: &[ID]) -> Result<Vec<i32>> {
    Ok(input
        .iter()
        .map(|id| ids::decode(id, Kind::PRODUCT, "productIds"))
        .collect::<Result<_, _>>()?)
}

/// A question as a mutation returns it: its products are read by its field.
fn changed(row: question::Model) -> Question {
    Question {
        row,
        product_ids: None,
    }
}

#[derive(Default)]
pub struct QuestionMutation;

#[Object]
impl QuestionMutation {
    /// Team permission `CHANGE_ITEMS`: adds a question for products of the event.
    async fn create_question(
        &self,
        ctx: &Context<'_>,
        input: CreateQuestionInput,
    ) -> Result<QuestionPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let dependency = input
            .dependency_question_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::QUESTION, "dependencyQuestionId"))
            .transpose()?;
        let row = questions::create(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            QuestionInput {
                question: input.question,
                question_type: input.question_type.into(),
                required: input.required,
                product_ids: product_ids(&input.product_ids)?,
                ask_during_checkin: input.ask_during_checkin,
                hidden: input.hidden,
                identifier: input.identifier,
                dependency_question_id: dependency,
                dependency_values: input.dependency_values,
                options: input.options,
                position: input.position,
            },
        )
        .await?;
        services.doors.forget_door_questions(row.event_id);
        Ok(QuestionPayload {
            question: changed(row),
        })
    }

    /// Team permission `CHANGE_ITEMS`: changes a question (not its type).
    async fn update_question(
        &self,
        ctx: &Context<'_>,
        input: UpdateQuestionInput,
    ) -> Result<QuestionPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.question_id, Kind::QUESTION, "questionId")?;
        let dependency = match (&input.dependency_question_id, input.dependency_values) {
            (MaybeUndefined::Value(on), values) => Some(Some((
                ids::decode(on, Kind::QUESTION, "dependencyQuestionId")?,
                values.unwrap_or_default(),
            ))),
            (MaybeUndefined::Null, _) => Some(None),
            (MaybeUndefined::Undefined, None) => None,
            (MaybeUndefined::Undefined, Some(_)) => {
                return Err(AppError::bad_input(
                    "dependencyQuestionId",
                    "give the question with its values",
                )
                .into());
            }
        };
        let change = QuestionChange {
            question: input.question,
            required: input.required,
            product_ids: input.product_ids.as_deref().map(product_ids).transpose()?,
            ask_during_checkin: input.ask_during_checkin,
            hidden: input.hidden,
            identifier: input.identifier,
            dependency,
            options: input.options,
            position: input.position,
        };
        let row =
            questions::update(&services.db, principal(ctx), services.now(), id, change).await?;
        services.doors.forget_door_questions(row.event_id);
        Ok(QuestionPayload {
            question: changed(row),
        })
    }

    /// Team permission `CHANGE_ITEMS`: deletes a question and its answers.
    async fn delete_question(
        &self,
        ctx: &Context<'_>,
        input: DeleteQuestionInput,
    ) -> Result<DeleteQuestionPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.question_id, Kind::QUESTION, "questionId")?;
        let row = questions::delete(&services.db, principal(ctx), services.now(), id).await?;
        services.doors.forget_door_questions(row.event_id);
        Ok(DeleteQuestionPayload {
            deleted_question_id: input.question_id,
        })
    }

    /// Public, with the cart's id: answers questions for a position of the
    /// cart; checkout copies them to the order.
    async fn set_cart_position_answers(
        &self,
        ctx: &Context<'_>,
        input: SetCartPositionAnswersInput,
    ) -> Result<SetCartPositionAnswersPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.position_id, Kind::CART_POSITION, "positionId")?;
        let position =
            questions::set_cart_answers(&services.db, &input.cart_id, id, &answers(input.answers)?)
                .await?;
        Ok(SetCartPositionAnswersPayload {
            position: CartPosition(position),
        })
    }

    /// Changes an order position's answers: team permission `CHANGE_ORDERS`
    /// (any question, any time), or the buyer (the order's account, or with
    /// `order` its code and secret) as at checkout, while the order is
    /// pending or paid and until the event's `lastOrderModificationDate`
    /// (`Order.canModifyAnswers`).
    async fn set_order_position_answers(
        &self,
        ctx: &Context<'_>,
        input: SetOrderPositionAnswersInput,
    ) -> Result<SetOrderPositionAnswersPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.position_id, Kind::ORDER_POSITION, "positionId")?;
        let event_id = input
            .order
            .as_ref()
            .map(|o| ids::decode(&o.event_id, Kind::EVENT, "order.eventId"))
            .transpose()?;
        let author = match (&input.order, event_id) {
            (Some(order), Some(event_id)) => questions::AnswerAuthor::Buyer {
                event_id,
                code: &order.code,
                secret: &order.secret,
            },
            _ => questions::AnswerAuthor::Principal(principal(ctx)),
        };
        let row = questions::set_order_answers(
            &services.db,
            author,
            services.now(),
            id,
            &answers(input.answers)?,
        )
        .await?;
        let order = order::Entity::find_by_id(row.order_id)
            .one(&services.db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::not_found("order"))?;
        let event = event::Entity::find_by_id(order.event_id)
            .one(&services.db)
            .await
            .map_err(AppError::from)?
            .ok_or(AppError::not_found("event"))?;
        Ok(SetOrderPositionAnswersPayload {
            position: OrderPosition {
                row,
                currency: event.currency,
                order_paid: order.status == entities::order::OrderStatus::Paid,
            },
        })
    }
}
