//! The import graph of the engine (`sim`) and of `protocols` has no circles: each file holds one
//! concept, and concepts depend on each other in one direction only.
//!
//! A crate's modules are its top-level files and folders (`sim/src/network.rs`,
//! `sim/src/simulation/`); the crate root (`lib.rs`) is a module too for the items it defines.
//! An edge `a -> b` is a path `crate::b…` written in `a` (or, for an item the root re-exports,
//! the module it comes from). The root's own re-exports are its public face, not dependencies.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The module a source file belongs to.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every name following `crate::` in code (`crate::a::b` gives `a`; `crate::{a, b::c}` gives
/// `a`, `b`); comments, doc comments included, are not imports.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// The import graph of a crate given as `(path below src/, text)` pairs.
fn import_graph(files: &[(String, String)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(Path::new(p))).collect();
    // Names the root re-exports (`pub use x::{A, B}`) come from module x.
    let mut exported: BTreeMap<String, String> = BTreeMap::new();
    if let Some((_, root)) = files.iter().find(|(p, _)| p == "lib.rs") {
        for line in root.lines() {
            let Some(used) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let Some((module, names)) = used.split_once("::") else {
                continue;
            };
            for name in names.trim_matches(|c| "{};".contains(c)).split(',') {
                exported.insert(name.trim().to_string(), module.trim().to_string());
            }
        }
    }
    let mut graph = Graph::new();
    for (path, text) in files {
        let from = module_of(Path::new(path));
        let edges = graph.entry(from.clone()).or_default();
        let mut targets = crate_paths(text);
        if path == "lib.rs" {
            // The root's own definitions (e.g. a registry list written as `module::Type`)
            // depend on the modules they name; its `pub use` and `mod` lines do not.
            for line in text.lines().map(str::trim) {
                if line.starts_with("pub use ")
                    || line.starts_with("pub mod ")
                    || line.starts_with("mod ")
                    || line.starts_with("//")
                {
                    continue;
                }
                for module in &modules {
                    if line.contains(&format!("{module}::")) {
                        targets.push(module.clone());
                    }
                }
            }
        }
        for name in targets {
            let to = if modules.contains(&name) {
                name
            } else if let Some(module) = exported.get(&name) {
                module.clone()
            } else if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                "lib".to_string() // defined in the root
            } else {
                continue; // `crate::` in a doc or an external macro
            };
            if to != from {
                edges.insert(to);
            }
        }
    }
    graph
}

/// A circle in the graph, as the modules on it, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn crate_files(krate: &str) -> Vec<(String, String)> {
    let src = common::root().join(krate).join("src");
    let mut out = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(&src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_engine_and_the_protocols_import_without_circles() {
    for krate in ["sim", "protocols"] {
        let graph = import_graph(&crate_files(krate));
        assert!(
            graph.len() > 5,
            "{krate}: only {} modules found",
            graph.len()
        );
        if let Some(cycle) = find_cycle(&graph) {
            let edges: Vec<String> = graph
                .iter()
                .map(|(from, to)| {
                    format!(
                        "  {from} -> {}",
                        to.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect();
            panic!(
                "{krate}: the modules import each other in a circle: {}\n{}",
                cycle.join(" -> "),
                edges.join("\n")
            );
        }
    }
}

#[test]
fn a_planted_circle_is_found() {
    let files = |extra: &str| {
        vec![
            (
                "lib.rs".to_string(),
                "pub mod a;\npub mod b;\npub use b::Thing;\n".to_string(),
            ),
            ("a.rs".to_string(), "use crate::Thing;\n".to_string()),
            (
                "b/mod.rs".to_string(),
                format!("use crate::{{c}};\n{extra}"),
            ),
            ("b/inner.rs".to_string(), "use super::*;\n".to_string()),
            (
                "c.rs".to_string(),
                "// crate::nothing here counts\n".to_string(),
            ),
        ]
    };
    let clean = import_graph(&files(""));
    assert_eq!(clean["a"], BTreeSet::from(["b".to_string()]));
    assert_eq!(find_cycle(&clean), None);
    let circular = import_graph(&files("fn f() { crate::a::g(); }\n"));
    assert_eq!(
        find_cycle(&circular),
        Some(vec!["a".to_string(), "b".to_string(), "a".to_string()])
    );
}
