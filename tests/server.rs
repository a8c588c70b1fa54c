//! Whole-binary tests of the server commands: CLIENT, CONFIG, INFO, COMMAND,
//! DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, TIME, over RESP2, RESP3 and redis-cli.

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{error as err, q, Server};
use redis::{Connection, Value};

/// Whether the server has every one of `commands`. Tests that need another
/// family's commands (SET, BLPOP, ...) return early, with a note, on a build
/// that does not have them yet.
fn has_commands(c: &mut Connection, commands: &[&str]) -> bool {
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("INFO").arg(commands);
    let info: Vec<Value> = cmd.query(c).expect("COMMAND INFO");
    let missing: Vec<&str> = commands
        .iter()
        .zip(&info)
        .filter(|(_, v)| **v == Value::Nil)
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: this build lacks {missing:?}");
    }
    missing.is_empty()
}

/// The `field:value` lines of an INFO reply.
fn info_map(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Redis 7.0.15's CLIENT LIST fields, in order.
const CLIENT_FIELDS: &[&str] = &[
    "id",
    "addr",
    "laddr",
    "fd",
    "name",
    "age",
    "idle",
    "flags",
    "db",
    "sub",
    "psub",
    "ssub",
    "multi",
    "qbuf",
    "qbuf-free",
    "argv-mem",
    "multi-mem",
    "rbs",
    "rbp",
    "obl",
    "oll",
    "omem",
    "tot-mem",
    "events",
    "cmd",
    "user",
    "redir",
    "resp",
];

#[test]
fn client_name_id_info_list() {
    let s = Server::start();
    let mut a = s.client();
    let id: i64 = q(&mut a, &["CLIENT", "ID"]);
    assert!(id > 0);
    let none: Option<String> = q(&mut a, &["CLIENT", "GETNAME"]);
    assert_eq!(none, None);
    let _: () = q(&mut a, &["CLIENT", "SETNAME", "worker-1"]);
    let name: String = q(&mut a, &["CLIENT", "GETNAME"]);
    assert_eq!(name, "worker-1");
    assert_eq!(
        err(&mut a, &["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let _: () = q(&mut a, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"]);
    let _: () = q(&mut a, &["CLIENT", "SETINFO", "lib-ver", "1.2.3"]);
    assert_eq!(
        err(&mut a, &["CLIENT", "SETINFO", "lib-name", "a b"]),
        "ERR lib-name cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        err(&mut a, &["CLIENT", "SETINFO", "foo", "x"]),
        "ERR Unrecognized option 'foo'"
    );

    let info: String = q(&mut a, &["CLIENT", "INFO"]);
    assert!(info.ends_with('\n'));
    let fields = client_fields(&info);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(&names[..CLIENT_FIELDS.len()], CLIENT_FIELDS);
    let f: HashMap<_, _> = fields.into_iter().collect();
    assert_eq!(f["id"], id.to_string());
    assert_eq!(f["name"], "worker-1");
    assert_eq!(f["cmd"], "client|info");
    assert_eq!(f["flags"], "N");
    assert_eq!(f["resp"], "2");
    assert_eq!(f["lib-name"], "mylib");
    assert_eq!(f["lib-ver"], "1.2.3");
    assert_eq!(f["laddr"], format!("127.0.0.1:{}", s.port));
    assert!(f["fd"].parse::<i64>().unwrap() > 0);

    let mut b = s.client_resp3();
    let _: () = q(&mut b, &["SELECT", "3"]);
    let b_id: i64 = q(&mut b, &["CLIENT", "ID"]);
    let list: String = q(&mut b, &["CLIENT", "LIST"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let b_line: HashMap<_, _> = client_fields(
        lines
            .iter()
            .find(|l| l.starts_with(&format!("id={b_id} ")))
            .unwrap(),
    )
    .into_iter()
    .collect();
    assert_eq!(b_line["db"], "3");
    assert_eq!(b_line["resp"], "3");
    assert_eq!(b_line["cmd"], "client|list");
    let a_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap();
    assert!(a_line.contains(" name=worker-1 "), "{a_line}");
    assert!(a_line.contains(" cmd=client|info "), "{a_line}");

    let only: String = q(&mut b, &["CLIENT", "LIST", "ID", &id.to_string()]);
    assert_eq!(only.lines().count(), 1);
    assert!(only.starts_with(&format!("id={id} ")));
    let normal: String = q(&mut b, &["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(normal.lines().count(), 2);
    let pubsub: String = q(&mut b, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(pubsub, "");
    assert_eq!(
        err(&mut b, &["CLIENT", "LIST", "TYPE", "foo"]),
        "ERR Unknown client type 'foo'"
    );
    assert_eq!(
        err(&mut b, &["CLIENT", "LIST", "ID", "1", "abc"]),
        "ERR Invalid client ID"
    );
    assert_eq!(err(&mut b, &["CLIENT", "LIST", "foo"]), "ERR syntax error");
    assert_eq!(
        err(&mut b, &["CLIENT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    );
    assert_eq!(
        err(&mut b, &["CLIENT", "ID", "x"]),
        "ERR wrong number of arguments for 'client|id' command"
    );
    assert_eq!(
        err(&mut b, &["CLIENT"]),
        "ERR wrong number of arguments for 'client' command"
    );
    let n: i64 = q(&mut b, &["CLIENT", "UNBLOCK", &id.to_string()]);
    assert_eq!(n, 0, "a client that is not blocked");
    assert_eq!(
        err(&mut b, &["CLIENT", "UNBLOCK", "1", "foo"]),
        "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    );
    let _: () = q(&mut b, &["CLIENT", "NO-EVICT", "on"]);
    assert_eq!(
        err(&mut b, &["CLIENT", "NO-EVICT", "x"]),
        "ERR syntax error"
    );
    let help: Vec<String> = q(&mut b, &["CLIENT", "HELP"]);
    assert!(help[0].starts_with("CLIENT <subcommand>"));

    // redis-cli prints CLIENT LIST lines with every field.
    let out = s.cli(&["CLIENT", "LIST"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    for line in out.lines() {
        let names: Vec<String> = client_fields(line).into_iter().map(|(k, _)| k).collect();
        assert_eq!(&names[..CLIENT_FIELDS.len()], CLIENT_FIELDS);
    }
}

/// Reads from a raw connection until EOF, within `limit`.
fn closes_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn raw_client_id(stream: &mut TcpStream) -> i64 {
    stream.write_all(b"CLIENT ID\r\n").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("bad CLIENT ID reply {text:?}"))
}

#[test]
fn client_kill_closes_idle_connections_promptly() {
    let s = Server::start();
    let mut killer = s.client();

    // By id: the idle victim is closed at once, not at its next command.
    let mut victim = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let victim_id = raw_client_id(&mut victim);
    let killed: i64 = q(
        &mut killer,
        &["CLIENT", "KILL", "ID", &victim_id.to_string()],
    );
    assert_eq!(killed, 1);
    assert!(closes_within(&mut victim, Duration::from_secs(3)));

    // By address, old form and new form.
    let mut victim = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let _ = raw_client_id(&mut victim);
    let addr = victim.local_addr().unwrap().to_string();
    let _: () = q(&mut killer, &["CLIENT", "KILL", &addr]);
    assert!(closes_within(&mut victim, Duration::from_secs(3)));
    assert_eq!(
        err(&mut killer, &["CLIENT", "KILL", &addr]),
        "ERR No such client"
    );
    let mut victim = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let _ = raw_client_id(&mut victim);
    let addr = victim.local_addr().unwrap().to_string();
    let n: i64 = q(&mut killer, &["CLIENT", "KILL", "ADDR", &addr]);
    assert_eq!(n, 1);
    assert!(closes_within(&mut victim, Duration::from_secs(3)));

    // The killed clients are gone from the list.
    let list: String = q(&mut killer, &["CLIENT", "LIST"]);
    assert_eq!(list.lines().count(), 1, "{list}");

    // SKIPME: the caller is spared by default, killed with SKIPME no.
    let my_id: i64 = q(&mut killer, &["CLIENT", "ID"]);
    let n: i64 = q(&mut killer, &["CLIENT", "KILL", "ID", &my_id.to_string()]);
    assert_eq!(n, 0);
    assert_eq!(
        err(&mut killer, &["CLIENT", "KILL", "ID", "0"]),
        "ERR client-id should be greater than 0"
    );
    assert_eq!(
        err(&mut killer, &["CLIENT", "KILL", "ID", "1", "SKIPME"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut killer, &["CLIENT", "KILL", "USER", "bob"]),
        "ERR No such user 'bob'"
    );
    let mut me = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let me_id = raw_client_id(&mut me);
    me.write_all(format!("CLIENT KILL ID {me_id} SKIPME no\r\n").as_bytes())
        .unwrap();
    let mut reply = Vec::new();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = me.read_to_end(&mut reply);
    assert_eq!(reply, b":1\r\n", "the reply is sent before closing");

    // The killer still works.
    let pong: String = q(&mut killer, &["PING"]);
    assert_eq!(pong, "PONG");
}

#[test]
fn config_get_set_round_trip() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "hz", "20", "maxclients", "500"]);
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "hz", "maxclients"]);
    assert_eq!(got["hz"], "20");
    assert_eq!(got["maxclients"], "500");
    // Redis clamps hz to 1..=500.
    let _: () = q(&mut c, &["CONFIG", "SET", "hz", "1000"]);
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "hz"]);
    assert_eq!(got["hz"], "500");

    let _: () = q(&mut c, &["CONFIG", "SET", "save", "100 10 60 1000"]);
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "save"]);
    assert_eq!(got["save"], "100 10 60 1000");
    let _: () = q(&mut c, &["CONFIG", "SET", "save", ""]);
    let _: () = q(&mut c, &["CONFIG", "SET", "proto-max-bulk-len", "2mb"]);
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "proto-max-bulk-len"]);
    assert_eq!(got["proto-max-bulk-len"], "2097152");

    // Glob patterns, case-insensitive; exact names are echoed as written.
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "MAX*"]);
    assert_eq!(got["maxclients"], "500");
    assert_eq!(got["maxmemory"], "0");
    assert_eq!(got["maxmemory-policy"], "noeviction");
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "HZ"]);
    assert_eq!(got["HZ"], "500");
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "nosuch"]);
    assert!(got.is_empty());
    let got: HashMap<String, String> = q(
        &mut c,
        &["CONFIG", "GET", "port", "databases", "requirepass"],
    );
    assert_eq!(
        got["port"], "0",
        "the configured port: 0 asks for a free one"
    );
    assert_eq!(got["databases"], "16");
    assert_eq!(got["requirepass"], "");

    // Errors, byte for byte as Redis 7.0.
    let failed = |param: &str, reason: &str| {
        format!("ERR CONFIG SET failed (possibly related to argument '{param}') - {reason}")
    };
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "foo", "bar"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "hz", "abc"]),
        failed("hz", "argument couldn't be parsed into an integer")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "maxclients", "0"]),
        failed(
            "maxclients",
            "argument must be between 1 and 4294967295 inclusive"
        )
    );
    assert_eq!(
        err(
            &mut c,
            &["CONFIG", "SET", "stop-writes-on-bgsave-error", "maybe"]
        ),
        failed(
            "stop-writes-on-bgsave-error",
            "argument must be 'yes' or 'no'"
        )
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "save", "1 2 3"]),
        failed("save", "Invalid save parameters")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "databases", "3"]),
        failed("databases", "can't set immutable config")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "hz", "5", "hz", "6"]),
        failed("hz", "duplicate parameter")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "loglevel", "loud"]),
        failed(
            "loglevel",
            "argument(s) must be one of the following: debug, verbose, notice, warning"
        )
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "proto-max-bulk-len", "10"]),
        failed(
            "proto-max-bulk-len",
            "argument must be between 1048576 and 9223372036854775807 inclusive"
        )
    );
    assert_eq!(
        err(
            &mut c,
            &["CONFIG", "SET", "dir", "/nonexistent/forkless-test"]
        ),
        failed("dir", "No such file or directory")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "dbfilename", "../x.rdb"]),
        failed("dbfilename", "dbfilename can't be a path, just a filename")
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "hz", "5", "port"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "port"]),
        "ERR wrong number of arguments for 'config|set' command"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "GET"]),
        "ERR wrong number of arguments for 'config|get' command"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
    );

    // All or nothing: a bad pair leaves the good one unapplied.
    let e = err(&mut c, &["CONFIG", "SET", "hz", "30", "maxclients", "x"]);
    assert!(e.contains("'maxclients'"), "{e}");
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "hz"]);
    assert_eq!(got["hz"], "500");

    // dir: an existing directory is accepted and reported absolute.
    let sub = s.dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let sub_str = sub.to_str().unwrap();
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "dir", sub_str, "dbfilename", "x.rdb"],
    );
    let got: HashMap<String, String> = q(&mut c, &["CONFIG", "GET", "dir", "dbfilename"]);
    let canonical = std::fs::canonicalize(&sub).unwrap();
    assert_eq!(got["dir"], canonical.display().to_string());
    assert_eq!(got["dbfilename"], "x.rdb");

    // RESP3: a map.
    let mut c3 = s.client_resp3();
    let v: Value = q(&mut c3, &["CONFIG", "GET", "hz"]);
    assert!(matches!(v, Value::Map(ref m) if m.len() == 1), "{v:?}");

    // What redis-benchmark asks for.
    assert_eq!(s.cli(&["CONFIG", "GET", "save"]), "save\n\n");
    assert_eq!(s.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nno\n");
    assert_eq!(s.cli(&["CONFIG", "SET", "timeout", "0"]).trim(), "OK");
}

