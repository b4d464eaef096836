//! `GET /1.0/networks/{name}/leases`: a managed bridge's gateway addresses and the DHCP leases
//! of every member that has it, each with its `location`; and `GET
//! /internal/networks/{name}/leases`, one member's own leases.
//!
//! ```text
//!  GET /1.0/networks/n/leases ─> gateways ─> this member's dnsmasq.leases
//!      ─> each other member with n: GET /internal/networks/n/leases
//!         (one that cannot answer fails the request, naming it, as LXD's does)
//! ```

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use rxd_api::NetworkLease;
use rxd_db::tables::{self, MemberState};
use rxd_db::DbError;

use crate::error::{ApiError, ApiResult};
use crate::handlers::get_on_member;
use crate::response::sync;
use crate::Daemon;

/// `GET /1.0/networks/{name}/leases`. rxd has no instances, so unlike LXD no lease is hidden
/// for belonging to none of the project's instances: every lease dnsmasq handed out is listed.
pub async fn network_leases_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let n = name.clone();
    let (net, members) = d
        .db()
        .read(move |c| {
            let net = match tables::network(c, &n) {
                Ok(net) => Some(net),
                Err(DbError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            Ok((net, tables::members(c)?))
        })
        .await?;
    let net =
        net.ok_or_else(|| ApiError::not_found("Failed loading network: Network not found"))?;
    let own = d.own_member().await?;
    let mut leases = rxd_network::leases::gateways(&net.name, &net.config);
    leases.extend(rxd_network::leases::local(&d.dir, &net.name, &own.name)?);
    let path = format!(
        "/internal/networks/{}/leases",
        rxd_client::encode(&net.name)
    );
    let others = members.iter().filter(|m| {
        m.id != own.id
            && m.state != MemberState::Pending
            && net.members.iter().any(|nm| nm.member_id == m.id)
    });
    for member in others {
        let raw = get_on_member(&d, member, &path).await?;
        let theirs: Vec<NetworkLease> =
            serde_json::from_value(raw.envelope.metadata).map_err(|e| {
                ApiError::internal(format!(
                    "Bad leases from cluster member {:?}: {e}",
                    member.name
                ))
            })?;
        leases.extend(theirs);
    }
    Ok(sync(leases))
}

/// `GET /internal/networks/{name}/leases`: the dynamic leases in this member's dnsmasq lease
/// file for network `name`.
pub async fn internal_network_leases_get(
    State(d): State<Arc<Daemon>>,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let own = d.own_member().await?;
    Ok(sync(rxd_network::leases::local(&d.dir, &name, &own.name)?))
}
