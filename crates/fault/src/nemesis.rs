//! The nemesis: a plan of faults computed from the seed before the run, then installed one at a
//! time against the members chosen by role when each fault fires, each recorded as installed,
//! skipped (why) or indeterminate.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, ProcState};

/// The kinds of fault.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
#[clap(rename_all = "kebab-case")]
pub enum Nemesis {
    /// SIGKILL a member, restart it when the fault ends.
    Kill,
    /// SIGSTOP a member for longer than the election timeout, then SIGCONT.
    Pause,
    /// Cut the network into sides (namespace mode).
    Partition,
    /// A slow (`tbf`) or lossy (nftables `numgen`) link on a member (namespace mode).
    SlowLinks,
    /// SIGKILL or SIGTERM every member at once, then restart them all.
    RestartAll,
    /// A fresh member joins by token, or a member is removed.
    Membership,
    /// SIGTERM the leader (it hands over leadership as it shuts down), restart it later.
    LeaderTransfer,
    /// Ask an up-to-date voter to start an election (`POST /internal/raft/elect`).
    Elect,
    /// Cut one follower off long enough that it needs a snapshot to catch up.
    Isolate,
    /// Restart a member with its clock 90 s ahead or behind (`faketime`), then back.
    Clock,
    /// Fill a member's data directory (a small tmpfs) with a balloon file, then free it and
    /// restart the member.
    DiskFull,
}

impl Nemesis {
    /// Whether the fault needs network namespaces.
    pub fn needs_network(self) -> bool {
        matches!(
            self,
            Nemesis::Partition | Nemesis::SlowLinks | Nemesis::Isolate
        )
    }

    fn variants(self) -> &'static [&'static str] {
        match self {
            // The leader twice: its loss is what exercises elections, resends and catch-up.
            Nemesis::Kill | Nemesis::Pause => &["leader", "leader", "voter", "standby", "any"],
            Nemesis::Partition => &[
                "leader-isolated",
                "leader-minority",
                "leader-majority",
                "ring",
                "bridge",
                "one-way",
            ],
            Nemesis::SlowLinks => &["slow-leader", "slow-any", "lossy-leader", "lossy-any"],
            Nemesis::RestartAll => &["kill", "term"],
            Nemesis::Membership => &["grow", "shrink"],
            Nemesis::LeaderTransfer => &["term"],
            Nemesis::Elect => &["voter"],
            Nemesis::Isolate => &["follower"],
            Nemesis::Clock => &["ahead-leader", "behind-leader", "ahead-any", "behind-any"],
            Nemesis::DiskFull => &["leader", "voter", "any"],
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Nemesis::Kill => "kill",
            Nemesis::Pause => "pause",
            Nemesis::Partition => "partition",
            Nemesis::SlowLinks => "slow-links",
            Nemesis::RestartAll => "restart-all",
            Nemesis::Membership => "membership",
            Nemesis::LeaderTransfer => "leader-transfer",
            Nemesis::Elect => "elect",
            Nemesis::Isolate => "isolate",
            Nemesis::Clock => "clock",
            Nemesis::DiskFull => "disk-full",
        }
    }
}

/// One fault of the plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Planned {
    /// Milliseconds after the fault phase starts.
    pub at_ms: u64,
    /// The kind.
    pub nemesis: Nemesis,
    /// Which form (a partition shape, a target role, …).
    pub variant: String,
    /// How long it lasts before it is healed.
    pub duration_ms: u64,
    /// Picks among equal candidates when the fault fires.
    pub pick: u64,
}

/// The plan for `window` of faults: faults last 1–4 s and start 1–3 s after the previous one
/// healed; the kinds take turns so each appears.
pub fn plan(mix: &[Nemesis], window: Duration, seed: u64) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(0x5eed));
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut turn = rng.random_range(0..mix.len().max(1));
    let window = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    while !mix.is_empty() {
        let nemesis = mix[turn % mix.len()];
        turn += 1;
        let duration_ms = match nemesis {
            Nemesis::Isolate => rng.random_range(6_000..9_000),
            Nemesis::Clock | Nemesis::DiskFull => rng.random_range(2_000..5_000),
            Nemesis::Membership | Nemesis::Elect => 0,
            _ => rng.random_range(1_000..4_000),
        };
        if t + duration_ms > window {
            break;
        }
        let variants = nemesis.variants();
        let variant = variants[rng.random_range(0..variants.len())].to_string();
        out.push(Planned {
            at_ms: t,
            nemesis,
            variant,
            duration_ms,
            pick: rng.random(),
        });
        t += duration_ms + rng.random_range(1_000..3_000);
    }
    out
}

