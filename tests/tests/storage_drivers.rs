//! Storage drivers on a real host: btrfs pools on loop files under the members' temp dirs and on
//! a loop device, zfs and lvm refused with the reason, bad input refused with nothing left
//! behind, and per-member btrfs pools across a cluster.
//!
//! Every mount and loop device a test makes is released by [`HostCleanup`], which is declared
//! after the members so that it runs first, also when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use rxd_api::StoragePoolsPost;
use rxd_testkit::{Member, Net};

fn pool(name: &str, driver: &str, config: &[(&str, &str)]) -> StoragePoolsPost {
    StoragePoolsPost {
        name: name.into(),
        driver: driver.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn mountinfo() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some((
                PathBuf::from(fields[4].replace("\\040", " ")),
                fields.get(dash + 1)?.to_string(),
            ))
        })
        .collect()
}

/// The filesystem mounted at `path`, if any.
fn mounted(path: &Path) -> Option<String> {
    mountinfo()
        .into_iter()
        .rev()
        .find(|(p, _)| p == path)
        .map(|(_, fs)| fs)
}

/// Loop devices whose backing file lies under `root`.
fn loop_devices_under(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            Path::new(backing.trim())
                .starts_with(root)
                .then(|| format!("/dev/{name}"))
        })
        .collect()
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Unmounts everything under its roots and detaches loop devices backed by files there.
struct HostCleanup(Vec<PathBuf>);

impl HostCleanup {
    fn of(members: &[&Member]) -> HostCleanup {
        HostCleanup(members.iter().map(|m| m.dir().to_path_buf()).collect())
    }
}

impl Drop for HostCleanup {
    fn drop(&mut self) {
        for root in &self.0 {
            let mut points: Vec<PathBuf> = mountinfo()
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| p.starts_with(root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(&p).status();
            }
            for dev in loop_devices_under(root) {
                let _ = Command::new("losetup").args(["-d", &dev]).status();
            }
        }
    }
}

/// What this host can run, found without asking rxd. Under CI (env `CI` set) a host without
/// btrfs fails the test instead: the btrfs tests would otherwise pass without testing.
fn btrfs_works() -> bool {
    let tool = [
        "/usr/sbin/mkfs.btrfs",
        "/sbin/mkfs.btrfs",
        "/usr/bin/mkfs.btrfs",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    let kernel = std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.trim_end().ends_with("\tbtrfs") || l.trim() == "btrfs");
    assert!(
        (tool && kernel) || std::env::var_os("CI").is_none(),
        "CI is set but this host cannot run btrfs (mkfs.btrfs installed: {tool}, \
         btrfs in /proc/filesystems: {kernel})"
    );
    tool && kernel
}

async fn supported(m: &Member) -> Vec<String> {
    let (server, _) = m.client().server().await.unwrap();
    server
        .environment
        .unwrap()
        .storage_supported_drivers
        .into_iter()
        .map(|d| d.name)
        .collect()
}

/// Nothing of pool `name` is left on `m`: no record, no mount, no directory, no loop file.
async fn nothing_left(m: &Member, name: &str) {
    let mnt = m.dir().join("storage-pools").join(name);
    assert!(
        mounted(&mnt).is_none(),
        "{} is still mounted",
        mnt.display()
    );
    assert!(!mnt.exists(), "{} is left behind", mnt.display());
    let img = m.dir().join("disks").join(format!("{name}.img"));
    assert!(!img.exists(), "{} is left behind", img.display());
    let names: Vec<String> = m
        .client()
        .storage_pools()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(!names.contains(&name.to_string()), "{names:?}");
}

