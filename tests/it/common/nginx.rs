//! A private nginx (Debian's `nginx-light`) on a free 127.0.0.1 port,
//! serving a folder as-is; stopped on drop. Shared by tests/feed.rs and
//! benches/sync.rs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
    workers: String,
    access_log: bool,
}

impl Nginx {
    /// `workers`: nginx's `worker_processes` ("1", "auto"); `access_log`:
    /// keep one (read it with [`Nginx::requests`]).
    pub fn start(root: &Path, workers: &str, access_log: bool) -> Result<Nginx, String> {
        Nginx::start_server(&format!("root {};", root.display()), workers, access_log)
    }

    /// nginx with `server` inside its one `server { listen …; }` block
    /// (a reverse proxy, say).
    pub fn start_server(server: &str, workers: &str, access_log: bool) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        std::fs::write(dir.path().join("nginx.conf"), conf(dir.path(), addr, server, workers, access_log)).map_err(|e| e.to_string())?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .args(["-e", &format!("{}/error.log", dir.path().display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nginx ({e}); scripts/install-deps --test installs it"))?;
        let nginx = Nginx { child, dir, addr, workers: workers.to_string(), access_log };
        let start = Instant::now();
        // A poll, not a fixed wait; written out because benches/sync.rs
        // includes this file without the rest of `common`.
        while std::net::TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("nginx did not start: {}", nginx.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nginx)
    }

    /// Replaces the server block and reloads (SIGHUP); returns once the
    /// new workers answer (the old ones finish their requests).
    pub fn reload(&self, server: &str) -> Result<(), String> {
        let conf = conf(self.dir.path(), self.addr, server, &self.workers, self.access_log);
        std::fs::write(self.dir.path().join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        let before = self.log().matches("start worker process").count();
        let _ = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while self.log().matches("start worker process").count() <= before {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("nginx did not reload: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

fn conf(dir: &Path, addr: SocketAddr, server: &str, workers: &str, access_log: bool) -> String {
    // As root, nginx would hand its workers to `nobody`, who cannot
    // read a private temp folder.
    let root_user = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    let d = dir.display();
    let log = if access_log { format!("{d}/access.log") } else { "off".into() };
    format!(
        "{user}daemon off;\nworker_processes {workers};\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{}}\nhttp {{\n  access_log {log};\n  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3; uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;\n  types {{ application/json json; image/png png; image/jpeg jpg; image/webp webp; application/toml toml; application/cap+xml xml; }}\n  server {{ listen {addr}; {server} }}\n}}\n",
        user = if root_user { "user root root;\n" } else { "" },
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: nginx stops its workers too (SIGKILL would orphan them).
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
