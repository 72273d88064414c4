//! Real service processes for tests; filled in by the infrastructure work.
