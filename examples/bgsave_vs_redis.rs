//! End-to-end comparison of forkless and a real `redis-server` on this machine, in
//! one run: the same data, the same load, the same measurements, and the ratio
//! forkless/Redis for every figure.
//!
//! ```sh
//! cargo build --release --bin forkless --example bgsave_vs_redis
//! target/release/examples/bgsave_vs_redis --keys 1000000 --small-collections 1000000
//! # quick check (~2 min):
//! target/release/examples/bgsave_vs_redis --keys 100000 --small-collections 30000 --seconds 3
//! # only the small-collections dataset:
//! target/release/examples/bgsave_vs_redis --keys 0 --small-collections 1000000
//! ```
//!
//! # Phases
//!
//! The main dataset (skipped with `--keys 0`) is `--keys` strings `key:%012d` of
//! 100 random bytes plus `--collections` lists, hashes and sets of 10 elements,
//! loaded with pipelining into both servers, which then run side by side:
//!
//! 1. **Load**: RSS after load (`VmRSS` of `/proc/PID/status`).
//! 2. **Interleaved SET throughput** (`--set-rounds R`, default 3, 0 = off):
//!    `redis-benchmark -c <clients> -P <p> -r <keys> -d 100 -t set -n <n>` for
//!    each `p` of `--set-pipelines` (default 1,16), run forkless, redis,
//!    forkless, redis… `R` times each, no save running. `-r` makes the key
//!    `key:__rand_int__` become `key:%012d` below `<keys>`, so every SET
//!    overwrites a loaded key with a value of the same size (checked with
//!    DBSIZE). `n` is `--set-requests` × min(p, 8), so both depths run for a
//!    similar time. Reported: median req/s, and the median over the runs of
//!    the p99 (from redis-benchmark's latency summary) and p99.9 (the first
//!    point of its percentile distribution at or above 99.9 %, an upper bound).
//! 3. **Write load without a save** (`--no-write-load` skips 3 and 4):
//!    `--clients` unpipelined connections (one thread each) send SET on random
//!    loaded keys for `--seconds`; throughput, client-side latency
//!    (hdrhistogram), and the CPU time per request of the server process and
//!    of this load generator (`/proc/PID/stat`). With `--load-rounds R` the
//!    phase runs R times per server, alternating forkless and redis; the
//!    throughput and CPU figures are medians over the rounds, the latencies
//!    come from the rounds' histograms merged.
//! 4. **Write load with back-to-back BGSAVEs**: the same load (and rounds)
//!    while BGSAVEs run back to back: throughput and latency (the server CPU
//!    figure leaves out Redis's forked children, which do its saves),
//!    BGSAVE reply and total times,
//!    and the extra memory a save costs (forkless: RSS peak during the saves
//!    minus RSS before them; Redis: the largest `rdb_last_cow_size` it
//!    reports — its `current_cow_peak`, updated by the child only now and
//!    then, misses most of a short save and is not used).
//! 5. **SAVE and restart**: SAVE time, dump size, the `redis-benchmark` suite
//!    (`--no-redis-benchmark` skips it), then the start-up load time of the dump.
//!
//! 6. **Small collections** (`--small-collections N`, default 0 = off), in a
//!    freshly started server of each kind: `N` hashes `h:%09d` of 5 fields
//!    `f1`..`f5` with 10-byte values and `N` sets `s:%09d` of 5 distinct
//!    integers below 100000, loaded with pipelining; RSS and `used_memory`
//!    (INFO memory) before and after the load, bytes per collection, and the
//!    `OBJECT ENCODING` of one hash and one set.
//!
//! Every loop is bounded in count and time (redis-benchmark runs are killed
//! after 120 s); the servers are stopped at the end, and the process exits
//! non-zero if either failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use hdrhistogram::Histogram;

#[path = "support/mod.rs"]
mod support;
use support::{forkless_binary, process_cpu_us, process_rss, run_bounded, Rng};

