//! Bounds on the strings a client chooses (ids, names, profile text): the frame cap bounds a
//! whole envelope, these keep one user's choices from bloating what everyone else receives.

use signalbox_protocol::limits::{MAX_DISPLAY_NAME_CHARS, MAX_ID_BYTES, MAX_PROFILE_TEXT_CHARS};

use super::Refusal;

/// An identifier (`serverId`, `channelId`, `oderId`, ...): 1 to `MAX_ID_BYTES` bytes, no control
/// characters.
pub fn id(field: &str, value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(Refusal::invalid(format!(
            "`{field}` must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Refusal::invalid(format!(
            "`{field}` must not contain control characters"
        )));
    }
    Ok(())
}

/// A display name: 1 to `MAX_DISPLAY_NAME_CHARS` characters once trimmed.
pub fn display_name(value: &str) -> Result<(), Refusal> {
    let count = value.trim().chars().count();
    if count == 0 || count > MAX_DISPLAY_NAME_CHARS {
        return Err(Refusal::invalid(format!(
            "`displayName` must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

/// Free profile text (`description`, `connectionScope`): at most `MAX_PROFILE_TEXT_CHARS`.
pub fn profile_text(field: &str, value: Option<&str>) -> Result<(), Refusal> {
    match value {
        Some(text) if text.chars().count() > MAX_PROFILE_TEXT_CHARS => Err(Refusal::invalid(
            format!("`{field}` must be at most {MAX_PROFILE_TEXT_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded() {
        assert!(id("serverId", "abc").is_ok());
        assert!(id("serverId", "").is_err());
        assert!(id("serverId", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert!(id("serverId", "a\nb").is_err());
        let err = id("channelId", "").expect_err("empty");
        assert!(err.message.contains("channelId"));
    }

    #[test]
    fn names_and_text_are_bounded() {
        assert!(display_name("Ada").is_ok());
        assert!(display_name("   ").is_err());
        assert!(display_name(&"é".repeat(MAX_DISPLAY_NAME_CHARS)).is_ok());
        assert!(display_name(&"é".repeat(MAX_DISPLAY_NAME_CHARS + 1)).is_err());
        assert!(profile_text("description", None).is_ok());
        assert!(
            profile_text("description", Some(&"x".repeat(MAX_PROFILE_TEXT_CHARS + 1))).is_err()
        );
    }
}
