//! `estation doctor`: what this machine can play, and what to install.

use std::process::ExitCode;

/// Prints the report; exits 1 when something the player needs is missing.
#[cfg(feature = "player")]
pub fn run() -> anyhow::Result<ExitCode> {
    use crate::video::plugins;

    let report = match plugins::report() {
        Ok(r) => r,
        Err(e) => {
            println!("video: {e}");
            println!("  install: {} {} {} {}", plugins::BASE, plugins::GOOD, plugins::BAD, plugins::LIBAV);
            return Ok(ExitCode::from(1));
        }
    };
    println!("{}", report.version);
    for c in &report.checks {
        match &c.element {
            Some(e) => println!("  ok       {:<22} {e}{}", c.what, if c.hardware { " (hardware)" } else { "" }),
            None => println!("  MISSING  {:<22} install {}", c.what, c.package),
        }
    }
    if report.hardware() {
        println!("hardware video decoding: yes");
    } else {
        println!(
            "hardware video decoding: no (software decoding works; on Intel install intel-media-va-driver \
             (Broadwell and newer) or i965-va-driver, with {}; check with vainfo)",
            plugins::BAD
        );
    }
    let sound = rodio::DeviceSinkBuilder::open_default_sink();
    match &sound {
        Ok(_) => println!("sound output: the default device opens"),
        Err(e) => println!("sound output: none ({e}); the player plays silently and retries"),
    }
    let missing: Vec<_> = report.missing().map(|c| c.package).collect();
    if missing.is_empty() {
        println!("everything the player needs is installed");
        Ok(ExitCode::SUCCESS)
    } else {
        let mut packages = missing.clone();
        packages.sort_unstable();
        packages.dedup();
        println!("missing: sudo apt-get install {}", packages.join(" "));
        Ok(ExitCode::from(1))
    }
}

#[cfg(not(feature = "player"))]
pub fn run() -> anyhow::Result<ExitCode> {
    println!("this estation was built without the player (no video or sound)");
    Ok(ExitCode::from(1))
}
