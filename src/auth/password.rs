//! Password hashing (argon2id) and the password policy.
//!
//! Parameters: argon2id, 19 MiB of memory, 2 passes, 1 lane: the OWASP baseline
//! for argon2id, which costs about 24 ms per verification on one core of the
//! reference machine (see `docs/performance.md`). Hashing runs on the blocking pool so it
//! never stalls the async workers. Hashes are PHC strings, so the parameters can
//! be raised later without invalidating stored hashes.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::AppError;

const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

fn hasher() -> Argon2<'static> {
    // The constants above are valid parameters; `DEFAULT` is the same baseline.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string.
///
/// # Errors
/// `INTERNAL` when the system random source fails.
pub async fn hash(password: &str) -> Result<String, AppError> {
    let password = password.to_owned();
    run_hashing(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::internal(anyhow::anyhow!("password hashing failed: {e}")))
}

/// Runs one argon2 computation on the blocking pool, at most one per core at a
/// time: beyond that, concurrent hashes add only memory (19 MiB each) and latency,
/// and a burst of sign-ins could otherwise start hundreds of blocking threads.
async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    static PERMITS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new(cores)
    });
    let _permit = PERMITS.acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(AppError::internal)
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub async fn verify(password: &str, stored: &str) -> bool {
    let (password, stored) = (password.to_owned(), stored.to_owned());
    run_hashing(move || {
        hasher()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// A random password that always meets the policy: 20 characters of a random
/// token (120 bits), then a digit and a letter, since the token alone may
/// hold neither.
///
/// # Errors
/// When the system random source fails.
pub fn generate() -> Result<String, AppError> {
    let token = super::tokens::random_token()?;
    Ok(format!("{}7k", &token[..20]))
}

/// Spends the time of a real verification when an account does not exist, so a
/// login for an unknown name costs as much as one for a known name.
pub async fn verify_nobody(password: &str) {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let dummy = DUMMY
        .get_or_init(|| async {
            match super::tokens::random_token() {
                Ok(secret) => hash(&secret).await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
        .await;
    verify(password, dummy).await;
}

/// Checks the password policy: 10 to 128 characters, with a letter and a digit,
/// and not containing the username or the email's local part.
///
/// # Errors
/// `BAD_USER_INPUT` on `field` with every rule the password breaks.
pub fn check_policy(
    password: &str,
    username: &str,
    email: &str,
    field: &'static str,
) -> Result<(), AppError> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < MIN_LENGTH {
        problems.push(format!("at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        problems.push(format!("at most {MAX_LENGTH} characters"));
    }
    if !password.chars().any(char::is_alphabetic) {
        problems.push("a letter".to_owned());
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        problems.push("a digit".to_owned());
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if [username, local]
        .iter()
        .any(|part| part.len() >= 3 && lower.contains(&part.to_lowercase()))
    {
        problems.push("nothing of the username or email".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::bad_input(
            field,
            format!("the password needs {}", problems.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_always_meet_the_policy_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let password = generate().unwrap_or_default();
            assert!(
                check_policy(
                    &password,
                    "demo.driver",
                    "demo.driver@example.com",
                    "password"
                )
                .is_ok(),
                "{password}"
            );
            assert!(seen.insert(password));
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let first = hash("correct horse 42").await.unwrap_or_default();
        let second = hash("correct horse 42").await.unwrap_or_default();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify("correct horse 42", &first).await);
        assert!(!verify("correct horse 43", &first).await);
        assert!(!verify("anything", "not a hash").await);
    }

    #[test]
    fn the_policy_names_every_broken_rule() {
        assert!(check_policy("Tr0ub4dor&3x", "alice", "alice@example.com", "password").is_ok());
        let Err(AppError::BadUserInput { message, .. }) =
            check_policy("short", "alice", "a@b.c", "password")
        else {
            panic!("a short password must be refused");
        };
        assert!(
            message.contains("10 characters") && message.contains("digit"),
            "{message}"
        );
        assert!(check_policy("alice-1234567", "alice", "x@y.z", "password").is_err());
        assert!(check_policy("bobby-1234567", "carol", "bobby@y.z", "password").is_err());
    }
}
