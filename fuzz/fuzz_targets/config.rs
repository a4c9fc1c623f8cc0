//! The config file: any text parses to a config or a clear error, and a parsed config
//! validates or says which field is wrong — alert rules included.
#![no_main]

use cartograph::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = toml::from_str::<Config>(text) {
        let _ = config.validate();
    }
});
