//! Technicians: staff manage profiles and station assignments; a technician
//! reaches only the stations of their active assignments, over HTTP and
//! WebSocket; an observer looks without acting; removing an assignment takes
//! effect on open subscriptions at once.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use voltgate::bus::{AlertChanged, DomainEvent};
use voltgate::entities::{AlertKind, AlertSeverity, RoleName};
use voltgate::supervision::alerts::{Condition, raise};

use crate::client::TestUser;
use crate::helpers::{Subscription, TestApp, global_id, spawn_app};

const CREATE: &str = "mutation($input: CreateTechnicianInput!) {
    createTechnician(input: $input) { technician { id userId name email phone } }
}";

const ASSIGN: &str = "mutation($input: AssignTechnicianInput!) {
    assignTechnician(input: $input) { assignment { technicianId stationId role isActive assignedAt } }
}";

const UPDATE_ASSIGNMENT: &str = "mutation($input: UpdateStationAssignmentInput!) {
    updateStationAssignment(input: $input) { assignment { role isActive } }
}";

const REMOVE_ASSIGNMENT: &str = "mutation($input: RemoveStationAssignmentInput!) {
    removeStationAssignment(input: $input) { ok }
}";

const ALERTS: &str = "subscription { alertChanged { change alert { id kind stationId } } }";

fn error(body: &Value) -> (&str, &str, &str) {
    let ext = &body["errors"][0]["extensions"];
    (
        ext["code"].as_str().unwrap_or("none"),
        ext["reason"].as_str().unwrap_or("none"),
        ext["field"].as_str().unwrap_or("none"),
    )
}

/// A person holding the technician role, with a profile made by staff; the
/// profile's ID.
async fn technician(app: &TestApp, staff: &TestUser, username: &str) -> (TestUser, Value) {
    let person = TestUser::with_role(app, username, RoleName::Technician).await;
    let created = staff
        .gql(
            CREATE,
            json!({ "input": { "userId": global_id("User", person.id.expect("a person")), "name": username } }),
        )
        .await;
    let id = created["data"]["createTechnician"]["technician"]["id"].clone();
    assert!(id.is_string(), "{created}");
    (person, id)
}

async fn assign(staff: &TestUser, technician: &Value, station: i32, role: &str) -> Value {
    staff
        .gql(
            ASSIGN,
            json!({ "input": { "technicianId": technician, "stationId": global_id("Station", station), "role": role } }),
        )
        .await
}

/// Raises (or refreshes) an alert of `station` and announces it, as the
/// ingestion does.
async fn alert_at(app: &TestApp, station: i32) {
    let condition = Condition {
        kind: AlertKind::Smoke,
        severity: AlertSeverity::Critical,
        message: "smoke".into(),
        station_id: station,
        bay_id: None,
        device_id: None,
        reading_id: None,
        session_id: None,
    };
    let (alert, change) = raise(&app.db, &condition, Utc::now())
        .await
        .expect("raised");
    app.bus
        .publish(DomainEvent::AlertChanged(AlertChanged { alert, change }))
        .await
        .expect("published");
}

async fn stream_of(app: &TestApp, user: &TestUser) -> Subscription {
    Subscription::start_with(
        app.addr,
        "graphql-transport-ws",
        json!({ "authorization": format!("Bearer {}", user.token) }),
        ALERTS,
        json!({}),
    )
    .await
}

fn device_count(answer: &Value) -> i64 {
    answer["data"]["devices"]["totalCount"]
        .as_i64()
        .unwrap_or(-1)
}

