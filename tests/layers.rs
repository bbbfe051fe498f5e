//! The layers `src/lib.rs` draws are the layers the code has: every module uses only the
//! modules on the lines above its own (or, where the drawing says so, one on its own
//! line), and no two files use each other, directly or round a circle.
//!
//! Read from the source text: `use crate::…` and inline `crate::…` paths, outside the
//! files' test modules (tests may reach up, to build what they test).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A source file's module path below the crate root: `src/model/blocked/rows.rs` is
/// `model::blocked::rows`, `src/kernels/sparse/mod.rs` is `kernels::sparse`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its test module: what the layers are
/// about. A file that is itself a test module (`tests.rs`) has none.
fn code_of(file: &Path) -> String {
    if file.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = fs::read_to_string(file).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every crate path a piece of code names, whole: `use crate::a::{b, c::D}` gives `a::b`
/// and `a::c::D`; an inline `crate::a::b::f(…)` gives `a::b::f`.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at + "crate::".len()..];
        let end = if tail.chars().next().is_some_and(|c| c.is_alphanumeric()) {
            // A `{…}` group ends at its matching brace; a plain path at the first character
            // that cannot be in one.
            let mut depth = 0i32;
            let mut end = tail.len();
            for (i, c) in tail.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth > 0 => depth -= 1,
                    c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
                if depth == 0 && c == '}' {
                    end = i + 1;
                    break;
                }
            }
            end
        } else {
            0
        };
        expand(&tail[..end], &mut Vec::new(), &mut out);
        rest = &tail[end..];
    }
    out
}

/// Expands one use tree (`a::{b, c::{d, e}}`) below `prefix` into whole paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim().trim_end_matches("::");
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let depth_before = prefix.len();
        prefix.extend(head);
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&inner[start..i], prefix, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], prefix, out);
        prefix.truncate(depth_before);
        return;
    }
    let mut path = prefix.clone();
    let item = tree.split(" as ").next().unwrap_or(tree);
    path.extend(item.split("::").map(|s| s.trim().to_string()));
    if path.last().is_some_and(|s| s == "self") {
        path.pop();
    }
    out.push(path);
}

/// The layers the crate root draws: each line's modules, and the uses within a line it
/// allows (`(model uses data, loss)`).
fn drawn_layers(lib: &str) -> (BTreeMap<String, usize>, BTreeSet<(String, String)>) {
    let section = &lib[lib
        .find("//! ## The layers")
        .expect("lib.rs draws its layers")..];
    let start = section.find("//! ```text\n").unwrap() + "//! ```text\n".len();
    let end = start + section[start..].find("//! ```").unwrap();
    let (mut rank, mut same_line) = (BTreeMap::new(), BTreeSet::new());
    for (line_no, line) in section[start..end].lines().enumerate() {
        let line = line.trim_start_matches("//!").trim();
        let (modules, said) = line.split_once("  ").unwrap_or((line, ""));
        for m in modules.split(',') {
            rank.insert(m.trim().to_string(), line_no);
        }
        let mut said = said;
        while let Some(open) = said.find('(') {
            let close = open + said[open..].find(')').unwrap();
            if let Some((user, used)) = said[open + 1..close].split_once(" uses ") {
                for u in used.split(',') {
                    same_line.insert((user.trim().to_string(), u.trim().to_string()));
                }
            }
            said = &said[close + 1..];
        }
    }
    (rank, same_line)
}

