//! Access control: the `requirepass` password check (constant time), who must
//! authenticate, and protected mode (remote clients refused while no password
//! is set). Kept apart from the connection loop so the rules are testable alone.

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// Sent before a command other than AUTH/HELLO/QUIT/RESET on a connection that
/// has not authenticated.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// A wrong password, or a user other than `default`.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// `AUTH <password>` while no password is configured.
pub const AUTH_WITHOUT_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// HELLO without its AUTH option on a connection that must authenticate first.
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// Redis 7.0's reply to a non-loopback client in protected mode, sent before
/// the connection is closed.
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Whether a new connection starts authenticated: only when no password is set
/// (as in Redis, a password set later does not log out existing clients).
pub fn starts_authenticated(config: &Config) -> bool {
    config.requirepass.is_empty()
}

/// Whether protected mode refuses a client connecting from `peer`.
pub fn refuses(config: &Config, peer: &SocketAddr) -> bool {
    config.protected_mode && config.requirepass.is_empty() && !is_loopback(&peer.ip())
}

/// Loopback, including IPv4 loopback mapped into IPv6 (`::ffff:127.0.0.1`).
pub fn is_loopback(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Checks `user`/`password` against the configuration. Only the `default` user
/// exists; with no password configured it accepts any password.
pub fn check_credentials(config: &Config, user: &[u8], password: &[u8]) -> bool {
    if user != b"default" {
        return false;
    }
    config.requirepass.is_empty() || constant_time_eq(config.requirepass.as_bytes(), password)
}

/// Compares in time that depends only on the lengths, never on where the
/// first difference is, so a client cannot guess the password byte by byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..longest {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as u64;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pass(pass: &str) -> Config {
        Config {
            requirepass: pass.to_string(),
            ..Config::default()
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret\0"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn only_the_default_user_authenticates() {
        let c = with_pass("pw");
        assert!(check_credentials(&c, b"default", b"pw"));
        assert!(!check_credentials(&c, b"default", b"px"));
        assert!(!check_credentials(&c, b"bob", b"pw"));
        let open = with_pass("");
        assert!(check_credentials(&open, b"default", b"anything"));
        assert!(!check_credentials(&open, b"bob", b"anything"));
    }

    #[test]
    fn protected_mode_refuses_only_remote_clients_without_password() {
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let local6: SocketAddr = "[::1]:5000".parse().unwrap();
        let open = with_pass("");
        assert!(refuses(&open, &remote));
        assert!(!refuses(&open, &local));
        assert!(!refuses(&open, &mapped));
        assert!(!refuses(&open, &local6));
        assert!(!refuses(&with_pass("pw"), &remote));
        let mut unprotected = with_pass("");
        unprotected.protected_mode = false;
        assert!(!refuses(&unprotected, &remote));
    }

    #[test]
    fn denied_text_is_one_resp_error_line() {
        assert!(PROTECTED_MODE_DENIED.starts_with("-DENIED "));
        assert_eq!(PROTECTED_MODE_DENIED.matches("\r\n").count(), 1);
        assert!(PROTECTED_MODE_DENIED.ends_with("\r\n"));
    }
}
