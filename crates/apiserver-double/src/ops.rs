//! The write and read semantics of the API server: create, update, patch, delete, on the main
//! resource and the `status` subresource.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::{
    meta,
    patch::{self, PatchType},
    resources::{ResourceDef, Special, defs_from_crd},
    selectors::Filter,
    status::{ApiError, Cause},
    store::{Obj, Store, WriteError, WriteOp, object_key},
};

/// Main resource or `status` subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    Main,
    Status,
}

/// What to do once a write is committed.
enum AfterCommit {
    Nothing,
    InstallCrd {
        group: String,
        plural: String,
        defs: Vec<ResourceDef>,
    },
}

enum Prepared {
    NoOp,
    Write(Value, AfterCommit),
    Remove(Value),
}

/// The operations on one resource in one namespace scope.
pub(crate) struct Ops<'a> {
    pub store: &'a Store,
    pub def: Arc<ResourceDef>,
    /// The namespace of the URL (namespaced resources only).
    pub namespace: Option<String>,
    pub require_namespaces: bool,
    pub dry_run: bool,
}

const SYSTEM_FIELDS: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
];

fn object_name(object: &Value) -> String {
    meta::meta_str(object, "name")
        .unwrap_or_default()
        .to_string()
}

/// Whether anything but `metadata` (and `status`, when it is a subresource) differs.
fn spec_changed(old: &Value, new: &Value, ignore_status: bool) -> bool {
    let skip = |k: &str| k == "metadata" || (ignore_status && k == "status");
    let empty = Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    old.iter()
        .filter(|(k, _)| !skip(k))
        .any(|(k, v)| new.get(k) != Some(v))
        || new
            .iter()
            .filter(|(k, _)| !skip(k))
            .any(|(k, _)| !old.contains_key(k))
}

