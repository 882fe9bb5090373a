//! The figures a run produces: a table for people, `figure NAME VALUE UNIT` lines for scripts,
//! and `target/bench/figures.json`.

use std::path::PathBuf;

use crate::util::{BenchError, workspace_root};

#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub note: String,
}

#[derive(Debug, Default)]
pub struct Figures {
    items: Vec<Figure>,
}

/// Values printed with the precision they deserve: integers as integers, the rest to three
/// significant decimals.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

impl Figures {
    pub fn add(&mut self, name: &str, value: f64, unit: &str, note: &str) {
        eprintln!("   {name} = {} {unit}", format_value(value));
        self.items.push(Figure {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            note: note.to_string(),
        });
    }

    pub fn table(&self) -> String {
        let w_name = self
            .items
            .iter()
            .map(|f| f.name.len())
            .max()
            .unwrap_or(4)
            .max(6);
        let w_value = self
            .items
            .iter()
            .map(|f| format_value(f.value).len())
            .max()
            .unwrap_or(5)
            .max(5);
        let w_unit = self
            .items
            .iter()
            .map(|f| f.unit.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!(
            "{:<w_name$}  {:>w_value$}  {:<w_unit$}  NOTE\n",
            "FIGURE", "VALUE", "UNIT"
        );
        for f in &self.items {
            let line = format!(
                "{:<w_name$}  {:>w_value$}  {:<w_unit$}  {}",
                f.name,
                format_value(f.value),
                f.unit,
                f.note
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn lines(&self) -> String {
        self.items
            .iter()
            .map(|f| format!("figure {} {} {}\n", f.name, format_value(f.value), f.unit))
            .collect()
    }

    /// Writes `target/bench/figures.json` (under CARGO_TARGET_DIR's parent when that is set
    /// elsewhere, the workspace's `target/` otherwise) and returns its path.
    pub fn write_json(&self, mode: &str) -> Result<PathBuf, BenchError> {
        let dir = workspace_root().join("target/bench");
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io(&dir, e))?;
        let path = dir.join("figures.json");
        let value = serde_json::json!({
            "commit": commit(),
            "mode": mode,
            "measuredAt": chrono::Utc::now().to_rfc3339(),
            "figures": self.items.iter().map(|f| serde_json::json!({
                "name": f.name, "value": f.value, "unit": f.unit, "note": f.note,
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| BenchError::Scenario(format!("serializing figures: {e}")))?;
        std::fs::write(&path, text + "\n").map_err(|e| BenchError::io(&path, e))?;
        Ok(path)
    }
}

/// The commit measured (`git rev-parse HEAD`, with `-dirty` when the tree has changes).
pub fn commit() -> String {
    let root = workspace_root();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        return "unknown".to_string();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}
