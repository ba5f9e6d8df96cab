//! `estation feed …`: keys, build, verify, serve.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;

use crate::publish::build::{build, BuildError, BuildOptions};
use crate::core::feed::manifest::{verify_signature, MANIFEST_FILE};
use crate::core::feed::{keys, Digest};

pub fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let key = keys::generate()?;
    let (private, public) = keys::write_pair(&key, out)?;
    eprintln!("private key: {} (keep it secret; only `feed build` needs it)", private.display());
    eprintln!("public key:  {}", public.display());
    eprintln!("put this line in each kiosk's config, under [feed]:");
    println!("public_key = \"{}\"", keys::public_key_string(&key.verifying_key()));
    Ok(ExitCode::SUCCESS)
}

pub fn build_cmd(playlists: &Path, alerts: Option<&Path>, key: &Path, out: &Path, expires: Duration, push: &crate::config::push_args::PushArgs) -> anyhow::Result<ExitCode> {
    let key = keys::read_private(key)?;
    let opts = BuildOptions { playlists, alerts, key: &key, out, expires_in: expires, now: Utc::now() };
    match build(&opts) {
        Ok(r) => {
            println!(
                "feed {} version {}: {} playlist(s), {} file(s), {} in all; {} new file(s), {}; expires {}",
                out.display(),
                r.version,
                r.playlists,
                r.blobs,
                bytesize::ByteSize(r.total_bytes),
                r.added,
                bytesize::ByteSize(r.added_bytes),
                r.expires.format("%Y-%m-%d %H:%M UTC"),
            );
            push.notify(out, crate::core::feed::manifest::MANIFEST_FILE, r.version, |t| vec![t.all()]);
            Ok(ExitCode::SUCCESS)
        }
        Err(BuildError::Playlists(problems)) => {
            // Exactly what `estation playlist check` prints.
            println!("{problems}");
            eprintln!("feed not built: fix the playlists above (nothing was written)");
            Ok(ExitCode::FAILURE)
        }
        Err(BuildError::Alerts(problems)) => {
            // Exactly what `estation alert check` prints.
            println!("{problems}");
            eprintln!("feed not built: fix the alerts above (nothing was written)");
            Ok(ExitCode::FAILURE)
        }
        // One line: each message already carries its cause (anyhow's chain
        // would repeat it).
        Err(e) => {
            eprintln!("error: feed not built: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Checks a feed folder: the manifest's signature and every file's hash.
pub fn verify(feed: &Path, public_key: &str) -> anyhow::Result<ExitCode> {
    let key = keys::public_key_arg(public_key)?;
    let path = feed.join(MANIFEST_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let v = match verify_signature(&bytes, &key) {
        Ok(v) => v,
        Err(e) => {
            println!("{}: {e}", path.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let m = &v.manifest;
    let mut bad = 0;
    let doc_path = feed.join(crate::core::feed::alerts_doc::ALERTS_FILE);
    let doc = match std::fs::read(&doc_path) {
        Ok(b) => match crate::core::feed::alerts_doc::verify_signature(&b, &key) {
            Ok(d) => Some(d.doc),
            Err(e) => {
                println!("{}: {e}", doc_path.display());
                bad += 1;
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            println!("{}: {e}", doc_path.display());
            bad += 1;
            None
        }
    };
    let warnings = doc.as_ref().map_or(0, |d| d.alerts.len());
    for b in m.blobs().into_iter().chain(doc.iter().flat_map(|d| d.alerts.iter().cloned())) {
        let p = feed.join(b.feed_path());
        match Digest::of_file(&p) {
            Ok((d, n)) if d == b.sha256 && n == b.size => {}
            Ok((d, n)) => {
                bad += 1;
                println!("{}: content is {n} bytes with digest {d}; the manifest says {} bytes, {}", p.display(), b.size, b.sha256);
            }
            Err(e) => {
                bad += 1;
                println!("{}: {e}", p.display());
            }
        }
    }
    if m.is_expired(Utc::now()) {
        bad += 1;
        println!("{}: expired at {}; kiosks will not take it (rebuild to renew)", path.display(), m.expires);
    }
    if let Some(d) = doc.as_ref().filter(|d| d.expires <= Utc::now()) {
        bad += 1;
        println!("{}: expired at {}; kiosks will not take it (rebuild or publish to renew)", doc_path.display(), d.expires);
    }
    if bad > 0 {
        return Ok(ExitCode::FAILURE);
    }
    println!(
        "ok: {} version {}, {} playlist(s), {} file(s), {} warning message(s), {}, signed by {}, expires {}",
        feed.display(),
        m.version,
        m.playlists.len(),
        m.blobs().len(),
        warnings,
        bytesize::ByteSize(m.total_bytes()),
        keys::key_id(&key),
        m.expires
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "net")]
pub fn serve(feed: &Path, listen: std::net::SocketAddr, limits: crate::net::serve::Limits) -> anyhow::Result<ExitCode> {
    if !feed.join(MANIFEST_FILE).is_file() {
        anyhow::bail!("{}: no {MANIFEST_FILE} here; build a feed first (estation feed build)", feed.display());
    }
    if limits.header_timeout < Duration::from_millis(100) {
        anyhow::bail!("--header-timeout {:?} would close every connection before its request arrives; give e.g. 10s", limits.header_timeout);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(crate::net::serve::serve(feed.to_path_buf(), listen, limits, |addr| {
        // The first line on stdout says where to point kiosks (tests and
        // scripts read the port from it when listening on port 0).
        println!("serving {} on http://{addr}/", feed.display());
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }))
    .with_context(|| format!("cannot serve on {listen}"))?;
    Ok(ExitCode::SUCCESS)
}
