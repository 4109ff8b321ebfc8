//! Why emergency access (救急時閲覧) is opened: a reason code, free text, or
//! both.

use super::Text;
use super::values::{invisible_format, shows_something};
use crate::error::ApiError;

crate::domain_enum! {
    /// A reason for opening emergency access, as a code an EMS crew can pick
    /// in a moving ambulance; free text may say more (`reason`).
    pub enum EmergencyReasonCode {
        /// 心肺停止: cardiac arrest.
        CardiacArrest = "CARDIAC_ARREST",
        /// 意識障害: impaired consciousness.
        ImpairedConsciousness = "IMPAIRED_CONSCIOUSNESS",
        /// 救急搬送中: in transport by ambulance.
        InTransport = "IN_TRANSPORT",
        /// 呼吸困難: respiratory distress.
        RespiratoryDistress = "RESPIRATORY_DISTRESS",
        /// 外傷: trauma (a fall, an accident).
        Trauma = "TRAUMA",
        /// 急変: sudden deterioration of a patient at home or in care.
        SuddenDeterioration = "SUDDEN_DETERIORATION",
        /// その他: another reason, which the free text must give.
        Other = "OTHER",
    }
}

impl EmergencyReasonCode {
    /// The code as the region says it.
    pub fn label(self) -> &'static str {
        match self {
            Self::CardiacArrest => "心肺停止",
            Self::ImpairedConsciousness => "意識障害",
            Self::InTransport => "救急搬送中",
            Self::RespiratoryDistress => "呼吸困難",
            Self::Trauma => "外傷",
            Self::SuddenDeterioration => "急変",
            Self::Other => "その他",
        }
    }
}

/// A validated reason for emergency access: a code, free text, or both —
/// never neither.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmergencyReason {
    code: Option<EmergencyReasonCode>,
    text: Option<Text>,
}

impl EmergencyReason {
    /// The fewest characters free text must have when it is the whole
    /// reason: "救急" (2 characters) says why; one character does not.
    pub const TEXT_ALONE_MIN_CHARS: usize = 2;
    /// The most characters the free text may have: a paragraph, not a
    /// record (the reason is read in the audit log, not written as notes).
    pub const TEXT_MAX_CHARS: usize = 1000;

    /// Parses the input's code and text. Length is counted in characters
    /// (Unicode scalar values) after trimming whitespace, full-width spaces
    /// included: Japanese text is 3 bytes a character, and "救急" is a
    /// reason. With a code, any non-blank text adds to it; alone, the text
    /// needs [`Self::TEXT_ALONE_MIN_CHARS`] visible characters. `OTHER`
    /// needs the text. Invisible formatting characters are refused (see
    /// [`invisible_format`]), and characters that show nothing do not count
    /// (see [`shows_something`]). `field` names the text's input field in
    /// errors.
    pub fn parse(
        field: &str,
        code: Option<EmergencyReasonCode>,
        text: Option<&str>,
    ) -> Result<Self, ApiError> {
        let text = match text {
            None => None,
            Some(raw) => {
                if let Some(c) = raw.chars().find(|c| invisible_format(*c)) {
                    return Err(ApiError::bad_input(
                        field,
                        format!(
                            "must not contain invisible formatting characters (U+{:04X}): the reason is read in the audit log as written",
                            u32::from(c)
                        ),
                    ));
                }
                if !raw.chars().any(shows_something) {
                    return Err(ApiError::bad_input(
                        field,
                        "must not be blank; leave it out when the reason code says enough",
                    ));
                }
                Some(Text::parse(field, raw, Self::TEXT_MAX_CHARS)?)
            }
        };
        match (code, &text) {
            (None, None) => Err(ApiError::bad_input(
                field,
                "say why emergency access is needed: give a reasonCode (CARDIAC_ARREST 心肺停止, IN_TRANSPORT 救急搬送中 …), a reason in words, or both",
            )),
            (Some(EmergencyReasonCode::Other), None) => Err(ApiError::bad_input(
                field,
                "reasonCode OTHER needs the reason in words",
            )),
            (None, Some(t))
                if t.as_str().chars().filter(|c| shows_something(*c)).count()
                    < Self::TEXT_ALONE_MIN_CHARS =>
            {
                Err(ApiError::bad_input(
                    field,
                    format!(
                        "must say why in at least {} characters, or give a reasonCode",
                        Self::TEXT_ALONE_MIN_CHARS
                    ),
                ))
            }
            _ => Ok(EmergencyReason { code, text }),
        }
    }

