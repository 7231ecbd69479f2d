//! Users, roles, bearer tokens, LAN allow-list and login throttling.
