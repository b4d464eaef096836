//! `rxc warning list|show|acknowledge|delete`.

use clap::Subcommand;
use rxd_api::{Warning, WarningPut};

use crate::output::{self, Format};
use crate::{print, CliError, Ctx, Result};

/// `rxc warning ...`
#[derive(Debug, Subcommand)]
pub enum WarningCmd {
    /// List warnings.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
        /// List all warnings (acknowledged and resolved ones too).
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Acknowledge warning.
    #[command(visible_alias = "ack")]
    Acknowledge {
        /// `[<remote>:]<warning-uuid>`
        warning: String,
    },
    /// Show warning.
    Show {
        /// `[<remote>:]<warning-uuid>`
        warning: String,
    },
    /// Delete warning.
    #[command(visible_alias = "rm")]
    Delete {
        /// `[<remote>:][<warning-uuid>]`
        warning: Option<String>,
        /// Delete all warnings.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: WarningCmd) -> Result<()> {
    match cmd {
        WarningCmd::List { remote, all } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let (server, _) = client.server().await?;
            let clustered = server.environment.is_some_and(|e| e.server_clustered);
            let mut warnings = client.warnings().await?;
            // As lxc: acknowledged and resolved warnings only with --all.
            warnings.retain(|w| all || (w.status != "acknowledged" && w.status != "resolved"));
            print(&list_text(ctx.format, &warnings, clustered)?)
        }
        WarningCmd::Acknowledge { warning } => {
            let (client, _, uuid) = ctx.resolve_named(&warning, "warning UUID")?;
            let put = WarningPut {
                status: "acknowledged".into(),
            };
            Ok(client.update_warning(&uuid, &put).await?)
        }
        WarningCmd::Show { warning } => {
            let (client, _, uuid) = ctx.resolve_named(&warning, "warning UUID")?;
            print(&show_text(&client.warning(&uuid).await?)?)
        }
        WarningCmd::Delete { warning, all } => {
            let (client, _, uuid) = ctx.resolve_opt(&warning)?;
            match (all, uuid.is_empty()) {
                (false, true) => Err(bad("Specify a warning UUID or use --all")),
                (true, false) => Err(bad("No need to specify a warning UUID when using --all")),
                (false, false) => Ok(client.delete_warning(&uuid).await?),
                (true, true) => {
                    for w in client.warnings().await? {
                        client.delete_warning(&w.uuid).await?;
                    }
                    Ok(())
                }
            }
        }
    }
}

fn bad(message: &str) -> CliError {
    CliError::BadArgument {
        message: message.into(),
    }
}

/// Go's `Jan 2, 2006 at 3:04pm (MST)` in UTC.
fn seen(s: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%b %-d, %Y at %-I:%M%P (UTC)")
                .to_string()
        })
        .unwrap_or_else(|_| s.to_string())
}

/// `warning list` in every format; LOCATION only on clustered servers. Rows are sorted as
/// lxc sorts them, column by column.
pub fn list_text(format: Format, warnings: &[Warning], clustered: bool) -> Result<String> {
    let mut rows: Vec<Vec<String>> = warnings
        .iter()
        .map(|w| {
            let mut row = vec![
                w.uuid.clone(),
                w.warning_type.clone(),
                w.status.to_uppercase(),
                w.severity.to_uppercase(),
                w.count.to_string(),
                w.project.clone(),
            ];
            if clustered {
                row.push(w.location.clone());
            }
            row.push(seen(&w.last_seen_at));
            row
        })
        .collect();
    output::sort_naturally(&mut rows);
    let mut header = vec!["UUID", "TYPE", "STATUS", "SEVERITY", "COUNT", "PROJECT"];
    if clustered {
        header.push("LOCATION");
    }
    header.push("LAST SEEN");
    output::render(format, &header, &rows, warnings)
}

/// `warning show`: yaml.v2 prints Go's time values bare.
pub fn show_text(w: &Warning) -> Result<String> {
    let text = crate::yaml::to_string(w)?;
    Ok(crate::yaml::bare_times(
        &text,
        &["first_seen_at", "last_seen_at"],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline() -> Warning {
        serde_json::from_value(serde_json::json!({
            "uuid":"0d3c4a4e-2b49-4a8f-9d4c-111111111111","location":"node3","project":"",
            "type":"Offline cluster member","count":2,
            "first_seen_at":"2026-11-28T01:02:03.5Z","last_seen_at":"2026-11-28T13:04:05.25Z",
            "last_message":"No heartbeat","severity":"low","status":"new",
            "entity_url":"/1.0/cluster/members/node3"}))
        .unwrap()
    }

    #[test]
    fn rows_follow_lxc() {
        assert_eq!(
            seen("2026-11-28T13:04:05.25Z"),
            "Nov 28, 2026 at 1:04pm (UTC)"
        );
        assert_eq!(
            seen("2026-01-02T00:09:00+01:00"),
            "Jan 1, 2026 at 11:09pm (UTC)"
        );
        assert_eq!(
            list_text(Format::Csv, &[offline()], true).unwrap(),
            "0d3c4a4e-2b49-4a8f-9d4c-111111111111,Offline cluster member,NEW,LOW,2,,node3,\
             \"Nov 28, 2026 at 1:04pm (UTC)\"\n"
        );
        let standalone = list_text(Format::Table, &[offline()], false).unwrap();
        assert!(standalone.contains(" UUID "), "{standalone}");
        assert!(!standalone.contains("LOCATION"), "{standalone}");
    }

    #[test]
    fn show_prints_times_bare() {
        let text = show_text(&offline()).unwrap();
        assert!(
            text.contains("\nfirst_seen_at: 2026-11-28T01:02:03.5Z\n"),
            "{text}"
        );
        assert!(text.contains("\nproject: \"\"\n"), "{text}");
    }
}
