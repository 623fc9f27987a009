//! Runs a parsed command: `serve` (the server until SIGTERM/SIGINT) and the
//! `superuser` commands. Returns the process exit code.

use crate::auth::superusers;
use crate::boot;
use crate::cli::{self, Command, GlobalFlags, ServeFlags, SuperuserAction};
use crate::http::server::RunningServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entry point of the binary; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match cli::parse(args) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            0
        }
        Ok(Command::Version) => {
            println!("satchel version {}", cli::VERSION);
            0
        }
        Ok(Command::Serve(global, serve)) => report(run_serve(&global, &serve)),
        Ok(Command::Superuser(global, action)) => report(run_superuser(&global, action)),
        Err(e) => {
            eprintln!("Error: {e}\n\n{}", cli::USAGE);
            1
        }
    }
}

fn report(result: Result<(), String>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            log::error!("{e}");
            eprintln!("Error: {e}");
            1
        }
    }
}

/// Logs go to stderr and to `logs/satchel.log` in the data dir.
fn init_logging(global: &GlobalFlags) {
    use simplelog::{CombinedLogger, ConfigBuilder, LevelFilter, SharedLogger, WriteLogger};
    let level = if global.dev {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let config = ConfigBuilder::new().add_filter_allow_str("satchel").build();
    let mut loggers: Vec<Box<dyn SharedLogger>> =
        vec![WriteLogger::new(level, config.clone(), std::io::stderr())];
    let _ = std::fs::create_dir_all(global.dir.join("logs"));
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(global.dir.join("logs").join("satchel.log"))
    {
        Ok(file) => loggers.push(WriteLogger::new(level, config, file)),
        Err(e) => eprintln!("warning: cannot open the log file: {e}"),
    }
    let _ = CombinedLogger::init(loggers);
}

fn run_serve(global: &GlobalFlags, serve: &ServeFlags) -> Result<(), String> {
    init_logging(global);
    let mut booted = boot::open(global, serve.origins.clone())?;
    booted.config.realtime = serve.realtime_config();
    if let (Ok(email), Ok(password)) = (
        std::env::var("POCKETBASE_ADMIN_EMAIL"),
        std::env::var("POCKETBASE_ADMIN_PASSWORD"),
    ) {
        if !email.is_empty() && !password.is_empty() {
            superusers::upsert(&booted.writer, &email, &password).map_err(|e| {
                format!("cannot create the superuser from POCKETBASE_ADMIN_EMAIL: {e}")
            })?;
            log::info!("superuser {email} is ready");
        }
    }
    let boot::Started {
        app,
        writer_thread,
        log_thread,
    } = boot::into_app(booted)?;
    crate::security::password::prepare_dummy();
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let server = RunningServer::start(app.clone(), &serve.http, serve.workers)?;
    print_banner(&server.local_addr);
    let mut signals = signals;
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal} received, shutting down");
    }
    server.shutdown();
    let dispatcher = app.realtime.take_dispatcher();
    if release_app(app) {
        // Both threads drain their queues once the app is gone.
        let _ = writer_thread.join();
        let _ = log_thread.join();
        // It stops once the writer's last job has dropped its publisher.
        if let Some(dispatcher) = dispatcher {
            wait_for_dispatcher(dispatcher, Duration::from_secs(5));
        }
        if let Err(e) = crate::store::fold_wal(&global.dir.join("data.db")) {
            log::warn!("could not fold data.db-wal into data.db: {e}");
        }
    }
    Ok(())
}

