//! `rxc network create|list|show|edit|set|unset|delete|rename|info|list-leases`, with
//! `--target` for member-specific keys, pending definitions and another member's interface.

use std::collections::BTreeMap;

use clap::Subcommand;
use rxd_api::{Network, NetworkLease, NetworkPut, NetworkState, NetworksPost};
use rxd_client::Client;

use crate::output::{self, Format};
use crate::{print, CliError, Ctx, Result};

/// `rxc network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// List available networks.
    #[command(visible_alias = "ls")]
    List {
        /// `[<remote>:]`
        remote: Option<String>,
    },
    /// Show network configurations.
    Show {
        /// `[<remote>:]<network>`
        network: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Create new networks.
    Create {
        /// `[<remote>:]<network>`
        network: String,
        /// `key=value` configuration.
        config: Vec<String>,
        /// Network type.
        #[arg(short = 't', long = "type", default_value = "bridge")]
        network_type: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
        /// Network description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Edit network configurations as YAML.
    Edit {
        /// `[<remote>:]<network>`
        network: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Set network configuration keys (`KEY VALUE` or `KEY=VALUE...`).
    Set {
        /// `[<remote>:]<network>`
        network: String,
        /// `KEY VALUE` or `KEY=VALUE...`
        #[arg(required = true)]
        args: Vec<String>,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Get values for network configuration keys.
    Get {
        /// `[<remote>:]<network>`
        network: String,
        /// The key.
        key: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Unset network configuration keys.
    Unset {
        /// `[<remote>:]<network>`
        network: String,
        /// The key.
        key: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Delete networks.
    #[command(visible_alias = "rm")]
    Delete {
        /// `[<remote>:]<network>`
        network: String,
    },
    /// Get runtime information on networks.
    Info {
        /// `[<remote>:]<network>`
        network: String,
        /// Cluster member name.
        #[arg(long)]
        target: Option<String>,
    },
    /// Rename networks.
    #[command(visible_alias = "mv")]
    Rename {
        /// `[<remote>:]<network>`
        network: String,
        /// The new name.
        new_name: String,
    },
    /// List DHCP leases.
    ListLeases {
        /// `[<remote>:]<network>`
        network: String,
    },
}

#[derive(serde::Deserialize, Default)]
struct NetworkEdit {
    #[serde(default)]
    config: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    description: String,
}

const EDIT_TEMPLATE: &str = "### This is a YAML representation of the network.
### Any line starting with a '#' will be ignored.
###
### A network consists of a set of configuration items.
###
### An example would look like:
### name: lxdbr0
### config:
###   ipv4.address: 10.62.42.1/24
###   ipv4.nat: true
###   ipv6.address: fd00:56ad:9f7a:9800::1/64
###   ipv6.nat: true
### managed: true
### type: bridge
###
### Note that only the configuration can be changed.";

fn query(target: Option<&str>) -> String {
    match target {
        Some(t) if !t.is_empty() => format!("?target={t}"),
        _ => String::new(),
    }
}

async fn get(client: &Client, name: &str, target: Option<&str>) -> Result<(Network, String)> {
    Ok(client
        .get_with_etag(&format!("/1.0/networks/{name}{}", query(target)))
        .await?)
}

async fn put(
    client: &Client,
    name: &str,
    body: &NetworkPut,
    etag: Option<&str>,
    target: Option<&str>,
) -> Result<()> {
    client
        .request(
            "PUT",
            &format!("/1.0/networks/{name}{}", query(target)),
            Some(serde_json::to_value(body).expect("wire types serialise")),
            etag,
        )
        .await?;
    Ok(())
}

/// Runs one `rxc network` command.
pub async fn run(ctx: &Ctx, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::List { remote } => {
            let (client, _, _) = ctx.resolve_opt(&remote)?;
            let nets: Vec<Network> = client.get("/1.0/networks?recursion=1").await?;
            print(&list_text(ctx.format, &nets)?)
        }
        NetworkCmd::Get {
            network,
            key,
            target,
        } => {
            let (client, _, name) = ctx.resolve(&network)?;
            if name.is_empty() {
                return Err(CliError::Missing {
                    what: "network name",
                });
            }
            let (n, _) = get(&client, &name, target.as_deref()).await?;
            // As lxc, a key that is not set prints nothing.
            match n.config.get(&key) {
                Some(v) => print(&format!("{v}\n")),
                None => Ok(()),
            }
        }
        NetworkCmd::Show { network, target } => {
            let (client, _, name) = ctx.resolve(&network)?;
            let (mut n, _) = get(&client, &name, target.as_deref()).await?;
            if let Some(used) = n.used_by.as_mut() {
                used.sort();
            }
            print(&crate::yaml::to_string(&n)?)
        }
        NetworkCmd::Create {
            network,
            config,
            network_type,
            target,
            description,
        } => {
            let (client, _, name) = ctx.resolve(&network)?;
            let post = NetworksPost {
                name: name.clone(),
                network_type,
                description: description.unwrap_or_default(),
                config: crate::parse_key_values(&config)?.into_iter().collect(),
            };
            client
                .request(
                    "POST",
                    &format!("/1.0/networks{}", query(target.as_deref())),
                    Some(serde_json::to_value(&post).expect("wire types serialise")),
                    None,
                )
                .await?;
            if !ctx.quiet {
                match target {
                    Some(member) => print(&format!("Network {name} pending on member {member}\n"))?,
                    None => print(&format!("Network {name} created\n"))?,
                }
            }
            Ok(())
        }
        NetworkCmd::Edit { network, target } => {
            let (client, _, name) = ctx.resolve(&network)?;
            let (current, etag) = get(&client, &name, target.as_deref()).await?;
            let writable = NetworkPut {
                config: current.config,
                description: current.description,
            };
            let (client, name, target) = (&client, &name, target.as_deref());
            crate::edit::edit(
                EDIT_TEMPLATE,
                &writable,
                &etag,
                move |edited: NetworkEdit, etag| async move {
                    let body = NetworkPut {
                        config: crate::edit::stringify_config(edited.config),
                        description: edited.description,
                    };
                    put(client, name, &body, etag.as_deref(), target).await
                },
            )
            .await
        }
        NetworkCmd::Set {
            network,
            args,
            target,
        } => {
            let (client, _, name) = ctx.resolve(&network)?;
            let pairs = if args.len() == 2 && !args[0].contains('=') {
                vec![(args[0].clone(), args[1].clone())]
            } else {
                crate::parse_key_values(&args)?
            };
            let (current, etag) = get(&client, &name, target.as_deref()).await?;
            if !current.managed {
                return Err(CliError::BadArgument {
                    message: "Only managed networks can be modified".into(),
                });
            }
            let mut body = NetworkPut {
                config: current.config,
                description: current.description,
            };
            body.config.extend(pairs);
            put(&client, &name, &body, Some(&etag), target.as_deref()).await
        }
        NetworkCmd::Unset {
            network,
            key,
            target,
        } => {
            let (client, _, name) = ctx.resolve(&network)?;
            let (current, etag) = get(&client, &name, target.as_deref()).await?;
            let mut body = NetworkPut {
                config: current.config,
                description: current.description,
            };
            if body.config.remove(&key).is_none() {
                return Err(CliError::BadArgument {
                    message: format!("The key {key:?} does not exist on network {name:?}"),
                });
            }
            put(&client, &name, &body, Some(&etag), target.as_deref()).await
        }
        NetworkCmd::Delete { network } => {
            let (client, _, name) = ctx.resolve(&network)?;
            client
                .request("DELETE", &format!("/1.0/networks/{name}"), None, None)
                .await?;
            if !ctx.quiet {
                print(&format!("Network {name} deleted\n"))?;
            }
            Ok(())
        }
        NetworkCmd::Info { network, target } => {
            let (client, _, name) = ctx.resolve_named(&network, "network name")?;
            if target.as_deref().is_some_and(|t| !t.is_empty()) && !clustered(&client).await? {
                return Err(CliError::BadArgument {
                    message: "To use --target, the destination remote must be a cluster".into(),
                });
            }
            let state = client.network_state(&name, target.as_deref()).await?;
            print(&info_text(&name, &state))
        }
        NetworkCmd::Rename { network, new_name } => {
            let (client, _, name) = ctx.resolve_named(&network, "network name")?;
            client.rename_network(&name, &new_name).await?;
            if !ctx.quiet {
                print(&format!("Network {name} renamed to {new_name}\n"))?;
            }
            Ok(())
        }
        NetworkCmd::ListLeases { network } => {
            let (client, _, name) = ctx.resolve_named(&network, "network name")?;
            let leases = client.network_leases(&name).await?;
            print(&leases_text(
                ctx.format,
                &leases,
                clustered(&client).await?,
            )?)
        }
    }
}

async fn clustered(client: &Client) -> Result<bool> {
    let (server, _) = client.server().await?;
    Ok(server.environment.is_some_and(|e| e.server_clustered))
}

/// `network list-leases` in every format; the table has a LOCATION column on a cluster.
pub fn leases_text(format: Format, leases: &[NetworkLease], clustered: bool) -> Result<String> {
    let mut rows: Vec<Vec<String>> = leases
        .iter()
        .map(|l| {
            let mut row = vec![
                l.hostname.clone(),
                l.hwaddr.clone(),
                l.address.clone(),
                l.lease_type.to_uppercase(),
            ];
            if clustered {
                row.push(l.location.clone());
            }
            row
        })
        .collect();
    output::sort_naturally(&mut rows);
    let mut header = vec!["HOSTNAME", "MAC ADDRESS", "IP ADDRESS", "TYPE"];
    if clustered {
        header.push("LOCATION");
    }
    output::render(format, &header, &rows, leases)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", UNITS[i])
    }
}

/// `network info`, in lxc's layout.
pub fn info_text(name: &str, s: &NetworkState) -> String {
    let mut out = format!(
        "Name: {name}\nMAC address: {}\nMTU: {}\nState: {}\nType: {}\n",
        s.hwaddr, s.mtu, s.state, s.state_type
    );
    if !s.addresses.is_empty() {
        out += "\nIP addresses:\n";
        for a in &s.addresses {
            out += &format!(
                "  {}\t{}/{} ({})\n",
                a.family, a.address, a.netmask, a.scope
            );
        }
    }
    out += &format!(
        "\nNetwork usage:\n  Bytes received: {}\n  Bytes sent: {}\n  Packets received: {}\n  Packets sent: {}\n",
        bytes(s.counters.bytes_received),
        bytes(s.counters.bytes_sent),
        s.counters.packets_received,
        s.counters.packets_sent
    );
    if let Some(b) = &s.bond {
        out += &format!(
            "\nBond:\n  Mode: {}\n  Transmit policy: {}\n  Up delay: {}\n  Down delay: {}\n  MII Frequency: {}\n  MII state: {}\n  Lower devices: {}\n",
            b.mode,
            b.transmit_policy,
            b.up_delay,
            b.down_delay,
            b.mii_frequency,
            b.mii_state,
            b.lower_devices.join(", ")
        );
    }
    if let Some(b) = &s.bridge {
        out += &format!(
            "\nBridge:\n  ID: {}\n  STP: {}\n  Forward delay: {}\n  Default VLAN ID: {}\n  VLAN filtering: {}\n  Upper devices: {}\n",
            b.id,
            b.stp,
            b.forward_delay,
            b.vlan_default,
            b.vlan_filtering,
            b.upper_devices.join(", ")
        );
    }
    if let Some(v) = &s.vlan {
        out += &format!(
            "\nVLAN:\n  Lower device: {}\n  VLAN ID: {}\n",
            v.lower_device, v.vid
        );
    }
    out
}

/// `network list` in every format; as in lxc, the table and CSV leave out loopback and
/// unknown interfaces, JSON and YAML show every network.
pub fn list_text(format: Format, nets: &[Network]) -> Result<String> {
    let mut rows: Vec<Vec<String>> = nets
        .iter()
        .filter(|n| !["loopback", "unknown"].contains(&n.network_type.as_str()))
        .map(|n| {
            let addr = |k: &str| {
                n.config
                    .get(k)
                    .filter(|v| *v != "none")
                    .cloned()
                    .unwrap_or_default()
            };
            vec![
                n.name.clone(),
                n.network_type.clone(),
                output::yes_no(n.managed),
                addr("ipv4.address"),
                addr("ipv6.address"),
                n.description.clone(),
                n.used_by.as_ref().map_or(0, Vec::len).to_string(),
                n.status.to_uppercase(),
            ]
        })
        .collect();
    output::sort_naturally(&mut rows);
    output::render(
        format,
        &[
            "NAME",
            "TYPE",
            "MANAGED",
            "IPV4",
            "IPV6",
            "DESCRIPTION",
            "USED BY",
            "STATE",
        ],
        &rows,
        nets,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETS: &str = r#"[{"config":{"ipv4.address":"10.1.2.1/24","ipv4.nat":"true","ipv6.address":"none"},"description":"","name":"lxdbr0","type":"bridge","used_by":[],"managed":true,"status":"Created","locations":["none"]},{"config":{},"description":"","name":"lo","type":"loopback","used_by":[],"managed":false,"status":"","locations":null},{"config":{},"description":"","name":"ifb0","type":"unknown","used_by":[],"managed":false,"status":"","locations":null}]"#;

    #[test]
    fn network_list_matches_lxc() {
        let nets: Vec<Network> = serde_json::from_str(NETS).unwrap();
        assert_eq!(
            list_text(Format::Table, &nets).unwrap(),
            "\
+--------+--------+---------+-------------+------+-------------+---------+---------+
|  NAME  |  TYPE  | MANAGED |    IPV4     | IPV6 | DESCRIPTION | USED BY |  STATE  |
+--------+--------+---------+-------------+------+-------------+---------+---------+
| lxdbr0 | bridge | YES     | 10.1.2.1/24 |      |             | 0       | CREATED |
+--------+--------+---------+-------------+------+-------------+---------+---------+
"
        );
        assert_eq!(
            list_text(Format::Csv, &nets).unwrap(),
            "lxdbr0,bridge,YES,10.1.2.1/24,,,0,CREATED\n"
        );
    }

    #[test]
    fn leases_match_lxc() {
        let leases: Vec<NetworkLease> = serde_json::from_str(
            r#"[{"hostname":"br0.gw","hwaddr":"","address":"10.1.2.1","type":"gateway","location":""},
                {"hostname":"c1","hwaddr":"00:16:3e:11:22:33","address":"10.1.2.20","type":"dynamic","location":"node2"}]"#,
        )
        .unwrap();
        assert_eq!(
            leases_text(Format::Table, &leases, true).unwrap(),
            "\
+----------+-------------------+------------+---------+----------+
| HOSTNAME |    MAC ADDRESS    | IP ADDRESS |  TYPE   | LOCATION |
+----------+-------------------+------------+---------+----------+
| br0.gw   |                   | 10.1.2.1   | GATEWAY |          |
+----------+-------------------+------------+---------+----------+
| c1       | 00:16:3e:11:22:33 | 10.1.2.20  | DYNAMIC | node2    |
+----------+-------------------+------------+---------+----------+
"
        );
        assert_eq!(
            leases_text(Format::Csv, &leases, false).unwrap(),
            "br0.gw,,10.1.2.1,GATEWAY\nc1,00:16:3e:11:22:33,10.1.2.20,DYNAMIC\n"
        );
    }

    #[test]
    fn info_shows_a_bridge_as_lxc_does() {
        let state: NetworkState = serde_json::from_str(
            r#"{"addresses":[],"counters":{"bytes_received":2500,"bytes_sent":0,"packets_received":3,"packets_sent":0},
                "hwaddr":"0a:0b:0c:0d:0e:0f","mtu":1500,"state":"up","type":"broadcast","bond":null,
                "bridge":{"id":"8000.0a0b0c0d0e0f","stp":false,"forward_delay":1500,"vlan_default":1,"vlan_filtering":false,"upper_devices":["veth1","veth2"]},
                "vlan":null}"#,
        )
        .unwrap();
        assert_eq!(
            info_text("br0", &state),
            "Name: br0\nMAC address: 0a:0b:0c:0d:0e:0f\nMTU: 1500\nState: up\nType: broadcast\n\
\nNetwork usage:\n  Bytes received: 2.50kB\n  Bytes sent: 0B\n  Packets received: 3\n  Packets sent: 0\n\
\nBridge:\n  ID: 8000.0a0b0c0d0e0f\n  STP: false\n  Forward delay: 1500\n  Default VLAN ID: 1\n  VLAN filtering: false\n  Upper devices: veth1, veth2\n"
        );
    }

    #[test]
    fn edits_tolerate_show_output() {
        let shown = "config:\n  ipv4.nat: true\n  ipv4.address: 10.1.2.1/24\ndescription: d\nname: lxdbr0\ntype: bridge\nused_by: []\nmanaged: true\nstatus: Created\nlocations:\n- none\n";
        let e: NetworkEdit = crate::edit::parse(shown).unwrap();
        let config = crate::edit::stringify_config(e.config);
        assert_eq!(config["ipv4.nat"], "true");
        assert_eq!(e.description, "d");
    }
}
