//! Whole-binary tests of the admin and introspection commands: redis.conf,
//! CONFIG GET/SET/REWRITE, MEMORY, OBJECT, SLOWLOG, LATENCY, DEBUG, CLIENT
//! PAUSE/REPLY, RESET, MONITOR, INFO, and redis-cli's tools against forkless.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, BIN};
use redis::{Connection, FromRedisValue, Value};

fn q<T: FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

fn q_err(c: &mut Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(c) {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
    }
}

/// A forkless started from a config file only (no harness flags).
struct Proc {
    child: Child,
    port: u16,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Proc {
    fn start(conf: &Path) -> Result<Proc, String> {
        let mut child = Command::new(BIN)
            .arg(conf)
            .env("FORKLESS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, tx) = (log.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(p) = line.split("port=").nth(1) {
                        if let Ok(port) = p.trim().parse::<u16>() {
                            let _ = tx.send(port);
                        }
                    }
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(port) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(Proc { child, port, log });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("exit {status:?}: {}", log.lock().unwrap()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("no ready line: {}", log.lock().unwrap()));
            }
        }
    }

    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_get(c: &mut Connection, name: &str) -> String {
    let pairs: Vec<String> = q(c, &["CONFIG", "GET", name]);
    pairs.get(1).cloned().unwrap_or_default()
}

#[test]
fn config_file_starts_the_server_as_configured_and_rewrite_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let port = common::free_port();
    let conf = tmp.path().join("redis.conf");
    let text = format!(
        "# forkless test configuration\n\
         port {port}\n\
         dir \"{}\"\n\
         dbfilename 'test dump.rdb'\n\
         save 900 1\n\
         save 300 10\n\
         hash-max-ziplist-entries 3\n\
         # an unknown directive is a warning\n\
         rename-command FLUSHALL \"\"\n\
         slowlog-max-len 5\n",
        data.display()
    );
    std::fs::write(&conf, &text).unwrap();
    let server = Proc::start(&conf).expect("starts from the file");
    assert_eq!(server.port, port);
    // The warning goes to stderr, read by another thread than the ready line.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !server.log.lock().unwrap().contains("redis.conf:9")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        server.log.lock().unwrap().contains("redis.conf:9"),
        "warning names file and line: {}",
        server.log.lock().unwrap()
    );
    let mut c = server.client();
    assert_eq!(config_get(&mut c, "save"), "900 1 300 10");
    assert_eq!(config_get(&mut c, "dbfilename"), "test dump.rdb");
    assert_eq!(
        config_get(&mut c, "dir"),
        std::fs::canonicalize(&data).unwrap().display().to_string()
    );
    assert_eq!(config_get(&mut c, "hash-max-listpack-entries"), "3");
    assert_eq!(config_get(&mut c, "hash-max-ziplist-entries"), "3");
    let info: String = q(&mut c, &["INFO", "server"]);
    let canon = std::fs::canonicalize(&conf).unwrap();
    assert!(
        info.contains(&format!("config_file:{}", canon.display())),
        "{info}"
    );
    // The encoding threshold read from the file acts on OBJECT ENCODING.
    let _: i64 = q(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "h"]),
        "listpack"
    );
    let _: i64 = q(&mut c, &["HSET", "h", "d", "4"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "h"]),
        "hashtable"
    );
    // The save actually goes to dir/dbfilename.
    let _: () = q(&mut c, &["SAVE"]);
    assert!(data.join("test dump.rdb").exists());

    // CONFIG SET several pairs, then REWRITE keeps comments and unknown lines.
    let _: () = q(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "hz",
            "42",
            "maxmemory-policy",
            "allkeys-lru",
            "save",
            "60 5",
        ],
    );
    let _: () = q(&mut c, &["CONFIG", "REWRITE"]);
    let rewritten = std::fs::read_to_string(&conf).unwrap();
    assert!(
        rewritten.starts_with("# forkless test configuration\n"),
        "{rewritten}"
    );
    assert!(
        rewritten.contains("rename-command FLUSHALL \"\""),
        "{rewritten}"
    );
    assert!(rewritten.contains("\nsave 60 5\n"), "{rewritten}");
    assert!(!rewritten.contains("save 300 10"), "{rewritten}");
    assert!(rewritten.contains("\nhz 42\n"), "{rewritten}");
    assert!(
        rewritten.contains("\nmaxmemory-policy allkeys-lru\n"),
        "{rewritten}"
    );
    drop(c);
    drop(server);

    let server = Proc::start(&conf).expect("restarts from the rewritten file");
    let mut c = server.client();
    assert_eq!(config_get(&mut c, "hz"), "42");
    assert_eq!(config_get(&mut c, "maxmemory-policy"), "allkeys-lru");
    let memory: String = q(&mut c, &["INFO", "memory"]);
    assert!(memory.contains("maxmemory_policy:allkeys-lru"), "{memory}");
    assert_eq!(config_get(&mut c, "save"), "60 5");
    assert_eq!(config_get(&mut c, "dbfilename"), "test dump.rdb");
    assert_eq!(config_get(&mut c, "slowlog-max-len"), "5");
}

