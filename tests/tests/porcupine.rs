//! The linearizability checker agrees with every published verdict on Porcupine's test data
//! (Jepsen etcd register logs and key-value logs, copied into tests/data/porcupine with their
//! license and provenance).

mod common;

use simlab_sim::linearizability::formats::{ModelKind, check_text};

#[test]
fn every_published_verdict_is_reproduced() {
    let data = common::root().join("tests/data/porcupine");
    let table = std::fs::read_to_string(data.join("verdicts.tsv"))
        .expect("tests/data/porcupine/verdicts.tsv");
    let mut checked = 0;
    let mut linearizable = 0;
    for row in table.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = row.split('\t').collect();
        let [file, model, verdict] = fields[..] else {
            panic!("bad row {row:?}")
        };
        let model = match model {
            "register" => ModelKind::Register,
            "kv" => ModelKind::Kv,
            other => panic!("unknown model {other}"),
        };
        let expected = match verdict {
            "linearizable" => true,
            "not-linearizable" => false,
            other => panic!("unknown verdict {other}"),
        };
        let text = std::fs::read_to_string(data.join(file)).unwrap();
        let result = check_text(model, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(result.verdict.is_linearizable(), expected, "{file}");
        checked += 1;
        linearizable += usize::from(expected);
    }
    assert_eq!(checked, 108, "102 etcd logs and 6 kv logs");
    assert_eq!(linearizable, 23 + 3);
}
