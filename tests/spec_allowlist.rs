//! Holds the policy's allow-list (`src/policy/table.rs`), the build query
//! allow-list and the route table (`src/route.rs`) against Docker's own
//! Engine API specification.
//!
//! The spec files (Swagger 2.0 YAML, copied unchanged from moby/moby) live
//! outside the repository, in `../shared/docker-api/` next to the repo root,
//! or wherever `DOCKER_API_SPEC_DIR` points. Without them these tests fail:
//! they are the only thing that notices a field Docker adds to a checked
//! body, or a route it adds to the API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use dockermand::access::policy::table::{tables, Rule, Table};
use dockermand::access::policy::{check_body, check_build_query, fold_eq, Policy};
use dockermand::access::route::{match_route, BodyCheck, Class, Matched, ROUTES};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// The spec files
// ---------------------------------------------------------------------------

/// Versions every run must have: the oldest API we serve in full, and the
/// newest one.
const REQUIRED: [&str; 2] = ["v1.41", "latest"];

struct Spec {
    version: String,
    doc: Value,
}

fn spec_dir() -> PathBuf {
    match std::env::var_os("DOCKER_API_SPEC_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/docker-api"),
    }
}

/// Every `*.yaml` in the spec directory, parsed once for all tests.
fn specs() -> &'static [Spec] {
    static SPECS: OnceLock<Vec<Spec>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let dir = spec_dir();
        let help = "Docker's Engine API spec files (v1.41.yaml, v1.51.yaml, latest.yaml, Swagger 2.0 YAML \
                    from moby/moby docs/api/ and api/swagger.yaml) must be in `shared/docker-api/` next to \
                    the repository (`<repo>/../shared/docker-api/`), or in the directory named by the \
                    environment variable DOCKER_API_SPEC_DIR";
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read the spec directory {}: {e}.\n{help}", dir.display()));
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        let mut specs = Vec::new();
        for file in files {
            let version = file.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let doc: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", file.display()));
            assert!(
                doc["paths"].is_object() && doc["definitions"].is_object(),
                "{} is not a Swagger 2.0 Engine API spec (no paths or definitions)",
                file.display()
            );
            specs.push(Spec { version, doc });
        }
        for want in REQUIRED {
            assert!(
                specs.iter().any(|s| s.version == want),
                "{want}.yaml is missing from {}.\n{help}",
                dir.display()
            );
        }
        specs
    })
}

fn spec(version: &str) -> &'static Spec {
    specs().iter().find(|s| s.version == version).unwrap()
}

/// Follows `$ref` chains to the schema they name.
fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..32 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            return s;
        };
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("unsupported $ref {r}"));
        s = doc["definitions"]
            .get(name)
            .unwrap_or_else(|| panic!("$ref to a missing definition {r}"));
    }
    panic!("$ref loop");
}

/// The schema and the members of its `allOf`, recursively, each resolved.
fn parts<'a>(doc: &'a Value, s: &'a Value) -> Vec<&'a Value> {
    let s = resolve(doc, s);
    let mut out = vec![s];
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for a in all {
            out.extend(parts(doc, a));
        }
    }
    out
}

/// All properties of an object schema, through `$ref` and `allOf`.
fn properties<'a>(doc: &'a Value, s: &'a Value) -> Vec<(&'a str, &'a Value)> {
    let mut out = Vec::new();
    for p in parts(doc, s) {
        if let Some(props) = p.get("properties").and_then(Value::as_object) {
            out.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
        }
    }
    out
}

/// A keyword (`items`, `additionalProperties`, `type`) of a schema or of
/// any of its `allOf` parts.
fn keyword<'a>(doc: &'a Value, s: &'a Value, key: &str) -> Option<&'a Value> {
    parts(doc, s).into_iter().find_map(|p| p.get(key))
}

/// The definition names (`$ref`) and titles a schema goes by.
fn schema_names<'a>(doc: &'a Value, mut s: &'a Value, out: &mut BTreeSet<String>) {
    loop {
        if let Some(t) = s.get("title").and_then(Value::as_str) {
            out.insert(t.to_string());
        }
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/definitions/");
                out.insert(name.to_string());
                s = &doc["definitions"][name];
            }
            None => break,
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for a in all {
            schema_names(doc, a, out);
        }
    }
}