#[test]
fn command_line_flags_override_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("a.conf");
    let inc = tmp.path().join("inc.conf");
    std::fs::write(&inc, "list-compress-depth 4\n").unwrap();
    std::fs::write(
        &conf,
        format!("hz 20\nmaxclients 50\ninclude {}\n", inc.display()),
    )
    .unwrap();
    let server = Server::start_with(&[conf.to_str().unwrap(), "--maxclients", "60"]);
    let mut c = server.client();
    assert_eq!(config_get(&mut c, "hz"), "20");
    assert_eq!(config_get(&mut c, "maxclients"), "60");
    assert_eq!(config_get(&mut c, "list-compress-depth"), "4");
}

#[test]
fn a_bad_config_line_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    for (text, line, reason) in [
        (
            "port 6379\nhz abc\n",
            2,
            "argument couldn't be parsed into an integer",
        ),
        (
            "\nappendfsync sometimes\n",
            2,
            "argument(s) must be one of the following",
        ),
        (
            "activerehashing maybe\n",
            1,
            "argument must be 'yes' or 'no'",
        ),
        ("dir \"/tmp\n", 1, "Unbalanced quotes"),
        ("list-compress-depth 1 2\n", 1, "wrong number of arguments"),
        (
            "protected-mode maybe\n",
            1,
            "argument must be 'yes' or 'no'",
        ),
    ] {
        let conf = tmp.path().join("bad.conf");
        std::fs::write(&conf, text).unwrap();
        let out = Command::new(BIN).arg(&conf).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("bad.conf:{line}")), "{err}");
        assert!(err.contains(reason), "{err}");
    }
    let out = Command::new(BIN)
        .arg(tmp.path().join("missing.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// The names Redis 7.0.15 answers to `CONFIG GET *`.
const REDIS_PARAMS: &str = "acl-pubsub-default aclfile acllog-max-len active-defrag-cycle-max \
active-defrag-cycle-min active-defrag-ignore-bytes active-defrag-max-scan-fields \
active-defrag-threshold-lower active-defrag-threshold-upper active-expire-effort activedefrag \
activerehashing always-show-logo aof-disable-auto-gc aof-load-truncated \
aof-rewrite-incremental-fsync aof-timestamp-enabled aof-use-rdb-preamble aof_rewrite_cpulist \
appenddirname appendfilename appendfsync appendonly auto-aof-rewrite-min-size \
auto-aof-rewrite-percentage bgsave_cpulist bind bind-source-addr bio_cpulist \
busy-reply-threshold client-output-buffer-limit client-query-buffer-limit \
cluster-allow-pubsubshard-when-down cluster-allow-reads-when-down \
cluster-allow-replica-migration cluster-announce-bus-port cluster-announce-hostname \
cluster-announce-ip cluster-announce-port cluster-announce-tls-port cluster-config-file \
cluster-enabled cluster-link-sendbuf-limit cluster-migration-barrier cluster-node-timeout \
cluster-port cluster-preferred-endpoint-type cluster-replica-no-failover \
cluster-replica-validity-factor cluster-require-full-coverage cluster-slave-no-failover \
cluster-slave-validity-factor crash-log-enabled crash-memcheck-enabled daemonize databases \
dbfilename dir disable-thp dynamic-hz enable-debug-command enable-module-command \
enable-protected-configs hash-max-listpack-entries hash-max-listpack-value \
hash-max-ziplist-entries hash-max-ziplist-value hll-sparse-max-bytes hz ignore-warnings \
io-threads io-threads-do-reads jemalloc-bg-thread latency-monitor-threshold latency-tracking \
latency-tracking-info-percentiles lazyfree-lazy-eviction lazyfree-lazy-expire \
lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush lfu-decay-time \
lfu-log-factor list-compress-depth list-max-listpack-size list-max-ziplist-size logfile \
loglevel lua-time-limit masterauth masteruser maxclients maxmemory maxmemory-clients \
maxmemory-eviction-tenacity maxmemory-policy maxmemory-samples min-replicas-max-lag \
min-replicas-to-write min-slaves-max-lag min-slaves-to-write no-appendfsync-on-rewrite \
notify-keyspace-events oom-score-adj oom-score-adj-values pidfile port proc-title-template \
propagation-error-behavior protected-mode proto-max-bulk-len rdb-del-sync-files \
rdb-save-incremental-fsync rdbchecksum rdbcompression repl-backlog-size repl-backlog-ttl \
repl-disable-tcp-nodelay repl-diskless-load repl-diskless-sync repl-diskless-sync-delay \
repl-diskless-sync-max-replicas repl-ping-replica-period repl-ping-slave-period repl-timeout \
replica-announce-ip replica-announce-port replica-announced replica-ignore-disk-write-errors \
replica-ignore-maxmemory replica-lazy-flush replica-priority replica-read-only \
replica-serve-stale-data replicaof requirepass sanitize-dump-payload save server_cpulist \
set-max-intset-entries set-proc-title shutdown-on-sigint shutdown-on-sigterm shutdown-timeout \
slave-announce-ip slave-announce-port slave-ignore-maxmemory slave-lazy-flush slave-priority \
slave-read-only slave-serve-stale-data slaveof slowlog-log-slower-than slowlog-max-len \
socket-mark-id stop-writes-on-bgsave-error stream-node-max-bytes stream-node-max-entries \
supervised syslog-enabled syslog-facility syslog-ident tcp-backlog tcp-keepalive timeout \
tls-auth-clients tls-ca-cert-dir tls-ca-cert-file tls-cert-file tls-ciphers tls-ciphersuites \
tls-client-cert-file tls-client-key-file tls-client-key-file-pass tls-cluster \
tls-dh-params-file tls-key-file tls-key-file-pass tls-port tls-prefer-server-ciphers \
tls-protocols tls-replication tls-session-cache-size tls-session-cache-timeout \
tls-session-caching tracking-table-max-keys unixsocket unixsocketperm \
zset-max-listpack-entries zset-max-listpack-value zset-max-ziplist-entries \
zset-max-ziplist-value";

#[test]
fn config_get_answers_every_redis_parameter_and_set_validates() {
    let server = Server::start();
    let mut c = server.client();
    let all: Vec<String> = q(&mut c, &["CONFIG", "GET", "*"]);
    let names: std::collections::HashSet<&str> =
        all.iter().step_by(2).map(String::as_str).collect();
    for name in REDIS_PARAMS.split_whitespace() {
        assert!(names.contains(name), "CONFIG GET * lacks {name}");
    }
    // forkless's own parameters, which Redis lacks.
    let own = [
        "incremental-snapshots",
        "incremental-snapshot-max-delta-ratio",
        "busy-poll-us",
    ];
    for name in own {
        assert!(names.contains(name), "CONFIG GET * lacks {name}");
    }
    assert_eq!(
        names.len() - own.len(),
        REDIS_PARAMS.split_whitespace().count()
    );
    // Several patterns at once.
    let some: Vec<String> = q(
        &mut c,
        &["CONFIG", "GET", "hz", "maxmemory-p*", "SLOWLOG-MAX-LEN"],
    );
    assert_eq!(
        some,
        vec![
            "hz",
            "10",
            "maxmemory-policy",
            "noeviction",
            "SLOWLOG-MAX-LEN",
            "128"
        ]
    );
    // Redis's validation of stored parameters, and all-or-nothing SET.
    assert_eq!(
        q_err(
            &mut c,
            &["CONFIG", "SET", "hz", "20", "list-compress-depth", "-1"]
        ),
        "ERR CONFIG SET failed (possibly related to argument 'list-compress-depth') - \
         argument must be between 0 and 2147483647 inclusive"
    );
    assert_eq!(config_get(&mut c, "hz"), "10");
    assert_eq!(
        q_err(&mut c, &["CONFIG", "SET", "databases", "3"]),
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
    );
    let _: () = q(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "hash-max-ziplist-value",
            "1kb",
            "activerehashing",
            "NO",
        ],
    );
    assert_eq!(config_get(&mut c, "hash-max-listpack-value"), "1024");
    assert_eq!(config_get(&mut c, "activerehashing"), "no");
    assert_eq!(
        q_err(&mut c, &["CONFIG", "REWRITE"]),
        "ERR The server is running without a config file"
    );
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
}

#[test]
fn memory_and_object_introspection() {
    let server = Server::start();
    let mut c = server.client();
    let items: Vec<String> = (0..1000).map(|i| format!("member:{i}")).collect();
    let mut cmd = redis::cmd("SADD");
    cmd.arg("s").arg(&items);
    let _: i64 = cmd.query(&mut c).unwrap();
    let usage: i64 = q(&mut c, &["MEMORY", "USAGE", "s"]);
    let all: i64 = q(&mut c, &["MEMORY", "USAGE", "s", "SAMPLES", "0"]);
    assert!(usage > 1000 * 16 && all > 1000 * 16, "{usage} {all}");
    assert_eq!(
        q::<Option<i64>>(&mut c, &["MEMORY", "USAGE", "nokey"]),
        None
    );
    assert_eq!(
        q_err(&mut c, &["MEMORY", "USAGE", "s", "FOO"]),
        "ERR syntax error"
    );
    let stats: Vec<Value> = q(&mut c, &["MEMORY", "STATS"]);
    assert!(format!("{stats:?}").contains("keys.count"));
    let doctor: String = q(&mut c, &["MEMORY", "DOCTOR"]);
    assert!(doctor.starts_with("Hi Sam"));
    let help: Vec<String> = q(&mut c, &["MEMORY", "HELP"]);
    assert!(help[0].starts_with("MEMORY <subcommand>"));

    let _: () = q(&mut c, &["SET", "n", "123"]);
    let _: () = q(&mut c, &["SET", "e", "hello"]);
    let _: () = q(&mut c, &["SET", "r", &"x".repeat(45)]);
    let _: i64 = q(&mut c, &["RPUSH", "l", "a"]);
    let _: i64 = q(&mut c, &["SADD", "i", "1", "2"]);
    for (key, enc) in [
        ("n", "int"),
        ("e", "embstr"),
        ("r", "raw"),
        ("l", "quicklist"),
        ("i", "intset"),
        ("s", "hashtable"),
    ] {
        assert_eq!(
            q::<String>(&mut c, &["OBJECT", "ENCODING", key]),
            enc,
            "{key}"
        );
    }
    assert_eq!(
        q::<Option<String>>(&mut c, &["OBJECT", "ENCODING", "nokey"]),
        None
    );
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "REFCOUNT", "n"]), 2147483647);
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "REFCOUNT", "e"]), 1);
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "e"]), 0);
    assert!(q_err(&mut c, &["OBJECT", "FREQ", "e"])
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    // RESP3 too.
    let mut c3 = server.client_resp3();
    assert_eq!(q::<String>(&mut c3, &["OBJECT", "ENCODING", "n"]), "int");
}

