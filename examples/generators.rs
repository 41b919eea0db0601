//! Generators: recursive traversals, infinite sequences and iterator adapters.
//!
//! Run with `cargo run --release --example generators`.

use bobbin::{Generator, Yielder};

/// Every permutation of `items`, produced by a recursive function that yields each one.
fn permutations(items: Vec<char>) -> Generator<String> {
    fn permute(prefix: &mut Vec<char>, rest: &mut Vec<char>, y: &Yielder<(), String>) {
        if rest.is_empty() {
            y.suspend(prefix.iter().collect());
            return;
        }
        for i in 0..rest.len() {
            let c = rest.remove(i);
            prefix.push(c);
            permute(prefix, rest, y);
            prefix.pop();
            rest.insert(i, c);
        }
    }
    Generator::new(move |y| permute(&mut Vec::new(), &mut items.clone(), y))
}

/// The Fibonacci numbers, forever.
fn fibonacci() -> Generator<u64> {
    Generator::new(|y| {
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a.wrapping_add(b));
        }
    })
}

/// Paths of a small directory-like tree, depth first.
fn paths(tree: &'static [(&'static str, &'static [&'static str])]) -> Generator<String> {
    Generator::new(move |y| {
        for (dir, files) in tree {
            y.suspend(format!("{dir}/"));
            for f in *files {
                y.suspend(format!("{dir}/{f}"));
            }
        }
    })
}

fn main() {
    let perms: Vec<String> = permutations(vec!['a', 'b', 'c']).collect();
    println!("permutations of abc: {perms:?}");

    let even_fibs: Vec<u64> = fibonacci().filter(|n| n % 2 == 0).take(8).collect();
    println!("even Fibonacci numbers: {even_fibs:?}");

    let tree: &'static [(&str, &[&str])] = &[("src", &["lib.rs", "stack.rs"]), ("tests", &["context.rs"])];
    for (i, p) in paths(tree).enumerate() {
        println!("{i:>2} {p}");
    }

    let zipped: Vec<(u64, String)> = fibonacci().zip(permutations(vec!['x', 'y'])).collect();
    println!("zip stops at the shorter one: {zipped:?}");
}
