//! The signed consent form (同意書) a consent is recorded from: which form,
//! signed when, and by whom — the patient, or a proxy (代諾者) with the
//! proxy's name and relation to the patient.

use chrono::NaiveDate;

use super::{ConsentSignatory, NAME_MAX, Text};
use crate::error::ApiError;

/// How long a relation may be: 「長女」「配偶者」「成年後見人（司法書士）」.
pub const RELATION_MAX: usize = 50;

/// Who signed a form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    Patient,
    /// A family member or guardian signing for the patient.
    Proxy {
        signatory: ConsentSignatory,
        name: Text,
        relation: Text,
    },
}

/// A consent's form, valid by construction: a reference, a signing date not
/// in the future, and a signer (a proxy always with name and relation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentForm {
    reference: Text,
    signed_on: NaiveDate,
    signer: Signer,
}

/// The raw fields of a form as a client sends them.
pub struct RawConsentForm<'a> {
    pub reference: &'a str,
    pub signed_on: NaiveDate,
    pub signed_by: ConsentSignatory,
    pub proxy_name: Option<&'a str>,
    pub proxy_relation: Option<&'a str>,
}

impl ConsentForm {
    /// Parses a form; `field` is the input path of the form (`input.form`),
    /// which errors extend with the field at fault.
    pub fn parse(field: &str, raw: RawConsentForm<'_>, today: NaiveDate) -> Result<Self, ApiError> {
        let at = |f: &str| format!("{field}.{f}");
        let reference = Text::parse(&at("reference"), raw.reference, NAME_MAX)?;
        if raw.signed_on > today {
            return Err(ApiError::bad_input(
                at("signedOn"),
                format!("{} is in the future", raw.signed_on),
            ));
        }
        let signer = match raw.signed_by {
            ConsentSignatory::Patient => {
                for (f, value) in [
                    ("proxyName", raw.proxy_name),
                    ("proxyRelation", raw.proxy_relation),
                ] {
                    if value.is_some() {
                        return Err(ApiError::bad_input(
                            at(f),
                            "is for a proxy (signedBy FAMILY or GUARDIAN); the patient signed",
                        ));
                    }
                }
                Signer::Patient
            }
            signatory @ (ConsentSignatory::Family | ConsentSignatory::Guardian) => {
                let needed = |f: &str, value: Option<&str>, max: usize, what: &str| match value {
                    Some(v) => Text::parse(&at(f), v, max),
                    None => Err(ApiError::bad_input(
                        at(f),
                        format!(
                            "a proxy (代諾者, signedBy {signatory}) must be recorded with {what}"
                        ),
                    )),
                };
                Signer::Proxy {
                    signatory,
                    name: needed("proxyName", raw.proxy_name, NAME_MAX, "the proxy's name")?,
                    relation: needed(
                        "proxyRelation",
                        raw.proxy_relation,
                        RELATION_MAX,
                        "the relation to the patient (続柄, e.g. 長女, or 成年後見人)",
                    )?,
                }
            }
        };
        Ok(ConsentForm {
            reference,
            signed_on: raw.signed_on,
            signer,
        })
    }

    pub fn reference(&self) -> &str {
        self.reference.as_str()
    }

    pub fn signed_on(&self) -> NaiveDate {
        self.signed_on
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn signatory(&self) -> ConsentSignatory {
        match &self.signer {
            Signer::Patient => ConsentSignatory::Patient,
            Signer::Proxy { signatory, .. } => *signatory,
        }
    }

    /// A form cannot be signed before the patient was born (a typing error
    /// in the year, as a rule). The message does not quote the birth date.
    pub fn check_signed_after_birth(&self, field: &str, birth: NaiveDate) -> Result<(), ApiError> {
        if self.signed_on < birth {
            return Err(ApiError::bad_input(
                format!("{field}.signedOn"),
                format!("{} is before the patient was born", self.signed_on),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(signed_by: ConsentSignatory) -> RawConsentForm<'static> {
        RawConsentForm {
            reference: "同意書 2026-0001",
            signed_on: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
            signed_by,
            proxy_name: None,
            proxy_relation: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 4, 1).unwrap()
    }

    fn field_of(e: ApiError) -> String {
        match e {
            ApiError::BadUserInput { field, .. } => field,
            other => panic!("not a bad input: {other:?}"),
        }
    }

    #[test]
    fn a_proxy_needs_a_name_and_a_relation() {
        let e = ConsentForm::parse(
            "f",
            RawConsentForm {
                proxy_name: Some("連携 一郎"),
                ..raw(ConsentSignatory::Family)
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "f.proxyRelation");
        let e = ConsentForm::parse(
            "f",
            RawConsentForm {
                proxy_relation: Some("長男"),
                ..raw(ConsentSignatory::Guardian)
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "f.proxyName");
        let ok = ConsentForm::parse(
            "f",
            RawConsentForm {
                proxy_name: Some("連携 一郎"),
                proxy_relation: Some(" 長男 "),
                ..raw(ConsentSignatory::Family)
            },
            today(),
        )
        .unwrap();
        assert_eq!(ok.signatory(), ConsentSignatory::Family);
        assert!(
            matches!(ok.signer(), Signer::Proxy { relation, .. } if relation.as_str() == "長男")
        );
    }

    #[test]
    fn the_patient_signing_has_no_proxy_fields() {
        let e = ConsentForm::parse(
            "f",
            RawConsentForm {
                proxy_relation: Some("本人"),
                ..raw(ConsentSignatory::Patient)
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "f.proxyRelation");
    }

    #[test]
    fn dates_in_the_future_or_before_birth_are_refused() {
        let e = ConsentForm::parse(
            "f",
            RawConsentForm {
                signed_on: NaiveDate::from_ymd_opt(2026, 4, 2).unwrap(),
                ..raw(ConsentSignatory::Patient)
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "f.signedOn");
        let form = ConsentForm::parse("f", raw(ConsentSignatory::Patient), today()).unwrap();
        let born = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        assert_eq!(
            field_of(form.check_signed_after_birth("f", born).unwrap_err()),
            "f.signedOn"
        );
        assert!(
            form.check_signed_after_birth("f", NaiveDate::from_ymd_opt(1940, 5, 1).unwrap())
                .is_ok()
        );
    }

    #[test]
    fn an_empty_reference_is_refused() {
        let e = ConsentForm::parse(
            "f",
            RawConsentForm {
                reference: "  ",
                ..raw(ConsentSignatory::Patient)
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "f.reference");
    }
}
