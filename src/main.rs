//! The `satchel` binary: parse the command line and run it. Everything
//! else lives in the library.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    satchel::memory::pin_malloc_thresholds(&args);
    std::process::exit(satchel::run::main(&args));
}
