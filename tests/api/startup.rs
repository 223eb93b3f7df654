//! Start-up failures are clear errors naming the service, never panics or leaked secrets.

use crate::helpers::{fresh_database_url, serve_args, settings, topic_root};

async fn start_error(extra: &[&str]) -> String {
    let database_url = fresh_database_url().await;
    let mut args = serve_args(&database_url, &topic_root(), &[]);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    match voltgate::App::build(settings(&args)).await {
        Ok(_) => panic!("the server should not start with {extra:?}"),
        Err(err) => format!("{err:#}"),
    }
}

#[tokio::test]
async fn an_unreachable_database_is_named_without_its_password() {
    let message = start_error(&[
        "--database-url",
        "postgres://voltgate:s3cret@127.0.0.1:1/voltgate",
    ])
    .await;
    assert!(
        message.contains("database") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn an_unreachable_redis_is_named() {
    let message = start_error(&["--redis-url", "redis://:hunter2@127.0.0.1:1"]).await;
    assert!(
        message.contains("Redis") && message.contains("127.0.0.1:1"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn an_unreachable_mqtt_broker_is_named() {
    let message = start_error(&["--mqtt-url", "mqtt://127.0.0.1:1"]).await;
    assert!(
        message.contains("MQTT broker") && message.contains("127.0.0.1:1"),
        "{message}"
    );
}

#[tokio::test]
async fn a_taken_embedded_broker_address_names_the_ways_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let message = start_error(&["--mqtt-url", "", "--embedded-mqtt-addr", &addr]).await;
    assert!(message.contains("already in use"), "{message}");
    assert!(
        message.contains("MQTT_URL") && message.contains("VOLTGATE_EMBEDDED_MQTT_ADDR"),
        "{message}"
    );
}
