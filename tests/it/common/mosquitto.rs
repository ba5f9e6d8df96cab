//! A throw-away Mosquitto (Debian's `mosquitto`) on a free port of
//! 127.0.0.1, run from the config we ship (`packaging/mosquitto`) with its
//! paths and listener swapped for the test's: TLS with a certificate from a
//! CA made here (rcgen), passwords, the shipped ACL file. Stopped on drop;
//! [`Mosquitto::stop`] and [`Mosquitto::start_again`] for the outage tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The publisher's user, as the shipped ACL names it.
pub const PUBLISHER: &str = "estation-publisher";
pub const PUBLISHER_PASSWORD: &str = "publisher-secret";

pub struct Mosquitto {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Mosquitto {
    /// Starts a broker where `kiosks` (user, password) may log in besides
    /// the publisher.
    pub fn start(kiosks: &[(&str, &str)]) -> Mosquitto {
        let dir = tempfile::tempdir().expect("a folder for the broker");
        let (ca, cert, key) = certificates();
        std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
        std::fs::write(dir.path().join("server.crt"), cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        let passwd = dir.path().join("passwd");
        for (i, (user, password)) in std::iter::once((PUBLISHER, PUBLISHER_PASSWORD)).chain(kiosks.iter().copied()).enumerate() {
            let mut c = Command::new("mosquitto_passwd");
            if i == 0 {
                c.arg("-c");
            }
            let out = c.arg("-b").arg(&passwd).args([user, password]).output().expect("mosquitto_passwd (scripts/install-deps --test)");
            assert!(out.status.success(), "mosquitto_passwd: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let shipped = std::fs::read_to_string(super::root().join("packaging/mosquitto/estation.conf")).expect("packaging/mosquitto/estation.conf");
        let d = dir.path().display();
        let acl = super::root().join("packaging/mosquitto/estation.acl");
        let mut conf = String::new();
        for line in shipped.lines() {
            let replaced = match line.split_whitespace().next() {
                Some("listener") => format!("listener {port} 127.0.0.1"),
                Some("certfile") => format!("certfile {d}/server.crt"),
                Some("keyfile") => format!("keyfile {d}/server.key"),
                Some("password_file") => format!("password_file {}", passwd.display()),
                Some("acl_file") => format!("acl_file {}", acl.display()),
                _ => line.to_string(),
            };
            conf.push_str(&replaced);
            conf.push('\n');
        }
        conf.push_str("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n");
        // Run as root, Mosquitto drops to the `mosquitto` user, which cannot
        // read the test's private folder.
        if rustix::process::getuid().is_root() {
            conf.push_str("user root\n");
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let mut m = Mosquitto { dir, port, child: None };
        m.start_again();
        m
    }

    /// Starts the broker (again) on its port, and waits until it listens.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker runs already");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("log")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("mosquitto (scripts/install-deps --test)");
        self.child = Some(child);
        let port = self.port;
        let up = super::poll_until(Duration::from_secs(20), Duration::from_millis(50), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(up, "mosquitto did not listen on {port}: {}", self.log());
    }

    /// Kills the broker (as a crash or a power cut would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("mqtts://127.0.0.1:{}", self.port)
    }

    /// The CA that signed the broker's certificate (a kiosk's `[push] ca`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// `[push]` for a kiosk logging in as `user`.
    pub fn kiosk_section(&self, password: &str, extra: &str) -> String {
        format!("[push]\nurl = \"{}\"\npassword = \"{password}\"\nca = \"{}\"\n{extra}", self.url(), self.ca().display())
    }

    /// The publisher's `--push` arguments, and its password's variable.
    pub fn publisher_args(&self) -> Vec<String> {
        vec!["--push".into(), self.url(), "--push-ca".into(), self.ca().display().to_string()]
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM:
/// (CA, certificate, key).
fn certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "estation test CA");
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server parameters");
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).expect("the server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
