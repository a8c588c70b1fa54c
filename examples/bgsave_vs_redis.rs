//! End-to-end comparison of forkless and a real `redis-server` on this machine, in
//! one run: the same data, the same load, the same measurements, and the ratio
//! forkless/Redis for every figure.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bgsave_vs_redis -- --keys 1000000
//! ```
//!
//! For each server it measures write latency (p50/p99/p99.9/max, hdrhistogram) and
//! throughput from 50 unpipelined connections without a save and during
//! back-to-back BGSAVEs, the BGSAVE reply time and the save's total time, the extra
//! memory a save costs (forkless: RSS peak over RSS before; Redis: the
//! copy-on-write size it reports), dump size, SAVE time, start-up load time, and
//! `redis-benchmark` throughput. Every loop is bounded; both servers are stopped
//! at the end, and the process exits non-zero if either failed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use hdrhistogram::Histogram;

/// Compare forkless with redis-server side by side.
#[derive(FromArgs)]
struct Opts {
    /// string keys of 100 random bytes to load (default 1000000)
    #[argh(option, default = "1_000_000")]
    keys: usize,
    /// small lists, hashes and sets to load, each (default 1000)
    #[argh(option, default = "1000")]
    collections: usize,
    /// seconds of write load per phase (default 8)
    #[argh(option, default = "8")]
    seconds: u64,
    /// client connections of the write load (default 50)
    #[argh(option, default = "50")]
    clients: usize,
    /// skip the redis-benchmark runs
    #[argh(switch)]
    no_redis_benchmark: bool,
    /// first port to use (two consecutive ports; default 17301)
    #[argh(option, default = "17301")]
    port: u16,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

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

    fn info_field(&mut self, section: &str, field: &str) -> Result<Option<String>> {
        let Resp::Bulk(Some(text)) = self.cmd_str(&["INFO", section])? else {
            return Err("INFO did not return a bulk string".into());
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        Ok(text.lines().find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        }))
    }
}

fn expect_ok(r: Resp, what: &str) -> Result<()> {
    match r {
        Resp::Error(e) => Err(format!("{what}: {e}").into()),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- servers

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Forkless,
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Forkless => "forkless",
            Kind::Redis => "redis",
        }
    }
}

struct ServerProc {
    kind: Kind,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn forkless_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/release/examples/bgsave_vs_redis -> target/release/forkless
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("forkless"))
        .ok_or("cannot locate the target directory")?;
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

impl ServerProc {
    fn start(kind: Kind, port: u16, dir: &Path) -> Result<ServerProc> {
        let mut cmd = match kind {
            Kind::Forkless => {
                let mut c = Command::new(forkless_binary()?);
                c.args(["--port", &port.to_string(), "--save", "", "--dir"])
                    .arg(dir);
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

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
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

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- workload

fn load_data(port: u16, keys: usize, collections: usize) -> Result<()> {
    let mut c = Conn::connect(port)?;
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rand_bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % 255) as u8 + 1
            })
            .collect()
    };
    const BATCH: usize = 1000;
    let mut buf = Vec::new();
    let mut pending = 0;
    let flush = |c: &mut Conn, buf: &mut Vec<u8>, pending: &mut usize| -> Result<()> {
        c.send(buf)?;
        for _ in 0..*pending {
            expect_ok(c.read()?, "load")?;
        }
        buf.clear();
        *pending = 0;
        Ok(())
    };
    for i in 0..keys {
        let key = format!("key:{i:012}");
        let value = rand_bytes(100);
        Conn::encode(&mut buf, &[b"SET", key.as_bytes(), &value]);
        pending += 1;
        if pending == BATCH {
            flush(&mut c, &mut buf, &mut pending)?;
        }
    }
    for i in 0..collections {
        let (l, h, s) = (format!("list:{i}"), format!("hash:{i}"), format!("set:{i}"));
        for j in 0..10 {
            let m = format!("member:{j}");
            Conn::encode(&mut buf, &[b"RPUSH", l.as_bytes(), m.as_bytes()]);
            Conn::encode(&mut buf, &[b"HSET", h.as_bytes(), m.as_bytes(), b"value"]);
            Conn::encode(&mut buf, &[b"SADD", s.as_bytes(), m.as_bytes()]);
            pending += 3;
        }
        if pending >= BATCH {
            flush(&mut c, &mut buf, &mut pending)?;
        }
    }
    flush(&mut c, &mut buf, &mut pending)
}

