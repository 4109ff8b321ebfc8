//! `OperationOutcome`: how every FHIR error of the hub is told. One issue
//! per problem, with the element it concerns as a FHIRPath `expression`
//! (`Bundle.entry[3].resource.code`), so a vendor's system can point at the
//! failing element without parsing prose.

use serde_json::{Value, json};

/// `OperationOutcome.issue.severity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One issue: `code` from the FHIR value set `issue-type` (`invalid`,
/// `required`, `value`, `not-found`, `forbidden`, `conflict`, `security`,
/// `processing`, `not-supported`, `exception`, `transient`, `login`,
/// `throttled`, `informational`, `suppressed`).
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub code: &'static str,
    pub diagnostics: String,
    /// FHIRPath of the element concerned, when there is one.
    pub expression: Option<String>,
}

impl Issue {
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// The issue at `expression` (a FHIRPath such as `Bundle.entry[0].resource.subject`).
    pub fn at(mut self, expression: impl Into<String>) -> Issue {
        self.expression = Some(expression.into());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Issue {
        self.severity = severity;
        self
    }
}

/// The most issues one `OperationOutcome` tells ([`Outcome::to_json`]).
pub const MAX_ISSUES: usize = 100;

/// An `OperationOutcome` resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub issues: Vec<Issue>,
}

impl Outcome {
    pub fn new(issue: Issue) -> Outcome {
        Outcome {
            issues: vec![issue],
        }
    }

    /// The resource, telling at most [`MAX_ISSUES`] issues and then how
    /// many more there were: a body of 300,000 empty entries (900 KB) would
    /// otherwise be answered with 39 MB of issues — and an import would
    /// print a line for each.
    pub fn to_json(&self) -> Value {
        let mut issues: Vec<Value> = self
            .issues
            .iter()
            .take(MAX_ISSUES)
            .map(|i| {
                let mut issue = json!({
                    "severity": i.severity.as_str(),
                    "code": i.code,
                    "diagnostics": i.diagnostics,
                });
                if let Some(e) = &i.expression {
                    issue["expression"] = json!([e]);
                }
                issue
            })
            .collect();
        if let Some(more) = self.issues.len().checked_sub(MAX_ISSUES).filter(|n| *n > 0) {
            issues.push(json!({
                "severity": "error",
                "code": "too-costly",
                "diagnostics": format!("and {more} more issues, not told: mend those above and send the resource again"),
            }));
        }
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}

impl From<Issue> for Outcome {
    fn from(issue: Issue) -> Outcome {
        Outcome::new(issue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_names_its_element_as_a_list_of_one_expression() {
        let outcome = Outcome::new(
            Issue::error("required", "a Condition needs a code")
                .at("Bundle.entry[3].resource.code"),
        )
        .to_json();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(outcome["issue"][0]["code"], "required");
        assert_eq!(
            outcome["issue"][0]["expression"],
            json!(["Bundle.entry[3].resource.code"])
        );
    }

    #[test]
    fn past_a_hundred_issues_only_their_number_is_told() {
        let outcome = Outcome {
            issues: (0..300_000)
                .map(|i| {
                    Issue::error("required", "an entry needs a resource")
                        .at(format!("Bundle.entry[{i}]"))
                })
                .collect(),
        }
        .to_json();
        let issues = outcome["issue"].as_array().unwrap();
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        assert_eq!(issues[99]["expression"], json!(["Bundle.entry[99]"]));
        assert_eq!(issues[100]["code"], "too-costly");
        assert!(
            issues[100]["diagnostics"]
                .as_str()
                .unwrap()
                .starts_with("and 299900 more issues"),
            "{}",
            issues[100]
        );
        let exactly = Outcome {
            issues: vec![Issue::error("required", "x"); MAX_ISSUES],
        }
        .to_json();
        assert_eq!(exactly["issue"].as_array().unwrap().len(), MAX_ISSUES);
    }
}
