//! Whole-binary tests of access control and per-client limits: AUTH and
//! requirepass, HELLO AUTH, protected mode (through a network namespace for the
//! remote side), maxclients, idle timeout, proto-max-bulk-len, the query buffer
//! limit and the output buffer limits.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;

/// A raw RESP connection, so replies are checked byte for byte.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        Raw::connect_to("127.0.0.1", port)
    }

    fn connect_to(host: &str, port: u16) -> Raw {
        let stream = TcpStream::connect((host, port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    /// Sends one command as a multibulk and reads its reply.
    fn cmd(&mut self, args: &[&str]) -> String {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.send(out.as_bytes());
        self.reply()
    }

    /// Reads one reply, rendered as its lines joined by `\n` (headers included).
    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read reply");
        assert!(!line.is_empty(), "connection closed");
        let line = line.trim_end_matches("\r\n").to_string();
        let count = |l: &str| l[1..].parse::<i64>().unwrap();
        match line.as_bytes()[0] {
            b'$' if count(&line) >= 0 => {
                let mut buf = vec![0; count(&line) as usize + 2];
                self.reader.read_exact(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..buf.len() - 2]).into_owned()
            }
            b'*' | b'%' | b'~' if count(&line) > 0 => {
                let n = count(&line) * if line.starts_with('%') { 2 } else { 1 };
                let items: Vec<String> = (0..n).map(|_| self.reply()).collect();
                items.join("\n")
            }
            _ => line,
        }
    }

    /// Whether the server closed the connection (EOF or reset) within `limit`.
    fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = [0u8; 64 * 1024];
        self.reader
            .get_mut()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while Instant::now() < deadline {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return true,
            }
        }
        false
    }
}

const NOAUTH: &str = "-NOAUTH Authentication required.";
const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.";

#[test]
fn requirepass_gates_every_command_but_auth_hello_quit() {
    let s = Server::start_with(&["--save", "", "--requirepass", "s3cret"]);
    let mut c = Raw::connect(s.port);
    assert_eq!(c.cmd(&["PING"]), NOAUTH);
    assert_eq!(c.cmd(&["SET", "k", "v"]), NOAUTH);
    assert_eq!(c.cmd(&["CONFIG", "GET", "requirepass"]), NOAUTH);
    // As in Redis, unknown commands and arity errors come before NOAUTH.
    assert!(c
        .cmd(&["NOSUCH"])
        .starts_with("-ERR unknown command 'NOSUCH'"));
    assert_eq!(
        c.cmd(&["GET"]),
        "-ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(c.cmd(&["AUTH", "a", "b", "c"]), "-ERR syntax error");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "bob", "s3cret"]), WRONGPASS);
    assert_eq!(c.cmd(&["AUTH", "s3creT"]), WRONGPASS);
    assert_eq!(
        c.cmd(&["HELLO", "3"]),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    );
    assert_eq!(c.cmd(&["HELLO", "3", "AUTH", "default", "x"]), WRONGPASS);
    assert_eq!(
        c.cmd(&["HELLO", "4", "AUTH", "default", "s3cret"]),
        "-NOPROTO unsupported protocol version"
    );
    assert_eq!(
        c.cmd(&["PING"]),
        NOAUTH,
        "failed HELLOs did not authenticate"
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "requirepass"]),
        "requirepass\ns3cret"
    );

    // RESET logs the client out again, as in Redis.
    assert_eq!(c.cmd(&["RESET"]), "+RESET");
    assert_eq!(c.cmd(&["GET", "k"]), NOAUTH);
    assert_eq!(c.cmd(&["MULTI"]), NOAUTH);
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK");

    // The two-argument form, and QUIT before authenticating.
    let mut d = Raw::connect(s.port);
    assert_eq!(d.cmd(&["AUTH", "default", "s3cret"]), "+OK");
    assert_eq!(d.cmd(&["GET", "k"]), "v");
    let mut e = Raw::connect(s.port);
    assert_eq!(e.cmd(&["QUIT"]), "+OK");
    assert!(e.closed_within(Duration::from_secs(5)));

    // NOAUTH rejections are counted as rejected calls, not as calls.
    let stats = c.cmd(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_set:calls=1,"), "{stats}");

    // The redis crate authenticates from the URL, in RESP2 and RESP3.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", s.port);
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v, "v");
    let mut con3 = redis::Client::open(format!("{url}?protocol=resp3"))
        .unwrap()
        .get_connection()
        .unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut con3).unwrap();
    assert_eq!(v, "v");
    // redis-cli with -a.
    assert_eq!(
        s.cli(&["-a", "s3cret", "--no-auth-warning", "GET", "k"])
            .trim(),
        "v"
    );
    assert_eq!(s.cli(&["GET", "k"]).trim(), NOAUTH.trim_start_matches('-'));
}

