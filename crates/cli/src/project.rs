//! `rxc project info`: a project's limits and usage, as `lxc project info` shows them.

use clap::Subcommand;
use rxd_api::ProjectState;

use crate::output::{self, bytes_iec, Format};
use crate::{print, Ctx, Result};

/// `rxc project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Get a summary of resource allocations.
    Info {
        /// `[<remote>:]<project>` (not `project`: that is the global `--project`'s name).
        #[arg(value_name = "PROJECT")]
        name: String,
    },
}

/// Runs `rxc project ...`.
pub async fn run(ctx: &Ctx, cmd: ProjectCmd) -> Result<()> {
    match cmd {
        ProjectCmd::Info { name } => {
            let (client, _, name) = ctx.resolve_named(&name, "project name")?;
            let state = client.project_state(&name).await?;
            print(&info_text(ctx.format, &state)?)
        }
    }
}

/// The table of `project info`: sizes for `disk` and `memory`, counts for the rest, `-1` as
/// `UNLIMITED`.
pub fn info_text(format: Format, state: &ProjectState) -> Result<String> {
    let mut rows: Vec<Vec<String>> = state
        .resources
        .iter()
        .map(|(k, v)| {
            let bytes = matches!(k.as_str(), "disk" | "memory");
            let show = |n: i64| match (bytes, u64::try_from(n)) {
                (true, Ok(n)) => bytes_iec(n, 2),
                _ => n.to_string(),
            };
            let limit = if v.limit >= 0 {
                show(v.limit)
            } else {
                "UNLIMITED".to_string()
            };
            vec![k.to_uppercase(), limit, show(v.usage)]
        })
        .collect();
    output::sort_naturally(&mut rows);
    let header = ["RESOURCE", "LIMIT", "USAGE"];
    if format == Format::Yaml {
        // lxc's YAML names the fields as Go's yaml package does: lower case.
        let lowered: serde_json::Map<String, serde_json::Value> = state
            .resources
            .iter()
            .map(|(k, v)| {
                let v = serde_json::json!({"limit": v.limit, "usage": v.usage});
                (k.clone(), v)
            })
            .collect();
        let lowered = serde_json::json!({ "resources": lowered });
        return output::render(format, &header, &rows, &lowered);
    }
    output::render(format, &header, &rows, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"{"resources":{"containers":{"Limit":-1,"Usage":0},"cpu":{"Limit":-1,"Usage":0},"disk":{"Limit":-1,"Usage":0},"instances":{"Limit":10,"Usage":0},"memory":{"Limit":2147483648,"Usage":0},"networks":{"Limit":-1,"Usage":1},"processes":{"Limit":-1,"Usage":0},"virtual-machines":{"Limit":-1,"Usage":0}}}"#;

    #[test]
    fn project_info_matches_lxc() {
        let state: ProjectState = serde_json::from_str(STATE).unwrap();
        assert_eq!(
            info_text(Format::Csv, &state).unwrap(),
            "CONTAINERS,UNLIMITED,0\nCPU,UNLIMITED,0\nDISK,UNLIMITED,0B\nINSTANCES,10,0\n\
MEMORY,2.00GiB,0B\nNETWORKS,UNLIMITED,1\nPROCESSES,UNLIMITED,0\nVIRTUAL-MACHINES,UNLIMITED,0\n"
        );
        assert_eq!(
            info_text(Format::Json, &state).unwrap(),
            format!("{STATE}\n")
        );
        let yaml = info_text(Format::Yaml, &state).unwrap();
        assert!(
            yaml.starts_with("resources:\n  containers:\n    limit: -1\n    usage: 0\n"),
            "{yaml}"
        );
    }
}
