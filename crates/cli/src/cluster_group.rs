//! `rxc cluster group create|list|show|edit|rename|delete|assign|remove`.

use clap::Subcommand;
use rxd_api::{ClusterGroup, ClusterGroupPut, ClusterGroupsPost};

use crate::output::{self, Format};
use crate::{print, CliError, Ctx, Result};

/// `rxc cluster group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Assign sets of groups to cluster members.
    #[command(visible_alias = "apply")]
    Assign {
        /// `[<remote>:]<member>`
        member: String,
        /// `<group[,group...]>`
        groups: String,
    },
    /// Create a cluster group.
    Create {
        /// `[<remote>:]<group>`
        group: String,
    },
    /// Delete a cluster group.
    #[command(visible_alias = "rm")]
    Delete {
        /// `[<remote>:]<group>`
        group: String,
    },
    /// Edit a cluster group.
    Edit {
        /// `[<remote>:]<group>`
        group: String,
    },
    /// List all the cluster groups.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Remove member from group.
    Remove {
        /// `[<remote>:]<member>`
        member: String,
        /// `<group>`
        group: String,
    },
    /// Rename a cluster group.
    #[command(visible_alias = "mv")]
    Rename {
        /// `[<remote>:]<group>`
        group: String,
        /// The new name.
        new_name: String,
    },
    /// Show cluster group configurations.
    Show {
        /// `[<remote>:]<group>`
        group: String,
    },
}

const EDIT_TEMPLATE: &str = "### This is a YAML representation of the cluster group.
### Any line starting with a '# will be ignored.";

pub async fn run(ctx: &Ctx, cmd: GroupCmd) -> Result<()> {
    match cmd {
        GroupCmd::Assign { member, groups } => {
            let (client, _, name) = ctx.resolve_named(&member, "cluster member name")?;
            let (m, etag) = client.cluster_member(&name).await?;
            let mut put = m.put;
            put.groups = if groups.is_empty() {
                Vec::new()
            } else {
                groups.split(',').map(str::to_string).collect()
            };
            client
                .update_cluster_member(&name, &put, Some(&etag))
                .await?;
            if !ctx.quiet {
                let shown = if groups.is_empty() { "(none)" } else { &groups };
                print(&format!(
                    "Cluster member {name} added to cluster groups {shown}\n"
                ))?;
            }
            Ok(())
        }
        GroupCmd::Create { group } => {
            let (client, _, name) = ctx.resolve_named(&group, "cluster group name")?;
            let post = ClusterGroupsPost {
                name: name.clone(),
                ..Default::default()
            };
            client.create_cluster_group(&post).await?;
            if !ctx.quiet {
                print(&format!("Cluster group {name} created\n"))?;
            }
            Ok(())
        }
        GroupCmd::Delete { group } => {
            let (client, _, name) = ctx.resolve_named(&group, "cluster group name")?;
            client.delete_cluster_group(&name).await?;
            if !ctx.quiet {
                print(&format!("Cluster group {name} deleted\n"))?;
            }
            Ok(())
        }
        GroupCmd::Edit { group } => {
            let (client, _, name) = ctx.resolve_named(&group, "cluster group name")?;
            let (g, etag) = client.cluster_group(&name).await?;
            let (client, name) = (&client, &name);
            crate::edit::edit(
                EDIT_TEMPLATE,
                &g,
                &etag,
                move |put: ClusterGroupPut, etag| async move {
                    client
                        .update_cluster_group(name, &put, etag.as_deref())
                        .await
                        .map_err(CliError::from)
                },
            )
            .await
        }
        GroupCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let (cluster, _) = client.cluster().await?;
            if !cluster.enabled {
                return Err(CliError::BadArgument {
                    message: "LXD server isn't part of a cluster".into(),
                });
            }
            let groups = client.cluster_groups().await?;
            print(&list_text(ctx.format, &groups)?)
        }
        GroupCmd::Remove { member, group } => {
            let (client, _, name) = ctx.resolve_named(&member, "cluster member name")?;
            let (m, etag) = client.cluster_member(&name).await?;
            if !m.put.groups.contains(&group) {
                return Err(CliError::BadArgument {
                    message: format!("Cluster group {group} isn't currently applied to {name}"),
                });
            }
            let mut put = m.put;
            put.groups.retain(|g| g != &group);
            client
                .update_cluster_member(&name, &put, Some(&etag))
                .await?;
            if !ctx.quiet {
                print(&format!(
                    "Cluster member {name} removed from group {group}\n"
                ))?;
            }
            Ok(())
        }
        GroupCmd::Rename { group, new_name } => {
            let (client, _, name) = ctx.resolve(&group)?;
            client.rename_cluster_group(&name, &new_name).await?;
            if !ctx.quiet {
                print(&format!("Cluster group {name} renamed to {new_name}\n"))?;
            }
            Ok(())
        }
        GroupCmd::Show { group } => {
            let (client, _, name) = ctx.resolve_named(&group, "cluster group name")?;
            let (g, _) = client.cluster_group(&name).await?;
            print(&crate::yaml::to_string(&g)?)
        }
    }
}

/// `cluster group list` in every format: name, description and the number of members.
pub fn list_text(format: Format, groups: &[ClusterGroup]) -> Result<String> {
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.put.description.clone(),
                g.put.members.len().to_string(),
            ]
        })
        .collect();
    rows.sort();
    output::render(format, &["NAME", "DESCRIPTION", "MEMBERS"], &rows, groups)
}
