//! Device topics: `<prefix>/bays/<n>/<channel>`.
//!
//! A cabinet's prefix may have any depth (`voltgate/<station>/<cabinet>` by
//! default), so a topic is read from its end: the last `bays/<n>` pair splits the
//! prefix from the channel.

use super::DropReason;

/// What a message on a bay topic is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    State,
    Telemetry,
    Ack,
    /// Server → device commands; the server sees its own when it subscribes to the root.
    Command,
    Sensor(String),
}

/// A parsed bay topic, borrowing from the topic string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BayTopic<'a> {
    pub prefix: &'a str,
    pub bay: i32,
    pub channel: Channel,
}

/// Largest bay number a topic may name; anything above is not a real bay.
const MAX_BAY_NUMBER: i32 = 10_000;

/// Parses a device topic.
///
/// # Errors
/// [`DropReason::UnknownTopic`] when the topic is not a bay topic of protocol v1.
pub fn parse(topic: &str) -> Result<BayTopic<'_>, DropReason> {
    let segments: Vec<&str> = topic.split('/').collect();
    let bays_at = segments
        .iter()
        .rposition(|s| *s == "bays")
        .filter(|&i| i > 0 && i + 2 < segments.len())
        .ok_or(DropReason::UnknownTopic)?;
    let bay = segments[bays_at + 1]
        .parse::<i32>()
        .ok()
        .filter(|n| (1..=MAX_BAY_NUMBER).contains(n))
        .ok_or(DropReason::UnknownTopic)?;
    let channel = match &segments[bays_at + 2..] {
        ["state"] => Channel::State,
        ["telemetry"] => Channel::Telemetry,
        ["ack"] => Channel::Ack,
        ["cmd"] => Channel::Command,
        ["sensors", kind] if is_sensor_kind(kind) => Channel::Sensor((*kind).to_owned()),
        _ => return Err(DropReason::UnknownTopic),
    };
    // The prefix is everything before "/bays/"; segment lengths give its byte length.
    let prefix_len = segments[..bays_at].iter().map(|s| s.len()).sum::<usize>() + bays_at - 1;
    let prefix = &topic[..prefix_len];
    if segments[..bays_at].iter().any(|s| s.is_empty()) {
        return Err(DropReason::UnknownTopic);
    }
    Ok(BayTopic {
        prefix,
        bay,
        channel,
    })
}

fn is_sensor_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 32
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The topic a device listens to for commands.
pub fn command_topic(prefix: &str, bay: i32) -> String {
    format!("{prefix}/bays/{bay}/cmd")
}

/// The topic a device publishes its state on.
pub fn state_topic(prefix: &str, bay: i32) -> String {
    format!("{prefix}/bays/{bay}/state")
}

/// Whether a device of bay `bay` under `prefix` may publish on `topic`: only its
/// own bay's device → server channels, never its `cmd` (nor anything else).
pub fn device_may_publish(prefix: &str, bay: i32, topic: &str) -> bool {
    parse(topic).is_ok_and(|parsed| {
        parsed.prefix == prefix && parsed.bay == bay && parsed.channel != Channel::Command
    })
}

/// Whether a device may subscribe to `filter`: only its own `cmd` topic, exactly.
pub fn device_may_subscribe(prefix: &str, bay: i32, filter: &str) -> bool {
    filter == command_topic(prefix, bay)
}

/// Topic patterns (MQTT filter syntax) a device may publish on, for broker ACL files.
pub fn device_publish_patterns(prefix: &str, bay: i32) -> [String; 4] {
    let base = format!("{prefix}/bays/{bay}");
    [
        format!("{base}/state"),
        format!("{base}/telemetry"),
        format!("{base}/ack"),
        format!("{base}/sensors/+"),
    ]
}

/// The shared subscription through which replicas split the device traffic under `root`.
pub fn shared_subscription(root: &str) -> String {
    format!("$share/{}/{root}/#", super::SHARE_GROUP)
}

/// Where a replica's Will announces it gone (its payload: the replica's MQTT
/// client id), so the others take over its session. No device may publish here:
/// device topics always have a `bays` level.
pub fn replica_gone_topic(root: &str) -> String {
    format!("{root}/_replicas/gone")
}

/// The plain subscription to everything under `root`, for a single server.
pub fn root_subscription(root: &str) -> String {
    format!("{root}/#")
}

