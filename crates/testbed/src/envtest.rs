//! A real `kube-apiserver` and `etcd` for the tests, found the envtest way: `KUBEBUILDER_ASSETS`
//! names a folder holding both binaries (what controller-runtime's `setup-envtest` produces, or
//! `../shared/envtest` unpacked, as `.ci/run` does).
//!
//! One API server per test process, started by the first test that asks and shared by the rest:
//! tests isolate themselves by namespace and by unique names of cluster-scoped objects. A test
//! that needs flags of its own (an audit log) starts a server of its own with
//! [`EnvTest::start_with`]. Both processes run under a small shell guard that kills them when
//! this process exits (its stdin, held by this process, closes) or, for a test's own server,
//! when its `EnvTest` is dropped, so no test leaves a server behind, however it ends.
//!
//! Certificates are generated here (X.509 v3: rustls refuses v1): a CA, the API server's serving
//! certificate for `127.0.0.1`, and client certificates; a client certificate's subject is its
//! Kubernetes identity (`CN` the user, `O` the groups), so tests can act as any user or service
//! account under the API server's real RBAC.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::{Error, Result};

/// The ports one start of etcd and the API server listens on.
#[derive(Clone, Copy, Debug)]
struct Ports {
    etcd: u16,
    peer: u16,
    api: u16,
}

/// The environment variable naming the folder with `kube-apiserver` and `etcd`.
pub const ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";

/// How long the API server may take to answer `/readyz` (about 6 s on two idle cores).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// How long one `/readyz` request may take.
const READYZ_TIMEOUT: Duration = Duration::from_secs(2);

/// A running API server and how to reach it.
pub struct EnvTest {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// Folder holding the certificates, the kubeconfig and etcd's data.
    pub dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
    /// The audit log, when the server was started with an audit policy.
    audit_log: Option<PathBuf>,
    /// The guard's stdin: dropped (at process exit) it stops both servers.
    _guard: Mutex<Child>,
}

static SHARED: tokio::sync::OnceCell<EnvTest> = tokio::sync::OnceCell::const_new();

/// How to start an API server of a test's own ([`EnvTest::start_with`]); the shared one takes
/// the defaults.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// An audit policy (YAML, `audit.k8s.io/v1` `Policy`): the server runs with
    /// `--audit-policy-file` and `--audit-log-path`, and [`EnvTest::audit_log`] names the log
    /// (JSON lines, one event per line; see [`crate::audit`]).
    pub audit_policy: Option<String>,
}

/// The folder named by `KUBEBUILDER_ASSETS`, when it holds both binaries.
pub fn assets() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(ASSETS_ENV)?);
    (dir.join("kube-apiserver").is_file() && dir.join("etcd").is_file()).then_some(dir)
}

/// The process's API server, started on first use; `None` without `KUBEBUILDER_ASSETS`.
pub async fn shared() -> Result<Option<&'static EnvTest>> {
    let Some(assets) = assets() else {
        return Ok(None);
    };
    SHARED
        .get_or_try_init(|| EnvTest::start(assets, "", Options::default()))
        .await
        .map(Some)
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A port on 127.0.0.1 free at the time of asking, chosen below the kernel's ephemeral range:
/// a server started on it later (etcd, kube-apiserver) cannot lose it to the local port of an
/// outgoing connection, which the kernel takes from that range (a CI run lost an API server's
/// port that way). Where the range leaves no room below it, the kernel's own choice.
pub fn free_port() -> Result<u16> {
    use std::hash::{BuildHasher, Hasher};
    const FLOOR: u16 = 10_000;
    let ceiling = ephemeral_floor().unwrap_or(32_768);
    if ceiling > FLOOR + 1_000 {
        // A random start (std's hasher keys are random per process): concurrent test processes
        // rarely probe the same ports.
        let start = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let span = u64::from(ceiling - FLOOR);
        for step in 0..256 {
            let port = FLOOR + (start.wrapping_add(step) % span) as u16;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err(Path::new("127.0.0.1:0")))?;
    let port = listener
        .local_addr()
        .map_err(io_err(Path::new("127.0.0.1:0")))?
        .port();
    Ok(port)
}

/// The lowest port the kernel gives outgoing connections (Linux; `None` elsewhere).
fn ephemeral_floor() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

fn cert_err(e: rcgen::Error) -> Error {
    Error::EnvTest(format!("generating certificates: {e}"))
}

/// Valid from a day ago for a week: enough for any test run, whatever the clocks say.
fn validity(params: &mut CertificateParams) {
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(86_400)).into();
    params.not_after = (now + Duration::from_secs(7 * 86_400)).into();
}

