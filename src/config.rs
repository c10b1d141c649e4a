//! Client settings, merged once: embedded defaults < /etc/chartty/config.toml <
//! user config < CHARTTY_* environment < command line.
