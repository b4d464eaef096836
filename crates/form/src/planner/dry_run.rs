//! What `--dry-run` prints.

use std::fmt::Write as _;

use super::{list, Plan, PlannedMember, Role};

impl Plan {
    /// What `--dry-run` prints: the members, the pools and networks, member-specific values
    /// and the data that would be lost.
    pub fn dry_run_text(&self) -> String {
        let mut out = String::new();
        let initiator = self
            .members
            .iter()
            .find(|m| m.role == Role::Initiator)
            .map(|m| m.name.as_str())
            .unwrap_or_default();
        let joining = self
            .members
            .iter()
            .filter(|m| m.role == Role::Joiner)
            .count();
        if self.new_cluster {
            let _ = writeln!(
                out,
                "A new cluster of {} servers, formed by {initiator}",
                self.members.len()
            );
        } else {
            let _ = writeln!(
                out,
                "The cluster of {initiator} grows by {joining} to {} servers",
                self.members.len()
            );
        }
        out.push('\n');
        let rows: Vec<[String; 4]> = std::iter::once([
            "NAME".to_string(),
            "ADDRESS".into(),
            "FINGERPRINT".into(),
            "ROLE".into(),
        ])
        .chain(self.members.iter().map(|m| {
            [
                m.name.clone(),
                m.address.clone(),
                m.fingerprint.chars().take(16).collect(),
                match m.role {
                    Role::Initiator => "initiator",
                    Role::Existing => "member",
                    Role::Joiner => "joins",
                }
                .to_string(),
            ]
        }))
        .collect();
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        for r in &rows {
            let line = format!(
                "{:w0$}  {:w1$}  {:w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push('\n');
        let pools: Vec<String> = self
            .storage_pools
            .iter()
            .map(|p| format!("{} ({})", p.name, p.driver))
            .collect();
        let _ = writeln!(out, "Storage pools: {}", list(&pools));
        let networks: Vec<String> = self
            .networks
            .iter()
            .map(|n| {
                let kind = if n.network_type.is_empty() {
                    "bridge"
                } else {
                    &n.network_type
                };
                format!("{} ({kind})", n.name)
            })
            .collect();
        let _ = writeln!(out, "Networks: {}", list(&networks));
        let configured: Vec<&PlannedMember> = self
            .members
            .iter()
            .filter(|m| !m.member_config.is_empty())
            .collect();
        if !configured.is_empty() {
            out.push_str("Member configuration:\n");
            for m in configured {
                for k in &m.member_config {
                    let _ = writeln!(
                        out,
                        "  {}: {} {} {}={}",
                        m.name, k.entity, k.name, k.key, k.value
                    );
                }
            }
        }
        out.push('\n');
        let losing: Vec<&PlannedMember> = self
            .members
            .iter()
            .filter(|m| !m.data_lost.is_empty())
            .collect();
        if losing.is_empty() {
            out.push_str("No data is lost\n");
        } else {
            out.push_str("Data that is lost:\n");
            for m in losing {
                let _ = writeln!(out, "  {}: {}", m.name, m.data_lost.join("; "));
            }
        }
        out
    }
}