/// The schema of `POST path`'s JSON body.
fn body_schema<'a>(doc: &'a Value, path: &str) -> &'a Value {
    let params = doc["paths"][path]["post"]["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("POST {path} has no parameters in the spec"));
    params
        .iter()
        .find(|p| p["in"] == "body")
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("POST {path} has no body parameter in the spec"))
}

/// The checked bodies, by their path in the spec.
const BODIES: [(&str, BodyCheck); 8] = [
    ("/containers/create", BodyCheck::ContainerCreate),
    ("/containers/{id}/update", BodyCheck::ContainerUpdate),
    ("/containers/{id}/exec", BodyCheck::ExecCreate),
    ("/volumes/create", BodyCheck::VolumeCreate),
    ("/networks/create", BodyCheck::NetworkCreate),
    ("/networks/{id}/connect", BodyCheck::NetworkConnect),
    ("/networks/{id}/disconnect", BodyCheck::NetworkDisconnect),
    ("/commit", BodyCheck::Commit),
];

// ---------------------------------------------------------------------------
// 1. Every property of every checked body is classified
// ---------------------------------------------------------------------------

/// Fields of our tables that dockerd's Go structs accept but that no spec
/// version documents (so the reverse check cannot find them), with why.
const NOT_IN_SPEC: &[(&str, &str, &str)] = &[
    (
        "ContainerCreateRequest",
        "Cpuset",
        "deprecated top-level spelling of CpusetCpus, still decoded",
    ),
    (
        "ExecConfig",
        "Detach",
        "container.ExecOptions.Detach: decoded, undocumented",
    ),
    (
        "ExecConfig",
        "Container",
        "sent by docker-py; dockerd ignores it (the path names the container)",
    ),
    (
        "Mount",
        "ClusterOptions",
        "mount.Mount.ClusterOptions (swarm cluster volumes), undocumented",
    ),
];

#[derive(Default)]
struct Walk {
    /// Unclassified spec property path -> versions.
    unclassified: BTreeMap<String, BTreeSet<String>>,
    /// Places where our rule's shape (struct, list, map) is not the spec's.
    shape: BTreeMap<String, BTreeSet<String>>,
    /// (table, field) pairs seen in some spec.
    found: BTreeSet<(&'static str, &'static str)>,
    /// Definition names and titles reached with a table, per version.
    reached: BTreeMap<String, BTreeSet<String>>,
}

