//! The command line as redis-server reads it.
//!
//! `redis-server [config-file] [--name value ...]` takes any redis.conf
//! directive as an option, with as many values as follow it up to the next
//! `--`, so scripts written for Redis (`--maxmemory 100mb --maxmemory-policy
//! allkeys-lru`, `--save 900 1 300 10`) start forkless unchanged. The
//! directives argh knows by name keep their documented options; every other
//! one becomes an argh `--config "name value"` before argh parses the rest.
//! Help and version output are written here, so a closed pipe (`forkless
//! --help | head`) ends the program quietly instead of panicking.

use std::io::Write;

use argh::FromArgs;

use crate::config::Args;

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run the server or a subcommand with these arguments.
    Run(Box<Args>),
    /// Print this and exit with this code (help, version, a usage error).
    Exit { output: String, code: u8 },
}

/// Options argh parses itself that take one word; words after it are
/// positional (the configuration file, which argh also takes after options).
const SINGLE: [&str; 8] = [
    "port",
    "dir",
    "dbfilename",
    "databases",
    "maxclients",
    "loglevel",
    "requirepass",
    "protected-mode",
];

/// Options argh parses itself whose value may be several words.
const MULTI: [&str; 3] = ["save", "bind", "replicaof"];

/// The maintenance subcommands; their arguments go to argh untouched.
const SUBCOMMANDS: [&str; 3] = ["check-dump", "import-rdb", "export-rdb"];

/// Parses `argv` (program name first).
pub fn parse(argv: &[String]) -> Parsed {
    let program = argv.first().map_or("forkless", String::as_str);
    let rest = argv.get(1..).unwrap_or_default();
    if rest.iter().any(|a| a == "-v" || a == "--version") {
        return Parsed::Exit {
            output: format!(
                "forkless v={} (Redis {} compatible)\n",
                env!("CARGO_PKG_VERSION"),
                crate::config::REDIS_COMPAT_VERSION
            ),
            code: 0,
        };
    }
    let rewritten = if rest.iter().any(|a| SUBCOMMANDS.contains(&a.as_str())) {
        rest.to_vec()
    } else {
        redis_style(rest)
    };
    let words: Vec<&str> = rewritten.iter().map(String::as_str).collect();
    match Args::from_args(&[program], &words) {
        Ok(args) => Parsed::Run(Box::new(args)),
        Err(exit) => Parsed::Exit {
            output: exit.output,
            code: u8::from(exit.status.is_err()),
        },
    }
}

/// Rewrites Redis-style options into the form argh reads: a name argh knows
/// with its value, anything else as `--config "name values..."`.
fn redis_style(rest: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    // A configuration file comes first, as in Redis.
    if let Some(first) = rest.first() {
        if !first.starts_with("--") {
            out.push(first.clone());
            i = 1;
        }
    }
    while i < rest.len() {
        let arg = &rest[i];
        i += 1;
        let Some(name) = arg.strip_prefix("--") else {
            // A stray word argh reports as a usage error.
            out.push(arg.clone());
            continue;
        };
        let start = i;
        while i < rest.len() && !rest[i].starts_with("--") {
            i += 1;
        }
        let values = &rest[start..i];
        if name == "help" || name == "config" {
            out.push(arg.clone());
            out.extend(values.iter().cloned());
            continue;
        }
        let name = name.to_ascii_lowercase();
        if SINGLE.contains(&name.as_str()) {
            out.push(format!("--{name}"));
            out.push(values.first().cloned().unwrap_or_default());
            out.extend(values.iter().skip(1).cloned());
            continue;
        }
        let value = values.join(" ");
        if MULTI.contains(&name.as_str()) {
            out.push(format!("--{name}"));
            out.push(value);
        } else {
            out.push("--config".into());
            out.push(if value.is_empty() {
                name
            } else {
                format!("{name} {value}")
            });
        }
    }
    out
}

/// Writes help or version text; a reader that went away is not an error.
pub fn print(output: &str, code: u8) {
    let text = if output.ends_with('\n') {
        output.to_string()
    } else {
        format!("{output}\n")
    };
    if code == 0 {
        let _ = std::io::stdout().write_all(text.as_bytes());
    } else {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &[&str]) -> Args {
        let mut argv = vec!["forkless".to_string()];
        argv.extend(line.iter().map(|s| s.to_string()));
        match parse(&argv) {
            Parsed::Run(args) => *args,
            Parsed::Exit { output, code } => panic!("exit {code}: {output}"),
        }
    }

    #[test]
    fn any_directive_is_an_option_as_in_redis() {
        let args = run(&[
            "--port",
            "7000",
            "--maxmemory",
            "100mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ]);
        assert_eq!(args.port, Some(7000));
        assert_eq!(
            args.config,
            vec!["maxmemory 100mb", "maxmemory-policy allkeys-lru"]
        );
    }

    #[test]
    fn values_run_to_the_next_option() {
        let args = run(&[
            "redis.conf",
            "--save",
            "900",
            "1",
            "300",
            "10",
            "--hz",
            "20",
        ]);
        assert_eq!(args.config_file.as_deref(), Some("redis.conf".as_ref()));
        assert_eq!(args.save.as_deref(), Some("900 1 300 10"));
        assert_eq!(args.config, vec!["hz 20"]);
        // An empty value stays empty (no save points).
        let args = run(&["--save", "", "--appendonly", "no"]);
        assert_eq!(args.save.as_deref(), Some(""));
        assert_eq!(args.config, vec!["appendonly no"]);
    }

    #[test]
    fn the_documented_config_option_still_works() {
        let args = run(&["--config", "hz 20", "--SAVE", ""]);
        assert_eq!(args.config, vec!["hz 20"]);
        assert_eq!(args.save.as_deref(), Some(""));
        // A configuration file after a one-word option, as argh took it.
        let args = run(&[
            "--port",
            "0",
            "--dir",
            "/tmp",
            "a.conf",
            "--replicaof",
            "h",
            "1",
        ]);
        assert_eq!(args.dir.as_deref(), Some("/tmp"));
        assert_eq!(args.config_file.as_deref(), Some("a.conf".as_ref()));
        assert_eq!(args.replicaof.as_deref(), Some("h 1"));
    }

    #[test]
    fn subcommands_keep_their_own_arguments() {
        let args = run(&["check-dump", "dump.rdb"]);
        assert!(args.command.is_some());
    }

    #[test]
    fn help_and_version_exit_cleanly() {
        let argv = |a: &str| vec!["forkless".to_string(), a.to_string()];
        for flag in ["--help", "--version", "-v"] {
            match parse(&argv(flag)) {
                Parsed::Exit { output, code } => {
                    assert_eq!(code, 0, "{flag}");
                    assert!(output.contains("forkless"), "{flag}: {output}");
                }
                Parsed::Run(_) => panic!("{flag} ran the server"),
            }
        }
        match parse(&argv("stray")) {
            Parsed::Run(args) => assert!(args.config_file.is_some()),
            Parsed::Exit { .. } => panic!("a first word is the configuration file"),
        }
    }
}
