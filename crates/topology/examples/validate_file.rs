//! Benchmark (not a test): time and peak memory of `topology::load` on a file, for hostile inputs
//! such as a 50 MB topology of large `env`/`labels` maps merged across levels. Prints the outcome
//! (ok or the number of errors), the wall time and the peak RSS. Run with
//! `cargo run --release -p topology --example validate_file -- FILE`.

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: validate_file FILE");
        std::process::exit(2);
    };
    let start = Instant::now();
    let outcome = match topology::Source::from_file(&path) {
        Err(e) => format!("unreadable: {e}"),
        Ok(src) => match topology::load(&src, &topology::Options::default()) {
            Ok(l) => format!("ok ({} nodes)", l.lab.nodes.len()),
            Err(e) => format!("refused ({} errors)", e.0.errors().count()),
        },
    };
    let took = start.elapsed();
    // SAFETY: getrusage fills a zeroed struct.
    let rss_kb = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru.ru_maxrss
    };
    println!(
        "{}: {outcome} in {:.2} s, peak RSS {} MB",
        path.display(),
        took.as_secs_f64(),
        rss_kb / 1024
    );
}