#[test]
fn slowlog_records_and_truncates() {
    let server = Server::start();
    let mut c = server.client();
    let _: () = q(&mut c, &["CLIENT", "SETNAME", "slowpoke"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let _: () = q(&mut c, &["SET", "k", &"v".repeat(200)]);
    let entries: Vec<Value> = q(&mut c, &["SLOWLOG", "GET", "1"]);
    let Value::Array(entry) = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(entry.len(), 6);
    let args: Vec<String> = redis::from_redis_value(entry[3].clone()).unwrap();
    assert_eq!(args[0], "SET");
    assert!(args[2].ends_with("... (72 more bytes)"), "{args:?}");
    let addr: String = redis::from_redis_value(entry[4].clone()).unwrap();
    assert!(addr.starts_with("127.0.0.1:"));
    let name: String = redis::from_redis_value(entry[5].clone()).unwrap();
    assert_eq!(name, "slowpoke");
    assert!(q::<i64>(&mut c, &["SLOWLOG", "LEN"]) >= 2);
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    // Only the CONFIG SET that turned it off is logged after the reset.
    assert_eq!(q::<i64>(&mut c, &["SLOWLOG", "LEN"]), 1);
    assert_eq!(
        q_err(&mut c, &["SLOWLOG", "GET", "-2"]),
        "ERR count should be greater than or equal to -1"
    );
}

#[test]
fn latency_monitor_and_debug() {
    let server = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = server.client();
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "10"],
    );
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.05"]);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: () = q(&mut c, &["BGSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let latest = loop {
        let latest: Vec<(String, i64, i64, i64)> = q(&mut c, &["LATENCY", "LATEST"]);
        if latest.iter().any(|e| e.0 == "snapshot-save") || Instant::now() > deadline {
            break latest;
        }
        std::thread::sleep(Duration::from_millis(50));
        let _: String = q(&mut c, &["PING"]);
    };
    let names: Vec<&str> = latest.iter().map(|e| e.0.as_str()).collect();
    assert!(names.contains(&"command"), "{latest:?}");
    assert!(names.contains(&"snapshot-clone"), "{latest:?}");
    assert!(names.contains(&"snapshot-save"), "{latest:?}");
    let cmd = latest.iter().find(|e| e.0 == "command").unwrap();
    assert!(cmd.2 >= 50, "{cmd:?}");
    let history: Vec<(i64, i64)> = q(&mut c, &["LATENCY", "HISTORY", "command"]);
    assert!(!history.is_empty());
    let doctor: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(doctor.contains("command"), "{doctor}");
    assert!(q::<i64>(&mut c, &["LATENCY", "RESET"]) >= 3);

    let obj: String = q(&mut c, &["DEBUG", "OBJECT", "k"]);
    assert!(obj.contains("encoding:embstr"), "{obj}");
    assert_eq!(
        q_err(&mut c, &["DEBUG", "OBJECT", "nokey"]),
        "ERR no such key"
    );
    let _: () = q(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: () = q(&mut c, &["SET", "t", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    let info: String = q(&mut c, &["INFO", "keyspace"]);
    assert!(info.contains("keys=2"), "active expiry is off: {info}");
    let _: () = q(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);

    let plain = Server::start();
    let mut c = plain.client();
    assert!(q_err(&mut c, &["DEBUG", "SLEEP", "0"]).starts_with("ERR DEBUG command not allowed."));
}

#[test]
fn client_pause_holds_writes_until_unpaused() {
    let server = Server::start();
    let mut admin = server.client();
    let mut other = server.client();
    let _: () = q(&mut admin, &["CLIENT", "PAUSE", "5000", "WRITE"]);
    // Reads go through during a WRITE pause.
    let started = Instant::now();
    let _: Option<String> = q(&mut other, &["GET", "k"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    let port = server.port;
    let writer = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let started = Instant::now();
        let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(400));
    // While the writer waits, the state lock is free: other clients read.
    let _: Option<String> = q(&mut other, &["GET", "k"]);
    assert_eq!(q::<Option<String>>(&mut other, &["GET", "k"]), None);
    let _: () = q(&mut admin, &["CLIENT", "UNPAUSE"]);
    let waited = writer.join().unwrap();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(q::<String>(&mut other, &["GET", "k"]), "v");
    assert_eq!(
        q_err(&mut admin, &["CLIENT", "PAUSE", "100", "FOO"]),
        "ERR CLIENT PAUSE mode must be WRITE or ALL"
    );
    assert_eq!(
        q_err(&mut admin, &["CLIENT", "PAUSE", "-1"]),
        "ERR timeout is negative"
    );
}

/// Sends raw RESP and reads what arrives within `wait`.
fn raw(port: u16, input: &[u8], wait: Duration) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(input).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn client_reply_reset_and_monitor() {
    let server = Server::start();
    let out = raw(
        server.port,
        b"CLIENT REPLY OFF\r\nPING a\r\nCLIENT REPLY ON\r\nPING b\r\nCLIENT REPLY SKIP\r\nPING c\r\nPING d\r\n",
        Duration::from_millis(500),
    );
    assert_eq!(out, "+OK\r\n$1\r\nb\r\n$1\r\nd\r\n");

    let mut c = server.client();
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["CLIENT", "SETNAME", "x"]);
    assert_eq!(q::<String>(&mut c, &["RESET"]), "RESET");
    let info: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(
        info.contains(" db=0 ") && info.contains(" name= "),
        "{info}"
    );

    // MONITOR streams other clients' commands in Redis's line format.
    let mut mon = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    mon.write_all(b"MONITOR\r\n").unwrap();
    mon.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(mon);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    let _: () = q(&mut c, &["SET", "greeting", "hello \"world\""]);
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with('+'), "{line}");
    assert!(
        line.ends_with("\"SET\" \"greeting\" \"hello \\\"world\\\"\"\r\n"),
        "{line}"
    );
    assert!(line.contains(" [0 127.0.0.1:"), "{line}");
    // Admin commands are not shown.
    let _: Vec<String> = q(&mut c, &["CONFIG", "GET", "hz"]);
    let _: String = q(&mut c, &["PING"]);
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.ends_with("\"PING\"\r\n"), "{line}");
}

#[test]
fn info_sections() {
    let server = Server::start();
    let mut c = server.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _ = q_err(&mut c, &["INCR", "nope", "x"]);
    let everything: String = q(&mut c, &["INFO", "everything"]);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# CPU",
        "# Commandstats",
        "# Errorstats",
        "# Keyspace",
    ] {
        assert!(everything.contains(section), "{section} missing");
    }
    for field in [
        "run_id:",
        "tcp_port:",
        "uptime_in_seconds:",
        "executable:",
        "config_file:",
        "cmdstat_set:",
        "errorstat_ERR:",
        "db0:keys=1",
    ] {
        assert!(everything.contains(field), "{field} missing");
    }
    let two: String = q(&mut c, &["INFO", "server", "keyspace"]);
    assert!(two.contains("# Server") && two.contains("# Keyspace") && !two.contains("# Memory"));
}

