//! Validated values. Each has a private field and a `parse` that says, in words a
//! person can act on, what is wrong with the input — quoting it where that helps.

use chrono::{Datelike, NaiveDate};

use crate::error::ApiError;

/// Rejects control characters (a newline in a name is never intended and breaks
/// printed forms and CSV exports alike).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A character that formats text without showing anything (Unicode's
/// general category Cf): zero-width spaces and joiners, direction marks and
/// overrides, the byte order mark, the soft hyphen, tags. In an emergency
/// reason it either pads words that say nothing into a valid length or
/// makes the audit log display other words than were written (U+202E
/// reverses them); in an identifier it makes two that look the same differ
/// (「…:187\u{2060}:05」 registered a second patient for one person). No
/// reason or identifier needs one.
pub(crate) fn invisible_format(c: char) -> bool {
    use unicode_properties::UnicodeGeneralCategory;
    c.general_category() == unicode_properties::GeneralCategory::Format
}

/// Unicode's bidirectional overrides (U+202D, U+202E): they display the
/// characters after them in the reverse order (U+202E makes 「abc」 show as
/// 「cba」), so what a reader sees is not what was sent. Free text refuses
/// them; other invisible characters change no word there — a soft hyphen or
/// a zero-width space pasted from a document, an emoji's joiner, the
/// embeddings (U+202A–202C) Windows wraps a copied phone number in.
pub(crate) fn reorders_text(c: char) -> bool {
    matches!(c, '\u{202D}' | '\u{202E}')
}

/// Whether a character shows on the page: not whitespace (full-width spaces
/// included), not a mark that only modifies the character before it, and
/// not one of the letters and symbols that render blank (the Hangul fillers,
/// the braille blank, the noncharacters U+FFFE and U+FFFF). A text of none
/// is blank: refused as empty ([`Text`], multi-line fields), and only these
/// count toward the length of an emergency reason.
pub(crate) fn shows_something(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    const BLANK: &[char] = &[
        '\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}', '\u{FFFE}', '\u{FFFF}',
    ];
    !c.is_whitespace()
        && !invisible_format(c)
        && c.general_category_group() != GeneralCategoryGroup::Mark
        && !BLANK.contains(&c)
}

/// Control characters, or characters that show nothing ([`invisible_format`]).
pub(crate) fn has_control_or_format(s: &str) -> bool {
    s.chars().any(|c| c.is_control() || invisible_format(c))
}

/// A person's or organisation's display name, or a free-text line such as an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    /// `max` is in characters, not bytes: Japanese text is 3 bytes a character.
    pub fn parse(field: &str, raw: &str, max: usize) -> Result<Self, ApiError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ApiError::bad_input(field, "must not be empty"));
        }
        if s.chars().count() > max {
            return Err(ApiError::bad_input(
                field,
                format!("must be at most {max} characters"),
            ));
        }
        if has_control(s) {
            return Err(ApiError::bad_input(
                field,
                "must not contain control characters such as line breaks",
            ));
        }
        // A name, an address, a reference, a subject line: one that looks
        // like another but differs by an invisible character is not found
        // by it (an emergency crew searches names exactly), and a direction
        // override shows other words than were written.
        if let Some(c) = s.chars().find(|&c| invisible_format(c)) {
            return Err(ApiError::bad_input(
                field,
                format!(
                    "must not contain invisible formatting characters (U+{:04X}: a zero-width space, a direction mark …)",
                    c as u32
                ),
            ));
        }
        // Blank too: a name of a Hangul filler or a braille blank shows
        // nothing, as an empty one.
        if !s.chars().any(shows_something) {
            return Err(ApiError::bad_input(field, "must not be empty"));
        }
        Ok(Text(s.to_string()))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>, max: usize) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r, max)).transpose()
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A municipality's name (市区町村) as the directory writes it: 「北見市」,
/// 「北川町」, 「新宿区」. Indicators and the disaster register are tabulated
/// over it, matching it against the start of addresses, so it must be a
/// municipality and never an address or part of one (「北見市本町3丁目」
/// would narrow them to a street, 「…18-5」 to one household): it ends in 市,
/// 区, 町 or 村, holds no digit and none of 丁目, 番, 号, 字 or 地割, names no
/// district after the municipality ([`names_a_district`]: 「北見市本町」), and
/// is at most 20 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Municipality(String);

