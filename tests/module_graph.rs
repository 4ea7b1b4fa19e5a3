//! The crate's top-level modules depend on each other in one direction only: every
//! `crate::<module>` path in `src/` (imports and inline paths alike, comments aside) is an
//! edge, and the graph has no cycle. The edges the architecture forbids by name are checked
//! too, and so is `#![forbid(unsafe_code)]` in the protocol modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/proxy/request.rs` → `proxy`), or `None` for
/// the crate root and the binary.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Every `crate::<name>` a line of code names.
fn crate_paths(line: &str) -> impl Iterator<Item = String> + '_ {
    line.match_indices("crate::").filter_map(move |(at, _)| {
        let before = line[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None; // `ferrovia_crate::`, not ours
        }
        let rest = &line[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    })
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let edges = graph.entry(from.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            edges.extend(crate_paths(line).filter(|to| *to != from));
        }
    }
    graph
}

/// A cycle through `node`, if there is one, as the path that closes it.
fn cycle(graph: &Graph, node: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut found = path[at..].to_vec();
        found.push(node.to_owned());
        return Some(found);
    }
    path.push(node.to_owned());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(found) = cycle(graph, next, path) {
            return Some(found);
        }
    }
    path.pop();
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(
        graph.contains_key("proxy") && graph.contains_key("runtime"),
        "{graph:?}"
    );
    for node in graph.keys() {
        if let Some(found) = cycle(&graph, node, &mut Vec::new()) {
            panic!("module cycle: {}\n{graph:#?}", found.join(" -> "));
        }
    }
}

#[test]
fn the_named_layers_do_not_reach_up() {
    let graph = graph();
    let forbidden = [
        ("settings", "cli"),
        ("contact", "proxy"),
        ("runtime", "stats"),
        ("stats", "runtime"),
        ("sip", "proxy"),
        ("proxy", "runtime"),
        ("record", "runtime"),
        ("record", "stats"),
        ("proxy", "protect"),
        ("protect", "runtime"),
        ("protect", "stats"),
    ];
    for (from, to) in forbidden {
        let edges = graph.get(from).cloned().unwrap_or_default();
        assert!(!edges.contains(to), "{from} imports {to}: {edges:?}");
    }
}

#[test]
fn the_protocol_modules_forbid_unsafe_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for module in ["sip", "proxy", "contact", "record", "stats", "protect"] {
        let text = std::fs::read_to_string(src.join(module).join("mod.rs")).expect("mod.rs");
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{module} does not forbid unsafe code"
        );
    }
}

#[test]
fn crate_paths_are_found_in_imports_and_inline() {
    let line = "use crate::sip::Flow; let x = crate::proxy::Outcome::Drop; ferrovia_crate::x";
    assert_eq!(crate_paths(line).collect::<Vec<_>>(), ["sip", "proxy"]);
}

#[test]
fn a_cycle_is_found() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycle(&graph, "a", &mut Vec::new()), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&graph, "a", &mut Vec::new()),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