impl Walk {
    fn schema(&mut self, v: &str, doc: &Value, s: &Value, group: &[&'static Table], path: &str) {
        let mut names = BTreeSet::new();
        schema_names(doc, s, &mut names);
        self.reached.entry(v.to_string()).or_default().extend(names);
        let props = properties(doc, s);
        if props.is_empty() {
            self.shape
                .entry(format!(
                    "{path} (a struct in our table, no properties in the spec)"
                ))
                .or_default()
                .insert(v.to_string());
        }
        for (name, sub) in props {
            let full = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            let field = group
                .iter()
                .find_map(|t| t.fields.iter().find(|f| f.name == name).map(|f| (t.name, f)));
            let Some((table, field)) = field else {
                self.unclassified.entry(full).or_default().insert(v.to_string());
                continue;
            };
            self.found.insert((table, field.name));
            match &field.rule {
                Rule::Free | Rule::Zero | Rule::Check(_) => {}
                Rule::Struct(ts) => self.schema(v, doc, sub, ts, &full),
                Rule::List(t) => match keyword(doc, sub, "items") {
                    Some(items) => self.schema(v, doc, items, &[t], &format!("{full}[]")),
                    None => {
                        self.shape
                            .entry(format!("{full} (a list in our table, no items in the spec)"))
                            .or_default()
                            .insert(v.to_string());
                    }
                },
                Rule::Map(t, _) => match keyword(doc, sub, "additionalProperties") {
                    Some(ap) if ap.is_object() => self.schema(v, doc, ap, &[t], &format!("{full}.<key>")),
                    _ => {
                        self.shape
                            .entry(format!(
                                "{full} (a map in our table, no additionalProperties in the spec)"
                            ))
                            .or_default()
                            .insert(v.to_string());
                    }
                },
            }
        }
    }
}

/// Every table reachable from the checked bodies.
fn all_tables() -> Vec<&'static Table> {
    fn add(t: &'static Table, out: &mut Vec<&'static Table>) {
        if out.iter().any(|o| std::ptr::eq(*o, t)) {
            return;
        }
        out.push(t);
        for f in t.fields {
            match &f.rule {
                Rule::Struct(ts) => ts.iter().for_each(|t| add(t, out)),
                Rule::List(t) | Rule::Map(t, _) => add(t, out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for (_, kind) in BODIES {
        tables(kind).iter().for_each(|t| add(t, &mut out));
    }
    out
}

fn versions(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[test]
fn every_spec_property_is_classified() {
    let mut walk = Walk::default();
    for s in specs() {
        for (path, kind) in BODIES {
            let group = tables(kind);
            assert!(!group.is_empty(), "no tables for {kind:?}");
            walk.schema(&s.version, &s.doc, body_schema(&s.doc, path), group, "");
        }
    }

    let mut failures = Vec::new();
    for (path, vs) in &walk.unclassified {
        failures.push(format!("unclassified spec property {path} ({})", versions(vs)));
    }
    for (path, vs) in &walk.shape {
        failures.push(format!("shape mismatch at {path} ({})", versions(vs)));
    }

    // The definitions issue 10 names must all have been walked.
    for s in specs() {
        let reached = walk.reached.get(&s.version).cloned().unwrap_or_default();
        let wanted: [&[&str]; 7] = [
            &["ContainerConfig"],
            &["HostConfig"],
            &["Mount"],
            &["EndpointSettings"],
            &["ExecConfig"],
            &["VolumeCreateOptions", "VolumeCreateRequest"],
            &["NetworkCreateRequest"],
        ];
        for names in wanted {
            if !names.iter().any(|n| reached.contains(*n)) {
                failures.push(format!(
                    "definition {} not reached by the walk ({})",
                    names.join("/"),
                    s.version
                ));
            }
        }
    }

    // The reverse: every field of our tables is in some spec, or known to
    // be accepted by dockerd without being documented.
    println!("table fields no spec version documents (listed in NOT_IN_SPEC):");
    for t in all_tables() {
        for f in t.fields {
            if walk.found.contains(&(t.name, f.name)) {
                continue;
            }
            match NOT_IN_SPEC
                .iter()
                .find(|(tn, fname, _)| *tn == t.name && *fname == f.name)
            {
                Some((_, _, why)) => println!("  {}.{}: {why}", t.name, f.name),
                None => failures.push(format!(
                    "table field {}.{} is in no spec version and not in NOT_IN_SPEC (typo?)",
                    t.name, f.name
                )),
            }
        }
    }
    for (tn, fname, _) in NOT_IN_SPEC {
        if walk.found.contains(&(*tn, *fname)) {
            failures.push(format!(
                "NOT_IN_SPEC lists {tn}.{fname}, but a spec version documents it: remove it"
            ));
        }
        let in_table = all_tables()
            .iter()
            .any(|t| t.name == *tn && t.fields.iter().any(|f| f.name == *fname));
        if !in_table {
            failures.push(format!("NOT_IN_SPEC names {tn}.{fname}, which no table has"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} problem(s) between the allow-list and Docker's spec:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// 2. Build parameters
// ---------------------------------------------------------------------------

/// Build parameters that are deliberately not free: (name, a value that
/// passes, a value that is refused).
const BUILD_RESTRICTED: &[(&str, &str, &str)] = &[
    // BuildKit (version=2) runs inside a gRPC session the policy cannot read.
    ("version", "1", "2"),
    ("networkmode", "bridge", "host"),
    ("isolation", "default", "hyperv"),
    ("cgroupparent", "", "/"),
    ("session", "", "x"),
    ("securityopt", "", "x"),
];

#[test]
fn build_parameters_are_classified() {
    let policy = Policy::default();
    let check = |q: &str| check_build_query(&format!("/build?{q}"), &policy);
    // How an unknown parameter is refused, so that we can tell it apart.
    let unknown = check("zz-not-a-build-param=x").expect_err("unknown build parameters must be refused");
    assert_eq!(unknown.rule, "not_allowed");
    assert!(unknown.message.contains("is not allowed"), "{}", unknown.message);

    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for s in specs() {
        let params = s.doc["paths"]["/build"]["post"]["parameters"]
            .as_array()
            .expect("POST /build has parameters");
        for p in params.iter().filter(|p| p["in"] == "query") {
            let name = p["name"].as_str().expect("parameter name");
            seen.insert(name.to_string());
            match BUILD_RESTRICTED.iter().find(|(n, _, _)| *n == name) {
                Some((_, good, bad)) => {
                    if let Err(d) = check(&format!("{name}={good}")) {
                        failures.push(format!(
                            "{name}={good} refused ({}): {} ({})",
                            d.rule, d.message, s.version
                        ));
                    }
                    if check(&format!("{name}={bad}")).is_ok() {
                        failures.push(format!(
                            "{name}={bad} allowed but should be refused ({})",
                            s.version
                        ));
                    }
                }
                None => {
                    // A free parameter accepts any value; an unknown one only "".
                    for value in ["", "x", "1"] {
                        if let Err(d) = check(&format!("{name}={value}")) {
                            failures.push(format!(
                                "spec build parameter {name}={value:?} refused by rule {}: {} ({})",
                                d.rule, d.message, s.version
                            ));
                        }
                    }
                }
            }
        }
    }
    for (name, good, bad) in BUILD_RESTRICTED {
        if !seen.contains(*name) {
            println!("build parameter {name} is restricted but in no spec version (dockerd/CLI only)");
            // Still behaves as listed.
            assert!(check(&format!("{name}={good}")).is_ok(), "{name}={good}");
            assert!(check(&format!("{name}={bad}")).is_err(), "{name}={bad}");
        }
    }
    assert!(
        failures.is_empty(),
        "build parameters the spec lists are mishandled:\n  {}",
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// 3. Routes
// ---------------------------------------------------------------------------

/// Routes we have that no spec version lists: dockerd registers them.
const ROUTES_NOT_IN_SPEC: &[(&str, &str)] = &[
    ("GET", "/containers/{name}/checkpoints"),
    ("POST", "/containers/{name}/checkpoints"),
    ("DELETE", "/containers/{name}/checkpoints/{checkpoint}"),
    ("POST", "/grpc"),
    ("POST", "/build/cancel"),
];

/// Route families whose name variable is greedy in dockerd (`{name:.*}`).
const GREEDY: [&str; 7] = [
    "images",
    "containers",
    "exec",
    "volumes",
    "networks",
    "plugins",
    "distribution",
];

const SAMPLE: &str = "abc123";
const SLASHY: &str = "registry:5000/library/busybox:1";

/// `/a/{x}/b` and `/a/{x*}/b` both become `/a/{}/b`.
fn normalise(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                "{}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn fill(path: &str, name: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') && seg.ends_with('}') {
                name
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn spec_routes() -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for s in specs() {
        for (path, ops) in s.doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("operations").keys() {
                if method == "parameters" || method.starts_with("x-") {
                    continue;
                }
                out.entry((method.to_ascii_uppercase(), path.clone()))
                    .or_default()
                    .insert(s.version.clone());
            }
        }
    }
    out
}

#[test]
fn route_table_matches_spec_paths() {
    let mut failures = Vec::new();
    let spec_routes = spec_routes();
    for ((method, path), vs) in &spec_routes {
        let at = format!("{method} {path} ({})", versions(vs));
        let concrete = fill(path, SAMPLE);
        let route = match match_route(method, &concrete) {
            Ok(Matched::Route(r)) => r,
            other => {
                failures.push(format!(
                    "spec route {at} is missing from our table: {concrete} -> {other:?}"
                ));
                continue;
            }
        };
        if normalise(route.pattern) != normalise(path) {
            failures.push(format!(
                "spec route {at}: {concrete} matched our {} {}",
                route.method, route.pattern
            ));
            continue;
        }
        // Version prefixes route the same.
        if match_route(method, &format!("/v1.41{concrete}")) != Ok(Matched::Route(route)) {
            failures.push(format!("spec route {at}: /v1.41{concrete} routes differently"));
        }
        if !path.contains('{') {
            continue;
        }
        let family = path.split('/').nth(1).unwrap_or("");
        let greedy = GREEDY.contains(&family) && !(method == "DELETE" && path == "/containers/{id}");
        let slashy = fill(path, SLASHY);
        let got = match_route(method, &slashy);
        if greedy {
            if got != Ok(Matched::Route(route)) {
                failures.push(format!(
                    "spec route {at}: greedy name {slashy} -> {got:?}, want {}",
                    route.pattern
                ));
            }
        } else if got == Ok(Matched::Route(route)) {
            failures.push(format!("spec route {at}: single-segment name matched {slashy}"));
        }
    }

    // DELETE /containers/{name} takes one segment, as in dockerd.
    let slashy_delete = match_route("DELETE", &format!("/containers/{SLASHY}"));
    if let Ok(Matched::Route(r)) = slashy_delete {
        if r.pattern == "/containers/{name}" {
            failures.push(format!("DELETE /containers/{SLASHY} matched {}", r.pattern));
        }
    }
    match match_route("DELETE", "/containers/x/checkpoints/cp1") {
        Ok(Matched::Route(r))
            if r.pattern == "/containers/{name}/checkpoints/{checkpoint}" && r.class == Class::System => {}
        other => failures.push(format!(
            "DELETE /containers/x/checkpoints/cp1 -> {other:?}, want the System checkpoint route"
        )),
    }

    // Our routes: in some spec version, or listed as dockerd-only.
    let spec_norm: BTreeSet<(String, String)> = spec_routes
        .keys()
        .map(|(m, p)| (m.clone(), normalise(p)))
        .collect();
    for r in ROUTES {
        let key = (r.method.to_string(), normalise(r.pattern));
        let listed = ROUTES_NOT_IN_SPEC.contains(&(r.method, r.pattern));
        match (spec_norm.contains(&key), listed) {
            (true, false) | (false, true) => {}
            (false, false) => failures.push(format!(
                "our route {} {} is in no spec version and not in ROUTES_NOT_IN_SPEC",
                r.method, r.pattern
            )),
            (true, true) => println!(
                "note: {} {} is in ROUTES_NOT_IN_SPEC but a spec lists it",
                r.method, r.pattern
            ),
        }
    }
    for (m, p) in ROUTES_NOT_IN_SPEC {
        if !ROUTES.iter().any(|r| r.method == *m && r.pattern == *p) {
            failures.push(format!("ROUTES_NOT_IN_SPEC names {m} {p}, which our table lacks"));
        }
    }

    assert!(
        failures.is_empty(),
        "{} route problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// 4. Generated bodies
// ---------------------------------------------------------------------------

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const STRINGS: [&str; 16] = [
    "host",
    "container:x",
    "/",
    "x",
    "/etc",
    "bind",
    "volume",
    "tmpfs",
    "rshared",
    "kata",
    "seccomp=unconfined",
    "no-new-privileges",
    "private",
    "bridge",
    "abc123",
    "SYS_ADMIN",
];
const NUMBERS: [i64; 6] = [1, -1, 1000, -1000, 2147483647, 3];
const KEYS: [&str; 6] = [
    "x",
    "host",
    "kernel.core_pattern",
    "net.ipv4.ip_forward",
    "type",
    "com.docker.network.bridge.name",
];

/// A random non-zero value of the schema's type.
fn generate(doc: &Value, s: &Value, rng: &mut Rng, depth: usize) -> Value {
    let props = properties(doc, s);
    let ty = keyword(doc, s, "type")
        .and_then(Value::as_str)
        .unwrap_or(if props.is_empty() { "string" } else { "object" });
    if let Some(values) = keyword(doc, s, "enum").and_then(Value::as_array) {
        let non_zero: Vec<&Value> = values.iter().filter(|v| !is_zero(v)).collect();
        if !non_zero.is_empty() && rng.chance(3, 4) {
            return (*rng.pick(&non_zero)).clone();
        }
    }
    if depth > 6 {
        return json!("x");
    }
    match ty {
        "boolean" => json!(true),
        "integer" | "number" => json!(*rng.pick(&NUMBERS)),
        "array" => {
            let item = match keyword(doc, s, "items") {
                Some(items) => generate(doc, items, rng, depth + 1),
                None => json!("x"),
            };
            json!([item])
        }
        "object" if !props.is_empty() => object(doc, &props, rng, depth, 3),
        "object" => {
            let key = rng.pick(&KEYS).to_string();
            let value = match keyword(doc, s, "additionalProperties") {
                Some(ap) if ap.is_object() => generate(doc, ap, rng, depth + 1),
                _ => json!("x"),
            };
            let mut m = Map::new();
            m.insert(key, value);
            Value::Object(m)
        }
        _ => json!(*rng.pick(&STRINGS)),
    }
}

/// An object with a random subset of `props`, `expect` of them on average.
fn object(doc: &Value, props: &[(&str, &Value)], rng: &mut Rng, depth: usize, expect: usize) -> Value {
    let mut m = Map::new();
    for (name, sub) in props {
        if rng.chance(expect, props.len().max(expect)) {
            m.insert(name.to_string(), generate(doc, sub, rng, depth + 1));
        }
    }
    Value::Object(m)
}

/// Go's zero value, as the policy reads it.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_zero),
    }
}

/// Whether a denial's field names a place in the body: the path exists,
/// or all but its last name does (a required field that is missing).
fn names_a_path(body: &Value, field: &str) -> bool {
    fn walk(v: &Value, rest: &str, missing_leaf_ok: bool) -> bool {
        if rest.is_empty() {
            return true;
        }
        match v {
            Value::Array(items) => {
                let Some(inner) = rest.strip_prefix('[') else {
                    return false;
                };
                let Some((idx, after)) = inner.split_once(']') else {
                    return false;
                };
                let Ok(i) = idx.parse::<usize>() else { return false };
                let after = after.strip_prefix('.').unwrap_or(after);
                items
                    .get(i)
                    .is_some_and(|item| walk(item, after, missing_leaf_ok))
            }
            Value::Object(m) => {
                let found = m.iter().any(|(k, child)| {
                    if rest.len() < k.len() || !fold_eq(&rest[..k.len()], k) && &rest[..k.len()] != k {
                        return false;
                    }
                    let after = &rest[k.len()..];
                    if after.is_empty() {
                        true
                    } else if let Some(a) = after.strip_prefix('.') {
                        walk(child, a, missing_leaf_ok)
                    } else if after.starts_with('[') {
                        walk(child, after, missing_leaf_ok)
                    } else {
                        false
                    }
                });
                found || (missing_leaf_ok && !rest.contains('.') && !rest.contains('['))
            }
            _ => false,
        }
    }
    walk(body, field, true)
}

/// Non-zero values the tables say must not pass: on unknown or Zero fields.
fn forbidden_values(v: &Value, group: &[&'static Table], prefix: &str, out: &mut Vec<String>) {
    let Value::Object(m) = v else { return };
    for (key, value) in m {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let field = group.iter().flat_map(|t| t.fields).find(|f| fold_eq(key, f.name));
        match field.map(|f| &f.rule) {
            None | Some(Rule::Zero) => {
                if !is_zero(value) {
                    out.push(path);
                }
            }
            Some(Rule::Free) | Some(Rule::Check(_)) => {}
            Some(Rule::Struct(ts)) => forbidden_values(value, ts, &path, out),
            Some(Rule::List(t)) => {
                if let Value::Array(items) = value {
                    for (i, item) in items.iter().enumerate() {
                        forbidden_values(item, &[t], &format!("{path}[{i}]"), out);
                    }
                }
            }
            Some(Rule::Map(t, _)) => {
                if let Value::Object(entries) = value {
                    for (k, item) in entries {
                        forbidden_values(item, &[t], &format!("{path}.{k}"), out);
                    }
                }
            }
        }
    }
}

fn verdict(body: &Value, policy: &Policy) -> Result<Result<(), dockermand::access::policy::Denial>, String> {
    let bytes = serde_json::to_vec(body).unwrap();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_body(
            BodyCheck::ContainerCreate,
            Some(b"application/json"),
            &bytes,
            policy,
        )
    }))
    .map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// HostConfig fields that `Policy::default()` must refuse, with a sample.
fn dangerous() -> Vec<(&'static str, Value)> {
    vec![
        ("Privileged", json!(true)),
        ("CapAdd", json!(["SYS_ADMIN"])),
        (
            "Devices",
            json!([{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]),
        ),
        (
            "DeviceRequests",
            json!([{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}]),
        ),
        ("DeviceCgroupRules", json!(["a *:* rwm"])),
        ("PidMode", json!("host")),
        ("IpcMode", json!("host")),
        ("UTSMode", json!("host")),
        ("UsernsMode", json!("host")),
        ("CgroupnsMode", json!("host")),
        ("NetworkMode", json!("host")),
        ("SecurityOpt", json!(["seccomp=unconfined"])),
        ("MaskedPaths", json!([])),
        ("ReadonlyPaths", json!([])),
        ("Sysctls", json!({"kernel.core_pattern": "|/x"})),
        ("CgroupParent", json!("/")),
        ("Runtime", json!("kata")),
        ("VolumeDriver", json!("sshfs")),
        ("VolumesFrom", json!(["other"])),
        ("Binds", json!(["/:/h"])),
        ("Mounts", json!([{"Type": "bind", "Source": "/", "Target": "/h"}])),
        ("OomScoreAdj", json!(-1000)),
        ("LogConfig", json!({"Type": "fluentd"})),
    ]
}

#[test]
fn generated_bodies_never_slip_through() {
    let policy = Policy::default();
    let group = tables(BodyCheck::ContainerCreate);
    let mut failures = Vec::new();
    let (mut allowed, mut denied) = (0usize, 0usize);
    let mut rules: BTreeMap<&'static str, usize> = BTreeMap::new();

    for version in ["v1.41", "latest"] {
        let s = spec(version);
        let doc = &s.doc;
        let create = body_schema(doc, "/containers/create");
        let top = properties(doc, create);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ version.len() as u64);
        for i in 0..2000 {
            // Config fields, and HostConfig / NetworkingConfig half the time.
            let config: Vec<(&str, &Value)> = top
                .iter()
                .copied()
                .filter(|(n, _)| *n != "HostConfig" && *n != "NetworkingConfig")
                .collect();
            let mut body = object(doc, &config, &mut rng, 0, 2);
            for part in ["HostConfig", "NetworkingConfig"] {
                if rng.chance(1, 2) {
                    let sub = top.iter().find(|(n, _)| *n == part).unwrap().1;
                    let props = properties(doc, sub);
                    let expect = 1 + rng.below(3);
                    let v = object(doc, &props, &mut rng, 1, expect);
                    body.as_object_mut().unwrap().insert(part.to_string(), v);
                }
            }
            let at = format!("{version} #{i}: {body}");
            match verdict(&body, &policy) {
                Err(panic) => failures.push(format!("panic {panic:?} on {at}")),
                Ok(Ok(())) => {
                    allowed += 1;
                    let mut bad = Vec::new();
                    forbidden_values(&body, group, "", &mut bad);
                    if !bad.is_empty() {
                        failures.push(format!(
                            "allowed with non-zero unclassified/Zero field(s) {bad:?}: {at}"
                        ));
                    }
                }
                Ok(Err(d)) => {
                    denied += 1;
                    *rules.entry(d.rule).or_default() += 1;
                    if d.field.is_empty() || !names_a_path(&body, &d.field) {
                        failures.push(format!(
                            "denial {} names field {:?}, not in the body: {at}",
                            d.rule, d.field
                        ));
                    }
                }
            }
        }
    }
    println!("generated bodies: {allowed} allowed, {denied} denied; rules: {rules:?}");

    // Each HostConfig property alone, at a non-zero sample.
    let dangerous = dangerous();
    for version in ["v1.41", "latest"] {
        let s = spec(version);
        let doc = &s.doc;
        let host = properties(doc, &doc["definitions"]["HostConfig"]);
        println!("\nHostConfig field -> verdict with Policy::default() ({version}):");
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut names: Vec<&str> = host.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        for name in names {
            let sub = host.iter().find(|(n, _)| *n == name).unwrap().1;
            let sample = match dangerous.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => v.clone(),
                None => generate(doc, sub, &mut rng, 1),
            };
            let body = json!({"Image": "busybox", "HostConfig": {name: sample}});
            let shown = match verdict(&body, &policy) {
                Err(panic) => {
                    failures.push(format!("panic {panic:?} on {body}"));
                    "PANIC".to_string()
                }
                Ok(Ok(())) => {
                    if dangerous.iter().any(|(n, _)| *n == name) {
                        failures.push(format!(
                            "dangerous HostConfig.{name} allowed by Policy::default(): {body} ({version})"
                        ));
                    }
                    "allowed".to_string()
                }
                Ok(Err(d)) => format!("denied by {} at {}", d.rule, d.field),
            };
            println!("  {name:<22} {:<50} -> {shown}", sample.to_string());
        }
    }
    for (name, _) in &dangerous {
        let in_spec = ["v1.41", "latest"].iter().any(|v| {
            let doc = &spec(v).doc;
            properties(doc, &doc["definitions"]["HostConfig"])
                .iter()
                .any(|(n, _)| n == name)
        });
        if !in_spec {
            failures.push(format!(
                "dangerous field {name} is in no HostConfig definition: typo in the test?"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} failure(s):\n  {}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// The checkers above can fail
// ---------------------------------------------------------------------------

/// The walk, the path matcher and the forbidden-value finder, on a made-up
/// spec and bodies: each reports what it must.
#[test]
fn the_checks_can_fail() {
    let doc = json!({
        "definitions": {
            "ContainerConfig": {"type": "object", "properties": {"Image": {"type": "string"}, "Future": {"type": "string"}}},
            "HostConfig": {"allOf": [
                {"$ref": "#/definitions/Resources"},
                {"type": "object", "properties": {
                    "Mounts": {"type": "array", "items": {"$ref": "#/definitions/Mount"}},
                    "Privileged": {"type": "boolean"},
                }},
            ]},
            "Resources": {"type": "object", "properties": {"Memory": {"type": "integer"}, "NewLimit": {"type": "integer"}}},
            "Mount": {"type": "object", "properties": {
                "Target": {"type": "string"},
                "BindOptions": {"type": "object", "properties": {"Propagation": {"type": "string"}, "Foo": {"type": "boolean"}}},
            }},
            "EndpointSettings": {"type": "object", "properties": {"Aliases": {"type": "array"}, "Bar": {"type": "string"}}},
        },
    });
    let body = json!({"allOf": [
        {"$ref": "#/definitions/ContainerConfig"},
        {"type": "object", "properties": {
            "HostConfig": {"$ref": "#/definitions/HostConfig"},
            "NetworkingConfig": {"type": "object", "properties": {
                "EndpointsConfig": {"type": "object", "additionalProperties": {"$ref": "#/definitions/EndpointSettings"}},
            }},
        }},
    ]});
    let mut walk = Walk::default();
    walk.schema("test", &doc, &body, tables(BodyCheck::ContainerCreate), "");
    let got: Vec<&str> = walk.unclassified.keys().map(String::as_str).collect();
    assert_eq!(
        got,
        [
            "Future",
            "HostConfig.Mounts[].BindOptions.Foo",
            "HostConfig.NewLimit",
            "NetworkingConfig.EndpointsConfig.<key>.Bar",
        ]
    );
    assert!(walk.reached["test"].contains("Mount") && walk.reached["test"].contains("EndpointSettings"));

    let b = json!({"HostConfig": {"Mounts": [{"Source": "/"}], "Sysctls": {"kernel.x": "1"}}});
    assert!(names_a_path(&b, "HostConfig.Mounts[0].Source"));
    assert!(names_a_path(&b, "HostConfig.Mounts[0].Type"));
    assert!(names_a_path(&b, "HostConfig.Sysctls.kernel.x"));
    assert!(!names_a_path(&b, "HostConfig.Mounts[1].Source"));
    assert!(!names_a_path(&b, "HostConfig.Privileged.X"));
    assert!(!names_a_path(&b, "Config.Image"));

    let b = json!({"Image": "x", "Future": 1, "HostConfig": {"CgroupParent": "/", "Memory": 1, "Mounts": [{"ImageOptions": {"Subpath": "a"}}]}});
    let mut bad = Vec::new();
    forbidden_values(&b, tables(BodyCheck::ContainerCreate), "", &mut bad);
    assert_eq!(
        bad,
        [
            "Future",
            "HostConfig.CgroupParent",
            "HostConfig.Mounts[0].ImageOptions"
        ]
    );

    assert_eq!(
        normalise("/containers/{name*}/json"),
        normalise("/containers/{id}/json")
    );
    assert_ne!(
        normalise("/containers/{id}/json"),
        normalise("/containers/{id}/top")
    );
}
