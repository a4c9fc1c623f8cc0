//! Work on large reads spread over the machine's cores: an hour of a large mesh is 100k+
//! rollups to decode and merge, which took as long as reading them on one core.

use super::StoreError;

/// Threads one call uses at most.
const MAX_THREADS: usize = 4;
/// Items from which a second thread is worth starting.
const ITEMS_PER_THREAD: usize = 2_048;

/// `work` applied to every item, results in the items' order; on several threads when there
/// are many items. The first error (in item order) is returned.
pub fn try_map_in_order<R: Send, T: Send>(
    items: Vec<R>,
    work: impl Fn(R) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    try_map_in_order_by(items, ITEMS_PER_THREAD, work)
}

/// [`try_map_in_order`] for items of more work each: a second thread starts from
/// `items_per_thread` items.
pub fn try_map_in_order_by<R: Send, T: Send>(
    items: Vec<R>,
    items_per_thread: usize,
    work: impl Fn(R) -> Result<T, StoreError> + Sync,
) -> Result<Vec<T>, StoreError> {
    let num_threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(MAX_THREADS)
        .min(items.len() / items_per_thread.max(1))
        .max(1);
    if num_threads == 1 {
        return items.into_iter().map(work).collect();
    }
    let chunk_len = items.len().div_ceil(num_threads);
    let mut items = items.into_iter();
    let chunks: Vec<Vec<R>> = (0..num_threads)
        .map(|_| items.by_ref().take(chunk_len).collect())
        .collect();
    std::thread::scope(|scope| {
        let work = &work;
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || chunk.into_iter().map(work).collect::<Result<Vec<T>, _>>())
            })
            .collect();
        let mut results = Vec::new();
        for handle in handles {
            let part = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            results.extend(part);
        }
        Ok(results)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_the_first_error() {
        let items: Vec<u64> = (0..10_000).collect();
        let doubled = try_map_in_order(items.clone(), |n| Ok(n * 2)).expect("no error");
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        let failed = try_map_in_order(items, |n| {
            if n % 3_000 == 2_999 {
                Err(StoreError::Corrupt(format!("item {n}")))
            } else {
                Ok(n)
            }
        });
        assert_eq!(
            failed.expect_err("fails").to_string(),
            StoreError::Corrupt("item 2999".to_owned()).to_string()
        );
        let none = try_map_in_order(Vec::<u64>::new(), Ok).expect("no error");
        assert!(none.is_empty());
    }
}
