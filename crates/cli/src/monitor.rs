//! `rxc monitor [--type T]`: every event as YAML (or one JSON line), each followed by an empty
//! line, as `lxc monitor` prints them.

use futures_util::StreamExt;

use crate::args::MonitorArgs;
use crate::output::{self, Format};
use crate::{print, Ctx, Result};

/// One event as lxc prints it; the event is decoded into a map first, so keys are sorted.
pub fn event_text(format: Format, event: &rxd_api::Event) -> Result<String> {
    let value = serde_json::to_value(event).expect("events always serialise");
    Ok(match format {
        Format::Json => format!("{}\n\n", output::json_line(&value)?),
        _ => format!("{}\n\n", crate::yaml::to_string(&value)?),
    })
}

pub async fn run(ctx: &Ctx, a: MonitorArgs) -> Result<()> {
    let (client, _, _) = ctx.resolve_opt(&a.remote)?;
    let types: Vec<&str> = a.types.iter().map(String::as_str).collect();
    let mut events = client.events(&types).await?;
    while let Some(event) = events.next().await {
        print(&event_text(ctx.format, &event?)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> rxd_api::Event {
        serde_json::from_str(r#"{"type":"lifecycle","timestamp":"2026-11-26T15:31:45.251407707Z","metadata":{"action":"profile-created","source":"/1.0/profiles/p1","requestor":{"username":"root","protocol":"unix","address":"@"}},"location":"node1","project":"default"}"#).unwrap()
    }

    #[test]
    fn events_print_like_lxc_monitor() {
        // Printed by `lxc monitor --type lifecycle [-f json]` (LXD 5.0.2).
        assert_eq!(
            event_text(Format::Table, &event()).unwrap(),
            "location: node1\nmetadata:\n  action: profile-created\n  requestor:\n    address: '@'\n    protocol: unix\n    username: root\n  source: /1.0/profiles/p1\nproject: default\ntimestamp: \"2026-11-26T15:31:45.251407707Z\"\ntype: lifecycle\n\n\n"
        );
        assert_eq!(
            event_text(Format::Json, &event()).unwrap(),
            "{\"location\":\"node1\",\"metadata\":{\"action\":\"profile-created\",\"requestor\":{\"address\":\"@\",\"protocol\":\"unix\",\"username\":\"root\"},\"source\":\"/1.0/profiles/p1\"},\"project\":\"default\",\"timestamp\":\"2026-11-26T15:31:45.251407707Z\",\"type\":\"lifecycle\"}\n\n"
        );
    }
}
