//! Check-in's GraphQL: lists (team members with the check-in permission
//! manage them; they and the event's scanners read them), scanner devices,
//! the scanner session exchange, `redeemTicket` and the live
//! `checkinActivity` stream.

use std::collections::BTreeMap;

use async_graphql::{
    Context, Enum, ID, InputObject, Object, Result, SimpleObject, Subscription, Union,
};
use futures_util::{Stream, StreamExt as _};

use super::redeem::{Outcome, Scan, Ticket};
use super::{lists, live, offline, redeem, scanners};
use crate::auth::guards::principal;
use crate::bus::{DomainEvent, Topic};
use crate::entities::{checkin, checkin_list, scanner_device};
use crate::error::AppError;
use crate::graphql::ids::{self, Kind};
use crate::graphql::pagination::{IdConnection, connection, page_request};
use crate::graphql::scalars::DateTime;
use crate::realtime::follow::follow;
use crate::services::services;
use crate::ticketing::graphql::questions::Question;
use crate::ticketing::questions::AnswerInput;

impl Kind {
    pub const CHECKIN_LIST: Self = Self::named("CheckinList");
    pub const CHECKIN: Self = Self::named("Checkin");
    pub const SCANNER_DEVICE: Self = Self::named("ScannerDevice");
}

/// Entering or leaving.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entities::checkin::CheckinKind")]
pub enum CheckinType {
    Entry,
    Exit,
}

/// Why a scan was rejected (pretix's reasons).
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::entities::checkin::RejectReason")]
pub enum CheckinRejectReason {
    /// No ticket of this event has this code.
    Invalid,
    /// The order is not paid and the list does not admit pending orders.
    Unpaid,
    /// The order or the ticket was canceled or expired.
    Canceled,
    Blocked,
    /// The ticket is for another date of the series.
    InvalidTime,
    /// The list does not admit the ticket's product.
    Product,
    /// The holder is inside already, or entered once on a list without re-entry.
    AlreadyRedeemed,
    Revoked,
    /// The ticket is valid on more than one of the lists scanned for.
    Ambiguous,
    Error,
}

/// A check-in list: which tickets a door admits, and its re-entry rules.
pub struct CheckinList(pub checkin_list::Model);

#[Object]
impl CheckinList {
    async fn id(&self) -> ID {
        ids::encode(Kind::CHECKIN_LIST, self.0.id)
    }
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.0.event_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Every admission product is admitted; otherwise those of `productIds`.
    async fn all_products(&self) -> bool {
        self.0.all_products
    }
    async fn product_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let ids = lists::products_of(&services(ctx)?.db, self.0.id).await?;
        Ok(ids
            .into_iter()
            .map(|id| ids::encode(Kind::PRODUCT, id))
            .collect())
    }
    /// Only tickets of this date; every date when null.
    async fn sub_event_id(&self) -> Option<ID> {
        self.0
            .sub_event_id
            .map(|id| ids::encode(Kind::SUB_EVENT, id))
    }
    /// Tickets of orders not yet paid are admitted.
    async fn include_pending(&self) -> bool {
        self.0.include_pending
    }
    /// An entry is admitted even while the holder is inside.
    async fn allow_multiple_entries(&self) -> bool {
        self.0.allow_multiple_entries
    }
    /// An entry is admitted again after an exit.
    async fn allow_entry_after_exit(&self) -> bool {
        self.0.allow_entry_after_exit
    }
    /// Free-text questions every entry answers, kept with the scan.
    #[graphql(
        deprecation = "Ask the event's questions with askDuringCheckin: asked once per ticket, typed, stored on the position"
    )]
    async fn questions(&self) -> Vec<String> {
        self.0.question_list()
    }
    /// Checked-in and inside-now counts, per product the list admits.
    async fn status(&self, ctx: &Context<'_>) -> Result<CheckinListStatus> {
        let products = lists::status(&services(ctx)?.db, &self.0).await?;
        Ok(CheckinListStatus {
            positions: products.iter().map(|p| p.positions).sum(),
            checked_in: products.iter().map(|p| p.checked_in).sum(),
            inside: products.iter().map(|p| p.inside).sum(),
            products: products
                .into_iter()
                .map(|p| CheckinProductStatus {
                    product_id: ids::encode(Kind::PRODUCT, p.product_id),
                    positions: p.positions,
                    checked_in: p.checked_in,
                    inside: p.inside,
                })
                .collect(),
        })
    }
    /// Every scan on the list, oldest first: accepted, rejected and forced.
    async fn checkins(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<IdConnection<Checkin>> {
        let page = page_request(first, after.as_deref())?;
        let rows = lists::history(&services(ctx)?.db, principal(ctx), self.0.id, page).await?;
        Ok(connection(page, rows, |c| c.id, Checkin))
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }
}

