//! The command line, shaped like the reference's so existing compose files,
//! scripts and the conformance suite work unchanged:
//!
//! ```text
//! satchel serve [--http 127.0.0.1:8090] [--dir ./pb_data] [--encryptionEnv NAME] ...
//! satchel superuser upsert|create|update|delete|otp EMAIL [PASSWORD] --dir ...
//! satchel superuser ips [IP|CIDR ...] --dir ...
//! ```
//!
//! Parsing is separate from running so it can be tested without side effects.

use std::path::PathBuf;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Flags every command understands.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalFlags {
    pub dir: PathBuf,
    pub encryption_env: Option<String>,
    pub dev: bool,
    pub public_dir: PathBuf,
    pub index_fallback: bool,
    pub query_timeout_secs: u64,
}

impl Default for GlobalFlags {
    fn default() -> GlobalFlags {
        GlobalFlags {
            dir: PathBuf::from("./pb_data"),
            encryption_env: None,
            dev: false,
            public_dir: PathBuf::from("./pb_public"),
            index_fallback: true,
            query_timeout_secs: 30,
        }
    }
}

/// `serve` options.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeFlags {
    pub http: String,
    /// `*` or a list of allowed CORS origins.
    pub origins: Vec<String>,
    pub workers: usize,
    /// Open realtime streams in total.
    pub realtime_max_clients: usize,
    /// Open realtime streams per client address; 0 = no per-address cap.
    pub realtime_max_clients_per_ip: usize,
    /// Seconds of quiet before an SSE comment heartbeat; 0 = none (as the reference).
    pub realtime_heartbeat_secs: u64,
}

impl Default for ServeFlags {
    fn default() -> ServeFlags {
        let hub = crate::realtime::HubConfig::default();
        ServeFlags {
            http: "127.0.0.1:8090".into(),
            origins: vec!["*".into()],
            workers: default_workers(),
            realtime_max_clients: hub.max_clients,
            realtime_max_clients_per_ip: hub.max_clients_per_ip.unwrap_or(0),
            realtime_heartbeat_secs: hub.heartbeat.map(|h| h.as_secs()).unwrap_or(0),
        }
    }
}

impl ServeFlags {
    /// The realtime hub's configuration: the defaults with these flags applied.
    pub fn realtime_config(&self) -> crate::realtime::HubConfig {
        crate::realtime::HubConfig {
            max_clients: self.realtime_max_clients,
            max_clients_per_ip: Some(self.realtime_max_clients_per_ip).filter(|n| *n > 0),
            heartbeat: Some(self.realtime_heartbeat_secs)
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs),
            ..crate::realtime::HubConfig::default()
        }
    }
}

/// Two workers per core: enough to keep every core busy while some wait on
/// the writer, few enough that the hand-offs between tiny_http's connection
/// threads and the workers do not turn into context-switch churn (measured:
/// 4 workers on 2 cores served health about 40% faster than 8 or 16).
pub fn default_workers() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    (cores * 2).clamp(2, 64)
}

