//! Event meta properties (pretix `EventMetaProperty`, `EventMetaValue`,
//! `SubEventMetaValue`): the organizer's properties (team permission
//! `CHANGE_ORGANIZER_SETTINGS`), the values of events and dates (team
//! permission `CHANGE_EVENTS`), and `Event.meta` / `SubEvent.meta`, every
//! property with its effective value.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use super::back_office::{EventPayload, SubEventPayload};
use super::types::{Event, SubEvent};
use crate::auth::guards::principal;
use crate::entities::event_meta_property;
use crate::graphql::ids::{self, Kind};
use crate::services::services;
use crate::ticketing::meta;

impl Kind {
    pub const EVENT_META_PROPERTY: Self = Self::named("EventMetaProperty");
}

/// A meta information field the organizer defines for its events, with a
/// default for the events that set no value.
pub struct EventMetaProperty(pub event_meta_property::Model);

#[Object]
impl EventMetaProperty {
    async fn id(&self) -> ID {
        ids::encode(Kind::EVENT_META_PROPERTY, self.0.id)
    }
    async fn organizer_id(&self) -> ID {
        ids::encode(Kind::ORGANIZER, self.0.organizer_id)
    }
    /// Letters, digits and underscores; unique within the organizer.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The value of events (and dates) that set none.
    async fn default_value(&self) -> &str {
        &self.0.default_value
    }
}

/// Where an effective meta value comes from.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum MetaValueSource {
    /// The date of the series set it.
    SubEvent,
    /// The event set it.
    Event,
    /// Neither did: the property's default.
    Default,
}

impl From<meta::Source> for MetaValueSource {
    fn from(source: meta::Source) -> Self {
        match source {
            meta::Source::SubEvent => Self::SubEvent,
            meta::Source::Event => Self::Event,
            meta::Source::Default => Self::Default,
        }
    }
}

/// A property and its effective value for an event or a date.
pub struct EventMetaEntry(pub meta::Resolved);

#[Object]
impl EventMetaEntry {
    async fn property(&self) -> EventMetaProperty {
        EventMetaProperty(self.0.property.clone())
    }
    /// The property's name.
    async fn name(&self) -> &str {
        &self.0.property.name
    }
    /// The date's own value, else the event's, else the default.
    async fn value(&self) -> &str {
        &self.0.value
    }
    async fn source(&self) -> MetaValueSource {
        self.0.source.into()
    }
}

/// The entries of [`meta::resolve`].
pub fn entries(rows: Vec<meta::Resolved>) -> Vec<EventMetaEntry> {
    rows.into_iter().map(EventMetaEntry).collect()
}

#[derive(InputObject)]
pub struct CreateEventMetaPropertyInput {
    pub organizer_id: ID,
    /// 1 to 50 letters, digits and underscores; unique within the organizer.
    pub name: String,
    /// At most 2000 characters; empty when not given.
    #[graphql(default)]
    pub default_value: String,
}

#[derive(InputObject)]
pub struct UpdateEventMetaPropertyInput {
    pub property_id: ID,
    pub name: Option<String>,
    pub default_value: Option<String>,
}

#[derive(InputObject)]
pub struct DeleteEventMetaPropertyInput {
    pub property_id: ID,
}

#[derive(SimpleObject)]
pub struct EventMetaPropertyPayload {
    pub property: EventMetaProperty,
}

#[derive(SimpleObject)]
pub struct DeleteEventMetaPropertyPayload {
    pub deleted_property_id: ID,
}

#[derive(InputObject)]
pub struct SetEventMetaValueInput {
    pub event_id: ID,
    /// A property of the event's organizer.
    pub property_id: ID,
    /// At most 2000 characters.
    pub value: String,
}

#[derive(InputObject)]
pub struct ClearEventMetaValueInput {
    pub event_id: ID,
    pub property_id: ID,
}

#[derive(InputObject)]
pub struct SetSubEventMetaValueInput {
    pub sub_event_id: ID,
    /// A property of the event's organizer.
    pub property_id: ID,
    /// At most 2000 characters.
    pub value: String,
}

#[derive(InputObject)]
pub struct ClearSubEventMetaValueInput {
    pub sub_event_id: ID,
    pub property_id: ID,
}

#[derive(Default)]
pub struct MetaMutation;