#[tokio::test]
async fn staff_manage_technicians_and_their_station_assignments() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (a, b) = (bays[0].station_id, bays[1].station_id);
    let staff = TestUser::staff(&app, "warden").await;

    // Only an account holding the technician role gets a profile, once.
    let carol = TestUser::customer(&app, "carol").await;
    let not_one = staff
        .gql(CREATE, json!({ "input": { "userId": global_id("User", carol.id.unwrap_or(0)), "name": "Carol" } }))
        .await;
    assert_eq!(
        error(&not_one),
        ("BAD_USER_INPUT", "none", "userId"),
        "{not_one}"
    );
    let (tom, tom_id) = technician(&app, &staff, "tom").await;
    let again = staff
        .gql(
            CREATE,
            json!({ "input": { "userId": global_id("User", tom.id.unwrap_or(0)), "name": "Tom" } }),
        )
        .await;
    assert_eq!(
        error(&again),
        ("CONFLICT", "TECHNICIAN_EXISTS", "none"),
        "{again}"
    );
    let bad_email = staff
        .gql(CREATE, json!({ "input": { "userId": global_id("User", carol.id.unwrap_or(0)), "name": "C", "email": "nope" } }))
        .await;
    assert_eq!(error(&bad_email).2, "email", "{bad_email}");
    let refused = tom
        .gql(
            CREATE,
            json!({ "input": { "userId": global_id("User", 1), "name": "x" } }),
        )
        .await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");

    // Edits and the staff lists.
    let edited = staff
        .gql(
            "mutation($input: UpdateTechnicianInput!) { updateTechnician(input: $input) { technician { name phone email } } }",
            json!({ "input": { "technicianId": tom_id, "name": "Tom Tech", "phone": "+33 6 12 34 56 78", "email": "Tom@Example.org" } }),
        )
        .await;
    assert_eq!(
        edited["data"]["updateTechnician"]["technician"],
        json!({ "name": "Tom Tech", "phone": "+33 6 12 34 56 78", "email": "tom@example.org" }),
        "{edited}"
    );
    let found = staff
        .gql(
            "{ technicians(search: \"tech\") { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(found["data"]["technicians"]["totalCount"], 1, "{found}");

    // No assignment, no station.
    let devices = "{ devices { totalCount } }";
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 0);
    let assigned = assign(&staff, &tom_id, a, "LEAD").await;
    let row = &assigned["data"]["assignTechnician"]["assignment"];
    assert_eq!(row["role"], "LEAD", "{assigned}");
    assert_eq!(row["isActive"], true);
    assert_eq!(row["stationId"], global_id("Station", a));
    let twice = assign(&staff, &tom_id, a, "CONTRIBUTOR").await;
    assert_eq!(
        error(&twice),
        ("CONFLICT", "ALREADY_ASSIGNED", "none"),
        "{twice}"
    );
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 1);
    assign(&staff, &tom_id, b, "OBSERVER").await;
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 2);

    // Deactivated, an assignment gives nothing; reactivated, it gives again.
    let key = json!({ "technicianId": tom_id, "stationId": global_id("Station", a) });
    let mut input = key.clone();
    input["isActive"] = json!(false);
    let off = staff
        .gql(UPDATE_ASSIGNMENT, json!({ "input": input }))
        .await;
    assert_eq!(
        off["data"]["updateStationAssignment"]["assignment"]["isActive"], false,
        "{off}"
    );
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 1);
    let at_a = staff
        .gql(
            "query($s: ID) { technicianStationAssignments(stationId: $s) { technicianId role isActive } }",
            json!({ "s": global_id("Station", a) }),
        )
        .await;
    assert_eq!(
        at_a["data"]["technicianStationAssignments"],
        json!([{ "technicianId": tom_id, "role": "LEAD", "isActive": false }]),
        "{at_a}"
    );
    let mut input = key.clone();
    input["isActive"] = json!(true);
    staff
        .gql(UPDATE_ASSIGNMENT, json!({ "input": input }))
        .await;
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 2);

    // Removed, it is gone; removing it again finds nothing.
    let removed = staff.gql(REMOVE_ASSIGNMENT, json!({ "input": key })).await;
    assert_eq!(
        removed["data"]["removeStationAssignment"]["ok"], true,
        "{removed}"
    );
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 1);
    let gone = staff.gql(REMOVE_ASSIGNMENT, json!({ "input": key })).await;
    assert_eq!(error(&gone).0, "NOT_FOUND", "{gone}");
    let profile = staff
        .gql(
            "query($id: ID!) { technician(id: $id) { stationAssignments { stationId role } } }",
            json!({ "id": tom_id }),
        )
        .await;
    assert_eq!(
        profile["data"]["technician"]["stationAssignments"],
        json!([{ "stationId": global_id("Station", b), "role": "OBSERVER" }]),
        "{profile}"
    );

    // Deleting the profile takes every station with it.
    let deleted = staff
        .gql(
            "mutation($id: ID!) { deleteTechnician(input: { technicianId: $id }) { ok } }",
            json!({ "id": tom_id }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteTechnician"]["ok"], true, "{deleted}");
    assert_eq!(device_count(&tom.gql(devices, json!({})).await), 0);
}

#[tokio::test]
async fn an_observer_sees_alerts_but_cannot_take_them_in_charge_or_resolve_them() {
    let app = spawn_app().await;
    let station = app.seed(1, 1, 1).await[0].station_id;
    let staff = TestUser::staff(&app, "warden").await;
    let (olive, olive_id) = technician(&app, &staff, "olive").await;
    assign(&staff, &olive_id, station, "OBSERVER").await;
    alert_at(&app, station).await;

    let list = olive
        .gql("{ alerts { totalCount edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(
        list["data"]["alerts"]["totalCount"], 1,
        "an observer looks: {list}"
    );
    let id = list["data"]["alerts"]["edges"][0]["node"]["id"].clone();
    for mutation in [
        "mutation($id: ID!) { acknowledgeAlert(id: $id) { status } }",
        "mutation($id: ID!) { resolveAlert(id: $id, note: \"x\") { status } }",
    ] {
        let refused = olive.gql(mutation, json!({ "id": id })).await;
        assert_eq!(
            error(&refused),
            ("FORBIDDEN", "OBSERVER_ONLY", "none"),
            "{refused}"
        );
    }
    let untouched = staff
        .gql(
            "query($id: ID!) { alert(id: $id) { status acknowledgedById } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        untouched["data"]["alert"],
        json!({ "status": "NEW", "acknowledgedById": null })
    );

    // Made a contributor, she acts.
    staff
        .gql(
            UPDATE_ASSIGNMENT,
            json!({ "input": { "technicianId": olive_id, "stationId": global_id("Station", station), "role": "CONTRIBUTOR" } }),
        )
        .await;
    let taken = olive
        .gql(
            "mutation($id: ID!) { acknowledgeAlert(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        taken["data"]["acknowledgeAlert"]["status"], "IN_PROGRESS",
        "{taken}"
    );
}

#[tokio::test]
async fn a_technician_hears_nothing_of_other_stations_and_loses_a_station_at_once() {
    let app = spawn_app().await;
    let bays = app.seed(3, 1, 1).await;
    let (a, b, c) = (bays[0].station_id, bays[1].station_id, bays[2].station_id);
    let staff = TestUser::staff(&app, "warden").await;
    let (tom, tom_id) = technician(&app, &staff, "tom").await;
    assign(&staff, &tom_id, a, "CONTRIBUTOR").await;
    assign(&staff, &tom_id, b, "CONTRIBUTOR").await;
    let mut stream = stream_of(&app, &tom).await;

    // Subscriptions have no ready signal: raise at A until one arrives.
    let mut seen = None;
    for _ in 0..25 {
        alert_at(&app, a).await;
        if let Some(message) = stream.try_next(Duration::from_millis(300)).await {
            seen = Some(message);
            break;
        }
    }
    let seen = seen.expect("the technician hears of station A");
    assert_eq!(
        seen["payload"]["data"]["alertChanged"]["alert"]["stationId"],
        global_id("Station", a),
        "{seen}"
    );
    while stream.try_next(Duration::from_millis(300)).await.is_some() {}

    // Station C is not theirs: its alert, published first, never arrives.
    alert_at(&app, c).await;
    alert_at(&app, b).await;
    let next = stream.next_event().await;
    assert_eq!(
        next["data"]["alertChanged"]["alert"]["stationId"],
        global_id("Station", b),
        "C's alert came first otherwise: {next}"
    );
    let over_http = tom
        .gql(
            "query($s: ID) { alerts(stationId: $s) { totalCount } }",
            json!({ "s": global_id("Station", c) }),
        )
        .await;
    assert_eq!(over_http["data"]["alerts"]["totalCount"], 0, "{over_http}");
    let all_over_http = tom
        .gql(
            "{ alerts { totalCount } devices { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        all_over_http["data"]["alerts"]["totalCount"], 2,
        "A's and B's: {all_over_http}"
    );
    assert_eq!(all_over_http["data"]["devices"]["totalCount"], 2);

    // Staff take B away: the very next alert of B is not delivered, the
    // subscription ends with a clear error instead.
    let removed = staff
        .gql(
            REMOVE_ASSIGNMENT,
            json!({ "input": { "technicianId": tom_id, "stationId": global_id("Station", b) } }),
        )
        .await;
    assert_eq!(
        removed["data"]["removeStationAssignment"]["ok"], true,
        "{removed}"
    );
    alert_at(&app, b).await;
    let ended = stream.next_event().await;
    assert_eq!(
        error(&ended),
        ("FORBIDDEN", "ASSIGNMENT_REVOKED", "none"),
        "{ended}"
    );
    let complete = stream.next_message().await;
    assert_eq!(complete["type"], "complete", "{complete}");
    let after = tom
        .gql(
            "query($s: ID) { alerts(stationId: $s) { totalCount } }",
            json!({ "s": global_id("Station", b) }),
        )
        .await;
    assert_eq!(after["data"]["alerts"]["totalCount"], 0, "{after}");

    // Subscribing again gives A only.
    let mut again = stream_of(&app, &tom).await;
    let mut seen = None;
    for _ in 0..25 {
        alert_at(&app, b).await;
        alert_at(&app, a).await;
        if let Some(message) = again.try_next(Duration::from_millis(300)).await {
            seen = Some(message);
            break;
        }
    }
    let seen = seen.expect("A's alerts still come");
    assert_eq!(
        seen["payload"]["data"]["alertChanged"]["alert"]["stationId"],
        global_id("Station", a),
        "{seen}"
    );
}

const CREATE_MAINTENANCE: &str = "mutation($input: CreateMaintenanceInput!) {
    createMaintenance(input: $input) { maintenance { id stationId technicianId kind description status plannedAt doneAt } }
}";

