//! `kotae report` (placeholder).