#[tokio::test]
async fn supported_drivers_are_exactly_those_that_work_here() {
    let m = Member::start();
    let mut want = vec!["dir".to_string()];
    if btrfs_works() {
        want.push("btrfs".into());
    }
    assert_eq!(supported(&m).await, want);

    eprintln!("zfs and lvm are recognised and refused with the reason");
    for driver in ["zfs", "lvm"] {
        let err = m
            .client()
            .create_storage_pool(&pool("p", driver, &[]), None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "Storage driver \"{driver}\" cannot be used on this host: "
            )),
            "{text}"
        );
        if driver == "zfs" && !Path::new("/sys/module/zfs").exists() {
            assert!(text.contains("zfs kernel module is not loaded"), "{text}");
        }
        if driver == "lvm" && !Path::new("/dev/mapper/control").exists() {
            assert!(text.contains("device-mapper is not available"), "{text}");
        }
        nothing_left(&m, "p").await;
    }
    let err = m
        .client()
        .create_storage_pool(&pool("p", "nosuch", &[]), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Unknown storage driver \"nosuch\""),
        "{err}"
    );
}

#[tokio::test]
async fn btrfs_pool_on_a_loop_file() {
    let mut m = Member::start();
    let _cleanup = HostCleanup::of(&[&m]);
    let c = m.client();
    if !btrfs_works() {
        eprintln!("This host cannot mount btrfs: creation is refused with the reason");
        let err = c
            .create_storage_pool(&pool("bp", "btrfs", &[]), None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot be used on this host"),
            "{err}"
        );
        nothing_left(&m, "bp").await;
        return;
    }

    eprintln!("A btrfs pool of the given size is a loop file, formatted and mounted");
    c.create_storage_pool(&pool("bp", "btrfs", &[("size", "300MiB")]), None)
        .await
        .unwrap();
    let img = m.dir().join("disks/bp.img");
    let mnt = m.dir().join("storage-pools/bp");
    let (p, _) = c.storage_pool("bp", None).await.unwrap();
    assert_eq!(p.driver, "btrfs");
    assert_eq!(p.status, "Created");
    assert_eq!(p.config["source"], img.display().to_string());
    assert_eq!(p.config["size"], "300MiB");
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 300 << 20);
    assert_eq!(mounted(&mnt).as_deref(), Some("btrfs"));
    assert_eq!(loop_devices_under(m.dir()).len(), 1);
    let names: Vec<String> = c
        .storage_pools()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(names.contains(&"bp".to_string()), "{names:?}");

    eprintln!("Without a size, LXD's default: a fifth of the filesystem, 5GiB to 30GiB");
    c.create_storage_pool(&pool("bp2", "btrfs", &[]), None)
        .await
        .unwrap();
    let (p2, _) = c.storage_pool("bp2", None).await.unwrap();
    let gib: u64 = p2.config["size"].trim_end_matches("GiB").parse().unwrap();
    assert!((5..=30).contains(&gib), "{:?}", p2.config);
    c.delete_storage_pool("bp2").await.unwrap();
    nothing_left(&m, "bp2").await;

    eprintln!("A clean stop unmounts the pool; the next start mounts it again");
    std::fs::write(mnt.join("marker"), "kept").unwrap();
    m.stop();
    assert!(mounted(&mnt).is_none(), "a stopped daemon leaves no mount");
    assert!(loop_devices_under(m.dir()).is_empty());
    m.start_again();
    assert_eq!(mounted(&mnt).as_deref(), Some("btrfs"));
    assert_eq!(std::fs::read_to_string(mnt.join("marker")).unwrap(), "kept");

    eprintln!("After a crash the pool is still mounted, and a start keeps that one mount");
    m.kill();
    m.start_again();
    let mounts = mountinfo().into_iter().filter(|(p, _)| *p == mnt).count();
    assert_eq!(mounts, 1);

    eprintln!("Deleting unmounts it, releases the loop device and removes the file");
    m.client().delete_storage_pool("bp").await.unwrap();
    nothing_left(&m, "bp").await;
    assert!(loop_devices_under(m.dir()).is_empty());
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing() {
    let m = Member::start();
    let _cleanup = HostCleanup::of(&[&m]);
    let c = m.client();
    if !btrfs_works() {
        return;
    }
    let refused = |config: &'static [(&'static str, &'static str)]| {
        let c = m.client();
        async move {
            let err = c
                .create_storage_pool(&pool("bad", "btrfs", config), None)
                .await
                .unwrap_err();
            assert_eq!(err.status(), Some(400), "{err}");
            err.to_string()
        }
    };

    eprintln!("A size that cannot be parsed");
    let err = refused(&[("size", "abc")]).await;
    assert!(err.contains("Invalid size \"abc\""), "{err}");
    nothing_left(&m, "bad").await;
    let err = refused(&[("size", "1.5GiB")]).await;
    assert!(err.contains("Invalid size \"1.5GiB\""), "{err}");

    eprintln!("A size too small for btrfs fails in mkfs, and the loop file goes again");
    let err = refused(&[("size", "1MiB")]).await;
    assert!(err.contains("Failed to format"), "{err}");
    nothing_left(&m, "bad").await;

    eprintln!("A source that does not exist");
    let err = refused(&[("source", "/nonexistent/rxd-pool")]).await;
    assert!(
        err.contains("Source path '/nonexistent/rxd-pool' doesn't exist"),
        "{err}"
    );
    nothing_left(&m, "bad").await;

    eprintln!("A source directory that is not on btrfs, or not empty");
    let plain = m.dir().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let cfg = [("source".to_string(), plain.display().to_string())];
    let err = c
        .create_storage_pool(
            &StoragePoolsPost {
                config: cfg.into_iter().collect(),
                ..pool("bad", "btrfs", &[])
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("is not on a btrfs filesystem"),
        "{err}"
    );
    nothing_left(&m, "bad").await;
    c.create_storage_pool(&pool("base", "btrfs", &[("size", "300MiB")]), None)
        .await
        .unwrap();
    let full = m.dir().join("storage-pools/base/full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("f"), "data").unwrap();
    let with_source = |path: &Path| StoragePoolsPost {
        config: [("source".to_string(), path.display().to_string())]
            .into_iter()
            .collect(),
        ..pool("bad", "btrfs", &[])
    };
    let err = c
        .create_storage_pool(&with_source(&full), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("Source path '{}' isn't empty", full.display())),
        "{err}"
    );
    nothing_left(&m, "bad").await;

    eprintln!("A new subvolume on an existing btrfs path is bind-mounted, and stays the user's");
    let sub = m.dir().join("storage-pools/base/sub");
    c.create_storage_pool(
        &StoragePoolsPost {
            name: "onpath".into(),
            ..with_source(&sub)
        },
        None,
    )
    .await
    .unwrap();
    let onpath = m.dir().join("storage-pools/onpath");
    assert_eq!(mounted(&onpath).as_deref(), Some("btrfs"));
    c.delete_storage_pool("onpath").await.unwrap();
    nothing_left(&m, "onpath").await;
    assert!(sub.is_dir(), "the user's path stays");

    eprintln!("A block device: used once, then refused while in use, and its data is kept");
    let scratch = m.dir().join("scratch.img");
    std::fs::File::create(&scratch)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    let dev = run("losetup", &["-f", "--show", scratch.to_str().unwrap()]);
    let dev_path = PathBuf::from(&dev);
    c.create_storage_pool(
        &StoragePoolsPost {
            name: "ondev".into(),
            ..with_source(&dev_path)
        },
        None,
    )
    .await
    .unwrap();
    let (p, _) = c.storage_pool("ondev", None).await.unwrap();
    assert!(!p.config.contains_key("size"), "{:?}", p.config);
    assert_eq!(p.config["volatile.initial_source"], dev);
    assert_eq!(
        mounted(&m.dir().join("storage-pools/ondev")).as_deref(),
        Some("btrfs")
    );
    let err = c
        .create_storage_pool(&with_source(&dev_path), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("Source path '{dev}' is in use")),
        "{err}"
    );
    nothing_left(&m, "bad").await;
    c.delete_storage_pool("ondev").await.unwrap();
    nothing_left(&m, "ondev").await;
    let err = c
        .create_storage_pool(&with_source(&dev_path), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!(
            "Source path '{dev}' isn't empty: it holds a btrfs"
        )),
        "{err}"
    );
    nothing_left(&m, "bad").await;
}

