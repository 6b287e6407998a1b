//! The scenario table against the tokio adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Tokio);
