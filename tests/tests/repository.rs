//! The repository stands alone: no file in it refers to a path beside the checkout, so a fresh
//! clone builds and passes its tests with nothing next to it.

mod common;

use std::path::{Path, PathBuf};

/// Folders that are build output or version control, not the project's files.
const SKIPPED: &[&str] = &[
    "target",
    ".git",
    "book/book",
    "fuzz/target",
    "fuzz/corpus",
    "fuzz/artifacts",
];

fn project_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable folder") {
            let path = entry.expect("readable entry").path();
            let relative = path.strip_prefix(root).expect("below the root");
            if SKIPPED.iter().any(|s| relative == Path::new(s)) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every line of a project file below `root` that names the folder beside the checkout.
fn references_beside(root: &Path) -> Vec<String> {
    // Built from parts so that this file does not match itself.
    let sibling = format!("..{}shared", '/');
    let mut offenders = Vec::new();
    for file in project_files(root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        for (i, line) in text.lines().enumerate() {
            if line.contains(&sibling) {
                offenders.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    offenders
}

#[test]
fn no_file_reads_a_path_beside_the_repository() {
    let root = common::root();
    let files = project_files(&root).len();
    assert!(files > 100, "expected the whole tree, found {files} files");
    let offenders = references_beside(&root);
    assert!(
        offenders.is_empty(),
        "files that refer to a folder beside the repository (copy the data into it instead):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_check_catches_a_planted_reference() {
    let dir = std::env::temp_dir().join(format!("simlab-repo-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("sub/a.rs"),
        format!("let p = \"..{}shared/x\";\n", '/'),
    )
    .unwrap();
    std::fs::write(dir.join("b.md"), "nothing here\n").unwrap();
    let found = references_beside(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("a.rs:1:"), "{found:?}");
}

#[test]
fn the_porcupine_data_carries_its_license_and_provenance() {
    let data = common::root().join("tests/data");
    let license = std::fs::read_to_string(data.join("porcupine/LICENSE.md")).unwrap();
    assert!(license.contains("MIT License"));
    let provenance = std::fs::read_to_string(data.join("README.md")).unwrap();
    assert!(provenance.contains("55508eb201b314c218d7e8412c3ea4b9499a5f53"));
}