/// Joins the realtime dispatcher if it ends within `limit`; if it does not,
/// it is left to the process's exit rather than holding it up.
fn wait_for_dispatcher(thread: std::thread::JoinHandle<()>, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            log::warn!("the realtime dispatcher did not stop within {limit:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = thread.join();
}

/// Drops the last handle on the app from this thread, after deferred jobs
/// that still hold it have finished, so the writer drains and stops.
/// Returns false if they did not finish in time.
fn release_app(mut app: Arc<crate::app::App>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match Arc::try_unwrap(app) {
            Ok(app) => {
                drop(app);
                return true;
            }
            Err(shared) if Instant::now() < deadline => {
                app = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => {
                log::warn!("in-flight work did not finish within 30s");
                return false;
            }
        }
    }
}

fn print_banner(addr: &str) {
    let shown = addr.replace("0.0.0.0", "127.0.0.1");
    println!("Server started at http://{addr}");
    println!("├─ REST API:  http://{shown}/api/");
    println!("└─ Dashboard: http://{shown}/_/");
}

const SUPERUSERS: &str = "_superusers";

/// The reference's report of `superuser otp` (its trailing blank line too).
fn otp_report(email: &str, otp: &crate::auth::otp::IssuedCode) -> String {
    format!(
        "Successfully created OTP for superuser {email:?}:\n├─ Id:    {}\n├─ Pass:  {}\n└─ Valid: {}s\n",
        otp.id, otp.code, otp.valid_secs
    )
}

/// `superuser ips`: validates, stores the settings (encrypted with the
/// `--encryptionEnv` key when the data dir uses one), and reports them as
/// the reference does.
fn save_superuser_ips(booted: &boot::Booted, ips: &[String]) -> Result<String, String> {
    let next = superusers::with_ips(&booted.settings, ips)?;
    let stored = boot::encode_settings(&next, &booted.config)?;
    booted
        .writer
        .run(move |tx| {
            tx.conn().execute(
                "INSERT INTO `_params` (id, value, created, updated) VALUES ('settings', ?1, ?2, ?2)
                 ON CONFLICT(id) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                rusqlite::params![stored, crate::datetime::now_text()],
            )
        })
        .map_err(|e| e.to_string())
        .and_then(|saved| saved.map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot save the settings: {e}"))?;
    if next.superuser_ips.is_empty() {
        return Ok("Successfully cleared SuperuserIPs setting!".into());
    }
    let mut report = String::from("Successfully updated SuperuserIPs setting:");
    for (n, ip) in next.superuser_ips.iter().enumerate() {
        let branch = if n + 1 == next.superuser_ips.len() {
            "└─"
        } else {
            "├─"
        };
        report.push_str(&format!("\n{branch} {ip}"));
    }
    Ok(report)
}

fn run_superuser(global: &GlobalFlags, action: SuperuserAction) -> Result<(), String> {
    let booted = boot::open(global, vec!["*".into()])?;
    let writer = booted.writer.clone();
    let result = match action {
        SuperuserAction::Upsert { email, password } => {
            superusers::upsert(&writer, &email, &password)
                .map(|_| format!("Successfully saved superuser {email:?}!"))
        }
        SuperuserAction::Create { email, password } => {
            superusers::create(&writer, &email, &password)
                .map(|_| format!("Successfully created new superuser {email:?}!"))
        }
        SuperuserAction::Update { email, password } => {
            superusers::update(&writer, &email, &password)
                .map(|_| format!("Successfully changed superuser {email:?} password!"))
        }
        SuperuserAction::Delete { email } => superusers::delete(&writer, &email).map(|found| {
            if found {
                format!("Successfully deleted superuser {email:?}!")
            } else {
                format!("Superuser {email:?} is missing or already deleted.")
            }
        }),
        SuperuserAction::Otp { email } => match booted.schema.get(SUPERUSERS) {
            Some(collection) => superusers::create_otp(&writer, collection, &email)
                .map(|otp| otp_report(&email, &otp)),
            None => Err("the _superusers collection is missing".into()),
        },
        SuperuserAction::Ips { ips } => save_superuser_ips(&booted, &ips),
    };
    drop(writer);
    drop(booted.writer);
    let _ = booted.writer_thread.join();
    result.map(|message| println!("{message}"))
}