#[tokio::test]
async fn btrfs_pools_per_member_across_a_cluster() {
    let net = Net::lease();
    let m = Member::form(3, &net, &[]).await;
    let _cleanup = HostCleanup::of(&[&m[0], &m[1], &m[2]]);
    if !btrfs_works() {
        return;
    }
    let c = m[0].client();
    let sizes = ["300MiB", "400MiB", "500MiB"];

    eprintln!("A bad size is refused already when it is defined on a member");
    let err = c
        .create_storage_pool(&pool("bp", "btrfs", &[("size", "abc")]), Some("node2"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Invalid size \"abc\""), "{err}");

    eprintln!("A member that fails at creation leaves nothing on any member");
    for (i, size) in sizes.iter().enumerate() {
        let mut config = vec![("size", *size)];
        if i == 2 {
            config.push(("source", "/nonexistent/rxd-pool"));
        }
        c.create_storage_pool(
            &pool("bad", "btrfs", &config),
            Some(&format!("node{}", i + 1)),
        )
        .await
        .unwrap();
    }
    let err = c
        .create_storage_pool(&pool("bad", "btrfs", &[]), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("doesn't exist"), "{err}");
    for member in &m {
        assert!(mounted(&member.dir().join("storage-pools/bad")).is_none());
        assert!(!member.dir().join("storage-pools/bad").exists());
        assert!(!member.dir().join("disks/bad.img").exists());
    }

    eprintln!("Each member gets its own loop file of its own size");
    for (i, size) in sizes.iter().enumerate() {
        c.create_storage_pool(
            &pool("bp", "btrfs", &[("size", size)]),
            Some(&format!("node{}", i + 1)),
        )
        .await
        .unwrap();
    }
    c.create_storage_pool(
        &pool("bp", "btrfs", &[("btrfs.mount_options", "noatime")]),
        None,
    )
    .await
    .unwrap();
    for (i, member) in m.iter().enumerate() {
        let img = member.dir().join("disks/bp.img");
        let (p, _) = c
            .storage_pool("bp", Some(&format!("node{}", i + 1)))
            .await
            .unwrap();
        assert_eq!(p.status, "Created");
        assert_eq!(p.config["source"], img.display().to_string());
        assert_eq!(p.config["size"], sizes[i]);
        assert_eq!(p.config["btrfs.mount_options"], "noatime");
        let bytes = rxd_size(sizes[i]);
        assert_eq!(std::fs::metadata(&img).unwrap().len(), bytes);
        assert_eq!(
            mounted(&member.dir().join("storage-pools/bp")).as_deref(),
            Some("btrfs")
        );
    }
    let (global, _) = c.storage_pool("bp", None).await.unwrap();
    assert!(
        !global.config.contains_key("size"),
        "member keys are hidden"
    );

    eprintln!("A joining member would be asked for this pool's size and source");
    let (cluster, _) = m[1].client().cluster().await.unwrap();
    let keys: Vec<(String, String)> = cluster
        .member_config
        .iter()
        .filter(|k| k.name == "bp")
        .map(|k| (k.key.clone(), k.description.clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (
                "size".to_string(),
                "\"size\" property for storage pool \"bp\"".to_string()
            ),
            (
                "source".to_string(),
                "\"source\" property for storage pool \"bp\"".to_string()
            ),
        ]
    );

    eprintln!("Deleting removes every member's loop file and mount");
    c.delete_storage_pool("bp").await.unwrap();
    for member in &m {
        nothing_left(member, "bp").await;
        assert!(loop_devices_under(member.dir()).is_empty());
    }
}

fn rxd_size(s: &str) -> u64 {
    s.trim_end_matches("MiB").parse::<u64>().unwrap() << 20
}