fn cli_bounded(port: u16, args: &[&str], secs: u64) -> String {
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg("stdbuf")
        .arg("-oL")
        .arg("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("timeout, stdbuf and redis-cli are installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_cli_tools_work() {
    let server = Server::start();
    let mut c = server.client();
    let members: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let mut cmd = redis::cmd("RPUSH");
    cmd.arg("biglist").arg(&members);
    let _: i64 = cmd.query(&mut c).unwrap();
    let _: i64 = q(&mut c, &["HSET", "h", "f", "v"]);
    let _: i64 = q(&mut c, &["SADD", "s", "a", "b"]);
    let _: () = q(&mut c, &["SET", "str", "hello"]);

    let big = server.cli(&["--bigkeys"]);
    assert!(
        big.contains("Biggest   list found '\"biglist\"' has 100 items"),
        "{big}"
    );
    assert!(big.contains("1 sets with 2 members"), "{big}");

    let mem = server.cli(&["--memkeys"]);
    assert!(!mem.contains("failed"), "{mem}");
    assert!(
        mem.contains("Biggest   list found '\"biglist\"' has"),
        "{mem}"
    );
    assert!(!mem.contains("1 lists with 0 bytes"), "{mem}");

    let latency = cli_bounded(server.port, &["--latency", "-i", "1"], 3);
    assert!(
        latency.contains("min:") || latency.split_whitespace().count() >= 4,
        "{latency:?}"
    );

    let stat = cli_bounded(server.port, &["--stat", "-i", "0.5"], 2);
    assert!(stat.contains("keys") && stat.contains("requests"), "{stat}");

    let info = server.cli(&["INFO", "everything"]);
    assert!(info.contains("# Commandstats"), "{info}");
}

#[test]
fn any_directive_is_a_command_line_option_as_in_redis_server() {
    let server = Server::start_with(&[
        "--save",
        "900",
        "1",
        "300",
        "10",
        "--maxmemory",
        "10mb",
        "--maxmemory-policy",
        "allkeys-lru",
        "--hz",
        "20",
    ]);
    let mut c = server.client();
    assert_eq!(config_get(&mut c, "save"), "900 1 300 10");
    assert_eq!(config_get(&mut c, "maxmemory"), "10485760");
    assert_eq!(config_get(&mut c, "maxmemory-policy"), "allkeys-lru");
    assert_eq!(config_get(&mut c, "hz"), "20");
    // An unknown directive is refused before the server starts.
    let out = Command::new(BIN)
        .args(["--port", "0", "--no-such-directive", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-directive"), "{err}");
    // Help and version print and exit 0 without starting a server.
    for flag in ["--help", "--version"] {
        let out = Command::new(BIN).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("forkless"));
    }
}
