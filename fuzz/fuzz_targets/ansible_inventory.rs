//! The Ansible inventory readers (INI, YAML, `ansible-inventory --list` JSON, host ranges)
//! and the resolution of hosts, groups and variables on arbitrary text: they must never panic,
//! only return errors; a range never expands past its limit; every host that resolves belongs
//! to the groups it says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_plan::ansible;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for parsed in [
        ansible::parse_ini(&text, "fuzz.ini"),
        ansible::parse_yaml(&text, "fuzz.yaml"),
        ansible::parse_list_json(&text, "fuzz.json"),
    ] {
        let Ok(inv) = parsed else { continue };
        let Ok(hosts) = inv.hosts("fuzz") else { continue };
        for h in &hosts {
            for g in &h.groups {
                assert!(
                    inv.members(g).contains(h.name.as_str()),
                    "host {} says it is in {g}, which does not list it",
                    h.name
                );
            }
        }
    }
    if let Some(first) = text.lines().next()
        && let Ok(expanded) = ansible::expand_hosts(first)
    {
        assert!(expanded.len() <= 100_000, "ranges grew past their limit");
    }
});
