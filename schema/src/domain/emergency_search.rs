//! 救急時の患者検索: what an ambulance crew may search a patient by — the
//! exact name (kanji or kana) and birth date the crew was told or read on a
//! card, never a pattern — and how names are compared.
//!
//! Only differences that say nothing about *which* person is meant are
//! folded: full- and half-width forms (ＡＢＣ/ABC, ｱｲｳ/アイウ, ﾀﾞ/ダ), spaces
//! anywhere (「山田 花子」「山田　花子」「山田花子」), and for a reading
//! hiragana and katakana (やまだ/ヤマダ). Everything else must be equal:
//! 髙 is not 高, ヨシダ is not ヨシタ, 「山田」 is not 「山田 花子」.

use chrono::NaiveDate;

use super::{EmergencyReason, Municipality, Sex};
use crate::error::ApiError;

/// A name or reading folded for comparison: see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameKey(String);

impl NameKey {
    /// The key of a stored name, or of a reading when `kana` (hiragana read
    /// as katakana).
    pub fn of(s: &str, kana: bool) -> NameKey {
        let folded = fold_width(s);
        NameKey(
            folded
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| if kana { hiragana_to_katakana(c) } else { c })
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that mean "anything" in some search box: refused, so that no
/// one believes a pattern was searched when a name was compared.
const WILDCARDS: &[char] = &[
    '*', '%', '?', '_', '＊', '％', '？', '＿', '…', '‥', '〜', '～', '~', '○', '●', '×',
];

/// What an emergency search is made of, parsed at the edge.
#[derive(Clone, Debug)]
pub struct EmergencySearchCriteria {
    pub name: Option<NameKey>,
    pub name_kana: Option<NameKey>,
    pub birth_date: NaiveDate,
    pub sex: Option<Sex>,
    /// A municipality the address contains (「みなみ野市」「北川町」):
    /// narrows, never widens.
    pub area: Option<NameKey>,
    pub reason: EmergencyReason,
}

impl EmergencySearchCriteria {
    /// The fewest characters a name, a reading or an area must have once
    /// folded: 「林 光」 is a whole name of two.
    pub const MIN_CHARS: usize = 2;
    /// The most: longer than any name, shorter than a pasted paragraph.
    pub const MAX_CHARS: usize = 100;

    /// `field` is the input object's path (`input`). A name or a reading (or
    /// both), and the birth date, are required; the birth date must not be in
    /// the future (`today`).
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        field: &str,
        name: Option<&str>,
        name_kana: Option<&str>,
        birth_date: NaiveDate,
        sex: Option<Sex>,
        area: Option<&str>,
        reason: EmergencyReason,
        today: NaiveDate,
    ) -> Result<Self, ApiError> {
        let name = exact(&format!("{field}.name"), name, false)?;
        let name_kana = exact(&format!("{field}.nameKana"), name_kana, true)?;
        if let Some(k) = &name_kana
            && let Some(c) = k.0.chars().find(|c| !is_katakana(*c))
        {
            return Err(ApiError::bad_input(
                format!("{field}.nameKana"),
                format!("must be written in katakana or hiragana; {c:?} is not kana"),
            ));
        }
        if name.is_none() && name_kana.is_none() {
            return Err(ApiError::bad_input(
                format!("{field}.name"),
                "give the patient's full name, its reading (nameKana), or both",
            ));
        }
        if birth_date > today {
            return Err(ApiError::bad_input(
                format!("{field}.birthDate"),
                format!("{birth_date} is in the future"),
            ));
        }
        let area = match area {
            Some(raw) => Some(whole_municipality(&format!("{field}.area"), raw)?),
            None => None,
        };
        Ok(EmergencySearchCriteria {
            name,
            name_kana,
            birth_date,
            sex,
            area,
            reason,
        })
    }

    /// Whether a patient's stored name, reading, sex and address match.
    pub fn matches(&self, name: &str, name_kana: &str, sex: &str, address: Option<&str>) -> bool {
        self.name
            .as_ref()
            .is_none_or(|k| NameKey::of(name, false) == *k)
            && self
                .name_kana
                .as_ref()
                .is_none_or(|k| NameKey::of(name_kana, true) == *k)
            && self.sex.is_none_or(|s| s.as_str() == sex)
            // The municipality the address names first (after the
            // prefecture and a district), not a name found anywhere in it:
            // 「本町」 in 「みなみ野市本町5丁目」 is a street of the city, and
            // matching it would confirm where a person lives.
            && self.area.as_ref().is_none_or(|a| {
                address.is_some_and(|addr| in_area(&NameKey::of(addr, false).0, &a.0))
            })
    }

    /// The criteria in words, for the audit entry: what was searched for is
    /// what an auditor judges a search by, found or not.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name {}", n.0));
        }
        if let Some(k) = &self.name_kana {
            parts.push(format!("reading {}", k.0));
        }
        parts.push(format!("born {}", self.birth_date));
        if let Some(s) = self.sex {
            parts.push(format!("sex {}", s.as_str()));
        }
        if let Some(a) = &self.area {
            parts.push(format!("area {}", a.0));
        }
        parts.join(", ")
    }
}

