//! Where a copy writes: one destination repository ([`Target`]), and a job's destination
//! tags grouped by the repository they are in (the engine pushes one repository at a time).

use std::collections::BTreeMap;

use crate::reference::ImageRef;

/// The destination of a blob copy.
pub(crate) struct Target<'a> {
    pub(crate) registry: &'a str,
    pub(crate) repository: &'a str,
}

/// Items grouped by the (registry, repository) of their destination (`dst`), in a stable
/// order; each group keeps the items' order.
pub(crate) fn by_repository<'a, T: Copy>(
    items: impl IntoIterator<Item = T>,
    dst: impl Fn(T) -> &'a ImageRef,
) -> BTreeMap<(String, String), Vec<T>> {
    let mut map: BTreeMap<(String, String), Vec<T>> = BTreeMap::new();
    for item in items {
        let d = dst(item);
        map.entry((d.registry.clone(), d.repository.clone()))
            .or_default()
            .push(item);
    }
    map
}