#[test]
fn hello_auth_authenticates_and_switches_protocol() {
    let s = Server::start_with(&["--save", "", "--requirepass", "pw"]);
    let mut c = Raw::connect(s.port);
    let hello = c.cmd(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me"]);
    assert!(hello.contains("proto\n:3"), "{hello}");
    // RESP3 from here on: a null is `_`.
    assert_eq!(c.cmd(&["GET", "missing"]), "_");
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), "me");
}

#[test]
fn auth_without_a_password_configured() {
    let s = Server::start();
    let mut c = Raw::connect(s.port);
    assert_eq!(
        c.cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
    // With no password the default user takes any password; other users do not exist.
    assert_eq!(c.cmd(&["AUTH", "default", "anything"]), "+OK");
    assert_eq!(c.cmd(&["AUTH", "bob", "anything"]), WRONGPASS);
    let hello = c.cmd(&["HELLO", "2", "AUTH", "default", "x"]);
    assert!(hello.contains("proto\n:2"), "{hello}");
}

#[test]
fn config_set_requirepass_applies_to_new_connections() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", "later"]), "+OK");
    // A client connected while no password was set stays authenticated, as in Redis.
    assert_eq!(admin.cmd(&["PING"]), "+PONG");
    let mut fresh = Raw::connect(s.port);
    assert_eq!(fresh.cmd(&["PING"]), NOAUTH);
    assert_eq!(fresh.cmd(&["AUTH", "later"]), "+OK");
    assert_eq!(fresh.cmd(&["PING"]), "+PONG");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK");
    let mut open = Raw::connect(s.port);
    assert_eq!(open.cmd(&["PING"]), "+PONG");
}

#[test]
fn protected_mode_allows_loopback_on_a_wildcard_bind() {
    let s = Server::start_with(&["--save", "", "--bind", "0.0.0.0"]);
    let mut c = Raw::connect(s.port);
    assert_eq!(c.cmd(&["PING"]), "+PONG");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "protected-mode"]),
        "protected-mode\nyes"
    );
}

/// A veth pair with one end in a fresh network namespace: the server listens
/// on the host end, a client in the namespace is a genuinely remote peer.
struct RemoteNet {
    ns: String,
    host_if: String,
    host_ip: String,
}