/// The municipality of an address (「北海道みなみ野市本町1丁目2-3」 →
/// 「みなみ野市」, 「北海道東原郡北川町字…」 → 「北川町」): enough to tell two
/// namesakes apart, not where either lives. `None` when the address does not
/// start the usual way (prefecture, then city, ward, town or village).
pub fn municipality(address: &str) -> Option<String> {
    let chars: Vec<char> = address.trim().chars().collect();
    // The prefecture: 北海道, 東京都, 京都府, 大阪府 or …県 (3 or 4 characters).
    let start = if chars.starts_with(&['京', '都', '府']) {
        3
    } else {
        (2..=3)
            .find(|&i| {
                chars
                    .get(i)
                    .is_some_and(|c| ['都', '道', '府', '県'].contains(c))
            })
            .map_or(0, |i| i + 1)
    };
    let rest = &chars[start..];
    // A county (郡) comes before its town or village.
    let rest = match rest.iter().position(|c| *c == '郡') {
        Some(i) if i <= 5 => &rest[i + 1..],
        _ => rest,
    };
    // The first 市, 区, 町 or 村 past the first character (市川市, 町田市).
    let end = rest
        .iter()
        .skip(1)
        .position(|c| ['市', '区', '町', '村'].contains(c))?
        + 2;
    (end <= 8).then(|| rest[..end].iter().collect())
}

/// Whether an address lies in a search's area: the municipality it names
/// first ([`super::lives_in`]) — or, for a ward (…区) given alone, the ward
/// of the city it names first (「中央区」 for 「北海道札幌市中央区…」), as a
/// crew may name a designated city's ward without its city.
fn in_area(address: &str, area: &str) -> bool {
    if super::lives_in(address, area) {
        return true;
    }
    if !area.ends_with('区') {
        return false;
    }
    let ward = format!("市{area}");
    address.match_indices(&ward).any(|(at, _)| {
        let city_end = at + '市'.len_utf8();
        // The city is what the address names first: some start of it
        // within the address's first characters ends at this 市.
        address[..at]
            .char_indices()
            .map(|(start, _)| start)
            .any(|start| super::lives_in(address, &address[start..city_end]))
    })
}

/// The area of a search: a municipality's name as the directory writes it
/// ([`Municipality`]: 「みなみ野市」「北川町」, no digit, no 丁目, 番, 号, 字
/// or 地割), which an address must contain. Never a street or a block: a
/// search narrowed by one would confirm where a person lives
/// (「本町3丁目」 matching or not), and the search answers only who the
/// patient is.
fn whole_municipality(field: &str, raw: &str) -> Result<NameKey, ApiError> {
    let municipality = Municipality::parse(field, raw.trim())?;
    exact(field, Some(municipality.as_str()), false)?
        .ok_or_else(|| ApiError::bad_input(field, "must name a municipality"))
}

/// A whole name (or area) to compare exactly: folded, without wildcards, of
/// [`EmergencySearchCriteria::MIN_CHARS`] characters at least.
fn exact(field: &str, raw: Option<&str>, kana: bool) -> Result<Option<NameKey>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.chars().any(char::is_control) {
        return Err(ApiError::bad_input(
            field,
            "must not contain control characters",
        ));
    }
    if let Some(w) = raw.chars().find(|c| WILDCARDS.contains(c)) {
        return Err(ApiError::bad_input(
            field,
            format!(
                "{w:?} looks like a wildcard: an emergency search compares the whole name exactly, never a pattern"
            ),
        ));
    }
    let key = NameKey::of(raw, kana);
    let n = key.0.chars().count();
    if n < EmergencySearchCriteria::MIN_CHARS {
        return Err(ApiError::bad_input(
            field,
            format!(
                "give the whole name (family and given name), not a part of it: at least {} characters",
                EmergencySearchCriteria::MIN_CHARS
            ),
        ));
    }
    if n > EmergencySearchCriteria::MAX_CHARS {
        return Err(ApiError::bad_input(
            field,
            format!(
                "must be at most {} characters",
                EmergencySearchCriteria::MAX_CHARS
            ),
        ));
    }
    Ok(Some(key))
}