/// The default prefix of a cabinet: `<root>/<station-id>/<cabinet-number>`.
pub fn default_prefix(root: &str, station_id: i32, cabinet_number: i32) -> String {
    format!("{root}/{station_id}/{cabinet_number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_topics_split_prefix_and_bay() {
        let parsed = parse("voltgate/12/1/bays/3/state");
        assert_eq!(
            parsed,
            Ok(BayTopic {
                prefix: "voltgate/12/1",
                bay: 3,
                channel: Channel::State
            })
        );
    }

    #[test]
    fn prefixes_of_any_depth_are_accepted() {
        let parsed = parse("site/north/hall-b/cab/bays/10/telemetry");
        assert_eq!(
            parsed.map(|t| (t.prefix, t.bay)),
            Ok(("site/north/hall-b/cab", 10))
        );
        // A prefix may itself contain a "bays" level; the last pair wins.
        let parsed = parse("v/bays/2/bays/4/ack");
        assert_eq!(
            parsed.map(|t| (t.prefix, t.bay, t.channel)),
            Ok(("v/bays/2", 4, Channel::Ack))
        );
    }

    #[test]
    fn sensors_carry_their_kind() {
        let parsed = parse("voltgate/1/1/bays/1/sensors/temperature").map(|t| t.channel);
        assert_eq!(parsed, Ok(Channel::Sensor("temperature".into())));
    }

    #[test]
    fn malformed_topics_are_rejected() {
        for topic in [
            "",
            "voltgate",
            "bays/1/state",
            "voltgate/1/1/bays/x/state",
            "voltgate/1/1/bays/0/state",
            "voltgate/1/1/bays/-3/state",
            "voltgate/1/1/bays/99999/state",
            "voltgate/1/1/bays/1/unknown",
            "voltgate/1/1/bays/1/state/extra",
            "voltgate/1/1/bays/1/sensors",
            "voltgate/1/1/bays/1/sensors/Bad Kind",
            "voltgate//1/bays/1/state",
            "/voltgate/1/bays/1/state",
        ] {
            assert_eq!(parse(topic), Err(DropReason::UnknownTopic), "{topic:?}");
        }
    }

    #[test]
    fn builders_match_the_parser() {
        let topic = state_topic(&default_prefix("voltgate", 4, 2), 7);
        assert_eq!(topic, "voltgate/4/2/bays/7/state");
        assert_eq!(parse(&topic).map(|t| t.bay), Ok(7));
        assert_eq!(
            parse(&command_topic("a/b", 1)).map(|t| t.channel),
            Ok(Channel::Command)
        );
        assert_eq!(
            shared_subscription("voltgate"),
            "$share/voltgate/voltgate/#"
        );
    }

    #[test]
    fn devices_may_touch_only_their_own_bay() {
        let (prefix, bay) = ("voltgate/1/2", 3);
        for allowed in [
            "voltgate/1/2/bays/3/state",
            "voltgate/1/2/bays/3/telemetry",
            "voltgate/1/2/bays/3/ack",
            "voltgate/1/2/bays/3/sensors/smoke",
        ] {
            assert!(device_may_publish(prefix, bay, allowed), "{allowed}");
        }
        for refused in [
            "voltgate/1/2/bays/3/cmd",
            "voltgate/1/2/bays/4/state",
            "voltgate/1/3/bays/3/state",
            "voltgate/1/2/bays/3/firmware",
            "x/voltgate/1/2/bays/3/state",
            "voltgate/1/2/bays/3/state/extra",
            "voltgate/1/2/bays/+/state",
            "#",
        ] {
            assert!(!device_may_publish(prefix, bay, refused), "{refused}");
        }
        assert!(device_may_subscribe(prefix, bay, "voltgate/1/2/bays/3/cmd"));
        for refused in [
            "#",
            "voltgate/#",
            "voltgate/1/2/bays/+/cmd",
            "$share/voltgate/voltgate/#",
        ] {
            assert!(!device_may_subscribe(prefix, bay, refused), "{refused}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_topics_parse_or_give_unknown_topic(topic in "\\PC{0,80}") {
            let parsed = parse(&topic);
            proptest::prop_assert!(parsed.as_ref().err().is_none_or(|r| *r == DropReason::UnknownTopic));
            if let Ok(parsed) = parsed {
                // What parses names the same topic again.
                proptest::prop_assert!(topic.starts_with(parsed.prefix));
            }
        }

        #[test]
        fn slash_heavy_topics_never_panic(parts in proptest::collection::vec("(bays|[0-9]{1,3}|state|cmd|sensors|[a-z]{0,3}|)", 0..10)) {
            let topic = parts.join("/");
            let parsed = parse(&topic);
            proptest::prop_assert!(parsed.as_ref().err().is_none_or(|r| *r == DropReason::UnknownTopic));
        }
    }
}
