//! Whole-binary fault tests on a real, small filesystem: a tmpfs the test
//! mounts (as root) fills up during BGSAVE, is remounted read-only, and the
//! dump directory disappears. Each case checks that the error reaches INFO and
//! the log, the old dump stays intact, writes get MISCONF, and that saving
//! recovers once the fault is gone. Without permission to mount, the tmpfs
//! tests print why and return.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{info_persistence, q, Server};

/// A tmpfs mounted under a temporary directory, unmounted on drop.
struct Tmpfs {
    mnt: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mnt)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs { mnt, _tmp: tmp })
    }

    fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.mnt)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {mode} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

macro_rules! mount_or_skip {
    ($size:expr) => {
        match Tmpfs::mount($size) {
            Ok(fs) => fs,
            Err(e) => {
                eprintln!("SKIPPED: cannot mount a tmpfs here: {e}");
                return;
            }
        }
    };
}

/// Runs BGSAVE and waits (bounded) for it; returns `rdb_last_bgsave_status`.
fn bgsave(con: &mut redis::Connection) -> String {
    let started: String = q(con, &["BGSAVE"]);
    assert_eq!(started, "Background saving started");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = info_persistence(con);
        if info["rdb_bgsave_in_progress"] == "0" {
            return info["rdb_last_bgsave_status"].clone();
        }
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// About `n` KiB of string data, in the dump too: the values are random
/// printable bytes, which the snapshot's compression cannot shrink.
fn fill_kib(con: &mut redis::Connection, prefix: &str, n: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ prefix.len() as u64;
    let mut mset = redis::cmd("MSET");
    for i in 0..n {
        let value: String = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'!' + (state % 94) as u8)
            })
            .collect();
        mset.arg(format!("{prefix}:{i}")).arg(value);
    }
    let _: () = mset.query(con).unwrap();
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("temp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Writes a file until the filesystem is full; returns its path.
fn fill_disk(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

fn assert_misconf(con: &mut redis::Connection) {
    let err = redis::cmd("SET")
        .arg("blocked")
        .arg("1")
        .query::<()>(con)
        .unwrap_err();
    assert_eq!(err.code(), Some("MISCONF"), "{err}");
}

#[test]
fn full_disk_during_bgsave_keeps_the_old_dump_and_recovers() {
    let fs = mount_or_skip!("2m");
    let s = Server::spawn_in(&fs.mnt, &["--save", "3600 1"]).unwrap();
    let mut con = s.client();
    fill_kib(&mut con, "a", 600);
    let _: () = q(&mut con, &["SAVE"]);
    let dump = fs.mnt.join("dump.rdb");
    let good = std::fs::read(&dump).unwrap();
    assert!(good.len() > 500_000);

    let filler = fill_disk(&fs.mnt);
    fill_kib(&mut con, "b", 100);
    assert_eq!(bgsave(&mut con), "err");
    assert_eq!(std::fs::read(&dump).unwrap(), good, "old dump changed");
    assert!(temp_files(&fs.mnt).is_empty(), "{:?}", temp_files(&fs.mnt));
    assert!(
        s.log_eventually_contains("Background saving error", std::time::Duration::from_secs(5)),
        "{}",
        s.log()
    );
    assert_misconf(&mut con);
    let v: String = q(&mut con, &["GET", "b:1"]);
    assert_eq!(v.len(), 1000, "reads still work");

    // Space is back: the next save succeeds and writes are accepted again.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(bgsave(&mut con), "ok");
    let _: () = q(&mut con, &["SET", "after", "1"]);
    let _: () = q(&mut con, &["SAVE"]);
    drop(con);
    let mut s = s;
    s.restart();
    let n: i64 = q(&mut s.client(), &["DBSIZE"]);
    assert_eq!(n, 701);
}

#[test]
fn read_only_remount_fails_saves_until_writable_again() {
    let fs = mount_or_skip!("8m");
    let s = Server::spawn_in(&fs.mnt, &["--save", "3600 1"]).unwrap();
    let mut con = s.client();
    fill_kib(&mut con, "a", 200);
    let _: () = q(&mut con, &["SAVE"]);
    let dump = fs.mnt.join("dump.rdb");
    let good = std::fs::read(&dump).unwrap();

    fs.remount("ro");
    let _: () = q(&mut con, &["SET", "new", "1"]);
    assert_eq!(bgsave(&mut con), "err");
    let err = redis::cmd("SAVE").query::<()>(&mut con).unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
    assert_misconf(&mut con);
    assert_eq!(std::fs::read(&dump).unwrap(), good, "old dump changed");
    assert!(s.log_eventually_contains("Background saving error", std::time::Duration::from_secs(5)));

    fs.remount("rw");
    assert_eq!(bgsave(&mut con), "ok");
    let _: () = q(&mut con, &["SET", "again", "1"]);
    assert!(
        std::fs::read(&dump).unwrap() != good,
        "new dump not written"
    );
}

#[test]
fn removed_dump_directory_fails_saves_until_recreated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let s = Server::spawn_in(&dir, &["--save", "3600 1"]).unwrap();
    let mut con = s.client();
    fill_kib(&mut con, "a", 50);
    let _: () = q(&mut con, &["SAVE"]);

    std::fs::remove_dir_all(&dir).unwrap();
    let _: () = q(&mut con, &["SET", "new", "1"]);
    assert_eq!(bgsave(&mut con), "err");
    assert_misconf(&mut con);
    assert!(s.log_eventually_contains("Background saving error", std::time::Duration::from_secs(5)));

    std::fs::create_dir(&dir).unwrap();
    assert_eq!(bgsave(&mut con), "ok");
    assert!(dir.join("dump.rdb").exists());
    let _: () = q(&mut con, &["SET", "again", "1"]);
}