/// Compare forkless with redis-server side by side.
#[derive(FromArgs)]
struct Opts {
    /// string keys of 100 random bytes to load; 0 skips the main dataset
    /// (default 1000000)
    #[argh(option, default = "1_000_000")]
    keys: usize,
    /// small lists, hashes and sets to load, each (default 1000)
    #[argh(option, default = "1000")]
    collections: usize,
    /// seconds of write load per phase (default 8)
    #[argh(option, default = "8")]
    seconds: u64,
    /// client connections of the write load and the SET benchmark (default 50)
    #[argh(option, default = "50")]
    clients: usize,
    /// rounds of the interleaved redis-benchmark SET phase, per server and
    /// pipeline depth; 0 skips it (default 3)
    #[argh(option, default = "3")]
    set_rounds: usize,
    /// requests per SET benchmark run at -P 1; deeper pipelines send this
    /// times min(P, 8) (default 300000)
    #[argh(option, default = "300_000")]
    set_requests: u64,
    /// pipeline depths of the SET phase, comma-separated (default 1,16)
    #[argh(option, default = "String::from(\"1,16\")")]
    set_pipelines: String,
    /// skip the 50-client write load phases (without and with BGSAVEs)
    #[argh(switch)]
    no_write_load: bool,
    /// rounds of each write load phase, run forkless, redis, forkless, redis…;
    /// throughput and CPU per request are the medians over the rounds,
    /// latencies come from all rounds together (default 1)
    #[argh(option, default = "1")]
    load_rounds: usize,
    /// leave forkless's incremental snapshots on (by default they are off
    /// here, so every save writes the whole data set as redis-server's does;
    /// `incremental_snapshots` measures deltas)
    #[argh(switch)]
    incremental: bool,
    /// skip the redis-benchmark suite after SAVE
    #[argh(switch)]
    no_redis_benchmark: bool,
    /// small hashes and small sets to load into fresh servers, each; 0 = off
    /// (default 0)
    #[argh(option, default = "0")]
    small_collections: usize,
    /// first port to use (two consecutive ports; default 17301)
    #[argh(option, default = "17301")]
    port: u16,
}

impl Opts {
    fn pipelines(&self) -> Result<Vec<u32>> {
        self.set_pipelines
            .split(',')
            .map(|p| Ok(p.trim().parse::<u32>()?))
            .collect()
    }
}

use support::Result;

/// Commands sent per pipelined batch while loading.
const BATCH: usize = 1000;
/// Longest a single redis-benchmark run may take before it is killed.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------- RESP client

/// A reply, as far as this harness needs to read one.
#[derive(Debug)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    /// Read whole so the stream stays in step; only shown in error messages.
    Array(#[allow(dead_code)] Vec<Resp>),
}

/// A minimal blocking RESP2 client: one request, one reply, no pipelining
/// unless asked for.
struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn connect(port: u16) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn send(&mut self, buf: &[u8]) -> Result<()> {
        self.writer.write_all(buf)?;
        Ok(())
    }

    fn cmd(&mut self, args: &[&[u8]]) -> Result<Resp> {
        let mut buf = Vec::new();
        Conn::encode(&mut buf, args);
        self.send(&buf)?;
        self.read()
    }

    fn cmd_str(&mut self, args: &[&str]) -> Result<Resp> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }

    fn cmd_int(&mut self, args: &[&str]) -> Result<i64> {
        match self.cmd_str(args)? {
            Resp::Int(n) => Ok(n),
            other => Err(format!("{}: {other:?}", args.join(" ")).into()),
        }
    }

    fn cmd_text(&mut self, args: &[&str]) -> Result<String> {
        match self.cmd_str(args)? {
            Resp::Simple(s) => Ok(s),
            Resp::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(format!("{}: {other:?}", args.join(" ")).into()),
        }
    }

    fn read(&mut self) -> Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err("connection closed".into());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(1);
        Ok(match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(rest.parse()?),
            "$" => {
                let n: i64 = rest.parse()?;
                if n < 0 {
                    Resp::Bulk(None)
                } else {
                    let mut data = vec![0u8; n as usize + 2];
                    self.reader.read_exact(&mut data)?;
                    data.truncate(n as usize);
                    Resp::Bulk(Some(data))
                }
            }
            "*" => {
                let n: i64 = rest.parse()?;
                let mut items = Vec::new();
                for _ in 0..n.max(0) {
                    items.push(self.read()?);
                }
                Resp::Array(items)
            }
            _ => return Err(format!("unexpected reply line {line:?}").into()),
        })
    }

    /// One INFO section as `field:value` pairs.
    fn info(&mut self, section: &str) -> Result<Info> {
        let text = self.cmd_text(&["INFO", section])?;
        Ok(Info(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        ))
    }

    fn info_field(&mut self, section: &str, field: &str) -> Result<Option<String>> {
        Ok(self.info(section)?.get(field).map(str::to_string))
    }
}

struct Info(Vec<(String, String)>);

impl Info {
    fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    fn get_u64(&self, field: &str) -> Option<u64> {
        self.get(field).and_then(|v| v.parse().ok())
    }
}

fn expect_ok(r: Resp, what: &str) -> Result<()> {
    match r {
        Resp::Error(e) => Err(format!("{what}: {e}").into()),
        _ => Ok(()),
    }
}

