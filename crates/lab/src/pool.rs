//! A fixed pool of worker threads over a slice of work, stopping early on interruption.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Run `f` on every item with `workers` threads; results come back in item order. Items not started
/// when `stop()` turns true get `None`.
pub fn run<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    stop: &(dyn Fn() -> bool + Sync),
    f: &(dyn Fn(&T) -> R + Sync),
) -> Vec<Option<R>> {
    let workers = workers.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    if workers == 1 {
        for (i, item) in items.iter().enumerate() {
            if stop() {
                break;
            }
            out[i] = Some(f(item));
        }
        return out;
    }
    let results: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() || stop() {
                            break;
                        }
                        mine.push((i, f(&items[i])));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    for (i, r) in results.into_iter().flatten() {
        out[i] = Some(r);
    }
    out
}

/// The default number of workers: the machine's CPUs.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
