//! A bridge's DHCP leases as LXD lists them: the gateway addresses from the configuration, and
//! the dynamic leases in this member's dnsmasq lease file (`$DIR/networks/<name>/dnsmasq.leases`).

use std::path::Path;

use rxd_api::NetworkLease;
use rxd_db::tables::Config;

use super::subnet::Cidr;
use super::{net_dir, NetworkError};

/// The gateway entries of network `name`: one per configured address.
pub fn gateways(name: &str, config: &Config) -> Vec<NetworkLease> {
    ["ipv4.address", "ipv6.address"]
        .iter()
        .filter_map(|k| config.get(*k).and_then(|v| Cidr::parse(v)))
        .map(|c| NetworkLease {
            hostname: format!("{name}.gw"),
            address: c.addr().to_string(),
            lease_type: "gateway".into(),
            ..Default::default()
        })
        .collect()
}

/// The dynamic leases dnsmasq recorded on this member for network `name`, found on member
/// `location`; none when dnsmasq never wrote its file.
pub fn local(dir: &Path, name: &str, location: &str) -> Result<Vec<NetworkLease>, NetworkError> {
    super::validate_name(name)?;
    let path = net_dir(dir, name).join("dnsmasq.leases");
    match std::fs::read_to_string(&path) {
        Ok(content) => Ok(parse(&content, location)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(NetworkError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// Lines of dnsmasq's lease file (`expiry mac address hostname client-id`), read as LXD reads
/// them: the MAC from the second field (a decimal number is an InfiniBand hardware address),
/// else the end of the client id; DHCPv6 leases have no MAC.
fn parse(content: &str, location: &str) -> Vec<NetworkLease> {
    content
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 5 {
                return None;
            }
            let mut hwaddr = mac(fields[1]);
            let client_id = fields[4];
            if hwaddr.len() < 17 {
                if let Some(tail) = client_id
                    .len()
                    .checked_sub(17)
                    .and_then(|i| client_id.get(i..))
                {
                    hwaddr = tail.to_string();
                }
            }
            if fields[2].contains(':') {
                hwaddr.clear();
            }
            Some(NetworkLease {
                hostname: fields[3].to_string(),
                hwaddr,
                address: fields[2].to_string(),
                lease_type: "dynamic".into(),
                location: location.to_string(),
            })
        })
        .collect()
}

/// LXD's reading of a hardware address field: `aa:BB:..` lowered, or a decimal number as hex
/// pairs.
fn mac(field: &str) -> String {
    if field.contains(':') {
        return field.to_lowercase();
    }
    match field.parse::<u64>() {
        Ok(n) => {
            let hex = format!("{n:x}");
            hex.as_bytes()
                .chunks_exact(2)
                .map(|pair| String::from_utf8_lossy(pair).into_owned())
                .collect::<Vec<_>>()
                .join(":")
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_lines_are_read_as_lxd_reads_them() {
        let file = "\
1795830786 00:16:3E:11:22:33 10.55.0.210 c1 *
1795830787 00:16:3e:44:55:66 10.55.0.211 * 01:00:16:3e:44:55:66
duid 00:01:00:01:2c:aa:bb:cc:00:16:3e:11:22:33
1795830788 1234 fd42::5 c2 00:01:00:01:2c:aa:bb:cc:00:16:3e:11:22:33
short line
";
        let got = parse(file, "node1");
        let rows: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|l| (l.hostname.as_str(), l.hwaddr.as_str(), l.address.as_str()))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("c1", "00:16:3e:11:22:33", "10.55.0.210"),
                ("*", "00:16:3e:44:55:66", "10.55.0.211"),
                ("c2", "", "fd42::5"),
            ]
        );
        assert!(got
            .iter()
            .all(|l| l.lease_type == "dynamic" && l.location == "node1"));
    }

    #[test]
    fn gateways_come_from_the_addresses() {
        let config = Config::from([
            ("ipv4.address".into(), "10.1.2.1/24".into()),
            ("ipv6.address".into(), "none".into()),
        ]);
        let got = gateways("br0", &config);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].hostname, "br0.gw");
        assert_eq!(got[0].address, "10.1.2.1");
        assert_eq!(got[0].lease_type, "gateway");
    }
}