#[derive(Debug, Clone, PartialEq)]
pub enum SuperuserAction {
    Upsert {
        email: String,
        password: String,
    },
    Create {
        email: String,
        password: String,
    },
    Update {
        email: String,
        password: String,
    },
    Delete {
        email: String,
    },
    /// Prints a new one-time password of the superuser.
    Otp {
        email: String,
    },
    /// Sets `superuserIPs` (empty: clears it).
    Ips {
        ips: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(GlobalFlags, ServeFlags),
    Superuser(GlobalFlags, SuperuserAction),
    Help,
    Version,
}

/// A command-line mistake; printed with the usage, exit code 1.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub const USAGE: &str = "Satchel: a PocketBase-compatible backend in one small binary.

Usage:
  satchel serve [flags]                          start the web server
  satchel superuser upsert EMAIL PASSWORD        create or update a superuser
  satchel superuser create EMAIL PASSWORD        create a new superuser
  satchel superuser update EMAIL PASSWORD        change a superuser's password
  satchel superuser delete EMAIL                 delete a superuser
  satchel superuser otp EMAIL                    create a one-time password for a superuser
                                                 (needs OTP enabled for _superusers)
  satchel superuser ips [IP|CIDR ...]            only let superusers act from these
                                                 addresses; none clears the list
  satchel --help | --version

Flags:
  --dir PATH              data directory (default \"./pb_data\")
  --encryptionEnv NAME    env variable whose 32-byte value encrypts the app settings
  --dev                   verbose logging
  --publicDir PATH        static files to serve (default \"./pb_public\")
  --indexFallback BOOL    serve index.html for unknown paths (default true)
  --queryTimeout SECS     longest a read query may run (default 30)
  --http ADDR             serve: TCP address to listen on (default \"127.0.0.1:8090\")
  --origins LIST          serve: comma separated CORS origins (default \"*\")
  --workers N             serve: request worker threads (default 2 per core)
  --realtimeMaxClients N  serve: open realtime streams in total (default: what ulimit -n affords, 100..10000; beyond: 503)
  --realtimeMaxClientsPerIP N
                          serve: open realtime streams per client address (default 100, 0 = no cap)
  --realtimeHeartbeat SECS
                          serve: SSE comment after SECS of quiet, to notice dead clients (default 5, 0 = off)

Environment:
  POCKETBASE_ADMIN_EMAIL, POCKETBASE_ADMIN_PASSWORD   serve upserts this superuser at start
";

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut global = GlobalFlags::default();
    let mut serve = ServeFlags::default();
    let mut positional: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "-v" || arg == "--version" {
            return Ok(Command::Version);
        }
        let Some(flag) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-').filter(|f| f.len() > 1))
        else {
            positional.push(arg.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let value = |i: &mut usize| -> Result<String, UsageError> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            let v = args
                .get(*i)
                .cloned()
                .ok_or_else(|| UsageError(format!("flag --{name} needs a value")))?;
            *i += 1;
            Ok(v)
        };
        match name {
            "dir" => global.dir = PathBuf::from(value(&mut i)?),
            "encryptionEnv" => {
                global.encryption_env = Some(value(&mut i)?).filter(|v| !v.is_empty())
            }
            "publicDir" => global.public_dir = PathBuf::from(value(&mut i)?),
            "queryTimeout" => global.query_timeout_secs = parse_number(name, &value(&mut i)?)?,
            "http" => serve.http = value(&mut i)?,
            "origins" => {
                serve.origins = value(&mut i)?
                    .split(',')
                    .map(|o| o.trim().to_string())
                    .filter(|o| !o.is_empty())
                    .collect()
            }
            "workers" => {
                serve.workers = parse_number::<usize>(name, &value(&mut i)?)?.clamp(1, 1024)
            }
            "realtimeMaxClients" => {
                serve.realtime_max_clients = parse_number(name, &value(&mut i)?)?
            }
            "realtimeMaxClientsPerIP" => {
                serve.realtime_max_clients_per_ip = parse_number(name, &value(&mut i)?)?
            }
            "realtimeHeartbeat" => {
                serve.realtime_heartbeat_secs = parse_number(name, &value(&mut i)?)?
            }
            "dev" => global.dev = parse_bool(name, inline.as_deref())?,
            "indexFallback" => global.index_fallback = parse_bool(name, inline.as_deref())?,
            // Accepted for compatibility with the reference's command lines;
            // Satchel has no JS hooks or migrations runner.
            "automigrate" | "hooksWatch" => {
                parse_bool(name, inline.as_deref())?;
            }
            "migrationsDir" | "hooksDir" | "hooksPool" => {
                value(&mut i)?;
            }
            _ => return Err(UsageError(format!("unknown flag: --{name}"))),
        }
    }
    build_command(positional, global, serve)
}

fn build_command(
    positional: Vec<String>,
    global: GlobalFlags,
    serve: ServeFlags,
) -> Result<Command, UsageError> {
    let mut words = positional.into_iter();
    match words.next().as_deref() {
        None => Ok(Command::Help),
        Some("serve") => {
            if let Some(domain) = words.next() {
                return Err(UsageError(format!(
                    "automatic TLS for domains ({domain}) is not supported; put Satchel behind a TLS-terminating proxy and use --http"
                )));
            }
            Ok(Command::Serve(global, serve))
        }
        Some("superuser") => {
            let action = words.next().ok_or_else(|| {
                UsageError(
                    "superuser needs an action: upsert, create, update, delete, otp or ips".into(),
                )
            })?;
            let rest: Vec<String> = words.collect();
            let email_password = |rest: &[String]| -> Result<(String, String), UsageError> {
                match rest {
                    [email, password] => Ok((email.clone(), password.clone())),
                    _ => Err(UsageError(format!(
                        "superuser {action} needs EMAIL and PASSWORD"
                    ))),
                }
            };
            let action = match action.as_str() {
                "upsert" => email_password(&rest)
                    .map(|(email, password)| SuperuserAction::Upsert { email, password })?,
                "create" => email_password(&rest)
                    .map(|(email, password)| SuperuserAction::Create { email, password })?,
                "update" => email_password(&rest)
                    .map(|(email, password)| SuperuserAction::Update { email, password })?,
                "delete" => match rest.as_slice() {
                    [email] => SuperuserAction::Delete {
                        email: email.clone(),
                    },
                    _ => return Err(UsageError("superuser delete needs EMAIL".into())),
                },
                "otp" => match rest.as_slice() {
                    [email] => SuperuserAction::Otp {
                        email: email.clone(),
                    },
                    _ => return Err(UsageError("superuser otp needs EMAIL".into())),
                },
                "ips" => SuperuserAction::Ips { ips: rest },
                other => return Err(UsageError(format!("unknown superuser action: {other}"))),
            };
            Ok(Command::Superuser(global, action))
        }
        Some(other) => Err(UsageError(format!("unknown command: {other}"))),
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, UsageError> {
    text.parse()
        .map_err(|_| UsageError(format!("flag --{name} needs a number, got {text:?}")))
}

/// Boolean flags take no value (`--dev`) or an inline one (`--dev=false`).
fn parse_bool(name: &str, inline: Option<&str>) -> Result<bool, UsageError> {
    match inline {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(UsageError(format!(
            "flag --{name} takes true or false, got {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_the_compose_file_command() {
        let cmd = parse(&args(
            "serve --http=0.0.0.0:8090 --dir=/pb_data --encryptionEnv PB_ENCRYPTION_KEY",
        ))
        .unwrap();
        let Command::Serve(global, serve) = cmd else {
            panic!("not serve")
        };
        assert_eq!(serve.http, "0.0.0.0:8090");
        assert_eq!(global.dir, PathBuf::from("/pb_data"));
        assert_eq!(global.encryption_env.as_deref(), Some("PB_ENCRYPTION_KEY"));
    }

    #[test]
    fn parses_the_conformance_commands() {
        let cmd = parse(&args("superuser upsert a@b.co secret123 --dir /tmp/d")).unwrap();
        assert_eq!(
            cmd,
            Command::Superuser(
                GlobalFlags {
                    dir: PathBuf::from("/tmp/d"),
                    ..GlobalFlags::default()
                },
                SuperuserAction::Upsert {
                    email: "a@b.co".into(),
                    password: "secret123".into()
                }
            )
        );
        assert!(
            matches!(parse(&args("serve --dir d --http 127.0.0.1:9 --dev")), Ok(Command::Serve(g, _)) if g.dev)
        );
    }

    #[test]
    fn parses_superuser_otp_and_ips() {
        let superuser = |line: &str| match parse(&args(line)) {
            Ok(Command::Superuser(_, action)) => action,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            superuser("superuser otp a@b.co --dir d"),
            SuperuserAction::Otp {
                email: "a@b.co".into()
            }
        );
        assert_eq!(
            superuser("superuser ips 127.0.0.1 10.0.0.0/24"),
            SuperuserAction::Ips {
                ips: vec!["127.0.0.1".into(), "10.0.0.0/24".into()]
            }
        );
        assert_eq!(
            superuser("superuser ips --dir d"),
            SuperuserAction::Ips { ips: vec![] }
        );
        assert!(parse(&args("superuser otp")).is_err());
        assert!(parse(&args("superuser otp a@b.co b@b.co")).is_err());
    }

    #[test]
    fn realtime_flags_shape_the_hub() {
        let line =
            "serve --realtimeMaxClients 7 --realtimeMaxClientsPerIP=0 --realtimeHeartbeat 30";
        let Ok(Command::Serve(_, serve)) = parse(&args(line)) else {
            panic!("not serve")
        };
        let hub = serve.realtime_config();
        assert_eq!(hub.max_clients, 7);
        assert_eq!(hub.max_clients_per_ip, None);
        assert_eq!(hub.heartbeat, Some(std::time::Duration::from_secs(30)));
        let defaults = ServeFlags::default().realtime_config();
        assert_eq!(defaults.max_clients_per_ip, Some(100));
        assert_eq!(defaults.heartbeat, Some(std::time::Duration::from_secs(5)));
        assert!(parse(&args("serve --realtimeMaxClients many")).is_err());
    }

    #[test]
    fn refuses_bad_command_lines() {
        for line in [
            "serve --bogus",
            "serve --http",
            "superuser upsert only-email",
            "superuser nuke a@b.co",
            "frobnicate",
            "serve --workers lots",
            "serve --dev=maybe",
        ] {
            assert!(parse(&args(line)).is_err(), "{line}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&args("--help")).unwrap(), Command::Help);
        assert_eq!(parse(&args("serve -h")).unwrap(), Command::Help);
        assert_eq!(parse(&args("--version")).unwrap(), Command::Version);
        assert_eq!(parse(&[]).unwrap(), Command::Help);
    }
}
