//! An organizer's team (pretix `Team`): pretix's permission set, on all the
//! organizer's events or on the ones listed in `team_events`.

use sea_orm::entity::prelude::*;

use crate::auth::TeamPermission;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "teams")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub organizer_id: i32,
    pub name: String,
    pub all_events: bool,
    pub can_create_events: bool,
    pub can_change_teams: bool,
    pub can_manage_customers: bool,
    pub can_change_organizer_settings: bool,
    pub can_change_event_settings: bool,
    pub can_change_items: bool,
    pub can_view_orders: bool,
    pub can_change_orders: bool,
    pub can_checkin_orders: bool,
    pub can_view_vouchers: bool,
    pub can_change_vouchers: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The permissions the team's flags grant.
    pub fn permissions(&self) -> Vec<TeamPermission> {
        use TeamPermission as P;
        [
            (self.can_create_events, P::CreateEvents),
            (self.can_change_teams, P::ChangeTeams),
            (self.can_manage_customers, P::ManageCustomers),
            (
                self.can_change_organizer_settings,
                P::ChangeOrganizerSettings,
            ),
            (self.can_change_event_settings, P::ChangeEvents),
            (self.can_change_items, P::ChangeItems),
            (self.can_view_orders, P::ViewOrders),
            (self.can_change_orders, P::ChangeOrders),
            (self.can_checkin_orders, P::CheckIn),
            (self.can_view_vouchers, P::ViewVouchers),
            (self.can_change_vouchers, P::ChangeVouchers),
        ]
        .into_iter()
        .filter_map(|(granted, permission)| granted.then_some(permission))
        .collect()
    }

    /// Sets the flags to exactly `permissions`.
    pub fn grant(active: &mut ActiveModel, permissions: &[TeamPermission]) {
        use TeamPermission as P;
        use sea_orm::Set;
        let has = |p| permissions.contains(&p);
        active.can_create_events = Set(has(P::CreateEvents));
        active.can_change_teams = Set(has(P::ChangeTeams));
        active.can_manage_customers = Set(has(P::ManageCustomers));
        active.can_change_organizer_settings = Set(has(P::ChangeOrganizerSettings));
        active.can_change_event_settings = Set(has(P::ChangeEvents));
        active.can_change_items = Set(has(P::ChangeItems));
        active.can_view_orders = Set(has(P::ViewOrders));
        active.can_change_orders = Set(has(P::ChangeOrders));
        active.can_checkin_orders = Set(has(P::CheckIn));
        active.can_view_vouchers = Set(has(P::ViewVouchers));
        active.can_change_vouchers = Set(has(P::ChangeVouchers));
    }
}
