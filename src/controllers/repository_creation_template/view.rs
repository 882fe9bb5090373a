//! The registry's repository creation templates as the last sweep saw them, with the operator's
//! own writes applied at once (write-through). One DescribeRepositoryCreationTemplates (all
//! pages) per sweep serves every object's reconcile. A sweep never overwrites an entry written
//! after it started, so a template created or updated during a sweep is not forgotten.
//!
//! Each registry has its own view ([`Views`]): the own registry's, and one per RegistryTarget
//! that an object names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use super::plan::prefix_key;
use crate::api::RepositoryCreationTemplate;
use crate::registry::CreationTemplateInfo;

/// A registry: `None` for the operator's own, a RegistryTarget's name otherwise.
pub type RegistryKey = Option<String>;

/// The registries that `objects` name, each once.
pub fn registries<'a>(
    objects: impl IntoIterator<Item = &'a RepositoryCreationTemplate>,
) -> BTreeSet<RegistryKey> {
    objects
        .into_iter()
        .map(|o| o.target().map(str::to_string))
        .collect()
}

/// The view of each registry that some object names.
#[derive(Debug, Default)]
pub struct Views {
    views: RwLock<BTreeMap<RegistryKey, Arc<Templates>>>,
}

impl Views {
    /// The view of `target`'s registry, empty and not synced until its first sweep.
    pub fn of(&self, target: Option<&str>) -> Arc<Templates> {
        let key = target.map(str::to_string);
        if let Some(view) = self.read().get(&key) {
            return view.clone();
        }
        self.write().entry(key).or_default().clone()
    }

    /// Whether `target`'s registry has been swept (without creating its view).
    pub fn is_synced(&self, target: Option<&str>) -> bool {
        let key = target.map(str::to_string);
        self.read().get(&key).is_some_and(|v| v.is_synced())
    }

    /// Forgets the views of the registries no object names any more.
    pub fn retain(&self, named: &BTreeSet<RegistryKey>) {
        self.write().retain(|key, _| named.contains(key));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<RegistryKey, Arc<Templates>>> {
        // A poisoned lock only means a panic elsewhere mid-update; the map is still usable.
        self.views.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<RegistryKey, Arc<Templates>>> {
        self.views.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
struct Entry {
    info: Option<CreationTemplateInfo>,
    written_at: Instant,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    swept: bool,
}

#[derive(Debug, Default)]
pub struct Templates {
    state: RwLock<State>,
}

impl Templates {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere mid-update; the map is still usable.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a sweep has completed since the view was last forgotten.
    pub fn is_synced(&self) -> bool {
        self.read().swept
    }

    /// Forgets everything until the next sweep (no object to serve: nothing is read meanwhile).
    pub fn forget(&self) {
        *self.write() = State::default();
    }

    /// The sweep that started at `started` listed `templates`.
    pub fn apply_sweep(&self, started: Instant, templates: Vec<CreationTemplateInfo>) {
        let mut state = self.write();
        let mut entries: HashMap<String, Entry> = templates
            .into_iter()
            .map(|t| {
                let key = prefix_key(&t.template.prefix).to_string();
                let entry = Entry {
                    info: Some(t),
                    written_at: started,
                };
                (key, entry)
            })
            .collect();
        for (key, entry) in state.entries.drain() {
            if entry.written_at > started {
                entries.insert(key, entry);
            }
        }
        state.entries = entries;
        state.swept = true;
    }

    /// The template for `prefix`, `None` when there is none.
    pub fn lookup(&self, prefix: &str) -> Option<CreationTemplateInfo> {
        self.read()
            .entries
            .get(prefix_key(prefix))
            .and_then(|e| e.info.clone())
    }

    /// Records the operator's own write: the template as it now is, or `None` once deleted.
    pub fn record(&self, prefix: &str, info: Option<CreationTemplateInfo>) {
        let entry = Entry {
            info,
            written_at: Instant::now(),
        };
        self.write()
            .entries
            .insert(prefix_key(prefix).to_string(), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::CreationTemplate;

    fn template(prefix: &str, description: &str) -> CreationTemplateInfo {
        CreationTemplateInfo {
            template: CreationTemplate {
                prefix: prefix.into(),
                description: Some(description.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn sweeps_replace_the_view_but_keep_later_writes() {
        let view = Templates::default();
        assert!(!view.is_synced());
        let first = Instant::now();
        view.apply_sweep(
            first,
            vec![template("prod/", "swept"), template("ROOT", "r")],
        );
        assert!(view.is_synced());
        // The trailing / is assumed: prod and prod/ are one prefix.
        assert_eq!(
            view.lookup("prod").unwrap().template.description.as_deref(),
            Some("swept")
        );
        let second = Instant::now();
        // Written while the second sweep ran: the sweep's older picture does not win.
        view.record("prod", Some(template("prod", "written")));
        view.record("ROOT", None);
        view.apply_sweep(
            second,
            vec![template("prod", "stale"), template("ROOT", "r")],
        );
        assert_eq!(
            view.lookup("prod/")
                .unwrap()
                .template
                .description
                .as_deref(),
            Some("written")
        );
        assert!(view.lookup("ROOT").is_none());
        // The next sweep is newer than those writes.
        view.apply_sweep(Instant::now(), vec![template("ROOT", "back")]);
        assert!(view.lookup("prod").is_none());
        assert!(view.lookup("ROOT").is_some());
        view.forget();
        assert!(!view.is_synced());
    }

    fn object(name: &str, target: Option<&str>) -> RepositoryCreationTemplate {
        use crate::api::registry_target::RegistryRef;
        use crate::api::repository_creation_template::RepositoryCreationTemplateSpec;
        RepositoryCreationTemplate::new(
            name,
            RepositoryCreationTemplateSpec {
                registry_ref: target.map(|t| RegistryRef { name: t.into() }),
                prefix: "prod".into(),
                ..Default::default()
            },
        )
    }

    /// Each registry has its own view: a sweep of B says nothing of the own registry's templates,
    /// and a registry no object names any more is forgotten.
    #[test]
    fn one_view_per_registry() {
        let objects = [
            object("a", None),
            object("b", Some("b")),
            object("b2", Some("b")),
            object("c", Some("c")),
        ];
        let named = registries(&objects);
        let expected: BTreeSet<RegistryKey> = [None, Some("b".into()), Some("c".into())].into();
        assert_eq!(named, expected);
        assert!(registries(&[]).is_empty());

        let views = Views::default();
        assert!(!views.is_synced(Some("b")));
        views
            .of(Some("b"))
            .apply_sweep(Instant::now(), vec![template("prod", "in b")]);
        assert!(views.is_synced(Some("b")));
        assert!(!views.is_synced(None), "the own registry is not swept");
        assert!(views.of(None).lookup("prod").is_none());
        assert!(views.of(Some("c")).lookup("prod").is_none());
        assert!(Arc::ptr_eq(&views.of(Some("b")), &views.of(Some("b"))));

        views.retain(&registries(&objects[..1]));
        assert!(!views.is_synced(Some("b")), "b forgotten");
        assert!(views.of(Some("b")).lookup("prod").is_none());
    }
}
