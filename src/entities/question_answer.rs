//! The answer to a question, of a cart position or of an order position
//! (pretix `QuestionAnswer`); one per question and position.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "question_answers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub question_id: i32,
    pub cart_position_id: Option<i32>,
    pub order_position_id: Option<i32>,
    /// Normalized by type: `True`/`False`, ISO dates, a JSON list for multiple choice.
    pub answer: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
