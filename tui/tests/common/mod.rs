//! Helpers shared by the command-line tests.

/// Splits a command line as a shell would for the book's commands: on spaces, with single
/// quotes keeping what they enclose together (`--protocol 'Locks(design: FencingTokens)'`).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!quoted, "unbalanced quote in the book: {line}");
    words.extend(word);
    words
}
