//! A question asked of buyers for some of an event's products (pretix
//! `Question`): its type, whether it must be answered, and the question it
//! depends on (asked only when that one's answer is one of `dependency_values`).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What kind of answer a question takes (pretix's question types, without
/// file uploads).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    #[sea_orm(string_value = "number")]
    Number,
    #[sea_orm(string_value = "string")]
    String,
    #[sea_orm(string_value = "text")]
    Text,
    #[sea_orm(string_value = "boolean")]
    Boolean,
    #[sea_orm(string_value = "choice")]
    Choice,
    #[sea_orm(string_value = "choice_multiple")]
    ChoiceMultiple,
    #[sea_orm(string_value = "date")]
    Date,
    #[sea_orm(string_value = "time")]
    Time,
    #[sea_orm(string_value = "datetime")]
    DateTime,
    #[sea_orm(string_value = "country_code")]
    CountryCode,
    #[sea_orm(string_value = "phone_number")]
    PhoneNumber,
    #[sea_orm(string_value = "email")]
    Email,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "questions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub event_id: i32,
    /// The question's text.
    pub question: String,
    pub question_type: QuestionType,
    pub required: bool,
    pub ask_during_checkin: bool,
    /// Shown to the team only.
    pub hidden: bool,
    /// Unique within the event.
    pub identifier: String,
    pub dependency_question_id: Option<i32>,
    /// A JSON list of strings.
    pub dependency_values: String,
    /// The options of a choice question, a JSON list of strings.
    pub options: String,
    pub position: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Parses a JSON list of strings column (empty when malformed).
pub fn string_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Model {
    pub fn dependency_values(&self) -> Vec<String> {
        string_list(&self.dependency_values)
    }

    pub fn options(&self) -> Vec<String> {
        string_list(&self.options)
    }
}
