//! Who may call what: every root field of the schema is classified here, and each
//! class is refused to everyone outside it: anonymous callers, customers,
//! technicians, organizer members, kiosks, door scanners, team tokens, sessions
//! with a temporary password, and (for staff fields) everyone but staff. A new
//! root field fails the first test until it is classified.

use std::collections::BTreeSet;

use sea_orm::EntityTrait as _;
use serde_json::{Value, json};

use voltgate::auth::TeamPermission;

use crate::client::TestUser;
use crate::helpers::{TestApp, global_id, spawn_app};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, signed in or not, person or device.
    Public,
    /// A person signed in to an account whose password is not a temporary one.
    SignedIn,
    /// What a person with a temporary password may still do.
    SignedInEvenWithTemporaryPassword,
    /// Staff, and technicians within their stations.
    Supervisors,
    /// Staff only.
    Staff,
    /// Members of an organizer's team holding a permission for the event or
    /// organizer at hand, and team API tokens holding it (staff pass); the
    /// matrix of each operation is in `ticketing_permissions.rs`.
    Team,
    /// Door work: the event's scanners, and what `Team` allows with the
    /// check-in permission (the matrix is in `checkin.rs`).
    Door,
    /// A cabinet's kiosk, for its own cabinet only (`kiosks.rs`).
    Kiosks,
}

use Access::{
    Door, Kiosks, Public, SignedIn, SignedInEvenWithTemporaryPassword, Staff, Supervisors, Team,
};

