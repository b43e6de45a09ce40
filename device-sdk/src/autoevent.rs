//! Auto events: timed reads of a device's sources, published as events (interval and onChange).