struct LoadResult {
    hist: Histogram<u64>,
    ops: u64,
    elapsed: Duration,
    errors: u64,
}

/// Runs `clients` unpipelined SET loops over the loaded keys for `seconds`.
fn write_load(
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
    let during_result = during();
    let remaining = Duration::from_secs(seconds).saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for t in threads {
        ops += t.join().map_err(|_| "load thread panicked")??;
    }
    let elapsed = started.elapsed();
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
    extra_mem: u64,
    last_status_ok: bool,
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
    let rss_before = rss_bytes(pid);
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let r = c.cmd_str(&["BGSAVE"])?;
        let reply_us = t0.elapsed().as_secs_f64() * 1e6;
        if let Resp::Error(e) = r {
            return Err(format!("BGSAVE: {e}").into());
        }
        let mut peak = 0;
        loop {
            peak = peak.max(rss_bytes(pid));
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
        let total = t0.elapsed().as_secs_f64();
        let ok = c
            .info_field("persistence", "rdb_last_bgsave_status")?
            .as_deref()
            == Some("ok");
        let extra = match kind {
            Kind::Forkless => peak.saturating_sub(rss_before),
            Kind::Redis => c
                .info_field("persistence", "rdb_last_cow_size")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        };
        let mut s = stats.lock().map_err(|_| "poisoned")?;
        s.reply_us.push(reply_us);
        s.total_s.push(total);
        s.extra_mem = s.extra_mem.max(extra);
        s.last_status_ok = ok;
    }
    Ok(())
}

fn redis_benchmark(port: u16, pipeline: u32) -> Result<Vec<(String, f64)>> {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "100000",
            "-c",
            "50",
        ])
        .args([
            "-P",
            &pipeline.to_string(),
            "-t",
            "set,get,incr,lpush,rpush,lpop,sadd,hset,lrange_100",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    if text.contains("ERR") {
        return Err(format!("redis-benchmark saw errors:\n{text}").into());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(": ")?;
            let rps: f64 = rest.split_whitespace().next()?.parse().ok()?;
            (!name.contains('(')).then(|| (name.trim().to_string(), rps))
        })
        .collect())
}

// ---------------------------------------------------------------- report

struct Figures {
    rows: Vec<(String, f64)>,
}

impl Figures {
    fn put(&mut self, name: &str, v: f64) {
        self.rows.push((name.to_string(), v));
    }
}

