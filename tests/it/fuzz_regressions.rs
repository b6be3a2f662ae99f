//! The fuzz targets' properties on stable Rust: every committed corpus input (seeds and the
//! inputs of crashes once found, kept as regressions) and a few thousand inputs a seeded
//! mutator derives from them. cargo-fuzz on nightly (`fuzz/`) searches further; this keeps
//! what it found fixed on every CI run, with or without nightly.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod properties;

/// The committed inputs of one target, sorted by name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} is missing: {e}", dir.display()))
        .flatten()
        .map(|entry| {
            let path = entry.path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the corpus {} is empty", dir.display());
    inputs
}

/// Bytes that the parsers treat specially, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b";",
    b",",
    b"=",
    b"\"",
    b"\\",
    b" ",
    b"\t",
    b"\0",
    b"/",
    b"*",
    b"**",
    b"?",
    b"[",
    b"]",
    b"{",
    b"}",
    b"!",
    b"rel=\"next\"",
    b"Bearer ",
    b"realm=",
    b"\xc3\xa9",
    b"\xff",
    b"null",
    b"[]",
    b"{}",
    b"\"SchemaVersion\":2",
    b"\"Severity\":\"CRITICAL\"",
    b"1e999",
    b"-1",
    b"\"Vulnerabilities\":[",
    b"\n",
];

/// A small deterministic generator (xorshift), so a failure names a reproducible input.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input`: flip, insert a token, delete, truncate, duplicate or splice.
fn mutate(input: &[u8], other: &[u8], dice: &mut Dice) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=dice.below(4) {
        let at = dice.below(out.len() + 1);
        match dice.below(6) {
            0 if !out.is_empty() => {
                let i = dice.below(out.len());
                out[i] ^= 1 << dice.below(8);
            }
            1 => {
                let token = TOKENS[dice.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if at < out.len() => {
                let end = (at + 1 + dice.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 => {
                let piece = out[at..].to_vec();
                out.extend_from_slice(&piece[..piece.len().min(256)]);
            }
            _ => {
                let from = dice.below(other.len() + 1);
                out.splice(at..at, other[from..].iter().copied().take(64));
            }
        }
    }
    out
}

/// Runs `property` over the corpus, then over `rounds` mutants of it.
fn check(target: &str, rounds: usize, property: fn(&[u8])) {
    let inputs = corpus(target);
    for (path, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| property(bytes));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }

    let mut dice = Dice(0x5eed_0000_0000_0001 ^ target.len() as u64);
    for round in 0..rounds {
        let (_, base) = &inputs[dice.below(inputs.len())];
        let (_, other) = &inputs[dice.below(inputs.len())];
        let input = mutate(base, other, &mut dice);
        let outcome = std::panic::catch_unwind(|| property(&input));
        assert!(
            outcome.is_ok(),
            "{target}: round {round} fails; add this input to fuzz/corpus/{target}/ as a \
             regression: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn trivy_json_to_sarif_holds_for_the_corpus_and_its_mutants() {
    check("trivy_to_sarif", 1_500, properties::trivy_to_sarif);
}

#[test]
fn link_header_holds_for_the_corpus_and_its_mutants() {
    check("link_header", 20_000, properties::link_header);
}

#[test]
fn www_authenticate_holds_for_the_corpus_and_its_mutants() {
    check("www_authenticate", 20_000, properties::www_authenticate);
}

#[test]
fn patterns_hold_for_the_corpus_and_its_mutants() {
    check("patterns", 5_000, properties::patterns);
}
