//! `/1.0/networks`: the calls beyond plain reads and writes of the objects (a member's interface
//! state, DHCP leases, rename).

use rxd_api::{NetworkLease, NetworkPost, NetworkState};

use crate::{encode, target_query, Client, Result};

impl Client {
    /// `GET /1.0/networks/{name}/state[?target=]`: the interface on this member, or on
    /// `target`.
    pub async fn network_state(&self, name: &str, target: Option<&str>) -> Result<NetworkState> {
        self.get(&format!(
            "/1.0/networks/{}/state{}",
            encode(name),
            target_query(target)
        ))
        .await
    }

    /// `GET /1.0/networks/{name}/leases`: the gateway and every member's DHCP leases.
    pub async fn network_leases(&self, name: &str) -> Result<Vec<NetworkLease>> {
        self.get(&format!("/1.0/networks/{}/leases", encode(name)))
            .await
    }

    /// `POST /1.0/networks/{name}`: rename.
    pub async fn rename_network(&self, name: &str, new_name: &str) -> Result<()> {
        let path = format!("/1.0/networks/{}", encode(name));
        let body = NetworkPost {
            name: new_name.to_string(),
        };
        self.send("POST", &path, &body, None).await.map(|_| ())
    }
}