#[tokio::test]
async fn staff_plan_maintenance_and_technicians_list_their_own_interventions() {
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 1).await;
    let (a, b) = (bays[0].station_id, bays[1].station_id);
    let staff = TestUser::staff(&app, "warden").await;
    let (tom, tom_id) = technician(&app, &staff, "tom").await;
    let (_, ada_id) = technician(&app, &staff, "ada").await;
    assign(&staff, &tom_id, a, "CONTRIBUTOR").await;
    let planned_at = "2026-12-24T08:00:00Z";

    let plan = |station: i32, technician: &Value, kind: &str| {
        json!({ "input": {
            "stationId": global_id("Station", station), "technicianId": technician,
            "kind": kind, "description": "check the cabinet fans", "plannedAt": planned_at,
        } })
    };
    let created = staff
        .gql(CREATE_MAINTENANCE, plan(a, &tom_id, "preventive"))
        .await;
    let node = &created["data"]["createMaintenance"]["maintenance"];
    assert_eq!(node["status"], "PLANNED", "{created}");
    assert_eq!(node["technicianId"], tom_id);
    assert_eq!(node["plannedAt"], "2026-12-24T08:00:00.000000Z");
    assert_eq!(node["doneAt"], Value::Null);
    let id = node["id"].clone();
    staff
        .gql(CREATE_MAINTENANCE, plan(a, &ada_id, "corrective"))
        .await;
    // Tom's, but at a station he is not assigned to: not in his list.
    staff
        .gql(CREATE_MAINTENANCE, plan(b, &tom_id, "corrective"))
        .await;
    let blank = staff.gql(CREATE_MAINTENANCE, plan(a, &tom_id, " ")).await;
    assert_eq!(error(&blank), ("BAD_USER_INPUT", "none", "kind"), "{blank}");
    let refused = tom.gql(CREATE_MAINTENANCE, plan(a, &tom_id, "x")).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");

    let mine = "{ myMaintenances { totalCount edges { node { id kind status } } } }";
    let list = tom.gql(mine, json!({})).await;
    assert_eq!(list["data"]["myMaintenances"]["totalCount"], 1, "{list}");
    assert_eq!(list["data"]["myMaintenances"]["edges"][0]["node"]["id"], id);
    let everything = staff
        .gql("{ maintenances { totalCount } }", json!({}))
        .await;
    assert_eq!(
        everything["data"]["maintenances"]["totalCount"], 3,
        "{everything}"
    );
    let of_a = staff
        .gql(
            "query($s: ID) { maintenances(filter: { stationId: $s, statuses: [PLANNED] }) { totalCount } }",
            json!({ "s": global_id("Station", a) }),
        )
        .await;
    assert_eq!(of_a["data"]["maintenances"]["totalCount"], 2, "{of_a}");

    // Done: dated now when no date is given.
    let done = staff
        .gql(
            "mutation($input: UpdateMaintenanceInput!) { updateMaintenance(input: $input) { maintenance { status doneAt } } }",
            json!({ "input": { "maintenanceId": id, "status": "DONE" } }),
        )
        .await;
    let node = &done["data"]["updateMaintenance"]["maintenance"];
    assert_eq!(node["status"], "DONE", "{done}");
    assert!(node["doneAt"].is_string(), "{done}");

    let deleted = staff
        .gql(
            "mutation($id: ID!) { deleteMaintenance(input: { maintenanceId: $id }) { ok } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        deleted["data"]["deleteMaintenance"]["ok"], true,
        "{deleted}"
    );
    let again = staff
        .gql(
            "mutation($id: ID!) { deleteMaintenance(input: { maintenanceId: $id }) { ok } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error(&again).0, "NOT_FOUND", "{again}");
    assert_eq!(
        tom.gql(mine, json!({})).await["data"]["myMaintenances"]["totalCount"],
        0
    );
}