/// The CA (`ca.crt`), the API server's serving certificate for `127.0.0.1` and the service
/// account signing key, written through `write`; the CA signs client certificates later.
fn write_certificates(
    write: &dyn Fn(&str, &str) -> Result<PathBuf>,
) -> Result<Issuer<'static, KeyPair>> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "envtest CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut ca_params);
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err)?;
    let ca = Issuer::new(ca_params, ca_key);
    write("ca.crt", &ca_cert.pem())?;

    let mut serving = CertificateParams::new(vec!["localhost".to_string()]).map_err(cert_err)?;
    serving
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut serving);
    let serving_key = KeyPair::generate().map_err(cert_err)?;
    let serving_cert = serving.signed_by(&serving_key, &ca).map_err(cert_err)?;
    write("serving.crt", &serving_cert.pem())?;
    write("serving.key", &serving_key.serialize_pem())?;

    // The key that signs service account tokens (none are used, the flags are required).
    let sa_key = KeyPair::generate().map_err(cert_err)?;
    write("sa.key", &sa_key.serialize_pem())?;
    write("sa.pub", &sa_key.public_key_pem())?;
    Ok(ca)
}

/// The guard: both servers in the background, their pids in `$DIR/pids`, then wait for this
/// process's end (stdin closes) and stop the API server before etcd (it can hang once etcd is
/// gone).
const GUARD_SCRIPT: &str = r#"
"$ETCD" --data-dir "$DIR/etcd-data" --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "$PEER_URL" >"$DIR/etcd.log" 2>&1 &
etcd=$!
"$APISERVER" --etcd-servers "$ETCD_URL" --bind-address 127.0.0.1 --secure-port "$PORT" \
  --tls-cert-file "$DIR/serving.crt" --tls-private-key-file "$DIR/serving.key" --client-ca-file "$DIR/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$DIR/sa.pub" \
  --service-account-signing-key-file "$DIR/sa.key" --authorization-mode RBAC \
  --disable-admission-plugins ServiceAccount --service-cluster-ip-range 10.96.0.0/16 "$@" >"$DIR/kube-apiserver.log" 2>&1 &
apiserver=$!
echo "$etcd $apiserver" >"$DIR/pids"
cat >/dev/null
kill -9 "$apiserver" 2>/dev/null
wait "$apiserver" 2>/dev/null
kill -9 "$etcd" 2>/dev/null
wait "$etcd" 2>/dev/null
rm -rf "$DIR"
"#;

/// Starts the guard shell, which starts etcd and the API server on `ports` with the files in
/// `dir` (the API server gets `extra_flags` too).
fn spawn_guard(assets: &Path, dir: &Path, ports: Ports, extra_flags: &[String]) -> Result<Child> {
    let bin = |name: &str| assets.join(name).display().to_string();
    Command::new("sh")
        .arg("-c")
        .arg(GUARD_SCRIPT)
        .arg("envtest-guard")
        .args(extra_flags)
        .env("ETCD", bin("etcd"))
        .env("APISERVER", bin("kube-apiserver"))
        .env("DIR", dir)
        .env("ETCD_URL", format!("http://127.0.0.1:{}", ports.etcd))
        .env("PEER_URL", format!("http://127.0.0.1:{}", ports.peer))
        .env("PORT", ports.api.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_err(assets))
}

impl EnvTest {
    /// An API server (and etcd) of the caller's own, not the shared one: for a test that needs
    /// flags the others must not get (an audit log), or a cluster no other test writes to.
    /// Both processes stop, and its folder goes, when the returned value is dropped (or this
    /// process exits). `None` without `KUBEBUILDER_ASSETS`.
    pub async fn start_with(options: Options) -> Result<Option<EnvTest>> {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let Some(assets) = assets() else {
            return Ok(None);
        };
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self::start(assets, &format!("-own-{n}"), options)
            .await
            .map(Some)
    }

    /// Starts etcd and the API server, on fresh ports again (up to three times) when one of
    /// them exits because its port was taken between choosing and binding it.
    async fn start(assets: PathBuf, suffix: &str, options: Options) -> Result<EnvTest> {
        let mut attempt = 1;
        loop {
            let ports = Ports {
                etcd: free_port()?,
                peer: free_port()?,
                api: free_port()?,
            };
            let suffix = format!("{suffix}-{attempt}");
            match Self::start_once(&assets, &suffix, &options, ports).await {
                Err(Error::EnvTestPortTaken(_)) if attempt < 3 => attempt += 1,
                result => return result,
            }
        }
    }

