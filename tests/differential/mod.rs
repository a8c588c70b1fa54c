//! Differential testing support: the same commands go to a real redis-server
//! and to forkless over raw RESP, and every reply is compared by type and
//! value (or, per line, as a multiset, a full SCAN walk, a random pick's
//! properties, or an expected difference).
#![allow(dead_code)]

pub mod real;
pub mod resp;
pub mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use resp::{Conn, V};
use script::{Line, Mode, Step};

/// Connections to both servers, driven in lockstep.
pub struct Pair {
    pub real: Conn,
    pub ours: Conn,
    real_port: u16,
    our_port: u16,
    /// The protocol both connections speak.
    pub proto: u8,
    /// Commands whose replies were compared.
    pub compared: usize,
    /// Expected-difference tags seen to still differ.
    pub differs_seen: BTreeSet<String>,
    /// Second connections (redis-server, forkless), opened on first use.
    others: Option<(Conn, Conn)>,
}

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

fn arg(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

impl Pair {
    pub fn new(real_port: u16, our_port: u16) -> Pair {
        Pair {
            real: Conn::connect(real_port).expect("connect redis-server"),
            ours: Conn::connect(our_port).expect("connect forkless"),
            real_port,
            our_port,
            proto: 2,
            compared: 0,
            differs_seen: BTreeSet::new(),
            others: None,
        }
    }

    fn both(&mut self, args: &[Vec<u8>]) -> Result<(V, V), String> {
        let a = self
            .real
            .call(args)
            .map_err(|e| format!("redis-server: {e}"))?;
        let b = self.ours.call(args).map_err(|e| format!("forkless: {e}"))?;
        Ok((a, b))
    }

    /// Switches both connections to RESP `proto` with HELLO (replies compared by shape).
    pub fn set_protocol(&mut self, proto: u8) -> Result<(), String> {
        let args = vec![arg("HELLO"), proto.to_string().into_bytes()];
        let (a, b) = self.both(&args)?;
        if shape(&a) != shape(&b) {
            return Err(format!("HELLO {proto}: redis-server {a}, forkless {b}"));
        }
        self.proto = proto;
        Ok(())
    }

    /// Reconnects both (after QUIT), keeping the protocol.
    pub fn reconnect(&mut self) -> Result<(), String> {
        self.real = Conn::connect(self.real_port).map_err(|e| e.to_string())?;
        self.ours = Conn::connect(self.our_port).map_err(|e| e.to_string())?;
        self.others = None;
        if self.proto == 3 {
            self.set_protocol(3)?;
        }
        Ok(())
    }

    /// Empties every database on both servers and selects db 0.
    pub fn reset(&mut self) {
        if forkless::commands::lookup(b"flushall").is_some() {
            for c in [&mut self.real, &mut self.ours] {
                assert_eq!(c.cmd(&["FLUSHALL"]), V::Simple(b"OK".to_vec()));
            }
        } else {
            for db in 0..16 {
                for c in [&mut self.real, &mut self.ours] {
                    c.cmd(&["SELECT", &db.to_string()]);
                    let keys = c.cmd(&["KEYS", "*"]);
                    let keys: Vec<Vec<u8>> = keys
                        .items()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|k| k.bytes().map(<[u8]>::to_vec))
                        .collect();
                    for chunk in keys.chunks(500) {
                        let mut del = vec![arg("DEL")];
                        del.extend(chunk.iter().cloned());
                        c.call(&del).expect("DEL");
                    }
                }
            }
        }
        for c in [&mut self.real, &mut self.ours] {
            c.cmd(&["SELECT", "0"]);
        }
    }

    /// Runs one corpus line on both servers and compares the replies.
    pub fn run(&mut self, line: &Line) -> Result<(), String> {
        match &line.step {
            Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(())
            }
            Step::Command { mode, args } => self.exec(mode, args),
            Step::Send(args) => {
                self.compared += 1;
                self.real.send(args).map_err(|e| e.to_string())?;
                self.ours.send(args).map_err(|e| e.to_string())?;
                // Later lines must find the client blocked, not racing its command.
                let (real, ours) = self.others()?;
                wait_blocked(real);
                wait_blocked(ours);
                Ok(())
            }
            Step::Recv => {
                let a = self.real.read().map_err(|e| format!("redis-server: {e}"))?;
                let b = self.ours.read().map_err(|e| format!("forkless: {e}"))?;
                compare(&Mode::Exact, &a, &b).map(drop)
            }
            Step::Other { mode, args } => {
                self.compared += 1;
                let (real, ours) = self.others()?;
                let a = real.call(args).map_err(|e| format!("redis-server: {e}"))?;
                let b = ours.call(args).map_err(|e| format!("forkless: {e}"))?;
                compare(mode, &a, &b).map(drop)
            }
        }
        .map_err(|e| format!("{} `{}` [RESP{}]: {e}", line.at, line.text, self.proto))
    }

    /// The second connections, opened on first use.
    fn others(&mut self) -> Result<(&mut Conn, &mut Conn), String> {
        if self.others.is_none() {
            let real = Conn::connect(self.real_port).map_err(|e| e.to_string())?;
            let ours = Conn::connect(self.our_port).map_err(|e| e.to_string())?;
            self.others = Some((real, ours));
        }
        let (real, ours) = self.others.as_mut().expect("just opened");
        Ok((real, ours))
    }

    pub fn exec(&mut self, mode: &Mode, args: &[Vec<u8>]) -> Result<(), String> {
        let name = upper(&args[0]);
        self.compared += 1;
        let result = match mode {
            Mode::Scan => self.scan(args),
            Mode::Random => self.random(&name, args),
            _ => {
                let (a, b) = self.both(args)?;
                if name == "HELLO" && !a.is_error() {
                    if let Some(p) = args.get(1).and_then(|p| std::str::from_utf8(p).ok()) {
                        self.proto = p.parse().unwrap_or(self.proto);
                    }
                }
                compare(mode, &a, &b).map(|differs| {
                    if let (Mode::Differs(tag), true) = (mode, differs) {
                        self.differs_seen.insert(tag.clone());
                    }
                })
            }
        };
        if name == "QUIT" {
            self.reconnect()?;
        }
        result
    }

    /// A full SCAN/SSCAN/HSCAN walk on each server; the unions must match and
    /// forkless must return each element at most once.
    fn scan(&mut self, args: &[Vec<u8>]) -> Result<(), String> {
        let at = if upper(&args[0]) == "SCAN" { 1 } else { 2 };
        let pairs = upper(&args[0]) == "HSCAN";
        let a = walk(&mut self.real, args, at, pairs)?;
        let b = walk(&mut self.ours, args, at, pairs)?;
        match (a, b) {
            (Err(x), Err(y)) if x == y => Ok(()),
            (Ok(x), Ok(y)) => {
                let mut ours_once = BTreeSet::new();
                for e in &y {
                    if !ours_once.insert(e.clone()) {
                        return Err(format!("forkless returned {e:?} twice"));
                    }
                }
                let theirs: BTreeSet<_> = x.into_iter().collect();
                if theirs != ours_once {
                    let only_real: Vec<_> = theirs.difference(&ours_once).take(10).collect();
                    let only_ours: Vec<_> = ours_once.difference(&theirs).take(10).collect();
                    return Err(format!(
                        "scan unions differ: only redis-server {only_real:?}, only forkless {only_ours:?}"
                    ));
                }
                Ok(())
            }
            (x, y) => Err(format!("redis-server {x:?}, forkless {y:?}")),
        }
    }

    /// A random pick: both replies have the same shape and each satisfies the
    /// pick's properties against the contents before the command; SPOP's
    /// differing removals are then copied from redis-server to forkless.
    fn random(&mut self, name: &str, args: &[Vec<u8>]) -> Result<(), String> {
        let key = args.get(1).cloned().unwrap_or_default();
        let population = match name {
            "SPOP" | "SRANDMEMBER" => self.contents(&[arg("SMEMBERS"), key.clone()])?,
            "HRANDFIELD" => self.contents(&[arg("HGETALL"), key.clone()])?,
            "RANDOMKEY" => self.contents(&[arg("KEYS"), arg("*")])?,
            _ => return Err(format!("@random does not know {name}")),
        };
        let (a, b) = self.both(args)?;
        if a == b {
            return Ok(());
        }
        if a.is_error() || b.is_error() || shape(&a) != shape(&b) {
            return Err(format!("redis-server {a}, forkless {b}"));
        }
        for (who, v) in [("redis-server", &a), ("forkless", &b)] {
            check_pick(name, args, v, &population).map_err(|e| format!("{who} reply {v}: {e}"))?;
        }
        if name == "SPOP" {
            self.resync_set(&key)?;
        }
        Ok(())
    }

    /// The members (or field -> value, or keys) read from both servers, which
    /// must agree.
    fn contents(&mut self, args: &[Vec<u8>]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, String> {
        let (a, b) = self.both(args)?;
        let (a, b) = (flat_pairs_or_items(&a, args), flat_pairs_or_items(&b, args));
        if a != b {
            return Err(format!(
                "servers out of step before a random pick: {} holds {a:?} on redis-server, {b:?} on forkless",
                script::render(&Mode::Exact, args)
            ));
        }
        Ok(a)
    }

    /// Makes forkless's set at `key` equal redis-server's (members and
    /// expiry) by removing and adding only the members that differ, so that
    /// the set keeps the encoding its own history gave it (SPOP's survivors
    /// are compared by OBJECT ENCODING afterwards).
    fn resync_set(&mut self, key: &[u8]) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        let members = |c: &mut Conn| -> Result<BTreeSet<Vec<u8>>, String> {
            let reply = c.call(&[arg("SMEMBERS"), key.to_vec()]).map_err(io)?;
            Ok(reply
                .items()
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m.bytes().map(<[u8]>::to_vec))
                .collect())
        };
        let theirs = members(&mut self.real)?;
        let ours = members(&mut self.ours)?;
        let extra: Vec<Vec<u8>> = ours.difference(&theirs).cloned().collect();
        let missing: Vec<Vec<u8>> = theirs.difference(&ours).cloned().collect();
        for (cmd, list) in [("SREM", extra), ("SADD", missing)] {
            if !list.is_empty() {
                let mut args = vec![arg(cmd), key.to_vec()];
                args.extend(list);
                self.ours.call(&args).map_err(io)?;
            }
        }
        let when = self
            .real
            .call(&[arg("PEXPIRETIME"), key.to_vec()])
            .map_err(io)?;
        if let Some(t) = when.int().filter(|t| *t > 0) {
            self.ours
                .call(&[arg("PEXPIREAT"), key.to_vec(), t.to_string().into_bytes()])
                .map_err(io)?;
        }
        self.contents(&[arg("SMEMBERS"), key.to_vec()]).map(drop)
    }
}

