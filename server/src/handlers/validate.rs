//! Bounds on the strings a client chooses (ids, names, profile text): the frame cap bounds a
//! whole envelope, these keep one user's choices from bloating what everyone else receives.
//!
//! Also THE rule for text people see, on every transport (WebSocket, SSE and REST call
//! [`control_character`]): names, ids and tags refuse every control character (Unicode `Cc`:
//! NUL, ESC, DEL, the C1 range, and line breaks); multi-line text (descriptions, messages,
//! reasons) refuses them too except line feed, carriage return and tab.

use signalbox_protocol::limits::{MAX_DISPLAY_NAME_CHARS, MAX_ID_BYTES, MAX_PROFILE_TEXT_CHARS};

use super::Refusal;

/// The first character of `value` the display-text rule refuses, if any (see the module docs).
pub fn control_character(value: &str, multiline: bool) -> Option<char> {
    value
        .chars()
        .find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
}

/// The message for a refused character, the same on every transport.
pub fn control_character_message(field: &str, refused: char) -> String {
    format!(
        "`{field}` must not contain control characters (found U+{:04X})",
        u32::from(refused)
    )
}

fn display_text(field: &str, value: &str, multiline: bool) -> Result<(), Refusal> {
    match control_character(value, multiline) {
        Some(c) => Err(Refusal::invalid(control_character_message(field, c))),
        None => Ok(()),
    }
}

/// An identifier (`serverId`, `channelId`, `oderId`, ...): 1 to `MAX_ID_BYTES` bytes, no control
/// characters.
pub fn id(field: &str, value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(Refusal::invalid(format!(
            "`{field}` must be 1 to {MAX_ID_BYTES} bytes"
        )));
    }
    display_text(field, value, false)
}

/// A display name: 1 to `MAX_DISPLAY_NAME_CHARS` characters once trimmed.
pub fn display_name(value: &str) -> Result<(), Refusal> {
    let count = value.trim().chars().count();
    if count == 0 || count > MAX_DISPLAY_NAME_CHARS {
        return Err(Refusal::invalid(format!(
            "`displayName` must be 1 to {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    display_text("displayName", value, false)
}

/// Free profile text (`description`, `connectionScope`): at most `MAX_PROFILE_TEXT_CHARS`.
pub fn profile_text(field: &str, value: Option<&str>) -> Result<(), Refusal> {
    match value {
        Some(text) if text.chars().count() > MAX_PROFILE_TEXT_CHARS => Err(Refusal::invalid(
            format!("`{field}` must be at most {MAX_PROFILE_TEXT_CHARS} characters"),
        )),
        Some(text) => display_text(field, text, true),
        None => Ok(()),
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
    fn control_characters_are_refused_the_same_way_everywhere() {
        assert_eq!(control_character("Ada", false), None);
        assert_eq!(control_character("a\0b", false), Some('\0'));
        assert_eq!(control_character("a\u{1b}[31m", true), Some('\u{1b}'));
        assert_eq!(control_character("a\u{85}", true), Some('\u{85}'));
        assert_eq!(control_character("two\nlines\tok", true), None);
        assert_eq!(control_character("two\nlines", false), Some('\n'));
        assert!(display_name("A\u{7f}da").is_err());
        let err = profile_text("description", Some("x\0")).expect_err("NUL");
        assert!(err.message.contains("U+0000"), "{}", err.message);
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