#[Object]
impl MetaMutation {
    /// Team permission `CHANGE_ORGANIZER_SETTINGS`: defines a meta property
    /// for the organizer's events.
    async fn create_event_meta_property(
        &self,
        ctx: &Context<'_>,
        input: CreateEventMetaPropertyInput,
    ) -> Result<EventMetaPropertyPayload> {
        let services = services(ctx)?;
        let organizer_id = ids::decode(&input.organizer_id, Kind::ORGANIZER, "organizerId")?;
        let row = meta::create_property(
            &services.db,
            principal(ctx),
            services.now(),
            organizer_id,
            &input.name,
            &input.default_value,
        )
        .await?;
        Ok(EventMetaPropertyPayload {
            property: EventMetaProperty(row),
        })
    }

    /// Team permission `CHANGE_ORGANIZER_SETTINGS`: renames a meta property
    /// or changes its default.
    async fn update_event_meta_property(
        &self,
        ctx: &Context<'_>,
        input: UpdateEventMetaPropertyInput,
    ) -> Result<EventMetaPropertyPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        let row = meta::update_property(
            &services.db,
            principal(ctx),
            services.now(),
            id,
            input.name.as_deref(),
            input.default_value.as_deref(),
        )
        .await?;
        Ok(EventMetaPropertyPayload {
            property: EventMetaProperty(row),
        })
    }

    /// Team permission `CHANGE_ORGANIZER_SETTINGS`: deletes a meta property
    /// and every event's and date's value of it.
    async fn delete_event_meta_property(
        &self,
        ctx: &Context<'_>,
        input: DeleteEventMetaPropertyInput,
    ) -> Result<DeleteEventMetaPropertyPayload> {
        let services = services(ctx)?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        meta::delete_property(&services.db, principal(ctx), services.now(), id).await?;
        Ok(DeleteEventMetaPropertyPayload {
            deleted_property_id: input.property_id,
        })
    }

    /// Team permission `CHANGE_EVENTS`: sets the event's value of a meta property.
    async fn set_event_meta_value(
        &self,
        ctx: &Context<'_>,
        input: SetEventMetaValueInput,
    ) -> Result<EventPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        let event = meta::set_event_value(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            id,
            Some(&input.value),
        )
        .await?;
        Ok(EventPayload {
            event: Event(event),
        })
    }

    /// Team permission `CHANGE_EVENTS`: removes the event's value of a meta
    /// property, so its default applies.
    async fn clear_event_meta_value(
        &self,
        ctx: &Context<'_>,
        input: ClearEventMetaValueInput,
    ) -> Result<EventPayload> {
        let services = services(ctx)?;
        let event_id = ids::decode(&input.event_id, Kind::EVENT, "eventId")?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        let event = meta::set_event_value(
            &services.db,
            principal(ctx),
            services.now(),
            event_id,
            id,
            None,
        )
        .await?;
        Ok(EventPayload {
            event: Event(event),
        })
    }

    /// Team permission `CHANGE_EVENTS`: sets a date's value of a meta
    /// property, used over the event's.
    async fn set_sub_event_meta_value(
        &self,
        ctx: &Context<'_>,
        input: SetSubEventMetaValueInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let date_id = ids::decode(&input.sub_event_id, Kind::SUB_EVENT, "subEventId")?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        let date = meta::set_sub_event_value(
            &services.db,
            principal(ctx),
            services.now(),
            date_id,
            id,
            Some(&input.value),
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }

    /// Team permission `CHANGE_EVENTS`: removes a date's value of a meta
    /// property, so the event's (or the default) applies.
    async fn clear_sub_event_meta_value(
        &self,
        ctx: &Context<'_>,
        input: ClearSubEventMetaValueInput,
    ) -> Result<SubEventPayload> {
        let services = services(ctx)?;
        let date_id = ids::decode(&input.sub_event_id, Kind::SUB_EVENT, "subEventId")?;
        let id = ids::decode(&input.property_id, Kind::EVENT_META_PROPERTY, "propertyId")?;
        let date = meta::set_sub_event_value(
            &services.db,
            principal(ctx),
            services.now(),
            date_id,
            id,
            None,
        )
        .await?;
        Ok(SubEventPayload {
            sub_event: SubEvent(date),
        })
    }
}
