//! Progress of a long command. On a terminal: one status line per stage (`links 812/2000`),
//! redrawn in place. Elsewhere (a pipe, a CI log): a timestamped log line when a stage starts and
//! when it finishes, with its count, its time and its slowest item (through the `log` facade, at
//! level info). Nothing with `quiet`.

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
    /// Log lines instead of a status line.
    lines: bool,
    stage_start: Mutex<Instant>,
    /// The slowest item of the stage so far.
    slowest: Mutex<Option<(String, Duration)>>,
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
        let terminal = std::io::stderr().is_terminal();
        let enabled = !quiet && terminal;
        let inner = Arc::new(Inner {
            enabled,
            lines: !quiet && !terminal,
            stage_start: Mutex::new(Instant::now()),
            slowest: Mutex::new(None),
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
        *self.inner.stage_start.lock().expect("stage start") = Instant::now();
        *self.inner.slowest.lock().expect("slowest") = None;
        if self.inner.lines {
            log::info!("{label}: {total} to do");
        }
    }

    pub fn step(&self, n: usize) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
    }

    /// One item of the stage is done (`what`, which took `took`): the slowest is reported.
    pub fn step_item(&self, what: &str, took: Duration) {
        self.step(1);
        let mut slowest = self.inner.slowest.lock().expect("slowest");
        if slowest.as_ref().is_none_or(|(_, t)| took > *t) {
            *slowest = Some((what.to_string(), took));
        }
    }

    /// Close the current stage's line (it stays on screen with its final count).
    fn finish_line(&self) {
        let label = self.inner.label.lock().expect("label").clone();
        if label.is_empty() {
            return;
        }
        if self.inner.enabled {
            self.inner.draw();
            eprintln!();
        }
        if self.inner.lines {
            let took = self
                .inner
                .stage_start
                .lock()
                .expect("stage start")
                .elapsed();
            let slowest = match self.inner.slowest.lock().expect("slowest").take() {
                Some((what, t)) => format!(", slowest {what} {:.2} s", t.as_secs_f64()),
                None => String::new(),
            };
            log::info!(
                "{label}: {}/{} done in {:.2} s{slowest}",
                self.inner.done.load(Ordering::Relaxed),
                self.inner.total.load(Ordering::Relaxed),
                took.as_secs_f64()
            );
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
