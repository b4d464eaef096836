//! A bridge's nftables rules, in the table `inet rxd`: one set of chains per network, named
//! `<purpose>.<network>`, so removing a network removes exactly its chains.

use std::io::Write;
use std::process::{Command, Stdio};

use super::subnet::Cidr;
use super::NetworkError;

/// The nftables table rxd owns.
pub const TABLE: &str = "rxd";

/// What a bridge needs from the firewall.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Subnets to masquerade when leaving them.
    pub nat: Vec<Cidr>,
}

/// The `nft -f` script that installs a network's chains.
pub fn script(name: &str, rules: &Rules) -> String {
    let mut s = format!("add table inet {TABLE}\n");
    let chain = |purpose: &str, hook: &str, prio: i32, kind: &str| {
        format!(
            "add chain inet {TABLE} {purpose}.{name} {{ type {kind} hook {hook} priority {prio}; policy accept; }}\n"
        )
    };
    s += &chain("fwd", "forward", 0, "filter");
    s += &format!("add rule inet {TABLE} fwd.{name} iifname \"{name}\" accept\n");
    s += &format!("add rule inet {TABLE} fwd.{name} oifname \"{name}\" accept\n");
    s += &chain("in", "input", 0, "filter");
    s += &format!(
        "add rule inet {TABLE} in.{name} iifname \"{name}\" udp dport {{ 53, 67, 547 }} accept\n"
    );
    s += &format!("add rule inet {TABLE} in.{name} iifname \"{name}\" tcp dport 53 accept\n");
    if !rules.nat.is_empty() {
        s += &chain("pstrt", "postrouting", 100, "nat");
        for subnet in &rules.nat {
            let family = if subnet.addr().is_ipv4() { "ip" } else { "ip6" };
            let subnet = subnet.subnet();
            s += &format!(
                "add rule inet {TABLE} pstrt.{name} {family} saddr {subnet} {family} daddr != {subnet} masquerade\n"
            );
        }
    }
    s
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<String, NetworkError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Firewall(format!("Cannot run nft: {e}")))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .map_err(|e| NetworkError::Firewall(format!("Cannot write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Firewall(e.to_string()))?;
    if !out.status.success() {
        return Err(NetworkError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The chains of the table whose names end in `.<name>`, or all of them for `None`.
fn chains(name: Option<&str>) -> Vec<String> {
    let Ok(text) = nft(&["list", "table", "inet", TABLE], None) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("chain "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| name.is_none_or(|n| c.ends_with(&format!(".{n}"))))
        .map(str::to_string)
        .collect()
}

/// Installs a network's chains, replacing any it had.
pub fn apply(name: &str, rules: &Rules) -> Result<(), NetworkError> {
    remove(name)?;
    nft(&["-f", "-"], Some(&script(name, rules)))?;
    Ok(())
}

/// Removes a network's chains, and the table once it is empty.
pub fn remove(name: &str) -> Result<(), NetworkError> {
    let mine = chains(Some(name));
    if !mine.is_empty() {
        let mut s = String::new();
        for c in &mine {
            s += &format!("flush chain inet {TABLE} {c}\ndelete chain inet {TABLE} {c}\n");
        }
        nft(&["-f", "-"], Some(&s))?;
    }
    if chains(None).is_empty() {
        let _ = nft(&["delete", "table", "inet", TABLE], None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_masquerades_each_subnet() {
        let rules = Rules {
            nat: vec![
                Cidr::parse("10.1.2.1/24").unwrap(),
                Cidr::parse("fd42:1:2:3::1/64").unwrap(),
            ],
        };
        let s = script("lxdbr0", &rules);
        assert!(s.contains("add chain inet rxd pstrt.lxdbr0 { type nat hook postrouting priority 100; policy accept; }"));
        assert!(s.contains(
            "add rule inet rxd pstrt.lxdbr0 ip saddr 10.1.2.0/24 ip daddr != 10.1.2.0/24 masquerade"
        ));
        assert!(s.contains("ip6 saddr fd42:1:2:3::/64 ip6 daddr != fd42:1:2:3::/64 masquerade"));
        let no_nat = script("lxdbr0", &Rules::default());
        assert!(!no_nat.contains("pstrt"));
        assert!(no_nat.contains("fwd.lxdbr0"));
    }
}
