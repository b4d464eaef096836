//! `rxc query [-X METHOD] [-d DATA] [--wait] [--raw] [<remote>:]<path>`.

use serde_json::Value;

use crate::args::QueryArgs;
use crate::output::json_indented;
use crate::{print, CliError, Ctx, Result};

/// `-d` is sent as JSON when it parses as JSON, else as a JSON string, like lxc.
fn body(data: &Option<String>) -> Option<Value> {
    data.as_ref()
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.clone())))
}

/// What `lxc query` prints for a payload: nothing for `null` and `{}`, else tab-indented JSON
/// followed by an empty line.
pub fn metadata_text(metadata: &Value) -> String {
    match metadata {
        Value::Null => String::new(),
        Value::Object(m) if m.is_empty() => String::new(),
        other => format!("{}\n\n", json_indented(other)),
    }
}

pub async fn run(ctx: &Ctx, a: QueryArgs) -> Result<()> {
    let (client, _, path) = ctx.resolve(&a.path)?;
    if !path.starts_with('/') {
        return Err(CliError::BadArgument {
            message: "Query path must start with /".into(),
        });
    }
    let method = a.method.to_uppercase();
    let mut raw = match client.request(&method, &path, body(&a.data), None).await {
        // An endpoint that answers plain text (`/1.0/metrics`) is printed as it came, as lxc
        // prints it.
        Err(rxd_client::ClientError::Envelope { .. }) if method == "GET" => {
            return print(&client.get_text(&path).await?);
        }
        other => other?,
    };
    if a.wait && !raw.envelope.operation.is_empty() {
        let id = raw
            .envelope
            .operation
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let op = client.wait_operation(&id, None).await?;
        if op.status_code >= 400 {
            return Err(CliError::BadArgument { message: op.err });
        }
        raw.envelope.metadata = op.metadata.unwrap_or(Value::Null);
    }
    if a.raw {
        return print(&format!("{}\n\n", json_indented(&raw.envelope)));
    }
    print(&metadata_text(&raw.envelope.metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_prints_like_lxc_query() {
        // Printed by `lxc query /1.0/cluster` (LXD 5.0.2): keys sorted, tabs, blank line.
        let v: Value = serde_json::from_str(r#"{"server_name":"node1","enabled":true,"member_config":[{"entity":"storage-pool","name":"local","key":"source","value":"","description":"\"source\" property for storage pool \"local\""}]}"#).unwrap();
        let want = "{\n\t\"enabled\": true,\n\t\"member_config\": [\n\t\t{\n\t\t\t\"description\": \"\\\"source\\\" property for storage pool \\\"local\\\"\",\n\t\t\t\"entity\": \"storage-pool\",\n\t\t\t\"key\": \"source\",\n\t\t\t\"name\": \"local\",\n\t\t\t\"value\": \"\"\n\t\t}\n\t],\n\t\"server_name\": \"node1\"\n}\n\n";
        assert_eq!(metadata_text(&v), want);
        assert_eq!(metadata_text(&Value::Null), "");
        assert_eq!(metadata_text(&serde_json::json!({})), "");
        assert_eq!(
            metadata_text(&serde_json::json!(["/1.0/profiles/default"])),
            "[\n\t\"/1.0/profiles/default\"\n]\n\n"
        );
    }

    #[test]
    fn data_is_json_or_a_string() {
        assert_eq!(body(&None), None);
        assert_eq!(
            body(&Some(r#"{"name":"q1"}"#.into())),
            Some(serde_json::json!({"name":"q1"}))
        );
        assert_eq!(
            body(&Some("notjson".into())),
            Some(Value::String("notjson".into()))
        );
    }
}
