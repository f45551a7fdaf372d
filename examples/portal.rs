//! placeholder while the portal API lands
fn main() {}
