//! Whole-binary tests of the connection commands and RESP handling.

mod common;

use common::Server;

#[test]
fn ping_echo_select_hello() {
    let s = Server::start();
    let mut c = s.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let echo: Vec<u8> = redis::cmd("ECHO")
        .arg(&b"a\r\n\0b"[..])
        .query(&mut c)
        .unwrap();
    assert_eq!(echo, b"a\r\n\0b");
    let err = redis::cmd("SELECT")
        .arg(16)
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(err.detail(), Some("DB index is out of range"));
    let err = redis::cmd("NOSUCH")
        .arg("x")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown command 'NOSUCH'"),
        "{err}"
    );

    let mut c3 = s.client_resp3();
    let pong: String = redis::cmd("PING").query(&mut c3).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(s.cli(&["ECHO", "hi"]).trim(), "hi");
}