/// Full-width ASCII to ASCII, the ideographic space to a space, half-width
/// katakana (with its separate voiced marks) to full-width katakana, and a
/// combining voiced mark onto its kana: the forms a card reader, a phone's
/// keyboard or an old system may produce for the same name.
fn fold_width(s: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        let mapped = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '\u{FF61}'..='\u{FF9D}' => HALF_WIDTH[(c as u32 - 0xFF61) as usize],
            // Voiced and semi-voiced marks, half-width or combining: onto
            // the kana before, when it takes one.
            '\u{FF9E}' | '\u{3099}' | '\u{309B}' => {
                if let Some(last) = out.last_mut()
                    && let Some(v) = voiced(*last)
                {
                    *last = v;
                    continue;
                }
                c
            }
            '\u{FF9F}' | '\u{309A}' | '\u{309C}' => {
                if let Some(last) = out.last_mut()
                    && let Some(v) = semi_voiced(*last)
                {
                    *last = v;
                    continue;
                }
                c
            }
            c => c,
        };
        out.push(mapped);
    }
    out.into_iter().collect()
}

/// U+FF61 to U+FF9D, full width.
const HALF_WIDTH: [char; 61] = [
    '。', '「', '」', '、', '・', 'ヲ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ャ', 'ュ', 'ョ', 'ッ', 'ー',
    'ア', 'イ', 'ウ', 'エ', 'オ', 'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ',
    'チ', 'ツ', 'テ', 'ト', 'ナ', 'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ', 'ホ', 'マ', 'ミ',
    'ム', 'メ', 'モ', 'ヤ', 'ユ', 'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ', 'ン',
];

/// カ→ガ … ホ→ボ, ウ→ヴ (and the same in hiragana).
fn voiced(c: char) -> Option<char> {
    let u = c as u32;
    let plus = |n: u32| char::from_u32(u + n);
    match c {
        'カ' | 'キ' | 'ク' | 'ケ' | 'コ' | 'サ' | 'シ' | 'ス' | 'セ' | 'ソ' | 'タ' | 'チ'
        | 'テ' | 'ト' | 'か' | 'き' | 'く' | 'け' | 'こ' | 'さ' | 'し' | 'す' | 'せ' | 'そ'
        | 'た' | 'ち' | 'て' | 'と' => plus(1),
        'ツ' | 'つ' => plus(1),
        'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' | 'は' | 'ひ' | 'ふ' | 'へ' | 'ほ' => plus(1),
        'ウ' => Some('ヴ'),
        'う' => Some('ゔ'),
        _ => None,
    }
}

/// ハ→パ … ホ→ポ.
fn semi_voiced(c: char) -> Option<char> {
    match c {
        'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' | 'は' | 'ひ' | 'ふ' | 'へ' | 'ほ' => {
            char::from_u32(c as u32 + 2)
        }
        _ => None,
    }
}

fn hiragana_to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(c as u32 + 0x60).unwrap_or(c)
        }
        c => c,
    }
}