/// What happened to one planned fault.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Position in the plan.
    pub index: usize,
    /// The kind.
    pub nemesis: Nemesis,
    /// The form.
    pub variant: String,
    /// `installed`, `skipped` or `indeterminate`.
    pub status: String,
    /// Why it was skipped, what was indeterminate, or what was done.
    pub detail: String,
    /// The members it hit, by name.
    pub targets: Vec<String>,
    /// Milliseconds since the run started, when it was installed and when healed.
    pub start_ms: u64,
    /// When it was healed.
    pub end_ms: u64,
}

/// The members' roles as one running member reports them.
#[derive(Debug, Default, Clone)]
pub struct Roles {
    /// The leader's slot.
    pub leader: Option<usize>,
    /// Voters' slots (the leader included).
    pub voters: Vec<usize>,
    /// Stand-bys' slots.
    pub standbys: Vec<usize>,
}

/// Asks the running members, in turn, for the member list and its roles.
pub async fn roles(cluster: &mut Cluster) -> Option<Roles> {
    for i in cluster.running() {
        let client = cluster.client(i, Duration::from_secs(2));
        let Ok(list) = client.cluster_members().await else {
            continue;
        };
        let mut roles = Roles::default();
        for m in list {
            let Some(slot) = cluster.slot_named(&m.server_name) else {
                continue;
            };
            if m.put.roles.iter().any(|r| r == "database-leader") {
                roles.leader = Some(slot);
            }
            if m.put.roles.iter().any(|r| r == "database") {
                roles.voters.push(slot);
            }
            if m.put.roles.iter().any(|r| r == "database-standby") {
                roles.standbys.push(slot);
            }
        }
        if roles.leader.is_some() {
            return Some(roles);
        }
    }
    None
}

