//! A throw-away PostgreSQL server (Debian's `postgresql` package): `initdb`
//! into a temporary folder and `pg_ctl start` on a free port on 127.0.0.1,
//! stopped and removed on drop. PostgreSQL refuses to run as root, so under
//! root it runs as the `postgres` user the package made.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL must be installed for the central tests (scripts/install-deps --test)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("no initdb under /usr/lib/postgresql/*/bin")
}

fn as_owner(program: &Path) -> Command {
    if rustix::process::getuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// For tests: nothing is flushed to disk (a throw-away database).
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// `fsync`: flush each commit as a real server does (for benchmarks).
    pub fn start_with(fsync: bool) -> Postgres {
        let dir = tempfile::tempdir().expect("a folder for the database");
        let bin = bin_dir();
        if rustix::process::getuid().is_root() {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown the database folder to postgres");
        }
        let data = dir.path().join("data");
        let out = as_owner(&bin.join("initdb"))
            .args(["--auth=trust", "--username=estation", "--encoding=UTF8", "--locale=C.UTF-8", "-D"])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        // A free port: bind one, let it go, and hand it to the server.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let options = format!("-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync={}", dir.path().display(), if fsync { "on" } else { "off" });
        let out = as_owner(&bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl start");
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl start: {}{log}", String::from_utf8_lossy(&out.stderr));
        Postgres { dir, bin, port }
    }

    /// A database of its own for one test (several share a server).
    pub fn database(&self, name: &str) -> String {
        let out = as_owner(&self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "estation", name])
            .output()
            .expect("run createdb");
        assert!(out.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&out.stderr));
        format!("postgres://estation@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_owner(&self.bin.join("pg_ctl")).args(["-D"]).arg(self.dir.path().join("data")).args(["-m", "immediate", "stop"]).output();
    }
}