fn is_katakana(c: char) -> bool {
    ('\u{30A1}'..='\u{30FE}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmergencyReasonCode;

    fn reason() -> EmergencyReason {
        EmergencyReason::parse("r", Some(EmergencyReasonCode::InTransport), None).unwrap()
    }

    fn parse(name: Option<&str>, kana: Option<&str>) -> Result<EmergencySearchCriteria, ApiError> {
        let d = NaiveDate::from_ymd_opt(1940, 5, 1).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        EmergencySearchCriteria::parse("input", name, kana, d, None, None, reason(), today)
    }

    #[test]
    fn the_area_is_a_municipality_never_a_street() {
        let key = |raw: &str| whole_municipality("input.area", raw).map(|k| k.0);
        assert_eq!(
            key(" みなみ野市 ").unwrap(),
            NameKey::of("みなみ野市", false).0
        );
        for name in [
            "北海道みなみ野市",
            "四日市市",
            "札幌市中央区",
            "中央区",
            "東原郡北川町",
        ] {
            assert!(key(name).is_ok(), "{name}");
        }
        for street in [
            "本町1丁目",
            "本町１丁目",
            "みなみ野",
            "本町3-2",
            "東原字北",
            "みなみ 野市",
        ] {
            let e = key(street).unwrap_err();
            assert_eq!(e.code(), "BAD_USER_INPUT", "{street}");
        }
    }

    #[test]
    fn width_spaces_and_script_of_the_reading_are_folded() {
        assert_eq!(
            NameKey::of("山田　花子", false),
            NameKey::of(" 山田花子", false)
        );
        assert_eq!(
            NameKey::of("ﾔﾏﾀﾞ ﾊﾅｺ", true),
            NameKey::of("やまだ　はなこ", true)
        );
        assert_eq!(NameKey::of("ﾔﾏﾀﾞ ﾊﾅｺ", true).as_str(), "ヤマダハナコ");
        assert_eq!(NameKey::of("ﾎﾟﾝﾀﾞ", true).as_str(), "ポンダ");
        assert_eq!(NameKey::of("ハ\u{309A}ク", true).as_str(), "パク");
        assert_eq!(NameKey::of("ＳＭＩＴＨ　Ｊ", false).as_str(), "SMITHJ");
        // Different characters stay different.
        assert_ne!(NameKey::of("髙橋", false), NameKey::of("高橋", false));
        assert_ne!(NameKey::of("ヨシダ", true), NameKey::of("ヨシタ", true));
    }

    #[test]
    fn patterns_parts_and_nothing_are_refused() {
        for bad in ["山田*", "山%", "ヤマダ？", "山田…", "山"] {
            assert!(parse(Some(bad), None).is_err(), "{bad}");
        }
        assert!(parse(None, Some("ﾔ")).is_err());
        assert!(parse(None, Some("Yamada")).is_err());
        assert!(parse(None, None).is_err());
        assert!(parse(Some("林 光"), None).is_ok());
        assert!(parse(None, Some("ﾘﾝ ﾋｶﾙ")).is_ok());
    }

    #[test]
    fn the_municipality_is_the_city_town_or_village() {
        assert_eq!(
            municipality("北海道みなみ野市本町1丁目2-3").as_deref(),
            Some("みなみ野市")
        );
        assert_eq!(
            municipality("北海道東原郡北川町字東原12番地").as_deref(),
            Some("北川町")
        );
        assert_eq!(
            municipality("東京都新宿区西新宿2-8-1").as_deref(),
            Some("新宿区")
        );
        assert_eq!(
            municipality("京都府京都市中京区").as_deref(),
            Some("京都市")
        );
        assert_eq!(
            municipality("神奈川県横浜市中区").as_deref(),
            Some("横浜市")
        );
        assert_eq!(municipality("東京都町田市森野").as_deref(), Some("町田市"));
        assert_eq!(municipality("どこか"), None);
    }

    #[test]
    fn a_match_needs_every_criterion_given() {
        let c = parse(Some("山田 花子"), Some("やまだはなこ")).unwrap();
        assert!(c.matches("山田　花子", "ヤマダ　ハナコ", "FEMALE", None));
        assert!(!c.matches("山田　花", "ヤマダ　ハナコ", "FEMALE", None));
        assert!(!c.matches("山田　花子", "ヤマダ　ハナ", "FEMALE", None));
        let mut c = c;
        c.sex = Some(Sex::Male);
        assert!(!c.matches("山田　花子", "ヤマダ　ハナコ", "FEMALE", None));
        c.sex = None;
        c.area = Some(NameKey::of("みなみ野市", false));
        assert!(c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道みなみ野市本町1丁目")
        ));
        assert!(!c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道東原郡北川町")
        ));
        assert!(!c.matches("山田花子", "ヤマダハナコ", "FEMALE", None));
        // A town's name that is also a street of a city (本町, 栄町) is
        // matched as the municipality an address names first, never as a
        // street within another.
        c.area = Some(NameKey::of("本町", false));
        assert!(!c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道みなみ野市本町5丁目")
        ));
        // A ward alone: of the designated city the address names first,
        // not a ward named further in.
        c.area = Some(NameKey::of("中央区", false));
        assert!(c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道札幌市中央区北1条西2丁目")
        ));
        assert!(c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("東京都中央区銀座1丁目")
        ));
        assert!(!c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道みなみ野市本町 中央区画3")
        ));
        c.area = Some(NameKey::of("北川町", false));
        assert!(c.matches(
            "山田花子",
            "ヤマダハナコ",
            "FEMALE",
            Some("北海道 東原郡 北川町字北川100番地")
        ));
    }
}