fn percentiles(f: &mut Figures, prefix: &str, r: &LoadResult) {
    let ms = |us: u64| us as f64 / 1000.0;
    f.put(
        &format!("{prefix} throughput (req/s)"),
        r.ops as f64 / r.elapsed.as_secs_f64(),
    );
    f.put(
        &format!("{prefix} p50 (ms)"),
        ms(r.hist.value_at_quantile(0.50)),
    );
    f.put(
        &format!("{prefix} p99 (ms)"),
        ms(r.hist.value_at_quantile(0.99)),
    );
    f.put(
        &format!("{prefix} p99.9 (ms)"),
        ms(r.hist.value_at_quantile(0.999)),
    );
    f.put(&format!("{prefix} max (ms)"), ms(r.hist.max()));
    f.put(&format!("{prefix} error replies"), r.errors as f64);
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn measure(kind: Kind, opts: &Opts, port: u16, dir: &Path) -> Result<Figures> {
    let mut f = Figures { rows: Vec::new() };
    eprintln!("[{}] starting on port {port}", kind.name());
    let mut server = ServerProc::start(kind, port, dir)?;
    let t = Instant::now();
    load_data(port, opts.keys, opts.collections)?;
    eprintln!(
        "[{}] loaded in {:.1} s",
        kind.name(),
        t.elapsed().as_secs_f64()
    );
    let rss_loaded = rss_bytes(server.pid());
    f.put("RSS after load (MB)", rss_loaded as f64 / 1e6);

    eprintln!("[{}] write load without a save", kind.name());
    let idle = write_load(port, opts.clients, opts.keys, opts.seconds, || Ok(()))?;
    percentiles(&mut f, "no save:", &idle);

    eprintln!("[{}] write load with back-to-back BGSAVEs", kind.name());
    let stats = Mutex::new(SaveStats::default());
    let pid = server.pid();
    let busy = write_load(port, opts.clients, opts.keys, opts.seconds, || {
        bgsave_loop(kind, port, pid, opts.seconds, &stats)
    })?;
    let mut c = Conn::connect(port)?;
    wait_bgsave_done(&mut c, Duration::from_secs(300))?;
    percentiles(&mut f, "BGSAVE:", &busy);
    let stats = stats.into_inner().map_err(|_| "poisoned")?;
    if !stats.last_status_ok {
        return Err(format!("{}: a BGSAVE failed", kind.name()).into());
    }
    f.put("BGSAVEs during load", stats.reply_us.len() as f64);
    f.put("BGSAVE reply median (ms)", median(&stats.reply_us) / 1000.0);
    f.put(
        "BGSAVE reply max (ms)",
        stats.reply_us.iter().cloned().fold(0.0, f64::max) / 1000.0,
    );
    f.put("BGSAVE total median (s)", median(&stats.total_s));
    f.put(
        "extra memory during save (MB)",
        stats.extra_mem as f64 / 1e6,
    );

    let t = Instant::now();
    expect_ok(c.cmd_str(&["SAVE"])?, "SAVE")?;
    f.put("SAVE time (s)", t.elapsed().as_secs_f64());
    let size = std::fs::metadata(server.dump_path())?.len();
    f.put("dump size (MB)", size as f64 / 1e6);

    if !opts.no_redis_benchmark {
        for p in [1u32, 16] {
            eprintln!("[{}] redis-benchmark -P {p}", kind.name());
            for (name, rps) in redis_benchmark(port, p)? {
                f.put(&format!("redis-benchmark -P {p} {name} (req/s)"), rps);
            }
        }
    }

    eprintln!("[{}] restart to time the load", kind.name());
    server.kill();
    let t = Instant::now();
    let mut fresh = ServerProc::start(kind, port, dir)?;
    let load_time = t.elapsed();
    let mut c = Conn::connect(port)?;
    let dbsize = match c.cmd_str(&["DBSIZE"])? {
        Resp::Int(n) => n,
        other => return Err(format!("DBSIZE: {other:?}").into()),
    };
    let expected = (opts.keys + 3 * opts.collections) as i64;
    if dbsize != expected {
        return Err(format!(
            "{}: {dbsize} keys after restart, expected {expected}",
            kind.name()
        )
        .into());
    }
    f.put("start-up load time (s)", load_time.as_secs_f64());
    fresh.kill();
    Ok(f)
}

fn main() -> std::process::ExitCode {
    let opts: Opts = argh::from_env();
    match run(&opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgsave_vs_redis: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(opts: &Opts) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (fdir, rdir) = (tmp.path().join("forkless"), tmp.path().join("redis"));
    std::fs::create_dir_all(&fdir)?;
    std::fs::create_dir_all(&rdir)?;
    let forkless = measure(Kind::Forkless, opts, opts.port, &fdir)?;
    let redis = measure(Kind::Redis, opts, opts.port + 1, &rdir)?;

    println!(
        "\n{} string keys of 100 bytes + {} lists, hashes and sets; {} clients, {} s per phase\n",
        opts.keys, opts.collections, opts.clients, opts.seconds
    );
    println!("| figure | forkless | redis | forkless/redis |");
    println!("|---|---:|---:|---:|");
    for (name, fv) in &forkless.rows {
        let rv = redis.rows.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let (r, ratio) = match rv {
            Some(rv) => (
                format!("{rv:.3}"),
                if rv != 0.0 {
                    format!("{:.3}", fv / rv)
                } else {
                    "-".into()
                },
            ),
            None => ("-".into(), "-".into()),
        };
        println!("| {name} | {fv:.3} | {r} | {ratio} |");
    }
    Ok(())
}