/// Waits (up to 2 s) until INFO reports a blocked client.
fn wait_blocked(c: &mut Conn) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let info = c.cmd(&["INFO", "clients"]);
        let text = String::from_utf8_lossy(info.bytes().unwrap_or_default()).into_owned();
        let blocked = text
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u32>().ok());
        if blocked.is_none_or(|n| n > 0) {
            return; // blocked, or no INFO to tell
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Walks a scan to the end (bounded); Err(reply) for an error reply.
fn walk(
    c: &mut Conn,
    args: &[Vec<u8>],
    at: usize,
    pairs: bool,
) -> Result<Result<Vec<Vec<u8>>, V>, String> {
    let mut args = args.to_vec();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..1_000_000 {
        let reply = c.call(&args).map_err(|e| e.to_string())?;
        if reply.is_error() {
            return Ok(Err(reply));
        }
        let bad = || format!("not a scan reply: {reply}");
        let [cursor, items] = reply.items().ok_or_else(bad)? else {
            return Err(bad());
        };
        let (V::Bulk(cursor), Some(items)) = (cursor, items.items()) else {
            return Err(bad());
        };
        if pairs {
            for p in items.chunks(2) {
                out.push(
                    [
                        p[0].bytes().unwrap_or_default(),
                        b"=",
                        p.get(1).and_then(V::bytes).unwrap_or_default(),
                    ]
                    .concat(),
                );
            }
        } else {
            out.extend(items.iter().map(|i| i.bytes().unwrap_or_default().to_vec()));
        }
        if cursor == b"0" {
            return Ok(Ok(out));
        }
        if Instant::now() > deadline {
            return Err("scan did not finish in 20 s".into());
        }
        args[at] = cursor.clone();
    }
    Err("scan did not finish in 1e6 calls".into())
}

/// SMEMBERS/KEYS as member -> "", HGETALL as field -> value; errors as empty.
fn flat_pairs_or_items(v: &V, args: &[Vec<u8>]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let bytes = |x: &V| x.bytes().unwrap_or_default().to_vec();
    match v {
        V::Map(m) => m.iter().map(|(k, v)| (bytes(k), bytes(v))).collect(),
        _ if upper(&args[0]) == "HGETALL" => v
            .items()
            .unwrap_or_default()
            .chunks(2)
            .map(|p| (bytes(&p[0]), p.get(1).map(bytes).unwrap_or_default()))
            .collect(),
        _ => v
            .items()
            .unwrap_or_default()
            .iter()
            .map(|x| (bytes(x), Vec::new()))
            .collect(),
    }
}

/// Checks one random pick against the contents before it.
fn check_pick(
    name: &str,
    args: &[Vec<u8>],
    v: &V,
    population: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> Result<(), String> {
    let count: Option<i64> = args
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse().ok());
    let with_values = args.len() > 3;
    let member = |m: &V| -> Result<Vec<u8>, String> {
        let m = m.bytes().ok_or("not a string")?.to_vec();
        if population.contains_key(&m) {
            Ok(m)
        } else {
            Err(format!("{} is not in {population:?}", resp::quote(&m)))
        }
    };
    let Some(count) = count else {
        return member(v).map(drop);
    };
    let items = v.items().ok_or("not an array")?;
    let picks: Vec<Vec<u8>> = if with_values {
        // RESP2: flat field, value; RESP3: [field, value] pairs.
        let pairs: Vec<(&V, &V)> = if items.iter().all(|i| i.items().is_some()) {
            items
                .iter()
                .filter_map(|p| match p.items() {
                    Some([f, v]) => Some((f, v)),
                    _ => None,
                })
                .collect()
        } else {
            items
                .chunks(2)
                .filter(|p| p.len() == 2)
                .map(|p| (&p[0], &p[1]))
                .collect()
        };
        let mut fields = Vec::new();
        for (f, val) in pairs {
            let f = member(f)?;
            if population.get(&f).map(Vec::as_slice) != val.bytes() {
                return Err(format!("wrong value {val} for {}", resp::quote(&f)));
            }
            fields.push(f);
        }
        fields
    } else {
        items.iter().map(member).collect::<Result<_, _>>()?
    };
    let expected = if count >= 0 || name == "SPOP" {
        (count.unsigned_abs() as usize).min(population.len())
    } else {
        count.unsigned_abs() as usize
    };
    if picks.len() != expected {
        return Err(format!("{} picks, expected {expected}", picks.len()));
    }
    if count >= 0 && picks.iter().collect::<BTreeSet<_>>().len() != picks.len() {
        return Err("repeated picks for a positive count".into());
    }
    Ok(())
}

/// Types, lengths and map keys, with values blanked.
pub fn shape(v: &V) -> V {
    match v {
        V::Simple(_) => V::Simple(Vec::new()),
        V::Bulk(_) => V::Bulk(Vec::new()),
        V::Int(_) => V::Int(0),
        V::Double(_) => V::Double(Vec::new()),
        V::Verbatim(_) => V::Verbatim(Vec::new()),
        V::Array(x) => V::Array(x.iter().map(shape).collect()),
        V::Set(x) => V::Set(x.iter().map(shape).collect()),
        V::Push(x) => V::Push(x.iter().map(shape).collect()),
        V::Map(m) => V::Map(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        other => other.clone(),
    }
}

/// The reply with its top-level elements (or pairs) in sorted order; for a
/// `[cursor, [elements]]` scan page, the elements.
fn sorted(v: &V, pairs: bool) -> V {
    match v {
        // A SCAN-family page: the cursor exact, the elements as a multiset.
        V::Array(x) if matches!(x.as_slice(), [V::Bulk(_), V::Array(_)]) => {
            V::Array(vec![x[0].clone(), sorted(&x[1], pairs)])
        }
        V::Array(x) if pairs => {
            let mut chunks: Vec<Vec<V>> = x.chunks(2).map(<[V]>::to_vec).collect();
            chunks.sort();
            V::Array(chunks.concat())
        }
        V::Array(x) | V::Set(x) | V::Push(x) => {
            let mut x = x.clone();
            x.sort();
            match v {
                V::Array(_) => V::Array(x),
                V::Set(_) => V::Set(x),
                _ => V::Push(x),
            }
        }
        V::Map(m) => {
            let mut m = m.clone();
            m.sort();
            V::Map(m)
        }
        other => other.clone(),
    }
}

/// Non-negative integers within `n`, inside arrays and maps too (an
/// idle time in each row of XPENDING); all else equal.
fn approx(n: i64, a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Int(x), V::Int(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= n,
        (V::Array(x), V::Array(y)) | (V::Set(x), V::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| approx(n, a, b))
        }
        (V::Map(x), V::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && approx(n, va, vb))
        }
        _ => a == b,
    }
}

