//! The scenario table against the blocking adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Blocking);