    async fn start_once(
        assets: &Path,
        suffix: &str,
        options: &Options,
        ports: Ports,
    ) -> Result<EnvTest> {
        let dir = std::env::temp_dir().join(format!(
            "ecr-operator-envtest-{}{suffix}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io_err(&path))?;
            Ok(path)
        };

        let ca = write_certificates(&write)?;

        // Flags only some servers get, appended to the API server's command line.
        let mut extra_flags = Vec::new();
        let mut audit_log = None;
        if let Some(policy) = &options.audit_policy {
            let policy_path = write("audit-policy.yaml", policy)?;
            let log_path = dir.join("audit.log");
            extra_flags.push(format!("--audit-policy-file={}", policy_path.display()));
            extra_flags.push(format!("--audit-log-path={}", log_path.display()));
            // Written as each request completes, so the log is whole when a test reads it.
            extra_flags.push("--audit-log-mode=blocking".to_string());
            audit_log = Some(log_path);
        }

        let guard = spawn_guard(assets, &dir, ports, &extra_flags)?;
        let env = EnvTest {
            url: format!("https://127.0.0.1:{}", ports.api),
            dir: dir.clone(),
            ca,
            audit_log,
            _guard: Mutex::new(guard),
        };
        env.write_kubeconfig("kubeconfig", "admin", &["system:masters"])?;
        env.wait_ready().await?;
        Ok(env)
    }

    /// A client certificate and key (PEM) for `user` in `groups` (at most two), signed by the
    /// API server's client CA: the API server authenticates it as that user in those groups.
    pub fn client_identity(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
        params.distinguished_name.push(DnType::CommonName, user);
        // rcgen keeps one value per attribute type (a second `O` replaces the first), so the
        // second group is an `O` under rcgen's custom type: the same OID (2.5.4.10), another key.
        let organization = [
            DnType::OrganizationName,
            DnType::CustomDnType(vec![2, 5, 4, 10]),
        ];
        if groups.len() > organization.len() {
            return Err(Error::EnvTest(format!(
                "a client certificate names at most {} groups, not {groups:?}",
                organization.len()
            )));
        }
        for (ty, group) in organization.into_iter().zip(groups) {
            params.distinguished_name.push(ty, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let key = KeyPair::generate().map_err(cert_err)?;
        let cert = params.signed_by(&key, &self.ca).map_err(cert_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes a kubeconfig `name` in the server's folder for `user` in `groups` and returns its
    /// path (kubectl and kube-rs read it alike).
    pub fn write_kubeconfig(&self, name: &str, user: &str, groups: &[&str]) -> Result<PathBuf> {
        let (cert, key) = self.client_identity(user, groups)?;
        let cert_path = self.dir.join(format!("{name}.crt"));
        let key_path = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert).map_err(io_err(&cert_path))?;
        std::fs::write(&key_path, key).map_err(io_err(&key_path))?;
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "envtest", "cluster": {
                "server": self.url,
                "certificate-authority": self.dir.join("ca.crt"),
            }}],
            "users": [{"name": user, "user": {
                "client-certificate": cert_path,
                "client-key": key_path,
            }}],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": user}}],
            "current-context": "envtest",
        });
        let path = self.dir.join(name);
        let mut file = std::fs::File::create(&path).map_err(io_err(&path))?;
        file.write_all(kubeconfig.to_string().as_bytes())
            .map_err(io_err(&path))?;
        Ok(path)
    }