/// Every root field, who may use it, and a valid operation calling it.
fn operations() -> Vec<(&'static str, Access, String)> {
    let user = global_id("User", 1);
    let badge = global_id("AuthMethod", 1);
    let reservation = global_id("Reservation", 1);
    let slot = (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339();
    vec![
        ("stations", Public, "{ stations { totalCount } }".into()),
        ("station", Public, format!("{{ station(id: \"{}\") {{ id }} }}", global_id("Station", 1))),
        ("registrationAvailability", Public, "{ registrationAvailability(username: \"someone\") { usernameAvailable } }".into()),
        ("register", Public, "mutation { register(input: { username: \"x\", email: \"x\", password: \"x\", acceptTerms: true, acceptPrivacyPolicy: true }) { accessToken } }".into()),
        ("login", Public, "mutation { login(input: { login: \"x\", password: \"x\" }) { accessToken } }".into()),
        ("refreshSession", Public, "mutation { refreshSession(input: { refreshToken: \"x\" }) { accessToken } }".into()),
        ("logout", Public, "mutation { logout(input: {}) { ok } }".into()),
        ("bayStatusChanged", Public, "subscription { bayStatusChanged { changedAt } }".into()),
        ("me", SignedInEvenWithTemporaryPassword, "{ me { id } }".into()),
        ("changePassword", SignedInEvenWithTemporaryPassword, "mutation { changePassword(input: { currentPassword: \"x\", newPassword: \"y\" }) { accessToken } }".into()),
        ("exportMyData", SignedIn, "{ exportMyData }".into()),
        ("updateProfile", SignedIn, "mutation { updateProfile(input: { fullName: \"x\" }) { user { id } } }".into()),
        ("updateConsents", SignedIn, "mutation { updateConsents(input: { notifications: true }) { status } }".into()),
        ("deleteAccount", SignedIn, "mutation { deleteAccount(input: { password: \"x\" }) { ok } }".into()),
        ("addRfidBadge", SignedIn, "mutation { addRfidBadge(input: { uid: \"AABBCCDD\" }) { authMethod { id } } }".into()),
        ("deleteAuthMethod", SignedIn, format!("mutation {{ deleteAuthMethod(input: {{ id: \"{badge}\" }}) {{ ok }} }}")),
        ("alerts", Supervisors, "{ alerts { totalCount } }".into()),
        ("alert", Supervisors, format!("{{ alert(id: \"{}\") {{ id }} }}", global_id("Alert", 1))),
        ("acknowledgeAlert", Supervisors, format!("mutation {{ acknowledgeAlert(id: \"{}\") {{ id }} }}", global_id("Alert", 1))),
        ("resolveAlert", Supervisors, format!("mutation {{ resolveAlert(id: \"{}\") {{ id }} }}", global_id("Alert", 1))),
        ("alertChanged", Supervisors, "subscription { alertChanged { cursor } }".into()),
        ("devices", Supervisors, "{ devices { totalCount } }".into()),
        ("device", Supervisors, format!("{{ device(id: \"{}\") {{ id }} }}", global_id("Device", 1))),
        ("registerDevice", Staff, format!("mutation {{ registerDevice(input: {{ bayId: \"{}\", macAddress: \"02:00:00:00:00:42\" }}) {{ device {{ id }} }} }}", global_id("Bay", 1))),
        ("updateDevice", Staff, format!("mutation {{ updateDevice(input: {{ deviceId: \"{}\", expectedFirmwareVersion: \"1.0\" }}) {{ device {{ id }} }} }}", global_id("Device", 1))),
        ("kioskOfflineEvents", Staff, "{ kioskOfflineEvents { totalCount } }".into()),
        ("supervision", Supervisors, "{ supervision { totals { devices } } }".into()),
        ("firmwarePolicy", Supervisors, "{ firmwarePolicy { expectedVersion } }".into()),
        ("scheduleOta", Staff, format!("mutation {{ scheduleOta(input: {{ deviceId: \"{}\", targetVersion: \"2.0\", url: \"https://fw.example.com/a.bin\" }}) {{ command {{ commandId }} }} }}", global_id("Device", 1))),
        ("setFirmwareUpdateStatus", Staff, format!("mutation {{ setFirmwareUpdateStatus(input: {{ deviceId: \"{}\", status: FAILED }}) {{ device {{ id }} }} }}", global_id("Device", 1))),
        ("retireDevice", Staff, format!("mutation {{ retireDevice(input: {{ deviceId: \"{}\" }}) {{ device {{ id }} }} }}", global_id("Device", 1))),
        ("technicians", Staff, "{ technicians { totalCount } }".into()),
        ("technician", Staff, format!("{{ technician(id: \"{}\") {{ id }} }}", global_id("Technician", 1))),
        ("technicianStationAssignments", Staff, "{ technicianStationAssignments { role } }".into()),
        ("createTechnician", Staff, format!("mutation {{ createTechnician(input: {{ userId: \"{user}\", name: \"x\" }}) {{ technician {{ id }} }} }}")),
        ("updateTechnician", Staff, format!("mutation {{ updateTechnician(input: {{ technicianId: \"{}\", name: \"x\" }}) {{ technician {{ id }} }} }}", global_id("Technician", 1))),
        ("deleteTechnician", Staff, format!("mutation {{ deleteTechnician(input: {{ technicianId: \"{}\" }}) {{ ok }} }}", global_id("Technician", 1))),
        ("assignTechnician", Staff, format!("mutation {{ assignTechnician(input: {{ technicianId: \"{}\", stationId: \"{}\" }}) {{ assignment {{ role }} }} }}", global_id("Technician", 1), global_id("Station", 1))),
        ("updateStationAssignment", Staff, format!("mutation {{ updateStationAssignment(input: {{ technicianId: \"{}\", stationId: \"{}\", isActive: false }}) {{ assignment {{ role }} }} }}", global_id("Technician", 1), global_id("Station", 1))),
        ("removeStationAssignment", Staff, format!("mutation {{ removeStationAssignment(input: {{ technicianId: \"{}\", stationId: \"{}\" }}) {{ ok }} }}", global_id("Technician", 1), global_id("Station", 1))),
        ("maintenances", Staff, "{ maintenances { totalCount } }".into()),
        ("myMaintenances", Supervisors, "{ myMaintenances { totalCount } }".into()),
        ("createMaintenance", Staff, format!("mutation {{ createMaintenance(input: {{ stationId: \"{}\", kind: \"x\", plannedAt: \"2026-12-24T08:00:00Z\" }}) {{ maintenance {{ id }} }} }}", global_id("Station", 1))),
        ("updateMaintenance", Staff, format!("mutation {{ updateMaintenance(input: {{ maintenanceId: \"{}\", kind: \"x\" }}) {{ maintenance {{ id }} }} }}", global_id("Maintenance", 1))),
        ("deleteMaintenance", Staff, format!("mutation {{ deleteMaintenance(input: {{ maintenanceId: \"{}\" }}) {{ ok }} }}", global_id("Maintenance", 1))),
        ("closeAlert", Staff, format!("mutation {{ closeAlert(id: \"{}\") {{ id }} }}", global_id("Alert", 1))),
        ("users", Staff, "{ users { totalCount } }".into()),
        ("user", Staff, format!("{{ user(id: \"{user}\") {{ id }} }}")),
        ("adminOverview", Staff, "{ adminOverview { users } }".into()),
        ("roles", Staff, "{ roles { role } }".into()),
        ("securityEvents", Staff, "{ securityEvents { totalCount } }".into()),
        ("setUserStatus", Staff, format!("mutation {{ setUserStatus(input: {{ userId: \"{user}\", status: SUSPENDED }}) {{ user {{ id }} }} }}")),
        ("resetUserPassword", Staff, format!("mutation {{ resetUserPassword(input: {{ userId: \"{user}\" }}) {{ temporaryPassword }} }}")),
        ("createUser", Staff, "mutation { createUser(input: { username: \"newcomer\", email: \"n@example.com\", password: \"Correct-horse-42\" }) { user { id } } }".into()),
        ("updateUser", Staff, format!("mutation {{ updateUser(input: {{ userId: \"{user}\", fullName: \"x\" }}) {{ user {{ id }} }} }}")),
        ("deleteUser", Staff, format!("mutation {{ deleteUser(input: {{ userId: \"{user}\" }}) {{ ok }} }}")),
        ("grantUserRole", Staff, format!("mutation {{ grantUserRole(input: {{ userId: \"{user}\", role: TECHNICIAN }}) {{ user {{ id }} }} }}")),
        ("revokeUserRole", Staff, format!("mutation {{ revokeUserRole(input: {{ userId: \"{user}\", role: CUSTOMER }}) {{ user {{ id }} }} }}")),
        ("registerUserBadge", Staff, format!("mutation {{ registerUserBadge(input: {{ userId: \"{user}\", uid: \"AABBCCDD\" }}) {{ authMethod {{ id }} }} }}")),
        ("issueDeviceCredentials", Staff, format!("mutation {{ issueDeviceCredentials(input: {{ deviceId: \"{}\" }}) {{ username }} }}", global_id("Device", 1))),
        ("deviceCommands", Staff, format!("{{ deviceCommands(bayId: \"{}\") {{ commandId }} }}", global_id("Bay", 1))),
        ("sendDeviceCommand", Staff, format!("mutation {{ sendDeviceCommand(input: {{ bayId: \"{}\", action: LOCK }}) {{ command {{ commandId }} }} }}", global_id("Bay", 1))),
        ("kioskCredentials", Staff, format!("{{ kioskCredentials(cabinetId: \"{}\") {{ id }} }}", global_id("Cabinet", 1))),
        ("issueKioskCredential", Staff, format!("mutation {{ issueKioskCredential(input: {{ cabinetId: \"{}\" }}) {{ secret }} }}", global_id("Cabinet", 1))),
        ("revokeKioskCredential", Staff, format!("mutation {{ revokeKioskCredential(input: {{ id: \"{}\" }}) {{ credential {{ id }} }} }}", global_id("KioskCredential", 1))),
        ("kioskSignIn", Public, "mutation { kioskSignIn(input: { credential: \"vgk_wrong\" }) { accessToken } }".into()),
        ("terminal", Kiosks, "{ terminal { cabinet { id } } }".into()),
        ("terminalAuthenticate", Kiosks, format!("mutation {{ terminalAuthenticate(input: {{ bay: \"{}\", method: CODE, credential: \"12345678\" }}) {{ session {{ id }} }} }}", global_id("Bay", 999_999))),
        ("terminalStopSession", Kiosks, format!("mutation {{ terminalStopSession(input: {{ session: \"{}\" }}) {{ session {{ id }} }} }}", global_id("ChargingSession", 999_999))),
        ("chargeStateChanged", SignedIn, "subscription { chargeStateChanged { state cursor } }".into()),
        ("chargingSession", SignedIn, format!("{{ chargingSession(id: \"{}\") {{ id }} }}", global_id("ChargingSession", 1))),
        ("stopChargingSession", SignedIn, format!("mutation {{ stopChargingSession(input: {{ session: \"{}\" }}) {{ session {{ id }} }} }}", global_id("ChargingSession", 1))),
        ("revokeDeviceCredentials", Staff, format!("mutation {{ revokeDeviceCredentials(input: {{ deviceId: \"{}\" }}) {{ device {{ id }} }} }}", global_id("Device", 1))),
        ("nearestStations", Public, "{ nearestStations(latitude: 48.8, longitude: 2.3) { distanceKm } }".into()),
        ("bayAvailability", Public, format!("{{ bayAvailability(stationId: \"{}\", startsAt: \"{slot}\", durationMinutes: 30) {{ available }} }}", global_id("Station", 1))),
        ("reservationRules", Public, "{ reservationRules { durationsMinutes } }".into()),
        ("myReservations", SignedIn, "{ myReservations { totalCount } }".into()),
        ("reservation", SignedIn, format!("{{ reservation(id: \"{reservation}\") {{ id }} }}")),
        ("createReservation", SignedIn, format!("mutation {{ createReservation(input: {{ bayId: \"{}\", startsAt: \"{slot}\", durationMinutes: 30, accessMode: CODE }}) {{ reservation {{ id }} }} }}", global_id("Bay", 1))),
        ("cancelReservation", SignedIn, format!("mutation {{ cancelReservation(input: {{ id: \"{reservation}\" }}) {{ reservation {{ id }} }} }}")),
        ("regenerateReservationAccess", SignedIn, format!("mutation {{ regenerateReservationAccess(input: {{ id: \"{reservation}\" }}) {{ reservation {{ id }} }} }}")),
        ("createStation", Staff, "mutation { createStation(input: { name: \"North\" }) { station { id } } }".into()),
        ("updateStation", Staff, format!("mutation {{ updateStation(input: {{ id: \"{}\", name: \"North\" }}) {{ station {{ id }} }} }}", global_id("Station", 1))),
        ("deleteStation", Staff, format!("mutation {{ deleteStation(input: {{ id: \"{}\" }}) {{ ok }} }}", global_id("Station", 999))),
        ("createCabinet", Staff, format!("mutation {{ createCabinet(input: {{ stationId: \"{}\", number: 9, mqttPrefix: \"auth/9\" }}) {{ cabinet {{ id }} }} }}", global_id("Station", 1))),
        ("updateCabinet", Staff, format!("mutation {{ updateCabinet(input: {{ id: \"{}\", name: \"C\" }}) {{ cabinet {{ id }} }} }}", global_id("Cabinet", 1))),
        ("deleteCabinet", Staff, format!("mutation {{ deleteCabinet(input: {{ id: \"{}\" }}) {{ ok }} }}", global_id("Cabinet", 999))),
        ("createBay", Staff, format!("mutation {{ createBay(input: {{ cabinetId: \"{}\", number: 9 }}) {{ bay {{ id }} }} }}", global_id("Cabinet", 1))),
        ("updateBay", Staff, format!("mutation {{ updateBay(input: {{ id: \"{}\", number: 1 }}) {{ bay {{ id }} }} }}", global_id("Bay", 1))),
        ("deleteBay", Staff, format!("mutation {{ deleteBay(input: {{ id: \"{}\" }}) {{ ok }} }}", global_id("Bay", 999))),
        ("revokeUserBadge", Staff, format!("mutation {{ revokeUserBadge(input: {{ authMethodId: \"{badge}\" }}) {{ authMethod {{ id }} }} }}")),
        ("organizer", Public, "{ organizer(slug: \"nobody\") { id } }".into()),
        ("event", Public, "{ event(organizerSlug: \"nobody\", slug: \"nothing\") { id } }".into()),
        ("cart", Public, "{ cart(id: \"0123456789abcdef0123\") { id } }".into()),
        ("order", Public, format!("{{ order(eventId: \"{}\", code: \"ABCDEF\", secret: \"x\") {{ code }} }}", global_id("Event", 1))),
        ("addToCart", Public, format!("mutation {{ addToCart(input: {{ productId: \"{}\" }}) {{ cart {{ id }} }} }}", global_id("Product", 1))),
        ("checkout", Public, "mutation { checkout(input: { cartId: \"0123456789abcdef0123\", email: \"buyer@example.com\" }) { secret } }".into()),
        ("createOrganizer", Staff, "mutation { createOrganizer(input: { name: \"Arena\", slug: \"arena\" }) { organizer { id } } }".into()),
        ("createEvent", Team, format!("mutation {{ createEvent(input: {{ organizerId: \"{}\", name: \"E\", slug: \"e\", currency: \"EUR\", dateFrom: \"2027-01-01T00:00:00Z\" }}) {{ event {{ id }} }} }}", global_id("Organizer", 1))),
        ("updateEvent", Team, format!("mutation {{ updateEvent(input: {{ eventId: \"{}\", name: \"E\" }}) {{ event {{ id }} }} }}", global_id("Event", 1))),
        ("createSubEvent", Team, format!("mutation {{ createSubEvent(input: {{ eventId: \"{}\", name: \"D\", dateFrom: \"2027-01-01T00:00:00Z\" }}) {{ subEvent {{ id }} }} }}", global_id("Event", 1))),
        ("createTeam", Team, format!("mutation {{ createTeam(input: {{ organizerId: \"{}\", name: \"T\", permissions: [] }}) {{ team {{ id }} }} }}", global_id("Organizer", 1))),
        ("addTeamMember", Team, format!("mutation {{ addTeamMember(input: {{ teamId: \"{}\", userId: \"{user}\" }}) {{ team {{ id }} }} }}", global_id("Team", 1))),
        ("removeTeamMember", Team, format!("mutation {{ removeTeamMember(input: {{ teamId: \"{}\", userId: \"{user}\" }}) {{ team {{ id }} }} }}", global_id("Team", 1))),
        ("createTeamApiToken", Team, format!("mutation {{ createTeamApiToken(input: {{ teamId: \"{}\", name: \"t\" }}) {{ secret }} }}", global_id("Team", 1))),
        ("revokeTeamApiToken", Team, format!("mutation {{ revokeTeamApiToken(input: {{ tokenId: \"{}\" }}) {{ token {{ id }} }} }}", global_id("TeamApiToken", 1))),
        ("createProductCategory", Team, format!("mutation {{ createProductCategory(input: {{ eventId: \"{}\", name: \"C\" }}) {{ category {{ id }} }} }}", global_id("Event", 1))),
        ("createProduct", Team, format!("mutation {{ createProduct(input: {{ eventId: \"{}\", name: \"P\", kind: ADMISSION, price: \"1\" }}) {{ product {{ id }} }} }}", global_id("Event", 1))),
        ("createProductVariation", Team, format!("mutation {{ createProductVariation(input: {{ productId: \"{}\", value: \"XL\" }}) {{ variation {{ id }} }} }}", global_id("Product", 1))),
        ("createQuota", Team, format!("mutation {{ createQuota(input: {{ eventId: \"{}\", name: \"Q\", size: 1, productIds: [] }}) {{ quota {{ id }} }} }}", global_id("Event", 1))),
        ("updateProductCategory", Team, format!("mutation {{ updateProductCategory(input: {{ categoryId: \"{}\", name: \"C\" }}) {{ category {{ id }} }} }}", global_id("ProductCategory", 1))),
        ("deleteProductCategory", Team, format!("mutation {{ deleteProductCategory(input: {{ categoryId: \"{}\" }}) {{ deletedCategoryId }} }}", global_id("ProductCategory", 1))),
        ("updateProduct", Team, format!("mutation {{ updateProduct(input: {{ productId: \"{}\", name: \"P\" }}) {{ product {{ id }} }} }}", global_id("Product", 1))),
        ("deleteProduct", Team, format!("mutation {{ deleteProduct(input: {{ productId: \"{}\" }}) {{ deletedProductId }} }}", global_id("Product", 1))),
        ("updateProductVariation", Team, format!("mutation {{ updateProductVariation(input: {{ variationId: \"{}\", value: \"XL\" }}) {{ variation {{ id }} }} }}", global_id("ProductVariation", 1))),
        ("deleteProductVariation", Team, format!("mutation {{ deleteProductVariation(input: {{ variationId: \"{}\" }}) {{ deletedVariationId }} }}", global_id("ProductVariation", 1))),
        ("updateQuota", Team, format!("mutation {{ updateQuota(input: {{ quotaId: \"{}\", size: 1 }}) {{ quota {{ id }} }} }}", global_id("Quota", 1))),
        ("deleteQuota", Team, format!("mutation {{ deleteQuota(input: {{ quotaId: \"{}\" }}) {{ deletedQuotaId }} }}", global_id("Quota", 1))),
        ("updateSubEvent", Team, format!("mutation {{ updateSubEvent(input: {{ subEventId: \"{}\", name: \"D\" }}) {{ subEvent {{ id }} }} }}", global_id("SubEvent", 1))),
        ("deleteSubEvent", Team, format!("mutation {{ deleteSubEvent(input: {{ subEventId: \"{}\" }}) {{ deletedSubEventId }} }}", global_id("SubEvent", 1))),
        ("updateVoucher", Team, format!("mutation {{ updateVoucher(input: {{ voucherId: \"{}\", comment: \"c\" }}) {{ voucher {{ id }} }} }}", global_id("Voucher", 1))),
        ("deleteVoucher", Team, format!("mutation {{ deleteVoucher(input: {{ voucherId: \"{}\" }}) {{ deletedVoucherId }} }}", global_id("Voucher", 1))),
        ("updateTeam", Team, format!("mutation {{ updateTeam(input: {{ teamId: \"{}\", name: \"T\" }}) {{ team {{ id }} }} }}", global_id("Team", 1))),
        ("deleteTeam", Team, format!("mutation {{ deleteTeam(input: {{ teamId: \"{}\" }}) {{ deletedTeamId }} }}", global_id("Team", 1))),
        ("markOrderPaid", Team, format!("mutation {{ markOrderPaid(input: {{ orderId: \"{}\" }}) {{ order {{ id }} }} }}", global_id("Order", 1))),
        ("cancelOrder", Team, format!("mutation {{ cancelOrder(input: {{ orderId: \"{}\" }}) {{ order {{ id }} }} }}", global_id("Order", 1))),
        ("createOrderPayment", Team, format!("mutation {{ createOrderPayment(input: {{ orderId: \"{}\", method: MANUAL }}) {{ payment {{ id }} }} }}", global_id("Order", 1))),
        ("confirmOrderPayment", Team, format!("mutation {{ confirmOrderPayment(input: {{ paymentId: \"{}\" }}) {{ payment {{ id }} }} }}", global_id("OrderPayment", 1))),
        ("failOrderPayment", Team, format!("mutation {{ failOrderPayment(input: {{ paymentId: \"{}\" }}) {{ payment {{ id }} }} }}", global_id("OrderPayment", 1))),
        ("cancelOrderPayment", Team, format!("mutation {{ cancelOrderPayment(input: {{ paymentId: \"{}\" }}) {{ payment {{ id }} }} }}", global_id("OrderPayment", 1))),
        ("paymentProviders", Public, "{ paymentProviders }".into()),
        ("startOrderPayment", Public, format!("mutation {{ startOrderPayment(input: {{ eventId: \"{}\", code: \"ABCDEF\", secret: \"x\", provider: \"test\" }}) {{ clientSecret }} }}", global_id("Event", 1))),
        ("simulateTestPayment", Team, format!("mutation {{ simulateTestPayment(input: {{ paymentId: \"{}\", outcome: SUCCEEDED }}) {{ payment {{ id }} }} }}", global_id("OrderPayment", 1))),
        ("refreshOrderPayment", Team, format!("mutation {{ refreshOrderPayment(input: {{ paymentId: \"{}\" }}) {{ payment {{ id }} }} }}", global_id("OrderPayment", 1))),
        ("paymentWebhookEvents", Team, format!("{{ paymentWebhookEvents(eventId: \"{}\") {{ totalCount }} }}", global_id("Event", 1))),
        ("createVouchers", Team, format!("mutation {{ createVouchers(input: {{ eventId: \"{}\", codes: [\"A\"] }}) {{ vouchers {{ id }} }} }}", global_id("Event", 1))),
        ("scannerSession", Public, "mutation { scannerSession(input: { credential: \"vgs_x\" }) { accessToken } }".into()),
        ("checkinLists", Door, format!("{{ checkinLists(eventId: \"{}\") {{ id }} }}", global_id("Event", 1))),
        ("redeemTicket", Door, format!("mutation {{ redeemTicket(input: {{ secret: \"x\", listIds: [\"{}\"] }}) {{ __typename }} }}", global_id("CheckinList", 1))),
        ("checkinActivity", Door, format!("subscription {{ checkinActivity(eventId: \"{}\") {{ cursor }} }}", global_id("Event", 1))),
        ("checkinDownload", Door, format!("{{ checkinDownload(listId: \"{}\") {{ signature }} }}", global_id("CheckinList", 1))),
        ("uploadCheckins", Door, format!("mutation {{ uploadCheckins(input: {{ listIds: [\"{}\"], scans: [{{ secret: \"x\", scannedAt: \"2026-01-01T00:00:00Z\", nonce: \"n\" }}] }}) {{ results {{ nonce }} }} }}", global_id("CheckinList", 1))),
        ("scannerDevices", Team, format!("{{ scannerDevices(eventId: \"{}\") {{ id }} }}", global_id("Event", 1))),
        ("createCheckinList", Team, format!("mutation {{ createCheckinList(input: {{ eventId: \"{}\", name: \"L\" }}) {{ list {{ id }} }} }}", global_id("Event", 1))),
        ("updateCheckinList", Team, format!("mutation {{ updateCheckinList(input: {{ listId: \"{}\", name: \"L\" }}) {{ list {{ id }} }} }}", global_id("CheckinList", 1))),
        ("deleteCheckinList", Team, format!("mutation {{ deleteCheckinList(input: {{ listId: \"{}\" }}) {{ ok }} }}", global_id("CheckinList", 1))),
        ("issueScanner", Team, format!("mutation {{ issueScanner(input: {{ eventId: \"{}\", name: \"S\", gate: \"G\" }}) {{ credential }} }}", global_id("Event", 1))),
        ("revokeScanner", Team, format!("mutation {{ revokeScanner(input: {{ scannerId: \"{}\" }}) {{ scanner {{ id }} }} }}", global_id("ScannerDevice", 1))),
        ("availabilityChanged", Public, format!("subscription {{ availabilityChanged(eventId: \"{}\") {{ cursor }} }}", global_id("Event", 1))),
        ("blockTicket", Team, format!("mutation {{ blockTicket(input: {{ positionId: \"{}\" }}) {{ ticket {{ id }} }} }}", global_id("OrderPosition", 1))),
        ("unblockTicket", Team, format!("mutation {{ unblockTicket(input: {{ positionId: \"{}\" }}) {{ ticket {{ id }} }} }}", global_id("OrderPosition", 1))),
        ("regenerateTicketSecret", Team, format!("mutation {{ regenerateTicketSecret(input: {{ positionId: \"{}\" }}) {{ ticket {{ id }} }} }}", global_id("OrderPosition", 1))),
        ("createBadgeLinkCode", SignedIn, format!("mutation {{ createBadgeLinkCode(input: {{ cabinetId: \"{}\" }}) {{ code }} }}", global_id("Cabinet", 999_999))),
        ("terminalLinkBadge", Kiosks, "mutation { terminalLinkBadge(input: { code: \"x\", uid: \"AABBCCDD\" }) { hint } }".into()),
        ("terminalCreatePairing", Kiosks, "mutation { terminalCreatePairing { qrContent } }".into()),
        ("terminalPairing", Kiosks, format!("{{ terminalPairing(id: \"{}\") {{ state }} }}", global_id("KioskPairing", 999_999))),
        ("terminalOfflineCache", Kiosks, "{ terminalOfflineCache { signature } }".into()),
        ("terminalUploadEvents", Kiosks, format!("mutation {{ terminalUploadEvents(input: {{ events: [{{ eventId: \"{}\", kind: SESSION_STARTED, bay: \"{}\", reservation: \"{}\", at: \"2026-01-01T00:00:00Z\" }}] }}) {{ results {{ outcome }} }} }}", uuid::Uuid::nil(), global_id("Bay", 999_999), global_id("Reservation", 999_999))),
        ("terminalConsumePairing", Kiosks, format!("mutation {{ terminalConsumePairing(input: {{ pairing: \"{}\" }}) {{ session {{ id }} }} }}", global_id("KioskPairing", 999_999))),
        ("terminalPairingChanged", Kiosks, format!("subscription {{ terminalPairingChanged(pairingId: \"{}\") {{ cursor }} }}", global_id("KioskPairing", 999_999))),
        ("pairing", SignedIn, "{ pairing(token: \"vgp_unknown\") { state } }".into()),
        ("authorizePairing", SignedIn, format!("mutation {{ authorizePairing(input: {{ token: \"vgp_unknown\", reservationId: \"{reservation}\" }}) {{ state }} }}")),
        ("sessionTelemetry", SignedIn, format!("{{ sessionTelemetry(sessionId: \"{}\") {{ samples }} }}", global_id("ChargingSession", 1))),
        ("latestTelemetry", Supervisors, "{ latestTelemetry { bayId } }".into()),
        ("deviceSensors", Supervisors, format!("{{ deviceSensors(deviceId: \"{}\") {{ id }} }}", global_id("Device", 1))),
        ("sensorReadings", Supervisors, format!("{{ sensorReadings(sensorId: \"{}\") {{ value }} }}", global_id("Sensor", 1))),
        ("reservations", Staff, "{ reservations { totalCount } }".into()),
        ("chargingSessions", Supervisors, "{ chargingSessions { totalCount } }".into()),
        ("chargingDashboard", SignedIn, "{ chargingDashboard { upcomingReservations } }".into()),
        ("myAuthenticationHistory", SignedIn, "{ myAuthenticationHistory { totalCount } }".into()),
        ("sendReservationCode", SignedIn, format!("mutation {{ sendReservationCode(input: {{ id: \"{reservation}\" }}) {{ reservation {{ id }} }} }}")),
        ("revokeReservationAccess", Staff, format!("mutation {{ revokeReservationAccess(input: {{ id: \"{reservation}\" }}) {{ reservation {{ id }} }} }}")),
        ("salesReport", Team, format!("{{ salesReport(eventId: \"{}\") {{ byDay {{ day }} }} }}", global_id("Event", 1))),
        ("refundOrder", Team, format!("mutation {{ refundOrder(input: {{ orderId: \"{}\", method: MANUAL }}) {{ refund {{ id }} }} }}", global_id("Order", 1))),
        ("applyStoreCredit", SignedIn, format!("mutation {{ applyStoreCredit(input: {{ orderId: \"{}\", creditId: \"{}\" }}) {{ payment {{ id }} }} }}", global_id("Order", 1), global_id("StoreCredit", 1))),
        ("storeCredits", SignedIn, format!("{{ storeCredits(eventId: \"{}\") {{ id }} }}", global_id("Event", 1))),
        ("invoice", Team, format!("{{ invoice(id: \"{}\") {{ id }} }}", global_id("Invoice", 1))),
        ("invoices", Team, format!("{{ invoices(eventId: \"{}\") {{ id }} }}", global_id("Event", 1))),
        ("invoiceSettings", Team, format!("{{ invoiceSettings(eventId: \"{}\") {{ prefix }} }}", global_id("Event", 1))),
        ("updateInvoiceSettings", Team, format!("mutation {{ updateInvoiceSettings(input: {{ eventId: \"{}\" }}) {{ prefix }} }}", global_id("Event", 1))),
        ("setInvoiceAddress", Team, format!("mutation {{ setInvoiceAddress(order: {{ id: \"{}\" }}, address: {{ name: \"x\" }}) {{ name }} }}", global_id("Order", 1))),
        ("issueInvoice", Team, format!("mutation {{ issueInvoice(orderId: \"{}\") {{ id }} }}", global_id("Order", 1))),
        ("cancelInvoice", Team, format!("mutation {{ cancelInvoice(invoiceId: \"{}\") {{ id }} }}", global_id("Invoice", 1))),
        ("reissueInvoice", Team, format!("mutation {{ reissueInvoice(orderId: \"{}\") {{ invoice {{ id }} }} }}", global_id("Order", 1))),
        ("createEventMetaProperty", Team, format!("mutation {{ createEventMetaProperty(input: {{ organizerId: \"{}\", name: \"genre\" }}) {{ property {{ id }} }} }}", global_id("Organizer", 1))),
        ("updateEventMetaProperty", Team, format!("mutation {{ updateEventMetaProperty(input: {{ propertyId: \"{}\", name: \"genre\" }}) {{ property {{ id }} }} }}", global_id("EventMetaProperty", 1))),
        ("deleteEventMetaProperty", Team, format!("mutation {{ deleteEventMetaProperty(input: {{ propertyId: \"{}\" }}) {{ deletedPropertyId }} }}", global_id("EventMetaProperty", 1))),
        ("setPaymentProviderFee", Team, format!("mutation {{ setPaymentProviderFee(input: {{ eventId: \"{}\", provider: \"test\", fixed: \"0\", percent: \"0\" }}) {{ fee {{ provider }} }} }}", global_id("Event", 1))),
        ("setEventMetaValue", Team, format!("mutation {{ setEventMetaValue(input: {{ eventId: \"{}\", propertyId: \"{}\", value: \"x\" }}) {{ event {{ id }} }} }}", global_id("Event", 1), global_id("EventMetaProperty", 1))),
        ("clearEventMetaValue", Team, format!("mutation {{ clearEventMetaValue(input: {{ eventId: \"{}\", propertyId: \"{}\" }}) {{ event {{ id }} }} }}", global_id("Event", 1), global_id("EventMetaProperty", 1))),
        ("setSubEventMetaValue", Team, format!("mutation {{ setSubEventMetaValue(input: {{ subEventId: \"{}\", propertyId: \"{}\", value: \"x\" }}) {{ subEvent {{ id }} }} }}", global_id("SubEvent", 1), global_id("EventMetaProperty", 1))),
        ("clearSubEventMetaValue", Team, format!("mutation {{ clearSubEventMetaValue(input: {{ subEventId: \"{}\", propertyId: \"{}\" }}) {{ subEvent {{ id }} }} }}", global_id("SubEvent", 1), global_id("EventMetaProperty", 1))),
        ("createQuestion", Team, format!("mutation {{ createQuestion(input: {{ eventId: \"{}\", question: \"Size?\", type: STRING }}) {{ question {{ id }} }} }}", global_id("Event", 1))),
        ("updateQuestion", Team, format!("mutation {{ updateQuestion(input: {{ questionId: \"{}\", required: true }}) {{ question {{ id }} }} }}", global_id("Question", 1))),
        ("deleteQuestion", Team, format!("mutation {{ deleteQuestion(input: {{ questionId: \"{}\" }}) {{ deletedQuestionId }} }}", global_id("Question", 1))),
        ("setCartPositionAnswers", Public, format!("mutation {{ setCartPositionAnswers(input: {{ cartId: \"0123456789abcdef0123\", positionId: \"{}\", answers: [] }}) {{ position {{ id }} }} }}", global_id("CartPosition", 1))),
        ("setOrderPositionAnswers", Team, format!("mutation {{ setOrderPositionAnswers(input: {{ positionId: \"{}\", answers: [] }}) {{ position {{ id }} }} }}", global_id("OrderPosition", 1))),
        ("createProductAddOnRule", Team, format!("mutation {{ createProductAddOnRule(input: {{ productId: \"{}\", addonCategoryId: \"{}\" }}) {{ rule {{ id }} }} }}", global_id("Product", 1), global_id("ProductCategory", 1))),
        ("updateProductAddOnRule", Team, format!("mutation {{ updateProductAddOnRule(input: {{ ruleId: \"{}\", maxCount: 2 }}) {{ rule {{ id }} }} }}", global_id("ProductAddOnRule", 1))),
        ("deleteProductAddOnRule", Team, format!("mutation {{ deleteProductAddOnRule(input: {{ ruleId: \"{}\" }}) {{ deletedRuleId }} }}", global_id("ProductAddOnRule", 1))),
        ("setSubEventProductSettings", Team, format!("mutation {{ setSubEventProductSettings(input: {{ subEventId: \"{}\", productId: \"{}\", price: \"1.00\" }}) {{ subEvent {{ id }} }} }}", global_id("SubEvent", 1), global_id("Product", 1))),
        ("clearSubEventProductSettings", Team, format!("mutation {{ clearSubEventProductSettings(input: {{ subEventId: \"{}\", productId: \"{}\" }}) {{ subEvent {{ id }} }} }}", global_id("SubEvent", 1), global_id("Product", 1))),
        ("setExchangeRate", Team, format!("mutation {{ setExchangeRate(input: {{ organizerId: \"{}\", fromCurrency: \"EUR\", toCurrency: \"CHF\", date: \"2027-01-01\", rate: \"0.94\" }}) {{ exchangeRate {{ rate }} }} }}", global_id("Organizer", 1))),
    ]
}

/// The root fields of the schema's query, mutation and subscription types.
fn root_fields() -> BTreeSet<String> {
    let sdl = voltgate::graphql::sdl();
    let mut fields = BTreeSet::new();
    let mut in_root = false;
    for line in sdl.lines() {
        if ["type Query {", "type Mutation {", "type Subscription {"].contains(&line) {
            in_root = true;
        } else if line == "}" {
            in_root = false;
        } else if in_root && let Some(field) = line.strip_prefix('\t') {
            // A field line is `name(` or `name:`; description lines are prose.
            let name: String = field
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let rest = &field[name.len()..];
            if name.starts_with(|c: char| c.is_ascii_lowercase())
                && (rest.starts_with('(') || rest.starts_with(':'))
            {
                fields.insert(name);
            }
        }
    }
    fields
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("none")
}

/// Runs one operation with `token`; a subscription's first message stands for its answer.
async fn call(app: &TestApp, token: Option<&str>, document: &str) -> Value {
    if document.starts_with("subscription") {
        let init = token.map_or_else(
            || json!({}),
            |t| json!({ "authorization": format!("Bearer {t}") }),
        );
        let mut subscription = crate::helpers::Subscription::start_with(
            app.addr,
            "graphql-transport-ws",
            init,
            document,
            json!({}),
        )
        .await;
        // A subscription that is allowed simply waits for events.
        return subscription
            .try_next(std::time::Duration::from_millis(300))
            .await
            .map_or_else(|| json!({ "data": "streaming" }), |m| m["payload"].clone());
    }
    match token {
        Some(token) => app.graphql_as(token, document, json!({})).await,
        None => app.graphql(document, json!({})).await,
    }
}

#[test]
fn every_root_field_is_classified() {
    let classified: BTreeSet<String> = operations()
        .into_iter()
        .map(|(field, _, _)| field.to_owned())
        .collect();
    assert_eq!(
        classified,
        root_fields(),
        "classify every root field in tests/api/authorization.rs"
    );
}

#[tokio::test]
async fn each_class_of_operation_is_refused_to_everyone_outside_it() {
    let app = spawn_app().await;
    let admin = app.staff("warden").await;
    let (customer, _) = app.register("cleo").await;
    // An account with a temporary password, set by staff.
    app.register("tina").await;
    let tina = app
        .graphql_as(
            &admin,
            "{ users(filter: { search: \"tina\" }) { nodes { id } } }",
            json!({}),
        )
        .await["data"]["users"]["nodes"][0]["id"]
        .clone();
    let reset = app
        .graphql_as(
            &admin,
            "mutation($id: ID!) { resetUserPassword(input: { userId: $id }) { temporaryPassword } }",
            json!({ "id": tina }),
        )
        .await;
    let temporary = reset["data"]["resetUserPassword"]["temporaryPassword"]
        .as_str()
        .expect("a temporary password")
        .to_owned();
    let signed_in = app
        .graphql(
            "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
            json!({ "input": { "login": "tina", "password": temporary } }),
        )
        .await;
    let pending = signed_in["data"]["login"]["accessToken"]
        .as_str()
        .expect("a session with a temporary password")
        .to_owned();

    // People with roles, and callers that are not people.
    let bays = app.seed(1, 1, 1).await;
    let technician = TestUser::technician(&app, "tom", &[bays[0].station_id]).await;
    let organizer = TestUser::organizer(&app, "olga").await;
    let cabinet = voltgate::entities::cabinet::Entity::find()
        .one(&app.db)
        .await
        .expect("query")
        .expect("a cabinet");
    let kiosk = TestUser::kiosk(&app, cabinet.id);
    let scanner = TestUser::scanner(&app, 1, "north");
    let team = TestUser::team(&app, &[1], &[TeamPermission::ViewOrders]);
    let people = [
        ("a technician", technician.token.clone()),
        ("an organizer member", organizer.token.clone()),
    ];
    let devices = [
        ("a kiosk", kiosk.token.clone()),
        ("a door scanner", scanner.token.clone()),
        ("a team token", team.token.clone()),
    ];

    for (field, access, document) in operations() {
        let anonymous = code(&call(&app, None, &document).await).to_owned();
        let as_customer = code(&call(&app, Some(&customer), &document).await).to_owned();
        let as_pending = code(&call(&app, Some(&pending), &document).await).to_owned();
        let mut as_people = vec![("a customer", as_customer.clone())];
        for (who, token) in &people {
            as_people.push((
                *who,
                code(&call(&app, Some(token), &document).await).to_owned(),
            ));
        }
        let mut as_devices = Vec::new();
        for (who, token) in &devices {
            as_devices.push((
                *who,
                code(&call(&app, Some(token), &document).await).to_owned(),
            ));
        }
        match access {
            // Public operations answer alike whoever asks (a bad password is
            // UNAUTHENTICATED for everyone); later callers may meet the
            // per-account limits the earlier ones used up, never a refusal.
            Public => {
                assert_eq!(anonymous, as_customer, "{field} is public");
                assert_ne!(anonymous, "FORBIDDEN", "{field} is public");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    assert_ne!(answer, "FORBIDDEN", "{field} is public, also to {who}");
                    assert!(
                        answer != "UNAUTHENTICATED" || anonymous == "UNAUTHENTICATED",
                        "{field} is public, also to {who}"
                    );
                }
            }
            SignedInEvenWithTemporaryPassword => {
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_ne!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in &as_people {
                    assert_ne!(answer, "FORBIDDEN", "{field} as {who}");
                }
                for (who, answer) in &as_devices {
                    assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                }
            }
            SignedIn => {
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in &as_people {
                    assert_ne!(answer, "FORBIDDEN", "{field} as {who}");
                }
                for (who, answer) in &as_devices {
                    assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                }
            }
            Supervisors => {
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_customer, "FORBIDDEN", "{field} as a customer");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    if *who == "a technician" {
                        assert_ne!(answer, "FORBIDDEN", "{field} as {who}");
                    } else {
                        assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                    }
                }
            }
            Team => {
                // Nobody here is on a team of organizer 1 with these
                // permissions; the team token holds only VIEW_ORDERS.
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_customer, "FORBIDDEN", "{field} as a customer");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                }
            }
            Door => {
                // The scanner is one of event 1's; nobody else here works its doors.
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_customer, "FORBIDDEN", "{field} as a customer");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    if *who == "a door scanner" {
                        assert_ne!(answer, "FORBIDDEN", "{field} as {who}");
                    } else {
                        assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                    }
                }
            }
            Kiosks => {
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_customer, "FORBIDDEN", "{field} as a customer");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    if *who == "a kiosk" {
                        assert_ne!(answer, "FORBIDDEN", "{field} as {who}");
                    } else {
                        assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                    }
                }
            }
            Staff => {
                assert_eq!(anonymous, "UNAUTHENTICATED", "{field} anonymously");
                assert_eq!(as_customer, "FORBIDDEN", "{field} as a customer");
                assert_eq!(as_pending, "FORBIDDEN", "{field} with a temporary password");
                for (who, answer) in as_people.iter().chain(&as_devices) {
                    assert_eq!(answer, "FORBIDDEN", "{field} as {who}");
                }
            }
        }
    }

    // Nothing the refused calls asked for happened.
    let accounts = app
        .graphql_as(
            &admin,
            "{ users { totalCount nodes { username status roles } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        accounts["data"]["users"]["totalCount"], 5,
        "the five accounts the test created: {accounts}"
    );
    let warden = &accounts["data"]["users"]["nodes"][0];
    assert_eq!(
        (warden["username"].clone(), warden["status"].clone()),
        (json!("warden"), json!("ACTIVE")),
        "{accounts}"
    );
    let me = app
        .graphql_as(&customer, "{ me { fullName roles } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "fullName": "x", "roles": ["CUSTOMER"] }),
        "the customer's own calls took effect, and only those: {me}"
    );
}