impl RemoteNet {
    fn create() -> Result<RemoteNet, String> {
        let id = std::process::id() % 200 + 20;
        let net = RemoteNet {
            ns: format!("fkl-sec-{}", std::process::id()),
            host_if: format!("fkh{}", std::process::id() % 100_000),
            host_ip: format!("10.213.{id}.1"),
        };
        let peer_if = format!("fkp{}", std::process::id() % 100_000);
        let peer_ip = format!("10.213.{id}.2/24");
        let host_cidr = format!("{}/24", net.host_ip);
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &net.ns],
            vec![
                "link",
                "add",
                &net.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer_if,
            ],
            vec!["link", "set", &peer_if, "netns", &net.ns],
            vec!["addr", "add", &host_cidr, "dev", &net.host_if],
            vec!["link", "set", &net.host_if, "up"],
            vec![
                "netns", "exec", &net.ns, "ip", "addr", "add", &peer_ip, "dev", &peer_if,
            ],
            vec![
                "netns", "exec", &net.ns, "ip", "link", "set", &peer_if, "up",
            ],
        ];
        for step in steps {
            let out = Command::new("ip")
                .args(&step)
                .output()
                .map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "ip {}: {}",
                    step.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(net)
    }

    /// Runs redis-cli inside the namespace against the host end.
    fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "redis-cli", "-h", &self.host_ip])
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RemoteNet {
    fn drop(&mut self) {
        // Deleting the host end removes the pair; then the namespace.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn protected_mode_denies_remote_clients_without_password() {
    let net = match RemoteNet::create() {
        Ok(net) => net,
        Err(e) => {
            eprintln!("SKIPPED: cannot create a network namespace here ({e})");
            return;
        }
    };
    let bind = format!("{} 127.0.0.1", net.host_ip);
    let s = Server::start_with(&["--save", "", "--bind", &bind]);
    let denied = net.cli(s.port, &["PING"]);
    assert!(
        denied.starts_with("DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface."),
        "{denied}"
    );
    assert!(denied.trim_end().ends_with("NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside."));
    // Loopback is still served, and counts the refusal.
    let mut local = Raw::connect(s.port);
    assert_eq!(local.cmd(&["PING"]), "+PONG");
    assert!(local
        .cmd(&["INFO", "stats"])
        .contains("rejected_connections:1"));

    // With a password, the remote client is let in and must authenticate.
    assert_eq!(local.cmd(&["CONFIG", "SET", "requirepass", "pw"]), "+OK");
    assert_eq!(
        net.cli(s.port, &["PING"]).trim(),
        "NOAUTH Authentication required."
    );
    assert_eq!(
        net.cli(s.port, &["-a", "pw", "--no-auth-warning", "PING"])
            .trim(),
        "PONG"
    );
    // Protected mode off and no password: remote clients are served.
    assert_eq!(local.cmd(&["AUTH", "pw"]), "+OK");
    assert_eq!(local.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK");
    assert_eq!(local.cmd(&["CONFIG", "SET", "protected-mode", "no"]), "+OK");
    assert_eq!(net.cli(s.port, &["PING"]).trim(), "PONG");
}

#[test]
fn maxclients_refuses_the_extra_client() {
    let s = Server::start_with(&["--save", "", "--maxclients", "2"]);
    let mut a = Raw::connect(s.port);
    let mut b = Raw::connect(s.port);
    assert_eq!(a.cmd(&["PING"]), "+PONG");
    assert_eq!(b.cmd(&["PING"]), "+PONG");
    let mut c = Raw::connect(s.port);
    assert_eq!(c.reply(), "-ERR max number of clients reached");
    assert!(c.closed_within(Duration::from_secs(5)));
    drop(b);
    // The slot frees once the server sees the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Raw::connect(s.port);
        let r = d.cmd(&["PING"]);
        if r == "+PONG" {
            break;
        }
        assert_eq!(r, "-ERR max number of clients reached");
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(a.cmd(&["INFO", "stats"]).contains("rejected_connections:"));
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(admin.cmd(&["CONFIG", "SET", "timeout", "1"]), "+OK");
    let mut idle = Raw::connect(s.port);
    assert_eq!(idle.cmd(&["PING"]), "+PONG");
    let started = Instant::now();
    assert!(
        idle.closed_within(Duration::from_secs(5)),
        "idle client kept"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The admin connection idled too; a fresh client turns the timeout off.
    assert!(admin.closed_within(Duration::from_secs(5)));
    let mut again = Raw::connect(s.port);
    assert_eq!(again.cmd(&["CONFIG", "SET", "timeout", "0"]), "+OK");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(again.cmd(&["PING"]), "+PONG");
}

#[test]
fn proto_max_bulk_len_refuses_bigger_bulks() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"]),
        "+OK"
    );
    let mut c = Raw::connect(s.port);
    c.send(b"*2\r\n$4\r\nECHO\r\n$1048577\r\n");
    assert_eq!(c.reply(), "-ERR Protocol error: invalid bulk length");
    assert!(c.closed_within(Duration::from_secs(5)));
    // Exactly the limit is accepted.
    let mut ok = Raw::connect(s.port);
    let big = "x".repeat(1024 * 1024);
    assert_eq!(ok.cmd(&["SET", "big", &big]), "+OK");
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "proto-max-bulk-len", "1000"]),
        "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"
    );
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "client-query-buffer-limit", "1mb"]),
        "+OK"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "client-query-buffer-limit"]),
        "client-query-buffer-limit\n1048576"
    );
    let mut c = Raw::connect(s.port);
    // A declared 4 MB argument is fine until its bytes pile up past the limit.
    c.send(b"*2\r\n$4\r\nECHO\r\n$4194304\r\n");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..24 {
        if c.reader.get_mut().write_all(&chunk).is_err() {
            break;
        }
    }
    assert!(c.closed_within(Duration::from_secs(10)), "client kept");
    assert!(s.log_eventually_contains(
        "Closing client that reached max query buffer length",
        std::time::Duration::from_secs(5)
    ));
    assert_eq!(admin.cmd(&["PING"]), "+PONG");
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn pipeline_of_gets(n: usize) -> Vec<u8> {
    b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(n)
}

