//! What the side-by-side harnesses share: locating the forkless binary next to
//! the example, running a child process with bounded time, a server process
//! that answers PING before use and dies with its handle, and reading
//! redis-benchmark's CSV. Each example includes this file as a module and
//! uses what it needs.
#![allow(dead_code)]

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// xorshift64: the same data in both servers, run after run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `n` bytes in 1..=255.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() % 255) as u8 + 1).collect()
    }

    /// `n` lowercase letters.
    pub fn letters(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'a' + (self.next() % 26) as u8).collect()
    }

    /// `n` printable ASCII bytes (`!` to `~`).
    pub fn printable(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'!' + (self.next() % 94) as u8).collect()
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// `target/<profile>/forkless`, beside `target/<profile>/examples/<this>`.
pub fn forkless_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("forkless"))
        .ok_or("cannot locate the target directory")?;
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release --bin forkless` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// Runs a command with its output in a temporary file, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut out = tempfile::tempfile()?;
    let mut child = cmd
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?)
        .stdin(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} still running after {limit:?}: killed").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    out.rewind()?;
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    // Progress lines end in '\r'.
    let text = text.replace('\r', "\n");
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}):\n{text}").into());
    }
    if text.contains("ERR") || text.contains("Error") {
        return Err(format!("{cmd:?} saw errors:\n{text}").into());
    }
    Ok(text)
}

/// A server process (forkless or redis-server), killed on drop.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    child: Child,
    /// The data directory, when the server made its own.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Spawns `cmd` and waits (up to 30 s) until it answers PING on `port`.
    pub fn start(name: &'static str, mut cmd: Command, port: u16) -> Result<Server> {
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let server = Server {
            name,
            port,
            child,
            _dir: None,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let pong = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "PING"])
                .output()?;
            if String::from_utf8_lossy(&pong.stdout).trim() == "PONG" {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{name} did not answer PING on port {port}").into())
    }
}

impl Server {
    /// forkless (or redis-server) on `port` with saving off, in a fresh
    /// temporary directory of its own.
    pub fn start_fresh(forkless: bool, port: u16) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut cmd = if forkless {
            Command::new(forkless_binary()?)
        } else {
            let mut c = Command::new("redis-server");
            c.args(["--bind", "127.0.0.1", "--appendonly", "no"]);
            c
        };
        cmd.args(["--port", &port.to_string(), "--save", "", "--dir"])
            .arg(dir.path());
        let name = if forkless { "forkless" } else { "redis" };
        let mut server = Server::start(name, cmd, port)?;
        server._dir = Some(dir);
        Ok(server)
    }

    pub fn client(&self) -> Result<redis::Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        Ok(c.get_connection()?)
    }

    /// The process's resident set, in bytes.
    pub fn rss(&self) -> u64 {
        process_rss(self.child.id())
    }

    /// CPU time the process used so far, in microseconds.
    pub fn cpu_us(&self) -> f64 {
        process_cpu_us(self.child.id())
    }

    /// `used_memory` from INFO memory.
    pub fn used_memory(&self) -> Result<u64> {
        used_memory(&mut self.client()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last result row of `redis-benchmark --csv`: req/s and the p99
/// latency in ms.
pub fn benchmark_row(text: &str, name: &str) -> Result<(f64, f64)> {
    let row = text
        .lines()
        .rfind(|l| l.starts_with('"') && !l.starts_with("\"test\""))
        .ok_or_else(|| format!("no CSV row from {name}:\n{text}"))?;
    let column = |i: usize| -> Result<f64> {
        row.split(',')
            .nth(i)
            .map(|v| v.trim_matches('"'))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("bad CSV row {row:?}").into())
    };
    Ok((column(1)?, column(6)?))
}

/// `VmRSS` of process `pid`, in bytes (0 if it cannot be read).
pub fn process_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// CPU time process `pid` used so far (user + system), in microseconds.
pub fn process_cpu_us(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) * 1e6 / 100.0
}

/// `used_memory` from INFO memory over `conn`.
pub fn used_memory(conn: &mut redis::Connection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory".into())
}

/// Runs one redis-benchmark test (`-q -c 50` plus `args`) against `port`,
/// bounded to 5 minutes, and returns its requests per second: the last
/// result line, since a test's setup (LRANGE's LPUSH) prints first.
pub fn redis_benchmark_rps(port: u16, args: &[&str]) -> Result<f64> {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "-c", "50"])
        .args(args);
    let text = run_bounded(&mut cmd, Duration::from_secs(300))?;
    text.lines()
        .rfind(|l| l.contains("requests per second"))
        .and_then(|l| {
            let (_, rest) = l.split_once(": ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| format!("no result from redis-benchmark: {text}").into())
}

/// The middle value (the upper one of an even count); 0 for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// One redis-benchmark test run `rounds` times on each server in turn, so
/// both see the same machine noise: median req/s and median server CPU µs
/// per request (of `requests` per run), in the servers' order.
pub fn interleaved(
    servers: &[Server; 2],
    rounds: usize,
    requests: f64,
    args: &[&str],
) -> Result<[(f64, f64); 2]> {
    interleaved_with(servers, rounds, requests, args, |_| Ok(()))
}

/// [`interleaved`], calling `prepare` on a server before each of its runs
/// (to give every run the same data), outside the measured time.
pub fn interleaved_with(
    servers: &[Server; 2],
    rounds: usize,
    requests: f64,
    args: &[&str],
    mut prepare: impl FnMut(&Server) -> Result<()>,
) -> Result<[(f64, f64); 2]> {
    let mut rps = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, s) in servers.iter().enumerate() {
            prepare(s)?;
            let before = s.cpu_us();
            rps[i].push(redis_benchmark_rps(s.port, args)?);
            cpu[i].push((s.cpu_us() - before) / requests);
        }
    }
    let [r0, r1] = rps;
    let [c0, c1] = cpu;
    Ok([(median(r0), median(c0)), (median(r1), median(c1))])
}

/// One table row: a figure of both servers and their ratio.
pub fn row(name: &str, f: f64, r: f64, unit: &str) {
    println!(
        "| {name} | {f:.0} {unit} | {r:.0} {unit} | {:.3} |",
        if r > 0.0 { f / r } else { 0.0 }
    );
}

/// The two rows of an [`interleaved`] result: req/s, then server CPU per
/// request.
pub fn both_rows(label: &str, res: [(f64, f64); 2]) {
    let [(f, fc), (r, rc)] = res;
    row(&format!("{label}: req/s"), f, r, "");
    println!(
        "| {label}: server CPU per request | {fc:.2} µs | {rc:.2} µs | {:.3} |",
        if rc > 0.0 { fc / rc } else { 0.0 }
    );
}
