//! Starts a real `redis-server` (no persistence, loopback only, a free port)
//! to serve as the reference in differential tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::resp::Conn;

/// A running redis-server, killed on drop.
pub struct RealRedis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RealRedis {
    /// None when redis-server is not installed.
    pub fn start() -> Option<RealRedis> {
        let dir = tempfile::tempdir().ok()?;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut r = RealRedis {
                child,
                port,
                _dir: tempfile::tempdir().ok()?,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(mut c) = Conn::connect(port) {
                    if c.call(&[b"PING".to_vec()]).is_ok() {
                        return Some(r);
                    }
                }
                if let Ok(Some(_)) = r.child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        None
    }

    pub fn conn(&self) -> Conn {
        Conn::connect(self.port).expect("connect to redis-server")
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