#[test]
fn modules_use_only_the_layers_below_them_as_lib_rs_draws_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (rank, same_line) = drawn_layers(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // A macro a module exports sits at the crate root (`crate::forward_params!`): a use of
    // that module.
    let mut exported = BTreeMap::new();
    for file in &files {
        let code = code_of(file);
        for (at, _) in code.match_indices("#[macro_export]") {
            let after = code[at..].split_once("macro_rules! ").map(|(_, r)| r);
            let name: String = after
                .unwrap_or("")
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            exported.insert(name, module_of(&src, file)[0].clone());
        }
    }
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(top) = module.first() else { continue };
        let Some(&mine) = rank.get(top) else {
            wrong.push(format!(
                "{}: module {top} is not in lib.rs's layers",
                file.display()
            ));
            continue;
        };
        for path in crate_paths(&code_of(file)) {
            let Some(first) = path.first() else { continue };
            let used = exported.get(first).unwrap_or(first);
            if used == top {
                continue;
            }
            // Names the crate root re-exports (`crate::Scalar`) are a use of the root.
            let theirs = rank.get(used).copied();
            let allowed = match theirs {
                Some(r) => {
                    r < mine || (r == mine && same_line.contains(&(top.clone(), used.clone())))
                }
                None => false,
            };
            if !allowed {
                wrong.push(format!(
                    "{}: uses crate::{}",
                    file.display(),
                    path.join("::")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses against the layers:\n{}",
        wrong.join("\n")
    );
}

/// The file that defines `name` in the module at `module` (its own file or a file below
/// it), if exactly one does.
fn defining_file<'a>(
    defined: &'a BTreeMap<PathBuf, (Vec<String>, BTreeSet<String>)>,
    module: &[String],
    name: &str,
) -> Option<&'a PathBuf> {
    let found: Vec<&PathBuf> = defined
        .iter()
        .filter(|(_, (m, names))| m.starts_with(module) && names.contains(name))
        .map(|(f, _)| f)
        .collect();
    match found[..] {
        [one] => Some(one),
        _ => found
            .into_iter()
            .find(|f| defined.get(*f).is_some_and(|(m, _)| m == module)),
    }
}

#[test]
fn no_two_files_use_each_other_directly_or_round_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // What each file defines (items, not re-exports).
    let kinds = [
        "fn ",
        "struct ",
        "enum ",
        "trait ",
        "type ",
        "const ",
        "static ",
        "macro_rules! ",
    ];
    let mut defined = BTreeMap::new();
    for file in &files {
        let code = code_of(file);
        let mut names = BTreeSet::new();
        for line in code.lines() {
            let mut l = line.trim_start();
            for vis in ["pub(crate) ", "pub(super) ", "pub "] {
                l = l.strip_prefix(vis).unwrap_or(l);
            }
            for kind in kinds {
                if let Some(rest) = l.strip_prefix(kind) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.insert(name);
                }
            }
        }
        defined.insert(file.clone(), (module_of(&src, file), names));
    }
    // Each file's uses, resolved to the files that define what it names.
    let mut uses: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        for path in crate_paths(&code_of(file)) {
            for split in (1..path.len()).rev() {
                let (module, name) = (&path[..split], &path[split]);
                if let Some(def) = defining_file(&defined, module, name) {
                    if def != file {
                        uses.entry(file.clone()).or_default().insert(def.clone());
                    }
                    break;
                }
            }
        }
    }
    // A depth-first search for a circle.
    fn visit(
        f: &PathBuf,
        uses: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<PathBuf, bool>,
        trail: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        match state.get(f) {
            Some(true) => return None,
            Some(false) => {
                let at = trail.iter().position(|t| t == f).unwrap_or(0);
                return Some(trail[at..].to_vec());
            }
            None => {}
        }
        state.insert(f.clone(), false);
        trail.push(f.clone());
        for g in uses.get(f).into_iter().flatten() {
            if let Some(circle) = visit(g, uses, state, trail) {
                return Some(circle);
            }
        }
        trail.pop();
        state.insert(f.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    for file in &files {
        if let Some(circle) = visit(file, &uses, &mut state, &mut Vec::new()) {
            let names: Vec<String> = circle
                .iter()
                .map(|f| f.strip_prefix(&src).unwrap().display().to_string())
                .collect();
            panic!("files that use each other: {}", names.join(" → "));
        }
    }
    // The check sees the crate's real uses: the MLP's files reach the kernels.
    let mlp = src.join("model").join("mlp.rs");
    assert!(uses
        .get(&mlp)
        .is_some_and(|u| u.iter().any(|f| f.starts_with(src.join("kernels")))));
}

#[test]
fn the_use_trees_expand_to_whole_paths() {
    let code = "use crate::a::{b, c::{D, e as f}, self};\nlet x = crate::g::h(1);";
    let paths: Vec<String> = crate_paths(code).iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::D", "a::c::e", "a", "g::h"]);
}
