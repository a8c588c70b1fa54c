//! Failover by the real Redis Sentinel: three `redis-server --sentinel`
//! processes monitor a forkless primary with two forkless replicas; the
//! primary is killed with -9, Sentinel promotes a replica (REPLICAOF NO ONE,
//! CONFIG REWRITE, CLIENT KILL in one MULTI), the other replica follows, and
//! a redis-py Sentinel client writes across it with no acknowledged write lost.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{info_field, q, wait_until, Server};

/// A `redis-server --sentinel` process, killed on drop.
struct Sentinel {
    port: u16,
    child: Child,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sentinel(dir: &Path, primary_port: u16) -> Sentinel {
    let port = common::free_port();
    let conf = dir.join(format!("sentinel-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor mymaster 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds mymaster 1000\n\
             sentinel failover-timeout mymaster 5000\n\
             sentinel parallel-syncs mymaster 1\n",
            dir.display()
        ),
    )
    .unwrap();
    let child = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server --sentinel");
    Sentinel { port, child }
}

fn sentinel_master(s: &Sentinel) -> Vec<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let Ok(mut c) = client.get_connection() else {
        return Vec::new();
    };
    redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg("mymaster")
        .query(&mut c)
        .unwrap_or_default()
}

fn field(reply: &[String], name: &str) -> String {
    reply
        .chunks(2)
        .find(|p| p[0] == name)
        .map(|p| p[1].clone())
        .unwrap_or_default()
}

/// A forkless server with its own config file (Sentinel's CONFIG REWRITE
/// needs one), replicating from `of` if given.
fn forkless(dir: &Path, name: &str, of: Option<u16>) -> Server {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let conf = sub.join("forkless.conf");
    let text = of.map_or(String::new(), |p| format!("replicaof 127.0.0.1 {p}\n"));
    std::fs::write(&conf, text).unwrap();
    Server::spawn_in(&sub, &[conf.to_str().unwrap(), "--save", ""]).expect("forkless")
}

#[test]
fn sentinel_promotes_a_replica_and_a_redis_py_client_loses_no_acknowledged_write() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut primary = forkless(dir, "p", None);
    let r1 = forkless(dir, "r1", Some(primary.port));
    let r2 = forkless(dir, "r2", Some(primary.port));
    let sentinels: Vec<Sentinel> = (0..3).map(|_| start_sentinel(dir, primary.port)).collect();
    // Sentinel finds the replicas through INFO and the other Sentinels
    // through `__sentinel__:hello`.
    assert!(
        wait_until(Duration::from_secs(30), || {
            sentinels.iter().all(|s| {
                let m = sentinel_master(s);
                field(&m, "num-slaves") == "2" && field(&m, "num-other-sentinels") == "2"
            })
        }),
        "Sentinels did not discover the replicas and each other"
    );

    let ports: Vec<String> = sentinels.iter().map(|s| s.port.to_string()).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/redis_py_sentinel.py");
    let mut client = Command::new(&python)
        .arg(script)
        .arg(ports.join(","))
        .arg("mymaster")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let mut out = BufReader::new(client.stdout.take().unwrap());
    let mut ready = String::new();
    out.read_line(&mut ready).unwrap();
    assert!(
        ready.starts_with(&format!("READY 127.0.0.1:{}", primary.port)),
        "{ready}"
    );
    primary.kill9();

    let deadline = Instant::now() + Duration::from_secs(90);
    while client.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the redis-py client did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = client.wait_with_output().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    assert!(
        output.status.success() && rest.starts_with("redis-py sentinel OK"),
        "{rest}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // One replica was promoted (every Sentinel hears of it); the other follows it.
    let old_port = primary.port.to_string();
    assert!(wait_until(Duration::from_secs(30), || {
        sentinels
            .iter()
            .all(|s| field(&sentinel_master(s), "port") != old_port)
    }));
    let m = sentinel_master(&sentinels[0]);
    let new_port: u16 = field(&m, "port").parse().unwrap();
    let (promoted, other) = if new_port == r1.port {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    assert_eq!(new_port, promoted.port);
    let mut p = promoted.client();
    assert_eq!(info_field(&mut p, "replication", "role"), "master");
    let mut o = other.client();
    assert!(wait_until(Duration::from_secs(30), || {
        info_field(&mut o, "replication", "master_port") == promoted.port.to_string()
            && info_field(&mut o, "replication", "master_link_status") == "up"
    }));
    // Sentinel's CONFIG REWRITE: the promoted replica's file lost its
    // `replicaof`, the other's names the new primary.
    let conf = std::fs::read_to_string(promoted.dir.join("forkless.conf")).unwrap();
    assert!(!conf.contains("replicaof"), "{conf}");
    let conf = std::fs::read_to_string(other.dir.join("forkless.conf")).unwrap();
    assert!(
        conf.contains(&format!("replicaof 127.0.0.1 {}", promoted.port)),
        "{conf}"
    );
    let _: () = q(&mut p, &["SET", "after-failover", "1"]);
    assert!(wait_until(Duration::from_secs(10), || {
        let v: Option<String> = q(&mut o, &["GET", "after-failover"]);
        v.is_some()
    }));
}