#[test]
fn info_sections_and_formats() {
    let s = Server::start();
    let mut c = s.client();
    let all: String = q(&mut c, &["INFO"]);
    let titles: Vec<&str> = all.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        titles,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert!(
        all.contains("\r\n\r\n# Clients\r\n"),
        "sections are separated by a blank line"
    );
    let m = info_map(&all);
    assert_eq!(m["redis_version"], "7.0.15");
    assert_eq!(m["redis_mode"], "standalone");
    assert_eq!(m["tcp_port"], s.port.to_string());
    assert_eq!(m["process_id"], s.pid().to_string());
    assert_eq!(m["run_id"].len(), 40);
    assert_eq!(m["role"], "master");
    assert_eq!(m["connected_slaves"], "0");
    assert_eq!(m["connected_clients"], "1");
    assert_eq!(m["blocked_clients"], "0");
    assert_eq!(m["maxclients"], "10000");
    assert!(
        m["mem_allocator"].starts_with(ALLOCATOR),
        "{}",
        m["mem_allocator"]
    );
    assert!(m["used_memory"].parse::<u64>().unwrap() > 0);
    assert!(m.contains_key("used_memory_human"));
    assert!(m.contains_key("used_cpu_user"));
    assert!(m.contains_key("rdb_changes_since_last_save"));
    assert!(m.contains_key("forkless_version"));
    assert_eq!(m["evicted_keys"], "0");
    assert_eq!(m["cluster_enabled"], "0");

    let server_only: String = q(&mut c, &["INFO", "SERVER"]);
    assert!(server_only.starts_with("# Server\r\n"));
    assert!(!server_only.contains("# Clients"));
    let two: String = q(&mut c, &["INFO", "keyspace", "clients"]);
    assert!(two.starts_with("# Clients\r\n"), "canonical order: {two}");
    assert!(two.ends_with("\r\n\r\n# Keyspace\r\n"), "{two:?}");
    let nothing: String = q(&mut c, &["INFO", "nosuch"]);
    assert_eq!(nothing, "");
    let everything: String = q(&mut c, &["INFO", "everything"]);
    assert!(everything.contains("# Commandstats\r\n"));
    let _ = err(&mut c, &["PING", "a", "b"]);
    let stats: String = q(&mut c, &["INFO", "commandstats"]);
    let ping = info_map(&stats)["cmdstat_ping"].clone();
    assert!(ping.starts_with("calls="), "{ping}");
    assert!(ping.contains(",rejected_calls=0,failed_calls=1"), "{ping}");
    assert!(stats.contains("cmdstat_info:calls="), "{stats}");

    // Counters move.
    let n = |m: &HashMap<String, String>, k: &str| m[k].parse::<u64>().unwrap();
    let before = info_map(&q::<String>(&mut c, &["INFO", "stats"]));
    for _ in 0..5 {
        let _: String = q(&mut c, &["PING"]);
    }
    let _ = err(&mut c, &["NOSUCHCOMMAND"]);
    let after = info_map(&q::<String>(&mut c, &["INFO", "stats"]));
    assert!(n(&after, "total_commands_processed") >= n(&before, "total_commands_processed") + 6);
    assert_eq!(
        n(&after, "total_error_replies"),
        n(&before, "total_error_replies") + 1
    );
    assert!(n(&after, "total_net_input_bytes") > n(&before, "total_net_input_bytes"));
    let errors: String = q(&mut c, &["INFO", "errorstats"]);
    assert!(errors.contains("errorstat_ERR:count="), "{errors}");
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let reset = info_map(&q::<String>(&mut c, &["INFO", "stats"]));
    assert!(n(&reset, "total_commands_processed") <= 2);
    assert_eq!(n(&reset, "total_error_replies"), 0);
    let errors: String = q(&mut c, &["INFO", "errorstats"]);
    assert_eq!(errors, "# Errorstats\r\n");

    // RESP3: verbatim text.
    let mut c3 = s.client_resp3();
    let v: Value = q(&mut c3, &["INFO", "server"]);
    assert!(matches!(v, Value::VerbatimString { .. }), "{v:?}");
}

