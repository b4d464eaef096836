//! `rxc operation list|show|delete`.

use rxd_api::Operation;

use crate::args::OperationCmd;
use crate::output::{self, Format};
use crate::{print, Ctx, Result};

pub async fn run(ctx: &Ctx, cmd: OperationCmd) -> Result<()> {
    match cmd {
        OperationCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let (server, _) = client.server().await?;
            let clustered = server.environment.is_some_and(|e| e.server_clustered);
            let ops: Vec<Operation> = client.operations().await?.into_values().flatten().collect();
            print(&list_text(ctx.format, &ops, clustered)?)
        }
        OperationCmd::Show { operation } => {
            let (client, _, id) = ctx.resolve(&operation)?;
            let op = client.operation(&id).await?;
            print(&show_text(&op)?)
        }
        OperationCmd::Delete { operation } => {
            let (client, _, id) = ctx.resolve(&operation)?;
            client.cancel_operation(&id).await?;
            if !ctx.quiet {
                print(&format!("Operation {id} deleted\n"))?;
            }
            Ok(())
        }
    }
}

/// `2006/01/02 15:04 MST` in UTC.
fn created(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y/%m/%d %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| s.to_string())
}

/// `operation list` in every format; LOCATION only on clustered servers.
pub fn list_text(format: Format, ops: &[Operation], clustered: bool) -> Result<String> {
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|op| {
            let mut row = vec![
                op.id.clone(),
                op.class.to_uppercase(),
                op.description.clone(),
                op.status.to_uppercase(),
                output::yes_no(op.may_cancel),
                created(&op.created_at),
            ];
            if clustered {
                row.push(op.location.clone());
            }
            row
        })
        .collect();
    let mut header = vec![
        "ID",
        "TYPE",
        "DESCRIPTION",
        "STATUS",
        "CANCELABLE",
        "CREATED",
    ];
    if clustered {
        header.push("LOCATION");
    }
    output::render(format, &header, &rows, ops)
}

/// `operation show`: yaml.v2 prints Go's time values bare and nil resource lists as `[]`.
pub fn show_text(op: &Operation) -> Result<String> {
    let mut op = op.clone();
    if let Some(serde_json::Value::Object(res)) = op.resources.as_mut() {
        for v in res.values_mut() {
            if v.is_null() {
                *v = serde_json::json!([]);
            }
        }
    }
    let text = crate::yaml::to_string(&op)?;
    Ok(crate::yaml::bare_times(
        &text,
        &["created_at", "updated_at"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_op() -> Operation {
        serde_json::from_value(serde_json::json!({
            "id":"18840c5a-64cf-417a-b68a-f5cf4389a711","class":"token","description":"Executing operation",
            "created_at":"2026-11-26T15:17:30.500226523Z","updated_at":"2026-11-26T15:17:30.500226523Z",
            "status":"Running","status_code":103,"resources":{"cluster":null},
            "metadata":{"addresses":["127.0.77.1:8443"],"expiresAt":"2026-11-26T18:17:30.497290161Z",
                "fingerprint":"edecf8a802bf69a61bfae98387606bc88a4766a2877fa1104d7557fca8607398",
                "secret":"3ce5cefb548fa27f0bb35a06edd2e87e9f5228471ce903562981215bf4313eca","serverName":"node2"},
            "may_cancel":true,"err":"","location":"node1"}))
        .unwrap()
    }

    #[test]
    fn operation_show_matches_lxc() {
        // Printed by `lxc operation show` (LXD 5.0.2).
        let want = "\
id: 18840c5a-64cf-417a-b68a-f5cf4389a711
class: token
description: Executing operation
created_at: 2026-11-26T15:17:30.500226523Z
updated_at: 2026-11-26T15:17:30.500226523Z
status: Running
status_code: 103
resources:
  cluster: []
metadata:
  addresses:
  - 127.0.77.1:8443
  expiresAt: \"2026-11-26T18:17:30.497290161Z\"
  fingerprint: edecf8a802bf69a61bfae98387606bc88a4766a2877fa1104d7557fca8607398
  secret: 3ce5cefb548fa27f0bb35a06edd2e87e9f5228471ce903562981215bf4313eca
  serverName: node2
may_cancel: true
err: \"\"
location: node1
";
        assert_eq!(show_text(&token_op()).unwrap(), want);
    }

    #[test]
    fn operation_list_matches_lxc() {
        // Row layout of `lxc operation list` on a cluster (LXD 5.0.2).
        let want = "\
+--------------------------------------+-------+---------------------+---------+------------+----------------------+----------+
|                  ID                  | TYPE  |     DESCRIPTION     | STATUS  | CANCELABLE |       CREATED        | LOCATION |
+--------------------------------------+-------+---------------------+---------+------------+----------------------+----------+
| 18840c5a-64cf-417a-b68a-f5cf4389a711 | TOKEN | Executing operation | RUNNING | YES        | 2026/11/26 15:17 UTC | node1    |
+--------------------------------------+-------+---------------------+---------+------------+----------------------+----------+
";
        assert_eq!(list_text(Format::Table, &[token_op()], true).unwrap(), want);
        assert_eq!(
            list_text(Format::Csv, &[token_op()], false).unwrap(),
            "18840c5a-64cf-417a-b68a-f5cf4389a711,TOKEN,Executing operation,RUNNING,YES,2026/11/26 15:17 UTC\n"
        );
    }
}
