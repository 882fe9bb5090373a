//! placeholder until the double lands