/// `mem_allocator`'s prefix for the allocator this build installs.
const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc-"
} else if cfg!(feature = "jemalloc") {
    "jemalloc-"
} else {
    "libc"
};

/// INFO memory's figures come from the allocator and the process, and relate
/// to each other as Redis relates them; MEMORY STATS and MEMORY DOCTOR read
/// the same figures.
#[test]
fn info_memory_reports_allocator_figures() {
    let s = Server::start();
    let mut c = s.client();
    let memory = |c: &mut Connection| info_map(&q::<String>(c, &["INFO", "memory"]));
    let n = |m: &HashMap<String, String>, k: &str| -> i64 {
        m[k].parse()
            .unwrap_or_else(|_| panic!("{k}:{} is not an integer", m[k]))
    };
    let ratio = |m: &HashMap<String, String>, k: &str| -> f64 {
        m[k].parse()
            .unwrap_or_else(|_| panic!("{k}:{} is not a number", m[k]))
    };
    let before = memory(&mut c);

    const KEYS: usize = 100_000;
    let value = "v".repeat(100);
    for batch in 0..KEYS / 1000 {
        let mut mset = redis::cmd("MSET");
        for i in 0..1000 {
            mset.arg(format!("key:{:08}", batch * 1000 + i)).arg(&value);
        }
        let _: () = mset.query(&mut c).unwrap();
    }
    let m = memory(&mut c);

    // used_memory is what the allocator handed out: it grows by at least the
    // payload loaded, and stays far below what a leak would show.
    let (used0, used) = (n(&before, "used_memory"), n(&m, "used_memory"));
    assert!(used0 > 0, "{before:?}");
    assert!(
        used >= used0 + (KEYS * 100) as i64,
        "used_memory {used0} -> {used}"
    );
    assert!(used < used0 + (KEYS * 1000) as i64, "used_memory {used}");
    // Counted per allocation, used_memory tracks the allocator's own figure
    // (which also holds the allocator's internal allocations).
    let allocated = n(&m, "allocator_allocated");
    assert!(
        (used - allocated).abs() < allocated / 20 + 2 * 1024 * 1024,
        "used_memory {used}, allocator_allocated {allocated}"
    );
    assert!(n(&m, "allocator_active") >= used, "{m:?}");
    assert!(n(&m, "allocator_resident") > 0, "{m:?}");
    assert!(m["used_memory_human"].ends_with('M'), "{m:?}");

    // RSS from the process, and the ratios derived from it.
    let rss = n(&m, "used_memory_rss");
    assert!(rss > used / 2, "rss {rss}, used {used}");
    let frag = ratio(&m, "mem_fragmentation_ratio");
    assert!(frag > 0.0, "{m:?}");
    assert!(
        (frag - rss as f64 / used as f64).abs() < 0.011,
        "mem_fragmentation_ratio {frag} vs {rss}/{used}"
    );
    assert_eq!(n(&m, "mem_fragmentation_bytes"), rss - used);
    for field in [
        "allocator_frag_ratio",
        "allocator_rss_ratio",
        "rss_overhead_ratio",
    ] {
        assert!(ratio(&m, field) > 0.0, "{field}: {m:?}");
        assert_eq!(m[field].split('.').nth(1).map(str::len), Some(2), "{field}");
    }
    assert_eq!(
        n(&m, "allocator_frag_bytes"),
        n(&m, "allocator_active") - allocated
    );

    // Peak, startup, overhead and dataset as Redis derives them.
    assert!(n(&m, "used_memory_peak") >= used, "{m:?}");
    assert!(m["used_memory_peak_perc"].ends_with('%'), "{m:?}");
    let startup = n(&m, "used_memory_startup");
    assert!(startup > 0 && startup < used, "{m:?}");
    assert_eq!(
        n(&m, "used_memory_overhead") + n(&m, "used_memory_dataset"),
        used
    );
    assert!(n(&m, "used_memory_overhead") >= startup);
    assert!(
        m["mem_allocator"].starts_with(ALLOCATOR),
        "{}",
        m["mem_allocator"]
    );

    // MEMORY STATS: the same figures.
    let stats: Vec<Value> = q(&mut c, &["MEMORY", "STATS"]);
    let stats: HashMap<String, Value> = stats
        .chunks(2)
        .map(|kv| match &kv[0] {
            Value::BulkString(k) => (String::from_utf8_lossy(k).into_owned(), kv[1].clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let int = |k: &str| match &stats[k] {
        Value::Int(v) => *v,
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(int("keys.count"), KEYS as i64);
    assert_eq!(int("startup.allocated"), startup);
    let total = int("total.allocated");
    assert!(
        total >= used * 9 / 10 && total <= used * 11 / 10,
        "{total} vs {used}"
    );
    // total.allocated is the counted figure, allocator.allocated jemalloc's
    // own, as in Redis.
    let by_allocator = int("allocator.allocated");
    assert!(
        (total - by_allocator).abs() < by_allocator / 20 + 2 * 1024 * 1024,
        "{total} vs {by_allocator}"
    );
    assert!(int("peak.allocated") >= total);
    assert_eq!(
        int("overhead.total") + int("dataset.bytes"),
        total,
        "{stats:?}"
    );

    // Past 5 MB the doctor reads the figures instead of calling the
    // instance empty.
    let doctor: String = q(&mut c, &["MEMORY", "DOCTOR"]);
    assert!(!doctor.contains("is empty"), "{doctor}");
    assert!(doctor.ends_with('\n'), "{doctor:?}");
    assert_eq!(q::<String>(&mut c, &["MEMORY", "PURGE"]), "OK");
    let report: String = q(&mut c, &["MEMORY", "MALLOC-STATS"]);
    if ALLOCATOR == "jemalloc-" {
        assert!(report.contains("jemalloc statistics"), "{report}");
    }

    // Memory given back shows: deleting the keys lowers used_memory (not with
    // mimalloc, whose figure is the memory it has committed).
    if ALLOCATOR == "mimalloc-" {
        return;
    }
    let _: () = q(&mut c, &["FLUSHALL"]);
    let flushed = n(&memory(&mut c), "used_memory");
    assert!(flushed < used - (KEYS * 100) as i64, "{used} -> {flushed}");
}

#[test]
fn instantaneous_ops_per_sec_follows_load() {
    let s = Server::start();
    let mut c = s.client();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        let mut pipe = redis::pipe();
        for _ in 0..50 {
            pipe.cmd("PING");
        }
        let _: Vec<String> = pipe.query(&mut c).unwrap();
    }
    let m = info_map(&q::<String>(&mut c, &["INFO", "stats"]));
    let ops: u64 = m["instantaneous_ops_per_sec"].parse().unwrap();
    assert!(ops > 100, "{ops}");
}

#[test]
fn info_keyspace_and_database_commands() {
    let s = Server::start();
    let mut c = s.client();
    if !has_commands(&mut c, &["set"]) {
        return;
    }
    // redis-cli prints INFO's text as is, even with --no-raw.
    assert_eq!(s.cli(&["--no-raw", "INFO", "keyspace"]), "# Keyspace\r\n");
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["SET", "b", "2", "EX", "100"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "c", "3"]);
    assert_eq!(
        s.cli(&["--no-raw", "INFO", "keyspace"]),
        "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n"
    );
    let size: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(size, 1);
    assert_eq!(
        err(&mut c, &["DBSIZE", "x"]),
        "ERR wrong number of arguments for 'dbsize' command"
    );

    // SWAPDB: db 3's key moves to db 0 and db 0's keys here.
    let dirty = |c: &mut Connection| -> u64 {
        info_map(&q::<String>(c, &["INFO", "persistence"]))["rdb_changes_since_last_save"]
            .parse()
            .unwrap()
    };
    let d0 = dirty(&mut c);
    let _: () = q(&mut c, &["SWAPDB", "0", "3"]);
    assert_eq!(dirty(&mut c), d0 + 1);
    let size: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(size, 2);
    assert_eq!(
        err(&mut c, &["SWAPDB", "0", "x"]),
        "ERR invalid second DB index"
    );
    assert_eq!(
        err(&mut c, &["SWAPDB", "x", "0"]),
        "ERR invalid first DB index"
    );
    assert_eq!(
        err(&mut c, &["SWAPDB", "0", "16"]),
        "ERR DB index is out of range"
    );

    // FLUSHDB counts the keys removed; FLUSHALL counts them plus one.
    let d1 = dirty(&mut c);
    let _: () = q(&mut c, &["FLUSHDB", "ASYNC"]);
    assert_eq!(dirty(&mut c), d1 + 2);
    let size: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(size, 0);
    assert_eq!(err(&mut c, &["FLUSHDB", "x"]), "ERR syntax error");
    let _: () = q(&mut c, &["SELECT", "0"]);
    let size: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(size, 1);
    let d2 = dirty(&mut c);
    let _: () = q(&mut c, &["FLUSHALL", "SYNC"]);
    assert_eq!(dirty(&mut c), d2 + 2);
    assert_eq!(err(&mut c, &["FLUSHALL", "sync", "x"]), "ERR syntax error");
    assert_eq!(s.cli(&["INFO", "keyspace"]).trim(), "# Keyspace");

    // TIME: seconds and microseconds as strings.
    let t: Vec<String> = q(&mut c, &["TIME"]);
    let secs: u64 = t[0].parse().unwrap();
    let micros: u64 = t[1].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2);
    assert!(micros < 1_000_000);
}

#[test]
fn command_introspection() {
    let s = Server::start();
    let mut c = s.client();
    let count: i64 = q(&mut c, &["COMMAND", "COUNT"]);
    // COMMAND LIST names subcommands too (`config|get`), as Redis 7.0's
    // does; COMMAND COUNT and COMMAND count commands only.
    let names: Vec<String> = q(&mut c, &["COMMAND", "LIST"]);
    let top = names.iter().filter(|n| !n.contains('|')).count();
    assert_eq!(top as i64, count);
    assert!(names.iter().any(|n| n == "config"));
    assert!(names.iter().any(|n| n == "config|get"));
    let all: Vec<Value> = q(&mut c, &["COMMAND"]);
    assert_eq!(all.len() as i64, count);
    let mut filtered: Vec<String> = q(&mut c, &["COMMAND", "LIST", "FILTERBY", "PATTERN", "conf*"]);
    filtered.sort();
    assert_eq!(
        filtered,
        vec![
            "config",
            "config|get",
            "config|help",
            "config|resetstat",
            "config|rewrite",
            "config|set"
        ]
    );

    let info: Vec<Value> = q(&mut c, &["COMMAND", "INFO", "ping", "nosuch"]);
    assert_eq!(info.len(), 2);
    assert_eq!(info[1], Value::Nil);
    let Value::Array(ping) = &info[0] else {
        panic!("{info:?}")
    };
    assert_eq!(ping.len(), 10);
    assert_eq!(ping[0], Value::BulkString(b"ping".to_vec()));
    assert_eq!(ping[1], Value::Int(-1));
    let flags = format!("{:?}", ping[2]);
    assert!(flags.contains("fast"), "{flags}");

    // A container lists its subcommands, which carry the flags.
    let info: Vec<Value> = q(&mut c, &["COMMAND", "INFO", "config"]);
    let Value::Array(config) = &info[0] else {
        panic!("{info:?}")
    };
    let subs = format!("{:?}", config[9]);
    for sub in ["config|get", "config|set", "config|resetstat"] {
        assert!(subs.contains(sub), "{subs}");
    }
    assert!(subs.contains("admin"), "{subs}");

    if !has_commands(&mut c, &["set"]) {
        return;
    }
    let keys: Vec<String> = q(&mut c, &["COMMAND", "GETKEYS", "SET", "k1", "v"]);
    assert_eq!(keys, vec!["k1"]);
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "nosuch", "a"]),
        "ERR Invalid command specified"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "SET", "k1"]),
        "ERR Invalid number of arguments specified for command"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "echo", "a", "b"]),
        "ERR The command has no key arguments"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "echo", "a"]),
        "ERR The command has no key arguments"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "GETKEYS", "ping"]),
        "ERR wrong number of arguments for 'command|getkeys' command"
    );
    assert_eq!(
        err(&mut c, &["COMMAND", "COUNT", "x"]),
        "ERR wrong number of arguments for 'command|count' command"
    );

    // DOCS: a map of name to summary, since, group, arguments.
    let mut c3 = s.client_resp3();
    let docs: Value = q(&mut c3, &["COMMAND", "DOCS", "config"]);
    let Value::Map(entries) = docs else {
        panic!("{docs:?}")
    };
    assert_eq!(entries.len(), 1);
    let text = format!("{:?}", entries[0].1);
    for field in ["summary", "since", "group", "arguments"] {
        assert!(text.contains(field), "{text}");
    }
    let docs: HashMap<String, Value> = q(&mut c, &["COMMAND", "DOCS", "ping", "nosuch"]);
    assert_eq!(docs.len(), 1);
    assert!(docs.contains_key("ping"));

    // redis-cli 7 reads COMMAND DOCS at start-up for its hints.
    assert_eq!(s.cli(&["COMMAND", "COUNT"]).trim(), count.to_string());
}

