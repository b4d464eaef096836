//! The client side of joining: turning a token or a trust password into the `PUT /1.0/cluster`
//! that the daemon carries out.

use std::time::Duration;

use rxd_api::{ClusterPut, InitClusterPreseed, JoinToken};
use rxd_client::Client;

use crate::InitError;

/// The certificate served at `address`, without trusting it yet.
pub async fn fetch_certificate(address: &str) -> Result<String, InitError> {
    let (config, captured) = rxd_tls::capture_client_config(None)
        .map_err(|e| InitError::Invalid(format!("Failed to prepare TLS: {e}")))?;
    let c = Client::https_with_config(address, config)?;
    tokio::time::timeout(Duration::from_secs(10), c.request("GET", "/", None, None))
        .await
        .map_err(|_| InitError::Invalid(format!("Timed out connecting to {address}")))??;
    captured
        .pem()
        .ok_or_else(|| InitError::Invalid(format!("{address} presented no certificate")))
}

/// Finds the first member in the token that answers with the token's certificate.
pub async fn resolve_token(token: &JoinToken) -> Result<(String, String), InitError> {
    for address in &token.addresses {
        match fetch_certificate(address).await {
            Ok(pem) => {
                let fp = rxd_tls::fingerprint_pem(&pem)
                    .map_err(|e| InitError::Invalid(e.to_string()))?;
                if fp != token.fingerprint {
                    return Err(InitError::Invalid(format!(
                        "Certificate fingerprint mismatch between join token and cluster member {address:?}"
                    )));
                }
                return Ok((address.clone(), pem));
            }
            Err(e) => eprintln!("Error connecting to existing cluster member {address:?}: {e}"),
        }
    }
    Err(InitError::Invalid(
        "Unable to connect to any of the cluster members specified in join token".into(),
    ))
}

/// The cluster certificate of a join without a token: given inline or read from
/// `cluster_certificate_path`, and checked to be a certificate.
pub fn cluster_certificate(c: &InitClusterPreseed) -> Result<String, InitError> {
    let mut pem = c.cluster_certificate.clone();
    if pem.is_empty() && !c.cluster_certificate_path.is_empty() {
        pem = std::fs::read_to_string(&c.cluster_certificate_path).map_err(|e| {
            InitError::Invalid(format!(
                "Failed to read cluster certificate {:?}: {e}",
                c.cluster_certificate_path
            ))
        })?;
    }
    if pem.is_empty() {
        return Err(InitError::Invalid(
            "No target cluster member certificate provided (cluster_certificate or cluster_certificate_path)".into(),
        ));
    }
    rxd_tls::fingerprint_pem(&pem)
        .map_err(|e| InitError::Invalid(format!("Invalid cluster certificate: {e}")))?;
    Ok(pem)
}

/// Joins the cluster the preseed names.
pub async fn join(client: &Client, c: &InitClusterPreseed) -> Result<(), InitError> {
    let mut put = ClusterPut {
        server_name: c.server_name.clone(),
        enabled: true,
        member_config: Some(c.member_config.clone()),
        cluster_address: c.cluster_address.clone(),
        cluster_certificate: c.cluster_certificate.clone(),
        server_address: c.server_address.clone(),
        cluster_password: c.cluster_password.clone(),
        cluster_token: String::new(),
    };
    if !c.cluster_token.is_empty() {
        let token = JoinToken::decode(&c.cluster_token)
            .map_err(|e| InitError::Invalid(format!("Invalid cluster join token: {e}")))?;
        let (address, pem) = resolve_token(&token).await?;
        put.server_name = token.server_name.clone();
        put.cluster_address = address;
        put.cluster_certificate = pem;
        put.cluster_password = c.cluster_token.trim().to_string();
    } else {
        put.cluster_certificate = cluster_certificate(c)?;
    }
    let op = client.update_cluster(&put).await?;
    if let Some(op) = op {
        client.wait_success(&op, None).await?;
    }
    Ok(())
}