/// Compares two replies under `mode`; Ok(true) when an expected difference
/// showed.
pub fn compare(mode: &Mode, a: &V, b: &V) -> Result<bool, String> {
    let same = match mode {
        Mode::Exact | Mode::Scan | Mode::Random => a == b,
        Mode::Unordered => sorted(a, false) == sorted(b, false),
        Mode::Pairs => sorted(a, true) == sorted(b, true),
        Mode::Shape => shape(a) == shape(b),
        Mode::Approx(n) => approx(*n, a, b),
        Mode::Differs(tag) => {
            if a == b {
                return Err(format!(
                    "the documented difference `{tag}` is gone: both replied {a} (update README's Compatibility section and the corpus)"
                ));
            }
            eprintln!("expected difference `{tag}`: redis-server {a}, forkless {b}");
            return Ok(true);
        }
    };
    if same {
        Ok(false)
    } else {
        Err(format!("\n  redis-server: {a}\n  forkless:     {b}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> V {
        V::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn comparison_modes() {
        let ab = V::Array(vec![bulk("a"), bulk("b")]);
        let ba = V::Array(vec![bulk("b"), bulk("a")]);
        assert!(compare(&Mode::Exact, &ab, &ba).is_err());
        assert_eq!(compare(&Mode::Unordered, &ab, &ba), Ok(false));
        // Types count: a bulk is not a simple string, a null bulk not a null array.
        assert!(compare(&Mode::Exact, &bulk("OK"), &V::Simple(b"OK".to_vec())).is_err());
        assert!(compare(&Mode::Exact, &V::NullBulk, &V::NullArray).is_err());
        let flat = |v: &[&str]| V::Array(v.iter().map(|s| bulk(s)).collect());
        assert_eq!(
            compare(
                &Mode::Pairs,
                &flat(&["f", "1", "g", "2"]),
                &flat(&["g", "2", "f", "1"])
            ),
            Ok(false)
        );
        assert!(compare(
            &Mode::Pairs,
            &flat(&["f", "1", "g", "2"]),
            &flat(&["f", "2", "g", "1"])
        )
        .is_err());
        let page = |c: &str, v: &[&str]| V::Array(vec![bulk(c), flat(v)]);
        assert_eq!(
            compare(
                &Mode::Unordered,
                &page("0", &["a", "b"]),
                &page("0", &["b", "a"])
            ),
            Ok(false)
        );
        assert!(compare(&Mode::Unordered, &page("0", &["a"]), &page("5", &["a"])).is_err());
        assert_eq!(
            compare(&Mode::Approx(1), &V::Int(100), &V::Int(99)),
            Ok(false)
        );
        assert!(compare(&Mode::Approx(1000), &V::Int(-1), &V::Int(5)).is_err());
        assert_eq!(
            compare(&Mode::Differs("t".into()), &V::Int(1), &V::Int(2)),
            Ok(true)
        );
        assert!(compare(&Mode::Differs("t".into()), &V::Int(1), &V::Int(1)).is_err());
    }

    #[test]
    fn random_pick_properties() {
        let pop: BTreeMap<Vec<u8>, Vec<u8>> = [("a", "1"), ("b", "2"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let args =
            |w: &[&str]| -> Vec<Vec<u8>> { w.iter().map(|s| s.as_bytes().to_vec()).collect() };
        let arr = |v: &[&str]| V::Array(v.iter().map(|s| bulk(s)).collect());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s"]),
            &bulk("a"),
            &pop
        )
        .is_ok());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s"]),
            &bulk("z"),
            &pop
        )
        .is_err());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s", "2"]),
            &arr(&["a", "b"]),
            &pop
        )
        .is_ok());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s", "2"]),
            &arr(&["a", "a"]),
            &pop
        )
        .is_err());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s", "9"]),
            &arr(&["a", "b"]),
            &pop
        )
        .is_err());
        assert!(check_pick(
            "SRANDMEMBER",
            &args(&["SRANDMEMBER", "s", "-4"]),
            &arr(&["a", "a", "c", "a"]),
            &pop
        )
        .is_ok());
        let hr = args(&["HRANDFIELD", "h", "2", "WITHVALUES"]);
        assert!(check_pick("HRANDFIELD", &hr, &arr(&["a", "1", "c", "3"]), &pop).is_ok());
        assert!(check_pick("HRANDFIELD", &hr, &arr(&["a", "2", "c", "3"]), &pop).is_err());
        let nested = V::Array(vec![arr(&["a", "1"]), arr(&["b", "2"])]);
        assert!(check_pick("HRANDFIELD", &hr, &nested, &pop).is_ok());
    }
}
