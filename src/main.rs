use std::process::ExitCode;

use dockermand::access::auth::PasswordHash;
use dockermand::config::{check_file, Command, Config, USAGE};
use dockermand::crypto::sha256 as digest;
use dockermand::{logger, selftest, server::Server};

/// Work factor for new password hashes: about 0.1 s on a router.
const PASSWORD_ITERATIONS: u32 = 20_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match Config::from_args(&args) {
        Ok(Command::Run(cfg)) => *cfg,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("dockermand {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::HashToken(token)) => {
            println!("{}", digest::hex(&digest::sha256(token.as_bytes())));
            return ExitCode::SUCCESS;
        }
        Ok(Command::HashPassword) => return hash_password(),
        Ok(Command::CheckConfig(path)) => return check_config(&path),
        Ok(Command::SelfTest) => {
            return if selftest::run() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Err(e) => {
            eprintln!("dockermand: {e}");
            return ExitCode::from(2);
        }
    };
    logger::init(cfg.log_level);
    let result = Server::new(cfg, args).and_then(|mut server| server.run());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints each problem of the config file on its own line, for the init
/// script to log before it replaces a working config. The TLS files it
/// names are loaded too: a certificate that does not match its key would
/// otherwise only show when the daemon starts.
fn check_config(path: &str) -> ExitCode {
    let problems = match std::fs::read_to_string(path) {
        Ok(text) => check_file(&text),
        Err(e) => vec![format!("cannot read {path}: {e}")],
    };
    #[cfg(feature = "tls")]
    let problems = if problems.is_empty() {
        tls_file_problems(path)
    } else {
        problems
    };
    for problem in &problems {
        eprintln!("{problem}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether the certificate, key and client CA of a valid config file load.
#[cfg(feature = "tls")]
fn tls_file_problems(path: &str) -> Vec<String> {
    match Config::from_args(&["--config".into(), path.into()]) {
        Ok(Command::Run(cfg)) if cfg.listens_with_tls() => dockermand::tls::keys::server_config(&cfg.tls)
            .err()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("dockermand: cannot read the password from stdin");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("dockermand: empty password");
        return ExitCode::from(2);
    }
    match PasswordHash::create(password, PASSWORD_ITERATIONS) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dockermand: {e}");
            ExitCode::FAILURE
        }
    }
}
