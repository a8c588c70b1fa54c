//! Keyspace events of the bitmap, HyperLogLog and SORT commands, in the
//! order and with the names redis-server 7.0 publishes them (checked against
//! it by hand): writes that change nothing publish nothing.

mod common;

use std::time::Duration;

use common::{q, Server};

#[test]
fn bitmap_hll_and_sort_events() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub_con = s.client();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let commands: &[&[&str]] = &[
        &["SETBIT", "b", "1", "1"],
        &["SETBIT", "b", "1", "1"],
        &["SETBIT", "b", "100", "0"],
        &["BITFIELD", "b", "INCRBY", "u8", "0", "1"],
        &["BITFIELD", "b", "GET", "u8", "0"],
        &[
            "BITFIELD", "b", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1000",
        ],
        &["BITFIELD", "b", "SET", "u8", "0", "65"],
        &["BITFIELD", "b", "SET", "u8", "200", "0"],
        &["BITOP", "NOT", "d", "b"],
        &["BITOP", "AND", "d", "nokey"],
        &["PFADD", "h", "a"],
        &["PFADD", "h", "a"],
        &["PFCOUNT", "h"],
        &["PFMERGE", "h2", "h"],
        &["PFDEBUG", "TODENSE", "h"],
        &["RPUSH", "l", "2", "1"],
        &["SORT", "l", "STORE", "s"],
        &["SORT", "nokey", "STORE", "s"],
    ];
    for cmd in commands {
        let _: redis::Value = q(&mut c, cmd);
    }
    let expected = [
        ("setbit", "b"),
        ("setbit", "b"),
        ("setbit", "b"),
        ("setbit", "b"),
        ("set", "d"),
        ("del", "d"),
        ("pfadd", "h"),
        ("pfadd", "h2"),
        ("rpush", "l"),
        ("sortstore", "s"),
        ("del", "s"),
    ];
    for (event, key) in expected {
        let m = pubsub.get_message().expect("an event");
        let got = (
            m.get_channel_name().trim_start_matches("__keyevent@0__:"),
            m.get_payload::<String>().unwrap(),
        );
        assert_eq!(got, (event, key.to_string()));
    }
    pubsub
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(pubsub.get_message().is_err(), "no further events");
}