    pub fn code(&self) -> Option<EmergencyReasonCode> {
        self.code
    }

    /// The free text, if any.
    pub fn text(&self) -> Option<&str> {
        self.text.as_ref().map(Text::as_str)
    }

    /// The reason in words, as the grant stores it and the API shows it:
    /// 「心肺停止」, 「心肺停止: 自宅で倒れていた」, or the text alone.
    pub fn describe(&self) -> String {
        match (self.code, self.text()) {
            (Some(code), Some(text)) => format!("{}: {text}", code.label()),
            (Some(code), None) => code.label().to_string(),
            (None, Some(text)) => text.to_string(),
            (None, None) => String::new(),
        }
    }

    /// The reason as the audit log records it: the code's name and label,
    /// then the text (`CARDIAC_ARREST 心肺停止: 自宅で倒れていた`); the text
    /// alone when no code was given.
    pub fn audit_detail(&self) -> String {
        match self.code {
            Some(code) => format!("{} {}", code.as_str(), self.describe()),
            None => self.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_japanese_characters_are_a_reason() {
        let r = EmergencyReason::parse("reason", None, Some(" 救急　")).unwrap();
        assert_eq!(r.describe(), "救急");
        assert_eq!(r.audit_detail(), "救急");
    }

    #[test]
    fn a_code_alone_is_a_reason() {
        let r = EmergencyReason::parse("reason", Some(EmergencyReasonCode::CardiacArrest), None)
            .unwrap();
        assert_eq!(r.describe(), "心肺停止");
        assert_eq!(r.audit_detail(), "CARDIAC_ARREST 心肺停止");
        let r = EmergencyReason::parse("reason", Some(EmergencyReasonCode::Trauma), Some("転"))
            .unwrap();
        assert_eq!(r.describe(), "外傷: 転");
    }

    #[test]
    fn blank_short_long_and_bare_other_are_refused() {
        for (code, text) in [
            (None, None),
            (None, Some("　 ")),
            (Some(EmergencyReasonCode::InTransport), Some("  ")),
            (None, Some("急")),
            (Some(EmergencyReasonCode::Other), None),
        ] {
            assert!(
                EmergencyReason::parse("reason", code, text).is_err(),
                "{code:?} {text:?}"
            );
        }
        for invisible in [
            "\u{200B}\u{200B}",
            "急\u{200B}",
            "\u{3164}\u{3164}",
            "救急\u{202E}",
        ] {
            assert!(
                EmergencyReason::parse("reason", None, Some(invisible)).is_err(),
                "{invisible:?}"
            );
        }
        assert!(
            EmergencyReason::parse("reason", Some(EmergencyReasonCode::Other), Some("\u{2800}"))
                .is_err()
        );
        // A combining mark is part of its character, not one of its own.
        assert!(EmergencyReason::parse("reason", None, Some("か\u{3099}")).is_err());
        assert!(EmergencyReason::parse("reason", None, Some("が急")).is_ok());
        let long = "救".repeat(EmergencyReason::TEXT_MAX_CHARS + 1);
        assert!(EmergencyReason::parse("reason", None, Some(&long)).is_err());
        let longest = "救".repeat(EmergencyReason::TEXT_MAX_CHARS);
        assert!(EmergencyReason::parse("reason", None, Some(&longest)).is_ok());
    }
}