/// Runs one fault: installs it, holds it, heals it.
pub async fn fire(
    cluster: &mut Cluster,
    planned: &Planned,
    index: usize,
    since: Instant,
) -> Record {
    let mut rec = Record {
        index,
        nemesis: planned.nemesis,
        variant: planned.variant.clone(),
        status: "installed".into(),
        detail: String::new(),
        targets: Vec::new(),
        start_ms: ms(since),
        end_ms: 0,
    };
    match install(cluster, planned, &mut rec).await {
        Ok(()) => {}
        Err(e) => {
            if rec.status == "installed" {
                rec.status = "skipped".into();
            }
            rec.detail = e.to_string();
        }
    }
    rec.end_ms = ms(since);
    rec
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn pick<T: Copy>(from: &[T], seed: u64) -> Option<T> {
    if from.is_empty() {
        None
    } else {
        Some(from[(seed % from.len() as u64) as usize])
    }
}

fn names(cluster: &Cluster, slots: &[usize]) -> Vec<String> {
    slots
        .iter()
        .map(|i| cluster.slots[*i].name.clone())
        .collect()
}

/// How long a fault waits for a running member in the role it targets (a leader being elected
/// after a restart of every member, say) before it is skipped.
const ROLE_WAIT: Duration = Duration::from_secs(10);

/// A running member in the role `variant`, picked by `seed` among those that have it when the
/// fault fires; waits up to [`ROLE_WAIT`] for one.
async fn target_by_role(cluster: &mut Cluster, variant: &str, seed: u64) -> Result<usize> {
    let deadline = Instant::now() + ROLE_WAIT;
    loop {
        if let Some(t) = in_role(cluster, variant, seed).await {
            return Ok(t);
        }
        if Instant::now() >= deadline {
            bail!("no running {variant} to hit within {ROLE_WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn in_role(cluster: &mut Cluster, variant: &str, seed: u64) -> Option<usize> {
    let running = cluster.running();
    let roles = roles(cluster).await.unwrap_or_default();
    let candidates: Vec<usize> = match variant {
        "leader" => roles.leader.into_iter().collect(),
        "voter" => roles
            .voters
            .iter()
            .copied()
            .filter(|v| Some(*v) != roles.leader)
            .collect(),
        "standby" => roles.standbys.clone(),
        _ => running.clone(),
    };
    let candidates: Vec<usize> = candidates
        .into_iter()
        .filter(|c| running.contains(c))
        .collect();
    pick(&candidates, seed)
}

async fn install(cluster: &mut Cluster, p: &Planned, rec: &mut Record) -> Result<()> {
    let hold = Duration::from_millis(p.duration_ms);
    match p.nemesis {
        Nemesis::Kill => {
            let t = target_by_role(cluster, &p.variant, p.pick).await?;
            rec.targets = names(cluster, &[t]);
            cluster.kill(t);
            tokio::time::sleep(hold).await;
            cluster.launch(t)?;
        }
        Nemesis::Pause => {
            let t = target_by_role(cluster, &p.variant, p.pick).await?;
            rec.targets = names(cluster, &[t]);
            cluster.signal(t, Signal::SIGSTOP)?;
            cluster.slots[t].state = ProcState::Paused;
            tokio::time::sleep(hold).await;
            cluster.signal(t, Signal::SIGCONT)?;
            cluster.slots[t].state = ProcState::Running;
        }
        Nemesis::RestartAll => {
            let all = cluster.members();
            rec.targets = names(cluster, &all);
            if p.variant == "term" {
                for i in &all {
                    let _ = cluster.signal(*i, Signal::SIGTERM);
                }
                for i in &all {
                    cluster.stop(*i, Duration::from_secs(15)).await;
                }
            } else {
                for i in &all {
                    cluster.kill(*i);
                }
            }
            tokio::time::sleep(hold).await;
            for i in &all {
                cluster.launch(*i)?;
            }
        }
        Nemesis::LeaderTransfer => {
            let t = target_by_role(cluster, "leader", p.pick).await?;
            rec.targets = names(cluster, &[t]);
            cluster.stop(t, Duration::from_secs(15)).await;
            tokio::time::sleep(hold).await;
            cluster.launch(t)?;
        }
        Nemesis::Elect => {
            let t = target_by_role(cluster, "voter", p.pick).await?;
            rec.targets = names(cluster, &[t]);
            let client = cluster.client(t, Duration::from_secs(5));
            client
                .request("POST", "/internal/raft/elect", None, None)
                .await?;
        }
        Nemesis::Membership => membership(cluster, p, rec).await?,
        Nemesis::Partition => partition(cluster, p, rec, hold).await?,
        Nemesis::SlowLinks => {
            let Some(net) = cluster.net.as_ref() else {
                bail!("slow links need network namespaces");
            };
            let _ = net;
            let role = if p.variant.ends_with("leader") {
                "leader"
            } else {
                "any"
            };
            let t = target_by_role(cluster, role, p.pick).await?;
            rec.targets = names(cluster, &[t]);
            let net = cluster.net.as_ref().expect("checked above");
            if p.variant.starts_with("slow") {
                net.slow(t, 256)?;
                rec.detail = "egress 256 kbit/s".into();
            } else {
                let percent = 10 + (p.pick % 21) as u32;
                net.lose(t, percent)?;
                rec.detail = format!("{percent} % of incoming packets dropped");
            }
            tokio::time::sleep(hold).await;
            net.heal()?;
        }
        Nemesis::Clock => {
            let role = if p.variant.ends_with("leader") {
                "leader"
            } else {
                "any"
            };
            let t = target_by_role(cluster, role, p.pick).await?;
            rec.targets = names(cluster, &[t]);
            let offset = if p.variant.starts_with("ahead") {
                "+90s"
            } else {
                "-90s"
            };
            rec.detail = format!("clock {offset}");
            cluster.kill(t);
            cluster.launch_skewed(t, Some(offset))?;
            tokio::time::sleep(hold).await;
            cluster.kill(t);
            cluster.launch(t)?;
        }
        Nemesis::DiskFull => {
            let t = target_by_role(cluster, &p.variant, p.pick).await?;
            rec.targets = names(cluster, &[t]);
            let balloon = cluster.fill_disk(t)?;
            rec.detail = format!("{} bytes of balloon", balloon);
            tokio::time::sleep(hold).await;
            cluster.free_disk(t)?;
            // A member whose log or state write failed stops its raft; a restart recovers it.
            cluster.kill(t);
            cluster.launch(t)?;
        }
        Nemesis::Isolate => {
            let t = target_by_role(cluster, "voter", p.pick).await?;
            rec.targets = names(cluster, &[t]);
            let others: Vec<usize> = cluster.members().into_iter().filter(|m| *m != t).collect();
            cut(cluster, &[t], &others, true)?;
            tokio::time::sleep(hold).await;
            cluster.net.as_ref().expect("cut checked it").heal()?;
        }
    }
    Ok(())
}

/// Drops traffic between every member of `a` and every member of `b` (both ways, or only
/// from `a` to `b`).
fn cut(cluster: &Cluster, a: &[usize], b: &[usize], both: bool) -> Result<()> {
    let Some(net) = cluster.net.as_ref() else {
        bail!("partitions need network namespaces");
    };
    for x in a {
        for y in b {
            net.drop_from(*y, *x)?;
            if both {
                net.drop_from(*x, *y)?;
            }
        }
    }
    Ok(())
}

async fn partition(
    cluster: &mut Cluster,
    p: &Planned,
    rec: &mut Record,
    hold: Duration,
) -> Result<()> {
    if cluster.net.is_none() {
        bail!("partitions need network namespaces");
    }
    let roles = roles(cluster).await;
    let mut members = cluster.members();
    let mut rng = StdRng::seed_from_u64(p.pick);
    let leader = roles.as_ref().and_then(|r| r.leader);
    let Some(leader) = leader else {
        bail!("no leader to place");
    };
    members.retain(|m| *m != leader);
    // A shuffled order of the others, so sides differ between faults.
    let mut others = members.clone();
    for i in (1..others.len()).rev() {
        others.swap(i, rng.random_range(0..=i));
    }
    let n = others.len() + 1;
    let minority = (n - 1) / 2;
    let describe = |sides: &[Vec<usize>]| -> String {
        sides
            .iter()
            .map(|s| names(cluster, s).join(","))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    match p.variant.as_str() {
        "leader-isolated" => {
            let a = vec![leader];
            cut(cluster, &a, &others, true)?;
            rec.detail = describe(&[a, others.clone()]);
        }
        "leader-minority" | "leader-majority" => {
            let with_leader = if p.variant == "leader-minority" {
                minority.saturating_sub(1).max(1)
            } else {
                n - minority - 1
            };
            let mut a = vec![leader];
            a.extend(others.iter().take(with_leader));
            let b: Vec<usize> = others.iter().skip(with_leader).copied().collect();
            cut(cluster, &a, &b, true)?;
            rec.detail = describe(&[a, b]);
        }
        "ring" => {
            // Each member reaches only its two neighbours on a ring: every member sees a
            // majority, no two see the same one.
            let mut ring = vec![leader];
            ring.extend(others.iter().copied());
            for (i, x) in ring.iter().enumerate() {
                for (j, y) in ring.iter().enumerate() {
                    let d = (i + n - j) % n;
                    if i != j && d != 1 && d != n - 1 {
                        cluster.net.as_ref().expect("checked").drop_from(*y, *x)?;
                    }
                }
            }
            rec.detail = format!("ring {}", names(cluster, &ring).join(" - "));
        }
        "bridge" => {
            // One member sees both halves; the halves do not see each other.
            let Some((bridge, rest)) = others.split_first() else {
                bail!("too few members for a bridge");
            };
            let mut a = vec![leader];
            let half = rest.len() / 2;
            a.extend(rest.iter().take(half));
            let b: Vec<usize> = rest.iter().skip(half).copied().collect();
            cut(cluster, &a, &b, true)?;
            rec.detail = format!(
                "{} (bridge {})",
                describe(&[a, b]),
                cluster.slots[*bridge].name
            );
        }
        _ => {
            // One-way: the leader's messages reach nobody, theirs reach it.
            cut(cluster, &[leader], &others, false)?;
            rec.detail = format!(
                "{} -/-> {}",
                cluster.slots[leader].name,
                names(cluster, &others).join(",")
            );
        }
    }
    rec.targets = names(cluster, &[leader]);
    tokio::time::sleep(hold).await;
    cluster.net.as_ref().expect("checked").heal()?;
    Ok(())
}

async fn membership(cluster: &mut Cluster, p: &Planned, rec: &mut Record) -> Result<()> {
    let members = cluster.members();
    let spare = (0..cluster.slots.len()).find(|i| !cluster.slots[*i].member);
    let grow = match (p.variant.as_str(), spare) {
        (_, None) => false,
        ("grow", Some(_)) => true,
        _ => members.len() <= 4,
    };
    let running = cluster.running();
    let roles = roles(cluster).await;
    let via = roles
        .as_ref()
        .and_then(|r| r.leader)
        .filter(|l| running.contains(l))
        .or_else(|| running.first().copied());
    let Some(via) = via else {
        bail!("no running member to ask");
    };
    if grow {
        let i = spare.expect("grow only with a spare slot");
        rec.variant = "grow".into();
        match tokio::time::timeout(Duration::from_secs(60), cluster.join(i, via)).await {
            Ok(Ok(())) => {
                rec.targets = names(cluster, &[i]);
                rec.detail = format!("{} joined", cluster.slots[i].name);
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the join took over 60 s".into(),
                };
                rec.status = "indeterminate".into();
                rec.targets = names(cluster, &[i]);
                // Put the slot back as a spare: stop it and ask the cluster to forget it.
                let name = cluster.slots[i].name.clone();
                cluster.kill(i);
                cluster.slots[i].member = false;
                cluster.slots[i].state = ProcState::Empty;
                cluster.views[i]
                    .in_rotation
                    .store(false, std::sync::atomic::Ordering::SeqCst);
                let client = cluster.client(via, Duration::from_secs(30));
                let _ = client.delete_cluster_member(&name, true).await;
                bail!("join failed: {why}");
            }
        }
    } else {
        rec.variant = "shrink".into();
        let candidates: Vec<usize> = members.iter().copied().filter(|m| *m != via).collect();
        let Some(t) = pick(&candidates, p.pick) else {
            bail!("nothing to remove");
        };
        rec.targets = names(cluster, &[t]);
        cluster.views[t]
            .in_rotation
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let force = cluster.slots[t].state != ProcState::Running;
        let name = cluster.slots[t].name.clone();
        let client = cluster.client(via, Duration::from_secs(60));
        match client.delete_cluster_member(&name, force).await {
            Ok(()) => {
                cluster.kill(t);
                cluster.slots[t].member = false;
                cluster.slots[t].state = ProcState::Empty;
                rec.detail = format!("{name} removed{}", if force { " (force)" } else { "" });
            }
            Err(e) => {
                cluster.views[t]
                    .in_rotation
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                if crate::workload::classify(&e) == crate::history::Outcome::Unknown {
                    rec.status = "indeterminate".into();
                }
                bail!("removing {name} failed: {e}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_its_plan_and_another_changes_it() {
        let mix = [Nemesis::Kill, Nemesis::Partition, Nemesis::Membership];
        let window = Duration::from_secs(50);
        let a = serde_json::to_string(&plan(&mix, window, 42)).unwrap();
        let b = serde_json::to_string(&plan(&mix, window, 42)).unwrap();
        let c = serde_json::to_string(&plan(&mix, window, 43)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn faults_fit_the_window_take_turns_and_keep_their_bounds() {
        let mix = [Nemesis::Pause, Nemesis::SlowLinks];
        let window = Duration::from_secs(50);
        for seed in 0..50 {
            let p = plan(&mix, window, seed);
            assert!(p.len() >= 8, "seed {seed}: only {} faults", p.len());
            for k in &mix {
                assert!(p.iter().any(|f| f.nemesis == *k), "seed {seed}: no {k:?}");
            }
            for (f, next) in p.iter().zip(p.iter().skip(1)) {
                assert!((1_000..4_000).contains(&f.duration_ms));
                let gap = next.at_ms - f.at_ms - f.duration_ms;
                assert!((1_000..3_000).contains(&gap), "gap {gap}");
            }
            let last = p.last().unwrap();
            assert!(last.at_ms + last.duration_ms <= 50_000);
        }
    }
}