/// Sends commands in batches of [`BATCH`] and checks that none failed.
struct Pipeline {
    conn: Conn,
    buf: Vec<u8>,
    pending: usize,
}

impl Pipeline {
    fn new(port: u16) -> Result<Pipeline> {
        Ok(Pipeline {
            conn: Conn::connect(port)?,
            buf: Vec::new(),
            pending: 0,
        })
    }

    fn push(&mut self, args: &[&[u8]]) -> Result<()> {
        Conn::encode(&mut self.buf, args);
        self.pending += 1;
        if self.pending >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.conn.send(&self.buf)?;
        for _ in 0..self.pending {
            expect_ok(self.conn.read()?, "load")?;
        }
        self.buf.clear();
        self.pending = 0;
        Ok(())
    }
}

// ---------------------------------------------------------------- servers

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Forkless,
    Redis,
}

impl Kind {
    const BOTH: [Kind; 2] = [Kind::Forkless, Kind::Redis];

    fn name(self) -> &'static str {
        match self {
            Kind::Forkless => "forkless",
            Kind::Redis => "redis",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

struct ServerProc {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// `--incremental`: whether forkless keeps its incremental snapshots on.
static INCREMENTAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl ServerProc {
    fn start(kind: Kind, port: u16, dir: &Path) -> Result<ServerProc> {
        std::fs::create_dir_all(dir)?;
        let mut cmd = match kind {
            Kind::Forkless => {
                let mut c = Command::new(forkless_binary()?);
                c.args(["--port", &port.to_string(), "--save", "", "--dir"])
                    .arg(dir);
                if !INCREMENTAL.load(std::sync::atomic::Ordering::Relaxed) {
                    c.args(["--config", "incremental-snapshots no"]);
                }
                c
            }
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no", "--dir"])
                .arg(dir);
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let mut s = ServerProc {
            kind,
            port,
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        s.wait_ready(Duration::from_secs(300))?;
        Ok(s)
    }

    /// Stops the server and starts it again on the same directory; returns the
    /// time until it answers PING (the dump load).
    fn restart(&mut self) -> Result<Duration> {
        self.kill();
        let t = Instant::now();
        let dir = self.dir.clone();
        *self = ServerProc::start(self.kind, self.port, &dir)?;
        Ok(t.elapsed())
    }

    /// Waits until the server answers PING (and is not loading).
    fn wait_ready(&mut self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    return Err(
                        format!("{} exited during start-up: {status}", self.kind.name()).into(),
                    );
                }
            }
            if let Ok(mut c) = Conn::connect(self.port) {
                if let Ok(Resp::Simple(p)) = c.cmd_str(&["PING"]) {
                    if p == "PONG" {
                        return Ok(start.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err(format!("{} not ready after {limit:?}", self.kind.name()).into())
    }

    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn rss(&self) -> u64 {
        process_rss(self.pid())
    }

    fn conn(&self) -> Result<Conn> {
        Conn::connect(self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn dump_path(&self) -> PathBuf {
        self.dir.join("dump.rdb")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn dbsize(s: &ServerProc) -> Result<i64> {
    s.conn()?.cmd_int(&["DBSIZE"])
}

// ---------------------------------------------------------------- report

/// One measurement of one server.
#[derive(Clone)]
enum Cell {
    Num(f64),
    Text(String),
    Missing,
}

impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Cell::Num(v)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Cell {
        Cell::Text(v)
    }
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Num(v) => write!(f, "{v:.3}"),
            Cell::Text(s) => write!(f, "{s}"),
            Cell::Missing => write!(f, "-"),
        }
    }
}

/// Rows of figures, forkless beside Redis; a row appears where its first
/// figure was put.
struct Table {
    title: String,
    rows: Vec<(String, [Cell; 2])>,
}

impl Table {
    fn new(title: String) -> Table {
        Table {
            title,
            rows: Vec::new(),
        }
    }

    fn put(&mut self, kind: Kind, name: &str, cell: impl Into<Cell>) {
        let i = match self.rows.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.rows
                    .push((name.to_string(), [Cell::Missing, Cell::Missing]));
                self.rows.len() - 1
            }
        };
        self.rows[i].1[kind.index()] = cell.into();
    }

    fn print(&self) {
        println!("\n{}\n", self.title);
        println!("| figure | forkless | redis | forkless/redis |");
        println!("|---|---:|---:|---:|");
        for (name, [f, r]) in &self.rows {
            let ratio = match (f, r) {
                (Cell::Num(f), Cell::Num(r)) if *r != 0.0 => format!("{:.3}", f / r),
                _ => "-".into(),
            };
            println!("| {name} | {f} | {r} | {ratio} |");
        }
    }
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

const MB: f64 = 1e6;

// ---------------------------------------------------------------- phase 1: load

fn load_data(port: u16, keys: usize, collections: usize) -> Result<()> {
    let mut p = Pipeline::new(port)?;
    let mut rng = Rng(0x1234_5678_9abc_def0);
    for i in 0..keys {
        let key = format!("key:{i:012}");
        p.push(&[b"SET", key.as_bytes(), &rng.bytes(100)])?;
    }
    for i in 0..collections {
        let (l, h, s) = (format!("list:{i}"), format!("hash:{i}"), format!("set:{i}"));
        for j in 0..10 {
            let m = format!("member:{j}");
            p.push(&[b"RPUSH", l.as_bytes(), m.as_bytes()])?;
            p.push(&[b"HSET", h.as_bytes(), m.as_bytes(), b"value"])?;
            p.push(&[b"SADD", s.as_bytes(), m.as_bytes()])?;
        }
    }
    p.flush()
}

fn load_main(s: &ServerProc, opts: &Opts, t: &mut Table) -> Result<()> {
    let start = Instant::now();
    load_data(s.port, opts.keys, opts.collections)?;
    eprintln!(
        "[{}] loaded in {:.1} s",
        s.name(),
        start.elapsed().as_secs_f64()
    );
    t.put(s.kind, "RSS after load (MB)", s.rss() as f64 / MB);
    Ok(())
}

// ---------------------------------------------------------------- redis-benchmark

fn redis_benchmark_cmd(port: u16, clients: usize, pipeline: u32) -> Command {
    let mut c = Command::new("redis-benchmark");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]).args([
        "-c",
        &clients.to_string(),
        "-P",
        &pipeline.to_string(),
    ]);
    c
}

/// What one redis-benchmark run of one test reports.
struct BenchRun {
    rps: f64,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
}

/// Parses redis-benchmark 7's report of a single test (without `-q`):
///
/// ```text
/// Latency by percentile distribution:
/// 99.805% <= 0.983 milliseconds (cumulative count 19962)
/// 99.902% <= 2.599 milliseconds (cumulative count 19982)
/// ...
/// Summary:
///   throughput summary: 168067.22 requests per second
///   latency summary (msec):
///           avg       min       p50       p95       p99       max
///         0.189     0.048     0.183     0.271     0.319     2.663
/// ```
fn parse_benchmark_report(text: &str) -> Result<BenchRun> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let rps = lines
        .iter()
        .find_map(|l| l.strip_prefix("throughput summary:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no throughput summary in redis-benchmark output:\n{text}"))?;
    let p99_ms = lines.windows(2).find_map(|w| {
        let col = w[0].split_whitespace().position(|h| h == "p99")?;
        w[1].split_whitespace().nth(col)?.parse().ok()
    });
    let p999_ms = lines.iter().find_map(|l| {
        // "99.902% <= 2.599 milliseconds (cumulative count 19982)"
        let (pct, rest) = l.split_once("% <= ")?;
        let pct: f64 = pct.parse().ok()?;
        let ms: f64 = rest.split_whitespace().next()?.parse().ok()?;
        (pct >= 99.9).then_some(ms)
    });
    Ok(BenchRun {
        rps,
        p99_ms,
        p999_ms,
    })
}

/// One `redis-benchmark -t set` run whose keys are the loaded `key:%012d`.
fn set_benchmark(port: u16, opts: &Opts, pipeline: u32, requests: u64) -> Result<BenchRun> {
    let text = run_bounded(
        redis_benchmark_cmd(port, opts.clients, pipeline)
            .args(["-r", &opts.keys.to_string(), "-d", "100", "-t", "set"])
            .args(["-n", &requests.to_string()]),
        BENCH_TIMEOUT,
    )?;
    parse_benchmark_report(&text)
}

/// The redis-benchmark suite with its own keys: req/s per test.
fn redis_benchmark_suite(port: u16, pipeline: u32) -> Result<Vec<(String, f64)>> {
    let text = run_bounded(
        redis_benchmark_cmd(port, 50, pipeline).args([
            "-q",
            "-n",
            "100000",
            "-t",
            "set,get,incr,lpush,rpush,lpop,sadd,hset,lrange_100",
        ]),
        BENCH_TIMEOUT,
    )?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let rps: f64 = rest.split_whitespace().next()?.parse().ok()?;
            (!name.contains('(')).then(|| (name.trim().to_string(), rps))
        })
        .collect())
}

// ---------------------------------------------------------------- phase 2: SET throughput

/// redis-benchmark SET against both servers in turn, `--set-rounds` times each
/// per pipeline depth, so drift on the shared machine hits both alike.
fn set_throughput(servers: &[ServerProc; 2], opts: &Opts, t: &mut Table) -> Result<()> {
    let keys_before = [dbsize(&servers[0])?, dbsize(&servers[1])?];
    for pipeline in opts.pipelines()? {
        let requests = opts.set_requests * u64::from(pipeline.clamp(1, 8));
        let mut runs: [Vec<BenchRun>; 2] = [Vec::new(), Vec::new()];
        for round in 1..=opts.set_rounds {
            for s in servers {
                wait_bgsave_done(&mut s.conn()?, Duration::from_secs(300))?;
                let r = set_benchmark(s.port, opts, pipeline, requests)?;
                eprintln!(
                    "[{}] SET -P {pipeline} round {round}: {:.0} req/s, p99 {:?} ms, p99.9 {:?} ms",
                    s.name(),
                    r.rps,
                    r.p99_ms,
                    r.p999_ms
                );
                runs[s.kind.index()].push(r);
            }
        }
        for kind in Kind::BOTH {
            put_set_runs(t, kind, opts, pipeline, &runs[kind.index()]);
        }
    }
    for (s, before) in servers.iter().zip(keys_before) {
        let after = dbsize(s)?;
        if after != before {
            return Err(format!(
                "{}: SET benchmark changed DBSIZE {before} -> {after}: its keys are not the loaded ones",
                s.name()
            )
            .into());
        }
    }
    Ok(())
}

fn put_set_runs(t: &mut Table, kind: Kind, opts: &Opts, pipeline: u32, runs: &[BenchRun]) {
    let prefix = format!(
        "redis-benchmark SET -c {} -P {pipeline} -r {}, median of {}:",
        opts.clients,
        opts.keys,
        runs.len()
    );
    let rps: Vec<f64> = runs.iter().map(|r| r.rps).collect();
    t.put(kind, &format!("{prefix} throughput (req/s)"), median(&rps));
    let p99: Vec<f64> = runs.iter().filter_map(|r| r.p99_ms).collect();
    let p999: Vec<f64> = runs.iter().filter_map(|r| r.p999_ms).collect();
    for (name, v) in [("p99", p99), ("p99.9", p999)] {
        let cell = if v.is_empty() {
            Cell::Missing
        } else {
            Cell::Num(median(&v))
        };
        t.put(kind, &format!("{prefix} {name} (ms)"), cell);
    }
}

// ---------------------------------------------------------------- phases 3 and 4: write load

struct LoadResult {
    hist: Histogram<u64>,
    ops: u64,
    elapsed: Duration,
    errors: u64,
    /// CPU time of the server process (user + system) per request, µs.
    server_cpu_us: f64,
    /// CPU time of this process (the load's threads) per request, µs.
    client_cpu_us: f64,
}

/// Runs `clients` unpipelined SET loops over the loaded keys for `seconds`,
/// with `during` running on this thread meanwhile; `pid` is the server's.
fn write_load(
    pid: u32,
    port: u16,
    clients: usize,
    keys: usize,
    seconds: u64,
    during: impl FnOnce() -> Result<()>,
) -> Result<LoadResult> {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let mut threads = Vec::new();
    for t in 0..clients {
        let (stop, errors, hist) = (stop.clone(), errors.clone(), hist.clone());
        threads.push(std::thread::spawn(move || -> Result<u64> {
            let mut c = Conn::connect(port)?;
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            let mut i = (t * 7919) % keys.max(1);
            let value = vec![b'w'; 100];
            let mut ops = 0u64;
            let mut buf = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                i = (i + 104_729) % keys.max(1);
                let key = format!("key:{i:012}");
                buf.clear();
                Conn::encode(&mut buf, &[b"SET", key.as_bytes(), &value]);
                let start = Instant::now();
                c.send(&buf)?;
                if let Resp::Error(_) = c.read()? {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                local.record(start.elapsed().as_micros().max(1) as u64)?;
                ops += 1;
            }
            hist.lock().map_err(|_| "poisoned")?.add(&local)?;
            Ok(ops)
        }));
    }
    let started = Instant::now();
    let cpu_before = (process_cpu_us(pid), process_cpu_us(std::process::id()));
    let during_result = during();
    let remaining = Duration::from_secs(seconds).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    stop.store(true, Ordering::Relaxed);
    let cpu_after = (process_cpu_us(pid), process_cpu_us(std::process::id()));
    let mut ops = 0;
    for t in threads {
        ops += t.join().map_err(|_| "load thread panicked")??;
    }
    let elapsed = started.elapsed();
    let per_op = |after: f64, before: f64| (after - before) / ops.max(1) as f64;
    during_result?;
    let hist = Arc::try_unwrap(hist)
        .map_err(|_| "histogram still shared")?
        .into_inner()
        .map_err(|_| "poisoned")?;
    Ok(LoadResult {
        hist,
        ops,
        elapsed,
        errors: errors.load(Ordering::Relaxed),
        server_cpu_us: per_op(cpu_after.0, cpu_before.0),
        client_cpu_us: per_op(cpu_after.1, cpu_before.1),
    })
}

fn wait_bgsave_done(c: &mut Conn, limit: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if c.info_field("persistence", "rdb_bgsave_in_progress")?
            .as_deref()
            == Some("0")
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("BGSAVE did not finish in time".into())
}

#[derive(Default)]
struct SaveStats {
    reply_us: Vec<f64>,
    total_s: Vec<f64>,
    /// forkless: RSS peak minus RSS before; Redis: largest `rdb_last_cow_size`.
    extra_mem: u64,
    /// Whether any save of the phase ended with a status other than `ok`.
    failed: bool,
}

/// One BGSAVE, polled until done: (reply µs, total s, RSS peak).
fn one_bgsave(c: &mut Conn, pid: u32) -> Result<(f64, f64, u64)> {
    let t0 = Instant::now();
    let r = c.cmd_str(&["BGSAVE"])?;
    let reply_us = t0.elapsed().as_secs_f64() * 1e6;
    if let Resp::Error(e) = r {
        return Err(format!("BGSAVE: {e}").into());
    }
    let mut rss_peak = 0;
    loop {
        rss_peak = rss_peak.max(process_rss(pid));
        if c.info_field("persistence", "rdb_bgsave_in_progress")?
            .as_deref()
            == Some("0")
        {
            break;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            return Err("BGSAVE did not finish in 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((reply_us, t0.elapsed().as_secs_f64(), rss_peak))
}

/// Issues BGSAVEs back to back for `seconds`, recording reply and total times and
/// the memory a save costs.
fn bgsave_loop(
    kind: Kind,
    port: u16,
    pid: u32,
    seconds: u64,
    stats: &Mutex<SaveStats>,
) -> Result<()> {
    let mut c = Conn::connect(port)?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let rss_before = process_rss(pid);
    while Instant::now() < deadline {
        let (reply_us, total_s, rss_peak) = one_bgsave(&mut c, pid)?;
        let info = c.info("persistence")?;
        let extra = match kind {
            Kind::Forkless => rss_peak.saturating_sub(rss_before),
            Kind::Redis => info.get_u64("rdb_last_cow_size").unwrap_or(0),
        };
        let mut s = stats.lock().map_err(|_| "poisoned")?;
        s.reply_us.push(reply_us);
        s.total_s.push(total_s);
        s.extra_mem = s.extra_mem.max(extra);
        s.failed |= info.get("rdb_last_bgsave_status") != Some("ok");
    }
    Ok(())
}

/// Puts one write load phase's figures: the median over `rounds` of the
/// throughput and CPU per request, latencies over all rounds together.
fn put_load(t: &mut Table, kind: Kind, prefix: &str, rounds: &[LoadResult]) -> Result<()> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for r in rounds {
        hist.add(&r.hist)?;
    }
    let med = |f: fn(&LoadResult) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |q: f64| ms(hist.value_at_quantile(q));
    let rows = [
        (
            "throughput (req/s)",
            med(|r| r.ops as f64 / r.elapsed.as_secs_f64()),
        ),
        ("p50 (ms)", q(0.50)),
        ("p99 (ms)", q(0.99)),
        ("p99.9 (ms)", q(0.999)),
        ("max (ms)", ms(hist.max())),
        (
            "error replies",
            rounds.iter().map(|r| r.errors).sum::<u64>() as f64,
        ),
        ("server CPU per request (µs)", med(|r| r.server_cpu_us)),
        (
            "load generator CPU per request (µs)",
            med(|r| r.client_cpu_us),
        ),
    ];
    for (name, v) in rows {
        t.put(kind, &format!("{prefix} {name}"), v);
    }
    Ok(())
}

fn put_save_stats(t: &mut Table, kind: Kind, s: &SaveStats) {
    t.put(kind, "BGSAVEs during load", s.reply_us.len() as f64);
    t.put(
        kind,
        "BGSAVE reply median (ms)",
        median(&s.reply_us) / 1000.0,
    );
    let max_reply = s.reply_us.iter().cloned().fold(0.0, f64::max);
    t.put(kind, "BGSAVE reply max (ms)", max_reply / 1000.0);
    t.put(kind, "BGSAVE total median (s)", median(&s.total_s));
    t.put(
        kind,
        "extra memory during save (MB)",
        s.extra_mem as f64 / MB,
    );
}

/// Runs the write load without and then with back-to-back BGSAVEs,
/// `--load-rounds` times each, alternating the servers round by round so
/// both see the same machine.
fn write_phases(servers: &[ServerProc], opts: &Opts, t: &mut Table) -> Result<()> {
    let rounds = opts.load_rounds.max(1);
    let mut idle: Vec<Vec<LoadResult>> = servers.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (s, results) in servers.iter().zip(&mut idle) {
            eprintln!(
                "[{}] write load without a save, round {round}/{rounds}",
                s.name()
            );
            results.push(write_load(
                s.pid(),
                s.port,
                opts.clients,
                opts.keys,
                opts.seconds,
                || Ok(()),
            )?);
        }
    }
    for (s, results) in servers.iter().zip(&idle) {
        put_load(t, s.kind, "no save:", results)?;
    }

    let mut busy: Vec<(Vec<LoadResult>, Mutex<SaveStats>)> = servers
        .iter()
        .map(|_| (Vec::new(), Mutex::new(SaveStats::default())))
        .collect();
    for round in 1..=rounds {
        for (s, (results, stats)) in servers.iter().zip(&mut busy) {
            eprintln!(
                "[{}] write load with back-to-back BGSAVEs, round {round}/{rounds}",
                s.name()
            );
            let (kind, port, pid) = (s.kind, s.port, s.pid());
            results.push(write_load(
                pid,
                port,
                opts.clients,
                opts.keys,
                opts.seconds,
                || bgsave_loop(kind, port, pid, opts.seconds, stats),
            )?);
            wait_bgsave_done(&mut s.conn()?, Duration::from_secs(300))?;
        }
    }
    for (s, (results, stats)) in servers.iter().zip(busy) {
        put_load(t, s.kind, "BGSAVE:", &results)?;
        let stats = stats.into_inner().map_err(|_| "poisoned")?;
        if stats.failed || stats.reply_us.is_empty() {
            return Err(format!("{}: a BGSAVE failed", s.name()).into());
        }
        put_save_stats(t, s.kind, &stats);
    }
    Ok(())
}

// ---------------------------------------------------------------- phase 5: SAVE and restart

fn save_and_restart(s: &mut ServerProc, opts: &Opts, t: &mut Table) -> Result<()> {
    let kind = s.kind;
    let start = Instant::now();
    expect_ok(s.conn()?.cmd_str(&["SAVE"])?, "SAVE")?;
    t.put(kind, "SAVE time (s)", start.elapsed().as_secs_f64());
    let size = std::fs::metadata(s.dump_path())?.len();
    t.put(kind, "dump size (MB)", size as f64 / MB);

    if !opts.no_redis_benchmark {
        for p in [1u32, 16] {
            eprintln!("[{}] redis-benchmark suite -P {p}", s.name());
            for (name, rps) in redis_benchmark_suite(s.port, p)? {
                t.put(kind, &format!("redis-benchmark -P {p} {name} (req/s)"), rps);
            }
        }
    }

    eprintln!("[{}] restart to time the load", s.name());
    let load_time = s.restart()?;
    let expected = (opts.keys + 3 * opts.collections) as i64;
    let keys = dbsize(s)?;
    if keys != expected {
        return Err(format!(
            "{}: {keys} keys after restart, expected {expected}",
            s.name()
        )
        .into());
    }
    t.put(kind, "start-up load time (s)", load_time.as_secs_f64());
    Ok(())
}

fn main_dataset(opts: &Opts, tmp: &Path) -> Result<Table> {
    let mut t = Table::new(format!(
        "{} string keys of 100 bytes + {} lists, hashes and sets; {} clients, {} s per write phase",
        opts.keys, opts.collections, opts.clients, opts.seconds
    ));
    let mut servers = [
        ServerProc::start(Kind::Forkless, opts.port, &tmp.join("forkless"))?,
        ServerProc::start(Kind::Redis, opts.port + 1, &tmp.join("redis"))?,
    ];
    for s in &servers {
        load_main(s, opts, &mut t)?;
    }
    if opts.set_rounds > 0 {
        set_throughput(&servers, opts, &mut t)?;
    }
    if !opts.no_write_load {
        write_phases(&servers, opts, &mut t)?;
    }
    for s in &mut servers {
        save_and_restart(s, opts, &mut t)?;
    }
    Ok(t)
}

// ---------------------------------------------------------------- phase 6: small collections

/// `n` hashes `h:%09d` (fields `f1`..`f5`, 10-byte values) and `n` sets
/// `s:%09d` (5 distinct integers below 100000), one command each.
fn load_small_collections(port: u16, n: usize) -> Result<()> {
    let mut p = Pipeline::new(port)?;
    let mut rng = Rng(0x0bad_5eed_cafe_f00d);
    for i in 0..n {
        let key = format!("h:{i:09}");
        let values: Vec<Vec<u8>> = (0..5).map(|_| rng.letters(10)).collect();
        let mut args: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
        for (f, v) in ["f1", "f2", "f3", "f4", "f5"].iter().zip(&values) {
            args.push(f.as_bytes());
            args.push(v);
        }
        p.push(&args)?;
    }
    for i in 0..n {
        let key = format!("s:{i:09}");
        let mut members: Vec<u64> = Vec::with_capacity(5);
        while members.len() < 5 {
            let m = rng.next() % 100_000;
            if !members.contains(&m) {
                members.push(m);
            }
        }
        let members: Vec<String> = members.iter().map(u64::to_string).collect();
        let mut args: Vec<&[u8]> = vec![b"SADD", key.as_bytes()];
        args.extend(members.iter().map(|m| m.as_bytes()));
        p.push(&args)?;
    }
    p.flush()
}

fn used_memory(s: &ServerProc) -> Result<u64> {
    s.conn()?
        .info("memory")?
        .get_u64("used_memory")
        .ok_or_else(|| format!("{}: no used_memory in INFO memory", s.name()).into())
}

fn small_collections_on(kind: Kind, opts: &Opts, dir: &Path, t: &mut Table) -> Result<()> {
    let n = opts.small_collections;
    let s = ServerProc::start(kind, opts.port, dir)?;
    let (rss0, used0) = (s.rss(), used_memory(&s)?);
    let start = Instant::now();
    load_small_collections(s.port, n)?;
    eprintln!(
        "[{}] loaded {n} small hashes and {n} small sets in {:.1} s",
        s.name(),
        start.elapsed().as_secs_f64()
    );
    let (rss1, used1) = (s.rss(), used_memory(&s)?);
    let mut c = s.conn()?;
    let (h, set) = ("h:000000000", "s:000000000");
    if dbsize(&s)? != 2 * n as i64
        || c.cmd_int(&["HLEN", h])? != 5
        || c.cmd_int(&["SCARD", set])? != 5
    {
        return Err(format!("{}: small collections not loaded as expected", s.name()).into());
    }
    let per = |after: u64, before: u64| after.saturating_sub(before) as f64 / (2 * n) as f64;
    t.put(kind, "RSS of the empty server (MB)", rss0 as f64 / MB);
    t.put(kind, "RSS after load (MB)", rss1 as f64 / MB);
    t.put(kind, "used_memory after load (MB)", used1 as f64 / MB);
    t.put(kind, "RSS per collection (bytes)", per(rss1, rss0));
    t.put(
        kind,
        "used_memory per collection (bytes)",
        per(used1, used0),
    );
    t.put(
        kind,
        &format!("OBJECT ENCODING {h}"),
        c.cmd_text(&["OBJECT", "ENCODING", h])?,
    );
    t.put(
        kind,
        &format!("OBJECT ENCODING {set}"),
        c.cmd_text(&["OBJECT", "ENCODING", set])?,
    );
    Ok(())
}

fn small_collections(opts: &Opts, tmp: &Path) -> Result<Table> {
    let n = opts.small_collections;
    let mut t = Table::new(format!(
        "small collections: {n} hashes of 5 fields (10-byte values) + {n} sets of 5 integers, fresh servers"
    ));
    for kind in Kind::BOTH {
        let dir = tmp.join(format!("small-{}", kind.name()));
        small_collections_on(kind, opts, &dir, &mut t)?;
    }
    Ok(t)
}

// ---------------------------------------------------------------- main

fn main() -> std::process::ExitCode {
    let opts: Opts = argh::from_env();
    INCREMENTAL.store(opts.incremental, std::sync::atomic::Ordering::Relaxed);
    match run(&opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgsave_vs_redis: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(opts: &Opts) -> Result<()> {
    opts.pipelines()
        .map_err(|e| format!("--set-pipelines: {e}"))?;
    let tmp = tempfile::tempdir()?;
    let mut tables = Vec::new();
    if opts.keys > 0 {
        tables.push(main_dataset(opts, tmp.path())?);
    }
    if opts.small_collections > 0 {
        tables.push(small_collections(opts, tmp.path())?);
    }
    for t in &tables {
        t.print();
    }
    Ok(())
}
