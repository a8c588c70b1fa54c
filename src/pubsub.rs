//! Pub/sub delivery: the channel and pattern registry, each subscriber's message
//! queue, the output-buffer limit for slow subscribers, and keyspace notifications.
//!
//! The registry ([`PubSub`]) lives in the locked [`crate::state::State`], so
//! PUBLISH and the notifications a command emits are ordered with the commands
//! themselves. A subscribed client owns a [`ClientSubs`]: the receiving end of an
//! unbounded queue of encoded frames, which its connection selects on beside the
//! socket, so it gets messages while idle. Each message is encoded once per
//! protocol version per PUBLISH and shared (`Bytes`) by every receiver.
//!
//! The queue is unbounded in type but bounded in practice by the pub/sub
//! output-buffer limit: every subscriber counts the bytes waiting for its
//! connection, and one that holds more than the hard limit, or more than the soft
//! limit for longer than its grace period, is disconnected, as Redis does with
//! `client-output-buffer-limit pubsub 32mb 8mb 60`.
//!
//! Commands that do not use pub/sub never touch the registry: the only cost they
//! pay is one flag test in the command context's `notify` when they write.

pub mod notify;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::clients::ClientInfo;
use crate::reply::{Protocol, Reply};

/// Redis's default `client-output-buffer-limit pubsub 32mb 8mb 60`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Disconnect at once above this many queued bytes (0 = no limit).
    pub hard_bytes: usize,
    /// Disconnect after `soft_seconds` continuously above this (0 = no limit).
    pub soft_bytes: usize,
    pub soft_seconds: u64,
}

impl Default for OutputLimit {
    fn default() -> Self {
        OutputLimit {
            hard_bytes: 32 * 1024 * 1024,
            soft_bytes: 8 * 1024 * 1024,
            soft_seconds: 60,
        }
    }
}

impl OutputLimit {
    /// `client-output-buffer-limit` as CONFIG GET shows it: the normal and
    /// replica classes at Redis's defaults (forkless limits only pub/sub clients).
    pub fn to_config_text(&self) -> String {
        format!(
            "normal 0 0 0 slave 268435456 67108864 60 pubsub {} {} {}",
            self.hard_bytes, self.soft_bytes, self.soft_seconds
        )
    }

    /// Parses a CONFIG SET value (`<class> <hard> <soft> <seconds>` ...), with
    /// Redis's refusals; other classes may only be set to their defaults.
    pub fn parse_config_text(text: &str, current: OutputLimit) -> Result<OutputLimit, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.".into());
        }
        let mut out = current;
        for group in words.chunks(4) {
            let bad =
                || "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
            let num = |w: &str| {
                crate::params::parse_memory(w)
                    .filter(|n| *n >= 0)
                    .ok_or_else(bad)
            };
            let (hard, soft, secs) = (num(group[1])?, num(group[2])?, num(group[3])?);
            let class = group[0].to_ascii_lowercase();
            match class.as_str() {
                "pubsub" => {
                    out = OutputLimit {
                        hard_bytes: usize::try_from(hard).unwrap_or(usize::MAX),
                        soft_bytes: usize::try_from(soft).unwrap_or(usize::MAX),
                        soft_seconds: secs as u64,
                    }
                }
                "normal" if (hard, soft, secs) == (0, 0, 0) => {}
                "slave" | "replica" if (hard, soft, secs) == (268435456, 67108864, 60) => {}
                "normal" | "slave" | "replica" => {
                    return Err("forkless limits only the pubsub class".into())
                }
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".into(),
                    )
                }
            }
        }
        Ok(out)
    }
}

/// The delivery end of one subscribed client, shared by the registry entries of
/// every channel and pattern it listens to.
#[derive(Debug)]
pub struct Subscriber {
    pub client_id: u64,
    tx: mpsc::UnboundedSender<Bytes>,
    resp3: AtomicBool,
    /// Bytes queued and not yet taken by the connection.
    queued: AtomicUsize,
    /// When the queue went above the soft limit (Unix ms; 0 = it is below).
    soft_since_ms: AtomicI64,
    info: Arc<ClientInfo>,
    /// Woken when the output limit is broken, even in the middle of a write.
    overflow: tokio::sync::Notify,
}

