//! Progress on a terminal: one status line per stage (`links 812/2000`), redrawn in place; silent
//! when standard error is not a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Progress {
    inner: Arc<Inner>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    enabled: bool,
    label: Mutex<String>,
    done: AtomicUsize,
    total: AtomicUsize,
    stop: AtomicBool,
    start: Instant,
}

impl Inner {
    fn draw(&self) {
        let label = self.label.lock().expect("label").clone();
        let (d, t) = (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        );
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K{label} {d}/{t}  [{:.1}s]",
            self.start.elapsed().as_secs_f64()
        );
        let _ = e.flush();
    }
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let enabled = !quiet && std::io::stderr().is_terminal();
        let inner = Arc::new(Inner {
            enabled,
            label: Mutex::new(String::new()),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            start: Instant::now(),
        });
        let ticker = enabled.then(|| {
            let inner = inner.clone();
            std::thread::spawn(move || {
                while !inner.stop.load(Ordering::Relaxed) {
                    if !inner.label.lock().expect("label").is_empty() {
                        inner.draw();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        });
        Progress { inner, ticker }
    }

    /// Start a stage of `total` steps.
    pub fn stage(&self, label: &str, total: usize) {
        self.finish_line();
        *self.inner.label.lock().expect("label") = label.to_string();
        self.inner.done.store(0, Ordering::Relaxed);
        self.inner.total.store(total, Ordering::Relaxed);
    }

    pub fn step(&self, n: usize) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Close the current stage's line (it stays on screen with its final count).
    fn finish_line(&self) {
        if self.inner.enabled && !self.inner.label.lock().expect("label").is_empty() {
            self.inner.draw();
            eprintln!();
        }
    }

    /// Print a message above the status line.
    pub fn message(&self, msg: &str) {
        if self.inner.enabled {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{msg}");
    }

    pub fn finish(mut self) {
        self.finish_line();
        self.inner.label.lock().expect("label").clear();
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
    }
}
