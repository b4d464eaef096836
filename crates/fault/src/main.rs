//! `rxd-fault`: runs the fault suite. `run` is one workload against one nemesis mix with one
//! seed; `run-all` runs a profile (`quick` or `long`) and writes `summary.json`. Exits 0 only
//! on a valid run with no anomaly.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rxd_fault::nemesis::Nemesis;
use rxd_fault::profile::{self, Profile};
use rxd_fault::run::{self, RunOptions};
use rxd_fault::workload::Workload;

#[derive(Parser)]
#[command(name = "rxd-fault", about = "Fault suite for rxd clusters")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One run: one workload, one nemesis mix, one seed.
    Run {
        /// The workload.
        #[arg(long, value_enum)]
        workload: Workload,
        /// Faults, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',')]
        nemesis: Vec<Nemesis>,
        /// Seed of every random choice (default: random, printed).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Every run of a profile; writes DIR/summary.json.
    RunAll {
        /// quick (CI) or long.
        #[arg(long, value_enum)]
        profile: Profile,
        /// First seed; each run adds its position (default: random, printed).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
struct Common {
    /// Where run directories go.
    #[arg(long, default_value = "target/fault-runs")]
    out: PathBuf,
    /// Members formed at the start (one spare slot is added).
    #[arg(long)]
    members: Option<usize>,
    /// Seconds of faults per run.
    #[arg(long)]
    fault_secs: Option<u64>,
    /// Members on 127.0.<N>.x in the root namespace, without network faults.
    #[arg(long)]
    loopback: bool,
    /// Third octet of loopback addresses.
    #[arg(long, default_value_t = 140)]
    loopback_net: u8,
    /// A deliberate bug to switch on in the daemons (a build with `fault-injection`).
    #[arg(long = "switch")]
    switches: Vec<String>,
    /// Keep run directories of passing runs too.
    #[arg(long)]
    keep: bool,
    /// The rxd binary (default: beside this one).
    #[arg(long)]
    rxd: Option<PathBuf>,
}

impl Common {
    /// Run options from the flags, with `profile`'s member count and fault window unless given.
    fn options(
        &self,
        workload: Workload,
        nemesis: Vec<Nemesis>,
        seed: u64,
        profile: Profile,
    ) -> RunOptions {
        RunOptions {
            workload,
            nemesis,
            seed,
            members: self.members.unwrap_or(profile.members()),
            fault_secs: self.fault_secs.unwrap_or(profile.fault_secs()),
            out: self.out.clone(),
            loopback: self.loopback,
            loopback_net: self.loopback_net,
            switches: self.switches.clone(),
            keep: self.keep,
            rxd: self.rxd.clone().unwrap_or_else(run::default_rxd),
        }
    }
}

fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        let s = rand::random::<u32>() as u64;
        eprintln!("seed {s}");
        s
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    let valid = rt.block_on(async {
        match cli.command {
            Command::Run {
                workload,
                nemesis,
                seed,
                common,
            } => {
                let opts = common.options(workload, nemesis, seed_or_random(seed), Profile::Quick);
                let summary = run::run(&opts).await?;
                println!("{}", profile::table(std::slice::from_ref(&summary)));
                anyhow::Ok(summary.verdict == rxd_fault::check::Verdict::Valid)
            }
            Command::RunAll {
                profile,
                seed,
                common,
            } => {
                let seed = seed_or_random(seed);
                let mut base = common.options(Workload::Sets, Vec::new(), seed, profile);
                base.keep |= profile == Profile::Long;
                let summary = profile::run_all(profile, &base).await?;
                anyhow::Ok(summary.verdict == rxd_fault::check::Verdict::Valid)
            }
        }
    })?;
    std::process::exit(if valid { 0 } else { 1 });
}
