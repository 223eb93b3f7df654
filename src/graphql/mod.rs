//! Schema assembly: each domain contributes its query, mutation and
//! subscription parts, merged here, and its parts of shared types, merged in
//! `types`; plus IDs, pagination, the loader and the operation extensions.

pub mod document_limits;
pub mod ids;
pub mod live_session;
pub mod loaders;
pub mod observe;
pub mod pagination;
pub mod request_guard;
pub mod scalars;
pub mod types;

use async_graphql::dataloader::DataLoader;
use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::accounts::graphql::administration::{AdminMutation, AdminQuery};
use crate::accounts::graphql::self_service::{SelfServiceMutation, SelfServiceQuery};
use crate::accounts::graphql::{AccountMutation, AccountQuery};
use crate::charging::graphql::StationQuery;
use crate::devices::graphql::BaySubscription;
use crate::services::ServiceContext;
use document_limits::DocumentLimits;

#[derive(MergedObject, Default)]
pub struct Query(
    StationQuery,
    AccountQuery,
    SelfServiceQuery,
    AdminQuery,
    crate::supervision::graphql::AlertQuery,
    crate::ticketing::graphql::ShopQuery,
    crate::charging::reservations_graphql::ReservationQuery,
    crate::checkin::graphql::CheckinQuery,
    crate::devices::inventory_graphql::DeviceInventoryQuery,
    crate::supervision::technicians_graphql::TechnicianQuery,
    crate::devices::commands_graphql::DeviceCommandQuery,
    crate::charging::kiosks_graphql::KioskQuery,
    crate::charging::sessions_graphql::SessionQuery,
    crate::supervision::maintenance_graphql::MaintenanceQuery,
    crate::charging::pairing_graphql::PairingQuery,
    crate::charging::offline_graphql::OfflineKioskQuery,
    crate::supervision::telemetry_graphql::TelemetryQuery,
    crate::charging::overview_graphql::ChargingOverviewQuery,
    crate::ticketing::graphql::SalesQuery,
    crate::ticketing::graphql::StoreCreditQuery,
    crate::ticketing::graphql::InvoiceQuery,
    crate::devices::firmware_graphql::FirmwareQuery,
    crate::supervision::overview::SupervisionQuery,
    crate::ticketing::graphql::ProviderQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountMutation,
    SelfServiceMutation,
    AdminMutation,
    crate::devices::credentials_graphql::DeviceCredentialsMutation,
    crate::supervision::graphql::AlertMutation,
    crate::ticketing::graphql::BackOfficeMutation,
    crate::ticketing::graphql::ShopMutation,
    crate::ticketing::graphql::VoucherMutation,
    crate::ticketing::graphql::PaymentMutation,
    crate::charging::admin_graphql::NetworkMutation,
    crate::charging::reservations_graphql::ReservationMutation,
    crate::checkin::graphql::CheckinMutation,
    crate::devices::inventory_graphql::DeviceInventoryMutation,
    crate::supervision::technicians_graphql::TechnicianMutation,
    crate::devices::commands_graphql::DeviceCommandMutation,
    crate::charging::kiosks_graphql::KioskMutation,
    crate::charging::sessions_graphql::SessionMutation,
    crate::supervision::maintenance_graphql::MaintenanceMutation,
    crate::ticketing::graphql::TicketMutation,
    crate::charging::badge_links_graphql::BadgeLinkMutation,
    crate::charging::offline_graphql::KioskTerminalMutation,
    crate::ticketing::graphql::RefundMutation,
    crate::ticketing::graphql::InvoiceMutation,
    crate::devices::firmware_graphql::FirmwareMutation,
    crate::ticketing::graphql::ProviderMutation,
    crate::ticketing::graphql::MetaMutation,
    crate::ticketing::graphql::QuestionMutation,
    crate::ticketing::graphql::AddOnMutation,
    crate::ticketing::graphql::EditingMutation,
    crate::ticketing::graphql::DateMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(
    BaySubscription,
    crate::supervision::graphql::AlertSubscription,
    crate::checkin::graphql::CheckinSubscription,
    crate::charging::sessions_graphql::SessionSubscription,
    crate::ticketing::graphql::ShopSubscription,
    crate::charging::pairing_graphql::PairingSubscription,
);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Limits applied to every operation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
    /// Checked before async-graphql parses the document.
    pub document: DocumentLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth: 16,
            complexity: 2000,
            document: DocumentLimits::default(),
        }
    }
}

/// Builds the schema with its shared context: the services and the loader.
pub fn build_schema(services: ServiceContext, limits: Limits) -> AppSchema {
    let loader = DataLoader::new(loaders::DbLoader::new(services.db.clone()), tokio::spawn);
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(services)
    .data(loader)
    .limit_depth(limits.depth)
    .limit_complexity(limits.complexity)
    .limit_recursive_depth(limits.document.nesting)
    .extension(observe::Observe)
    .extension(request_guard::RequestGuard::new(limits.document))
    .extension(live_session::LiveSession)
    .finish()
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl()
}