#[test]
fn timeout_closes_idle_clients() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "timeout", "1"]);
    let mut idle = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let _ = raw_client_id(&mut idle);
    let started = Instant::now();
    assert!(closes_within(&mut idle, Duration::from_secs(5)));
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The setting's own connection idled too and is gone; a new one is served.
    assert!(redis::cmd("PING").query::<String>(&mut c).is_err());
    let mut fresh = s.client();
    let _: () = q(&mut fresh, &["CONFIG", "SET", "timeout", "0"]);
    std::thread::sleep(Duration::from_millis(1500));
    let pong: String = q(&mut fresh, &["PING"]);
    assert_eq!(pong, "PONG");
}

/// Reads one reply's worth of bytes from a raw connection (bounded).
fn read_some(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("a reply");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn wait_blocked(c: &mut Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = info_map(&q::<String>(c, &["INFO", "clients"]));
        if m["blocked_clients"] == n.to_string() {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked: {m:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn blocked_clients_unblock_kill_and_swapdb() {
    let s = Server::start();
    let mut c = s.client();
    if !has_commands(&mut c, &["blpop", "rpush"]) {
        return;
    }
    let mut waiter = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let waiter_id = raw_client_id(&mut waiter).to_string();

    // UNBLOCK: as a timeout, then with the error.
    waiter.write_all(b"BLPOP q 0\r\n").unwrap();
    wait_blocked(&mut c, 1);
    let line: String = q(&mut c, &["CLIENT", "LIST", "ID", &waiter_id]);
    assert!(line.contains(" flags=b "), "{line}");
    let n: i64 = q(&mut c, &["CLIENT", "UNBLOCK", &waiter_id]);
    assert_eq!(n, 1);
    assert_eq!(read_some(&mut waiter), "*-1\r\n");
    waiter.write_all(b"BLPOP q 0\r\n").unwrap();
    wait_blocked(&mut c, 1);
    let n: i64 = q(&mut c, &["CLIENT", "UNBLOCK", &waiter_id, "ERROR"]);
    assert_eq!(n, 1);
    assert_eq!(
        read_some(&mut waiter),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );

    // SWAPDB serves a client waiting on a key the swapped-in database has.
    waiter.write_all(b"BLPOP q 0\r\n").unwrap();
    wait_blocked(&mut c, 1);
    let _: () = q(&mut c, &["SELECT", "1"]);
    let _: i64 = q(&mut c, &["RPUSH", "q", "v"]);
    let _: () = q(&mut c, &["SWAPDB", "0", "1"]);
    assert_eq!(read_some(&mut waiter), "*2\r\n$1\r\nq\r\n$1\r\nv\r\n");

    // KILL ends a blocked client at once.
    waiter.write_all(b"BLPOP q 0\r\n").unwrap();
    wait_blocked(&mut c, 1);
    let n: i64 = q(&mut c, &["CLIENT", "KILL", "ID", &waiter_id]);
    assert_eq!(n, 1);
    let mut rest = Vec::new();
    waiter
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    match waiter.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "not closed: {e}"),
    }
    assert!(rest.is_empty(), "no reply after a kill: {rest:?}");
    wait_blocked(&mut c, 0);
}

/// User plus system CPU time of process `pid` so far, in seconds.
fn process_cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let rest = stat.rsplit_once(')').expect("stat format").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after `)`.
    (ticks(11) + ticks(12)) / 100.0
}

#[test]
fn busy_polling_starts_with_dense_requests_and_stops_when_they_stop() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "busy-poll-us"]),
        ["busy-poll-us", "100"]
    );
    assert!(err(&mut c, &["CONFIG", "SET", "busy-poll-us", "-1"]).contains("busy-poll-us"));
    let periods = |c: &mut Connection| -> u64 {
        info_map(&q::<String>(c, &["INFO", "stats"]))["busy_poll_periods"]
            .parse()
            .expect("a count")
    };
    // A round trip on loopback takes tens of microseconds: one client's
    // requests back to back arrive within the window (1 ms here, so that a
    // busy test machine still starts it).
    let _: () = q(&mut c, &["CONFIG", "SET", "busy-poll-us", "1000"]);
    let before = periods(&mut c);
    // Longer than the window: the poller is parked when the loop begins.
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..2_000 {
        let _: () = q(&mut c, &["SET", "k", &i.to_string()]);
    }
    assert!(periods(&mut c) > before, "dense requests start polling");

    // Idle now: the server must go back to sleep, not poll on. Polling
    // would cost about a second of CPU per second.
    std::thread::sleep(Duration::from_millis(300));
    let (cpu, idle) = (process_cpu_secs(s.pid()), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu_secs(s.pid()) - cpu;
    assert!(
        used < 0.3 * idle.elapsed().as_secs_f64(),
        "an idle server used {used:.2} s of CPU in {:?}",
        idle.elapsed()
    );

    // Off: dense requests start nothing.
    let _: () = q(&mut c, &["CONFIG", "SET", "busy-poll-us", "0"]);
    let before = periods(&mut c);
    for i in 0..2_000 {
        let _: () = q(&mut c, &["SET", "k", &i.to_string()]);
    }
    assert_eq!(periods(&mut c), before, "no polling with busy-poll-us 0");
}
