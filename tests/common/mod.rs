//! Shared helpers for whole-binary tests: start the real `forkless` binary on a
//! free loopback port in a temporary directory, talk to it with the `redis`
//! crate or `redis-cli`, kill and restart it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_forkless");

/// A running forkless process.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    args: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts with no save points in a fresh temporary directory.
    pub fn start() -> Server {
        Server::start_with(&["--save", ""])
    }

    /// Starts with extra arguments in a fresh temporary directory.
    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server::spawn_in(&dir, args).expect("server did not start");
        s._tmp = Some(tmp);
        s
    }

    /// Starts in `dir` (kept by the caller). Returns the log on failure to start.
    pub fn spawn_in(dir: &Path, args: &[&str]) -> Result<Server, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut child = Command::new(BIN)
            .arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(dir)
            .args(&args)
            .env("FORKLESS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn forkless");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(p) = line.split("port=").nth(1) {
                        if let Ok(port) = p.trim().parse::<u16>() {
                            let _ = tx.send(port);
                        }
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(port) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Server {
                    port,
                    dir: dir.to_path_buf(),
                    child: Some(child),
                    log,
                    args,
                    _tmp: None,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("exited with {status}: {}", log.lock().unwrap()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("no ready line: {}", log.lock().unwrap()));
            }
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).unwrap();
        client.get_connection().expect("connect")
    }

    pub fn client_resp3(&self) -> redis::Connection {
        let client = redis::Client::open(format!("{}?protocol=resp3", self.url())).unwrap();
        client.get_connection().expect("connect resp3")
    }

    pub async fn async_client(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap();
        client
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    /// Runs `redis-cli -p PORT args...` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until the log contains `needle`: the log is read from
    /// the process's pipes by another thread, so a line can lag the event.
    pub fn log_eventually_contains(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// kill -9, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal by name and waits (bounded) for the process to exit.
    pub fn signal_and_wait(&mut self, sig: &str) -> Option<ExitStatus> {
        let pid = self.pid();
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .ok()?;
        self.wait_exit(Duration::from_secs(30))
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    return Some(status);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts a new process in the same directory with the same arguments.
    pub fn restart(&mut self) {
        self.kill9();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let fresh = Server::spawn_in(&self.dir, &args).expect("restart");
        self.port = fresh.port;
        self.log = fresh.log.clone();
        let mut fresh = fresh;
        self.child = fresh.child.take();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Builds a command from words.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs a command that must succeed and converts its reply.
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    cmd(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The error line a command that must fail answers with, as `CODE detail`.
pub fn error(c: &mut redis::Connection, args: &[&str]) -> String {
    let e = cmd(args)
        .query::<redis::Value>(c)
        .expect_err(&format!("{args:?} should fail"));
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

/// INFO persistence as a field -> value map.
pub fn info_persistence(c: &mut redis::Connection) -> std::collections::BTreeMap<String, String> {
    let text: String = q(c, &["INFO", "persistence"]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// A loopback port nothing listens on right now (for servers started with
/// an explicit port, such as redis-server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real redis-server on loopback `port` with its data in `dir` and no
/// save points, output discarded; callers add arguments and spawn it.
pub fn redis_server_command(port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .arg("--dir")
    .arg(dir)
    .stdout(Stdio::null());
    cmd
}

/// Waits (bounded) until no background save runs; returns INFO persistence.
pub fn wait_bgsave(c: &mut redis::Connection) -> std::collections::BTreeMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = info_persistence(c);
        if info.get("rdb_bgsave_in_progress").map(String::as_str) == Some("0") {
            return info;
        }
        assert!(Instant::now() < deadline, "BGSAVE did not finish: {info:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The Python of a venv at target/redis-py-venv with redis-py installed,
/// made on first use; `None` (with a note) when that is not possible.
pub fn venv_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/redis-py-venv");
    let python = venv.join("bin/python");
    let has_redis = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", "import redis"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_redis(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("python3 -m venv failed; redis-py test skipped");
        return None;
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "redis"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !has_redis(&python) {
        eprintln!("pip install redis failed (offline?); redis-py test skipped");
        return None;
    }
    Some(python)
}

/// Runs `tests/clients/<script>` with the venv's Python against `port`, for
/// at most `limit`, and checks that it succeeded and printed `ok_line` first.
pub fn run_python_check(python: &Path, script: &str, port: u16, ok_line: &str, limit: Duration) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut child = Command::new(python)
        .arg(path)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.starts_with(ok_line), "{stdout}");
}

/// Takes `rounds` snapshots 100 ms apart (BGSAVE and SAVE in turn) while
/// other clients write, and returns a copy of each dump in its own directory.
pub fn dumps_while_writing(
    s: &Server,
    c: &mut redis::Connection,
    rounds: usize,
) -> Vec<tempfile::TempDir> {
    let mut dumps = Vec::new();
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(100));
        if round % 2 == 0 {
            let _: String = q(c, &["BGSAVE"]);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let info: String = q(c, &["INFO", "persistence"]);
                if info.contains("rdb_bgsave_in_progress:0") {
                    break;
                }
                assert!(Instant::now() < deadline, "BGSAVE did not finish");
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            let _: String = q(c, &["SAVE"]);
        }
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(s.dir.join("dump.rdb"), copy.path().join("dump.rdb")).unwrap();
        dumps.push(copy);
    }
    dumps
}

/// Turns on every keyspace event, runs `script` on `s`, and returns the
/// first `count` key events it published, as (event, key) pairs.
pub fn key_events_of(s: &Server, script: &[&[&str]], count: usize) -> Vec<(String, String)> {
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = s.client();
    let mut pubsub = sub.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for cmd in script {
        let _: redis::Value = q(&mut c, cmd);
    }
    (0..count)
        .map(|_| {
            let msg = pubsub.get_message().unwrap();
            let channel = msg.get_channel_name().to_string();
            let key: String = msg.get_payload().unwrap();
            (
                channel.trim_start_matches("__keyevent@0__:").to_string(),
                key,
            )
        })
        .collect()
}

/// One INFO field of `section`, or "" when absent.
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let text: String = q(c, &["INFO", section]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every key of every database with its type, contents (collections in a
/// canonical order) and absolute expiry, for comparing two servers.
pub fn capture(c: &mut redis::Connection) -> std::collections::BTreeMap<(u32, Vec<u8>), String> {
    use redis::Value;
    let mut out = std::collections::BTreeMap::new();
    let dbs: u32 = q::<Vec<String>>(c, &["CONFIG", "GET", "databases"])[1]
        .parse()
        .unwrap();
    for db in 0..dbs {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(c).unwrap();
            let read = |c: &mut redis::Connection, name: &str, extra: &[&str]| -> Value {
                let mut cmd = redis::cmd(name);
                cmd.arg(&key);
                for e in extra {
                    cmd.arg(*e);
                }
                cmd.query(c).unwrap()
            };
            let mut value = match kind.as_str() {
                "string" => format!("{:?}", read(c, "GET", &[])),
                "list" => format!("{:?}", read(c, "LRANGE", &["0", "-1"])),
                "zset" => format!("{:?}", read(c, "ZRANGE", &["0", "-1", "WITHSCORES"])),
                "stream" => format!("{:?}", read(c, "XRANGE", &["-", "+"])),
                "hash" | "set" => {
                    let items = read(
                        c,
                        if kind == "hash" {
                            "HGETALL"
                        } else {
                            "SMEMBERS"
                        },
                        &[],
                    );
                    let mut parts: Vec<String> = match items {
                        Value::Array(v) if kind == "hash" => {
                            v.chunks(2).map(|p| format!("{:?}", p)).collect()
                        }
                        Value::Array(v) | Value::Set(v) => {
                            v.iter().map(|x| format!("{x:?}")).collect()
                        }
                        other => vec![format!("{other:?}")],
                    };
                    parts.sort();
                    parts.join(",")
                }
                other => other.to_string(),
            };
            let expiry: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(c).unwrap();
            value.push_str(&format!(" expire={expiry}"));
            out.insert((db, key), format!("{kind}: {value}"));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    out
}

/// A request in RESP multibulk form, as a client sends it.
pub fn bulk_cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}
