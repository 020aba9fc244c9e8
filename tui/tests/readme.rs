//! Every `simlab` command in the README's console blocks runs, from the repository root, and
//! exits the way the README says (0 met or nothing found, 1 violation found).

mod common;

use common::shell_words;
use std::path::Path;
use std::process::Command;

#[test]
fn readme_commands_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut in_console = false;
    let mut ran = 0;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_console = line.trim() == "```console";
            continue;
        }
        let Some(command) = line.strip_prefix("simlab ").filter(|_| in_console) else {
            continue;
        };
        let (args, comment) = command.split_once('#').unwrap_or((command, ""));
        let args = shell_words(args);
        let expected = comment
            .trim()
            .strip_prefix("exits ")
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .map_or(0, |n| n.parse::<i32>().expect("an exit code"));
        let out = Command::new(env!("CARGO_BIN_EXE_simlab"))
            .args(&args)
            .current_dir(root)
            .output()
            .unwrap();
        let code = out.status.code();
        assert_eq!(
            code,
            Some(expected),
            "simlab {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 10, "found only {ran} commands in the README");
}
