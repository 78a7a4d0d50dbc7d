//! The layout the next engineer finds (issue 23): production files of a size one can read,
//! no two files of a crate importing each other, and every crate's root mapping its
//! modules. Reads the workspace's own sources; nothing runs.
//!
//! "Production" is each crate's `src/` up to its inline `#[cfg(test)] mod tests {` (files
//! named `tests.rs` or `*_tests.rs` are tests). An import is a `crate::`/`super::` path in
//! code (comments left out) that names a file module or an item that file defines; a
//! parent's `pub use child::X` re-exports are its module map, not a use of the child.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The library and binary crates; the test bed (`tests/`) and `bench/` are not production.
const CRATES: [&str; 6] = ["oci", "common", "fleet", "cli", "scheduler", "worker"];

/// Past this a file is split by what it holds.
const MAX_LINES: usize = 500;

type ModPath = Vec<String>;

struct File {
    path: PathBuf,
    /// Production code: up to the inline test module, comments removed.
    code: String,
    lines: usize,
    is_root: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` are module `a::b`; `lib.rs` and `main.rs` the crate root.
fn module_path(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn crate_files(krate: &str) -> BTreeMap<ModPath, File> {
    let src = workspace().join(krate).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let comment = Regex::new(r"//[^\n]*").unwrap();
    paths
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name != "tests.rs" && !name.ends_with("_tests.rs")
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let production = text
                .split("#[cfg(test)]\nmod tests {")
                .next()
                .unwrap()
                .to_string();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let file = File {
                lines: production.lines().count(),
                code: comment.replace_all(&production, "").into_owned(),
                is_root: matches!(name.as_str(), "mod.rs" | "lib.rs" | "main.rs"),
                path: p.clone(),
            };
            (module_path(&src, &p), file)
        })
        .collect()
}

/// Whether the file of `module` defines an item named `name` (not merely imports it).
fn defines(files: &BTreeMap<ModPath, File>, module: &ModPath, name: &str) -> bool {
    let Some(f) = files.get(module) else {
        return false;
    };
    let item = Regex::new(&format!(
        r"(?m)^\s*(pub(\([\w:]+\))? )?(async )?(fn|struct|enum|const|type|trait|static) {}\b",
        regex::escape(name)
    ))
    .unwrap();
    item.is_match(&f.code)
}

/// The file modules `module`'s code uses.
fn imports(files: &BTreeMap<ModPath, File>, module: &ModPath) -> BTreeSet<ModPath> {
    let f = &files[module];
    let parent: ModPath = module[..module.len().saturating_sub(1)].to_vec();
    let mut deps = BTreeSet::new();
    let mut resolve = |full: ModPath| {
        for k in (0..=full.len()).rev() {
            let prefix = full[..k].to_vec();
            if files.contains_key(&prefix) {
                if k == full.len() || defines(files, &prefix, &full[k]) {
                    deps.insert(prefix);
                }
                return;
            }
        }
    };
    let path = Regex::new(r"\b(crate|super)((?:::\w+)+)").unwrap();
    for c in path.captures_iter(&f.code) {
        let mut full = if &c[1] == "crate" {
            ModPath::new()
        } else {
            parent.clone()
        };
        full.extend(c[2].split("::").skip(1).map(str::to_string));
        resolve(full);
    }
    let group = Regex::new(r"\bsuper::\{([^}]*)\}").unwrap();
    for c in group.captures_iter(&f.code) {
        for item in c[1].split(',') {
            let name = item.trim().split("::").next().unwrap().split(' ').next();
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                let mut full = parent.clone();
                full.push(name.to_string());
                resolve(full);
            }
        }
    }
    if f.is_root {
        let reexports = Regex::new(r"(?m)^\s*pub(\([\w:]+\))? use [^;]*;").unwrap();
        let body = reexports.replace_all(&f.code, "");
        let child = Regex::new(r"(?:^|[^:\w])(\w+)::").unwrap();
        for c in child.captures_iter(&body) {
            let mut full = module.clone();
            full.push(c[1].to_string());
            if files.contains_key(&full) {
                deps.insert(full);
            }
        }
    }
    deps.remove(module);
    deps
}

fn shown(krate: &str, m: &ModPath) -> String {
    if m.is_empty() {
        format!("{krate}/src (root)")
    } else {
        format!("{krate}/src/{}", m.join("/"))
    }
}

#[test]
fn no_production_file_is_over_five_hundred_lines() {
    let mut long = Vec::new();
    for krate in CRATES {
        for f in crate_files(krate).values() {
            if f.lines > MAX_LINES {
                long.push(format!("{}: {} lines", f.path.display(), f.lines));
            }
        }
    }
    assert!(long.is_empty(), "files to split:\n{}", long.join("\n"));
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let mut circles = Vec::new();
    for krate in CRATES {
        let files = crate_files(krate);
        let edges: BTreeMap<&ModPath, BTreeSet<ModPath>> =
            files.keys().map(|m| (m, imports(&files, m))).collect();
        for (a, deps) in &edges {
            for b in deps {
                if a < &b && edges.get(b).is_some_and(|d| d.contains(*a)) {
                    circles.push(format!("{} <-> {}", shown(krate, a), shown(krate, b)));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn every_crate_root_maps_its_modules() {
    let mut unmapped = Vec::new();
    let declared = Regex::new(r"(?m)^(?:pub(?:\([\w:]+\))? )?mod (\w+);").unwrap();
    for krate in CRATES {
        let files = crate_files(krate);
        let root = &files[&ModPath::new()];
        let text = std::fs::read_to_string(&root.path).unwrap();
        let docs: String = text
            .lines()
            .filter(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        for c in declared.captures_iter(&text) {
            let name = &c[1];
            let mentioned = Regex::new(&format!(r"\b{}\b", regex::escape(name))).unwrap();
            if !mentioned.is_match(&docs) {
                unmapped.push(format!("{}: module {name}", root.path.display()));
            }
        }
    }
    assert!(
        unmapped.is_empty(),
        "modules the crate root's doc comment does not name:\n{}",
        unmapped.join("\n")
    );
}