impl Subscriber {
    fn proto(&self) -> Protocol {
        if self.resp3.load(Ordering::Relaxed) {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Queues one frame, or disconnects the client if that would break its
    /// output-buffer limit. Returns whether the frame was queued.
    fn deliver(&self, frame: Bytes, limit: &OutputLimit, now_ms: i64) -> bool {
        if self.info.is_killed() {
            return false;
        }
        let queued = self.queued.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        if self.over_limit(queued, limit, now_ms) {
            self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
            tracing::warn!(
                client = self.client_id,
                "client scheduled to be closed ASAP for overcoming of output buffer limits ({queued} bytes queued)"
            );
            self.info.kill();
            self.overflow.notify_one();
            return false;
        }
        self.tx.send(frame).is_ok()
    }

    fn over_limit(&self, queued: usize, limit: &OutputLimit, now_ms: i64) -> bool {
        if limit.hard_bytes > 0 && queued > limit.hard_bytes {
            return true;
        }
        if limit.soft_bytes == 0 || queued <= limit.soft_bytes {
            self.soft_since_ms.store(0, Ordering::Relaxed);
            return false;
        }
        let since = self.soft_since_ms.load(Ordering::Relaxed);
        if since == 0 {
            self.soft_since_ms.store(now_ms.max(1), Ordering::Relaxed);
            return false;
        }
        now_ms - since >= (limit.soft_seconds as i64) * 1000
    }
}

/// One client's subscriptions and its end of the message queue; owned by its
/// connection. Empty (and free) until the client first subscribes.
#[derive(Debug, Default)]
pub struct ClientSubs {
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    /// Shard channels (SSUBSCRIBE): a namespace of their own.
    pub shards: HashSet<Bytes>,
    handle: Option<Arc<Subscriber>>,
    rx: Option<mpsc::UnboundedReceiver<Bytes>>,
}

impl ClientSubs {
    /// Channel and pattern subscriptions (the count SUBSCRIBE and
    /// PSUBSCRIBE replies carry; shard channels are counted apart).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// In subscribed mode (RESP2 then allows only pub/sub commands): any
    /// subscription of the three kinds.
    pub fn is_subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty() || !self.shards.is_empty()
    }

    /// The delivery handle, created on first use.
    pub fn handle(&mut self, info: &Arc<ClientInfo>, proto: Protocol) -> Arc<Subscriber> {
        if let Some(h) = &self.handle {
            return h.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Arc::new(Subscriber {
            client_id: info.id,
            tx,
            resp3: AtomicBool::new(proto == Protocol::Resp3),
            queued: AtomicUsize::new(0),
            soft_since_ms: AtomicI64::new(0),
            info: info.clone(),
            overflow: tokio::sync::Notify::new(),
        });
        self.handle = Some(h.clone());
        self.rx = Some(rx);
        h
    }

    /// Queues a reply frame of the client's own (a subscribe confirmation),
    /// so several frames of one command go out in order before its last one.
    pub fn queue_own(&mut self, info: &Arc<ClientInfo>, proto: Protocol, reply: &Reply) {
        let h = self.handle(info, proto);
        let frame = reply.to_bytes(proto);
        h.queued.fetch_add(frame.len(), Ordering::Relaxed);
        let _ = h.tx.send(frame);
    }

    /// Moves queued frames into `out`, at most about `max` bytes; returns how
    /// many bytes were moved. Also keeps the handle's protocol in step with the
    /// client's (HELLO may switch it while subscribed).
    pub fn drain_into(&mut self, proto: Protocol, out: &mut BytesMut, max: usize) -> usize {
        let (Some(h), Some(rx)) = (&self.handle, &mut self.rx) else {
            return 0;
        };
        h.resp3.store(proto == Protocol::Resp3, Ordering::Relaxed);
        let mut moved = 0;
        while moved < max {
            let Ok(frame) = rx.try_recv() else { break };
            moved += frame.len();
            out.extend_from_slice(&frame);
        }
        h.queued.fetch_sub(moved, Ordering::Relaxed);
        moved
    }

    /// Waits for the next frame; never completes for a client that never subscribed.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Completes once the client broke its output-buffer limit.
    pub async fn overflowed(&self) {
        match &self.handle {
            Some(h) => h.overflow.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Takes back the byte count of a frame returned by [`ClientSubs::next_frame`].
    pub fn taken(&self, n: usize) {
        if let Some(h) = &self.handle {
            h.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// The registry of channels and patterns, inside the locked state.
#[derive(Debug, Default)]
pub struct PubSub {
    channels: HashMap<Bytes, HashMap<u64, Arc<Subscriber>>>,
    patterns: HashMap<Bytes, HashMap<u64, Arc<Subscriber>>>,
    shards: HashMap<Bytes, HashMap<u64, Arc<Subscriber>>>,
    /// `notify-keyspace-events` as flags (see [`notify`]); 0 = off.
    pub notify_flags: u32,
    pub limit: OutputLimit,
}

/// Which registry a subscription goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    /// A shard channel (SSUBSCRIBE/SPUBLISH). A standalone server is one
    /// shard, so these behave as channels in a namespace of their own.
    Shard,
}

impl PubSub {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, HashMap<u64, Arc<Subscriber>>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    pub fn add(&mut self, kind: Kind, name: &Bytes, sub: &Arc<Subscriber>) {
        self.map(kind)
            .entry(name.clone())
            .or_default()
            .insert(sub.client_id, sub.clone());
    }

    pub fn remove(&mut self, kind: Kind, name: &[u8], client_id: u64) {
        let map = self.map(kind);
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&client_id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Drops every subscription of a client that is going away.
    pub fn remove_client(&mut self, subs: &ClientSubs, client_id: u64) {
        for c in &subs.channels {
            self.remove(Kind::Channel, c, client_id);
        }
        for p in &subs.patterns {
            self.remove(Kind::Pattern, p, client_id);
        }
        for c in &subs.shards {
            self.remove(Kind::Shard, c, client_id);
        }
    }

    /// Sends `message` to the subscribers of the shard channel `channel`
    /// (patterns never match shard channels); returns how many received it.
    pub fn spublish(&self, channel: &Bytes, message: &Bytes, now_ms: i64) -> usize {
        let Some(subs) = self.shards.get(channel) else {
            return 0;
        };
        self.deliver_all(subs, now_ms, || {
            Reply::Push(vec![
                Reply::bulk_str("smessage"),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ])
        })
    }

    /// Queues the frame `build` makes (encoded once per protocol) to every
    /// subscriber in `subs`; returns how many took it.
    fn deliver_all(
        &self,
        subs: &HashMap<u64, Arc<Subscriber>>,
        now_ms: i64,
        build: impl Fn() -> Reply,
    ) -> usize {
        let mut frames = Frames::default();
        let mut receivers = 0;
        for s in subs.values() {
            let frame = frames.get(s.proto(), &build);
            receivers += s.deliver(frame, &self.limit, now_ms) as usize;
        }
        receivers
    }

    /// Sends `message` to the subscribers of `channel` and of every matching
    /// pattern; returns how many received it, as PUBLISH replies.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, now_ms: i64) -> usize {
        let mut receivers = 0;
        if let Some(subs) = self.channels.get(channel) {
            receivers += self.deliver_all(subs, now_ms, || {
                Reply::Push(vec![
                    Reply::bulk_str("message"),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ])
            });
        }
        for (pattern, subs) in &self.patterns {
            if !crate::glob::matches(pattern, channel) {
                continue;
            }
            // Each pattern encodes its own pmessage (the pattern is in the frame).
            receivers += self.deliver_all(subs, now_ms, || {
                Reply::Push(vec![
                    Reply::bulk_str("pmessage"),
                    Reply::Bulk(pattern.clone()),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ])
            });
        }
        receivers
    }

    /// Whether anybody listens at all; lets notifications skip building names.
    pub fn has_subscribers(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    fn registry(&self, kind: Kind) -> &HashMap<Bytes, HashMap<u64, Arc<Subscriber>>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        }
    }

    /// Active channels (or shard channels), optionally only those matching
    /// `pattern` (PUBSUB CHANNELS / SHARDCHANNELS).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.registry(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| crate::glob::matches(p, c)))
            .cloned()
            .collect()
    }

    /// Subscribers of exactly `name` (PUBSUB NUMSUB / SHARDNUMSUB; patterns
    /// not counted).
    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> usize {
        self.registry(kind).get(name).map_or(0, HashMap::len)
    }

    /// Names with at least one subscriber (INFO `pubsub_channels`,
    /// `pubsub_patterns`, `pubsubshard_channels`; PUBSUB NUMPAT).
    pub fn active(&self, kind: Kind) -> usize {
        self.registry(kind).len()
    }
}

/// One message encoded at most once per protocol version.
#[derive(Default)]
struct Frames {
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl Frames {
    fn get(&mut self, proto: Protocol, build: impl FnOnce() -> Reply) -> Bytes {
        let slot = match proto {
            Protocol::Resp2 => &mut self.resp2,
            Protocol::Resp3 => &mut self.resp3,
        };
        slot.get_or_insert_with(|| build().to_bytes(proto)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::ClientRegistry;

    fn subscriber(reg: &ClientRegistry, proto: Protocol) -> (ClientSubs, Arc<Subscriber>) {
        let info = reg.register("a".into(), "b".into());
        let mut subs = ClientSubs::default();
        let h = subs.handle(&info, proto);
        (subs, h)
    }

    #[test]
    fn publish_reaches_channels_and_patterns_once_encoded_per_protocol() {
        let reg = ClientRegistry::default();
        let mut ps = PubSub::default();
        let (mut a, ha) = subscriber(&reg, Protocol::Resp2);
        let (mut b, hb) = subscriber(&reg, Protocol::Resp3);
        ps.add(Kind::Channel, &Bytes::from("news"), &ha);
        ps.add(Kind::Channel, &Bytes::from("news"), &hb);
        ps.add(Kind::Pattern, &Bytes::from("n*"), &hb);
        let n = ps.publish(&Bytes::from("news"), &Bytes::from("hi"), 0);
        assert_eq!(n, 3);
        let mut out = BytesMut::new();
        a.drain_into(Protocol::Resp2, &mut out, usize::MAX);
        assert_eq!(
            &out[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        out.clear();
        b.drain_into(Protocol::Resp3, &mut out, usize::MAX);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(">3\r\n$7\r\nmessage"), "{text}");
        assert!(text.contains(">4\r\n$8\r\npmessage\r\n$2\r\nn*"), "{text}");
        assert_eq!(hb.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn config_text_round_trips() {
        let d = OutputLimit::default();
        assert_eq!(
            d.to_config_text(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        let l = OutputLimit::parse_config_text("pubsub 1mb 512kb 5", d).unwrap();
        assert_eq!(
            (l.hard_bytes, l.soft_bytes, l.soft_seconds),
            (1 << 20, 512 << 10, 5)
        );
        assert_eq!(
            OutputLimit::parse_config_text(&d.to_config_text(), l).unwrap(),
            d
        );
        assert!(OutputLimit::parse_config_text("pubsub 1mb 512kb", d).is_err());
        assert!(OutputLimit::parse_config_text("foo 1 1 1", d).is_err());
        assert!(OutputLimit::parse_config_text("pubsub x 1 1", d).is_err());
    }

    #[test]
    fn hard_limit_disconnects() {
        let reg = ClientRegistry::default();
        let mut ps = PubSub {
            limit: OutputLimit {
                hard_bytes: 1000,
                soft_bytes: 0,
                soft_seconds: 0,
            },
            ..PubSub::default()
        };
        let (_a, ha) = subscriber(&reg, Protocol::Resp2);
        ps.add(Kind::Channel, &Bytes::from("c"), &ha);
        let msg = Bytes::from(vec![b'x'; 100]);
        let delivered: usize = (0..20)
            .map(|_| ps.publish(&Bytes::from("c"), &msg, 0))
            .sum();
        assert!(delivered < 10, "{delivered}");
        assert!(ha.info.is_killed());
    }

    #[test]
    fn soft_limit_needs_its_grace_period() {
        let reg = ClientRegistry::default();
        let limit = OutputLimit {
            hard_bytes: 0,
            soft_bytes: 10,
            soft_seconds: 2,
        };
        let (_a, h) = subscriber(&reg, Protocol::Resp2);
        assert!(h.deliver(Bytes::from(vec![0u8; 20]), &limit, 1_000));
        assert!(h.deliver(Bytes::from(vec![0u8; 20]), &limit, 2_500));
        assert!(!h.deliver(Bytes::from(vec![0u8; 20]), &limit, 3_000));
        assert!(h.info.is_killed());
    }
}
