//! The registry's repository creation templates as the last sweep saw them, with the operator's
//! own writes applied at once (write-through). One DescribeRepositoryCreationTemplates (all
//! pages) per sweep serves every object's reconcile. A sweep never overwrites an entry written
//! after it started, so a template created or updated during a sweep is not forgotten.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use super::plan::prefix_key;
use crate::registry::CreationTemplateInfo;

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
}