/// A list's figures.
#[derive(SimpleObject)]
pub struct CheckinListStatus {
    /// Valid tickets the list admits.
    pub positions: i64,
    /// Tickets entered at least once.
    pub checked_in: i64,
    /// Tickets inside now.
    pub inside: i64,
    pub products: Vec<CheckinProductStatus>,
}

/// One product's figures on a list.
#[derive(SimpleObject)]
pub struct CheckinProductStatus {
    pub product_id: ID,
    pub positions: i64,
    pub checked_in: i64,
    pub inside: i64,
}

/// One scan, as recorded.
pub struct Checkin(pub checkin::Model);

#[Object]
impl Checkin {
    async fn id(&self) -> ID {
        ids::encode(Kind::CHECKIN, self.0.id)
    }
    async fn list_id(&self) -> ID {
        ids::encode(Kind::CHECKIN_LIST, self.0.list_id)
    }
    /// The ticket; null when the code matched none.
    async fn position_id(&self) -> Option<ID> {
        self.0
            .position_id
            .map(|id| ids::encode(Kind::ORDER_POSITION, id))
    }
    #[graphql(name = "type")]
    async fn kind(&self) -> CheckinType {
        self.0.kind.into()
    }
    async fn successful(&self) -> bool {
        self.0.successful
    }
    async fn reason(&self) -> Option<CheckinRejectReason> {
        self.0.reason.map(Into::into)
    }
    /// Recorded as it happened offline, even where it would be rejected.
    async fn forced(&self) -> bool {
        self.0.forced
    }
    async fn gate(&self) -> &str {
        &self.0.gate
    }
    async fn scanner_id(&self) -> Option<ID> {
        self.0
            .scanner_id
            .map(|id| ids::encode(Kind::SCANNER_DEVICE, id))
    }
    async fn user_id(&self) -> Option<ID> {
        self.0.user_id.map(|id| ids::encode(Kind::USER, id))
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    /// When the scan happened.
    async fn datetime(&self) -> DateTime {
        DateTime(self.0.datetime)
    }
    /// When the server recorded it.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}

/// What a door shows of the ticket it scanned (never its secret).
pub struct CheckinTicket(pub Ticket);

#[Object]
impl CheckinTicket {
    async fn position_id(&self) -> ID {
        ids::encode(Kind::ORDER_POSITION, self.0.position.id)
    }
    async fn order_code(&self) -> &str {
        &self.0.order.code
    }
    /// 1, 2, … within the order.
    async fn positionid(&self) -> i32 {
        self.0.position.positionid
    }
    async fn product_id(&self) -> ID {
        ids::encode(Kind::PRODUCT, self.0.product.id)
    }
    async fn product_name(&self) -> &str {
        &self.0.product.name
    }
    async fn attendee_name(&self) -> Option<&str> {
        self.0.position.attendee_name.as_deref()
    }
    /// The door should look twice (the product asks for attention).
    async fn requires_attention(&self) -> bool {
        self.0.product.checkin_attention
    }
}

/// The ticket is admitted (or, for an exit, let out).
#[derive(SimpleObject)]
pub struct CheckinAccepted {
    pub checkin: Checkin,
    pub ticket: CheckinTicket,
    pub requires_attention: bool,
    /// Units of the ticket's order line (its product in its order) that have
    /// not entered this list yet: meals, t-shirts left to hand out.
    pub remaining: i64,
}

/// Nothing was recorded: scan again with answers to these questions.
#[derive(SimpleObject)]
pub struct CheckinNeedsAnswers {
    /// The texts of everything to ask: the list's free-text questions left
    /// unanswered, then the texts of `askedQuestions`.
    pub questions: Vec<String>,
    /// The event's questions asked at check-in (`askDuringCheckin`) that
    /// apply to the ticket and that it has not answered, in order: answer
    /// each by `questionId` (an empty answer skips an optional one).
    pub asked_questions: Vec<Question>,
    pub ticket: CheckinTicket,
}

/// The ticket is not admitted; the scan is recorded with the reason.
#[derive(SimpleObject)]
pub struct CheckinRejected {
    pub reason: CheckinRejectReason,
    pub checkin: Option<Checkin>,
    /// Null when the code matched no ticket of the event.
    pub ticket: Option<CheckinTicket>,
    /// As `CheckinAccepted.remaining`, when a ticket was found.
    pub remaining: Option<i64>,
}

#[derive(Union)]
pub enum RedeemResult {
    CheckinAccepted(CheckinAccepted),
    CheckinNeedsAnswers(CheckinNeedsAnswers),
    CheckinRejected(CheckinRejected),
}

impl RedeemResult {
    fn new(outcome: Outcome, remaining: Option<i64>) -> Self {
        match outcome {
            Outcome::Accepted { checkin, ticket } => Self::CheckinAccepted(CheckinAccepted {
                checkin: Checkin(checkin),
                requires_attention: ticket.product.checkin_attention,
                ticket: CheckinTicket(ticket),
                remaining: remaining.unwrap_or(0),
            }),
            Outcome::NeedsAnswers {
                questions,
                asked,
                ticket,
            } => Self::CheckinNeedsAnswers(CheckinNeedsAnswers {
                questions,
                asked_questions: asked
                    .into_iter()
                    .map(|row| Question {
                        row,
                        product_ids: None,
                    })
                    .collect(),
                ticket: CheckinTicket(ticket),
            }),
            Outcome::Rejected {
                reason,
                checkin,
                ticket,
            } => Self::CheckinRejected(CheckinRejected {
                reason: reason.into(),
                checkin: checkin.map(Checkin),
                ticket: ticket.map(CheckinTicket),
                remaining,
            }),
        }
    }
}

/// A scanner device of an event, at a gate.
pub struct ScannerDevice(pub scanner_device::Model);

#[Object]
impl ScannerDevice {
    async fn id(&self) -> ID {
        ids::encode(Kind::SCANNER_DEVICE, self.0.id)
    }
    async fn event_id(&self) -> ID {
        ids::encode(Kind::EVENT, self.0.event_id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn gate(&self) -> &str {
        &self.0.gate
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(DateTime)
    }
}

/// A signed download of a list's tickets.
#[derive(SimpleObject)]
pub struct CheckinDownload {
    /// The JSON document, exactly as signed: verify, then parse.
    pub document: String,
    /// Ed25519 over the document's UTF-8 bytes, base64url without padding.
    pub signature: String,
    /// The signing public key, base64url (compare with the one kept from `scannerSession`).
    pub public_key: String,
    pub key_id: String,
}

#[derive(Default)]
pub struct CheckinQuery;

#[Object]
impl CheckinQuery {
    /// The check-in lists of an event, oldest first (its scanners, and team
    /// members with the check-in permission).
    async fn checkin_lists(&self, ctx: &Context<'_>, event_id: ID) -> Result<Vec<CheckinList>> {
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let rows = lists::of_event(&services(ctx)?.db, principal(ctx), event_id).await?;
        Ok(rows.into_iter().map(CheckinList).collect())
    }

    /// A list's valid tickets for scanning offline, signed (see `docs/checkin.md`):
    /// complete, or with `since` (the previous download's `cursor`) what changed.
    async fn checkin_download(
        &self,
        ctx: &Context<'_>,
        list_id: ID,
        since: Option<String>,
    ) -> Result<CheckinDownload> {
        let services = services(ctx)?;
        let list_id = ids::decode(&list_id, Kind::CHECKIN_LIST, "listId")?;
        let principal = principal(ctx);
        // Who asks is checked before the signing key is read.
        lists::get(&services.db, principal, list_id).await?;
        let signer = services.signer.get(&services.db).await?;
        let download = offline::download(
            &services.db,
            principal,
            &signer,
            services.now(),
            list_id,
            since.as_deref(),
        )
        .await?;
        Ok(CheckinDownload {
            document: download.document,
            signature: download.signature,
            public_key: download.public_key,
            key_id: download.key_id,
        })
    }

    /// Team permission `CHECK_IN`: the scanner devices of an event.
    async fn scanner_devices(&self, ctx: &Context<'_>, event_id: ID) -> Result<Vec<ScannerDevice>> {
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let rows = scanners::of_event(&services(ctx)?.db, principal(ctx), event_id).await?;
        Ok(rows.into_iter().map(ScannerDevice).collect())
    }
}

#[derive(InputObject)]
pub struct CheckinListInput {
    pub event_id: ID,
    pub name: String,
    /// Admits only these products; every admission product when empty.
    #[graphql(default)]
    pub product_ids: Vec<ID>,
    /// Admits only tickets of this date; every date when not given.
    pub sub_event_id: Option<ID>,
    #[graphql(default)]
    pub include_pending: bool,
    #[graphql(default)]
    pub allow_multiple_entries: bool,
    #[graphql(default = true)]
    pub allow_entry_after_exit: bool,
    #[graphql(default)]
    pub questions: Vec<String>,
}

#[derive(InputObject)]
pub struct UpdateCheckinListInput {
    pub list_id: ID,
    pub name: Option<String>,
    /// Replaces the admitted products; an empty list admits all.
    pub product_ids: Option<Vec<ID>>,
    /// Narrows to one date (see `allDates`).
    pub sub_event_id: Option<ID>,
    /// Admits every date again.
    #[graphql(default)]
    pub all_dates: bool,
    pub include_pending: Option<bool>,
    pub allow_multiple_entries: Option<bool>,
    pub allow_entry_after_exit: Option<bool>,
    pub questions: Option<Vec<String>>,
}

#[derive(SimpleObject)]
pub struct CheckinListPayload {
    pub list: CheckinList,
}

#[derive(InputObject)]
pub struct DeleteCheckinListInput {
    pub list_id: ID,
}

#[derive(SimpleObject)]
pub struct DeleteCheckinListPayload {
    pub ok: bool,
}

#[derive(InputObject)]
pub struct IssueScannerInput {
    pub event_id: ID,
    pub name: String,
    pub gate: String,
}

#[derive(SimpleObject)]
pub struct IssueScannerPayload {
    pub scanner: ScannerDevice,
    /// Shown once: the device exchanges it with `scannerSession`.
    pub credential: String,
}

#[derive(InputObject)]
pub struct RevokeScannerInput {
    pub scanner_id: ID,
}

#[derive(SimpleObject)]
pub struct ScannerPayload {
    pub scanner: ScannerDevice,
}

#[derive(InputObject)]
pub struct ScannerSessionInput {
    pub credential: String,
}

#[derive(SimpleObject)]
pub struct ScannerSessionPayload {
    /// Send as `Authorization: Bearer …` until `expiresAt`, then exchange again.
    pub access_token: String,
    pub expires_at: DateTime,
    pub scanner: ScannerDevice,
    /// The Ed25519 public key (base64url) that signs `checkinDownload`:
    /// keep it to verify downloads offline.
    pub signing_key: String,
    pub signing_key_id: String,
}

/// An answer given at the door: to one of the event's questions by
/// `questionId` (`answer`, or `values` for multiple choice), or to one of the
/// list's free-text questions by its text (`question`, deprecated).
#[derive(InputObject)]
pub struct CheckinAnswerInput {
    /// The text of a list's free-text question (or of an event question).
    pub question: Option<String>,
    /// One of `CheckinNeedsAnswers.askedQuestions`.
    pub question_id: Option<ID>,
    pub answer: Option<String>,
    /// The options chosen of a multiple choice question.
    pub values: Option<Vec<String>>,
}

/// A scan's answers: by text (the list's questions) and by question id.
fn door_answers(
    input: Vec<CheckinAnswerInput>,
) -> Result<(BTreeMap<String, String>, Vec<AnswerInput>)> {
    let mut by_text = BTreeMap::new();
    let mut by_id = Vec::new();
    for answer in input {
        match (answer.question, answer.question_id) {
            (None, Some(id)) => by_id.push(AnswerInput {
                question_id: ids::decode(&id, Kind::QUESTION, "answers")?,
                value: answer.answer,
                values: answer.values,
            }),
            (Some(text), None) if answer.values.is_none() => {
                by_text.insert(text, answer.answer.unwrap_or_default());
            }
            _ => {
                return Err(AppError::bad_input(
                    "answers",
                    "answer by questionId, or a list's question by its text with one answer",
                )
                .into());
            }
        }
    }
    if by_id.len() > super::questions::MAX_ANSWERS {
        return Err(AppError::bad_input("answers", "at most 50 answers by questionId").into());
    }
    Ok((by_text, by_id))
}

#[derive(InputObject)]
pub struct RedeemTicketInput {
    /// What the QR code holds: the ticket's secret or its ticket key.
    pub secret: String,
    /// The lists to admit on (of one event); a ticket valid on several is `AMBIGUOUS`.
    pub list_ids: Vec<ID>,
    #[graphql(name = "type", default_with = "CheckinType::Entry")]
    pub kind: CheckinType,
    /// Where a person scans; a scanner scans at its own gate.
    pub gate: Option<String>,
    /// When the scan happened (an upload's); now when not given.
    pub scanned_at: Option<DateTime>,
    /// Unique per scan: a repeat gets the first answer and records nothing new.
    pub nonce: Option<String>,
    /// Records a scan that already happened offline, even where it would be rejected.
    #[graphql(default)]
    pub force: bool,
    #[graphql(default)]
    pub answers: Vec<CheckinAnswerInput>,
    pub note: Option<String>,
}

/// A scan made offline.
#[derive(InputObject)]
pub struct OfflineScanInput {
    pub secret: String,
    #[graphql(name = "type", default_with = "CheckinType::Entry")]
    pub kind: CheckinType,
    pub scanned_at: DateTime,
    /// Required: a retried upload is recognized by it.
    pub nonce: String,
    /// It already happened: recorded even where it would be rejected now.
    #[graphql(default = true)]
    pub force: bool,
    #[graphql(default)]
    pub answers: Vec<CheckinAnswerInput>,
    pub note: Option<String>,
}

#[derive(InputObject)]
pub struct UploadCheckinsInput {
    pub list_ids: Vec<ID>,
    pub scans: Vec<OfflineScanInput>,
}

/// One uploaded scan's outcome.
#[derive(SimpleObject)]
pub struct UploadedCheckin {
    pub nonce: String,
    pub result: RedeemResult,
}

#[derive(SimpleObject)]
pub struct UploadCheckinsPayload {
    /// In the order sent.
    pub results: Vec<UploadedCheckin>,
}

fn id_list(ids: &[ID], kind: Kind, field: &'static str) -> Result<Vec<i32>> {
    Ok(ids
        .iter()
        .map(|id| ids::decode(id, kind, field))
        .collect::<Result<Vec<_>, _>>()?)
}

#[derive(Default)]
pub struct CheckinMutation;

#[Object]
impl CheckinMutation {
    /// Team permission `CHECK_IN`: creates a check-in list.
    async fn create_checkin_list(
        &self,
        ctx: &Context<'_>,
        input: CheckinListInput,
    ) -> Result<CheckinListPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let products = id_list(&input.product_ids, Kind::PRODUCT, "productIds")?;
        let sub_event_id = input
            .sub_event_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::SUB_EVENT, "subEventId"))
            .transpose()?;
        let (list, _) = lists::create(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            lists::ListInput {
                name: Some(input.name),
                product_ids: Some(products),
                sub_event_id: Some(sub_event_id),
                include_pending: Some(input.include_pending),
                allow_multiple_entries: Some(input.allow_multiple_entries),
                allow_entry_after_exit: Some(input.allow_entry_after_exit),
                questions: Some(input.questions),
            },
        )
        .await?;
        Ok(CheckinListPayload {
            list: CheckinList(list),
        })
    }

    /// Team permission `CHECK_IN`: changes a check-in list.
    async fn update_checkin_list(
        &self,
        ctx: &Context<'_>,
        input: UpdateCheckinListInput,
    ) -> Result<CheckinListPayload> {
        let services = services(ctx)?;
        let list_id = ids::decode(&input.list_id, Kind::CHECKIN_LIST, "listId")?;
        let products = input
            .product_ids
            .as_deref()
            .map(|ids| id_list(ids, Kind::PRODUCT, "productIds"))
            .transpose()?;
        let sub_event_id = match (&input.sub_event_id, input.all_dates) {
            (Some(_), true) => {
                return Err(crate::error::AppError::bad_input(
                    "allDates",
                    "give either subEventId or allDates",
                )
                .into());
            }
            (Some(id), false) => Some(Some(ids::decode(id, Kind::SUB_EVENT, "subEventId")?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let (list, _) = lists::update(
            &services.db,
            principal(ctx),
            services.now(),
            list_id,
            lists::ListInput {
                name: input.name,
                product_ids: products,
                sub_event_id,
                include_pending: input.include_pending,
                allow_multiple_entries: input.allow_multiple_entries,
                allow_entry_after_exit: input.allow_entry_after_exit,
                questions: input.questions,
            },
        )
        .await?;
        services.doors.forget_list(list.id);
        Ok(CheckinListPayload {
            list: CheckinList(list),
        })
    }

    /// Team permission `CHECK_IN`: deletes a check-in list with its history.
    async fn delete_checkin_list(
        &self,
        ctx: &Context<'_>,
        input: DeleteCheckinListInput,
    ) -> Result<DeleteCheckinListPayload> {
        let services = services(ctx)?;
        let list_id = ids::decode(&input.list_id, Kind::CHECKIN_LIST, "listId")?;
        lists::delete(&services.db, principal(ctx), services.now(), list_id).await?;
        services.doors.forget_list(list_id);
        Ok(DeleteCheckinListPayload { ok: true })
    }

    /// Team permission `CHECK_IN`: issues a scanner device for an event's
    /// gate; its credential is shown once.
    async fn issue_scanner(
        &self,
        ctx: &Context<'_>,
        input: IssueScannerInput,
    ) -> Result<IssueScannerPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let (device, credential) = scanners::issue(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            &input.name,
            &input.gate,
        )
        .await?;
        Ok(IssueScannerPayload {
            scanner: ScannerDevice(device),
            credential,
        })
    }

    /// Team permission `CHECK_IN`: revokes a scanner device at once.
    async fn revoke_scanner(
        &self,
        ctx: &Context<'_>,
        input: RevokeScannerInput,
    ) -> Result<ScannerPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.scanner_id, Kind::SCANNER_DEVICE, "scannerId")?;
        let device = scanners::revoke(&services.db, principal(ctx), services.now(), id).await?;
        services.doors.forget_scanner(device.id);
        Ok(ScannerPayload {
            scanner: ScannerDevice(device),
        })
    }

    /// A scanner device exchanges its credential for a short-lived access token.
    async fn scanner_session(
        &self,
        ctx: &Context<'_>,
        input: ScannerSessionInput,
    ) -> Result<ScannerSessionPayload> {
        let services = services(ctx)?;
        let (device, token, expires) = scanners::exchange(
            &services.db,
            &services.keys,
            &services.checkin,
            services.now(),
            &input.credential,
        )
        .await?;
        let signer = services.signer.get(&services.db).await?;
        Ok(ScannerSessionPayload {
            access_token: token,
            expires_at: DateTime(expires),
            scanner: ScannerDevice(device),
            signing_key: signer.public_key(),
            signing_key_id: signer.key_id(),
        })
    }

    /// Uploads scans made offline (the event's scanners, and team members
    /// with the check-in permission): each is redeemed as `redeemTicket` would,
    /// idempotent by nonce, and gets its outcome.
    async fn upload_checkins(
        &self,
        ctx: &Context<'_>,
        input: UploadCheckinsInput,
    ) -> Result<UploadCheckinsPayload> {
        let services = services(ctx)?;
        let list_ids = id_list(&input.list_ids, Kind::CHECKIN_LIST, "listIds")?;
        let scans = input
            .scans
            .into_iter()
            .map(|s| {
                // The scan happened: answers that cannot be read are dropped,
                // like answers that do not fit, and the entry is kept.
                let (answers, question_answers) = door_answers(s.answers).unwrap_or_else(|err| {
                    tracing::info!(nonce = %s.nonce, error = %err.message, "an offline scan's answers cannot be read; dropped");
                    Default::default()
                });
                Ok(Scan {
                    secret: s.secret,
                    list_ids: list_ids.clone(),
                    kind: Some(s.kind.into()),
                    gate: None,
                    scanned_at: Some(s.scanned_at.0),
                    nonce: Some(s.nonce),
                    force: s.force,
                    answers,
                    question_answers,
                    note: s.note,
                    counted_already: true,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let uploaded = offline::upload(services, principal(ctx), services.now(), scans).await?;
        let mut results = Vec::with_capacity(uploaded.len());
        for (nonce, redeemed) in uploaded {
            results.push(UploadedCheckin {
                nonce,
                result: RedeemResult::new(redeemed.outcome, redeemed.remaining),
            });
        }
        Ok(UploadCheckinsPayload { results })
    }

    /// Scans a ticket at a door (the event's scanners, and team members with
    /// the check-in permission). Refusals are a `CheckinRejected` result,
    /// recorded; errors are for bad input and callers who may not scan.
    async fn redeem_ticket(
        &self,
        ctx: &Context<'_>,
        input: RedeemTicketInput,
    ) -> Result<RedeemResult> {
        let services = services(ctx)?;
        let list_ids = id_list(&input.list_ids, Kind::CHECKIN_LIST, "listIds")?;
        let (answers, question_answers) = door_answers(input.answers)?;
        let scan = Scan {
            secret: input.secret,
            list_ids,
            kind: Some(input.kind.into()),
            gate: input.gate,
            scanned_at: input.scanned_at.map(|t| t.0),
            nonce: input.nonce,
            force: input.force,
            answers,
            question_answers,
            note: input.note,
            counted_already: false,
        };
        let redeemed = redeem::redeem(services, principal(ctx), services.now(), scan).await?;
        Ok(RedeemResult::new(redeemed.outcome, redeemed.remaining))
    }
}

/// A scan at the event's doors, live, with the list's figures for its product.
pub struct CheckinActivity {
    event: live::CheckinRecorded,
    cursor: String,
}

#[Object]
impl CheckinActivity {
    /// This scan's place in the stream; resubscribe with `after` set to it.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn checkin(&self) -> Checkin {
        Checkin(self.event.checkin.clone())
    }
    async fn product_id(&self) -> Option<ID> {
        self.event
            .product_id
            .map(|id| ids::encode(Kind::PRODUCT, id))
    }
    async fn product_name(&self) -> Option<&str> {
        self.event.product_name.as_deref()
    }
    async fn attendee_name(&self) -> Option<&str> {
        self.event.attendee_name.as_deref()
    }
    /// The list's figures for the ticket's product right after this scan.
    async fn counts(&self) -> Option<CheckinProductStatus> {
        self.event.counts.map(|c| CheckinProductStatus {
            product_id: ids::encode(Kind::PRODUCT, c.product_id),
            positions: 0,
            checked_in: c.checked_in,
            inside: c.inside,
        })
    }
}

#[derive(Default)]
pub struct CheckinSubscription;

#[Subscription]
impl CheckinSubscription {
    /// Every scan at an event's doors (or at one list), live, for door
    /// dashboards. Open to the event's scanners and to team members with the
    /// check-in permission. With `after` (the last `cursor` received), the
    /// scans missed since come first.
    async fn checkin_activity(
        &self,
        ctx: &Context<'_>,
        event_id: ID,
        list_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<CheckinActivity>> + use<>> {
        let services = services(ctx)?;
        let event_id = ids::decode(&event_id, Kind::EVENT, "eventId")?;
        let list_id = list_id
            .as_ref()
            .map(|id| ids::decode(id, Kind::CHECKIN_LIST, "listId"))
            .transpose()?;
        super::access::door(&services.db, principal(ctx), event_id).await?;
        let steps = follow(
            services.bus.as_ref(),
            Topic::Checkin(event_id),
            after.as_deref(),
        )
        .await?;
        Ok(steps.filter_map(move |step| {
            let item = match step {
                Err(lagging) => Some(Err(lagging.into())),
                Ok(step) => match &step.event.envelope.event {
                    DomainEvent::CheckinRecorded(recorded)
                        if list_id.is_none_or(|l| l == recorded.checkin.list_id) =>
                    {
                        Some(Ok(CheckinActivity {
                            event: recorded.clone(),
                            cursor: step.cursor,
                        }))
                    }
                    _ => None,
                },
            };
            async move { item }
        }))
    }
}
