//! PUBLISH fan-out throughput of forkless against a real `redis-server`, in one
//! run: 1, 10 and 100 subscribers on one channel, one pipelined publisher, and
//! messages delivered per second for each server with the ratio forkless/Redis.
//!
//! ```sh
//! cargo build --release --bin forkless --example pubsub_fanout
//! ./target/release/examples/pubsub_fanout
//! ```
//!
//! Each case publishes `deliveries / subscribers` messages of `--size` bytes, so
//! every case delivers the same number of messages in total. A subscriber counts
//! bytes (every message frame has the same length) and the time of a case runs
//! from the first PUBLISH until the last subscriber has every message. Message
//! counts are bounded and chosen so that even an unread queue stays below the
//! 32 MB pub/sub output-buffer limit of both servers. Both servers listen on
//! loopback only and are stopped at the end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use argh::FromArgs;

#[path = "support/mod.rs"]
mod support;
use support::{forkless_binary, Result};

/// Compare PUBLISH fan-out of forkless and redis-server.
#[derive(FromArgs)]
struct Opts {
    /// messages delivered per case, over all subscribers (default 400000)
    #[argh(option, default = "400_000")]
    deliveries: usize,
    /// payload bytes per message (default 32)
    #[argh(option, default = "32")]
    size: usize,
    /// PUBLISH commands per pipelined batch (default 64)
    #[argh(option, default = "64")]
    batch: usize,
    /// first port to use (two consecutive ports; default 17401)
    #[argh(option, default = "17401")]
    port: u16,
}

const CHANNEL: &str = "fanout";
const FANOUTS: [usize; 3] = [1, 10, 100];

fn main() {
    let opts: Opts = argh::from_env();
    match run(&opts) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("pubsub_fanout: {e}");
            std::process::exit(1);
        }
    }
}

fn run(opts: &Opts) -> Result<()> {
    let bin = forkless_binary()?;
    let dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    for (name, port) in [("forkless", opts.port), ("redis", opts.port + 1)] {
        let mut server = start(name, &bin, port, dir.path())?;
        let outcome = FANOUTS
            .iter()
            .map(|&n| measure(port, n, opts))
            .collect::<Result<Vec<f64>>>();
        stop(&mut server, port);
        results.push((name, outcome?));
    }
    println!(
        "PUBLISH fan-out, {} deliveries per case, {}-byte payloads, batches of {}",
        opts.deliveries, opts.size, opts.batch
    );
    println!(
        "{:>11} | {:>16} | {:>16} | {:>8}",
        "subscribers", "forkless msg/s", "redis msg/s", "ratio"
    );
    for (i, n) in FANOUTS.iter().enumerate() {
        let f = results[0].1[i];
        let r = results[1].1[i];
        println!("{n:>11} | {f:>16.0} | {r:>16.0} | {:>8.2}", f / r);
    }
    Ok(())
}

fn start(name: &str, bin: &Path, port: u16, dir: &Path) -> Result<Child> {
    let port_s = port.to_string();
    let child = if name == "forkless" {
        Command::new(bin)
            .args(["--port", &port_s, "--save", "", "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?
    } else {
        Command::new("redis-server")
            .args(["--port", &port_s, "--save", "", "--bind", "127.0.0.1"])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"PING\r\n")?;
            let mut buf = [0u8; 7];
            if s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                return Ok(child);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{name} did not start on port {port}").into())
}

fn stop(child: &mut Child, port: u16) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The RESP2 frame of one message on [`CHANNEL`] with a `size`-byte payload.
fn frame_len(size: usize) -> usize {
    let head = format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{CHANNEL}\r\n${size}\r\n",
        CHANNEL.len()
    );
    head.len() + size + 2
}

/// Runs one case; returns messages delivered per second.
fn measure(port: u16, subscribers: usize, opts: &Opts) -> Result<f64> {
    let messages = (opts.deliveries / subscribers).max(1);
    let expect = messages * frame_len(opts.size);
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let handles: Vec<_> = (0..subscribers)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || -> Result<Instant> {
                let mut s = TcpStream::connect(("127.0.0.1", port))?;
                s.set_read_timeout(Some(Duration::from_secs(120)))?;
                s.write_all(format!("SUBSCRIBE {CHANNEL}\r\n").as_bytes())?;
                let confirm = format!(
                    "*3\r\n$9\r\nsubscribe\r\n${}\r\n{CHANNEL}\r\n:1\r\n",
                    CHANNEL.len()
                );
                let mut buf = vec![0u8; confirm.len()];
                s.read_exact(&mut buf)?;
                ready.wait();
                let mut got = 0usize;
                let mut chunk = vec![0u8; 256 * 1024];
                while got < expect {
                    let n = s.read(&mut chunk)?;
                    if n == 0 {
                        return Err(format!("disconnected after {got} of {expect} bytes").into());
                    }
                    got += n;
                }
                Ok(Instant::now())
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    publish(port, messages, opts)?;
    let mut last = started;
    for h in handles {
        let done = h.join().map_err(|_| "subscriber thread panicked")??;
        last = last.max(done);
    }
    let secs = last.duration_since(started).as_secs_f64();
    Ok((messages * subscribers) as f64 / secs)
}

fn publish(port: u16, messages: usize, opts: &Opts) -> Result<()> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut writer = s.try_clone()?;
    let mut reader = BufReader::new(s);
    let payload = "x".repeat(opts.size);
    let one = format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{CHANNEL}\r\n${}\r\n{payload}\r\n",
        CHANNEL.len(),
        opts.size
    );
    let mut sent = 0;
    let mut line = String::new();
    while sent < messages {
        let n = opts.batch.min(messages - sent);
        writer.write_all(one.repeat(n).as_bytes())?;
        for _ in 0..n {
            line.clear();
            reader.read_line(&mut line)?;
            if !line.starts_with(':') {
                return Err(format!("unexpected PUBLISH reply {line:?}").into());
            }
        }
        sent += n;
    }
    Ok(())
}