#[test]
fn output_hard_limit_drops_the_client() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        "+OK"
    );
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "client-output-buffer-limit"]),
        "client-output-buffer-limit\nnormal 1048576 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    let value = "v".repeat(600 * 1024);
    assert_eq!(admin.cmd(&["SET", "big", &value]), "+OK");
    // One reply fits; two in one batch do not.
    let mut one = Raw::connect(s.port);
    assert_eq!(one.cmd(&["GET", "big"]).len(), value.len());
    let mut c = Raw::connect(s.port);
    c.send(&pipeline_of_gets(2));
    assert!(c.closed_within(Duration::from_secs(5)), "client kept");
    assert!(s.log_eventually_contains(
        "scheduled to be closed ASAP for overcoming of output buffer limits",
        Duration::from_secs(5)
    ));
    assert_eq!(admin.cmd(&["PING"]), "+PONG");
}

#[test]
fn output_soft_limit_drops_a_slow_reader() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 256kb 1"
        ]),
        "+OK"
    );
    let value = "v".repeat(1024 * 1024);
    assert_eq!(admin.cmd(&["SET", "big", &value]), "+OK");
    let mut c = Raw::connect(s.port);
    // 40 MB of replies, far more than the socket buffers hold, never read.
    c.send(&pipeline_of_gets(40));
    std::thread::sleep(Duration::from_secs(3));
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    c.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while let Ok(n) = c.reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total < 40 * value.len(), "all {total} bytes arrived");
    assert_eq!(admin.cmd(&["PING"]), "+PONG");
}

#[test]
fn a_client_that_never_reads_stalls_only_itself() {
    let s = Server::start();
    let mut admin = Raw::connect(s.port);
    let value = "v".repeat(100 * 1024);
    assert_eq!(admin.cmd(&["SET", "big", &value]), "+OK");
    let before = rss_kib(s.pid());
    // 20,000 GETs of 100 KB (2 GB of replies) sent, none read.
    let mut c = Raw::connect(s.port);
    let pipeline = pipeline_of_gets(20_000);
    c.reader
        .get_mut()
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = c.reader.get_mut().write_all(&pipeline);
    std::thread::sleep(Duration::from_millis(500));
    // Other clients are served meanwhile, and memory stays bounded.
    for _ in 0..20 {
        assert_eq!(admin.cmd(&["PING"]), "+PONG");
        assert_eq!(admin.cmd(&["STRLEN", "big"]), ":102400");
    }
    let after = rss_kib(s.pid());
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // The stalled client is still connected (it is slow, not over a limit).
    assert!(admin.cmd(&["CLIENT", "LIST"]).lines().count() >= 2);
}

#[test]
fn requirepass_from_a_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("forkless.conf");
    std::fs::write(&conf, "requirepass \"from file\"\nprotected-mode yes\n").unwrap();
    let s = Server::start_with(&[conf.to_str().unwrap(), "--save", ""]);
    let mut c = Raw::connect(s.port);
    assert_eq!(c.cmd(&["PING"]), NOAUTH);
    assert_eq!(c.cmd(&["AUTH", "from file"]), "+OK");
    assert_eq!(c.cmd(&["PING"]), "+PONG");
}