impl Municipality {
    pub const MAX_CHARS: usize = 20;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let s = Text::parse(field, raw, Self::MAX_CHARS)?.into_inner();
        let ends_as_one = s.ends_with(['市', '区', '町', '村']) && s.chars().count() >= 2;
        let of_an_address = s.chars().any(|c| c.is_numeric() || c.is_whitespace())
            || ["丁目", "番", "号", "字", "地割"]
                .iter()
                .any(|w| s.contains(w))
            || names_a_district(&s);
        if !ends_as_one || of_an_address {
            return Err(ApiError::bad_input(
                field,
                format!(
                    "{s:?} is not a municipality's name: name the city, ward, town or village as the directory does (e.g. 北見市, 北川町), not an address"
                ),
            ));
        }
        Ok(Municipality(s))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a name runs on past its municipality into a district of it
/// (「みなみ野市本町」, 「東川町西町」, 「新宿区西新宿」), which would narrow
/// the tables to a neighbourhood. Read after a prefecture (「山梨県市川三郷町」:
/// a 都, 道, 府 or 県 among the first four characters) and in the parts a 郡
/// divides (a county holds towns and villages: 「上川郡東川町」, 「余市郡余市町」):
/// a 市 may be followed only by a ward (「札幌市中央区」) or by the rest of
/// the city's own name (「四日市市」); 区 ends the name; a 町 or 村 followed
/// by two characters or more that end in 町 or 村 is a town's district. A
/// single character after (「上市町」, 「大町町」, 「十日町市」) and a 市, 町 or
/// 村 that opens a part (「市川三郷町」, 「町田市」, 「村上市」) are the
/// municipality's own name. (A city whose name holds 郡 followed by a
/// district holding it too — 「大和郡山市北郡山町」 — is not caught.)
fn names_a_district(name: &str) -> bool {
    let after_prefecture = name
        .char_indices()
        .take(4)
        .find(|(_, c)| matches!(c, '都' | '道' | '府' | '県'))
        .map_or(name, |(at, c)| &name[at + c.len_utf8()..]);
    after_prefecture.split('郡').any(part_names_a_district)
}

fn part_names_a_district(part: &str) -> bool {
    let chars: Vec<char> = part.chars().collect();
    chars.iter().enumerate().skip(1).any(|(i, c)| {
        let rest = &chars[i + 1..];
        let last = rest.last().copied();
        match c {
            '市' => rest.len() >= 2 && !matches!(last, Some('区' | '市')),
            '区' => !rest.is_empty(),
            '町' | '村' => rest.len() >= 2 && matches!(last, Some('町' | '村')),
            _ => false,
        }
    })
}

/// Maximum length of names: long enough for 「医療法人社団 …会 …クリニック」.
pub const NAME_MAX: usize = 200;
/// Maximum length of an address line.
pub const ADDRESS_MAX: usize = 300;

/// The subject an identity provider gives a member (OpenID Connect's `sub`,
/// or another claim the hub is configured to read): compared exactly, as the
/// provider sends it. At most 255 characters (OpenID Connect's limit), no
/// control characters, and no surrounding spaces — a provider does not send
/// them, so they are a copying mistake that would never match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalSubject(String);

impl ExternalSubject {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        if raw.is_empty() {
            return Err(ApiError::bad_input(field, "must not be empty"));
        }
        if raw.trim() != raw {
            return Err(ApiError::bad_input(
                field,
                "must not begin or end with spaces (it is compared exactly with the token's claim)",
            ));
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ApiError::bad_input(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if has_control(raw) {
            return Err(ApiError::bad_input(
                field,
                "must not contain control characters",
            ));
        }
        Ok(ExternalSubject(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A reading in katakana (フリガナ). Hiragana is accepted and converted to
/// katakana, so 「やまだ はなこ」 and 「ヤマダ ハナコ」 are the same reading;
/// spaces (half- or full-width) are normalised to one full-width space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kana(String);

impl Kana {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let trimmed = raw.trim_matches(|c: char| c == ' ' || c == '\u{3000}');
        if trimmed.is_empty() {
            return Err(ApiError::bad_input(field, "must not be empty"));
        }
        let mut out = String::with_capacity(trimmed.len());
        let mut last_space = false;
        for c in trimmed.chars() {
            let mapped = match c {
                // Hiragana ぁ..ゖ and the iteration marks ゝゞ map to katakana by
                // a fixed offset of 0x60.
                '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
                    char::from_u32(c as u32 + 0x60).unwrap_or(c)
                }
                // Katakana ァ..ヺ, the middle dot ・, the long mark ー, ヽヾ.
                '\u{30A1}'..='\u{30FE}' => c,
                ' ' | '\u{3000}' => {
                    if last_space {
                        continue;
                    }
                    last_space = true;
                    out.push('\u{3000}');
                    continue;
                }
                _ => {
                    let hint = if ('\u{FF66}'..='\u{FF9F}').contains(&c) {
                        " (half-width katakana: use full-width)"
                    } else {
                        ""
                    };
                    return Err(ApiError::bad_input(
                        field,
                        format!(
                            "must be written in katakana or hiragana; {c:?} in {raw:?} is not kana{hint}"
                        ),
                    ));
                }
            };
            last_space = false;
            out.push(mapped);
        }
        if out.chars().count() > NAME_MAX {
            return Err(ApiError::bad_input(
                field,
                format!("must be at most {NAME_MAX} characters"),
            ));
        }
        Ok(Kana(out))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A telephone or fax number: digits with optional hyphens, brackets, spaces and a
/// leading `+`; 10 to 15 digits (Japanese numbers have 10 or 11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        let digits = s.chars().filter(char::is_ascii_digit).count();
        let shape_ok = s
            .char_indices()
            .all(|(i, c)| c.is_ascii_digit() || "-() ".contains(c) || (c == '+' && i == 0));
        if !shape_ok || !(10..=15).contains(&digits) {
            return Err(ApiError::bad_input(
                field,
                format!("{raw:?} is not a telephone number (10 to 15 digits, e.g. 0157-23-4567)"),
            ));
        }
        Ok(Phone(s.to_string()))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A Japanese postal code, stored as `NNN-NNNN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let digits: String = raw.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() != 7 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ApiError::bad_input(
                field,
                format!("{raw:?} is not a postal code (7 digits, e.g. 090-0001)"),
            ));
        }
        Ok(PostalCode(format!("{}-{}", &digits[..3], &digits[3..])))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A facility's own patient ID (カルテ番号, 利用者番号 …). Opaque to the hub, so
/// only its length and printability are checked; it is compared exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalId(String);

/// Long enough for every facility system seen so far, short enough to index.
pub const LOCAL_ID_MAX: usize = 64;

impl LocalId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ApiError::bad_input(field, "must not be empty"));
        }
        if s.chars().count() > LOCAL_ID_MAX {
            return Err(ApiError::bad_input(
                field,
                format!("must be at most {LOCAL_ID_MAX} characters"),
            ));
        }
        if has_control_or_format(s) {
            return Err(ApiError::bad_input(
                field,
                "must not contain control or invisible formatting characters (a zero-width space, a direction mark …)",
            ));
        }
        Ok(LocalId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 医療機関コード: the 10-digit code of a medical institution (2-digit
/// prefecture, 1-digit score table — medical, dental or pharmacy — and a
/// 7-digit number). JP-CLINS names the sending institution by it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MedicalInstitutionCode(String);

impl MedicalInstitutionCode {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim();
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_input(
                field,
                format!("{s:?} is not a medical institution code: it must be 10 digits"),
            ));
        }
        Ok(MedicalInstitutionCode(s.to_string()))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// 被保険者個人識別子: the person's identifier in the public health
/// insurance, as JP-CLINS carries it — `保険者番号:記号:番号:枝番`. The
/// insurer number is 8 digits (a 6-digit national-health-insurance number
/// is zero-padded, as the insurers' own lists do); the symbol may be empty
/// (many cards have none) and, like the number, may hold kana or kanji as
/// printed on the card; the branch number is 2 digits. Compared exactly
/// after that normalisation, so one person has one identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsuredPersonId(String);

/// Longest symbol or number accepted (the card fields are at most 38
/// characters in the national qualification-confirmation interface).
const INSURED_PART_MAX: usize = 38;

impl InsuredPersonId {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let bad = |why: &str| {
            ApiError::bad_input(
                field,
                format!(
                    "{raw:?} is not an insured-person identifier (保険者番号:記号:番号:枝番): {why}"
                ),
            )
        };
        let parts: Vec<&str> = raw.trim().split(':').collect();
        let [insurer, symbol, number, branch] = parts[..] else {
            return Err(bad("it must have four parts separated by ':'"));
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let insurer = match insurer.len() {
            8 if digits(insurer) => insurer.to_string(),
            6 if digits(insurer) => format!("00{insurer}"),
            _ => return Err(bad("the insurer number must be 6 or 8 digits")),
        };
        // Nothing invisible: 「187」 and 「187\u{2060}」 would be two people.
        let printable =
            |s: &str| !has_control_or_format(s) && s.chars().count() <= INSURED_PART_MAX;
        let (symbol, number) = (symbol.trim(), number.trim());
        if !printable(symbol) {
            return Err(bad(&format!(
                "the symbol must be at most {INSURED_PART_MAX} printable characters"
            )));
        }
        if number.is_empty() || !printable(number) {
            return Err(bad(&format!(
                "the number must be 1 to {INSURED_PART_MAX} printable characters"
            )));
        }
        if branch.len() != 2 || !digits(branch) {
            return Err(bad("the branch number must be 2 digits"));
        }
        Ok(InsuredPersonId(format!(
            "{insurer}:{symbol}:{number}:{branch}"
        )))
    }

    pub fn parse_opt(field: &str, raw: Option<&str>) -> Result<Option<Self>, ApiError> {
        raw.map(|r| Self::parse(field, r)).transpose()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A location in WGS 84 degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    pub latitude: f64,
    pub longitude: f64,
}

impl GeoPoint {
    pub fn parse(field: &str, latitude: f64, longitude: f64) -> Result<Self, ApiError> {
        if !(-90.0..=90.0).contains(&latitude) {
            return Err(ApiError::bad_input(
                format!("{field}.latitude"),
                format!("{latitude} is not a latitude (-90 to 90)"),
            ));
        }
        if !(-180.0..=180.0).contains(&longitude) {
            return Err(ApiError::bad_input(
                format!("{field}.longitude"),
                format!("{longitude} is not a longitude (-180 to 180)"),
            ));
        }
        Ok(GeoPoint {
            latitude,
            longitude,
        })
    }
}

/// A date that must lie between 1900-01-01 and `today` — the region's today,
/// from the policy clock (birth dates, dates of death): a future birth date is
/// always a typing error.
pub fn past_date(field: &str, date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    if date > today {
        return Err(ApiError::bad_input(
            field,
            format!("{date} is in the future"),
        ));
    }
    if date.year() < 1900 {
        return Err(ApiError::bad_input(field, format!("{date} is before 1900")));
    }
    Ok(date)
}

/// Whether a patient whose address is `address` lives in `municipality`
/// (a 市区町村 name as the directory spells it): the address names it first,
/// after the prefecture (…都/道/府/県) and a district (…郡) if it gives them —
/// 「北海道東原郡北川町字…」 lives in 北川町, 「大阪府東大阪市…」 does not live in
/// 大阪市. The hub keeps addresses as text: one written without the
/// municipality is in none.
pub fn lives_in(address: &str, municipality: &str) -> bool {
    let municipality = municipality.trim();
    if municipality.is_empty() {
        return false;
    }
    let address = address.trim();
    // Where the municipality may begin: the start, after a prefecture
    // suffix among the first five characters, after a district's 郡.
    let mut starts = vec![0usize];
    for (i, (at, c)) in address.char_indices().enumerate() {
        if i < 5 && matches!(c, '都' | '道' | '府' | '県') {
            starts.push(at + c.len_utf8());
        }
    }
    let mut with_district = starts.clone();
    for &s in &starts {
        if let Some(rest) = address.get(s..)
            && let Some((at, c)) = rest.char_indices().take(8).find(|(_, c)| *c == '郡')
        {
            with_district.push(s + at + c.len_utf8());
        }
    }
    with_district.into_iter().any(|s| {
        address
            .get(s..)
            .is_some_and(|rest| rest.starts_with(municipality))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insured_person_ids_are_normalised_and_checked_part_by_part() {
        let id = |s: &str| InsuredPersonId::parse("i", s).map(InsuredPersonId::into_inner);
        assert_eq!(
            id("06123456:あいう:187:05").unwrap(),
            "06123456:あいう:187:05"
        );
        // A 6-digit national-health-insurance number is zero-padded.
        assert_eq!(id("123456::9876:00").unwrap(), "00123456::9876:00");
        assert_eq!(
            id(" 06123456:記号 : 187 :01 ").unwrap(),
            "06123456:記号:187:01"
        );
        for bad in [
            "",
            "06123456:あいう:187",
            "0612345:あいう:187:05",
            "0612345a:あいう:187:05",
            "06123456:あいう::05",
            "06123456:あいう:187:5",
            "06123456:あいう:187:05:1",
            "06123456:a\nb:187:05",
        ] {
            assert!(id(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn medical_institution_codes_are_ten_digits() {
        assert!(MedicalInstitutionCode::parse("c", "0113456789").is_ok());
        for bad in ["", "011345678", "01134567890", "011345678x"] {
            assert!(MedicalInstitutionCode::parse("c", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hiragana_becomes_katakana_and_spaces_are_normalised() {
        let k = Kana::parse("k", " やまだ  ハナコ ").unwrap();
        assert_eq!(k.into_inner(), "ヤマダ\u{3000}ハナコ");
    }

    #[test]
    fn latin_and_kanji_are_not_kana() {
        assert!(Kana::parse("k", "Yamada").is_err());
        assert!(Kana::parse("k", "山田").is_err());
        assert!(Kana::parse("k", "ﾔﾏﾀﾞ").is_err());
    }

    #[test]
    fn postal_codes_are_normalised() {
        assert_eq!(
            PostalCode::parse("p", "0900001").unwrap().into_inner(),
            "090-0001"
        );
        assert!(PostalCode::parse("p", "090-001").is_err());
    }

    #[test]
    fn phone_numbers_need_ten_digits() {
        assert!(Phone::parse("p", "0157-23-4567").is_ok());
        assert!(Phone::parse("p", "+81 157 23 4567").is_ok());
        assert!(Phone::parse("p", "123").is_err());
        assert!(Phone::parse("p", "0157-23-456a").is_err());
    }
}

#[cfg(test)]
mod municipality_tests {
    use super::lives_in;

    #[test]
    fn an_address_lives_in_the_municipality_it_names_first() {
        assert!(lives_in("北海道みなみ野市本町1丁目", "みなみ野市"));
        assert!(lives_in("北海道東原郡北川町字北川100番地", "北川町"));
        assert!(lives_in("みなみ野市本町1丁目", "みなみ野市"));
        assert!(lives_in("京都府京都市左京区", "京都市"));
        assert!(lives_in("神奈川県横浜市中区", "横浜市"));
        assert!(!lives_in("大阪府東大阪市荒本", "大阪市"));
        assert!(!lives_in("広島県東広島市西条町", "広島市"));
        assert!(!lives_in("北海道網走市南1条 北見市役所前", "北見市"));
        assert!(!lives_in("", "北見市"));
        assert!(!lives_in("北海道北見市", ""));
    }
}
