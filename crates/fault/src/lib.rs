//! The fault suite: runs real `rxd` members, drives LXD-API workloads against them while a
//! nemesis kills, pauses, partitions and reshapes the cluster, then checks the recorded history.
//! Dev-only; the product does not depend on it.

pub mod check;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod profile;
pub mod run;
pub mod workload;
