//! The crate's floors (DESIGN "Layout", `src/lib.rs`): every `use crate::...` in `src/` points
//! to the same floor or one below, and no two files import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floor of a module path's first segment.
fn floor(first: &str) -> Option<u8> {
    Some(match first {
        "sim" | "object" | "api" | "bug" => 0,
        "etcd" | "apiserver" | "client" | "controller" | "kube_rs" => 1,
        "check" => 2,
        "scenario" | "world" | "trace" | "testkit" => 3,
        "explore" | "shrink" | "replay" | "conformance" | "bench" | "report" | "progress"
        | "main" | "summary" | "sweep_dir" | "determinism" | "atomic_file" | "inputs"
        | "testing" => 4,
        _ => return None,
    })
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") && !path.ends_with("tests.rs") {
            files.push(path);
        }
    }
}

/// The module path of a source file: `src/world/mod.rs` is `world`, `src/client/fifo.rs` is
/// `client::fifo`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

/// The child modules a file declares (`mod x;`, `pub mod x;`, not inline or test ones).
fn children(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter_map(|line| {
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("pub(crate) mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

/// The `use` statements of a file's text, each without `use` and `;` (attributes, comments
/// and visibility before them skipped).
fn use_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("").trim();
        if current.is_none() {
            let start = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix));
            current = start.map(str::to_owned);
        } else if let Some(statement) = current.as_mut() {
            statement.push_str(line);
        }
        if let Some(statement) = current.take_if(|statement| statement.contains(';')) {
            let tree = statement.split(';').next().unwrap_or("");
            statements.push(tree.chars().filter(|c| !c.is_whitespace()).collect());
        }
    }
    statements
}

/// Expands a use tree (`a::{b::C, d}`) into its paths, each as segments.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        return vec![
            path.split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .filter(|segment| !segment.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(expand)
        .map(|rest| {
            let rest = if rest.first().is_some_and(|first| first == "self") {
                rest[1..].to_vec()
            } else {
                rest
            };
            [prefix.clone(), rest].concat()
        })
        .collect()
}

/// Every crate path a file in `module` names in a `use` (`crate::`, `super::`, `self::` or a
/// child module's name), as absolute segments.
fn crate_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let children = children(text);
    let mut paths = Vec::new();
    for mut segments in use_statements(text).iter().flat_map(|tree| expand(tree)) {
        let absolute = match segments.first().map(String::as_str) {
            Some("crate") => segments.split_off(1),
            Some("super") => {
                let mut path = module[..module.len().saturating_sub(1)].to_vec();
                path.extend(segments.into_iter().skip(1));
                path
            }
            Some("self") => [module, &segments[1..]].concat(),
            Some(first) if children.contains(first) => [module, &segments[..]].concat(),
            _ => continue,
        };
        if !absolute.is_empty() {
            paths.push(absolute);
        }
    }
    paths
}

/// The `use crate::` edges of every file under `src`, by module path (non-test code only:
/// a file's `#[cfg(test)]` tail is cut off).
fn edges(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let module = module_of(src, &file);
        let paths = crate_paths(&module, code);
        edges
            .entry(module)
            .or_insert_with(BTreeSet::new)
            .extend(paths);
    }
    edges
}

/// An upward edge: a file importing from a floor above its own.
fn upward(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, targets) in edges {
        let from = module.first().map_or(4, |first| floor(first).unwrap_or(4));
        for target in targets {
            let to = floor(&target[0]).unwrap_or_else(|| panic!("unknown module {target:?}"));
            if to > from {
                found.push(format!(
                    "{} (floor {from}) imports {} (floor {to})",
                    module.join("::"),
                    target.join("::")
                ));
            }
        }
    }
    found
}

/// The file a crate path names: its longest prefix that is a module.
fn resolve(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|len| path[..len].to_vec())
        .find(|prefix| modules.contains(prefix))
}

/// A circle of imports between files, if any.
fn circle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    let modules: BTreeSet<Vec<String>> = edges.keys().cloned().collect();
    let graph: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = edges
        .iter()
        .map(|(module, targets)| {
            let resolved = targets
                .iter()
                .filter_map(|target| resolve(&modules, target))
                .filter(|target| target != module)
                .collect();
            (module, resolved)
        })
        .collect();
    // Depth-first search with colours: a grey node met again closes a circle.
    fn visit<'a>(
        node: &'a Vec<String>,
        graph: &'a BTreeMap<&'a Vec<String>, BTreeSet<Vec<String>>>,
        grey: &mut Vec<&'a Vec<String>>,
        black: &mut BTreeSet<&'a Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(start) = grey.iter().position(|seen| *seen == node) {
            let mut names: Vec<String> = grey[start..].iter().map(|m| m.join("::")).collect();
            names.push(node.join("::"));
            return Some(names);
        }
        if black.contains(node) {
            return None;
        }
        grey.push(node);
        for next in graph.get(node).into_iter().flatten() {
            let next = graph.get_key_value(next).map(|(key, _)| *key)?;
            if let Some(found) = visit(next, graph, grey, black) {
                return Some(found);
            }
        }
        grey.pop();
        black.insert(node);
        None
    }
    let mut black = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, &graph, &mut Vec::new(), &mut black))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_file_imports_from_a_floor_above_its_own() {
    let found = upward(&edges(&src()));
    assert!(found.is_empty(), "upward imports:\n{}", found.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let found = circle(&edges(&src()));
    assert!(
        found.is_none(),
        "import circle: {}",
        found.unwrap().join(" -> ")
    );
}

#[test]
fn the_checks_catch_an_upward_import_and_a_circle() {
    let module = |path: &str| path.split("::").map(str::to_owned).collect::<Vec<_>>();
    let mut edges = BTreeMap::new();
    edges.insert(
        module("client::fifo"),
        BTreeSet::from([module("world::client")]),
    );
    edges.insert(
        module("world::client"),
        BTreeSet::from([module("client::fifo")]),
    );
    assert_eq!(upward(&edges).len(), 1);
    assert!(circle(&edges).is_some());
    let text = "mod part;\nuse crate::api::{Status, WatchEvent};\npub use crate::bug::Bug;\n\
                use super::Ev;\nuse part::Slot;\nuse std::fmt;\n#[allow(unused)]\n\
                use crate::{\n    world::World,\n    sim::{self, Link},\n};";
    assert_eq!(
        crate_paths(&module("world::clients"), text),
        vec![
            module("api::Status"),
            module("api::WatchEvent"),
            module("bug::Bug"),
            module("world::Ev"),
            module("world::clients::part::Slot"),
            module("world::World"),
            module("sim"),
            module("sim::Link"),
        ]
    );
}
