//! Loopback blocks for multi-member tests: each test leases a whole `127.0.N.0/24` for as long
//! as it holds the [`Net`], so tests running at once (nextest runs each in its own process)
//! never share an address. The lease is an exclusive lock on a file per block; the kernel
//! drops it when the holder exits, however it exits.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

/// The third octets handed out: 127.0.0.0/24 and 127.0.1.0/24 stay free for single-address
/// uses (`127.0.0.1`) and unit tests with fixed addresses.
const BLOCKS: std::ops::RangeInclusive<u8> = 2..=250;

/// One leased `127.0.N.0/24`.
#[derive(Debug)]
pub struct Net {
    third: u8,
    _lock: File,
}

impl Net {
    /// Leases a free block, waiting (bounded) if every block is taken.
    pub fn lease() -> Net {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir).expect("the lease directory can be made");
        let count = BLOCKS.len();
        // Start where this process's id points, so tests starting together rarely collide.
        let start = std::process::id() as usize % count;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            for i in 0..count {
                let third = *BLOCKS.start() + ((start + i) % count) as u8;
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join(format!("127.0.{third}.lock")))
                    .expect("lease files can be opened");
                if file.try_lock().is_ok() {
                    return Net { third, _lock: file };
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no free loopback block in 127.0.{}-{}.0/24 within 60 s",
                BLOCKS.start(),
                BLOCKS.end()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The block's third octet.
    pub fn third(&self) -> u8 {
        self.third
    }

    /// `127.0.N`, the prefix [`crate::Member::form`] numbers members under.
    pub fn prefix(&self) -> String {
        format!("127.0.{}", self.third)
    }

    /// The address `127.0.N.host`.
    pub fn ip(&self, host: u8) -> String {
        format!("127.0.{}.{host}", self.third)
    }

    /// The member address `127.0.N.host:8443`.
    pub fn addr(&self, host: u8) -> String {
        format!("127.0.{}.{host}:8443", self.third)
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "127.0.{}", self.third)
    }
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("rxd-testkit-nets")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_in_one_process_never_share_a_block() {
        let a = Net::lease();
        let b = Net::lease();
        assert_ne!(a.third(), b.third());
        assert_eq!(a.addr(3), format!("{}.3:8443", a.prefix()));
        let path = lock_dir().join(format!("127.0.{}.lock", a.third()));
        let probe = OpenOptions::new().write(true).open(&path).unwrap();
        assert!(probe.try_lock().is_err(), "a held block is locked");
        drop(a);
        assert!(probe.try_lock().is_ok(), "a dropped lease frees its block");
    }

    /// Multi-member tests take their addresses from a lease, never from a literal: a
    /// hand-picked `127.0.N.x` (other than 127.0.0.1) in a test file is refused here.
    #[test]
    fn no_test_picks_a_loopback_address_by_hand() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs = vec![root.join("tests/tests")];
        for krate in std::fs::read_dir(root.join("crates")).unwrap() {
            dirs.push(krate.unwrap().path().join("tests"));
        }
        let literal = |line: &str| {
            line.match_indices("127.0.").any(|(i, _)| {
                let rest = &line[i + 6..];
                let third: String = rest.chars().take_while(char::is_ascii_digit).collect();
                !third.is_empty() && third != "0" && third != "1"
            })
        };
        let mut found = Vec::new();
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            for file in std::fs::read_dir(dir).unwrap() {
                let path = file.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for (n, line) in text.lines().enumerate() {
                    if literal(line) {
                        found.push(format!("{}:{}: {line}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(found.is_empty(), "use Net::lease():\n{}", found.join("\n"));
    }
}