    /// Writes a kubeconfig `name` for the service account `namespace/service_account`: the
    /// client certificate's subject is `CN=system:serviceaccount:NS:SA`,
    /// `O=system:serviceaccounts`, `O=system:serviceaccounts:NS`, the user and groups the API
    /// server gives that service account's tokens, so RBAC bindings whose subject is the
    /// ServiceAccount apply to it (the API server adds `system:authenticated` itself).
    pub fn write_service_account_kubeconfig(
        &self,
        name: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<PathBuf> {
        self.write_kubeconfig(
            name,
            &service_account_user(namespace, service_account),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// The audit log (JSON lines), when the server was started with an audit policy.
    pub fn audit_log(&self) -> Option<&Path> {
        self.audit_log.as_deref()
    }

    /// The API server's own log (what it printed), for failure messages.
    pub fn server_log(&self) -> PathBuf {
        self.dir.join("kube-apiserver.log")
    }

    /// The cluster admin's kubeconfig (`system:masters`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A client as the cluster admin.
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig()).await
    }

    /// Polls `/readyz`; fails at once when etcd or the API server has exited (a port taken
    /// before it bound, a bad flag), else after [`START_TIMEOUT`].
    async fn wait_ready(&self) -> Result<()> {
        let client = self.client().await?;
        let started = std::time::Instant::now();
        loop {
            let request = ::http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| Error::EnvTest(format!("building the readiness request: {e}")))?;
            // Bounded: whatever holds a taken port may accept and never answer.
            let answer = tokio::time::timeout(READYZ_TIMEOUT, client.request_text(request)).await;
            if let Ok(Ok(body)) = answer
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if let Some(exited) = self.exited_process() {
                let tail = self.log_tail(exited);
                let message = format!(
                    "{exited} exited at start ({}); last log lines (newest first):\n{tail}",
                    self.url
                );
                return Err(if tail.contains("address already in use") {
                    Error::EnvTestPortTaken(message)
                } else {
                    Error::EnvTest(message)
                });
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(Error::EnvTest(format!(
                    "kube-apiserver at {} not ready after {}s; last log lines (newest first):\n{}",
                    self.url,
                    START_TIMEOUT.as_secs(),
                    self.log_tail("kube-apiserver")
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `etcd` or `kube-apiserver` when that process has exited (the guard writes their pids
    /// once both are started; until it does, neither counts as exited).
    fn exited_process(&self) -> Option<&'static str> {
        let pids = std::fs::read_to_string(self.dir.join("pids")).ok()?;
        let mut pids = pids.split_whitespace();
        let (etcd, apiserver) = (pids.next()?, pids.next()?);
        [("etcd", etcd), ("kube-apiserver", apiserver)]
            .into_iter()
            .find(|(_, pid)| !process_running(pid))
            .map(|(name, _)| name)
    }

    /// The last 20 lines of `etcd.log` or `kube-apiserver.log`, newest first.
    fn log_tail(&self, process: &str) -> String {
        let log =
            std::fs::read_to_string(self.dir.join(format!("{process}.log"))).unwrap_or_default();
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    }
}

/// Whether process `pid` runs: its `/proc` entry exists and is not a zombie (the guard shell
/// reaps its children only when it stops them).
fn process_running(pid: &str) -> bool {
    if !Path::new("/proc/self/stat").exists() {
        return true; // no procfs: only the start timeout tells
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `PID (COMMAND) STATE ...`: the state follows the last `)` (a command may contain one).
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !matches!(state.and_then(|s| s.chars().next()), Some('Z' | 'X') | None)
}

/// The user name Kubernetes gives a service account: `system:serviceaccount:NS:NAME`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| Error::EnvTest(format!("{}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| Error::EnvTest(format!("{}: {e}", path.display())))?;
    Ok(kube::Client::try_from(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_lie_below_the_ephemeral_range_and_can_be_bound() {
        let floor = ephemeral_floor().expect("Linux names its ephemeral range");
        for _ in 0..20 {
            let port = free_port().unwrap();
            assert!((10_000..floor).contains(&port), "{port} not below {floor}");
            std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        }
    }

    #[test]
    fn a_process_counts_as_running_until_it_exits() {
        assert!(process_running(&std::process::id().to_string()));
        let mut child = Command::new("sh").arg("-c").arg("exit 0").spawn().unwrap();
        let pid = child.id().to_string();
        // Exited but not yet reaped: a zombie, as the guard's children are until it stops them.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while process_running(&pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "sh -c 'exit 0' still runs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!process_running(&pid), "reaped");
        assert!(!process_running("not-a-pid"));
    }

    /// The failure a CI run met: the API server's port taken by the time it binds. Told at
    /// once (not after the 90 s start timeout) and as a taken port, which `start` retries.
    #[tokio::test]
    async fn an_api_server_whose_port_is_taken_is_told_at_once() {
        let assets = assets().expect("KUBEBUILDER_ASSETS (bash scripts/envtest.sh)");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ports = Ports {
            etcd: free_port().unwrap(),
            peer: free_port().unwrap(),
            api: taken.local_addr().unwrap().port(),
        };
        let started = std::time::Instant::now();
        let result = EnvTest::start_once(&assets, "-taken", &Options::default(), ports).await;
        let Err(Error::EnvTestPortTaken(message)) = result else {
            panic!("expected a taken port, got {:?}", result.map(|env| env.url));
        };
        assert!(message.contains("kube-apiserver exited"), "{message}");
        assert!(started.elapsed() < START_TIMEOUT, "{:?}", started.elapsed());
    }
}
