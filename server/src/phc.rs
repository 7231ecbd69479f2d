//! The argon2 PHC string format check shared by config validation and login: is this a
//! well-formed argon2 hash with sane cost parameters? Owns only the check; hashing and
//! verifying live in [`crate::auth`], reading the file in [`crate::config`].

use argon2::PasswordHash;
use argon2::{Algorithm, Params};

/// Largest argon2 memory cost accepted from a config file, KiB (1 GiB).
const MAX_M_COST_KIB: u32 = 1 << 20;
/// Largest argon2 time cost accepted from a config file.
const MAX_T_COST: u32 = 64;

/// Check that a string is an argon2 PHC hash with sane parameters (for config validation).
pub fn check_phc(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("not a PHC string: {e}"))?;
    if Algorithm::try_from(h.algorithm.as_str()).is_err() {
        return Err(format!("algorithm `{}` is not argon2", h.algorithm));
    }
    let p = Params::try_from(&h).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    if p.m_cost() > MAX_M_COST_KIB || p.t_cost() > MAX_T_COST {
        return Err("argon2 cost parameters are unreasonably large".into());
    }
    if h.hash.is_none() || h.salt.is_none() {
        return Err("PHC string lacks salt or hash".into());
    }
    Ok(())
}