impl Ops<'_> {
    fn key(&self, name: &str) -> String {
        let ns = if self.def.namespaced {
            self.namespace.as_deref()
        } else {
            None
        };
        object_key(ns, name)
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.def.group, &self.def.plural, name)
    }

    fn invalid(&self, name: &str, causes: Vec<Cause>) -> ApiError {
        ApiError::invalid(&self.def.group, &self.def.kind, name, causes)
    }

    /// Checks `apiVersion` and `kind` of a body and sets them to the storage version's.
    fn check_type(&self, body: &mut Value) -> Result<(), ApiError> {
        let Some(map) = body.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        };
        if let Some(av) = map.get("apiVersion").and_then(Value::as_str)
            && av != self.def.api_version()
            && av != self.def.storage_api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                self.def.api_version()
            )));
        }
        if let Some(kind) = map.get("kind").and_then(Value::as_str)
            && kind != self.def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                self.def.kind
            )));
        }
        map.insert(
            "apiVersion".into(),
            Value::String(self.def.storage_api_version()),
        );
        map.insert("kind".into(), Value::String(self.def.kind.clone()));
        meta::ensure_metadata(body);
        Ok(())
    }

    /// Namespace from the URL; for updates, the name must match the URL's.
    fn normalize_identity(&self, body: &mut Value, url_name: Option<&str>) -> Result<(), ApiError> {
        if self.def.namespaced {
            let url_ns = self.namespace.clone().unwrap_or_default();
            match meta::meta_str(body, "namespace") {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => meta::set_meta(body, "namespace", Value::String(url_ns)),
            }
        } else {
            meta::remove_meta(body, "namespace");
        }
        if let Some(url_name) = url_name {
            match meta::meta_str(body, "name") {
                Some(name) if !name.is_empty() && name != url_name => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({name}) does not match the name on the URL ({url_name})"
                    )));
                }
                _ => meta::set_meta(body, "name", Value::String(url_name.to_string())),
            }
        }
        Ok(())
    }

    /// Kind-specific mutation and validation (schema, CEL, CRD structure).
    fn admit(&self, object: &mut Value, old: Option<&Value>) -> Result<AfterCommit, ApiError> {
        let name = object_name(object);
        match self.def.special {
            Special::Custom => {
                if let Some(schema) = &self.def.schema {
                    schema.node.prune_root(object);
                    schema.node.apply_defaults(object);
                    let mut causes = schema.node.validate_root(object);
                    if causes.is_empty()
                        && let Some(cel) = &schema.cel
                    {
                        causes = cel.validate(object, old);
                    }
                    if !causes.is_empty() {
                        return Err(self.invalid(&name, causes));
                    }
                }
            }
            Special::Secret => {
                if let Some(map) = object.as_object_mut() {
                    if let Some(Value::Object(string_data)) = map.remove("stringData") {
                        let data = map
                            .entry("data")
                            .or_insert_with(|| Value::Object(Map::new()));
                        if !data.is_object() {
                            *data = Value::Object(Map::new());
                        }
                        if let Some(data) = data.as_object_mut() {
                            for (k, v) in string_data {
                                let s = v.as_str().unwrap_or_default();
                                data.insert(
                                    k,
                                    Value::String(
                                        base64::engine::general_purpose::STANDARD.encode(s),
                                    ),
                                );
                            }
                        }
                    }
                    map.entry("type")
                        .or_insert_with(|| Value::String("Opaque".into()));
                }
            }
            Special::Crd => {
                let defs = defs_from_crd(object)?;
                let group = object
                    .pointer("/spec/group")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let plural = object
                    .pointer("/spec/names/plural")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if old.is_none() {
                    let storage = defs
                        .first()
                        .map(|d| d.storage_version.clone())
                        .unwrap_or_default();
                    let now = meta::now();
                    let condition = |ty: &str, reason: &str, message: &str| json!({"type": ty, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now});
                    object["status"] = json!({
                        "conditions": [
                            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
                        ],
                        "acceptedNames": object.pointer("/spec/names").cloned().unwrap_or(Value::Null),
                        "storedVersions": [storage],
                    });
                }
                return Ok(AfterCommit::InstallCrd {
                    group,
                    plural,
                    defs,
                });
            }
            Special::None | Special::Namespace | Special::Pod => {}
        }
        Ok(AfterCommit::Nothing)
    }

    fn after_commit(&self, after: AfterCommit) {
        if let AfterCommit::InstallCrd {
            group,
            plural,
            defs,
        } = after
        {
            self.store.install(&group, &plural, defs);
        }
    }

    fn after_delete(&self, deleted: &Value) {
        if self.def.special == Special::Crd {
            let group = deleted
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let plural = deleted
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.store.uninstall(group, plural);
        }
    }

    fn map_write_error(&self, err: WriteError, name: &str) -> ApiError {
        match err {
            WriteError::AlreadyExists => {
                ApiError::already_exists(&self.def.group, &self.def.plural, name)
            }
            WriteError::NotFound => self.not_found(name),
            WriteError::Changed => ApiError::stale(&self.def.group, &self.def.plural, name),
            WriteError::NamespaceNotFound(ns) => ApiError::not_found("", "namespaces", &ns),
            WriteError::NoCollection => ApiError::no_route(),
        }
    }

    /// `POST`: creates an object.
    pub fn create(&self, mut body: Value) -> Result<Obj, ApiError> {
        self.check_type(&mut body)?;
        self.normalize_identity(&mut body, None)?;
        let explicit = meta::meta_str(&body, "name")
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let generate = meta::meta_str(&body, "generateName")
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let name = match (&explicit, &generate) {
            (Some(name), _) => name.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", meta::name_suffix()),
            (None, None) => {
                return Err(self.invalid(
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        };
        meta::set_meta(&mut body, "name", Value::String(name.clone()));
        if let Some(cause) = meta::validate_name(&name, self.def.special == Special::Namespace) {
            return Err(self.invalid(&name, vec![cause]));
        }
        for field in SYSTEM_FIELDS {
            meta::remove_meta(&mut body, field);
        }
        meta::remove_meta(&mut body, "managedFields");
        meta::set_meta(&mut body, "uid", Value::String(meta::new_uid()));
        meta::set_meta(&mut body, "creationTimestamp", Value::String(meta::now()));
        if self.def.has_generation {
            meta::set_meta(&mut body, "generation", json!(1));
        }
        if let Some(map) = body.as_object_mut() {
            match self.def.special {
                Special::Namespace => {
                    map.insert("status".into(), json!({"phase": "Active"}));
                }
                Special::Pod => {
                    map.insert("status".into(), json!({"phase": "Pending"}));
                }
                Special::Custom | Special::None if self.def.status_subresource => {
                    map.remove("status");
                }
                _ => {}
            }
        }
        let after = self.admit(&mut body, None)?;
        if self.dry_run {
            return Ok(Arc::new(body));
        }
        let require_ns = if self.def.namespaced && self.require_namespaces {
            self.namespace.clone()
        } else {
            None
        };
        let mut name = name;
        for _ in 0..8 {
            match self.store.write(
                &self.def,
                &self.key(&name),
                WriteOp::Create(body.clone()),
                require_ns.as_deref(),
            ) {
                Ok(obj) => {
                    self.after_commit(after);
                    return Ok(obj);
                }
                Err(WriteError::AlreadyExists) if explicit.is_none() => {
                    if let Some(prefix) = &generate {
                        name = format!("{prefix}{}", meta::name_suffix());
                        meta::set_meta(&mut body, "name", Value::String(name.clone()));
                    }
                }
                Err(e) => return Err(self.map_write_error(e, &name)),
            }
        }
        Err(ApiError::already_exists(
            &self.def.group,
            &self.def.plural,
            &name,
        ))
    }

    /// `GET`: one object.
    pub fn get(&self, name: &str) -> Result<Obj, ApiError> {
        self.store
            .get(&self.def, &self.key(name))
            .ok_or_else(|| self.not_found(name))
    }

    /// `PUT`: replaces an object (or its status).
    pub fn update(&self, name: &str, body: Value, sub: Sub) -> Result<Obj, ApiError> {
        let explicit_rv = meta::meta_str(&body, "resourceVersion").filter(|s| !s.is_empty());
        if explicit_rv.is_none() && self.def.special == Special::Custom {
            return Err(self.invalid(
                name,
                vec![Cause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }],
            ));
        }
        self.modify(name, sub, |_| Ok(body.clone()))
    }

    /// `PATCH`: patches an object (or its status); server-side apply creates a missing object.
    pub fn patch(
        &self,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        sub: Sub,
        field_manager: Option<&str>,
    ) -> Result<(u16, Obj), ApiError> {
        let patch = patch::parse_body(patch_type, body)?;
        if patch_type == PatchType::Apply {
            if field_manager.is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(
                    "PATCH /apply requires fieldManager: fieldManager is required for apply requests",
                ));
            }
            let mut typed = patch.clone();
            if patch.get("apiVersion").is_none() || patch.get("kind").is_none() {
                return Err(ApiError::bad_request(
                    "error decoding YAML: Object 'Kind' is missing in the applied configuration (apiVersion and kind are required)",
                ));
            }
            self.check_type(&mut typed)?;
        }
        // Server-side apply: what this manager applies now, to remove what it applied before
        // and no longer does (see `crate::apply`).
        let applier = (patch_type == PatchType::Apply).then(|| {
            let status = sub == Sub::Status;
            let fields = crate::apply::fields_of(&patch, status, self.def.status_subresource);
            (field_manager.unwrap_or_default(), status, fields)
        });
        let key = format!("{}/{}", self.def.plural, self.key(name));
        let record = |obj: &Obj| {
            if let Some((manager, status, fields)) = &applier
                && !self.dry_run
            {
                let uid = meta::meta_str(obj, "uid").unwrap_or_default().to_string();
                self.store
                    .applied
                    .record(&key, &uid, manager, *status, fields.clone());
            }
        };
        loop {
            let exists = self.store.get(&self.def, &self.key(name)).is_some();
            if !exists && patch_type == PatchType::Apply && sub == Sub::Main {
                let mut body = patch.clone();
                meta::ensure_metadata(&mut body);
                self.normalize_identity(&mut body, Some(name))?;
                match self.create(body) {
                    Ok(obj) => {
                        record(&obj);
                        return Ok((201, obj));
                    }
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => return Err(e),
                }
            }
            return self
                .modify(name, sub, |old| {
                    let mut new = patch::apply_patch(patch_type, old, &patch)?;
                    if let Some((manager, status, fields)) = &applier {
                        let uid = meta::meta_str(old, "uid").unwrap_or_default().to_string();
                        self.store
                            .applied
                            .prune(&key, &uid, manager, *status, fields, &mut new);
                    }
                    Ok(new)
                })
                .map(|obj| {
                    record(&obj);
                    (200, obj)
                });
        }
    }

    /// Read, compute, commit; retried when the object changed in between (a stale explicit
    /// `resourceVersion` is a `409 Conflict` instead).
    fn modify(
        &self,
        name: &str,
        sub: Sub,
        compute: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Obj, ApiError> {
        let key = self.key(name);
        loop {
            let old = self
                .store
                .get(&self.def, &key)
                .ok_or_else(|| self.not_found(name))?;
            let old_rv = meta::resource_version(&old).unwrap_or(0);
            let new = compute(&old)?;
            if let Some(rv) = meta::meta_str(&new, "resourceVersion").filter(|s| !s.is_empty())
                && rv.parse::<u64>().ok() != Some(old_rv)
            {
                return Err(ApiError::stale(&self.def.group, &self.def.plural, name));
            }
            let (op, after) = match self.prepare_update(&old, new, sub, name)? {
                Prepared::NoOp => return Ok(old),
                Prepared::Write(object, after) => (
                    WriteOp::Update {
                        expected_rv: old_rv,
                        object,
                    },
                    after,
                ),
                Prepared::Remove(last) => (
                    WriteOp::Delete {
                        expected_rv: old_rv,
                        last,
                    },
                    AfterCommit::Nothing,
                ),
            };
            if self.dry_run {
                return Ok(Arc::new(match op {
                    WriteOp::Update { object, .. } => object,
                    WriteOp::Delete { last, .. } | WriteOp::Create(last) => last,
                }));
            }
            let removing = matches!(op, WriteOp::Delete { .. });
            match self.store.write(&self.def, &key, op, None) {
                Ok(obj) => {
                    if removing {
                        self.after_delete(&obj);
                    } else {
                        self.after_commit(after);
                    }
                    return Ok(obj);
                }
                Err(WriteError::Changed) => continue,
                Err(e) => return Err(self.map_write_error(e, name)),
            }
        }
    }

    fn prepare_update(
        &self,
        old: &Value,
        mut new: Value,
        sub: Sub,
        name: &str,
    ) -> Result<Prepared, ApiError> {
        self.check_type(&mut new)?;
        self.normalize_identity(&mut new, Some(name))?;
        let mut result = match sub {
            Sub::Status => {
                let mut result = old.clone();
                if let Some(map) = result.as_object_mut() {
                    match new.get("status") {
                        Some(status) => {
                            map.insert("status".into(), status.clone());
                        }
                        None => {
                            map.remove("status");
                        }
                    }
                }
                result
            }
            Sub::Main => {
                for field in SYSTEM_FIELDS {
                    match old.get("metadata").and_then(|m| m.get(*field)) {
                        Some(v) => meta::set_meta(&mut new, field, v.clone()),
                        None => meta::remove_meta(&mut new, field),
                    }
                }
                if self.def.status_subresource
                    && let Some(map) = new.as_object_mut()
                {
                    match old.get("status") {
                        Some(status) => {
                            map.insert("status".into(), status.clone());
                        }
                        None => {
                            map.remove("status");
                        }
                    }
                }
                if meta::meta_str(old, "deletionTimestamp").is_some() {
                    let before = meta::finalizers(old);
                    let added: Vec<String> = meta::finalizers(&new)
                        .into_iter()
                        .filter(|f| !before.contains(f))
                        .collect();
                    if !added.is_empty() {
                        return Err(self.invalid(
                            name,
                            vec![Cause {
                                reason: "FieldValueForbidden".into(),
                                message: format!(
                                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                                ),
                                field: "metadata.finalizers".into(),
                            }],
                        ));
                    }
                }
                new
            }
        };
        let after = self.admit(&mut result, Some(old))?;
        if self.def.has_generation {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let generation = if spec_changed(old, &result, self.def.status_subresource) {
                generation + 1
            } else {
                generation
            };
            meta::set_meta(&mut result, "generation", json!(generation));
        }
        if result == *old {
            return Ok(Prepared::NoOp);
        }
        if meta::meta_str(&result, "deletionTimestamp").is_some()
            && meta::finalizers(&result).is_empty()
        {
            return Ok(Prepared::Remove(result));
        }
        Ok(Prepared::Write(result, after))
    }

    /// `DELETE`: removes an object, or marks it for deletion while finalizers remain.
    pub fn delete(&self, name: &str, options: &Value) -> Result<Obj, ApiError> {
        let key = self.key(name);
        loop {
            let old = self
                .store
                .get(&self.def, &key)
                .ok_or_else(|| self.not_found(name))?;
            let old_rv = meta::resource_version(&old).unwrap_or(0);
            if let Some(pre) = options.get("preconditions") {
                if let Some(uid) = pre.get("uid").and_then(Value::as_str) {
                    let actual = meta::meta_str(&old, "uid").unwrap_or_default();
                    if uid != actual {
                        return Err(ApiError::conflict(
                            &self.def.group,
                            &self.def.plural,
                            name,
                            &format!(
                                "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                            ),
                        ));
                    }
                }
                if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str)
                    && rv.parse::<u64>().ok() != Some(old_rv)
                {
                    return Err(ApiError::conflict(
                        &self.def.group,
                        &self.def.plural,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old_rv}"
                        ),
                    ));
                }
            }
            let op = if meta::finalizers(&old).is_empty() {
                WriteOp::Delete {
                    expected_rv: old_rv,
                    last: (*old).clone(),
                }
            } else {
                if meta::meta_str(&old, "deletionTimestamp").is_some() {
                    return Ok(old);
                }
                let mut marked = (*old).clone();
                meta::set_meta(&mut marked, "deletionTimestamp", Value::String(meta::now()));
                meta::set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0));
                if self.def.has_generation {
                    let generation = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    meta::set_meta(&mut marked, "generation", json!(generation + 1));
                }
                WriteOp::Update {
                    expected_rv: old_rv,
                    object: marked,
                }
            };
            if self.dry_run {
                return Ok(old);
            }
            let removing = matches!(op, WriteOp::Delete { .. });
            match self.store.write(&self.def, &key, op, None) {
                Ok(obj) => {
                    if removing {
                        self.after_delete(&obj);
                    }
                    return Ok(obj);
                }
                Err(WriteError::Changed) => continue,
                Err(e) => return Err(self.map_write_error(e, name)),
            }
        }
    }

    /// `DELETE` on a collection: deletes every matching object.
    pub fn delete_collection(
        &self,
        filter: &Filter,
        options: &Value,
    ) -> Result<Vec<Obj>, ApiError> {
        let page = self.store.list(&self.def, filter, None, None);
        let mut deleted = Vec::new();
        for obj in page.items {
            let name = object_name(&obj);
            let ns = meta::meta_str(&obj, "namespace").map(str::to_string);
            let scoped = Ops {
                store: self.store,
                def: self.def.clone(),
                namespace: ns.or_else(|| self.namespace.clone()),
                require_namespaces: self.require_namespaces,
                dry_run: self.dry_run,
            };
            match scoped.delete(&name, options) {
                Ok(obj) => deleted.push(obj),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }

    /// Creates the object, or replaces it when it exists (used to install CRDs directly).
    pub fn create_or_replace(&self, body: Value) -> Result<Obj, ApiError> {
        match self.create(body.clone()) {
            Err(e) if e.reason == "AlreadyExists" => {
                let name = object_name(&body);
                self.modify(&name, Sub::Main, |old| {
                    let mut new = body.clone();
                    meta::ensure_metadata(&mut new);
                    if let Some(rv) = old.pointer("/metadata/resourceVersion") {
                        meta::set_meta(&mut new, "resourceVersion", rv.clone());
                    }
                    Ok(new)
                })
            }
            other => other,
        }
    }
}