#[tokio::test]
async fn the_supervision_overview_counts_what_the_caller_supervises_and_nothing_else() {
    const OVERVIEW: &str = "query($s: ID) { supervision(stationId: $s) {
        totals { devices devicesOnline devicesOffline devicesProvisioned openAlerts openCriticalAlerts firmwareUpdateRequired }
        stations { stationId figures { devices openAlerts openCriticalAlerts } } } }";
    let app = spawn_app().await;
    let bays = app.seed(2, 1, 2).await;
    let (a, b) = (bays[0].station_id, bays[2].station_id);
    let staff = TestUser::staff(&app, "warden").await;
    let (tom, tom_id) = technician(&app, &staff, "tom").await;
    assign(&staff, &tom_id, a, "CONTRIBUTOR").await;
    alert_at(&app, a).await;
    alert_at(&app, a).await; // the same condition: still one open alert
    alert_at(&app, b).await;

    let all = staff.gql(OVERVIEW, json!({})).await;
    let totals = &all["data"]["supervision"]["totals"];
    assert_eq!(totals["devices"], 4, "{all}");
    assert_eq!(
        totals["devicesOnline"].as_u64().unwrap_or(0)
            + totals["devicesOffline"].as_u64().unwrap_or(0)
            + totals["devicesProvisioned"].as_u64().unwrap_or(0),
        4,
        "every device counted once: {all}"
    );
    assert_eq!(totals["openAlerts"], 2);
    assert_eq!(totals["openCriticalAlerts"], 2);
    let stations = all["data"]["supervision"]["stations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(stations.len(), 2, "{all}");

    // Tom supervises station A alone: B's devices and alert are not his.
    let mine = tom.gql(OVERVIEW, json!({})).await;
    assert_eq!(
        mine["data"]["supervision"]["stations"],
        json!([{ "stationId": global_id("Station", a), "figures": { "devices": 2, "openAlerts": 1, "openCriticalAlerts": 1 } }]),
        "{mine}"
    );
    let other = tom
        .gql(OVERVIEW, json!({ "s": global_id("Station", b) }))
        .await;
    assert_eq!(
        other["data"]["supervision"]["totals"]["devices"], 0,
        "{other}"
    );
    assert_eq!(other["data"]["supervision"]["totals"]["openAlerts"], 0);
    let customer = TestUser::customer(&app, "carla").await;
    let refused = customer.gql(OVERVIEW, json!({})).await;
    assert_eq!(error(&refused).0, "FORBIDDEN", "{refused}");
}
