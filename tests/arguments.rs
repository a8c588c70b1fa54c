//! Arguments are slices of a connection's read buffer: whatever a command
//! keeps (a stored value or member, a subscription, a watched key, a queued
//! transaction, a cached script) must be a copy, or a few kept bytes hold a
//! whole read buffer. Each test sends a large request and, in the same
//! buffer, a small one whose argument is kept, many times over, and checks
//! that `used_memory` grows by the kept bytes, not by the buffers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{bulk_cmd, info_field, Server};

/// The large request in front of each kept argument.
const PAD: usize = 256 * 1024;
/// Requests sent: were each to hold its buffer, that is ROUNDS x PAD (10 MB).
const ROUNDS: usize = 40;
/// Growth allowed: the connection's own buffers and the kept data.
const SLACK: u64 = 4 * 1024 * 1024;

/// Sends `input` and reads until the replies end with `suffix`.
fn send_and_wait(stream: &mut TcpStream, input: &[u8], suffix: &[u8]) {
    stream.write_all(input).unwrap();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !got.ends_with(suffix) {
        let n = stream.read(&mut chunk).expect("reply");
        assert!(n > 0, "connection closed; got {:?}", tail(&got));
        got.extend_from_slice(&chunk[..n]);
    }
}

fn tail(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200)..]).into_owned()
}

fn connect(s: &Server) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

fn used_memory(s: &Server) -> u64 {
    let mut c = s.client();
    info_field(&mut c, "memory", "used_memory").parse().unwrap()
}

/// Runs `ROUNDS` rounds of `pad` then `kept(i)` on one connection (after
/// `setup`, each answered `+OK`), each round's replies ending with
/// `suffix(i)`, and checks the memory growth.
fn assert_kept_arguments_are_copied(
    what: &str,
    setup: &[Vec<u8>],
    pad: impl Fn(usize) -> Vec<u8>,
    kept: impl Fn(usize) -> Vec<u8>,
    suffix: impl Fn(usize) -> Vec<u8>,
) {
    let s = Server::start();
    let mut stream = connect(&s);
    for cmd in setup {
        send_and_wait(&mut stream, cmd, b"+OK\r\n");
    }
    // One round first: the connection's buffer reaches its working size.
    let mut first = pad(0);
    first.extend_from_slice(&kept(0));
    send_and_wait(&mut stream, &first, &suffix(0));
    let before = used_memory(&s);
    for i in 1..=ROUNDS {
        let mut input = pad(i);
        input.extend_from_slice(&kept(i));
        send_and_wait(&mut stream, &input, &suffix(i));
    }
    let after = used_memory(&s);
    let grown = after.saturating_sub(before);
    assert!(
        grown < SLACK,
        "{what}: used_memory grew by {grown} bytes over {ROUNDS} rounds \
         (before {before}, after {after}): kept arguments hold read buffers"
    );
}

fn echo_pad(_: usize) -> Vec<u8> {
    bulk_cmd(&[b"ECHO", &vec![b'p'; PAD]])
}

fn ok(_: usize) -> Vec<u8> {
    b"+OK\r\n".to_vec()
}

#[test]
fn stored_strings_are_copied() {
    // Above the packed-record limit: the value is stored as a string of its own.
    let value = vec![b'v'; 300];
    assert_kept_arguments_are_copied(
        "SET",
        &[],
        echo_pad,
        |i| bulk_cmd(&[b"SET", format!("k{i}").as_bytes(), &value]),
        ok,
    );
}

#[test]
fn collection_members_are_copied() {
    let big = vec![b'm'; 100];
    type Round<'a> = (&'a str, Box<dyn Fn(usize) -> Vec<u8> + 'a>, &'a [u8]);
    let rounds: Vec<Round> = vec![
        (
            "HSET",
            Box::new(|i| bulk_cmd(&[b"HSET", b"h", format!("f{i}").as_bytes(), &big])),
            b":1\r\n",
        ),
        (
            "SADD",
            Box::new(|i| {
                bulk_cmd(&[
                    b"SADD",
                    b"s",
                    &[&big[..], format!("{i}").as_bytes()].concat(),
                ])
            }),
            b":1\r\n",
        ),
        (
            "ZADD",
            Box::new(|i| {
                let member = [&big[..], format!("{i}").as_bytes()].concat();
                bulk_cmd(&[b"ZADD", b"z", b"1", &member])
            }),
            b":1\r\n",
        ),
    ];
    for (what, kept, suffix) in rounds {
        assert_kept_arguments_are_copied(what, &[], echo_pad, kept, |_| suffix.to_vec());
    }
}

#[test]
fn subscriptions_are_copied() {
    // PING is allowed while subscribed, so it carries the large request.
    assert_kept_arguments_are_copied(
        "SUBSCRIBE",
        &[],
        |_| bulk_cmd(&[b"PING", &vec![b'p'; PAD]]),
        |i| bulk_cmd(&[b"SUBSCRIBE", format!("channel:{i}").as_bytes()]),
        |i| format!(":{}\r\n", i + 1).into_bytes(),
    );
}

#[test]
fn watched_keys_are_copied() {
    assert_kept_arguments_are_copied(
        "WATCH",
        &[],
        echo_pad,
        |i| bulk_cmd(&[b"WATCH", format!("watched:{i}").as_bytes()]),
        ok,
    );
}

#[test]
fn queued_transactions_are_copied() {
    // Inside MULTI every command is queued; an unknown one is refused, not
    // queued, so it carries the large request.
    assert_kept_arguments_are_copied(
        "MULTI queue",
        &[bulk_cmd(&[b"MULTI"])],
        |_| bulk_cmd(&[b"NOSUCHCOMMAND", &vec![b'p'; PAD]]),
        |i| bulk_cmd(&[b"SET", format!("k{i}").as_bytes(), b"v"]),
        |_| b"+QUEUED\r\n".to_vec(),
    );
}

#[test]
fn cached_scripts_are_copied() {
    assert_kept_arguments_are_copied(
        "SCRIPT LOAD",
        &[],
        echo_pad,
        |i| {
            let mut cmd = bulk_cmd(&[b"SCRIPT", b"LOAD", format!("return {i}").as_bytes()]);
            cmd.extend_from_slice(&bulk_cmd(&[b"ECHO", format!("end{i}").as_bytes()]));
            cmd
        },
        |i| format!("end{i}\r\n").into_bytes(),
    );
}
